//! Convolution, with groups and dilation:
//! `y[n,f,oy,ox] = b[f] + sum_{c,ky,kx} w[f,c,ky,kx] * x[n, g*CG + c, iy, ix]` where
//! `g = f / FG` is the filter's group (`CG = C / G` input and `FG = F / G` output
//! channels per group), `iy = oy*SH + ky*DH - pad_top`, `ix = ox*SW + kx*DW - pad_left`;
//! cells in the padding are 0. Without a bias, `b` is 0.
//!
//! The loops read row-major copies of the tensors through the index functions
//! `Nchw::at`, which is the same arithmetic ndarray does, without its per-access checks.

use super::real::Real;
use super::tap;
use crate::ir::Conv;
use ndarray::{Array1, Array4, ArrayView1, ArrayView4};

/// The offset of `[a, b, c, d]` in a row-major tensor of shape `[_, B, C, D]`.
#[derive(Clone, Copy)]
struct Nchw(usize, usize, usize);

impl Nchw {
    fn of<T>(t: &ArrayView4<T>) -> Nchw {
        let (_, b, c, d) = t.dim();
        Nchw(b, c, d)
    }

    fn at(self, a: usize, b: usize, c: usize, d: usize) -> usize {
        ((a * self.0 + b) * self.1 + c) * self.2 + d
    }
}

fn row_major<T: Real>(t: &ArrayView4<T>) -> Vec<T> {
    t.iter().copied().collect()
}

fn to_array<T: Real>(shape: (usize, usize, usize, usize), values: &[T]) -> Array4<T> {
    let index = Nchw(shape.1, shape.2, shape.3);
    Array4::from_shape_fn(shape, |(a, b, c, d)| values[index.at(a, b, c, d)])
}

/// The filters per group, `FG = F / G` (filter `o` reads input channels
/// `(o / FG) * CG ..` where `CG`, the weight's second axis, is the channels per group).
fn filters_per_group<T>(w: &ArrayView4<T>, conv: &Conv) -> usize {
    w.dim().0 / conv.groups.max(1)
}

/// Forward: `x` is `[N, C, H, W]`, `w` is `[F, C/G, KH, KW]`, the output `[N, F, OH, OW]`.
pub fn forward<T: Real>(
    x: ArrayView4<T>,
    w: ArrayView4<T>,
    b: Option<ArrayView1<T>>,
    conv: &Conv,
    (oh, ow): (usize, usize),
) -> Array4<T> {
    let win = &conv.window;
    let (n, _, h, wd) = x.dim();
    let (f, cg, kh, kw) = w.dim();
    let fg = filters_per_group(&w, conv);
    let [dh, dw] = conv.dilation;
    let (xi, wi, yi) = (Nchw::of(&x), Nchw::of(&w), Nchw(f, oh, ow));
    let (xs, ws) = (row_major(&x), row_major(&w));
    let mut ys = vec![T::ZERO; n * f * oh * ow];
    // For each output row, the sum runs over (c, ky, kx) in order with the weight held
    // while `ox` moves along the row (independent sums, so the CPU overlaps them).
    for s in 0..n {
        for o in 0..f {
            let first_channel = (o / fg) * cg;
            for oy in 0..oh {
                let bias = b.as_ref().map_or(T::ZERO, |b| b[o]);
                for ox in 0..ow {
                    ys[yi.at(s, o, oy, ox)] = bias;
                }
                for i in 0..cg {
                    let channel = first_channel + i;
                    for ky in 0..kh {
                        let Some(iy) = tap(oy, ky * dh, win, 0, h) else {
                            continue;
                        };
                        for kx in 0..kw {
                            let weight = ws[wi.at(o, i, ky, kx)];
                            for ox in 0..ow {
                                let Some(ix) = tap(ox, kx * dw, win, 1, wd) else {
                                    continue;
                                };
                                ys[yi.at(s, o, oy, ox)] += weight * xs[xi.at(s, channel, iy, ix)];
                            }
                        }
                    }
                }
            }
        }
    }
    to_array((n, f, oh, ow), &ys)
}

/// The gradients of a convolution (`db` is the bias's, whether the layer has one or not).
pub struct Grads<T> {
    pub dx: Array4<T>,
    pub dw: Array4<T>,
    pub db: Array1<T>,
}

/// Backward: every product `w[f,c,ky,kx] * x[n,g*CG+c,iy,ix]` that fed `y[n,f,oy,ox]`
/// sends `dy * x` to `dw` and `dy * w` to `dx`; the bias gets `dy`.
pub fn backward<T: Real>(x: ArrayView4<T>, w: ArrayView4<T>, conv: &Conv, dy: ArrayView4<T>) -> Grads<T> {
    let win = &conv.window;
    let (n, _, h, wd) = x.dim();
    let (f, cg, kh, kw) = w.dim();
    let fg = filters_per_group(&w, conv);
    let [dh, dwl] = conv.dilation;
    let (_, _, oh, ow) = dy.dim();
    let (xi, wi, yi) = (Nchw::of(&x), Nchw::of(&w), Nchw::of(&dy));
    let (xs, ws, dys) = (row_major(&x), row_major(&w), row_major(&dy));
    let mut dxs = vec![T::ZERO; xs.len()];
    let mut dws = vec![T::ZERO; ws.len()];
    let mut db = Array1::from_elem(f, T::ZERO);
    for s in 0..n {
        for o in 0..f {
            let first_channel = (o / fg) * cg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let g = dys[yi.at(s, o, oy, ox)];
                    db[o] += g;
                    for i in 0..cg {
                        let channel = first_channel + i;
                        for ky in 0..kh {
                            let Some(iy) = tap(oy, ky * dh, win, 0, h) else {
                                continue;
                            };
                            for kx in 0..kw {
                                let Some(ix) = tap(ox, kx * dwl, win, 1, wd) else {
                                    continue;
                                };
                                dws[wi.at(o, i, ky, kx)] += g * xs[xi.at(s, channel, iy, ix)];
                                dxs[xi.at(s, channel, iy, ix)] += g * ws[wi.at(o, i, ky, kx)];
                            }
                        }
                    }
                }
            }
        }
    }
    Grads {
        dx: to_array(x.dim(), &dxs),
        dw: to_array(w.dim(), &dws),
        db,
    }
}
