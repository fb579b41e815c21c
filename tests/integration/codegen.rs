//! The code generator's output, formatted by prettyplease (`cnnc emit`), pinned
//! with insta: one small model per construct, so a change to one layer kind's
//! code changes one small snapshot, plus LeNet whole. And emitted code compiles
//! without a warning (tests/compile_pass/emitted.rs includes the file kept here
//! in step with `emit`).

/// One small model per construct: (snapshot name, source).
const CONSTRUCTS: &[(&str, &str)] = &[
    ("conv", "model M { input 2x6x6 conv 3 kernel 3 pad 1 relu flatten train { loss mse optimizer sgd lr 0.1 } }"),
    (
        "conv_grouped_dilated_no_bias",
        "model M { input 4x9x9 conv 8 kernel 3 dilation 2 groups 4 bias off flatten train { loss mse optimizer sgd lr 0.1 } }",
    ),
    ("dense_no_bias", "model M { input 6 dense 4 bias off tanh dense 2 train { loss mse optimizer sgd lr 0.1 } }"),
    ("maxpool", "model M { input 2x8x8 maxpool 2 flatten train { loss mse optimizer sgd lr 0.1 } }"),
    ("avgpool", "model M { input 2x9x9 avgpool 3 stride 2 pad 1 flatten train { loss mse optimizer sgd lr 0.1 } }"),
    ("global_avgpool", "model M { input 3x5x5 avgpool global flatten train { loss mse optimizer sgd lr 0.1 } }"),
    ("batchnorm2d", "model M { input 2x4x4 conv 3 kernel 3 bias off batchnorm relu flatten train { loss mse optimizer sgd lr 0.1 } }"),
    ("batchnorm1d", "model M { input 5 dense 4 bias off batchnorm dense 2 train { loss mse optimizer sgd lr 0.1 } }"),
    (
        "residual_identity",
        "model M { input 2x4x4 residual { conv 2 kernel 3 pad 1 relu conv 2 kernel 3 pad 1 } relu flatten train { loss mse optimizer sgd lr 0.1 } }",
    ),
    (
        "residual_projection",
        "model M { input 2x4x4 residual { conv 4 kernel 3 stride 2 pad 1 round floor shortcut { conv 4 kernel 1 stride 2 round floor bias off } } flatten train { loss mse optimizer sgd lr 0.1 } }",
    ),
    ("dropout", "model M { input 6 dense 4 relu dropout 0.5 dense 2 train { loss mse optimizer sgd lr 0.1 } }"),
    ("silu_gelu", "model M { input 6 dense 4 silu dense 4 gelu train { loss mse optimizer sgd lr 0.1 } }"),
    ("softmax_cross_entropy", "model M { input 6 dense 3 softmax train { loss cross_entropy optimizer adam lr 0.01 } }"),
    (
        "sigmoid_binary_cross_entropy",
        "model M { input 6 dense 1 sigmoid train { loss binary_cross_entropy optimizer sgd lr 0.1 } }",
    ),
    (
        "normalize_augment",
        "model M { input 3x4x4 normalize mean 0.5 0.4 0.3 std 0.2 0.2 0.2 flatten dense 2 train { loss mse optimizer sgd lr 0.1 augment flip horizontal crop 1 } }",
    ),
    ("inference_only", "model M { input 2x6x6 conv 2 kernel 3 relu flatten dense 2 softmax }"),
];

fn emit(source: &str) -> String {
    cnnc::codegen::emit(source).unwrap_or_else(|d| panic!("{}", d.render("model.cnn", source)))
}

/// Pins the code emitted for `source` as tests/snapshots/codegen/NAME.snap.
fn assert_code(name: &str, source: &str, code: &str) {
    insta::with_settings!({
        snapshot_path => "../snapshots/codegen",
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(name, code, source);
    });
}

#[test]
fn generated_code_of_each_construct() {
    for (name, source) in CONSTRUCTS {
        assert_code(name, source, &emit(source));
    }
}

#[test]
fn generated_code_of_lenet() {
    let text = include_str!("../../examples/models/lenet.cnn");
    let code = emit(text);
    // No buffer a model does not use (LeNet has no batchnorm and reads no tensor
    // twice), and every line about the model.
    assert!(
        !code.contains("samples * 0") && !code.contains("vec![0.0; 0]"),
        "a zero-size buffer"
    );
    // (520 lines since each phase runs in chunks of samples at an offset `at`,
    // whose longer slices break more calls over lines; 540 leaves some room.)
    assert!(
        code.lines().count() <= 540,
        "LeNet's generated code grew past 540 lines"
    );
    assert_code("lenet", "examples/models/lenet.cnn", &code);
}

