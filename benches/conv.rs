//! The convolution kernels on conv64 (64 -> 64 channels, 3x3, stride 1, pad 1, on
//! 32x32 images; benches/models.cnn's Conv64 layer) at 32 samples per call, single
//! thread, forward and backward (weight and data gradients), for every
//! instruction set this CPU has and every path the shape allows. Criterion
//! reports elements/s where one element is one FLOP, so `Gelem/s` reads as GFLOP/s.
//!
//! `CONV_TABLE=1 cargo bench --bench conv` instead prints one line per instruction
//! set and path: GFLOP/s and percent of the measured single-thread FMA peak with
//! that instruction set's vectors (`compute::peak::measure_peak_gflops_with`).

use cnnc::compute::conv::{self, ConvShape, Plan};
use cnnc::compute::isa::{set_isa, Isa};
use cnnc::compute::peak::{measure_peak_gflops_with, Clock};
use cnnc::compute::Activation;
use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

const CONV64: ConvShape = ConvShape {
    c: 64,
    h: 32,
    w: 32,
    f: 64,
    kh: 3,
    kw: 3,
    sh: 1,
    sw: 1,
    pt: 1,
    pb: 1,
    pl: 1,
    pr: 1,
    oh: 32,
    ow: 32,
    dh: 1,
    dw: 1,
    g: 1,
};

/// Samples per call, as a worker gets them from a batch of 32 on one thread.
const N: usize = 32;

/// FLOPs of one forward call; a backward call does twice as many (dW and dX).
fn forward_flops(s: &ConvShape) -> f64 {
    2.0 * (N * s.f * s.positions() * s.depth()) as f64
}

struct Buffers {
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    y: Vec<f32>,
    dw: Vec<f32>,
    db: Vec<f32>,
    dx: Vec<f32>,
    scratch: Vec<f32>,
}

fn fill(len: usize, seed: u32) -> Vec<f32> {
    let mut i = seed;
    (0..len)
        .map(|_| {
            i = i.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (i >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

impl Buffers {
    fn new(s: &ConvShape) -> Buffers {
        let scratch = Plan::ALL.iter().map(|&p| s.scratch_len_for(p)).max().unwrap_or(0);
        Buffers {
            x: fill(N * s.input_len(), 1),
            w: fill(s.weight_len(), 2),
            b: fill(s.f, 3),
            y: fill(N * s.output_len(), 4),
            dw: vec![0.0; s.weight_len()],
            db: vec![0.0; s.f],
            dx: vec![0.0; N * s.input_len()],
            scratch: vec![0.0; scratch],
        }
    }

    fn forward(&mut self, s: &ConvShape, plan: Plan) {
        let b = Some(&self.b[..]);
        conv::forward_as(
            plan,
            s,
            conv::Sizes::Constant,
            Activation::Relu.into(),
            black_box(&self.x),
            &self.w,
            b,
            &mut self.y,
            N,
            &mut self.scratch,
        );
        black_box(&mut self.y);
    }

    fn backward(&mut self, s: &ConvShape, plan: Plan) {
        // y stands in for the output gradient.
        conv::backward_as(
            plan,
            s,
            conv::Sizes::Constant,
            black_box(&self.x),
            &self.w,
            &self.y,
            &mut self.dw,
            Some(&mut self.db),
            Some(&mut self.dx),
            N,
            &mut self.scratch,
        );
        black_box(&mut self.dx);
    }
}

/// `(isa, plan)` pairs to measure: every available instruction set, every path
/// the shape allows.
fn variants(s: &ConvShape) -> Vec<(Isa, Plan)> {
    let mut v = Vec::new();
    for isa in Isa::ALL.into_iter().rev().filter(|i| i.is_available()) {
        for plan in Plan::ALL.into_iter().filter(|&p| s.allows(p)) {
            v.push((isa, plan));
        }
    }
    v
}

/// Best time of one call: three runs of calls for at least 0.3 s each, in the
/// thread's run time (see [`Clock`]: the machine may be shared).
fn best_seconds(mut f: impl FnMut()) -> f64 {
    f();
    (0..3)
        .map(|_| {
            let start = Clock::start();
            let mut calls = 0;
            while calls == 0 || start.seconds() < 0.3 {
                f();
                calls += 1;
            }
            start.seconds() / f64::from(calls)
        })
        .fold(f64::INFINITY, f64::min)
}

fn table() {
    let s = &CONV64;
    let mut bufs = Buffers::new(s);
    println!("conv64 at {N} samples per call, one thread");
    println!(
        "{:<9} {:<9} {:>22} {:>22}",
        "isa", "path", "forward GF/s (%peak)", "backward GF/s (%peak)"
    );
    let mut last = None;
    let mut peak = 0.0;
    for (isa, plan) in variants(s) {
        if last != Some(isa) {
            // Best of three: the machine may be shared, and a low peak flatters.
            peak = (0..3).map(|_| measure_peak_gflops_with(isa)).fold(0.0, f64::max);
            println!("{isa}: single-thread FMA peak {peak:.1} GFLOP/s");
            last = Some(isa);
        }
        set_isa(isa).expect("available");
        let fwd = forward_flops(s) / best_seconds(|| bufs.forward(s, plan)) / 1e9;
        let bwd = 2.0 * forward_flops(s) / best_seconds(|| bufs.backward(s, plan)) / 1e9;
        println!(
            "{:<9} {:<9} {:>22} {:>22}",
            isa.name(),
            format!("{plan:?}"),
            format!("{fwd:.1} ({:.0}%)", 100.0 * fwd / peak),
            format!("{bwd:.1} ({:.0}%)", 100.0 * bwd / peak)
        );
    }
    set_isa(Isa::best()).expect("available");
}

fn criterion(c: &mut Criterion) {
    let s = &CONV64;
    let mut bufs = Buffers::new(s);
    for (name, factor) in [("conv64_fwd_b32", 1.0), ("conv64_bwd_b32", 2.0)] {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements((factor * forward_flops(s)) as u64));
        group.sample_size(10).measurement_time(Duration::from_secs(3));
        for (isa, plan) in variants(s) {
            set_isa(isa).expect("available");
            group.bench_function(BenchmarkId::new(isa.name(), format!("{plan:?}")), |bench| {
                if factor == 1.0 {
                    bench.iter(|| bufs.forward(s, plan))
                } else {
                    bench.iter(|| bufs.backward(s, plan))
                }
            });
        }
        group.finish();
    }
    set_isa(Isa::best()).expect("available");
}

fn main() {
    if std::env::var_os("CONV_TABLE").is_some() {
        table();
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    criterion(&mut c);
    c.final_summary();
}
