//! `cnnc check` and `cnnc summary` end to end: exit codes (0 valid, 1 invalid,
//! 2 usage or I/O), located errors on stderr, and no panics on absurd input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cnnc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnnc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cnnc runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A file with the given bytes in the test's scratch directory.
fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, bytes).expect("scratch file written");
    path
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn valid_files_exit_0() {
    let o = cnnc(&[
        "check",
        "examples/models/lenet.cnn",
        "examples/models/vgg_cifar.cnn",
        "examples/models/mlp_binary.cnn",
        "examples/models/regression.cnn",
        "examples/models/tour.cnn",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("examples/models/regression.cnn: ok (HousePrice, Denoise)"));
}

#[test]
fn an_invalid_file_exits_1_with_a_located_error() {
    let o = cnnc(&["check", "examples/models/lenet.cnn", "tests/ui/not_whole.cnn"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("--> tests/ui/not_whole.cnn:4:5"), "{err}");
    assert!(
        err.contains("(28 + 0 + 0 - 5) / 2 + 1 = 12.5 is not a whole number"),
        "{err}"
    );
    assert!(err.contains("4 |     conv 16 kernel 5 stride 2 relu"), "{err}");
    assert!(err.contains("tests/ui/not_whole.cnn: 1 error"), "{err}");
}

#[test]
fn every_error_of_a_file_is_reported() {
    let o = cnnc(&["check", "tests/ui/many_errors.cnn"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.matches("--> tests/ui/many_errors.cnn:").count(), 8, "{err}");
    assert!(err.contains("tests/ui/many_errors.cnn: 8 errors"), "{err}");
}

#[test]
fn a_missing_file_exits_2() {
    let o = cnnc(&["check", "examples/models/lenet.cnn", "no/such/file.cnn"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read no/such/file.cnn"), "{}", stderr(&o));
    // The readable file is still checked.
    assert!(stderr(&o).contains("lenet.cnn: ok"), "{}", stderr(&o));
}

#[test]
fn a_directory_exits_2() {
    let o = cnnc(&["check", "examples"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("examples is a directory"), "{}", stderr(&o));
}

#[test]
fn a_non_utf8_file_exits_2() {
    let path = scratch("latin1.cnn", b"model M { input 4 dense 2 } // caf\xe9\n");
    let o = cnnc(&["check", path_str(&path)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is not UTF-8 text (invalid byte at offset 34)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(cnnc(&[]).status.code(), Some(2));
    assert_eq!(cnnc(&["check"]).status.code(), Some(2));
    assert_eq!(cnnc(&["frobnicate", "x.cnn"]).status.code(), Some(2));
    assert_eq!(cnnc(&["summary"]).status.code(), Some(2));
}

#[test]
fn summary_counts_lenet_parameters_like_pytorch() {
    let o = cnnc(&["summary", "examples/models/lenet.cnn"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("parameters:         61,706"), "{out}");
    // conv1: 6·1·5·5 + 6 = 156 parameters; output 6x28x28.
    let conv1 = out.lines().find(|l| l.starts_with("conv1 ")).expect("a conv1 row");
    assert!(conv1.contains("6x28x28") && conv1.contains("156"), "{conv1}");
    assert!(out.contains("at batch 64"), "{out}");
}

#[test]
fn summary_of_bad_or_missing_files() {
    assert_eq!(cnnc(&["summary", "tests/ui/not_whole.cnn"]).status.code(), Some(1));
    assert_eq!(cnnc(&["summary", "no/such/file.cnn"]).status.code(), Some(2));
}

#[test]
fn absurd_numbers_are_errors_not_crashes() {
    let cases: &[(&str, &str)] = &[
        ("model M { input 100000x100000x100000 flatten }", "more than the limit"),
        (
            "model M { input 1x8x8 conv 99999999999999999999 kernel 3 }",
            "is too large",
        ),
        (
            "model M { input 18446744073709551615 dense 18446744073709551615 }",
            "more than the limit",
        ),
        // 2^31 channels, a 2^20 x 2^20 kernel: 2^71 weights, more than 64 bits can count.
        (
            "model M { input 2147483648x1x1 conv 1 kernel 1048576 stride 1048576 pad 1048575 round floor }",
            "parameters, more than the limit",
        ),
        (
            "model M { input 1x1x1 conv 2147483648 kernel 1048576 pad 1048575 }",
            "more than 2147483648 values",
        ),
        (
            "model M { input 4 dense 2 train { loss mse optimizer sgd lr 1e999 } }",
            "is too large",
        ),
    ];
    for (i, (source, expected)) in cases.iter().enumerate() {
        let path = scratch(&format!("absurd{i}.cnn"), source.as_bytes());
        for command in ["check", "summary"] {
            let o = cnnc(&[command, path_str(&path)]);
            assert_eq!(o.status.code(), Some(1), "{command} {source}: {}", stderr(&o));
            assert!(stderr(&o).contains(expected), "{source}: {}", stderr(&o));
        }
    }
}

#[test]
fn a_thousand_layer_model_checks() {
    let mut src = String::from("model Deep {\n    input 8x16x16\n");
    for i in 0..997 {
        src.push_str(["    conv 8 kernel 3 pad 1 relu\n", "    maxpool 3 stride 1 pad 1\n"][i % 2]);
    }
    src.push_str("    flatten\n    dense 10\n    softmax\n}\n");
    let path = scratch("deep.cnn", src.as_bytes());
    let o = cnnc(&["check", path_str(&path)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
