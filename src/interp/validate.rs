//! The checks on what a caller passes in, each an `Err` that names the problem.

use super::real::Real;
use crate::ir::{self, Loss, Op};
use crate::rt::{Error, Target};
use ndarray::{ArrayViewD, Dimension};

/// `[N, 1, 28, 28]`: a batch of samples of this shape.
pub fn batch_shape(sample: &[usize]) -> String {
    let dims: Vec<String> = std::iter::once("N".to_string())
        .chain(sample.iter().map(|d| d.to_string()))
        .collect();
    format!("[{}]", dims.join(", "))
}

/// `x` must be `[N, ...input shape]` with N >= 1, every value finite.
pub fn input<T: Real>(model: &ir::Model, x: ArrayViewD<T>) -> Result<(), Error> {
    let sample = model.input.dims();
    let shape = x.shape();
    if shape.len() != sample.len() + 1 || shape[1..] != sample[..] {
        return Err(Error::Shape {
            what: "input".to_string(),
            expected: batch_shape(&sample),
            given: shape.to_vec(),
        });
    }
    if shape[0] == 0 {
        return Err(Error::Shape {
            what: "input".to_string(),
            expected: format!("{} with N >= 1 (the batch is empty)", batch_shape(&sample)),
            given: shape.to_vec(),
        });
    }
    finite("input", x)
}

/// Every value of `x` is finite.
pub fn finite<T: Real>(what: &str, x: ArrayViewD<T>) -> Result<(), Error> {
    match x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        Some((index, v)) => Err(Error::NonFinite {
            what: what.to_string(),
            value: v.to_f64() as f32,
            index: index.slice().to_vec(),
        }),
        None => Ok(()),
    }
}

/// The error for a target of the wrong kind for `loss`.
pub fn wrong_target_kind(loss: Loss) -> Error {
    Error::Target(match loss {
        Loss::CrossEntropy => {
            "cross_entropy takes class labels (Target::Labels, one class index per sample, or Target::LabelMaps for an image output), not Target::Values"
                .to_string()
        }
        Loss::Mse => "mse takes Target::Values with the output's shape, not Target::Labels".to_string(),
        Loss::BinaryCrossEntropy => {
            "binary_cross_entropy takes Target::Values in [0, 1] with the output's shape, not Target::Labels"
                .to_string()
        }
    })
}

/// The target suits the loss and a batch of `n` samples.
pub fn target(model: &ir::Model, loss: Loss, n: usize, target: &Target<'_>) -> Result<(), Error> {
    let output = model.output().dims();
    match (loss, target) {
        (Loss::CrossEntropy, Target::Labels(labels)) => {
            if let ir::Shape::Image { h, w, .. } = model.output() {
                return Err(Error::Target(format!(
                    "the model's output is an image ({}): cross_entropy on it takes Target::LabelMaps, [N, {h}, {w}] class indices",
                    model.output()
                )));
            }
            if labels.len() != n {
                return Err(Error::Shape {
                    what: "labels".to_string(),
                    expected: format!("[{n}] (one label per sample of the input)"),
                    given: vec![labels.len()],
                });
            }
            labels_in_range(model, labels.iter().copied(), |i| i)
        }
        (Loss::CrossEntropy, Target::LabelMaps(maps)) => {
            let ir::Shape::Image { h, w, .. } = model.output() else {
                return Err(Error::Target(format!(
                    "the model's output is a vector ({}): cross_entropy on it takes Target::Labels, one class per sample",
                    model.output()
                )));
            };
            if maps.shape() != [n, h, w] {
                return Err(Error::Shape {
                    what: "label maps".to_string(),
                    expected: format!("[{n}, {h}, {w}] (a class index per output position of each sample)"),
                    given: maps.shape().to_vec(),
                });
            }
            labels_in_range(model, maps.iter().copied(), |i| i / (h * w).max(1))
        }
        (Loss::Mse | Loss::BinaryCrossEntropy, Target::Values(t)) => {
            let mut expected = vec![n];
            expected.extend_from_slice(&output);
            if t.shape() != expected.as_slice() {
                return Err(Error::Shape {
                    what: "target".to_string(),
                    expected: format!(
                        "{expected:?} (the batch size, then the output shape {})",
                        model.output()
                    ),
                    given: t.shape().to_vec(),
                });
            }
            finite("target", t.view())?;
            if loss == Loss::BinaryCrossEntropy {
                if let Some((index, v)) = t.indexed_iter().find(|(_, v)| !(0.0..=1.0).contains(*v)) {
                    return Err(Error::Target(format!(
                        "binary_cross_entropy needs targets in [0, 1]; target{:?} is {v}",
                        index.slice()
                    )));
                }
            }
            Ok(())
        }
        _ => Err(wrong_target_kind(loss)),
    }
}

/// Every label is below the number of classes (the output's channels), or the
/// `ignore` label; `sample` maps a label's index to its sample.
fn labels_in_range(
    model: &ir::Model,
    labels: impl Iterator<Item = usize>,
    sample: impl Fn(usize) -> usize,
) -> Result<(), Error> {
    let classes = match model.output() {
        ir::Shape::Image { c, .. } => c,
        ir::Shape::Vector(n) => n,
    };
    let ignore = model.train.as_ref().and_then(|t| t.ignore);
    match labels
        .enumerate()
        .find(|&(_, label)| label >= classes && Some(label) != ignore)
    {
        Some((i, label)) => Err(Error::Label {
            sample: sample(i),
            label,
            classes,
        }),
        None => Ok(()),
    }
}

/// The fewest samples a training step takes: 2 when a batchnorm layer gets one
/// value per channel from a sample (after a dense layer, or on 1x1 maps), else 1.
pub fn min_train_batch(model: &ir::Model) -> usize {
    let single = model
        .all_layers()
        .into_iter()
        .any(|layer| matches!(layer.op, Op::BatchNorm(_)) && layer.input.len() / layer.input.channels().max(1) < 2);
    if single {
        2
    } else {
        1
    }
}

/// A training-mode call on `x` (shape `[N, ...]`) suits a model with batchnorm: at
/// most the model's `batch` samples (the statistics are over one whole minibatch),
/// and at least 2 values per channel at every batchnorm (a variance needs them).
pub fn batchnorm_training(model: &ir::Model, shape: &[usize]) -> Result<(), Error> {
    if !model.has_batchnorm() {
        return Ok(());
    }
    let n = shape.first().copied().unwrap_or(0);
    let sample = model.input.dims();
    if let Some(batch) = model.train.as_ref().map(|t| t.batch) {
        if n > batch {
            return Err(Error::Shape {
                what: "input".to_string(),
                expected: format!(
                    "{} with N <= {batch}: model {} has batchnorm, which normalizes over one whole minibatch, so a training call takes at most its `batch {batch}` samples",
                    batch_shape(&sample),
                    model.name
                ),
                given: shape.to_vec(),
            });
        }
    }
    for layer in model.all_layers() {
        if let Op::BatchNorm(_) = layer.op {
            let positions = layer.input.len() / layer.input.channels().max(1);
            let per_channel = n * positions;
            if per_channel < 2 {
                return Err(Error::Shape {
                    what: "input".to_string(),
                    expected: format!(
                        "{} with N >= 2: {} needs at least 2 values per channel to compute a batch variance in training, and {n} sample(s) give it {per_channel}",
                        batch_shape(&sample),
                        layer.name
                    ),
                    given: shape.to_vec(),
                });
            }
        }
    }
    Ok(())
}
