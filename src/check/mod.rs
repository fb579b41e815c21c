//! AST to IR: fills in defaults and names, computes every layer's shape, and
//! collects every error of the file (not just the first).

pub mod lint;
mod name;
pub mod shape;
mod train;
mod window;

use crate::diag::{shorten, Code, Diagnostic, Diagnostics, Span};
use crate::ir::{self, Shape};
use crate::syntax::ast::{self, ActivationKind, LayerKind};
use name::check_model_name;
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
    let (layers, output) = check_block(&model.layers, "", Block::Model, input, diags);
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

/// Where a sequence of items sits, which decides what a `shortcut` item means there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// The model's own items.
    Model,
    /// A residual block's body: its shortcut, if last, has been taken out already.
    Body,
    /// A residual block's shortcut.
    Shortcut,
}

/// Checks a sequence of items on `input` (`None` when unknown after an earlier
/// error): the layers with full names (`prefix` + own name), and the output shape.
fn check_block(
    items: &[ast::Layer],
    prefix: &str,
    block: Block,
    input: Option<Shape>,
    diags: &mut Diagnostics,
) -> (Vec<ir::Layer>, Option<Shape>) {
    let names = name_items(items, block, diags);
    let mut layers: Vec<ir::Layer> = Vec::new();
    // `None` once a layer's shape could not be computed: later shapes are unknown,
    // but their other mistakes are still reported.
    let mut current = input;
    for (item, names) in items.iter().zip(names) {
        let name = format!("{prefix}{}", names.item);
        let shorthand = shorthand_of(item);
        if let Some(a) = shorthand {
            check_activation(a, diags);
        }
        let place = Place {
            keyword: item.keyword,
            whole: without_shorthand(item),
        };
        let layer = match &item.kind {
            LayerKind::Shortcut { items: inner } => {
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
                // Its own mistakes are still worth reporting.
                check_block(inner, &format!("{name}."), Block::Shortcut, None, diags);
                continue;
            }
            LayerKind::Residual { items: inner, .. } => check_residual(item, inner, &name, current, diags),
            LayerKind::Conv { .. }
            | LayerKind::MaxPool { .. }
            | LayerKind::AvgPool { .. }
            | LayerKind::GlobalAvgPool
            | LayerKind::Flatten
            | LayerKind::Dense { .. }
            | LayerKind::BatchNorm { .. }
            | LayerKind::Dropout { .. }
            | LayerKind::Activation(_) => {
                if let LayerKind::Activation(a) = &item.kind {
                    check_activation(a, diags);
                }
                match lower_layer(item, diags) {
                    Some(pending) => current.and_then(|input| {
                        layer_output(&shorten(&name), &pending, input, place, diags).map(|(op, output)| ir::Layer {
                            name,
                            op,
                            input,
                            output,
                        })
                    }),
                    None => {
                        current = None;
                        continue;
                    }
                }
            }
        };
        current = layer.as_ref().map(|l| l.output);
        layers.extend(layer);
        // The shorthand is its own layer; its errors point at the activation word.
        if let (Some(a), Some(input), Some(act_name)) = (shorthand, current, names.shorthand) {
            let place = Place {
                keyword: a.span,
                whole: a.span,
            };
            let name = format!("{prefix}{act_name}");
            current =
                layer_output(&shorten(&name), &lower_activation(a.kind), input, place, diags).map(|(op, output)| {
                    layers.push(ir::Layer {
                        name,
                        op,
                        input,
                        output,
                    });
                    output
                });
        }
    }
    (layers, current)
}

