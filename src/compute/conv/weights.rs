//! The weight gradient of the direct convolution paths, for unit strides: the
//! blocked path's backward pass, Winograd's (for accuracy) and depthwise's (see
//! [`super::blocked`], [`super::winograd`], [`super::depthwise`]).
//!
//! The weight gradient takes one of two tilings (`by_columns`):
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
//! `WeightKernels`).

#![warn(unsafe_op_in_unsafe_fn)]

use super::runs::{balanced, max, pad, rows_within, SLACK};
use super::shape::ConvShape;
use crate::compute::isa::{selected, Isa};
use crate::compute::simd::{F32x8, Lanes};

/// One instruction set's weight-gradient tiles and register budget.
#[derive(Clone, Copy)]
struct WeightKernels {
    lanes: usize,
    /// Accumulators a tile may hold, leaving registers for the operands.
    acc: usize,
    /// The largest filter-tiling tile's filter vectors.
    fv_max: usize,
    /// The largest column tile's filter block.
    rows_rf_max: usize,
    /// `weights(fv, tb, tile)` and `rows(rf, tb, tile)`.
    ///
    /// # Safety
    /// The tile's pointers cover what it reads and writes; `fv`, `rf`, `tb` are
    /// within the maxima; the instruction set is available.
    weights: unsafe fn(usize, usize, &WeightTile),
    rows: unsafe fn(usize, usize, &RowTile),
}

/// Why each budget: the filter tiling keeps its filter vectors of output gradient
/// in registers beside the accumulators: 4 filter vectors x 6 taps + 4 on
/// AVX-512, 2 x 6 + 2 + 1 broadcast on AVX2; a column tile keeps its `RF`
/// gradient vectors and one input run: 4 x 6 + 4 + 1 on AVX-512, 2 x 6 + 2 + 1
/// on AVX2. The portable vectors are two SSE registers each on the x86-64
/// baseline, so 6 of them.
fn kernels(isa: Isa) -> WeightKernels {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => WeightKernels {
            lanes: 16,
            acc: 24,
            fv_max: 4,
            rows_rf_max: 4,
            weights: x86::weights_avx512,
            rows: x86::rows_avx512,
        },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => WeightKernels {
            lanes: 8,
            acc: 12,
            fv_max: 2,
            rows_rf_max: 2,
            weights: x86::weights_avx2,
            rows: x86::rows_avx2,
        },
        _ => WeightKernels {
            lanes: 8,
            acc: 6,
            fv_max: 1,
            rows_rf_max: 2,
            weights: weights_portable,
            rows: rows_portable,
        },
    }
}

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
/// filters, see [`by_columns`]): `RF` filters x `TB` taps of one input channel over
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
    rows_within(s.ow * filters_padded(s), 8192)
}

/// The weight-gradient tile `(fv, tb)` for `vectors` filter vectors per group
/// and `taps` taps.
fn weight_block(k: &WeightKernels, vectors: usize, taps: usize) -> (usize, usize) {
    let fv = balanced(vectors, k.fv_max);
    (fv, balanced(taps, (k.acc / fv).clamp(1, TB_MAX)))
}

/// Adds the weight gradient of `n` samples to `dw` for any shape with unit
/// strides (the depthwise path's too); `scratch` holds [`weight_scratch`] floats.
///
/// # Panics
/// When a slice is shorter than the shape needs or a stride is not 1 (a cnnc bug:
/// generated code sizes every buffer from the same constant shape).
pub(super) fn weight_gradient(s: &ConvShape, x: &[f32], dy: &[f32], dw: &mut [f32], n: usize, scratch: &mut [f32]) {
    assert!(
        x.len() >= n * s.input_len()
            && dy.len() >= n * s.output_len()
            && dw.len() >= s.weight_len()
            && scratch.len() >= weight_scratch(s)
            && s.sw == 1
            && s.sh == 1,
        "cnnc bug: a buffer does not fit its constant conv shape {s:?}"
    );
    let (xp, sums) = scratch.split_at_mut(s.padded_sample_len() + SLACK);
    weights_with(&kernels(selected()), s, x, dy, dw, n, xp, sums);
}

/// The scratch [`weight_gradient`] needs.
pub(super) const fn weight_scratch(s: &ConvShape) -> usize {
    s.padded_sample_len() + SLACK + weight_sums_len(s)
}

