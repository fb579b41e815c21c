//! The interpreter's v2 behaviour through the `Model`/`Train` API: batchnorm's two
//! modes, running statistics and their limits, buffers, the step count, residual
//! blocks' parameter order and initialization, and `normalize`. Models are built as IR
//! (tests/interp_support/ir_builder.rs), independent of the parser.

use crate::ir_builder;

use cnnc::interp::Interpreter;
use cnnc::ir::{self, Activation, InitScheme, Loss, Shape};
use cnnc::ndarray::{arr1, ArrayD, IxDyn};
use cnnc::rt::init::Initializer;
use cnnc::{Error, Model, Target, Train};
use ir_builder::Seq;

fn tensor(shape: &[usize], values: Vec<f32>) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), values).expect("values fill the shape")
}

fn vector(values: &[f32]) -> ArrayD<f32> {
    arr1(values).into_dyn()
}

fn message<T: std::fmt::Debug>(r: Result<T, Error>) -> (Error, String) {
    let e = r.expect_err("an error");
    let text = e.to_string();
    (e, text)
}

/// `input 3, batchnorm, dense 2`, mse, sgd lr 0.1, `batch 4`: the batchnorm sees the
/// input itself.
fn bn_first() -> Interpreter {
    let input = Shape::Vector(3);
    let mut seq = Seq::new(input);
    seq.batchnorm().dense(2, true);
    Interpreter::new(ir_builder::model(input, seq, Loss::Mse, 4), 0)
}

/// Four samples of three features.
fn batch() -> ArrayD<f32> {
    tensor(
        &[4, 3],
        vec![1.0, -2.0, 0.5, 3.0, 0.0, 0.5, -1.0, 2.0, 0.5, 1.0, 4.0, 0.5],
    )
}

fn column_stats(x: &ArrayD<f32>, c: usize) -> (f32, f32) {
    let col: Vec<f32> = (0..x.shape()[0]).map(|s| x[[s, c]]).collect();
    let n = col.len() as f32;
    let mean = col.iter().sum::<f32>() / n;
    let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, var)
}

#[test]
fn buffers_start_at_mean_0_and_variance_1_and_batchnorm_at_weight_1_bias_0() {
    let m = bn_first();
    assert_eq!(m.buffer_names(), ["batchnorm1.running_mean", "batchnorm1.running_var"]);
    assert_eq!(m.buffer("batchnorm1.running_mean").unwrap(), vector(&[0.0; 3]));
    assert_eq!(m.buffer("batchnorm1.running_var").unwrap(), vector(&[1.0; 3]));
    assert_eq!(m.param("batchnorm1.weight").unwrap(), vector(&[1.0; 3]));
    assert_eq!(m.param("batchnorm1.bias").unwrap(), vector(&[0.0; 3]));
    assert_eq!(m.batches_tracked(), 0);
    assert!(m.buffer("batchnorm1.running_std").is_none());
}

#[test]
fn predict_normalizes_with_the_running_statistics() {
    let mut m = bn_first();
    m.set_buffer("batchnorm1.running_mean", vector(&[1.0, -1.0, 0.0]).view())
        .unwrap();
    m.set_buffer("batchnorm1.running_var", vector(&[4.0, 1.0, 0.25]).view())
        .unwrap();
    m.set_param("batchnorm1.weight", vector(&[2.0, 1.0, 1.0]).view())
        .unwrap();
    m.set_param("batchnorm1.bias", vector(&[0.0, 0.5, 0.0]).view()).unwrap();
    // dense1 = identity on the first two features.
    m.set_param(
        "dense1.weight",
        tensor(&[2, 3], vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).view(),
    )
    .unwrap();
    m.set_param("dense1.bias", vector(&[0.0, 0.0]).view()).unwrap();
    let x = tensor(&[1, 3], vec![3.0, 0.0, 7.0]);
    let y = m.predict(x.view()).unwrap();
    let eps = 1e-5f32;
    let want0 = 2.0 * (3.0 - 1.0) / (4.0 + eps).sqrt();
    let want1 = (0.0 + 1.0) / (1.0 + eps).sqrt() + 0.5;
    assert!(
        (y[[0, 0]] - want0).abs() < 1e-6 && (y[[0, 1]] - want1).abs() < 1e-6,
        "{y}"
    );
    // One sample is fine in inference mode.
    assert_eq!(m.batches_tracked(), 0);
}

