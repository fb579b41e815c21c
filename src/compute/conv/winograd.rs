//! Winograd convolution F(m x m, 3x3) for 3x3 kernels at unit stride and
//! dilation, one group (the [`Plan::Winograd`](super::Plan::Winograd) path
//! of [`super`]); Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks" (2016).
//!
//! Every `m x m` output tile is `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` of the `a x a` input
//! tile `d` (`a = m + 2`) under it, for each filter `g`; summed over input
//! channels, the element-wise product becomes, for each of the `a²` transform
//! positions ξ, one matrix product `M_ξ = U_ξ · V_ξ` of the transformed weights
//! (`K x C`) by the transformed input tiles (`C x T`). With m = 4 that is 36
//! products per 16 outputs instead of 144: 4x fewer multiplies.
//!
//! Forward, per call: the weights are transformed once into scratch
//! (`[ξ][filter block][channel][filter]`, so a product tile reads one block's
//! weights for one channel as consecutive floats). The tiles of all `n` samples
//! are taken in blocks of whole tile rows (across sample boundaries), sized so
//! the block's transformed input and products stay in L2; for each block:
//! 1. the input transform, one channel at a time: the 36 taps of the block's
//!    tiles are gathered (`[row][column][tile]`) from each tile row's six
//!    zero-padded input rows by 4x4 transposes (four tiles' four columns at a
//!    time), then transformed (`Bᵀ d B`) across all of the block's tiles at
//!    once, so the vectors stay full on small maps (an 8x8 map has two tiles
//!    per row);
//! 2. one product per ξ, register-blocked like [`super::blocked`]'s tiles
//!    (filters x vectors of tiles, broadcasting the weights) with `simd::Lanes`;
//! 3. the output transform (`Aᵀ · A`), vectorized across all the block's tiles
//!    of a filter, then interleaved into the output rows with the bias and
//!    activation fused into the store; partial tiles at the right and bottom
//!    edges store only their valid outputs.
//!
//! Backward: the data gradient is this forward on the transposed problem (the
//! output gradient padded by `2 - pad`, the weights rotated by 180 degrees with
//! filters and channels swapped). The weight and bias gradients take the blocked
//! path ([`blocked::backward`] without `dx`). A Winograd weight gradient (per
//! tile `dU = (A dY Aᵀ) ⊙ (Bᵀ d B)`, one product per ξ along filters, then
//! `dw += Gᵀ dU G`; branch `winograd` commit 6436c14) made conv64's backward
//! 1.2x (AVX-512) to 1.6x (AVX2) faster, but its error (7e-6 of the largest
//! gradient at 64 channels, against the blocked path's 2e-6) flips the sign of
//! near-zero gradients, which Adam turns into whole steps: the PyTorch fixture
//! `cifar_block_adam` failed its 1e-4 tolerance on conv3/conv4's weights, so it
//! was reverted.
//!
//! F(4x4) rather than F(2x2): its error on 64-channel layers is below 1e-5 of the
//! output's largest value (tests/isa/compute_conv.rs allows 1e-4), and it does
//! 1.8x fewer multiplies than F(2x2).

#![warn(unsafe_op_in_unsafe_fn)]

use super::blocked;
use super::epilogue::Epilogue;
use super::runs::max;
use super::shape::ConvShape;
use crate::compute::isa::{selected, Isa};
use crate::compute::simd::{F32x8, Lanes};
use crate::compute::Activation;

/// F(4x4, 3x3) on the points 0, ±1, ±2 and ∞ (Lavin & Gray's matrices; `Bᵀ`
/// and `Aᵀ` are written out in [`bt`] and [`at`]): outputs per tile side and
/// points per tile side.
const M: usize = 4;
const A: usize = 6;

