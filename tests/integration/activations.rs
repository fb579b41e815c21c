//! `Model::activations`: generated models give every layer's output, named and
//! ordered as the interpreter gives them, with the same values (1e-5), on fixture
//! models that cover every layer kind, fused activations (whose pre-activation
//! outputs generated code computes again), batchnorm in inference, residual
//! blocks with and without a projection, normalize and dropout.

use crate::common::input;

use cnnc::interp::Interpreter;
use cnnc::ndarray::{ArrayD, IxDyn};
use cnnc::{Error, Model};

mod m {
    cnn_macros::cnn!(file = "tests/fixtures/lenet_sgd_momentum/model.cnn");
    cnn_macros::cnn!(file = "tests/fixtures/residual_projection/model.cnn");
    cnn_macros::cnn!(file = "tests/fixtures/residual_identity/model.cnn");
    cnn_macros::cnn!(file = "tests/fixtures/bn1d_dense/model.cnn");
    cnn_macros::cnn!(file = "tests/fixtures/activations/model.cnn");
    cnn_macros::cnn!(file = "tests/fixtures/bce_binary/model.cnn");
    cnn_macros::cnn!(file = "tests/fixtures/conv_groups_depthwise/model.cnn");
    cnn_macros::cnn!(file = "tests/fixtures/avgpool_3_s2_pad1/model.cnn");
    cnn_macros::cnn!(file = "tests/fixtures_own/gelu/model.cnn");
    cnn_macros::cnn! {
        model Corners {
            input 3x9x8 normalize mean 0.5 0.4 0.3 std 0.2 0.25 0.3
            conv 4 kernel 3 pad 1 leaky_relu 0.1
            residual { conv 4 kernel 3 pad 1 batchnorm silu conv 4 kernel 1 } tanh
            maxpool 3 stride 2 pad 1 round ceil
            flatten
            dropout 0.5
            dense 6 sigmoid
            dense 3 softmax
            train { loss cross_entropy optimizer sgd lr 0.1 batch 3 }
        }
    }
}

/// `generated` and the interpreter of `source` with the same parameters and
/// (varied) batchnorm statistics give the same activations for `samples` inputs.
fn agrees(generated: &mut dyn Model, source: &str, samples: usize) {
    let model = cnnc::compile(source).expect("a valid model").remove(0);
    let mut interp = Interpreter::new(model, 0);
    for name in generated.param_names() {
        let p = generated.param(&name).expect("listed");
        interp.set_param(&name, p.view()).expect("same parameters");
    }
    for (k, name) in generated.buffer_names().into_iter().enumerate() {
        let b = generated.buffer(&name).expect("listed");
        let varied = ArrayD::from_shape_fn(b.raw_dim(), |ix| 0.5 + 0.1 * ((ix[0] + k) % 5) as f32);
        generated.set_buffer(&name, varied.view()).expect("a buffer");
        interp.set_buffer(&name, varied.view()).expect("a buffer");
    }
    let mut shape = vec![samples];
    shape.extend_from_slice(generated.input_shape());
    let x = input(&shape);
    let got = generated.activations(x.view()).expect("generated activations");
    let want = interp.activations(x.view()).expect("interpreter activations");
    let names = |a: &[(String, ArrayD<f32>)]| a.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want));
    for ((name, g), (_, w)) in got.iter().zip(&want) {
        assert_eq!(g.shape(), w.shape(), "{name}");
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{name}[{i}]: generated {a}, interpreter {b}"
            );
        }
    }
    // The last layer's output is the model's (to rounding: `predict` runs the
    // inference plan, with batchnorms folded into the convolutions before them).
    let out = generated.predict(x.view()).expect("predict");
    let last = &got.last().expect("a layer").1;
    assert_eq!(last.shape(), out.shape());
    for (a, b) in last.iter().zip(&out) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "activations {a}, predict {b}");
    }
}

#[test]
fn lenet_names_every_layer_in_order() {
    let mut model = m::LenetSgdMomentum::new(1);
    let x = input(&[2, 1, 28, 28]);
    let acts = model.activations(x.view()).unwrap();
    let names: Vec<&str> = acts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "conv1", "relu1", "maxpool1", "conv2", "relu2", "maxpool2", "flatten1", "dense1", "relu3", "dense2",
            "relu4", "dense3", "softmax1"
        ]
    );
    assert_eq!(acts[0].1.shape(), [2, 6, 28, 28]);
    assert_eq!(acts[5].1.shape(), [2, 16, 5, 5]);
    // conv1 is before its relu: it has negative values, relu1 has none.
    assert!(acts[0].1.iter().any(|&v| v < 0.0));
    assert!(acts[1].1.iter().all(|&v| v >= 0.0));
}

