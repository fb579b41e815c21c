//! `cnnc bench MODEL.cnn [--batch N] [--threads T]`: the model's speed through the
//! run-time plan executor (the kernels and driver of generated code): training
//! and inference images/s, one-image latency, and a per-step profile (time share,
//! GFLOP/s, % of the FMA peak this binary measures, the algorithm chosen).
//! Random inputs and labels; medians of 3 timed rounds after a warm-up.

use cnnc::compute::peak::measure_peak_gflops_with;
use cnnc::ir::{self, Loss};
use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::rt::exec::Executor;
use cnnc::{Target, Train as _};
use std::fmt::Write as _;
use std::time::Instant;

pub struct Request<'a> {
    pub model: &'a ir::Model,
    pub batch: Option<usize>,
    pub threads: Option<usize>,
    /// Seconds each timed round aims for.
    pub seconds: f64,
}

/// A small generator for the random inputs (the bench needs no statistics).
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// The median time of `f` over 3 rounds of as many calls as fill `seconds`.
fn median_seconds(seconds: f64, mut f: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    let start = Instant::now();
    f()?;
    let once = start.elapsed().as_secs_f64().max(1e-6);
    let reps = ((seconds / once) as usize).clamp(1, 10_000);
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        for _ in 0..reps {
            f()?;
        }
        rounds.push(start.elapsed().as_secs_f64() / reps as f64);
    }
    rounds.sort_by(f64::total_cmp);
    Ok(rounds[1])
}

pub fn run(r: &Request) -> Result<String, String> {
    crate::use_threads(r.threads)?;
    let mut model = r.model.clone();
    if let (Some(b), Some(t)) = (r.batch, model.train.as_mut()) {
        t.batch = b;
    }
    let declared = model.train.as_ref().map(|t| t.batch);
    let batch = r.batch.or(declared).unwrap_or(64);
    let mut net = Executor::from_model(&model, 0);
    let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
    let mut dims = vec![batch];
    dims.extend(model.input.dims());
    let x = ArrayD::from_shape_simple_fn(IxDyn(&dims), || rng.next());
    let mut one = vec![1];
    one.extend(model.input.dims());
    let x1 = ArrayD::from_shape_simple_fn(IxDyn(&one), || rng.next());
    let outputs = model.output().len();
    let labels = Array1::from_shape_fn(batch, |i| (i * 7) % outputs.max(1));
    let values = {
        let mut d = vec![batch];
        d.extend(model.output().dims());
        ArrayD::from_shape_simple_fn(IxDyn(&d), || rng.next())
    };
    let threads = rayon::current_num_threads();
    let isa = cnnc::compute::isa::selected();
    let peak = measure_peak_gflops_with(isa) * threads.min(batch) as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} parameters, {} threads, {} kernels, FMA peak {peak:.0} GFLOP/s (measured)",
        model.name,
        model.param_count(),
        threads,
        isa.name()
    );
    let step_flops: u64 = net
        .program()
        .steps()
        .iter()
        .map(|s| s.flops(net.program().buffers()))
        .sum();
    let loss = model.train.as_ref().map(|t| t.loss);
    let mut train_step = |net: &mut Executor| -> Result<(), String> {
        let target = match loss {
            Some(Loss::CrossEntropy) => Target::Labels(labels.view()),
            _ => Target::Values(values.view()),
        };
        net.train_step(x.view(), target).map(|_| ()).map_err(|e| e.to_string())
    };
    if loss.is_some() {
        let t = median_seconds(r.seconds, || train_step(&mut net))?;
        let _ = writeln!(
            out,
            "train   batch {batch:>4}: {:>9.1} images/s  ({:.2} ms a step, {:.1} GFLOP/s at 3x forward FLOPs)",
            batch as f64 / t,
            t * 1e3,
            3.0 * step_flops as f64 * batch as f64 / t / 1e9
        );
    }
    let mut y = vec![0.0f32; batch * outputs];
    let t = median_seconds(r.seconds, || {
        net.predict_into(x.view(), &mut y).map_err(|e| e.to_string())
    })?;
    let _ = writeln!(
        out,
        "infer   batch {batch:>4}: {:>9.1} images/s  ({:.2} ms a batch, {:.1} GFLOP/s)",
        batch as f64 / t,
        t * 1e3,
        step_flops as f64 * batch as f64 / t / 1e9
    );
    let mut y1 = vec![0.0f32; outputs];
    let t = median_seconds(r.seconds / 2.0, || {
        net.predict_into(x1.view(), &mut y1).map_err(|e| e.to_string())
    })?;
    let _ = writeln!(out, "latency one image:  {:.3} ms", t * 1e3);
    out.push_str(&profile(
        &mut net,
        loss.is_some(),
        r.seconds,
        peak,
        batch,
        &mut train_step,
        &x,
        &mut y,
    )?);
    Ok(out.trim_end().to_string())
}

/// Every step's share of a training step (or of inference, without a train
/// block), its GFLOP/s and % of the peak.
#[allow(clippy::too_many_arguments)]
fn profile(
    net: &mut Executor,
    training: bool,
    seconds: f64,
    peak: f64,
    batch: usize,
    train_step: &mut dyn FnMut(&mut Executor) -> Result<(), String>,
    x: &ArrayD<f32>,
    y: &mut [f32],
) -> Result<String, String> {
    let program = net.program().clone();
    program.reset_profile();
    program.set_profiling(true);
    let start = Instant::now();
    let mut rounds = 0usize;
    while rounds < 3 || start.elapsed().as_secs_f64() < seconds {
        if training {
            train_step(net)?;
        } else {
            net.predict_into(x.view(), y).map_err(|e| e.to_string())?;
        }
        rounds += 1;
    }
    program.set_profiling(false);
    let times = program.profile();
    let total: f64 = times.iter().map(|t| t.forward_s + t.backward_s).sum::<f64>().max(1e-12);
    let threads = rayon::current_num_threads().min(batch).max(1) as f64;
    let mut out = String::new();
    let what = if training { "a training step" } else { "inference" };
    let _ = writeln!(
        out,
        "\nper step, over {rounds} rounds of {what} (time summed over threads):"
    );
    let _ = writeln!(
        out,
        "{:<28} {:<10} {:>7} {:>9} {:>9} {:>10} {:>8}",
        "step", "algorithm", "time", "forward", "backward", "GFLOP/s", "% peak"
    );
    for (step, t) in program.steps().iter().zip(&times) {
        let secs = t.forward_s + t.backward_s;
        let flops = step.flops(program.buffers()) as f64 * (batch * rounds) as f64 * if training { 3.0 } else { 1.0 };
        // Per-thread time summed over threads: the wall time is about secs / threads.
        let gflops = if secs > 0.0 {
            flops / (secs / threads) / 1e9
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "{:<28} {:<10} {:>6.1}% {:>6.3} ms {:>6.3} ms {:>10.1} {:>7.1}%",
            step.name,
            step.algorithm(),
            100.0 * secs / total,
            t.forward_s * 1e3 / rounds as f64,
            t.backward_s * 1e3 / rounds as f64,
            gflops,
            100.0 * gflops / peak.max(1e-9)
        );
    }
    Ok(out)
}