#[test]
fn gradients_leave_the_running_statistics_and_train_step_moves_them() {
    let mut m = bn_first();
    let x = batch();
    let t = ArrayD::zeros(IxDyn(&[4, 2]));
    let before_mean = m.buffer("batchnorm1.running_mean").unwrap();
    m.gradients(x.view(), Target::Values(t.view())).unwrap();
    assert_eq!(m.buffer("batchnorm1.running_mean").unwrap(), before_mean);
    assert_eq!(m.buffer("batchnorm1.running_var").unwrap(), vector(&[1.0; 3]));
    assert_eq!(m.batches_tracked(), 0);

    // running = 0.9 running + 0.1 batch, with the unbiased variance (n / (n - 1)).
    m.train_step(x.view(), Target::Values(t.view())).unwrap();
    let mut want_mean = [0.0f32; 3];
    let mut want_var = [1.0f32; 3];
    for c in 0..3 {
        let (mean, var) = column_stats(&x, c);
        want_mean[c] = 0.9 * want_mean[c] + 0.1 * mean;
        want_var[c] = 0.9 * want_var[c] + 0.1 * var * 4.0 / 3.0;
    }
    let got_mean = m.buffer("batchnorm1.running_mean").unwrap();
    let got_var = m.buffer("batchnorm1.running_var").unwrap();
    for c in 0..3 {
        assert!((got_mean[c] - want_mean[c]).abs() < 1e-6, "{got_mean}");
        assert!((got_var[c] - want_var[c]).abs() < 1e-6, "{got_var}");
    }
    assert_eq!(m.batches_tracked(), 1);
    m.train_step(x.view(), Target::Values(t.view())).unwrap();
    assert_eq!(m.batches_tracked(), 2);
    m.set_batches_tracked(40);
    assert_eq!(m.batches_tracked(), 40);
}

#[test]
fn training_mode_uses_the_batch_statistics() {
    // With gamma 1, beta 0 and dense1 the identity on two features, the training-mode
    // output is (x - batch mean) / sqrt(batch var + eps); the loss is its mse against 0.
    let mut m = bn_first();
    m.set_param(
        "dense1.weight",
        tensor(&[2, 3], vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).view(),
    )
    .unwrap();
    m.set_param("dense1.bias", vector(&[0.0, 0.0]).view()).unwrap();
    // Running statistics far from the batch's, which training mode must ignore.
    m.set_buffer("batchnorm1.running_mean", vector(&[50.0; 3]).view())
        .unwrap();
    let x = batch();
    let t = ArrayD::zeros(IxDyn(&[4, 2]));
    let g = m.gradients(x.view(), Target::Values(t.view())).unwrap();
    // Each normalized column has mean 0 and variance var / (var + eps), so the mse over
    // two columns is the mean of those two ratios.
    let ratio = |c: usize| {
        let (_, var) = column_stats(&x, c);
        var / (var + 1e-5)
    };
    let want = (ratio(0) + ratio(1)) / 2.0;
    assert!((g.loss - want).abs() < 1e-5, "loss {} vs {want}", g.loss);
}

