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

/// The layers without names and without dropout (which the inference graph drops);
/// a reference names the position of the layer it reads (in the order of
/// `all_layers`, dropout left out), or `input`.
pub(crate) fn shape_of_layers(layers: &[cnnc::ir::Layer]) -> Vec<cnnc::ir::Layer> {
    let mut positions = std::collections::HashMap::new();
    number_layers(layers, &mut positions);
    without_names(layers, &positions)
}

fn number_layers(layers: &[cnnc::ir::Layer], positions: &mut std::collections::HashMap<String, usize>) {
    use cnnc::ir::Op;
    for l in layers.iter().filter(|l| !matches!(l.op, Op::Dropout(_))) {
        let k = positions.len();
        positions.insert(l.name.clone(), k);
        if let Op::Residual(r) = &l.op {
            number_layers(&r.body, positions);
            number_layers(&r.shortcut, positions);
        }
    }
}

fn without_names(
    layers: &[cnnc::ir::Layer],
    positions: &std::collections::HashMap<String, usize>,
) -> Vec<cnnc::ir::Layer> {
    use cnnc::ir::Op;
    let place = |r: &mut cnnc::ir::Ref| {
        if let Some(k) = positions.get(&r.name) {
            r.name = format!("#{k}");
        }
        // The name as written may differ too (`t1` for an unnamed item).
        r.written.clear();
    };
    layers
        .iter()
        .filter(|l| !matches!(l.op, Op::Dropout(_)))
        .map(|l| {
            let mut l = l.clone();
            l.name.clear();
            match &mut l.op {
                Op::Residual(r) => {
                    r.body = without_names(&r.body, positions);
                    r.shortcut = without_names(&r.shortcut, positions);
                }
                Op::Concat(refs) => refs.iter_mut().for_each(place),
                Op::Add(r) | Op::Mul(r) | Op::From(r) => place(r),
                _ => {}
            }
            l
        })
        .collect()
}

/// `.cnn` -> ONNX -> `.cnn`: the same model up to names (and dropout, which the
/// inference graph leaves out), and the same predictions from the imported weights.
#[test]
fn every_model_round_trips_through_onnx() {
    for (case, path) in sources() {
        let text = std::fs::read_to_string(&path).expect("model file");
        for model in cnnc::compile(&text).expect("valid") {
            let mut interp = Interpreter::new(model.clone(), 7);
            randomize_buffers(&mut interp);
            let bytes = cnnc::onnx::export(&model, &interp).expect("export");
            let imported =
                cnnc::onnx::import(&bytes, &case, None, "Imported", false).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(imported.name, model.name, "{case}");
            let back = cnnc::compile(&imported.source)
                .unwrap_or_else(|e| panic!("{case}:\n{}\n{e:?}", imported.source))
                .remove(0);
            assert_eq!((back.input, &back.normalize), (model.input, &model.normalize), "{case}");
            assert_eq!(
                shape_of_layers(&back.layers),
                shape_of_layers(&model.layers),
                "{case}: imported as\n{}",
                imported.source
            );
            let mut again = imported.interpreter().unwrap_or_else(|e| panic!("{case}: {e}"));
            let mut shape = vec![2];
            shape.extend(model.input.dims());
            let x = input(&shape);
            let (want, got) = (interp.predict(x.view()).unwrap(), again.predict(x.view()).unwrap());
            crate::common::close(&case, &got, &want, 1e-6, 1e-7);
        }
    }
}

#[test]
fn import_refuses_what_is_not_onnx() {
    let err = cnnc::onnx::import(b"model LeNet { }", "lenet.cnn", None, "Imported", false)
        .err()
        .expect("not ONNX");
    assert!(err.contains("lenet.cnn: not an ONNX model"), "{err}");
}