/// A residual block on `input`: body and shortcut checked, their shapes compared.
fn check_residual(
    item: &ast::Layer,
    items: &[ast::Layer],
    name: &str,
    input: Option<Shape>,
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
    let (body, body_out) = check_block(body_items, &format!("{name}."), Block::Body, input, diags);
    let (short, short_out) = match shortcut {
        Some((_, inner)) => check_block(inner, &format!("{name}.shortcut."), Block::Shortcut, input, diags),
        None => (Vec::new(), input),
    };
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
struct ItemNames {
    item: String,
    shorthand: Option<String>,
}

/// One name given in a block: where, and whether the user wrote it.
struct Given {
    name: String,
    span: Span,
    explicit: bool,
}

/// Names the items of one block: a user's name, or the kind and the 1-based position
/// among the block's items of that kind, named or not (activation shorthands count
/// as activations). Reports names used twice and names equal to a default name.
fn name_items(items: &[ast::Layer], block: Block, diags: &mut Diagnostics) -> Vec<ItemNames> {
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    let mut next = |kind: &'static str| {
        let n = counts.entry(kind).or_insert(0);
        *n += 1;
        format!("{kind}{n}")
    };
    let mut given: Vec<Given> = Vec::new();
    let mut out = Vec::new();
    for item in items {
        let shorthand = shorthand_of(item);
        let Some(kind) = kind_word(&item.kind) else {
            // A shortcut is named by its place, `BLOCK.shortcut`.
            check_shortcut_unnamed(item, diags);
            out.push(ItemNames {
                item: "shortcut".to_string(),
                shorthand: None,
            });
            continue;
        };
        let default = next(kind);
        let item_name = match &item.name {
            Some(n) => {
                if n.value == "shortcut" && block == Block::Body {
                    diags.push(
                        Diagnostic::new(
                            Code::Shortcut,
                            n.span,
                            "`shortcut` cannot name an item of a residual block",
                        )
                        .with_hint("the block's shortcut is named `shortcut`; choose another name"),
                    );
                }
                given.push(Given {
                    name: n.value.clone(),
                    span: n.span,
                    explicit: true,
                });
                n.value.clone()
            }
            None => {
                given.push(Given {
                    name: default.clone(),
                    span: item.keyword,
                    explicit: false,
                });
                default
            }
        };
        let shorthand = shorthand.map(|a| {
            let name = next(activation_keyword(a.kind));
            given.push(Given {
                name: name.clone(),
                span: a.span,
                explicit: false,
            });
            name
        });
        out.push(ItemNames {
            item: item_name,
            shorthand,
        });
    }
    // Defaults never collide with each other: each kind counts on its own.
    let mut first: HashMap<&str, &Given> = HashMap::new();
    for g in &given {
        let Some(earlier) = first.get(g.name.as_str()).copied() else {
            first.insert(&g.name, g);
            continue;
        };
        let name = shorten(&g.name);
        let d = match (earlier.explicit, g.explicit) {
            (true, true) => Diagnostic::new(
                Code::DuplicateName,
                g.span,
                format!("the layer name `{name}` is used twice"),
            )
            .with_secondary(earlier.span, "first defined here")
            .with_hint("names must be unique within their block; rename one of them"),
            (false, true) | (true, false) => {
                let (explicit, default) = if g.explicit { (g, earlier) } else { (earlier, g) };
                let kind = g.name.trim_end_matches(|c: char| c.is_ascii_digit());
                Diagnostic::new(Code::DefaultName,
                    explicit.span,
                    format!("the layer name `{name}` is also the default name of another item in this block"),
                )
                .with_secondary(default.span, format!("this item is named `{name}` by default"))
                .with_hint(format!(
                    "default names count the items of each kind in a block (`{kind}1`, `{kind}2`, ...); choose another name"
                ))
            }
            (false, false) => continue,
        };
        diags.push(d);
    }
    out
}

/// The items of a `shortcut { ... }` item; `None` for any other item.
fn shortcut_items(item: &ast::Layer) -> Option<&[ast::Layer]> {
    if let LayerKind::Shortcut { items } = &item.kind {
        Some(items)
    } else {
        None
    }
}

