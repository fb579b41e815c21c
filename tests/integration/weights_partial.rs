//! Partial weight loads for fine-tuning (issue 21, item 13), PyTorch's
//! `load_state_dict(strict=False)`: a pretrained body loads into a model with a new
//! head, with a report of the loaded, missing and unexpected tensors; a tensor
//! present under one of the model's names with another shape is an error naming
//! it and both shapes. Generated models and the interpreter alike.

use cnnc::interp::Interpreter;
use cnnc::ndarray::ArrayD;
use cnnc::rt::weights::{load_safetensors_partial, LoadReport};
use cnnc::Model;

const MODELS: &str = include_str!("../weights_partial.cnn");
cnn_macros::cnn!(file = "tests/weights_partial.cnn");

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn values(m: &dyn Model) -> Vec<(String, ArrayD<f32>)> {
    let mut all: Vec<_> = m
        .param_names()
        .into_iter()
        .map(|n| (n.clone(), m.param(&n).unwrap()))
        .collect();
    all.extend(m.buffer_names().into_iter().map(|n| (n.clone(), m.buffer(&n).unwrap())));
    all
}

fn value(m: &dyn Model, name: &str) -> ArrayD<f32> {
    m.param(name)
        .or_else(|| m.buffer(name))
        .unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn a_pretrained_body_loads_into_a_model_with_a_new_head() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pretrained.safetensors");
    let mut pretrained = Pretrained::new(7);
    let stats = ArrayD::from_shape_fn(cnnc::ndarray::IxDyn(&[4]), |i| 0.5 + i[0] as f32);
    pretrained.set_buffer("batchnorm1.running_var", stats.view()).unwrap();
    pretrained.save_safetensors(&file).unwrap();

    let want = LoadReport {
        loaded: names(&[
            "batchnorm1.bias",
            "batchnorm1.running_mean",
            "batchnorm1.running_var",
            "batchnorm1.weight",
            "conv1.weight",
            "conv2.bias",
            "conv2.weight",
        ]),
        missing: names(&["head.bias", "head.weight"]),
        unexpected: names(&["dense1.bias", "dense1.weight"]),
    };
    let mut generated = FineTune::new(1);
    let mut interp = Interpreter::from_source(MODELS, "FineTune", 1).unwrap();
    let head = value(&generated, "head.weight");
    assert_eq!(generated.load_safetensors_partial(&file).unwrap(), want);
    assert_eq!(interp.load_safetensors_partial(&file).unwrap(), want);
    for model in [&generated as &dyn Model, &interp] {
        for name in &want.loaded {
            assert_eq!(value(model, name), value(&pretrained, name), "{name}");
        }
        assert_eq!(
            value(model, "head.weight"),
            head,
            "the new head keeps its initialization"
        );
    }
    // A strict load still refuses the file, naming the tensors it lacks or has extra.
    let e = FineTune::new(1).load_safetensors(&file).unwrap_err().to_string();
    assert!(e.contains("dense1.weight"), "{e}");
    // The free function: the same report for any model.
    let mut again = FineTune::new(2);
    assert_eq!(load_safetensors_partial(&mut again, &file).unwrap(), want);
    // Loading its own file is a full load.
    let own = dir.path().join("own.safetensors");
    generated.save_safetensors(&own).unwrap();
    let report = FineTune::new(3).load_safetensors_partial(&own).unwrap();
    assert_eq!(
        (report.loaded.len(), report.missing.len(), report.unexpected.len()),
        (9, 0, 0)
    );
}

#[test]
fn a_present_tensor_of_another_shape_is_an_error_naming_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pretrained.safetensors");
    Pretrained::new(7).save_safetensors(&file).unwrap();
    let mut generated = ResizedHead::new(1);
    let mut interp = Interpreter::from_source(MODELS, "ResizedHead", 1).unwrap();
    for (what, model) in [
        ("generated", &mut generated as &mut dyn Model),
        ("interpreter", &mut interp as &mut dyn Model),
    ] {
        let before = values(model);
        let e = load_safetensors_partial(model, &file).unwrap_err().to_string();
        assert!(
            e.contains("dense1.weight") && e.contains("[10, 8]") && e.contains("[3, 8]"),
            "{what}: {e}"
        );
        assert_eq!(values(model), before, "{what}: nothing loaded after an error");
    }
}
