//! The project's benchmarks, one JSON line each, in the same form as
//! `benches/torch_baseline.py` (run it with `benches/torch_baseline.sh`):
//!
//!     cargo run --release --example bench
//!     cargo run --release --example bench -- resnet8    # one group only
//!
//! Benchmarks: LeNet (examples/models/lenet.cnn) training at batch 64 and inference
//! at batch 64 and 1; the cifar_block training step (benches/models.cnn); the spec's
//! ResNet8 (examples/models/resnet8.cnn) training at batch 64 and inference at batch
//! 64 and 1; CIFAR ResNet-20 (examples/models/resnet20.cnn, the same network as
//! `../shared/bench/resnet20.cnn`) training and inference at batch 128; one 64->64
//! convolution forward and backward.
//!
//!     cargo run --release --example bench -- memory
//!
//! runs only ResNet-20 training at batch 128 and prints the process's peak resident
//! memory (`resnet20_train_b128_peak_rss`, MiB; compare with
//! `benches/torch_memory.py`): a separate process, so no other benchmark counts.
//!
//! Medians of repeated runs. `peak` is this machine's FP32 FMA rate on all threads,
//! measured by a register-only FMA loop in the same binary.

use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::{Target, Train};
use std::time::Instant;

cnn_macros::cnn!(file = "examples/models/lenet.cnn");

cnn_macros::cnn!(file = "examples/models/resnet8.cnn");

cnn_macros::cnn!(file = "benches/models.cnn");

cnn_macros::cnn!(file = "examples/models/resnet20.cnn");

cnn_macros::cnn!(file = "examples/models/unet.cnn");

/// The median time of `f` in seconds over `reps` runs, after `warmup` untimed runs
/// and at least half a second of them: the first benchmark of the process would
/// otherwise also time the thread pool's start and the CPU's clock ramp.
fn median_seconds(mut f: impl FnMut(), reps: usize, warmup: usize) -> f64 {
    let start = Instant::now();
    let mut done = 0;
    while done < warmup || start.elapsed().as_secs_f64() < 0.5 {
        f();
        done += 1;
    }
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn emit(name: &str, key: &str, value: f64) {
    println!("{{\"name\": \"{name}\", \"{key}\": {value:.3}}}");
}

fn random(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    })
}

fn labels(n: usize, classes: usize) -> Array1<usize> {
    Array1::from_shape_fn(n, |i| (i * 7) % classes)
}

fn train_bench(name: &str, model: &mut dyn Train, shape: &[usize], batch: usize, reps: usize) {
    let mut dims = vec![batch];
    dims.extend_from_slice(shape);
    let x = random(&dims, 1);
    let y = labels(batch, 10);
    let mut step = || {
        model
            .train_step(x.view(), Target::Labels(y.view()))
            .expect("benchmark step");
    };
    emit(name, "images_per_s", batch as f64 / median_seconds(&mut step, reps, 5));
}

