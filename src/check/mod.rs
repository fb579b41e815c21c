//! AST to IR: fills in defaults and names, computes every layer's shape, and
//! collects every error of the file (not just the first).

mod join;
mod layer;
pub mod lint;
mod lower;
mod name;
mod names;
mod scope;
pub mod shape;
mod train;
mod window;

use crate::diag::{shorten, Code, Diagnostic, Diagnostics, Span};
use crate::ir::{self, Shape};
use crate::syntax::ast::{self, LayerKind};
use layer::{layer_output, op_params};
use lower::{check_activation, lower_activation, lower_layer, without_shorthand, Place};
use name::check_model_name;
use names::{check_shortcut_unnamed, name_items, shortcut_items, shorthand_of, Block};
use scope::{Entry, Scope};
use std::collections::HashMap;

/// The largest number of values one sample may have at any layer, and the largest
/// parameter count: 2^31, so that every index fits comfortably and nothing overflows.
pub const MAX_ELEMENTS: u128 = 1 << 31;

/// Checks every model of a file and lowers the valid ones to IR. Returns all the
/// errors found when any model is wrong.
pub fn check(file: &ast::File) -> Result<Vec<ir::Model>, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut seen: HashMap<&str, Span> = HashMap::new();
    let mut models = Vec::new();
    for model in &file.models {
        if seen.insert(&model.name.value, model.name.span).is_some() {
            diags.push(
                Diagnostic::new(
                    Code::DuplicateModel,
                    model.name.span,
                    format!(
                        "a model named `{}` is already defined in this file",
                        shorten(&model.name.value)
                    ),
                )
                .with_hint("give each model a different name"),
            );
        }
        if let Some(m) = check_model(model, &mut diags) {
            models.push(m);
        }
    }
    if diags.is_empty() {
        Ok(models)
    } else {
        diags.0.sort_by_key(|d| d.span.start);
        Err(diags)
    }
}

fn check_model(model: &ast::Model, diags: &mut Diagnostics) -> Option<ir::Model> {
    let errors_before = diags.len();
    check_model_name(&model.name, diags);
    let input = check_input(&model.input, diags);
    let normalize = model.normalize.as_ref().and_then(|n| check_normalize(n, input, diags));
    let mut scope = Scope::model(input, model.input.span);
    let (layers, output) = check_block(
        &model.layers,
        "",
        Block::Model,
        input,
        model.input.span,
        &mut scope,
        diags,
    );
    // Each layer's count is at most MAX_ELEMENTS (checked in `layer_output`); the
    // sum is taken in u128, so nothing overflows here.
    let params: u128 = layers.iter().map(|l| op_params(&l.op, l.input)).sum();
    if params > MAX_ELEMENTS {
        diags.push(
            Diagnostic::new(
                Code::TooLarge,
                model.name.span,
                format!(
                    "`{}` has {params} parameters, more than the limit of {MAX_ELEMENTS}",
                    shorten(&model.name.value)
                ),
            )
            .with_hint("use fewer or smaller layers"),
        );
    }
    let train = model
        .train
        .as_ref()
        .and_then(|t| train::check_train(t, &layers, input, output, diags));
    if diags.len() > errors_before {
        return None;
    }
    Some(ir::Model {
        normalize,
        name: model.name.value.clone(),
        input: input?,
        layers,
        train,
    })
}

