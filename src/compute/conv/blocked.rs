//! Register-blocked direct convolution for unit strides, vectorized along output
//! rows (the [`Plan::Blocked`](super::Plan::Blocked) path of [`super`]).
//!
//! Forward: a tile is `RF` filters x `CV` vectors of consecutive output columns of
//! one output row, `RF * CV` accumulators. For every input channel and tap, the
//! tile loads `CV` vectors of the (zero-padded) input row and broadcasts `RF`
//! weights, repacked per call so that one tap's weights of a filter block are
//! consecutive, then stores the tile once with the bias added and the activation
//! applied. Input channels are taken in chunks sized so that a block's weights and
//! the input rows under one output row stay in L1 while the block walks down the
//! output rows (partial sums go through the output). Nothing is unfolded: every
//! FMA reads operands already in registers or L1. Measured on conv64 (benches/conv.rs,
//! one thread, 32 samples): 71% of the AVX-512 FMA peak and 74% of the AVX2 one,
//! against 47% and 57% for unfold + matrix product.
//!
//! Backward: the data gradient is the same forward kernel on the transposed
//! problem (the output gradient, padded by `dilation * (size - 1) - pad`, under the
//! weights rotated by 180 degrees with filters and channels swapped, repacked per
//! call). The weight gradient takes one of two tilings (`by_columns`):
//! - **along filters** (more than 16 filters per group): no horizontal sums; the
//!   output gradient is transposed per sample to `[position][filter]`, and a tile
//!   accumulates `TB` taps of one input channel x `FV` vectors of filters,
//!   broadcasting one input cell per tap and position, into a transposed weight
//!   gradient `[channel][tap][filter]` in scratch that is added to `dw` once per
//!   call. Output rows are taken in blocks whose transposed gradient fits in L1
//!   while every channel and tap passes over it.
//! - **along output columns** (at most 16 filters, rows at least a vector long):
//!   with one filter vector the tiling above has one accumulator chain per tap and
//!   a broadcast per FMA, and the transposed copy costs as much as the products
//!   for a 3-channel stem. A `RowTile` instead holds `RF` filters x `TB` taps of
//!   one input channel as vectors of per-column partial sums, loading `RF`
//!   gradient rows and `TB` input runs per column vector for `RF·TB` FMAs, reading
//!   the gradient where it is; the partial sums live in scratch across the call's
//!   samples and are added across lanes once. A tile walks all of a channel's
//!   output rows (up to 64K gradient floats): shorter tiles lost a third to
//!   loading and storing their sums. Measured on ResNet's 16->16 3x3 (32x32, one
//!   thread, AMD EPYC Zen 5): 37% -> 67-70% of the AVX-512 peak for the weight
//!   gradient (58% -> 78% on AVX2), the 3->16 stem 18% -> 68%; and the sums are
//!   closer to an f64 reference (more, shorter chains).
//!
//! The same loops serve every instruction set through `simd::Lanes`; the register
//! block sizes depend on the vector width and the register count (see
//! `Kernels`).

#![warn(unsafe_op_in_unsafe_fn)]

use super::epilogue::Epilogue;
use super::runs::{copy_run, zero_run};
use super::shape::ConvShape;
use crate::compute::isa::{selected, Isa};
use crate::compute::simd::{F32x8, Lanes};
use crate::compute::Activation;

/// Zeros after a padded sample in scratch: the last vector of an output row may
/// load up to one vector past the last input row.
pub const SLACK: usize = 16;

/// One forward tile: where it reads and writes, and the loop sizes.
struct Tile {
    /// The padded input at the group's first channel, row `oh`, column `ow0`;
    /// its channel stride.
    x: *const f32,
    cs: usize,
    /// The taps' offsets in a padded channel.
    off: [usize; TAPS_MAX],
    taps: usize,
    cg: usize,
    /// The repacked weights of the tile's filter block (`[channel][tap][filter]`),
    /// and their tap stride (the block size; the last block may use fewer).
    w: *const f32,
    ws: usize,
    /// The output at the first filter, row `oh`, column `ow0`; the distance
    /// between filters; the valid columns (at most `CV * LANES`).
    y: *mut f32,
    ys: usize,
    cols: usize,
    bias: Option<*const f32>,
    /// The tensor the last chunk adds after the bias (at the tile's first
    /// filter, row and column, with the output's strides), then the activation.
    add: Option<*const f32>,
    act: Activation,
    /// The first chunk of channels starts from zero, later ones from the output;
    /// the last adds the bias and applies the activation.
    first: bool,
    last: bool,
}

/// The most taps per filter and channel the blocked path takes (an 8x8 window);
/// larger windows take the unfolded path.
pub const TAPS_MAX: usize = 64;

/// One weight-gradient tile: `TB` taps of one input channel x `FV` vectors of
/// filters, over a block of output rows.
struct WeightTile {
    /// The padded input channel at the block's first row, column 0; its row stride.
    x: *const f32,
    wp: usize,
    /// The transposed output gradient (`[position][filter]`) at the block's first
    /// position and the tile's first filter; its position stride.
    dy: *const f32,
    ps: usize,
    /// Output rows in the block, and their length.
    rows: usize,
    ow: usize,
    /// The taps' offsets in the padded channel.
    off: [usize; TB_MAX],
    /// The transposed weight gradient (`[channel][tap][filter]`) at this channel,
    /// the first tap and the first filter; its tap stride.
    dw: *mut f32,
    ts: usize,
}

