//! Checkpoints: everything a resumed `fit` needs to continue bit for bit, in one
//! safetensors file that any safetensors reader opens.
//!
//! Tensors: `params/NAME` and `buffers/NAME` (f32, the model's names and PyTorch
//! layouts), `optimizer/NAME` (f32, flat: the optimizer's state, e.g.
//! `optimizer/optim.state1`). Everything else is JSON in the header's
//! `__metadata__`, under the key `cnnc.checkpoint`: the format version, the model's
//! [`Signature`], the [`Progress`] counters, the random streams' states and the
//! fit history so far.
//!
//! A checkpoint of `fit_distributed` also records, under `distributed` in the
//! JSON, the rank count and global batch it was written with, and holds every
//! rank's buffers in one more tensor, `distributed/buffers` (see [`Distributed`]).
//!
//! [`Checkpoint::load`] checks every field before it returns: a corrupted,
//! truncated or incomplete file is an [`Error::Format`] that names the path and
//! what is wrong, never a panic; [`Checkpoint::check_compatible`] refuses the
//! checkpoint of another model, naming the first difference.

use crate::rt::report::{EpochReport, Evaluation};
use crate::rt::weights::{self, Tensor};
use crate::rt::{atomic, Error, Model};
use ndarray::ArrayD;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The version of the format [`Checkpoint::save`] writes and [`Checkpoint::load`] reads.
pub const VERSION: u32 = 1;
/// The `__metadata__` key that holds the JSON.
pub const METADATA_KEY: &str = "cnnc.checkpoint";

const PARAMS: &str = "params/";
const BUFFERS: &str = "buffers/";
const OPTIMIZER: &str = "optimizer/";
/// The tensor of every rank's buffers in a distributed checkpoint.
const RANK_BUFFERS: &str = "distributed/buffers";

/// Everything a resumed `fit` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Which model this is the state of.
    pub signature: Signature,
    /// Every parameter, in the signature's order, names and shapes.
    pub params: Vec<(String, ArrayD<f32>)>,
    /// Every buffer, in the signature's order, names and shapes.
    pub buffers: Vec<(String, ArrayD<f32>)>,
    /// The optimizer's state tensors, flat (`optim.state1`, `optim.state2`, ...).
    pub optimizer: Vec<(String, Vec<f32>)>,
    pub progress: Progress,
    /// The random streams' states (shuffling, dropout, augmentation...), by name.
    pub rng: Vec<RngState>,
    /// One record per finished epoch: `history[i].epoch == i`, and
    /// `history.len() == progress.epoch`.
    pub history: Vec<EpochRecord>,
    /// The running sums of the epoch in progress, when the checkpoint was written
    /// in the middle of one (`progress.step_in_epoch > 0`), so that the resumed
    /// epoch reports the same loss and accuracy as an uninterrupted one.
    pub epoch_sums: Option<EpochSums>,
    /// What a checkpoint written by `fit_distributed` adds; `None` for `fit_resumable`'s.
    pub distributed: Option<Distributed>,
}

/// The part of a checkpoint that only `fit_distributed` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Distributed {
    /// The number of ranks that wrote it.
    pub ranks: u64,
    /// The global batch (the samples of one step, over all ranks).
    pub global_batch: u64,
    /// Every rank's buffers, rank after rank, each flat as `FlatTrain::flat_buffers`:
    /// `ranks` times the buffers' length, empty for a model without buffers. Each
    /// rank updates its batchnorm running statistics from its own share of a batch
    /// until the ranks average them at the end of the epoch, so in the middle of
    /// an epoch they differ; the checkpoint's `buffers/` hold their mean.
    pub rank_buffers: Vec<f32>,
}

/// [`Distributed`] in the JSON (its tensor apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DistributedMeta {
    ranks: u64,
    global_batch: u64,
}

/// The running sums of an epoch cut short by a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochSums {
    /// The sum of each batch's mean loss times its samples, in batch order.
    pub loss_sum: f64,
    /// Samples (cross-entropy) or output elements (binary cross-entropy) classified
    /// right so far; `null` when the model does not count them.
    #[serde(deserialize_with = "required")]
    pub correct: Option<u64>,
    /// Samples trained on so far in the epoch.
    pub samples: u64,
    /// v3 segmentation: the labelled (not ignored) positions trained on so far,
    /// the denominator of the pixel accuracy; 0 otherwise.
    #[serde(default)]
    pub positions: u64,
    /// Seconds spent in the epoch so far.
    pub seconds: f64,
}