/// Checks a sequence of items on `input` (`None` when unknown after an earlier
/// error): the layers with full names (`prefix` + own name), and the output shape.
/// `scope` holds the names the items may refer to; the block's own items are
/// added to it as they are checked.
fn check_block(
    items: &[ast::Layer],
    prefix: &str,
    block: Block,
    input: Option<Shape>,
    input_at: Span,
    scope: &mut Scope,
    diags: &mut Diagnostics,
) -> (Vec<ir::Layer>, Option<Shape>) {
    let names = name_items(items, block, diags);
    scope.set_names(
        items
            .iter()
            .zip(&names)
            .map(|(i, n)| (n.item.clone(), i.keyword))
            .collect(),
    );
    let mut layers: Vec<ir::Layer> = Vec::new();
    // `None` once a layer's shape could not be computed: later shapes are unknown,
    // but their other mistakes are still reported.
    let mut current = input;
    let mut current_at = input_at;
    for (index, (item, names)) in items.iter().zip(names).enumerate() {
        scope.enter(index);
        let name = format!("{prefix}{}", names.item);
        let shorthand = shorthand_of(item);
        if let Some(a) = shorthand {
            check_activation(a, diags);
        }
        let shown = shorten(&name);
        let join = join::Join {
            name: &shown,
            keyword: item.keyword,
        };
        let here = current.map(|shape| join::Current {
            shape,
            span: current_at,
        });
        let mut rounded = None;
        let layer = match &item.kind {
            LayerKind::Shortcut { items: inner } => {
                check_misplaced_shortcut(item, inner, &name, block, scope, diags);
                continue;
            }
            LayerKind::Residual { items: inner, .. } => check_residual(item, inner, &name, current, scope, diags),
            LayerKind::Concat(others) => check_concat(&join, others, &name, here, scope, diags),
            LayerKind::Add { other, .. } | LayerKind::Mul { other, .. } => {
                check_add_or_mul(item, &join, other, &name, here, scope, diags)
            }
            LayerKind::From(other) => {
                let resolved = check_from(item, other, index + 1 == items.len(), scope, diags);
                current = resolved.as_ref().and_then(|r| r.entry.shape);
                if let Some(r) = &resolved {
                    current_at = r.entry.span;
                }
                layers.extend(from_step(prefix, other, resolved.as_ref()));
                continue;
            }
            LayerKind::Conv { .. }
            | LayerKind::MaxPool { .. }
            | LayerKind::AvgPool { .. }
            | LayerKind::GlobalAvgPool
            | LayerKind::Flatten
            | LayerKind::Dense { .. }
            | LayerKind::BatchNorm { .. }
            | LayerKind::Dropout { .. }
            | LayerKind::Activation(_)
            | LayerKind::ConvTranspose { .. }
            | LayerKind::GlobalMaxPool
            | LayerKind::Upsample { .. } => {
                let (layer, r) = check_plain_layer(item, &name, &shown, current, diags);
                rounded = r;
                layer
            }
        };
        current = layer.as_ref().map(|l| l.output);
        current_at = item.keyword;
        let stride = layer.as_ref().map_or([1, 1], |l| window_stride(&l.op));
        let mut output_layer = name.clone();
        layers.extend(layer);
        // The shorthand is its own layer; its errors point at the activation word.
        if let (Some(a), Some(input), Some(act_name)) = (shorthand, current, names.shorthand) {
            let name = format!("{prefix}{act_name}");
            let layer = shorthand_layer(a, &name, input, diags);
            output_layer = name;
            current = layer.as_ref().map(|l| l.output);
            layers.extend(layer);
        }
        scope.define(Entry {
            name: names.item,
            ir: output_layer,
            shape: current,
            span: item.keyword,
            rounded,
            stride,
        });
    }
    (layers, current)
}

/// A `shortcut` block outside the end of a residual block: the error, and its
/// own items checked (their mistakes are still worth reporting).
fn check_misplaced_shortcut(
    item: &ast::Layer,
    inner: &[ast::Layer],
    name: &str,
    block: Block,
    scope: &Scope,
    diags: &mut Diagnostics,
) {
    let (message, hint) = match block {
        Block::Body => (
            "a `shortcut` block must be the last item of its residual block",
            "move `shortcut { ... }` after the body's last layer",
        ),
        Block::Model | Block::Shortcut => (
            "a `shortcut` block belongs inside a residual block",
            "write it last inside `residual { ... }`, after the block's layers",
        ),
    };
    diags.push(Diagnostic::new(Code::Shortcut, item.keyword, message).with_hint(hint));
    let mut inner_scope = Scope::block(Some(scope), Vec::new());
    check_block(
        inner,
        &format!("{name}."),
        Block::Shortcut,
        None,
        item.keyword,
        &mut inner_scope,
        diags,
    );
}

