//! The convolution kernels on conv64 (64 -> 64 channels, 3x3, stride 1, pad 1, on
//! 32x32 images; benches/models.cnn's Conv64 layer) at 32 samples per call, single
//! thread, forward and backward (weight and data gradients), for every
//! instruction set this CPU has and every path the shape allows. Criterion
//! reports elements/s where one element is one FLOP, so `Gelem/s` reads as GFLOP/s.
//!
//! `CONV_TABLE=1 cargo bench --bench conv` instead prints one line per instruction
//! set and path: GFLOP/s and percent of the measured single-thread FMA peak with
//! that instruction set's vectors (`compute::peak::measure_peak_gflops_with`).
//! `CONV_TABLE=resnet` does the same for every convolution shape of ResNet-8 and
//! ResNet-20 (the best instruction set, or `CNNC_KERNEL`'s), with the weight
//! gradient alone beside the whole backward pass.
//! `CONV_N=1` runs one sample per call (the one-image latency) instead of 32.

use cnnc::compute::conv::{self, ConvShape, Plan};
use cnnc::compute::isa::{set_isa, Isa};
use cnnc::compute::peak::{measure_peak_gflops_with, Clock};
use cnnc::compute::Activation;
use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

const CONV64: ConvShape = square(64, 32, 64, 3, 1, 1);

/// A square convolution: `c` channels of `h`x`h`, `f` filters of `k`x`k`, stride
/// `stride`, padding `pad` on every side (PyTorch's floor rounding).
const fn square(c: usize, h: usize, f: usize, k: usize, stride: usize, pad: usize) -> ConvShape {
    let o = (h + 2 * pad - k) / stride + 1;
    ConvShape {
        c,
        h,
        w: h,
        f,
        kh: k,
        kw: k,
        sh: stride,
        sw: stride,
        pt: pad,
        pb: pad,
        pl: pad,
        pr: pad,
        oh: o,
        ow: o,
        dh: 1,
        dw: 1,
        g: 1,
    }
}

/// ResNet-8's and ResNet-20's convolution shapes, by a name that says where.
fn resnet_shapes() -> Vec<(&'static str, ConvShape)> {
    let mut dw = square(32, 16, 32, 3, 1, 2);
    dw.dh = 2;
    dw.dw = 2;
    dw.g = 32;
    dw.oh = 16;
    dw.ow = 16;
    vec![
        ("stem 3->16 32x32", square(3, 32, 16, 3, 1, 1)),
        ("3x3 16->16 32x32", square(16, 32, 16, 3, 1, 1)),
        ("3x3/2 16->32", square(16, 32, 32, 3, 2, 1)),
        ("1x1/2 16->32", square(16, 32, 32, 1, 2, 0)),
        ("3x3 32->32 16x16", square(32, 16, 32, 3, 1, 1)),
        ("dw3x3d2 32 16x16", dw),
        ("1x1 32->32 16x16", square(32, 16, 32, 1, 1, 0)),
        ("3x3/2 32->64", square(32, 16, 64, 3, 2, 1)),
        ("1x1/2 32->64", square(32, 16, 64, 1, 2, 0)),
        ("3x3 64->64 8x8", square(64, 8, 64, 3, 1, 1)),
    ]
}

/// Samples per call: 32, as a worker gets them from a batch of 32 on one
/// thread, or `CONV_N` (e.g. `CONV_N=1` for one-image latency).
fn samples() -> usize {
    std::env::var("CONV_N").ok().and_then(|v| v.parse().ok()).unwrap_or(32)
}

/// FLOPs of one forward call; a backward call does twice as many (dW and dX).
fn forward_flops(s: &ConvShape, n: usize) -> f64 {
    2.0 * (n * s.f * s.positions() * s.depth()) as f64
}

