//! Register-blocked direct convolution vectorized along output rows (the
//! [`Plan::Blocked`](super::Plan::Blocked) path of [`super`]). Strided shapes
//! read their input from a padded copy whose rows keep the columns of each
//! residue together ([`ConvShape::padded_column`]), so a tap's inputs under
//! consecutive output columns are consecutive floats at any stride.
//!
//! Forward: a tile is `RF` filters x `CV` vectors of consecutive output columns of
//! one output row (or, for rows of at most one vector, one vector of each of `CV`
//! consecutive output rows), `RF * CV` accumulators. For every input channel and tap, the
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
//! call). The weight gradient is [`super::weights`]'s.
//!
//! The same loops serve every instruction set through `simd::Lanes`; the register
//! block sizes depend on the vector width and the register count (see
//! `Kernels`).

#![warn(unsafe_op_in_unsafe_fn)]

use super::epilogue::Epilogue;
use super::runs::{balanced, max, pad, SLACK};
use super::shape::ConvShape;
use super::weights;
use crate::compute::isa::{selected, Isa};
use crate::compute::simd::{F32x8, Lanes};
use crate::compute::Activation;

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
    /// between filters.
    y: *mut f32,
    ys: usize,
    /// The distance between the tile's vectors in the padded input and in the
    /// output: one vector's lanes along a row, or (rows of at most one vector)
    /// one output row; and each vector's valid columns (at most `LANES`).
    xv: usize,
    yv: usize,
    valid: [usize; CV_MAX],
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

/// The most vectors of output columns in a forward tile.
const CV_MAX: usize = 2;

/// One instruction set's tile functions and register budget.
#[derive(Clone, Copy)]
struct Kernels {
    lanes: usize,
    /// Accumulators a tile may hold, leaving registers for the operands.
    acc: usize,
    /// The largest forward tile: filters and column vectors.
    rf_max: usize,
    cv_max: usize,
    /// `forward(rf, cv, tile)`.
    ///
    /// # Safety
    /// The tile's pointers cover what it reads and writes; `rf`, `cv` are within
    /// the maxima; the instruction set is available.
    forward: unsafe fn(usize, usize, &Tile),
}

/// Why each budget: AVX-512 has 32 vector registers, so 24 accumulators leave
/// room for the row vectors and a broadcast weight (AVX-512 FMAs also take the
/// broadcast from memory); AVX2 has 16, so 12 accumulators, at most 2 row vectors
/// and a weight fill 15. Wider rows of vectors share each broadcast weight, more
/// filters share each row vector. The portable vectors are two SSE registers each
/// on the x86-64 baseline, so 6 of them.
fn kernels(isa: Isa) -> Kernels {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Kernels {
            lanes: 16,
            acc: 24,
            rf_max: 12,
            cv_max: 2,
            forward: x86::forward_avx512,
        },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Kernels {
            lanes: 8,
            acc: 12,
            rf_max: 6,
            cv_max: 2,
            forward: x86::forward_avx2,
        },
        _ => Kernels {
            lanes: 8,
            acc: 6,
            rf_max: 6,
            cv_max: 2,
            forward: forward_portable,
        },
    }
}

