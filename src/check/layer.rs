//! A layer's output shape from its input (the output-size formula, with the
//! arithmetic in the error when it fails) and the size limits on outputs and
//! parameters.

use super::lower::{Pending, Place};
use super::{window, MAX_ELEMENTS};
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::ir::{self, Shape};

/// `c·h·w` without overflow.
pub(super) fn shape_len(shape: Shape) -> u128 {
    match shape {
        Shape::Image { c, h, w } => c as u128 * h as u128 * w as u128,
        Shape::Vector(n) => n as u128,
    }
}

/// The number of trainable parameters of an operation on `input` (a residual
/// block's: those of its layers), without overflow.
pub(super) fn op_params(op: &ir::Op, input: Shape) -> u128 {
    match op {
        ir::Op::Conv(c) => {
            let f = c.filters as u128;
            let per_group = (input.channels() / c.groups.max(1)) as u128;
            f * per_group * c.window.size[0] as u128 * c.window.size[1] as u128 + if c.bias { f } else { 0 }
        }
        ir::Op::Dense(d) => d.units as u128 * shape_len(input) + if d.bias { d.units as u128 } else { 0 },
        ir::Op::BatchNorm(_) => 2 * input.channels() as u128,
        ir::Op::Residual(r) => r
            .body
            .iter()
            .chain(&r.shortcut)
            .map(|l| op_params(&l.op, l.input))
            .sum(),
        ir::Op::ConvTranspose(t) => {
            let per_group = (t.filters / t.groups.max(1)) as u128;
            input.channels() as u128 * per_group * t.size[0] as u128 * t.size[1] as u128
                + if t.bias { t.filters as u128 } else { 0 }
        }
        ir::Op::GlobalMaxPool
        | ir::Op::Upsample(_)
        | ir::Op::Concat(_)
        | ir::Op::Add(_)
        | ir::Op::Mul(_)
        | ir::Op::From(_)
        | ir::Op::MaxPool(_)
        | ir::Op::AvgPool(_)
        | ir::Op::GlobalAvgPool
        | ir::Op::Flatten
        | ir::Op::Dropout(_)
        | ir::Op::Activation(_)
        | ir::Op::Softmax => 0,
    }
}

/// `1, 2, 4, 8 or 16`: the common divisors of `a` and `b`.
pub(super) fn common_divisors(a: usize, b: usize) -> String {
    let (mut x, mut y) = (a, b);
    while y != 0 {
        (x, y) = (y, x % y);
    }
    let divisors: Vec<String> = (1..=x).filter(|d| x % d == 0).map(|d| d.to_string()).take(12).collect();
    match divisors.as_slice() {
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
        [] => "1".to_string(),
    }
}

/// The operation and output shape of a layer on `input`, or an error located at it.
pub(super) fn layer_output(
    name: &str,
    pending: &Pending,
    input: Shape,
    place: Place,
    diags: &mut Diagnostics,
) -> Option<(ir::Op, Shape)> {
    let (op, out) = match (pending, input) {
        (Pending::Conv { filters, window }, Shape::Image { c, h, w }) => {
            conv_output(name, *filters, window, input, [c, h, w], place, diags)?
        }
        (Pending::MaxPool(spec), Shape::Image { c, h, w }) => {
            let (window, [oh, ow]) = window::resolve(name, spec, h, w, place.whole, diags)?;
            (ir::Op::MaxPool(window), Shape::Image { c, h: oh, w: ow })
        }
        (Pending::AvgPool(spec), Shape::Image { c, h, w }) => {
            let (window, [oh, ow]) = window::resolve(name, spec, h, w, place.whole, diags)?;
            (ir::Op::AvgPool(window), Shape::Image { c, h: oh, w: ow })
        }
        (Pending::GlobalAvgPool, Shape::Image { c, .. }) => (ir::Op::GlobalAvgPool, Shape::Image { c, h: 1, w: 1 }),
        (Pending::GlobalMaxPool, Shape::Image { c, .. }) => (ir::Op::GlobalMaxPool, Shape::Image { c, h: 1, w: 1 }),
        (Pending::Upsample(u), Shape::Image { c, h, w }) => {
            let out = Shape::Image {
                c,
                h: h.saturating_mul(u.factor[0]),
                w: w.saturating_mul(u.factor[1]),
            };
            (ir::Op::Upsample(*u), out)
        }
        (Pending::ConvTranspose { filters, window }, Shape::Image { c, h, w }) => {
            conv_transpose_output(name, *filters, window, input, [c, h, w], place, diags)?
        }
        (
            Pending::Conv { .. }
            | Pending::MaxPool(_)
            | Pending::AvgPool(_)
            | Pending::GlobalAvgPool
            | Pending::GlobalMaxPool
            | Pending::Upsample(_)
            | Pending::ConvTranspose { .. },
            Shape::Vector(n),
        ) => {
            diags.push(needs_image(name, place, n));
            return None;
        }
        (Pending::Flatten, s) => (ir::Op::Flatten, Shape::Vector(s.len())),
        (Pending::Dense(d), Shape::Vector(_)) => (ir::Op::Dense(*d), Shape::Vector(d.units)),
        // v3: on an image, over the channels at each position.
        (Pending::Softmax, s) => (ir::Op::Softmax, s),
        (Pending::Dense(_), s @ Shape::Image { .. }) => {
            diags.push(needs_vector(name, place, "dense", s));
            return None;
        }
        (Pending::BatchNorm(bn), s) => (ir::Op::BatchNorm(*bn), s),
        (Pending::Dropout(p), s) => (ir::Op::Dropout(*p), s),
        (Pending::Activation(a), s) => (ir::Op::Activation(*a), s),
    };
    check_limits(name, &op, input, out, place, diags)?;
    Some((op, out))
}

