//! `cnnc predict` end to end: a NumPy batch in and out equals the executor's
//! prediction (and the interpreter's within rounding); an image gets its top classes; wrong use is exit 2 with the reason.

mod common;

use cnnc::interp::Interpreter;
use cnnc::ndarray::{ArrayD, IxDyn};
use cnnc::rt::exec::Executor;
use cnnc::Model as _;
use common::path_str as s;
use common::{cnnc, stderr, stdout};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use std::path::{Path, PathBuf};

const LENET: &str = include_str!("../../examples/models/lenet.cnn");

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("predict");
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir.join(name)
}

#[test]
fn a_numpy_batch_gives_the_executors_outputs() {
    let x = ArrayD::from_shape_fn(IxDyn(&[3, 1, 28, 28]), |ix| {
        ((ix[0] * 7 + ix[2] * 3 + ix[3]) % 11) as f32 / 10.0
    });
    let (input, output) = (scratch("x.npy"), scratch("y.npy"));
    let mut bytes = Vec::new();
    x.write_npy(&mut bytes).expect("npy");
    std::fs::write(&input, bytes).expect("write x");
    let o = cnnc(&[
        "predict",
        "examples/models/lenet.cnn",
        "--seed",
        "3",
        "--input",
        s(&input),
        "--output",
        s(&output),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let y = ArrayD::<f32>::read_npy(std::fs::File::open(&output).expect("y written")).expect("npy");
    // The executor's numbers exactly (it runs generated code's kernels), the
    // reference interpreter's within float rounding.
    let exact = Executor::from_source(LENET, Some("LeNet"), 3)
        .expect("lenet")
        .predict(x.view())
        .expect("predict");
    assert_eq!(y, exact);
    let reference = Interpreter::from_source(LENET, "LeNet", 3)
        .expect("lenet")
        .predict(x.view())
        .expect("predict");
    let worst = y
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "largest difference from the interpreter {worst}");
}

#[test]
fn an_image_gets_its_top_classes() {
    let image = scratch("digit.png");
    image::GrayImage::from_fn(28, 28, |x, y| {
        image::Luma([if (8..20).contains(&x) && y > 4 { 255 } else { 0 }])
    })
    .save(&image)
    .expect("png");
    let o = cnnc(&["predict", "examples/models/lenet.cnn", s(&image), "--top", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stdout(&o);
    assert!(line.starts_with(&format!("{}: ", s(&image))), "{line}");
    assert_eq!(line.matches('%').count(), 3, "{line}");
}

#[test]
fn wrong_use_is_an_error_with_the_reason() {
    let o = cnnc(&["predict", "examples/models/lenet.cnn", "--input", "x.npy"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--input and --output go together"),
        "{}",
        stderr(&o)
    );
    let bad = scratch("bad.npy");
    let mut bytes = Vec::new();
    ArrayD::<f32>::zeros(IxDyn(&[2, 3, 28, 28]))
        .write_npy(&mut bytes)
        .expect("npy");
    std::fs::write(&bad, bytes).expect("write");
    let out = scratch("never.npy");
    let o = cnnc(&[
        "predict",
        "examples/models/lenet.cnn",
        "--input",
        s(&bad),
        "--output",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expected [N, 1, 28, 28]"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing is written on an error");
}
