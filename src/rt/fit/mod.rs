//! The training loop: epochs, shuffled minibatches gathered (and augmented) into
//! reusable buffers, the validation split, the learning-rate schedule, per-epoch
//! reports and a progress bar; and, for models that expose their whole training
//! state ([`FlatTrain`]: every generated model), checkpoints, resuming and stopping
//! between two steps ([`fit_resumable`]).
//!
//! ## What a resumed run depends on
//! Every random stream of a run is a pure function of counters, so a checkpoint
//! stores counters, not generator states:
//! - the shuffle: epoch `e` visits the training set in the order of a ChaCha8
//!   permutation seeded with `seed + e + 1` (the validation split: seeded with `seed`);
//! - the augmentation: each draw is a hash of (`seed`, epoch, the sample's index in
//!   the training set, the transform's position);
//! - dropout: each mask is drawn from (the model's construction seed, the optimizer
//!   step, the layer, the sample), so the step count restores it. The construction
//!   seed is not part of the model's state that [`FlatTrain`] exposes: resume with a
//!   model built with the same seed (as `Net::new(Net::FIT.seed)` does).
//!
//! The checkpoint's `rng` list records them as `shuffle: [seed]`, `augment: [seed]`
//! and `dropout: [optimizer step]`; a resumed run checks them against its own.
//! With the same thread count, a run stopped (or killed) and resumed from its last
//! checkpoint ends with the same parameters, bit for bit, as a run never stopped.

mod config;
mod evaluate;
mod resume;
mod state;

pub(crate) use config::check_options;
pub use config::{FitConfig, FitOptions, Origin};
pub use evaluate::evaluate;
pub(crate) use evaluate::{evaluate_checked, restore, snapshot};
pub(crate) use resume::{checkpoint_at, resume, run_signature};
pub(crate) use state::{prepare, Position, Prepared};

use super::augment::{augment_labels, augment_sample};
use super::checkpoint::Checkpoint;
use super::data::{shuffled, Dataset, Targets};
pub use super::report::{EpochReport, Evaluation, FitReport};
use super::{Error, FlatTrain, Target, Train};
use ndarray::{ArrayView1, ArrayViewD, CowArray, IxDyn};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Trains `model` on `data` as `config` says.
///
/// The whole data set is checked before the first step, so a bad sample is named
/// by its index in `data`: inputs of the model's shape and finite; targets of the
/// loss's kind, labels below the number of classes, values finite (and in [0, 1]
/// for binary cross-entropy).
///
/// Each epoch visits the training set in a new seeded order; its batches are
/// gathered into buffers allocated once per run, and augmented there when
/// `config.augment` says so. Every schedule spans `config.epochs`, the epochs
/// actually run (`cosine` anneals over them). A batchnorm layer that gets one
/// value per channel from a sample (after a dense layer, or on 1x1 maps) cannot
/// train on a batch of one sample (PyTorch refuses it too), so when the last batch
/// of an epoch would hold a single sample, that sample is left out of the epoch
/// (it lands in another batch in the next epoch's order); a conv model with
/// batchnorm on larger maps trains on one sample. A model with batchnorm takes at
/// most its compiled `batch` per step: a larger `config.batch` is refused before
/// training (evaluation takes any batch).
///
/// A run that diverges stops with [`Error::Diverged`] (the epoch and batch whose
/// loss was not finite) or [`Error::DivergedParams`] (a parameter that stopped being
/// finite), and the parameters are put back as they were at the start of that
/// epoch: a diverging run never leaves NaN weights behind.
///
/// `fit` takes any [`Train`] model (the interpreter too) and keeps no checkpoints;
/// [`fit_resumable`] does, for models that expose their optimizer state.
pub fn fit<M: Train + ?Sized>(model: &mut M, data: &Dataset, config: &FitConfig) -> Result<FitReport, Error> {
    let prepared = prepare(model, data, config)?;
    model.set_epochs(config.epochs);
    run(model, &prepared, config, Position::start(), Control::default())
}

