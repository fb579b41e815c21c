//! Every run-time entry point, on both implementations (the reference interpreter
//! and the `cnn!`-generated model of the same source, tests/errors_api.cnn), refuses
//! a bad call with an `Err` whose message names the problem, and leaves the model as
//! it was: wrong rank, shape or batch; labels at or above the number of classes; NaN
//! and infinity; the wrong kind of target. The stable losses stay finite for logits
//! of +-1e4, and a diverging `fit` stops with the epoch and batch instead of NaN weights.

use cnnc::interp::Interpreter;
use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::rt::data::{Dataset, Targets};
use cnnc::rt::fit::{fit, FitConfig};
use cnnc::{Error, Target, Train};

cnn_macros::cnn!(file = "tests/errors_api.cnn");

const SOURCE: &str = include_str!("../errors_api.cnn");

/// Both implementations of one model of errors_api.cnn, each with its name for messages.
fn both(model: &str) -> Vec<(&'static str, Box<dyn Train>)> {
    let generated: Box<dyn Train> = match model {
        "Classifier" => Box::new(Classifier::new(0)),
        "Binary" => Box::new(Binary::new(0)),
        "Regressor" => Box::new(Regressor::new(0)),
        "Softmax3" => Box::new(Softmax3::new(0)),
        "Sigmoid1" => Box::new(Sigmoid1::new(0)),
        "Diverging" => Box::new(Diverging::new(0)),
        "DivergingClassifier" => Box::new(DivergingClassifier::new(0)),
        _ => panic!("no model {model} in errors_api.cnn"),
    };
    let interp = Interpreter::from_source(SOURCE, model, 0).unwrap_or_else(|e| panic!("{e}"));
    vec![("generated", generated), ("interpreter", Box::new(interp))]
}

fn zeros(shape: &[usize]) -> ArrayD<f32> {
    ArrayD::zeros(IxDyn(shape))
}

fn tensor(shape: &[usize], values: Vec<f32>) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), values).expect("values fill the shape")
}

/// The error's message; fails the test when the call succeeded.
fn message<T: std::fmt::Debug>(context: &str, r: Result<T, Error>) -> String {
    match r {
        Ok(v) => panic!("{context}: expected an error, got Ok({v:?})"),
        Err(e) => e.to_string(),
    }
}

fn assert_names(context: &str, text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{context}: `{part}` is missing from: {text}");
    }
}

/// Every parameter, to check that a refused call changed nothing.
fn snapshot(m: &dyn Train) -> Vec<ArrayD<f32>> {
    m.param_names()
        .iter()
        .map(|n| m.param(n).expect("a listed parameter"))
        .collect()
}

/// Runs predict, gradients and train_step on `x` with `target`; each must fail
/// naming every one of `parts`, and the parameters must not change.
fn all_entries_refuse(imp: &str, m: &mut dyn Train, x: &ArrayD<f32>, target: Target<'_>, parts: &[&str]) {
    let before = snapshot(m);
    let text = message(&format!("{imp} predict"), m.predict(x.view()));
    assert_names(&format!("{imp} predict {:?}", x.shape()), &text, parts);
    let text = message(&format!("{imp} gradients"), m.gradients(x.view(), target.clone()));
    assert_names(&format!("{imp} gradients {:?}", x.shape()), &text, parts);
    let text = message(&format!("{imp} train_step"), m.train_step(x.view(), target));
    assert_names(&format!("{imp} train_step {:?}", x.shape()), &text, parts);
    assert_eq!(
        snapshot(m),
        before,
        "{imp}: a refused train_step changed the parameters"
    );
}

