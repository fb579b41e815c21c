//! Batch normalization, input normalization and the residual add.
//!
//! Batch normalization in training needs the statistics of the whole minibatch,
//! which several workers hold in pieces. So each pass is split in two around a
//! combine that the driver does (`rt::driver`), in a fixed worker order:
//! - forward: [`bn_partial_stats`] (each worker's per-channel mean and sum of
//!   squared deviations), combine, then [`bn_forward`] with the batch mean and
//!   1/sqrt(var + eps);
//! - backward: [`bn_backward_partial`] (per channel Σdy and Σdy·x̂ over the
//!   worker's samples, also added to dβ and dγ), combine, then
//!   [`bn_backward_input`] with the batch sums.
//!
//! Layout: `[n, c, area]` (area = H·W for `BatchNorm2d`, 1 for `BatchNorm1d`).

use super::layers::dispatched;
use super::Activation;

/// Independent accumulators per reduction: a sum in one chain waits four cycles
/// per element for the previous add; sixteen chains vectorize into one AVX-512
/// or two AVX2 registers and keep the adders busy.
const CHAINS: usize = 16;

/// Σ f(a[i], b[i]) over a row (`b` at least as long as `a`), in [`CHAINS`] f32
/// chains (at most a few thousand values each, so a chain adds up at most a few
/// hundred), then in f64. The chains take fixed-size blocks, so the loop has no
/// bounds checks and vectorizes: with indices into the rows it stayed scalar,
/// and batchnorm's backward reductions took 4.6x its input-gradient pass
/// (generated ResNet-8 training, AMD EPYC Zen 5).
#[inline(always)]
fn row_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let b = &b[..a.len()];
    let mut acc = [0.0f32; CHAINS];
    let (ac, bc) = (a.chunks_exact(CHAINS), b.chunks_exact(CHAINS));
    let tail: f64 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(&a, &b)| f(a, b) as f64)
        .sum();
    for (a, b) in ac.zip(bc) {
        for ((acc, &a), &b) in acc.iter_mut().zip(a).zip(b) {
            *acc += f(a, b);
        }
    }
    acc.iter().map(|&a| a as f64).sum::<f64>() + tail
}

/// `y = act(x·scale + shift)`, the common activations in loops of their own so
/// that they vectorize.
#[inline(always)]
fn affine(x: &[f32], y: &mut [f32], scale: f32, shift: f32, act: Activation) {
    let pairs = y.iter_mut().zip(x);
    match act {
        Activation::Identity => pairs.for_each(|(y, &x)| *y = x * scale + shift),
        Activation::Relu => pairs.for_each(|(y, &x)| *y = (x * scale + shift).max(0.0)),
        // Every other activation through its one definition.
        _ => pairs.for_each(|(y, &x)| *y = act.apply(x * scale + shift)),
    }
}

dispatched! {
    /// Per channel, the mean and the sum of squared deviations from it over the
    /// `n` samples of `x` (two passes: no cancellation; row sums in f32 chains,
    /// totals in f64), written as `out[ch] = mean`, `out[c + ch] = m2`. With
    /// `done > 0`, `out` already holds those of the `done` samples before `x` (an
    /// earlier chunk of the same worker) and the two are merged (Chan et al., as
    /// the driver merges workers).
    pub fn bn_partial_stats(x: &[f32], done: usize, n: usize, c: usize, area: usize, out: &mut [f64]) {
        let count = (n * area) as f64;
        let before = (done * area) as f64;
        for ch in 0..c {
            let mut sum = 0.0f64;
            for s in 0..n {
                let row = &x[(s * c + ch) * area..][..area];
                sum += row_sum(row, row, |v, _| v);
            }
            let mean = if count > 0.0 { sum / count } else { 0.0 };
            let m = mean as f32;
            // The f32 mean's own error, removed exactly: Σ(x - m)² - count·(mean - m)².
            let shift = mean - m as f64;
            let mut m2 = 0.0f64;
            for s in 0..n {
                let row = &x[(s * c + ch) * area..][..area];
                m2 += row_sum(row, row, |v, _| {
                    let d = v - m;
                    d * d
                });
            }
            let m2 = (m2 - count * shift * shift).max(0.0);
            if done == 0 {
                (out[ch], out[c + ch]) = (mean, m2);
            } else if count > 0.0 {
                (out[ch], out[c + ch]) = merge_moments(before, out[ch], out[c + ch], count, mean, m2);
            }
        }
    }
}

