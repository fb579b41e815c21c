//! The models of `examples/bench.rs` under criterion: LeNet training and inference,
//! the cifar_block fixture's training step, the spec's ResNet8 training and inference,
//! and the 64->64 conv forward on every
//! matrix-product kernel this CPU has. `cargo bench --bench models`.
//! (`cargo run --release --example bench` prints the same figures as JSON lines,
//! for comparison with `benches/torch_baseline.sh`.)

use cnnc::compute::gemm::{set_isa, Isa};
use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::{Target, Train};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

cnn_macros::cnn!(file = "examples/models/lenet.cnn");

cnn_macros::cnn!(file = "examples/models/resnet8.cnn");

cnn_macros::cnn!(file = "benches/models.cnn");

fn input(shape: &[usize]) -> ArrayD<f32> {
    let mut i = 0u32;
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        i = i.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (i >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    })
}

fn lenet(c: &mut Criterion) {
    let mut g = c.benchmark_group("lenet");
    let mut model = LeNet::new(0);
    let x = input(&[64, 1, 28, 28]);
    let y = Array1::from_shape_fn(64, |i| i % 10);
    g.throughput(Throughput::Elements(64));
    g.bench_function("train_b64", |b| {
        b.iter(|| model.train_step(x.view(), Target::Labels(y.view())).expect("step"))
    });
    let mut out = vec![0.0; 640];
    g.bench_function("infer_b64", |b| {
        b.iter(|| model.predict_into(x.view(), &mut out).expect("predict"))
    });
    let x1 = input(&[1, 1, 28, 28]);
    let mut out1 = vec![0.0; 10];
    g.throughput(Throughput::Elements(1));
    g.bench_function("infer_b1", |b| {
        b.iter(|| model.predict_into(x1.view(), &mut out1).expect("predict"))
    });
    g.finish();
}

fn cifar(c: &mut Criterion) {
    let mut g = c.benchmark_group("cifar_block");
    g.sample_size(20);
    let mut model = CifarBlock::new(0);
    let x = input(&[32, 3, 32, 32]);
    let y = Array1::from_shape_fn(32, |i| i % 10);
    g.throughput(Throughput::Elements(32));
    g.bench_function("train_b32", |b| {
        b.iter(|| model.train_step(x.view(), Target::Labels(y.view())).expect("step"))
    });
    g.finish();
}

/// `resnet8_train_b64`, `resnet8_infer_b64`, `resnet8_infer_b1`: batchnorm on the
/// batch's statistics in the training step, on the running statistics in inference.
fn resnet8(c: &mut Criterion) {
    let mut g = c.benchmark_group("resnet8");
    g.sample_size(20);
    let mut model = ResNet8::new(0);
    let x = input(&[64, 3, 32, 32]);
    let y = Array1::from_shape_fn(64, |i| i % 10);
    g.throughput(Throughput::Elements(64));
    g.bench_function("train_b64", |b| {
        b.iter(|| model.train_step(x.view(), Target::Labels(y.view())).expect("step"))
    });
    let mut out = vec![0.0; 640];
    g.bench_function("infer_b64", |b| {
        b.iter(|| model.predict_into(x.view(), &mut out).expect("predict"))
    });
    let x1 = input(&[1, 3, 32, 32]);
    let mut out1 = vec![0.0; 10];
    g.throughput(Throughput::Elements(1));
    g.bench_function("infer_b1", |b| {
        b.iter(|| model.predict_into(x1.view(), &mut out1).expect("predict"))
    });
    g.finish();
}

fn conv64(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv64_fwd");
    g.sample_size(20);
    let mut model = Conv64::new(0);
    let x = input(&[16, 64, 32, 32]);
    let mut out = vec![0.0; 16 * 64 * 32 * 32];
    // 2·N·OC·OH·OW·IC·KH·KW: criterion reports it as elements per second.
    g.throughput(Throughput::Elements(2 * 16 * 64 * 32 * 32 * 64 * 9));
    for kernel in Isa::ALL.into_iter().filter(|k| k.is_available()) {
        set_isa(kernel).expect("available");
        g.bench_with_input(BenchmarkId::from_parameter(kernel), &kernel, |b, _| {
            b.iter(|| model.predict_into(x.view(), &mut out).expect("forward"))
        });
    }
    set_isa(Isa::best()).expect("available");
    g.finish();
}

criterion_group!(benches, lenet, cifar, resnet8, conv64);
criterion_main!(benches);