/// `concat NAME+` on the current tensor `here`: every name resolved, then the
/// shapes joined.
fn check_concat(
    join: &join::Join,
    others: &[ast::Spanned<String>],
    name: &str,
    here: Option<join::Current>,
    scope: &Scope,
    diags: &mut Diagnostics,
) -> Option<ir::Layer> {
    let resolved: Vec<_> = others
        .iter()
        .filter_map(|o| Some((o, scope.resolve(o, diags)?)))
        .collect();
    (resolved.len() == others.len())
        .then_some(())
        .and(here)
        .and_then(|here| {
            let input = here.shape;
            join::concat(join, here, &resolved, scope, diags).map(|(op, output)| ir::Layer {
                name: name.to_string(),
                op,
                input,
                output,
            })
        })
}

/// `add NAME` or `mul NAME` on the current tensor `here`: the name resolved, then
/// the shapes joined.
fn check_add_or_mul(
    item: &ast::Layer,
    join: &join::Join,
    other: &ast::Spanned<String>,
    name: &str,
    here: Option<join::Current>,
    scope: &Scope,
    diags: &mut Diagnostics,
) -> Option<ir::Layer> {
    let resolved = scope.resolve(other, diags);
    resolved.zip(here).and_then(|(r, here)| {
        let input = here.shape;
        let joined = if let LayerKind::Add { .. } = item.kind {
            join::add(join, here, other, &r, scope, diags)
        } else {
            join::mul(join, here, other, &r, scope, diags)
        };
        joined.map(|(op, output)| ir::Layer {
            name: name.to_string(),
            op,
            input,
            output,
        })
    })
}

/// `from NAME`: not the last item of its block (the next item reads the named
/// output), and the name resolved.
fn check_from(
    item: &ast::Layer,
    other: &ast::Spanned<String>,
    is_last: bool,
    scope: &Scope,
    diags: &mut Diagnostics,
) -> Option<scope::Resolved> {
    if is_last {
        diags.push(
            Diagnostic::new(
                Code::Reference,
                item.keyword,
                "`from` cannot be the last item of a block",
            )
            .with_hint("`from NAME` chooses what the next item reads; write that item after it"),
        );
    }
    scope.resolve(other, diags)
}

/// The IR step of `from NAME`: the branch reads the named output; the IR keeps the
/// step as a layer whose name no item can take (it has a space). `None` when the
/// name or its shape is unknown.
fn from_step(prefix: &str, other: &ast::Spanned<String>, resolved: Option<&scope::Resolved>) -> Option<ir::Layer> {
    let reference = resolved?.to_ref()?;
    Some(ir::Layer {
        name: format!("{prefix}from {}", other.value),
        input: reference.shape,
        output: reference.shape,
        op: ir::Op::From(reference),
    })
}

/// A plain layer (not a block or a join) on `input`: its options lowered, then
/// its output shape. Also returns how a window with `round floor` rounded, for
/// later join errors.
fn check_plain_layer(
    item: &ast::Layer,
    name: &str,
    shown: &str,
    input: Option<Shape>,
    diags: &mut Diagnostics,
) -> (Option<ir::Layer>, Option<String>) {
    if let LayerKind::Activation(a) = &item.kind {
        check_activation(a, diags);
    }
    let place = Place {
        keyword: item.keyword,
        whole: without_shorthand(item),
    };
    let mut rounded = None;
    let layer = match lower_layer(item, diags) {
        Some(pending) => input.and_then(|input| {
            layer_output(shown, &pending, input, place, diags).map(|(op, output)| {
                rounded = rounding(shown, &op, input, output);
                ir::Layer {
                    name: name.to_string(),
                    op,
                    input,
                    output,
                }
            })
        }),
        None => None,
    };
    (layer, rounded)
}