/// Chan et al.'s merge of two groups' counts, means and sums of squared
/// deviations into the whole's mean and sum of squared deviations (`na + nb >
/// 0`): chunks of one worker here, workers in the driver's combine.
pub fn merge_moments(na: f64, mean_a: f64, m2_a: f64, nb: f64, mean_b: f64, m2_b: f64) -> (f64, f64) {
    let (delta, n) = (mean_b - mean_a, na + nb);
    (mean_a + delta * nb / n, m2_a + (m2_b + delta * delta * na * nb / n))
}

dispatched! {
    /// `y = act(γ·(x - mean)·invstd + β)` per channel, with `stats = [mean; c][invstd; c]`
    /// (training: the batch's; inference: from the running statistics, see
    /// [`bn_inference_stats`]).
    pub fn bn_forward(
        x: &[f32],
        y: &mut [f32],
        n: usize,
        c: usize,
        area: usize,
        stats: &[f32],
        gamma: &[f32],
        beta: &[f32],
        act: Activation,
    ) {
        let (mean, invstd) = stats.split_at(c);
        for s in 0..n {
            for ch in 0..c {
                let scale = gamma[ch] * invstd[ch];
                let shift = beta[ch] - mean[ch] * scale;
                let base = (s * c + ch) * area;
                affine(&x[base..base + area], &mut y[base..base + area], scale, shift, act);
            }
        }
    }
}

/// The inference statistics `[running_mean; c][1/sqrt(running_var + eps); c]`.
#[inline(always)]
pub fn bn_inference_stats(running: &[f32], c: usize, eps: f32, out: &mut [f32]) {
    let (mean, var) = running.split_at(c);
    out[..c].copy_from_slice(&mean[..c]);
    for (o, &v) in out[c..2 * c].iter_mut().zip(var) {
        *o = 1.0 / (v + eps).sqrt();
    }
}

dispatched! {
    /// First half of the backward pass over `n` samples: turns `dy` (the gradient of
    /// the fused activation's output) into the gradient before the activation, in
    /// place; adds this worker's Σdy to `dbeta` and Σdy·x̂ to `dgamma`, and writes
    /// both per channel as f64 to `out = [Σdy; c][Σdy·x̂; c]` for the combine
    /// (adds to them with `done > 0`: a later chunk of the same worker's samples).
    pub fn bn_backward_partial(
        x: &[f32],
        y: &[f32],
        dy: &mut [f32],
        n: usize,
        c: usize,
        area: usize,
        stats: &[f32],
        act: Activation,
        dgamma: &mut [f32],
        dbeta: &mut [f32],
        done: usize,
        out: &mut [f64],
    ) {
        let (mean, invstd) = stats.split_at(c);
        match act {
            Activation::Identity => {}
            // relu' from the output: 1 where it is positive.
            Activation::Relu => {
                for (d, &y) in dy[..n * c * area].iter_mut().zip(&y[..n * c * area]) {
                    *d = if y > 0.0 { *d } else { 0.0 };
                }
            }
            // Every other activation through its one definition.
        _ => act.backward(&y[..n * c * area], &mut dy[..n * c * area]),
        }
        for ch in 0..c {
            let (m, k) = (mean[ch], invstd[ch]);
            let (mut sum, mut dot) = (0.0f64, 0.0f64);
            for s in 0..n {
                let base = (s * c + ch) * area;
                let (g, x) = (&dy[base..base + area], &x[base..base + area]);
                sum += row_sum(g, g, |g, _| g);
                dot += row_sum(g, x, |g, x| g * ((x - m) * k));
            }
            dbeta[ch] += sum as f32;
            dgamma[ch] += dot as f32;
            if done == 0 {
                out[ch] = sum;
                out[c + ch] = dot;
            } else {
                out[ch] += sum;
                out[c + ch] += dot;
            }
        }
    }
}

dispatched! {
    /// Second half: `dx = γ·invstd·(dy - Σdy/m - x̂·Σdy·x̂/m)`, with the sums `sums =
    /// [Σdy; c][Σdy·x̂; c]` over the whole batch of `count` values per channel.
    pub fn bn_backward_input(
        x: &[f32],
        dy: &[f32],
        dx: &mut [f32],
        n: usize,
        c: usize,
        area: usize,
        stats: &[f32],
        sums: &[f32],
        gamma: &[f32],
        count: usize,
    ) {
        let (mean, invstd) = stats.split_at(c);
        let (sum, dot) = sums.split_at(c);
        let inv_m = 1.0 / count as f32;
        for s in 0..n {
            for ch in 0..c {
                let k = gamma[ch] * invstd[ch];
                let (a, b) = (sum[ch] * inv_m, dot[ch] * inv_m);
                let base = (s * c + ch) * area;
                let rows = dx[base..base + area].iter_mut().zip(&dy[base..base + area]);
                for ((dx, &g), &x) in rows.zip(&x[base..base + area]) {
                    let xhat = (x - mean[ch]) * invstd[ch];
                    *dx = k * (g - a - xhat * b);
                }
            }
        }
    }
}

