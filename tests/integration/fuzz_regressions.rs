//! Every input in `tests/fuzz_regressions/` that once broke the front end (found by
//! the fuzz target in `fuzz/`, or by `tests/integration/random_stacks.rs`), run through parse,
//! check and render. None may panic; an error must be located in the source; an
//! accepted model must be consistent and run in the interpreter. The inputs listed
//! in `EXPECTED` must also give the verdict their fix settled on.
//!
//! To add one: copy the input (a libFuzzer `crash-*`/`timeout-*`/`oom-*` artifact,
//! bytes as they are) into the folder under a name that says what it is about, and
//! add a line to `EXPECTED`.

use cnnc::interp::Interpreter;
use cnnc::ir::Shape;
use cnnc::Model;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What an input must give.
enum Verdict {
    /// Errors, the first of whose messages contains this text.
    Error(&'static str),
    /// A valid model with this output shape.
    Output(Shape),
}

/// The file (in `tests/fuzz_regressions/`), its verdict, and what went wrong once.
const EXPECTED: &[(&str, Verdict, &str)] = &[
    (
        "pad_same_stride_past_kernel.cnn",
        Verdict::Output(Shape::Image { c: 1, h: 2, w: 2 }),
        "`pad same` with a stride larger than the kernel (6 cells, kernel 1, stride 4) was \
         rejected as \"2.25 is not a whole number\"; the spec says ceil(6 / 4) = 2",
    ),
    (
        "leaky_relu_slope_past_f32.cnn",
        Verdict::Error("is too large"),
        "a slope beyond f32::MAX was accepted and became an infinite slope: NaN predictions",
    ),
    (
        "dropout_rounds_to_one.cnn",
        Verdict::Error("dropout 0.99999999999 is 1 in 32-bit floats"),
        "P < 1 in f64 but 1.0 as f32: every value dropped, 1 / (1 - P) infinite",
    ),
    (
        "adam_betas_round_to_one.cnn",
        Verdict::Error("beta1 0.999999999 is out of range"),
        "beta1 1.0 as f32 makes Adam's bias correction divide by 0; eps 1e-50 is 0 as f32",
    ),
    (
        "lr_rounds_to_zero.cnn",
        Verdict::Error("lr 1e-46 is 0 in 32-bit floats"),
        "a learning rate that is 0 as f32 was accepted",
    ),
    (
        "many_errors_on_one_long_line.cnn",
        Verdict::Error("dropout 2 is out of range"),
        "3,000 errors on one 30 KB line: each rendered the whole line, and located \
         itself by rescanning the text (20,000 on 200 KB: 4 GB of output, 40 s)",
    ),
    (
        "long_words.cnn",
        Verdict::Error("the layer name `wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww...` is used twice"),
        "messages quoted a 5,000-character name whole, and the line it is on",
    ),
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions")
}

fn inputs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("tests/fuzz_regressions exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Parse, check, render; then the interpreter for what is accepted. Returns the
/// result of checking.
fn run(name: &str, bytes: &[u8]) -> Result<Vec<cnnc::ir::Model>, cnnc::Diagnostics> {
    // As the fuzz target reads its input.
    let source = String::from_utf8_lossy(bytes);
    let start = Instant::now();
    let result = cnnc::compile(&source);
    match &result {
        Err(diags) => {
            assert!(!diags.is_empty(), "{name}: an error without a diagnostic");
            let text = diags.render(name, &source);
            // A few short lines each, however long the input's lines and words.
            assert!(
                text.len() <= 1_000 * diags.len(),
                "{name}: {} bytes for {} diagnostics",
                text.len(),
                diags.len()
            );
            assert_eq!(
                text.matches(&format!("--> {name}:")).count(),
                diags.len(),
                "{name}: every diagnostic is located:\n{text}"
            );
            for d in diags.iter() {
                assert!(
                    d.span.start <= d.span.end && d.span.end <= source.len(),
                    "{name}: span {:?} outside the {} bytes of the input",
                    d.span,
                    source.len()
                );
            }
        }
        Ok(models) => {
            for m in models {
                let mut previous = m.input;
                for layer in &m.layers {
                    assert_eq!(layer.input, previous, "{name}: input of {}", layer.name);
                    previous = layer.output;
                }
                let _ = cnnc::summary::summary(m);
                if m.param_count() <= 1_000_000 && m.layers.iter().all(|l| l.output.len() <= 1_000_000) {
                    let mut interp = Interpreter::from_source(&source, &m.name, 0).expect("an accepted model builds");
                    let dims: Vec<usize> = std::iter::once(2).chain(m.input.dims()).collect();
                    let x = cnnc::ndarray::ArrayD::from_elem(dims, 0.5f32);
                    let y = interp.predict(x.view()).expect("predict");
                    let want: Vec<usize> = std::iter::once(2).chain(m.output().dims()).collect();
                    assert_eq!(y.shape(), want.as_slice(), "{name}");
                }
            }
        }
    }
    // A hang once is a regression too (the fuzz run's timeout was 5 s).
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{name}: checking took {:?}",
        start.elapsed()
    );
    result
}

#[test]
fn every_regression_input_checks_without_panicking() {
    let files = inputs();
    assert!(files.len() >= EXPECTED.len(), "only {} inputs", files.len());
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_string();
        let bytes = std::fs::read(&path).expect("readable input");
        let result = run(&name, &bytes);
        if let Some((_, verdict, why)) = EXPECTED.iter().find(|(f, ..)| *f == name) {
            match (verdict, &result) {
                (Verdict::Error(text), Err(d)) => {
                    assert!(d.0[0].message.contains(text), "{name} ({why}): {}", d.0[0].message)
                }
                (Verdict::Output(shape), Ok(models)) => assert_eq!(models[0].output(), *shape, "{name} ({why})"),
                (Verdict::Error(_), Ok(_)) => panic!("{name} is accepted; it must not be: {why}"),
                (Verdict::Output(_), Err(d)) => panic!("{name} is rejected ({why}):\n{d}"),
            }
        }
    }
}

