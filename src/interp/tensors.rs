//! The tensor helpers of the network's passes: a layer's tensors viewed at the
//! dimensionality its kernels take (with an error naming the layer when the IR
//! is inconsistent), the per-position layout of softmax and cross-entropy,
//! reshapes, and the store of a parameter gradient.

use super::real::Real;
use crate::ir::{self, Shape};
use crate::rt::Error;
use ndarray::{Array3, ArrayD, ArrayView2, ArrayView4, ArrayViewD, ArrayViewMut1, Ix1, Ix2, Ix4, IxDyn};

/// Stores a parameter gradient (each parameter is used once, so it is set, not added).
pub(super) fn store<T>(grads: &mut [ArrayD<T>], k: usize, value: ArrayD<T>, layer: &ir::Layer) -> Result<(), Error> {
    let slot = grads
        .get_mut(k)
        .ok_or_else(|| internal(layer, "has no parameter slot"))?;
    *slot = value;
    Ok(())
}

/// Stores a conv, dense or transposed conv layer's weight gradient `dw` at
/// parameter `k` and, when it has a bias, the bias gradient `db` after it.
pub(super) fn store_weighted<T>(
    grads: &mut [ArrayD<T>],
    k: usize,
    dw: ArrayD<T>,
    db: ArrayD<T>,
    bias: bool,
    layer: &ir::Layer,
) -> Result<(), Error> {
    store(grads, k, dw, layer)?;
    if bias {
        store(grads, k + 1, db, layer)?;
    }
    Ok(())
}

pub(super) fn to_real<T: Real>(v: f32) -> T {
    T::from_f64(v as f64)
}

/// An inconsistency in a hand-built IR (the checker never produces one).
pub(super) fn internal(layer: &ir::Layer, what: &str) -> Error {
    Error::Config(format!(
        "layer {} {what} (the model IR is inconsistent: {} -> {})",
        layer.name, layer.input, layer.output
    ))
}

pub(super) fn image<'a, T>(a: ArrayViewD<'a, T>, layer: &ir::Layer) -> Result<ArrayView4<'a, T>, Error> {
    let given = a.shape().to_vec();
    a.into_dimensionality::<Ix4>()
        .map_err(|_| internal(layer, &format!("needs a 4-D tensor, got shape {given:?}")))
}

pub(super) fn vector<'a, T>(a: ArrayViewD<'a, T>, layer: &ir::Layer) -> Result<ArrayView2<'a, T>, Error> {
    let given = a.shape().to_vec();
    a.into_dimensionality::<Ix2>()
        .map_err(|_| internal(layer, &format!("needs a 2-D tensor, got shape {given:?}")))
}

/// `[N, C, ...]` as `[N, C, S]` (S the positions per channel; 1 for `[N, C]`).
pub(super) fn per_channel<T: Real>(a: ArrayViewD<T>, layer: &ir::Layer) -> Result<Array3<T>, Error> {
    let shape = a.shape();
    if shape.len() < 2 {
        return Err(internal(
            layer,
            &format!("needs a batch of channels, got shape {shape:?}"),
        ));
    }
    let positions = shape[2..].iter().product();
    let values: Vec<T> = a.iter().copied().collect();
    Array3::from_shape_vec((shape[0], shape[1], positions), values)
        .map_err(|_| internal(layer, "cannot be viewed per channel"))
}

pub(super) fn vector_mut<'a, T>(a: &'a mut ArrayD<T>, layer: &ir::Layer) -> Result<ArrayViewMut1<'a, T>, Error> {
    a.view_mut()
        .into_dimensionality::<Ix1>()
        .map_err(|_| internal(layer, "has running statistics that are not vectors"))
}

pub(super) fn matrix<'a, T>(a: ArrayViewD<'a, T>, what: &str) -> Result<ArrayView2<'a, T>, Error> {
    let given = a.shape().to_vec();
    a.into_dimensionality::<Ix2>().map_err(|_| Error::Shape {
        what: what.to_string(),
        expected: "[N, classes]".to_string(),
        given,
    })
}

/// `[N, C]` as is, `[N, C, H, W]` as `[N·H·W, C]`: a row per position, over the
/// channels (per-position softmax and cross-entropy).
pub(super) fn by_position<T: Real>(a: ArrayViewD<T>) -> ndarray::Array2<T> {
    let shape = a.shape().to_vec();
    let c = shape.get(1).copied().unwrap_or(1);
    let rows = a.len() / c.max(1);
    let mut order: Vec<usize> = (0..shape.len()).collect();
    if shape.len() > 2 {
        order.remove(1);
        order.push(1);
    }
    let values: Vec<T> = a.permuted_axes(order).iter().copied().collect();
    ndarray::Array2::from_shape_vec((rows, c), values).expect("a row per position")
}

/// The inverse of [`by_position`] for a tensor of `shape`.
pub(super) fn from_positions<T: Real>(m: ndarray::Array2<T>, shape: &[usize]) -> ArrayD<T> {
    if shape.len() <= 2 {
        return m.into_shape_with_order(IxDyn(shape)).expect("the same length");
    }
    let mut permuted = vec![shape[0]];
    permuted.extend_from_slice(&shape[2..]);
    permuted.push(shape[1]);
    let a = m.into_shape_with_order(IxDyn(&permuted)).expect("the same length");
    let mut back: Vec<usize> = vec![0, shape.len() - 1];
    back.extend(1..shape.len() - 1);
    a.permuted_axes(back).as_standard_layout().into_owned()
}

pub(super) fn out_hw(layer: &ir::Layer) -> Result<(usize, usize), Error> {
    match layer.output {
        Shape::Image { h, w, .. } => Ok((h, w)),
        Shape::Vector(_) => Err(internal(layer, "has a vector output")),
    }
}

/// The same values in row-major (C, H, W) order, with a new shape.
pub(super) fn reshape<T: Real>(a: ArrayViewD<T>, shape: &[usize], layer: &ir::Layer) -> Result<ArrayD<T>, Error> {
    let values: Vec<T> = a.iter().copied().collect();
    ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|_| internal(layer, &format!("cannot reshape to {shape:?}")))
}