dispatched! {
    /// `y = (x - mean) / std` per channel (`input ... normalize`).
    pub fn normalize_forward(x: &[f32], y: &mut [f32], n: usize, mean: &[f32], std: &[f32], area: usize) {
        let c = mean.len();
        for s in 0..n {
            for ch in 0..c {
                let inv = 1.0 / std[ch];
                let base = (s * c + ch) * area;
                affine(&x[base..base + area], &mut y[base..base + area], inv, -mean[ch] * inv, Activation::Identity);
            }
        }
    }
}

dispatched! {
    /// `dx = dy / std` per channel.
    pub fn normalize_backward(dy: &[f32], dx: &mut [f32], n: usize, std: &[f32], area: usize) {
        let c = std.len();
        for s in 0..n {
            for (ch, sd) in std.iter().enumerate() {
                let inv = 1.0 / sd;
                let base = (s * c + ch) * area;
                for (d, &g) in dx[base..base + area].iter_mut().zip(&dy[base..base + area]) {
                    *d = g * inv;
                }
            }
        }
    }
}

dispatched! {
    /// The residual join: `y = act(a + b)`.
    pub fn add_forward(a: &[f32], b: &[f32], y: &mut [f32], act: Activation) {
        let n = y.len();
        let (a, b) = (&a[..n], &b[..n]);
        match act {
            Activation::Identity => y.iter_mut().enumerate().for_each(|(i, y)| *y = a[i] + b[i]),
            Activation::Relu => y.iter_mut().enumerate().for_each(|(i, y)| *y = (a[i] + b[i]).max(0.0)),
            // Every other activation through its one definition.
        _ => y.iter_mut().enumerate().for_each(|(i, y)| *y = act.apply(a[i] + b[i])),
        }
    }
}

