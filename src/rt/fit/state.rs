//! Where a run stands: the prepared training and validation sets and the batches
//! of an epoch ([`Prepared`]), the epoch's running sums and the history
//! ([`Position`]).

use super::config::FitConfig;
use super::evaluate::check_data;
use crate::ir::Loss;
use crate::rt::data::{Dataset, Targets};
use crate::rt::report::{EpochReport, Evaluation};
use crate::rt::{Error, Train};

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
    if let (Targets::LabelMaps(maps), false) = (&data.targets, config.augment.is_empty()) {
        if maps.shape()[1..] != model.input_shape()[1..] {
            return Err(Error::Config(format!(
                "augment {:?} moves each label map with its image, so the maps must be as large as the \
                 input: {}x{} maps, {}x{} inputs",
                config.augment,
                maps.shape()[1],
                maps.shape()[2],
                model.input_shape()[1],
                model.input_shape()[2]
            )));
        }
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
    /// v3 segmentation: the labelled positions of the label maps trained on.
    pub(crate) positions: usize,
    pub(crate) seconds: f64,
}

impl Sums {
    pub(crate) fn fresh() -> Sums {
        Sums {
            loss: 0.0,
            correct: 0,
            counted: true,
            samples: 0,
            positions: 0,
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
            // v3: pixel accuracy over the positions that count.
            (Loss::CrossEntropy, Targets::LabelMaps(_)) => Some(self.sums.positions as f64),
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