struct Buffers {
    /// Samples per call ([`samples`], read once: not inside the timed calls).
    n: usize,
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
        let n = samples();
        Buffers {
            n,
            x: fill(n * s.input_len(), 1),
            w: fill(s.weight_len(), 2),
            b: fill(s.f, 3),
            y: fill(n * s.output_len(), 4),
            dw: vec![0.0; s.weight_len()],
            db: vec![0.0; s.f],
            dx: vec![0.0; n * s.input_len()],
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
            self.n,
            &mut self.scratch,
        );
        black_box(&mut self.y);
    }

    /// Forward as generated code's layers call it: the shape's own plan, in the
    /// build for the selected instruction set (`compute::layers`).
    fn forward_dispatched(&mut self, s: &ConvShape) {
        let act = Activation::Relu;
        cnnc::compute::layers::conv_forward_dyn(
            s,
            black_box(&self.x),
            &self.w,
            Some(&self.b),
            None,
            act,
            &mut self.y,
            self.n,
            &mut self.scratch,
        );
        black_box(&mut self.y);
    }

    /// Backward as generated code's layers call it; `dx` when `data`.
    fn backward_dispatched(&mut self, s: &ConvShape, data: bool) {
        let dx = if data { Some(&mut self.dx[..]) } else { None };
        cnnc::compute::layers::conv_backward_dyn(
            s,
            black_box(&self.x),
            &self.w,
            &self.y,
            &mut self.dw,
            None,
            dx,
            self.n,
            &mut self.scratch,
        );
        black_box(&mut self.dw);
    }

    /// Backward on `plan`: the weight gradient alone (as for a first layer), or
    /// with the bias and data gradients when `data`. `y` stands in for the output
    /// gradient.
    fn backward(&mut self, s: &ConvShape, plan: Plan, data: bool) {
        let (db, dx) = if data {
            (Some(&mut self.db[..]), Some(&mut self.dx[..]))
        } else {
            (None, None)
        };
        conv::backward_as(
            plan,
            s,
            conv::Sizes::Constant,
            black_box(&self.x),
            &self.w,
            &self.y,
            &mut self.dw,
            db,
            dx,
            self.n,
            &mut self.scratch,
        );
        black_box(&mut self.dw);
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
    println!("conv64 at {} samples per call, one thread", samples());
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
        let fwd = forward_flops(s, bufs.n) / best_seconds(|| bufs.forward(s, plan)) / 1e9;
        let bwd = 2.0 * forward_flops(s, bufs.n) / best_seconds(|| bufs.backward(s, plan, true)) / 1e9;
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

/// One line per ResNet shape and path on the selected instruction set: forward,
/// weight gradient alone and the whole backward pass, GFLOP/s and % of peak.
fn resnet_table() {
    let isa = cnnc::compute::isa::selected();
    let peak = (0..3).map(|_| measure_peak_gflops_with(isa)).fold(0.0, f64::max);
    let n = samples();
    println!("ResNet convolutions at {n} samples per call, one thread, {isa}: FMA peak {peak:.1} GFLOP/s");
    println!(
        "{:<18} {:<10} {:>16} {:>16} {:>16}",
        "shape", "path", "forward (%pk)", "dW (%pk)", "dW+dX (%pk)"
    );
    let pct = |g: f64| format!("{g:.1} ({:.0}%)", 100.0 * g / peak);
    let only = std::env::var("CONV_ONLY").unwrap_or_default();
    for (name, s) in resnet_shapes().into_iter().filter(|(n, _)| n.contains(only.as_str())) {
        let mut bufs = Buffers::new(&s);
        for plan in Plan::ALL.into_iter().filter(|&p| s.allows(p)) {
            let flops = forward_flops(&s, bufs.n);
            let fwd = flops / best_seconds(|| bufs.forward(&s, plan)) / 1e9;
            let dw = flops / best_seconds(|| bufs.backward(&s, plan, false)) / 1e9;
            let bwd = 2.0 * flops / best_seconds(|| bufs.backward(&s, plan, true)) / 1e9;
            let chosen = if s.plan() == plan { "*" } else { "" };
            println!(
                "{:<18} {:<10} {:>16} {:>16} {:>16}",
                name,
                format!("{plan:?}{chosen}"),
                pct(fwd),
                pct(dw),
                pct(bwd)
            );
        }
        let flops = forward_flops(&s, bufs.n);
        let fwd = flops / best_seconds(|| bufs.forward_dispatched(&s)) / 1e9;
        let dw = flops / best_seconds(|| bufs.backward_dispatched(&s, false)) / 1e9;
        let bwd = 2.0 * flops / best_seconds(|| bufs.backward_dispatched(&s, true)) / 1e9;
        println!(
            "{:<18} {:<10} {:>16} {:>16} {:>16}",
            name,
            "layers",
            pct(fwd),
            pct(dw),
            pct(bwd)
        );
    }
}

fn criterion(c: &mut Criterion) {
    let s = &CONV64;
    let mut bufs = Buffers::new(s);
    for (name, factor) in [("conv64_fwd_b32", 1.0), ("conv64_bwd_b32", 2.0)] {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements((factor * forward_flops(s, bufs.n)) as u64));
        group.sample_size(10).measurement_time(Duration::from_secs(3));
        for (isa, plan) in variants(s) {
            set_isa(isa).expect("available");
            group.bench_function(BenchmarkId::new(isa.name(), format!("{plan:?}")), |bench| {
                if factor == 1.0 {
                    bench.iter(|| bufs.forward(s, plan))
                } else {
                    bench.iter(|| bufs.backward(s, plan, true))
                }
            });
        }
        group.finish();
    }
    set_isa(Isa::best()).expect("available");
}

fn main() {
    if let Some(which) = std::env::var_os("CONV_TABLE") {
        if which == "resnet" {
            resnet_table();
        } else {
            table();
        }
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    criterion(&mut c);
    c.final_summary();
}
