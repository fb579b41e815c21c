//! `sgemm` on the shapes of LeNet and a small VGG block, for every kernel this CPU
//! can run. Criterion reports throughput in elements/s where one element is one
//! FLOP, so `Gelem/s` reads as GFLOP/s.
//!
//! `GEMM_TABLE=1 cargo bench --bench gemm` instead prints one line per shape and
//! kernel (best of several timed runs, GFLOP/s and percent of the measured
//! single-thread FMA peak), which is quicker to read than Criterion's output.
//! `GEMM_FILTER=<substring>` restricts either mode to matching shape names.

use cnnc::compute::gemm::{selected_isa, sgemm_with, workspace_len, Isa};
use cnnc::compute::peak::{measure_peak_gflops, measure_peak_gflops_with};
use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// One product: `m x k` by `k x n`; `ta`/`tb` store A/B transposed (column-major).
struct Shape {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
    ta: bool,
    tb: bool,
}

const fn shape(name: &'static str, m: usize, n: usize, k: usize, ta: bool, tb: bool) -> Shape {
    Shape { name, m, n, k, ta, tb }
}

/// Conv forward W[F x K]·Xcol[K x P]; dW = dY·Xcolᵀ; dX = Wᵀ·dY; dense forward
/// X·Wᵀ, backward dW = dYᵀ·X and dX = dY·W. `bN` = the batch folded into n (or k).
const SHAPES: &[Shape] = &[
    shape("conv1_fwd", 6, 784, 25, false, false),
    shape("conv2_fwd", 16, 100, 150, false, false),
    shape("vgg1_fwd", 32, 1024, 27, false, false),
    shape("vgg2_fwd", 32, 1024, 288, false, false),
    shape("vgg3_fwd", 64, 256, 288, false, false),
    shape("vgg4_fwd", 64, 256, 576, false, false),
    shape("vgg5_fwd", 64, 1024, 576, false, false),
    shape("conv1_fwd_b64", 6, 784 * 64, 25, false, false),
    shape("conv2_fwd_b64", 16, 100 * 64, 150, false, false),
    shape("vgg1_fwd_b32", 32, 1024 * 32, 27, false, false),
    shape("vgg2_fwd_b32", 32, 1024 * 32, 288, false, false),
    shape("vgg3_fwd_b32", 64, 256 * 32, 288, false, false),
    shape("vgg4_fwd_b32", 64, 256 * 32, 576, false, false),
    shape("vgg5_fwd_b32", 64, 1024 * 32, 576, false, false),
    shape("dense1_fwd", 64, 120, 400, false, true),
    shape("dense2_fwd", 64, 84, 120, false, true),
    shape("dense3_fwd", 64, 10, 84, false, true),
    shape("vggfc_fwd", 32, 256, 4096, false, true),
    shape("conv1_dw", 6, 25, 784, false, true),
    shape("conv2_dw", 16, 150, 100, false, true),
    shape("vgg2_dw", 32, 288, 1024, false, true),
    shape("vgg4_dw", 64, 576, 256, false, true),
    shape("vgg5_dw", 64, 576, 1024, false, true),
    shape("conv1_dw_b64", 6, 25, 784 * 64, false, true),
    shape("vgg5_dw_b32", 64, 576, 1024 * 32, false, true),
    shape("conv1_dx", 25, 784, 6, true, false),
    shape("conv2_dx", 150, 100, 16, true, false),
    shape("vgg2_dx", 288, 1024, 32, true, false),
    shape("vgg4_dx", 576, 256, 64, true, false),
    shape("vgg5_dx", 576, 1024, 64, true, false),
    shape("vgg5_dx_b32", 576, 1024 * 32, 64, true, false),
    shape("dense1_dw", 120, 400, 64, true, false),
    shape("dense1_dx", 64, 400, 120, false, false),
    shape("vggfc_dw", 256, 4096, 32, true, false),
    shape("vggfc_dx", 32, 4096, 256, false, false),
];

/// Operands and workspace for one shape, allocated once.
struct Operands {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    work: Vec<f32>,
    strides: [usize; 6],
}

