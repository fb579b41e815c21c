//! The `train { ... }` block: required items, repeats, ranges, defaults, and the
//! loss's demands on the last layer.

use super::number;
use crate::diag::{did_you_mean, Code, Diagnostic, Diagnostics, Span};
use crate::ir::{self, Shape};
use crate::syntax::ast::{self, LossKind, OptimizerKind, TrainItemKind};

/// Defaults for items the block leaves out (written down in docs/language.md).
pub const DEFAULT_BATCH: usize = 32;
pub const DEFAULT_EPOCHS: usize = 1;

/// Checks a `train` block: its items one by one, then the demands between them
/// (warmup and epochs, early stopping and validation), the required items, and the
/// loss against the model's last layer.
pub fn check_train(
    train: &ast::Train,
    layers: &[ir::Layer],
    input: Option<Shape>,
    output: Option<Shape>,
    diags: &mut Diagnostics,
) -> Option<ir::TrainConfig> {
    let errors_before = diags.len();
    let given = read_items(train, layers, input, diags);
    check_between_items(&given, diags);
    for (word, example) in [("loss", "loss cross_entropy"), ("optimizer", "optimizer sgd lr 0.01")] {
        if !given.first.iter().any(|(w, _)| *w == word) {
            diags.push(
                Diagnostic::new(Code::Missing, train.keyword, format!("the train block has no `{word}`"))
                    .with_hint(format!("add `{example}`; `loss` and `optimizer` are required")),
            );
        }
    }
    let loss = given
        .loss
        .and_then(|(l, span)| check_loss(l, span, layers, output, diags));
    let optimizer = given.optimizer?;
    let weight_decay = given.weight_decay.unwrap_or(match optimizer {
        ir::Optimizer::AdamW { .. } => 0.01,
        _ => 0.0,
    });
    if diags.len() > errors_before {
        return None;
    }
    Some(ir::TrainConfig {
        loss: loss?,
        optimizer,
        weight_decay,
        schedule: given.schedule,
        batch: given.batch,
        epochs: given.epochs,
        validation: given.validation,
        seed: given.seed,
        augment: given.augment,
        smoothing: given.smoothing,
        ignore: given.ignore,
        clip_grad_norm: given.clip_grad_norm,
        freeze: given.freeze,
        warmup: given.warmup.map(|(epochs, from, _)| ir::Warmup { epochs, from }),
        early_stop: given.early_stop.map(|(p, _)| p),
    })
}

