//! Fully connected layers, `y = W x + b` with W in PyTorch layout `[out, in]`, as
//! matrix products over the samples: `Y = X · Wᵀ`, `dW += dYᵀ · X`, `dX = dY · W`.

use super::gemm::workspace_len;
use super::Act;
use super::{matmul, Operand};

/// Below this many samples a forward pass uses dot products instead of a matrix product.
const FEW: usize = 4;

/// The scratch a worker of `samples` samples needs for this layer.
pub const fn scratch_len(inputs: usize, outputs: usize, samples: usize) -> usize {
    let a = workspace_len(samples, outputs, inputs);
    let b = workspace_len(outputs, inputs, samples);
    let c = workspace_len(samples, inputs, outputs);
    let most = if a > b { a } else { b };
    if most > c {
        most
    } else {
        c
    }
}

/// Forward for `n` samples, with bias and activation fused.
#[inline(always)]
pub fn forward(
    inputs: usize,
    outputs: usize,
    act: Act,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
    n: usize,
    scratch: &mut [f32],
) {
    if n < FEW {
        // Packing W would cost more than the arithmetic: one dot product per output.
        for (xs, ys) in x.chunks_exact(inputs).zip(y.chunks_exact_mut(outputs)).take(n) {
            for (o, y) in ys.iter_mut().enumerate() {
                *y = act.apply(b[o] + super::dot(&w[o * inputs..][..inputs], xs));
            }
        }
        return;
    }
    matmul(
        n,
        outputs,
        inputs,
        Operand::rows(x, inputs),
        Operand::transposed(w, inputs),
        y,
        outputs,
        false,
        scratch,
    );
    for row in y[..n * outputs].chunks_exact_mut(outputs) {
        for (v, bias) in row.iter_mut().zip(b) {
            *v = act.apply(*v + bias);
        }
    }
}

/// Backward for `n` samples: `dy` is the gradient before the activation (already
/// multiplied by f'); adds to `dw`, `db`, and writes `dx` when given.
#[inline(always)]
pub fn backward(
    inputs: usize,
    outputs: usize,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
    dx: Option<&mut [f32]>,
    n: usize,
    scratch: &mut [f32],
) {
    for row in dy[..n * outputs].chunks_exact(outputs) {
        for (d, g) in db.iter_mut().zip(row) {
            *d += g;
        }
    }
    matmul(
        outputs,
        inputs,
        n,
        Operand::transposed(dy, outputs),
        Operand::rows(x, inputs),
        dw,
        inputs,
        true,
        scratch,
    );
    if let Some(dx) = dx {
        matmul(
            n,
            inputs,
            outputs,
            Operand::rows(dy, outputs),
            Operand::rows(w, inputs),
            dx,
            inputs,
            false,
            scratch,
        );
    }
}
