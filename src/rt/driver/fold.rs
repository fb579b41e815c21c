//! Inference's folded weights: each batchnorm that directly follows a
//! convolution, folded into it (`codegen::infer` decides which), computed from
//! the parameters and running statistics when either changed since the last
//! prediction.

use crate::compute;

/// A batchnorm folded into the convolution before it: where its inputs are in
/// the parameters and buffers, and where the folded weight and bias go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fold {
    /// Offsets in the parameters of the convolution's weight (`weight_len`
    /// values, `filters` rows) and bias.
    pub weight: usize,
    pub weight_len: usize,
    pub filters: usize,
    pub bias: Option<usize>,
    /// The batchnorm, an index into `Spec::batchnorms`, and the offsets of its γ and β.
    pub batchnorm: usize,
    pub gamma: Option<usize>,
    pub beta: Option<usize>,
    /// Where the folded weight starts in the folded buffer; the bias follows it.
    pub offset: usize,
}

/// Fills `out` with every fold's weight `w·s` and bias `(b - mean)·s + β`, where
/// `s = γ/√(running_var + ε)` per filter.
pub(super) fn fold_all(spec: &super::Spec, params: &[f32], running: &[f32], out: &mut [f32]) {
    for fold in spec.folds {
        let bn = &spec.batchnorms[fold.batchnorm];
        let c = bn.channels;
        let mut stats = [0.0f32; 2];
        let (w, per) = (
            &params[fold.weight..][..fold.weight_len],
            fold.weight_len / fold.filters,
        );
        let (wf, bf) = out[fold.offset..][..fold.weight_len + fold.filters].split_at_mut(fold.weight_len);
        for f in 0..fold.filters {
            let (mean, var) = (running[bn.buffer + f], running[bn.buffer + c + f]);
            compute::norm::bn_inference_stats(&[mean, var], 1, bn.eps, &mut stats);
            let gamma = fold.gamma.map_or(1.0, |g| params[g + f]);
            let beta = fold.beta.map_or(0.0, |b| params[b + f]);
            let scale = gamma * stats[1];
            for (o, &v) in wf[f * per..][..per].iter_mut().zip(&w[f * per..][..per]) {
                *o = v * scale;
            }
            let bias = fold.bias.map_or(0.0, |b| params[b + f]);
            bf[f] = (bias - mean) * scale + beta;
        }
    }
}
