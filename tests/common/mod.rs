//! What several test binaries share: the example models' texts, deterministic
//! inputs, elementwise closeness, and `agree`, which runs two `Train`
//! implementations side by side (the fixture harness is fixture_harness.rs).
#![allow(dead_code)]

use cnnc::ndarray::{ArrayD, Dimension, IxDyn};
use cnnc::{Target, Train};

/// The text of every model file in examples/models.
pub const EXAMPLE_MODELS: &[&str] = &[
    include_str!("../../examples/models/lenet.cnn"),
    include_str!("../../examples/models/vgg_cifar.cnn"),
    include_str!("../../examples/models/mlp_binary.cnn"),
    include_str!("../../examples/models/regression.cnn"),
    include_str!("../../examples/models/tour.cnn"),
    include_str!("../../examples/models/unet.cnn"),
    include_str!("../../examples/models/mobilenetv3_block.cnn"),
    include_str!("../../examples/models/densenet_block.cnn"),
];

/// Deterministic, varied inputs.
pub fn input(shape: &[usize]) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(shape), |ix| {
        let k = ix.slice().iter().enumerate().map(|(i, &v)| (i + 3) * v).sum::<usize>();
        ((k * 37 % 101) as f32 / 50.0) - 1.0
    })
}

pub fn close(what: &str, got: &ArrayD<f32>, want: &ArrayD<f32>, rtol: f32, atol: f32) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        assert!(
            (g - w).abs() <= atol + rtol * w.abs(),
            "{what}[{i}]: generated {g}, interpreter {w}"
        );
    }
}

/// The generic body: `a` and `b` start from the same parameters and must agree.
pub fn agree(a: &mut dyn Train, b: &mut dyn Train, x: &ArrayD<f32>, target: Target<'_>) {
    for name in a.param_names() {
        let p = a.param(&name).expect("listed parameter");
        b.set_param(&name, p.view()).expect("same parameters");
    }
    assert_eq!(a.param_names(), b.param_names());
    assert_eq!(a.output_shape(), b.output_shape());
    close(
        "output",
        &a.predict(x.view()).unwrap(),
        &b.predict(x.view()).unwrap(),
        1e-4,
        1e-6,
    );
    let (ga, gb) = (
        a.gradients(x.view(), target.clone()).unwrap(),
        b.gradients(x.view(), target.clone()).unwrap(),
    );
    assert!(
        (ga.loss - gb.loss).abs() <= 1e-4 * gb.loss.abs() + 1e-6,
        "loss {} vs {}",
        ga.loss,
        gb.loss
    );
    close("input gradient", &ga.input, &gb.input, 1e-3, 1e-5);
    for ((na, pa), (nb, pb)) in ga.params.iter().zip(&gb.params) {
        assert_eq!(na, nb);
        close(&format!("gradient of {na}"), pa, pb, 1e-3, 1e-5);
    }
    for step in 0..3 {
        let (la, lb) = (
            a.train_step(x.view(), target.clone()).unwrap(),
            b.train_step(x.view(), target.clone()).unwrap(),
        );
        assert!(
            (la - lb).abs() <= 1e-4 * lb.abs() + 1e-6,
            "step {step} loss {la} vs {lb}"
        );
    }
    // After three steps each element is held to 1e-3 of its tensor's largest value
    // rather than of itself: the steps amplify the f32 interpreter's own gradient
    // error (about 1e-5 of a gradient's scale against an f64 network on ResNet-8,
    // ten times the generated code's), and a small weight next to large ones moves
    // by the same absolute amount. The gradients above are held elementwise.
    for name in a.param_names() {
        close_scaled(
            &format!("{name} after 3 steps"),
            &a.param(&name).unwrap(),
            &b.param(&name).unwrap(),
            1e-3,
            1e-5,
        );
    }
}

/// `close` relative to the largest magnitude in `want` rather than each element's.
pub fn close_scaled(what: &str, got: &ArrayD<f32>, want: &ArrayD<f32>, rtol: f32, atol: f32) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        assert!(
            (g - w).abs() <= atol + rtol * scale,
            "{what}[{i}]: generated {g}, interpreter {w} (the tensor's largest magnitude {scale})"
        );
    }
}
