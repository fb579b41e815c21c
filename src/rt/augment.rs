//! The `augment` transforms of a train block, applied to one training sample:
//! `flip horizontal`, `flip vertical` (each with probability 1/2) and `crop P`
//! (pad P zeros on every side, take a random window of the input's size, as
//! torchvision's `RandomCrop(size, padding=P)`).
//!
//! Every draw is a counter-based hash of (seed, epoch, sample index, transform
//! position), so a sample's augmentation does not depend on the thread that
//! handles it or on the order samples are handled in. Nothing is allocated:
//! flips and crops only move pixels, so the transforms are composed as one map
//! from output rows and columns to input rows and columns (or to a zero).

use crate::ir::Augment;

/// SplitMix64's finalizer: a bijective mix of 64 bits.
///
/// Hand-written (eight lines) rather than a generator crate: the draws must be a
/// pure function of their counters, not the state of a stream.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 64 random bits for draw `draw` of the transform at position `position`, for
/// sample `index` in epoch `epoch` of a run seeded with `seed`.
pub fn draw_bits(seed: u64, epoch: u64, index: u64, position: u64, draw: u64) -> u64 {
    let mut h = mix(seed);
    for counter in [epoch, index, position, draw] {
        h = mix(h ^ counter);
    }
    h
}

/// A number below `n` from 64 random bits (the high half of a 128-bit product:
/// the bias is below n / 2^64).
fn below(bits: u64, n: u64) -> u64 {
    ((bits as u128 * n as u128) >> 64) as u64
}

/// What one transform does to one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Whether the sample is mirrored (left-right or top-bottom, as the transform says).
    Flip(bool),
    /// The window's top-left corner in the padded sample, each in `0..=2P`
    /// (`P, P` is the centre: the sample unchanged).
    Crop { top: usize, left: usize },
}

/// The choice of the transform `augs[position]` for one sample.
pub fn choice(aug: Augment, position: usize, seed: u64, epoch: u64, index: u64) -> Choice {
    let bits = |draw| draw_bits(seed, epoch, index, position as u64, draw);
    match aug {
        Augment::FlipHorizontal | Augment::FlipVertical => Choice::Flip(bits(0) >> 63 == 1),
        Augment::Crop(p) => {
            let n = 2 * p as u64 + 1;
            Choice::Crop {
                top: below(bits(0), n) as usize,
                left: below(bits(1), n) as usize,
            }
        }
    }
}

/// Where output positions along one axis read the input: position `i` reads
/// `sign * i + offset` when `lo <= i < hi`, a zero otherwise. Flips and crops are
/// monotonic shifts and reflections with a range check, so any chain of them
/// composes into this form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AxisMap {
    sign: i64,
    offset: i64,
    lo: i64,
    hi: i64,
}

impl AxisMap {
    /// The map of `augs` (applied in order) along `axis` of length `len`: built
    /// from the last transform back, since it is the first to map an output
    /// position.
    fn new(augs: &[Augment], axis: Axis, len: usize, seed: u64, epoch: u64, index: u64) -> AxisMap {
        let len = len as i64;
        let mut m = AxisMap {
            sign: 1,
            offset: 0,
            lo: 0,
            hi: len,
        };
        for (position, &aug) in augs.iter().enumerate().rev() {
            match (aug, choice(aug, position, seed, epoch, index), axis) {
                (Augment::FlipHorizontal, Choice::Flip(true), Axis::Column)
                | (Augment::FlipVertical, Choice::Flip(true), Axis::Row) => {
                    m.sign = -m.sign;
                    m.offset = len - 1 - m.offset;
                }
                (Augment::Crop(p), Choice::Crop { top, left }, _) => {
                    // Padded position `at + corner` is input position `at + corner - p`,
                    // a zero unless it lies in 0..len.
                    let corner = if axis == Axis::Row { top } else { left };
                    m.offset += corner as i64 - p as i64;
                    let (lo, hi) = if m.sign == 1 {
                        (-m.offset, len - m.offset)
                    } else {
                        (m.offset - len + 1, m.offset + 1)
                    };
                    m.lo = m.lo.max(lo);
                    m.hi = m.hi.min(hi);
                }
                _ => {}
            }
        }
        m
    }