/// What a checkpoint is of: a model by name, its tensors' names and shapes, and a
/// fingerprint of its train block (any text that changes when the block does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub model: String,
    pub params: Vec<TensorSpec>,
    pub buffers: Vec<TensorSpec>,
    pub train: String,
}

/// A tensor's name and shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

/// Where training stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// Optimizer steps taken in all (Adam's `t`).
    pub optimizer_steps: u64,
    /// The epoch to run or resume, 0-based: the history holds the epochs before it.
    pub epoch: u64,
    /// Batches of `epoch` already taken (0: the epoch has not started).
    pub step_in_epoch: u64,
    /// Where the learning-rate schedule stands.
    pub schedule_position: u64,
    /// The model's training steps ([`Model::batches_tracked`]).
    pub batches_tracked: u64,
}

/// A random stream's state, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RngState {
    pub name: String,
    pub state: Vec<u64>,
}

/// The numbers of one finished epoch (what `fit`'s [`EpochReport`] holds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochRecord {
    /// 0-based.
    pub epoch: u64,
    /// The f32 learning rate, widened (exactly) so that JSON keeps every bit.
    pub learning_rate: f64,
    pub train_loss: f64,
    #[serde(deserialize_with = "required")]
    pub train_accuracy: Option<f64>,
    #[serde(deserialize_with = "required")]
    pub validation_loss: Option<f64>,
    #[serde(deserialize_with = "required")]
    pub validation_accuracy: Option<f64>,
    pub seconds: f64,
}

/// An `Option` field that must be present, as `null` when there is no value: serde
/// takes a missing `Option` field for `None`, and a record cut short would load.
fn required<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

impl From<&EpochReport> for EpochRecord {
    fn from(r: &EpochReport) -> Self {
        EpochRecord {
            epoch: r.epoch as u64,
            learning_rate: r.learning_rate as f64,
            train_loss: r.train_loss,
            train_accuracy: r.train_accuracy,
            validation_loss: r.validation.map(|v| v.loss),
            validation_accuracy: r.validation.and_then(|v| v.accuracy),
            seconds: r.seconds,
        }
    }
}

impl From<&EpochRecord> for EpochReport {
    fn from(r: &EpochRecord) -> Self {
        EpochReport {
            epoch: usize::try_from(r.epoch).unwrap_or(usize::MAX),
            learning_rate: r.learning_rate as f32,
            train_loss: r.train_loss,
            train_accuracy: r.train_accuracy,
            validation: r.validation_loss.map(|loss| Evaluation {
                loss,
                accuracy: r.validation_accuracy,
                mean_iou: None,
            }),
            seconds: r.seconds,
        }
    }
}

/// The JSON in `__metadata__`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    version: u32,
    signature: Signature,
    /// The names of the `optimizer/` tensors, in order.
    optimizer: Vec<String>,
    progress: Progress,
    rng: Vec<RngState>,
    history: Vec<EpochRecord>,
    /// Absent at an epoch boundary (so a checkpoint written there reads as in version 1's first form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    epoch_sums: Option<EpochSums>,
    /// Absent in `fit_resumable`'s checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    distributed: Option<DistributedMeta>,
}

impl Signature {
    /// The signature of `model`, named `model_name`, whose train block has the
    /// fingerprint `train`.
    pub fn of(model_name: &str, model: &dyn Model, train: &str) -> Signature {
        let specs = |names: Vec<String>, get: &dyn Fn(&str) -> Option<ArrayD<f32>>| {
            names
                .into_iter()
                .map(|name| TensorSpec {
                    shape: get(&name).map(|a| a.shape().to_vec()).unwrap_or_default(),
                    name,
                })
                .collect()
        };
        Signature {
            model: model_name.to_string(),
            params: specs(model.param_names(), &|n| model.param(n)),
            buffers: specs(model.buffer_names(), &|n| model.buffer(n)),
            train: train.to_string(),
        }
    }