/// A shortcut is named by its place, `BLOCK.shortcut`: a `NAME:` on it is an error.
fn check_shortcut_unnamed(item: &ast::Layer, diags: &mut Diagnostics) {
    if let Some(n) = &item.name {
        diags.push(
            Diagnostic::new(
                Code::Shortcut,
                n.span,
                format!("a shortcut cannot be named (`{}:`)", shorten(&n.value)),
            )
            .with_hint("remove the name; the shortcut's items are named `BLOCK.shortcut.conv1`, ..."),
        );
    }
}

/// The activation shorthand written after an item, if any.
fn shorthand_of(item: &ast::Layer) -> Option<&ast::Activation> {
    match &item.kind {
        LayerKind::Conv { activation, .. }
        | LayerKind::Dense { activation, .. }
        | LayerKind::BatchNorm { activation, .. }
        | LayerKind::Residual { activation, .. } => activation.as_ref(),
        LayerKind::MaxPool { .. }
        | LayerKind::AvgPool { .. }
        | LayerKind::GlobalAvgPool
        | LayerKind::Flatten
        | LayerKind::Dropout { .. }
        | LayerKind::Activation(_)
        | LayerKind::Shortcut { .. } => None,
    }
}

/// The word default names start with; `None` for a shortcut, which is named by its
/// place.
fn kind_word(kind: &LayerKind) -> Option<&'static str> {
    Some(match kind {
        LayerKind::Conv { .. } => "conv",
        LayerKind::MaxPool { .. } => "maxpool",
        LayerKind::AvgPool { .. } | LayerKind::GlobalAvgPool => "avgpool",
        LayerKind::Flatten => "flatten",
        LayerKind::Dense { .. } => "dense",
        LayerKind::BatchNorm { .. } => "batchnorm",
        LayerKind::Dropout { .. } => "dropout",
        LayerKind::Activation(a) => activation_keyword(a.kind),
        LayerKind::Residual { .. } => "residual",
        LayerKind::Shortcut { .. } => return None,
    })
}

fn lower_activation(kind: ActivationKind) -> Pending {
    Pending::Activation(match kind {
        ActivationKind::Relu => ir::Activation::Relu,
        ActivationKind::Sigmoid => ir::Activation::Sigmoid,
        ActivationKind::Tanh => ir::Activation::Tanh,
        ActivationKind::Silu => ir::Activation::Silu,
        ActivationKind::Gelu => ir::Activation::Gelu,
        ActivationKind::Relu6 => ir::Activation::Relu6,
        ActivationKind::Hardswish => ir::Activation::Hardswish,
        ActivationKind::Hardsigmoid => ir::Activation::Hardsigmoid,
        ActivationKind::Softmax => return Pending::Softmax,
        ActivationKind::LeakyRelu(slope) => ir::Activation::LeakyRelu(slope.unwrap_or(0.01) as f32),
    })
}

/// The keyword of an activation word (also the prefix of its default name).
fn activation_keyword(kind: ActivationKind) -> &'static str {
    match kind {
        ActivationKind::Relu => "relu",
        ActivationKind::Sigmoid => "sigmoid",
        ActivationKind::Tanh => "tanh",
        ActivationKind::Softmax => "softmax",
        ActivationKind::LeakyRelu(_) => "leaky_relu",
        ActivationKind::Silu => "silu",
        ActivationKind::Gelu => "gelu",
        ActivationKind::Relu6 => "relu6",
        ActivationKind::Hardswish => "hardswish",
        ActivationKind::Hardsigmoid => "hardsigmoid",
    }
}

/// A layer's operation before its input shape is known: windows still need the
/// input size for `pad same` and the output arithmetic.
enum Pending {
    Conv { filters: usize, window: window::Spec },
    MaxPool(window::Spec),
    AvgPool(window::Spec),
    GlobalAvgPool,
    Flatten,
    Dense(ir::Dense),
    BatchNorm(ir::BatchNorm),
    Dropout(f32),
    Activation(ir::Activation),
    Softmax,
}

