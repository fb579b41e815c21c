//! Short runs of a row: copied and zeroed without a call to the C library; and
//! what the direct paths share: a sample copied with its padding, and the even
//! split of a loop into register blocks.

use super::shape::ConvShape;

// The unfolding and the padding copy runs of an input row, a few floats long on
// small feature maps (8 on LeNet's second convolution). With the length known
// only at run time (the plan executor), `copy_from_slice` and `fill` call `memcpy`
// and `memset`, whose calls cost more than these copies (and LLVM turns any
// copying loop into such a call), so runs of up to 16 floats are copied as the C
// libraries do it: two fixed-size blocks that overlap, each one vector move. With
// them, the relu gradient in a loop of its own (compute::act) and the tight loop
// of `conv::Sizes::RunTime`, LeNet training through the executor went from 21.5k
// to 27.2k images/s (generated code: 34.2k; one thread, AMD EPYC Zen 5,
// `cnnc bench examples/models/lenet.cnn --threads 1`).

/// `dst = src` (equal lengths).
#[inline(always)]
pub fn copy_run(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    debug_assert_eq!(n, src.len());
    match n {
        0 => {}
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..]);
        }
        8..=16 => {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        }
        _ => dst.copy_from_slice(src),
    }
}

/// Fills `dst` with runs of `len` floats from `src`, whose rows start `stride`
/// apart: the size class is chosen once for all the rows.
#[inline(always)]
pub fn copy_rows(dst: &mut [f32], len: usize, src: &[f32], stride: usize) {
    let rows = dst.chunks_exact_mut(len).enumerate();
    match len {
        8..=16 => {
            for (r, d) in rows {
                let s = &src[r * stride..][..len];
                d[..8].copy_from_slice(&s[..8]);
                d[len - 8..].copy_from_slice(&s[len - 8..]);
            }
        }
        _ => {
            for (r, d) in rows {
                copy_run(d, &src[r * stride..][..len]);
            }
        }
    }
}

/// `dst = 0`.
#[inline(always)]
pub fn zero_run(dst: &mut [f32]) {
    let n = dst.len();
    match n {
        0 => {}
        1..=3 => {
            dst[0] = 0.0;
            dst[n / 2] = 0.0;
            dst[n - 1] = 0.0;
        }
        4..=7 => {
            dst[..4].copy_from_slice(&[0.0; 4]);
            dst[n - 4..].copy_from_slice(&[0.0; 4]);
        }
        8..=16 => {
            dst[..8].copy_from_slice(&[0.0; 8]);
            dst[n - 8..].copy_from_slice(&[0.0; 8]);
        }
        _ => dst.fill(0.0),
    }
}

/// Zeros after a padded sample in scratch: the last vector of an output row may
/// load up to one vector past the last input row.
pub const SLACK: usize = 16;

/// Copies one sample into `xp` with zero borders and zero slack after it,
/// writing every cell once.
#[inline(always)]
pub(super) fn pad(s: &ConvShape, x: &[f32], xp: &mut [f32]) {
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

/// The larger of two sizes, in `const fn`s (scratch lengths).
pub(super) const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// How many rows of `per_row` floats fit in `budget` floats (at least one).
pub(super) const fn rows_within(per_row: usize, budget: usize) -> usize {
    max(budget / max(per_row, 1), 1)
}

/// Splits `total` into equal blocks of at most `most`: the block size.
pub(super) const fn balanced(total: usize, most: usize) -> usize {
    let most = if most == 0 { 1 } else { most };
    let blocks = total.div_ceil(most);
    if blocks == 0 {
        1
    } else {
        total.div_ceil(blocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length through each size class, at every offset of a longer row, so
    /// that a block written past the run's end would show.
    #[test]
    fn runs_touch_exactly_their_range() {
        for n in 0..=40 {
            for at in 0..3 {
                let src: Vec<f32> = (0..n).map(|i| i as f32 + 1.0).collect();
                let mut row = vec![-1.0f32; n + 6];
                copy_run(&mut row[at..at + n], &src);
                for (i, v) in row.iter().enumerate() {
                    let want = if (at..at + n).contains(&i) { src[i - at] } else { -1.0 };
                    assert_eq!(*v, want, "copy_run n {n} at {at} cell {i}");
                }
                zero_run(&mut row[at..at + n]);
                for (i, v) in row.iter().enumerate() {
                    let want = if (at..at + n).contains(&i) { 0.0 } else { -1.0 };
                    assert_eq!(*v, want, "zero_run n {n} at {at} cell {i}");
                }
            }
        }
    }

    /// Rows of every length from a strided source, packed, with nothing written
    /// past them.
    #[test]
    fn copy_rows_packs_strided_rows() {
        for len in 1..=20 {
            let (rows, stride) = (3, len + 5);
            let src: Vec<f32> = (0..rows * stride).map(|i| i as f32).collect();
            let mut dst = vec![-1.0f32; rows * len + 4];
            copy_rows(&mut dst[..rows * len], len, &src, stride);
            for r in 0..rows {
                for j in 0..len {
                    assert_eq!(dst[r * len + j], src[r * stride + j], "len {len} row {r} col {j}");
                }
            }
            assert!(
                dst[rows * len..].iter().all(|&v| v == -1.0),
                "len {len}: wrote past the rows"
            );
        }
    }
}