    /// The first difference between this signature (a checkpoint's) and `model`'s
    /// (the model it would be loaded into): the model name, a parameter's or
    /// buffer's name or shape, or the train block.
    pub fn difference(&self, model: &Signature) -> Option<String> {
        if self.model != model.model {
            return Some(format!(
                "it is of model `{}`, not `{}`",
                clip(&self.model),
                clip(&model.model)
            ));
        }
        for (kind, ours, theirs) in [
            ("parameter", &self.params, &model.params),
            ("buffer", &self.buffers, &model.buffers),
        ] {
            for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
                if a.name != b.name {
                    return Some(format!(
                        "{kind} {} is `{}` in the checkpoint, `{}` in the model",
                        i + 1,
                        clip(&a.name),
                        clip(&b.name)
                    ));
                }
                if a.shape != b.shape {
                    return Some(format!(
                        "{kind} `{}` has shape {:?} in the checkpoint, {:?} in the model",
                        clip(&a.name),
                        a.shape,
                        b.shape
                    ));
                }
            }
            if ours.len() != theirs.len() {
                let (more, first) = if ours.len() > theirs.len() {
                    ("checkpoint", &ours[theirs.len()])
                } else {
                    ("model", &theirs[ours.len()])
                };
                return Some(format!(
                    "the checkpoint has {} {kind}s, the model {}: `{}` is only in the {more}",
                    ours.len(),
                    theirs.len(),
                    clip(&first.name)
                ));
            }
        }
        if self.train != model.train {
            // The first character that differs (the text before it is the same in both).
            let (chars, at) = self
                .train
                .char_indices()
                .zip(model.train.chars())
                .enumerate()
                .find(|(_, ((_, a), b))| a != b)
                .map(|(k, ((i, _), _))| (k, i))
                .unwrap_or_else(|| {
                    let at = self.train.len().min(model.train.len());
                    (self.train[..at].chars().count(), at)
                });
            let from = |s: &str| clip(s.get(at..).unwrap_or_default());
            return Some(format!(
                "the train block differs from character {}: the checkpoint's continues `{}`, the model's `{}`",
                chars + 1,
                from(&self.train),
                from(&model.train)
            ));
        }
        None
    }
}