/// An operator outside the subset is named with its node, its op type and opset,
/// and the list of what is read.
#[test]
fn import_names_an_unsupported_operator() {
    let model = &cnnc::compile("model A { input 4 dense 3 relu }").expect("valid")[0];
    let interp = Interpreter::new(model.clone(), 0);
    let bytes = cnnc::onnx::export(model, &interp).expect("export");
    use cnnc::onnx::proto::ModelProto;
    use prost::Message;
    let mut proto = ModelProto::decode(bytes.as_slice()).expect("own export");
    let graph = proto.graph.as_mut().expect("graph");
    let relu = graph
        .node
        .iter_mut()
        .find(|n| n.op_type.as_deref() == Some("Relu"))
        .expect("relu");
    relu.op_type = Some("Celu".into());
    let err = cnnc::onnx::import(&proto.encode_to_vec(), "a.onnx", None, "A", false)
        .err()
        .expect("Celu is not read");
    assert!(err.contains("node `relu1` (Celu, opset 17)"), "{err}");
    assert!(err.contains("Conv, BatchNormalization"), "{err}");
}

/// A file of tests/onnx/pytorch (written by make_pytorch_cases.py): raw f32.
fn read_f32(path: &Path, shape: &[usize]) -> ArrayD<f32> {
    let bytes = std::fs::read(path).expect("case file");
    let values = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    ArrayD::from_shape_vec(cnnc::ndarray::IxDyn(shape), values).expect("shape of the case")
}

/// An imported model in the interpreter, with the imported weights.
fn imported_interpreter(imported: &cnnc::onnx::Imported) -> Interpreter {
    imported
        .interpreter()
        .unwrap_or_else(|e| panic!("{e}\n{}", imported.source))
}

/// PyTorch modules exported with `torch.onnx.export` (a ResNet-18-shaped network
/// with its batchnorms folded into the convolutions and one with them kept; a small
/// net with `view(N, -1)`, SiLU, GELU, dilation, groups, padded average pooling, a
/// Linear without bias and LeakyReLU; a MobileNetV2 block; and language version 3's
/// graphs: a U-Net with ConvTranspose2d, bilinear nn.Upsample, torch.cat and a
/// per-pixel softmax, an Inception-like block of three branches with a nearest
/// Upsample, a DenseNet block, squeeze-and-excitation with Sigmoid and Hardsigmoid
/// gates, one inside a residual block) import to models whose output on the stored
/// batch equals ONNX Runtime's within 1e-4 of its largest value, written as a
/// person would (the lines checked below).
#[test]
fn pytorch_exports_import_and_compute_what_onnx_runtime_computes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx/pytorch");
    let v3 = [
        (
            "unet",
            &[
                "convtranspose 12 kernel 3 stride 2 pad 1 output_pad 1",
                "upsample 2 bilinear",
                "concat enc2",
                "softmax",
            ][..],
        ),
        ("inception", &["from stem", "upsample 2\n", "concat b2_2 b3_2"][..]),
        ("densenet", &["concat layers_0_2 layers_1_2 layers_2_2"][..]),
        (
            "squeeze_excite",
            &["sigmoid\n    mul t1", "hardsigmoid\n        mul body", "} relu"][..],
        ),
    ];
    let cases = ["resnet18", "resnet18_bn", "smallnet", "mobilenetv2_block"]
        .into_iter()
        .map(|c| (c, &[][..]))
        .chain(v3);
    for (case, lines) in cases {
        let bytes = std::fs::read(dir.join(format!("{case}.onnx"))).expect("case");
        let imported = cnnc::onnx::import(&bytes, case, None, "Imported", false).unwrap_or_else(|e| panic!("{e}"));
        let shapes = std::fs::read_to_string(dir.join(format!("{case}.json"))).expect("shapes");
        let shapes: serde_json::Value = serde_json::from_str(&shapes).expect("json");
        let dims = |k: &str| -> Vec<usize> {
            shapes[k]
                .as_array()
                .expect("list")
                .iter()
                .map(|v| v.as_u64().expect("dim") as usize)
                .collect()
        };
        let x = read_f32(&dir.join(format!("{case}.x.bin")), &dims("input"));
        let want = read_f32(&dir.join(format!("{case}.y.bin")), &dims("output"));
        let got = imported_interpreter(&imported).predict(x.view()).expect("inference");
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let worst = got.iter().zip(&want).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            worst <= 1e-4 * scale,
            "{case}: max |diff| {worst} against ONNX Runtime\n{}",
            imported.source
        );
        for line in lines {
            assert!(
                imported.source.contains(line),
                "{case}: no `{line}` in\n{}",
                imported.source
            );
        }
    }
}