/// The items of a train block, each checked on its own, with the defaults of
/// those not given.
struct Given {
    /// Each item's word, and where it was first given.
    first: Vec<(&'static str, Span)>,
    loss: Option<(LossKind, Span)>,
    optimizer: Option<ir::Optimizer>,
    weight_decay: Option<f64>,
    schedule: ir::Schedule,
    batch: usize,
    epochs: usize,
    validation: Option<f64>,
    seed: u64,
    augment: Vec<ir::Augment>,
    smoothing: f64,
    ignore: Option<usize>,
    clip_grad_norm: Option<f64>,
    freeze: Vec<String>,
    /// The warmup's epochs, its starting fraction and the span of its epochs.
    warmup: Option<(usize, f64, Span)>,
    /// The patience, and the item's span.
    early_stop: Option<(usize, Span)>,
}

/// Reads the items in order: each at most once, each checked on its own.
fn read_items(train: &ast::Train, layers: &[ir::Layer], input: Option<Shape>, diags: &mut Diagnostics) -> Given {
    let mut given = Given {
        first: Vec::new(),
        loss: None,
        optimizer: None,
        weight_decay: None,
        schedule: ir::Schedule::Constant,
        batch: DEFAULT_BATCH,
        epochs: DEFAULT_EPOCHS,
        validation: None,
        seed: 0,
        augment: Vec::new(),
        smoothing: 0.0,
        ignore: None,
        clip_grad_norm: None,
        freeze: Vec::new(),
        warmup: None,
        early_stop: None,
    };
    for item in &train.items {
        let word = item_word(&item.kind);
        if let Some(&(_, earlier)) = given.first.iter().find(|(w, _)| *w == word) {
            diags.push(
                Diagnostic::new(
                    Code::Repeated,
                    item.span,
                    format!("`{word}` is given twice in the train block"),
                )
                .with_secondary(earlier, "first given here")
                .with_hint("each item of `train` may appear at most once"),
            );
            continue;
        }
        given.first.push((word, item.span));
        read_item(item, &mut given, layers, input, diags);
    }
    given
}

/// Checks one item of the block and records its value.
fn read_item(
    item: &ast::TrainItem,
    given: &mut Given,
    layers: &[ir::Layer],
    input: Option<Shape>,
    diags: &mut Diagnostics,
) {
    match &item.kind {
        TrainItemKind::Loss(l, options) => {
            given.loss = Some((*l, item.span));
            if let Some(s) = &options.smoothing {
                given.smoothing = check_smoothing(s, diags);
            }
            given.ignore = options.ignore.as_ref().map(|i| i.value as usize);
            for (word, span) in &options.repeated {
                diags.push(
                    Diagnostic::new(Code::Repeated, *span, format!("`{word}` is given twice"))
                        .with_hint("each option of the loss may appear at most once"),
                );
            }
        }
        TrainItemKind::Optimizer { kind, options } => {
            given.optimizer = check_optimizer(*kind, options, item.span, diags)
        }
        TrainItemKind::WeightDecay(w) => {
            given.weight_decay = Some(at_least(
                w,
                "weight_decay",
                "weight_decay 0 turns it off; 1e-4 to 5e-4 is usual",
                diags,
            ));
        }
        TrainItemKind::Schedule(s) => given.schedule = check_schedule(s, diags),
        TrainItemKind::Batch(b) => given.batch = positive(b, "batch", diags),
        TrainItemKind::Epochs(e) => given.epochs = positive(e, "epochs", diags),
        TrainItemKind::Validation(v) => {
            if !(v.value > 0.0 && v.value < 1.0) {
                diags.push(
                    Diagnostic::new(
                        Code::Range,
                        v.span,
                        format!("validation {} is out of range", number(v.value)),
                    )
                    .with_hint("validation is the held-out fraction F of the training set, 0 < F < 1"),
                );
            }
            given.validation = Some(v.value);
        }
        TrainItemKind::Seed(s) => given.seed = s.value,
        TrainItemKind::Augment(a) => given.augment = check_augment(a, item.span, input, diags),
        TrainItemKind::ClipGradNorm(x) => {
            if !(x.value > 0.0 && x.value.is_finite()) {
                diags.push(
                    Diagnostic::new(
                        Code::Range,
                        x.span,
                        format!("clip_grad_norm {} is out of range", number(x.value)),
                    )
                    .with_hint("clip_grad_norm X caps the gradients' global L2 norm at X > 0; 1 to 5 is usual"),
                );
            }
            given.clip_grad_norm = Some(x.value);
        }
        TrainItemKind::Freeze(names) => given.freeze = check_freeze(names, layers, diags),
        TrainItemKind::Warmup { epochs: n, from } => {
            let from_value = from.as_ref().map_or(0.1, |f| f.value);
            if let Some(f) = from.as_ref().filter(|f| !(f.value > 0.0 && f.value <= 1.0)) {
                diags.push(
                    Diagnostic::new(
                        Code::Range,
                        f.span,
                        format!("warmup from {} is out of range", number(f.value)),
                    )
                    .with_hint("the warmup starts at F times the learning rate, 0 < F <= 1 (0.1 by default)"),
                );
            }
            given.warmup = Some((positive(n, "warmup", diags), from_value, n.span));
        }
        TrainItemKind::EarlyStop(p) => {
            given.early_stop = Some((positive(p, "early_stop", diags), item.span));
        }
    }
}

/// The warmup leaves epochs for the schedule; early stopping watches a validation loss.
fn check_between_items(given: &Given, diags: &mut Diagnostics) {
    let epochs = given.epochs;
    if let Some((n, _, span)) = given.warmup.filter(|w| w.0 >= epochs) {
        diags.push(
            Diagnostic::new(
                Code::Range,
                span,
                format!("warmup {n} is not shorter than the {epochs} epochs"),
            )
            .with_hint(format!(
                "the schedule runs after the warmup's epochs: use `warmup {}` or fewer, or more `epochs`",
                epochs.saturating_sub(1).max(1)
            )),
        );
    }
    if let (Some((_, span)), None) = (given.early_stop, given.validation) {
        diags.push(
            Diagnostic::new(Code::Missing, span, "early_stop needs a validation set")
                .with_hint("add `validation 0.1`: early stopping watches the loss on the held-out fraction"),
        );
    }
}

/// `smoothing S`: 0 <= S < 1, as PyTorch's `label_smoothing`.
fn check_smoothing(s: &ast::Spanned<f64>, diags: &mut Diagnostics) -> f64 {
    if !(0.0..1.0).contains(&s.value) {
        diags.push(
            Diagnostic::new(
                Code::Range,
                s.span,
                format!("smoothing {} is out of range", number(s.value)),
            )
            .with_hint(
                "label smoothing S moves S of each target's weight onto all classes evenly, 0 <= S < 1; 0.1 is usual",
            ),
        );
    }
    s.value
}

/// `freeze NAME+`: each a named or default-named item of the model's top scope
/// that has parameters, each once.
fn check_freeze(names: &[ast::Spanned<String>], layers: &[ir::Layer], diags: &mut Diagnostics) -> Vec<String> {
    let top: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let Some(layer) = layers.iter().find(|l| l.name == name.value) else {
            let mut d = Diagnostic::new(
                Code::UnknownName,
                name.span,
                format!("`freeze {}` names no item of the model", name.value),
            );
            d = match did_you_mean(&name.value, top.iter().copied()) {
                Some(s) => d.with_hint(format!("did you mean `{s}`?")),
                None => d.with_hint(format!(
                    "freeze takes items of the model's top scope: {}",
                    top.join(", ")
                )),
            };
            diags.push(d);
            continue;
        };
        let has_params = !layer.params().is_empty()
            || match &layer.op {
                ir::Op::Residual(r) => r.body.iter().chain(&r.shortcut).any(|l| !l.params().is_empty()),
                _ => false,
            };
        if !has_params {
            diags.push(
                Diagnostic::new(
                    Code::Range,
                    name.span,
                    format!("`{}` has no parameters to freeze", name.value),
                )
                .with_hint("freeze names conv, dense, batchnorm layers or blocks holding them"),
            );
        }
        if out.contains(&name.value) {
            diags.push(Diagnostic::new(
                Code::Repeated,
                name.span,
                format!("`{}` is frozen twice", name.value),
            ));
        }
        out.push(name.value.clone());
    }
    out
}

