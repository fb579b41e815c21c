//! `cnnc check` and `cnnc summary` end to end: exit codes (0 valid, 1 invalid,
//! 2 usage or I/O), located errors on stderr, and no panics on absurd input.

mod common;

use common::{cnnc, path_str, stderr, stdout};
use std::path::{Path, PathBuf};

/// A file with the given bytes in the test's scratch directory.
fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, bytes).expect("scratch file written");
    path
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

/// A warning is printed, located, but a file with only warnings is valid.
#[test]
fn a_file_with_only_warnings_exits_0() {
    let o = cnnc(&["check", "tests/ui/input_hwc.cnn"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning[W001]: `input 32x32x3` reads as 32 channels of 32x3 pixels"),
        "{err}"
    );
    assert!(err.contains("--> tests/ui/input_hwc.cnn:3:11"), "{err}");
    assert!(err.contains("tests/ui/input_hwc.cnn: ok (M), 1 warning"), "{err}");
    let o = cnnc(&["check", "tests/ui/input_hwc_errors.cnn"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("tests/ui/input_hwc_errors.cnn: 1 error, 1 warning"),
        "{}",
        stderr(&o)
    );
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
        for command in ["check", "summary", "emit"] {
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

/// Runs `command path` for check, summary and emit: each must exit 2 (an I/O error,
/// not a diagnostic) with a message that contains `expected`.
fn every_command_refuses(path: &str, expected: &str) {
    for command in ["check", "summary", "emit"] {
        let o = cnnc(&[command, path]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{command} {path}: {err}");
        assert!(
            err.contains(expected),
            "{command} {path}: expected `{expected}` in {err}"
        );
        assert!(!err.contains("panicked"), "{command} {path}: {err}");
        assert!(stdout(&o).is_empty(), "{command} {path} printed {}", stdout(&o));
    }
}

#[test]
fn every_command_reports_a_missing_file() {
    every_command_refuses("no/such/file.cnn", "cannot read no/such/file.cnn: No such file");
}

#[test]
fn every_command_reports_a_path_through_a_file() {
    // The parent is a regular file: unreadable for everyone, root included.
    every_command_refuses(
        "examples/models/lenet.cnn/model.cnn",
        "cannot read examples/models/lenet.cnn/model.cnn: Not a directory",
    );
}

#[test]
fn every_command_reports_a_directory() {
    every_command_refuses("examples", "examples is a directory, not a .cnn file");
}

#[test]
fn every_command_reports_non_utf8_text() {
    let path = scratch("latin1_all.cnn", b"model M { input 4 dense 2 } // caf\xe9\n");
    every_command_refuses(path_str(&path), "is not UTF-8 text (invalid byte at offset 34)");
}

#[test]
fn every_command_refuses_a_file_over_the_size_limit() {
    // 17 MiB, sparse: the file system reports its size without 17 MiB on disk,
    // and cnnc must refuse it from its size rather than read it.
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("huge.cnn");
    let file = std::fs::File::create(&path).expect("scratch file created");
    file.set_len(17 << 20).expect("sparse file sized");
    drop(file);
    every_command_refuses(
        path_str(&path),
        "is 17825792 bytes, more than the 16777216-byte (16 MiB) limit for a .cnn file",
    );
    let _ = std::fs::remove_file(&path);
}

#[cfg(unix)]
#[test]
fn every_command_stops_reading_an_endless_file_at_the_limit() {
    // /dev/zero reports size 0 and never ends: the limit must hold for what is read.
    every_command_refuses(
        "/dev/zero",
        "/dev/zero holds more than the 16777216-byte (16 MiB) limit",
    );
}

#[cfg(unix)]
#[test]
fn every_command_reports_an_unreadable_file() {
    use std::os::unix::fs::PermissionsExt;
    let path = scratch("unreadable.cnn", b"model M { input 4 dense 2 }\n");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    // Root (or CAP_DAC_OVERRIDE) reads a mode-000 file anyway; then there is no
    // error to see, and only this sub-assertion is skipped.
    // `every_command_reports_a_path_through_a_file` covers an unreadable path for root.
    if std::fs::File::open(&path).is_err() {
        every_command_refuses(path_str(&path), "Permission denied");
    } else {
        eprintln!(
            "skipped: permissions do not stop this user from reading {}",
            path.display()
        );
        let o = cnnc(&["check", path_str(&path)]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn emit_of_an_absurd_model_is_an_error_not_a_crash() {
    let cases: &[(&str, &str)] = &[
        ("model M { input 100000x100000x100000 flatten }", "more than the limit"),
        (
            "model M { input 2147483648x1x1 conv 1 kernel 1048576 stride 1048576 pad 1048575 round floor }",
            "parameters, more than the limit",
        ),
        (
            "model M { input 1x1x1 conv 2147483648 kernel 1048576 pad 1048575 }",
            "more than 2147483648 values",
        ),
    ];
    for (i, (source, expected)) in cases.iter().enumerate() {
        let path = scratch(&format!("absurd_emit{i}.cnn"), source.as_bytes());
        let o = cnnc(&["emit", path_str(&path)]);
        assert_eq!(o.status.code(), Some(1), "emit {source}: {}", stderr(&o));
        assert!(stderr(&o).contains(expected), "{source}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{source}: emitted {}", stdout(&o));
    }
}

#[test]
fn summary_of_a_model_at_the_limits_counts_without_overflow() {
    // 2^31 input values, 4.1e12 FLOPs, 2.1e9 parameters (just under the limit),
    // batch 2^24: the totals need more than 32 bits, the memory more than 64.
    let source = "model Big {
    input 2048x1024x1024
    conv 1 kernel 32
    flatten
    dense 2170 relu
    train { loss mse optimizer adam lr 0.1 batch 16777216 }
}
";
    let path = scratch("limits.cnn", source.as_bytes());
    let o = cnnc(&["summary", path_str(&path)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    // conv1: 986049 outputs x 2 x 2048 x 32 x 32.
    let conv1 = out.lines().find(|l| l.starts_with("conv1 ")).expect("a conv1 row");
    assert!(
        conv1.contains("1x993x993") && conv1.contains("4,135,789,264,896"),
        "{conv1}"
    );
    // dense1: 2170 x 986049 + 2170 parameters.
    let dense1 = out.lines().find(|l| l.starts_with("dense1 ")).expect("a dense1 row");
    assert!(dense1.contains("2,139,728,500"), "{dense1}");
    assert!(out.contains("parameters:         2,141,825,653"), "{out}");
    assert!(out.contains("FLOPs per sample:   4,140,068,719,726"), "{out}");
    // (2^31 + 2 x 986049 + 2 x 2170) values x 4 bytes x 2^24 samples = 128.1 PiB.
    assert!(out.contains("activation memory:  128.1 PiB at batch 16777216"), "{out}");
    let o = cnnc(&["emit", path_str(&path)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

const RESNET: &str = "model Res {
    input 3x8x8
    conv 4 kernel 3 pad 1 bias off
    batchnorm relu
    residual {
        conv 8 kernel 3 stride 2 pad 1 round floor bias off
        batchnorm relu
        shortcut { conv 8 kernel 1 stride 2 round floor bias off batchnorm }
    } relu
    residual { conv 8 kernel 3 pad 1 } relu
    avgpool global
    flatten
    dense 2 softmax
}";

#[test]
fn summary_indents_residual_blocks_and_counts_buffers_apart() {
    let path = scratch("res.cnn", RESNET.as_bytes());
    let o = cnnc(&["summary", path_str(&path)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let row = |start: &str| {
        out.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no row starting {start:?} in\n{out}"))
            .to_string()
    };
    assert!(row("residual1 ").contains("residual"), "{out}");
    assert!(row("  residual1.conv1 ").contains("8x4x4"), "{out}");
    assert!(row("  residual1.shortcut.conv1 ").contains("32"), "{out}");
    // The add is a row of its own, with the block's output; an identity shortcut too.
    assert_eq!(
        out.lines().filter(|l| l.trim_start().starts_with("(add)")).count(),
        2,
        "{out}"
    );
    assert!(row("  (add)").contains("8x4x4"), "{out}");
    assert!(row("  (shortcut)").contains("identity"), "{out}");
    // batchnorm1: weight and bias (8 parameters), running mean and variance (8 buffers).
    let bn = row("batchnorm1 ");
    assert_eq!(
        bn.split_whitespace().collect::<Vec<_>>(),
        ["batchnorm1", "batchnorm", "4x8x8", "8", "8", "512"],
        "{out}"
    );
    // conv1 4·3·3·3 = 108; bn1 8; residual1: conv 8·4·9 = 288, bn 16, shortcut conv 32, bn 16;
    // residual2: conv 8·8·9 + 8 = 584; dense 2·8 + 2 = 18.
    assert!(out.contains("parameters:         1,070"), "{out}");
    // bn1 8, residual1.batchnorm1 16, residual1.shortcut.batchnorm1 16.
    assert!(
        out.contains("buffers:            40 (batchnorm running statistics"),
        "{out}"
    );
}

#[test]
fn summary_takes_several_files() {
    let path = scratch("res2.cnn", RESNET.as_bytes());
    let o = cnnc(&["summary", "examples/models/lenet.cnn", path_str(&path)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("model LeNet") && out.contains("model Res"), "{out}");
    assert!(out.contains("examples/models/lenet.cnn:"), "{out}");
    // A bad file among good ones: its errors, the others' tables, exit 1.
    let o = cnnc(&["summary", "tests/ui/not_whole.cnn", "examples/models/lenet.cnn"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("model LeNet"));
    assert!(stderr(&o).contains("--> tests/ui/not_whole.cnn:"), "{}", stderr(&o));
}

#[test]
fn an_empty_file_has_no_model() {
    for (name, text) in [
        ("empty.cnn", ""),
        ("comments.cnn", "// nothing yet\n/* model M { } */\n"),
    ] {
        let path = scratch(name, text.as_bytes());
        let o = cnnc(&["check", path_str(&path)]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("error[E003]: this file has no model"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn draw_writes_one_svg_per_model_and_refuses_ambiguous_output() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lenet-drawing.svg");
    let o = cnnc(&["draw", "examples/models/lenet.cnn", "-o", path_str(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{svg:.80}");
    assert!(
        svg.contains("conv") && svg.contains("6x28x28"),
        "the drawing names layers and shapes"
    );
    // Three models, one output file: say which to choose.
    let o = cnnc(&["draw", "examples/models/tour.cnn", "-o", path_str(&out)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--model"), "{}", stderr(&o));
    let o = cnnc(&[
        "draw",
        "examples/models/tour.cnn",
        "--model",
        "Nope",
        "-o",
        path_str(&out),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Tour, Head, conv"), "{}", stderr(&o));
}