/// Runs gradients and train_step (predict takes no target); each must fail naming
/// every one of `parts`, leaving the parameters as they were.
fn training_refuses(imp: &str, m: &mut dyn Train, x: &ArrayD<f32>, target: Target<'_>, parts: &[&str]) {
    let before = snapshot(m);
    let text = message(&format!("{imp} gradients"), m.gradients(x.view(), target.clone()));
    assert_names(&format!("{imp} gradients"), &text, parts);
    let text = message(&format!("{imp} train_step"), m.train_step(x.view(), target));
    assert_names(&format!("{imp} train_step"), &text, parts);
    assert_eq!(
        snapshot(m),
        before,
        "{imp}: a refused train_step changed the parameters"
    );
}

#[test]
fn wrong_rank_is_refused_by_every_entry() {
    for (imp, mut m) in both("Classifier") {
        for shape in [&[2, 6, 6][..], &[36], &[2, 1, 6, 6, 1], &[1, 1, 1, 6, 6]] {
            let labels = Array1::from_vec(vec![0usize; shape[0]]);
            let given = format!("{shape:?}");
            all_entries_refuse(
                imp,
                m.as_mut(),
                &zeros(shape),
                Target::Labels(labels.view()),
                &["[N, 1, 6, 6]", &given],
            );
        }
    }
}

#[test]
fn wrong_sample_shape_is_refused_by_every_entry() {
    for (imp, mut m) in both("Classifier") {
        for shape in [&[2, 1, 6, 5][..], &[2, 2, 6, 6], &[2, 1, 5, 6], &[2, 1, 36, 1]] {
            let labels = Array1::from_vec(vec![0usize; 2]);
            let given = format!("{shape:?}");
            all_entries_refuse(
                imp,
                m.as_mut(),
                &zeros(shape),
                Target::Labels(labels.view()),
                &["[N, 1, 6, 6]", &given],
            );
        }
    }
    for (imp, mut m) in both("Regressor") {
        let t = zeros(&[2, 2]);
        all_entries_refuse(
            imp,
            m.as_mut(),
            &zeros(&[2, 4]),
            Target::Values(t.view()),
            &["[N, 3]", "[2, 4]"],
        );
    }
}

#[test]
fn an_empty_batch_is_refused_by_every_entry() {
    for (imp, mut m) in both("Classifier") {
        let labels = Array1::from_vec(vec![]);
        all_entries_refuse(
            imp,
            m.as_mut(),
            &zeros(&[0, 1, 6, 6]),
            Target::Labels(labels.view()),
            &["[0, 1, 6, 6]", "N >= 1"],
        );
    }
}

#[test]
fn a_batch_larger_than_the_declared_batch_is_not_an_error() {
    // The train block says `batch 4`; a generated model runs a larger batch in
    // chunks of 4 (batch_size in src/support.rs accepts any N >= 1), so 9 samples
    // give the same outputs as one sample at a time, in both implementations.
    let x = ArrayD::from_shape_fn(IxDyn(&[9, 1, 6, 6]), |d| {
        ((d[0] * 7 + d[2] * 3 + d[3]) % 5) as f32 / 5.0
    });
    let labels = Array1::from_vec((0..9).map(|i| i % 3).collect());
    let mut outputs = Vec::new();
    for (imp, mut m) in both("Classifier") {
        let y = m.predict(x.view()).unwrap_or_else(|e| panic!("{imp}: {e}"));
        assert_eq!(y.shape(), &[9, 3], "{imp}");
        for i in 0..9 {
            let one = x.slice_axis(cnnc::ndarray::Axis(0), (i..i + 1).into()).to_owned();
            let yi = m.predict(one.view()).unwrap_or_else(|e| panic!("{imp}: {e}"));
            for c in 0..3 {
                assert!(
                    (yi[[0, c]] - y[[i, c]]).abs() < 1e-5,
                    "{imp}: sample {i} differs in a batch of 9"
                );
            }
        }
        let g = m
            .gradients(x.view(), Target::Labels(labels.view()))
            .unwrap_or_else(|e| panic!("{imp}: {e}"));
        assert_eq!(g.input.shape(), &[9, 1, 6, 6], "{imp}");
        let loss = m
            .train_step(x.view(), Target::Labels(labels.view()))
            .unwrap_or_else(|e| panic!("{imp}: {e}"));
        assert!((loss - g.loss).abs() < 1e-5, "{imp}: {loss} vs {}", g.loss);
        outputs.push(y);
    }
    let diff = (&outputs[0] - &outputs[1])
        .mapv(f32::abs)
        .fold(0.0f32, |a, &b| a.max(b));
    assert!(diff < 1e-5, "the implementations differ by {diff}");
}

