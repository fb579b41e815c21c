//! What `fit` takes from the run rather than from the train block (issue 21):
//! the schedule spans the epochs actually run (item 2); a conv + batchnorm model
//! trains on one sample, where each channel still gets many values (item 11); a
//! batch larger than a batchnorm model's compiled one is refused before training,
//! clearly, while evaluation and prediction take any batch (item 12).

use cnnc::interp::Interpreter;
use cnnc::ndarray::{ArrayD, Dimension, IxDyn};
use cnnc::rt::data::{Dataset, Targets};
use cnnc::rt::fit::{evaluate, fit, FitConfig};
use cnnc::{Model, Train};

/// The models both implementations run (and the interpreter reads by name).
const MODELS: &str = include_str!("../fit_run_config.cnn");
cnn_macros::cnn!(file = "tests/fit_run_config.cnn");

fn data(n: usize, sample: &[usize]) -> Dataset {
    let mut shape = vec![n];
    shape.extend_from_slice(sample);
    let x = ArrayD::from_shape_fn(IxDyn(&shape), |d| {
        let k: usize = d.slice().iter().enumerate().map(|(i, v)| (i * 2 + 3) * v).sum();
        (k % 11) as f32 / 11.0 - 0.4
    });
    Dataset::new(x, Targets::Labels((0..n).map(|i| i % 2).collect())).expect("consistent")
}

fn interpreter(name: &str) -> Interpreter {
    Interpreter::from_source(MODELS, name, 0).unwrap_or_else(|e| panic!("{e}"))
}

/// `epochs 5 schedule cosine` run for 12 epochs anneals over 12: PyTorch's
/// `CosineAnnealingLR(T_max=12)`, never climbing back.
#[test]
fn cosine_spans_the_epochs_actually_run() {
    let want: Vec<f32> = (0..12)
        .map(|e| (0.1 * (1.0 + (std::f64::consts::PI * e as f64 / 12.0).cos()) / 2.0) as f32)
        .collect();
    let train = data(8, &[2, 4, 4]);
    let config = FitConfig {
        epochs: 12,
        ..Cosine::FIT.quiet()
    };
    let mut generated = Cosine::new(1);
    let mut interp = interpreter("Cosine");
    for name in generated.param_names() {
        interp.set_param(&name, generated.param(&name).unwrap().view()).unwrap();
    }
    for (what, model) in [
        ("generated", &mut generated as &mut dyn Train),
        ("interpreter", &mut interp as &mut dyn Train),
    ] {
        let report = fit(model, &train, &config).unwrap_or_else(|e| panic!("{what}: {e}"));
        let rates: Vec<f32> = report.history.iter().map(|r| r.learning_rate).collect();
        assert_eq!(rates.len(), 12, "{what}");
        for (e, (got, want)) in rates.iter().zip(&want).enumerate() {
            assert!(
                (got - want).abs() <= 1e-7,
                "{what} epoch {e}: lr {got}, want {want} ({rates:?})"
            );
        }
        assert!(rates.windows(2).all(|w| w[1] <= w[0]), "{what}: {rates:?}");
        assert!((model.learning_rate(11) - want[11]).abs() <= 1e-7, "{what}");
    }
    // The steps used those rates: both implementations end at the same weights.
    for name in generated.param_names() {
        let (g, i) = (generated.param(&name).unwrap(), interp.param(&name).unwrap());
        for (a, b) in g.iter().zip(i.iter()) {
            assert!((a - b).abs() <= 1e-4 + 1e-3 * b.abs(), "{name}: {a} vs {b}");
        }
    }
    // The train block's own run still anneals over its 5 epochs.
    let report = fit(&mut Cosine::new(1), &train, &Cosine::FIT.quiet()).unwrap();
    let last = report.history[4].learning_rate;
    assert!((last - 0.1 * (1.0 + (0.8 * std::f32::consts::PI).cos()) / 2.0).abs() <= 1e-7);
}

/// BatchNorm2d on 32x32 maps gets 1024 values per channel from one sample, so
/// (as in PyTorch) a conv + batchnorm model trains on a single sample, and a last
/// batch of one sample is kept; on 1x1 maps it is not.
#[test]
fn a_conv_batchnorm_model_trains_on_one_sample() {
    let one = data(1, &[3, 32, 32]);
    let mut generated = ConvNormed::new(0);
    let report = fit(&mut generated, &one, &ConvNormed::FIT.quiet()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(generated.batches_tracked(), 2);
    assert!(report.history.iter().all(|r| r.train_loss.is_finite()));
    let mut interp = interpreter("ConvNormed");
    fit(&mut interp, &one, &ConvNormed::FIT.quiet()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(interp.batches_tracked(), 2);
    // 5 samples in batches of 4: 4 and 1, both taken.
    let mut generated = ConvNormed::new(0);
    fit(&mut generated, &data(5, &[3, 32, 32]), &ConvNormed::FIT.quiet()).unwrap();
    assert_eq!(generated.batches_tracked(), 4);

    // One value per channel per sample: the lone last sample is left out, and a
    // single sample cannot train.
    let mut points = PointNormed::new(0);
    fit(&mut points, &data(5, &[3, 1, 1]), &PointNormed::FIT.quiet()).unwrap();
    assert_eq!(points.batches_tracked(), 2);
    let e = fit(
        &mut PointNormed::new(0),
        &data(1, &[3, 1, 1]),
        &PointNormed::FIT.quiet(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("one value per channel"), "{e}");
    let e = fit(
        &mut interpreter("PointNormed"),
        &data(1, &[3, 1, 1]),
        &PointNormed::FIT.quiet(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("one value per channel"), "{e}");
}

/// A batchnorm model compiled with `batch 4`: evaluation and prediction take 64
/// samples at a time; training on batches of 8 is refused before the first step,
/// naming `FitConfig.batch` and the compiled batch.
#[test]
fn a_batch_above_the_compiled_one_evaluates_and_is_refused_for_training() {
    let set = data(20, &[3, 32, 32]);
    let mut model = ConvNormed::new(3);
    fit(&mut model, &set, &ConvNormed::FIT.quiet()).unwrap();
    let small = evaluate(&mut model, &set, ConvNormed::FIT.loss, 4).unwrap();
    let large = evaluate(&mut model, &set, ConvNormed::FIT.loss, 64).unwrap();
    assert!(
        (small.loss - large.loss).abs() <= 1e-6 * small.loss.abs(),
        "{small:?} {large:?}"
    );
    assert_eq!(small.accuracy, large.accuracy);
    let all = model.predict(set.inputs.view()).unwrap();
    assert_eq!(all.shape(), [20, 2]);

    let before: Vec<_> = model.param_names().iter().map(|n| model.param(n).unwrap()).collect();
    let config = FitConfig {
        batch: 8,
        validation: Some(0.5),
        ..ConvNormed::FIT.quiet()
    };
    for (what, model) in [
        ("generated", &mut model as &mut dyn Train),
        ("interpreter", &mut interpreter("ConvNormed") as &mut dyn Train),
    ] {
        let text = fit(model, &set, &config).expect_err(what).to_string();
        assert!(
            text.contains("FitConfig.batch 8") && text.contains("at most 4"),
            "{what}: {text}"
        );
    }
    let after: Vec<_> = model.param_names().iter().map(|n| model.param(n).unwrap()).collect();
    assert_eq!(before, after, "nothing trained");
}
