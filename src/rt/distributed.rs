//! Data-parallel training over MPI (feature `mpi`): Horovod's design, one
//! all-reduce of the gradients per step.
//!
//! Every rank (one process each, started by `mpirun`) builds the same model from
//! the same seed and holds the same data set. Each epoch every rank draws the same
//! shuffled order (`fit`'s: `shuffled(n, seed + epoch + 1)`) and cuts it into the
//! same global batches of `config.batch` samples; rank `r` of `size` takes the
//! `r`-th contiguous share of each batch (`config.batch / size` samples), computes
//! its gradient with [`FlatTrain::local_gradients`], and the ranks sum the
//! gradients, each weighted by its share of the batch, with one all-reduce of
//! [`FlatTrain::flat_gradients`]. Every rank then applies the same update
//! ([`FlatTrain::apply_update`]), so the replicas stay identical, and the result
//! equals one process training with the global batch (up to float summation
//! order; batchnorm excepted, below).
//!
//! * Faults: each step the ranks also all-reduce a few numbers (loss, correct
//!   count, one failure flag per rank). A rank whose step failed (bad data, a
//!   non-finite loss or gradient, checked before the gradients are summed, so a
//!   NaN never reaches the other replicas) raises its flag; then the lowest failing rank broadcasts its
//!   message and every rank returns the same [`Error::Config`], naming that rank.
//!   No rank waits in a collective the others never reach, so a fault never hangs.
//!   A rank that crashes outright is ended by `mpirun`, which ends the others.
//! * Batchnorm: each rank normalizes with the statistics of its own share of the
//!   batch (as Horovod and PyTorch's DDP do without SyncBatchNorm); the running
//!   statistics ([`FlatTrain::flat_buffers`]) are averaged over the ranks at the
//!   end of every epoch, so the replicas evaluate alike.
//! * Dropout masks are drawn per (seed, step, layer, sample index in the local
//!   batch), so they differ from a single process's.
//! * Only rank 0 prints (when `config.verbose`) and writes checkpoints (when
//!   `FitOptions::checkpoint` names a path).
//! * Checkpoints and resuming: [`fit_distributed`] takes `fit_resumable`'s
//!   [`FitOptions`] and writes, through `fit`'s own code, the same checkpoint plus
//!   the rank count, the global batch and every rank's buffers
//!   ([`Distributed`]); a rank lost mid-run costs the steps since the last one.
//!
//! ```text
//! cnn_macros::cnn!(file = "examples/models/lenet.cnn");
//! use cnnc::rt::distributed::{evaluate_distributed, fit_distributed, mpi};
//! use cnnc::rt::fit::FitOptions;
//!
//! let universe = mpi::initialize().expect("MPI initialized once");
//! let world = universe.world();
//! let mut model = LeNet::new(LeNet::FIT.seed);
//! let options = FitOptions::default().checkpoint("lenet.ckpt").every(50); // .resume("lenet.ckpt")
//! let run = fit_distributed(&mut model, &train, &LeNet::FIT, &options, &world)?;
//! let test = evaluate_distributed(&mut model, &test, LeNet::FIT.loss, LeNet::BATCH, &world)?;
//! ```
//!
//! examples/mnist_mpi.rs is the whole program; docs/distributed.md the set-up,
//! measurements and scaling model.

/// The `mpi` crate (rsmpi), so that users need no dependency line of their own.
pub use mpi;

use super::checkpoint::{Checkpoint, Distributed, Signature};
use super::data::{shuffled, Dataset};
use super::fit::{
    check_options, checkpoint_at, evaluate, prepare, restore, resume, run_signature, snapshot, Evaluation, FitConfig,
    FitOptions, FitReport, Position, Prepared,
};
use super::{Error, FlatTrain, Model};
use crate::ir::Loss;
use mpi::collective::SystemOperation;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};
use ndarray::ArrayD;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// What [`fit_distributed`] returns: `fit`'s report (the same on every rank) and
/// this rank's timing.
#[derive(Debug, Clone, PartialEq)]
pub struct DistributedReport {
    pub fit: FitReport,
    /// Training steps taken (global batches).
    pub steps: u64,
    /// This rank's seconds in `local_gradients` and `apply_update`.
    pub compute_seconds: f64,
    /// This rank's seconds in the gradient all-reduce (including waiting for the
    /// slowest rank).
    pub allreduce_seconds: f64,
    /// This rank's seconds in the per-step agreement all-reduce (loss, failure flags).
    pub agreement_seconds: f64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// This rank's seconds in them: gathering the buffers, rank 0's write (the
    /// others wait for it), the agreement on its outcome.
    pub checkpoint_seconds: f64,
}

