//! 2-D convolution (cross-correlation, as PyTorch): weight `[F, C, KH, KW]`.
//! Each sample is unfolded (im2col) into a `[C*KH*KW, OH*OW]` matrix, so the
//! forward pass is one matrix product `W · col` and the backward pass two:
//! `dW += dY · colᵀ` and `dcol = Wᵀ · dY`, folded back onto the input (col2im).
//! A 1x1, stride-1, unpadded conv skips the unfolding.

use super::gemm::workspace_len;
use super::{matmul, Operand};
use super::{sum, Activation};

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
    /// Dilation (taps spaced this far apart); only 1 is supported so far.
    pub dh: usize,
    pub dw: usize,
    /// Groups; only 1 is supported so far.
    pub g: usize,
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
    /// Rows of the unfolded input: C·KH·KW.
    pub const fn depth(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// Output positions per channel: OH·OW.
    pub const fn positions(&self) -> usize {
        self.oh * self.ow
    }
    /// 1x1, stride 1, unpadded: the input is its own unfolded matrix.
    pub const fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && !self.padded()
    }
    /// Few input taps, few filters, unit column stride and a short output row: the
    /// matrix product would spend more on packing and tile edges than on arithmetic
    /// (LeNet's first layer, 6 filters of 1x5x5), so the forward pass runs as a
    /// direct convolution over padded input rows instead. (A direct weight gradient
    /// measured slower than the product: 26,600 against 33,200 LeNet images/s.)
    pub const fn direct(&self) -> bool {
        self.depth() <= 32 && self.f <= 16 && self.sw == 1 && self.ow <= DIRECT_ROW
    }
    /// One padded sample.
    pub const fn padded_sample_len(&self) -> usize {
        self.c * self.hp() * self.wp()
    }
    /// The scratch a worker needs for this layer: two unfolded samples and the
    /// matrix products' packing space.
    pub const fn scratch_len(&self) -> usize {
        let (f, k, p) = (self.f, self.depth(), self.positions());
        let a = workspace_len(f, p, k);
        let b = workspace_len(f, k, p);
        let c = workspace_len(k, p, f);
        let most = if a > b { a } else { b };
        // The direct forward's padded sample fits in the same space.
        let unfolded = if 2 * k * p > self.padded_sample_len() {
            2 * k * p
        } else {
            self.padded_sample_len()
        };
        unfolded + if most > c { most } else { c }
    }
}

/// The longest output row the direct convolution keeps in its accumulator.
const DIRECT_ROW: usize = 64;

/// Copies one sample into `xp`, `C x HP x WP` with zero borders, and returns the
/// padded sample (the input itself when there is no padding).
#[inline(always)]
fn pad<'a>(s: &ConvShape, x: &'a [f32], xp: &'a mut [f32]) -> &'a [f32] {
    if !s.padded() {
        return x;
    }
    let (hp, wp) = (s.hp(), s.wp());
    let xp = &mut xp[..s.padded_sample_len()];
    xp.fill(0.0);
    for c in 0..s.c {
        for h in 0..s.h {
            xp[(c * hp + h + s.pt) * wp + s.pl..][..s.w].copy_from_slice(&x[(c * s.h + h) * s.w..][..s.w]);
        }
    }
    xp
}

/// Direct forward of one sample: each output row of each filter is summed over the
/// kernel taps in a row-long accumulator, from contiguous runs of padded input.
#[inline(always)]
fn direct_forward(s: &ConvShape, act: Activation, xp: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    let (hp, wp) = (s.hp(), s.wp());
    for f in 0..s.f {
        let wf = &w[f * s.depth()..][..s.depth()];
        for oh in 0..s.oh {
            let mut acc = [0.0f32; DIRECT_ROW];
            let acc = &mut acc[..s.ow];
            for c in 0..s.c {
                for kh in 0..s.kh {
                    let row = &xp[(c * hp + oh * s.sh + kh) * wp..][..wp];
                    for kw in 0..s.kw {
                        let wv = wf[(c * s.kh + kh) * s.kw + kw];
                        for (a, v) in acc.iter_mut().zip(&row[kw..kw + s.ow]) {
                            *a += wv * v;
                        }
                    }
                }
            }
            let bias = b.map_or(0.0, |b| b[f]);
            for (y, a) in y[(f * s.oh + oh) * s.ow..][..s.ow].iter_mut().zip(acc.iter()) {
                *y = act.apply(a + bias);
            }
        }
    }
}

/// The output columns `ow` whose input column `ow * sw + kw - pl` lies inside
/// `0..w`: a range, so the unfolding copies runs instead of testing every cell.
#[inline(always)]
fn valid_columns(s: &ConvShape, kw: usize) -> (usize, usize) {
    // ow * sw + kw >= pl  and  ow * sw + kw < w + pl
    let lo = s.pl.saturating_sub(kw).div_ceil(s.sw);
    let hi = (s.w + s.pl).saturating_sub(kw).div_ceil(s.sw).min(s.ow);
    (lo.min(hi), hi)
}

