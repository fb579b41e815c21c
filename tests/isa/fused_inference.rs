//! Inference runs the fused plan (`codegen::infer`): batchnorms folded into the
//! convolutions before them and residual joins added in the convolutions'
//! stores. Its predictions must equal the unfused forward pass (`activations`,
//! which runs the training plan's steps with the running statistics) to float
//! rounding, in generated code and in the executor, on every instruction set,
//! and must follow every change of the weights and running statistics (the
//! folded weights are recomputed when they are stale).

use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::rt::exec::Executor;
use cnnc::{Target, Train};

cnn_macros::cnn!(file = "examples/models/resnet8.cnn");

const RESNET8: &str = include_str!("../../examples/models/resnet8.cnn");

/// A model every kind of fusion applies to: folds, an identity join, a
/// projection join and a pre-activation batchnorm that stays a step.
const BLOCKS: &str = "model Fused { input 3x12x12
    conv 8 kernel 3 pad 1 batchnorm relu
    residual { conv 8 kernel 3 pad 1 batchnorm relu conv 8 kernel 3 pad 1 batchnorm } relu
    residual { conv 16 kernel 3 pad 1 stride 2 round floor bias off batchnorm relu6 conv 16 kernel 3 pad 1 batchnorm
      shortcut { conv 16 kernel 1 stride 2 round floor batchnorm } } silu
    residual { batchnorm relu conv 16 kernel 3 pad 1 }
    avgpool global flatten dense 5 softmax
    train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 batch 8 } }";

fn input(n: usize, len: usize, seed: u32) -> Vec<f32> {
    (0..n * len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32 / 16_777_216.0 - 0.5)
        .collect()
}

/// `predict` (fused) against the last layer of `activations` (unfused).
fn agrees(model: &mut dyn Train, x: &ArrayD<f32>, what: &str) {
    let fused = model.predict(x.view()).unwrap();
    let unfused = model.activations(x.view()).unwrap().pop().unwrap().1;
    assert_eq!(fused.shape(), unfused.shape());
    let worst = fused
        .iter()
        .zip(&unfused)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 2e-6,
        "{what}: fused inference differs from the unfused pass by {worst}"
    );
}

/// Gives every running statistic a value of its own, so folding is not the identity.
fn perturb_statistics(model: &mut dyn Train) {
    for (k, name) in model.buffer_names().into_iter().enumerate() {
        let b = model.buffer(&name).unwrap();
        if b.ndim() == 0 {
            continue;
        }
        let shape = b.shape().to_vec();
        let values: Vec<f32> = (0..b.len())
            .map(|i| {
                let v = ((i * 7 + k * 13) % 11) as f32 / 11.0;
                if name.ends_with("running_var") {
                    0.5 + v
                } else {
                    v - 0.5
                }
            })
            .collect();
        model
            .set_buffer(&name, ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap().view())
            .unwrap();
    }
}

fn check(model: &mut dyn Train, what: &str) {
    let shape = model.input_shape().to_vec();
    let len: usize = shape.iter().product();
    let mut dims = vec![10];
    dims.extend(&shape);
    let x = ArrayD::from_shape_vec(IxDyn(&dims), input(10, len, 1)).unwrap();
    agrees(model, &x, &format!("{what}, initial"));
    perturb_statistics(model);
    agrees(model, &x, &format!("{what}, new running statistics"));
    // A training step changes the weights and the statistics: the folds follow.
    let batch = model.max_train_batch().unwrap_or(8).min(8);
    let xb = ArrayD::from_shape_vec(IxDyn(&[&[batch][..], &shape].concat()), input(batch, len, 2)).unwrap();
    let classes = model.output_shape()[0];
    let labels: Array1<usize> = (0..batch).map(|i| i % classes).collect();
    model.train_step(xb.view(), Target::Labels(labels.view())).unwrap();
    agrees(model, &x, &format!("{what}, after a step"));
    // So does a weight set by name.
    let name = model.param_names()[0].clone();
    let w = model.param(&name).unwrap().mapv(|v| v * 1.5);
    model.set_param(&name, w.view()).unwrap();
    agrees(model, &x, &format!("{what}, after set_param"));
}

#[test]
fn fused_inference_equals_the_unfused_pass_in_generated_code_and_the_executor() {
    crate::on_every_isa(|isa| {
        check(&mut ResNet8::new(3), &format!("ResNet8 generated on {isa}"));
        let mut exec = Executor::from_source(RESNET8, None, 3).unwrap();
        check(&mut exec, &format!("ResNet8 executor on {isa}"));
        let mut blocks = Executor::from_source(BLOCKS, None, 5).unwrap();
        check(&mut blocks, &format!("Fused executor on {isa}"));
    });
}

#[test]
fn the_executor_plans_the_fused_steps_it_runs() {
    let plan = cnnc::codegen::plan::Plan::new(&cnnc::compile(BLOCKS).unwrap()[0]);
    let inference = plan.inference().expect("these blocks fuse");
    assert_eq!(inference.folds.len(), 6);
    assert_eq!(inference.steps.iter().filter(|s| s.inputs.len() == 2).count(), 3);
}
