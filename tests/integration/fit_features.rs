//! What `fit` does with a batch: the train block's `augment` applied to each
//! sample as the batch is gathered (the same draws as `rt::augment` gives that
//! sample), binary cross-entropy's training accuracy over output elements, and a
//! last batch of one sample left out for models with batchnorm.

use cnnc::ndarray::{ArrayD, ArrayView1, IxDyn};
use cnnc::rt::augment::augment_batch;
use cnnc::rt::data::{shuffled, Dataset, Targets};
use cnnc::rt::fit::{evaluate, fit, FitConfig};
use cnnc::{Model, Target, Train};

cnn_macros::cnn! {
    model Augmented {
        input 2x6x6
        conv 3 kernel 3 pad 1 relu
        flatten
        dense 3 softmax
        train {
            loss cross_entropy
            optimizer sgd lr 0.05 momentum 0.5
            batch 5
            epochs 3
            seed 11
            augment flip horizontal crop 2 flip vertical
        }
    }
}

cnn_macros::cnn! {
    model Binary {
        input 3
        dense 2 sigmoid
        train {
            loss binary_cross_entropy
            optimizer sgd lr 1e-30
            batch 4
            epochs 1
        }
    }
}

cnn_macros::cnn! {
    model Normed {
        input 4
        dense 6
        batchnorm relu
        dense 2 softmax
        train {
            loss cross_entropy
            optimizer sgd lr 0.1
            batch 4
            epochs 2
        }
    }
}

fn bits<M: Model>(m: &M) -> Vec<Vec<u32>> {
    m.param_names()
        .iter()
        .map(|n| m.param(n).expect("listed").iter().map(|v| v.to_bits()).collect())
        .collect()
}

fn images(n: usize) -> Dataset {
    let x = ArrayD::from_shape_fn(IxDyn(&[n, 2, 6, 6]), |d| {
        ((d[0] * 7 + d[1] * 5 + d[2] * 3 + d[3] * 11) % 13) as f32 / 13.0
    });
    Dataset::new(x, Targets::Labels((0..n).map(|i| i % 3).collect())).expect("consistent")
}