#[test]
fn batchnorm_training_limits_are_errors() {
    let mut m = bn_first();
    // More than `batch 4` samples.
    let x = ArrayD::from_elem(IxDyn(&[5, 3]), 1.0f32);
    let t = ArrayD::zeros(IxDyn(&[5, 2]));
    let (e, text) = message(m.gradients(x.view(), Target::Values(t.view())));
    assert!(matches!(e, Error::Shape { .. }));
    assert!(
        text.contains("batch 4") && text.contains("batchnorm") && text.contains("[5, 3]"),
        "{text}"
    );
    let (_, text) = message(m.train_step(x.view(), Target::Values(t.view())));
    assert!(text.contains("batch 4"), "{text}");
    // Predict takes any batch.
    assert_eq!(m.predict(x.view()).unwrap().shape(), [5, 2]);
    // One value per channel.
    let x = ArrayD::from_elem(IxDyn(&[1, 3]), 1.0f32);
    let t = ArrayD::zeros(IxDyn(&[1, 2]));
    let (_, text) = message(m.train_step(x.view(), Target::Values(t.view())));
    assert!(
        text.contains("batchnorm1") && text.contains("at least 2 values per channel"),
        "{text}"
    );
    assert_eq!(m.batches_tracked(), 0, "a refused step is not counted");
    assert_eq!(m.buffer("batchnorm1.running_var").unwrap(), vector(&[1.0; 3]));

    // BatchNorm2d counts every position: one sample of 2x2 positions trains.
    let input = Shape::Image { c: 2, h: 2, w: 2 };
    let mut seq = Seq::new(input);
    seq.batchnorm().flatten();
    let mut m = Interpreter::new(ir_builder::model(input, seq, Loss::Mse, 1), 0);
    let x = ArrayD::from_shape_fn(IxDyn(&[1, 2, 2, 2]), |ix| ix[3] as f32 + ix[2] as f32);
    let t = ArrayD::zeros(IxDyn(&[1, 8]));
    m.train_step(x.view(), Target::Values(t.view())).unwrap();
}

#[test]
fn set_buffer_errors() {
    let mut m = bn_first();
    let (e, text) = message(m.set_buffer("batchnorm2.running_mean", vector(&[0.0; 3]).view()));
    assert!(matches!(e, Error::UnknownParam { .. }));
    assert!(
        text.contains("batchnorm2.running_mean") && text.contains("batchnorm1.running_var"),
        "{text}"
    );
    let (e, text) = message(m.set_buffer("batchnorm1.running_mean", vector(&[0.0; 4]).view()));
    assert!(matches!(e, Error::Shape { .. }));
    assert!(text.contains("[3]") && text.contains("[4]"), "{text}");
    let (e, _) = message(m.set_buffer("batchnorm1.running_mean", vector(&[0.0, f32::NAN, 0.0]).view()));
    assert!(matches!(e, Error::NonFinite { .. }));
    let (_, text) = message(m.set_buffer("batchnorm1.running_var", vector(&[1.0, -0.5, 1.0]).view()));
    assert!(text.contains("negative") && text.contains("running_var"), "{text}");
    assert_eq!(
        m.buffer("batchnorm1.running_var").unwrap(),
        vector(&[1.0; 3]),
        "unchanged"
    );
}

#[test]
fn a_model_without_batchnorm_has_no_buffers_and_any_batch() {
    let input = Shape::Vector(2);
    let mut seq = Seq::new(input);
    seq.dense(1, true);
    let mut m = Interpreter::new(ir_builder::model(input, seq, Loss::Mse, 2), 0);
    assert!(m.buffer_names().is_empty());
    let x = ArrayD::zeros(IxDyn(&[7, 2]));
    let t = ArrayD::zeros(IxDyn(&[7, 1]));
    m.train_step(x.view(), Target::Values(t.view())).unwrap();
    assert_eq!(m.batches_tracked(), 1);
}

/// `residual { conv relu conv; shortcut { conv } } relu`, every conv 2 -> 2 filters.
fn residual_model() -> ir::Model {
    let input = Shape::Image { c: 2, h: 4, w: 4 };
    let mut seq = Seq::new(input);
    seq.residual(
        |b| {
            b.conv(2, 3, 1, 1, 1, 1, true)
                .batchnorm()
                .act(Activation::Relu)
                .conv(2, 3, 1, 1, 1, 1, false)
                .batchnorm();
        },
        |s| {
            s.conv(2, 1, 1, 0, 1, 1, false);
        },
    )
    .act(Activation::Relu)
    .flatten()
    .dense(3, true)
    .act(Activation::LeakyRelu(0.1));
    ir_builder::model(input, seq, Loss::Mse, 8)
}

