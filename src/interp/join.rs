//! The v3 joins over `[N, ...]` tensors: `concat` along axis 1 (channels, or the
//! features of vectors) and `mul` with a `[N, C, 1, 1]` side broadcast over the
//! other's height and width. (`add` is the sum of equal shapes.)

use super::real::Real;
use ndarray::{concatenate, ArrayD, ArrayViewD, Axis, Dimension, Slice};

/// `torch.cat(parts, dim=1)`.
pub fn concat<T: Real>(parts: &[ArrayViewD<T>]) -> Option<ArrayD<T>> {
    concatenate(Axis(1), parts).ok()
}

/// The slice of axis 1 that part `k` of a concat (with axis-1 `sizes`) came from.
pub fn part<'a, T: Real>(dy: &'a ArrayViewD<'a, T>, sizes: &[usize], k: usize) -> ArrayViewD<'a, T> {
    let start: usize = sizes[..k].iter().sum();
    dy.slice_axis(Axis(1), Slice::from(start..start + sizes[k]))
}

/// `a * b` with co-broadcasting (`[N, C, 1, 1]` against `[N, C, H, W]`).
pub fn mul<T: Real>(a: ArrayViewD<T>, b: ArrayViewD<T>) -> Option<ArrayD<T>> {
    let shape = if a.len() >= b.len() { a.shape() } else { b.shape() }.to_vec();
    let (a, b) = (a.broadcast(shape.clone())?, b.broadcast(shape)?);
    Some(ndarray::Zip::from(&a).and(&b).map_collect(|&x, &y| x * y))
}

/// The gradient of `a * b` for the side `a` (of shape `a_shape`): `dy · b`, summed
/// over the axes `a` was broadcast along.
pub fn mul_backward<T: Real>(dy: ArrayViewD<T>, b: ArrayViewD<T>, a_shape: &[usize]) -> Option<ArrayD<T>> {
    let full = mul(dy, b)?;
    if full.shape() == a_shape {
        return Some(full);
    }
    let mut out = ArrayD::from_elem(a_shape, T::ZERO);
    for (index, v) in full.indexed_iter() {
        let mut target = index.slice().to_vec();
        for (t, &size) in target.iter_mut().zip(a_shape) {
            if size == 1 {
                *t = 0;
            }
        }
        out[target.as_slice()] += *v;
    }
    Some(out)
}