#[test]
fn lenet() {
    agrees(
        &mut m::LenetSgdMomentum::new(2),
        include_str!("../fixtures/lenet_sgd_momentum/model.cnn"),
        // More than one worker's share of a batch of 8: several chunks.
        11,
    );
}

#[test]
fn residual_blocks_and_batchnorm() {
    let source = include_str!("../fixtures/residual_projection/model.cnn");
    agrees(&mut m::ResidualProjection::new(3), source, 5);
    let source = include_str!("../fixtures/residual_identity/model.cnn");
    agrees(&mut m::ResidualIdentity::new(4), source, 3);
    agrees(
        &mut m::Bn1dDense::new(5),
        include_str!("../fixtures/bn1d_dense/model.cnn"),
        7,
    );
}

#[test]
fn activations_dense_and_conv_kinds() {
    let source = include_str!("../fixtures/activations/model.cnn");
    agrees(&mut m::Activations::new(6), source, 4);
    agrees(
        &mut m::BceBinary::new(7),
        include_str!("../fixtures/bce_binary/model.cnn"),
        3,
    );
    let source = include_str!("../fixtures/conv_groups_depthwise/model.cnn");
    agrees(&mut m::ConvGroupsDepthwise::new(8), source, 2);
    let source = include_str!("../fixtures/avgpool_3_s2_pad1/model.cnn");
    agrees(&mut m::Avgpool3S2Pad1::new(9), source, 3);
    agrees(
        &mut m::GeluCase::new(10),
        include_str!("../fixtures_own/gelu/model.cnn"),
        5,
    );
}

#[test]
fn normalize_dropout_and_a_residual_join_with_its_activation() {
    let source = "model Corners {
        input 3x9x8 normalize mean 0.5 0.4 0.3 std 0.2 0.25 0.3
        conv 4 kernel 3 pad 1 leaky_relu 0.1
        residual { conv 4 kernel 3 pad 1 batchnorm silu conv 4 kernel 1 } tanh
        maxpool 3 stride 2 pad 1 round ceil
        flatten
        dropout 0.5
        dense 6 sigmoid
        dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.1 batch 3 }
    }";
    let mut model = m::Corners::new(11);
    agrees(&mut model, source, 7);
    let acts = model.activations(input(&[1, 3, 9, 8]).view()).unwrap();
    let names: Vec<&str> = acts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..9],
        [
            "conv1",
            "leaky_relu1",
            "residual1.conv1",
            "residual1.batchnorm1",
            "residual1.silu1",
            "residual1.conv2",
            "residual1",
            "tanh1",
            "maxpool1"
        ]
    );
}

#[test]
fn a_wrong_input_is_an_error_naming_both_shapes() {
    let mut model = m::LenetSgdMomentum::new(0);
    let err = model
        .activations(ArrayD::zeros(IxDyn(&[1, 1, 28, 27])).view())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("[1, 1, 28, 27]") && text.contains("[N, 1, 28, 28]"),
        "{text}"
    );
    let source = include_str!("../fixtures/lenet_sgd_momentum/model.cnn");
    let mut interp = Interpreter::from_source(source, "LenetSgdMomentum", 0).unwrap();
    assert!(interp
        .activations(ArrayD::zeros(IxDyn(&[1, 3, 28, 28])).view())
        .is_err());
}

/// A `Model` written by hand gets the provided method: an error, not a panic.
struct Constant;

impl Model for Constant {
    fn input_shape(&self) -> &[usize] {
        &[1]
    }
    fn output_shape(&self) -> &[usize] {
        &[1]
    }
    fn param_names(&self) -> Vec<String> {
        Vec::new()
    }
    fn param(&self, _: &str) -> Option<ArrayD<f32>> {
        None
    }
    fn set_param(&mut self, name: &str, _: cnnc::ndarray::ArrayViewD<'_, f32>) -> Result<(), Error> {
        Err(Error::UnknownParam {
            name: name.into(),
            known: Vec::new(),
        })
    }
    fn predict(&mut self, x: cnnc::ndarray::ArrayViewD<'_, f32>) -> Result<ArrayD<f32>, Error> {
        Ok(x.to_owned())
    }
}

#[test]
fn a_model_without_activations_says_so() {
    let err = Constant.activations(ArrayD::zeros(IxDyn(&[1, 1])).view()).unwrap_err();
    assert!(err.to_string().contains("activations"), "{err}");
}