fn item_word(kind: &TrainItemKind) -> &'static str {
    match kind {
        TrainItemKind::Loss(..) => "loss",
        TrainItemKind::Optimizer { .. } => "optimizer",
        TrainItemKind::WeightDecay(_) => "weight_decay",
        TrainItemKind::Schedule(_) => "schedule",
        TrainItemKind::Batch(_) => "batch",
        TrainItemKind::Epochs(_) => "epochs",
        TrainItemKind::Validation(_) => "validation",
        TrainItemKind::Seed(_) => "seed",
        TrainItemKind::Augment(_) => "augment",
        TrainItemKind::ClipGradNorm(_) => "clip_grad_norm",
        TrainItemKind::Freeze(_) => "freeze",
        TrainItemKind::Warmup { .. } => "warmup",
        TrainItemKind::EarlyStop(_) => "early_stop",
    }
}

/// `augment flip horizontal crop 4`: image inputs only, each augmentation once.
fn check_augment(
    augmentations: &[ast::Augmentation],
    span: Span,
    input: Option<Shape>,
    diags: &mut Diagnostics,
) -> Vec<ir::Augment> {
    if let Some(Shape::Vector(n)) = input {
        diags.push(
            Diagnostic::new(
                Code::Augment,
                span,
                format!("augment needs an image input, but the input is a vector of {n}"),
            )
            .with_hint("flips and crops move the pixels of a CxHxW input; remove `augment` for vector inputs"),
        );
    }
    let mut out = Vec::new();
    let mut seen: Vec<(&'static str, Span)> = Vec::new();
    for a in augmentations {
        let (word, augment) = match &a.kind {
            ast::AugmentationKind::FlipHorizontal => ("flip horizontal", ir::Augment::FlipHorizontal),
            ast::AugmentationKind::FlipVertical => ("flip vertical", ir::Augment::FlipVertical),
            ast::AugmentationKind::Crop(p) => {
                const LIMIT: u64 = 1 << 16;
                if p.value > LIMIT {
                    diags.push(
                        Diagnostic::new(Code::Range, p.span, format!("crop {} is too large", p.value)).with_hint(
                            format!("crop pads each side with P zeros, P at most {LIMIT}; 4 is usual for 32x32 images"),
                        ),
                    );
                }
                ("crop", ir::Augment::Crop(p.value.min(LIMIT) as usize))
            }
        };
        if let Some(&(_, first)) = seen.iter().find(|(w, _)| *w == word) {
            diags.push(
                Diagnostic::new(Code::Repeated, a.span, format!("`{word}` is given twice in `augment`"))
                    .with_secondary(first, "first given here")
                    .with_hint("each augmentation may appear at most once"),
            );
            continue;
        }
        seen.push((word, a.span));
        out.push(augment);
    }
    out
}

/// Cross-entropy needs a final softmax over a vector, binary cross-entropy a final
/// sigmoid: the compiler fuses them with the loss.
fn check_loss(
    loss: LossKind,
    span: Span,
    layers: &[ir::Layer],
    output: Option<Shape>,
    diags: &mut Diagnostics,
) -> Option<ir::Loss> {
    let last = layers.last().map(|l| &l.op);
    match loss {
        LossKind::Mse => Some(ir::Loss::Mse),
        LossKind::CrossEntropy => {
            if output.is_some() && !matches!(last, Some(ir::Op::Softmax)) {
                diags.push(
                    Diagnostic::new(Code::LossLayer, span, "cross_entropy needs the model to end with `softmax`")
                        .with_hint("end the model with `dense N softmax`, N the number of classes; the compiler fuses softmax with the loss"),
                );
                return None;
            }
            Some(ir::Loss::CrossEntropy)
        }
        LossKind::BinaryCrossEntropy => {
            if output.is_some() && !matches!(last, Some(ir::Op::Activation(ir::Activation::Sigmoid))) {
                diags.push(
                    Diagnostic::new(Code::LossLayer, span, "binary_cross_entropy needs the model to end with `sigmoid`")
                        .with_hint("end the model with `dense 1 sigmoid` for a yes/no output; the compiler fuses sigmoid with the loss"),
                );
                return None;
            }
            Some(ir::Loss::BinaryCrossEntropy)
        }
    }
}

/// `optimizer KIND OPTION*`: the options the kind takes, each once, each in range,
/// and `lr` required.
fn check_optimizer(
    kind: OptimizerKind,
    options: &[ast::OptimizerOption],
    span: Span,
    diags: &mut Diagnostics,
) -> Option<ir::Optimizer> {
    let (word, allowed): (&str, &[&str]) = match kind {
        OptimizerKind::Sgd => ("sgd", &["lr", "momentum", "nesterov"]),
        OptimizerKind::Adam => ("adam", &["lr", "beta1", "beta2", "eps"]),
        OptimizerKind::AdamW => ("adamw", &["lr", "beta1", "beta2", "eps"]),
    };
    let errors_before = diags.len();
    check_option_names(word, allowed, options, diags);
    let get = |name: &str| options.iter().find(|o| o.name.value == name);
    let lr = check_lr(get("lr"), word, span, diags);
    let optimizer = match kind {
        OptimizerKind::Sgd => {
            let momentum = fraction(get("momentum"), "momentum", 0.0, diags);
            let nesterov = get("nesterov");
            if let (Some(n), true) = (nesterov, momentum as f32 == 0.0) {
                diags.push(
                    Diagnostic::new(Code::Nesterov, n.name.span, "nesterov needs a momentum above 0")
                        .with_hint("add `momentum 0.9` (PyTorch rejects nesterov without momentum too)"),
                );
            }
            ir::Optimizer::Sgd {
                lr,
                momentum,
                nesterov: nesterov.is_some(),
            }
        }
        OptimizerKind::Adam | OptimizerKind::AdamW => {
            let beta1 = fraction(get("beta1"), "beta1", 0.9, diags);
            let beta2 = fraction(get("beta2"), "beta2", 0.999, diags);
            let eps = check_eps(get("eps"), diags);
            if kind == OptimizerKind::Adam {
                ir::Optimizer::Adam { lr, beta1, beta2, eps }
            } else {
                ir::Optimizer::AdamW { lr, beta1, beta2, eps }
            }
        }
    };
    (diags.len() == errors_before).then_some(optimizer)
}

/// Each option of the optimizer `word` one it takes (`allowed`), and given once.
fn check_option_names(word: &str, allowed: &[&str], options: &[ast::OptimizerOption], diags: &mut Diagnostics) {
    let mut seen: Vec<&str> = Vec::new();
    for o in options {
        let name = o.name.value.as_str();
        if !allowed.contains(&name) {
            let mut d = Diagnostic::new(Code::NotAllowed, o.name.span, format!("{word} has no option `{name}`"))
                .with_hint(format!("{word} takes {}", allowed.join(", ")));
            if let Some(s) = did_you_mean(name, allowed.iter().copied()) {
                d = d.with_hint(format!("did you mean `{s}`? {word} takes {}", allowed.join(", ")));
            }
            diags.push(d);
        } else if seen.contains(&name) {
            let earlier = options
                .iter()
                .find(|e| e.name.value == name)
                .map_or(o.name.span, |e| e.name.span);
            diags.push(
                Diagnostic::new(Code::Repeated, o.name.span, format!("`{name}` is given twice"))
                    .with_secondary(earlier, "first given here")
                    .with_hint(format!("each option of {word} may appear at most once")),
            );
        }
        seen.push(name);
    }
}

/// An option's number (0 when it has none).
fn option_value(o: &ast::OptimizerOption) -> f64 {
    o.value.as_ref().map_or(0.0, |v| v.value)
}

/// `lr`: required, and positive in 32-bit floats, where models compute (a tiny
/// rate is 0 there).
fn check_lr(lr: Option<&ast::OptimizerOption>, word: &str, span: Span, diags: &mut Diagnostics) -> f64 {
    let Some(o) = lr else {
        diags.push(
            Diagnostic::new(
                Code::Missing,
                span,
                format!("the {word} optimizer needs a learning rate"),
            )
            .with_hint(format!("add `lr 0.01` after `{word}`")),
        );
        return 0.0;
    };
    let lr = option_value(o);
    if let Some(what) = not_positive_f32(lr) {
        diags.push(
            Diagnostic::new(
                Code::Range,
                o.name.span.to(o.value.as_ref().map_or(o.name.span, |v| v.span)),
                format!("lr {} {what}", number(lr)),
            )
            .with_hint("typical learning rates are 0.1 to 1e-4"),
        );
    }
    lr
}

/// What is wrong with `v` as a value that must be positive where models compute,
/// in 32-bit floats (where 1e-50 is 0); `None` when nothing is.
fn not_positive_f32(v: f64) -> Option<&'static str> {
    match (v as f32 <= 0.0, v > 0.0) {
        (false, _) => None,
        (true, true) => Some("is 0 in 32-bit floats; it must be positive"),
        (true, false) => Some("must be positive"),
    }
}