/// The weight transform `G` (`A x 3`).
const G: [[f32; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// The transforms' slack and padding unit (one AVX-512 vector).
const CHUNK: usize = 16;

/// Tiles per block, about: the block's transformed input and products
/// (`a² (C + K)` floats per tile) stay in L2 while the products run.
const TILE_TARGET: usize = 64;

/// The largest product tile's filters (AVX-512): transformed weights are padded
/// to whole blocks, at most `RF_MAX - 1` filters past the last.
const RF_MAX: usize = 12;

/// The sizes a call derives from its shape.
#[derive(Clone, Copy)]
struct Sizes {
    /// Tiles per output column and row.
    th: usize,
    tw: usize,
    /// The stride of a zero-padded input row: room for the transposes' reads
    /// of whole groups of four tiles (to column `4 round_up(tw, 4) + 4`).
    row: usize,
    /// Tile rows per block, tiles per block and their padded stride (a multiple
    /// of 16).
    rb: usize,
    tp: usize,
}

const fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

const fn sizes(s: &ConvShape) -> Sizes {
    let m = M;
    let th = s.oh.div_ceil(m);
    let tw = s.ow.div_ceil(m);
    let rb = if tw >= TILE_TARGET { 1 } else { TILE_TARGET / tw };
    Sizes {
        th,
        tw,
        row: m * round_up(tw, 4) + 8,
        rb,
        tp: round_up(rb * tw, 16),
    }
}

/// Whether this path can compute the shape: 3x3, unit strides and dilation, one
/// group, padding at most 2 per side (1 for a layer, 2 for the transposed problem
/// of its data gradient).
pub const fn allows(s: &ConvShape) -> bool {
    computes(s, 2)
}

/// 3x3, unit strides and dilation, one group, at most `pad` padding per side.
pub const fn computes(s: &ConvShape, pad: usize) -> bool {
    s.kh == 3
        && s.kw == 3
        && s.sh == 1
        && s.sw == 1
        && s.dh == 1
        && s.dw == 1
        && s.g == 1
        && s.pt <= pad
        && s.pb <= pad
        && s.pl <= pad
        && s.pr <= pad
        && s.oh > 0
        && s.ow > 0
}

/// The scratch [`forward`] needs: the transformed weights, one block's
/// transformed input and products (with a chunk of slack each), and the
/// transforms' rows.
pub const fn forward_scratch(s: &ConvShape) -> usize {
    let z = sizes(s);
    let aa = A * A;
    aa * s.c * (s.f + RF_MAX) + aa * (v_stride(s, &z) + m_stride(s, &z)) + 2 * CHUNK + work_len(&z)
}

/// The distance between transform positions in the transformed input and the
/// products: a chunk more than a position's matrix, so that the `a²` streams
/// the transforms write and read do not all fall into one L1 set.
const fn v_stride(s: &ConvShape, z: &Sizes) -> usize {
    s.c * z.tp + CHUNK
}
const fn m_stride(s: &ConvShape, z: &Sizes) -> usize {
    s.f * z.tp + CHUNK
}

/// The transforms' rows: one zero-padded input plane (`4 th + 2` rows), the
/// block's gathered taps of one channel `[row][column][tile]`, the block's
/// outputs of one filter `[r1][r2][tile]`, and the transposes' eight junk floats.
const fn work_len(z: &Sizes) -> usize {
    (z.th * M + 2) * z.row + A * A * stage_stride(z) + M * M * z.tp + 8
}

/// The scratch [`backward`] needs: the blocked weight gradient's, or the rotated
/// weights and the transposed problem's forward.
pub const fn backward_scratch(s: &ConvShape) -> usize {
    max(
        blocked::backward_scratch(s),
        s.weight_len() + forward_scratch(&s.transposed()),
    )
}

/// Forward for `n` samples with bias (when given) and activation fused;
/// `scratch` holds [`forward_scratch`] floats.
///
/// # Panics
/// When a slice is shorter than the shape needs or the shape is not one this
/// path computes (a cnnc bug: generated code sizes every buffer from the same
/// constant shape, and picks this path only for shapes it allows).
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
    assert!(
        allows(s)
            && x.len() >= n * s.input_len()
            && w.len() >= s.weight_len()
            && b.is_none_or(|b| b.len() >= s.f)
            && y.len() >= n * s.output_len()
            && post.add.is_none_or(|a| a.len() >= n * s.output_len())
            && scratch.len() >= forward_scratch(s),
        "cnnc bug: a buffer does not fit its constant conv shape {s:?}"
    );
    let args = Args {
        s,
        post,
        x,
        w,
        b,
        y,
        n,
        scratch,
    };
    match selected() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the selected instruction set is available on this CPU.
        Isa::Avx512 => unsafe { x86::forward_avx512(args) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::forward_avx2(args) },
        _ => forward_with::<F32x8>(args, 6, 6, 2),
    }
}

