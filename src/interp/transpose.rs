//! Transposed convolution (v3), the scatter form of PyTorch's `conv_transpose2d`:
//! input cell `x[n, c, iy, ix]` adds `w[c, f', ky, kx] · x` to output
//! `y[n, g·FG + f', iy·SH + ky·DH - PH, ix·SW + kx·DW - PW]` (`g = c / CG` its group,
//! `CG = C / G`, `FG = F / G`), cells that land outside the output dropped; then the
//! bias. The weight is `[C, F/G, KH, KW]`.

use super::real::Real;
use crate::ir::ConvTranspose;
use ndarray::{Array1, Array4, ArrayView1, ArrayView4};

/// Where tap `k` of input `i` lands on an axis of `size` outputs, if inside.
fn land(i: usize, k: usize, t: &ConvTranspose, axis: usize, size: usize) -> Option<usize> {
    (i * t.stride[axis] + k * t.dilation[axis])
        .checked_sub(t.pad[axis])
        .filter(|&o| o < size)
}

/// Every (input cell, weight tap, output cell) triple, by index tuples.
fn for_each_tap(
    x_dim: (usize, usize, usize, usize),
    w_dim: (usize, usize, usize, usize),
    t: &ConvTranspose,
    (oh, ow): (usize, usize),
    mut f: impl FnMut([usize; 4], [usize; 4], [usize; 4]),
) {
    let (n, c, h, w) = x_dim;
    let (_, fg, kh, kw) = w_dim;
    let cg = c / t.groups.max(1);
    for s in 0..n {
        for ch in 0..c {
            let g = ch / cg.max(1);
            for iy in 0..h {
                for ix in 0..w {
                    for fl in 0..fg {
                        for ky in 0..kh {
                            let Some(oy) = land(iy, ky, t, 0, oh) else { continue };
                            for kx in 0..kw {
                                let Some(ox) = land(ix, kx, t, 1, ow) else { continue };
                                f([s, ch, iy, ix], [ch, fl, ky, kx], [s, g * fg + fl, oy, ox]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Forward: `x` `[N, C, H, W]`, `w` `[C, F/G, KH, KW]`, output `[N, F, OH, OW]`.
pub fn forward<T: Real>(
    x: ArrayView4<T>,
    w: ArrayView4<T>,
    b: Option<ArrayView1<T>>,
    t: &ConvTranspose,
    (oh, ow): (usize, usize),
) -> Array4<T> {
    let n = x.dim().0;
    let mut y = Array4::from_elem((n, t.filters, oh, ow), T::ZERO);
    for_each_tap(x.dim(), w.dim(), t, (oh, ow), |xi, wi, yi| {
        y[yi] += w[wi] * x[xi];
    });
    if let Some(b) = b {
        for ((_, f, _, _), v) in y.indexed_iter_mut() {
            *v += b[f];
        }
    }
    y
}

pub struct Grads<T> {
    pub dx: Array4<T>,
    pub dw: Array4<T>,
    pub db: Array1<T>,
}

/// Backward: each product `w · x` that fed `y` sends `dy · w` to `x` and `dy · x` to `w`.
pub fn backward<T: Real>(x: ArrayView4<T>, w: ArrayView4<T>, t: &ConvTranspose, dy: ArrayView4<T>) -> Grads<T> {
    let (_, _, oh, ow) = dy.dim();
    let mut dx = Array4::from_elem(x.dim(), T::ZERO);
    let mut dw = Array4::from_elem(w.dim(), T::ZERO);
    for_each_tap(x.dim(), w.dim(), t, (oh, ow), |xi, wi, yi| {
        dx[xi] += dy[yi] * w[wi];
        dw[wi] += dy[yi] * x[xi];
    });
    let mut db = Array1::from_elem(t.filters, T::ZERO);
    for ((_, f, _, _), v) in dy.indexed_iter() {
        db[f] += *v;
    }
    Grads { dx, dw, db }
}
