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
//! * Only rank 0 prints (when `config.verbose`); nothing here writes files.
//!
//! ```text
//! cnn_macros::cnn!(file = "examples/models/lenet.cnn");
//! use cnnc::rt::distributed::{evaluate_distributed, fit_distributed, mpi};
//!
//! let universe = mpi::initialize().expect("MPI initialized once");
//! let world = universe.world();
//! let mut model = LeNet::new(LeNet::FIT.seed);
//! let run = fit_distributed(&mut model, &train, &LeNet::FIT, &world)?;
//! let test = evaluate_distributed(&mut model, &test, LeNet::FIT.loss, LeNet::BATCH, &world)?;
//! ```
//!
//! examples/mnist_mpi.rs is the whole program; docs/distributed.md the set-up,
//! measurements and scaling model.

/// The `mpi` crate (rsmpi), so that users need no dependency line of their own.
pub use mpi;

use super::data::{shuffled, Dataset, Targets};
use super::fit::{evaluate, restore, snapshot, EpochReport, Evaluation, FitConfig, FitReport};
use super::{Error, FlatTrain, Model};
use crate::ir::Loss;
use mpi::collective::SystemOperation;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};
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
const SUMS: usize = 3;

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
}

/// Trains `model` on `data` over the ranks of `comm`, as `fit` trains on one
/// process: the same epochs, shuffles, validation split, schedule and reports,
/// with each global batch of `config.batch` split over the ranks. Every rank must
/// call it with the same model (built from the same seed), data and configuration.
///
/// Before the first step, every rank checks its data (shapes, finite values,
/// labels below the number of classes, the target kind the loss needs), the
/// ranks compare their sample counts, and the rank count must divide the batch;
/// any of these failing on any rank is the same error on every rank. A step that
/// fails on any rank (an error from `local_gradients`, a non-finite loss) stops
/// every rank with the same error, and puts the parameters back as they were at
/// the start of that epoch.
pub fn fit_distributed<M, C>(
    model: &mut M,
    data: &Dataset,
    config: &FitConfig,
    comm: &C,
) -> Result<DistributedReport, Error>
where
    M: FlatTrain + ?Sized,
    C: Communicator,
{
    let (rank, size) = (comm.rank() as usize, comm.size() as usize);
    let verbose = config.verbose && rank == 0;
    let mut agreement = Agreement::new(comm);

    // Everything that can be known before training, agreed on by every rank.
    let local = local_batch(config.batch, size)
        .and_then(|_| super::fit::check_data(model, data, config.loss, "training set"))
        .and_then(|_| {
            snapshot(model).map_err(|param| {
                Error::Config(format!(
                    "parameter `{param}` is not finite before training; load or initialize finite weights"
                ))
            })
        });
    let (saved, failure) = match local {
        Ok(saved) => (saved, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    agreement.agree(comm, [0.0; SUMS], failure)?;
    let mut saved = saved;
    // A rank with another data set, configuration or model would wait in a
    // collective the others never reach: compare them first.
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
    for (r, theirs) in all.chunks_exact(mine.len()).enumerate() {
        let what = [
            "sample count",
            "batch",
            "epochs",
            "seed",
            "parameter count",
            "buffer count",
        ];
        if let Some(i) = (0..mine.len()).find(|&i| theirs[i] != all[i]) {
            return Err(Error::Config(format!(
                "rank {r} of {size} has {} {} where rank 0 has {}: every rank must run the same model, \
                 configuration and training set",
                what[i], theirs[i], all[i]
            )));
        }
    }
    check_replicas(
        model,
        comm,
        "the ranks' parameters differ before training: build the model from the same seed (or load the same \
         weights) on every rank",
    )?;

    let (train, validation) = super::fit::validation_split(data, config)?;
    let batch = config.batch;
    let batches = train.len().div_ceil(batch);
    let classifier = config.loss == Loss::CrossEntropy && matches!(train.targets, Targets::Labels(_));
    // The receiving halves of the all-reduces. rsmpi has no MPI_IN_PLACE (Open
    // MPI's is a pointer macro bindgen cannot see), so the sums land here, once
    // allocated, and are copied back: no allocation per step.
    let mut grad_sum = vec![0.0f32; model.flat_gradients().len()];
    let mut buffer_sum = vec![0.0f32; model.flat_buffers().len()];
    let mut report = DistributedReport {
        fit: FitReport::default(),
        steps: 0,
        compute_seconds: 0.0,
        allreduce_seconds: 0.0,
        agreement_seconds: 0.0,
    };

    model.set_epochs(config.epochs);
    for epoch in 0..config.epochs {
        let start = Instant::now();
        model.set_epoch(epoch);
        let lr = model.learning_rate(epoch);
        let order = shuffled(train.len(), config.seed.wrapping_add(epoch as u64 + 1));
        let epoch_data = train.select(&order);
        let (mut loss_sum, mut correct, mut uncounted) = (0.0f64, 0.0f64, 0.0f64);
        for b in 0..batches {
            let (lo, hi) = (b * batch, ((b + 1) * batch).min(train.len()));
            let (a, z) = shard(lo, hi, rank, size);
            let t0 = Instant::now();
            let step = if a < z {
                let (x, t) = epoch_data.batch(a, z);
                match model.local_gradients(x, t) {
                    // A non-finite gradient would poison every replica through the
                    // sum: caught here, on the rank it comes from (one pass, no allocation).
                    Ok(loss) if loss.is_finite() && model.flat_gradients().iter().all(|g| g.is_finite()) => Ok(loss),
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
            } else {
                // A short last batch leaves this rank nothing: it adds zeros.
                model.flat_gradients().fill(0.0);
                Ok(0.0)
            };
            let (mut values, failure) = match step {
                Ok(loss) => {
                    let right = if a < z { model.last_correct() } else { Some(0) };
                    let n = (z - a) as f64;
                    (
                        [
                            loss as f64 * n,
                            right.unwrap_or(0) as f64,
                            f64::from(u8::from(right.is_none())),
                        ],
                        None,
                    )
                }
                Err(message) => ([0.0; SUMS], Some(message)),
            };
            let t1 = Instant::now();
            report.compute_seconds += (t1 - t0).as_secs_f64();
            let agreed = agreement.agree(comm, values, failure);
            let t2 = Instant::now();
            report.agreement_seconds += (t2 - t1).as_secs_f64();
            values = match agreed {
                Ok(v) => v,
                Err(e) => {
                    restore(model, &saved)?;
                    return Err(e);
                }
            };
            loss_sum += values[0];
            correct += values[1];
            uncounted += values[2];

            // The mean gradient of the global batch: each rank's mean, weighted by its share.
            let weight = (z - a) as f32 / (hi - lo) as f32;
            let grads = model.flat_gradients();
            if weight != 1.0 {
                grads.iter_mut().for_each(|g| *g *= weight);
            }
            comm.all_reduce_into(&grads[..], &mut grad_sum[..], SystemOperation::sum());
            grads.copy_from_slice(&grad_sum);
            let t3 = Instant::now();
            report.allreduce_seconds += (t3 - t2).as_secs_f64();
            // The same update on every rank: the replicas stay identical.
            model.apply_update()?;
            report.compute_seconds += t3.elapsed().as_secs_f64();
            report.steps += 1;
        }
        average_buffers(model, comm, &mut buffer_sum);
        // Every loss was finite; the last update may still have overflowed. The
        // replicas are identical, so every rank finds the same.
        saved = match snapshot(model) {
            Ok(params) => params,
            Err(param) => {
                restore(model, &saved)?;
                return Err(Error::DivergedParams { epoch, param });
            }
        };
        check_replicas(
            model,
            comm,
            "the ranks' parameters differ after an epoch although every rank applied the same averaged \
             gradient; the MPI library's all-reduce gave the ranks different sums",
        )?;
        let validation = match &validation {
            Some(v) => Some(evaluate_distributed(model, v, config.loss, batch, comm)?),
            None => None,
        };
        let epoch_report = EpochReport {
            epoch,
            learning_rate: lr,
            train_loss: loss_sum / train.len() as f64,
            train_accuracy: (classifier && uncounted == 0.0).then(|| correct / train.len() as f64),
            validation,
            seconds: start.elapsed().as_secs_f64(),
        };
        if verbose {
            println!("{}", epoch_line(&epoch_report, config.epochs, size));
        }
        report.fit.history.push(epoch_report);
    }
    Ok(report)
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
    let (rank, size) = (comm.rank() as usize, comm.size() as usize);
    let mut agreement = Agreement::new(comm);
    let (a, z) = shard(0, data.len(), rank, size);
    let (values, failure) = if a < z {
        let share: Vec<usize> = (a..z).collect();
        match evaluate(model, &data.select(&share), loss, batch) {
            Ok(e) => {
                let n = (z - a) as f64;
                ([e.loss * n, e.accuracy.unwrap_or(0.0) * n, n], None)
            }
            Err(e) => (
                [0.0; SUMS],
                Some(format!("samples {a}..{z} of the evaluation set: {e}")),
            ),
        }
    } else {
        ([0.0; SUMS], None)
    };
    let [loss_sum, right, n] = agreement.agree(comm, values, failure)?;
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
    })
}

/// `epoch  1/10  loss 0.4213  acc 87.12%  val_loss 0.2011  val_acc 93.50%  lr 0.01  1.23s  (2 ranks)`
fn epoch_line(r: &EpochReport, epochs: usize, ranks: usize) -> String {
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
    line += &format!("  lr {:.4}  {:.2}s  ({ranks} ranks)", r.learning_rate, r.seconds);
    line
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