/// Backward for `n` samples: adds to `dw` and `db` (when given), overwrites `dx`
/// (when given); `scratch` holds [`backward_scratch`] floats.
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
    assert!(
        allows(s) && scratch.len() >= backward_scratch(s) && w.len() >= s.weight_len(),
        "cnnc bug: a buffer does not fit its constant conv shape {s:?}"
    );
    blocked::backward(s, x, w, dy, dw, db, None, n, scratch);
    if let Some(dx) = dx {
        let t = s.transposed();
        let (wr, rest) = scratch.split_at_mut(s.weight_len());
        rotate(s, w, wr);
        forward(
            &t,
            Activation::Identity.into(),
            &dy[..n * s.output_len()],
            wr,
            None,
            &mut dx[..n * s.input_len()],
            n,
            rest,
        );
    }
}

/// The transposed problem's weights (one group): `wr[c][f][i][j] = w[f][c][2-i][2-j]`.
fn rotate(s: &ConvShape, w: &[f32], wr: &mut [f32]) {
    for c in 0..s.c {
        for f in 0..s.f {
            let src = &w[(f * s.c + c) * 9..][..9];
            let dst = &mut wr[(c * s.f + f) * 9..][..9];
            for (d, v) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *v;
            }
        }
    }
}

/// One forward call's arguments.
struct Args<'a> {
    s: &'a ConvShape,
    post: Epilogue<'a>,
    x: &'a [f32],
    w: &'a [f32],
    b: Option<&'a [f32]>,
    y: &'a mut [f32],
    n: usize,
    scratch: &'a mut [f32],
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

