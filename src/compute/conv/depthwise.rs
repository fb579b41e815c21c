//! Depthwise convolution (`G == C`, `F` a multiple of `C`; the
//! [`Plan::Depthwise`](super::Plan::Depthwise) path of [`super`]): every output
//! channel reads one input channel, so a matrix product would have a depth of only
//! `KH·KW`. Direct loops over output rows instead, vectorized along the row.
//!
//! With unit strides each output row is taken in chunks of [`COLS`] columns held
//! in registers while every tap adds its input run (a tap per load and FMA, no
//! store between taps); the weight gradient runs on [`super::weights`]' column
//! tiles (one tile per channel holds every tap's partial sums across the
//! channel's rows); the data gradient (one
//! output channel per input channel) is the same gathering forward over the
//! output gradient, padded by the window's extent minus the padding, under the
//! kernel turned by 180 degrees, so nothing is scattered. Strided shapes take
//! plain row loops.
//!
//! Measured on ResNet-8's dilated 3x3 (32 channels of 16x16, in the AVX2 build
//! generated code calls: the `layers` line of `CONV_TABLE=resnet cargo bench
//! --bench conv`, one thread, AMD EPYC Zen 5), against the row loops that added
//! each tap into the output row in memory: forward 11.7 -> 25.3 GFLOP/s, weight
//! gradient 12.4 -> 39.4, both gradients 12.3 -> 30.6. A first version with
//! the chunk's sums in a `[f32; 16]` array indexed by a run-time length gained
//! nothing: LLVM split the array into pairs of lanes; the chunks are now whole
//! arrays or a separate short path. The weight gradient's own chunked loop had
//! the same trouble, and the blocked path's column tiles do it faster (one tile
//! per channel holds all nine taps' sums across the channel's rows).

use super::epilogue::Epilogue;
use super::runs::{copy_run, max};
use super::shape::ConvShape;
use super::weights;
use crate::compute::sum;

/// Output columns a chunk of a row holds in registers: two AVX2 vectors.
const COLS: usize = 16;

/// The scratch [`forward`] and [`backward`] need: a padded input channel, then a
/// padded output-gradient channel (gathering) or input-gradient channel
/// (scattering); before them, the column tiles' own scratch for the weight
/// gradient with unit strides.
pub const fn scratch_len(s: &ConvShape) -> usize {
    let own = s.padded_channel_len() + max(s.transposed().padded_channel_len(), s.padded_channel_len());
    if tiled_weights(s) {
        max(own, weights::weight_scratch(s))
    } else {
        own
    }
}

/// Whether the weight gradient runs on [`weights`]' column tiles (unit strides):
/// one tile per channel holds every tap's partial sums in registers across the
/// channel's rows.
const fn tiled_weights(s: &ConvShape) -> bool {
    s.sh == 1 && s.sw == 1
}

/// Whether the data gradient gathers (see the module documentation): unit
/// strides, one output channel per input channel (so [`ConvShape::transposed`]
/// is one too) and padding within the window's extent.
const fn gathers(s: &ConvShape) -> bool {
    let (eh, ew) = (s.dh * (s.kh - 1), s.dw * (s.kw - 1));
    s.sh == 1
        && s.sw == 1
        && s.f == s.c
        && s.kh * s.kw <= TURNED_MAX
        && s.pt <= eh
        && s.pb <= eh
        && s.pl <= ew
        && s.pr <= ew
}

/// The most taps the gathering data gradient turns (on the stack); larger
/// windows scatter.
const TURNED_MAX: usize = 64;

/// Copies one channel into `xp` (`hp x wp` of `s`) with zero borders.
#[inline(always)]
fn pad_channel<'a>(s: &ConvShape, x: &'a [f32], xp: &'a mut [f32]) -> &'a [f32] {
    if !s.padded() {
        return &x[..s.h * s.w];
    }
    let wp = s.wp();
    let xp = &mut xp[..s.hp() * wp];
    xp.fill(0.0);
    for h in 0..s.h {
        copy_run(&mut xp[(h + s.pt) * wp + s.pl..][..s.w], &x[h * s.w..][..s.w]);
    }
    xp
}

