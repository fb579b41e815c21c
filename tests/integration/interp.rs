//! The interpreter through the `Model`/`Train` API: the seed's worked example,
//! initialization, dropout, stable losses, training, and the errors callers get.

use cnnc::interp::Interpreter;
use cnnc::ir::InitScheme;
use cnnc::ndarray::{arr1, Array, Array1, Array2, ArrayD, IxDyn};
use cnnc::rt::init::Initializer;
use cnnc::{Error, Model, Target, Train};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn interp(source: &str) -> Interpreter {
    let name = source
        .split_whitespace()
        .nth(1)
        .expect("`model NAME` starts the source");
    Interpreter::from_source(source, name, 0).unwrap_or_else(|e| panic!("{e}"))
}

fn tensor(shape: &[usize], values: Vec<f32>) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), values).expect("values fill the shape")
}

#[test]
fn seed_worked_example() {
    let mut m = interp("model Seed { input 1x3x3 conv 1 kernel 2 }");
    let kernel = tensor(&[1, 1, 2, 2], vec![0.0, 1.0, 2.0, 3.0]);
    m.set_param("conv1.weight", kernel.view()).unwrap();
    m.set_param("conv1.bias", arr1(&[0.0f32]).into_dyn().view()).unwrap();
    let x = tensor(&[1, 1, 3, 3], (0..9).map(|v| v as f32).collect());
    let y = m.predict(x.view()).unwrap();
    assert_eq!(y, tensor(&[1, 1, 2, 2], vec![19.0, 25.0, 37.0, 43.0]));
}

#[test]
fn initialization_draws_each_layer_in_order_and_zero_biases() {
    let source = "model Init { input 1x6x6 conv 4 kernel 3 relu flatten dense 5 dense 3 leaky_relu 0.1 }";
    let m = interp(source);
    assert_eq!(
        m.param_names(),
        [
            "conv1.weight",
            "conv1.bias",
            "dense1.weight",
            "dense1.bias",
            "dense2.weight",
            "dense2.bias"
        ]
    );
    let mut init = Initializer::new(0);
    let conv = init.weights(
        InitScheme::HeNormal {
            fan_in: 9,
            negative_slope: 0.0,
        },
        36,
    );
    let dense1 = init.weights(InitScheme::XavierUniform { fan_in: 64, fan_out: 5 }, 320);
    let dense2 = init.weights(
        InitScheme::HeNormal {
            fan_in: 5,
            negative_slope: 0.1,
        },
        15,
    );
    let got = |name: &str| m.param(name).unwrap().iter().copied().collect::<Vec<f32>>();
    assert_eq!(got("conv1.weight"), conv);
    assert_eq!(got("dense1.weight"), dense1);
    assert_eq!(got("dense2.weight"), dense2);
    assert_eq!(m.param("dense1.weight").unwrap().shape(), [5, 64]);
    for bias in ["conv1.bias", "dense1.bias", "dense2.bias"] {
        assert!(got(bias).iter().all(|&b| b == 0.0), "{bias} starts at 0");
    }
    // Another seed, other weights.
    let other = Interpreter::from_source(source, "Init", 1).unwrap();
    assert_ne!(other.param("conv1.weight"), m.param("conv1.weight"));
}

#[test]
fn predict_includes_the_final_softmax_and_sigmoid() {
    let mut m = interp("model C { input 4 dense 3 softmax train { loss cross_entropy optimizer sgd lr 0.1 } }");
    let x = tensor(&[2, 4], vec![1.0, -2.0, 0.5, 3.0, 0.0, 1.0, -1.0, 2.0]);
    let y = m.predict(x.view()).unwrap();
    for row in y.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-6 && row.iter().all(|&p| p > 0.0), "{row}");
    }
    let mut b = interp("model B { input 4 dense 1 sigmoid train { loss binary_cross_entropy optimizer sgd lr 0.1 } }");
    let y = b.predict(x.view()).unwrap();
    assert_eq!(y.shape(), [2, 1]);
    assert!(y.iter().all(|&p| p > 0.0 && p < 1.0));
}

