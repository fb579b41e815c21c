//! The same models through generated code and through the interpreter: one
//! generic body compares outputs, gradients and three training steps.

use cnnc::interp::Interpreter;
use cnnc::ndarray::{Array1, ArrayD, Dimension, IxDyn};
use cnnc::{Model, Target, Train};

const EVERYTHING: &str = "
model Everything {
    input 3x12x10
    stem: conv 4 kernel 3x2 stride 2x1 pad top 1 left 1 leaky_relu 0.1
    maxpool 3 stride 2 pad 1 round ceil
    conv 6 kernel 2 pad same tanh
    avgpool 2 round ceil
    flatten
    dense 7 sigmoid
    dense 5 softmax
    train { loss cross_entropy optimizer adamw lr 0.01 weight_decay 0.05 batch 3 }
}";

const BINARY: &str = "
model Binary {
    input 2x6x6
    conv 3 kernel 3 relu
    avgpool global
    flatten
    dense 1 sigmoid
    train { loss binary_cross_entropy optimizer sgd lr 0.1 momentum 0.5 nesterov weight_decay 0.01 batch 4 }
}";

const REGRESSION: &str = "
model Regression {
    input 2x8x8
    conv 3 kernel 3 stride 2 round floor
    maxpool 2 round ceil
    relu
    flatten
    dense 5 softmax
    dense 4 relu
    dense 3
    train { loss mse optimizer adam lr 0.01 beta1 0.8 eps 1e-6 batch 2 }
}";

cnn_macros::cnn! {
    model Everything {
        input 3x12x10
        stem: conv 4 kernel 3x2 stride 2x1 pad top 1 left 1 leaky_relu 0.1
        maxpool 3 stride 2 pad 1 round ceil
        conv 6 kernel 2 pad same tanh
        avgpool 2 round ceil
        flatten
        dense 7 sigmoid
        dense 5 softmax
        train { loss cross_entropy optimizer adamw lr 0.01 weight_decay 0.05 batch 3 }
    }
    model Binary {
        input 2x6x6
        conv 3 kernel 3 relu
        avgpool global
        flatten
        dense 1 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.1 momentum 0.5 nesterov weight_decay 0.01 batch 4 }
    }
    model Regression {
        input 2x8x8
        conv 3 kernel 3 stride 2 round floor
        maxpool 2 round ceil
        relu
        flatten
        dense 5 softmax
        dense 4 relu
        dense 3
        train { loss mse optimizer adam lr 0.01 beta1 0.8 eps 1e-6 batch 2 }
    }
}

cnn_macros::cnn!(file = "examples/models/lenet.cnn");

/// Deterministic, varied inputs.
fn input(shape: &[usize]) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(shape), |ix| {
        let k = ix.slice().iter().enumerate().map(|(i, &v)| (i + 3) * v).sum::<usize>();
        ((k * 37 % 101) as f32 / 50.0) - 1.0
    })
}

fn close(what: &str, got: &ArrayD<f32>, want: &ArrayD<f32>, rtol: f32, atol: f32) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        assert!(
            (g - w).abs() <= atol + rtol * w.abs(),
            "{what}[{i}]: generated {g}, interpreter {w}"
        );
    }
}

/// The generic body: `a` and `b` start from the same parameters and must agree.
fn agree(a: &mut dyn Train, b: &mut dyn Train, x: &ArrayD<f32>, target: Target<'_>) {
    for name in a.param_names() {
        let p = a.param(&name).expect("listed parameter");
        b.set_param(&name, p.view()).expect("same parameters");
    }
    assert_eq!(a.param_names(), b.param_names());
    assert_eq!(a.output_shape(), b.output_shape());
    close(
        "output",
        &a.predict(x.view()).unwrap(),
        &b.predict(x.view()).unwrap(),
        1e-4,
        1e-6,
    );
    let (ga, gb) = (
        a.gradients(x.view(), target.clone()).unwrap(),
        b.gradients(x.view(), target.clone()).unwrap(),
    );
    assert!(
        (ga.loss - gb.loss).abs() <= 1e-4 * gb.loss.abs() + 1e-6,
        "loss {} vs {}",
        ga.loss,
        gb.loss
    );
    close("input gradient", &ga.input, &gb.input, 1e-3, 1e-5);
    for ((na, pa), (nb, pb)) in ga.params.iter().zip(&gb.params) {
        assert_eq!(na, nb);
        close(&format!("gradient of {na}"), pa, pb, 1e-3, 1e-5);
    }
    for step in 0..3 {
        let (la, lb) = (
            a.train_step(x.view(), target.clone()).unwrap(),
            b.train_step(x.view(), target.clone()).unwrap(),
        );
        assert!(
            (la - lb).abs() <= 1e-4 * lb.abs() + 1e-6,
            "step {step} loss {la} vs {lb}"
        );
    }
    for name in a.param_names() {
        close(
            &format!("{name} after 3 steps"),
            &a.param(&name).unwrap(),
            &b.param(&name).unwrap(),
            1e-3,
            1e-5,
        );
    }
}

fn interpreter(source: &str, name: &str) -> Interpreter {
    Interpreter::from_source(source, name, 0).unwrap()
}

#[test]
fn everything_with_chunked_batches() {
    // 7 samples with BATCH 3: chunks of 3, 3 and 1.
    let x = input(&[7, 3, 12, 10]);
    let labels = Array1::from_shape_fn(7, |i| (i * 3) % 5);
    agree(
        &mut Everything::new(1),
        &mut interpreter(EVERYTHING, "Everything"),
        &x,
        Target::Labels(labels.view()),
    );
}

#[test]
fn binary_cross_entropy_and_global_pool() {
    let x = input(&[5, 2, 6, 6]);
    let t = ArrayD::from_shape_fn(IxDyn(&[5, 1]), |ix| (ix[0] % 2) as f32);
    agree(
        &mut Binary::new(2),
        &mut interpreter(BINARY, "Binary"),
        &x,
        Target::Values(t.view()),
    );
}

#[test]
fn mse_with_standalone_activation_and_inner_softmax() {
    let x = input(&[3, 2, 8, 8]);
    let t = ArrayD::from_shape_fn(IxDyn(&[3, 3]), |ix| ix[0] as f32 - ix[1] as f32 * 0.5);
    agree(
        &mut Regression::new(3),
        &mut interpreter(REGRESSION, "Regression"),
        &x,
        Target::Values(t.view()),
    );
}

#[test]
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
    let i9 = Interpreter::from_source(EVERYTHING, "Everything", 9).unwrap();
    for name in g.param_names() {
        assert_eq!(g.param(&name), i9.param(&name), "{name}");
    }
}
