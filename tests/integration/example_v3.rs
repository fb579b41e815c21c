//! The v3 example models (U-Net, MobileNetV3-style block with squeeze-and-
//! excitation, DenseNet block) have PyTorch's parameter counts and parameter names:
//! the numbers and names `python examples/models/torch_equivalents.py` prints for
//! the modules there (torch 2), so cnnc's weight files load into them with
//! `strict=True`. Each also takes a training step.

use cnnc::interp::Interpreter;
use cnnc::ndarray::{Array1, Array3};
use cnnc::{Model, Target, Train};

use crate::common::input;

fn interpreter(file: &str, name: &str) -> Interpreter {
    let path = format!("{}/examples/models/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("the model file");
    Interpreter::from_source(&text, name, 0).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn count(m: &Interpreter) -> usize {
    m.param_names().iter().map(|n| m.param(n).expect("listed").len()).sum()
}

#[test]
fn unet_matches_pytorch() {
    let mut m = interpreter("unet.cnn", "UNet");
    assert_eq!(count(&m), 59_587);
    assert_eq!(
        m.param_names(),
        [
            "conv1.weight",
            "batchnorm1.weight",
            "batchnorm1.bias",
            "e1.weight",
            "e1.bias",
            "e2.weight",
            "e2.bias",
            "conv4.weight",
            "conv4.bias",
            "up2.weight",
            "up2.bias",
            "conv5.weight",
            "conv5.bias",
            "conv6.weight",
            "conv6.bias",
            "conv7.weight",
            "conv7.bias",
        ]
    );
    let x = input(&[2, 3, 64, 64]);
    let maps = Array3::from_shape_fn(
        (2, 64, 64),
        |(i, y, x)| if (x + y + i) % 9 == 0 { 255 } else { (x / 22) % 3 },
    );
    let loss = m.train_step(x.view(), Target::LabelMaps(maps.view())).expect("a step");
    assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
}

#[test]
fn mobilenetv3_block_matches_pytorch() {
    let mut m = interpreter("mobilenetv3_block.cnn", "MobileNetV3Block");
    assert_eq!(count(&m), 5_210);
    assert_eq!(
        m.param_names(),
        [
            "conv1.weight",
            "batchnorm1.weight",
            "batchnorm1.bias",
            "conv2.weight",
            "x.weight",
            "x.bias",
            "conv3.weight",
            "conv3.bias",
            "conv4.weight",
            "conv4.bias",
            "conv5.weight",
            "batchnorm3.weight",
            "batchnorm3.bias",
            "dense1.weight",
            "dense1.bias",
        ]
    );
    let x = input(&[2, 16, 32, 32]);
    let labels = Array1::from_vec(vec![3, 7]);
    let loss = m.train_step(x.view(), Target::Labels(labels.view())).expect("a step");
    assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
}

#[test]
fn densenet_block_matches_pytorch() {
    let mut m = interpreter("densenet_block.cnn", "DenseNetBlock");
    assert_eq!(count(&m), 14_818);
    assert_eq!(
        m.param_names(),
        [
            "s.weight",
            "batchnorm1.weight",
            "batchnorm1.bias",
            "conv2.weight",
            "batchnorm2.weight",
            "batchnorm2.bias",
            "conv3.weight",
            "batchnorm3.weight",
            "batchnorm3.bias",
            "conv4.weight",
            "batchnorm4.weight",
            "batchnorm4.bias",
            "conv5.weight",
            "batchnorm5.weight",
            "batchnorm5.bias",
            "dense1.weight",
            "dense1.bias",
        ]
    );
    let x = input(&[2, 3, 32, 32]);
    let labels = Array1::from_vec(vec![1, 9]);
    let loss = m.train_step(x.view(), Target::Labels(labels.view())).expect("a step");
    assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
}
