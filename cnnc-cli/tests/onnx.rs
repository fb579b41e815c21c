//! `cnnc export` and `cnnc import` end to end: a model out to ONNX and back, with
//! its weights, and clear errors (exit 2, no panic) on what is not ONNX or not the
//! model's weights.

mod common;

use common::path_str as s;
use common::{cnnc, stderr};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[test]
fn a_model_goes_out_to_onnx_and_back_with_its_weights() {
    let (onnx, cnn, weights) = (
        scratch("lenet.onnx"),
        scratch("lenet_back.cnn"),
        scratch("lenet_back.safetensors"),
    );
    let o = cnnc(&["export", "examples/models/lenet.cnn", "-o", s(&onnx)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("seeded initialization"), "{}", stderr(&o));
    let o = cnnc(&["import", s(&onnx), "-o", s(&cnn), "--weights", s(&weights)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&cnn).expect("imported model");
    assert!(text.contains("model LeNet {"), "{text}");
    assert!(text.contains("conv 6 kernel 5 pad 2 relu"), "{text}");
    let o = cnnc(&["check", s(&cnn)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The imported weights export again from the imported model.
    let again = scratch("lenet_again.onnx");
    let o = cnnc(&["export", s(&cnn), "--weights", s(&weights), "-o", s(&again)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&onnx).expect("first").len(),
        std::fs::read(&again).expect("second").len()
    );
}

#[test]
fn import_of_a_file_that_is_not_onnx_is_an_error() {
    let out = scratch("never_written.cnn");
    let o = cnnc(&["import", "examples/models/lenet.cnn", "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not an ONNX model"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing is written on an error");
}

#[test]
fn export_with_another_models_weights_names_the_tensor() {
    let weights = scratch("vgg_seed.safetensors");
    let (onnx, cnn) = (scratch("vgg.onnx"), scratch("vgg.cnn"));
    let o = cnnc(&["export", "examples/models/vgg_cifar.cnn", "-o", s(&onnx)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cnnc(&["import", s(&onnx), "-o", s(&cnn), "--weights", s(&weights)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = scratch("lenet_wrong.onnx");
    let o = cnnc(&[
        "export",
        "examples/models/lenet.cnn",
        "--weights",
        s(&weights),
        "-o",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("conv1.weight"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing is written on an error");
}