/// An item's activation shorthand on `input`, as its own layer named `name`; its
/// errors point at the activation word.
fn shorthand_layer(a: &ast::Activation, name: &str, input: Shape, diags: &mut Diagnostics) -> Option<ir::Layer> {
    let place = Place {
        keyword: a.span,
        whole: a.span,
    };
    layer_output(&shorten(name), &lower_activation(a.kind), input, place, diags).map(|(op, output)| ir::Layer {
        name: name.to_string(),
        op,
        input,
        output,
    })
}

/// `maxpool2 floors 17 to 8`, when a window layer with `round floor` dropped
/// cells of its input (the first axis that did).
fn rounding(name: &str, op: &ir::Op, input: Shape, output: Shape) -> Option<String> {
    let (w, Shape::Image { h, w: width, .. }, Shape::Image { h: oh, w: ow, .. }) = (window_of(op)?, input, output)
    else {
        return None;
    };
    let span = |axis: usize| match op {
        ir::Op::Conv(c) => c.dilation[axis] * (w.size[axis] - 1) + 1,
        _ => w.size[axis],
    };
    [(h, oh), (width, ow)]
        .into_iter()
        .enumerate()
        .find_map(|(axis, (i, o))| {
            let travel = (i + w.pad_before[axis] + w.pad_after[axis]).checked_sub(span(axis))?;
            (!w.ceil && travel % w.stride[axis] != 0).then(|| format!("`{name}` floors {i} to {o}"))
        })
}

fn window_of(op: &ir::Op) -> Option<&ir::Window> {
    match op {
        ir::Op::Conv(c) => Some(&c.window),
        ir::Op::MaxPool(w) | ir::Op::AvgPool(w) => Some(w),
        _ => None,
    }
}

/// How much a layer divides the height and width by (1 without a window).
fn window_stride(op: &ir::Op) -> [usize; 2] {
    window_of(op).map_or([1, 1], |w| w.stride)
}