/// One output channel with unit strides: `out[oh][o] = bias + Σ w[kh][kw] ·
/// xp[oh + kh·dh][o + kw·dw]` over the padded input channel `xp`, the output row in
/// chunks of [`COLS`] registers (the last chunk of a row may be shorter).
#[inline(always)]
fn gather(s: &ConvShape, xp: &[f32], w: &[f32], bias: f32, out: &mut [f32]) {
    let wp = s.wp();
    for (oh, row) in out.chunks_exact_mut(s.ow).enumerate() {
        let mut chunks = row.chunks_exact_mut(COLS);
        for (j, chunk) in chunks.by_ref().enumerate() {
            let at = oh * wp + j * COLS;
            let chunk: &mut [f32; COLS] = chunk.try_into().expect("COLS floats");
            *chunk = gather_chunk::<COLS>(s, &xp[at..], w, bias);
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let at = oh * wp + s.ow / COLS * COLS;
            // A short chunk: the last columns of a row, computed over a full chunk
            // where the padded channel has room, else one column at a time.
            if xp.len() >= at + (s.kh - 1) * s.dh * wp + (s.kw - 1) * s.dw + COLS {
                let full = gather_chunk::<COLS>(s, &xp[at..], w, bias);
                rest.copy_from_slice(&full[..rest.len()]);
            } else {
                for (i, y) in rest.iter_mut().enumerate() {
                    *y = gather_chunk::<1>(s, &xp[at + i..], w, bias)[0];
                }
            }
        }
    }
}

/// `N` consecutive outputs of a row from `xr`, the padded channel at the first
/// one's window corner: the sums stay in registers across the taps.
#[inline(always)]
fn gather_chunk<const N: usize>(s: &ConvShape, xr: &[f32], w: &[f32], bias: f32) -> [f32; N] {
    let mut acc = [bias; N];
    for kh in 0..s.kh {
        for kw in 0..s.kw {
            let wv = w[kh * s.kw + kw];
            let run: &[f32; N] = xr[kh * s.dh * s.wp() + kw * s.dw..][..N].try_into().expect("N floats");
            for (a, &v) in acc.iter_mut().zip(run) {
                *a += wv * v;
            }
        }
    }
    acc
}

/// One output channel with any strides: each output row starts at the bias and
/// takes every tap along the row.
#[inline(always)]
fn strided(s: &ConvShape, xp: &[f32], w: &[f32], bias: f32, out: &mut [f32]) {
    let wp = s.wp();
    for (oh, row) in out.chunks_exact_mut(s.ow).enumerate() {
        row.fill(bias);
        for kh in 0..s.kh {
            let xr = &xp[(oh * s.sh + kh * s.dh) * wp..][..wp];
            for kw in 0..s.kw {
                let wv = w[kh * s.kw + kw];
                for (o, a) in row.iter_mut().enumerate() {
                    *a += wv * xr[o * s.sw + kw * s.dw];
                }
            }
        }
    }
}

/// Forward of one sample: output channel `o` reads input channel `o / (F / C)`,
/// then the epilogue (`at` is the sample's offset in the added tensor).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn forward(
    s: &ConvShape,
    post: Epilogue,
    at: usize,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let (taps, mult, plane, p) = (s.kh * s.kw, s.f / s.c, s.h * s.w, s.positions());
    for c in 0..s.c {
        let xp = pad_channel(s, &x[c * plane..][..plane], scratch);
        for m in 0..mult {
            let o = c * mult + m;
            let (wo, bias) = (&w[o * taps..][..taps], b.map_or(0.0, |b| b[o]));
            let out = &mut y[o * p..][..p];
            if s.sh == 1 && s.sw == 1 {
                gather(s, xp, wo, bias, out);
            } else {
                strided(s, xp, wo, bias, out);
            }
            if !post.is_identity() {
                for (oh, row) in out.chunks_exact_mut(s.ow).enumerate() {
                    post.finish(row, at + o * p + oh * s.ow);
                }
            }
        }
    }
}

