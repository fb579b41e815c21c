//! 2-D convolution (cross-correlation, as PyTorch): weight `[F, C/G, KH, KW]`,
//! with strides, asymmetric zero padding, dilation, groups and an optional bias.
//!
//! Each layer shape picks one of these paths ([`ConvShape::plan`]):
//! - **depthwise** (`G == C`, `F` a multiple of `C`): every output channel reads
//!   one input channel, so a matrix product would have a depth of only `KH·KW`;
//!   direct loops over each output row, vectorized along the row, forward and
//!   backward ([`depthwise`]).
//! - **direct** (few taps, few filters): the forward pass sums row-long
//!   accumulators over the taps; the backward pass uses the products below.
//! - **winograd** (3x3, unit strides and dilation, one group, padding at most 1
//!   per side, at least 32 input channels and 32 filters): Winograd F(4x4, 3x3)
//!   ([`winograd`]) forward and data gradient (the weight gradient on
//!   the blocked path, for accuracy; see there): 36 multiplies per
//!   4x4 output tile and channel instead of 144, in one matrix product per
//!   transform position. Measured on conv64 (64->64, 32x32; benches/conv.rs, one
//!   thread, 32 samples, effective GFLOP/s = direct-convolution FLOPs / time):
//!   forward 223-240 against the blocked path's 141-145 on AVX-512, 171-181
//!   against 76-79 on AVX2; backward (dW + dX) 157-163 against 131-133 on
//!   AVX-512, 93-96 against 70-74 on AVX2. At 32->32 the forward still wins
//!   (AVX-512 172 against 138); at 16->16 the blocked path is faster on AVX-512
//!   (forward 123 against 94), hence the 32-channel threshold. Its error against
//!   an f64 reference stays below 1e-5 of the output's largest value at 64
//!   channels (the blocked path's: 1e-6).
//! - **blocked** (rows of at least 16 outputs, padding within the window's
//!   extent, not 1x1): a register-blocked direct convolution along output rows,
//!   forward and backward ([`blocked`]); a strided layer's backward pass is the
//!   unfolded one.
//! - **unfolded** (everything else): each sample and group is unfolded (im2col)
//!   into a `[C/G·KH·KW, OH·OW]` matrix, so the forward pass is one matrix product
//!   per group `W_g · col` and the backward pass two: `dW_g += dY_g · colᵀ` and
//!   `dcol = W_gᵀ · dY_g`, folded back onto the input (col2im). A pointwise conv
//!   (1x1, stride 1, unpadded) skips the unfolding: its input is its own matrix.

/// Calls `$f::<L, RF, CV>` for the runtime `($rf, $cv)`, one instance per pair.
macro_rules! tiles {
    ($f:ident, $l:ty, $rf:expr, $cv:expr, $t:expr, [$($r:literal)*], $cvs:tt) => {
        match $rf {
            $( $r => tiles!(@inner $f, $l, $r, $cv, $t, $cvs), )*
            _ => unreachable!("tile filters out of range"),
        }
    };
    (@inner $f:ident, $l:ty, $r:literal, $cv:expr, $t:expr, [$($c:literal)*]) => {
        match $cv {
            $( $c => $f::<$l, $r, $c>($t), )*
            _ => unreachable!("tile width out of range"),
        }
    };
}

pub mod blocked;
mod depthwise;
mod epilogue;
mod runs;
mod shape;
mod weights;
pub mod winograd;

pub use epilogue::Epilogue;
pub use shape::ConvShape;

use runs::{copy_rows, copy_run, max, zero_run};

use super::gemm::workspace_len;
use super::{matmul, Operand};
use super::{sum, Activation};

/// How a layer shape is computed; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Direct loops per channel along output rows (`g == c`, `f` a multiple of `c`).
    Depthwise,
    /// Row accumulators for few taps and filters (forward); backward as `Unfolded`.
    Direct,
    /// Winograd F(4x4, 3x3) of [`winograd`]: 3x3, unit strides, one group.
    Winograd,
    /// The register-blocked direct convolution of [`blocked`].
    Blocked,
    /// im2col and one matrix product per sample and group.
    Unfolded,
}

impl Plan {
    pub const ALL: [Plan; 5] = [
        Plan::Depthwise,
        Plan::Direct,
        Plan::Winograd,
        Plan::Blocked,
        Plan::Unfolded,
    ];
}