/// The samples of global batch `lo..hi` that rank `rank` of `size` trains on: the
/// `rank`-th of `size` contiguous shares, as equal as possible (the first
/// `(hi - lo) % size` ranks take one more).
pub fn shard(lo: usize, hi: usize, rank: usize, size: usize) -> (usize, usize) {
    let size = size.max(1);
    let n = hi.saturating_sub(lo);
    let (per, extra) = (n / size, n % size);
    let start = lo + rank * per + rank.min(extra);
    let len = per + usize::from(rank < extra);
    (start.min(hi), (start + len).min(hi))
}

/// Each rank's share of a global batch of `batch`: the rank count must divide it.
pub fn local_batch(batch: usize, size: usize) -> Result<usize, Error> {
    if size == 0 || batch == 0 || !batch.is_multiple_of(size) {
        return Err(Error::Config(format!(
            "a global batch of {batch} cannot be split evenly over {size} ranks: the rank count must divide \
             the batch (each rank trains on batch / ranks samples per step); run with a rank count that \
             divides {batch} or change the batch"
        )));
    }
    Ok(batch / size)
}

/// The per-step agreement: a few numbers summed over the ranks in one small
/// all-reduce, with one failure flag per rank. Its buffers are allocated once.
struct Agreement {
    rank: usize,
    size: usize,
    send: Vec<f64>,
    sum: Vec<f64>,
}

/// Numbers summed over the ranks besides the flags.
const SUMS: usize = 4;

impl Agreement {
    fn new<C: Communicator>(comm: &C) -> Self {
        let (rank, size) = (comm.rank() as usize, comm.size() as usize);
        Agreement {
            rank,
            size,
            send: vec![0.0; SUMS + size],
            sum: vec![0.0; SUMS + size],
        }
    }

    /// Sums `values` over the ranks, or, when any rank's `failure` is `Some`,
    /// returns on every rank the lowest failing rank's message.
    fn agree<C: Communicator>(
        &mut self,
        comm: &C,
        values: [f64; SUMS],
        failure: Option<String>,
    ) -> Result<[f64; SUMS], Error> {
        self.send.fill(0.0);
        self.send[..SUMS].copy_from_slice(&values);
        if failure.is_some() {
            self.send[SUMS + self.rank] = 1.0;
        }
        comm.all_reduce_into(&self.send[..], &mut self.sum[..], SystemOperation::sum());
        let Some(failed) = self.sum[SUMS..].iter().position(|&f| f > 0.0) else {
            let mut out = [0.0; SUMS];
            out.copy_from_slice(&self.sum[..SUMS]);
            return Ok(out);
        };
        // The failing rank's message, to every rank: its length, then its bytes.
        let root = comm.process_at_rank(failed as i32);
        let mut bytes = failure.map(String::into_bytes).unwrap_or_default();
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        root.broadcast_into(&mut bytes[..]);
        let message = String::from_utf8_lossy(&bytes);
        Err(Error::Config(format!("rank {failed} of {}: {message}", self.size)))
    }

    /// `local` (this rank's outcome of something every rank did) when it
    /// succeeded on every rank; otherwise the lowest failing rank's error, the
    /// same on every rank.
    fn settle<T, C: Communicator>(&mut self, comm: &C, local: Result<T, Error>) -> Result<T, Error> {
        let (value, failure) = match local {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e.to_string())),
        };
        self.agree(comm, [0.0; SUMS], failure)?;
        value.ok_or_else(|| Error::Config("a failed rank's outcome was taken for a success".into()))
    }
}

