//! Convolution: `y[n,f,oy,ox] = b[f] + sum_{c,ky,kx} w[f,c,ky,kx] * x[n,c,iy,ix]` with
//! `iy = oy*SH + ky - pad_top`, `ix = ox*SW + kx - pad_left`; cells in the padding are 0.

use super::real::Real;
use super::tap;
use crate::ir::Window;
use ndarray::{Array1, Array4, ArrayView1, ArrayView4};

/// Forward: `x` is `[N, C, H, W]`, `w` is `[F, C, KH, KW]`, the output `[N, F, OH, OW]`.
pub fn forward<T: Real>(
    x: ArrayView4<T>,
    w: ArrayView4<T>,
    b: ArrayView1<T>,
    win: &Window,
    (oh, ow): (usize, usize),
) -> Array4<T> {
    let (n, c, h, wd) = x.dim();
    let (f, _, kh, kw) = w.dim();
    let mut y = Array4::from_elem((n, f, oh, ow), T::ZERO);
    for s in 0..n {
        for o in 0..f {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b[o];
                    for i in 0..c {
                        for ky in 0..kh {
                            let Some(iy) = tap(oy, ky, win, 0, h) else { continue };
                            for kx in 0..kw {
                                let Some(ix) = tap(ox, kx, win, 1, wd) else { continue };
                                acc += w[[o, i, ky, kx]] * x[[s, i, iy, ix]];
                            }
                        }
                    }
                    y[[s, o, oy, ox]] = acc;
                }
            }
        }
    }
    y
}

/// The gradients of a convolution.
pub struct Grads<T> {
    pub dx: Array4<T>,
    pub dw: Array4<T>,
    pub db: Array1<T>,
}

/// Backward: every product `w[f,c,ky,kx] * x[n,c,iy,ix]` that fed `y[n,f,oy,ox]` sends
/// `dy * x` to `dw` and `dy * w` to `dx`; the bias gets `dy`.
pub fn backward<T: Real>(x: ArrayView4<T>, w: ArrayView4<T>, win: &Window, dy: ArrayView4<T>) -> Grads<T> {
    let (n, c, h, wd) = x.dim();
    let (f, _, kh, kw) = w.dim();
    let (_, _, oh, ow) = dy.dim();
    let mut dx = Array4::from_elem(x.dim(), T::ZERO);
    let mut dw = Array4::from_elem(w.dim(), T::ZERO);
    let mut db = Array1::from_elem(f, T::ZERO);
    for s in 0..n {
        for o in 0..f {
            for oy in 0..oh {
                for ox in 0..ow {
                    let g = dy[[s, o, oy, ox]];
                    db[o] += g;
                    for i in 0..c {
                        for ky in 0..kh {
                            let Some(iy) = tap(oy, ky, win, 0, h) else { continue };
                            for kx in 0..kw {
                                let Some(ix) = tap(ox, kx, win, 1, wd) else { continue };
                                dw[[o, i, ky, kx]] += g * x[[s, i, iy, ix]];
                                dx[[s, i, iy, ix]] += g * w[[o, i, ky, kx]];
                            }
                        }
                    }
                }
            }
        }
    }
    Grads { dx, dw, db }
}
