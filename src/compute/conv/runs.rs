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
/// writing every cell once; with a column stride, each row's columns grouped by
/// their residue ([`ConvShape::padded_column`]).
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
            let src = &x[(c * s.h + h) * s.w..][..s.w];
            match s.sw {
                1 => {
                    zero_run(&mut row[..s.pl]);
                    copy_run(&mut row[s.pl..s.pl + s.w], src);
                    zero_run(&mut row[s.pl + s.w..]);
                }
                2 => split_pairs(s, row, src),
                _ => by_residue(s, row, src),
            }
        }
    }
}

/// One padded row at column stride 2: input column `i` (padded column `pl + i`)
/// to the even or the odd half, in pairs that LLVM turns into vector shuffles.
#[inline(always)]
fn split_pairs(s: &ConvShape, row: &mut [f32], src: &[f32]) {
    let odd_at = s.padded_column(1);
    let (even, odd) = row.split_at_mut(odd_at);
    // Input column 2k + r lands in half (pl + r) % 2 at (pl + r) / 2 + k.
    let (a, b) = if s.pl.is_multiple_of(2) {
        (even, odd)
    } else {
        (odd, even)
    };
    let (a0, b0) = (s.pl / 2, s.pl.div_ceil(2));
    let pairs = src.len() / 2;
    zero_run(&mut a[..a0]);
    zero_run(&mut b[..b0]);
    {
        let (a, b) = (&mut a[a0..][..pairs], &mut b[b0..][..pairs]);
        // Blocks of 16 columns as fixed-size arrays: ResNet's 3x3/2 16->32 forward
        // ran at 56-57% of the AVX-512 peak with them, 53% with a loop over pairs
        // and 34% with `by_residue`'s strided reads (benches/conv.rs).
        let blocks = src.chunks_exact(16);
        let rest = blocks.remainder();
        let (mut ab, mut bb) = (a.chunks_exact_mut(8), b.chunks_exact_mut(8));
        for ((block, a), b) in blocks.zip(&mut ab).zip(&mut bb) {
            let block: &[f32; 16] = block.try_into().expect("a block of 16");
            let even: [f32; 8] = std::array::from_fn(|i| block[2 * i]);
            let odd: [f32; 8] = std::array::from_fn(|i| block[2 * i + 1]);
            a.copy_from_slice(&even);
            b.copy_from_slice(&odd);
        }
        let (a, b) = (ab.into_remainder(), bb.into_remainder());
        for ((a, b), pair) in a.iter_mut().zip(b.iter_mut()).zip(rest.chunks_exact(2)) {
            *a = pair[0];
            *b = pair[1];
        }
    }
    // An odd count leaves its last column for the first half.
    let (a_end, b_end) = (a0 + pairs + src.len() % 2, b0 + pairs);
    if src.len() % 2 == 1 {
        a[a0 + pairs] = src[src.len() - 1];
    }
    zero_run(&mut a[a_end..]);
    zero_run(&mut b[b_end..]);
}

/// One padded row at any column stride `sw > 1` (stride 2 takes
/// [`split_pairs`]): for each residue `r`, the padded
/// columns `r, r + sw, ...` in order, those under the input (`pl .. pl + w`) from
/// `src` and the rest zero.
#[inline(always)]
fn by_residue(s: &ConvShape, row: &mut [f32], src: &[f32]) {
    let wp = row.len();
    for r in 0..s.sw.min(wp) {
        let plane = &mut row[s.padded_column(r)..][..(wp - r).div_ceil(s.sw)];
        // Plane cell k is padded column r + k * sw: inside the input from `first`
        // to `end`.
        let first = s.pl.saturating_sub(r).div_ceil(s.sw);
        let end = (s.pl + s.w).saturating_sub(r).div_ceil(s.sw).clamp(first, plane.len());
        zero_run(&mut plane[..first]);
        // (r + first * sw >= pl by the choice of `first`.)
        let from = r + first * s.sw - s.pl;
        for (d, &v) in plane[first..end].iter_mut().zip(src.iter().skip(from).step_by(s.sw)) {
            *d = v;
        }
        zero_run(&mut plane[end..]);
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
