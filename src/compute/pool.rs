//! Max and average pooling. Windows are clipped to the input, so padding needs
//! no buffer: padded cells never win a max, and count in an average's divisor
//! (PyTorch's `count_include_pad=True`), except cells past the padded edge in
//! `ceil` mode.

/// Every size a pooling layer needs; the generated code passes it as a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pt: usize,
    pub pb: usize,
    pub pl: usize,
    pub pr: usize,
    pub oh: usize,
    pub ow: usize,
}

/// One axis of one window: the cells inside the input, and the divisor's share.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    /// Cells inside the padded input (for the average's divisor).
    padded: usize,
}

#[inline(always)]
fn span(o: usize, stride: usize, k: usize, pad_before: usize, pad_after: usize, len: usize) -> Span {
    // Window covers [o*stride - pad_before, o*stride - pad_before + k) in input coordinates.
    let lo = (o * stride) as isize - pad_before as isize;
    let hi = lo + k as isize;
    let padded_hi = hi.min((len + pad_after) as isize);
    Span {
        start: lo.max(0) as usize,
        end: (hi.min(len as isize)).max(0) as usize,
        padded: (padded_hi - lo).max(0) as usize,
    }
}

impl PoolShape {
    pub const fn input_len(&self) -> usize {
        self.c * self.h * self.w
    }
    pub const fn output_len(&self) -> usize {
        self.c * self.oh * self.ow
    }

    /// No padding and every window inside the input: nothing to clip.
    const fn inside(&self) -> bool {
        self.pt + self.pb + self.pl + self.pr == 0
            && (self.oh - 1) * self.sh + self.kh <= self.h
            && (self.ow - 1) * self.sw + self.kw <= self.w
    }

    #[inline(always)]
    fn rows(&self, oh: usize) -> Span {
        span(oh, self.sh, self.kh, self.pt, self.pb, self.h)
    }

    #[inline(always)]
    fn cols(&self, ow: usize) -> Span {
        span(ow, self.sw, self.kw, self.pl, self.pr, self.w)
    }
}

/// The flat index (within one channel) of a window's largest cell; the first
/// one on ties, as PyTorch.
#[inline(always)]
fn argmax(x: &[f32], w: usize, rows: Span, cols: Span) -> usize {
    let mut best = rows.start * w + cols.start;
    let mut best_v = f32::NEG_INFINITY;
    for h in rows.start..rows.end {
        for c in cols.start..cols.end {
            let v = x[h * w + c];
            if v > best_v || v.is_nan() {
                best_v = v;
                best = h * w + c;
            }
        }
    }
    best
}

/// The larger of two cells, NaN if either is (as PyTorch's max pooling). With bit
/// masks rather than `if`: LLVM turns a select into a branch, and on real images
/// which cell wins is a coin toss that the branch predictor loses.
#[inline(always)]
fn max_nan(m: f32, v: f32) -> f32 {
    let take = mask((v > m) | v.is_nan());
    f32::from_bits((v.to_bits() & take) | (m.to_bits() & !take))
}

/// All ones when `b`, else zero.
#[inline(always)]
fn mask(b: bool) -> u32 {
    0u32.wrapping_sub(u32::from(b))
}

#[inline(always)]
pub fn max_forward(s: &PoolShape, x: &[f32], y: &mut [f32], n: usize) {
    if s.inside() && (s.kh, s.kw, s.sh, s.sw) == (2, 2, 2, 2) {
        // The common 2x2 window of stride 2 with its sizes as literals: the pairs
        // of a row are a stride-2 access the compiler vectorizes even when the
        // rows' lengths are run-time values (5x faster there). The same order of
        // comparisons as below, so the same result.
        for ch in 0..n * s.c {
            let xc = &x[ch * s.h * s.w..][..s.h * s.w];
            let yc = &mut y[ch * s.oh * s.ow..][..s.oh * s.ow];
            for (oh, out) in yc.chunks_exact_mut(s.ow).enumerate() {
                let top = &xc[2 * oh * s.w..][..2 * s.ow];
                let bottom = &xc[(2 * oh + 1) * s.w..][..2 * s.ow];
                for ((y, t), b) in out.iter_mut().zip(top.chunks_exact(2)).zip(bottom.chunks_exact(2)) {
                    let m = max_nan(t[0], t[0]);
                    let m = max_nan(m, t[1]);
                    let m = max_nan(m, b[0]);
                    *y = max_nan(m, b[1]);
                }
            }
        }
        return;
    }
    if s.inside() {
        // Unclipped windows: for each cell of the window, one pass over the output
        // row, so the row's windows are independent and the pass vectorizes.
        for ch in 0..n * s.c {
            let xc = &x[ch * s.h * s.w..][..s.h * s.w];
            let yc = &mut y[ch * s.oh * s.ow..][..s.oh * s.ow];
            for (oh, out) in yc.chunks_exact_mut(s.ow).enumerate() {
                let window = &xc[oh * s.sh * s.w..][..(s.kh - 1) * s.w + s.w];
                for (ow, y) in out.iter_mut().enumerate() {
                    *y = window[ow * s.sw];
                }
                for kh in 0..s.kh {
                    let row = &window[kh * s.w..][..s.w];
                    for kw in 0..s.kw {
                        for (ow, y) in out.iter_mut().enumerate() {
                            *y = max_nan(*y, row[ow * s.sw + kw]);
                        }
                    }
                }
            }
        }
        return;
    }
    for ch in 0..n * s.c {
        let xc = &x[ch * s.h * s.w..][..s.h * s.w];
        let yc = &mut y[ch * s.oh * s.ow..][..s.oh * s.ow];
        for oh in 0..s.oh {
            let rows = s.rows(oh);
            for ow in 0..s.ow {
                yc[oh * s.ow + ow] = xc[argmax(xc, s.w, rows, s.cols(ow))];
            }
        }
    }
}

