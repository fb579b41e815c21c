//! Text to AST: the pest grammar in `grammar/cnn.pest`, then one `consume_*`
//! function per rule that turns a parse tree node into an AST node with spans.

pub mod ast;
mod braces;
mod hints;
mod keywords;

pub use keywords::{is_keyword, KEYWORDS};

use crate::diag::{did_you_mean, shorten, Code, Diagnostic, Span};
use ast::*;
use pest::iterators::Pair;
use pest::Parser as _;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/cnn.pest"]
struct CnnParser;

type Node<'i> = Pair<'i, Rule>;

/// Parses a whole `.cnn` text. A syntax error stops the parse; it is reported at the
/// first word the grammar could not accept, with the words it expected there.
pub fn parse(source: &str) -> Result<File, Diagnostic> {
    scan_blocks(source)?;
    let mut pairs = CnnParser::parse(Rule::file, source).map_err(|e| syntax_error(source, e))?;
    let file = pairs.next().expect("the file rule always yields one pair");
    let mut models = Vec::new();
    for pair in file.into_inner() {
        if pair.as_rule() == Rule::model {
            models.push(consume_model(pair)?);
        }
    }
    Ok(File { models })
}

/// Blocks nest at most this deep (a model's braces and a train block count): the
/// parser and the checker recurse once per level.
pub const MAX_NESTING: usize = 64;

/// Before parsing: a file with nothing but comments and whitespace has no model,
/// and blocks nested deeper than [`MAX_NESTING`] are refused (the parser would
/// otherwise recurse without bound on `residual { residual { ...`).
fn scan_blocks(source: &str) -> Result<(), Diagnostic> {
    let bytes = source.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    let mut content = false;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => match source[i + 2..].find("*/") {
                Some(n) => {
                    i += n + 4;
                    continue;
                }
                // An unclosed comment is the parser's to report.
                None => return Ok(()),
            },
            b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Diagnostic::new(
                        Code::TooDeep,
                        Span::new(i, i + 1),
                        format!("blocks are nested more than {MAX_NESTING} deep"),
                    )
                    .with_hint(
                        "residual blocks rarely need more than a few levels; write the layers one after another",
                    ));
                }
            }
            b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        content |= !bytes[i].is_ascii_whitespace();
        i += 1;
    }
    if !content {
        let end = source.trim_end().len();
        return Err(
            Diagnostic::new(Code::NoModel, Span::new(end, end), "this file has no model")
                .with_hint("a .cnn file holds one or more models: `model NAME { input ... layers ... }`"),
        );
    }
    Ok(())
}

fn consume_model(pair: Node) -> Result<Model, Diagnostic> {
    let span = Span::from(pair.as_span());
    let mut inner = pair.into_inner();
    inner.next(); // kw_model
    let name = spanned_str(inner.next().expect("model name"));
    inner.next(); // open
    let (input, normalize) = consume_input(inner.next().expect("input"))?;
    let mut layers = Vec::new();
    let mut train = None;
    for p in inner {
        match p.as_rule() {
            Rule::layer => layers.push(consume_layer(p)?),
            Rule::train => train = Some(consume_train(p)?),
            _ => {}
        }
    }
    Ok(Model {
        name,
        input,
        normalize,
        layers,
        train,
        span,
    })
}

fn consume_input(pair: Node) -> Result<(Spanned<Vec<u64>>, Option<Normalize>), Diagnostic> {
    let mut inner = pair.into_inner();
    inner.next(); // kw_input
    let size = consume_size(inner.next().expect("input size"))?;
    let normalize = inner.next().map(consume_normalize).transpose()?;
    Ok((size, normalize))
}

fn consume_normalize(pair: Node) -> Result<Normalize, Diagnostic> {
    let span = Span::from(pair.as_span());
    let mut mean = Vec::new();
    let mut std = Vec::new();
    let mut mean_keyword = span;
    let mut std_keyword = span;
    let mut in_std = false;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::kw_mean => mean_keyword = Span::from(p.as_span()),
            Rule::kw_std => {
                std_keyword = Span::from(p.as_span());
                in_std = true;
            }
            Rule::number if in_std => std.push(consume_number(p)?),
            Rule::number => mean.push(consume_number(p)?),
            _ => {} // kw_normalize
        }
    }
    Ok(Normalize {
        mean,
        std,
        mean_keyword,
        std_keyword,
        span,
    })
}

