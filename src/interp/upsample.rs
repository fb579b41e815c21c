//! Upsampling by whole factors (v3), PyTorch's `F.interpolate(scale_factor=(FH, FW))`:
//! - nearest: output `o` reads input `o / F` (floor);
//! - bilinear, `align_corners=False`: output `o` reads at `src = (o + 0.5) / F - 0.5`,
//!   0 when negative, between `i0 = floor(src)` and `i1 = min(i0 + 1, in - 1)` with
//!   weights `1 - λ` and `λ = src - i0` (per axis, the two products).

use super::real::Real;
use crate::ir::Upsample;
use ndarray::{Array4, ArrayView4};

/// The input cells and weights one output index reads on an axis.
fn taps(o: usize, f: usize, size: usize, bilinear: bool) -> [(usize, f64); 2] {
    if !bilinear {
        return [(o / f, 1.0), (o / f, 0.0)];
    }
    let src = ((o as f64 + 0.5) / f as f64 - 0.5).max(0.0);
    let i0 = (src.floor() as usize).min(size - 1);
    let i1 = (i0 + 1).min(size - 1);
    let l = src - i0 as f64;
    [(i0, 1.0 - l), (i1, l)]
}

/// Every (input cell, weight, output cell) of the upsampling.
fn for_each_tap(dim: (usize, usize, usize, usize), u: &Upsample, mut f: impl FnMut([usize; 4], f64, [usize; 4])) {
    let (n, c, h, w) = dim;
    let [fh, fw] = u.factor;
    for s in 0..n {
        for ch in 0..c {
            for oy in 0..h * fh {
                let ys = taps(oy, fh, h, u.bilinear);
                for ox in 0..w * fw {
                    let xs = taps(ox, fw, w, u.bilinear);
                    for (iy, wy) in ys {
                        for (ix, wx) in xs {
                            f([s, ch, iy, ix], wy * wx, [s, ch, oy, ox]);
                        }
                    }
                }
            }
        }
    }
}

pub fn forward<T: Real>(x: ArrayView4<T>, u: &Upsample) -> Array4<T> {
    let (n, c, h, w) = x.dim();
    let mut y = Array4::from_elem((n, c, h * u.factor[0], w * u.factor[1]), T::ZERO);
    for_each_tap(x.dim(), u, |xi, weight, yi| y[yi] += T::from_f64(weight) * x[xi]);
    y
}

pub fn backward<T: Real>(dy: ArrayView4<T>, u: &Upsample, x_dim: (usize, usize, usize, usize)) -> Array4<T> {
    let mut dx = Array4::from_elem(x_dim, T::ZERO);
    for_each_tap(x_dim, u, |xi, weight, yi| dx[xi] += T::from_f64(weight) * dy[yi]);
    dx
}