dispatched! {
    /// `d += s`: a gradient arriving at a tensor that more than one layer reads.
    pub fn accumulate(d: &mut [f32], s: &[f32]) {
        for (d, &s) in d.iter_mut().zip(s) {
            *d += s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batch statistics of two halves combined (as the driver does) equal
    /// those of the whole.
    #[test]
    fn partial_statistics_of_halves_combine_to_the_whole() {
        let (c, area) = (3, 4);
        let x: Vec<f32> = (0..5 * c * area).map(|i| ((i * 37 % 11) as f32) * 0.3 - 1.0).collect();
        let mut whole = vec![0.0; 2 * c];
        bn_partial_stats(&x, 0, 5, c, area, &mut whole);
        let mut a = vec![0.0; 2 * c];
        let mut b = vec![0.0; 2 * c];
        bn_partial_stats(&x[..2 * c * area], 0, 2, c, area, &mut a);
        bn_partial_stats(&x[2 * c * area..], 0, 3, c, area, &mut b);
        for ch in 0..c {
            let (na, nb) = ((2 * area) as f64, (3 * area) as f64);
            let delta = b[ch] - a[ch];
            let mean = a[ch] + delta * nb / (na + nb);
            let m2 = a[c + ch] + b[c + ch] + delta * delta * na * nb / (na + nb);
            // Row sums run in f32 chains: agreement to f32 rounding.
            assert!((mean - whole[ch]).abs() < 1e-6, "{mean} vs {}", whole[ch]);
            assert!(
                (m2 - whole[c + ch]).abs() < 1e-6 * whole[c + ch],
                "{m2} vs {}",
                whole[c + ch]
            );
        }
    }

    /// A worker's samples taken in chunks (`done > 0` merges into what the
    /// earlier chunks left) give the statistics and backward sums of the whole.
    #[test]
    fn chunks_of_a_worker_merge_to_its_whole() {
        let (n, c, area) = (7, 3, 5);
        let x: Vec<f32> = (0..n * c * area).map(|i| ((i * 37 % 23) as f32) * 0.21 + 3.0).collect();
        let y: Vec<f32> = x.iter().map(|v| v - 4.5).collect();
        let g: Vec<f32> = (0..n * c * area).map(|i| ((i * 11 % 13) as f32) * 0.1 - 0.6).collect();
        let stats: Vec<f32> = [4.1f32, 4.4, 4.2, 0.8, 0.9, 1.1].to_vec();
        let mut whole = vec![0.0; 2 * c];
        bn_partial_stats(&x, 0, n, c, area, &mut whole);
        let (mut dg, mut db, mut sums) = (vec![0.0; c], vec![0.0; c], vec![0.0; 2 * c]);
        let mut dy = g.clone();
        bn_backward_partial(
            &x,
            &y,
            &mut dy,
            n,
            c,
            area,
            &stats,
            Activation::Relu,
            &mut dg,
            &mut db,
            0,
            &mut sums,
        );
        let mut part = vec![9.0; 2 * c];
        let (mut dg2, mut db2, mut sums2) = (vec![0.0; c], vec![0.0; c], vec![7.0; 2 * c]);
        let mut dy2 = g.clone();
        // Chunks of 3, 0 (an empty one changes nothing), 1 and 3 samples.
        for (at, m) in [(0, 3), (3, 0), (3, 1), (4, 3)] {
            let r = at * c * area..(at + m) * c * area;
            bn_partial_stats(&x[r.clone()], at, m, c, area, &mut part);
            let (xs, ys) = (&x[r.clone()], &y[r.clone()]);
            bn_backward_partial(
                xs,
                ys,
                &mut dy2[r],
                m,
                c,
                area,
                &stats,
                Activation::Relu,
                &mut dg2,
                &mut db2,
                at,
                &mut sums2,
            );
        }
        for i in 0..2 * c {
            let tol = 1e-6 * whole[i].abs().max(1.0);
            assert!(
                (part[i] - whole[i]).abs() < tol,
                "statistic {i}: {} vs {}",
                part[i],
                whole[i]
            );
            assert!(
                (sums2[i] - sums[i]).abs() < 1e-4,
                "sum {i}: {} vs {}",
                sums2[i],
                sums[i]
            );
        }
        assert_eq!(dy, dy2);
        for ch in 0..c {
            assert!((dg[ch] - dg2[ch]).abs() < 1e-4 && (db[ch] - db2[ch]).abs() < 1e-4);
        }
    }

    /// The input gradient against central differences of the training-mode
    /// forward pass (f32, so a loose tolerance).
    #[test]
    fn batchnorm_input_gradient_matches_finite_differences() {
        let (n, c, area) = (3, 2, 3);
        let x: Vec<f32> = (0..n * c * area).map(|i| ((i * 13 % 7) as f32) * 0.5 - 1.2).collect();
        let gamma = [1.3f32, 0.7];
        let beta = [0.1f32, -0.2];
        let w: Vec<f32> = (0..n * c * area).map(|i| ((i * 5 % 9) as f32) * 0.2 - 0.8).collect();
        let loss = |x: &[f32]| -> f64 {
            let mut part = vec![0.0; 2 * c];
            bn_partial_stats(x, 0, n, c, area, &mut part);
            let mut stats = vec![0.0f32; 2 * c];
            for ch in 0..c {
                stats[ch] = part[ch] as f32;
                stats[c + ch] = 1.0 / ((part[c + ch] / (n * area) as f64) as f32 + 1e-5).sqrt();
            }
            let mut y = vec![0.0; x.len()];
            bn_forward(x, &mut y, n, c, area, &stats, &gamma, &beta, Activation::Identity);
            y.iter().zip(&w).map(|(&y, &w)| (y * w) as f64).sum()
        };
        let mut part = vec![0.0; 2 * c];
        bn_partial_stats(&x, 0, n, c, area, &mut part);
        let mut stats = vec![0.0f32; 2 * c];
        for ch in 0..c {
            stats[ch] = part[ch] as f32;
            stats[c + ch] = 1.0 / ((part[c + ch] / (n * area) as f64) as f32 + 1e-5).sqrt();
        }
        let mut y = vec![0.0; x.len()];
        bn_forward(&x, &mut y, n, c, area, &stats, &gamma, &beta, Activation::Identity);
        let mut dy = w.clone();
        let (mut dg, mut db) = (vec![0.0; c], vec![0.0; c]);
        let mut sums64 = vec![0.0; 2 * c];
        bn_backward_partial(
            &x,
            &y,
            &mut dy,
            n,
            c,
            area,
            &stats,
            Activation::Identity,
            &mut dg,
            &mut db,
            0,
            &mut sums64,
        );
        let sums: Vec<f32> = sums64.iter().map(|&v| v as f32).collect();
        let mut dx = vec![0.0; x.len()];
        bn_backward_input(&x, &dy, &mut dx, n, c, area, &stats, &sums, &gamma, n * area);
        for i in 0..x.len() {
            let h = 1e-2f32;
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (loss(&up) - loss(&down)) / (2.0 * h as f64);
            assert!((numeric - dx[i] as f64).abs() < 2e-2, "{i}: {numeric} vs {}", dx[i]);
        }
    }
}
