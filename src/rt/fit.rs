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

use super::augment::augment_sample;
use super::checkpoint::{Checkpoint, EpochRecord, EpochSums, Progress, RngState, Signature};
use super::data::{shuffled, Dataset, Targets};
use super::driver::TrainSpec;
use super::inputs::{batch_size, check_finite};
pub use super::report::{EpochReport, Evaluation, FitReport};
use super::{Error, FlatTrain, Model, Target, Train};
use crate::compute::loss;
use crate::ir::{Augment, Loss};
use ndarray::{ArrayD, ArrayView1, ArrayViewD, CowArray, Dimension, IxDyn};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// The train block's `augment`: applied to every training sample (inputs of
    /// shape `[C, H, W]`) as its batch is gathered, drawn from (`seed`, epoch,
    /// the sample's index in the training set).
    pub augment: &'static [Augment],
    /// The generated model this configuration was made for ([`FitConfig::of`]): a
    /// checkpoint records its name and train block, so that the checkpoint of
    /// another model or train block is refused. `None` for a configuration built
    /// by hand (then its fields and the learning rates stand for the train block).
    pub model: Option<Origin>,
}

/// A generated model's name and train block, as [`FitConfig::of`] copies them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Origin {
    pub name: &'static str,
    pub train: TrainSpec,
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
                augment: t.augment,
                model: Some(Origin {
                    name: spec.name,
                    train: t,
                }),
            },
            None => panic!("FitConfig::of needs a model with a train block"),
        }
    }

    /// A configuration built by hand: no validation split, seed 0, verbose, no
    /// augmentation; change the public fields for more.
    pub const fn new(loss: Loss, epochs: usize, batch: usize) -> FitConfig {
        FitConfig {
            loss,
            epochs,
            batch,
            validation: None,
            seed: 0,
            verbose: true,
            augment: &[],
            model: None,
        }
    }

    /// The same configuration without the per-epoch lines and progress bar.
    pub const fn quiet(self) -> FitConfig {
        FitConfig { verbose: false, ..self }
    }
}

/// Checkpoints, resuming and stopping, for [`fit_resumable`].
///
/// ```no_run
/// # use cnnc::rt::fit::FitOptions;
/// # use std::sync::atomic::AtomicBool;
/// static STOP: AtomicBool = AtomicBool::new(false);
/// let options = FitOptions::default()
///     .checkpoint("run.ckpt")      // written at the end of every epoch...
///     .every(200)                  // ...and every 200 steps
///     .stop(&STOP);                // set it (from a Ctrl-C handler) to stop between steps
/// ```
#[derive(Debug, Clone, Default)]
pub struct FitOptions<'a> {
    /// Where checkpoints are written, each replacing the last (atomically: a run
    /// killed while writing leaves the previous one whole). `None`: none written.
    pub checkpoint: Option<PathBuf>,
    /// Also write a checkpoint every this many steps (batches, counted from the
    /// run's first step). `None`: at the end of every epoch only.
    pub every: Option<usize>,
    /// A checkpoint to continue from.
    pub resume: Option<PathBuf>,
    /// Checked between two steps: once set, `fit_resumable` writes a checkpoint
    /// (when it has a path) and returns [`Error::Interrupted`].
    pub stop: Option<&'a AtomicBool>,
    /// Stops as the flag would once this many steps of the run have been taken
    /// (counted from the run's first step, so the same after a resume).
    pub stop_after: Option<u64>,
}

impl<'a> FitOptions<'a> {
    pub fn checkpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint = Some(path.into());
        self
    }

    pub fn every(mut self, steps: usize) -> Self {
        self.every = Some(steps);
        self
    }

    pub fn resume(mut self, path: impl Into<PathBuf>) -> Self {
        self.resume = Some(path.into());
        self
    }

    pub fn stop(mut self, flag: &'a AtomicBool) -> Self {
        self.stop = Some(flag);
        self
    }

    pub fn stop_after(mut self, steps: u64) -> Self {
        self.stop_after = Some(steps);
        self
    }
}

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

/// Refuses options that make no sense: a checkpoint every 0 steps.
pub(crate) fn check_options(options: &FitOptions<'_>) -> Result<(), Error> {
    if options.every == Some(0) {
        return Err(Error::Config(
            "a checkpoint every 0 steps: give at least 1 (or none, for the end of every epoch)".into(),
        ));
    }
    Ok(())
}

