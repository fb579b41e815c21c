//! The run-time plan executor (`cnnc::rt::exec`) against generated code and the
//! fixtures: every fixture case through the executor on every instruction set,
//! and the executor's outputs, gradients and training steps equal to generated
//! code's bit for bit (same plan, same kernels, same order), with batchnorm
//! phases, dropout, residual joins, every loss and chunked batches.

use crate::fixture_harness;

use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::rt::exec::Executor;
use cnnc::{Model, Target, Train};
use std::path::Path;

const MODELS: &str = include_str!("../interp_vs_generated.cnn");
cnn_macros::cnn!(file = "tests/interp_vs_generated.cnn");
cnn_macros::cnn!(file = "examples/models/lenet.cnn");
cnn_macros::cnn!(file = "examples/models/resnet8.cnn");
cnn_macros::cnn!(file = "tests/exec_vs_generated.cnn");
const BLOCKS: &str = include_str!("../exec_vs_generated.cnn");

fn executor(source: &str, name: &str, seed: u64) -> Executor {
    Executor::from_source(source, Some(name), seed).unwrap()
}

fn file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// Every case of `dir` through the executor, as `generated_fixtures.rs` runs generated code.
fn every_case(dir: &Path) {
    for name in fixture_harness::case_names(dir) {
        let text = std::fs::read_to_string(dir.join(&name).join("model.cnn")).unwrap();
        let trains = cnnc::compile(&text).unwrap()[0].train.is_some();
        let report = if trains {
            fixture_harness::check_case(&dir.join(&name), &|t| -> Box<dyn Train> {
                Box::new(Executor::from_source(t, None, 0).unwrap())
            })
        } else {
            fixture_harness::check_forward_case(&dir.join(&name), &|t| -> Box<dyn Model> {
                Box::new(Executor::from_source(t, None, 0).unwrap())
            })
        };
        println!("{} [executor]", report.table_row());
        assert!(
            report.failures.is_empty(),
            "fixture {name} fails through the executor:\n{}",
            report.failures.join("\n")
        );
        assert!(!report.groups.is_empty(), "fixture {name}: nothing was compared");
    }
}

#[test]
fn every_fixture_passes_through_the_executor_on_every_isa() {
    crate::on_every_isa(|isa| {
        eprintln!("instruction set {isa}");
        every_case(&fixture_harness::fixtures_dir());
        every_case(&fixture_harness::own_fixtures_dir());
    });
}

fn same(what: &str, a: &ArrayD<f32>, b: &ArrayD<f32>) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    let differing = a.iter().zip(b).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
    assert_eq!(
        differing, 0,
        "{what}: {differing} values differ between generated code and the executor"
    );
}

/// `a` (generated) and `b` (executor) from the same seed give the same bits.
fn identical(a: &mut dyn Train, b: &mut dyn Train, x: &ArrayD<f32>, target: Target<'_>) {
    assert_eq!(a.param_names(), b.param_names());
    assert_eq!(a.buffer_names(), b.buffer_names());
    for name in a.param_names() {
        same(
            &format!("initial {name}"),
            &a.param(&name).unwrap(),
            &b.param(&name).unwrap(),
        );
    }
    same("output", &a.predict(x.view()).unwrap(), &b.predict(x.view()).unwrap());
    let (ga, gb) = (
        a.gradients(x.view(), target.clone()).unwrap(),
        b.gradients(x.view(), target.clone()).unwrap(),
    );
    assert_eq!(ga.loss.to_bits(), gb.loss.to_bits(), "loss {} vs {}", ga.loss, gb.loss);
    same("input gradient", &ga.input, &gb.input);
    for ((na, pa), (_, pb)) in ga.params.iter().zip(&gb.params) {
        same(&format!("gradient of {na}"), pa, pb);
    }
    for step in 0..3 {
        let (la, lb) = (
            a.train_step(x.view(), target.clone()).unwrap(),
            b.train_step(x.view(), target.clone()).unwrap(),
        );
        assert_eq!(la.to_bits(), lb.to_bits(), "step {step}: loss {la} vs {lb}");
    }
    for name in a.param_names() {
        same(
            &format!("{name} after 3 steps"),
            &a.param(&name).unwrap(),
            &b.param(&name).unwrap(),
        );
    }
    for name in a.buffer_names() {
        same(
            &format!("{name} after 3 steps"),
            &a.buffer(&name).unwrap(),
            &b.buffer(&name).unwrap(),
        );
    }
    same(
        "output after 3 steps",
        &a.predict(x.view()).unwrap(),
        &b.predict(x.view()).unwrap(),
    );
    let (acts_a, acts_b) = (a.activations(x.view()).unwrap(), b.activations(x.view()).unwrap());
    assert_eq!(acts_a.len(), acts_b.len());
    for ((name, va), (_, vb)) in acts_a.iter().zip(&acts_b) {
        same(&format!("activation {name}"), va, vb);
    }
}

