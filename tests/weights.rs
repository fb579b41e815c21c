//! Weight files: PyTorch names and layouts, bit-exact round trips, and an error
//! that names the tensor for every kind of bad file.

use cnnc::ndarray::ArrayD;
use cnnc::Model;
use safetensors::{tensor::TensorView, Dtype};
use std::path::PathBuf;

cnn_macros::cnn!(file = "tests/fixtures/lenet_sgd_momentum/model.cnn");

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("cnnc-weights-{}-{name}.safetensors", std::process::id()))
}

/// Writes `(name, dtype, shape, bytes)` tensors as a safetensors file.
fn write(path: &PathBuf, tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

fn f32_bytes(a: &ArrayD<f32>) -> Vec<u8> {
    a.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The fixture's initial parameters, under the model's own names (as PyTorch's
/// `state_dict()` would save them).
fn fixture_params() -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/lenet_sgd_momentum/case.safetensors"
    ))
    .unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = file
        .tensors()
        .into_iter()
        .filter_map(|(name, t)| {
            let name = name.strip_prefix("params/")?.to_string();
            Some((name, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn loads_pytorch_parameters_and_round_trips_bit_for_bit() {
    let path = temp("fixture");
    let params = fixture_params();
    assert_eq!(params.len(), 10);
    write(&path, &params);
    let mut model = LenetSgdMomentum::new(0);
    model.load_safetensors(&path).unwrap();
    for (name, _, shape, bytes) in &params {
        let got = model.param(name).unwrap();
        assert_eq!(got.shape(), shape.as_slice(), "{name}");
        assert_eq!(&f32_bytes(&got), bytes, "{name} differs from the file");
    }
    let saved = temp("saved");
    model.save_safetensors(&saved).unwrap();
    let mut again = LenetSgdMomentum::new(99);
    again.load_safetensors(&saved).unwrap();
    for name in model.param_names() {
        let (a, b) = (model.param(&name).unwrap(), again.param(&name).unwrap());
        assert_eq!(f32_bytes(&a), f32_bytes(&b), "{name} changed in the round trip");
    }
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(saved);
}

fn load_error(name: &str, tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) -> String {
    let path = temp(name);
    write(&path, tensors);
    let mut model = LenetSgdMomentum::new(0);
    let before = model.param("conv1.weight").unwrap();
    let err = model.load_safetensors(&path).unwrap_err().to_string();
    // A bad file leaves the model as it was.
    assert_eq!(model.param("conv1.weight").unwrap(), before);
    let _ = std::fs::remove_file(path);
    err
}

#[test]
fn a_missing_tensor_is_named() {
    let mut t = fixture_params();
    t.retain(|p| p.0 != "dense2.bias");
    let err = load_error("missing", &t);
    assert!(err.contains("`dense2.bias` is missing"), "{err}");
}

#[test]
fn an_extra_tensor_is_named() {
    let mut t = fixture_params();
    t.push(("dense9.weight".into(), Dtype::F32, vec![1], vec![0; 4]));
    let err = load_error("extra", &t);
    assert!(err.contains("dense9.weight"), "{err}");
}

#[test]
fn a_misshaped_tensor_is_named() {
    let mut t = fixture_params();
    let i = t.iter().position(|p| p.0 == "conv2.weight").unwrap();
    t[i].2 = vec![16, 6, 25];
    let err = load_error("shape", &t);
    assert!(err.contains("`conv2.weight` has shape [16, 6, 25]"), "{err}");
}

#[test]
fn a_wrongly_typed_tensor_is_named() {
    let mut t = fixture_params();
    let i = t.iter().position(|p| p.0 == "dense1.bias").unwrap();
    let doubled: Vec<u8> = t[i]
        .3
        .chunks(4)
        .flat_map(|c| (f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).to_le_bytes())
        .collect();
    t[i] = ("dense1.bias".into(), Dtype::F64, t[i].2.clone(), doubled);
    let err = load_error("dtype", &t);
    assert!(err.contains("`dense1.bias` is F64, expected F32"), "{err}");
}

#[test]
fn truncated_corrupt_and_missing_files_are_errors() {
    let path = temp("truncated");
    write(&path, &fixture_params());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let mut model = LenetSgdMomentum::new(0);
    let err = model.load_safetensors(&path).unwrap_err().to_string();
    assert!(err.contains("not a valid safetensors file"), "{err}");
    std::fs::write(&path, b"not a weight file at all").unwrap();
    let err = model.load_safetensors(&path).unwrap_err().to_string();
    assert!(err.contains("not a valid safetensors file"), "{err}");
    let _ = std::fs::remove_file(&path);
    let err = model.load_safetensors(&path).unwrap_err().to_string();
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn a_non_finite_weight_is_named_with_its_index() {
    let mut t = fixture_params();
    let i = t.iter().position(|p| p.0 == "dense2.weight").unwrap();
    t[i].3[4 * 7..4 * 8].copy_from_slice(&f32::NAN.to_le_bytes());
    let err = load_error("nan", &t);
    assert!(err.contains("`dense2.weight` holds a non-finite value (NaN)"), "{err}");
    // dense2.weight is [84, 120]: flat index 7 is [0, 7].
    assert!(err.contains("[0, 7]"), "{err}");
}

#[test]
fn set_param_refuses_non_finite_values() {
    let mut model = LenetSgdMomentum::new(0);
    let before = model.param("dense3.bias").unwrap();
    let mut bad = before.clone();
    bad[[3]] = f32::NEG_INFINITY;
    let err = model.set_param("dense3.bias", bad.view()).unwrap_err().to_string();
    assert!(
        err.contains("parameter `dense3.bias`") && err.contains("-inf") && err.contains("[3]"),
        "{err}"
    );
    assert_eq!(model.param("dense3.bias").unwrap(), before);
}

#[test]
fn every_kind_of_unreadable_file_names_the_path_and_the_problem() {
    let mut model = LenetSgdMomentum::new(0);
    let path = temp("kinds");
    let shown = path.display().to_string();
    let mut good = Vec::new();
    write(&path, &fixture_params());
    std::fs::File::open(&path)
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut good))
        .unwrap();
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "not a valid safetensors file"),
        ("header length only", good[..8].to_vec(), "not a valid safetensors file"),
        (
            "cut inside the header",
            good[..8 + header_len / 2].to_vec(),
            "not a valid safetensors file",
        ),
        (
            "cut inside the data",
            good[..good.len() - 1].to_vec(),
            "not a valid safetensors file",
        ),
        (
            "one byte too many",
            [&good[..], &[0]].concat(),
            "not a valid safetensors file",
        ),
        (
            "absurd header length",
            u64::MAX.to_le_bytes().to_vec(),
            "not a valid safetensors file",
        ),
        (
            "header not JSON",
            [&good[..8], &vec![b'#'; header_len][..]].concat(),
            "not a valid safetensors file",
        ),
    ];
    for (what, bytes, expected) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let err = model.load_safetensors(&path).unwrap_err().to_string();
        assert!(err.contains(&shown) && err.contains(expected), "{what}: {err}");
    }
    let _ = std::fs::remove_file(&path);
    let err = model.load_safetensors(&path).unwrap_err().to_string();
    assert!(err.contains(&shown) && err.contains("No such file"), "{err}");
    let dir = std::env::temp_dir();
    let err = model.load_safetensors(&dir).unwrap_err().to_string();
    assert!(err.contains("directory"), "{err}");
    // Nothing above changed the model.
    assert_eq!(
        model.param("conv1.weight"),
        LenetSgdMomentum::new(0).param("conv1.weight")
    );
}

#[test]
fn the_interpreter_loads_and_refuses_the_same_files() {
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/lenet_sgd_momentum/model.cnn"
    ))
    .unwrap();
    let mut interp = cnnc::interp::Interpreter::from_source(&source, "LenetSgdMomentum", 0).unwrap();
    let path = temp("interp");
    let params = fixture_params();
    write(&path, &params);
    cnnc::rt::weights::load_safetensors(&mut interp, &path).unwrap();
    for (name, _, _, bytes) in &params {
        assert_eq!(&f32_bytes(&interp.param(name).unwrap()), bytes, "{name}");
    }
    let mut t = params.clone();
    t.retain(|p| p.0 != "conv1.bias");
    write(&path, &t);
    let err = cnnc::rt::weights::load_safetensors(&mut interp, &path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`conv1.bias` is missing"), "{err}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn saving_where_no_file_can_be_written_names_the_path() {
    let model = LenetSgdMomentum::new(0);
    let nowhere = std::env::temp_dir().join("cnnc-no-such-dir").join("w.safetensors");
    let err = model.save_safetensors(&nowhere).unwrap_err().to_string();
    assert!(
        err.contains(&nowhere.display().to_string()) && err.contains("No such file"),
        "{err}"
    );
    let dir = std::env::temp_dir();
    let err = model.save_safetensors(&dir).unwrap_err().to_string();
    assert!(
        err.contains(&dir.display().to_string()) && err.contains("directory"),
        "{err}"
    );
}