#[test]
fn residual_parameters_are_named_and_ordered_depth_first() {
    let m = Interpreter::new(residual_model(), 0);
    assert_eq!(
        m.param_names(),
        [
            "residual1.conv1.weight",
            "residual1.conv1.bias",
            "residual1.batchnorm1.weight",
            "residual1.batchnorm1.bias",
            "residual1.conv2.weight",
            "residual1.batchnorm2.weight",
            "residual1.batchnorm2.bias",
            "residual1.shortcut.conv1.weight",
            "dense1.weight",
            "dense1.bias",
        ]
    );
    assert_eq!(
        m.buffer_names(),
        [
            "residual1.batchnorm1.running_mean",
            "residual1.batchnorm1.running_var",
            "residual1.batchnorm2.running_mean",
            "residual1.batchnorm2.running_var",
        ]
    );
}

#[test]
fn residual_initialization_uses_each_sequence() {
    let m = Interpreter::new(residual_model(), 5);
    let mut init = Initializer::new(5);
    // Body conv1 reaches a relu through a batchnorm: He. Body conv2 reaches the add:
    // Xavier. The shortcut conv ends its sequence: Xavier. dense1 then leaky_relu: He.
    let conv1 = init.weights(
        InitScheme::HeNormal {
            fan_in: 18,
            negative_slope: 0.0,
        },
        36,
    );
    let conv2 = init.weights(
        InitScheme::XavierUniform {
            fan_in: 18,
            fan_out: 18,
        },
        36,
    );
    let shortcut = init.weights(InitScheme::XavierUniform { fan_in: 2, fan_out: 2 }, 4);
    let dense = init.weights(
        InitScheme::HeNormal {
            fan_in: 32,
            negative_slope: 0.1,
        },
        96,
    );
    let got = |name: &str| m.param(name).unwrap().iter().copied().collect::<Vec<f32>>();
    assert_eq!(got("residual1.conv1.weight"), conv1);
    assert_eq!(got("residual1.conv2.weight"), conv2);
    assert_eq!(got("residual1.shortcut.conv1.weight"), shortcut);
    assert_eq!(got("dense1.weight"), dense);
    assert!(got("residual1.conv1.bias").iter().all(|&b| b == 0.0));
    assert!(got("residual1.batchnorm2.weight").iter().all(|&g| g == 1.0));
}

#[test]
fn identity_residual_adds_its_input() {
    // body = conv 1x1 with weight 2 and bias 1: y = (2x + 1) + x.
    let input = Shape::Image { c: 1, h: 2, w: 2 };
    let mut seq = Seq::new(input);
    seq.residual(
        |b| {
            b.conv(1, 1, 1, 0, 1, 1, true);
        },
        |_| {},
    );
    let mut m = Interpreter::new(ir_builder::model(input, seq, Loss::Mse, 2), 0);
    m.set_param("residual1.conv1.weight", tensor(&[1, 1, 1, 1], vec![2.0]).view())
        .unwrap();
    m.set_param("residual1.conv1.bias", vector(&[1.0]).view()).unwrap();
    let x = tensor(&[1, 1, 2, 2], vec![0.0, 1.0, -1.0, 2.0]);
    let y = m.predict(x.view()).unwrap();
    assert_eq!(y, x.mapv(|v| 3.0 * v + 1.0));
    // d(sum y^2 / 4)/dx = (y / 2) * 3: both paths carry the gradient back.
    let t = ArrayD::zeros(IxDyn(&[1, 1, 2, 2]));
    let g = m.gradients(x.view(), Target::Values(t.view())).unwrap();
    for (gx, yv) in g.input.iter().zip(y.iter()) {
        assert!((gx - yv / 2.0 * 3.0).abs() < 1e-6, "{}", g.input);
    }
}

