//! Checkpoints of a run: what they record ([`checkpoint_at`]), the signature that
//! ties them to one model, train configuration and data set, and the checks that
//! put one back ([`resume`]), refusing another run's with the first difference.

use super::config::{FitConfig, FitOptions};
use super::state::{Position, Prepared, Sums};
use crate::rt::checkpoint::{Checkpoint, EpochRecord, EpochSums, Progress, RngState, Signature};
use crate::rt::data::{Dataset, Targets};
use crate::rt::report::EpochReport;
use crate::rt::{Error, FlatTrain, Train};
use std::path::Path;

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
        positions: at.sums.positions as u64,
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
            if let Some(w) = o.train.warmup {
                fields.push(format!("warmup {w:?}"));
            }
            if let Some(p) = o.train.early_stop {
                fields.push(format!("early_stop {p}"));
            }
            if let Some(l) = o.train.ignore {
                fields.push(format!("ignore {l}"));
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
        Targets::LabelMaps(m) => m.iter().for_each(|&v| eat(v as u64)),
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
                positions: s.positions as usize,
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