/// Trains `model` on `data` over the ranks of `comm`, as `fit` trains on one
/// process: the same epochs, shuffles, validation split, schedule and reports,
/// with each global batch of `config.batch` split over the ranks. Every rank must
/// call it with the same model (built from the same seed), data, configuration
/// and options.
///
/// Before the first step, every rank checks its data (shapes, finite values,
/// labels below the number of classes, the target kind the loss needs), the
/// ranks compare their sample counts, and the rank count must divide the batch;
/// any of these failing on any rank is the same error on every rank. A step that
/// fails on any rank (an error from `local_gradients`, a non-finite loss) stops
/// every rank with the same error, and puts the parameters back as they were at
/// the start of that epoch.
///
/// `options` are [`fit_resumable`](super::fit::fit_resumable)'s: a checkpoint at
/// the end of every epoch and every `every` steps, written by rank 0 alone (the
/// replicas are identical) after the step's all-reduces, atomically; it holds what
/// `fit_resumable`'s holds plus the rank count, the global batch and every rank's
/// batchnorm running statistics ([`Distributed`]). A failed write is the same
/// error on every rank. `resume`: rank 0 reads the checkpoint and broadcasts it,
/// so it needs to be on rank 0's machine only; on the same number of ranks the run
/// ends with the same parameters, bit for bit, as a run never interrupted. On
/// another number of ranks (one that divides the global batch, which the
/// checkpoint's fingerprint fixes) it goes on as well, equal to the uninterrupted
/// run up to float rounding (docs/distributed.md). The stop flag is summed over
/// the ranks in the step's agreement, so a flag set on any rank stops every rank
/// at the same step; `stop_after` counts steps as in `fit_resumable`.
pub fn fit_distributed<M, C>(
    model: &mut M,
    data: &Dataset,
    config: &FitConfig,
    options: &FitOptions<'_>,
    comm: &C,
) -> Result<DistributedReport, Error>
where
    M: FlatTrain,
    C: Communicator,
{
    let mut agreement = Agreement::new(comm);
    // Everything that can be known before training, agreed on by every rank.
    let local = local_batch(config.batch, comm.size() as usize)
        .and_then(|_| check_options(options))
        .and_then(|_| prepare(model, data, config));
    let prepared = agreement.settle(comm, local)?;
    compare_ranks(model, data, config, comm)?;
    let signature = run_signature(model, config, data, options);
    let at = match &options.resume {
        Some(path) => resume_ranks(model, config, &prepared, &signature, path, comm, &mut agreement)?,
        None => Position::start(),
    };
    let saved = snapshot(model).map_err(|param| {
        Error::Config(format!(
            "parameter `{param}` is not finite before training; load or initialize finite weights"
        ))
    });
    let saved = agreement.settle(comm, saved)?;
    check_replicas(
        model,
        comm,
        "the ranks' parameters differ before training: build the model from the same seed (or load the same \
         weights) on every rank",
    )?;
    let buffers = model.flat_buffers().len();
    let mut run = Run {
        rank: comm.rank() as usize,
        size: comm.size() as usize,
        out_len: model.output_shape().iter().product(),
        // The receiving halves of the all-reduces. rsmpi has no MPI_IN_PLACE (Open
        // MPI's is a pointer macro bindgen cannot see), so the sums land here, once
        // allocated, and are copied back: no allocation per step.
        grad_sum: vec![0.0f32; model.flat_gradients().len()],
        buffer_sum: vec![0.0f32; buffers],
        rank_buffers: vec![
            0.0f32;
            if options.checkpoint.is_some() {
                buffers * comm.size() as usize
            } else {
                0
            }
        ],
        model,
        comm,
        config,
        options,
        prepared,
        signature,
        agreement,
        saved,
        report: DistributedReport {
            fit: FitReport::default(),
            steps: 0,
            compute_seconds: 0.0,
            allreduce_seconds: 0.0,
            agreement_seconds: 0.0,
            checkpoints: 0,
            checkpoint_seconds: 0.0,
        },
    };
    let mut at = at;
    while at.epoch < config.epochs {
        run.epoch(&mut at)?;
    }
    run.report.fit.history = at.history;
    Ok(run.report)
}