#[test]
fn labels_at_or_above_the_class_count_are_refused() {
    let x = zeros(&[3, 1, 6, 6]);
    for (imp, mut m) in both("Classifier") {
        // 3 is the first label out of range for 3 classes.
        let labels = Array1::from_vec(vec![0usize, 3, 1]);
        training_refuses(
            imp,
            m.as_mut(),
            &x,
            Target::Labels(labels.view()),
            &["label 3 of sample 1", "3 classes"],
        );
        let labels = Array1::from_vec(vec![0usize, 1, usize::MAX]);
        training_refuses(
            imp,
            m.as_mut(),
            &x,
            Target::Labels(labels.view()),
            &[&format!("label {} of sample 2", usize::MAX), "3 classes"],
        );
        // Every label in range: accepted.
        let labels = Array1::from_vec(vec![0usize, 1, 2]);
        m.gradients(x.view(), Target::Labels(labels.view()))
            .unwrap_or_else(|e| panic!("{imp}: {e}"));
    }
}

#[test]
fn a_label_count_other_than_the_batch_is_refused() {
    let x = zeros(&[3, 1, 6, 6]);
    for (imp, mut m) in both("Classifier") {
        for n in [2usize, 4] {
            let labels = Array1::from_vec(vec![0usize; n]);
            training_refuses(
                imp,
                m.as_mut(),
                &x,
                Target::Labels(labels.view()),
                &["labels", &n.to_string(), "3"],
            );
        }
    }
}

#[test]
fn nan_and_infinity_in_the_input_are_refused_with_their_index() {
    for (imp, mut m) in both("Classifier") {
        for (bad, word) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf"), (f32::NEG_INFINITY, "-inf")] {
            let mut x = zeros(&[2, 1, 6, 6]);
            x[[1, 0, 2, 3]] = bad;
            let labels = Array1::from_vec(vec![0usize, 1]);
            all_entries_refuse(
                imp,
                m.as_mut(),
                &x,
                Target::Labels(labels.view()),
                &["input", word, "[1, 0, 2, 3]"],
            );
        }
        // A non-contiguous view with NaN is found too.
        let mut x = zeros(&[1, 6, 6, 1]);
        x[[0, 5, 4, 0]] = f32::NAN;
        let mut xt = x.view();
        xt.swap_axes(1, 3);
        assert!(xt.as_slice().is_none(), "the view should not be contiguous");
        let labels = Array1::from_vec(vec![0usize]);
        let text = message(imp, m.gradients(xt.clone(), Target::Labels(labels.view())));
        assert_names(imp, &text, &["input", "NaN", "[0, 0, 4, 5]"]);
        let text = message(imp, m.predict(xt));
        assert_names(imp, &text, &["input", "NaN", "[0, 0, 4, 5]"]);
    }
}

#[test]
fn nan_and_infinity_in_value_targets_are_refused() {
    for model in ["Binary", "Regressor"] {
        let (inputs, outputs) = if model == "Binary" { (4, 2) } else { (3, 2) };
        for (imp, mut m) in both(model) {
            for (bad, word) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
                let mut t = zeros(&[2, outputs]);
                t[[1, 0]] = bad;
                training_refuses(
                    imp,
                    m.as_mut(),
                    &zeros(&[2, inputs]),
                    Target::Values(t.view()),
                    &["target", word, "[1, 0]"],
                );
            }
        }
    }
}

