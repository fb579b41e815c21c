//! Fully connected: `y[n,o] = b[o] + sum_i w[o,i] * x[n,i]`, weight `[OUT, IN]`;
//! without a bias, `b` is 0.

use super::real::Real;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

pub fn forward<T: Real>(x: ArrayView2<T>, w: ArrayView2<T>, b: Option<ArrayView1<T>>) -> Array2<T> {
    let (n, inputs) = x.dim();
    let outputs = w.nrows();
    let mut y = Array2::from_elem((n, outputs), T::ZERO);
    for s in 0..n {
        for o in 0..outputs {
            let mut acc = b.as_ref().map_or(T::ZERO, |b| b[o]);
            for i in 0..inputs {
                acc += w[[o, i]] * x[[s, i]];
            }
            y[[s, o]] = acc;
        }
    }
    y
}

/// The gradients of a dense layer (`db` is the bias's, whether the layer has one or not).
pub struct Grads<T> {
    pub dx: Array2<T>,
    pub dw: Array2<T>,
    pub db: Array1<T>,
}

/// `db[o] = sum_n dy[n,o]`, `dw[o,i] = sum_n dy[n,o] * x[n,i]`, `dx[n,i] = sum_o dy[n,o] * w[o,i]`.
pub fn backward<T: Real>(x: ArrayView2<T>, w: ArrayView2<T>, dy: ArrayView2<T>) -> Grads<T> {
    let (n, inputs) = x.dim();
    let outputs = w.nrows();
    let mut dx = Array2::from_elem((n, inputs), T::ZERO);
    let mut dw = Array2::from_elem((outputs, inputs), T::ZERO);
    let mut db = Array1::from_elem(outputs, T::ZERO);
    for s in 0..n {
        for o in 0..outputs {
            let g = dy[[s, o]];
            db[o] += g;
            for i in 0..inputs {
                dw[[o, i]] += g * x[[s, i]];
                dx[[s, i]] += g * w[[o, i]];
            }
        }
    }
    Grads { dx, dw, db }
}