/// The operation of a plain layer (not a block), without its shape; `None` after
/// reporting an error.
fn lower_layer(layer: &ast::Layer, diags: &mut Diagnostics) -> Option<Pending> {
    match &layer.kind {
        LayerKind::Conv { filters, options, .. } => {
            let mut ok = true;
            if filters.value == 0 {
                diags.push(
                    Diagnostic::new(Code::Size, filters.span, "a conv layer needs at least 1 filter")
                        .with_hint("the number after `conv` is the number of output channels"),
                );
                ok = false;
            } else if filters.value as u128 > MAX_ELEMENTS {
                diags.push(Diagnostic::new(
                    Code::Size,
                    filters.span,
                    format!("{} filters are too many", filters.value),
                ));
                ok = false;
            }
            let window = window::lower(window::Kind::Conv, layer.keyword, None, options, diags);
            window.filter(|_| ok).map(|window| Pending::Conv {
                filters: filters.value as usize,
                window,
            })
        }
        LayerKind::MaxPool { kernel, options } => {
            window::lower(window::Kind::MaxPool, layer.keyword, Some(kernel), options, diags).map(Pending::MaxPool)
        }
        LayerKind::AvgPool { kernel, options } => {
            window::lower(window::Kind::AvgPool, layer.keyword, Some(kernel), options, diags).map(Pending::AvgPool)
        }
        LayerKind::GlobalAvgPool => Some(Pending::GlobalAvgPool),
        LayerKind::Flatten => Some(Pending::Flatten),
        LayerKind::Dense { units, bias_off, .. } => {
            let mut ok = true;
            if units.value == 0 || units.value as u128 > MAX_ELEMENTS {
                diags.push(
                    Diagnostic::new(
                        Code::Size,
                        units.span,
                        format!("a dense layer of {} units is not allowed", units.value),
                    )
                    .with_hint("the number after `dense` is the number of outputs, at least 1"),
                );
                ok = false;
            }
            for repeat in bias_off.iter().skip(1) {
                diags.push(
                    Diagnostic::new(Code::Repeated, *repeat, "`bias` is given twice")
                        .with_secondary(bias_off[0], "first given here")
                        .with_hint("each option of a dense layer may appear at most once"),
                );
                ok = false;
            }
            ok.then_some(Pending::Dense(ir::Dense {
                units: units.value as usize,
                bias: bias_off.is_empty(),
            }))
        }
        LayerKind::BatchNorm { options, .. } => lower_batchnorm(options, diags).map(Pending::BatchNorm),
        LayerKind::Dropout { p } => {
            if !(0.0..1.0).contains(&p.value) {
                diags.push(
                    Diagnostic::new(
                        Code::Range,
                        p.span,
                        format!("dropout {} is out of range", number(p.value)),
                    )
                    .with_hint("the drop probability P must satisfy 0 <= P < 1"),
                );
                return None;
            }
            if p.value as f32 >= 1.0 {
                diags.push(
                    Diagnostic::new(
                        Code::Range,
                        p.span,
                        format!("dropout {} is 1 in 32-bit floats", number(p.value)),
                    )
                    .with_label("would drop every value")
                    .with_hint("the drop probability P must satisfy 0 <= P < 1; 0.5 is usual"),
                );
                return None;
            }
            Some(Pending::Dropout(p.value as f32))
        }
        LayerKind::Activation(a) => Some(lower_activation(a.kind)),
        // Blocks are checked by `check_block` itself.
        LayerKind::Residual { .. } | LayerKind::Shortcut { .. } => None,
    }
}