#[test]
fn a_model_without_train_block_has_no_backward_code() {
    let code = emit("model Infer { input 3x8x8 conv 4 kernel 3 relu maxpool 2 flatten dense 2 softmax }");
    assert!(
        !code.contains("fn backward"),
        "backward code was generated for an inference-only model"
    );
    assert!(!code.contains("rt::train!"));
    let trained = emit(
        "model T { input 3x8x8 conv 4 kernel 3 relu flatten dense 2 softmax train { loss cross_entropy optimizer sgd lr 0.1 } }",
    );
    assert!(trained.contains("fn backward") && trained.contains("rt::train!"));
}

#[test]
fn identical_layers_share_one_layer_type() {
    let code = emit(
        "model Twins { input 4x8x8 conv 4 kernel 3 pad 1 relu conv 4 kernel 3 pad 1 relu conv 4 kernel 3 pad 1 relu flatten dense 2 }",
    );
    // One type, named by what it is, not after the first layer that uses it.
    assert_eq!(code.matches("struct Conv3x3_4x8x8_to_4;").count(), 1);
    assert_eq!(code.matches("\n    struct Conv").count(), 1);
    let calls: Vec<&str> = code.split("rt::conv_forward(").skip(1).collect();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c.trim_start().starts_with("Conv3x3_4x8x8_to_4,")));
}

/// Issue 20: generated code that reads as the model. Every buffer is named after
/// the layer that writes it, every parameter, statistics and folded-weight range
/// is a named constant, and no buffer is allocated that nothing uses.
#[test]
fn generated_resnet8_names_its_buffers_and_ranges() {
    let code = emit(include_str!("../../examples/models/resnet8.cnn"));
    let numeric_range = |line: &str| {
        line.split('[').skip(1).any(|rest| {
            let inside = rest.split(']').next().unwrap_or("");
            inside.split_once("..").is_some_and(|(a, b)| {
                !a.is_empty()
                    && a.trim().chars().all(|c| c.is_ascii_digit())
                    && b.trim().chars().all(|c| c.is_ascii_digit())
            })
        })
    };
    let bad: Vec<&str> = code.lines().filter(|l| numeric_range(l)).collect();
    assert!(bad.is_empty(), "numeric ranges in the generated code: {bad:#?}");
    for named in [
        "&p[RESIDUAL1_CONV2_WEIGHT]",
        "&pass.shared[RESIDUAL1_BATCHNORM2_STATS]",
        "const RESIDUAL1_CONV2_WEIGHT: rt::Range = 2800..5104;",
        "&mut self.residual1_conv2[at * 16384..][..n * 16384]",
        "&self.d_residual2_shortcut_conv1[at * 8192..][..n * 8192]",
        "/// Phase 1: batchnorm1+relu1, residual1.conv1;",
        "for (at, n) in rt::chunks(pass.n, 5) {",
    ] {
        assert!(code.contains(named), "`{named}` is not in the generated code");
    }
    // Buffers: `self.<layer>` and `self.d_<layer>`, never numbered fields.
    let numbered = |prefix: &str| (0..40).any(|i| code.contains(&format!("self.{prefix}{i}[")));
    assert!(!numbered("a") && !numbered("d"), "a numbered buffer field");
    assert!(
        !code.contains("samples * 0]") && !code.contains("vec![0.0; 0]"),
        "a zero-size buffer"
    );
    // The loss replaces the final softmax's backward pass: no gradient buffer for its output.
    assert!(!code.contains("d_softmax1"), "a gradient buffer nothing uses");
}

/// The models whose emitted code tests/compile_pass/emitted.rs compiles with
/// `#![deny(warnings)]`: LeNet, the tour of v1's corners, and every v2 construct.
fn emitted_models() -> String {
    let v2 = "model Blocks {
        input 3x8x8 normalize mean 0.5 0.5 0.5 std 0.25 0.25 0.25
        conv 4 kernel 3 pad 1 bias off
        batchnorm relu
        residual { conv 4 kernel 3 pad 1 groups 4 dilation 1 batchnorm silu conv 4 kernel 1 } relu
        residual { conv 8 kernel 3 stride 2 pad 1 round floor gelu shortcut { conv 8 kernel 1 stride 2 round floor } }
        avgpool global
        flatten
        dropout 0.1
        dense 2 bias off softmax
        train { loss cross_entropy optimizer adamw lr 0.01 augment flip horizontal crop 1 }
    }";
    let mut all = String::new();
    for text in [
        include_str!("../../examples/models/lenet.cnn"),
        include_str!("../../examples/models/tour.cnn"),
        v2,
    ] {
        all += &emit(text);
    }
    all
}

#[test]
fn the_compile_pass_copy_of_emitted_code_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compile_pass/emitted/models.rs");
    let want = emitted_models();
    if std::env::var_os("CNNC_UPDATE_EMITTED").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let got = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        got == want,
        "tests/compile_pass/emitted/models.rs is stale; rerun with CNNC_UPDATE_EMITTED=1"
    );
}