    fn source(&self, i: usize) -> Option<usize> {
        let i = i as i64;
        (self.lo <= i && i < self.hi).then(|| (self.sign * i + self.offset) as usize)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Axis {
    Row,
    Column,
}

/// Applies `augs`, in order, to the sample `x` of shape `(channels, height,
/// width)` (CHW), writing `out`: sample `index` of epoch `epoch` in a run seeded
/// with `seed`. Allocates nothing.
///
/// # Panics
/// When `x` or `out` does not hold `channels * height * width` values (a caller's
/// bug, not a user's input).
pub fn augment_sample(
    augs: &[Augment],
    shape: (usize, usize, usize),
    seed: u64,
    epoch: u64,
    index: u64,
    x: &[f32],
    out: &mut [f32],
) {
    let (c, h, w) = shape;
    let len = c * h * w;
    assert!(
        x.len() == len && out.len() == len,
        "augment_sample: a {c}x{h}x{w} sample holds {len} values; given {} in and {} out",
        x.len(),
        out.len()
    );
    if augs.is_empty() {
        out.copy_from_slice(x);
        return;
    }
    let plane = h * w;
    let rows = AxisMap::new(augs, Axis::Row, h, seed, epoch, index);
    let cols = AxisMap::new(augs, Axis::Column, w, seed, epoch, index);
    for i in 0..h {
        let row = rows.source(i);
        for j in 0..w {
            let col = cols.source(j);
            let from = row.zip(col).map(|(r, s)| r * w + s);
            for ch in 0..c {
                out[ch * plane + i * w + j] = from.map_or(0.0, |f| x[ch * plane + f]);
            }
        }
    }
}

/// v3: the same transforms on a sample's label map (`height x width` class
/// indices), so that a mask moves with its image: flips mirror it, crops shift
/// it, and positions from the padding get `fill` (the `ignore` label, or 0).
/// Allocates nothing.
///
/// # Panics
/// When `x` or `out` does not hold `height * width` values (a caller's bug).
#[allow(clippy::too_many_arguments)]
pub fn augment_labels(
    augs: &[Augment],
    shape: (usize, usize),
    seed: u64,
    epoch: u64,
    index: u64,
    x: &[usize],
    out: &mut [usize],
    fill: usize,
) {
    let (h, w) = shape;
    assert!(
        x.len() == h * w && out.len() == h * w,
        "augment_labels: a {h}x{w} label map holds {} values; given {} in and {} out",
        h * w,
        x.len(),
        out.len()
    );
    let rows = AxisMap::new(augs, Axis::Row, h, seed, epoch, index);
    let cols = AxisMap::new(augs, Axis::Column, w, seed, epoch, index);
    for i in 0..h {
        let row = rows.source(i);
        for j in 0..w {
            let from = row.zip(cols.source(j)).map(|(r, s)| r * w + s);
            out[i * w + j] = from.map_or(fill, |f| x[f]);
        }
    }
}

/// [`augment_sample`] over a batch `[N, C, H, W]` whose samples have the
/// indices `indices` (their positions in the training set, so a sample gets the
/// same draws whichever batch it lands in).
///
/// # Panics
/// When `x` or `out` does not hold `indices.len()` samples of the shape.
pub fn augment_batch(
    augs: &[Augment],
    shape: (usize, usize, usize),
    seed: u64,
    epoch: u64,
    indices: &[usize],
    x: &[f32],
    out: &mut [f32],
) {
    let len = shape.0 * shape.1 * shape.2;
    assert!(
        x.len() == len * indices.len() && out.len() == x.len(),
        "augment_batch: {} samples of {len} values need {} values; given {} in and {} out",
        indices.len(),
        len * indices.len(),
        x.len(),
        out.len()
    );
    if len == 0 {
        return;
    }
    for ((&index, x), out) in indices.iter().zip(x.chunks_exact(len)).zip(out.chunks_exact_mut(len)) {
        augment_sample(augs, shape, seed, epoch, index as u64, x, out);
    }
}
