//! Weight files (src/rt/weights.rs): PyTorch names and layouts, bit-exact round
//! trips, buffers and `num_batches_tracked` (v2), and an error that names the
//! tensor for every kind of bad file. The models are the reference interpreter (the
//! LeNet fixture, parameters only) and a hand-built table model with a batchnorm
//! layer (tests/io_model), so these tests do not depend on the code generator.

use crate::io_model;

use cnnc::interp::Interpreter;
use cnnc::ndarray::ArrayD;
use cnnc::rt::weights::{load_bytes, load_safetensors, save_safetensors};
use cnnc::Model;
use io_model::TableModel;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::PathBuf;

/// The fixture's LeNet in the interpreter.
fn lenet(seed: u64) -> Interpreter {
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/lenet_sgd_momentum/model.cnn"
    ))
    .unwrap();
    Interpreter::from_source(&source, "LenetSgdMomentum", seed).unwrap()
}

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
    let mut model = lenet(0);
    load_safetensors(&mut model, &path).unwrap();
    for (name, _, shape, bytes) in &params {
        let got = model.param(name).unwrap();
        assert_eq!(got.shape(), shape.as_slice(), "{name}");
        assert_eq!(&f32_bytes(&got), bytes, "{name} differs from the file");
    }
    let saved = temp("saved");
    save_safetensors(&model, &saved).unwrap();
    let mut again = lenet(99);
    load_safetensors(&mut again, &saved).unwrap();
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
    let mut model = lenet(0);
    let before = model.param("conv1.weight").unwrap();
    let err = load_safetensors(&mut model, &path).unwrap_err().to_string();
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
    let mut model = lenet(0);
    let err = load_safetensors(&mut model, &path).unwrap_err().to_string();
    assert!(err.contains("not a valid safetensors file"), "{err}");
    std::fs::write(&path, b"not a weight file at all").unwrap();
    let err = load_safetensors(&mut model, &path).unwrap_err().to_string();
    assert!(err.contains("not a valid safetensors file"), "{err}");
    let _ = std::fs::remove_file(&path);
    let err = load_safetensors(&mut model, &path).unwrap_err().to_string();
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
    let mut model = lenet(0);
    let before = model.param("dense3.bias").unwrap();
    let mut bad = before.clone();
    bad[[3]] = f32::NEG_INFINITY;
    let err = model.set_param("dense3.bias", bad.view()).unwrap_err().to_string();
    assert!(
        err.contains("dense3.bias") && err.contains("-inf") && err.contains("[3]"),
        "{err}"
    );
    assert_eq!(model.param("dense3.bias").unwrap(), before);
}

#[test]
fn every_kind_of_unreadable_file_names_the_path_and_the_problem() {
    let mut model = lenet(0);
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
        let err = load_safetensors(&mut model, &path).unwrap_err().to_string();
        assert!(err.contains(&shown) && err.contains(expected), "{what}: {err}");
    }
    let _ = std::fs::remove_file(&path);
    let err = load_safetensors(&mut model, &path).unwrap_err().to_string();
    assert!(err.contains(&shown) && err.contains("No such file"), "{err}");
    let dir = std::env::temp_dir();
    let err = load_safetensors(&mut model, &dir).unwrap_err().to_string();
    assert!(err.contains("directory"), "{err}");
    // Nothing above changed the model.
    assert_eq!(model.param("conv1.weight"), lenet(0).param("conv1.weight"));
}

#[test]
fn saving_where_no_file_can_be_written_names_the_path() {
    let model = lenet(0);
    let nowhere = std::env::temp_dir().join("cnnc-no-such-dir").join("w.safetensors");
    let err = save_safetensors(&model, &nowhere).unwrap_err().to_string();
    assert!(
        err.contains(&nowhere.display().to_string()) && err.contains("No such file"),
        "{err}"
    );
    let dir = std::env::temp_dir();
    let err = save_safetensors(&model, &dir).unwrap_err().to_string();
    assert!(
        err.contains(&dir.display().to_string()) && err.contains("directory"),
        "{err}"
    );
}

// ---- v2: buffers and num_batches_tracked, with the hand-built model ----

/// A tensor as it is in a file: dtype, shape, bytes.
type Stored = (Dtype, Vec<usize>, Vec<u8>);

/// Every tensor of a safetensors file, by name.
fn tensors_of(bytes: &[u8]) -> HashMap<String, Stored> {
    SafeTensors::deserialize(bytes)
        .unwrap()
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, (t.dtype(), t.shape().to_vec(), t.data().to_vec())))
        .collect()
}

/// A file of these tensors, with `__metadata__` as PyTorch's `save_file` may give it.
fn file_of(tensors: &HashMap<String, Stored>) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(metadata)).unwrap()
}

fn i64_scalar(v: i64) -> Stored {
    (Dtype::I64, vec![], v.to_le_bytes().to_vec())
}

