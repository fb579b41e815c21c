//! The v3 joins between buffers: `concat` (each sample's parts one after the
//! other: channels of images, features of vectors) and `mul` (elementwise, or a
//! per-channel gate broadcast over each channel's positions). `add` is
//! [`super::norm::add_forward`], shared with residual blocks.

use super::Activation;

/// Copies part `k` of a concat into its place in each sample of `y`: sample `i`
/// of the output is each part's sample `i` in turn (per-sample lengths `lens`).
#[inline(always)]
pub fn concat_forward(x: &[f32], lens: &[usize], k: usize, y: &mut [f32], n: usize) {
    let total: usize = lens.iter().sum();
    let start: usize = lens[..k].iter().sum();
    let len = lens[k];
    for (i, out) in y.chunks_exact_mut(total).take(n).enumerate() {
        out[start..start + len].copy_from_slice(&x[i * len..][..len]);
    }
}

/// The gradient of part `k` (per-sample length `lens[k]`) out of `dy`: written
/// into `dx`, or added to it when `accumulate`.
#[inline(always)]
pub fn concat_backward(dy: &[f32], lens: &[usize], k: usize, dx: &mut [f32], n: usize, accumulate: bool) {
    let total: usize = lens.iter().sum();
    let start: usize = lens[..k].iter().sum();
    let len = lens[k];
    for (i, g) in dy.chunks_exact(total).take(n).enumerate() {
        let src = &g[start..start + len];
        let dst = &mut dx[i * len..][..len];
        if accumulate {
            for (d, s) in dst.iter_mut().zip(src) {
                *d += s;
            }
        } else {
            dst.copy_from_slice(src);
        }
    }
}

/// How a `mul`'s two inputs meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MulShape {
    /// Equal shapes: elementwise.
    Equal,
    /// Input `gate` (0 or 1) is `[C, 1, 1]`, the other `[C, area]`.
    Gate { gate: usize, channels: usize, area: usize },
}

/// `y = act(a * b)` for `n` samples of `len` values (the full side's length).
#[inline(always)]
pub fn mul_forward(s: MulShape, a: &[f32], b: &[f32], y: &mut [f32], act: Activation, n: usize, len: usize) {
    match s {
        MulShape::Equal => {
            for ((y, &a), &b) in y[..n * len].iter_mut().zip(a).zip(b) {
                *y = a * b;
            }
        }
        MulShape::Gate { gate, channels, area } => {
            let (g, x) = if gate == 0 { (a, b) } else { (b, a) };
            for i in 0..n {
                for c in 0..channels {
                    let gv = g[i * channels + c];
                    let at = (i * channels + c) * area;
                    for (y, &x) in y[at..at + area].iter_mut().zip(&x[at..at + area]) {
                        *y = x * gv;
                    }
                }
            }
        }
    }
    if act != Activation::Identity {
        act.forward(&mut y[..n * len]);
    }
}

/// The gradient for input `k` of `y = a * b` (`dy` after the activation's
/// derivative): `dy · other`, summed over the positions for a gate. Written into
/// `dx`, or added when `accumulate`.
#[inline(always)]
pub fn mul_backward(
    s: MulShape,
    k: usize,
    dy: &[f32],
    other: &[f32],
    dx: &mut [f32],
    n: usize,
    len: usize,
    accumulate: bool,
) {
    let put = |d: &mut f32, v: f32| {
        if accumulate {
            *d += v
        } else {
            *d = v
        }
    };
    match s {
        MulShape::Equal => {
            for ((d, &g), &o) in dx[..n * len].iter_mut().zip(dy).zip(other) {
                put(d, g * o);
            }
        }
        // The gate's gradient: per channel, the sum of dy · x over its positions.
        MulShape::Gate { gate, channels, area } if gate == k => {
            for i in 0..n {
                for c in 0..channels {
                    let at = (i * channels + c) * area;
                    let total: f32 = dy[at..at + area]
                        .iter()
                        .zip(&other[at..at + area])
                        .map(|(g, x)| g * x)
                        .sum();
                    put(&mut dx[i * channels + c], total);
                }
            }
        }
        // The full side's gradient: dy times its channel's gate value.
        MulShape::Gate { channels, area, .. } => {
            for i in 0..n {
                for c in 0..channels {
                    let gv = other[i * channels + c];
                    let at = (i * channels + c) * area;
                    for (d, &g) in dx[at..at + area].iter_mut().zip(&dy[at..at + area]) {
                        put(d, g * gv);
                    }
                }
            }
        }
    }
}
