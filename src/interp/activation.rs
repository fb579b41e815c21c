//! Activations and dropout. The elementwise ones work on any shape; softmax works on
//! `[N, K]`, over each sample's K features. Each backward takes the layer's input `x`
//! and output `y` (whichever its derivative reads more simply) and `dy`.

use super::real::Real;
use crate::ir::Activation;
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Zip};

/// Every elementwise activation, through its one definition ([`crate::activation`]).
pub fn elementwise_forward<T: Real>(act: Activation, x: ArrayViewD<T>) -> ArrayD<T> {
    x.mapv(|v| act.value(v))
}

/// `dx = dy * f'(x)`.
pub fn elementwise_backward<T: Real>(
    act: Activation,
    x: ArrayViewD<T>,
    y: ArrayViewD<T>,
    dy: ArrayViewD<T>,
) -> ArrayD<T> {
    let mut dx = ArrayD::from_elem(dy.raw_dim(), T::ZERO);
    Zip::from(&mut dx)
        .and(&x)
        .and(&y)
        .and(&dy)
        .for_each(|dx, &x, &y, &g| *dx = g * act.derivative(x, y));
    dx
}

/// `y[n,k] = e^(x[n,k] - m) / sum_j e^(x[n,j] - m)`, `m` the row's maximum.
pub fn softmax_forward<T: Real>(x: ArrayView2<T>) -> Array2<T> {
    let (n, k) = x.dim();
    let mut y = Array2::from_elem((n, k), T::ZERO);
    for s in 0..n {
        let mut m = T::NEG_INFINITY;
        for j in 0..k {
            m = m.max(x[[s, j]]);
        }
        let mut sum = T::ZERO;
        for j in 0..k {
            y[[s, j]] = (x[[s, j]] - m).exp();
            sum += y[[s, j]];
        }
        for j in 0..k {
            y[[s, j]] /= sum;
        }
    }
    y
}

/// `dx[n,i] = y[n,i] * (dy[n,i] - sum_j dy[n,j] * y[n,j])`.
pub fn softmax_backward<T: Real>(y: ArrayView2<T>, dy: ArrayView2<T>) -> Array2<T> {
    let (n, k) = y.dim();
    let mut dx = Array2::from_elem((n, k), T::ZERO);
    for s in 0..n {
        let mut dot = T::ZERO;
        for j in 0..k {
            dot += dy[[s, j]] * y[[s, j]];
        }
        for i in 0..k {
            dx[[s, i]] = y[[s, i]] * (dy[[s, i]] - dot);
        }
    }
    dx
}

/// Inverted dropout's mask: each value is kept with probability `1 - p` and then
/// scaled by `1 / (1 - p)`, else 0. `uniform` yields draws in [0, 1).
pub fn dropout_mask<T: Real>(p: f32, shape: &[usize], mut uniform: impl FnMut() -> f64) -> ArrayD<T> {
    let keep = 1.0 - p as f64;
    ArrayD::from_shape_simple_fn(shape, || {
        if uniform() < keep {
            T::from_f64(1.0 / keep)
        } else {
            T::ZERO
        }
    })
}

/// `y = x * mask`, and backward `dx = dy * mask`.
pub fn dropout_apply<T: Real>(x: ArrayViewD<T>, mask: ArrayViewD<T>) -> ArrayD<T> {
    let mut y = ArrayD::from_elem(x.raw_dim(), T::ZERO);
    Zip::from(&mut y).and(&x).and(&mask).for_each(|y, &x, &m| *y = x * m);
    y
}