/// Compares what every rank must share (sample count, batch, epochs, seed,
/// parameter and buffer counts) with one all-gather: a rank with another data
/// set, configuration or model would wait in a collective the others never reach.
fn compare_ranks<M: FlatTrain, C: Communicator>(
    model: &mut M,
    data: &Dataset,
    config: &FitConfig,
    comm: &C,
) -> Result<(), Error> {
    let size = comm.size() as usize;
    let mine = [
        data.len() as u64,
        config.batch as u64,
        config.epochs as u64,
        config.seed,
        model.flat_gradients().len() as u64,
        model.flat_buffers().len() as u64,
    ];
    let mut all = vec![0u64; size * mine.len()];
    comm.all_gather_into(&mine[..], &mut all[..]);
    let what = [
        "sample count",
        "batch",
        "epochs",
        "seed",
        "parameter count",
        "buffer count",
    ];
    for (r, theirs) in all.chunks_exact(mine.len()).enumerate() {
        if let Some(i) = (0..mine.len()).find(|&i| theirs[i] != all[i]) {
            return Err(Error::Config(format!(
                "rank {r} of {size} has {} {} where rank 0 has {}: every rank must run the same model, \
                 configuration and training set",
                what[i], theirs[i], all[i]
            )));
        }
    }
    Ok(())
}

/// Reads the checkpoint at `path` on rank 0, broadcasts its bytes, and puts it
/// into `model` on every rank (each its own row of the ranks' buffers when the
/// rank count is the checkpoint's); the same error on every rank when any fails.
fn resume_ranks<M: FlatTrain, C: Communicator>(
    model: &mut M,
    config: &FitConfig,
    prepared: &Prepared,
    signature: &Signature,
    path: &Path,
    comm: &C,
    agreement: &mut Agreement,
) -> Result<Position, Error> {
    let (rank, size) = (comm.rank() as usize, comm.size() as usize);
    let start = Instant::now();
    let read = match rank {
        0 => std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        }),
        _ => Ok(Vec::new()),
    };
    let mut bytes = agreement.settle(comm, read)?;
    let root = comm.process_at_rank(0);
    let mut len = bytes.len() as u64;
    root.broadcast_into(&mut len);
    bytes.resize(len as usize, 0);
    root.broadcast_into(&mut bytes[..]);
    let local = Checkpoint::from_bytes(&bytes, &path.display().to_string()).and_then(|checkpoint| {
        let at = resume(model, &checkpoint, signature, config, prepared, path)?;
        Ok((at, checkpoint.distributed))
    });
    let (at, written_by) = agreement.settle(comm, local)?;
    let ranks = written_by.as_ref().map_or(1, |d| d.ranks as usize);
    // On another rank count every rank starts from the mean, in `buffers/`.
    if let Some(d) = written_by.filter(|_| ranks == size) {
        let buffers = model.flat_buffers();
        let n = buffers.len();
        if let Some(row) = d.rank_buffers.get(rank * n..(rank + 1) * n).filter(|_| n > 0) {
            buffers.copy_from_slice(row);
        }
    }
    if config.verbose && rank == 0 {
        println!(
            "resuming from {} ({} bytes, read by rank 0, broadcast, checked and restored in {:.3}s): epoch {}, \
             batch {} of {}",
            path.display(),
            bytes.len(),
            start.elapsed().as_secs_f64(),
            at.epoch + 1,
            at.step + 1,
            prepared.batches
        );
        if ranks != size {
            println!(
                "the checkpoint was written by {ranks} rank(s), this run has {size}: the same global batch of {} \
                 split another way, so the result equals an uninterrupted run up to float rounding, not bit \
                 for bit",
                config.batch
            );
        }
    }
    Ok(at)
}

/// One rank's training run: the model and what each step and checkpoint uses.
struct Run<'r, M, C> {
    model: &'r mut M,
    comm: &'r C,
    config: &'r FitConfig,
    options: &'r FitOptions<'r>,
    prepared: Prepared,
    signature: Signature,
    agreement: Agreement,
    rank: usize,
    size: usize,
    /// The product of the output's shape (binary cross-entropy counts elements).
    out_len: usize,
    grad_sum: Vec<f32>,
    buffer_sum: Vec<f32>,
    /// Every rank's buffers, gathered for a checkpoint.
    rank_buffers: Vec<f32>,
    /// The parameters at the start of the epoch, restored if it diverges.
    saved: Vec<(String, ArrayD<f32>)>,
    report: DistributedReport,
}

