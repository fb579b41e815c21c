//! The losses, PyTorch's semantics. Each returns the loss and its gradient with respect
//! to what it is given: the logits for the two fused losses, the output for mse.

use super::real::Real;
use crate::activation::sigmoid;
use ndarray::{Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewD, Zip};

/// Softmax fused with cross-entropy, from the logits `z` `[N, K]` (one row per
/// sample, or per position of a label map), with label `smoothing` s (the target
/// `t = (1 - s) onehot + s/K`, PyTorch's `label_smoothing`):
/// `loss = -1/M sum_n sum_j t[n, j] log_softmax(z[n])[j]`, `dz = (softmax(z) - t) / M`,
/// where rows labelled `ignore` count neither in the sum nor in M (their `dz` is 0),
/// as PyTorch's `ignore_index`. With every row ignored the loss is 0 (PyTorch's is NaN).
/// The log-softmax `z - m - ln(sum_j e^(z_j - m))` (`m` the row's maximum) stays finite
/// for any finite logits. Other labels must be below K (checked by the caller).
pub fn cross_entropy<T: Real>(
    z: ArrayView2<T>,
    labels: ArrayView1<usize>,
    smoothing: f64,
    ignore: Option<usize>,
) -> (T, Array2<T>) {
    let (n, k) = z.dim();
    let (keep, spread) = (T::from_f64(1.0 - smoothing), T::from_f64(smoothing / k as f64));
    let counted = labels.iter().filter(|&&l| Some(l) != ignore).count();
    let mut dz = Array2::from_elem((n, k), T::ZERO);
    if counted == 0 {
        return (T::ZERO, dz);
    }
    let batch = T::from_usize(counted);
    let mut loss = T::ZERO;
    for s in 0..n {
        if Some(labels[s]) == ignore {
            continue;
        }
        let mut m = T::NEG_INFINITY;
        for j in 0..k {
            m = m.max(z[[s, j]]);
        }
        let mut sum = T::ZERO;
        for j in 0..k {
            sum += (z[[s, j]] - m).exp();
        }
        let log_sum = sum.ln();
        for j in 0..k {
            let log_p = z[[s, j]] - m - log_sum;
            let target = if j == labels[s] { keep + spread } else { spread };
            loss -= target * log_p;
            dz[[s, j]] = (log_p.exp() - target) / batch;
        }
    }
    (loss / batch, dz)
}

/// Sigmoid fused with binary cross-entropy, from the logits `z` (any shape) and the
/// targets `t` of the same shape, mean over all elements:
/// `-(t ln p + (1-t) ln(1-p)) = softplus(z) - t z` with `p = sigmoid(z)` and
/// `softplus(z) = max(z, 0) + ln(1 + e^-|z|)`; `dz = (p - t) / numel`.
pub fn binary_cross_entropy<T: Real>(z: ArrayViewD<T>, t: ArrayViewD<T>) -> (T, ArrayD<T>) {
    let count = T::from_usize(z.len());
    let mut loss = T::ZERO;
    let mut dz = ArrayD::from_elem(z.raw_dim(), T::ZERO);
    Zip::from(&mut dz).and(&z).and(&t).for_each(|dz, &z, &t| {
        let softplus = z.max(T::ZERO) + (-z.abs()).exp().ln_1p();
        loss += softplus - t * z;
        *dz = (sigmoid(z) - t) / count;
    });
    (loss / count, dz)
}

/// Mean squared error over all elements: `loss = 1/numel sum (y - t)^2`,
/// `dy = 2 (y - t) / numel`.
pub fn mse<T: Real>(y: ArrayViewD<T>, t: ArrayViewD<T>) -> (T, ArrayD<T>) {
    let count = T::from_usize(y.len());
    let two = T::from_f64(2.0);
    let mut loss = T::ZERO;
    let mut dy = ArrayD::from_elem(y.raw_dim(), T::ZERO);
    Zip::from(&mut dy).and(&y).and(&t).for_each(|dy, &y, &t| {
        let d = y - t;
        loss += d * d;
        *dy = two * d / count;
    });
    (loss / count, dy)
}
