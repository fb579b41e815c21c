//! How to train: the train block as `fit` reads it ([`FitConfig`]), and
//! checkpoints, resuming and stopping ([`FitOptions`]).

use crate::ir::{Augment, Loss};
use crate::rt::driver::TrainSpec;
use crate::rt::Error;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

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
    pub const fn of(spec: &crate::rt::driver::Spec) -> FitConfig {
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

/// Refuses options that make no sense: a checkpoint every 0 steps.
pub(crate) fn check_options(options: &FitOptions<'_>) -> Result<(), Error> {
    if options.every == Some(0) {
        return Err(Error::Config(
            "a checkpoint every 0 steps: give at least 1 (or none, for the end of every epoch)".into(),
        ));
    }
    Ok(())
}