/// Backward of `n` samples: adds to `dw` and `db` (when given), overwrites `dx`
/// (when given).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
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
    let (il, ol, p) = (s.input_len(), s.output_len(), s.positions());
    if tiled_weights(s) {
        weights::weight_gradient(s, x, dy, dw, n, scratch);
    }
    for i in 0..n {
        let (xs, dys) = (&x[i * il..][..il], &dy[i * ol..][..ol]);
        if let Some(db) = db.as_deref_mut() {
            for (o, dyo) in dys.chunks_exact(p).enumerate() {
                db[o] += sum(dyo);
            }
        }
        if !tiled_weights(s) {
            strided_weights(s, xs, dys, dw, scratch);
        }
        if let Some(dx) = dx.as_deref_mut() {
            data_gradient(s, w, dys, &mut dx[i * il..][..il], scratch);
        }
    }
}

/// `dw[o, tap] += Σ dy_o · (the input under tap)` for one sample, any strides.
#[inline(always)]
fn strided_weights(s: &ConvShape, x: &[f32], dy: &[f32], dw: &mut [f32], scratch: &mut [f32]) {
    let (wp, taps, mult, plane, p) = (s.wp(), s.kh * s.kw, s.f / s.c, s.h * s.w, s.positions());
    for c in 0..s.c {
        let xp = pad_channel(s, &x[c * plane..][..plane], scratch);
        for m in 0..mult {
            let o = c * mult + m;
            let (dyo, dwo) = (&dy[o * p..][..p], &mut dw[o * taps..][..taps]);
            for (oh, g) in dyo.chunks_exact(s.ow).enumerate() {
                for kh in 0..s.kh {
                    let xr = &xp[(oh * s.sh + kh * s.dh) * wp..][..wp];
                    for kw in 0..s.kw {
                        let at = |i: usize| xr[i * s.sw + kw * s.dw];
                        dwo[kh * s.kw + kw] += g.iter().enumerate().map(|(i, v)| v * at(i)).sum::<f32>();
                    }
                }
            }
        }
    }
}

/// The input gradient of one sample (overwritten).
#[inline(always)]
fn data_gradient(s: &ConvShape, w: &[f32], dy: &[f32], dx: &mut [f32], scratch: &mut [f32]) {
    let (hp, wp, taps, mult, plane, p) = (s.hp(), s.wp(), s.kh * s.kw, s.f / s.c, s.h * s.w, s.positions());
    let second = &mut scratch[hp * wp..];
    if gathers(s) {
        // dx[c] = the gathering forward of the padded dy[c] under the turned kernel.
        let t = s.transposed();
        let mut turned = [0.0f32; TURNED_MAX];
        for c in 0..s.c {
            for (d, v) in turned[..taps].iter_mut().zip(w[c * taps..][..taps].iter().rev()) {
                *d = *v;
            }
            let dyp = pad_channel(&t, &dy[c * p..][..p], second);
            gather(&t, dyp, &turned[..taps], 0.0, &mut dx[c * plane..][..plane]);
        }
        return;
    }
    // Scattered into a padded channel, its interior copied out.
    let dxp = &mut second[..hp * wp];
    for c in 0..s.c {
        dxp.fill(0.0);
        for m in 0..mult {
            let o = c * mult + m;
            let (dyo, wo) = (&dy[o * p..][..p], &w[o * taps..][..taps]);
            for (oh, g) in dyo.chunks_exact(s.ow).enumerate() {
                for kh in 0..s.kh {
                    let base = (oh * s.sh + kh * s.dh) * wp;
                    for kw in 0..s.kw {
                        let (wv, drow) = (wo[kh * s.kw + kw], &mut dxp[base + kw * s.dw..]);
                        for (i, v) in g.iter().enumerate() {
                            drow[i * s.sw] += wv * v;
                        }
                    }
                }
            }
        }
        let dxc = &mut dx[c * plane..][..plane];
        for h in 0..s.h {
            copy_run(&mut dxc[h * s.w..][..s.w], &dxp[(h + s.pt) * wp + s.pl..][..s.w]);
        }
    }
}