/// `momentum`, `beta1`, `beta2`: at least 0 and below 1 in 32-bit floats, where
/// models compute (0.99999999999 is 1 there); `default` when not given.
fn fraction(option: Option<&ast::OptimizerOption>, name: &str, default: f64, diags: &mut Diagnostics) -> f64 {
    let Some(o) = option else {
        return default;
    };
    let v = option_value(o);
    if !(0.0..1.0).contains(&v) || v as f32 >= 1.0 {
        let mut d = Diagnostic::new(
            Code::Range,
            o.value.as_ref().map_or(o.name.span, |v| v.span),
            format!("{name} {} is out of range", number(v)),
        )
        .with_hint(format!("{name} must be at least 0 and less than 1"));
        if v < 1.0 {
            d = d.with_label("1 in 32-bit floats");
        }
        diags.push(d);
    }
    v
}

/// adam's `eps`: positive in 32-bit floats; 1e-8 when not given.
fn check_eps(eps: Option<&ast::OptimizerOption>, diags: &mut Diagnostics) -> f64 {
    let Some(o) = eps else {
        return 1e-8;
    };
    let eps = option_value(o);
    if let Some(what) = not_positive_f32(eps) {
        diags.push(
            Diagnostic::new(
                Code::Range,
                o.value.as_ref().map_or(o.name.span, |v| v.span),
                format!("eps {} {what}", number(eps)),
            )
            .with_hint("the usual value is 1e-8"),
        );
    }
    eps
}

