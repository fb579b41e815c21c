//! The program tests/mpi_distributed.rs starts under `mpirun -np 2`: one mode per
//! run, every line prefixed with the rank.
//!
//! * `equivalence`: for SGD with momentum and for Adam, 5 steps of 2 ranks with
//!   local batch 32 against 5 steps of one process with batch 64 on the same
//!   samples (rank 0 trains the reference in-process); prints the largest
//!   parameter difference and `ok` or `FAILED` against the tolerance.
//! * `bad-data`: rank 1's copy of the data holds a NaN pixel.
//! * `nan-loss`: rank 1's copy holds finite but enormous pixels, so its loss or
//!   gradient overflows.
//! * `bad-batch`: a global batch of 63, which 2 ranks cannot split.
//! * `other-seed`: rank 1 builds its model from another seed.
//! * `checkpoint MODEL DIR [resume] [compare=FILE]`: 3 epochs of 5 steps (global
//!   batch 32) of `bn` (a batchnorm model) or `plain` (`SmallSgd`), with a
//!   checkpoint `DIR/run.ckpt` every 2 steps (`resume`: from it). With
//!   `MPI_WORKER_DIE_AT=K` in the environment, rank 1 kills itself with SIGKILL
//!   as it starts its K-th step; with `MPI_WORKER_STOP_AT=K`, rank 1 sets the
//!   run's stop flag then (the ranks stop together, with a checkpoint, and print
//!   `error: training stopped before ...`). At the end rank 0 writes `DIR/final.safetensors`
//!   and prints the steps it took, a hash of the parameters' and buffers' bits and
//!   the epochs' losses; with `compare=FILE`, also the largest parameter difference
//!   from the weights in FILE.
//!
//! The fault modes print `error: ...` on every rank and exit with status 1.

use cnnc::rt::data::{mnist, Dataset, Split};
use cnnc::rt::distributed::{fit_distributed, mpi};
use cnnc::rt::fit::{fit, FitConfig, FitOptions};
use cnnc::rt::weights::{load_safetensors, save_safetensors};
use cnnc::rt::{Error, FlatTrain, Gradients, Model, OptimizerState, Target, Train};
use mpi::traits::Communicator;
use ndarray::{ArrayD, ArrayViewD};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The `checkpoint` mode's stop flag, set on rank 1 at step `MPI_WORKER_STOP_AT`.
static STOP: AtomicBool = AtomicBool::new(false);

cnn_macros::cnn! {
    model SmallSgd {
        input 1x28x28
        conv 4 kernel 6 stride 2 relu
        maxpool 2
        flatten
        dense 16 relu
        dense 10 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 weight_decay 0.0001 batch 64 epochs 1 }
    }

    model SmallAdam {
        input 1x28x28
        conv 4 kernel 6 stride 2 relu
        maxpool 2
        flatten
        dense 16 relu
        dense 10 softmax
        train { loss cross_entropy optimizer adam lr 0.001 batch 64 epochs 1 }
    }

    model SmallBn {
        input 1x28x28
        conv 4 kernel 6 stride 2
        batchnorm relu
        maxpool 2
        flatten
        dense 10 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 batch 32 epochs 3 }
    }
}

/// Samples per equivalence run: 5 steps of the global batch 64.
const SAMPLES: usize = 5 * 64;
/// The largest parameter difference allowed between the two runs (the float
/// summation order differs: per-rank means halved and summed against one mean).
const TOLERANCE_SGD: f32 = 1e-5;
const TOLERANCE_ADAM: f32 = 1e-5;
/// Samples of a `checkpoint` run: 5 steps of the global batch 32 per epoch.
const CHECKPOINT_SAMPLES: usize = 5 * 32;

fn main() {
    let code = {
        let Some(universe) = mpi::initialize() else {
            eprintln!("error: MPI was already initialized");
            std::process::exit(2);
        };
        let world = universe.world();
        let rank = world.rank();
        let mode = std::env::args().nth(1).unwrap_or_default();
        match run(&world, &mode) {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(e) => {
                println!("rank {rank}: error: {e}");
                1
            }
        }
    };
    std::process::exit(code);
}