fn consume_layer(pair: Node) -> Result<Layer, Diagnostic> {
    let span = Span::from(pair.as_span());
    let mut name = None;
    let mut body = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::layer_name => name = Some(spanned_str(p)),
            _ => body = Some(p),
        }
    }
    let body = body.expect("layer body");
    let rule = body.as_rule();
    let body_span = Span::from(body.as_span());
    let mut inner = body.into_inner().peekable();
    let keyword = match rule {
        Rule::activation => body_span,
        _ => Span::from(inner.next().expect("layer keyword").as_span()),
    };
    let kind = match rule {
        Rule::conv | Rule::convtranspose => consume_conv(rule, inner)?,
        Rule::maxpool | Rule::avgpool => consume_pool(rule, inner)?,
        Rule::flatten => LayerKind::Flatten,
        Rule::dense => consume_dense(inner)?,
        Rule::batchnorm => consume_batchnorm(inner)?,
        Rule::residual => consume_residual(body_span, inner)?,
        Rule::shortcut => LayerKind::Shortcut {
            items: inner
                .filter(|p| p.as_rule() == Rule::layer)
                .map(consume_layer)
                .collect::<Result<_, _>>()?,
        },
        Rule::concat => LayerKind::Concat(inner.map(reference).collect()),
        Rule::add | Rule::mul => {
            let other = reference(inner.next().expect("reference"));
            let activation = inner.next().map(consume_activation).transpose()?;
            if rule == Rule::add {
                LayerKind::Add { other, activation }
            } else {
                LayerKind::Mul { other, activation }
            }
        }
        Rule::from => LayerKind::From(reference(inner.next().expect("reference"))),
        Rule::upsample => LayerKind::Upsample {
            factor: consume_size(inner.next().expect("factor"))?,
            bilinear: inner.next().is_some_and(|m| m.as_rule() == Rule::kw_bilinear),
        },
        Rule::dropout => LayerKind::Dropout {
            p: consume_number(inner.next().expect("dropout rate"))?,
        },
        Rule::activation => LayerKind::Activation(consume_activation_parts(body_span, inner.collect())?),
        r => unreachable!("layer body {r:?}"),
    };
    Ok(Layer {
        name,
        kind,
        keyword,
        span,
    })
}

/// `conv|convtranspose N [window options] [activation]`.
fn consume_conv<'i>(rule: Rule, mut inner: impl Iterator<Item = Node<'i>>) -> Result<LayerKind, Diagnostic> {
    let filters = consume_int(inner.next().expect("filters"))?;
    let (options, activation) = consume_window_tail(inner)?;
    Ok(if rule == Rule::conv {
        LayerKind::Conv {
            filters,
            options,
            activation,
        }
    } else {
        LayerKind::ConvTranspose {
            filters,
            options,
            activation,
        }
    })
}

/// `maxpool|avgpool global` or `maxpool|avgpool SIZE [window options]`.
fn consume_pool<'i>(rule: Rule, mut inner: impl Iterator<Item = Node<'i>>) -> Result<LayerKind, Diagnostic> {
    let first = inner.next().expect("pool size");
    let max = rule == Rule::maxpool;
    if first.as_rule() == Rule::kw_global {
        return Ok(if max {
            LayerKind::GlobalMaxPool
        } else {
            LayerKind::GlobalAvgPool
        });
    }
    let kernel = consume_size(first)?;
    let (options, _) = consume_window_tail(inner)?;
    Ok(if max {
        LayerKind::MaxPool { kernel, options }
    } else {
        LayerKind::AvgPool { kernel, options }
    })
}

/// `dense N [bias off]... [activation]`.
fn consume_dense<'i>(mut inner: impl Iterator<Item = Node<'i>>) -> Result<LayerKind, Diagnostic> {
    let units = consume_int(inner.next().expect("units"))?;
    let mut bias_off = Vec::new();
    let mut activation = None;
    for p in inner {
        match p.as_rule() {
            Rule::bias_option => bias_off.push(Span::from(p.as_span())),
            _ => activation = Some(consume_activation(p)?),
        }
    }
    Ok(LayerKind::Dense {
        units,
        bias_off,
        activation,
    })
}