/// Unfolds one sample into `col`, a `[C*KH*KW, OH*OW]` matrix: row `(c, kh, kw)`
/// holds the input cell under that kernel tap for every output position, 0 where
/// the window hangs over the padding.
#[inline(always)]
pub fn im2col(s: &ConvShape, x: &[f32], col: &mut [f32]) {
    let p = s.oh * s.ow;
    for c in 0..s.c {
        let xc = &x[c * s.h * s.w..][..s.h * s.w];
        for kh in 0..s.kh {
            for kw in 0..s.kw {
                let row = &mut col[((c * s.kh + kh) * s.kw + kw) * p..][..p];
                let (lo, hi) = valid_columns(s, kw);
                for oh in 0..s.oh {
                    let out = &mut row[oh * s.ow..][..s.ow];
                    let ih = (oh * s.sh + kh).wrapping_sub(s.pt);
                    if ih >= s.h {
                        out.fill(0.0);
                        continue;
                    }
                    out[..lo].fill(0.0);
                    out[hi..].fill(0.0);
                    let xrow = &xc[ih * s.w..][..s.w];
                    let first = lo * s.sw + kw - s.pl;
                    if s.sw == 1 {
                        out[lo..hi].copy_from_slice(&xrow[first..first + hi - lo]);
                    } else {
                        for (o, v) in out[lo..hi].iter_mut().enumerate() {
                            *v = xrow[first + o * s.sw];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds each entry of `col` back onto the input cell
/// it came from.
#[inline(always)]
pub fn col2im(s: &ConvShape, col: &[f32], dx: &mut [f32]) {
    let p = s.oh * s.ow;
    dx[..s.input_len()].fill(0.0);
    for c in 0..s.c {
        let dxc = &mut dx[c * s.h * s.w..][..s.h * s.w];
        for kh in 0..s.kh {
            for kw in 0..s.kw {
                let row = &col[((c * s.kh + kh) * s.kw + kw) * p..][..p];
                let (lo, hi) = valid_columns(s, kw);
                for oh in 0..s.oh {
                    let ih = (oh * s.sh + kh).wrapping_sub(s.pt);
                    if ih >= s.h {
                        continue;
                    }
                    let src = &row[oh * s.ow + lo..oh * s.ow + hi];
                    let dxrow = &mut dxc[ih * s.w..][..s.w];
                    let first = lo * s.sw + kw - s.pl;
                    if s.sw == 1 {
                        for (d, v) in dxrow[first..first + hi - lo].iter_mut().zip(src) {
                            *d += v;
                        }
                    } else {
                        for (o, v) in src.iter().enumerate() {
                            dxrow[first + o * s.sw] += v;
                        }
                    }
                }
            }
        }
    }
}

/// Forward for `n` samples with bias and activation fused.
#[inline(always)]
pub fn forward(
    s: &ConvShape,
    act: Activation,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    n: usize,
    scratch: &mut [f32],
) {
    let (k, p) = (s.depth(), s.positions());
    let (col, rest) = scratch.split_at_mut(2 * k * p);
    let col = &mut col[..k * p];
    if s.direct() {
        for i in 0..n {
            let xp = pad(s, &x[i * s.input_len()..][..s.input_len()], scratch);
            direct_forward(s, act, xp, w, b, &mut y[i * s.output_len()..][..s.output_len()]);
        }
        return;
    }
    for i in 0..n {
        let xs = &x[i * s.input_len()..][..s.input_len()];
        let ys = &mut y[i * s.output_len()..][..s.output_len()];
        let cols: &[f32] = if s.pointwise() {
            xs
        } else {
            im2col(s, xs, col);
            col
        };
        matmul(
            s.f,
            p,
            k,
            Operand::rows(w, k),
            Operand::rows(cols, p),
            ys,
            p,
            false,
            rest,
        );
        for (f, row) in ys.chunks_exact_mut(p).enumerate() {
            let bias = b.map_or(0.0, |b| b[f]);
            for v in row {
                *v = act.apply(*v + bias);
            }
        }
    }
}

/// Backward for `n` samples. `dy` is the gradient at the conv's output before its
/// activation (already multiplied by f'). Adds to `dw` and `db`; writes `dx` when given.
#[inline(always)]
pub fn backward(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    mut db: Option<&mut [f32]>,
    mut dx: Option<&mut [f32]>,
    n: usize,
    scratch: &mut [f32],
) {
    let (k, p) = (s.depth(), s.positions());
    let (col, rest) = scratch.split_at_mut(k * p);
    let (dcol, work) = rest.split_at_mut(k * p);
    for i in 0..n {
        let xs = &x[i * s.input_len()..][..s.input_len()];
        let dys = &dy[i * s.output_len()..][..s.output_len()];
        if let Some(db) = db.as_deref_mut() {
            for (f, row) in dys.chunks_exact(p).enumerate() {
                db[f] += sum(row);
            }
        }
        let cols: &[f32] = if s.pointwise() {
            xs
        } else {
            im2col(s, xs, col);
            col
        };
        // dW += dY · colᵀ
        matmul(
            s.f,
            k,
            p,
            Operand::rows(dys, p),
            Operand::transposed(cols, p),
            dw,
            k,
            true,
            work,
        );
        if let Some(dx) = dx.as_deref_mut() {
            let dxs = &mut dx[i * s.input_len()..][..s.input_len()];
            // dcol = Wᵀ · dY, then fold back onto the input.
            if s.pointwise() {
                matmul(
                    k,
                    p,
                    s.f,
                    Operand::transposed(w, k),
                    Operand::rows(dys, p),
                    dxs,
                    p,
                    false,
                    work,
                );
            } else {
                matmul(
                    k,
                    p,
                    s.f,
                    Operand::transposed(w, k),
                    Operand::rows(dys, p),
                    dcol,
                    p,
                    false,
                    work,
                );
                col2im(s, dcol, dxs);
            }
        }
    }
}