/// The most taps a weight-gradient tile holds.
const TB_MAX: usize = 12;

/// One weight-gradient tile vectorized along output columns instead (for few
/// filters, see [`backward`]): `RF` filters x `TB` taps of one input channel over
/// a block of output rows, each accumulator a vector of per-column partial sums.
struct RowTile {
    /// The padded input channel at the block's first row, column 0; its row stride.
    x: *const f32,
    wp: usize,
    /// The output gradient at the tile's first filter and the block's first row;
    /// its filter stride.
    dy: *const f32,
    fs: usize,
    /// Output rows in the block, and their length.
    rows: usize,
    ow: usize,
    /// The taps' offsets in the padded channel.
    off: [usize; TB_MAX],
    /// The lane sums (`[channel][tap][filter][lane]`) at this channel, the first tap
    /// and the first filter; its tap stride.
    dw: *mut f32,
    ts: usize,
}

/// Filters per group in the transposed gradients, rounded up to whole vectors of
/// any instruction set (zeros past the last filter).
const fn filters_padded(s: &ConvShape) -> usize {
    s.fg().div_ceil(16) * 16
}

/// Output rows per weight-gradient block: the block's transposed output gradient
/// (rows x OW x filters) stays within 32 KiB of L1 while every input channel and
/// tap passes over it (fewer, longer tiles: each loads and stores its sums once).
const fn block_rows(s: &ConvShape) -> usize {
    let per_row = s.ow * filters_padded(s);
    let rows = 8192 / if per_row == 0 { 1 } else { per_row };
    if rows == 0 {
        1
    } else {
        rows
    }
}

/// One instruction set's tile functions and register budget.
#[derive(Clone, Copy)]
struct Kernels {
    lanes: usize,
    /// Accumulators a tile may hold, leaving registers for the operands.
    acc: usize,
    /// The largest forward tile: filters and column vectors.
    rf_max: usize,
    cv_max: usize,
    /// The largest weight-gradient tile's filter vectors.
    fv_max: usize,
    /// `forward(rf, cv, tile)` and `weights(fv, tb, tile)`.
    ///
    /// # Safety
    /// The tile's pointers cover what it reads and writes; `rf`, `cv`, `tb` are
    /// within the maxima; the instruction set is available.
    forward: unsafe fn(usize, usize, &Tile),
    weights: unsafe fn(usize, usize, &WeightTile),
    /// The column-vectorized weight-gradient tile `rows(rf, tb, tile)`, and its
    /// largest filter block.
    rows: unsafe fn(usize, usize, &RowTile),
    rows_rf_max: usize,
}

/// Why each budget: AVX-512 has 32 vector registers, so 24 accumulators leave
/// room for the row vectors and a broadcast weight (AVX-512 FMAs also take the
/// broadcast from memory); AVX2 has 16, so 12 accumulators, at most 2 row vectors
/// and a weight fill 15. Wider rows of vectors share each broadcast weight, more
/// filters share each row vector. The weight-gradient tile keeps its filter
/// vectors of output gradient in registers beside the accumulators: 4 filter
/// vectors x 6 taps + 4 on AVX-512, 2 x 6 + 2 + 1 broadcast on AVX2. The portable
/// vectors are two SSE registers each on the x86-64 baseline, so 6 of them.
fn kernels(isa: Isa) -> Kernels {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Kernels {
            lanes: 16,
            acc: 24,
            rf_max: 12,
            cv_max: 2,
            fv_max: 4,
            forward: x86::forward_avx512,
            weights: x86::weights_avx512,
            rows: x86::rows_avx512,
            rows_rf_max: 4,
        },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Kernels {
            lanes: 8,
            acc: 12,
            rf_max: 6,
            cv_max: 2,
            fv_max: 2,
            forward: x86::forward_avx2,
            weights: x86::weights_avx2,
            rows: x86::rows_avx2,
            rows_rf_max: 2,
        },
        _ => Kernels {
            lanes: 8,
            acc: 6,
            rf_max: 6,
            cv_max: 2,
            fv_max: 1,
            forward: forward_portable,
            weights: weights_portable,
            rows: rows_portable,
            rows_rf_max: 2,
        },
    }
}

/// Splits `total` into equal blocks of at most `most`: the block size.
const fn balanced(total: usize, most: usize) -> usize {
    let most = if most == 0 { 1 } else { most };
    let blocks = total.div_ceil(most);
    if blocks == 0 {
        1
    } else {
        total.div_ceil(blocks)
    }
}

/// The forward tile `(rf, cv)` for `fg` filters per group and rows of `ow`.
fn forward_block(k: &Kernels, fg: usize, ow: usize) -> (usize, usize) {
    let cv = ow.div_ceil(k.lanes).clamp(1, k.cv_max);
    (balanced(fg, (k.acc / cv).min(k.rf_max)), cv)
}

/// The weight-gradient tile `(fv, tb)` for `vectors` filter vectors per group
/// and `taps` taps.
fn weight_block(k: &Kernels, vectors: usize, taps: usize) -> (usize, usize) {
    let fv = balanced(vectors, k.fv_max);
    (fv, balanced(taps, (k.acc / fv).clamp(1, TB_MAX)))
}