/// `batchnorm [eps E | momentum M]... [activation]`.
fn consume_batchnorm<'i>(inner: impl Iterator<Item = Node<'i>>) -> Result<LayerKind, Diagnostic> {
    let mut options = Vec::new();
    let mut activation = None;
    for p in inner {
        match p.as_rule() {
            Rule::batchnorm_option => {
                let span = Span::from(p.as_span());
                let mut parts = p.into_inner();
                let kind = match parts.next().expect("option keyword").as_rule() {
                    Rule::kw_eps => BatchNormOptionKind::Eps,
                    _ => BatchNormOptionKind::Momentum,
                };
                let value = consume_number(parts.next().expect("option value"))?;
                options.push(BatchNormOption { kind, value, span });
            }
            _ => activation = Some(consume_activation(p)?),
        }
    }
    Ok(LayerKind::BatchNorm { options, activation })
}

/// `residual { layers } [activation]`, keeping the closing brace's span.
fn consume_residual<'i>(body_span: Span, inner: impl Iterator<Item = Node<'i>>) -> Result<LayerKind, Diagnostic> {
    let mut items = Vec::new();
    let mut close = body_span;
    let mut activation = None;
    for p in inner {
        match p.as_rule() {
            Rule::layer => items.push(consume_layer(p)?),
            Rule::close => close = Span::from(p.as_span()),
            Rule::activation => activation = Some(consume_activation(p)?),
            _ => {} // open
        }
    }
    Ok(LayerKind::Residual {
        items,
        close,
        activation,
    })
}

type WindowTail = (Vec<WindowOption>, Option<Activation>);

fn consume_window_tail<'i>(inner: impl Iterator<Item = Node<'i>>) -> Result<WindowTail, Diagnostic> {
    let mut options = Vec::new();
    let mut activation = None;
    for p in inner {
        match p.as_rule() {
            Rule::window_option => options.push(consume_window_option(p)?),
            Rule::activation => activation = Some(consume_activation(p)?),
            r => unreachable!("window tail {r:?}"),
        }
    }
    Ok((options, activation))
}

fn consume_window_option(pair: Node) -> Result<WindowOption, Diagnostic> {
    let span = Span::from(pair.as_span());
    let option = pair.into_inner().next().expect("window option");
    let rule = option.as_rule();
    let mut inner = option.into_inner();
    inner.next(); // the option's keyword
    let kind = match rule {
        Rule::kernel_option => WindowOptionKind::Size(consume_size(inner.next().expect("size"))?),
        Rule::stride_option => WindowOptionKind::Stride(consume_size(inner.next().expect("size"))?),
        Rule::dilation_option => WindowOptionKind::Dilation(consume_size(inner.next().expect("size"))?),
        Rule::groups_option => WindowOptionKind::Groups(consume_int(inner.next().expect("groups"))?),
        Rule::bias_option => WindowOptionKind::BiasOff,
        Rule::output_pad_option => WindowOptionKind::OutputPad(consume_size(inner.next().expect("size"))?),
        Rule::round_option => match inner.next().expect("floor|ceil").as_rule() {
            Rule::kw_floor => WindowOptionKind::Round(Rounding::Floor),
            _ => WindowOptionKind::Round(Rounding::Ceil),
        },
        Rule::pad_option => {
            let first = inner.next().expect("padding");
            let padding = match first.as_rule() {
                Rule::kw_same => Padding::Same,
                Rule::kw_valid => Padding::Valid,
                Rule::size => Padding::Size(consume_size(first)?),
                _ => {
                    let mut sides = Vec::new();
                    for side in std::iter::once(first).chain(inner) {
                        let mut parts = side.into_inner();
                        let which = match parts.next().expect("side").as_rule() {
                            Rule::kw_top => Side::Top,
                            Rule::kw_bottom => Side::Bottom,
                            Rule::kw_left => Side::Left,
                            _ => Side::Right,
                        };
                        sides.push((which, consume_int(parts.next().expect("amount"))?));
                    }
                    Padding::Sides(sides)
                }
            };
            WindowOptionKind::Pad(padding)
        }
        r => unreachable!("window option {r:?}"),
    };
    Ok(WindowOption { kind, span })
}