fn main() {
    // `cargo run --release --example bench -- resnet8` runs only the groups whose
    // name holds the argument (lenet, cifar, resnet8, resnet20, unet, conv64, peak;
    // `memory` is the memory mode; `resnet8_train` the training step alone), e.g. for perf.
    let only = std::env::args().nth(1).unwrap_or_default();
    if only == "memory" {
        let mut resnet = ResNet20::new(0);
        train_bench("resnet20_train_b128", &mut resnet, &[3, 32, 32], 128, 5);
        match peak_rss_mib() {
            Some(mib) => emit("resnet20_train_b128_peak_rss", "mib", mib),
            None => eprintln!("peak resident memory: /proc/self/status has no VmHWM line"),
        }
        return;
    }
    // `resnet8_train` (or any group with `_train`) times only the training step,
    // for a profile of it alone.
    let train_only = only.ends_with("_train");
    // `resnet8_b1` (any group with `_b1`) times only the one-image latency.
    let b1_only = only.ends_with("_b1");
    let only = only.trim_end_matches("_train").trim_end_matches("_b1").to_string();
    let run = |group: &str| group.contains(only.as_str());
    let (mut out64, mut out1) = (vec![0.0; 640], vec![0.0; 10]);
    if run("lenet") {
        let mut lenet = LeNet::new(0);
        train_bench("lenet_train_b64", &mut lenet, &[1, 28, 28], 64, 30);
        let (x64, x1) = (random(&[64, 1, 28, 28], 2), random(&[1, 1, 28, 28], 3));
        let t = median_seconds(|| lenet.predict_into(x64.view(), &mut out64).expect("predict"), 50, 5);
        emit("lenet_infer_b64", "images_per_s", 64.0 / t);
        let t = median_seconds(|| lenet.predict_into(x1.view(), &mut out1).expect("predict"), 300, 20);
        emit("lenet_infer_b1", "latency_us", t * 1e6);
    }
    if run("cifar") {
        let mut cifar = CifarBlock::new(0);
        train_bench("cifar_train_b32", &mut cifar, &[3, 32, 32], 32, 20);
    }
    if run("resnet8") {
        // The spec's ResNet8 (SGD, nesterov, weight decay): batchnorm on the batch's
        // statistics in a training step, on the running statistics in `predict_into`.
        let mut resnet = ResNet8::new(0);
        let (x64, x1) = (random(&[64, 3, 32, 32], 6), random(&[1, 3, 32, 32], 7));
        if !b1_only {
            train_bench("resnet8_train_b64", &mut resnet, &[3, 32, 32], 64, 20);
            if train_only {
                return;
            }
            let t = median_seconds(|| resnet.predict_into(x64.view(), &mut out64).expect("predict"), 30, 5);
            emit("resnet8_infer_b64", "images_per_s", 64.0 / t);
        }
        let reps = if b1_only { 4000 } else { 200 };
        let t = median_seconds(|| resnet.predict_into(x1.view(), &mut out1).expect("predict"), reps, 20);
        emit("resnet8_infer_b1", "latency_us", t * 1e6);
    }
    if run("resnet20") {
        let mut resnet = ResNet20::new(0);
        train_bench("resnet20_train_b128", &mut resnet, &[3, 32, 32], 128, 10);
        if train_only {
            return;
        }
        let mut out128 = vec![0.0; 1280];
        let x128 = random(&[128, 3, 32, 32], 8);
        let t = median_seconds(
            || resnet.predict_into(x128.view(), &mut out128).expect("predict"),
            10,
            2,
        );
        emit("resnet20_infer_b128", "images_per_s", 128.0 / t);
    }
    if run("unet") {
        // v3: the U-Net of examples/unet.rs at batch 16, a label per pixel (255 void
        // on every seventh), adam; inference on 16 pictures.
        let mut unet = UNet::new(0);
        let x = random(&[16, 3, 64, 64], 9);
        let maps = cnnc::ndarray::Array3::from_shape_fn((16, 64, 64), |(i, y, x)| match (i + y + x) % 7 {
            0 => 255,
            k => k % 3,
        });
        let mut step = || {
            unet.train_step(x.view(), Target::LabelMaps(maps.view()))
                .expect("benchmark step");
        };
        emit(
            "unet_train_b16",
            "images_per_s",
            16.0 / median_seconds(&mut step, 10, 3),
        );
        let mut out16 = vec![0.0; 16 * 3 * 64 * 64];
        let t = median_seconds(|| unet.predict_into(x.view(), &mut out16).expect("predict"), 10, 2);
        emit("unet_infer_b16", "images_per_s", 16.0 / t);
    }
    if run("conv64") {
        let mut conv = Conv64::new(0);
        let x = random(&[16, 64, 32, 32], 4);
        let target = random(&[16, 64, 32, 32], 5);
        let flops = 2.0 * 16.0 * 64.0 * 32.0 * 32.0 * 64.0 * 9.0;
        let mut out = vec![0.0; 16 * 64 * 32 * 32];
        let forward = median_seconds(|| conv.predict_into(x.view(), &mut out).expect("forward"), 20, 3);
        emit("conv64_fwd", "gflops", flops / forward / 1e9);
        // `gradients` runs forward, loss and backward (input and weight gradients): the
        // backward time is what it takes beyond the forward pass.
        let both = median_seconds(
            || {
                conv.gradients(x.view(), Target::Values(target.view()))
                    .expect("backward");
            },
            20,
            3,
        );
        emit("conv64_bwd", "gflops", 2.0 * flops / (both - forward).max(1e-9) / 1e9);
    }
    if run("peak") {
        emit("peak", "gflops", peak_gflops());
    }
}

/// The process's peak resident set (VmHWM in /proc/self/status), in MiB; `None`
/// where the kernel does not report it.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The FP32 FMA peak of all threads: each runs [`cnnc::compute::peak`]'s
/// register-only FMA loop at the same time, on the widest vectors the CPU has.
fn peak_gflops() -> f64 {
    use rayon::prelude::*;
    let threads = rayon::current_num_threads();
    (0..3)
        .map(|_| {
            (0..threads)
                .into_par_iter()
                .map(|_| cnnc::compute::peak::measure_peak_gflops())
                .sum::<f64>()
        })
        .fold(0.0, f64::max)
}
