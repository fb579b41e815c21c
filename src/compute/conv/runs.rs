//! Short runs of a row: copied, zeroed and added without a call to the C library.

// The unfolding and the padding copy runs of an input row, a few floats long on small feature
// maps (8 on LeNet's second convolution). With the length known only at run time
// (the plan executor), `copy_from_slice` and `fill` call `memcpy` and `memset`,
// whose calls cost more than these copies (and LLVM turns any copying loop into
// such a call), so runs of up to 16 floats are copied as the C libraries do it:
// two fixed-size blocks that overlap, each one vector move. With them (and the
// relu gradient in a loop of its own, compute::act) LeNet training through the
// executor went from 0.65x to 0.87x of generated code's images/s (one thread,
// AMD EPYC Zen 5, `bash benches/executor.sh`).

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

/// `dst += src` (equal lengths), in chunks of 8 that compile to one vector add
/// each (a plain loop with a run-time length vectorizes its long runs only).
#[inline(always)]
pub fn add_run(dst: &mut [f32], src: &[f32]) {
    debug_assert_eq!(dst.len(), src.len());
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        for (d, s) in d.iter_mut().zip(s) {
            *d += s;
        }
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d += s;
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
                add_run(&mut row[at..at + n], &src);
                for (i, v) in row.iter().enumerate() {
                    let want = if (at..at + n).contains(&i) {
                        2.0 * src[i - at]
                    } else {
                        -1.0
                    };
                    assert_eq!(*v, want, "add_run n {n} at {at} cell {i}");
                }
                zero_run(&mut row[at..at + n]);
                for (i, v) in row.iter().enumerate() {
                    let want = if (at..at + n).contains(&i) { 0.0 } else { -1.0 };
                    assert_eq!(*v, want, "zero_run n {n} at {at} cell {i}");
                }
            }
        }
    }
}