/// The forward pass with vectors `L`, `acc` accumulators per product tile, at
/// most `rf_max` filters and `cv_max` vectors of tiles.
#[inline(always)]
fn forward_with<L: Lanes>(a: Args, acc: usize, rf_max: usize, cv_max: usize) {
    let Args {
        s,
        post,
        x,
        w,
        b,
        y,
        n,
        scratch,
    } = a;
    let (m, aa) = (M, A * A);
    let z = sizes(s);
    let (c, k) = (s.c, s.f);
    let cv = (z.tp / L::LANES).clamp(1, cv_max);
    let rf = balanced(k, (acc / cv).min(rf_max));
    let blocks = k.div_ceil(rf);
    let (vs, ms) = (v_stride(s, &z), m_stride(s, &z));
    let [u, v, mm, plane, stage, osplit, junk] = split_scratch(scratch, &z, aa * c * blocks * rf, vs, ms);
    let ts = stage_stride(&z);
    // SAFETY: rf <= rf_max <= LANES for every instruction set's call; `u` holds
    // 36 c blocks rf floats (split_scratch); `L`'s features are enabled.
    unsafe { transform_weights::<L>(s, w, rf, u) };
    let rows = n * z.th;
    for r0 in (0..rows).step_by(z.rb) {
        let rb = z.rb.min(rows - r0);
        let tiles = rb * z.tw;
        // Input transform, one channel at a time: the 36 taps of the block's
        // tiles are gathered into `stage` (`[row][column][tile]`) from each tile
        // row's six rows of the zero-padded plane, four tiles at a time by 4x4
        // transposes, then transformed across all of the block's tiles at once,
        // so the vectors stay full on small maps (an 8x8 map has two tiles per row).
        for ci in 0..c {
            for i in r0 / z.th..=(r0 + rb - 1) / z.th {
                let (lo, hi) = ((i * z.th).max(r0), ((i + 1) * z.th).min(r0 + rb));
                pad_plane(s, &z, &x[i * s.input_len() + ci * s.h * s.w..][..s.h * s.w], plane);
                for r in lo..hi {
                    let (lr, th) = (r - r0, r - i * z.th);
                    for j in 0..A {
                        let row = &plane[(th * m + j) * z.row..][..z.row];
                        let base = stage.as_mut_ptr();
                        // SAFETY: (j * 6 + l) * ts + lr * tw <= 35 ts + tp is inside `stage`.
                        let at = |l: usize| unsafe { base.add((j * A + l) * ts + lr * z.tw) };
                        let (d0, d1, d2, d3, d4, d5) = (at(0), at(1), at(2), at(3), at(4), at(5));
                        let junk = junk.as_mut_ptr();
                        for t0 in (0..z.tw).step_by(4) {
                            // SAFETY: reads 16 floats of the padded row from 4 t0 and
                            // from 4 t0 + 4 (at most 4 round_up(tw, 4) + 4 < its
                            // length); writes four floats at t0 (< round_up(tw, 4) - 3)
                            // of tile row lr's run of each tap column, inside its
                            // `ts`-float stage row (lr tw + round_up(tw, 4) <= tp + 3 <
                            // ts), and four junk floats. `L`'s features are enabled.
                            unsafe {
                                let src = row.as_ptr().add(4 * t0);
                                L::transpose4(src, [d0.add(t0), d1.add(t0), d2.add(t0), d3.add(t0)]);
                                L::transpose4(src.add(4), [d4.add(t0), d5.add(t0), junk, junk.add(4)]);
                            }
                        }
                    }
                }
            }
            let dst = &mut v[ci * z.tp..][..(aa - 1) * vs + tiles];
            for t0 in (0..tiles).step_by(L::LANES) {
                // SAFETY: reads LANES floats at (j * 6 + l) * ts + t0 of `stage`
                // for j, l < 6 (t0 + LANES <= tp < ts: tp is a multiple of 16 and
                // of LANES, t0 < tiles <= tp), inside its 36 ts floats; writes the
                // first tiles - t0 lanes at (ξ * vs + t0) for ξ < 36, inside `dst`.
                // `L`'s features are enabled (the caller's contract).
                unsafe {
                    input_tile::<L>(
                        stage.as_ptr().add(t0),
                        A * ts,
                        ts,
                        dst.as_mut_ptr().add(t0),
                        vs,
                        tiles - t0,
                    )
                };
            }
        }
        // M_ξ = U_ξ · V_ξ
        let width = cv * L::LANES;
        for xi in 0..aa {
            let vx = &v[xi * vs..][..c * z.tp];
            let ux = &u[xi * c * blocks * rf..][..c * blocks * rf];
            for t0 in (0..tiles).step_by(width) {
                let cvs = (tiles - t0).div_ceil(L::LANES).min(cv);
                for blk in 0..blocks {
                    let f0 = blk * rf;
                    let out = &mut mm[xi * ms + f0 * z.tp + t0..];
                    let tile = ProductTile {
                        u: ux[blk * c * rf..].as_ptr(),
                        v: vx[t0..].as_ptr(),
                        vs: z.tp,
                        c,
                        m: out.as_mut_ptr(),
                        ms: z.tp,
                        rows: rf.min(k - f0),
                    };
                    // SAFETY: the tile reads c * rf transformed weights of block blk at
                    // ξ (inside `u`), cvs vectors of tiles t0.. (t0 + cvs*LANES <= tp,
                    // tp a multiple of 16 and of LANES) of every channel's row of V_ξ
                    // (inside `vx`), and writes the same columns of its rf.min(k - f0)
                    // filters' rows of M_ξ (inside `mm`: k * tp floats from ξ's start).
                    // `L`'s features are enabled (the caller's contract).
                    unsafe { product::<L>(rf, cvs, &tile) };
                }
            }
        }
        // Output transform, bias and activation: each filter's products of all
        // the block's tiles at once into `osplit` (`[r1][r2][tile]`), then each
        // tile row's outputs interleaved into the output rows.
        for f in 0..k {
            let bias = b.map_or(0.0, |b| b[f]);
            let src = &mm[f * z.tp..][..(aa - 1) * ms + z.tp];
            for t0 in (0..tiles).step_by(L::LANES) {
                // SAFETY: reads LANES floats at (ξ * ms + t0) for ξ < 36, t0 + LANES
                // <= tp, inside `src`; writes LANES floats at (r1 * 4 + r2) * tp + t0
                // < 16 tp, inside `osplit`. `L`'s features are enabled.
                unsafe { output_tile::<L>(src.as_ptr().add(t0), ms, bias, osplit.as_mut_ptr().add(t0), z.tp) };
            }
            for r in r0..r0 + rb {
                let (lr, i, th) = (r - r0, r / z.th, r % z.th);
                let at = i * s.output_len() + f * s.positions();
                let yf = &mut y[at..][..s.positions()];
                for r1 in 0..m.min(s.oh - th * m) {
                    let row = &mut yf[(th * m + r1) * s.ow..][..s.ow];
                    let src = &osplit[r1 * m * z.tp + lr * z.tw..];
                    // The activation's match outside the loop: identity and relu
                    // fused into the interleaving, the others (and an added tensor)
                    // after it.
                    match (post.add, post.act) {
                        (None, Activation::Identity) => store_row(src, z.tp, row, |v| v),
                        (None, Activation::Relu) => store_row(src, z.tp, row, |v| v.max(0.0)),
                        _ => {
                            store_row(src, z.tp, row, |v| v);
                            post.finish(row, at + (th * m + r1) * s.ow);
                        }
                    }
                }
            }
        }
    }
}