/// Copies one sample into `xp` with zero borders and zero slack after it,
/// writing every cell once.
#[inline(always)]
fn pad(s: &ConvShape, x: &[f32], xp: &mut [f32]) {
    let (hp, wp) = (s.hp(), s.wp());
    let (xp, slack) = xp[..s.padded_sample_len() + SLACK].split_at_mut(s.padded_sample_len());
    slack.fill(0.0);
    for (c, xc) in xp.chunks_exact_mut(hp * wp).enumerate() {
        let (top, rest) = xc.split_at_mut(s.pt * wp);
        top.fill(0.0);
        let (mid, bottom) = rest.split_at_mut(s.h * wp);
        bottom.fill(0.0);
        for (h, row) in mid.chunks_exact_mut(wp).enumerate() {
            zero_run(&mut row[..s.pl]);
            copy_run(&mut row[s.pl..s.pl + s.w], &x[(c * s.h + h) * s.w..][..s.w]);
            zero_run(&mut row[s.pl + s.w..]);
        }
    }
}

/// Forward for `n` samples; `scratch` holds [`forward_scratch`] floats.
///
/// # Panics
/// When a slice is shorter than the shape needs (a cnnc bug: generated code sizes
/// every buffer from the same constant shape).
pub fn forward(
    s: &ConvShape,
    post: Epilogue,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    n: usize,
    scratch: &mut [f32],
) {
    let (il, ol) = (s.input_len(), s.output_len());
    assert!(
        x.len() >= n * il
            && w.len() >= s.weight_len()
            && b.is_none_or(|b| b.len() >= s.f)
            && y.len() >= n * ol
            && post.add.is_none_or(|a| a.len() >= n * ol)
            && scratch.len() >= forward_scratch(s)
            && s.sw == 1,
        "cnnc bug: a buffer does not fit its constant conv shape {s:?}"
    );
    let k = kernels(selected());
    let (rf, cv) = forward_block(&k, s.fg(), s.ow);
    let (hp, wp, cg, fg, width, taps) = (s.hp(), s.wp(), s.cg(), s.fg(), cv * k.lanes, s.kh * s.kw);
    let (xp, wk) = scratch.split_at_mut(s.padded_sample_len() + SLACK);
    let blocks = fg.div_ceil(rf);
    repack(s, w, rf, wk);
    let mut off = [0; TAPS_MAX];
    for (t, o) in off.iter_mut().enumerate().take(taps) {
        *o = t / s.kw * s.dh * wp + t % s.kw * s.dw;
    }
    let chunk = channel_chunk(s, rf, width);
    for i in 0..n {
        pad(s, &x[i * il..][..il], xp);
        let ys = &mut y[i * ol..][..ol];
        for g in 0..s.g {
            for c0 in (0..cg).step_by(chunk) {
                for block in 0..blocks {
                    let (f0, f) = (block * rf, g * fg + block * rf);
                    for oh in 0..s.oh {
                        for ow0 in (0..s.ow).step_by(width) {
                            let cols = (s.ow - ow0).min(width);
                            let t = Tile {
                                x: xp[((g * cg + c0) * hp + oh * s.sh) * wp + ow0..].as_ptr(),
                                cs: hp * wp,
                                off,
                                taps,
                                cg: chunk.min(cg - c0),
                                w: wk[((g * blocks + block) * cg + c0) * taps * rf..].as_ptr(),
                                ws: rf,
                                y: ys[(f * s.oh + oh) * s.ow + ow0..].as_mut_ptr(),
                                ys: s.positions(),
                                cols,
                                bias: b.map(|b| b[f..].as_ptr()),
                                add: post.add.map(|a| a[i * ol + (f * s.oh + oh) * s.ow + ow0..].as_ptr()),
                                act: post.act,
                                first: c0 == 0,
                                last: c0 + chunk >= cg,
                            };
                            // SAFETY: the tile reads channels g*cg + c0 .. of the chunk in
                            // the padded sample from row oh*sh, rows up to (kh-1)*dh further
                            // and columns ow0 + (kw-1)*dw + cv*lanes - 1 at most: inside the
                            // padded sample for every valid column, and at most lanes - 1 past
                            // the last row, inside the SLACK. It reads those channels' taps *
                            // rf repacked weights of this block (inside `wk`, see `repack`)
                            // and min(rf, fg - f0) biases from f, and reads and writes those
                            // filters' rows at columns ow0 .. ow0 + cols (and reads the same
                            // places of `post.add`). The lengths were
                            // checked above; `k` is the selected (available) instruction set's.
                            unsafe { (k.forward)(rf.min(fg - f0), cols.div_ceil(k.lanes), &t) };
                        }
                    }
                }
            }
        }
    }
}

/// Input channels per pass of the forward tiles: a block's weights and the
/// input rows of one output row stay within 24 KiB of L1 (half of it on current
/// x86 cores) while the block walks down the output rows; each later pass
/// starts from the partial sums in the output.
fn channel_chunk(s: &ConvShape, rf: usize, width: usize) -> usize {
    let rows = (s.kh - 1) * s.dh + 1;
    let per_channel = s.kh * s.kw * rf + rows * (width + (s.kw - 1) * s.dw);
    balanced(s.cg(), (8192 / per_channel).max(1))
}