/// The weight gradient by the tiling [`by_columns`] picks.
#[allow(clippy::too_many_arguments)]
fn weights_with(
    k: &WeightKernels,
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
fn by_columns(k: &WeightKernels, s: &ConvShape) -> bool {
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

/// The offsets in a padded channel of taps `t0 .. t0 + count`.
#[inline(always)]
fn tap_offsets(s: &ConvShape, t0: usize, count: usize, off: &mut [usize; TB_MAX]) {
    for (j, o) in off.iter_mut().enumerate().take(count) {
        *o = s.tap_offset(t0 + j);
    }
}

/// Output rows per column-tile block: every row of a channel, unless the block's
/// output gradient for all of a group's filters would pass 256 KiB (a tile streams
/// its rows from L2; 8-row blocks that stayed in L1 measured slower, see the
/// module documentation).
const fn column_block_rows(s: &ConvShape) -> usize {
    rows_within(s.ow * s.fg(), 65536)
}

/// Adds the weight gradient of `n` samples to `dw` by [`RowTile`]s: lane sums in
/// `sums` (`[channel][tap][filter][lane]`), added across lanes at the end.
#[allow(clippy::too_many_arguments)]
fn weights_by_columns(
    k: &WeightKernels,
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
                            tap_offsets(s, t0, tb.min(taps - t0), &mut off);
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
    k: &WeightKernels,
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
                            tap_offsets(s, t0, tb.min(taps - t0), &mut off);
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

/// Adds one weight-gradient tile's block of output positions to the transposed
/// weight gradient.
///
/// # Safety
/// `WeightKernels::weights`'s contract with `FV` filter vectors and `TB` taps; `L`'s
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
/// `WeightKernels::rows`'s contract with `RF` filters and `TB` taps; `L`'s target
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

/// # Safety
/// `WeightKernels::weights`'s contract.
unsafe fn weights_portable(fv: usize, tb: usize, t: &WeightTile) {
    // SAFETY: the contract is passed on; plain Rust needs no features.
    unsafe { tiles!(weight_tile, F32x8, fv, tb, t, [1], [1 2 3 4 5 6 7 8 9 10 11 12]) }
}

/// # Safety
/// `WeightKernels::rows`'s contract.
unsafe fn rows_portable(rf: usize, tb: usize, t: &RowTile) {
    // SAFETY: the contract is passed on; plain Rust needs no features.
    unsafe { tiles!(row_tile, F32x8, rf, tb, t, [1 2], [1 2 3 4 5 6]) }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use crate::compute::simd::{F32x16, F32x8Avx};

    /// # Safety
    /// `WeightKernels::weights`'s contract; the CPU has AVX-512F.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn weights_avx512(fv: usize, tb: usize, t: &WeightTile) {
        // SAFETY: the contract is passed on; the features are enabled here.
        unsafe { tiles!(weight_tile, F32x16, fv, tb, t, [1 2 3 4], [1 2 3 4 5 6 7 8 9 10 11 12]) }
    }

    /// # Safety
    /// `WeightKernels::rows`'s contract; the CPU has AVX-512F.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn rows_avx512(rf: usize, tb: usize, t: &RowTile) {
        // SAFETY: the contract is passed on; the features are enabled here.
        unsafe { tiles!(row_tile, F32x16, rf, tb, t, [1 2 3 4], [1 2 3 4 5 6 7 8 9 10 11 12]) }
    }

    /// # Safety
    /// `WeightKernels::rows`'s contract; the CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows_avx2(rf: usize, tb: usize, t: &RowTile) {
        // SAFETY: the contract is passed on; the features are enabled here.
        unsafe { tiles!(row_tile, F32x8Avx, rf, tb, t, [1 2], [1 2 3 4 5 6 7 8 9 10 11 12]) }
    }

    /// # Safety
    /// `WeightKernels::weights`'s contract; the CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weights_avx2(fv: usize, tb: usize, t: &WeightTile) {
        // SAFETY: the contract is passed on; the features are enabled here.
        unsafe { tiles!(weight_tile, F32x8Avx, fv, tb, t, [1 2], [1 2 3 4 5 6 7 8 9 10 11 12]) }
    }
}