/// The distance between the gathered taps' rows in `stage`: slack past the
/// block's tiles for the transposes' four-float stores (and a chunk, so the 36
/// rows do not all fall into one L1 set).
const fn stage_stride(z: &Sizes) -> usize {
    z.tp + CHUNK
}

/// The forward pass's scratch, split: the transformed weights (`u_len`
/// floats), the transformed inputs and the products (`vs` and `ms` floats per
/// ξ), one zero-padded input plane, the block's gathered taps of one channel
/// (`36 ts`), its output transform's rows (`16 tp`) and eight junk floats.
#[inline(always)]
fn split_scratch<'s>(scratch: &'s mut [f32], z: &Sizes, u_len: usize, vs: usize, ms: usize) -> [&'s mut [f32]; 7] {
    let (m, aa) = (M, A * A);
    let (u, rest) = scratch.split_at_mut(u_len);
    let (v, rest) = rest.split_at_mut(aa * vs + CHUNK);
    let (mm, rest) = rest.split_at_mut(aa * ms + CHUNK);
    let (plane, rest) = rest.split_at_mut((z.th * m + 2) * z.row);
    let (stage, rest) = rest.split_at_mut(aa * stage_stride(z));
    let (osplit, rest) = rest.split_at_mut(m * m * z.tp);
    [u, v, mm, plane, stage, osplit, &mut rest[..8]]
}

/// One input channel, zero-padded into `plane`: padded row `pr`, column `pc`
/// at `pr * row + pc`. Whole rows are copied (the plane is written well before
/// the transposes read it: a row copied just before four-float loads across
/// its edges stalled on store forwarding, 1.7x slower on 16x16 maps).
#[inline(always)]
fn pad_plane(s: &ConvShape, z: &Sizes, xc: &[f32], plane: &mut [f32]) {
    for (pr, row) in plane.chunks_exact_mut(z.row).enumerate() {
        let ih = pr.wrapping_sub(s.pt);
        if ih >= s.h {
            row.fill(0.0);
            continue;
        }
        let (left, rest) = row.split_at_mut(s.pl);
        let (body, right) = rest.split_at_mut(s.w);
        left.fill(0.0);
        body.copy_from_slice(&xc[ih * s.w..][..s.w]);
        right.fill(0.0);
    }
}