#[test]
fn cross_entropy_is_stable_for_huge_logits() {
    let mut m = interp("model C { input 2 dense 3 softmax train { loss cross_entropy optimizer sgd lr 0.1 } }");
    // Logits [1e4, -1e4, 0] for x = [1, 0].
    let w = tensor(&[3, 2], vec![1e4, 0.0, -1e4, 0.0, 0.0, 0.0]);
    m.set_param("dense1.weight", w.view()).unwrap();
    let x = tensor(&[2, 2], vec![1.0, 0.0, 1.0, 0.0]);
    let labels = arr1(&[0usize, 1]);
    let g = m.gradients(x.view(), Target::Labels(labels.view())).unwrap();
    // Sample 0 is right (loss 0), sample 1 is wrong by 2e4: mean 1e4.
    assert!((g.loss - 1e4).abs() < 1.0, "loss {}", g.loss);
    // dLogits = (p - onehot) / N = ([1,0,0] - onehot) / 2; dW = dLogits^T x.
    let dw = &g.params[0].1;
    let want = tensor(&[3, 2], vec![0.5, 0.0, -0.5, 0.0, 0.0, 0.0]);
    assert!(dw.iter().zip(want.iter()).all(|(a, b)| (a - b).abs() < 1e-6), "{dw}");
    let p = m.predict(x.view()).unwrap();
    assert!(p.iter().all(|v| v.is_finite()));
}

#[test]
fn binary_cross_entropy_is_stable_for_huge_logits() {
    let mut m = interp("model B { input 1 dense 1 sigmoid train { loss binary_cross_entropy optimizer sgd lr 0.1 } }");
    m.set_param("dense1.weight", tensor(&[1, 1], vec![1.0]).view()).unwrap();
    // Logits 1e4 and -1e4, targets 0 and 0: losses 1e4 and 0.
    let x = tensor(&[2, 1], vec![1e4, -1e4]);
    let t = tensor(&[2, 1], vec![0.0, 0.0]);
    let g = m.gradients(x.view(), Target::Values(t.view())).unwrap();
    assert!((g.loss - 5e3).abs() < 1.0, "loss {}", g.loss);
    // dLogit = (p - t) / 2: 0.5 and 0.
    assert_eq!(g.params[1].1.iter().copied().collect::<Vec<_>>(), [0.5]);
}

