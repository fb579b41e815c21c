//! Checking and copying what callers hand a model: batch shapes, finite values,
//! labels and target values. Nothing here allocates on success.

use super::{Error, Target};
use ndarray::{ArrayViewD, Axis, Dimension, Slice};

/// `[N, a, b]` or `[a, b]`, for messages.
pub fn shape_text(batch: Option<&str>, sample: &[usize]) -> String {
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

/// The labels of a cross-entropy model, checked against the batch and classes,
/// one per sample (`shape.area` 1) or per position of each sample's label map
/// (v3: `output` is `[C, H, W]`), in that order. Labels equal to `shape.ignore`
/// need not be classes.
pub fn labels<'a>(
    target: &Target<'a>,
    n: usize,
    output: &[usize],
    shape: crate::compute::loss::Classes,
) -> Result<ndarray::CowArray<'a, usize, ndarray::Ix1>, Error> {
    let classes = shape.classes;
    let out_of_range = |labels: &mut dyn Iterator<Item = usize>| {
        labels
            .enumerate()
            .find(|&(_, v)| v >= classes && Some(v) != shape.ignore)
            .map(|(at, label)| Error::Label {
                sample: at / shape.area.max(1),
                label,
                classes,
            })
    };
    if let (&[_, h, w], Target::LabelMaps(maps)) = (output, target) {
        if maps.shape() != [n, h, w] {
            return Err(Error::Shape {
                what: "label maps".into(),
                expected: format!("[{n}, {h}, {w}] (a class index per output position of each sample)"),
                given: maps.shape().to_vec(),
            });
        }
        if let Some(e) = out_of_range(&mut maps.iter().copied()) {
            return Err(e);
        }
        return Ok(match maps.to_slice() {
            Some(flat) => ndarray::CowArray::from(ndarray::ArrayView1::from(flat)),
            None => ndarray::CowArray::from(ndarray::Array1::from_iter(maps.iter().copied())),
        });
    }
    match target {
        Target::Labels(_) if output.len() == 3 => Err(Error::Target(format!(
            "this model's output is an image ({}): cross_entropy on it takes Target::LabelMaps, [N, {}, {}] class indices",
            output.iter().map(usize::to_string).collect::<Vec<_>>().join("x"),
            output[1],
            output[2]
        ))),
        Target::Labels(l) if l.len() == n => {
            if let Some(e) = out_of_range(&mut l.iter().copied()) {
                return Err(e);
            }
            Ok(ndarray::CowArray::from(*l))
        }
        Target::Labels(l) => Err(Error::Target(format!(
            "got {} labels for a batch of {n} samples; give one class index per sample",
            l.len()
        ))),
        Target::Values(_) => Err(Error::Target(
            "this model's loss is cross_entropy: give Target::Labels (one class index per sample), not Target::Values"
                .into(),
        )),
        Target::LabelMaps(_) => Err(Error::Target(
            "this model's output is a vector: give Target::Labels (one class index per sample), not Target::LabelMaps"
                .into(),
        )),
    }
}

/// The targets of an mse or binary cross-entropy model: `[N, ...output]`, finite,
/// and in [0, 1] for binary cross-entropy.
pub fn values<'a>(target: &Target<'a>, n: usize, output: &[usize], bce: bool) -> Result<ArrayViewD<'a, f32>, Error> {
    let loss = if bce { "binary_cross_entropy" } else { "mse" };
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
            check_finite("target", v)?;
            if bce {
                if let Some(v) = v.iter().find(|v| !(0.0..=1.0).contains(*v)) {
                    return Err(Error::Target(format!(
                        "binary_cross_entropy targets must lie in [0, 1]; found {v}"
                    )));
                }
            }
            Ok(v.clone())
        }
        Target::Labels(_) | Target::LabelMaps(_) => Err(Error::Target(format!(
            "this model's loss is {loss}: give Target::Values with the output's shape [N, ...], not class labels"
        ))),
    }
}