/// Whether a layer's sizes are constants the compiler sees (generated code) or
/// values known only at run time (the plan executor, through
/// `compute::layers::conv_forward_dyn`), as [`forward`] and [`backward`] are told:
/// the unfolding takes its best loop for each. With constants, LLVM unrolls the general loop of [`im2col`] whole, and a
/// second loop beside it made generated LeNet training 10% slower (the unfolding
/// and folding of its backward pass stopped being unrolled); with run-time sizes,
/// a tight loop for the taps that never read the padding made the executor's
/// LeNet inference 32% faster and its training 13% (one thread, AMD EPYC Zen 5,
/// `cnnc bench examples/models/lenet.cnn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizes {
    Constant,
    RunTime,
}

impl ConvShape {
    /// Few input taps, few filters, unit column stride and a short output row: the
    /// matrix product would spend more on packing and tile edges than on arithmetic,
    /// so the forward pass runs as a direct convolution over padded input rows
    /// instead, where the blocked kernel cannot (rows shorter than 16). The blocked
    /// kernel comes first: on LeNet's first layer (6 filters of 1x5x5, rows of 28)
    /// it ran the forward pass in 0.19 ms against 0.34 ms for 64 images with
    /// constant shapes, and in 0.19 against 0.89 ms with run-time shapes (AMD EPYC
    /// Zen 5; generated LeNet training 32,700 -> 34,100 images/s, ResNet-8
    /// inference 7,690 -> 8,750). (A direct weight gradient
    /// measured slower than the product: 26,600 against 33,200 LeNet images/s.)
    pub const fn direct(&self) -> bool {
        self.depth() <= 32 && self.f <= 16 && self.sw == 1 && self.ow <= DIRECT_ROW
    }
    /// At most 64 taps, more than one (a 1x1 reads one input cell per output: a
    /// pointwise conv's input is already its matrix and the product runs near
    /// peak, and at stride 2 the padded copy cost more than the products: 14% of
    /// the peak against the unfolded path's 20% on ResNet's 1x1/2 16->32),
    /// padding within the window's extent (so the data gradient at unit strides
    /// is a forward convolution of the output gradient), and output rows of at
    /// least 16: the blocked kernel vectorizes along rows, and a shorter row
    /// leaves vector lanes idle, while the matrix product tiles all OH·OW
    /// positions at once. On conv64 (64->64, 3x3, 32x32) it runs forward and
    /// backward faster than unfold + product, and on ResNet's 3x3/2 16->32 the
    /// forward at 53% of the AVX-512 peak against 26% (see benches/conv.rs; a
    /// strided layer's backward pass stays unfolded, see [`backward_as`]). In
    /// generated code, whose unfolding is unrolled for its constant shape, the
    /// strided forward measured no faster at batch 64 and 3% slower for one image
    /// (ResNet-8: 124-126 against 117-122 µs); the plan executor behind `cnnc
    /// train` gained 10% in ResNet-8 training and 19% in inference. Both take the
    /// same path, so that they compute the same sums in the same order.
    pub const fn blocked(&self) -> bool {
        let (eh, ew) = (self.dh * (self.kh - 1), self.dw * (self.kw - 1));
        self.kh * self.kw > 1
            && self.kh * self.kw <= blocked::TAPS_MAX
            && self.ow >= 16
            && self.pt <= eh
            && self.pb <= eh
            && self.pl <= ew
            && self.pr <= ew
    }
    /// 3x3, unit strides and dilation, one group, padding at most 1 per side: the
    /// shapes the Winograd path computes (whether or not it pays).
    pub const fn winograd_shape(&self) -> bool {
        winograd::computes(self, 1)
    }
    /// A Winograd shape with enough input channels and filters that its matrix
    /// products dominate the transforms.
    pub const fn winograd(&self) -> bool {
        self.winograd_shape() && self.c >= WINOGRAD_MIN_C && self.f >= WINOGRAD_MIN_F
    }
    /// The path this shape takes (the order is the order of preference).
    pub const fn plan(&self) -> Plan {
        if self.depthwise() {
            Plan::Depthwise
        } else if self.winograd() {
            Plan::Winograd
        } else if self.blocked() {
            Plan::Blocked
        } else if self.direct() {
            Plan::Direct
        } else {
            Plan::Unfolded
        }
    }
    /// Whether `plan` can compute this shape (the unfolded path computes every one).
    pub const fn allows(&self, plan: Plan) -> bool {
        match plan {
            Plan::Depthwise => self.depthwise(),
            Plan::Direct => self.sw == 1 && self.ow <= DIRECT_ROW,
            Plan::Winograd => self.winograd_shape(),
            Plan::Blocked => self.blocked(),
            Plan::Unfolded => true,
        }
    }
    /// The scratch a worker needs for this layer, forward and backward.
    pub const fn scratch_len(&self) -> usize {
        self.scratch_len_for(self.plan())
    }
    /// The scratch `plan` needs for this layer, forward and backward.
    pub const fn scratch_len_for(&self, plan: Plan) -> usize {
        match plan {
            Plan::Depthwise => depthwise::scratch_len(self),
            Plan::Winograd => max(winograd::forward_scratch(self), winograd::backward_scratch(self)),
            Plan::Blocked if !self.strided() => blocked::backward_scratch(self),
            // A strided blocked layer: the blocked forward, the unfolded backward.
            Plan::Blocked => max(blocked::forward_scratch(self), self.scratch_len_for(Plan::Unfolded)),
            Plan::Direct | Plan::Unfolded => {
                let (f, k, p) = (self.fg(), self.depth(), self.positions());
                // Two unfolded group samples (input and gradient) and the matrix
                // products' packing space. The direct forward's padded sample fits
                // in the same space.
                let products = max(
                    max(workspace_len(f, p, k), workspace_len(f, k, p)),
                    workspace_len(k, p, f),
                );
                max(2 * k * p, self.padded_sample_len()) + products
            }
        }
    }
}

