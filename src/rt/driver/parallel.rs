//! How the driver spreads work over threads: the workers a batch takes, each
//! worker's samples, the size of an inference sub-chunk, and the parallel calls
//! over the workers (recursive `rayon::join`, which allocates nothing; results
//! summed in worker order, so they do not depend on thread timing).

/// Floats of activations an inference sub-chunk aims to stay within (1 MiB):
/// a chunk of a worker's samples runs layer after layer while its activations
/// stay in cache, instead of each layer streaming the whole batch through memory.
pub const INFERENCE_BUDGET: usize = 1 << 18;

/// The fewest samples an inference sub-chunk takes: each layer call repacks its
/// weights (and the Winograd path transforms them), which a few samples must
/// share.
pub const INFERENCE_MIN_CHUNK: usize = 8;

/// Samples per inference sub-chunk for a worker whose buffers hold
/// `sample_floats` floats per sample: as many as [`INFERENCE_BUDGET`] allows,
/// at least [`INFERENCE_MIN_CHUNK`]. Measured (Intel Xeon, AVX-512, medians of
/// 3, noisy machine): ResNet-8 inference at batch 64 on one thread 2,913 images/s
/// in chunks of 1, 4,091 in chunks of 8, 3,362 all 64 at once; conv64 forward
/// 165, 207 and 207 GFLOP/s.
pub const fn inference_chunk(sample_floats: usize) -> usize {
    let n = INFERENCE_BUDGET / if sample_floats == 0 { 1 } else { sample_floats };
    if n < INFERENCE_MIN_CHUNK {
        INFERENCE_MIN_CHUNK
    } else {
        n
    }
}

/// How many workers a model uses: one per rayon thread, at most `batch`.
pub fn worker_count(batch: usize) -> usize {
    rayon::current_num_threads().clamp(1, batch.max(1))
}

/// The samples of chunk `lo..hi` that worker `w` of `workers` takes.
#[inline]
pub fn worker_range(lo: usize, hi: usize, w: usize, workers: usize) -> (usize, usize) {
    let per = (hi - lo).div_ceil(workers.max(1));
    let start = (lo + w * per).min(hi);
    (start, (start + per).min(hi))
}

/// Runs `f(index, slot)` for every slot in parallel (recursive `rayon::join`,
/// which allocates nothing) and returns the sum of the results in slot order, so
/// the total does not depend on thread timing.
pub(super) fn each<W: Send>(slots: &mut [W], f: &(impl Fn(usize, &mut W) -> f64 + Sync)) -> f64 {
    fn go<W: Send>(base: usize, slots: &mut [W], f: &(impl Fn(usize, &mut W) -> f64 + Sync)) -> f64 {
        match slots {
            [] => 0.0,
            [w] => f(base, w),
            _ => {
                let mid = slots.len() / 2;
                let (left, right) = slots.split_at_mut(mid);
                let (a, b) = rayon::join(|| go(base, left, f), || go(base + mid, right, f));
                a + b
            }
        }
    }
    go(0, slots, f)
}

/// As [`each`], handing every slot its own rows of `out` as well: slot `w`'s rows
/// start at `first_row(w)` (increasing with `w`), `row` floats each. Safe
/// disjoint borrows, split along with the slots; allocates nothing.
pub(super) fn each_rows<W: Send>(
    slots: &mut [W],
    out: &mut [f32],
    row: usize,
    first_row: &(impl Fn(usize) -> usize + Sync),
    f: &(impl Fn(usize, &mut W, &mut [f32]) + Sync),
) {
    fn go<W: Send>(
        base: usize,
        slots: &mut [W],
        out: &mut [f32],
        row: usize,
        first_row: &(impl Fn(usize) -> usize + Sync),
        f: &(impl Fn(usize, &mut W, &mut [f32]) + Sync),
    ) {
        match slots {
            [] => {}
            [w] => f(base, w, out),
            _ => {
                let mid = slots.len() / 2;
                let (left, right) = slots.split_at_mut(mid);
                let (top, bottom) = out.split_at_mut((first_row(base + mid) - first_row(base)) * row);
                rayon::join(
                    || go(base, left, top, row, first_row, f),
                    || go(base + mid, right, bottom, row, first_row, f),
                );
            }
        }
    }
    go(0, slots, out, row, first_row, f)
}