fn consume_activation(pair: Node) -> Result<Activation, Diagnostic> {
    let span = Span::from(pair.as_span());
    consume_activation_parts(span, pair.into_inner().collect())
}

fn consume_activation_parts(span: Span, parts: Vec<Node>) -> Result<Activation, Diagnostic> {
    let mut parts = parts.into_iter();
    let word = parts.next().expect("activation keyword");
    let kind = match (word.as_rule(), word.as_str()) {
        (Rule::kw_leaky_relu, _) => {
            let slope = parts.next().map(consume_number).transpose()?;
            ActivationKind::LeakyRelu(slope.map(|s| s.value))
        }
        (_, "softmax") => ActivationKind::Softmax,
        (_, text) => match crate::activation::Activation::from_word(text, None) {
            Some(f) => ActivationKind::Function(f),
            // A word in the grammar's `activation_word` without its row in the
            // activation table: an error, not a panic, should the two disagree.
            None => {
                return Err(Diagnostic::new(
                    Code::Syntax,
                    span,
                    format!("`{text}` is in the grammar but not among the activations (a cnnc bug)"),
                ))
            }
        },
    };
    Ok(Activation { kind, span })
}

fn consume_train(pair: Node) -> Result<Train, Diagnostic> {
    let span = Span::from(pair.as_span());
    let mut inner = pair.into_inner();
    let keyword = Span::from(inner.next().expect("kw_train").as_span());
    let items = inner
        .filter(|p| p.as_rule() == Rule::train_item)
        .map(consume_train_item)
        .collect::<Result<_, _>>()?;
    Ok(Train { items, span, keyword })
}

fn consume_train_item(pair: Node) -> Result<TrainItem, Diagnostic> {
    let span = Span::from(pair.as_span());
    let item = pair.into_inner().next().expect("train item");
    let rule = item.as_rule();
    let mut inner = item.into_inner();
    inner.next(); // the item's keyword
    let mut value = || inner.next().expect("train item value");
    let kind = match rule {
        Rule::loss => {
            let kind = match value().as_rule() {
                Rule::kw_cross_entropy => LossKind::CrossEntropy,
                Rule::kw_mse => LossKind::Mse,
                _ => LossKind::BinaryCrossEntropy,
            };
            let mut options = LossOptions::default();
            for option in inner {
                let span = Span::from(option.as_span());
                let option = option.into_inner().next().expect("loss option");
                let rule = option.as_rule();
                let value = option.into_inner().nth(1).expect("loss option value");
                match rule {
                    Rule::smoothing if options.smoothing.is_some() => options.repeated.push(("smoothing", span)),
                    Rule::smoothing => options.smoothing = Some(consume_number(value)?),
                    _ if options.ignore.is_some() => options.repeated.push(("ignore", span)),
                    _ => options.ignore = Some(consume_int(value)?),
                }
            }
            TrainItemKind::Loss(kind, options)
        }
        Rule::optimizer => {
            let kind = match value().as_rule() {
                Rule::kw_sgd => OptimizerKind::Sgd,
                Rule::kw_adam => OptimizerKind::Adam,
                _ => OptimizerKind::AdamW,
            };
            let mut options = Vec::new();
            for option in inner {
                let mut parts = option.into_inner();
                let name = spanned_str(parts.next().expect("option name"));
                let value = parts.next().map(consume_number).transpose()?;
                options.push(OptimizerOption { name, value });
            }
            TrainItemKind::Optimizer { kind, options }
        }
        Rule::weight_decay => TrainItemKind::WeightDecay(consume_number(value())?),
        Rule::schedule => {
            let which = value();
            match which.as_rule() {
                Rule::kw_step => {
                    let every = consume_int(value())?;
                    value(); // kw_gamma
                    let gamma = consume_number(value())?;
                    TrainItemKind::Schedule(Schedule::Step { every, gamma })
                }
                Rule::kw_exponential => TrainItemKind::Schedule(Schedule::Exponential {
                    gamma: consume_number(value())?,
                }),
                _ => {
                    let min = match inner.next() {
                        Some(_kw_min) => Some(consume_number(inner.next().expect("min value"))?),
                        None => None,
                    };
                    TrainItemKind::Schedule(Schedule::Cosine { min })
                }
            }
        }
        Rule::batch => TrainItemKind::Batch(consume_int(value())?),
        Rule::epochs => TrainItemKind::Epochs(consume_int(value())?),
        Rule::validation => TrainItemKind::Validation(consume_number(value())?),
        Rule::seed => TrainItemKind::Seed(consume_int(value())?),
        Rule::augment => {
            let mut augmentations = vec![value()];
            augmentations.extend(inner);
            TrainItemKind::Augment(
                augmentations
                    .into_iter()
                    .map(consume_augmentation)
                    .collect::<Result<_, _>>()?,
            )
        }
        Rule::clip_grad_norm => TrainItemKind::ClipGradNorm(consume_number(value())?),
        Rule::warmup => {
            let epochs = consume_int(value())?;
            let from = match inner.next() {
                Some(_) => Some(consume_number(inner.next().expect("warmup's from value"))?),
                None => None,
            };
            TrainItemKind::Warmup { epochs, from }
        }
        Rule::early_stop => TrainItemKind::EarlyStop(consume_int(value())?),
        Rule::freeze => {
            let mut names = vec![spanned_str(value())];
            names.extend(inner.map(spanned_str));
            TrainItemKind::Freeze(names)
        }
        r => unreachable!("train item {r:?}"),
    };
    Ok(TrainItem { kind, span })
}

