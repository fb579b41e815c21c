//! `fit` and `evaluate` check the whole data set before the first step and name a
//! bad sample by its index in the data set; a run whose parameters stop being
//! finite is stopped, naming the epoch, with the parameters of that epoch's start.

use cnnc::interp::Interpreter;
use cnnc::ir::Loss;
use cnnc::ndarray::{ArrayD, ArrayViewD, IxDyn};
use cnnc::rt::data::{Dataset, Targets};
use cnnc::rt::fit::{evaluate, fit, FitConfig};
use cnnc::{Error, Gradients, Model, Target, Train};

fn config(loss: Loss) -> FitConfig {
    FitConfig::new(loss, 2, 2).quiet()
}

fn classifier() -> Interpreter {
    let source = "model C { input 2 dense 3 softmax train { loss cross_entropy optimizer sgd lr 0.1 batch 2 } }";
    Interpreter::from_source(source, "C", 0).unwrap_or_else(|e| panic!("{e}"))
}

fn binary() -> Interpreter {
    let source = "model B { input 2 dense 1 sigmoid train { loss binary_cross_entropy optimizer sgd lr 0.1 batch 2 } }";
    Interpreter::from_source(source, "B", 0).unwrap_or_else(|e| panic!("{e}"))
}

fn inputs(n: usize, width: usize) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(&[n, width]), |d| (d[0] + d[1]) as f32 / 10.0)
}

fn labels(n: usize) -> Targets {
    Targets::Labels((0..n).map(|i| i % 3).collect())
}

/// `fit` and `evaluate` of a fresh classifier on `data` must both fail naming `parts`,
/// without touching the parameters.
fn both_refuse(data: &Dataset, loss: Loss, parts: &[&str]) {
    let mut m = if loss == Loss::CrossEntropy {
        classifier()
    } else {
        binary()
    };
    let before: Vec<_> = m.param_names().iter().map(|n| m.param(n)).collect();
    let text = fit(&mut m, data, &config(loss))
        .expect_err("fit should refuse")
        .to_string();
    for part in parts {
        assert!(text.contains(part), "fit: `{part}` is missing from: {text}");
    }
    let after: Vec<_> = m.param_names().iter().map(|n| m.param(n)).collect();
    assert_eq!(before, after, "a refused fit changed the parameters");
    let text = evaluate(&mut m, data, loss, 2)
        .expect_err("evaluate should refuse")
        .to_string();
    for part in parts {
        assert!(text.contains(part), "evaluate: `{part}` is missing from: {text}");
    }
}

#[test]
fn a_label_at_or_above_the_classes_is_named_by_its_index_in_the_data_set() {
    let mut l: Vec<usize> = (0..10).map(|i| i % 3).collect();
    l[7] = 3;
    let data = Dataset::new(inputs(10, 2), Targets::Labels(l)).expect("counts agree");
    both_refuse(&data, Loss::CrossEntropy, &["label 3 of sample 7", "3 classes"]);
}

#[test]
fn nan_in_the_data_set_is_named_by_its_index() {
    let mut x = inputs(10, 2);
    x[[6, 1]] = f32::NAN;
    let data = Dataset::new(x, labels(10)).expect("counts agree");
    both_refuse(&data, Loss::CrossEntropy, &["input array", "NaN", "[6, 1]"]);
    let mut t = ArrayD::from_elem(IxDyn(&[10, 1]), 0.5f32);
    t[[4, 0]] = f32::INFINITY;
    let data = Dataset::new(inputs(10, 2), Targets::Values(t)).expect("counts agree");
    both_refuse(&data, Loss::BinaryCrossEntropy, &["target array", "inf", "[4, 0]"]);
}

#[test]
fn binary_targets_outside_0_1_are_named_by_their_index() {
    let mut t = ArrayD::from_elem(IxDyn(&[10, 1]), 0.5f32);
    t[[8, 0]] = -0.25;
    let data = Dataset::new(inputs(10, 2), Targets::Values(t)).expect("counts agree");
    both_refuse(&data, Loss::BinaryCrossEntropy, &["[0, 1]", "-0.25", "[8, 0]"]);
}