/// Copies the weights into `wk` as `[group][block][channel][tap][rf]` for blocks
/// of `rf` filters (zeros past the group's last filter), so a tile's weights for
/// one tap are `rf` consecutive floats and its whole block one forward stream.
fn repack(s: &ConvShape, w: &[f32], rf: usize, wk: &mut [f32]) {
    let (cg, fg, taps) = (s.cg(), s.fg(), s.kh * s.kw);
    let blocks = fg.div_ceil(rf);
    for g in 0..s.g {
        for block in 0..blocks {
            let dst = &mut wk[(g * blocks + block) * cg * taps * rf..][..cg * taps * rf];
            for r in 0..rf {
                let f = block * rf + r;
                for ci in 0..cg {
                    for t in 0..taps {
                        dst[(ci * taps + t) * rf + r] = if f < fg {
                            w[((g * fg + f) * cg + ci) * taps + t]
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

/// The scratch [`forward`] needs: a padded sample and the repacked weights (the
/// blocks of a group cover at most 11 filters past its last, for any
/// instruction set's block size).
pub const fn forward_scratch(s: &ConvShape) -> usize {
    s.padded_sample_len() + SLACK + (s.f + 12 * s.g) * s.depth()
}

/// The problem whose forward pass is this one's data gradient (unit strides):
/// channels and filters swap, the output gradient is padded by the window's
/// extent minus the original padding.
pub const fn transposed(s: &ConvShape) -> ConvShape {
    let (eh, ew) = (s.dh * (s.kh - 1), s.dw * (s.kw - 1));
    ConvShape {
        c: s.f,
        h: s.oh,
        w: s.ow,
        f: s.c,
        kh: s.kh,
        kw: s.kw,
        sh: 1,
        sw: 1,
        pt: eh.saturating_sub(s.pt),
        pb: eh.saturating_sub(s.pb),
        pl: ew.saturating_sub(s.pl),
        pr: ew.saturating_sub(s.pr),
        oh: s.h,
        ow: s.w,
        dh: s.dh,
        dw: s.dw,
        g: s.g,
    }
}

/// The scratch [`backward`] needs: the padded input, the transposed output and
/// weight gradients, the rotated weights and the transposed problem's padded
/// output gradient.
pub const fn backward_scratch(s: &ConvShape) -> usize {
    s.padded_sample_len() + SLACK + weight_sums_len(s) + s.weight_len() + forward_scratch(&transposed(s))
}

/// Backward for `n` samples: adds to `dw` and `db` (when given), overwrites `dx`
/// (when given). Unit strides, and padding at most the window's extent per side.
///
/// # Panics
/// As [`forward`].
pub fn backward(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
    n: usize,
    scratch: &mut [f32],
) {
    let (il, ol) = (s.input_len(), s.output_len());
    assert!(
        x.len() >= n * il
            && w.len() >= s.weight_len()
            && dy.len() >= n * ol
            && dw.len() >= s.weight_len()
            && db.as_ref().is_none_or(|b| b.len() >= s.f)
            && dx.as_ref().is_none_or(|d| d.len() >= n * il)
            && scratch.len() >= backward_scratch(s)
            && s.sw == 1
            && s.sh == 1,
        "cnnc bug: a buffer does not fit its constant conv shape {s:?}"
    );
    let (xp, rest) = scratch.split_at_mut(s.padded_sample_len() + SLACK);
    let (sums, rest) = rest.split_at_mut(weight_sums_len(s));
    let (wr, rest) = rest.split_at_mut(s.weight_len());
    let t = transposed(s);
    if dx.is_some() {
        rotate(s, w, wr);
    }
    let k = kernels(selected());
    if let Some(db) = db {
        for dys in dy[..n * ol].chunks_exact(ol) {
            for (f, row) in dys.chunks_exact(s.positions()).enumerate() {
                db[f] += super::sum(row);
            }
        }
    }
    weights_with(&k, s, x, dy, dw, n, xp, sums);
    if let Some(dx) = dx {
        forward(
            &t,
            Activation::Identity.into(),
            &dy[..n * ol],
            wr,
            None,
            &mut dx[..n * il],
            n,
            rest,
        );
    }
}

/// Adds the weight gradient of `n` samples to `dw` for any shape with unit
/// strides (the depthwise path's too); `scratch` holds [`weight_scratch`] floats.
///
/// # Panics
/// As [`forward`].
pub fn weight_gradient(s: &ConvShape, x: &[f32], dy: &[f32], dw: &mut [f32], n: usize, scratch: &mut [f32]) {
    assert!(
        x.len() >= n * s.input_len()
            && dy.len() >= n * s.output_len()
            && dw.len() >= s.weight_len()
            && scratch.len() >= weight_scratch(s)
            && s.sw == 1
            && s.sh == 1
            && s.kh * s.kw <= TAPS_MAX,
        "cnnc bug: a buffer does not fit its constant conv shape {s:?}"
    );
    let (xp, sums) = scratch.split_at_mut(s.padded_sample_len() + SLACK);
    weights_with(&kernels(selected()), s, x, dy, dw, n, xp, sums);
}

/// The scratch [`weight_gradient`] needs.
pub const fn weight_scratch(s: &ConvShape) -> usize {
    s.padded_sample_len() + SLACK + weight_sums_len(s)
}

/// The weight gradient by the tiling [`by_columns`] picks.
#[allow(clippy::too_many_arguments)]
fn weights_with(
    k: &Kernels,
    s: &ConvShape,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    n: usize,
    xp: &mut [f32],
    sums: &mut [f32],
) {
    if by_columns(k, s) {
        weights_by_columns(k, s, x, dy, dw, n, xp, sums);
    } else {
        weights_by_filters(k, s, x, dy, dw, n, xp, sums);
    }
}

/// Whether the weight gradient runs on [`RowTile`]s (vectorized along output
/// columns) rather than [`WeightTile`]s (along filters): when a group's filters
/// fill at most one vector, a filter-vectorized tile has one accumulator chain per
/// tap, a broadcast per FMA and a transposed copy of the output gradient per
/// sample, while a column tile shares each loaded vector among several filters
/// or taps and reads the gradient where it is.
fn by_columns(k: &Kernels, s: &ConvShape) -> bool {
    s.fg() <= 16 && s.ow >= k.lanes
}

/// The weight-gradient scratch of either tiling: the transposed output and weight
/// gradients, or the lane sums (16 lanes at most) when a group has at most 16
/// filters.
const fn weight_sums_len(s: &ConvShape) -> usize {
    let taps = s.kh * s.kw;
    let filters = s.positions() * filters_padded(s) + s.c * taps * filters_padded(s);
    let columns = if s.fg() <= 16 { s.c * taps * s.fg() * 16 } else { 0 };
    max(filters, columns)
}

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// Output rows per column-tile block: the block's output gradient for all of a
/// group's filters stays within 16 KiB of L1 while every channel and tap passes
/// over it.
const fn column_block_rows(s: &ConvShape) -> usize {
    let per_row = s.ow * s.fg();
    let rows = 65536 / if per_row == 0 { 1 } else { per_row };
    if rows == 0 {
        1
    } else {
        rows
    }
}

/// Adds the weight gradient of `n` samples to `dw` by [`RowTile`]s: lane sums in
/// `sums` (`[channel][tap][filter][lane]`), added across lanes at the end.
#[allow(clippy::too_many_arguments)]
fn weights_by_columns(
    k: &Kernels,
    s: &ConvShape,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    n: usize,
    xp: &mut [f32],
    sums: &mut [f32],
) {
    let (il, ol, taps, lanes) = (s.input_len(), s.output_len(), s.kh * s.kw, k.lanes);
    let (hp, wp, cg, fg, p) = (s.hp(), s.wp(), s.cg(), s.fg(), s.positions());
    let sums = &mut sums[..s.c * taps * fg * lanes];
    sums.fill(0.0);
    let rf = balanced(fg, k.rows_rf_max);
    let tb = balanced(taps, (k.acc / rf).clamp(1, TB_MAX));
    let rows = column_block_rows(s);
    let mut off = [0; TB_MAX];
    for i in 0..n {
        let dys = &dy[i * ol..][..ol];
        pad(s, &x[i * il..][..il], xp);
        for g in 0..s.g {
            for r0 in (0..s.oh).step_by(rows) {
                for ci in 0..cg {
                    let c = g * cg + ci;
                    for f0 in (0..fg).step_by(rf) {
                        for t0 in (0..taps).step_by(tb) {
                            for (j, o) in off.iter_mut().enumerate().take(tb.min(taps - t0)) {
                                let tap = t0 + j;
                                *o = tap / s.kw * s.dh * wp + tap % s.kw * s.dw;
                            }
                            let tile = RowTile {
                                x: xp[(c * hp + r0) * wp..].as_ptr(),
                                wp,
                                dy: dys[(g * fg + f0) * p + r0 * s.ow..].as_ptr(),
                                fs: p,
                                rows: rows.min(s.oh - r0),
                                ow: s.ow,
                                off,
                                dw: sums[((c * taps + t0) * fg + f0) * lanes..].as_mut_ptr(),
                                ts: fg * lanes,
                            };
                            // SAFETY: the tile reads the padded channel c at rows r0 + r +
                            // tap row * dh, columns o + tap column * dw for its output rows
                            // r and the valid columns o < ow (the last vector masked) --
                            // inside the padded sample; the output gradient of filters
                            // g*fg + f0 .. + rf at rows r0 .. r0 + rows, the valid columns;
                            // and it reads and writes rf lane vectors of taps t0 .. t0 + tb
                            // of channel c in `sums` (its length is c*taps*fg*lanes).
                            // `k` is the selected (available) instruction set's.
                            unsafe { (k.rows)(rf.min(fg - f0), tb.min(taps - t0), &tile) };
                        }
                    }
                }
            }
        }
    }
    for g in 0..s.g {
        for fi in 0..fg {
            for ci in 0..cg {
                let c = g * cg + ci;
                let dwf = &mut dw[((g * fg + fi) * cg + ci) * taps..][..taps];
                for (tap, d) in dwf.iter_mut().enumerate() {
                    *d += sums[((c * taps + tap) * fg + fi) * lanes..][..lanes]
                        .iter()
                        .sum::<f32>();
                }
            }
        }
    }
}

/// Adds the weight gradient of `n` samples to `dw` by [`WeightTile`]s: the output
/// gradient transposed per sample, a transposed weight gradient in `sums`.
#[allow(clippy::too_many_arguments)]
fn weights_by_filters(
    k: &Kernels,
    s: &ConvShape,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    n: usize,
    xp: &mut [f32],
    sums: &mut [f32],
) {
    let (il, ol) = (s.input_len(), s.output_len());
    let (fgp, taps) = (filters_padded(s), s.kh * s.kw);
    let (dyt, rest) = sums.split_at_mut(s.positions() * fgp);
    let dwt = &mut rest[..s.c * taps * fgp];
    // Filters past fg stay zero in both transposed gradients.
    dyt.fill(0.0);
    dwt.fill(0.0);
    let (hp, wp, cg, fg, p) = (s.hp(), s.wp(), s.cg(), s.fg(), s.positions());
    let vectors = fg.div_ceil(k.lanes);
    let (fv, tb) = weight_block(k, vectors, taps);
    let rows = block_rows(s);
    let mut off = [0; TB_MAX];
    for i in 0..n {
        let dys = &dy[i * ol..][..ol];
        pad(s, &x[i * il..][..il], xp);
        for g in 0..s.g {
            // Position-major: the writes are contiguous, and the fg strided read
            // streams each reuse a cache line for 16 positions.
            let dyg = &dys[g * fg * p..][..fg * p];
            for (q, row) in dyt.chunks_exact_mut(fgp).enumerate() {
                for (fi, d) in row[..fg].iter_mut().enumerate() {
                    *d = dyg[fi * p + q];
                }
            }
            for r0 in (0..s.oh).step_by(rows) {
                for ci in 0..cg {
                    let c = g * cg + ci;
                    for v0 in (0..vectors).step_by(fv) {
                        for t0 in (0..taps).step_by(tb) {
                            for (j, o) in off.iter_mut().enumerate().take(tb.min(taps - t0)) {
                                let tap = t0 + j;
                                *o = tap / s.kw * s.dh * wp + tap % s.kw * s.dw;
                            }
                            let tile = WeightTile {
                                x: xp[(c * hp + r0) * wp..].as_ptr(),
                                wp,
                                dy: dyt[r0 * s.ow * fgp + v0 * k.lanes..].as_ptr(),
                                ps: fgp,
                                rows: rows.min(s.oh - r0),
                                ow: s.ow,
                                off,
                                dw: dwt[(c * taps + t0) * fgp + v0 * k.lanes..].as_mut_ptr(),
                                ts: fgp,
                            };
                            // SAFETY: the tile reads the padded channel c at rows r0 + r +
                            // tap row * dh, columns o + tap column * dw for its output rows
                            // r and columns o < ow -- inside the padded sample; the
                            // transposed output gradient at positions of rows r0.. r0 +
                            // rows, filter vectors v0 .. v0 + fv (within fgp); and it adds
                            // to the same filter vectors of taps t0 .. t0 + tb of channel c
                            // in dwt. `k` is the selected (available) instruction set's.
                            unsafe { (k.weights)(fv.min(vectors - v0), tb.min(taps - t0), &tile) };
                        }
                    }
                }
            }
        }
    }
    for g in 0..s.g {
        for fi in 0..fg {
            for ci in 0..cg {
                let dwf = &mut dw[((g * fg + fi) * cg + ci) * taps..][..taps];
                for (tap, d) in dwf.iter_mut().enumerate() {
                    *d += dwt[((g * cg + ci) * taps + tap) * fgp + fi];
                }
            }
        }
    }
}

/// The transposed problem's weights: `wr[c][f'][i][j] = w[g*fg + f'][c'][KH-1-i][KW-1-j]`
/// for input channel `c = g*cg + c'`.
fn rotate(s: &ConvShape, w: &[f32], wr: &mut [f32]) {
    let (cg, fg, taps) = (s.cg(), s.fg(), s.kh * s.kw);
    for g in 0..s.g {
        for ci in 0..cg {
            for fi in 0..fg {
                let src = &w[((g * fg + fi) * cg + ci) * taps..][..taps];
                let dst = &mut wr[((g * cg + ci) * fg + fi) * taps..][..taps];
                for (d, v) in dst.iter_mut().zip(src.iter().rev()) {
                    *d = *v;
                }
            }
        }
    }
}

/// `acc` plus the products of one forward tile's chunk of channels: `RF`
/// filters x `CV` vectors of output columns.
///
/// # Safety
/// As [`forward_tile`]: `x` is the tile's input at channel 0, `w` its repacked
/// weights, `off` its `taps` offsets.
#[inline(always)]
unsafe fn accumulate<L: Lanes, const RF: usize, const CV: usize>(
    mut acc: [[L; CV]; RF],
    x: *const f32,
    cs: usize,
    cg: usize,
    off: *const usize,
    taps: usize,
    w: *const f32,
    ws: usize,
) -> [[L; CV]; RF] {
    // SAFETY: every address is one the contract covers (see `forward`).
    unsafe {
        let mut w = w;
        let mut xc = x;
        for _ in 0..cg {
            for ti in 0..taps {
                let xr = xc.add(*off.add(ti));
                let mut xv = [L::zero(); CV];
                for (v, x) in xv.iter_mut().enumerate() {
                    *x = L::load(xr.add(v * L::LANES));
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let wv = L::splat(*w.add(r));
                    for (a, &x) in acc.iter_mut().zip(&xv) {
                        *a = L::mul_add(wv, x, *a);
                    }
                }
                w = w.add(ws);
            }
            xc = xc.add(cs);
        }
        acc
    }
}

/// Accumulates and stores one forward tile.
///
/// # Safety
/// `Kernels::forward`'s contract with `RF` filters and `CV` vectors; `L`'s target
/// features are enabled.
#[inline(always)]
unsafe fn forward_tile<L: Lanes, const RF: usize, const CV: usize>(t: &Tile) {
    // SAFETY: every address is one the contract covers (see `forward`).
    unsafe {
        let mut acc = [[L::zero(); CV]; RF];
        if !t.first {
            for (r, acc) in acc.iter_mut().enumerate() {
                let yr = t.y.add(r * t.ys);
                for (v, a) in acc.iter_mut().enumerate() {
                    let done = v * L::LANES;
                    *a = if t.cols - done >= L::LANES {
                        L::load(yr.add(done))
                    } else {
                        L::load_first(yr.add(done), t.cols - done)
                    };
                }
            }
        }
        let acc = accumulate::<L, RF, CV>(acc, t.x, t.cs, t.cg, t.off.as_ptr(), t.taps, t.w, t.ws);
        // The last chunk's epilogue in registers: bias, the added tensor, relu;
        // other activations over the stored row.
        let add = t.add.filter(|_| t.last);
        let relu = t.last && t.act == Activation::Relu;
        for (r, acc) in acc.iter().enumerate() {
            let bias = L::splat(match t.bias {
                Some(b) if t.last => *b.add(r),
                _ => 0.0,
            });
            let yr = t.y.add(r * t.ys);
            for (v, &a) in acc.iter().enumerate() {
                let (done, mut out) = (v * L::LANES, L::add(a, bias));
                let full = t.cols - done >= L::LANES;
                if let Some(add) = add {
                    let at = add.add(r * t.ys + done);
                    let joined = if full {
                        L::load(at)
                    } else {
                        L::load_first(at, t.cols - done)
                    };
                    out = L::add(out, joined);
                }
                if relu {
                    out = L::relu(out);
                }
                if full {
                    L::store(yr.add(done), out);
                } else {
                    L::store_first(yr.add(done), t.cols - done, out);
                }
            }
            if t.last && !matches!(t.act, Activation::Identity | Activation::Relu) {
                t.act.forward(std::slice::from_raw_parts_mut(yr, t.cols));
            }
        }
    }
}

/// Adds one weight-gradient tile's block of output positions to the transposed
/// weight gradient.
///
/// # Safety
/// `Kernels::weights`'s contract with `FV` filter vectors and `TB` taps; `L`'s
/// target features are enabled.
#[inline(always)]
unsafe fn weight_tile<L: Lanes, const FV: usize, const TB: usize>(t: &WeightTile) {
    // SAFETY: every address is one the contract covers (see `backward`).
    unsafe {
        let (dw, ts) = (t.dw, t.ts);
        let mut acc = [[L::zero(); FV]; TB];
        for (j, acc) in acc.iter_mut().enumerate() {
            for (v, a) in acc.iter_mut().enumerate() {
                *a = L::load(dw.add(j * ts + v * L::LANES));
            }
        }
        let acc = weight_sums::<L, FV, TB>(acc, t.x, t.wp, t.dy, t.ps, t.rows, t.ow, t.off);
        for (j, acc) in acc.iter().enumerate() {
            for (v, &a) in acc.iter().enumerate() {
                L::store(dw.add(j * ts + v * L::LANES), a);
            }
        }
    }
}

/// `acc` plus one weight-gradient tile's products over its block of positions
/// (the loop apart from the tile's struct, so the sums stay in registers).
///
/// # Safety
/// As [`weight_tile`], with the tile's fields as arguments.
#[inline(always)]
unsafe fn weight_sums<L: Lanes, const FV: usize, const TB: usize>(
    mut acc: [[L; FV]; TB],
    x: *const f32,
    wp: usize,
    dy: *const f32,
    ps: usize,
    rows: usize,
    ow: usize,
    off: [usize; TB_MAX],
) -> [[L; FV]; TB] {
    // SAFETY: every address is one the contract covers (see `backward`).
    unsafe {
        for r in 0..rows {
            let xr = x.add(r * wp);
            let gr = dy.add(r * ow * ps);
            for o in 0..ow {
                let mut g = [L::zero(); FV];
                for (v, g) in g.iter_mut().enumerate() {
                    *g = L::load(gr.add(o * ps + v * L::LANES));
                }
                let xo = xr.add(o);
                for (acc, &off) in acc.iter_mut().zip(&off) {
                    let x = L::splat(*xo.add(off));
                    for (a, &g) in acc.iter_mut().zip(&g) {
                        *a = L::mul_add(x, g, *a);
                    }
                }
            }
        }
        acc
    }
}

/// Adds one column tile's block of output rows to its lane sums.
///
/// # Safety
/// `Kernels::rows`'s contract with `RF` filters and `TB` taps; `L`'s target
/// features are enabled.
#[inline(always)]
unsafe fn row_tile<L: Lanes, const RF: usize, const TB: usize>(t: &RowTile) {
    // SAFETY: every address is one the contract covers (see `weights_by_columns`).
    unsafe {
        let mut acc = [[L::zero(); TB]; RF];
        for (r, acc) in acc.iter_mut().enumerate() {
            for (j, a) in acc.iter_mut().enumerate() {
                *a = L::load(t.dw.add(j * t.ts + r * L::LANES));
            }
        }
        let full = t.ow / L::LANES * L::LANES;
        for row in 0..t.rows {
            let (xr, gr) = (t.x.add(row * t.wp), t.dy.add(row * t.ow));
            let mut o = 0;
            while o < full {
                acc = column_sums::<L, RF, TB>(acc, xr.add(o), gr.add(o), t.fs, &t.off, L::LANES);
                o += L::LANES;
            }
            if o < t.ow {
                acc = column_sums::<L, RF, TB>(acc, xr.add(o), gr.add(o), t.fs, &t.off, t.ow - o);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (j, &a) in acc.iter().enumerate() {
                L::store(t.dw.add(j * t.ts + r * L::LANES), a);
            }
        }
    }
}

/// `acc` plus one vector of `cols` columns (`L::LANES` or fewer, the rest masked
/// off) of a column tile's products: `RF` filters' gradients times `TB` taps' inputs.
///
/// # Safety
/// As [`row_tile`]: `x` and `dy` at the vector's first column.
#[inline(always)]
unsafe fn column_sums<L: Lanes, const RF: usize, const TB: usize>(
    mut acc: [[L; TB]; RF],
    x: *const f32,
    dy: *const f32,
    fs: usize,
    off: &[usize; TB_MAX],
    cols: usize,
) -> [[L; TB]; RF] {
    // SAFETY: every address is one the contract covers (see `weights_by_columns`).
    unsafe {
        let load = |p: *const f32| {
            if cols == L::LANES {
                L::load(p)
            } else {
                L::load_first(p, cols)
            }
        };
        let mut g = [L::zero(); RF];
        for (r, g) in g.iter_mut().enumerate() {
            *g = load(dy.add(r * fs));
        }
        for (j, &off) in off.iter().enumerate().take(TB) {
            let xv = load(x.add(off));
            for (acc, &g) in acc.iter_mut().zip(&g) {
                acc[j] = L::mul_add(g, xv, acc[j]);
            }
        }
        acc
    }
}

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

/// # Safety
/// `Kernels::forward`'s contract.
unsafe fn forward_portable(rf: usize, cv: usize, t: &Tile) {
    // SAFETY: the contract is passed on; plain Rust needs no features.
    unsafe { tiles!(forward_tile, F32x8, rf, cv, t, [1 2 3 4 5 6], [1 2]) }
}

/// # Safety
/// `Kernels::weights`'s contract.
unsafe fn weights_portable(fv: usize, tb: usize, t: &WeightTile) {
    // SAFETY: the contract is passed on; plain Rust needs no features.
    unsafe { tiles!(weight_tile, F32x8, fv, tb, t, [1], [1 2 3 4 5 6 7 8 9 10 11 12]) }
}

/// # Safety
/// `Kernels::rows`'s contract.
unsafe fn rows_portable(rf: usize, tb: usize, t: &RowTile) {
    // SAFETY: the contract is passed on; plain Rust needs no features.
    unsafe { tiles!(row_tile, F32x8, rf, tb, t, [1 2], [1 2 3 4 5 6]) }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use crate::compute::simd::{F32x16, F32x8Avx};

    /// # Safety
    /// `Kernels::forward`'s contract; the CPU has AVX-512F.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn forward_avx512(rf: usize, cv: usize, t: &Tile) {
        // SAFETY: the contract is passed on; the features are enabled here.
        unsafe { tiles!(forward_tile, F32x16, rf, cv, t, [1 2 3 4 5 6 7 8 9 10 11 12], [1 2]) }
    }

    /// # Safety
    /// `Kernels::weights`'s contract; the CPU has AVX-512F.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn weights_avx512(fv: usize, tb: usize, t: &WeightTile) {
        // SAFETY: the contract is passed on; the features are enabled here.
        unsafe { tiles!(weight_tile, F32x16, fv, tb, t, [1 2 3 4], [1 2 3 4 5 6 7 8 9 10 11 12]) }
    }

    /// # Safety
    /// `Kernels::rows`'s contract; the CPU has AVX-512F.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn rows_avx512(rf: usize, tb: usize, t: &RowTile) {
        // SAFETY: the contract is passed on; the features are enabled here.
        unsafe { tiles!(row_tile, F32x16, rf, tb, t, [1 2 3 4], [1 2 3 4 5 6 7 8 9 10 11 12]) }
    }

    /// # Safety
    /// `Kernels::rows`'s contract; the CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows_avx2(rf: usize, tb: usize, t: &RowTile) {
        // SAFETY: the contract is passed on; the features are enabled here.
        unsafe { tiles!(row_tile, F32x8Avx, rf, tb, t, [1 2], [1 2 3 4 5 6 7 8 9 10 11 12]) }
    }

    /// # Safety
    /// `Kernels::forward`'s contract; the CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward_avx2(rf: usize, cv: usize, t: &Tile) {
        // SAFETY: the contract is passed on; the features are enabled here.
        unsafe { tiles!(forward_tile, F32x8Avx, rf, cv, t, [1 2 3 4 5 6], [1 2]) }
    }

    /// # Safety
    /// `Kernels::weights`'s contract; the CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weights_avx2(fv: usize, tb: usize, t: &WeightTile) {
        // SAFETY: the contract is passed on; the features are enabled here.
        unsafe { tiles!(weight_tile, F32x8Avx, fv, tb, t, [1 2], [1 2 3 4 5 6 7 8 9 10 11 12]) }
    }
}
