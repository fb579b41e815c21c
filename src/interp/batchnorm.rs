//! Batch normalization over `[N, C, S]`: C channels, S positions per channel (`H*W`
//! for `BatchNorm2d` on `[N, C, H, W]`, 1 for `BatchNorm1d` on `[N, C]`). The caller
//! views its tensor as `[N, C, S]`; each channel's statistics run over its `m = N*S`
//! values.
//!
//! - Training: `mean = 1/m sum x`, `var = 1/m sum (x - mean)^2` (biased),
//!   `xhat = (x - mean) / sqrt(var + eps)`, `y = gamma xhat + beta`.
//! - Inference: the same with the running mean and variance in place of the batch's.
//! - Running statistics after a training step:
//!   `running = (1 - momentum) running + momentum batch`, with the unbiased variance
//!   `var * m / (m - 1)` for `running_var`.

use super::real::Real;
use ndarray::{Array1, Array3, ArrayView1, ArrayView3, ArrayViewMut1};

/// What a training-mode forward pass keeps: the batch statistics (for the running
/// update) and `xhat`, `1/sqrt(var + eps)` (for the backward pass).
#[derive(Debug, Clone)]
pub struct Stats<T> {
    /// Per channel, the batch mean.
    pub mean: Array1<T>,
    /// Per channel, the biased batch variance.
    pub var: Array1<T>,
    /// The values per channel, `m = N*S`.
    pub count: usize,
    xhat: Array3<T>,
    inv_std: Array1<T>,
}

/// Training mode: normalizes with the batch's own statistics. Needs `N*S >= 2`
/// (checked by the caller).
pub fn forward_train<T: Real>(
    x: ArrayView3<T>,
    gamma: ArrayView1<T>,
    beta: ArrayView1<T>,
    eps: f64,
) -> (Array3<T>, Stats<T>) {
    let (n, c, s) = x.dim();
    let count = n * s;
    let m = T::from_usize(count);
    let mut mean = Array1::from_elem(c, T::ZERO);
    let mut var = Array1::from_elem(c, T::ZERO);
    let mut inv_std = Array1::from_elem(c, T::ZERO);
    let mut xhat = Array3::from_elem((n, c, s), T::ZERO);
    let mut y = Array3::from_elem((n, c, s), T::ZERO);
    for ch in 0..c {
        // Two passes: the mean, then the mean squared deviation from it.
        let mut sum = T::ZERO;
        for b in 0..n {
            for p in 0..s {
                sum += x[[b, ch, p]];
            }
        }
        mean[ch] = sum / m;
        let mut squares = T::ZERO;
        for b in 0..n {
            for p in 0..s {
                let d = x[[b, ch, p]] - mean[ch];
                squares += d * d;
            }
        }
        var[ch] = squares / m;
        inv_std[ch] = T::ONE / (var[ch] + T::from_f64(eps)).sqrt();
        for b in 0..n {
            for p in 0..s {
                xhat[[b, ch, p]] = (x[[b, ch, p]] - mean[ch]) * inv_std[ch];
                y[[b, ch, p]] = gamma[ch] * xhat[[b, ch, p]] + beta[ch];
            }
        }
    }
    let stats = Stats {
        mean,
        var,
        count,
        xhat,
        inv_std,
    };
    (y, stats)
}

/// Inference mode: normalizes with the running statistics.
pub fn forward_infer<T: Real>(
    x: ArrayView3<T>,
    gamma: ArrayView1<T>,
    beta: ArrayView1<T>,
    running_mean: ArrayView1<T>,
    running_var: ArrayView1<T>,
    eps: f64,
) -> Array3<T> {
    let (n, c, s) = x.dim();
    let mut y = Array3::from_elem((n, c, s), T::ZERO);
    for ch in 0..c {
        let inv_std = T::ONE / (running_var[ch] + T::from_f64(eps)).sqrt();
        for b in 0..n {
            for p in 0..s {
                y[[b, ch, p]] = gamma[ch] * (x[[b, ch, p]] - running_mean[ch]) * inv_std + beta[ch];
            }
        }
    }
    y
}

/// The gradients of a training-mode batchnorm.
pub struct Grads<T> {
    pub dx: Array3<T>,
    pub dgamma: Array1<T>,
    pub dbeta: Array1<T>,
}

/// Backward through the batch statistics (the mean and variance depend on every `x`):
/// `dbeta = sum dy`, `dgamma = sum dy xhat`, and with `g = gamma dy`,
/// `dx = inv_std / m * (m g - sum g - xhat sum (g xhat))`, sums over the channel's
/// `m` values.
pub fn backward<T: Real>(stats: &Stats<T>, gamma: ArrayView1<T>, dy: ArrayView3<T>) -> Grads<T> {
    let (n, c, s) = dy.dim();
    let m = T::from_usize(stats.count);
    let xhat = &stats.xhat;
    let mut dx = Array3::from_elem((n, c, s), T::ZERO);
    let mut dgamma = Array1::from_elem(c, T::ZERO);
    let mut dbeta = Array1::from_elem(c, T::ZERO);
    for ch in 0..c {
        let mut sum_g = T::ZERO;
        let mut sum_g_xhat = T::ZERO;
        for b in 0..n {
            for p in 0..s {
                dbeta[ch] += dy[[b, ch, p]];
                dgamma[ch] += dy[[b, ch, p]] * xhat[[b, ch, p]];
                let g = gamma[ch] * dy[[b, ch, p]];
                sum_g += g;
                sum_g_xhat += g * xhat[[b, ch, p]];
            }
        }
        for b in 0..n {
            for p in 0..s {
                let g = gamma[ch] * dy[[b, ch, p]];
                dx[[b, ch, p]] = stats.inv_std[ch] / m * (m * g - sum_g - xhat[[b, ch, p]] * sum_g_xhat);
            }
        }
    }
    Grads { dx, dgamma, dbeta }
}

/// Moves the running statistics toward this batch's:
/// `running = (1 - momentum) running + momentum batch`, unbiased variance.
pub fn update_running<T: Real>(
    mut running_mean: ArrayViewMut1<T>,
    mut running_var: ArrayViewMut1<T>,
    stats: &Stats<T>,
    momentum: f64,
) {
    let momentum = T::from_f64(momentum);
    let keep = T::ONE - momentum;
    let m = stats.count as f64;
    // m >= 2 in training (checked before the forward pass), so this is finite.
    let unbiased = T::from_f64(m / (m - 1.0));
    for ch in 0..stats.mean.len() {
        running_mean[ch] = keep * running_mean[ch] + momentum * stats.mean[ch];
        running_var[ch] = keep * running_var[ch] + momentum * stats.var[ch] * unbiased;
    }
}