#[test]
fn the_wrong_kind_or_shape_of_targets_is_refused() {
    let data = Dataset::new(inputs(4, 2), Targets::Values(ArrayD::zeros(IxDyn(&[4, 3])))).expect("counts agree");
    both_refuse(&data, Loss::CrossEntropy, &["cross_entropy", "Targets::Labels"]);
    let data = Dataset::new(inputs(4, 2), labels(4)).expect("counts agree");
    both_refuse(
        &data,
        Loss::BinaryCrossEntropy,
        &["binary_cross_entropy", "Targets::Values"],
    );
    let data = Dataset::new(inputs(4, 2), Targets::Values(ArrayD::zeros(IxDyn(&[4, 2])))).expect("counts agree");
    both_refuse(
        &data,
        Loss::BinaryCrossEntropy,
        &["target array has shape", "[4, 1]", "[4, 2]"],
    );
}

#[test]
fn inputs_of_the_wrong_shape_are_refused() {
    let data = Dataset::new(inputs(4, 3), labels(4)).expect("counts agree");
    both_refuse(
        &data,
        Loss::CrossEntropy,
        &["set's input array has shape", "[N, 2]", "[4, 3]"],
    );
}

#[test]
fn counts_that_disagree_are_refused_even_when_built_by_hand() {
    let text = Dataset::new(inputs(4, 2), labels(3))
        .expect_err("counts differ")
        .to_string();
    assert!(text.contains("4 inputs but 3 targets"), "{text}");
    // The fields are public: a data set built without `new` is checked too.
    let data = Dataset {
        inputs: inputs(4, 2),
        targets: labels(3),
    };
    both_refuse(&data, Loss::CrossEntropy, &["4 inputs but 3 targets"]);
    let empty = Dataset {
        inputs: inputs(0, 2),
        targets: labels(0),
    };
    both_refuse(&empty, Loss::CrossEntropy, &["empty"]);
}

#[test]
fn a_validation_fraction_that_holds_out_nothing_is_refused() {
    let data = Dataset::new(inputs(4, 2), labels(4)).expect("counts agree");
    let mut m = classifier();
    for (fraction, part) in [
        (0.1, "holds out no sample"),
        (0.0, "between 0 and 1"),
        (1.5, "between 0 and 1"),
    ] {
        let config = FitConfig {
            validation: Some(fraction),
            ..config(Loss::CrossEntropy)
        };
        let text = fit(&mut m, &data, &config).expect_err("refused").to_string();
        assert!(text.contains(part) && text.contains(&fraction.to_string()), "{text}");
    }
    let config = FitConfig {
        validation: Some(0.5),
        ..config(Loss::CrossEntropy)
    };
    let report = fit(&mut m, &data, &config).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.history.iter().all(|r| r.validation.is_some()));
}

/// A model whose only parameter `w` counts the steps, becomes infinite at step
/// `explode_at` (while the loss stays finite) or reports a NaN loss there after
/// writing NaN into `w`, as an optimizer that does not check would.
struct Fake {
    w: ArrayD<f32>,
    steps: usize,
    explode_at: usize,
    nan_loss: bool,
}

impl Fake {
    fn new(explode_at: usize, nan_loss: bool) -> Fake {
        Fake {
            w: ArrayD::zeros(IxDyn(&[1])),
            steps: 0,
            explode_at,
            nan_loss,
        }
    }
}

