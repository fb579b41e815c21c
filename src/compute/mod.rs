//! The compute kernels that generated models call.
//!
//! Each kernel is `#[inline(always)]` and takes its shape as a plain struct. The
//! code generator wraps every distinct layer shape in one `#[inline(never)]`
//! function that passes a `const` shape, so after inlining every loop bound is a
//! constant: kernel windows unroll and the inner loops, which run over contiguous
//! rows, vectorize. Identical layers share one wrapper.
//!
//! Layout: NCHW, batch first; parameters in PyTorch layout.

// Kernels take buffers and sizes as separate arguments on purpose: bundling them
// would hide which slices are read and which written.
#![allow(clippy::too_many_arguments)]

pub mod act;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod gemm;
pub mod isa;
pub mod join;
pub mod layers;
pub mod loss;
pub mod norm;
pub mod optim;
pub mod peak;
pub mod pool;
mod simd;
pub mod transpose;
pub mod upsample;

pub use act::Activation;
pub use conv::ConvShape;
pub use isa::Isa;
pub use pool::PoolShape;

/// A row-major matrix (or the transpose of one) as [`gemm::sgemm`] reads it.
#[derive(Clone, Copy)]
pub struct Operand<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl<'a> Operand<'a> {
    /// `data` as a row-major matrix of `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Operand { data, rs: cols, cs: 1 }
    }
    /// The transpose of `data` read as a row-major matrix of `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Operand { data, rs: 1, cs: cols }
    }
}

/// `C = A·B`, or `C += A·B` when `accumulate`: A is `m x k`, B `k x n`, C row-major
/// with row stride `ldc`; `work` holds [`gemm::workspace_len`]`(m, n, k)` floats.
///
/// # Panics
/// When a slice is shorter than its shape needs. Generated models pass constant
/// shapes and buffers sized from the same constants in `new()`, so this would be
/// a bug in cnnc, never something user input can reach; `sgemm` checks every
/// length before it writes anything.
#[inline(always)]
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: Operand,
    b: Operand,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    work: &mut [f32],
) {
    let beta = if accumulate { 1.0 } else { 0.0 };
    if let Err(e) = gemm::sgemm(
        m, n, k, 1.0, a.data, a.rs, a.cs, b.data, b.rs, b.cs, beta, c, ldc, 1, work,
    ) {
        panic!("cnnc bug: a generated buffer does not fit its constant shape: {e}");
    }
}

/// `sum(a[i] * b[i])` with eight independent accumulators, so the reduction
/// vectorizes without reassociating floats behind the compiler's back.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let chunks = n / 8;
    for i in 0..chunks {
        let (x, y) = (&a[i * 8..i * 8 + 8], &b[i * 8..i * 8 + 8]);
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0.0;
    for i in chunks * 8..n {
        tail += a[i] * b[i];
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `y[i] += alpha * x[i]`.
#[inline(always)]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

/// The sum of a slice, with eight accumulators.
#[inline(always)]
pub fn sum(a: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = a.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for l in 0..8 {
            acc[l] += c[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_sum_match_naive() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.1).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
        assert!((sum(&a) - a.iter().sum::<f32>()).abs() < 1e-3);
    }
}
