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
//!
//! The fault modes print `error: ...` on every rank and exit with status 1.

use cnnc::rt::data::{mnist, Dataset, Split};
use cnnc::rt::distributed::{fit_distributed, mpi};
use cnnc::rt::fit::{fit, FitConfig};
use mpi::traits::Communicator;

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
}

/// Samples per equivalence run: 5 steps of the global batch 64.
const SAMPLES: usize = 5 * 64;
/// The largest parameter difference allowed between the two runs (the float
/// summation order differs: per-rank means halved and summed against one mean).
const TOLERANCE_SGD: f32 = 1e-5;
const TOLERANCE_ADAM: f32 = 1e-5;

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
            let report = fit_distributed(&mut model, &data, &config, world)?;
            println!("rank {rank}: trained {} steps without error", report.steps);
            Ok(false)
        }
        other => Err(cnnc::Error::Config(format!(
            "unknown mode `{other}`: give equivalence, bad-data, nan-loss, bad-batch or other-seed"
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
    let report = fit_distributed(&mut distributed, data, &config, world)?;
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
