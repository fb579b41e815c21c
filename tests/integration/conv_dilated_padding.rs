//! Padding past the kernel within the dilated span (issue 21, item 1): `pad 3
//! dilation 3` keeps a dilated 3x3's size, as in PyTorch. Generated code against
//! the interpreter on every convolution path, and the interpreter against the
//! definition of a dilated convolution.

use super::conv_padding::check;
use crate::common::input;
use cnnc::interp::Interpreter;
use cnnc::ndarray::{ArrayD, IxDyn};
use cnnc::Model;

const PAST_KERNEL: &str = include_str!("../ui/valid/conv_pad_past_kernel.cnn");
cnn_macros::cnn!(file = "tests/ui/valid/conv_pad_past_kernel.cnn");

#[test]
fn padding_past_the_kernel_within_the_dilated_span_agrees_on_every_path() {
    check(&mut DilatedDirect::new(1), PAST_KERNEL, "DilatedDirect");
    check(&mut DilatedBlocked::new(2), PAST_KERNEL, "DilatedBlocked");
    check(
        &mut DilatedDepthwiseStrided::new(3),
        PAST_KERNEL,
        "DilatedDepthwiseStrided",
    );
    // `pad D dilation D` keeps the size of a dilated 3x3, as in PyTorch.
    let model = &cnnc::compile(PAST_KERNEL).unwrap()[0];
    let sizes: Vec<String> = model.layers[..5].iter().map(|l| l.output.to_string()).collect();
    assert_eq!(sizes, ["3x9x9", "3x9x9", "3x9x9", "3x9x9", "2x9x9"]);
}

/// The interpreter's dilated convolution with padding past the kernel, against
/// its definition: `y[f,oy,ox] = sum w[f,c,ky,kx] * x[c, oy + 3ky - 3, ox + 3kx - 3]`.
#[test]
fn the_interpreter_computes_a_dilated_convolution_padded_past_its_kernel() {
    let source = "model M { input 2x5x4 conv 3 kernel 3 pad 3 dilation 3 }";
    let mut m = Interpreter::from_source(source, "M", 5).unwrap();
    let w = m.param("conv1.weight").unwrap();
    let b = ArrayD::from_shape_fn(IxDyn(&[3]), |ix| ix[0] as f32 * 0.25 - 0.2);
    m.set_param("conv1.bias", b.view()).unwrap();
    let x = input(&[1, 2, 5, 4]);
    let y = m.predict(x.view()).unwrap();
    assert_eq!(y.shape(), [1, 3, 5, 4]);
    for f in 0..3 {
        for oy in 0..5 {
            for ox in 0..4 {
                let mut want = b[[f]];
                for c in 0..2 {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (iy, ix) = (oy + 3 * ky, ox + 3 * kx);
                            if (3..8).contains(&iy) && (3..7).contains(&ix) {
                                want += w[[f, c, ky, kx]] * x[[0, c, iy - 3, ix - 3]];
                            }
                        }
                    }
                }
                let got = y[[0, f, oy, ox]];
                assert!((got - want).abs() <= 1e-5, "y[{f},{oy},{ox}] = {got}, want {want}");
            }
        }
    }
}