#[test]
fn fit_augments_each_sample_as_rt_augment_draws_it() {
    // 23 samples in batches of 5: the last batch holds 3.
    let data = images(23);
    let config = Augmented::FIT.quiet();
    assert_eq!(
        config.augment.len(),
        3,
        "FitConfig::of copies the train block's augment"
    );
    let mut fitted = Augmented::new(config.seed);
    fit(&mut fitted, &data, &config).unwrap_or_else(|e| panic!("{e}"));

    // The same steps by hand: each epoch's order, each batch augmented by rt::augment.
    let mut by_hand = Augmented::new(config.seed);
    let len = 2 * 6 * 6;
    let x = data.inputs.as_slice().expect("standard layout");
    let Targets::Labels(labels) = &data.targets else {
        unreachable!()
    };
    for epoch in 0..config.epochs {
        by_hand.set_epoch(epoch);
        let order = shuffled(data.len(), config.seed + epoch as u64 + 1);
        for chunk in order.chunks(config.batch) {
            let raw: Vec<f32> = chunk.iter().flat_map(|&i| x[i * len..(i + 1) * len].to_vec()).collect();
            let mut out = vec![0.0; raw.len()];
            augment_batch(
                config.augment,
                (2, 6, 6),
                config.seed,
                epoch as u64,
                chunk,
                &raw,
                &mut out,
            );
            let xb = ArrayD::from_shape_vec(IxDyn(&[chunk.len(), 2, 6, 6]), out).expect("shape");
            let lb: Vec<usize> = chunk.iter().map(|&i| labels[i]).collect();
            by_hand
                .train_step(xb.view(), Target::Labels(ArrayView1::from(&lb[..])))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    assert!(
        bits(&fitted) == bits(&by_hand),
        "fit's augmentation differs from rt::augment's"
    );

    // And augmentation changes the run: without it the weights differ.
    let mut plain = Augmented::new(config.seed);
    let no_augment = FitConfig { augment: &[], ..config };
    fit(&mut plain, &data, &no_augment).unwrap_or_else(|e| panic!("{e}"));
    assert!(bits(&plain) != bits(&fitted));
}

#[test]
fn augment_on_a_vector_input_is_refused() {
    let x = ArrayD::from_shape_fn(IxDyn(&[8, 4]), |d| d[1] as f32);
    let data = Dataset::new(x, Targets::Labels((0..8).map(|i| i % 2).collect())).expect("consistent");
    let config = FitConfig {
        augment: &[cnnc::ir::Augment::FlipHorizontal],
        ..Normed::FIT.quiet()
    };
    let text = fit(&mut Normed::new(0), &data, &config)
        .expect_err("refused")
        .to_string();
    assert!(
        text.contains("needs image inputs [C, H, W]") && text.contains("[4]"),
        "{text}"
    );
}

#[test]
fn binary_cross_entropy_reports_the_fraction_of_elements_right() {
    // lr 1e-30 leaves the weights as they are, so the training accuracy of the one
    // epoch is the accuracy `evaluate` measures before it.
    let n = 10;
    let x = ArrayD::from_shape_fn(IxDyn(&[n, 3]), |d| ((d[0] * 3 + d[1] * 7) % 5) as f32 - 2.0);
    let t = ArrayD::from_shape_fn(IxDyn(&[n, 2]), |d| ((d[0] + d[1] * 3) % 2) as f32);
    let data = Dataset::new(x, Targets::Values(t)).expect("consistent");
    let mut m = Binary::new(3);
    let before = evaluate(&mut m, &data, Binary::FIT.loss, 4).unwrap_or_else(|e| panic!("{e}"));
    let report = fit(&mut m, &data, &Binary::FIT.quiet()).unwrap_or_else(|e| panic!("{e}"));
    let accuracy = report.history[0].train_accuracy.expect("binary cross-entropy counts");
    assert_eq!(Some(accuracy), before.accuracy);
    assert!((0.0..=1.0).contains(&accuracy));
    // Counted over the 20 output elements, not the 10 samples.
    assert!((0..=20).any(|k| k as f64 / 20.0 == accuracy), "{accuracy}");
}

fn vectors(n: usize) -> Dataset {
    let x = ArrayD::from_shape_fn(IxDyn(&[n, 4]), |d| ((d[0] * 5 + d[1] * 3) % 7) as f32 / 7.0);
    Dataset::new(x, Targets::Labels((0..n).map(|i| i % 2).collect())).expect("consistent")
}

#[test]
fn a_last_batch_of_one_sample_is_left_out_for_batchnorm() {
    // 9 samples in batches of 4: 4, 4 and 1; the 1 is left out, 2 steps an epoch.
    let mut m = Normed::new(0);
    let report = fit(&mut m, &vectors(9), &Normed::FIT.quiet()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.batches_tracked(), 4);
    assert!(report.history.iter().all(|r| r.train_loss.is_finite()));
    let accuracy = report.history[0].train_accuracy.expect("counted");
    assert!(
        (0..=8).any(|k| k as f64 / 8.0 == accuracy),
        "{accuracy}: over the 8 samples trained on"
    );
    // A last batch of 2 is kept: 3 steps an epoch.
    let mut m = Normed::new(0);
    fit(&mut m, &vectors(10), &Normed::FIT.quiet()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.batches_tracked(), 6);
    // One sample in all cannot train.
    let text = fit(&mut Normed::new(0), &vectors(1), &Normed::FIT.quiet())
        .expect_err("refused")
        .to_string();
    assert!(text.contains("batchnorm") && text.contains("at least 2"), "{text}");
}

cnn_macros::cnn! {
    model Normalized {
        input 3x2x2 normalize mean 0.49 0.48 0.45 std 0.25 0.24 0.26
        flatten
    }
}

/// `normalize` against torchvision's `Normalize(mean, std)`: these numbers are
/// PyTorch's, `(x - mean[:, None, None]) / std[:, None, None]` in float64, for
/// `x = arange(24).reshape(2, 3, 2, 2) / 7 - 0.6`; the generated model and the
/// interpreter both give them.
#[test]
fn normalize_matches_pytorchs_normalize() {
    // PyTorch's float64 results, printed to 8 significant digits.
    #[allow(clippy::excessive_precision)]
    let torch: [f32; 24] = [
        -4.36, -3.7885714, -3.2171429, -2.6457143, -2.1190476, -1.5238095, -0.9285714, -0.3333333, 0.3571429,
        0.9065934, 1.456044, 2.0054945, 2.4971429, 3.0685714, 3.64, 4.2114286, 5.0238095, 5.6190476, 6.2142857,
        6.8095238, 6.9505495, 7.5, 8.0494505, 8.5989011,
    ];
    let x = cnnc::ndarray::ArrayD::from_shape_fn(cnnc::ndarray::IxDyn(&[2, 3, 2, 2]), |ix| {
        let i = ((ix[0] * 3 + ix[1]) * 2 + ix[2]) * 2 + ix[3];
        i as f32 / 7.0 - 0.6
    });
    let text = "model Normalized { input 3x2x2 normalize mean 0.49 0.48 0.45 std 0.25 0.24 0.26 flatten }";
    let mut interp = cnnc::interp::Interpreter::from_source(text, "Normalized", 0).unwrap();
    let outputs = [
        cnnc::Model::predict(&mut Normalized::new(0), x.view()).unwrap(),
        cnnc::Model::predict(&mut interp, x.view()).unwrap(),
    ];
    for y in outputs {
        for (got, want) in y.iter().zip(torch) {
            assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "{got} vs {want}");
        }
    }
}

/// `augment` in the reference interpreter: `fit` gathers and augments the batches
/// the same way for both, so the interpreter, started from the generated model's
/// weights, ends the same run with the same weights (up to float summation order).
#[test]
fn augmented_training_agrees_with_the_interpreter() {
    let data = images(23);
    let config = Augmented::FIT.quiet();
    let mut generated = Augmented::new(config.seed);
    let text = "model Augmented { input 2x6x6 conv 3 kernel 3 pad 1 relu flatten dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.5 batch 5 epochs 3 seed 11
                augment flip horizontal crop 2 flip vertical } }";
    let mut interp = cnnc::interp::Interpreter::from_source(text, "Augmented", 0).unwrap();
    for name in generated.param_names() {
        interp.set_param(&name, generated.param(&name).unwrap().view()).unwrap();
    }
    fit(&mut generated, &data, &config).unwrap_or_else(|e| panic!("{e}"));
    fit(&mut interp, &data, &config).unwrap_or_else(|e| panic!("{e}"));
    for name in generated.param_names() {
        let (g, i) = (generated.param(&name).unwrap(), interp.param(&name).unwrap());
        for (a, b) in g.iter().zip(i.iter()) {
            assert!((a - b).abs() <= 1e-4 + 1e-3 * b.abs(), "{name}: {a} vs {b}");
        }
    }
}

