//! LeNet (examples/models/lenet.cnn) trained on the bundled MNIST subset over MPI:
//! one process per rank, each global batch of 64 split over the ranks, one
//! all-reduce of the gradients per step (`cnnc::rt::distributed`).
//!
//!     cargo build --release --features mpi --example mnist_mpi
//!     mpirun -np 2 target/release/examples/mnist_mpi
//!     mpirun -np 2 target/release/examples/mnist_mpi --resume lenet_mpi.ckpt
//!
//! Rank 0 writes a checkpoint (`lenet_mpi.ckpt`, its path printed before the first
//! epoch) at the end of every epoch and every 50 steps. When a rank dies, Open MPI
//! ends the job; `--resume PATH` goes on from the last checkpoint, ending with the
//! same weights, bit for bit, as a run never stopped when it runs on as many ranks
//! (with as many threads each). Ctrl-C (`mpirun` sends the ranks SIGTERM) stops
//! every rank at the same step with a checkpoint there. At the end only rank 0
//! prints and writes the weights, `lenet_mpi.safetensors`.

use cnnc::rt::data::{mnist, Split};
use cnnc::rt::distributed::{evaluate_distributed, fit_distributed, mpi};
use cnnc::rt::fit::FitOptions;
use mpi::traits::Communicator;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[path = "common/args.rs"]
mod args;

cnn_macros::cnn!(file = "examples/models/lenet.cnn");

const CHECKPOINT: &str = "lenet_mpi.ckpt";
const WEIGHTS: &str = "lenet_mpi.safetensors";
/// Steps between two checkpoints within an epoch (an epoch is 125 steps).
const EVERY: usize = 50;
const USAGE: &str = "usage: mpirun -np N mnist_mpi [--resume CHECKPOINT]";

/// Set on SIGINT or SIGTERM: on Ctrl-C `mpirun` sends every rank SIGTERM, then
/// SIGKILL a few seconds later. `fit_distributed` sums the ranks' flags at every
/// step, so all stop at the same step and rank 0 writes a checkpoint there.
static STOP: AtomicBool = AtomicBool::new(false);

fn main() {
    let resume = match args::resume_argument(USAGE) {
        Ok(resume) => resume,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst)) {
        eprintln!("warning: a Ctrl-C will not write a checkpoint: {e}");
    }
    let code = {
        let Some(universe) = mpi::initialize() else {
            eprintln!("error: MPI was already initialized");
            std::process::exit(1);
        };
        let world = universe.world();
        match run(&world, resume) {
            Ok(()) => 0,
            Err(e @ cnnc::Error::Interrupted { .. }) => {
                if world.rank() == 0 {
                    eprintln!("{e}");
                    eprintln!(
                        "resume with: mpirun -np {} mnist_mpi --resume {CHECKPOINT}",
                        world.size()
                    );
                }
                130
            }
            Err(e) => {
                // Every rank holds the same error; one line is enough.
                if world.rank() == 0 {
                    eprintln!("error: {e}");
                }
                1
            }
        }
        // `universe` drops here: MPI_Finalize on every rank before the exit.
    };
    std::process::exit(code);
}

fn run(world: &impl Communicator, resume: Option<PathBuf>) -> Result<(), cnnc::Error> {
    let rank = world.rank();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");
    let train = mnist(data, Split::Train)?;
    let test = mnist(data, Split::Test)?;
    let fit = LeNet::FIT;
    let mut options = FitOptions::default().checkpoint(CHECKPOINT).every(EVERY).stop(&STOP);
    if rank == 0 {
        println!(
            "LeNet: {} parameters; {} training and {} test images; {} epochs of global batch {} over {} ranks",
            LeNet::PARAM_COUNT,
            train.len(),
            test.len(),
            fit.epochs,
            fit.batch,
            world.size()
        );
        let cwd = std::env::current_dir().unwrap_or_default();
        println!(
            "checkpoint: {} (rank 0 writes it every epoch and every {EVERY} steps); if the run dies, resume with \
             `mpirun -np {} mnist_mpi --resume {CHECKPOINT}`",
            cwd.join(CHECKPOINT).display(),
            world.size()
        );
    }
    if let Some(path) = resume {
        options = options.resume(path);
    }
    let mut model = LeNet::new(fit.seed);
    let start = Instant::now();
    let run = fit_distributed(&mut model, &train, &fit, &options, world)?;
    let seconds = start.elapsed().as_secs_f64();
    let result = evaluate_distributed(&mut model, &test, fit.loss, LeNet::BATCH, world)?;
    if rank == 0 {
        let epoch_seconds: f64 = run.fit.history.iter().map(|e| e.seconds).sum();
        println!(
            "trained in {seconds:.1}s ({:.2}s per epoch); per step: {:.2} ms compute, {:.3} ms all-reduce",
            epoch_seconds / run.fit.history.len().max(1) as f64,
            run.compute_seconds * 1e3 / run.steps.max(1) as f64,
            run.allreduce_seconds * 1e3 / run.steps.max(1) as f64,
        );
        println!(
            "{} checkpoints written, {:.1} ms each",
            run.checkpoints,
            run.checkpoint_seconds * 1e3 / run.checkpoints.max(1) as f64
        );
        model.save_safetensors(WEIGHTS)?;
        println!("test loss {:.4}; weights saved to {WEIGHTS}", result.loss);
        println!("test accuracy: {:.2}%", result.accuracy.unwrap_or(0.0) * 100.0);
    }
    Ok(())
}
