//! `cnnc::compile` (parse + check) on a generated 1,000-layer model.
//! Numbers only; no pass/fail timing (see tests/cli.rs for the end-to-end check).

use criterion::{criterion_group, criterion_main, Criterion};
use std::fmt::Write as _;

/// A model with `layers` layers: conv/relu/batch-norm-free blocks with every window
/// option, then a dense head.
fn deep_model(layers: usize) -> String {
    let mut src = String::from("// generated\nmodel Deep {\n    input 8x16x16\n");
    let body = layers - 3;
    for i in 0..body {
        let line = match i % 4 {
            0 => "conv 8 kernel 3 pad 1 relu",
            1 => "conv 8 kernel 3x3 stride 1 pad same",
            2 => "leaky_relu 0.1",
            _ => "maxpool 3 stride 1 pad 1 round floor",
        };
        let _ = writeln!(src, "    {line}");
    }
    src.push_str("    flatten\n    dense 10\n    softmax\n");
    src.push_str("    train { loss cross_entropy optimizer adam lr 1e-3 batch 32 epochs 1 }\n}\n");
    src
}

fn bench_check(c: &mut Criterion) {
    let src = deep_model(1000);
    let models = cnnc::compile(&src).expect("the generated model is valid");
    assert!(models[0].layers.len() >= 1000);
    c.bench_function("compile 1000-layer model", |b| {
        b.iter(|| cnnc::compile(std::hint::black_box(&src)))
    });
}

criterion_group!(benches, bench_check);
criterion_main!(benches);