#[test]
fn the_executor_computes_what_generated_code_computes_bit_for_bit() {
    crate::on_every_isa(|isa| {
        eprintln!("instruction set {isa}");
        let x = common_input(&[7, 3, 12, 10]);
        let labels = Array1::from_shape_fn(7, |i| (i * 3) % 5);
        identical(
            &mut Everything::new(1),
            &mut executor(MODELS, "Everything", 1),
            &x,
            Target::Labels(labels.view()),
        );

        let x = common_input(&[5, 2, 6, 6]);
        let t = ArrayD::from_shape_fn(IxDyn(&[5, 1]), |ix| (ix[0] % 2) as f32);
        identical(
            &mut Binary::new(2),
            &mut executor(MODELS, "Binary", 2),
            &x,
            Target::Values(t.view()),
        );

        let x = common_input(&[3, 2, 8, 8]);
        let t = ArrayD::from_shape_fn(IxDyn(&[3, 3]), |ix| ix[0] as f32 - ix[1] as f32 * 0.5);
        identical(
            &mut Regression::new(3),
            &mut executor(MODELS, "Regression", 3),
            &x,
            Target::Values(t.view()),
        );

        let x = common_input(&[10, 1, 28, 28]);
        let labels = Array1::from_shape_fn(10, |i| i);
        let lenet = file("examples/models/lenet.cnn");
        identical(
            &mut LeNet::new(4),
            &mut executor(&lenet, "LeNet", 4),
            &x,
            Target::Labels(labels.view()),
        );

        // Batchnorm phases, residual joins with projections, fused activations.
        let x = common_input(&[6, 3, 32, 32]);
        let labels = Array1::from_shape_fn(6, |i| i % 10);
        let resnet = file("examples/models/resnet8.cnn");
        identical(
            &mut ResNet8::new(5),
            &mut executor(&resnet, "ResNet8", 5),
            &x,
            Target::Labels(labels.view()),
        );

        // A strided blocked convolution with a reduction longer than 256.
        let x = common_input(&[3, 32, 34, 34]);
        let labels = Array1::from_shape_fn(3, |i| i % 3);
        identical(
            &mut Strided::new(8),
            &mut executor(BLOCKS, "Strided", 8),
            &x,
            Target::Labels(labels.view()),
        );

        // Normalize, grouped convolutions, silu/gelu, dropout, batchnorm over the whole batch.
        let x = common_input(&[4, 3, 8, 8]);
        let labels = Array1::from_shape_fn(4, |i| i % 2);
        identical(
            &mut Blocks::new(6),
            &mut executor(BLOCKS, "Blocks", 6),
            &x,
            Target::Labels(labels.view()),
        );

        // v3: every join, references across blocks and phases, convtranspose, upsampling.
        let x = common_input(&[5, 3, 8, 8]);
        let labels = Array1::from_shape_fn(5, |i| (i * 2) % 3);
        identical(
            &mut Graph::new(7),
            &mut executor(MODELS, "Graph", 7),
            &x,
            Target::Labels(labels.view()),
        );

        // v3: label maps with ignored positions, split across chunks.
        let x = common_input(&[7, 2, 8, 8]);
        let maps = cnnc::ndarray::Array3::from_shape_fn((7, 8, 8), |(i, y, x)| match (i + y * 3 + x) % 5 {
            4 => 255,
            k => k % 3,
        });
        identical(
            &mut Segment::new(8),
            &mut executor(MODELS, "Segment", 8),
            &x,
            Target::LabelMaps(maps.view()),
        );
    });
}

fn common_input(shape: &[usize]) -> ArrayD<f32> {
    crate::common::input(shape)
}
