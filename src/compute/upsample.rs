//! Upsampling by whole factors (v3 `upsample`), per channel plane, row by row.
//!
//! - nearest: output `(oy, ox)` reads input `(oy / FH, ox / FW)`; each input row
//!   is widened once and copied to its FH output rows.
//! - bilinear (`align_corners=False`, PyTorch's): output index `o` reads at
//!   `src = (o + 0.5) / F - 0.5`, clamped at 0, between `i0 = floor(src)` and
//!   `i1 = min(i0 + 1, in - 1)` with weights `1 - λ` and `λ = src - i0`; each
//!   output row mixes two input rows.
//!
//! The backward passes scatter the same weights back (sums over each input cell's
//! outputs). Layout: `[N, C, H, W]` in, `[N, C, H·FH, W·FW]` out.

/// An upsampling's sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpsampleShape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub fh: usize,
    pub fw: usize,
    pub bilinear: bool,
}

impl UpsampleShape {
    pub const fn input_len(&self) -> usize {
        self.c * self.h * self.w
    }
    pub const fn output_len(&self) -> usize {
        self.c * self.h * self.fh * self.w * self.fw
    }
}

/// The two input indices and their weights for output index `o` (bilinear).
#[inline(always)]
fn bilinear_taps(o: usize, f: usize, size: usize) -> (usize, usize, f32) {
    let src = ((o as f32 + 0.5) / f as f32 - 0.5).max(0.0);
    let i0 = (src as usize).min(size - 1);
    let i1 = (i0 + 1).min(size - 1);
    (i0, i1, src - i0 as f32)
}

#[inline(always)]
pub fn forward(s: &UpsampleShape, x: &[f32], y: &mut [f32], n: usize) {
    let (ow, oh) = (s.w * s.fw, s.h * s.fh);
    let planes = n * s.c;
    for (xp, yp) in x.chunks_exact(s.h * s.w).zip(y.chunks_exact_mut(oh * ow)).take(planes) {
        if s.bilinear {
            for oy in 0..oh {
                let (y0, y1, ly) = bilinear_taps(oy, s.fh, s.h);
                let (r0, r1) = (&xp[y0 * s.w..][..s.w], &xp[y1 * s.w..][..s.w]);
                let out = &mut yp[oy * ow..][..ow];
                for (ox, v) in out.iter_mut().enumerate() {
                    let (x0, x1, lx) = bilinear_taps(ox, s.fw, s.w);
                    let top = (1.0 - lx) * r0[x0] + lx * r0[x1];
                    let bottom = (1.0 - lx) * r1[x0] + lx * r1[x1];
                    *v = (1.0 - ly) * top + ly * bottom;
                }
            }
        } else {
            for iy in 0..s.h {
                let row = &xp[iy * s.w..][..s.w];
                let first = &mut yp[iy * s.fh * ow..][..ow];
                for (out, &v) in first.chunks_exact_mut(s.fw).zip(row) {
                    out.fill(v);
                }
                for k in 1..s.fh {
                    yp.copy_within(iy * s.fh * ow..(iy * s.fh + 1) * ow, (iy * s.fh + k) * ow);
                }
            }
        }
    }
}

/// Overwrites `dx` with the gradient of `forward`'s input.
#[inline(always)]
pub fn backward(s: &UpsampleShape, dy: &[f32], dx: &mut [f32], n: usize) {
    let (ow, oh) = (s.w * s.fw, s.h * s.fh);
    let planes = n * s.c;
    for (dyp, dxp) in dy
        .chunks_exact(oh * ow)
        .zip(dx.chunks_exact_mut(s.h * s.w))
        .take(planes)
    {
        dxp.fill(0.0);
        if s.bilinear {
            for oy in 0..oh {
                let (y0, y1, ly) = bilinear_taps(oy, s.fh, s.h);
                let g = &dyp[oy * ow..][..ow];
                for (ox, &d) in g.iter().enumerate() {
                    let (x0, x1, lx) = bilinear_taps(ox, s.fw, s.w);
                    let (top, bottom) = ((1.0 - ly) * d, ly * d);
                    dxp[y0 * s.w + x0] += (1.0 - lx) * top;
                    dxp[y0 * s.w + x1] += lx * top;
                    dxp[y1 * s.w + x0] += (1.0 - lx) * bottom;
                    dxp[y1 * s.w + x1] += lx * bottom;
                }
            }
        } else {
            for oy in 0..oh {
                let g = &dyp[oy * ow..][..ow];
                let row = &mut dxp[(oy / s.fh) * s.w..][..s.w];
                for (d, block) in row.iter_mut().zip(g.chunks_exact(s.fw)) {
                    *d += block.iter().sum::<f32>();
                }
            }
        }
    }
}
