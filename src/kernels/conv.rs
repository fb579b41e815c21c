//! 2-D convolution (cross-correlation, as PyTorch): weight `[F, C, KH, KW]`.
//! Padding is applied by copying the sample into a zero-bordered scratch buffer,
//! so the inner loops have no bounds branches.

use super::{axpy, dot, sum, Act};

/// Every size a convolution needs; the generated code passes it as a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Input channels, height, width.
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// Filters (output channels).
    pub f: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    /// Padding: top, bottom, left, right.
    pub pt: usize,
    pub pb: usize,
    pub pl: usize,
    pub pr: usize,
    pub oh: usize,
    pub ow: usize,
}

impl ConvShape {
    pub const fn hp(&self) -> usize {
        self.h + self.pt + self.pb
    }
    pub const fn wp(&self) -> usize {
        self.w + self.pl + self.pr
    }
    pub const fn input_len(&self) -> usize {
        self.c * self.h * self.w
    }
    pub const fn output_len(&self) -> usize {
        self.f * self.oh * self.ow
    }
    /// One padded sample: the scratch size this layer needs.
    pub const fn padded_len(&self) -> usize {
        self.c * self.hp() * self.wp()
    }
    pub const fn weight_len(&self) -> usize {
        self.f * self.c * self.kh * self.kw
    }
    pub const fn padded(&self) -> bool {
        self.pt + self.pb + self.pl + self.pr > 0
    }
}

/// Copies one sample into `xp` with zero borders.
#[inline(always)]
fn pad(s: &ConvShape, x: &[f32], xp: &mut [f32]) {
    let (hp, wp) = (s.hp(), s.wp());
    let xp = &mut xp[..s.padded_len()];
    xp.fill(0.0);
    for c in 0..s.c {
        for h in 0..s.h {
            let src = &x[(c * s.h + h) * s.w..][..s.w];
            xp[(c * hp + h + s.pt) * wp + s.pl..][..s.w].copy_from_slice(src);
        }
    }
}

/// The sample as the window sees it: `x` itself, or its padded copy in `scratch`.
#[inline(always)]
fn padded_input<'a>(s: &ConvShape, x: &'a [f32], scratch: &'a mut [f32]) -> &'a [f32] {
    if s.padded() {
        pad(s, x, scratch);
        &scratch[..s.padded_len()]
    } else {
        &x[..s.input_len()]
    }
}

/// Forward for `n` samples with bias and activation fused. `scratch` holds one
/// padded sample.
#[inline(always)]
pub fn forward(s: &ConvShape, act: Act, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32], n: usize, scratch: &mut [f32]) {
    let (hp, wp) = (s.hp(), s.wp());
    let w = &w[..s.weight_len()];
    for i in 0..n {
        let xs = padded_input(s, &x[i * s.input_len()..], scratch);
        let ys = &mut y[i * s.output_len()..][..s.output_len()];
        for f in 0..s.f {
            let wf = &w[f * s.c * s.kh * s.kw..][..s.c * s.kh * s.kw];
            for oh in 0..s.oh {
                let yrow = &mut ys[(f * s.oh + oh) * s.ow..][..s.ow];
                yrow.fill(b[f]);
                for c in 0..s.c {
                    for kh in 0..s.kh {
                        let xrow = &xs[(c * hp + oh * s.sh + kh) * wp..][..wp];
                        for kw in 0..s.kw {
                            let wv = wf[(c * s.kh + kh) * s.kw + kw];
                            if s.sw == 1 {
                                axpy(wv, &xrow[kw..kw + s.ow], yrow);
                            } else {
                                for (o, y) in yrow.iter_mut().enumerate() {
                                    *y += wv * xrow[o * s.sw + kw];
                                }
                            }
                        }
                    }
                }
                act.forward(yrow);
            }
        }
    }
}

/// Backward for `n` samples. `dy` is the gradient at the conv's output before its
/// activation (already multiplied by f'). Adds to `dw` and `db`; writes `dx` when
/// given. `scratch` and `dscratch` each hold one padded sample.
#[inline(always)]
pub fn backward(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
    mut dx: Option<&mut [f32]>,
    n: usize,
    scratch: &mut [f32],
    dscratch: &mut [f32],
) {
    let (hp, wp) = (s.hp(), s.wp());
    let w = &w[..s.weight_len()];
    let dw = &mut dw[..s.weight_len()];
    for i in 0..n {
        let xs = padded_input(s, &x[i * s.input_len()..], scratch);
        let dys = &dy[i * s.output_len()..][..s.output_len()];
        for f in 0..s.f {
            let dyf = &dys[f * s.oh * s.ow..][..s.oh * s.ow];
            db[f] += sum(dyf);
            let dwf = &mut dw[f * s.c * s.kh * s.kw..][..s.c * s.kh * s.kw];
            for c in 0..s.c {
                for kh in 0..s.kh {
                    for kw in 0..s.kw {
                        let mut acc = 0.0;
                        for oh in 0..s.oh {
                            let dyrow = &dyf[oh * s.ow..][..s.ow];
                            let xrow = &xs[(c * hp + oh * s.sh + kh) * wp..][..wp];
                            if s.sw == 1 {
                                acc += dot(dyrow, &xrow[kw..kw + s.ow]);
                            } else {
                                for (o, g) in dyrow.iter().enumerate() {
                                    acc += g * xrow[o * s.sw + kw];
                                }
                            }
                        }
                        dwf[(c * s.kh + kh) * s.kw + kw] += acc;
                    }
                }
            }
        }
        let Some(dx) = dx.as_deref_mut() else { continue };
        let dxs = &mut dx[i * s.input_len()..][..s.input_len()];
        // Accumulate into the padded gradient, then drop its border.
        let dxp = if s.padded() {
            &mut dscratch[..s.padded_len()]
        } else {
            &mut dxs[..]
        };
        dxp.fill(0.0);
        for f in 0..s.f {
            let wf = &w[f * s.c * s.kh * s.kw..][..s.c * s.kh * s.kw];
            for oh in 0..s.oh {
                let dyrow = &dys[(f * s.oh + oh) * s.ow..][..s.ow];
                for c in 0..s.c {
                    for kh in 0..s.kh {
                        let row = &mut dxp[(c * hp + oh * s.sh + kh) * wp..][..wp];
                        for kw in 0..s.kw {
                            let wv = wf[(c * s.kh + kh) * s.kw + kw];
                            if s.sw == 1 {
                                axpy(wv, dyrow, &mut row[kw..kw + s.ow]);
                            } else {
                                for (o, g) in dyrow.iter().enumerate() {
                                    row[o * s.sw + kw] += wv * g;
                                }
                            }
                        }
                    }
                }
            }
        }
        if s.padded() {
            for c in 0..s.c {
                for h in 0..s.h {
                    let src = &dscratch[(c * hp + h + s.pt) * wp + s.pl..][..s.w];
                    dxs[(c * s.h + h) * s.w..][..s.w].copy_from_slice(src);
                }
            }
        }
    }
}