#[test]
fn the_wrong_kind_of_target_is_refused() {
    for (imp, mut m) in both("Classifier") {
        let t = zeros(&[2, 3]);
        training_refuses(
            imp,
            m.as_mut(),
            &zeros(&[2, 1, 6, 6]),
            Target::Values(t.view()),
            &["cross_entropy", "Labels"],
        );
    }
    for (model, loss, inputs) in [("Binary", "binary_cross_entropy", 4), ("Regressor", "mse", 3)] {
        for (imp, mut m) in both(model) {
            let labels = Array1::from_vec(vec![0usize, 1]);
            training_refuses(
                imp,
                m.as_mut(),
                &zeros(&[2, inputs]),
                Target::Labels(labels.view()),
                &[loss, "Values"],
            );
        }
    }
}

#[test]
fn value_targets_of_the_wrong_shape_or_range_are_refused() {
    for (imp, mut m) in both("Regressor") {
        for shape in [&[2, 3][..], &[3, 2], &[2], &[2, 2, 1]] {
            let t = zeros(shape);
            let given = format!("{shape:?}");
            training_refuses(
                imp,
                m.as_mut(),
                &zeros(&[2, 3]),
                Target::Values(t.view()),
                &["target", "[2, 2]", &given],
            );
        }
    }
    for (imp, mut m) in both("Binary") {
        let t = tensor(&[2, 2], vec![0.0, 1.0, 1.5, 0.0]);
        training_refuses(
            imp,
            m.as_mut(),
            &zeros(&[2, 4]),
            Target::Values(t.view()),
            &["[0, 1]", "1.5"],
        );
    }
}

/// `max |a - b|` over two same-shaped arrays.
fn max_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b.iter()).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
}

fn all_finite(what: &str, g: &cnnc::Gradients) {
    assert!(g.loss.is_finite(), "{what}: loss {}", g.loss);
    assert!(
        g.input.iter().all(|v| v.is_finite()),
        "{what}: input gradient {}",
        g.input
    );
    for (name, a) in &g.params {
        assert!(a.iter().all(|v| v.is_finite()), "{what}: gradient of {name}: {a}");
    }
}

#[test]
fn softmax_cross_entropy_is_finite_and_exact_for_logits_of_1e4() {
    // Logits W x with W = [[1e4, 0], [-1e4, 0], [0, 1e4]]:
    // x0 = [1, 1] gives [1e4, -1e4, 1e4]; x1 = [-1, -1] gives [-1e4, 1e4, -1e4].
    let w = tensor(&[3, 2], vec![1e4, 0.0, -1e4, 0.0, 0.0, 1e4]);
    let x = tensor(&[2, 2], vec![1.0, 1.0, -1.0, -1.0]);
    // Labels far from the winner: sample 0 loses by 2e4, sample 1 by 2e4 (+ ln 1).
    // Sample 0 ties classes 0 and 2, so its loss is 2e4 + ln 2.
    let labels = Array1::from_vec(vec![1usize, 0]);
    let want_loss = (2e4 + 2f64.ln() + 2e4) / 2.0;
    // dLogits = (softmax - onehot) / N: [0.5, -1, 0.5] / 2 and [-1, 1, 0] / 2.
    let dlogits = [[0.25f32, -0.5, 0.25], [-0.5, 0.5, 0.0]];
    let mut want_dw = zeros(&[3, 2]);
    for c in 0..3 {
        for j in 0..2 {
            want_dw[[c, j]] = dlogits[0][c] * x[[0, j]] + dlogits[1][c] * x[[1, j]];
        }
    }
    let mut results = Vec::new();
    for (imp, mut m) in both("Softmax3") {
        m.set_param("dense1.weight", w.view())
            .unwrap_or_else(|e| panic!("{imp}: {e}"));
        let g = m
            .gradients(x.view(), Target::Labels(labels.view()))
            .unwrap_or_else(|e| panic!("{imp}: {e}"));
        all_finite(imp, &g);
        assert!(
            ((g.loss as f64 - want_loss) / want_loss).abs() < 1e-5,
            "{imp}: loss {}",
            g.loss
        );
        assert!(max_diff(&g.params[0].1, &want_dw) < 1e-5, "{imp}: dW {}", g.params[0].1);
        // The right labels: sample 0 still ties (ln 2), sample 1 is certain (0).
        let right = Array1::from_vec(vec![0usize, 1]);
        let g2 = m
            .gradients(x.view(), Target::Labels(right.view()))
            .unwrap_or_else(|e| panic!("{imp}: {e}"));
        all_finite(imp, &g2);
        assert!(
            (g2.loss as f64 - 2f64.ln() / 2.0).abs() < 1e-4,
            "{imp}: loss {}",
            g2.loss
        );
        let p = m.predict(x.view()).unwrap_or_else(|e| panic!("{imp}: {e}"));
        assert!(p.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)), "{imp}: {p}");
        let loss = m
            .train_step(x.view(), Target::Labels(labels.view()))
            .unwrap_or_else(|e| panic!("{imp}: {e}"));
        assert!(loss.is_finite(), "{imp}: {loss}");
        let after = m.param("dense1.weight").expect("dense1.weight");
        assert!(after.iter().all(|v| v.is_finite()), "{imp}: {after}");
        results.push((g, p, after));
    }
    let (a, b) = (&results[0], &results[1]);
    assert!(max_diff(&a.0.input, &b.0.input) < 1e-3, "input gradients differ");
    assert!(max_diff(&a.1, &b.1) < 1e-6, "probabilities differ");
    assert!(max_diff(&a.2, &b.2) < 1e-2, "updated weights differ");
}

