//! ONNX export against ONNX Runtime: every model of examples/models and of the
//! PyTorch fixtures (tests/fixtures/*/model.cnn) is exported with seeded weights and
//! random batchnorm statistics, and ONNX Runtime's output on a random batch must equal
//! the interpreter's inference output within 1e-4 of its largest value
//! (tests/onnx/ort_check.py). ONNX Runtime runs in a venv that tests/onnx/ort.sh makes
//! on first use; where it cannot be made (no registry), the test prints why and
//! passes without comparing.

use crate::common::input;
use cnnc::interp::Interpreter;
use cnnc::ndarray::ArrayD;
use cnnc::Model;
use std::path::{Path, PathBuf};

/// Every `.cnn` file the export must handle: (case name, path).
fn sources() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root.join("examples/models")).expect("examples/models") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "cnn") {
            let stem = path.file_stem().expect("stem").to_string_lossy().into_owned();
            out.push((format!("example_{stem}"), path));
        }
    }
    for entry in std::fs::read_dir(root.join("tests/fixtures")).expect("tests/fixtures") {
        let dir = entry.expect("entry").path();
        if dir.join("model.cnn").exists() {
            let stem = dir.file_name().expect("name").to_string_lossy().into_owned();
            out.push((format!("fixture_{stem}"), dir.join("model.cnn")));
        }
    }
    out.sort();
    out
}

/// Running statistics away from their initial 0 and 1, so that inference-mode
/// batchnorm is tested for real.
fn randomize_buffers(model: &mut Interpreter) {
    for (k, name) in model.buffer_names().into_iter().enumerate() {
        let old = model.buffer(&name).expect("listed buffer");
        let var = name.ends_with("running_var");
        let new = ArrayD::from_shape_fn(old.raw_dim(), |ix| {
            let t = ((ix[0] * 7 + k * 13) % 17) as f32 / 17.0;
            if var {
                0.5 + t
            } else {
                t - 0.5
            }
        });
        model.set_buffer(&name, new.view()).expect("same shape");
    }
}

fn write_f32(path: &Path, a: &ArrayD<f32>) {
    let bytes: Vec<u8> = a.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("write case");
}

/// Writes every model's case into `dir`; returns how many.
fn write_cases(dir: &Path) -> usize {
    let mut count = 0;
    for (case, path) in sources() {
        let text = std::fs::read_to_string(&path).expect("model file");
        for model in cnnc::compile(&text).unwrap_or_else(|e| panic!("{}: {e:?}", path.display())) {
            let mut interp = Interpreter::new(model.clone(), 7);
            randomize_buffers(&mut interp);
            let mut shape = vec![3];
            shape.extend(model.input.dims());
            let x = input(&shape);
            let y = interp.predict(x.view()).expect("inference");
            let name = format!("{case}_{}", model.name);
            let bytes = cnnc::onnx::export(&model, &interp).expect("export");
            std::fs::write(dir.join(format!("{name}.onnx")), bytes).expect("write onnx");
            write_f32(&dir.join(format!("{name}.x.bin")), &x);
            write_f32(&dir.join(format!("{name}.y.bin")), &y);
            let shapes = format!("{{\"input\": {:?}, \"output\": {:?}}}", x.shape(), y.shape());
            std::fs::write(dir.join(format!("{name}.json")), shapes).expect("write shapes");
            count += 1;
        }
    }
    count
}

#[test]
fn onnx_runtime_computes_what_cnnc_computes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = write_cases(dir.path());
    assert!(cases >= 30, "only {cases} models found");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx/ort.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(dir.path())
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(77) {
        println!("skipped: ONNX Runtime is not available here ({})", stderr.trim());
        return;
    }
    assert!(out.status.success(), "ONNX Runtime disagrees:\n{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("{cases} passed, 0 failed")), "{stdout}");
}

#[test]
fn export_names_a_missing_tensor() {
    let model = &cnnc::compile("model A { input 4 dense 3 softmax }").expect("valid")[0];
    let other = Interpreter::from_source("model B { input 4 dense 2 softmax }", "B", 0).expect("valid");
    let err = cnnc::onnx::export(model, &other)
        .expect_err("other model's weights")
        .to_string();
    assert!(err.contains("dense1.weight"), "{err}");
}
