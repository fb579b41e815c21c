//! Evaluation and the checks every data set gets before it is used: the loss and
//! accuracy of a model on a data set ([`evaluate`]), a data set checked against
//! the model and its loss ([`check_data`]), and the parameters saved and put back
//! around an epoch that diverges.

use crate::compute::loss;
use crate::ir::Loss;
use crate::rt::data::{Dataset, Targets};
use crate::rt::inputs::{batch_size, check_finite};
use crate::rt::report::Evaluation;
use crate::rt::{Error, Model, Target};
use ndarray::{ArrayD, Dimension};

/// Every parameter, or the name of the first one holding NaN or infinity.
pub(crate) fn snapshot<M: Model + ?Sized>(model: &M) -> Result<Vec<(String, ArrayD<f32>)>, String> {
    let mut params = Vec::new();
    for name in model.param_names() {
        let Some(value) = model.param(&name) else { continue };
        if !value.iter().all(|v| v.is_finite()) {
            return Err(name);
        }
        params.push((name, value));
    }
    Ok(params)
}

/// Puts back what [`snapshot`] saved.
pub(crate) fn restore<M: Model + ?Sized>(model: &mut M, saved: &[(String, ArrayD<f32>)]) -> Result<(), Error> {
    for (name, value) in saved {
        model.set_param(name, value.view())?;
    }
    Ok(())
}

/// Checks a whole data set against the model and its loss, naming a bad sample by
/// its index in `data`.
pub(crate) fn check_data<M: Model + ?Sized>(model: &M, data: &Dataset, loss: Loss, what: &str) -> Result<(), Error> {
    // The fields are public, so the counts may disagree even though `Dataset::new` checks them.
    let n = data.inputs.shape().first().copied().unwrap_or(0);
    let targets = data.targets.len();
    if n != targets {
        return Err(Error::Target(format!(
            "the {what} has {n} inputs but {targets} targets: each sample needs one target"
        )));
    }
    if n == 0 {
        return Err(Error::Target(format!("the {what} is empty")));
    }
    batch_size(
        &format!("the {what}'s input array"),
        data.inputs.shape(),
        model.input_shape(),
    )?;
    check_finite(&format!("the {what}'s input array"), &data.inputs.view())?;
    let word = loss_word(loss);
    match (&data.targets, loss) {
        (Targets::LabelMaps(maps), Loss::CrossEntropy) => {
            let &[_, h, w] = model.output_shape() else {
                return Err(Error::Target(format!(
                    "the {what} has label maps, but the model's output is a vector of {}: label maps are for \
                     a per-position softmax on a CxHxW output (segmentation)",
                    model.output_shape().iter().product::<usize>()
                )));
            };
            if maps.shape()[1..] != [h, w] {
                return Err(Error::Shape {
                    what: format!("the {what}'s label maps"),
                    expected: format!("[{n}, {h}, {w}] (the model's output height and width)"),
                    given: maps.shape().to_vec(),
                });
            }
        }
        (Targets::LabelMaps(_), _) => {
            return Err(Error::Target(format!(
                "the model's loss is {word}: the {what} needs Targets::Values with the output's shape [N, ...], \
                 not label maps"
            )))
        }
        (Targets::Labels(_), Loss::CrossEntropy) if model.output_shape().len() == 3 => {
            let s = model.output_shape();
            return Err(Error::Target(format!(
                "the model's output is an image ({}x{}x{}): a per-position softmax takes label maps \
                 (Targets::LabelMaps, [N, {}, {}]), not a class per sample",
                s[0], s[1], s[2], s[1], s[2]
            )));
        }
        (Targets::Labels(labels), Loss::CrossEntropy) => {
            let classes: usize = model.output_shape().iter().product();
            if let Some((sample, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
                return Err(Error::Label { sample, label, classes });
            }
        }
        (Targets::Labels(_), _) => {
            return Err(Error::Target(format!(
                "the model's loss is {word}: the {what} needs Targets::Values with the output's shape [N, ...], \
                 not Targets::Labels"
            )))
        }
        (Targets::Values(_), Loss::CrossEntropy) => {
            return Err(Error::Target(format!(
                "the model's loss is {word}: the {what} needs Targets::Labels (one class index per sample), \
                 not Targets::Values"
            )))
        }
        (Targets::Values(values), _) => {
            let given = values.shape();
            if given[1..] != *model.output_shape() {
                let mut expected: Vec<String> = vec![n.to_string()];
                expected.extend(model.output_shape().iter().map(usize::to_string));
                return Err(Error::Shape {
                    what: format!("the {what}'s target array"),
                    expected: format!("[{}]", expected.join(", ")),
                    given: given.to_vec(),
                });
            }
            check_finite(&format!("the {what}'s target array"), &values.view())?;
            if loss == Loss::BinaryCrossEntropy {
                if let Some((index, v)) = values.indexed_iter().find(|(_, v)| !(0.0..=1.0).contains(*v)) {
                    return Err(Error::Target(format!(
                        "the {what}'s targets must lie in [0, 1] for binary_cross_entropy; \
                         found {v} at index {:?}",
                        index.slice()
                    )));
                }
            }
        }
    }
    Ok(())
}

fn loss_word(loss: Loss) -> &'static str {
    match loss {
        Loss::CrossEntropy => "cross_entropy",
        Loss::Mse => "mse",
        Loss::BinaryCrossEntropy => "binary_cross_entropy",
    }
}