impl Model for Fake {
    fn input_shape(&self) -> &[usize] {
        &[2]
    }
    fn output_shape(&self) -> &[usize] {
        &[3]
    }
    fn param_names(&self) -> Vec<String> {
        vec!["w".into()]
    }
    fn param(&self, name: &str) -> Option<ArrayD<f32>> {
        (name == "w").then(|| self.w.clone())
    }
    fn set_param(&mut self, _: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error> {
        self.w = value.to_owned();
        Ok(())
    }
    fn predict(&mut self, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>, Error> {
        Ok(ArrayD::from_elem(IxDyn(&[x.shape()[0], 3]), 1.0 / 3.0))
    }
}

impl Train for Fake {
    fn gradients(&mut self, _: ArrayViewD<'_, f32>, _: Target<'_>) -> Result<Gradients, Error> {
        Err(Error::Config("not used".into()))
    }
    fn train_step(&mut self, _: ArrayViewD<'_, f32>, _: Target<'_>) -> Result<f32, Error> {
        self.steps += 1;
        if self.steps == self.explode_at {
            self.w.fill(if self.nan_loss { f32::NAN } else { f32::INFINITY });
            return Ok(if self.nan_loss { f32::NAN } else { 1.0 });
        }
        self.w += 1.0;
        Ok(1.0)
    }
    fn learning_rate(&self, _: usize) -> f32 {
        0.1
    }
}

#[test]
fn parameters_that_overflow_with_a_finite_loss_stop_the_run() {
    // 10 samples in batches of 2: 5 steps an epoch. Step 10 is the last of epoch 2.
    let data = Dataset::new(inputs(10, 2), labels(10)).expect("counts agree");
    let mut m = Fake::new(10, false);
    let config = FitConfig {
        epochs: 5,
        ..config(Loss::CrossEntropy)
    };
    let e = fit(&mut m, &data, &config).expect_err("the run should stop");
    assert!(
        matches!(e, Error::DivergedParams { epoch: 1, ref param } if param == "w"),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains("parameter `w` became non-finite in epoch 2"), "{text}");
    assert!(text.contains("lower the learning rate"), "{text}");
    // Put back as at the start of epoch 2: 5 steps of +1.
    assert_eq!(m.w[[0]], 5.0);
}

#[test]
fn a_nan_loss_after_a_nan_update_restores_the_epoch_start() {
    // Step 8 is batch 3 of epoch 2; the fake wrote NaN into `w` before reporting it.
    let data = Dataset::new(inputs(10, 2), labels(10)).expect("counts agree");
    let mut m = Fake::new(8, true);
    let config = FitConfig {
        epochs: 5,
        ..config(Loss::CrossEntropy)
    };
    let e = fit(&mut m, &data, &config).expect_err("the run should stop");
    assert!(
        matches!(e, Error::Diverged { epoch: 1, batch: 2, loss } if loss.is_nan()),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains("NaN in epoch 2, batch 3"), "{text}");
    assert_eq!(m.w[[0]], 5.0);
}

#[test]
fn non_finite_parameters_before_training_are_refused() {
    let data = Dataset::new(inputs(10, 2), labels(10)).expect("counts agree");
    let mut m = Fake::new(0, false);
    m.w.fill(f32::NAN);
    let text = fit(&mut m, &data, &config(Loss::CrossEntropy))
        .expect_err("refused")
        .to_string();
    assert!(text.contains("parameter `w` is not finite before training"), "{text}");
    assert_eq!(m.steps, 0);
}

#[test]
fn evaluate_refuses_a_model_whose_output_has_the_wrong_shape() {
    struct Short(Fake);
    impl Model for Short {
        fn input_shape(&self) -> &[usize] {
            self.0.input_shape()
        }
        fn output_shape(&self) -> &[usize] {
            self.0.output_shape()
        }
        fn param_names(&self) -> Vec<String> {
            self.0.param_names()
        }
        fn param(&self, name: &str) -> Option<ArrayD<f32>> {
            self.0.param(name)
        }
        fn set_param(&mut self, name: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error> {
            self.0.set_param(name, value)
        }
        fn predict(&mut self, _: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>, Error> {
            Ok(ArrayD::zeros(IxDyn(&[1, 3])))
        }
    }
    let data = Dataset::new(inputs(4, 2), labels(4)).expect("counts agree");
    let text = evaluate(&mut Short(Fake::new(0, false)), &data, Loss::CrossEntropy, 2)
        .expect_err("refused")
        .to_string();
    assert!(
        text.contains("the model's output") && text.contains("[2, 3]") && text.contains("[1, 3]"),
        "{text}"
    );
}