/// `batchnorm [eps E] [momentum M]`: eps > 0 (also in 32-bit floats), momentum in
/// [0, 1], each at most once.
fn lower_batchnorm(options: &[ast::BatchNormOption], diags: &mut Diagnostics) -> Option<ir::BatchNorm> {
    let errors_before = diags.len();
    let mut bn = ir::BatchNorm {
        eps: 1e-5,
        momentum: 0.1,
    };
    let mut seen: Vec<(ast::BatchNormOptionKind, Span)> = Vec::new();
    for o in options {
        let word = match o.kind {
            ast::BatchNormOptionKind::Eps => "eps",
            ast::BatchNormOptionKind::Momentum => "momentum",
        };
        if let Some(&(_, first)) = seen.iter().find(|(k, _)| *k == o.kind) {
            diags.push(
                Diagnostic::new(Code::Repeated, o.span, format!("`{word}` is given twice"))
                    .with_secondary(first, "first given here")
                    .with_hint("each option of a batchnorm layer may appear at most once"),
            );
            continue;
        }
        seen.push((o.kind, o.span));
        let v = o.value.value;
        match o.kind {
            ast::BatchNormOptionKind::Eps => {
                if v as f32 <= 0.0 {
                    let what = if v > 0.0 {
                        "is 0 in 32-bit floats; it must be positive"
                    } else {
                        "must be positive"
                    };
                    diags.push(
                        Diagnostic::new(Code::Range, o.value.span, format!("batchnorm eps {} {what}", number(v)))
                            .with_hint("eps keeps the division away from zero; the default is 1e-5"),
                    );
                }
                bn.eps = v;
            }
            ast::BatchNormOptionKind::Momentum => {
                if !(0.0..=1.0).contains(&v) {
                    diags.push(
                        Diagnostic::new(
                            Code::Range,
                            o.value.span,
                            format!("batchnorm momentum {} is out of range", number(v)),
                        )
                        .with_hint(
                            "momentum is the running statistics' update weight, from 0 to 1; the default is 0.1",
                        ),
                    );
                }
                bn.momentum = v;
            }
        }
    }
    (diags.len() == errors_before).then_some(bn)
}

/// The span of a layer without its activation shorthand: `conv 6 kernel 5` of
/// `conv 6 kernel 5 relu`.
fn without_shorthand(layer: &ast::Layer) -> Span {
    let end = match &layer.kind {
        LayerKind::Conv {
            filters,
            options,
            activation: Some(_),
        } => options.last().map_or(filters.span.end, |o| o.span.end),
        LayerKind::Dense {
            units,
            bias_off,
            activation: Some(_),
        } => bias_off.last().map_or(units.span.end, |b| b.end),
        LayerKind::BatchNorm {
            options,
            activation: Some(_),
        } => options.last().map_or(layer.keyword.end, |o| o.span.end),
        LayerKind::Residual {
            close,
            activation: Some(_),
            ..
        } => close.end,
        LayerKind::Conv { activation: None, .. }
        | LayerKind::Dense { activation: None, .. }
        | LayerKind::BatchNorm { activation: None, .. }
        | LayerKind::Residual { activation: None, .. }
        | LayerKind::MaxPool { .. }
        | LayerKind::AvgPool { .. }
        | LayerKind::GlobalAvgPool
        | LayerKind::Flatten
        | LayerKind::Dropout { .. }
        | LayerKind::Activation(_)
        | LayerKind::Shortcut { .. } => layer.span.end,
    };
    Span::new(layer.span.start, end.max(layer.span.start))
}

/// Where a layer's errors point: its keyword, and the whole layer.
#[derive(Clone, Copy)]
struct Place {
    keyword: Span,
    whole: Span,
}

/// A leaky_relu slope must be a real negative slope factor, 0 or more.
fn check_activation(a: &ast::Activation, diags: &mut Diagnostics) {
    if let ActivationKind::LeakyRelu(Some(slope)) = a.kind {
        if slope < 0.0 {
            diags.push(
                Diagnostic::new(
                    Code::Range,
                    a.span,
                    format!("leaky_relu slope {} must be at least 0", number(slope)),
                )
                .with_hint("the slope multiplies negative inputs; 0.01 (the default) to 0.3 is usual"),
            );
        }
    }
}