/// The signature of this run's checkpoints: the model, its tensors and the
/// [`fingerprint`] of the configuration and data; empty (and not computed) when
/// `options` neither writes nor resumes a checkpoint.
pub(crate) fn run_signature<M: FlatTrain>(
    model: &M,
    config: &FitConfig,
    data: &Dataset,
    options: &FitOptions<'_>,
) -> Signature {
    if options.checkpoint.is_none() && options.resume.is_none() {
        return Signature {
            model: String::new(),
            params: Vec::new(),
            buffers: Vec::new(),
            train: String::new(),
        };
    }
    Signature::of(
        config.model.map_or("model", |o| o.name),
        model,
        &fingerprint(model, config, data),
    )
}

/// The checkpoint of `model` at `at`: its tensors, optimizer state, counters,
/// random streams, history and the running sums of the epoch in progress.
pub(crate) fn checkpoint_at<M: FlatTrain>(
    model: &mut M,
    signature: &Signature,
    seed: u64,
    at: &Position,
) -> Result<Checkpoint, Error> {
    let mut c = Checkpoint::new(signature.clone(), model)?;
    let state = model.optimizer_state();
    let steps = *state.step;
    c.optimizer = state
        .moments
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.is_empty())
        .map(|(i, m)| (moment_name(i), m.to_vec()))
        .collect();
    c.progress = Progress {
        optimizer_steps: steps,
        epoch: at.epoch as u64,
        step_in_epoch: at.step as u64,
        schedule_position: at.epoch as u64,
        batches_tracked: model.batches_tracked(),
    };
    c.rng = streams(seed, steps);
    c.history = at.history.iter().map(EpochRecord::from).collect();
    c.epoch_sums = (at.step > 0).then(|| EpochSums {
        loss_sum: at.sums.loss,
        correct: at.sums.counted.then_some(at.sums.correct as u64),
        samples: at.sums.samples as u64,
        seconds: at.sums.seconds,
    });
    Ok(c)
}

/// The name of optimizer moment `i` in a checkpoint.
fn moment_name(i: usize) -> String {
    format!("optim.state{}", i + 1)
}

/// The random streams as a checkpoint records them (see the module documentation).
fn streams(seed: u64, optimizer_steps: u64) -> Vec<RngState> {
    [("shuffle", seed), ("augment", seed), ("dropout", optimizer_steps)]
        .into_iter()
        .map(|(name, v)| RngState {
            name: name.into(),
            state: vec![v],
        })
        .collect()
}

/// What a checkpoint's signature records of the train configuration and data,
/// as fields joined by `; `: the generated model's optimizer, weight decay and
/// schedule (or, for a configuration built by hand, the learning rate of every
/// epoch), the fit's own fields, and the data set's size and FNV-1a hash.
fn fingerprint<M: Train + ?Sized>(model: &M, config: &FitConfig, data: &Dataset) -> String {
    let mut fields = match config.model {
        Some(o) => {
            let mut fields = vec![
                format!("optimizer {:?}", o.train.optimizer),
                format!("weight_decay {:?}", o.train.weight_decay),
                format!("schedule {:?}", o.train.schedule),
            ];
            // v3 items, recorded only when used, so earlier checkpoints still resume.
            if o.train.smoothing != 0.0 {
                fields.push(format!("smoothing {:?}", o.train.smoothing));
            }
            if let Some(x) = o.train.clip_grad_norm {
                fields.push(format!("clip_grad_norm {x:?}"));
            }
            if !o.train.freeze.is_empty() {
                fields.push(format!("freeze {:?}", o.train.freeze));
            }
            fields
        }
        None => {
            let rates: Vec<String> = (0..config.epochs)
                .map(|e| format!("{:?}", model.learning_rate(e)))
                .collect();
            vec![format!("learning rates [{}]", rates.join(", "))]
        }
    };
    fields.extend([
        format!("loss {:?}", config.loss),
        format!("epochs {}", config.epochs),
        format!("batch {}", config.batch),
        format!("validation {:?}", config.validation),
        format!("seed {}", config.seed),
        format!("augment {:?}", config.augment),
        format!("data {} samples", data.len()),
        format!("data hash {:016x}", data_hash(data)),
    ]);
    fields.join("; ")
}