#[test]
fn sigmoid_binary_cross_entropy_is_finite_and_exact_for_logits_of_1e4() {
    // Logit 1e4 x: +1e4 for x = 1, -1e4 for x = -1.
    let w = tensor(&[1, 1], vec![1e4]);
    let x = tensor(&[2, 1], vec![1.0, -1.0]);
    let mut results = Vec::new();
    for (imp, mut m) in both("Sigmoid1") {
        m.set_param("dense1.weight", w.view())
            .unwrap_or_else(|e| panic!("{imp}: {e}"));
        // Both wrong by 1e4: loss 1e4; dLogit = (p - t) / 2 = [0.5, -0.5];
        // dW = 0.5 * 1 + (-0.5) * (-1) = 1; db = 0; dx = dLogit * 1e4.
        let wrong = tensor(&[2, 1], vec![0.0, 1.0]);
        let g = m
            .gradients(x.view(), Target::Values(wrong.view()))
            .unwrap_or_else(|e| panic!("{imp}: {e}"));
        all_finite(imp, &g);
        assert!((g.loss - 1e4).abs() < 1.0, "{imp}: loss {}", g.loss);
        assert!(
            (g.params[0].1[[0, 0]] - 1.0).abs() < 1e-6,
            "{imp}: dW {}",
            g.params[0].1
        );
        assert!(g.params[1].1[[0]].abs() < 1e-6, "{imp}: db {}", g.params[1].1);
        assert!(
            max_diff(&g.input, &tensor(&[2, 1], vec![5e3, -5e3])) < 1e-2,
            "{imp}: dx {}",
            g.input
        );
        // Both right: loss 0, gradients 0.
        let right = tensor(&[2, 1], vec![1.0, 0.0]);
        let g2 = m
            .gradients(x.view(), Target::Values(right.view()))
            .unwrap_or_else(|e| panic!("{imp}: {e}"));
        all_finite(imp, &g2);
        assert!(g2.loss.abs() < 1e-6, "{imp}: loss {}", g2.loss);
        let p = m.predict(x.view()).unwrap_or_else(|e| panic!("{imp}: {e}"));
        assert!(p.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)), "{imp}: {p}");
        let loss = m
            .train_step(x.view(), Target::Values(wrong.view()))
            .unwrap_or_else(|e| panic!("{imp}: {e}"));
        assert!(loss.is_finite(), "{imp}: {loss}");
        let after = m.param("dense1.weight").expect("dense1.weight");
        assert!(after.iter().all(|v| v.is_finite()), "{imp}: {after}");
        results.push((g, after));
    }
    assert!(max_diff(&results[0].0.input, &results[1].0.input) < 1e-3);
    assert!(max_diff(&results[0].1, &results[1].1) < 1e-3);
}