fn run(world: &impl Communicator, mode: &str) -> Result<bool, cnnc::Error> {
    let rank = world.rank();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");
    let all = mnist(dir, Split::Train)?;
    let first: Vec<usize> = (0..SAMPLES).collect();
    let mut data = all.select(&first);
    match mode {
        "equivalence" => {
            let sgd = compare(world, &data, SmallSgd::new, SmallSgd::FIT.quiet(), TOLERANCE_SGD, "sgd")?;
            let adam = compare(
                world,
                &data,
                SmallAdam::new,
                SmallAdam::FIT.quiet(),
                TOLERANCE_ADAM,
                "adam",
            )?;
            Ok(sgd && adam)
        }
        "bad-data" | "nan-loss" | "bad-batch" | "other-seed" => {
            if rank == 1 && mode == "bad-data" {
                data.inputs[[100, 0, 14, 14]] = f32::NAN;
            }
            if rank == 1 && mode == "nan-loss" {
                data.inputs.fill(3e38);
            }
            let mut config = SmallSgd::FIT.quiet();
            config.epochs = 3;
            if mode == "bad-batch" {
                config.batch = 63;
            }
            let seed = if rank == 1 && mode == "other-seed" {
                config.seed + 1
            } else {
                config.seed
            };
            let mut model = SmallSgd::new(seed);
            let report = fit_distributed(&mut model, &data, &config, &FitOptions::default(), world)?;
            println!("rank {rank}: trained {} steps without error", report.steps);
            Ok(false)
        }
        "checkpoint" => {
            let args: Vec<String> = std::env::args().skip(3).collect();
            let data = data.select(&(0..CHECKPOINT_SAMPLES).collect::<Vec<_>>());
            match std::env::args().nth(2).as_deref() {
                Some("bn") => checkpointed(world, &data, SmallBn::new, SmallBn::FIT, &args),
                Some("plain") => checkpointed(world, &data, SmallSgd::new, SmallSgd::FIT, &args),
                _ => Err(Error::Config("checkpoint needs a model: bn or plain".into())),
            }
        }
        other => Err(cnnc::Error::Config(format!(
            "unknown mode `{other}`: give equivalence, bad-data, nan-loss, bad-batch, other-seed or checkpoint"
        ))),
    }
}

/// Trains `make(seed)` for one epoch (5 steps) over the ranks and, on rank 0, on
/// one process; prints the largest parameter difference. Returns whether it is
/// within `tolerance` (always true on the other ranks).
fn compare<M: cnnc::rt::FlatTrain>(
    world: &impl Communicator,
    data: &Dataset,
    make: impl Fn(u64) -> M,
    config: FitConfig,
    tolerance: f32,
    name: &str,
) -> Result<bool, cnnc::Error> {
    let rank = world.rank();
    let mut distributed = make(config.seed);
    let report = fit_distributed(&mut distributed, data, &config, &FitOptions::default(), world)?;
    if rank != 0 {
        return Ok(true);
    }
    let mut single = make(config.seed);
    fit(&mut single, data, &config)?;
    let mut worst = 0.0f32;
    let mut moved = 0.0f32;
    let start = make(config.seed);
    for param in single.param_names() {
        let (Some(a), Some(b), Some(s)) = (single.param(&param), distributed.param(&param), start.param(&param)) else {
            return Err(cnnc::Error::Config(format!("parameter `{param}` missing")));
        };
        for ((x, y), z) in a.iter().zip(b.iter()).zip(s.iter()) {
            worst = worst.max((x - y).abs());
            moved = moved.max((x - z).abs());
        }
    }
    let ok = worst <= tolerance && moved > 100.0 * tolerance;
    println!(
        "rank {rank}: equivalence {name}: {} steps, {} ranks x local batch {}; largest parameter change {moved:.3e}, \
         largest difference from one process {worst:.3e} (tolerance {tolerance:.0e}) {}",
        report.steps,
        world.size(),
        config.batch / world.size() as usize,
        if ok { "ok" } else { "FAILED" }
    );
    Ok(ok)
}

/// The `checkpoint` mode: trains `make(seed)` with checkpoints in `args[0]`
/// (resuming with `resume`), rank 1 dying at step `MPI_WORKER_DIE_AT` or setting
/// the stop flag at step `MPI_WORKER_STOP_AT` when they are set.
fn checkpointed<M: FlatTrain>(
    world: &impl Communicator,
    data: &Dataset,
    make: impl Fn(u64) -> M,
    config: FitConfig,
    args: &[String],
) -> Result<bool, Error> {
    let rank = world.rank();
    let config = FitConfig {
        epochs: 3,
        batch: 32,
        ..config.quiet()
    };
    let dir = PathBuf::from(
        args.first()
            .ok_or_else(|| Error::Config("checkpoint needs a folder".into()))?,
    );
    let checkpoint = dir.join("run.ckpt");
    let mut options = FitOptions::default().checkpoint(&checkpoint).every(2).stop(&STOP);
    let mut compare = None;
    for arg in &args[1..] {
        match arg.strip_prefix("compare=") {
            Some(file) => compare = Some(PathBuf::from(file)),
            None if arg == "resume" => options = options.resume(&checkpoint),
            None => return Err(Error::Config(format!("unknown argument `{arg}`"))),
        }
    }
    let at = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|_| rank == 1)
    };
    let mut model = Dying {
        inner: make(config.seed),
        die_at: at("MPI_WORKER_DIE_AT"),
        stop_at: at("MPI_WORKER_STOP_AT"),
        steps: 0,
    };
    let report = fit_distributed(&mut model, data, &config, &options, world)?;
    if rank != 0 {
        return Ok(true);
    }
    save_safetensors(&model, &dir.join("final.safetensors"))?;
    let losses: Vec<f64> = report.fit.history.iter().map(|e| e.train_loss).collect();
    println!(
        "rank 0: checkpoint run: {} steps on {} ranks; parameters and buffers {:016x}; losses {losses:?}",
        report.steps,
        world.size(),
        bits_hash(&model)
    );
    if let Some(file) = compare {
        println!(
            "rank 0: largest parameter difference from {}: {:.3e}",
            file.display(),
            largest_difference(&model, make(config.seed), &file)?
        );
    }
    Ok(true)
}