/// FNV-1a (64 bits) over the shape, the inputs' bits and the targets' bits.
///
/// Written here (a few lines) because the value is stored in files: it must stay
/// the same across runs, platforms and Rust versions, which std's `DefaultHasher`
/// does not promise, and no hashing crate is a dependency.
fn data_hash(data: &Dataset) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |word: u64| {
        for byte in word.to_le_bytes() {
            h = (h ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for &d in data.inputs.shape() {
        eat(d as u64);
    }
    for v in data.inputs.iter() {
        eat(v.to_bits() as u64);
    }
    match &data.targets {
        Targets::Labels(l) => l.iter().for_each(|&v| eat(v as u64)),
        Targets::Values(t) => t.iter().for_each(|v| eat(v.to_bits() as u64)),
    }
    h
}

/// Checks `checkpoint` against this run and puts its state into `model`; the
/// model is untouched unless every check passes.
pub(crate) fn resume<M: FlatTrain>(
    model: &mut M,
    checkpoint: &Checkpoint,
    signature: &Signature,
    config: &FitConfig,
    prepared: &Prepared,
    path: &Path,
) -> Result<Position, Error> {
    let refuse = |message: String| Error::Format {
        path: path.display().to_string(),
        message,
    };
    check_signature(checkpoint, signature, &refuse)?;
    let sums = check_progress(checkpoint, config, prepared, &refuse)?;
    check_optimizer(model, checkpoint, &refuse)?;
    let p = checkpoint.progress;
    checkpoint.restore_model(model).map_err(|e| match e {
        Error::Config(message) => refuse(message),
        other => other,
    })?;
    let state = model.optimizer_state();
    for (i, m) in state.moments.into_iter().enumerate() {
        if let Some((_, v)) = checkpoint.optimizer.iter().find(|(n, _)| *n == moment_name(i)) {
            m.copy_from_slice(v);
        }
    }
    *state.step = p.optimizer_steps;
    Ok(Position {
        epoch: p.epoch as usize,
        step: p.step_in_epoch as usize,
        sums,
        history: checkpoint.history.iter().map(EpochReport::from).collect(),
    })
}

/// Refuses the checkpoint of another model (name, tensors) or train configuration,
/// naming the first difference.
fn check_signature(
    checkpoint: &Checkpoint,
    signature: &Signature,
    refuse: &dyn Fn(String) -> Error,
) -> Result<(), Error> {
    // The model first (name, tensors), then the train configuration field by field.
    let tensors = Signature {
        train: signature.train.clone(),
        ..checkpoint.signature.clone()
    };
    if let Some(d) = tensors.difference(signature) {
        return Err(refuse(format!("the checkpoint does not belong to this run: {d}")));
    }
    if checkpoint.signature.train != signature.train {
        let (ours, theirs): (Vec<&str>, Vec<&str>) = (
            checkpoint.signature.train.split("; ").collect(),
            signature.train.split("; ").collect(),
        );
        let at = (0..ours.len().max(theirs.len()))
            .find(|&i| ours.get(i) != theirs.get(i))
            .unwrap_or(0);
        return Err(refuse(format!(
            "the checkpoint does not belong to this run: the checkpoint's `{}` differs from this run's `{}`",
            ours.get(at).unwrap_or(&""),
            theirs.get(at).unwrap_or(&"")
        )));
    }
    Ok(())
}

/// Checks the checkpoint's counters, running sums and random streams against
/// this run; returns the running sums of the epoch in progress.
fn check_progress(
    checkpoint: &Checkpoint,
    config: &FitConfig,
    prepared: &Prepared,
    refuse: &dyn Fn(String) -> Error,
) -> Result<Sums, Error> {
    let p = checkpoint.progress;
    let (epoch, step) = (p.epoch, p.step_in_epoch);
    if epoch > config.epochs as u64 || (epoch == config.epochs as u64 && step > 0) {
        return Err(refuse(format!(
            "progress.epoch {epoch} (batch {step}) lies beyond the run's {} epochs",
            config.epochs
        )));
    }
    if step >= prepared.batches as u64 {
        return Err(refuse(format!(
            "progress.step_in_epoch {step}: an epoch of this training set has {} batches",
            prepared.batches
        )));
    }
    if p.schedule_position != epoch {
        return Err(refuse(format!(
            "progress.schedule_position {} differs from progress.epoch {epoch}: fit's schedule follows the epoch",
            p.schedule_position
        )));
    }
    let sums = match (step, checkpoint.epoch_sums) {
        (0, _) => Sums::fresh(),
        (_, None) => {
            return Err(refuse(format!(
                "progress.step_in_epoch {step} is in the middle of an epoch, but the checkpoint has no \
                 epoch_sums to go on from"
            )))
        }
        (_, Some(s)) => {
            let expected = step * prepared.batch as u64;
            if s.samples != expected {
                return Err(refuse(format!(
                    "epoch_sums.samples {}: {step} batches of {} hold {expected}",
                    s.samples, prepared.batch
                )));
            }
            Sums {
                loss: s.loss_sum,
                correct: s.correct.map_or(0, |c| c as usize),
                counted: s.correct.is_some(),
                samples: s.samples as usize,
                seconds: s.seconds,
            }
        }
    };
    let expected = streams(config.seed, p.optimizer_steps);
    for want in &expected {
        match checkpoint.rng.iter().find(|r| r.name == want.name) {
            None => return Err(refuse(format!("rng: the random stream `{}` is missing", want.name))),
            Some(r) if r.state != want.state => {
                return Err(refuse(format!(
                    "rng: the random stream `{}` is at {:?}; this run's is at {:?}",
                    want.name, r.state, want.state
                )))
            }
            Some(_) => {}
        }
    }
    if let Some(r) = checkpoint
        .rng
        .iter()
        .find(|r| !expected.iter().any(|e| e.name == r.name))
    {
        return Err(refuse(format!("rng: unknown random stream `{}`", r.name)));
    }
    Ok(sums)
}

/// The optimizer's moments: those `model`'s optimizer keeps, of its lengths, and no others.
fn check_optimizer<M: FlatTrain>(
    model: &mut M,
    checkpoint: &Checkpoint,
    refuse: &dyn Fn(String) -> Error,
) -> Result<(), Error> {
    let state = model.optimizer_state();
    for (i, m) in state.moments.iter().enumerate() {
        let name = moment_name(i);
        let stored = checkpoint.optimizer.iter().find(|(n, _)| *n == name);
        match (m.len(), stored) {
            (0, None) => {}
            (0, Some(_)) => {
                return Err(refuse(format!(
                    "optimizer tensor `{name}` is not kept by this model's optimizer"
                )))
            }
            (len, None) => return Err(refuse(format!("optimizer tensor `{name}` ({len} values) is missing"))),
            (len, Some((_, v))) if v.len() != len => {
                return Err(refuse(format!(
                    "optimizer tensor `{name}` holds {} values; this model's optimizer keeps {len}",
                    v.len()
                )))
            }
            _ => {}
        }
    }
    if let Some((n, _)) = checkpoint
        .optimizer
        .iter()
        .find(|(n, _)| !(0..2).any(|i| moment_name(i) == *n))
    {
        return Err(refuse(format!("unknown optimizer tensor `{n}`")));
    }
    Ok(())
}

/// The training and validation sets and the batches of an epoch.
pub(crate) struct Prepared {
    pub(crate) train: Dataset,
    pub(crate) validation: Option<Dataset>,
    pub(crate) batch: usize,
    /// Batches per epoch (a last batch of one sample is left out for batchnorm).
    pub(crate) batches: usize,
    /// Samples trained on per epoch.
    pub(crate) used: usize,
}

/// The training set and the held-out validation set of `config.validation`.
pub(crate) fn validation_split(data: &Dataset, config: &FitConfig) -> Result<(Dataset, Option<Dataset>), Error> {
    Ok(match config.validation {
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
    })
}

/// Checks the data and cuts the training set's epoch into batches.
pub(crate) fn prepare<M: Train + ?Sized>(model: &M, data: &Dataset, config: &FitConfig) -> Result<Prepared, Error> {
    check_data(model, data, config.loss, "training set")?;
    if !config.augment.is_empty() && model.input_shape().len() != 3 {
        return Err(Error::Config(format!(
            "augment {:?} needs image inputs [C, H, W]; the model's input has shape {:?}",
            config.augment,
            model.input_shape()
        )));
    }
    let (train, validation) = validation_split(data, config)?;
    let batch = config.batch.max(1);
    let n = train.len();
    let mut batches = n.div_ceil(batch);
    let mut used = n;
    if let Some(most) = model.max_train_batch().filter(|&most| batch > most) {
        return Err(Error::Config(format!(
            "FitConfig.batch {batch}: this model has batchnorm, which normalizes over a training step's \
             whole batch, and a step takes at most its train block's `batch {most}` samples (generated \
             code sizes its buffers for them); give a batch of at most {most}, or raise `batch` in the \
             train block (evaluation and prediction take any batch)"
        )));
    }
    let fewest = model.min_train_batch();
    if fewest > batch {
        return Err(Error::Config(format!(
            "FitConfig.batch {batch}: a batchnorm layer of this model gets one value per channel from a sample \
             (after a dense layer, or on 1x1 maps), so it trains on batches of at least {fewest} samples"
        )));
    }
    if fewest > 1 && n % batch == 1 {
        if n == 1 {
            return Err(Error::Config(
                "a batchnorm layer of this model gets one value per channel from a sample (after a \
                 dense layer, or on 1x1 maps), so it trains on batches of at least 2 samples, and the \
                 training set (after the validation split) holds 1"
                    .into(),
            ));
        }
        batches -= 1;
        used -= 1;
    }
    Ok(Prepared {
        train,
        validation,
        batch,
        batches,
        used,
    })
}

/// The running sums of an epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sums {
    pub(crate) loss: f64,
    pub(crate) correct: usize,
    /// Whether the model counted every step's correct samples.
    pub(crate) counted: bool,
    pub(crate) samples: usize,
    pub(crate) seconds: f64,
}

impl Sums {
    pub(crate) fn fresh() -> Sums {
        Sums {
            loss: 0.0,
            correct: 0,
            counted: true,
            samples: 0,
            seconds: 0.0,
        }
    }
}

/// Where a run stands: the epoch, the batches taken in it, its sums, the history.
pub(crate) struct Position {
    pub(crate) epoch: usize,
    pub(crate) step: usize,
    pub(crate) sums: Sums,
    pub(crate) history: Vec<EpochReport>,
}

impl Position {
    pub(crate) fn start() -> Position {
        Position {
            epoch: 0,
            step: 0,
            sums: Sums::fresh(),
            history: Vec::new(),
        }
    }

    /// Ends the epoch in progress, all its batches taken: its report (loss and
    /// accuracy from the running sums over the `prepared.used` samples) goes into
    /// the history, and the position moves to the start of the next epoch.
    pub(crate) fn close_epoch(
        &mut self,
        prepared: &Prepared,
        config: &FitConfig,
        out_len: usize,
        learning_rate: f32,
        validation: Option<Evaluation>,
        seconds: f64,
    ) -> &EpochReport {
        let used = prepared.used as f64;
        let train_accuracy = match (config.loss, &prepared.train.targets) {
            (Loss::CrossEntropy, Targets::Labels(_)) => Some(used),
            (Loss::BinaryCrossEntropy, Targets::Values(_)) => Some(used * out_len as f64),
            _ => None,
        }
        .filter(|_| self.sums.counted)
        .map(|total| self.sums.correct as f64 / total);
        self.history.push(EpochReport {
            epoch: self.epoch,
            learning_rate,
            train_loss: self.sums.loss / used,
            train_accuracy,
            validation,
            seconds,
        });
        self.epoch += 1;
        self.step = 0;
        self.sums = Sums::fresh();
        &self.history[self.history.len() - 1]
    }
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
    }
    Ok(FitReport { history: at.history })
}