/// [`fit`] with checkpoints, resuming and a stop flag, for models whose whole
/// training state can be read and written: every generated model ([`FlatTrain`]).
/// The interpreter implements only [`Train`]: it trains with [`fit`], without
/// checkpoints.
///
/// A checkpoint ([`Checkpoint`]) holds the parameters, buffers, the optimizer's
/// moments and step count, `batches_tracked`, the epoch and the batches taken in
/// it, the schedule's position (the epoch), the running sums of the epoch in
/// progress, the random streams (see the module documentation) and the history so
/// far. Its signature names the model, its tensors, and a fingerprint of the train
/// configuration and of the training data: resuming with another model, train
/// block, seed, batch, validation split, augmentation or data set is refused,
/// naming the first difference; so is a file that is truncated or corrupted.
/// After a refused resume the model is as it was.
///
/// When the stop flag is set or `stop_after` steps are reached, the run stops
/// between two steps, writes a checkpoint there (when `options.checkpoint` is set)
/// and returns [`Error::Interrupted`].
pub fn fit_resumable<M: FlatTrain>(
    model: &mut M,
    data: &Dataset,
    config: &FitConfig,
    options: &FitOptions<'_>,
) -> Result<FitReport, Error> {
    let prepared = prepare(model, data, config)?;
    model.set_epochs(config.epochs);
    check_options(options)?;
    let signature = run_signature(model, config, data, options);
    let start = match &options.resume {
        Some(path) => {
            let checkpoint = Checkpoint::load(path)?;
            let at = resume(model, &checkpoint, &signature, config, &prepared, path)?;
            if config.verbose {
                println!(
                    "resuming from {}: epoch {}, batch {} of {}",
                    path.display(),
                    at.epoch + 1,
                    at.step + 1,
                    prepared.batches
                );
            }
            at
        }
        None => Position::start(),
    };
    let write = |model: &mut M, at: &Position, path: &Path| -> Result<String, Error> {
        checkpoint_at(model, &signature, config.seed, at)?.save(path)?;
        Ok(path.display().to_string())
    };
    let mut save = options
        .checkpoint
        .as_deref()
        .map(|path| move |model: &mut M, at: &Position| write(model, at, path));
    let control = Control {
        save: save
            .as_mut()
            .map(|f| f as &mut dyn FnMut(&mut M, &Position) -> Result<String, Error>),
        every: options.every,
        stop: options.stop,
        stop_after: options.stop_after,
    };
    run(model, &prepared, config, start, control)
}

/// Checkpoints and stopping: the writer (its result names the file written).
type Save<'s, M> = &'s mut dyn FnMut(&mut M, &Position) -> Result<String, Error>;

struct Control<'s, M: ?Sized> {
    save: Option<Save<'s, M>>,
    every: Option<usize>,
    stop: Option<&'s AtomicBool>,
    stop_after: Option<u64>,
}

impl<M: ?Sized> Default for Control<'_, M> {
    fn default() -> Self {
        Control {
            save: None,
            every: None,
            stop: None,
            stop_after: None,
        }
    }
}