/// The fewest input channels and filters for which [`Plan::Winograd`] is chosen:
/// measured faster than the blocked path at 32->32 on every instruction set,
/// slower at 16->16 on AVX-512 (see the module documentation).
const WINOGRAD_MIN_C: usize = 32;
const WINOGRAD_MIN_F: usize = 32;

/// The longest output row the direct convolution keeps in its accumulator.
const DIRECT_ROW: usize = 64;

/// Copies `channels` channels of one sample into `xp`, each `HP x WP` with zero
/// borders, and returns them (the input itself when there is no padding).
#[inline(always)]
fn pad<'a>(s: &ConvShape, channels: usize, x: &'a [f32], xp: &'a mut [f32]) -> &'a [f32] {
    if !s.padded() {
        return &x[..channels * s.h * s.w];
    }
    let (hp, wp) = (s.hp(), s.wp());
    let xp = &mut xp[..channels * hp * wp];
    xp.fill(0.0);
    for c in 0..channels {
        for h in 0..s.h {
            copy_run(
                &mut xp[(c * hp + h + s.pt) * wp + s.pl..][..s.w],
                &x[(c * s.h + h) * s.w..][..s.w],
            );
        }
    }
    xp
}

/// `out[o] += wv * row[o * stride]` for every `o`: one tap over an output row.
#[inline(always)]
fn tap_row(wv: f32, row: &[f32], stride: usize, out: &mut [f32]) {
    if stride == 1 {
        let row = &row[..out.len()];
        for (a, v) in out.iter_mut().zip(row) {
            *a += wv * v;
        }
    } else {
        for (o, a) in out.iter_mut().enumerate() {
            *a += wv * row[o * stride];
        }
    }
}

/// Direct forward of one sample: each output row of each filter is summed over the
/// kernel taps in a row-long accumulator, from contiguous runs of padded input.
#[inline(always)]
fn direct_forward(s: &ConvShape, post: Epilogue, at: usize, xp: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    let (hp, wp) = (s.hp(), s.wp());
    for f in 0..s.f {
        let c0 = f / s.fg() * s.cg();
        let wf = &w[f * s.depth()..][..s.depth()];
        for oh in 0..s.oh {
            let mut acc = [0.0f32; DIRECT_ROW];
            let acc = &mut acc[..s.ow];
            for c in 0..s.cg() {
                for kh in 0..s.kh {
                    let row = &xp[((c0 + c) * hp + oh * s.sh + kh * s.dh) * wp..][..wp];
                    for kw in 0..s.kw {
                        tap_row(wf[(c * s.kh + kh) * s.kw + kw], &row[kw * s.dw..], s.sw, acc);
                    }
                }
            }
            let bias = b.map_or(0.0, |b| b[f]);
            let row = &mut y[(f * s.oh + oh) * s.ow..][..s.ow];
            for (y, a) in row.iter_mut().zip(acc.iter()) {
                *y = a + bias;
            }
            post.finish(row, at + (f * s.oh + oh) * s.ow);
        }
    }
}

