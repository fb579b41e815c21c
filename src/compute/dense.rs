//! Fully connected layers, `y = W x + b` with W in PyTorch layout `[out, in]`, as
//! matrix products over the samples: `Y = X · Wᵀ`, `dW += dYᵀ · X`, `dX = dY · W`.

use super::gemm::workspace_len;
use super::Activation;
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

/// `y = W x` for one sample. Four rows of W at a time, in 16 lanes, so each load
/// of `x` feeds four multiply-adds and W streams through once.
#[inline(always)]
fn gemv(inputs: usize, w: &[f32], x: &[f32], y: &mut [f32]) {
    const LANES: usize = 16;
    let (xv, x_tail) = x[..inputs].as_chunks::<LANES>();
    let full = y.len() / 4 * 4;
    let mut blocks = w.chunks_exact(4 * inputs);
    let mut outputs = y.chunks_exact_mut(4);
    for (out, block) in (&mut outputs).zip(&mut blocks) {
        let rows: [(&[[f32; LANES]], &[f32]); 4] =
            std::array::from_fn(|r| block[r * inputs..(r + 1) * inputs].as_chunks::<LANES>());
        let mut acc = [[0.0f32; LANES]; 4];
        for (c, xv) in xv.iter().enumerate() {
            for (acc, (row, _)) in acc.iter_mut().zip(&rows) {
                let wv = &row[c];
                for l in 0..LANES {
                    acc[l] += wv[l] * xv[l];
                }
            }
        }
        for ((y, acc), (_, row_tail)) in out.iter_mut().zip(acc).zip(&rows) {
            *y = acc.iter().sum::<f32>() + super::dot(row_tail, x_tail);
        }
    }
    let rest = &w[full * inputs..];
    for (y, row) in outputs.into_remainder().iter_mut().zip(rest.chunks_exact(inputs)) {
        *y = super::dot(row, &x[..inputs]);
    }
}

/// Forward for `n` samples, with bias and activation fused.
#[inline(always)]
pub fn forward(
    inputs: usize,
    outputs: usize,
    act: Activation,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    n: usize,
    scratch: &mut [f32],
) {
    if n < FEW {
        // Packing W would cost more than the arithmetic: one dot product per output.
        for (xs, ys) in x.chunks_exact(inputs).zip(y.chunks_exact_mut(outputs)).take(n) {
            gemv(inputs, w, xs, ys);
            bias_act(ys, b, act);
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
        bias_act(row, b, act);
    }
}

/// `y = act(y + b)` over one sample's outputs (no bias with `bias off`).
#[inline(always)]
fn bias_act(y: &mut [f32], b: Option<&[f32]>, act: Activation) {
    match b {
        Some(b) => act.with_biases(y, b),
        None => act.forward(y),
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
    db: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
    n: usize,
    scratch: &mut [f32],
) {
    if let Some(db) = db {
        for row in dy[..n * outputs].chunks_exact(outputs) {
            for (d, g) in db.iter_mut().zip(row) {
                *d += g;
            }
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