/// The training loop from `at` on.
fn run<M: Train + ?Sized>(
    model: &mut M,
    prepared: &Prepared,
    config: &FitConfig,
    mut at: Position,
    mut control: Control<'_, M>,
) -> Result<FitReport, Error> {
    let (batch, batches, n) = (prepared.batch, prepared.batches, prepared.train.len());
    let out_len: usize = model.output_shape().iter().product();
    let mut gather = Gather::new(&prepared.train, batch, model.input_shape(), model.output_shape());
    let classes = model.output_shape().first().copied().unwrap_or(0);

    let mut early = EarlyStop::from_history(&at.history);
    // The parameters at the start of the epoch, restored if the epoch diverges.
    let mut saved = snapshot(model).map_err(|param| {
        Error::Config(format!(
            "parameter `{param}` is not finite before training; load or initialize finite weights"
        ))
    })?;
    while at.epoch < config.epochs {
        let epoch = at.epoch;
        let start = Instant::now();
        let carried = at.sums.seconds;
        model.set_epoch(epoch);
        let lr = model.learning_rate(epoch);
        let order = shuffled(n, config.seed.wrapping_add(epoch as u64 + 1));
        let bar = progress_bar(config.verbose, batches as u64, epoch, config.epochs);
        bar.set_position(at.step as u64);
        for b in at.step..batches {
            let taken = (epoch * batches + b) as u64;
            let stop = control.stop.is_some_and(|s| s.load(Ordering::SeqCst))
                || control.stop_after.is_some_and(|s| taken >= s);
            if stop {
                bar.finish_and_clear();
                at.step = b;
                at.sums.seconds = carried + start.elapsed().as_secs_f64();
                let checkpoint = match control.save.as_mut() {
                    Some(save) => Some(save(model, &at)?),
                    None => None,
                };
                return Err(Error::Interrupted {
                    epoch,
                    batch: b,
                    checkpoint,
                });
            }
            let (lo, hi) = (b * batch, ((b + 1) * batch).min(n));
            let m = hi - lo;
            let (x, t) = gather.batch(&order[lo..hi], config, epoch)?;
            // Segmentation's accuracy is per labelled position (the ignore label is no class).
            let positions = match &t {
                Target::LabelMaps(maps) => maps.iter().filter(|&&l| l < classes).count(),
                _ => 0,
            };
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
            at.sums.loss += loss as f64 * m as f64;
            at.sums.samples += m;
            at.sums.positions += positions;
            match model.last_correct() {
                Some(c) => at.sums.correct += c,
                None => at.sums.counted = false,
            }
            bar.inc(1);
            at.step = b + 1;
            if let (Some(every), Some(save)) = (control.every, control.save.as_mut()) {
                if (taken + 1).is_multiple_of(every as u64) && b + 1 < batches {
                    at.sums.seconds = carried + start.elapsed().as_secs_f64();
                    save(model, &at)?;
                }
            }
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
        let validation = match &prepared.validation {
            Some(v) => Some(evaluate_checked(model, v, config.loss, batch)?),
            None => None,
        };
        let seconds = carried + start.elapsed().as_secs_f64();
        let report = at.close_epoch(prepared, config, out_len, lr, validation, seconds);
        if config.verbose {
            println!("{}", report.line(config.epochs));
        }
        if let Some(save) = control.save.as_mut() {
            save(model, &at)?;
        }
        if let (Some(patience), Some(v)) = (config.model.and_then(|o| o.train.early_stop), validation) {
            if early.watch(model, epoch, v.loss, &saved, patience)? {
                if config.verbose {
                    println!(
                        "early stop: no better validation loss for {patience} epochs; restored epoch {} (val_loss {:.4})",
                        early.epoch + 1,
                        early.loss
                    );
                }
                break;
            }
        }
    }
    Ok(FitReport { history: at.history })
}

/// v3 `early_stop P` (Keras's `EarlyStopping(patience=P, restore_best_weights=True)`):
/// the best validation loss so far, its epoch, and its parameters and buffers.
/// After a resume the best loss and epoch come from the history; the weights
/// restored at a stop are then the best seen since the resume.
struct EarlyStop {
    loss: f64,
    epoch: usize,
    /// The best epoch's parameters and buffers.
    weights: Option<(Named, Named)>,
}

/// Tensors by name.
type Named = Vec<(String, ndarray::ArrayD<f32>)>;

impl EarlyStop {
    fn from_history(history: &[EpochReport]) -> EarlyStop {
        let best = history
            .iter()
            .filter_map(|e| e.validation.map(|v| (v.loss, e.epoch)))
            .fold(None, |b: Option<(f64, usize)>, (l, e)| match b {
                Some((bl, _)) if bl <= l => b,
                _ => Some((l, e)),
            });
        EarlyStop {
            loss: best.map_or(f64::INFINITY, |b| b.0),
            epoch: best.map_or(0, |b| b.1),
            weights: None,
        }
    }

    /// Records epoch `epoch`'s validation loss (the weights `params` and the
    /// model's buffers when it is the best); when `patience` epochs have passed
    /// without a better one, restores the best weights kept and says to stop.
    fn watch<M: Train + ?Sized>(
        &mut self,
        model: &mut M,
        epoch: usize,
        loss: f64,
        params: &[(String, ndarray::ArrayD<f32>)],
        patience: usize,
    ) -> Result<bool, Error> {
        if loss < self.loss {
            let buffers = model
                .buffer_names()
                .into_iter()
                .filter_map(|name| model.buffer(&name).map(|b| (name, b)))
                .collect();
            *self = EarlyStop {
                loss,
                epoch,
                weights: Some((params.to_vec(), buffers)),
            };
            return Ok(false);
        }
        if epoch < self.epoch + patience {
            return Ok(false);
        }
        if let Some((params, buffers)) = &self.weights {
            restore(model, params)?;
            for (name, value) in buffers {
                model.set_buffer(name, value.view())?;
            }
        }
        Ok(true)
    }
}

/// The training set in memory order and the buffers one batch is gathered (and
/// augmented) into, allocated once per run.
struct Gather<'d> {
    inputs: CowArray<'d, f32, IxDyn>,
    values: Option<CowArray<'d, f32, IxDyn>>,
    labels: Option<&'d [usize]>,
    /// v3: label maps `[N, H, W]`, their gathered batch and its dimensions.
    maps: Option<CowArray<'d, usize, ndarray::Ix3>>,
    ms: Vec<usize>,
    map_hw: (usize, usize),
    in_len: usize,
    out_len: usize,
    chw: (usize, usize, usize),
    xs: Vec<f32>,
    ls: Vec<usize>,
    ts: Vec<f32>,
    x_dims: Vec<usize>,
    t_dims: Vec<usize>,
}