/// The output columns `ow` whose input column `ow * sw + kw * dw - pl` lies inside
/// `0..w`: a range, so the unfolding copies runs instead of testing every cell.
#[inline(always)]
fn valid_columns(s: &ConvShape, kw: usize) -> (usize, usize) {
    // ow * sw + kw * dw >= pl  and  ow * sw + kw * dw < w + pl
    let off = kw * s.dw;
    let lo = s.pl.saturating_sub(off).div_ceil(s.sw);
    let hi = (s.w + s.pl).saturating_sub(off).div_ceil(s.sw).min(s.ow);
    (lo.min(hi), hi)
}

/// Whether tap `(kh, kw)` reads no padding at any output position, with a unit
/// column stride: its unfolded row is then `OH` runs of `OW` input cells.
#[inline(always)]
fn padding_free(s: &ConvShape, kh: usize, kw: usize) -> bool {
    let (top, left) = (kh * s.dh, kw * s.dw);
    s.sw == 1 && top >= s.pt && (s.oh - 1) * s.sh + top - s.pt < s.h && left >= s.pl && s.ow - 1 + left - s.pl < s.w
}

/// Unfolds one group of one sample (`C/G` channels) into `col`, a
/// `[C/G*KH*KW, OH*OW]` matrix: row `(c, kh, kw)` holds the input cell under that
/// kernel tap for every output position, 0 where the window hangs over the padding.
#[inline(always)]
pub fn im2col(s: &ConvShape, sizes: Sizes, x: &[f32], col: &mut [f32]) {
    let p = s.oh * s.ow;
    for c in 0..s.cg() {
        let xc = &x[c * s.h * s.w..][..s.h * s.w];
        for kh in 0..s.kh {
            for kw in 0..s.kw {
                let row = &mut col[((c * s.kh + kh) * s.kw + kw) * p..][..p];
                let (lo, hi) = valid_columns(s, kw);
                if sizes == Sizes::RunTime && padding_free(s, kh, kw) {
                    // The tap never reads the padding: every output row is a run
                    // of its input row, copied in one tight loop (see `Sizes`).
                    let first = (kh * s.dh - s.pt) * s.w + kw * s.dw - s.pl;
                    copy_rows(row, s.ow, &xc[first..], s.sh * s.w);
                    continue;
                }
                for oh in 0..s.oh {
                    let out = &mut row[oh * s.ow..][..s.ow];
                    let ih = (oh * s.sh + kh * s.dh).wrapping_sub(s.pt);
                    if ih >= s.h {
                        zero_run(out);
                        continue;
                    }
                    zero_run(&mut out[..lo]);
                    zero_run(&mut out[hi..]);
                    if lo == hi {
                        // Every position's tap is in the padding (a kernel wider
                        // than the input): `first` below would start past the row.
                        continue;
                    }
                    let xrow = &xc[ih * s.w..][..s.w];
                    let first = lo * s.sw + kw * s.dw - s.pl;
                    if s.sw == 1 {
                        copy_run(&mut out[lo..hi], &xrow[first..first + hi - lo]);
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
/// (of one group's `C/G` channels) it came from.
#[inline(always)]
pub fn col2im(s: &ConvShape, col: &[f32], dx: &mut [f32]) {
    let p = s.oh * s.ow;
    for c in 0..s.cg() {
        let dxc = &mut dx[c * s.h * s.w..][..s.h * s.w];
        for kh in 0..s.kh {
            for kw in 0..s.kw {
                let row = &col[((c * s.kh + kh) * s.kw + kw) * p..][..p];
                let (lo, hi) = valid_columns(s, kw);
                for oh in 0..s.oh {
                    let ih = (oh * s.sh + kh * s.dh).wrapping_sub(s.pt);
                    if ih >= s.h || lo == hi {
                        continue;
                    }
                    let src = &row[oh * s.ow + lo..oh * s.ow + hi];
                    let dxrow = &mut dxc[ih * s.w..][..s.w];
                    let first = lo * s.sw + kw * s.dw - s.pl;
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

/// Forward for `n` samples with bias (when given) and activation fused.
/// `scratch` holds [`ConvShape::scratch_len`] floats.
#[inline(always)]
pub fn forward(
    s: &ConvShape,
    sizes: Sizes,
    post: Epilogue,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    n: usize,
    scratch: &mut [f32],
) {
    forward_as(s.plan(), s, sizes, post, x, w, b, y, n, scratch)
}

/// [`forward`] through the given path (for tests and benchmarks that compare
/// paths); `scratch` holds [`ConvShape::scratch_len_for`]`(plan)` floats.
///
/// # Panics
/// When the shape does not allow `plan` ([`ConvShape::allows`]).
#[inline(always)]
pub fn forward_as(
    plan: Plan,
    s: &ConvShape,
    sizes: Sizes,
    post: Epilogue,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    n: usize,
    scratch: &mut [f32],
) {
    assert!(s.allows(plan), "conv path {plan:?} cannot compute {s:?}");
    let (il, ol) = (s.input_len(), s.output_len());
    assert!(
        post.add.is_none_or(|a| a.len() >= n * ol),
        "cnnc bug: the added tensor does not fit the conv shape {s:?}"
    );
    match plan {
        Plan::Depthwise => {
            for i in 0..n {
                depthwise::forward(
                    s,
                    post,
                    i * ol,
                    &x[i * il..][..il],
                    w,
                    b,
                    &mut y[i * ol..][..ol],
                    scratch,
                );
            }
        }
        Plan::Direct => {
            for i in 0..n {
                let xp = pad(s, s.c, &x[i * il..][..il], scratch);
                direct_forward(s, post, i * ol, xp, w, b, &mut y[i * ol..][..ol]);
            }
        }
        Plan::Winograd => winograd::forward(s, post, x, w, b, y, n, scratch),
        Plan::Blocked => blocked::forward(s, post, x, w, b, y, n, scratch),
        Plan::Unfolded => unfolded_forward(s, sizes, post, x, w, b, y, n, scratch),
    }
}

/// Forward through one matrix product per sample and group.
#[inline(always)]
fn unfolded_forward(
    s: &ConvShape,
    sizes: Sizes,
    post: Epilogue,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    n: usize,
    scratch: &mut [f32],
) {
    let (k, p, fg) = (s.depth(), s.positions(), s.fg());
    let (gx, gy) = (s.cg() * s.h * s.w, fg * p);
    let (col, rest) = scratch.split_at_mut(max(2 * k * p, s.padded_sample_len()));
    let col = &mut col[..k * p];
    for i in 0..n {
        let ys = &mut y[i * s.output_len()..][..s.output_len()];
        for g in 0..s.g {
            let xg = &x[i * s.input_len() + g * gx..][..gx];
            let yg = &mut ys[g * gy..][..gy];
            let cols: &[f32] = if s.pointwise() {
                xg
            } else {
                im2col(s, sizes, xg, col);
                col
            };
            let wg = &w[g * fg * k..][..fg * k];
            matmul(
                fg,
                p,
                k,
                Operand::rows(wg, k),
                Operand::rows(cols, p),
                yg,
                p,
                false,
                rest,
            );
        }
        bias_and_finish(ys, p, b, post, i * s.output_len());
    }
}

/// Adds channel `f`'s bias (when given) to each of its `area` values in `ys` (one
/// sample, channels first) and applies the activation: the end of a convolution's
/// and a transposed convolution's forward pass.
#[inline(always)]
pub fn bias_and_activation(ys: &mut [f32], area: usize, b: Option<&[f32]>, act: Activation) {
    for (f, row) in ys.chunks_exact_mut(area).enumerate() {
        let bias = b.map_or(0.0, |b| b[f]);
        act.with_bias(row, bias);
    }
}

/// [`bias_and_activation`] with an [`Epilogue`]; `ys` sits at `at` in the output.
#[inline(always)]
fn bias_and_finish(ys: &mut [f32], area: usize, b: Option<&[f32]>, post: Epilogue, at: usize) {
    if post.add.is_none() {
        return bias_and_activation(ys, area, b, post.act);
    }
    for (f, row) in ys.chunks_exact_mut(area).enumerate() {
        let bias = b.map_or(0.0, |b| b[f]);
        row.iter_mut().for_each(|v| *v += bias);
        post.finish(row, at + f * area);
    }
}

/// Backward for `n` samples. `dy` is the gradient at the conv's output before its
/// activation (already multiplied by f'). Adds to `dw` and `db` (when given);
/// overwrites `dx` when given. `scratch` holds [`ConvShape::scratch_len`] floats.
#[inline(always)]
pub fn backward(
    s: &ConvShape,
    sizes: Sizes,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
    n: usize,
    scratch: &mut [f32],
) {
    backward_as(s.plan(), s, sizes, x, w, dy, dw, db, dx, n, scratch)
}

/// [`backward`] through the given path (the direct path's backward is the
/// unfolded one); `scratch` holds [`ConvShape::scratch_len_for`]`(plan)` floats.
///
/// # Panics
/// When the shape does not allow `plan` ([`ConvShape::allows`]).
#[inline(always)]
pub fn backward_as(
    plan: Plan,
    s: &ConvShape,
    sizes: Sizes,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    mut db: Option<&mut [f32]>,
    mut dx: Option<&mut [f32]>,
    n: usize,
    scratch: &mut [f32],
) {
    assert!(s.allows(plan), "conv path {plan:?} cannot compute {s:?}");
    let (il, ol) = (s.input_len(), s.output_len());
    // A strided layer's backward pass stays unfolded: the blocked data gradient
    // is a forward pass at unit strides, and with constant sizes one unfolding
    // per sample for both gradients measured faster in generated ResNet-8
    // training than the blocked weight gradient beside a data gradient of its own
    // (3,514-3,724 against 3,750-3,888 images/s, two threads, AMD EPYC Zen 5).
    if plan == Plan::Blocked && !s.strided() {
        return blocked::backward(s, x, w, dy, dw, db, dx, n, scratch);
    }
    if plan == Plan::Winograd {
        return winograd::backward(s, x, w, dy, dw, db, dx, n, scratch);
    }
    if plan == Plan::Depthwise {
        return depthwise::backward(s, x, w, dy, dw, db, dx, n, scratch);
    }
    let (k, p, fg) = (s.depth(), s.positions(), s.fg());
    let (gx, gy) = (s.cg() * s.h * s.w, fg * p);
    let (col, rest) = scratch.split_at_mut(k * p);
    let (dcol, work) = rest.split_at_mut(max(k * p, s.padded_sample_len().saturating_sub(k * p)));
    let dcol = &mut dcol[..k * p];
    for i in 0..n {
        let dys = &dy[i * ol..][..ol];
        if let Some(db) = db.as_deref_mut() {
            for (f, row) in dys.chunks_exact(p).enumerate() {
                db[f] += sum(row);
            }
        }
        for g in 0..s.g {
            let xg = &x[i * il + g * gx..][..gx];
            let dyg = &dys[g * gy..][..gy];
            let cols: &[f32] = if s.pointwise() {
                xg
            } else {
                im2col(s, sizes, xg, col);
                col
            };
            // dW_g += dY_g · colᵀ
            let dwg = &mut dw[g * fg * k..][..fg * k];
            matmul(
                fg,
                k,
                p,
                Operand::rows(dyg, p),
                Operand::transposed(cols, p),
                dwg,
                k,
                true,
                work,
            );
            if let Some(dx) = dx.as_deref_mut() {
                let dxg = &mut dx[i * il + g * gx..][..gx];
                let wg = Operand::transposed(&w[g * fg * k..][..fg * k], k);
                // dcol = W_gᵀ · dY_g, then fold back onto the input.
                if s.pointwise() {
                    matmul(k, p, fg, wg, Operand::rows(dyg, p), dxg, p, false, work);
                } else {
                    matmul(k, p, fg, wg, Operand::rows(dyg, p), dcol, p, false, work);
                    dxg.fill(0.0);
                    col2im(s, dcol, dxg);
                }
            }
        }
    }
}