cnn_macros::cnn! {
    model Pixels {
        input 1x6x6
        e: conv 4 kernel 3 pad 1 relu
        conv 4 kernel 3 pad 1 relu
        concat e
        conv 3 kernel 1 softmax
        train {
            loss cross_entropy ignore 255
            optimizer adam lr 0.02
            batch 8
            epochs 40
            seed 3
            augment flip horizontal crop 1
        }
    }
}

/// v3: a class per pixel (0 below -0.3, 1 between, 2 above 0.3), some pixels
/// void; training on label maps with their masks augmented alongside, then
/// evaluation's pixel accuracy and mean IoU.
#[test]
fn segmentation_trains_on_label_maps_and_reports_mean_iou() {
    let n = 48;
    let mut state = 7u64;
    let inputs = ArrayD::from_shape_simple_fn(IxDyn(&[n, 1, 6, 6]), || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    });
    let maps = cnnc::ndarray::Array3::from_shape_fn((n, 6, 6), |(i, y, x)| {
        let v = inputs[[i, 0, y, x]];
        match (i + y + x) % 11 {
            0 => 255,
            _ if v < -0.3 => 0,
            _ if v > 0.3 => 2,
            _ => 1,
        }
    });
    let data = Dataset::new(inputs, Targets::LabelMaps(maps)).unwrap();
    let mut model = Pixels::new(0);
    let before = evaluate(&mut model, &data, cnnc::ir::Loss::CrossEntropy, 16).unwrap();
    let report = fit(&mut model, &data, &Pixels::FIT.quiet()).unwrap();
    let after = evaluate(&mut model, &data, cnnc::ir::Loss::CrossEntropy, 16).unwrap();
    let last = report.history.last().unwrap();
    assert!(last.train_accuracy.unwrap() > 0.8, "{last:?}");
    assert!(after.mean_iou.unwrap() > 0.8, "{before:?} -> {after:?}");
    assert!(
        after.mean_iou.unwrap() > before.mean_iou.unwrap(),
        "{before:?} -> {after:?}"
    );
    // A vector target for an image output is refused with the kind it needs.
    let wrong = Dataset::new(data.inputs.clone(), Targets::Labels(vec![0; n])).unwrap();
    let e = evaluate(&mut model, &wrong, cnnc::ir::Loss::CrossEntropy, 16).unwrap_err();
    assert!(e.to_string().contains("label maps"), "{e}");
}