/// The forward tile `(rf, cv)` for a shape's filters per group and output rows.
fn forward_block(k: &Kernels, s: &ConvShape) -> (usize, usize) {
    let cv = if s.ow <= k.lanes {
        // One vector per output row: `cv` rows (see `forward`).
        s.oh.clamp(1, k.cv_max)
    } else {
        s.ow.div_ceil(k.lanes).clamp(1, k.cv_max)
    };
    (balanced(s.fg(), (k.acc / cv).min(k.rf_max)), cv)
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
            && scratch.len() >= forward_scratch(s),
        "cnnc bug: a buffer does not fit its constant conv shape {s:?}"
    );
    let k = kernels(selected());
    let (rf, cv) = forward_block(&k, s);
    let (hp, wp, cg, fg, width, taps) = (s.hp(), s.wp(), s.cg(), s.fg(), cv * k.lanes, s.kh * s.kw);
    let (xp, wk) = scratch.split_at_mut(s.padded_sample_len() + SLACK);
    let blocks = fg.div_ceil(rf);
    repack(s, w, rf, wk);
    let mut off = [0; TAPS_MAX];
    for (t, o) in off.iter_mut().enumerate().take(taps) {
        *o = s.tap_offset(t);
    }
    let chunk = channel_chunk(s, rf, width);
    // Rows of at most one vector (16 columns with AVX-512): a tile takes `cv`
    // output rows of one vector each, so each broadcast weight still feeds `cv`
    // FMAs; longer rows take `cv` vectors along one row.
    let by_rows = s.ow <= k.lanes;
    let (row_step, col_step) = if by_rows { (cv, s.ow) } else { (1, width) };
    let (xv, yv) = if by_rows { (s.sh * wp, s.ow) } else { (k.lanes, k.lanes) };
    for i in 0..n {
        pad(s, &x[i * il..][..il], xp);
        let ys = &mut y[i * ol..][..ol];
        for g in 0..s.g {
            for c0 in (0..cg).step_by(chunk) {
                for block in 0..blocks {
                    let (f0, f) = (block * rf, g * fg + block * rf);
                    for oh in (0..s.oh).step_by(row_step) {
                        for ow0 in (0..s.ow).step_by(col_step) {
                            let (vectors, valid) = if by_rows {
                                let rows = (s.oh - oh).min(cv);
                                (rows, [s.ow; CV_MAX])
                            } else {
                                let cols = (s.ow - ow0).min(width);
                                let v = cols.div_ceil(k.lanes);
                                (v, [k.lanes.min(cols), cols.saturating_sub(k.lanes)])
                            };
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
                                xv,
                                yv,
                                valid,
                                bias: b.map(|b| b[f..].as_ptr()),
                                add: post.add.map(|a| a[i * ol + (f * s.oh + oh) * s.ow + ow0..].as_ptr()),
                                act: post.act,
                                first: c0 == 0,
                                last: c0 + chunk >= cg,
                            };
                            // SAFETY: the tile reads channels g*cg + c0 .. of the chunk in
                            // the padded sample from row oh*sh, rows up to (kh-1)*dh further
                            // (and, by rows, the next vectors' (cv-1)*sh rows further),
                            // at each tap's column (`tap_offset`: in its residue's half of the
                            // row when strided) plus ow0 .. ow0 + cv*lanes - 1: inside the
                            // padded sample for every valid column, and at most lanes - 1 past
                            // the last row, inside the SLACK. It reads those channels' taps *
                            // rf repacked weights of this block (inside `wk`, see `repack`)
                            // and min(rf, fg - f0) biases from f, and reads and writes those
                            // filters' `vectors` runs of `valid` columns from row oh, column ow0,
                            // `yv` apart (and reads the same
                            // places of `post.add`). The lengths were
                            // checked above; `k` is the selected (available) instruction set's.
                            unsafe { (k.forward)(rf.min(fg - f0), vectors, &t) };
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

/// The scratch [`backward`] needs: the padded input, the transposed output and
/// weight gradients, the rotated weights and the transposed problem's padded
/// output gradient.
pub const fn backward_scratch(s: &ConvShape) -> usize {
    s.weight_len() + max(weights::weight_scratch(s), forward_scratch(&s.transposed()))
}

/// Backward for `n` samples: adds to `dw` and `db` (when given), overwrites `dx`
/// (when given). Unit strides (a strided shape's backward pass is `super`'s
/// unfolded one), and padding at most the window's extent per side.
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
            && !s.strided(),
        "cnnc bug: a buffer does not fit its constant conv shape {s:?}"
    );
    // The rotated weights, then the weight gradient's scratch and the data
    // gradient's in turn.
    let (wr, rest) = scratch.split_at_mut(s.weight_len());
    let t = s.transposed();
    if dx.is_some() {
        rotate(s, w, wr);
    }
    if let Some(db) = db {
        for dys in dy[..n * ol].chunks_exact(ol) {
            for (f, row) in dys.chunks_exact(s.positions()).enumerate() {
                db[f] += super::sum(row);
            }
        }
    }
    weights::weight_gradient(s, x, dy, dw, n, rest);
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
/// weights, `off` its `taps` offsets, `vs` the distance between its vectors.
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
    vs: usize,
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
                    *x = L::load(xr.add(v * vs));
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
                    let (at, valid) = (yr.add(v * t.yv), t.valid[v]);
                    *a = if valid >= L::LANES {
                        L::load(at)
                    } else {
                        L::load_first(at, valid)
                    };
                }
            }
        }
        let acc = accumulate::<L, RF, CV>(acc, t.x, t.cs, t.cg, t.off.as_ptr(), t.taps, t.w, t.ws, t.xv);
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
                let (done, valid, mut out) = (v * t.yv, t.valid[v], L::add(a, bias));
                let full = valid >= L::LANES;
                if let Some(add) = add {
                    let at = add.add(r * t.ys + done);
                    let joined = if full { L::load(at) } else { L::load_first(at, valid) };
                    out = L::add(out, joined);
                }
                if relu {
                    out = L::relu(out);
                }
                if full {
                    L::store(yr.add(done), out);
                } else {
                    L::store_first(yr.add(done), valid, out);
                }
                if t.last && !matches!(t.act, Activation::Identity | Activation::Relu) {
                    t.act.forward(std::slice::from_raw_parts_mut(yr.add(done), valid));
                }
            }
        }
    }
}

/// # Safety
/// `Kernels::forward`'s contract.
unsafe fn forward_portable(rf: usize, cv: usize, t: &Tile) {
    // SAFETY: the contract is passed on; plain Rust needs no features.
    unsafe { tiles!(forward_tile, F32x8, rf, cv, t, [1 2 3 4 5 6], [1 2]) }
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
    /// `Kernels::forward`'s contract; the CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward_avx2(rf: usize, cv: usize, t: &Tile) {
        // SAFETY: the contract is passed on; the features are enabled here.
        unsafe { tiles!(forward_tile, F32x8Avx, rf, cv, t, [1 2 3 4 5 6], [1 2]) }
    }
}
