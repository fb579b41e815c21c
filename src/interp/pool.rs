//! Pooling. A window cell `(ky, kx)` of output `(oy, ox)` reads input
//! `(oy*SH + ky - pad_top, ox*SW + kx - pad_left)`; cells outside the input are padding.
//!
//! - max: padding is -inf, so it never wins; the first largest cell (row-major in the
//!   window) wins, as in PyTorch.
//! - avg: padding counts as zeros in the mean. The divisor is the number of window cells
//!   inside the *padded* input (`in + pad_before + pad_after`), which is `KH*KW` except for
//!   a `round ceil` window hanging past the padded edge (PyTorch's
//!   `avg_pool2d(ceil_mode=True, count_include_pad=True)`).
//! - global avg: the mean of each channel.

use super::real::Real;
use super::tap;
use crate::ir::Window;
use ndarray::{Array4, ArrayView4};

/// The input cell that wins the window of output `(s, ch, oy, ox)`; `None` only if the
/// window holds no input cell (the checker rules that out).
fn argmax<T: Real>(
    x: &ArrayView4<T>,
    s: usize,
    ch: usize,
    oy: usize,
    ox: usize,
    win: &Window,
) -> Option<(usize, usize)> {
    let (_, _, h, w) = x.dim();
    let mut best: Option<(usize, usize)> = None;
    for ky in 0..win.size[0] {
        let Some(iy) = tap(oy, ky, win, 0, h) else { continue };
        for kx in 0..win.size[1] {
            let Some(ix) = tap(ox, kx, win, 1, w) else { continue };
            let v = x[[s, ch, iy, ix]];
            let wins = match best {
                None => true,
                Some((by, bx)) => v > x[[s, ch, by, bx]],
            };
            if wins {
                best = Some((iy, ix));
            }
        }
    }
    best
}

pub fn max_forward<T: Real>(x: ArrayView4<T>, win: &Window, (oh, ow): (usize, usize)) -> Array4<T> {
    let (n, c, _, _) = x.dim();
    let mut y = Array4::from_elem((n, c, oh, ow), T::ZERO);
    for s in 0..n {
        for ch in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    if let Some((iy, ix)) = argmax(&x, s, ch, oy, ox, win) {
                        y[[s, ch, oy, ox]] = x[[s, ch, iy, ix]];
                    }
                }
            }
        }
    }
    y
}

/// Each output's gradient goes to its window's winner.
pub fn max_backward<T: Real>(x: ArrayView4<T>, win: &Window, dy: ArrayView4<T>) -> Array4<T> {
    let (n, c, oh, ow) = dy.dim();
    let mut dx = Array4::from_elem(x.dim(), T::ZERO);
    for s in 0..n {
        for ch in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    if let Some((iy, ix)) = argmax(&x, s, ch, oy, ox, win) {
                        dx[[s, ch, iy, ix]] += dy[[s, ch, oy, ox]];
                    }
                }
            }
        }
    }
    dx
}

/// The number of window cells of output `o` along `axis` that lie inside the padded input.
fn cells_in_padded<T: Real>(o: usize, win: &Window, axis: usize, size: usize) -> T {
    let start = o * win.stride[axis];
    let end = (start + win.size[axis]).min(size + win.pad_before[axis] + win.pad_after[axis]);
    T::from_usize(end.saturating_sub(start))
}

pub fn avg_forward<T: Real>(x: ArrayView4<T>, win: &Window, (oh, ow): (usize, usize)) -> Array4<T> {
    let (n, c, h, w) = x.dim();
    let mut y = Array4::from_elem((n, c, oh, ow), T::ZERO);
    for s in 0..n {
        for ch in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut sum = T::ZERO;
                    for ky in 0..win.size[0] {
                        let Some(iy) = tap(oy, ky, win, 0, h) else { continue };
                        for kx in 0..win.size[1] {
                            let Some(ix) = tap(ox, kx, win, 1, w) else { continue };
                            sum += x[[s, ch, iy, ix]];
                        }
                    }
                    let count = cells_in_padded::<T>(oy, win, 0, h) * cells_in_padded::<T>(ox, win, 1, w);
                    y[[s, ch, oy, ox]] = sum / count;
                }
            }
        }
    }
    y
}

/// Each input cell of a window receives the output's gradient divided by the divisor.
pub fn avg_backward<T: Real>(x: ArrayView4<T>, win: &Window, dy: ArrayView4<T>) -> Array4<T> {
    let (n, c, h, w) = x.dim();
    let (_, _, oh, ow) = dy.dim();
    let mut dx = Array4::from_elem((n, c, h, w), T::ZERO);
    for s in 0..n {
        for ch in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let count = cells_in_padded::<T>(oy, win, 0, h) * cells_in_padded::<T>(ox, win, 1, w);
                    let g = dy[[s, ch, oy, ox]] / count;
                    for ky in 0..win.size[0] {
                        let Some(iy) = tap(oy, ky, win, 0, h) else { continue };
                        for kx in 0..win.size[1] {
                            let Some(ix) = tap(ox, kx, win, 1, w) else { continue };
                            dx[[s, ch, iy, ix]] += g;
                        }
                    }
                }
            }
        }
    }
    dx
}

/// `[N, C, H, W]` to `[N, C, 1, 1]`: the mean of each channel.
pub fn global_avg_forward<T: Real>(x: ArrayView4<T>) -> Array4<T> {
    let (n, c, h, w) = x.dim();
    let mut y = Array4::from_elem((n, c, 1, 1), T::ZERO);
    for s in 0..n {
        for ch in 0..c {
            let mut sum = T::ZERO;
            for iy in 0..h {
                for ix in 0..w {
                    sum += x[[s, ch, iy, ix]];
                }
            }
            y[[s, ch, 0, 0]] = sum / T::from_usize(h * w);
        }
    }
    y
}

/// Every cell of a channel receives `dy / (H*W)`.
pub fn global_avg_backward<T: Real>(x: ArrayView4<T>, dy: ArrayView4<T>) -> Array4<T> {
    let (n, c, h, w) = x.dim();
    let mut dx = Array4::from_elem((n, c, h, w), T::ZERO);
    for s in 0..n {
        for ch in 0..c {
            let g = dy[[s, ch, 0, 0]] / T::from_usize(h * w);
            for iy in 0..h {
                for ix in 0..w {
                    dx[[s, ch, iy, ix]] = g;
                }
            }
        }
    }
    dx
}

/// v3 `maxpool global`: the max pooling whose one window is the whole `h` x `w` image.
pub fn global_window(h: usize, w: usize) -> Window {
    Window {
        size: [h, w],
        stride: [h, w],
        pad_before: [0, 0],
        pad_after: [0, 0],
        ceil: false,
    }
}