/// A residual block on `input`: body and shortcut checked, their shapes compared.
fn check_residual(
    item: &ast::Layer,
    items: &[ast::Layer],
    name: &str,
    input: Option<Shape>,
    scope: &mut Scope,
    diags: &mut Diagnostics,
) -> Option<ir::Layer> {
    let (body_items, shortcut) = match items.split_last() {
        Some((last, rest)) => match shortcut_items(last) {
            Some(inner) => (rest, Some((last, inner))),
            None => (items, None),
        },
        None => (items, None),
    };
    if let Some((s, _)) = shortcut {
        check_shortcut_unnamed(s, diags);
    }
    let shown = shorten(name);
    if body_items.is_empty() {
        diags.push(
            Diagnostic::new(
                Code::Shortcut,
                item.keyword,
                format!("{shown}: this residual block has no layers before its shortcut"),
            )
            .with_hint("the body is the block's items before `shortcut { ... }`; add at least one layer"),
        );
    }
    // The body sees the items before the block; the shortcut also sees the body's.
    let mut body_scope = Scope::block(Some(&*scope), Vec::new());
    let (body, body_out) = check_block(
        body_items,
        &format!("{name}."),
        Block::Body,
        input,
        item.keyword,
        &mut body_scope,
        diags,
    );
    let (short, short_out) = match shortcut {
        Some((s, inner)) => check_block(
            inner,
            &format!("{name}.shortcut."),
            Block::Shortcut,
            input,
            s.keyword,
            &mut body_scope,
            diags,
        ),
        None => (Vec::new(), input),
    };
    let hidden: Vec<String> = body_scope.item_names().collect();
    scope.hide(hidden, name);
    if body_items.is_empty() {
        return None;
    }
    let (input, body_out, short_out) = (input?, body_out?, short_out?);
    if body_out != short_out {
        let uses_batchnorm = body.iter().any(|l| matches!(l.op, ir::Op::BatchNorm(_)));
        let last_body = body_items.last().map_or(item.keyword, |l| l.keyword);
        let mut d = match shortcut {
            Some((s, _)) => Diagnostic::new(
                Code::ResidualShape,
                item.keyword,
                format!("{shown}: the body gives {body_out} but the shortcut gives {short_out}"),
            )
            .with_label("the sum needs both to be the same shape")
            .with_secondary(s.keyword, format!("the shortcut maps {input} to {short_out}")),
            None => Diagnostic::new(
                Code::ResidualShape,
                item.keyword,
                format!("{shown}: the body gives {body_out} but the identity shortcut gives the input, {input}"),
            )
            .with_label(format!("the body maps {input} to {body_out}")),
        }
        .with_secondary(last_body, format!("the body ends here with {body_out}"));
        d = match (projection(input, body_out, uses_batchnorm), shortcut) {
            (Some(p), None) => d.with_hint(format!("add a projection shortcut as the block's last item: `{p}`")),
            (Some(p), Some(_)) => d.with_hint(format!("a shortcut that gives {body_out}: `{p}`")),
            (None, _) => {
                d.with_hint("the body and the shortcut must produce the same shape; change the body's last layers")
            }
        };
        diags.push(d);
        return None;
    }
    Some(ir::Layer {
        name: name.to_string(),
        op: ir::Op::Residual(ir::Residual { body, shortcut: short }),
        input,
        output: body_out,
    })
}

/// The shortcut that maps `input` to `output` with a 1x1 convolution (or a dense
/// layer for vectors), as ResNet's projection: `shortcut { conv 32 kernel 1 stride 2
/// round floor bias off }`, with `batchnorm` after it when the body normalizes.
fn projection(input: Shape, output: Shape, uses_batchnorm: bool) -> Option<String> {
    let layer = match (input, output) {
        (Shape::Image { h, w, .. }, Shape::Image { c, h: oh, w: ow }) => {
            // The smallest stride s with (in - 1) / s + 1 = out: (in - 1) / s = out - 1
            // holds from s = (in - 1) / out + 1 on, if at all.
            let stride = |i: usize, o: usize| {
                let s = (i - 1) / o + 1;
                ((i - 1) / s + 1 == o).then_some(s)
            };
            let (sh, sw) = (stride(h, oh)?, stride(w, ow)?);
            let stride = match (sh, sw) {
                (1, 1) => String::new(),
                (a, b) if a == b => format!(" stride {a}"),
                (a, b) => format!(" stride {a}x{b}"),
            };
            let round = if (h - 1) % sh != 0 || (w - 1) % sw != 0 {
                " round floor"
            } else {
                ""
            };
            format!("conv {c} kernel 1{stride}{round} bias off")
        }
        (Shape::Vector(_), Shape::Vector(n)) => format!("dense {n} bias off"),
        (Shape::Image { .. }, Shape::Vector(_)) | (Shape::Vector(_), Shape::Image { .. }) => return None,
    };
    Some(if uses_batchnorm {
        format!("shortcut {{ {layer} batchnorm }}")
    } else {
        format!("shortcut {{ {layer} }}")
    })
}

