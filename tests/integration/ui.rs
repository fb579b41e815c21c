//! One bad model per diagnostic in `tests/ui/*.cnn`; each file's rendered errors and
//! warnings (in source order) are pinned in `tests/ui/snapshots/`. Review a changed snapshot as a user would: the
//! caret on the right token, the arithmetic in the message, the fix in the hint.

use std::path::Path;

fn ui_files() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/ui exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cnn"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_model_renders_its_diagnostics() {
    let files = ui_files();
    assert!(files.len() >= 100, "only {} ui cases", files.len());
    for path in files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name")
            .to_string();
        let source = std::fs::read_to_string(&path).expect("readable ui case");
        let file_name = format!("tests/ui/{name}.cnn");
        let (result, warnings) = cnnc::compile_with_warnings(&source);
        let mut diags = result.err().unwrap_or_default();
        diags.0.extend(warnings);
        diags.0.sort_by_key(|d| d.span.start);
        assert!(
            !diags.is_empty(),
            "{file_name} is valid without a warning, but ui cases must have an error or a warning"
        );
        let rendered = diags.render(&file_name, &source);
        // Every diagnostic is located: it names the file, line and column.
        assert_eq!(
            rendered.matches(&format!("--> {file_name}:")).count(),
            diags.len(),
            "{rendered}"
        );
        // Every diagnostic carries its error code.
        assert!(diags.iter().all(|d| d.code.is_some()), "{rendered}");
        insta::with_settings!({
            snapshot_path => "../ui/snapshots",
            prepend_module_to_snapshot => false,
            input_file => &path,
        }, {
            insta::assert_snapshot!(name, rendered);
        });
    }
}