/// FNV-1a over the bits of every parameter and buffer.
fn bits_hash(model: &dyn Model) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let tensors = model.param_names().into_iter().filter_map(|n| model.param(&n));
    let buffers = model.buffer_names().into_iter().filter_map(|n| model.buffer(&n));
    for value in tensors.chain(buffers) {
        for v in value.iter() {
            hash = (hash ^ u64::from(v.to_bits())).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The largest difference between `model`'s parameters and those in `file`, read into `other`.
fn largest_difference(model: &dyn Model, mut other: impl Model, file: &Path) -> Result<f32, Error> {
    load_safetensors(&mut other, file)?;
    let mut worst = 0.0f32;
    for name in model.param_names() {
        if let (Some(a), Some(b)) = (model.param(&name), other.param(&name)) {
            worst = a.iter().zip(b.iter()).fold(worst, |w, (x, y)| w.max((x - y).abs()));
        }
    }
    Ok(worst)
}

/// A model that, given `die_at`, kills its process with SIGKILL as it starts
/// that step (1-based, counted from this process's first step): a rank lost
/// mid-run, at a step known in advance; given `stop_at`, sets [`STOP`] then.
/// Everything else is the inner model's.
struct Dying<M> {
    inner: M,
    die_at: Option<u64>,
    stop_at: Option<u64>,
    steps: u64,
}

impl<M: Model> Model for Dying<M> {
    fn input_shape(&self) -> &[usize] {
        self.inner.input_shape()
    }
    fn output_shape(&self) -> &[usize] {
        self.inner.output_shape()
    }
    fn param_names(&self) -> Vec<String> {
        self.inner.param_names()
    }
    fn param(&self, name: &str) -> Option<ArrayD<f32>> {
        self.inner.param(name)
    }
    fn set_param(&mut self, name: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error> {
        self.inner.set_param(name, value)
    }
    fn predict(&mut self, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>, Error> {
        self.inner.predict(x)
    }
    fn buffer_names(&self) -> Vec<String> {
        self.inner.buffer_names()
    }
    fn buffer(&self, name: &str) -> Option<ArrayD<f32>> {
        self.inner.buffer(name)
    }
    fn set_buffer(&mut self, name: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error> {
        self.inner.set_buffer(name, value)
    }
    fn batches_tracked(&self) -> u64 {
        self.inner.batches_tracked()
    }
    fn set_batches_tracked(&mut self, steps: u64) {
        self.inner.set_batches_tracked(steps)
    }
}

impl<M: Train> Train for Dying<M> {
    fn gradients(&mut self, x: ArrayViewD<'_, f32>, target: Target<'_>) -> Result<Gradients, Error> {
        self.inner.gradients(x, target)
    }
    fn train_step(&mut self, x: ArrayViewD<'_, f32>, target: Target<'_>) -> Result<f32, Error> {
        self.inner.train_step(x, target)
    }
    fn learning_rate(&self, epoch: usize) -> f32 {
        self.inner.learning_rate(epoch)
    }
    fn set_epoch(&mut self, epoch: usize) {
        self.inner.set_epoch(epoch)
    }
    fn last_correct(&self) -> Option<usize> {
        self.inner.last_correct()
    }
}

impl<M: FlatTrain> FlatTrain for Dying<M> {
    fn local_gradients(&mut self, x: ArrayViewD<'_, f32>, target: Target<'_>) -> Result<f32, Error> {
        self.steps += 1;
        if self.die_at == Some(self.steps) {
            println!("rank 1: SIGKILL at step {}", self.steps);
            let me = std::process::id().to_string();
            let _ = std::process::Command::new("kill").args(["-KILL", &me]).status();
            std::process::abort();
        }
        if self.stop_at == Some(self.steps) {
            STOP.store(true, Ordering::SeqCst);
        }
        self.inner.local_gradients(x, target)
    }
    fn flat_gradients(&mut self) -> &mut [f32] {
        self.inner.flat_gradients()
    }
    fn flat_buffers(&mut self) -> &mut [f32] {
        self.inner.flat_buffers()
    }
    fn apply_update(&mut self) -> Result<(), Error> {
        self.inner.apply_update()
    }
    fn optimizer_state(&mut self) -> OptimizerState<'_> {
        self.inner.optimizer_state()
    }
}