#[test]
fn every_expected_input_is_in_the_folder() {
    for (file, ..) in EXPECTED {
        assert!(dir().join(file).is_file(), "tests/fuzz_regressions/{file} is missing");
    }
}

#[test]
fn crashers_from_libfuzzer_give_located_errors() {
    // libFuzzer names what it saves `crash-<sha1>`, `timeout-...`, `oom-...`,
    // `slow-unit-...`; those inputs were never valid models. (Listed in `EXPECTED`
    // when the verdict is more precise than "a located error".)
    for path in inputs() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let crasher = ["crash-", "timeout-", "oom-", "slow-unit-", "leak-"]
            .iter()
            .any(|p| name.starts_with(p));
        if crasher && !EXPECTED.iter().any(|(f, ..)| *f == name) {
            let bytes = std::fs::read(&path).expect("readable input");
            assert!(
                run(&name, &bytes).is_err(),
                "{name} is accepted; a crasher must give a located error"
            );
        }
    }
}

/// The `pad same` fix makes windows that stop before the input ends (stride larger
/// than the kernel): generated code must agree with the interpreter on them.
const SAME_STRIDED: &str = "model SameStrided {
    input 2x9x7
    conv 3 kernel 1x2 stride 4x3 pad same relu
    maxpool 1 stride 2 pad same
    avgpool 1 stride 2x1 pad same round ceil
    flatten
    dense 2 sigmoid
    train { loss binary_cross_entropy optimizer sgd lr 0.1 batch 3 }
}";

cnn_macros::cnn! {
    model SameStrided {
        input 2x9x7
        conv 3 kernel 1x2 stride 4x3 pad same relu
        maxpool 1 stride 2 pad same
        avgpool 1 stride 2x1 pad same round ceil
        flatten
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.1 batch 3 }
    }
}

#[test]
fn pad_same_past_the_kernel_runs_the_same_in_generated_code() {
    use cnnc::ndarray::{ArrayD, IxDyn};
    use cnnc::{Target, Train};
    let models = cnnc::compile(SAME_STRIDED).unwrap_or_else(|d| panic!("{d}"));
    // 9x7 -> conv ceil(9/4) x ceil(7/3) = 3x3 -> maxpool 2x2 -> avgpool 1x2.
    assert_eq!(models[0].output(), Shape::Vector(2));
    assert_eq!(models[0].layers[3].output, Shape::Image { c: 3, h: 1, w: 2 });
    let mut generated = SameStrided::new(5);
    let mut interp = Interpreter::from_source(SAME_STRIDED, "SameStrided", 5).expect("valid");
    let x = ArrayD::from_shape_fn(IxDyn(&[4, 2, 9, 7]), |ix| {
        ((ix[0] * 31 + ix[1] * 17 + ix[2] * 7 + ix[3]) % 13) as f32 / 6.0 - 1.0
    });
    let close = |a: &ArrayD<f32>, b: &ArrayD<f32>, what: &str| {
        assert_eq!(a.shape(), b.shape(), "{what}");
        for (u, v) in a.iter().zip(b) {
            assert!((u - v).abs() <= 1e-5 + 1e-4 * v.abs(), "{what}: {u} vs {v}");
        }
    };
    let y_gen = generated.predict(x.view()).expect("generated predict");
    let y_int = interp.predict(x.view()).expect("interpreter predict");
    close(&y_gen, &y_int, "predictions");
    let t = ArrayD::from_shape_fn(IxDyn(&[4, 2]), |ix| ((ix[0] + ix[1]) % 2) as f32);
    let g_gen = generated
        .gradients(x.view(), Target::Values(t.view()))
        .expect("generated gradients");
    let g_int = interp
        .gradients(x.view(), Target::Values(t.view()))
        .expect("interpreter gradients");
    assert!(
        (g_gen.loss - g_int.loss).abs() <= 1e-5,
        "{} vs {}",
        g_gen.loss,
        g_int.loss
    );
    close(&g_gen.input, &g_int.input, "input gradient");
    for ((name, a), (_, b)) in g_gen.params.iter().zip(&g_int.params) {
        close(a, b, name);
    }
}