#[test]
fn normalize_applies_in_predict_and_training() {
    let input = Shape::Image { c: 2, h: 1, w: 1 };
    let mut seq = Seq::new(input);
    seq.flatten();
    let mut model = ir_builder::model(input, seq, Loss::Mse, 2);
    model.normalize = Some(ir::Normalize {
        mean: vec![1.0, -2.0],
        std: vec![2.0, 0.5],
    });
    let mut m = Interpreter::new(model, 0);
    let x = tensor(&[1, 2, 1, 1], vec![5.0, -1.0]);
    let y = m.predict(x.view()).unwrap();
    assert_eq!(y, tensor(&[1, 2], vec![2.0, 2.0]));
    // mse against 0: loss = (2^2 + 2^2) / 2, d/dx = (2 y / 2) / std.
    let t = ArrayD::zeros(IxDyn(&[1, 2]));
    let g = m.gradients(x.view(), Target::Values(t.view())).unwrap();
    assert_eq!(g.loss, 4.0);
    assert_eq!(g.input, tensor(&[1, 2, 1, 1], vec![1.0, 4.0]));
}

#[test]
fn silu_and_gelu_values() {
    let input = Shape::Vector(3);
    for (act, want) in [
        // x sigmoid(x)
        (Activation::Silu, [-0.268_941_43, 0.0, 1.761_594_2]),
        // x Phi(x), exact erf form
        (Activation::Gelu, [-0.158_655_25, 0.0, 1.954_499_7]),
    ] {
        let mut seq = Seq::new(input);
        seq.act(act);
        let mut m = Interpreter::new(ir_builder::model(input, seq, Loss::Mse, 1), 0);
        let y = m.predict(tensor(&[1, 3], vec![-1.0, 0.0, 2.0]).view()).unwrap();
        for (g, w) in y.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{act:?}: {y}");
        }
    }
}

/// The ResNet-8 of the spec (LANGUAGE.md), through the parser.
const RESNET8: &str = include_str!("../../examples/models/resnet8.cnn");

#[test]
fn the_spec_resnet8_runs_and_trains() {
    let mut m = Interpreter::from_source(RESNET8, "ResNet8", 0).unwrap_or_else(|e| panic!("{e}"));
    let names = m.param_names();
    for name in [
        "conv1.weight",
        "batchnorm1.weight",
        "residual1.conv1.weight",
        "residual2.shortcut.conv1.weight",
        "residual2.shortcut.batchnorm1.bias",
        "residual3.dw.weight",
        "dense1.bias",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    assert!(!names.iter().any(|n| n == "conv1.bias"), "bias off");
    assert_eq!(m.param("residual3.dw.weight").unwrap().shape(), [32, 1, 3, 3]);
    assert!(m
        .buffer_names()
        .iter()
        .any(|n| n == "residual2.shortcut.batchnorm1.running_var"));
    let x = ArrayD::from_shape_fn(IxDyn(&[2, 3, 32, 32]), |ix| {
        ((ix[1] * 7 + ix[2] * 3 + ix[3]) % 11) as f32 / 5.0 - 1.0
    });
    let labels = arr1(&[3usize, 7]);
    let y = m.predict(x.view()).unwrap();
    assert_eq!(y.shape(), [2, 10]);
    let first = m.train_step(x.view(), Target::Labels(labels.view())).unwrap();
    let mut last = first;
    for _ in 0..4 {
        last = m.train_step(x.view(), Target::Labels(labels.view())).unwrap();
    }
    assert!(last < first, "loss {first} -> {last}");
    assert_eq!(m.batches_tracked(), 5);
    assert_ne!(
        m.buffer("residual1.batchnorm1.running_mean").unwrap(),
        ArrayD::<f32>::zeros(IxDyn(&[16]))
    );
}
