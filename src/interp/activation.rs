//! Activations and dropout. The elementwise ones work on any shape; softmax works on
//! `[N, K]`, over each sample's K features. Each backward takes the layer's input `x`
//! and output `y` (whichever its derivative reads more simply) and `dy`.

use super::real::Real;
use crate::ir::Activation;
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Zip};

/// An elementwise activation of one value.
fn apply<T: Real>(act: Activation, x: T) -> T {
    match act {
        Activation::Relu => {
            if x > T::ZERO {
                x
            } else {
                T::ZERO
            }
        }
        Activation::LeakyRelu(a) => {
            if x > T::ZERO {
                x
            } else {
                T::from_f64(a as f64) * x
            }
        }
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => x.tanh(),
        Activation::Identity => x,
        Activation::Silu => x * sigmoid(x),
        Activation::Gelu => x * normal_cdf(x),
        Activation::Relu6 => clamp(x, T::ZERO, T::from_f64(6.0)),
        Activation::Hardswish => x * clamp(x + T::from_f64(3.0), T::ZERO, T::from_f64(6.0)) / T::from_f64(6.0),
        Activation::Hardsigmoid => clamp(x + T::from_f64(3.0), T::ZERO, T::from_f64(6.0)) / T::from_f64(6.0),
    }
}

fn clamp<T: Real>(x: T, lo: T, hi: T) -> T {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// The derivative `dy/dx` at input `x` with output `y`.
fn derivative<T: Real>(act: Activation, x: T, y: T) -> T {
    match act {
        Activation::Relu => {
            if x > T::ZERO {
                T::ONE
            } else {
                T::ZERO
            }
        }
        Activation::LeakyRelu(a) => {
            if x > T::ZERO {
                T::ONE
            } else {
                T::from_f64(a as f64)
            }
        }
        Activation::Sigmoid => y * (T::ONE - y),
        Activation::Tanh => T::ONE - y * y,
        Activation::Identity => T::ONE,
        Activation::Silu => {
            let s = sigmoid(x);
            s * (T::ONE + x * (T::ONE - s))
        }
        // d/dx x·Φ(x) = Φ(x) + x·φ(x).
        Activation::Gelu => {
            let pdf = (-(x * x) / T::from_f64(2.0)).exp() / T::from_f64((2.0 * std::f64::consts::PI).sqrt());
            normal_cdf(x) + x * pdf
        }
        // PyTorch's: 0 at the kinks of relu6 and hardsigmoid; hardswish's middle
        // piece includes its ends.
        Activation::Relu6 => {
            if x > T::ZERO && x < T::from_f64(6.0) {
                T::ONE
            } else {
                T::ZERO
            }
        }
        Activation::Hardsigmoid => {
            if x > T::from_f64(-3.0) && x < T::from_f64(3.0) {
                T::ONE / T::from_f64(6.0)
            } else {
                T::ZERO
            }
        }
        Activation::Hardswish => {
            if x < T::from_f64(-3.0) {
                T::ZERO
            } else if x <= T::from_f64(3.0) {
                x / T::from_f64(3.0) + T::from_f64(0.5)
            } else {
                T::ONE
            }
        }
    }
}

/// Φ(x), the standard normal CDF, through erf.
fn normal_cdf<T: Real>(x: T) -> T {
    T::from_f64(0.5) * (T::ONE + (x / T::from_f64(std::f64::consts::SQRT_2)).erf())
}

/// `1 / (1 + e^-x)`, computed without overflow for large |x|.
pub fn sigmoid<T: Real>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

/// relu, leaky_relu, sigmoid, tanh.
pub fn elementwise_forward<T: Real>(act: Activation, x: ArrayViewD<T>) -> ArrayD<T> {
    x.mapv(|v| apply(act, v))
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
        .for_each(|dx, &x, &y, &g| *dx = g * derivative(act, x, y));
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