#[test]
fn a_weight_file_holds_parameters_buffers_and_num_batches_tracked() {
    let path = temp("v2-save");
    let mut model = TableModel::small(1);
    model.tracked = 1234;
    save_safetensors(&model, &path).unwrap();
    let file = tensors_of(&std::fs::read(&path).unwrap());
    let mut names: Vec<&str> = file.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "batchnorm1.bias",
            "batchnorm1.num_batches_tracked",
            "batchnorm1.running_mean",
            "batchnorm1.running_var",
            "batchnorm1.weight",
            "conv1.weight",
            "dense1.bias",
            "dense1.weight"
        ]
    );
    assert_eq!(file["batchnorm1.num_batches_tracked"], i64_scalar(1234));
    for (name, a) in model.params.iter().chain(&model.buffers) {
        assert_eq!(file[name], (Dtype::F32, a.shape().to_vec(), f32_bytes(a)), "{name}");
    }
    // And it loads back into another model, bit for bit, count included.
    let mut other = TableModel::small(2);
    assert_ne!(other, model);
    load_safetensors(&mut other, &path).unwrap();
    assert_eq!(other, model);
    let _ = std::fs::remove_file(path);
}

/// What PyTorch's `safetensors.torch.save_file(module.state_dict())` writes for the
/// spec's residual-projection example: nested names, the running statistics, and an
/// i64 scalar `num_batches_tracked` for each of its four BatchNorm2d.
fn pytorch_state_dict(steps: i64) -> HashMap<String, Stored> {
    let source = TableModel::residual(42);
    let mut out: HashMap<String, Stored> = source
        .params
        .iter()
        .chain(&source.buffers)
        .map(|(n, a)| (n.clone(), (Dtype::F32, a.shape().to_vec(), f32_bytes(a))))
        .collect();
    for bn in [
        "batchnorm1",
        "residual1.batchnorm1",
        "residual1.batchnorm2",
        "residual1.shortcut.batchnorm1",
    ] {
        out.insert(format!("{bn}.num_batches_tracked"), i64_scalar(steps));
    }
    out
}

#[test]
fn a_pytorch_state_dict_round_trips_unchanged() {
    let path = temp("pytorch");
    let original = pytorch_state_dict(37);
    std::fs::write(&path, file_of(&original)).unwrap();
    let mut model = TableModel::residual(0);
    load_safetensors(&mut model, &path).unwrap();
    assert_eq!(model.tracked, 37);
    assert_eq!(
        model.buffer("residual1.shortcut.batchnorm1.running_var").unwrap(),
        TableModel::residual(42)
            .buffer("residual1.shortcut.batchnorm1.running_var")
            .unwrap()
    );
    // Saved again: the same tensors, names, dtypes, shapes and bytes, so
    // `load_state_dict` takes it as it took the original.
    let saved = temp("pytorch-again");
    save_safetensors(&model, &saved).unwrap();
    assert_eq!(tensors_of(&std::fs::read(&saved).unwrap()), original);
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(saved);
}

#[test]
fn num_batches_tracked_may_be_absent_and_counts_may_differ() {
    // Absent: the count is 0, as PyTorch takes an old file.
    let mut t = pytorch_state_dict(5);
    t.retain(|n, _| !n.ends_with("num_batches_tracked"));
    let mut model = TableModel::residual(0);
    model.tracked = 99;
    load_bytes(&mut model, &file_of(&t), "absent").unwrap();
    assert_eq!(model.tracked, 0);
    // Some layers absent, the others differing (frozen layers): the largest count.
    let mut t = pytorch_state_dict(5);
    t.insert("residual1.batchnorm2.num_batches_tracked".into(), i64_scalar(8));
    t.remove("batchnorm1.num_batches_tracked");
    load_bytes(&mut model, &file_of(&t), "partial").unwrap();
    assert_eq!(model.tracked, 8);
    // A model without batchnorm keeps its own count: the file cannot hold one.
    let mut plain = TableModel::plain(3);
    let bytes = cnnc::rt::weights::to_bytes(&TableModel::plain(4)).unwrap();
    assert_eq!(tensors_of(&bytes).len(), 2, "no num_batches_tracked without batchnorm");
    load_bytes(&mut plain, &bytes, "plain").unwrap();
    assert_eq!(plain.tracked, 3);
    assert_eq!(plain.params, TableModel::plain(4).params);
}

/// Loading a changed PyTorch state dict must fail with `expected` in the message,
/// naming the source, and leave the model as it was.
fn refused(change: impl FnOnce(&mut HashMap<String, Stored>), expected: &str) {
    let mut t = pytorch_state_dict(5);
    change(&mut t);
    let mut model = TableModel::residual(0);
    let before = model.clone();
    let err = load_bytes(&mut model, &file_of(&t), "state.safetensors")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("state.safetensors: ") && err.contains(expected),
        "`{expected}` is missing from: {err}"
    );
    assert_eq!(model, before, "a refused file changed the model ({expected})");
}

