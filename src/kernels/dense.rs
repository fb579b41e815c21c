//! Fully connected layers: `y = W x + b`, W in PyTorch layout `[out, in]`.

use super::{axpy, dot, Act};

/// Forward for `n` samples, with the activation fused.
#[inline(always)]
pub fn forward(inputs: usize, outputs: usize, act: Act, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32], n: usize) {
    let w = &w[..inputs * outputs];
    for s in 0..n {
        let x = &x[s * inputs..][..inputs];
        let y = &mut y[s * outputs..][..outputs];
        for (o, y) in y.iter_mut().enumerate() {
            *y = act.apply(b[o] + dot(&w[o * inputs..][..inputs], x));
        }
    }
}

/// Backward for `n` samples: `dy` is the gradient of the layer's input to the
/// activation (already multiplied by f'); adds to `dw`, `db`, and writes `dx`
/// when given.
#[inline(always)]
pub fn backward(
    inputs: usize,
    outputs: usize,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
    mut dx: Option<&mut [f32]>,
    n: usize,
) {
    let w = &w[..inputs * outputs];
    let dw = &mut dw[..inputs * outputs];
    for s in 0..n {
        let x = &x[s * inputs..][..inputs];
        let dy = &dy[s * outputs..][..outputs];
        for (o, &g) in dy.iter().enumerate() {
            db[o] += g;
            axpy(g, x, &mut dw[o * inputs..][..inputs]);
        }
        if let Some(dx) = dx.as_deref_mut() {
            let dx = &mut dx[s * inputs..][..inputs];
            dx.fill(0.0);
            for (o, &g) in dy.iter().enumerate() {
                axpy(g, &w[o * inputs..][..inputs], dx);
            }
        }
    }
}