/// Routes each output gradient to its window's winner (found again from `x`).
#[inline(always)]
pub fn max_backward(s: &PoolShape, x: &[f32], dy: &[f32], dx: &mut [f32], n: usize) {
    dx[..n * s.input_len()].fill(0.0);
    if s.inside() && s.kh == s.sh && s.kw == s.sw {
        // Unclipped windows that tile the input: every cell gets its window's gradient
        // or 0 by a select, so no store depends on the data (a winner-indexed
        // `dx[best] += g` cost more than the convolutions on real images).
        for ch in 0..n * s.c {
            let xc = &x[ch * s.h * s.w..][..s.h * s.w];
            let dyc = &dy[ch * s.oh * s.ow..][..s.oh * s.ow];
            let dxc = &mut dx[ch * s.h * s.w..][..s.h * s.w];
            for (oh, g) in dyc.chunks_exact(s.ow).enumerate() {
                let top = oh * s.kh * s.w;
                for (ow, &g) in g.iter().enumerate() {
                    let first = top + ow * s.kw;
                    let mut m = xc[first];
                    for kh in 0..s.kh {
                        for kw in 0..s.kw {
                            m = max_nan(m, xc[first + kh * s.w + kw]);
                        }
                    }
                    // The first cell equal to the max wins, or the last NaN, as
                    // PyTorch (and `argmax`); a NaN is rare, so its branch is
                    // predicted.
                    if m.is_nan() {
                        let mut last = first;
                        for kh in 0..s.kh {
                            for kw in 0..s.kw {
                                let i = first + kh * s.w + kw;
                                if xc[i].is_nan() {
                                    last = i;
                                }
                            }
                        }
                        dxc[last] = g;
                        continue;
                    }
                    let mut won = 0u32;
                    for kh in 0..s.kh {
                        for kw in 0..s.kw {
                            let i = first + kh * s.w + kw;
                            let wins = mask(xc[i] == m) & !won;
                            won |= wins;
                            dxc[i] = f32::from_bits(g.to_bits() & wins);
                        }
                    }
                }
            }
        }
        return;
    }
    for ch in 0..n * s.c {
        let xc = &x[ch * s.h * s.w..][..s.h * s.w];
        let dyc = &dy[ch * s.oh * s.ow..][..s.oh * s.ow];
        let dxc = &mut dx[ch * s.h * s.w..][..s.h * s.w];
        for oh in 0..s.oh {
            let rows = s.rows(oh);
            for ow in 0..s.ow {
                dxc[argmax(xc, s.w, rows, s.cols(ow))] += dyc[oh * s.ow + ow];
            }
        }
    }
}

#[inline(always)]
pub fn avg_forward(s: &PoolShape, x: &[f32], y: &mut [f32], n: usize) {
    for ch in 0..n * s.c {
        let xc = &x[ch * s.h * s.w..][..s.h * s.w];
        let yc = &mut y[ch * s.oh * s.ow..][..s.oh * s.ow];
        for oh in 0..s.oh {
            let rows = s.rows(oh);
            for ow in 0..s.ow {
                let cols = s.cols(ow);
                let mut total = 0.0;
                for h in rows.start..rows.end {
                    for v in &xc[h * s.w + cols.start..h * s.w + cols.end] {
                        total += v;
                    }
                }
                yc[oh * s.ow + ow] = total / (rows.padded * cols.padded) as f32;
            }
        }
    }
}

