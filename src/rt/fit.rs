//! The training loop: epochs, shuffled minibatches, the validation split, the
//! learning-rate schedule, per-epoch reports and a progress bar.

use super::data::{shuffled, Dataset, Targets};
use super::inputs::{batch_size, check_finite};
use super::{Error, Model, Target, Train};
use crate::ir::Loss;
use ndarray::{ArrayD, Dimension};
use std::io::IsTerminal;
use std::time::Instant;

/// How to train: the model's train block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitConfig {
    pub loss: Loss,
    pub epochs: usize,
    pub batch: usize,
    /// The fraction of the training set held out for validation.
    pub validation: Option<f64>,
    pub seed: u64,
    /// Print a line per epoch (and a progress bar on a terminal).
    pub verbose: bool,
}

impl FitConfig {
    /// A generated model's train block (`Net::FIT`).
    pub const fn of(spec: &super::driver::Spec) -> FitConfig {
        match spec.train {
            Some(t) => FitConfig {
                loss: t.loss,
                epochs: t.epochs,
                batch: spec.batch,
                validation: t.validation,
                seed: t.seed,
                verbose: true,
            },
            None => panic!("FitConfig::of needs a model with a train block"),
        }
    }

    /// The same configuration without the per-epoch lines and progress bar.
    pub const fn quiet(self) -> FitConfig {
        FitConfig { verbose: false, ..self }
    }
}

/// The numbers of one epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// 0-based.
    pub epoch: usize,
    pub learning_rate: f32,
    /// The mean of the batch losses (before each update).
    pub train_loss: f64,
    /// The fraction of training samples classified right during the epoch.
    pub train_accuracy: Option<f64>,
    pub validation: Option<Evaluation>,
    pub seconds: f64,
}

/// Every epoch's report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FitReport {
    pub history: Vec<EpochReport>,
}

/// Loss and, for classifiers, accuracy on a data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: Option<f64>,
}