impl<M: FlatTrain, C: Communicator> Run<'_, M, C> {
    /// The rest of epoch `at.epoch` from batch `at.step`, then its end: buffers
    /// averaged, replicas compared, validation, report, checkpoint.
    fn epoch(&mut self, at: &mut Position) -> Result<(), Error> {
        let (epoch, batches, batch) = (at.epoch, self.prepared.batches, self.prepared.batch);
        let start = Instant::now();
        let carried = at.sums.seconds;
        // The schedule spans the epochs this run trains (a caller may change them).
        self.model.set_epochs(self.config.epochs);
        self.model.set_epoch(epoch);
        let lr = self.model.learning_rate(epoch);
        let order = shuffled(
            self.prepared.train.len(),
            self.config.seed.wrapping_add(epoch as u64 + 1),
        );
        let epoch_data = self.prepared.train.select(&order);
        for b in at.step..batches {
            let taken = (epoch * batches + b) as u64;
            let stop_after = self.options.stop_after.is_some_and(|s| taken >= s);
            let stopped = stop_after || !self.step(&epoch_data, at, b)?;
            if stopped {
                at.step = b;
                at.sums.seconds = carried + start.elapsed().as_secs_f64();
                let checkpoint = self.save(at)?;
                return Err(Error::Interrupted {
                    epoch,
                    batch: b,
                    checkpoint,
                });
            }
            at.step = b + 1;
            if self.options.every.is_some_and(|n| (taken + 1).is_multiple_of(n as u64)) && b + 1 < batches {
                at.sums.seconds = carried + start.elapsed().as_secs_f64();
                self.save(at)?;
            }
        }
        average_buffers(self.model, self.comm, &mut self.buffer_sum);
        // Every loss was finite; the last update may still have overflowed. The
        // replicas are identical, so every rank finds the same.
        self.saved = match snapshot(self.model) {
            Ok(params) => params,
            Err(param) => {
                restore(self.model, &self.saved)?;
                return Err(Error::DivergedParams { epoch, param });
            }
        };
        check_replicas(
            self.model,
            self.comm,
            "the ranks' parameters differ after an epoch although every rank applied the same averaged \
             gradient; the MPI library's all-reduce gave the ranks different sums",
        )?;
        let validation = match &self.prepared.validation {
            Some(v) => Some(evaluate_distributed(self.model, v, self.config.loss, batch, self.comm)?),
            None => None,
        };
        let seconds = carried + start.elapsed().as_secs_f64();
        let report = at.close_epoch(&self.prepared, self.config, self.out_len, lr, validation, seconds);
        if self.config.verbose && self.rank == 0 {
            println!("{}  ({} ranks)", report.line(self.config.epochs), self.size);
        }
        self.save(at)?;
        Ok(())
    }

    /// Step `b` of the epoch whose shuffled samples are `data`: this rank's
    /// gradient, the agreement, the all-reduce and the update. Returns `false`,
    /// having changed nothing, when a rank's stop flag was set.
    fn step(&mut self, data: &Dataset, at: &mut Position, b: usize) -> Result<bool, Error> {
        let batch = self.prepared.batch;
        let (lo, hi) = (b * batch, ((b + 1) * batch).min(self.prepared.train.len()));
        let (a, z) = shard(lo, hi, self.rank, self.size);
        let t0 = Instant::now();
        let (mut values, failure) = match self.local_step(data, a, z, at.epoch, b) {
            Ok(v) => (v, None),
            Err(message) => ([0.0; SUMS], Some(message)),
        };
        values[3] = f64::from(u8::from(self.options.stop.is_some_and(|s| s.load(Ordering::SeqCst))));
        let t1 = Instant::now();
        self.report.compute_seconds += (t1 - t0).as_secs_f64();
        let agreed = self.agreement.agree(self.comm, values, failure);
        let t2 = Instant::now();
        self.report.agreement_seconds += (t2 - t1).as_secs_f64();
        let values = match agreed {
            Ok(v) => v,
            Err(e) => {
                restore(self.model, &self.saved)?;
                return Err(e);
            }
        };
        if values[3] > 0.0 {
            // `local_gradients` changed only the gradient buffer: the step is dropped.
            return Ok(false);
        }
        at.sums.loss += values[0];
        at.sums.correct += values[1] as usize;
        at.sums.counted &= values[2] == 0.0;
        at.sums.samples += hi - lo;

        // The mean gradient of the global batch: each rank's mean, weighted by its share.
        let weight = (z - a) as f32 / (hi - lo) as f32;
        let grads = self.model.flat_gradients();
        if weight != 1.0 {
            grads.iter_mut().for_each(|g| *g *= weight);
        }
        self.comm
            .all_reduce_into(&grads[..], &mut self.grad_sum[..], SystemOperation::sum());
        grads.copy_from_slice(&self.grad_sum);
        let t3 = Instant::now();
        self.report.allreduce_seconds += (t3 - t2).as_secs_f64();
        // The same update on every rank: the replicas stay identical.
        self.model.apply_update()?;
        self.report.compute_seconds += t3.elapsed().as_secs_f64();
        self.report.steps += 1;
        Ok(true)
    }

    /// This rank's gradient of samples `a..z` of `data` (none: zeros), checked
    /// finite; the numbers the ranks sum: `[loss · samples, correct, uncounted, 0]`.
    fn local_step(
        &mut self,
        data: &Dataset,
        a: usize,
        z: usize,
        epoch: usize,
        b: usize,
    ) -> Result<[f64; SUMS], String> {
        if a == z {
            // A short last batch leaves this rank nothing: it adds zeros.
            self.model.flat_gradients().fill(0.0);
            return Ok([0.0; SUMS]);
        }
        let (x, t) = data.batch(a, z);
        match self.model.local_gradients(x, t) {
            // A non-finite gradient would poison every replica through the sum:
            // caught here, on the rank it comes from (one pass, no allocation).
            Ok(loss) if loss.is_finite() && self.model.flat_gradients().iter().all(|g| g.is_finite()) => {
                let right = self.model.last_correct();
                Ok([
                    loss as f64 * (z - a) as f64,
                    right.unwrap_or(0) as f64,
                    f64::from(u8::from(right.is_none())),
                    0.0,
                ])
            }
            Ok(loss) if loss.is_finite() => Err(format!(
                "the gradient became non-finite in epoch {}, batch {} (the loss was {loss}); \
                 lower the learning rate (lr)",
                epoch + 1,
                b + 1
            )),
            Ok(loss) => Err(Error::Diverged { epoch, batch: b, loss }.to_string()),
            Err(e) => Err(format!(
                "epoch {}, batch {}, samples {a}..{z} of the epoch's order: {e}",
                epoch + 1,
                b + 1
            )),
        }
    }

    /// Writes a checkpoint at `at` when the options name a path: every rank's
    /// buffers are gathered, rank 0 writes (atomically), and the ranks agree on
    /// the outcome, so a failed write is the same error on every rank. Returns the
    /// path written.
    fn save(&mut self, at: &Position) -> Result<Option<String>, Error> {
        let Some(path) = self.options.checkpoint.as_deref() else {
            return Ok(None);
        };
        let start = Instant::now();
        let buffers = self.model.flat_buffers();
        if !buffers.is_empty() {
            self.comm.all_gather_into(&buffers[..], &mut self.rank_buffers[..]);
        }
        let written = match self.rank {
            0 => self.write(at, path),
            _ => Ok(()),
        };
        self.agreement.settle(self.comm, written)?;
        self.report.checkpoints += 1;
        self.report.checkpoint_seconds += start.elapsed().as_secs_f64();
        Ok(Some(path.display().to_string()))
    }

    /// Rank 0's part of [`Run::save`]: `fit`'s checkpoint plus [`Distributed`],
    /// with the mean of the ranks' buffers as its `buffers/`.
    fn write(&mut self, at: &Position, path: &Path) -> Result<(), Error> {
        let mut c = checkpoint_at(self.model, &self.signature, self.config.seed, at)?;
        let per_rank = self.rank_buffers.len() / self.size;
        if per_rank > 0 {
            let scale = 1.0 / self.size as f32;
            let mut mean =
                (0..per_rank).map(|i| (0..self.size).map(|r| self.rank_buffers[r * per_rank + i]).sum::<f32>() * scale);
            for (_, a) in &mut c.buffers {
                a.iter_mut().for_each(|v| *v = mean.next().unwrap_or(*v));
            }
        }
        c.distributed = Some(Distributed {
            ranks: self.size as u64,
            global_batch: self.config.batch as u64,
            rank_buffers: self.rank_buffers.clone(),
        });
        c.save(path)
    }
}

