//! LeNet (examples/models/lenet.cnn) trained on the bundled MNIST subset over MPI:
//! one process per rank, each global batch of 64 split over the ranks, one
//! all-reduce of the gradients per step (`cnnc::rt::distributed`).
//!
//!     cargo build --release --features mpi --example mnist_mpi
//!     mpirun -np 2 target/release/examples/mnist_mpi
//!
//! Only rank 0 prints and writes `lenet_mpi.safetensors`.

use cnnc::rt::data::{mnist, Split};
use cnnc::rt::distributed::{evaluate_distributed, fit_distributed, mpi};
use mpi::traits::Communicator;
use std::time::Instant;

cnn_macros::cnn!(file = "examples/models/lenet.cnn");

fn main() {
    let code = {
        let Some(universe) = mpi::initialize() else {
            eprintln!("error: MPI was already initialized");
            std::process::exit(1);
        };
        let world = universe.world();
        match run(&world) {
            Ok(()) => 0,
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

fn run(world: &impl Communicator) -> Result<(), cnnc::Error> {
    let rank = world.rank();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");
    let train = mnist(data, Split::Train)?;
    let test = mnist(data, Split::Test)?;
    let fit = LeNet::FIT;
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
    }
    let mut model = LeNet::new(fit.seed);
    let start = Instant::now();
    let run = fit_distributed(&mut model, &train, &fit, world)?;
    let seconds = start.elapsed().as_secs_f64();
    let result = evaluate_distributed(&mut model, &test, fit.loss, LeNet::BATCH, world)?;
    if rank == 0 {
        println!(
            "trained in {seconds:.1}s ({:.2}s per epoch); per step: {:.2} ms compute, {:.3} ms all-reduce",
            seconds / run.fit.history.len().max(1) as f64,
            run.compute_seconds * 1e3 / run.steps.max(1) as f64,
            run.allreduce_seconds * 1e3 / run.steps.max(1) as f64,
        );
        let path = "lenet_mpi.safetensors";
        model.save_safetensors(path)?;
        println!("test loss {:.4}; weights saved to {path}", result.loss);
        println!("test accuracy: {:.2}%", result.accuracy.unwrap_or(0.0) * 100.0);
    }
    Ok(())
}
