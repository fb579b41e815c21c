//! Transposed convolution (v3 `convtranspose`): the data gradient of a convolution,
//! which [`super::conv`] already computes fast.
//!
//! A transposed convolution from `C` to `F` channels is the input gradient of the
//! convolution [`TransposeShape::conv`] from `F` channels (at the transposed
//! convolution's output size) to `C` channels (at its input size), whose weight
//! `[C, F/G, KH, KW]` is the transposed convolution's own, as in PyTorch. So:
//! - forward: `dcol = W_gᵀ · X_g` per sample and group, folded onto the output
//!   (col2im), then bias and activation;
//! - input gradient: that convolution's forward pass on `dY` (every conv path:
//!   blocked, winograd, depthwise, unfolded);
//! - weight gradient: that convolution's weight gradient with the roles of input
//!   and output gradient swapped (`x = dY`, `dy = X`);
//! - bias gradient: the sum of `dY` over each output channel.

use super::conv::{self, col2im, ConvShape};
use super::gemm::workspace_len;
use super::{matmul, sum, Activation, Operand};

/// A transposed convolution's sizes, as the convolution it transposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransposeShape {
    /// The convolution from the transposed convolution's output to its input.
    pub conv: ConvShape,
}

impl TransposeShape {
    /// Input channels, height, width (the convolution's output).
    pub const fn input_len(&self) -> usize {
        self.conv.output_len()
    }

    /// Output values per sample (the convolution's input).
    pub const fn output_len(&self) -> usize {
        self.conv.input_len()
    }

    /// The scratch [`forward`] and [`backward`] need.
    pub fn scratch_len(&self) -> usize {
        let s = &self.conv;
        let (k, p, fg) = (s.depth(), s.positions(), s.fg());
        (k * p + workspace_len(k, p, fg)).max(s.scratch_len())
    }
}

/// `y = act(convtranspose(x, w) + b)` for `n` samples.
#[inline(always)]
pub fn forward(
    t: &TransposeShape,
    act: Activation,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    n: usize,
    scratch: &mut [f32],
) {
    let s = &t.conv;
    let (il, ol) = (t.input_len(), t.output_len());
    let (k, p, fg) = (s.depth(), s.positions(), s.fg());
    let (gx, gy) = (fg * p, s.cg() * s.h * s.w);
    let (dcol, work) = scratch.split_at_mut(k * p);
    for i in 0..n {
        let ys = &mut y[i * ol..][..ol];
        for g in 0..s.g {
            let xg = &x[i * il + g * gx..][..gx];
            let yg = &mut ys[g * gy..][..gy];
            let wg = Operand::transposed(&w[g * fg * k..][..fg * k], k);
            if s.pointwise() {
                matmul(k, p, fg, wg, Operand::rows(xg, p), yg, p, false, work);
            } else {
                matmul(k, p, fg, wg, Operand::rows(xg, p), dcol, p, false, work);
                yg.fill(0.0);
                col2im(s, dcol, yg);
            }
        }
        conv::bias_and_activation(ys, s.h * s.w, b, act);
    }
}

/// Backward for `n` samples; `dy` is taken after the activation's derivative.
/// Adds to `dw` and `db`; overwrites `dx` when given.
#[inline(always)]
pub fn backward(
    t: &TransposeShape,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
    n: usize,
    scratch: &mut [f32],
) {
    let s = &t.conv;
    if let Some(db) = db {
        let area = s.h * s.w;
        for sample in dy[..n * t.output_len()].chunks_exact(t.output_len()) {
            for (d, row) in db.iter_mut().zip(sample.chunks_exact(area)) {
                *d += sum(row);
            }
        }
    }
    // Generated code calls this through `conv_transpose_backward_dyn` too: the
    // sizes are values here, never constants the compiler sees.
    conv::backward(s, conv::Sizes::RunTime, dy, w, x, dw, None, None, n, scratch);
    if let Some(dx) = dx {
        conv::forward(
            s,
            conv::Sizes::RunTime,
            Activation::Identity.into(),
            dy,
            w,
            None,
            dx,
            n,
            scratch,
        );
    }
}
