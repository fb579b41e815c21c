//! Convolutions with taps that read only padding for every output position, a
//! kernel wider than its input (issue 21, item 3): generated code against the
//! interpreter (forward, gradients, three training steps). `check` serves
//! conv_dilated_padding.rs too.

use crate::common::{agree, input};
use cnnc::interp::Interpreter;
use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::{Target, Train};

const TAPS_IN_PADDING: &str = include_str!("../ui/valid/conv_taps_in_padding.cnn");
cnn_macros::cnn!(file = "tests/ui/valid/conv_taps_in_padding.cnn");

/// Runs `generated` and the interpreter of `name` in `source` side by side on 3
/// samples, with targets of the model's loss.
pub fn check(generated: &mut dyn Train, source: &str, name: &str) {
    let mut interp = Interpreter::from_source(source, name, 0).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut shape = vec![3];
    shape.extend_from_slice(generated.input_shape());
    let x = input(&shape);
    let out: usize = generated.output_shape().iter().product();
    let labels = Array1::from_iter((0..3).map(|i| i % out));
    let values = ArrayD::from_shape_fn(IxDyn(&[3, out]), |ix| ((ix[0] * 7 + ix[1]) % 5) as f32 / 4.0);
    let target = if name_uses_labels(source, name) {
        Target::Labels(labels.view())
    } else {
        Target::Values(values.view())
    };
    agree(generated, &mut interp, &x, target);
}

/// Whether model `name`'s train block uses `cross_entropy` (labels).
fn name_uses_labels(source: &str, name: &str) -> bool {
    let model = &cnnc::compile(source).expect("valid models")[..];
    let m = model.iter().find(|m| m.name == name).expect("the model");
    m.train.as_ref().map(|t| t.loss) == Some(cnnc::ir::Loss::CrossEntropy)
}

#[test]
fn taps_entirely_in_the_padding_run_without_panicking() {
    check(&mut TapsInPadding::new(1), TAPS_IN_PADDING, "TapsInPadding");
    check(&mut TapsInRightPadding::new(2), TAPS_IN_PADDING, "TapsInRightPadding");
    check(
        &mut TapsInPaddingStrided::new(3),
        TAPS_IN_PADDING,
        "TapsInPaddingStrided",
    );
}