/// Trains `model` on `data` as `config` says.
///
/// The whole data set is checked before the first step, so a bad sample is named
/// by its index in `data`: inputs of the model's shape and finite; targets of the
/// loss's kind, labels below the number of classes, values finite (and in [0, 1]
/// for binary cross-entropy).
///
/// A run that diverges stops with [`Error::Diverged`] (the epoch and batch whose
/// loss was not finite) or [`Error::DivergedParams`] (a parameter that stopped being
/// finite), and the parameters are put back as they were at the start of that
/// epoch: a diverging run never leaves NaN weights behind.
pub fn fit<M: Train + ?Sized>(model: &mut M, data: &Dataset, config: &FitConfig) -> Result<FitReport, Error> {
    check_data(model, data, config.loss, "training set")?;
    let (train, validation) = match config.validation {
        Some(f) => {
            if !(f > 0.0 && f < 1.0) {
                return Err(Error::Config(format!(
                    "validation {f}: the fraction held out must lie strictly between 0 and 1"
                )));
            }
            let (t, v) = data.split(f, config.seed);
            if v.is_empty() {
                return Err(Error::Config(format!(
                    "validation {f} holds out no sample of the {} in the training set; \
                     give more samples or a larger fraction",
                    data.len()
                )));
            }
            (t, Some(v))
        }
        None => (data.clone(), None),
    };
    let batch = config.batch.max(1);
    let batches = train.len().div_ceil(batch);
    let mut report = FitReport::default();
    // The parameters at the start of the epoch, restored if the epoch diverges.
    let mut saved = snapshot(model).map_err(|param| {
        Error::Config(format!(
            "parameter `{param}` is not finite before training; load or initialize finite weights"
        ))
    })?;
    for epoch in 0..config.epochs {
        let start = Instant::now();
        model.set_epoch(epoch);
        let lr = model.learning_rate(epoch);
        let order = shuffled(train.len(), config.seed.wrapping_add(epoch as u64 + 1));
        let epoch_data = train.select(&order);
        let bar = progress_bar(config.verbose, batches as u64, epoch, config.epochs);
        let (mut loss_sum, mut correct, mut counted) = (0.0f64, 0usize, true);
        for b in 0..batches {
            let (lo, hi) = (b * batch, ((b + 1) * batch).min(train.len()));
            let (x, t) = epoch_data.batch(lo, hi);
            let loss = match model.train_step(x, t) {
                Ok(loss) if loss.is_finite() => loss,
                Ok(loss) | Err(Error::Diverged { loss, .. }) => {
                    bar.finish_and_clear();
                    restore(model, &saved)?;
                    return Err(Error::Diverged { epoch, batch: b, loss });
                }
                Err(e) => {
                    bar.finish_and_clear();
                    return Err(e);
                }
            };
            loss_sum += loss as f64 * (hi - lo) as f64;
            match model.last_correct() {
                Some(c) => correct += c,
                None => counted = false,
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        // Every loss was finite; the last update may still have overflowed.
        saved = match snapshot(model) {
            Ok(params) => params,
            Err(param) => {
                restore(model, &saved)?;
                return Err(Error::DivergedParams { epoch, param });
            }
        };
        let classifier = config.loss == Loss::CrossEntropy && matches!(train.targets, Targets::Labels(_));
        let validation = match &validation {
            Some(v) => Some(evaluate_checked(model, v, config.loss, batch)?),
            None => None,
        };
        let epoch_report = EpochReport {
            epoch,
            learning_rate: lr,
            train_loss: loss_sum / train.len() as f64,
            train_accuracy: (classifier && counted).then(|| correct as f64 / train.len() as f64),
            validation,
            seconds: start.elapsed().as_secs_f64(),
        };
        if config.verbose {
            println!("{}", epoch_line(&epoch_report, config.epochs));
        }
        report.history.push(epoch_report);
    }
    Ok(report)
}

/// Every parameter, or the name of the first one holding NaN or infinity.
fn snapshot<M: Model + ?Sized>(model: &M) -> Result<Vec<(String, ArrayD<f32>)>, String> {
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

fn restore<M: Model + ?Sized>(model: &mut M, saved: &[(String, ArrayD<f32>)]) -> Result<(), Error> {
    for (name, value) in saved {
        model.set_param(name, value.view())?;
    }
    Ok(())
}

/// Checks a whole data set against the model and its loss, naming a bad sample by
/// its index in `data`.
fn check_data<M: Model + ?Sized>(model: &M, data: &Dataset, loss: Loss, what: &str) -> Result<(), Error> {
    // The fields are public, so the counts may disagree even though `Dataset::new` checks them.
    let n = data.inputs.shape().first().copied().unwrap_or(0);
    let targets = match &data.targets {
        Targets::Labels(l) => l.len(),
        Targets::Values(v) => v.shape().first().copied().unwrap_or(0),
    };
    if n != targets {
        return Err(Error::Target(format!(
            "the {what} has {n} inputs but {targets} targets: each sample needs one target"
        )));
    }
    if n == 0 {
        return Err(Error::Target(format!("the {what} is empty")));
    }
    batch_size(
        &format!("the {what}'s inputs"),
        data.inputs.shape(),
        model.input_shape(),
    )?;
    check_finite(&format!("the {what}'s inputs"), &data.inputs.view())?;
    let word = loss_word(loss);
    match (&data.targets, loss) {
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
                    what: format!("the {what}'s targets"),
                    expected: format!("[{}]", expected.join(", ")),
                    given: given.to_vec(),
                });
            }
            check_finite(&format!("the {what}'s targets"), &values.view())?;
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

fn progress_bar(verbose: bool, len: u64, epoch: usize, epochs: usize) -> indicatif::ProgressBar {
    if !verbose || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} batches {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("epoch {:>2}/{epochs}", epoch + 1));
    bar
}

/// `epoch  1/10  loss 0.4213  acc 87.12%  val_loss 0.2011  val_acc 93.50%  lr 0.01  1.23s`
fn epoch_line(r: &EpochReport, epochs: usize) -> String {
    let width = epochs.to_string().len();
    let mut line = format!("epoch {:>width$}/{epochs}  loss {:.4}", r.epoch + 1, r.train_loss);
    if let Some(a) = r.train_accuracy {
        line += &format!("  acc {:.2}%", a * 100.0);
    }
    if let Some(v) = &r.validation {
        line += &format!("  val_loss {:.4}", v.loss);
        if let Some(a) = v.accuracy {
            line += &format!("  val_acc {:.2}%", a * 100.0);
        }
    }
    line += &format!("  lr {:.4}  {:.2}s", r.learning_rate, r.seconds);
    line
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
fn evaluate_checked<M: Model + ?Sized>(
    model: &mut M,
    data: &Dataset,
    loss: Loss,
    batch: usize,
) -> Result<Evaluation, Error> {
    let batch = batch.max(1);
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
        match (&t, loss) {
            (Target::Labels(labels), _) => {
                for (i, (&label, row)) in labels.iter().zip(values.chunks_exact(per_sample)).enumerate() {
                    let p = row.get(label).copied().ok_or(Error::Label {
                        sample: lo + i,
                        label,
                        classes: per_sample,
                    })?;
                    total += -(p.max(f32::MIN_POSITIVE) as f64).ln();
                    let best = row
                        .iter()
                        .enumerate()
                        .fold(0, |b, (j, &v)| if v > row[b] { j } else { b });
                    correct += usize::from(best == label);
                }
                count += hi - lo;
            }
            (Target::Values(target), _) => {
                for (&p, &t) in values.iter().zip(target.iter()) {
                    let (p, t) = (p as f64, t as f64);
                    total += match loss {
                        Loss::BinaryCrossEntropy => {
                            // BCELoss clamps each log at -100.
                            -(t * p.ln().max(-100.0) + (1.0 - t) * (1.0 - p).ln().max(-100.0))
                        }
                        _ => (p - t) * (p - t),
                    };
                    if loss == Loss::BinaryCrossEntropy {
                        correct += usize::from((p > 0.5) == (t > 0.5));
                    }
                }
                count += values.len();
            }
        }
        lo = hi;
    }
    let accuracy = match loss {
        Loss::CrossEntropy | Loss::BinaryCrossEntropy => Some(correct as f64 / count as f64),
        Loss::Mse => None,
    };
    Ok(Evaluation {
        loss: total / count as f64,
        accuracy,
    })
}
