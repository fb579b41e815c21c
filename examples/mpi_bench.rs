//! The measurements of docs/distributed.md: training throughput of LeNet and
//! CifarBlock (benches/models.cnn) on synthetic data, one process or several ranks.
//!
//!     cargo build --release --features mpi --example mpi_bench
//!     RAYON_NUM_THREADS=2 target/release/examples/mpi_bench            # 1 process, 2 threads
//!     mpirun -np 2 -x RAYON_NUM_THREADS=1 target/release/examples/mpi_bench   # 2 ranks, 1 thread each
//!
//! Run alone on one process, it also times plain `fit` for comparison. Rank 0 prints.

use cnnc::rt::data::{Dataset, Targets};
use cnnc::rt::distributed::{fit_distributed, mpi};
use cnnc::rt::fit::{fit, FitConfig, FitOptions};
use cnnc::rt::FlatTrain;
use mpi::collective::SystemOperation;
use mpi::traits::{Communicator, CommunicatorCollectives};
use ndarray::ArrayD;
use std::time::Instant;

cnn_macros::cnn!(file = "examples/models/lenet.cnn");
cnn_macros::cnn!(file = "benches/models.cnn");

fn main() {
    let Some(universe) = mpi::initialize() else {
        eprintln!("error: MPI was already initialized");
        std::process::exit(1);
    };
    let world = universe.world();
    // LeNet: 40 steps of 64; CifarBlock: 12 steps of 32 (global batches).
    let result = bench(&world, "LeNet", LeNet::new, LeNet::FIT, &LeNet::INPUT_SHAPE, 40).and_then(|_| {
        bench(
            &world,
            "CifarBlock",
            CifarBlock::new,
            CifarBlock::FIT,
            &CifarBlock::INPUT_SHAPE,
            12,
        )
    });
    if let Err(e) = result {
        eprintln!("rank {}: error: {e}", world.rank());
    }
}

/// Synthetic inputs in [0, 1) and labels from a fixed-seed sequence (an LCG is
/// enough: only the arithmetic is timed, not what the model learns).
fn synthetic(n: usize, shape: &[usize]) -> Dataset {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut dims = vec![n];
    dims.extend_from_slice(shape);
    let len: usize = dims.iter().product();
    let inputs = ArrayD::from_shape_vec(dims, (0..len).map(|_| next()).collect()).expect("shape");
    let labels = (0..n).map(|_| (next() * 10.0) as usize % 10).collect();
    Dataset::new(inputs, Targets::Labels(labels)).expect("counts agree")
}

fn bench<M: FlatTrain>(
    world: &impl Communicator,
    name: &str,
    make: impl Fn(u64) -> M,
    fit_config: FitConfig,
    shape: &[usize],
    steps: usize,
) -> Result<(), cnnc::Error> {
    let config = FitConfig {
        epochs: 1,
        validation: None,
        verbose: false,
        ..fit_config
    };
    let data = synthetic(steps * config.batch, shape);
    let (rank, size) = (world.rank(), world.size());
    let threads = rayon::current_num_threads();
    // A warm-up epoch (page faults, first-touch), then the timed one.
    let mut model = make(config.seed);
    fit_distributed(
        &mut model,
        &data.select(&(0..2 * config.batch).collect::<Vec<_>>()),
        &config,
        &FitOptions::default(),
        world,
    )?;
    let start = Instant::now();
    let run = fit_distributed(&mut model, &data, &config, &FitOptions::default(), world)?;
    let seconds = start.elapsed().as_secs_f64();
    if rank == 0 {
        let per_step = seconds / run.steps as f64;
        let allreduce = run.allreduce_seconds / run.steps as f64;
        let agreement = run.agreement_seconds / run.steps as f64;
        println!(
            "{name}: {size} rank(s) x {threads} thread(s), global batch {}: {:.0} images/s, {:.2} ms/step, \
             all-reduce {:.3} ms/step ({:.1}%), agreement {:.3} ms/step, {} gradient floats",
            config.batch,
            data.len() as f64 / seconds,
            per_step * 1e3,
            allreduce * 1e3,
            100.0 * allreduce / per_step,
            agreement * 1e3,
            model.flat_gradients().len()
        );
    }
    // The all-reduce alone: after a barrier, so no rank waits for a slower one.
    let grads = model.flat_gradients().to_vec();
    let mut sum = vec![0.0f32; grads.len()];
    let mut alone = 0.0f64;
    let repeats = 50;
    for _ in 0..repeats {
        world.barrier();
        let t = Instant::now();
        world.all_reduce_into(&grads[..], &mut sum[..], SystemOperation::sum());
        alone += t.elapsed().as_secs_f64();
    }
    if rank == 0 {
        println!(
            "{name}: all-reduce of {} floats after a barrier: {:.3} ms",
            grads.len(),
            alone * 1e3 / repeats as f64
        );
    }
    if size == 1 {
        let mut model = make(config.seed);
        let start = Instant::now();
        fit(&mut model, &data, &config)?;
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "{name}: plain fit, {threads} thread(s): {:.0} images/s, {:.2} ms/step",
            data.len() as f64 / seconds,
            seconds * 1e3 / steps as f64
        );
    }
    Ok(())
}
