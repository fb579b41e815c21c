//! The same models through generated code and through the interpreter: one
//! generic body (`common::agree`) compares outputs, gradients and three training steps,
//! on every matrix-product kernel the CPU has.

use crate::common;

use common::{agree, input};

use cnnc::interp::Interpreter;
use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::{Model, Target};

/// The models both implementations run (and the interpreter reads by name).
const MODELS: &str = include_str!("../interp_vs_generated.cnn");
cnn_macros::cnn!(file = "tests/interp_vs_generated.cnn");

cnn_macros::cnn!(file = "examples/models/lenet.cnn");

fn interpreter(source: &str, name: &str) -> Interpreter {
    Interpreter::from_source(source, name, 0).unwrap()
}

/// Every model through every matrix-product kernel this CPU has (portable,
/// AVX2, AVX-512): the vector paths and the fallback must all agree with the
/// interpreter. One test, because the kernel choice is process-wide.
#[test]
fn every_kernel_agrees_with_the_interpreter() {
    crate::on_every_isa(|isa| {
        eprintln!("instruction set {isa}");
        everything_with_chunked_batches();
        binary_cross_entropy_and_global_pool();
        mse_with_standalone_activation_and_inner_softmax();
        lenet();
        graph_with_every_join();
        segmentation_with_ignored_positions();
        wide_maps_in_chunks_of_a_sample_or_two();
    });
}

fn wide_maps_in_chunks_of_a_sample_or_two() {
    // The phases of a worker's 3 or 4 samples run one or two at a time (checked
    // here, so the comparison cannot silently lose its chunks).
    let models = cnnc::compile(MODELS).unwrap();
    let wide = models.iter().find(|m| m.name == "Wide").unwrap();
    let plan = cnnc::codegen::plan::Plan::new(wide);
    let chunks: Vec<usize> = (0..plan.phases())
        .map(|p| cnnc::codegen::chunk::phase(&plan, p, true))
        .collect();
    assert!(
        chunks.iter().filter(|&&c| c == 1).count() >= 2,
        "backward chunks {chunks:?}"
    );
    let x = input(&[7, 3, 40, 40]);
    let labels = Array1::from_shape_fn(7, |i| (i * 2) % 3);
    agree(
        &mut Wide::new(8),
        &mut interpreter(MODELS, "Wide"),
        &x,
        Target::Labels(labels.view()),
    );
}

fn graph_with_every_join() {
    let x = input(&[5, 3, 8, 8]);
    let labels = Array1::from_shape_fn(5, |i| (i * 2) % 3);
    agree(
        &mut Graph::new(5),
        &mut interpreter(MODELS, "Graph"),
        &x,
        Target::Labels(labels.view()),
    );
}

fn segmentation_with_ignored_positions() {
    // 7 samples with batch 3: label maps split across chunks and threads.
    let x = input(&[7, 2, 8, 8]);
    let maps = cnnc::ndarray::Array3::from_shape_fn((7, 8, 8), |(i, y, x)| match (i + y * 3 + x) % 5 {
        4 => 255,
        k => k % 3,
    });
    agree(
        &mut Segment::new(6),
        &mut interpreter(MODELS, "Segment"),
        &x,
        Target::LabelMaps(maps.view()),
    );
}

fn everything_with_chunked_batches() {
    // 7 samples with BATCH 3: chunks of 3, 3 and 1.
    let x = input(&[7, 3, 12, 10]);
    let labels = Array1::from_shape_fn(7, |i| (i * 3) % 5);
    agree(
        &mut Everything::new(1),
        &mut interpreter(MODELS, "Everything"),
        &x,
        Target::Labels(labels.view()),
    );
}

fn binary_cross_entropy_and_global_pool() {
    let x = input(&[5, 2, 6, 6]);
    let t = ArrayD::from_shape_fn(IxDyn(&[5, 1]), |ix| (ix[0] % 2) as f32);
    agree(
        &mut Binary::new(2),
        &mut interpreter(MODELS, "Binary"),
        &x,
        Target::Values(t.view()),
    );
}

fn mse_with_standalone_activation_and_inner_softmax() {
    let x = input(&[3, 2, 8, 8]);
    let t = ArrayD::from_shape_fn(IxDyn(&[3, 3]), |ix| ix[0] as f32 - ix[1] as f32 * 0.5);
    agree(
        &mut Regression::new(3),
        &mut interpreter(MODELS, "Regression"),
        &x,
        Target::Values(t.view()),
    );
}

fn lenet() {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/lenet.cnn")).unwrap();
    let x = input(&[10, 1, 28, 28]);
    let labels = Array1::from_shape_fn(10, |i| i);
    agree(
        &mut LeNet::new(4),
        &mut interpreter(&source, "LeNet"),
        &x,
        Target::Labels(labels.view()),
    );
}

#[test]
fn same_seed_same_initial_weights() {
    // Generated code and the interpreter draw the spec's initialization identically.
    let g = Everything::new(9);
    let i9 = Interpreter::from_source(MODELS, "Everything", 9).unwrap();
    for name in g.param_names() {
        assert_eq!(g.param(&name), i9.param(&name), "{name}");
    }
}