/// Per-channel normalization of an image input: one mean and one nonzero std per
/// channel.
fn check_normalize(n: &ast::Normalize, input: Option<Shape>, diags: &mut Diagnostics) -> Option<ir::Normalize> {
    let channels = match input? {
        Shape::Image { c, .. } => c,
        Shape::Vector(len) => {
            diags.push(
                Diagnostic::new(
                    Code::Normalize,
                    n.span,
                    format!("normalize needs an image input, but the input is a vector of {len}"),
                )
                .with_hint(
                    "normalize works per channel of a CxHxW input; scale vector inputs before they reach the model",
                ),
            );
            return None;
        }
    };
    let errors_before = diags.len();
    for (word, values, keyword, example) in [
        ("mean", &n.mean, n.mean_keyword, "0.5"),
        ("std", &n.std, n.std_keyword, "0.25"),
    ] {
        if values.len() != channels {
            let span = values.iter().fold(keyword, |s, v| s.to(v.span));
            let plural = |k: usize| if k == 1 { "" } else { "s" };
            diags.push(
                Diagnostic::new(
                    Code::Normalize,
                    span,
                    format!(
                        "normalize has {} {word} value{} for {channels} channel{}",
                        values.len(),
                        plural(values.len()),
                        plural(channels)
                    ),
                )
                .with_hint(format!(
                    "give one {word} per input channel: `{word} {}`",
                    vec![example; channels.min(4)].join(" ") + if channels > 4 { " ..." } else { "" }
                )),
            );
        }
    }
    for s in &n.std {
        if s.value as f32 == 0.0 {
            diags.push(
                Diagnostic::new(
                    Code::Normalize,
                    s.span,
                    format!("a std of {} would divide by zero", number(s.value)),
                )
                .with_hint("std is each channel's standard deviation over the data set, e.g. 0.25"),
            );
        }
    }
    (diags.len() == errors_before).then(|| ir::Normalize {
        mean: n.mean.iter().map(|v| v.value as f32).collect(),
        std: n.std.iter().map(|v| v.value as f32).collect(),
    })
}

fn check_input(input: &ast::Spanned<Vec<u64>>, diags: &mut Diagnostics) -> Option<Shape> {
    let dims = &input.value;
    if dims.contains(&0) {
        diags.push(
            Diagnostic::new(Code::Input, input.span, "the input has a zero dimension")
                .with_hint("every dimension of the input must be at least 1"),
        );
        return None;
    }
    let shape = match dims.as_slice() {
        [n] => Shape::Vector(to_usize(*n)?),
        [c, h, w] => Shape::Image {
            c: to_usize(*c)?,
            h: to_usize(*h)?,
            w: to_usize(*w)?,
        },
        [h, w] => {
            diags.push(
                Diagnostic::new(
                    Code::Input,
                    input.span,
                    "an image input needs channels, height and width",
                )
                .with_hint(format!("write `input 1x{h}x{w}` for a grayscale image")),
            );
            return None;
        }
        _ => {
            diags.push(
                Diagnostic::new(
                    Code::Input,
                    input.span,
                    format!("an input has 1 or 3 dimensions, not {}", dims.len()),
                )
                .with_hint("write `input CxHxW` for images or `input N` for vectors"),
            );
            return None;
        }
    };
    let total: u128 = dims.iter().map(|&d| d as u128).product();
    if total > MAX_ELEMENTS {
        diags.push(
            Diagnostic::new(
                Code::TooLarge,
                input.span,
                format!("the input has {total} values per sample, more than the limit of {MAX_ELEMENTS}"),
            )
            .with_hint("inputs this large do not fit in memory; check the dimensions"),
        );
        return None;
    }
    Some(shape)
}

