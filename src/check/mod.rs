//! AST to IR: fills in defaults and names, computes every layer's shape, and
//! collects every error of the file (not just the first).

pub mod shape;
mod train;
mod window;

use crate::diag::{shorten, Diagnostic, Diagnostics, Span};
use crate::ir::{self, Shape};
use crate::syntax::ast::{self, ActivationKind, LayerKind};
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
                Diagnostic::error(
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
    let input = check_input(&model.input, diags);
    let mut namer = Namer::default();
    let mut layers: Vec<ir::Layer> = Vec::new();
    // `None` once a layer's shape could not be computed: later shapes are unknown,
    // but their other mistakes are still reported.
    let mut current = input;
    for layer in &model.layers {
        let name = namer.name(layer, diags);
        let (pending, activation) = lower_layer(layer, diags);
        // The shorthand is its own layer; its errors point at the activation word.
        let shorthand = activation.map(|a| {
            check_activation(a, diags);
            (
                namer.activation_name(a, diags),
                Pending::Ready(lower_activation(a.kind)),
                Place {
                    keyword: a.span,
                    whole: a.span,
                },
            )
        });
        if let LayerKind::Activation(a) = &layer.kind {
            check_activation(a, diags);
        }
        let Some(pending) = pending else {
            current = None;
            continue;
        };
        let place = Place {
            keyword: layer.keyword,
            whole: without_shorthand(layer),
        };
        for (name, pending, place) in std::iter::once((name, pending, place)).chain(shorthand) {
            let Some(input) = current else { break };
            current = layer_output(&shorten(&name), &pending, input, place, diags).map(|(op, output)| {
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
    // Each layer's count is at most MAX_ELEMENTS (checked in `layer_output`), so
    // `Param::len` cannot overflow here.
    let params: u128 = layers.iter().flat_map(|l| l.params()).map(|p| p.len() as u128).sum();
    if params > MAX_ELEMENTS {
        diags.push(
            Diagnostic::error(
                model.name.span,
                format!(
                    "`{}` has {params} parameters, more than the limit of {MAX_ELEMENTS}",
                    shorten(&model.name.value)
                ),
            )
            .with_hint("use fewer or smaller layers"),
        );
    }
    let output = current;
    let train = model
        .train
        .as_ref()
        .and_then(|t| train::check_train(t, &layers, output, diags));
    if diags.len() > errors_before {
        return None;
    }
    Some(ir::Model {
        normalize: None,
        name: model.name.value.clone(),
        input: input?,
        layers,
        train,
    })
}

fn check_input(input: &ast::Spanned<Vec<u64>>, diags: &mut Diagnostics) -> Option<Shape> {
    let dims = &input.value;
    if dims.contains(&0) {
        diags.push(
            Diagnostic::error(input.span, "the input has a zero dimension")
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
                Diagnostic::error(input.span, "an image input needs channels, height and width")
                    .with_hint(format!("write `input 1x{h}x{w}` for a grayscale image")),
            );
            return None;
        }
        _ => {
            diags.push(
                Diagnostic::error(
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
            Diagnostic::error(
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

/// Default layer names: kind and 1-based position among the layers of that kind.
#[derive(Default)]
struct Namer {
    counts: HashMap<&'static str, usize>,
    /// Every name given so far: where, and whether the user wrote it.
    used: HashMap<String, (Span, bool)>,
}

impl Namer {
    fn next(&mut self, kind: &'static str) -> String {
        let n = self.counts.entry(kind).or_insert(0);
        *n += 1;
        format!("{kind}{n}")
    }

    fn name(&mut self, layer: &ast::Layer, diags: &mut Diagnostics) -> String {
        let kind = kind_word(&layer.kind);
        let default = self.next(kind);
        let (name, span, named) = match &layer.name {
            Some(n) => (n.value.clone(), n.span, true),
            None => (default, layer.keyword, false),
        };
        if let Some(&(_, earlier_named)) = self.used.get(&name) {
            let name = shorten(&name);
            let (message, hint) = match (named, earlier_named) {
                (true, true) => (
                    format!("the layer name `{name}` is used twice"),
                    "layer names must be unique within a model; rename one of them".to_string(),
                ),
                (true, false) => (
                    format!("the layer name `{name}` is already the default name of an earlier layer"),
                    format!("default names count layers of each kind (`{kind}1`, `{kind}2`, ...); choose another name"),
                ),
                (false, _) => (
                    format!("this layer is named `{name}` by default, but a named layer already uses `{name}`"),
                    format!("rename the layer called `{name}`"),
                ),
            };
            diags.push(Diagnostic::error(span, message).with_hint(hint));
        }
        self.used.insert(name.clone(), (span, named));
        name
    }

    /// The default name of an activation shorthand (`dense 10 relu` makes `relu1`).
    fn activation_name(&mut self, a: &ast::Activation, diags: &mut Diagnostics) -> String {
        let name = self.next(activation_keyword(a.kind));
        if let Some(&(_, true)) = self.used.get(&name) {
            diags.push(
                Diagnostic::error(
                    a.span,
                    format!("this activation is named `{name}` by default, but a named layer already uses `{name}`"),
                )
                .with_hint(format!("rename the layer called `{name}`")),
            );
        }
        self.used.insert(name.clone(), (a.span, false));
        name
    }
}

fn kind_word(kind: &LayerKind) -> &'static str {
    match kind {
        LayerKind::Conv { .. } => "conv",
        LayerKind::MaxPool { .. } => "maxpool",
        LayerKind::AvgPool { .. } | LayerKind::GlobalAvgPool => "avgpool",
        LayerKind::Flatten => "flatten",
        LayerKind::Dense { .. } => "dense",
        LayerKind::Dropout { .. } => "dropout",
        LayerKind::Activation(a) => activation_keyword(a.kind),
    }
}

fn lower_activation(kind: ActivationKind) -> ir::Op {
    ir::Op::Activation(match kind {
        ActivationKind::Relu => ir::Activation::Relu,
        ActivationKind::Sigmoid => ir::Activation::Sigmoid,
        ActivationKind::Tanh => ir::Activation::Tanh,
        ActivationKind::Softmax => return ir::Op::Softmax,
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
    }
}

/// A layer's operation before its input shape is known: windows still need the
/// input size for `pad same` and the output arithmetic.
enum Pending {
    Conv { filters: usize, window: window::Spec },
    MaxPool(window::Spec),
    AvgPool(window::Spec),
    Ready(ir::Op),
}

/// The layer's operation (without its shape), and its activation shorthand.
fn lower_layer<'a>(layer: &'a ast::Layer, diags: &mut Diagnostics) -> (Option<Pending>, Option<&'a ast::Activation>) {
    match &layer.kind {
        LayerKind::Conv {
            filters,
            options,
            activation,
        } => {
            let mut ok = true;
            if filters.value == 0 {
                diags.push(
                    Diagnostic::error(filters.span, "a conv layer needs at least 1 filter")
                        .with_hint("the number after `conv` is the number of output channels"),
                );
                ok = false;
            } else if filters.value as u128 > MAX_ELEMENTS {
                diags.push(Diagnostic::error(
                    filters.span,
                    format!("{} filters are too many", filters.value),
                ));
                ok = false;
            }
            let window = window::lower(window::Kind::Conv, layer.keyword, None, options, diags);
            let op = window.filter(|_| ok).map(|window| Pending::Conv {
                filters: filters.value as usize,
                window,
            });
            (op, activation.as_ref())
        }
        LayerKind::MaxPool { kernel, options } => (
            window::lower(window::Kind::MaxPool, layer.keyword, Some(kernel), options, diags).map(Pending::MaxPool),
            None,
        ),
        LayerKind::AvgPool { kernel, options } => (
            window::lower(window::Kind::AvgPool, layer.keyword, Some(kernel), options, diags).map(Pending::AvgPool),
            None,
        ),
        LayerKind::GlobalAvgPool => (Some(Pending::Ready(ir::Op::GlobalAvgPool)), None),
        LayerKind::Flatten => (Some(Pending::Ready(ir::Op::Flatten)), None),
        LayerKind::Dense { units, activation } => {
            if units.value == 0 || units.value as u128 > MAX_ELEMENTS {
                diags.push(
                    Diagnostic::error(
                        units.span,
                        format!("a dense layer of {} units is not allowed", units.value),
                    )
                    .with_hint("the number after `dense` is the number of outputs, at least 1"),
                );
                return (None, activation.as_ref());
            }
            let dense = ir::Dense {
                units: units.value as usize,
                bias: true,
            };
            (Some(Pending::Ready(ir::Op::Dense(dense))), activation.as_ref())
        }
        LayerKind::Dropout { p } => {
            if !(0.0..1.0).contains(&p.value) {
                diags.push(
                    Diagnostic::error(p.span, format!("dropout {} is out of range", number(p.value)))
                        .with_hint("the drop probability P must satisfy 0 <= P < 1"),
                );
                return (None, None);
            }
            if p.value as f32 >= 1.0 {
                diags.push(
                    Diagnostic::error(p.span, format!("dropout {} is 1 in 32-bit floats", number(p.value)))
                        .with_label("would drop every value")
                        .with_hint("the drop probability P must satisfy 0 <= P < 1; 0.5 is usual"),
                );
                return (None, None);
            }
            (Some(Pending::Ready(ir::Op::Dropout(p.value as f32))), None)
        }
        LayerKind::Activation(a) => (Some(Pending::Ready(lower_activation(a.kind))), None),
    }
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
            activation: Some(_),
        } => units.span.end,
        _ => layer.span.end,
    };
    Span::new(layer.span.start, end)
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
                Diagnostic::error(a.span, format!("leaky_relu slope {} must be at least 0", number(slope)))
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

/// The number of parameters of an operation on `input`, without overflow.
fn op_params(op: &ir::Op, input: Shape) -> u128 {
    match (op, input) {
        (ir::Op::Conv(c), Shape::Image { c: channels, .. }) => {
            let f = c.filters as u128;
            f * channels as u128 * c.window.size[0] as u128 * c.window.size[1] as u128 + f
        }
        (ir::Op::Dense(d), input) => d.units as u128 * shape_len(input) + d.units as u128,
        _ => 0,
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
    let (op, out) = match (pending, input) {
        (Pending::Conv { filters, window }, Shape::Image { h, w, .. }) => {
            let (window, [oh, ow]) = window::resolve(name, window, h, w, place.whole, diags)?;
            let conv = ir::Conv {
                filters: *filters,
                window,
                dilation: [1, 1],
                groups: 1,
                bias: true,
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
        (Pending::MaxPool(spec) | Pending::AvgPool(spec), Shape::Image { c, h, w }) => {
            let (window, [oh, ow]) = window::resolve(name, spec, h, w, place.whole, diags)?;
            let op = match pending {
                Pending::MaxPool(_) => ir::Op::MaxPool(window),
                _ => ir::Op::AvgPool(window),
            };
            (op, Shape::Image { c, h: oh, w: ow })
        }
        (Pending::Ready(ir::Op::GlobalAvgPool), Shape::Image { c, .. }) => {
            (ir::Op::GlobalAvgPool, Shape::Image { c, h: 1, w: 1 })
        }
        (
            Pending::Conv { .. } | Pending::MaxPool(_) | Pending::AvgPool(_) | Pending::Ready(ir::Op::GlobalAvgPool),
            Shape::Vector(n),
        ) => {
            diags.push(
                Diagnostic::error(
                    place.keyword,
                    format!("{name} needs a CxHxW image input, but its input is a vector of {n}"),
                )
                .with_label(format!("input is {n}"))
                .with_hint("spatial layers must come before `flatten` and `dense`"),
            );
            return None;
        }
        (Pending::Ready(op), s) => {
            let out = match (op, s) {
                (ir::Op::Flatten, s) => Shape::Vector(s.len()),
                (ir::Op::Dense(d), Shape::Vector(_)) => Shape::Vector(d.units),
                (ir::Op::Dense(_) | ir::Op::Softmax, Shape::Image { .. }) => {
                    let what = if matches!(op, ir::Op::Dense(_)) {
                        "dense"
                    } else {
                        "softmax"
                    };
                    diags.push(
                        Diagnostic::error(
                            place.keyword,
                            format!("{name}: {what} needs a 1-D input, but its input is the image {s}"),
                        )
                        .with_label(format!("input is {s}"))
                        .with_hint(format!(
                            "add `flatten` before this layer (it makes {s} into {})",
                            s.len()
                        )),
                    );
                    return None;
                }
                (_, s) => s,
            };
            (op.clone(), out)
        }
    };
    if shape_len(out) > MAX_ELEMENTS {
        diags.push(
            Diagnostic::error(
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
            Diagnostic::error(
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