/// `row[t * 4 + r2] = f(src[r2 * tws + t])`: interleaves one output row's
/// phases.
#[inline(always)]
fn store_row(src: &[f32], tws: usize, row: &mut [f32], f: impl Fn(f32) -> f32) {
    let full = row.len() / M;
    let (body, tail) = row.split_at_mut(full * M);
    let (p0, p1, p2, p3) = (
        &src[..full],
        &src[tws..][..full],
        &src[2 * tws..][..full],
        &src[3 * tws..][..full],
    );
    for (cell, (((&a, &b), &c), &d)) in body.chunks_exact_mut(M).zip(p0.iter().zip(p1).zip(p2).zip(p3)) {
        cell.copy_from_slice(&[f(a), f(b), f(c), f(d)]);
    }
    for (r2, y) in tail.iter_mut().enumerate() {
        *y = f(src[r2 * tws + full]);
    }
}

/// The transformed weights `U[ξ][block][channel][rf]` = `(G g Gᵀ)[ξ]` for blocks of
/// `rf <= LANES` filters (zeros past the last filter), one vector per block and
/// channel: the block's nine taps are gathered into lanes, then both products
/// with `G` run on whole vectors (multiplies and adds in the order of the
/// scalar definition, no fused multiply-adds), and each ξ's `rf` values are
/// one contiguous store. Per call (once per chunk of samples in training), so
/// its speed counts: scalar, it took a fifth of a 64-channel call at 16 samples.
///
/// # Safety
/// `rf <= L::LANES`; `w` holds the shape's weights and `u` 36 blocks x
/// channels x `rf` floats; `L`'s features are enabled.
#[inline(always)]
unsafe fn transform_weights<L: Lanes>(s: &ConvShape, w: &[f32], rf: usize, u: &mut [f32]) {
    let (c, k) = (s.c, s.f);
    let blocks = k.div_ceil(rf);
    let per_xi = c * blocks * rf;
    assert!(rf <= L::LANES && w.len() >= k * c * 9 && u.len() >= A * A * per_xi);
    let mut taps = [[0.0f32; 16]; 9];
    for block in 0..blocks {
        let filters = rf.min(k - block * rf);
        for ci in 0..c {
            for (r, f) in (block * rf..block * rf + filters).enumerate() {
                for (t, tap) in taps.iter_mut().enumerate() {
                    tap[r] = w[(f * c + ci) * 9 + t];
                }
            }
            for tap in &mut taps {
                tap[filters..].fill(0.0);
            }
            // SAFETY: each `taps` row has 16 >= LANES floats; the stores write rf
            // floats at ξ * per_xi + (block * c + ci) * rf, inside `u` (checked
            // above); `L`'s features are enabled (the contract).
            unsafe {
                // Plain loops: the same products written with nested
                // `array::from_fn` closures ran 3x slower than the scalar code
                // (not diagnosed further).
                let mut g = [L::zero(); 9];
                for (v, tap) in g.iter_mut().zip(&taps) {
                    *v = L::load(tap.as_ptr());
                }
                // G g: 6 x 3, then (G g) Gᵀ: 6 x 6.
                let mut gg = [[L::zero(); 3]; 6];
                for (row, gi) in gg.iter_mut().zip(&G) {
                    for (j, v) in row.iter_mut().enumerate() {
                        let a = L::mul(L::splat(gi[0]), g[j]);
                        let b = L::mul(L::splat(gi[1]), g[3 + j]);
                        *v = L::add(L::add(a, b), L::mul(L::splat(gi[2]), g[6 + j]));
                    }
                }
                let at = (block * c + ci) * rf;
                for (i, row) in gg.iter().enumerate() {
                    for (j, gj) in G.iter().enumerate() {
                        let a = L::mul(L::splat(gj[0]), row[0]);
                        let b = L::mul(L::splat(gj[1]), row[1]);
                        let v = L::add(L::add(a, b), L::mul(L::splat(gj[2]), row[2]));
                        L::store_first(u.as_mut_ptr().add((i * A + j) * per_xi + at), rf, v);
                    }
                }
            }
        }
    }
}