/// At most 60 characters of `s`, with `...` when cut.
fn clip(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

impl Checkpoint {
    /// A checkpoint of `model`'s parameters, buffers and step count, with no
    /// optimizer state, random streams or history yet (`fit` fills them).
    pub fn new(signature: Signature, model: &dyn Model) -> Result<Checkpoint, Error> {
        let take = |specs: &[TensorSpec], get: &dyn Fn(&str) -> Option<ArrayD<f32>>| {
            specs
                .iter()
                .map(|s| {
                    get(&s.name)
                        .map(|a| (s.name.clone(), a))
                        .ok_or_else(|| Error::UnknownParam {
                            name: s.name.clone(),
                            known: model.param_names().into_iter().chain(model.buffer_names()).collect(),
                        })
                })
                .collect::<Result<Vec<_>, Error>>()
        };
        let params = take(&signature.params, &|n| model.param(n))?;
        let buffers = take(&signature.buffers, &|n| model.buffer(n))?;
        let checkpoint = Checkpoint {
            progress: Progress {
                batches_tracked: model.batches_tracked(),
                ..Progress::default()
            },
            signature,
            params,
            buffers,
            optimizer: Vec::new(),
            rng: Vec::new(),
            history: Vec::new(),
            epoch_sums: None,
            distributed: None,
        };
        checkpoint.validate().map_err(Error::Config)?;
        Ok(checkpoint)
    }

    /// Refuses the checkpoint of another model: an error naming the first
    /// difference between this checkpoint's signature and `model`'s.
    pub fn check_compatible(&self, model: &Signature) -> Result<(), Error> {
        match self.signature.difference(model) {
            None => Ok(()),
            Some(d) => Err(Error::Config(format!(
                "the checkpoint does not belong to this model: {d}"
            ))),
        }
    }

    /// Puts the parameters, buffers and step count into `model`, whose parameters
    /// and buffers must have the checkpoint's names and shapes (checked first:
    /// after an error the model is as it was).
    pub fn restore_model(&self, model: &mut dyn Model) -> Result<(), Error> {
        let here = Signature::of(&self.signature.model, model, &self.signature.train);
        self.check_compatible(&here)?;
        let old_params: Vec<_> = self.params.iter().map(|(n, _)| model.param(n)).collect();
        let old_buffers: Vec<_> = self.buffers.iter().map(|(n, _)| model.buffer(n)).collect();
        let set = |model: &mut dyn Model| -> Result<(), Error> {
            for (name, a) in &self.params {
                model.set_param(name, a.view())?;
            }
            for (name, a) in &self.buffers {
                model.set_buffer(name, a.view())?;
            }
            Ok(())
        };
        if let Err(e) = set(model) {
            for ((name, _), old) in self.params.iter().zip(old_params) {
                if let Some(a) = old {
                    let _ = model.set_param(name, a.view());
                }
            }
            for ((name, _), old) in self.buffers.iter().zip(old_buffers) {
                if let Some(a) = old {
                    let _ = model.set_buffer(name, a.view());
                }
            }
            return Err(e);
        }
        model.set_batches_tracked(self.progress.batches_tracked);
        Ok(())
    }

    /// Writes the checkpoint whole or not at all ([`atomic::write`]), after
    /// checking it as [`Checkpoint::load`] would: a checkpoint that saves, loads.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let bytes = self.to_bytes().map_err(|message| Error::Format {
            path: path.display().to_string(),
            message,
        })?;
        atomic::write(path, &bytes)
    }

    /// Reads and checks a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: &Path) -> Result<Checkpoint, Error> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: shown.clone(),
            source: e,
        })?;
        Checkpoint::from_bytes(&bytes, &shown)
    }

    /// The bytes [`Checkpoint::save`] writes; the error says what is inconsistent.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        self.validate()?;
        let mut tensors = Vec::new();
        for (prefix, list) in [(PARAMS, &self.params), (BUFFERS, &self.buffers)] {
            for (name, a) in list {
                tensors.push(Tensor::f32(format!("{prefix}{name}"), a));
            }
        }
        for (name, values) in &self.optimizer {
            tensors.push(Tensor {
                name: format!("{OPTIMIZER}{name}"),
                dtype: Dtype::F32,
                shape: vec![values.len()],
                bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            });
        }
        if let Some(d) = self.distributed.as_ref().filter(|d| !d.rank_buffers.is_empty()) {
            tensors.push(Tensor {
                name: RANK_BUFFERS.into(),
                dtype: Dtype::F32,
                shape: vec![d.rank_buffers.len()],
                bytes: d.rank_buffers.iter().flat_map(|v| v.to_le_bytes()).collect(),
            });
        }
        let meta = Meta {
            version: VERSION,
            signature: self.signature.clone(),
            optimizer: self.optimizer.iter().map(|(n, _)| n.clone()).collect(),
            progress: self.progress,
            rng: self.rng.clone(),
            history: self.history.clone(),
            epoch_sums: self.epoch_sums,
            distributed: self.distributed.as_ref().map(|d| DistributedMeta {
                ranks: d.ranks,
                global_batch: d.global_batch,
            }),
        };
        let json = serde_json::to_string(&meta).map_err(|e| format!("checkpoint metadata: {e}"))?;
        weights::serialize(&tensors, Some(HashMap::from([(METADATA_KEY.to_string(), json)])))
    }

    /// [`Checkpoint::load`] of bytes already read; `source` names them in errors.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Checkpoint, Error> {
        Checkpoint::parse(bytes).map_err(|message| Error::Format {
            path: source.to_string(),
            message,
        })
    }

    fn parse(bytes: &[u8]) -> Result<Checkpoint, String> {
        let file = weights::deserialize(bytes)?;
        let meta = read_meta(bytes)?;
        let expected: HashSet<String> = meta
            .signature
            .params
            .iter()
            .map(|s| format!("{PARAMS}{}", s.name))
            .chain(meta.signature.buffers.iter().map(|s| format!("{BUFFERS}{}", s.name)))
            .chain(meta.optimizer.iter().map(|n| format!("{OPTIMIZER}{n}")))
            .chain(rank_buffers_expected(&meta).then(|| RANK_BUFFERS.to_string()))
            .collect();
        let mut extra: Vec<&str> = file.names().into_iter().filter(|n| !expected.contains(*n)).collect();
        if !extra.is_empty() {
            extra.sort_unstable();
            return Err(format!(
                "holds tensors its metadata does not list: {}",
                extra.iter().map(|n| clip(n)).collect::<Vec<_>>().join(", ")
            ));
        }
        let read = |prefix: &str, specs: &[TensorSpec]| {
            specs
                .iter()
                .map(|s| {
                    weights::read_f32(&file, &format!("{prefix}{}", s.name), &s.shape, "the signature's")
                        .map(|a| (s.name.clone(), a))
                })
                .collect::<Result<Vec<_>, String>>()
        };
        let params = read(PARAMS, &meta.signature.params)?;
        let buffers = read(BUFFERS, &meta.signature.buffers)?;
        let optimizer = meta
            .optimizer
            .iter()
            .map(|name| read_flat(&file, &format!("{OPTIMIZER}{name}")).map(|v| (name.clone(), v)))
            .collect::<Result<Vec<_>, String>>()?;
        let rank_buffers = match rank_buffers_expected(&meta) {
            true => read_flat(&file, RANK_BUFFERS)?,
            false => Vec::new(),
        };
        let checkpoint = Checkpoint {
            signature: meta.signature,
            params,
            buffers,
            optimizer,
            progress: meta.progress,
            rng: meta.rng,
            history: meta.history,
            epoch_sums: meta.epoch_sums,
            distributed: meta.distributed.map(|d| Distributed {
                ranks: d.ranks,
                global_batch: d.global_batch,
                rank_buffers,
            }),
        };
        checkpoint.validate()?;
        Ok(checkpoint)
    }

    /// Everything [`Checkpoint::load`] requires beyond the file's structure: the
    /// tensors match the signature and are finite, names are unique and not
    /// empty, and the history is one finite record per epoch before `progress.epoch`.
    fn validate(&self) -> Result<(), String> {
        let sig = &self.signature;
        for (kind, specs, tensors) in [
            ("parameter", &sig.params, &self.params),
            ("buffer", &sig.buffers, &self.buffers),
        ] {
            if specs.len() != tensors.len() {
                return Err(format!(
                    "the signature lists {} {kind}s, the checkpoint holds {}",
                    specs.len(),
                    tensors.len()
                ));
            }
            for (spec, (name, a)) in specs.iter().zip(tensors) {
                if &spec.name != name || spec.shape != a.shape() {
                    return Err(format!(
                        "{kind} `{}` {:?} does not match the signature's `{}` {:?}",
                        clip(name),
                        a.shape(),
                        clip(&spec.name),
                        spec.shape
                    ));
                }
                if let Some(v) = a.iter().find(|v| !v.is_finite()) {
                    return Err(format!("{kind} `{}` holds a non-finite value ({v})", clip(name)));
                }
            }
        }
        unique("tensor", sig.params.iter().chain(&sig.buffers).map(|s| s.name.as_str()))?;
        unique("optimizer tensor", self.optimizer.iter().map(|(n, _)| n.as_str()))?;
        unique("random stream", self.rng.iter().map(|r| r.name.as_str()))?;
        for (name, values) in &self.optimizer {
            if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(format!(
                    "optimizer tensor `{}` holds a non-finite value ({v}) at index {i}",
                    clip(name)
                ));
            }
        }
        if self.history.len() as u64 != self.progress.epoch {
            return Err(format!(
                "the history holds {} epochs, but the progress is at epoch {} (0-based): \
                 it needs one record per epoch before it",
                self.history.len(),
                self.progress.epoch
            ));
        }
        for (i, r) in self.history.iter().enumerate() {
            let bad = |what: &str| format!("history record {i} (epoch {}): {what}", r.epoch);
            if r.epoch != i as u64 {
                return Err(bad(&format!("expected epoch {i}")));
            }
            if !(r.learning_rate.is_finite() && r.learning_rate >= 0.0) {
                return Err(bad(&format!("learning rate {}", r.learning_rate)));
            }
            if !(r.seconds.is_finite() && r.seconds >= 0.0) {
                return Err(bad(&format!("{} seconds", r.seconds)));
            }
            for (what, v) in [
                ("train loss", Some(r.train_loss)),
                ("validation loss", r.validation_loss),
            ] {
                if let Some(v) = v.filter(|v| !v.is_finite()) {
                    return Err(bad(&format!("{what} {v}")));
                }
            }
            for (what, v) in [
                ("train accuracy", r.train_accuracy),
                ("validation accuracy", r.validation_accuracy),
            ] {
                if let Some(v) = v.filter(|v| !(0.0..=1.0).contains(v)) {
                    return Err(bad(&format!("{what} {v} is not in [0, 1]")));
                }
            }
            if r.validation_accuracy.is_some() && r.validation_loss.is_none() {
                return Err(bad("a validation accuracy without a validation loss"));
            }
        }
        if let Some(sums) = &self.epoch_sums {
            let bad = |what: String| Err(format!("epoch_sums: {what}"));
            if self.progress.step_in_epoch == 0 {
                return bad("present, but progress.step_in_epoch is 0 (an epoch boundary has no running sums)".into());
            }
            if !sums.loss_sum.is_finite() {
                return bad(format!("loss_sum {}", sums.loss_sum));
            }
            if !(sums.seconds.is_finite() && sums.seconds >= 0.0) {
                return bad(format!("{} seconds", sums.seconds));
            }
            if sums.samples == 0 {
                return bad("0 samples, but batches were taken".into());
            }
        }
        if let Some(d) = &self.distributed {
            let per_rank: usize = self.buffers.iter().map(|(_, a)| a.len()).sum();
            if d.ranks == 0 || d.global_batch == 0 {
                return Err(format!(
                    "distributed: {} ranks and a global batch of {}: both must be at least 1",
                    d.ranks, d.global_batch
                ));
            }
            if d.rank_buffers.len() as u64 != d.ranks.saturating_mul(per_rank as u64) {
                return Err(format!(
                    "`{RANK_BUFFERS}` holds {} values; {} ranks of {per_rank} buffer values hold {}",
                    d.rank_buffers.len(),
                    d.ranks,
                    d.ranks.saturating_mul(per_rank as u64)
                ));
            }
        }
        Ok(())
    }
}