#[inline(always)]
pub fn avg_backward(s: &PoolShape, dy: &[f32], dx: &mut [f32], n: usize) {
    dx[..n * s.input_len()].fill(0.0);
    for ch in 0..n * s.c {
        let dyc = &dy[ch * s.oh * s.ow..][..s.oh * s.ow];
        let dxc = &mut dx[ch * s.h * s.w..][..s.h * s.w];
        for oh in 0..s.oh {
            let rows = s.rows(oh);
            for ow in 0..s.ow {
                let cols = s.cols(ow);
                let g = dyc[oh * s.ow + ow] / (rows.padded * cols.padded) as f32;
                for h in rows.start..rows.end {
                    for v in &mut dxc[h * s.w + cols.start..h * s.w + cols.end] {
                        *v += g;
                    }
                }
            }
        }
    }
}

/// `avgpool global`: each channel's mean.
#[inline(always)]
pub fn global_avg_forward(channels: usize, area: usize, x: &[f32], y: &mut [f32], n: usize) {
    for ch in 0..n * channels {
        y[ch] = super::sum(&x[ch * area..][..area]) / area as f32;
    }
}

#[inline(always)]
pub fn global_avg_backward(channels: usize, area: usize, dy: &[f32], dx: &mut [f32], n: usize) {
    for ch in 0..n * channels {
        dx[ch * area..][..area].fill(dy[ch] / area as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The branch-free path (unclipped windows) against the clipping path's
    /// `argmax`, on ties (relu zeros), NaN and -inf: same maxima, same winners.
    #[test]
    fn unclipped_windows_match_argmax_on_ties_and_nan() {
        let s = PoolShape {
            c: 2,
            h: 5,
            w: 7,
            kh: 2,
            kw: 3,
            sh: 2,
            sw: 3,
            pt: 0,
            pb: 0,
            pl: 0,
            pr: 0,
            oh: 2,
            ow: 2,
        };
        matches_argmax(s);
    }

    /// Windows that tile the input (their own branch-free loop) with two NaNs in
    /// one window: the last NaN takes the gradient, as in PyTorch.
    #[test]
    fn tiling_windows_give_the_last_nan_the_gradient() {
        let s = PoolShape {
            c: 1,
            h: 3,
            w: 6,
            kh: 3,
            kw: 3,
            sh: 3,
            sw: 3,
            pt: 0,
            pb: 0,
            pl: 0,
            pr: 0,
            oh: 1,
            ow: 2,
        };
        let mut x = vec![1.0f32; s.input_len()];
        x[1] = f32::NAN;
        x[13] = f32::NAN;
        let mut dx = vec![0.0; s.input_len()];
        max_backward(&s, &x, &[1.0, 2.0], &mut dx, 1);
        let mut want = vec![0.0; s.input_len()];
        want[13] = 1.0; // the first window's last NaN
        want[3] = 2.0; // the second window's first maximum
        assert_eq!(dx, want);
        matches_argmax(s);
    }

    /// The same for LeNet's 2x2 window of stride 2, on an odd width whose last
    /// column no window reads. (A branch-free 2x2 loop of its own, written to
    /// vectorize with stride-2 access as `max_forward`'s does, made generated
    /// LeNet training 24% slower: the tiling loop stays.)
    #[test]
    fn two_by_two_windows_match_argmax_on_ties_and_nan() {
        let s = PoolShape {
            c: 3,
            h: 6,
            w: 9,
            kh: 2,
            kw: 2,
            sh: 2,
            sw: 2,
            pt: 0,
            pb: 0,
            pl: 0,
            pr: 0,
            oh: 3,
            ow: 4,
        };
        matches_argmax(s);
    }

    fn matches_argmax(s: PoolShape) {
        assert!(s.inside());
        let cells = [0.0, 0.0, 1.5, f32::NAN, -1.0, f32::NEG_INFINITY, 0.0, 2.0, 2.0];
        let x: Vec<f32> = (0..s.input_len())
            .map(|i| cells[(i * 7 + i / 5) % cells.len()])
            .collect();
        let dy: Vec<f32> = (0..s.output_len()).map(|i| 1.0 + i as f32).collect();
        let (mut y, mut dx) = (vec![0.0; s.output_len()], vec![0.0; s.input_len()]);
        max_forward(&s, &x, &mut y, 1);
        max_backward(&s, &x, &dy, &mut dx, 1);
        let mut want_dx = vec![0.0; s.input_len()];
        for ch in 0..s.c {
            let xc = &x[ch * s.h * s.w..][..s.h * s.w];
            for oh in 0..s.oh {
                for ow in 0..s.ow {
                    let o = ch * s.oh * s.ow + oh * s.ow + ow;
                    let best = argmax(xc, s.w, s.rows(oh), s.cols(ow));
                    let want = xc[best];
                    assert!(
                        y[o] == want || (y[o].is_nan() && want.is_nan()),
                        "output {o}: {} vs {want}",
                        y[o]
                    );
                    want_dx[ch * s.h * s.w + best] += dy[o];
                }
            }
        }
        assert_eq!(dx, want_dx);
    }
}