/// A number as a message shows it: `0.5`, `-1`, and `1e-46` rather than 46 zeros.
pub(crate) fn number(v: f64) -> String {
    if v != 0.0 && !(1e-4..1e16).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

fn to_usize(v: u64) -> Option<usize> {
    usize::try_from(v).ok()
}

/// The names of one item: its own (without the block's prefix), and its activation
/// shorthand's.
#[cfg(test)]
mod tests {
    use super::*;

    fn compile(src: &str) -> Result<Vec<ir::Model>, Diagnostics> {
        check(&crate::syntax::parse(src).map_err(|d| Diagnostics(vec![d]))?)
    }

    #[test]
    fn lenet_shapes_and_parameters() {
        let models = compile(
            "model LeNet { input 1x28x28 conv 6 kernel 5 pad 2 relu maxpool 2 conv 16 kernel 5 relu
             maxpool 2 flatten dense 120 relu dense 84 relu dense 10 softmax }",
        )
        .unwrap();
        let m = &models[0];
        assert_eq!(m.param_count(), 61_706);
        let names: Vec<_> = m.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "conv1", "relu1", "maxpool1", "conv2", "relu2", "maxpool2", "flatten1", "dense1", "relu3", "dense2",
                "relu4", "dense3", "softmax1"
            ]
        );
        assert_eq!(m.layers[5].output, Shape::Image { c: 16, h: 5, w: 5 });
        assert_eq!(m.output(), Shape::Vector(10));
    }

    #[test]
    fn named_layers_keep_counting_positions() {
        let m = &compile("model M { input 1x8x8 stem: conv 2 kernel 3 conv 2 kernel 3 }").unwrap()[0];
        assert_eq!(m.layers[0].name, "stem");
        assert_eq!(m.layers[1].name, "conv2");
    }

    #[test]
    fn inexact_stride_shows_the_arithmetic() {
        let err = compile("model M { input 1x28x28 conv 16 kernel 5 stride 2 }").unwrap_err();
        assert_eq!(err.len(), 1);
        let d = &err.0[0];
        assert_eq!(
            d.message,
            "conv1: (28 + 0 + 0 - 5) / 2 + 1 = 12.5 is not a whole number"
        );
        assert_eq!(
            d.hint.as_deref(),
            Some("`pad bottom 1 right 1` makes it 13x13; `round floor` drops the last row and column")
        );
    }

    #[test]
    fn projection_strides() {
        let image = |c, h, w| Shape::Image { c, h, w };
        let p = |i, o| projection(i, o, false);
        assert_eq!(
            p(image(16, 32, 32), image(32, 16, 16)).as_deref(),
            Some("shortcut { conv 32 kernel 1 stride 2 round floor bias off }")
        );
        assert_eq!(
            p(image(4, 7, 7), image(8, 4, 4)).as_deref(),
            Some("shortcut { conv 8 kernel 1 stride 2 bias off }")
        );
        assert_eq!(
            p(image(4, 9, 8), image(4, 3, 8)).as_deref(),
            Some("shortcut { conv 4 kernel 1 stride 3x1 round floor bias off }")
        );
        assert_eq!(
            p(image(4, 8, 8), image(4, 1, 1)).as_deref(),
            Some("shortcut { conv 4 kernel 1 stride 8 round floor bias off }")
        );
        // 7 -> 5 or 6 cannot come from a 1x1 conv; nor can a larger output.
        assert_eq!(p(image(4, 7, 7), image(4, 5, 5)), None);
        assert_eq!(p(image(4, 7, 7), image(4, 9, 9)), None);
        assert!(p(image(4, 1 << 30, 1), image(4, 3, 1)).is_some());
        assert_eq!(
            projection(Shape::Vector(8), Shape::Vector(3), true).as_deref(),
            Some("shortcut { dense 3 bias off batchnorm }")
        );
        assert_eq!(p(image(1, 2, 2), Shape::Vector(4)), None);
    }

    #[test]
    fn collects_every_error() {
        let err = compile(
            "model M { input 1x8x8 conv 0 kernel 3 dense 4 conv 2 kernel 3 stride 0
             train { loss mse optimizer sgd lr -1 } }",
        );
        // lr -1 does not parse as a number: this is a syntax error.
        assert!(err.is_err());
        let err =
            compile("model M { input 1x8x8 conv 0 kernel 3 dense 4 train { loss mse optimizer sgd lr 0 batch 0 } }")
                .unwrap_err();
        assert_eq!(err.len(), 3, "{err}");
    }
}
