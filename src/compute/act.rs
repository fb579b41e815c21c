//! Elementwise activations, fused into the layer that precedes them. Backward
//! passes use the stored output: relu' = (y > 0), sigmoid' = y(1 - y), tanh' = 1 - y^2.

/// An elementwise activation (softmax is not elementwise; see [`softmax_forward`]).
pub use crate::ir::Act;

impl Act {
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::Identity => x,
            Act::Relu => x.max(0.0),
            Act::LeakyRelu(a) => {
                if x > 0.0 {
                    x
                } else {
                    a * x
                }
            }
            Act::Sigmoid => sigmoid(x),
            Act::Tanh => x.tanh(),
        }
    }

    /// dy/dx, from the output y.
    #[inline(always)]
    pub fn derivative(self, y: f32) -> f32 {
        match self {
            Act::Identity => 1.0,
            Act::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Act::LeakyRelu(a) => {
                if y > 0.0 {
                    1.0
                } else {
                    a
                }
            }
            Act::Sigmoid => y * (1.0 - y),
            Act::Tanh => 1.0 - y * y,
        }
    }

    /// In place over a buffer.
    #[inline(always)]
    pub fn forward(self, y: &mut [f32]) {
        if self != Act::Identity {
            for v in y {
                *v = self.apply(*v);
            }
        }
    }

    /// `dy *= f'(y)`: turns the gradient of the output into that of the input.
    #[inline(always)]
    pub fn backward(self, y: &[f32], dy: &mut [f32]) {
        if self != Act::Identity {
            for (d, &y) in dy.iter_mut().zip(y) {
                *d *= self.derivative(y);
            }
        }
    }
}

/// The logistic function, without overflow for large |x|.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
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
