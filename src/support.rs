//! Run-time helpers shared by every generated model: checking and copying
//! inputs and targets (without allocating), the parameter table, weight files,
//! and the dropout random stream.

use crate::rt::{Error, Target};
use ndarray::{ArrayD, ArrayViewD, Axis, Dimension, IxDyn, Slice};

/// One parameter tensor inside a model's flat parameter buffer.
#[derive(Debug, Clone, Copy)]
pub struct ParamInfo {
    pub name: &'static str,
    pub offset: usize,
    pub shape: &'static [usize],
}

impl ParamInfo {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

fn shape_text(batch: Option<&str>, sample: &[usize]) -> String {
    let mut parts: Vec<String> = batch.map(str::to_string).into_iter().collect();
    parts.extend(sample.iter().map(usize::to_string));
    format!("[{}]", parts.join(", "))
}

/// Checks that `given` is `[N, ...sample]` with N >= 1 and returns N.
pub fn batch_size(what: &str, given: &[usize], sample: &[usize]) -> Result<usize, Error> {
    let ok = given.len() == sample.len() + 1 && given[1..] == *sample && given[0] > 0;
    if ok {
        Ok(given[0])
    } else {
        Err(Error::Shape {
            what: what.to_string(),
            expected: shape_text(Some("N"), sample) + " with N >= 1",
            given: given.to_vec(),
        })
    }
}

/// Refuses NaN and infinity anywhere in `x`, naming the first one's index.
pub fn check_finite(what: &str, x: &ArrayViewD<'_, f32>) -> Result<(), Error> {
    // The common case, a contiguous array that is all finite, is one vectorized pass.
    if let Some(values) = x.as_slice() {
        if values.iter().fold(true, |ok, v| ok & v.is_finite()) {
            return Ok(());
        }
    }
    match x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        None => Ok(()),
        Some((index, &value)) => Err(Error::NonFinite {
            what: what.to_string(),
            value,
            index: index.slice().to_vec(),
        }),
    }
}

/// Copies samples `lo..hi` of `x` into `dst`, contiguous.
pub fn copy_rows(x: &ArrayViewD<'_, f32>, lo: usize, hi: usize, dst: &mut [f32]) {
    let rows = x.slice_axis(Axis(0), Slice::from(lo..hi));
    match rows.as_slice() {
        Some(src) => dst[..src.len()].copy_from_slice(src),
        None => {
            for (d, s) in dst.iter_mut().zip(rows.iter()) {
                *d = *s;
            }
        }
    }
}

/// The labels of a cross-entropy model, checked against the batch and classes.
pub fn labels<'a>(target: &Target<'a>, n: usize, classes: usize) -> Result<ndarray::ArrayView1<'a, usize>, Error> {
    match target {
        Target::Labels(l) if l.len() == n => {
            if let Some((sample, &label)) = l.iter().enumerate().find(|(_, &v)| v >= classes) {
                return Err(Error::Label { sample, label, classes });
            }
            Ok(*l)
        }
        Target::Labels(l) => Err(Error::Target(format!(
            "got {} labels for a batch of {n} samples; give one class index per sample",
            l.len()
        ))),
        Target::Values(_) => Err(Error::Target(
            "this model's loss is cross_entropy: give Target::Labels (one class index per sample), not Target::Values"
                .into(),
        )),
    }
}

/// The targets of an mse or binary cross-entropy model: `[N, ...output]`.
pub fn values<'a>(target: &Target<'a>, n: usize, output: &[usize], loss: &str) -> Result<ArrayViewD<'a, f32>, Error> {
    match target {
        Target::Values(v) => {
            let given = v.shape();
            if given.len() != output.len() + 1 || given[0] != n || given[1..] != *output {
                return Err(Error::Shape {
                    what: "target".into(),
                    expected: shape_text(Some(&n.to_string()), output),
                    given: given.to_vec(),
                });
            }
            Ok(v.clone())
        }
        Target::Labels(_) => Err(Error::Target(format!(
            "this model's loss is {loss}: give Target::Values with the output's shape [N, ...], not Target::Labels"
        ))),
    }
}

/// A parameter as an array in PyTorch layout.
pub fn get_param(table: &[ParamInfo], params: &[f32], name: &str) -> Option<ArrayD<f32>> {
    let p = table.iter().find(|p| p.name == name)?;
    ArrayD::from_shape_vec(IxDyn(p.shape), params.get(p.range())?.to_vec()).ok()
}

/// Writes a parameter given in PyTorch layout.
pub fn set_param(table: &[ParamInfo], params: &mut [f32], name: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error> {
    let p = table
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| Error::UnknownParam {
            name: name.to_string(),
            known: table.iter().map(|p| p.name.to_string()).collect(),
        })?;
    if value.shape() != p.shape {
        return Err(Error::Shape {
            what: format!("parameter `{name}`"),
            expected: shape_text(None, p.shape),
            given: value.shape().to_vec(),
        });
    }
    // Like the interpreter: a NaN weight would only show up later, as NaN outputs.
    check_finite(&format!("parameter `{name}`"), &value)?;
    let total = params.len();
    let slot = params.get_mut(p.range()).ok_or_else(|| {
        Error::Config(format!(
            "parameter `{name}` lies outside the model's {total} parameters"
        ))
    })?;
    for (d, s) in slot.iter_mut().zip(value.iter()) {
        *d = *s;
    }
    Ok(())
}

/// A small, fast random stream for dropout masks (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    #[inline(always)]
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Dropout in training: `y = x * mask`, mask 0 with probability `p`, else `1/(1-p)`.
#[inline(always)]
pub fn dropout_forward(p: f32, rng: &mut Rng, x: &[f32], y: &mut [f32], mask: &mut [f32]) {
    let keep = 1.0 / (1.0 - p);
    for ((y, &x), m) in y.iter_mut().zip(x).zip(mask.iter_mut()) {
        *m = if rng.next_f32() < p { 0.0 } else { keep };
        *y = x * *m;
    }
}

/// Runs `f(index, worker)` for every worker in parallel (recursive `rayon::join`,
/// which allocates nothing) and returns the sum of the results in worker order,
/// so the total does not depend on thread timing.
pub fn each_worker<W: Send>(workers: &mut [W], f: &(impl Fn(usize, &mut W) -> f64 + Sync)) -> f64 {
    fn go<W: Send>(base: usize, workers: &mut [W], f: &(impl Fn(usize, &mut W) -> f64 + Sync)) -> f64 {
        match workers {
            [] => 0.0,
            [w] => f(base, w),
            _ => {
                let mid = workers.len() / 2;
                let (left, right) = workers.split_at_mut(mid);
                let (a, b) = rayon::join(|| go(base, left, f), || go(base + mid, right, f));
                a + b
            }
        }
    }
    go(0, workers, f)
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