/// A spatial layer on a vector input.
fn needs_image(name: &str, place: Place, n: usize) -> Diagnostic {
    Diagnostic::new(
        Code::InputKind,
        place.keyword,
        format!("{name} needs a CxHxW image input, but its input is a vector of {n}"),
    )
    .with_label(format!("input is {n}"))
    .with_hint("spatial layers must come before `flatten` and `dense`")
}

/// A layer that reads vectors (`what`) on the image `s`.
fn needs_vector(name: &str, place: Place, what: &str, s: Shape) -> Diagnostic {
    Diagnostic::new(
        Code::InputKind,
        place.keyword,
        format!("{name}: {what} needs a 1-D input, but its input is the image {s}"),
    )
    .with_label(format!("input is {s}"))
    .with_hint(format!(
        "add `flatten` before this layer (it makes {s} into {})",
        s.len()
    ))
}

/// A conv layer on the `c` x `h` x `w` image `input`: groups that divide both the
/// input channels and the filters, then the window's output size.
fn conv_output(
    name: &str,
    filters: usize,
    window: &window::Spec,
    input: Shape,
    [c, h, w]: [usize; 3],
    place: Place,
    diags: &mut Diagnostics,
) -> Option<(ir::Op, Shape)> {
    let g = window.groups;
    if !c.is_multiple_of(g) || !filters.is_multiple_of(g) {
        let what = match (!c.is_multiple_of(g), !filters.is_multiple_of(g)) {
            (true, true) => format!("the {c} input channels or the {filters} filters"),
            (true, false) => format!("the {c} input channels"),
            _ => format!("the {filters} filters"),
        };
        diags.push(
            Diagnostic::new(
                Code::Groups,
                window.groups_span,
                format!("{name}: groups {g} does not divide {what}"),
            )
            .with_label(format!("input is {input}"))
            .with_hint(format!(
                "groups must divide both the input channels ({c}) and the filters ({filters}): {} would work",
                common_divisors(c, filters)
            )),
        );
        return None;
    }
    let (win, [oh, ow]) = window::resolve(name, window, h, w, place.whole, diags)?;
    let conv = ir::Conv {
        filters,
        window: win,
        dilation: window.dilation,
        groups: g,
        bias: window.bias,
    };
    Some((
        ir::Op::Conv(conv),
        Shape::Image {
            c: filters,
            h: oh,
            w: ow,
        },
    ))
}

/// v3: a convtranspose layer on the `c` x `h` x `w` image `input`: groups that
/// divide both the input channels and the filters, then the transposed output size.
fn conv_transpose_output(
    name: &str,
    filters: usize,
    window: &window::Spec,
    input: Shape,
    [c, h, w]: [usize; 3],
    place: Place,
    diags: &mut Diagnostics,
) -> Option<(ir::Op, Shape)> {
    let g = window.groups;
    if !c.is_multiple_of(g) || !filters.is_multiple_of(g) {
        diags.push(
            Diagnostic::new(
                Code::Groups,
                window.groups_span,
                format!("{name}: groups {g} does not divide the {c} input channels and the {filters} filters"),
            )
            .with_label(format!("input is {input}"))
            .with_hint(format!(
                "groups must divide both the input channels ({c}) and the filters ({filters}): {} would work",
                common_divisors(c, filters)
            )),
        );
        return None;
    }
    let (pad, [oh, ow]) = window::transposed(name, window, h, w, place.whole, diags)?;
    let t = ir::ConvTranspose {
        filters,
        size: window.size(),
        stride: window.stride(),
        pad,
        output_pad: window.output_pad,
        dilation: window.dilation,
        groups: g,
        bias: window.bias,
    };
    Some((
        ir::Op::ConvTranspose(t),
        Shape::Image {
            c: filters,
            h: oh,
            w: ow,
        },
    ))
}

/// The size limits on a layer's output (values per sample) and its parameters;
/// `None` after reporting the first one exceeded.
fn check_limits(
    name: &str,
    op: &ir::Op,
    input: Shape,
    out: Shape,
    place: Place,
    diags: &mut Diagnostics,
) -> Option<()> {
    if shape_len(out) > MAX_ELEMENTS {
        diags.push(
            Diagnostic::new(
                Code::TooLarge,
                place.whole,
                format!("{name} outputs {out}, more than {MAX_ELEMENTS} values per sample"),
            )
            .with_hint("use fewer filters or a larger stride"),
        );
        return None;
    }
    let params = op_params(op, input);
    if params > MAX_ELEMENTS {
        diags.push(
            Diagnostic::new(
                Code::TooLarge,
                place.whole,
                format!("{name} has {params} parameters, more than the limit of {MAX_ELEMENTS}"),
            )
            .with_hint("use fewer filters or units, or a smaller kernel"),
        );
        return None;
    }
    Some(())
}