/// `Bᵀ d` for one column of six vectors (F(4x4, 3x3)).
#[inline(always)]
unsafe fn bt<L: Lanes>(d: [L; 6]) -> [L; 6] {
    // SAFETY: `L`'s features are enabled (the caller's contract).
    unsafe {
        let (n1, n2, n4, n5) = (L::splat(-1.0), L::splat(2.0), L::splat(-4.0), L::splat(-5.0));
        let four = L::splat(4.0);
        let t0 = L::mul_add(n4, d[2], d[4]);
        let t1 = L::mul_add(n4, d[1], d[3]);
        let t2 = L::mul_add(n1, d[2], d[4]);
        let t3 = L::mul(n2, L::mul_add(n1, d[1], d[3]));
        [
            L::mul_add(four, d[0], L::mul_add(n5, d[2], d[4])),
            L::add(t0, t1),
            L::mul_add(n1, t1, t0),
            L::add(t2, t3),
            L::mul_add(n1, t3, t2),
            L::mul_add(four, d[1], L::mul_add(n5, d[3], d[5])),
        ]
    }
}

/// `Aᵀ m` for one column of six vectors (F(4x4, 3x3)).
#[inline(always)]
unsafe fn at<L: Lanes>(m: [L; 6]) -> [L; 4] {
    // SAFETY: `L`'s features are enabled (the caller's contract).
    unsafe {
        let n1 = L::splat(-1.0);
        let (a, b) = (L::add(m[1], m[2]), L::mul_add(n1, m[2], m[1]));
        let (c, d) = (L::add(m[3], m[4]), L::mul_add(n1, m[4], m[3]));
        [
            L::add(m[0], L::add(a, c)),
            L::mul_add(L::splat(2.0), d, b),
            L::mul_add(L::splat(4.0), c, a),
            L::add(L::mul_add(L::splat(8.0), d, b), m[5]),
        ]
    }
}

/// The input transform of `LANES` consecutive tiles: tap (j, l) of the tiles
/// is at `src + j * rs + l * cs` (the staged `[row][column][tile]` taps); the 36 transformed values
/// go to `dst + ξ * vs`, the first `valid` lanes of each.
///
/// # Safety
/// `src[j * rs + l * cs + LANES - 1]` is readable for `j, l < 6`; the first
/// `valid` floats at `dst + ξ * vs` are writable for `ξ < 36`; `L`'s features
/// are enabled.
// The loops index two axes of a tile at once (a transpose): ranges read plainer.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn input_tile<L: Lanes>(src: *const f32, rs: usize, cs: usize, dst: *mut f32, vs: usize, valid: usize) {
    // SAFETY: every address is one the contract covers.
    unsafe {
        let mut r = [[L::zero(); 6]; 6];
        for l in 0..6 {
            let d: [L; 6] = std::array::from_fn(|j| L::load(src.add(j * rs + l * cs)));
            let o = bt(d);
            for (i, v) in o.into_iter().enumerate() {
                r[i][l] = v;
            }
        }
        for (i, ri) in r.into_iter().enumerate() {
            for (kk, v) in bt(ri).into_iter().enumerate() {
                let p = dst.add((i * 6 + kk) * vs);
                if valid >= L::LANES {
                    L::store(p, v);
                } else {
                    L::store_first(p, valid, v);
                }
            }
        }
    }
}