fn consume_augmentation(pair: Node) -> Result<Augmentation, Diagnostic> {
    let span = Span::from(pair.as_span());
    let mut parts = pair.into_inner();
    let kind = match parts.next().expect("augmentation keyword").as_rule() {
        Rule::kw_crop => AugmentationKind::Crop(consume_int(parts.next().expect("crop padding"))?),
        _ => match parts.next().expect("flip direction").as_rule() {
            Rule::kw_horizontal => AugmentationKind::FlipHorizontal,
            _ => AugmentationKind::FlipVertical,
        },
    };
    Ok(Augmentation { kind, span })
}

/// A `reference` to an earlier item: its name and where it is written.
fn reference(pair: Node) -> Spanned<String> {
    spanned_str(pair)
}

fn spanned_str(pair: Node) -> Spanned<String> {
    Spanned {
        value: pair.as_str().to_string(),
        span: pair.as_span().into(),
    }
}

fn consume_int(pair: Node) -> Result<Spanned<u64>, Diagnostic> {
    let span = Span::from(pair.as_span());
    let value = parse_u64(pair.as_str(), span)?;
    Ok(Spanned { value, span })
}

fn parse_u64(text: &str, span: Span) -> Result<u64, Diagnostic> {
    text.parse::<u64>().map_err(|_| {
        Diagnostic::new(
            Code::BadNumber,
            span,
            format!("the number `{}` is too large", shorten(text)),
        )
        .with_label("does not fit in 64 bits")
    })
}

/// `5`, `5x3` or `1x28x28`: the parts, in order.
fn consume_size(pair: Node) -> Result<Spanned<Vec<u64>>, Diagnostic> {
    let span = Span::from(pair.as_span());
    let value = pair
        .as_str()
        .split('x')
        .map(|part| parse_u64(part, span))
        .collect::<Result<_, _>>()?;
    Ok(Spanned { value, span })
}

fn consume_number(pair: Node) -> Result<Spanned<f64>, Diagnostic> {
    let span = Span::from(pair.as_span());
    let value: f64 = pair.as_str().parse().map_err(|_| {
        Diagnostic::new(
            Code::BadNumber,
            span,
            format!("`{}` is not a number", shorten(pair.as_str())),
        )
    })?;
    // Models compute in 32-bit floats: a value past their range would become
    // infinite there (a leaky_relu slope, a learning rate, ...).
    if !value.is_finite() || value.abs() > f32::MAX as f64 {
        return Err(Diagnostic::new(
            Code::BadNumber,
            span,
            format!("`{}` is too large", shorten(pair.as_str())),
        )
        .with_label("more than the largest 32-bit float")
        .with_hint(format!("numbers in .cnn files are at most {:e}", f32::MAX)));
    }
    Ok(Spanned { value, span })
}