/// `--train` adds a train block (and a softmax after the logits) so that an
/// imported ResNet fine-tunes: it checks and takes a training step.
#[test]
fn an_imported_resnet_fine_tunes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx/pytorch/resnet18_bn.onnx");
    let bytes = std::fs::read(path).expect("case");
    let imported = cnnc::onnx::import(&bytes, "resnet18_bn", Some("ResNet18"), "Imported", true).expect("import");
    assert!(imported.source.contains("dense 10 softmax"), "{}", imported.source);
    assert!(imported.source.contains("batchnorm relu"), "{}", imported.source);
    let mut model = imported_interpreter(&imported);
    let x = input(&[4, 3, 32, 32]);
    let labels = cnnc::ndarray::Array1::from_shape_fn(4, |i| i * 2);
    let loss = cnnc::Train::train_step(&mut model, x.view(), cnnc::Target::Labels(labels.view())).expect("a step");
    assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
}

/// MobileNetV2's block: ReLU6 (exported as Clip(0, 6)) is `relu6`; a Clip to other
/// bounds cannot be written; a GlobalMaxPool put in a Clip's place reads as
/// `maxpool global`, and the residual block's `Add` then names both shapes.
#[test]
fn import_reads_relu6_and_says_what_it_cannot_write() {
    use cnnc::onnx::proto::ModelProto;
    use prost::Message;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx/pytorch/mobilenetv2_block.onnx");
    let bytes = std::fs::read(path).expect("case");
    let imported = cnnc::onnx::import(&bytes, "mnv2", None, "Imported", false).expect("relu6 imports");
    assert!(imported.source.contains("relu6"), "{}", imported.source);

    let model = ModelProto::decode(bytes.as_slice()).expect("onnx");
    let mut changed = model.clone();
    let graph = changed.graph.as_mut().expect("graph");
    let clip = graph
        .node
        .iter()
        .position(|n| n.op_type.as_deref() == Some("Clip"))
        .expect("a Clip");
    // A Clip whose upper bound is an unknown tensor.
    graph.node[clip].input[2] = "not_a_constant".into();
    let err = cnnc::onnx::import(&changed.encode_to_vec(), "mnv2", None, "Imported", false)
        .err()
        .expect("bounds");
    assert!(err.contains("Clip other than to [0, 6]"), "{err}");

    let mut changed = model;
    let graph = changed.graph.as_mut().expect("graph");
    graph.node[clip].op_type = Some("GlobalMaxPool".into());
    let err = cnnc::onnx::import(&changed.encode_to_vec(), "mnv2", None, "Imported", false)
        .err()
        .expect("shapes");
    assert!(
        err.contains("(Add, opset 17): adds a 8x1x1 body to a 8x8x8 shortcut"),
        "{err}"
    );
}

/// Damaged ONNX files (bytes flipped, cut short) are errors or models, never a
/// panic: the importer reads untrusted files.
#[test]
fn damaged_onnx_files_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx/pytorch");
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut errors, mut models) = (0, 0);
    for case in ["smallnet", "resnet18_bn", "unet", "inception"] {
        let good = std::fs::read(dir.join(format!("{case}.onnx"))).expect("case");
        for round in 0..150 {
            let mut bytes = good.clone();
            if round % 10 == 0 {
                bytes.truncate(next() as usize % bytes.len());
            } else {
                for _ in 0..1 + round % 4 {
                    let at = next() as usize % bytes.len();
                    bytes[at] ^= 1 << (next() % 8);
                }
            }
            match cnnc::onnx::import(&bytes, case, None, "Imported", false) {
                Ok(_) => models += 1,
                Err(e) => {
                    assert!(e.starts_with(case), "the error names the file: {e}");
                    errors += 1;
                }
            }
        }
    }
    assert!(errors > 0 && models > 0, "{errors} errors, {models} models");
}