/// The output transform of `LANES` consecutive tiles of one filter: `src + ξ *
/// ms` holds their products at ξ; writes `Aᵀ M A + bias` as `[r1][r2]` rows of
/// `LANES` tiles to `dst + (r1 * 4 + r2) * ds`.
///
/// # Safety
/// `LANES` floats are readable at `src + ξ * ms` for `ξ < 36` and writable at
/// `dst + k * ds` for `k < 16`; `L`'s features are enabled.
// The loops index two axes of a tile at once (a transpose): ranges read plainer.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn output_tile<L: Lanes>(src: *const f32, ms: usize, bias: f32, dst: *mut f32, ds: usize) {
    // SAFETY: every address is one the contract covers.
    unsafe {
        // Along each row i: t[i][r2].
        let mut t = [[L::zero(); 4]; 6];
        for (i, ti) in t.iter_mut().enumerate() {
            let mrow: [L; 6] = std::array::from_fn(|j| L::load(src.add((i * 6 + j) * ms)));
            *ti = at(mrow);
        }
        let bias = L::splat(bias);
        for r2 in 0..4 {
            let col: [L; 6] = std::array::from_fn(|i| t[i][r2]);
            for (r1, v) in at(col).into_iter().enumerate() {
                L::store(dst.add((r1 * 4 + r2) * ds), L::add(v, bias));
            }
        }
    }
}

/// One product tile: `rows` filters x vectors of tiles of `M_ξ = U_ξ · V_ξ`.
struct ProductTile {
    /// The block's transformed weights `[channel][rf]`.
    u: *const f32,
    /// V_ξ at channel 0, the tile's first column; its channel stride.
    v: *const f32,
    vs: usize,
    c: usize,
    /// M_ξ at the block's first filter, the tile's first column; its filter stride.
    m: *mut f32,
    ms: usize,
    rows: usize,
}

/// `M[r][..] = Σ_c U[c][r] · V[c][..]` for `RF` filters (the first `rows` stored)
/// and `CV` vectors of tiles.
///
/// # Safety
/// The tile's pointers cover `c * RF` weights, `c` rows of `CV * LANES` floats of
/// V and `rows` rows of as many of M; `L`'s features are enabled.
#[inline(always)]
unsafe fn product_tile<L: Lanes, const RF: usize, const CV: usize>(t: &ProductTile) {
    // SAFETY: every address is one the contract covers.
    unsafe {
        let mut acc = [[L::zero(); CV]; RF];
        let (mut u, mut v) = (t.u, t.v);
        for _ in 0..t.c {
            let mut xv = [L::zero(); CV];
            for (j, x) in xv.iter_mut().enumerate() {
                *x = L::load(v.add(j * L::LANES));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let wv = L::splat(*u.add(r));
                for (a, &x) in acc.iter_mut().zip(&xv) {
                    *a = L::mul_add(wv, x, *a);
                }
            }
            u = u.add(RF);
            v = v.add(t.vs);
        }
        for (r, acc) in acc.iter().enumerate().take(t.rows) {
            for (j, &a) in acc.iter().enumerate() {
                L::store(t.m.add(r * t.ms + j * L::LANES), a);
            }
        }
    }
}

/// Calls [`product_tile`] for the runtime `(rf, cv)`.
///
/// # Safety
/// [`product_tile`]'s contract with `RF = rf`, `CV = cv`; `rf <= 12`, `cv <= 2`.
#[inline(always)]
unsafe fn product<L: Lanes>(rf: usize, cv: usize, t: &ProductTile) {
    macro_rules! by_rf {
        ($cv:literal, [$($r:literal)*]) => {
            match rf {
                // SAFETY: the contract is passed on.
                $( $r => unsafe { product_tile::<L, $r, $cv>(t) }, )*
                _ => unreachable!("product tile filters out of range"),
            }
        };
    }
    match cv {
        1 => by_rf!(1, [1 2 3 4 5 6 7 8 9 10 11 12]),
        2 => by_rf!(2, [1 2 3 4 5 6 7 8 9 10 11 12]),
        _ => unreachable!("product tile width out of range"),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use crate::compute::simd::{F32x16, F32x8Avx};

    /// # Safety
    /// The CPU has AVX-512F.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn forward_avx512(a: Args) {
        // 32 registers: 24 accumulators, 2 vectors of tiles, a broadcast weight.
        forward_with::<F32x16>(a, 24, 12, 2)
    }

    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward_avx2(a: Args) {
        // 16 registers: 12 accumulators, 2 vectors of tiles, a broadcast weight.
        forward_with::<F32x8Avx>(a, 12, 6, 2)
    }
}