/// What a grammar rule looks like to a user, for "expected ..." lists, and the
/// keywords it can start with, for "did you mean".
fn describe(rule: Rule) -> (Option<&'static str>, Vec<&'static str>) {
    let (label, words) = describe_fixed(rule);
    match rule {
        // Every layer word, the activations' included (from their table).
        Rule::layer => (label, words.iter().copied().chain(crate::activation::words()).collect()),
        Rule::activation | Rule::activation_word => (Some("an activation"), crate::activation::words().collect()),
        _ => (label, words.to_vec()),
    }
}

/// [`describe`] of the rules whose words are fixed here.
fn describe_fixed(rule: Rule) -> (Option<&'static str>, &'static [&'static str]) {
    const LAYERS: &[&str] = &[
        "conv",
        "maxpool",
        "avgpool",
        "flatten",
        "dense",
        "batchnorm",
        "dropout",
        "residual",
        "shortcut",
        "convtranspose",
        "concat",
        "add",
        "mul",
        "from",
        "upsample",
    ];
    match rule {
        Rule::ident | Rule::layer_name => (Some("a name"), &[]),
        Rule::int => (Some("a whole number"), &[]),
        Rule::size => (Some("a size such as `3` or `3x5`"), &[]),
        Rule::number => (Some("a number"), &[]),
        Rule::model => (Some("`model`"), &["model"]),
        Rule::input => (Some("`input`"), &["input"]),
        Rule::layer => (Some("a layer"), LAYERS),
        Rule::window_option => (
            Some("`kernel`, `stride`, `pad`, `dilation`, `groups`, `bias`, `round`, `output_pad`"),
            &[
                "kernel",
                "stride",
                "pad",
                "dilation",
                "groups",
                "bias",
                "round",
                "output_pad",
            ],
        ),
        Rule::bias_option => (Some("`bias`"), &["bias"]),
        Rule::batchnorm_option => (Some("`eps`, `momentum`"), &["eps", "momentum"]),
        Rule::normalize => (Some("`normalize`"), &["normalize"]),
        Rule::augmentation => (Some("`flip`, `crop`"), &["flip", "crop"]),
        Rule::pad_side => (
            Some("`top`, `bottom`, `left`, `right`"),
            &["top", "bottom", "left", "right"],
        ),
        Rule::train => (Some("`train`"), &["train"]),
        Rule::train_item => (
            Some("a train item"),
            &[
                "loss",
                "optimizer",
                "weight_decay",
                "schedule",
                "batch",
                "epochs",
                "validation",
                "seed",
                "augment",
            ],
        ),
        Rule::optimizer_option => (
            Some("an optimizer option"),
            &["lr", "momentum", "nesterov", "beta1", "beta2", "eps"],
        ),
        Rule::EOI => (Some("the end of the file"), &[]),
        Rule::open => (Some("`{`"), &[]),
        Rule::close => (Some("`}`"), &[]),
        _ => {
            let name = format!("{rule:?}");
            match name
                .strip_prefix("kw_")
                .and_then(|k| KEYWORDS.iter().find(|w| **w == k))
            {
                Some(k) => (None, std::slice::from_ref(k)),
                None => (None, &[]),
            }
        }
    }
}

/// Turns pest's error into a diagnostic on the word at the error position: what was
/// found, what was expected, and the closest expected keyword.
fn syntax_error(source: &str, err: pest::error::Error<Rule>) -> Diagnostic {
    let pos = match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    // At the end of the file, point just after the last token rather than at an
    // empty line below it.
    let pos = if source[pos..].trim().is_empty() {
        pos.min(source.trim_end().len())
    } else {
        pos
    };
    let rest = &source[pos..];
    let word_len = rest
        .char_indices()
        .find(|&(i, c)| {
            if i == 0 {
                c.is_whitespace()
            } else {
                let number = rest[..i].trim_start_matches('-');
                !(c.is_alphanumeric() || c == '_' || c == '.')
                    || (c == '.' && !number.chars().all(|d| d.is_ascii_digit()))
            }
        })
        .map_or(rest.len(), |(i, _)| {
            i.max(rest.chars().next().map_or(0, char::len_utf8))
        });
    let word = if rest.trim().is_empty() {
        ""
    } else {
        &rest[..word_len.min(rest.len())]
    };
    let span = Span::new(pos, pos + word.len());
    let positives: Vec<Rule> = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let mut labels: Vec<String> = Vec::new();
    let mut keywords: Vec<&str> = Vec::new();
    let at_end = source[pos..].trim().is_empty();
    let alternatives = positives.len();
    for rule in positives {
        // `}` is worth naming at the end of the file or when nothing else could follow.
        if rule == Rule::close && !at_end && alternatives > 1 {
            continue;
        }
        let (label, words) = describe(rule);
        let label = label
            .map(str::to_string)
            .or_else(|| words.first().map(|w| format!("`{w}`")));
        if let Some(label) = label.filter(|l| !labels.contains(l)) {
            labels.push(label);
        }
        for w in words {
            if !keywords.contains(&w) {
                keywords.push(w);
            }
        }
    }
    // What may continue the current item first, what ends a block last.
    let rank = |label: &String| match label.as_str() {
        "a layer" => 0,
        "an activation" => 1,
        "`train`" => 3,
        "`}`" | "the end of the file" => 4,
        _ => 2,
    };
    labels.sort_by_key(rank);
    let found = if word.is_empty() {
        "the end of the file".to_string()
    } else {
        format!("`{}`", shorten(word))
    };
    let message = match labels.len() {
        0 => format!("unexpected {found}"),
        1 => format!("expected {}, found {found}", labels[0]),
        n => format!(
            "expected {} or {}, found {found}",
            labels[..n - 1].join(", "),
            labels[n - 1]
        ),
    };
    let mut diag = Diagnostic::new(Code::Syntax, span, message);
    let wants = |label: &str| labels.iter().any(|l| l == label);
    let wants_number = wants("a whole number") || wants("a size such as `3` or `3x5`") || wants("a number");
    let is_word = word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    let foreign = hints::foreign_word(word, &keywords).or_else(|| hints::positional(source, pos, word));
    if let Some(hint) = foreign {
        diag = diag.with_hint(hint);
    } else if let Some(suggestion) = did_you_mean(word, keywords.iter().copied()).filter(|_| !word.is_empty()) {
        diag = diag.with_hint(format!("did you mean `{suggestion}`?"));
    } else if word.starts_with('-') {
        diag = diag.with_hint("sizes and counts in .cnn files are never negative");
    } else if word.starts_with('.') {
        diag = diag.with_hint("a decimal point needs digits on both sides: write `1.0` or `0.5`");
    } else if word.contains('.') && wants("a whole number") {
        diag = diag.with_hint("this takes a whole number, without a decimal point");
    } else if word == "kernel" && wants("a size such as `3` or `3x5`") {
        diag = diag.with_hint("a pooling layer takes its window size right after the keyword: `maxpool 2`");
    } else if wants_number && is_word {
        diag = diag.with_hint(format!("a number is missing before `{}`", shorten(word)));
    } else if word.is_empty() && wants("`}`") {
        diag = braces::unclosed_error(source, diag);
    }
    diag
}

#[cfg(test)]
mod tests {
    use super::*;

    const LENET: &str = "model LeNet {
        input 1x28x28
        conv 6 kernel 5 pad 2 relu
        maxpool 2
        stem: conv 16 kernel 5x3 stride 2x1 pad top 1 left 2 round floor
        avgpool global
        flatten
        dense 120 leaky_relu 0.2
        dropout 0.5
        dense 10 softmax
        train { loss cross_entropy optimizer sgd lr 1e-3 momentum 0.9 nesterov
                schedule step 3 gamma 0.5 batch 64 epochs 10 validation 0.1 seed 7 }
    }";

    #[test]
    fn parses_every_layer_kind() {
        let file = parse(LENET).unwrap();
        let m = &file.models[0];
        assert_eq!(m.name.value, "LeNet");
        assert_eq!(m.input.value, vec![1, 28, 28]);
        assert_eq!(m.layers.len(), 8);
        assert_eq!(m.layers[2].name.as_ref().unwrap().value, "stem");
        assert_eq!(m.train.as_ref().unwrap().items.len(), 7);
        match &m.layers[2].kind {
            LayerKind::Conv { options, .. } => assert_eq!(options.len(), 4),
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn suggests_the_closest_keyword() {
        let err = parse("model M { input 3 dense 4 relu\n dropot 0.5 }").unwrap_err();
        assert_eq!(err.hint.as_deref(), Some("did you mean `dropout`?"), "{err:?}");
        assert!(err.message.contains("found `dropot`"), "{}", err.message);
    }
}