/// `c·h·w` without overflow.
fn shape_len(shape: Shape) -> u128 {
    match shape {
        Shape::Image { c, h, w } => c as u128 * h as u128 * w as u128,
        Shape::Vector(n) => n as u128,
    }
}

/// The number of trainable parameters of an operation on `input` (a residual
/// block's: those of its layers), without overflow.
fn op_params(op: &ir::Op, input: Shape) -> u128 {
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
        ir::Op::MaxPool(_)
        | ir::Op::AvgPool(_)
        | ir::Op::GlobalAvgPool
        | ir::Op::Flatten
        | ir::Op::Dropout(_)
        | ir::Op::Activation(_)
        | ir::Op::Softmax => 0,
    }
}

/// `1, 2, 4, 8 or 16`: the common divisors of `a` and `b`.
fn common_divisors(a: usize, b: usize) -> String {
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
fn layer_output(
    name: &str,
    pending: &Pending,
    input: Shape,
    place: Place,
    diags: &mut Diagnostics,
) -> Option<(ir::Op, Shape)> {
    let needs_image = |diags: &mut Diagnostics, n: usize| {
        diags.push(
            Diagnostic::new(
                Code::InputKind,
                place.keyword,
                format!("{name} needs a CxHxW image input, but its input is a vector of {n}"),
            )
            .with_label(format!("input is {n}"))
            .with_hint("spatial layers must come before `flatten` and `dense`"),
        );
    };
    let needs_vector = |diags: &mut Diagnostics, what: &str, s: Shape| {
        diags.push(
            Diagnostic::new(
                Code::InputKind,
                place.keyword,
                format!("{name}: {what} needs a 1-D input, but its input is the image {s}"),
            )
            .with_label(format!("input is {s}"))
            .with_hint(format!(
                "add `flatten` before this layer (it makes {s} into {})",
                s.len()
            )),
        );
    };
    let (op, out) = match (pending, input) {
        (Pending::Conv { filters, window }, Shape::Image { c, h, w }) => {
            let g = window.groups;
            if c % g != 0 || filters % g != 0 {
                let what = match (c % g != 0, filters % g != 0) {
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
                        common_divisors(c, *filters)
                    )),
                );
                return None;
            }
            let (win, [oh, ow]) = window::resolve(name, window, h, w, place.whole, diags)?;
            let conv = ir::Conv {
                filters: *filters,
                window: win,
                dilation: window.dilation,
                groups: g,
                bias: window.bias,
            };
            (
                ir::Op::Conv(conv),
                Shape::Image {
                    c: *filters,
                    h: oh,
                    w: ow,
                },
            )
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
        (
            Pending::Conv { .. } | Pending::MaxPool(_) | Pending::AvgPool(_) | Pending::GlobalAvgPool,
            Shape::Vector(n),
        ) => {
            needs_image(diags, n);
            return None;
        }
        (Pending::Flatten, s) => (ir::Op::Flatten, Shape::Vector(s.len())),
        (Pending::Dense(d), Shape::Vector(_)) => (ir::Op::Dense(*d), Shape::Vector(d.units)),
        (Pending::Softmax, s @ Shape::Vector(_)) => (ir::Op::Softmax, s),
        (Pending::Dense(_), s @ Shape::Image { .. }) => {
            needs_vector(diags, "dense", s);
            return None;
        }
        (Pending::Softmax, s @ Shape::Image { .. }) => {
            needs_vector(diags, "softmax", s);
            return None;
        }
        (Pending::BatchNorm(bn), s) => (ir::Op::BatchNorm(*bn), s),
        (Pending::Dropout(p), s) => (ir::Op::Dropout(*p), s),
        (Pending::Activation(a), s) => (ir::Op::Activation(*a), s),
    };
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
    let params = op_params(&op, input);
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
    Some((op, out))
}

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