/// Averages the buffers (batchnorm running statistics) over the ranks, through
/// `scratch` (as long as the buffers).
fn average_buffers<M: FlatTrain + ?Sized, C: Communicator>(model: &mut M, comm: &C, scratch: &mut [f32]) {
    let buffers = model.flat_buffers();
    if buffers.is_empty() {
        return;
    }
    comm.all_reduce_into(&buffers[..], scratch, SystemOperation::sum());
    let scale = 1.0 / comm.size() as f32;
    for (b, s) in buffers.iter_mut().zip(scratch.iter()) {
        *b = s * scale;
    }
}

/// A fingerprint (FNV-1a) of the parameters' bits: equal on every rank, or the
/// replicas differ and `message` is the error on every rank. (FNV-1a in four
/// lines rather than a hashing crate: equality is all that is asked of it.)
fn check_replicas<M: Model + ?Sized, C: Communicator>(model: &M, comm: &C, message: &str) -> Result<(), Error> {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for name in model.param_names() {
        if let Some(value) = model.param(&name) {
            for v in value.iter() {
                hash = (hash ^ u64::from(v.to_bits())).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let (mut low, mut high) = (0u64, 0u64);
    comm.all_reduce_into(&hash, &mut low, SystemOperation::min());
    comm.all_reduce_into(&hash, &mut high, SystemOperation::max());
    if low != high {
        return Err(Error::Config(message.to_string()));
    }
    Ok(())
}

/// The loss and accuracy of `model` on `data`, each rank evaluating its
/// contiguous share of the samples, summed over the ranks: the same result on
/// every rank, equal to `fit::evaluate` on one process up to float rounding.
/// An error on any rank (a bad sample in its share) is the same error on every rank.
pub fn evaluate_distributed<M, C>(
    model: &mut M,
    data: &Dataset,
    loss: Loss,
    batch: usize,
    comm: &C,
) -> Result<Evaluation, Error>
where
    M: Model + ?Sized,
    C: Communicator,
{
    if let crate::rt::data::Targets::LabelMaps(_) = data.targets {
        return Err(Error::Config(
            "evaluate_distributed does not combine segmentation metrics (mean IoU) across ranks yet; \
             evaluate label maps with `evaluate` on one rank"
                .into(),
        ));
    }
    let (rank, size) = (comm.rank() as usize, comm.size() as usize);
    let mut agreement = Agreement::new(comm);
    let (a, z) = shard(0, data.len(), rank, size);
    let (values, failure) = if a < z {
        let share: Vec<usize> = (a..z).collect();
        match evaluate(model, &data.select(&share), loss, batch) {
            Ok(e) => {
                let n = (z - a) as f64;
                ([e.loss * n, e.accuracy.unwrap_or(0.0) * n, n, 0.0], None)
            }
            Err(e) => (
                [0.0; SUMS],
                Some(format!("samples {a}..{z} of the evaluation set: {e}")),
            ),
        }
    } else {
        ([0.0; SUMS], None)
    };
    let [loss_sum, right, n, _] = agreement.agree(comm, values, failure)?;
    if n == 0.0 {
        return Err(Error::Target("the evaluation set is empty".into()));
    }
    let accuracy = match loss {
        Loss::CrossEntropy | Loss::BinaryCrossEntropy => Some(right / n),
        Loss::Mse => None,
    };
    Ok(Evaluation {
        loss: loss_sum / n,
        accuracy,
        mean_iou: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_a_batch_in_order() {
        for n in 0..20 {
            for size in 1..6 {
                let mut next = 10;
                for rank in 0..size {
                    let (a, z) = shard(10, 10 + n, rank, size);
                    assert_eq!(a, next, "n {n} size {size} rank {rank}");
                    assert!(z - a <= n.div_ceil(size) && z - a >= n / size);
                    next = z;
                }
                assert_eq!(next, 10 + n);
            }
        }
        assert_eq!(shard(0, 64, 1, 2), (32, 64));
    }

    #[test]
    fn the_rank_count_must_divide_the_batch() {
        assert_eq!(local_batch(64, 2).unwrap(), 32);
        let e = local_batch(64, 3).unwrap_err().to_string();
        assert!(e.contains("64") && e.contains("3 ranks"), "{e}");
        assert!(local_batch(0, 1).is_err());
    }
}