/// The training set in memory order and the buffers one batch is gathered (and
/// augmented) into, allocated once per run.
struct Gather<'d> {
    inputs: CowArray<'d, f32, IxDyn>,
    values: Option<CowArray<'d, f32, IxDyn>>,
    labels: Option<&'d [usize]>,
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
        let (values, labels) = match &train.targets {
            Targets::Values(v) => (Some(v.as_standard_layout()), None),
            Targets::Labels(l) => (None, Some(&l[..])),
        };
        let mut x_dims = vec![0usize; 1 + input_shape.len()];
        x_dims[1..].copy_from_slice(input_shape);
        let mut t_dims = vec![0usize; 1 + output_shape.len()];
        t_dims[1..].copy_from_slice(output_shape);
        Gather {
            inputs: train.inputs.as_standard_layout(),
            xs: vec![0.0f32; batch * in_len],
            ls: vec![0usize; if labels.is_some() { batch } else { 0 }],
            ts: vec![0.0f32; if values.is_some() { batch * out_len } else { 0 }],
            values,
            labels,
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
        }
        self.x_dims[0] = m;
        self.t_dims[0] = m;
        let shape_error = |e: ndarray::ShapeError| Error::Config(format!("gathering a batch: {e}"));
        let x = ArrayViewD::from_shape(IxDyn(&self.x_dims), &self.xs[..m * in_len]).map_err(shape_error)?;
        let t = match self.labels {
            Some(_) => Target::Labels(ArrayView1::from(&self.ls[..m])),
            None => Target::Values(
                ArrayViewD::from_shape(IxDyn(&self.t_dims), &self.ts[..m * out_len]).map_err(shape_error)?,
            ),
        };
        Ok((x, t))
    }
}

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
        &format!("the {what}'s input array"),
        data.inputs.shape(),
        model.input_shape(),
    )?;
    check_finite(&format!("the {what}'s input array"), &data.inputs.view())?;
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
    kind: Loss,
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
    })
}