/// v3 `warmup 3 from 0.1` before a schedule: PyTorch's
/// `SequentialLR([LinearLR(o, 0.1, total_iters=3), SCHEDULE], milestones=[3])` over
/// 10 epochs, the schedule spanning the 7 after the warmup (the numbers printed by
/// torch 2 for lr 0.1: cosine with eta_min 0.001, StepLR(2, 0.5)).
#[test]
fn warmup_then_the_schedule_over_the_epochs_left() {
    let cases = [
        (
            "schedule cosine min 0.001",
            [
                0.01, 0.04, 0.07, 0.1, 0.09509796, 0.08136275, 0.06151479, 0.03948521, 0.01963725, 0.00590204,
            ],
        ),
        (
            "schedule step 2 gamma 0.5",
            [0.01, 0.04, 0.07, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125],
        ),
    ];
    for (schedule, torch) in cases {
        let text = format!(
            "model M {{ input 2 dense 2 softmax train {{ loss cross_entropy optimizer sgd lr 0.1 {schedule} \
             warmup 3 from 0.1 epochs 10 }} }}"
        );
        let model = cnnc::compile(&text).unwrap().remove(0);
        let train = model.train.as_ref().unwrap();
        let interp = cnnc::interp::Interpreter::new(model.clone(), 0);
        for (e, want) in torch.iter().enumerate() {
            assert!((train.learning_rate(e) - want).abs() < 1e-7, "{schedule} epoch {e}");
            assert!(
                (interp.learning_rate(e) as f64 - want).abs() < 1e-7,
                "{schedule} epoch {e}"
            );
        }
    }
}

cnn_macros::cnn! {
    model Stalled {
        input 3
        dense 2 softmax
        train {
            loss cross_entropy
            optimizer sgd lr 1e-30
            batch 4
            epochs 10
            validation 0.25
            early_stop 2
        }
    }
}

/// v3 `early_stop 2`: a validation loss that never improves after the first
/// epoch stops the run two epochs later.
#[test]
fn early_stop_ends_the_run_after_its_patience() {
    let inputs = ArrayD::from_shape_fn(IxDyn(&[16, 3]), |ix| (ix[0] * 3 + ix[1]) as f32 / 10.0 - 1.0);
    let data = Dataset::new(inputs, Targets::Labels((0..16).map(|i| i % 2).collect())).unwrap();
    let mut model = Stalled::new(0);
    let report = fit(&mut model, &data, &Stalled::FIT.quiet()).unwrap();
    assert_eq!(report.history.len(), 3, "{:?}", report.history);
}