fn check_schedule(s: &ast::Schedule, diags: &mut Diagnostics) -> ir::Schedule {
    match s {
        ast::Schedule::Step { every, gamma } => ir::Schedule::Step {
            every: positive(every, "step", diags),
            gamma: gamma_value(gamma, diags),
        },
        ast::Schedule::Exponential { gamma } => ir::Schedule::Exponential {
            gamma: gamma_value(gamma, diags),
        },
        ast::Schedule::Cosine { min } => ir::Schedule::Cosine {
            min: min.as_ref().map_or(0.0, |m| {
                at_least(
                    m,
                    "min",
                    "min is the learning rate the cosine schedule ends at; 0 is the default",
                    diags,
                )
            }),
        },
    }
}

fn gamma_value(gamma: &ast::Spanned<f64>, diags: &mut Diagnostics) -> f64 {
    if gamma.value <= 0.0 {
        diags.push(
            Diagnostic::new(
                Code::Range,
                gamma.span,
                format!("gamma {} must be positive", number(gamma.value)),
            )
            .with_hint("gamma multiplies the learning rate; 0.1 to 0.99 is usual"),
        );
    }
    gamma.value
}

/// A value that must not be negative.
fn at_least(v: &ast::Spanned<f64>, what: &str, hint: &str, diags: &mut Diagnostics) -> f64 {
    if v.value < 0.0 {
        diags.push(
            Diagnostic::new(
                Code::Range,
                v.span,
                format!("{what} {} must be at least 0", number(v.value)),
            )
            .with_hint(hint),
        );
    }
    v.value
}

/// Batch sizes, epochs and step periods: at least 1, and small enough to be real.
fn positive(v: &ast::Spanned<u64>, what: &str, diags: &mut Diagnostics) -> usize {
    const LIMIT: u64 = 1 << 24;
    if v.value == 0 {
        diags.push(
            Diagnostic::new(Code::Range, v.span, format!("{what} 0 is not allowed"))
                .with_hint(format!("{what} must be at least 1")),
        );
        return 1;
    }
    if v.value > LIMIT {
        diags.push(
            Diagnostic::new(Code::Range, v.span, format!("{what} {} is too large", v.value))
                .with_hint(format!("{what} must be at most {LIMIT}")),
        );
        return 1;
    }
    v.value as usize
}