/// The loss and accuracy of `model` on `data`, in inference mode.
///
/// The data set is checked first as `fit` checks it: sample counts, shapes, finite
/// values, labels below the number of classes, the kind of target for `loss`.
pub fn evaluate<M: Model + ?Sized>(
    model: &mut M,
    data: &Dataset,
    loss: Loss,
    batch: usize,
) -> Result<Evaluation, Error> {
    check_data(model, data, loss, "evaluation set")?;
    evaluate_checked(model, data, loss, batch)
}

/// [`evaluate`] on a data set that [`check_data`] accepted.
pub(crate) fn evaluate_checked<M: Model + ?Sized>(
    model: &mut M,
    data: &Dataset,
    kind: Loss,
    batch: usize,
) -> Result<Evaluation, Error> {
    let batch = batch.max(1);
    if let Targets::LabelMaps(maps) = &data.targets {
        return segmentation(model, data, maps, batch);
    }
    let (mut total, mut correct, mut count) = (0.0f64, 0usize, 0usize);
    let mut lo = 0;
    while lo < data.len() {
        let hi = (lo + batch).min(data.len());
        let (x, t) = data.batch(lo, hi);
        let y = model.predict(x)?;
        // A `Model` written by hand might return another shape; refuse it rather than misread it.
        if y.shape().first() != Some(&(hi - lo)) || y.shape()[1..] != *model.output_shape() {
            let mut expected = vec![(hi - lo).to_string()];
            expected.extend(model.output_shape().iter().map(usize::to_string));
            return Err(Error::Shape {
                what: "the model's output".into(),
                expected: format!("[{}]", expected.join(", ")),
                given: y.shape().to_vec(),
            });
        }
        let per_sample = (y.len() / (hi - lo)).max(1);
        let y = y.as_standard_layout();
        let values = y.as_slice().unwrap_or(&[]);
        match (&t, kind) {
            (Target::Labels(labels), _) => {
                for (i, (&label, row)) in labels.iter().zip(values.chunks_exact(per_sample)).enumerate() {
                    let p = row.get(label).copied().ok_or(Error::Label {
                        sample: lo + i,
                        label,
                        classes: per_sample,
                    })?;
                    total += loss::nll(p);
                    correct += usize::from(loss::predicted_class(row) == label);
                }
                count += hi - lo;
            }
            // Label maps returned through `segmentation` above.
            (Target::LabelMaps(_), _) => {
                return Err(Error::Target(
                    "label maps are evaluated per position (segmentation), not per sample".into(),
                ))
            }
            (Target::Values(target), _) => {
                for (&p, &t) in values.iter().zip(target.iter()) {
                    total += match kind {
                        Loss::BinaryCrossEntropy => loss::bce_of_probability(p, t),
                        _ => (p as f64 - t as f64).powi(2),
                    };
                    if kind == Loss::BinaryCrossEntropy {
                        correct += usize::from(loss::binary_correct(p, t));
                    }
                }
                count += values.len();
            }
        }
        lo = hi;
    }
    let accuracy = match kind {
        Loss::CrossEntropy | Loss::BinaryCrossEntropy => Some(correct as f64 / count as f64),
        Loss::Mse => None,
    };
    Ok(Evaluation {
        loss: total / count as f64,
        accuracy,
        mean_iou: None,
    })
}

/// v3: the cross-entropy, pixel accuracy and mean IoU of a segmentation model on
/// label maps. Positions whose label is not a class (the `ignore` label, 255 for
/// void) count in none of them; the IoU is averaged over the classes present in
/// the labels or the predictions.
fn segmentation<M: Model + ?Sized>(
    model: &mut M,
    data: &Dataset,
    maps: &ndarray::Array3<usize>,
    batch: usize,
) -> Result<Evaluation, Error> {
    let classes = model.output_shape()[0];
    let area = maps.shape()[1] * maps.shape()[2];
    let shape = loss::Classes {
        classes,
        area,
        ignore: None,
    };
    let mut inter = vec![0u64; classes];
    let mut union = vec![0u64; classes];
    let (mut total, mut correct, mut count) = (0.0f64, 0usize, 0usize);
    let mut lo = 0;
    while lo < data.len() {
        let hi = (lo + batch).min(data.len());
        let (x, _) = data.batch(lo, hi);
        let y = model.predict(x)?;
        let y = y.as_standard_layout();
        let p = y.as_slice().unwrap_or(&[]);
        if p.len() != (hi - lo) * classes * area {
            return Err(Error::Shape {
                what: "the model's output".into(),
                expected: format!("[{}, {classes}, ..] with {area} positions", hi - lo),
                given: y.shape().to_vec(),
            });
        }
        for i in 0..hi - lo {
            let labels = maps.index_axis(ndarray::Axis(0), lo + i);
            for (q, &label) in labels.iter().enumerate() {
                if label >= classes {
                    continue;
                }
                let at = i * area + q;
                let predicted = loss::predicted_class_at(p, shape, at);
                total += loss::nll(p[(i * classes + label) * area + q]);
                count += 1;
                if predicted == label {
                    correct += 1;
                    inter[label] += 1;
                    union[label] += 1;
                } else {
                    union[label] += 1;
                    union[predicted] += 1;
                }
            }
        }
        lo = hi;
    }
    if count == 0 {
        return Err(Error::Target(
            "every position of the label maps is ignored: nothing to evaluate".into(),
        ));
    }
    let present: Vec<f64> = inter
        .iter()
        .zip(&union)
        .filter(|(_, &u)| u > 0)
        .map(|(&i, &u)| i as f64 / u as f64)
        .collect();
    Ok(Evaluation {
        loss: total / count as f64,
        accuracy: Some(correct as f64 / count as f64),
        mean_iou: Some(present.iter().sum::<f64>() / present.len().max(1) as f64),
    })
}