impl<'d> Gather<'d> {
    fn new(train: &'d Dataset, batch: usize, input_shape: &[usize], output_shape: &[usize]) -> Self {
        let in_len: usize = input_shape.iter().product();
        let out_len: usize = output_shape.iter().product();
        let chw = match input_shape[..] {
            [c, h, w] => (c, h, w),
            _ => (1, 1, in_len),
        };
        let (values, labels, maps) = match &train.targets {
            Targets::Values(v) => (Some(v.as_standard_layout()), None, None),
            Targets::Labels(l) => (None, Some(&l[..]), None),
            Targets::LabelMaps(m) => (None, None, Some(m.as_standard_layout())),
        };
        let map_hw = maps.as_ref().map_or((0, 0), |m| (m.shape()[1], m.shape()[2]));
        let mut x_dims = vec![0usize; 1 + input_shape.len()];
        x_dims[1..].copy_from_slice(input_shape);
        let mut t_dims = vec![0usize; 1 + output_shape.len()];
        t_dims[1..].copy_from_slice(output_shape);
        Gather {
            inputs: train.inputs.as_standard_layout(),
            xs: vec![0.0f32; batch * in_len],
            ls: vec![0usize; if labels.is_some() { batch } else { 0 }],
            ts: vec![0.0f32; if values.is_some() { batch * out_len } else { 0 }],
            ms: vec![0usize; batch * map_hw.0 * map_hw.1],
            values,
            labels,
            maps,
            map_hw,
            in_len,
            out_len,
            chw,
            x_dims,
            t_dims,
        }
    }

    /// The samples `indices` of the training set as one batch, augmented as
    /// `config` says for `epoch`.
    fn batch(
        &mut self,
        indices: &[usize],
        config: &FitConfig,
        epoch: usize,
    ) -> Result<(ArrayViewD<'_, f32>, Target<'_>), Error> {
        let (in_len, out_len, m) = (self.in_len, self.out_len, indices.len());
        let inputs = self.inputs.as_slice().unwrap_or(&[]);
        let values = self.values.as_ref().map(|v| v.as_slice().unwrap_or(&[]));
        for (k, &i) in indices.iter().enumerate() {
            let (src, dst) = (
                &inputs[i * in_len..(i + 1) * in_len],
                &mut self.xs[k * in_len..(k + 1) * in_len],
            );
            if config.augment.is_empty() {
                dst.copy_from_slice(src);
            } else {
                augment_sample(config.augment, self.chw, config.seed, epoch as u64, i as u64, src, dst);
            }
            if let Some(l) = self.labels {
                self.ls[k] = l[i];
            }
            if let Some(v) = values {
                self.ts[k * out_len..(k + 1) * out_len].copy_from_slice(&v[i * out_len..(i + 1) * out_len]);
            }
            if let Some(maps) = &self.maps {
                let (h, w) = self.map_hw;
                let (src, dst) = (
                    &maps.as_slice().unwrap_or(&[])[i * h * w..(i + 1) * h * w],
                    &mut self.ms[k * h * w..(k + 1) * h * w],
                );
                if config.augment.is_empty() {
                    dst.copy_from_slice(src);
                } else {
                    // The mask moves with its image (`fit` checked that their sizes agree).
                    let fill = config.model.and_then(|o| o.train.ignore).unwrap_or(0);
                    augment_labels(
                        config.augment,
                        (h, w),
                        config.seed,
                        epoch as u64,
                        i as u64,
                        src,
                        dst,
                        fill,
                    );
                }
            }
        }
        self.x_dims[0] = m;
        self.t_dims[0] = m;
        let shape_error = |e: ndarray::ShapeError| Error::Config(format!("gathering a batch: {e}"));
        let x = ArrayViewD::from_shape(IxDyn(&self.x_dims), &self.xs[..m * in_len]).map_err(shape_error)?;
        let (h, w) = self.map_hw;
        let t = match (self.labels, &self.maps) {
            (_, Some(_)) => Target::LabelMaps(
                ndarray::ArrayView3::from_shape((m, h, w), &self.ms[..m * h * w]).map_err(shape_error)?,
            ),
            (Some(_), None) => Target::Labels(ArrayView1::from(&self.ls[..m])),
            (None, None) => Target::Values(
                ArrayViewD::from_shape(IxDyn(&self.t_dims), &self.ts[..m * out_len]).map_err(shape_error)?,
            ),
        };
        Ok((x, t))
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