/// Every fixture model (tests/fixtures/*/model.cnn), the valid v2 models of
/// tests/ui/valid/ (the v2 reference fixtures' models) and the ResNet-8 of the
/// language reference compile, with the tensor names the weight files use.
#[test]
fn v2_models_compile_with_their_tensor_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("tests/fixtures"))
        .expect("tests/fixtures exists")
        .map(|e| e.expect("readable entry").path().join("model.cnn"))
        .filter(|p| p.is_file())
        .collect();
    paths.extend(
        std::fs::read_dir(root.join("tests/ui/valid"))
            .expect("tests/ui/valid exists")
            .map(|e| e.expect("readable entry").path()),
    );
    assert!(paths.len() >= 30, "only {} models", paths.len());
    for path in paths {
        let source = std::fs::read_to_string(&path).expect("readable model");
        if let Err(d) = cnnc::compile(&source) {
            panic!(
                "{}:\n{}",
                path.display(),
                d.render(&path.display().to_string(), &source)
            );
        }
    }

    let tensors = |source: &str| {
        let model = &cnnc::compile(source).unwrap_or_else(|d| panic!("{}", d.render("model.cnn", source)))[0];
        let params: Vec<(String, Vec<usize>)> = model.params().into_iter().map(|p| (p.name, p.shape)).collect();
        let buffers: Vec<String> = model.buffers().into_iter().map(|p| p.name).collect();
        (model.clone(), params, buffers)
    };
    let (model, params, buffers) = tensors(RESNET8);
    let shape_of = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| panic!("no tensor {name} in {params:?}"))
    };
    assert_eq!(shape_of("conv1.weight"), [16, 3, 3, 3]);
    assert_eq!(shape_of("batchnorm1.weight"), [16]);
    assert_eq!(shape_of("residual1.conv1.weight"), [16, 16, 3, 3]);
    assert_eq!(shape_of("residual2.shortcut.conv1.weight"), [32, 16, 1, 1]);
    assert_eq!(shape_of("residual2.shortcut.batchnorm1.bias"), [32]);
    assert_eq!(shape_of("residual3.dw.weight"), [32, 1, 3, 3]);
    assert_eq!(shape_of("dense1.bias"), [10]);
    assert!(!params.iter().any(|(n, _)| n == "conv1.bias"), "bias off: {params:?}");
    assert!(buffers.contains(&"batchnorm1.running_mean".to_string()), "{buffers:?}");
    assert!(
        buffers.contains(&"residual2.batchnorm2.running_var".to_string()),
        "{buffers:?}"
    );
    let names: Vec<&str> = model.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conv1",
            "batchnorm1",
            "relu1",
            "residual1",
            "relu2",
            "residual2",
            "relu3",
            "residual3",
            "relu4",
            "avgpool1",
            "flatten1",
            "dense1",
            "softmax1"
        ]
    );
    let residual2 = &model.layers[5];
    assert_eq!(residual2.input.to_string(), "16x32x32");
    assert_eq!(residual2.output.to_string(), "32x16x16");
    let cnnc::ir::Op::Residual(r) = &residual2.op else {
        panic!("{:?}", residual2.op)
    };
    let body: Vec<&str> = r.body.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        body,
        [
            "residual2.conv1",
            "residual2.batchnorm1",
            "residual2.relu1",
            "residual2.conv2",
            "residual2.batchnorm2"
        ]
    );
    let cnnc::ir::Op::Residual(r) = &model.layers[7].op else {
        panic!("{:?}", model.layers[7].op)
    };
    let cnnc::ir::Op::Conv(dw) = &r.body[0].op else {
        panic!("{:?}", r.body[0].op)
    };
    assert_eq!(
        (r.body[0].name.as_str(), dw.groups, dw.dilation),
        ("residual3.dw", 32, [2, 2])
    );
    assert_eq!(r.body[0].output.to_string(), "32x16x16");
    let train = model.train.as_ref().expect("train block");
    assert_eq!(train.batch, 128);
    assert_eq!(model.output().to_string(), "10");

    // The rest of v2: silu and gelu, dense bias off, batchnorm options, normalize, augment.
    let (model, params, buffers) = tensors(
        "model V2 {
            input 3x8x8 normalize mean 0.5 0.4 0.3 std 0.2 0.25 0.3
            conv 4 kernel 3 dilation 2x1 pad same silu
            batchnorm eps 1e-3 momentum 0.01 gelu
            flatten
            dense 6 bias off
            batchnorm
            dense 2 sigmoid
            train { loss binary_cross_entropy optimizer adam lr 0.01 augment flip horizontal crop 2 flip vertical }
        }",
    );
    let norm = model.normalize.as_ref().expect("normalize");
    assert_eq!(norm.mean, [0.5, 0.4, 0.3]);
    assert_eq!(norm.std, [0.2, 0.25, 0.3]);
    let conv = model.layers.iter().find_map(|l| match &l.op {
        cnnc::ir::Op::Conv(c) => Some((c.clone(), l.output)),
        _ => None,
    });
    let (conv, out) = conv.expect("a conv layer");
    assert_eq!(conv.dilation, [2, 1]);
    assert_eq!(conv.window.pad_before, [2, 1]);
    assert_eq!(out.to_string(), "4x8x8");
    let kinds: Vec<String> = model.layers.iter().map(|l| format!("{}:{:?}", l.name, l.op)).collect();
    assert!(kinds[1].starts_with("silu1:Activation(Silu)"), "{kinds:?}");
    assert!(
        kinds[2].starts_with("batchnorm1:BatchNorm(BatchNorm { eps: 0.001, momentum: 0.01 })"),
        "{kinds:?}"
    );
    assert!(kinds[3].starts_with("gelu1:Activation(Gelu)"), "{kinds:?}");
    assert!(
        params.iter().any(|(n, s)| n == "dense1.weight" && s == &[6, 256]),
        "{params:?}"
    );
    assert!(!params.iter().any(|(n, _)| n == "dense1.bias"), "{params:?}");
    assert_eq!(
        buffers,
        [
            "batchnorm1.running_mean",
            "batchnorm1.running_var",
            "batchnorm2.running_mean",
            "batchnorm2.running_var"
        ]
    );
    assert_eq!(
        model.train.as_ref().expect("train").augment,
        [
            cnnc::ir::Augment::FlipHorizontal,
            cnnc::ir::Augment::Crop(2),
            cnnc::ir::Augment::FlipVertical
        ]
    );
}

/// The ResNet-8 example of the language reference (docs/language.md).
const RESNET8: &str = include_str!("../../examples/models/resnet8.cnn");

/// docs/language.md lists every error code with its description.
#[test]
fn the_language_reference_lists_every_error_code() {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/language.md"))
        .expect("docs/language.md is readable");
    for code in cnnc::diag::Code::ALL {
        let row = format!("| {} | {} |", code.id(), code.title());
        assert!(docs.contains(&row), "docs/language.md lacks the row `{row}`");
    }
}
