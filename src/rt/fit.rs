//! The training loop: epochs, shuffled minibatches, the validation split, the
//! learning-rate schedule, per-epoch reports and a progress bar.

use super::data::{shuffled, Dataset, Targets};
use super::{Error, Model, Target, Train};
use crate::ir::Loss;
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
pub fn fit<M: Train + ?Sized>(model: &mut M, data: &Dataset, config: &FitConfig) -> Result<FitReport, Error> {
    if data.is_empty() {
        return Err(Error::Target("the training set is empty".into()));
    }
    let (train, validation) = match config.validation {
        Some(f) => {
            let (t, v) = data.split(f, config.seed);
            (t, Some(v))
        }
        None => (data.clone(), None),
    };
    let batch = config.batch.max(1);
    let batches = train.len().div_ceil(batch);
    let mut report = FitReport::default();
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
                Ok(l) => l,
                Err(Error::Diverged { loss, .. }) => return Err(Error::Diverged { epoch, batch: b, loss }),
                Err(e) => return Err(e),
            };
            if !loss.is_finite() {
                return Err(Error::Diverged { epoch, batch: b, loss });
            }
            loss_sum += loss as f64 * (hi - lo) as f64;
            match model.last_correct() {
                Some(c) => correct += c,
                None => counted = false,
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let classifier = config.loss == Loss::CrossEntropy && matches!(train.targets, Targets::Labels(_));
        let validation = match &validation {
            Some(v) => Some(evaluate(model, v, config.loss, batch)?),
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
pub fn evaluate<M: Model + ?Sized>(
    model: &mut M,
    data: &Dataset,
    loss: Loss,
    batch: usize,
) -> Result<Evaluation, Error> {
    if data.is_empty() {
        return Err(Error::Target("the evaluation set is empty".into()));
    }
    let batch = batch.max(1);
    let (mut total, mut correct, mut count) = (0.0f64, 0usize, 0usize);
    let mut lo = 0;
    while lo < data.len() {
        let hi = (lo + batch).min(data.len());
        let (x, t) = data.batch(lo, hi);
        let y = model.predict(x)?;
        let per_sample = y.len() / (hi - lo);
        let y = y.as_standard_layout();
        let values = y.as_slice().unwrap_or(&[]);
        match (&t, loss) {
            (Target::Labels(labels), _) => {
                for (i, &label) in labels.iter().enumerate() {
                    let row = &values[i * per_sample..(i + 1) * per_sample];
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