impl Operands {
    fn new(s: &Shape) -> Operands {
        let (rsa, csa) = if s.ta { (1, s.m) } else { (s.k, 1) };
        let (rsb, csb) = if s.tb { (1, s.k) } else { (s.n, 1) };
        let fill = |len: usize| {
            (0..len)
                .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
                .collect::<Vec<_>>()
        };
        Operands {
            a: fill(s.m * s.k),
            b: fill(s.k * s.n),
            c: vec![0.0; s.m * s.n],
            work: vec![0.0; workspace_len(s.m, s.n, s.k)],
            strides: [rsa, csa, rsb, csb, s.n, 1],
        }
    }

    fn run(&mut self, kernel: Isa, s: &Shape) {
        let [rsa, csa, rsb, csb, rsc, csc] = self.strides;
        let (a, b) = (black_box(&self.a[..]), black_box(&self.b[..]));
        sgemm_with(
            kernel,
            s.m,
            s.n,
            s.k,
            1.0,
            a,
            rsa,
            csa,
            b,
            rsb,
            csb,
            0.0,
            &mut self.c,
            rsc,
            csc,
            &mut self.work,
        )
        .expect("sgemm");
        black_box(&mut self.c);
    }
}

fn flops(s: &Shape) -> f64 {
    2.0 * (s.m * s.n * s.k) as f64
}

fn kernels() -> Vec<Isa> {
    Isa::ALL.into_iter().rev().filter(|k| k.is_available()).collect()
}

fn selected_shapes() -> impl Iterator<Item = &'static Shape> {
    let filter = std::env::var("GEMM_FILTER").unwrap_or_default();
    SHAPES.iter().filter(move |s| s.name.contains(&filter))
}

/// Best time of one call: batches of calls lasting about 20 ms, best of 7.
fn best_seconds(mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    f();
    let once = start.elapsed().as_secs_f64().max(1e-7);
    let reps = ((0.02 / once) as usize).clamp(1, 100_000);
    (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..reps {
                f();
            }
            start.elapsed().as_secs_f64() / reps as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn table() {
    let kernels = kernels();
    let peaks: Vec<f64> = kernels.iter().map(|&k| measure_peak_gflops_with(k)).collect();
    println!(
        "selected kernel: {}; single-thread FMA peak {:.1} GFLOP/s",
        selected_isa(),
        measure_peak_gflops()
    );
    for (k, p) in kernels.iter().zip(&peaks) {
        println!("  peak with {k} vectors: {p:.1} GFLOP/s");
    }
    print!("{:<16} {:>6} {:>6} {:>6}", "shape", "m", "n", "k");
    for k in &kernels {
        print!(" {:>16}", format!("{k} GF/s (%pk)"));
    }
    println!();
    let peak = peaks.iter().copied().fold(0.0, f64::max);
    for s in selected_shapes() {
        let mut ops = Operands::new(s);
        print!("{:<16} {:>6} {:>6} {:>6}", s.name, s.m, s.n, s.k);
        for &k in &kernels {
            let gflops = flops(s) / best_seconds(|| ops.run(k, s)) / 1e9;
            print!(" {:>16}", format!("{gflops:.1} ({:.0}%)", 100.0 * gflops / peak));
        }
        println!();
    }
}

fn criterion(c: &mut Criterion) {
    println!(
        "selected kernel: {}; single-thread FMA peak {:.1} GFLOP/s",
        selected_isa(),
        measure_peak_gflops()
    );
    for s in selected_shapes() {
        let mut group = c.benchmark_group(format!("sgemm/{}", s.name));
        group.throughput(Throughput::Elements(flops(s) as u64));
        if flops(s) > 2e8 {
            group.sample_size(10).measurement_time(Duration::from_secs(2));
        }
        let mut ops = Operands::new(s);
        for k in kernels() {
            group.bench_function(BenchmarkId::from_parameter(k.name()), |bench| {
                bench.iter(|| ops.run(k, s))
            });
        }
        group.finish();
    }
}

fn main() {
    if std::env::var_os("GEMM_TABLE").is_some() {
        table();
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    criterion(&mut c);
    c.final_summary();
}