#[test]
fn every_bad_buffer_and_count_is_named() {
    refused(
        |t| {
            t.remove("residual1.batchnorm2.running_var");
        },
        "tensor `residual1.batchnorm2.running_var` is missing",
    );
    refused(
        |t| {
            t.get_mut("batchnorm1.running_mean").unwrap().1 = vec![2, 2];
        },
        "tensor `batchnorm1.running_mean` has shape [2, 2], the model's is [4]",
    );
    refused(
        |t| {
            let (d, _, b) = t.get_mut("residual1.batchnorm1.running_mean").unwrap();
            *d = Dtype::I32;
            b.truncate(8 * 4);
        },
        "tensor `residual1.batchnorm1.running_mean` is I32, expected F32",
    );
    refused(
        |t| {
            let b = &mut t.get_mut("batchnorm1.running_var").unwrap().2;
            b[8..12].copy_from_slice(&f32::INFINITY.to_le_bytes());
        },
        "tensor `batchnorm1.running_var` holds a non-finite value (inf) at index [2]",
    );
    refused(
        |t| {
            let b = &mut t.get_mut("residual1.shortcut.batchnorm1.running_var").unwrap().2;
            b[4..8].copy_from_slice(&(-0.5f32).to_le_bytes());
        },
        "tensor `residual1.shortcut.batchnorm1.running_var` holds a negative variance (-0.5) at index [1]",
    );
    refused(
        |t| {
            t.insert(
                "residual1.batchnorm1.num_batches_tracked".into(),
                (Dtype::I32, vec![], 5i32.to_le_bytes().to_vec()),
            );
        },
        "tensor `residual1.batchnorm1.num_batches_tracked` is I32, expected I64",
    );
    refused(
        |t| {
            t.insert(
                "batchnorm1.num_batches_tracked".into(),
                (Dtype::I64, vec![1], 5i64.to_le_bytes().to_vec()),
            );
        },
        "tensor `batchnorm1.num_batches_tracked` has shape [1], expected a scalar (shape [])",
    );
    refused(
        |t| {
            t.insert("batchnorm1.num_batches_tracked".into(), i64_scalar(-3));
        },
        "tensor `batchnorm1.num_batches_tracked` is -3: a count of training steps cannot be negative",
    );
    // A count for a layer that is no batchnorm, and a buffer the model lacks.
    refused(
        |t| {
            t.insert("dense1.num_batches_tracked".into(), i64_scalar(1));
            t.insert("batchnorm9.running_mean".into(), (Dtype::F32, vec![1], vec![0; 4]));
        },
        "holds tensors the model does not have: batchnorm9.running_mean, dense1.num_batches_tracked",
    );
    // The last tensor checked is bad: nothing before it was applied either.
    refused(
        |t| {
            t.insert(
                "residual1.shortcut.batchnorm1.num_batches_tracked".into(),
                i64_scalar(-1),
            );
        },
        "cannot be negative",
    );
}

#[test]
fn a_model_that_refuses_a_value_gets_its_old_ones_back() {
    /// A table model whose `set_buffer` refuses one name after the parameters are set.
    struct Picky(TableModel);
    impl Model for Picky {
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
        fn set_param(&mut self, name: &str, value: cnnc::ndarray::ArrayViewD<'_, f32>) -> Result<(), cnnc::Error> {
            self.0.set_param(name, value)
        }
        fn predict(&mut self, x: cnnc::ndarray::ArrayViewD<'_, f32>) -> Result<ArrayD<f32>, cnnc::Error> {
            self.0.predict(x)
        }
        fn buffer_names(&self) -> Vec<String> {
            self.0.buffer_names()
        }
        fn buffer(&self, name: &str) -> Option<ArrayD<f32>> {
            self.0.buffer(name)
        }
        fn set_buffer(&mut self, name: &str, value: cnnc::ndarray::ArrayViewD<'_, f32>) -> Result<(), cnnc::Error> {
            if name == "batchnorm1.running_var" && value.iter().any(|&v| v == 2.0) {
                return Err(cnnc::Error::Config(format!(
                    "{name}: this model refuses a variance of 2"
                )));
            }
            self.0.set_buffer(name, value)
        }
    }
    let mut model = Picky(TableModel::small(1));
    let before = model.0.clone();
    let mut new = TableModel::small(2);
    new.buffers[1].1.fill(2.0);
    let bytes = cnnc::rt::weights::to_bytes(&new).unwrap();
    let err = load_bytes(&mut model, &bytes, "w").unwrap_err().to_string();
    assert!(err.contains("refuses a variance of 2"), "{err}");
    assert_eq!(model.0, before);
}
