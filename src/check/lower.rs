//! From the syntax tree's layer to what the checker knows of it before its shape
//! ([`Pending`]): options checked, defaults filled in, activations as layers.

use super::{number, window, MAX_ELEMENTS};
use crate::diag::{Code, Diagnostic, Diagnostics, Span};
use crate::ir;
use crate::syntax::ast::{self, ActivationKind, LayerKind};

pub(super) fn lower_activation(kind: ActivationKind) -> Pending {
    match kind {
        ActivationKind::Function(f) => Pending::Activation(f),
        ActivationKind::LeakyRelu(slope) => Pending::Activation(ir::Activation::LeakyRelu(
            slope.map_or(crate::activation::DEFAULT_SLOPE, |s| s as f32),
        )),
        ActivationKind::Softmax => Pending::Softmax,
    }
}

/// The keyword of an activation word (also the prefix of its default name).
pub(super) fn activation_keyword(kind: ActivationKind) -> &'static str {
    match kind {
        ActivationKind::Function(f) => f.keyword(),
        ActivationKind::LeakyRelu(_) => "leaky_relu",
        ActivationKind::Softmax => "softmax",
    }
}

/// A layer's operation before its input shape is known: windows still need the
/// input size for `pad same` and the output arithmetic.
pub(super) enum Pending {
    Conv {
        filters: usize,
        window: window::Spec,
    },
    MaxPool(window::Spec),
    AvgPool(window::Spec),
    GlobalAvgPool,
    Flatten,
    Dense(ir::Dense),
    BatchNorm(ir::BatchNorm),
    Dropout(f32),
    Activation(ir::Activation),
    Softmax,
    /// v3.
    ConvTranspose {
        filters: usize,
        window: window::Spec,
    },
    GlobalMaxPool,
    Upsample(ir::Upsample),
}

/// The operation of a plain layer (not a block), without its shape; `None` after
/// reporting an error.
pub(super) fn lower_layer(layer: &ast::Layer, diags: &mut Diagnostics) -> Option<Pending> {
    match &layer.kind {
        LayerKind::Conv { filters, options, .. } => {
            let ok = check_filters(filters, "conv", diags);
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
        LayerKind::Dense { units, bias_off, .. } => lower_dense(units, bias_off, diags).map(Pending::Dense),
        LayerKind::BatchNorm { options, .. } => lower_batchnorm(options, diags).map(Pending::BatchNorm),
        LayerKind::Dropout { p } => lower_dropout(p, diags).map(Pending::Dropout),
        LayerKind::Activation(a) => Some(lower_activation(a.kind)),
        LayerKind::ConvTranspose { filters, options, .. } => {
            let ok = check_filters(filters, "convtranspose", diags);
            let window = window::lower(window::Kind::ConvTranspose, layer.keyword, None, options, diags);
            window.filter(|_| ok).map(|window| Pending::ConvTranspose {
                filters: filters.value as usize,
                window,
            })
        }
        LayerKind::GlobalMaxPool => Some(Pending::GlobalMaxPool),
        LayerKind::Upsample { factor, bilinear } => lower_upsample(factor, *bilinear, diags).map(Pending::Upsample),
        // Blocks and joins are checked by `check_block` itself.
        LayerKind::Residual { .. }
        | LayerKind::Shortcut { .. }
        | LayerKind::Concat(_)
        | LayerKind::Add { .. }
        | LayerKind::Mul { .. }
        | LayerKind::From(_) => None,
    }
}

/// `dense N [bias off]`: N from 1 to the element limit, `bias off` at most once.
fn lower_dense(units: &ast::Spanned<u64>, bias_off: &[Span], diags: &mut Diagnostics) -> Option<ir::Dense> {
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
    ok.then_some(ir::Dense {
        units: units.value as usize,
        bias: bias_off.is_empty(),
    })
}

/// `dropout P`: 0 <= P < 1, also once rounded to 32-bit floats.
fn lower_dropout(p: &ast::Spanned<f64>, diags: &mut Diagnostics) -> Option<f32> {
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
    Some(p.value as f32)
}

/// `upsample F|FHxFW [nearest|bilinear]`: each factor from 1 to the element limit.
fn lower_upsample(factor: &ast::Spanned<Vec<u64>>, bilinear: bool, diags: &mut Diagnostics) -> Option<ir::Upsample> {
    let f = match factor.value.as_slice() {
        [f] => [*f, *f],
        [fh, fw] => [*fh, *fw],
        _ => {
            diags.push(
                Diagnostic::new(Code::Size, factor.span, "an upsampling factor is `F` or `FHxFW`")
                    .with_hint("`upsample 2` doubles the height and the width; `upsample 2x1` only the height"),
            );
            return None;
        }
    };
    if f.contains(&0) || f.iter().any(|&v| v as u128 > MAX_ELEMENTS) {
        diags.push(
            Diagnostic::new(
                Code::Size,
                factor.span,
                format!(
                    "upsample {} is not allowed",
                    factor.value.iter().map(u64::to_string).collect::<Vec<_>>().join("x")
                ),
            )
            .with_hint("upsampling factors are whole numbers, at least 1"),
        );
        return None;
    }
    Some(ir::Upsample {
        factor: f.map(|v| v as usize),
        bilinear,
    })
}

/// A conv or convtranspose layer's filter count: 1 or more, within the limits.
fn check_filters(filters: &ast::Spanned<u64>, word: &str, diags: &mut Diagnostics) -> bool {
    if filters.value == 0 {
        diags.push(
            Diagnostic::new(
                Code::Size,
                filters.span,
                format!("a {word} layer needs at least 1 filter"),
            )
            .with_hint(format!("the number after `{word}` is the number of output channels")),
        );
        false
    } else if filters.value as u128 > MAX_ELEMENTS {
        diags.push(Diagnostic::new(
            Code::Size,
            filters.span,
            format!("{} filters are too many", filters.value),
        ));
        false
    } else {
        true
    }
}

/// `batchnorm [eps E] [momentum M]`: eps > 0 (also in 32-bit floats), momentum in
/// [0, 1], each at most once.
pub(super) fn lower_batchnorm(options: &[ast::BatchNormOption], diags: &mut Diagnostics) -> Option<ir::BatchNorm> {
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
pub(super) fn without_shorthand(layer: &ast::Layer) -> Span {
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
        LayerKind::ConvTranspose {
            filters,
            options,
            activation: Some(_),
        } => options.last().map_or(filters.span.end, |o| o.span.end),
        LayerKind::Add {
            other,
            activation: Some(_),
        }
        | LayerKind::Mul {
            other,
            activation: Some(_),
        } => other.span.end,
        LayerKind::ConvTranspose { activation: None, .. }
        | LayerKind::Add { activation: None, .. }
        | LayerKind::Mul { activation: None, .. }
        | LayerKind::GlobalMaxPool
        | LayerKind::Concat(_)
        | LayerKind::From(_)
        | LayerKind::Upsample { .. }
        | LayerKind::Conv { activation: None, .. }
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
pub(super) struct Place {
    pub(super) keyword: Span,
    pub(super) whole: Span,
}

/// A leaky_relu slope must be a real negative slope factor, 0 or more.
pub(super) fn check_activation(a: &ast::Activation, diags: &mut Diagnostics) {
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
