//! Elementwise activations over buffers, fused into the layer that precedes them;
//! each one's value and derivative are defined once, in [`crate::activation`].
//! Backward passes use the stored output: relu' = (y > 0), sigmoid' = y(1 - y), tanh' = 1 - y^2.

pub use crate::ir::Activation;

impl Activation {
    /// The activation of one value ([`Activation::value`], in `f32`).
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        self.value(x)
    }

    /// In place over a buffer.
    #[inline(always)]
    pub fn forward(self, y: &mut [f32]) {
        // Identity and relu in loops of their own, so that they vectorize (the
        // match in `apply` would stay in the loop).
        match self {
            Activation::Identity => {}
            Activation::Relu => y.iter_mut().for_each(|v| *v = v.max(0.0)),
            _ => y.iter_mut().for_each(|v| *v = self.apply(*v)),
        }
    }

    /// `y = f(y + bias)` over a buffer, identity and relu in loops of their own
    /// as in [`Activation::forward`].
    #[inline(always)]
    pub fn with_bias(self, y: &mut [f32], bias: f32) {
        match self {
            Activation::Identity => y.iter_mut().for_each(|v| *v += bias),
            Activation::Relu => y.iter_mut().for_each(|v| *v = (*v + bias).max(0.0)),
            _ => y.iter_mut().for_each(|v| *v = self.apply(*v + bias)),
        }
    }

    /// `y[i] = f(y[i] + bias[i])` over a buffer (a dense layer's outputs), identity
    /// and relu in loops of their own as in [`Activation::forward`].
    #[inline(always)]
    pub fn with_biases(self, y: &mut [f32], bias: &[f32]) {
        let pairs = y.iter_mut().zip(bias);
        match self {
            Activation::Identity => pairs.for_each(|(v, b)| *v += b),
            Activation::Relu => pairs.for_each(|(v, b)| *v = (*v + b).max(0.0)),
            _ => pairs.for_each(|(v, b)| *v = self.apply(*v + b)),
        }
    }

    /// `dy *= f'(y)`: turns the gradient of a fused layer's output into that of
    /// its input. Only for activations with [`Activation::derivative_from_output`].
    #[inline(always)]
    pub fn backward(self, y: &[f32], dy: &mut [f32]) {
        debug_assert!(self.derivative_from_output());
        // Relu in a loop of its own, so that it vectorizes when the activation is
        // known only at run time (the plan executor): the match in `derivative`
        // would stay in the loop. The same product as the general loop, so both
        // give the same bits.
        match self {
            Activation::Identity => {}
            Activation::Relu => {
                for (d, &y) in dy.iter_mut().zip(y) {
                    *d *= if y > 0.0 { 1.0 } else { 0.0 };
                }
            }
            _ => {
                for (d, &y) in dy.iter_mut().zip(y) {
                    *d *= self.derivative(y, y);
                }
            }
        }
    }

    /// `dx = dy * f'(x)` for a standalone activation layer, from its input and output.
    #[inline(always)]
    pub fn backward_from(self, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) {
        for (((d, &g), &x), &y) in dx.iter_mut().zip(dy).zip(x).zip(y) {
            *d = g * self.derivative(x, y);
        }
    }
}

/// Softmax over each sample's `features` values.
#[inline(always)]
pub fn softmax_forward(x: &[f32], y: &mut [f32], features: usize) {
    for (x, y) in x.chunks_exact(features).zip(y.chunks_exact_mut(features)) {
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0;
        for (y, &x) in y.iter_mut().zip(x) {
            *y = (x - max).exp();
            total += *y;
        }
        let inv = 1.0 / total;
        for y in y.iter_mut() {
            *y *= inv;
        }
    }
}

/// v3: softmax over the `channels` of each of `area` positions, per sample of
/// `channels · area` values (an image's per-position softmax), in tiles of
/// positions so that the loops over the channels run along rows.
#[inline(always)]
pub fn softmax_positions_forward(x: &[f32], y: &mut [f32], channels: usize, area: usize) {
    const TILE: usize = 64;
    for (x, y) in x.chunks_exact(channels * area).zip(y.chunks_exact_mut(channels * area)) {
        for start in (0..area).step_by(TILE) {
            let len = TILE.min(area - start);
            let mut max = [f32::NEG_INFINITY; TILE];
            let mut total = [0.0f32; TILE];
            for c in 0..channels {
                let row = &x[c * area + start..][..len];
                for (m, &v) in max.iter_mut().zip(row) {
                    *m = m.max(v);
                }
            }
            for c in 0..channels {
                let at = c * area + start;
                for (((o, &v), m), t) in y[at..at + len]
                    .iter_mut()
                    .zip(&x[at..at + len])
                    .zip(&max)
                    .zip(&mut total)
                {
                    *o = (v - m).exp();
                    *t += *o;
                }
            }
            for c in 0..channels {
                let at = c * area + start;
                for (o, t) in y[at..at + len].iter_mut().zip(&total) {
                    *o /= t;
                }
            }
        }
    }
}

/// The backward pass of [`softmax_positions_forward`]: `dx = y (dy - Σ_c dy·y)` at
/// each position.
#[inline(always)]
pub fn softmax_positions_backward(y: &[f32], dy: &[f32], dx: &mut [f32], channels: usize, area: usize) {
    const TILE: usize = 64;
    let len_sample = channels * area;
    for ((y, dy), dx) in y
        .chunks_exact(len_sample)
        .zip(dy.chunks_exact(len_sample))
        .zip(dx.chunks_exact_mut(len_sample))
    {
        for start in (0..area).step_by(TILE) {
            let len = TILE.min(area - start);
            let mut dot = [0.0f32; TILE];
            for c in 0..channels {
                let at = c * area + start;
                for ((d, &a), &b) in dot.iter_mut().zip(&y[at..at + len]).zip(&dy[at..at + len]) {
                    *d += a * b;
                }
            }
            for c in 0..channels {
                let at = c * area + start;
                for (((o, &a), &b), d) in dx[at..at + len]
                    .iter_mut()
                    .zip(&y[at..at + len])
                    .zip(&dy[at..at + len])
                    .zip(&dot)
                {
                    *o = a * (b - d);
                }
            }
        }
    }
}

/// dx = y * (dy - sum(dy * y)), per sample.
#[inline(always)]
pub fn softmax_backward(y: &[f32], dy: &[f32], dx: &mut [f32], features: usize) {
    for ((y, dy), dx) in y
        .chunks_exact(features)
        .zip(dy.chunks_exact(features))
        .zip(dx.chunks_exact_mut(features))
    {
        let s = super::dot(y, dy);
        for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
            *dx = y * (dy - s);
        }
    }
}
