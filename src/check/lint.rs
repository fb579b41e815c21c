//! Warnings: text that is valid but most likely not what the user meant. A warning
//! never stops a model from compiling (`cnnc check` exits 0 on a file with only
//! warnings); `cnnc check` prints it as `warning[W001]`, `cnn!` as a compiler warning.

use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::ir::{self, Shape};
use crate::syntax::ast;

/// Every warning of a file, in source order; `checked` are the models that
/// checked (warnings that need shapes look at them).
pub fn warnings(file: &ast::File, checked: &[ir::Model]) -> Diagnostics {
    let mut diags = Diagnostics::default();
    for model in &file.models {
        if let Some(w) = channels_last(&model.input) {
            diags.push(w);
        }
        let ir = checked.iter().find(|m| m.name == model.name.value);
        if let Some(w) = ir.and_then(|ir| shrunk_segmentation(model, ir)) {
            diags.push(w);
        }
    }
    diags
}

/// A model that ends with `softmax` on an image smaller than its input: softmax
/// over the channels at each position (v3 segmentation), where a classifier was
/// most likely meant (`flatten` and `dense` left out). A U-Net's output keeps the
/// input's height and width and is not warned.
fn shrunk_segmentation(model: &ast::Model, ir: &ir::Model) -> Option<Diagnostic> {
    let (Shape::Image { h: ih, w: iw, .. }, Some(last)) = (ir.input, ir.layers.last()) else {
        return None;
    };
    let (ir::Op::Softmax, Shape::Image { c, h, w }) = (&last.op, last.output) else {
        return None;
    };
    if h > ih || w > iw || h * w == ih * iw {
        return None;
    }
    let item = model.layers.last()?;
    let span = match &item.kind {
        ast::LayerKind::Activation(a) => a.span,
        _ => super::names::shorthand_of(item).map_or(item.keyword, |a| a.span),
    };
    Some(
        Diagnostic::new(
            Code::PositionSoftmax,
            span,
            format!("softmax over the {c} channels at each of {h}x{w} positions: a class per position, not per image"),
        )
        .with_label(format!("input is {}", last.input))
        .with_hint(format!(
            "for one class per image write `flatten` and `dense N` before softmax; a per-position output \
             ({h}x{w}) smaller than the input ({ih}x{iw}) is rarely meant"
        )),
    )
}

/// The smallest height and width an image in height x width x channels order is
/// taken to have: below it, `CxHxW` with a few channels is as likely.
const MIN_SIDE: u64 = 8;

/// `input 32x32x3`: height x width x channels (the Keras and NumPy order) where
/// .cnn reads channels x height x width, so it means 32 channels of 32x3 pixels.
/// Warned when the last dimension is a usual channel count (1 gray, 3 RGB, 4 RGBA)
/// and the first two are at least [`MIN_SIDE`]: `28x28x1`, `224x224x3`, but not
/// `3x32x32`, `1x28x28` or `64x8x8`.
fn channels_last(input: &ast::Spanned<Vec<u64>>) -> Option<Diagnostic> {
    let &[h, w, c] = input.value.as_slice() else {
        return None;
    };
    if !matches!(c, 1 | 3 | 4) || h < MIN_SIDE || w < MIN_SIDE {
        return None;
    }
    let what = match c {
        1 => "grayscale ",
        3 => "RGB ",
        _ => "RGBA ",
    };
    Some(
        Diagnostic::new(
            Code::ChannelsLast,
            input.span,
            format!("`input {h}x{w}x{c}` reads as {h} channels of {w}x{c} pixels"),
        )
        .with_label("channels x height x width")
        .with_hint(format!(
            "inputs are channels first, as in PyTorch; for {h}x{w} {what}images write `input {c}x{h}x{w}`"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warned(src: &str) -> Vec<String> {
        let file = crate::syntax::parse(src).unwrap();
        warnings(&file, &[]).iter().map(|d| d.message.clone()).collect()
    }

    #[test]
    fn height_width_channels_is_warned() {
        for (input, hint) in [
            ("32x32x3", "`input 3x32x32`"),
            ("28x28x1", "`input 1x28x28`"),
            ("224x224x3", "`input 3x224x224`"),
            ("64x64x4", "`input 4x64x64`"),
        ] {
            let file = crate::syntax::parse(&format!("model M {{ input {input} flatten dense 2 }}")).unwrap();
            let w = warnings(&file, &[]);
            assert_eq!(w.len(), 1, "{input}");
            assert_eq!(w.0[0].code, Some(Code::ChannelsLast));
            assert!(w.0[0].hint.as_deref().unwrap_or("").contains(hint), "{:?}", w.0[0]);
        }
    }

    #[test]
    fn channels_first_is_not_warned() {
        for input in [
            "3x32x32", "1x28x28", "64x8x8", "16x4x4", "4x4x3", "8x4x1", "784", "1x1x1",
        ] {
            assert!(
                warned(&format!("model M {{ input {input} flatten dense 2 }}")).is_empty(),
                "{input}"
            );
        }
    }
}