/// 8 samples of a 2-input problem.
fn small_data(labels: bool) -> Dataset {
    let inputs = ArrayD::from_shape_fn(IxDyn(&[8, 2]), |d| {
        (d[0] as f32 - 3.5) * if d[1] == 0 { 1.0 } else { -0.5 }
    });
    let targets = if labels {
        Targets::Labels((0..8).map(|i| i % 3).collect())
    } else {
        Targets::Values(ArrayD::from_shape_fn(IxDyn(&[8, 1]), |d| d[0] as f32))
    };
    Dataset::new(inputs, targets).expect("a consistent data set")
}

#[test]
fn a_diverging_fit_stops_naming_the_epoch_and_batch_without_nan_weights() {
    for (model, labels, loss) in [
        ("Diverging", false, cnnc::ir::Loss::Mse),
        ("DivergingClassifier", true, cnnc::ir::Loss::CrossEntropy),
    ] {
        let data = small_data(labels);
        let config = FitConfig {
            seed: 1,
            ..FitConfig::new(loss, 20, 2).quiet()
        };
        for (imp, mut m) in both(model) {
            let e = fit(m.as_mut(), &data, &config).expect_err(&format!("{model} ({imp}) with lr 1e6 should diverge"));
            let text = e.to_string();
            assert!(matches!(e, Error::Diverged { .. }), "{model} ({imp}): {e:?}");
            assert_names(&format!("{model} ({imp})"), &text, &["epoch", "batch", "learning rate"]);
            let Error::Diverged { epoch, batch, .. } = e else {
                unreachable!()
            };
            assert!(epoch < 20 && batch < 4, "{model} ({imp}): epoch {epoch}, batch {batch}");
            assert!(
                text.contains(&format!("epoch {}", epoch + 1)) && text.contains(&format!("batch {}", batch + 1)),
                "{model} ({imp}): the message counts from 1 like the epoch lines: {text}"
            );
            for name in m.param_names() {
                let p = m.param(&name).expect("a listed parameter");
                assert!(
                    p.iter().all(|v| v.is_finite()),
                    "{model} ({imp}): {name} is not finite: {p}"
                );
            }
            // The weights are those of the start of the diverging epoch: finite, though
            // possibly so large that outputs overflow, so only that the model runs is checked.
            m.predict(data.inputs.view())
                .unwrap_or_else(|e| panic!("{model} ({imp}): {e}"));
        }
    }
}

#[test]
fn predict_into_refuses_a_buffer_of_the_wrong_length() {
    let mut m = Classifier::new(0);
    let x = zeros(&[2, 1, 6, 6]);
    for len in [0usize, 5, 7, 60] {
        let mut out = vec![0.0f32; len];
        let text = message("predict_into", m.predict_into(x.view(), &mut out));
        assert_names(
            "predict_into",
            &text,
            &["output buffer", "6 values", &format!("[{len}]")],
        );
    }
    let mut out = vec![0.0f32; 6];
    let mut bad = x.clone();
    bad[[0, 0, 0, 0]] = f32::NAN;
    let text = message("predict_into", m.predict_into(bad.view(), &mut out));
    assert_names("predict_into", &text, &["input", "NaN", "[0, 0, 0, 0]"]);
    let text = message("predict_into", m.predict_into(zeros(&[2, 6, 6]).view(), &mut out));
    assert_names("predict_into", &text, &["[N, 1, 6, 6]", "[2, 6, 6]"]);
    m.predict_into(x.view(), &mut out).unwrap_or_else(|e| panic!("{e}"));
}