/// The checkpoint JSON in the header's `__metadata__`, its version checked first.
fn read_meta(bytes: &[u8]) -> Result<Meta, String> {
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| format!("not a valid safetensors file: {e}"))?;
    let json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or_else(|| {
            format!(
                "not a checkpoint: the header's __metadata__ has no `{METADATA_KEY}` entry \
                 (a weight file loads with load_safetensors)"
            )
        })?;
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("checkpoint metadata is not JSON: {e}"))?;
    match value.get("version").map(|v| v.as_u64()) {
        Some(Some(v)) if v == VERSION as u64 => {}
        Some(Some(v)) => {
            return Err(format!(
                "checkpoint format version {v}; this cnnc reads version {VERSION}"
            ))
        }
        Some(None) => return Err("checkpoint metadata: `version` is not a whole number".into()),
        None => return Err("checkpoint metadata: missing field `version`".into()),
    }
    // From the text again, not from `value`, so that a field given twice is an error
    // (a map keeps the last); the error names the field:
    // `progress.epoch: invalid type: string "x", expected u64 at line 1 column 9`.
    let mut text = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut text).map_err(|e| format!("checkpoint metadata: {e}"))
}

/// Whether a checkpoint with this metadata holds every rank's buffers: a
/// distributed one, of a model with buffers.
fn rank_buffers_expected(meta: &Meta) -> bool {
    meta.distributed.is_some()
        && meta
            .signature
            .buffers
            .iter()
            .any(|b| b.shape.iter().product::<usize>() > 0)
}

/// An `optimizer/` tensor (or `distributed/buffers`): f32, one axis, finite.
fn read_flat(file: &SafeTensors<'_>, key: &str) -> Result<Vec<f32>, String> {
    let t = file
        .tensor(key)
        .map_err(|_| format!("tensor `{}` is missing", clip(key)))?;
    if t.dtype() != Dtype::F32 {
        return Err(format!("tensor `{}` is {:?}, expected F32", clip(key), t.dtype()));
    }
    if t.shape().len() != 1 {
        return Err(format!(
            "tensor `{}` has shape {:?}, expected one axis",
            clip(key),
            t.shape()
        ));
    }
    let values: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(format!(
            "tensor `{}` holds a non-finite value ({v}) at index {i}",
            clip(key)
        ));
    }
    Ok(values)
}

/// An error naming the first name that is empty or appears twice.
fn unique<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = HashSet::new();
    for n in names {
        if n.is_empty() {
            return Err(format!("a {what} has an empty name"));
        }
        if !seen.insert(n) {
            return Err(format!("{what} `{}` appears twice", clip(n)));
        }
    }
    Ok(())
}