#[test]
fn mse_is_the_mean_over_all_elements() {
    let mut m = interp("model R { input 2 dense 2 train { loss mse optimizer sgd lr 0.1 } }");
    m.set_param("dense1.weight", tensor(&[2, 2], vec![1.0, 0.0, 0.0, 1.0]).view())
        .unwrap();
    let x = tensor(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let t = tensor(&[2, 2], vec![0.0, 2.0, 3.0, 6.0]);
    let g = m.gradients(x.view(), Target::Values(t.view())).unwrap();
    assert_eq!(g.loss, (1.0 + 4.0) / 4.0);
    // dy = 2 (y - t) / 4; the bias gradient sums it over the batch.
    assert_eq!(g.params[1].1.iter().copied().collect::<Vec<_>>(), [0.5, -1.0]);
    assert_eq!(g.input, tensor(&[2, 2], vec![0.5, 0.0, 0.0, -1.0]));
}

#[test]
fn dropout_is_inverted_in_training_and_off_in_predict() {
    let p = 0.25f32;
    let n = 4000;
    let mut m = interp(&format!(
        "model D {{ input {n} dropout {p} train {{ loss mse optimizer sgd lr 0.1 }} }}"
    ));
    let x = ArrayD::from_elem(IxDyn(&[1, n]), 1.0f32);
    assert_eq!(m.predict(x.view()).unwrap(), x, "no dropout in predict");
    let zeros = ArrayD::zeros(IxDyn(&[1, n]));
    // loss = mean(mask^2), dLoss/dx = 2 mask^2 / n: each kept value is scaled by 1/(1-p).
    let g1 = m.gradients(x.view(), Target::Values(zeros.view())).unwrap();
    let kept = g1.input.iter().filter(|&&v| v != 0.0).count() as f32 / n as f32;
    assert!((kept - (1.0 - p)).abs() < 0.03, "kept fraction {kept}");
    let scale = 1.0 / (1.0 - p);
    for &v in g1.input.iter().filter(|&&v| v != 0.0) {
        assert!((v - 2.0 * scale * scale / n as f32).abs() < 1e-9);
    }
    assert!((g1.loss - kept * scale * scale).abs() < 1e-3);
    // A fresh mask each call.
    let g2 = m.gradients(x.view(), Target::Values(zeros.view())).unwrap();
    assert_ne!(g1.input, g2.input);
    // The same seed gives the same masks.
    let mut again = interp(&format!(
        "model D {{ input {n} dropout {p} train {{ loss mse optimizer sgd lr 0.1 }} }}"
    ));
    assert_eq!(
        again.gradients(x.view(), Target::Values(zeros.view())).unwrap().input,
        g1.input
    );
}

#[test]
fn training_reduces_the_loss() {
    // Two Gaussian blobs on 1x6x6 images: a bright left half or a bright right half.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let n = 32;
    let mut x = Array::zeros((n, 1, 6, 6));
    let labels: Array1<usize> = (0..n).map(|i| i % 2).collect();
    for ((s, _, _, col), v) in x.indexed_iter_mut() {
        let bright = (col < 3) == (labels[s] == 0);
        *v = rng.random_range(-0.5..0.5) + if bright { 1.0 } else { 0.0 };
    }
    let x = x.into_dyn();
    let source = "model Blobs { input 1x6x6 conv 4 kernel 3 relu maxpool 2 flatten dense 2 softmax \
                  train { loss cross_entropy optimizer adam lr 0.01 } }";
    let mut m = interp(source);
    let first = m.train_step(x.view(), Target::Labels(labels.view())).unwrap();
    let mut last = first;
    for _ in 0..60 {
        last = m.train_step(x.view(), Target::Labels(labels.view())).unwrap();
    }
    assert!(last < first * 0.2, "loss {first} -> {last}");
    let p = m.predict(x.view()).unwrap();
    let correct = (0..n).filter(|&s| (p[[s, 1]] > p[[s, 0]]) == (labels[s] == 1)).count();
    assert_eq!(correct, n);

    // A regression with sgd momentum and a schedule, dense only.
    let mut r = interp(
        "model Reg { input 3 dense 8 tanh dense 1 train { loss mse optimizer sgd lr 0.05 momentum 0.9 \
         schedule step 20 gamma 0.5 epochs 60 } }",
    );
    let xs = Array2::from_shape_fn((16, 3), |(i, j)| ((i * 3 + j) as f32 * 0.37).sin());
    let ts = Array2::from_shape_fn((16, 1), |(i, _)| xs[[i, 0]] - 0.5 * xs[[i, 2]]);
    let (xs, ts) = (xs.into_dyn(), ts.into_dyn());
    let first = r.train_step(xs.view(), Target::Values(ts.view())).unwrap();
    let mut last = first;
    for epoch in 0..60 {
        r.set_epoch(epoch);
        last = r.train_step(xs.view(), Target::Values(ts.view())).unwrap();
    }
    assert!(last < first * 0.1, "loss {first} -> {last}");
}

#[test]
fn learning_rate_follows_the_schedule_and_set_epoch() {
    let mut m = interp(
        "model S { input 1 dense 1 train { loss mse optimizer sgd lr 1.0 schedule step 2 gamma 0.1 epochs 6 } }",
    );
    assert_eq!(m.learning_rate(0), 1.0);
    assert!((m.learning_rate(2) - 0.1).abs() < 1e-7);
    assert!((m.learning_rate(5) - 0.01).abs() < 1e-8);
    // One sgd step with lr 0.1 at epoch 2: w -= 0.1 * dw.
    m.set_param("dense1.weight", tensor(&[1, 1], vec![0.0]).view()).unwrap();
    let x = tensor(&[1, 1], vec![1.0]);
    let t = tensor(&[1, 1], vec![1.0]);
    m.set_epoch(2);
    assert_eq!(m.epoch(), 2);
    m.train_step(x.view(), Target::Values(t.view())).unwrap();
    // loss (w x + b - t)^2, dw = db = 2 (0 - 1) = -2.
    let w = m.param("dense1.weight").unwrap()[[0, 0]];
    assert!((w - 0.2).abs() < 1e-6, "w = {w}");
}

// ---- errors ----

fn lenet() -> Interpreter {
    interp(
        "model LeNet { input 1x28x28 conv 6 kernel 5 pad 2 relu maxpool 2 conv 16 kernel 5 relu maxpool 2 flatten \
         dense 120 relu dense 84 relu dense 10 softmax train { loss cross_entropy optimizer sgd lr 0.01 } }",
    )
}

fn message<T: std::fmt::Debug>(r: Result<T, Error>) -> (Error, String) {
    let e = r.expect_err("an error");
    let text = e.to_string();
    (e, text)
}

#[test]
fn wrong_input_shape_names_expected_and_given() {
    let mut m = lenet();
    let x = ArrayD::zeros(IxDyn(&[2, 28, 28]));
    let (e, text) = message(m.predict(x.view()));
    assert!(matches!(e, Error::Shape { .. }));
    assert!(
        text.contains("[N, 1, 28, 28]") && text.contains("[2, 28, 28]"),
        "{text}"
    );
    let x = ArrayD::zeros(IxDyn(&[2, 1, 28, 27]));
    let (_, text) = message(m.predict(x.view()));
    assert!(
        text.contains("[N, 1, 28, 28]") && text.contains("[2, 1, 28, 27]"),
        "{text}"
    );
    let labels = arr1(&[0usize, 1]);
    let (_, text) = message(m.gradients(x.view(), Target::Labels(labels.view())));
    assert!(text.contains("[2, 1, 28, 27]"), "{text}");
}

#[test]
fn empty_batch_is_an_error() {
    let mut m = lenet();
    let x = ArrayD::zeros(IxDyn(&[0, 1, 28, 28]));
    let (e, text) = message(m.predict(x.view()));
    assert!(matches!(e, Error::Shape { .. }));
    assert!(text.contains("N >= 1") && text.contains("[0, 1, 28, 28]"), "{text}");
    let labels = arr1(&[0usize; 0]);
    let (_, text) = message(m.train_step(x.view(), Target::Labels(labels.view())));
    assert!(text.contains("empty"), "{text}");
}

#[test]
fn non_finite_input_is_an_error() {
    let mut m = lenet();
    let mut x = ArrayD::zeros(IxDyn(&[2, 1, 28, 28]));
    x[[1, 0, 3, 4]] = f32::NAN;
    let (e, text) = message(m.predict(x.view()));
    assert!(
        matches!(e, Error::NonFinite { ref index, .. } if index == &[1, 0, 3, 4]),
        "{e:?}"
    );
    assert!(text.contains("input") && text.contains("NaN"), "{text}");
    x[[1, 0, 3, 4]] = f32::INFINITY;
    let labels = arr1(&[0usize, 1]);
    let (e, _) = message(m.gradients(x.view(), Target::Labels(labels.view())));
    assert!(matches!(e, Error::NonFinite { .. }));
}

#[test]
fn labels_out_of_range_and_wrong_count() {
    let mut m = lenet();
    let x = ArrayD::zeros(IxDyn(&[3, 1, 28, 28]));
    let labels = arr1(&[0usize, 10, 2]);
    let (e, text) = message(m.train_step(x.view(), Target::Labels(labels.view())));
    assert!(
        matches!(
            e,
            Error::Label {
                sample: 1,
                label: 10,
                classes: 10
            }
        ),
        "{e:?}"
    );
    assert!(text.contains("label 10") && text.contains("10 classes"), "{text}");
    let labels = arr1(&[0usize, 1]);
    let (e, text) = message(m.gradients(x.view(), Target::Labels(labels.view())));
    assert!(matches!(e, Error::Shape { .. }));
    assert!(
        text.contains("labels") && text.contains("[3]") && text.contains("[2]"),
        "{text}"
    );
}

#[test]
fn target_of_the_wrong_kind_or_shape() {
    let mut m = lenet();
    let x = ArrayD::zeros(IxDyn(&[2, 1, 28, 28]));
    let values = ArrayD::zeros(IxDyn(&[2, 10]));
    let (e, text) = message(m.gradients(x.view(), Target::Values(values.view())));
    assert!(matches!(e, Error::Target(_)));
    assert!(text.contains("cross_entropy") && text.contains("Labels"), "{text}");

    let mut r = interp("model R { input 3 dense 2 train { loss mse optimizer sgd lr 0.1 } }");
    let x = ArrayD::zeros(IxDyn(&[4, 3]));
    let labels = arr1(&[0usize, 1, 0, 1]);
    let (e, text) = message(r.gradients(x.view(), Target::Labels(labels.view())));
    assert!(matches!(e, Error::Target(_)));
    assert!(text.contains("mse") && text.contains("Values"), "{text}");
    let t = ArrayD::zeros(IxDyn(&[4, 3]));
    let (e, text) = message(r.train_step(x.view(), Target::Values(t.view())));
    assert!(matches!(e, Error::Shape { .. }));
    assert!(
        text.contains("target") && text.contains("[4, 2]") && text.contains("[4, 3]"),
        "{text}"
    );
    let mut t = ArrayD::zeros(IxDyn(&[4, 2]));
    t[[2, 1]] = f32::NAN;
    let (e, _) = message(r.train_step(x.view(), Target::Values(t.view())));
    assert!(matches!(e, Error::NonFinite { .. }));

    let mut b = interp("model B { input 3 dense 1 sigmoid train { loss binary_cross_entropy optimizer sgd lr 0.1 } }");
    let x = ArrayD::zeros(IxDyn(&[2, 3]));
    let t = tensor(&[2, 1], vec![1.0, 2.0]);
    let (e, text) = message(b.gradients(x.view(), Target::Values(t.view())));
    assert!(matches!(e, Error::Target(_)));
    assert!(text.contains("[0, 1]") && text.contains('2'), "{text}");
}

#[test]
fn set_param_unknown_name_or_wrong_shape() {
    let mut m = lenet();
    let w = ArrayD::zeros(IxDyn(&[6, 1, 5, 5]));
    let (e, text) = message(m.set_param("conv9.weight", w.view()));
    assert!(matches!(e, Error::UnknownParam { .. }));
    assert!(text.contains("conv9.weight") && text.contains("conv1.weight"), "{text}");
    let w = ArrayD::zeros(IxDyn(&[6, 1, 3, 3]));
    let (e, text) = message(m.set_param("conv1.weight", w.view()));
    assert!(matches!(e, Error::Shape { .. }));
    assert!(text.contains("[6, 1, 5, 5]") && text.contains("[6, 1, 3, 3]"), "{text}");
    assert!(m.param("conv9.weight").is_none());
    assert_eq!(m.param("conv1.weight").unwrap().shape(), [6, 1, 5, 5]);
}

#[test]
fn training_without_a_train_block_is_a_config_error() {
    let mut m = interp("model Inference { input 3 dense 2 }");
    let x = ArrayD::zeros(IxDyn(&[1, 3]));
    let t = ArrayD::zeros(IxDyn(&[1, 2]));
    let (e, text) = message(m.gradients(x.view(), Target::Values(t.view())));
    assert!(matches!(e, Error::Config(_)));
    assert!(text.contains("no train block"), "{text}");
    let (e, _) = message(m.train_step(x.view(), Target::Values(t.view())));
    assert!(matches!(e, Error::Config(_)));
    assert_eq!(m.predict(x.view()).unwrap().shape(), [1, 2]);
}

#[test]
fn from_source_errors() {
    let (e, text) = message(Interpreter::from_source("model A { input 3 dense 2 }", "B", 0));
    assert!(matches!(e, Error::UnknownModel { .. }));
    assert!(text.contains("`B`") && text.contains('A'), "{text}");
    let (e, text) = message(Interpreter::from_source("model A { input 3 dense 2 relux }", "A", 0));
    assert!(matches!(e, Error::Compile(_)));
    assert!(text.contains("<source>") && text.contains("relux"), "{text}");
}
