//! The words of the language: every keyword, and what each grammar rule looks like
//! to a user in "expected ..." lists, with the keywords it can start with.

use super::Rule;

/// What a grammar rule looks like to a user, for "expected ..." lists, and the
/// keywords it can start with, for "did you mean".
pub(super) fn describe(rule: Rule) -> (Option<&'static str>, &'static [&'static str]) {
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
        "relu",
        "sigmoid",
        "tanh",
        "softmax",
        "leaky_relu",
        "silu",
        "gelu",
    ];
    const ACTIVATIONS: &[&str] = &["relu", "sigmoid", "tanh", "softmax", "leaky_relu", "silu", "gelu"];
    match rule {
        Rule::ident | Rule::layer_name => (Some("a name"), &[]),
        Rule::int => (Some("a whole number"), &[]),
        Rule::size => (Some("a size such as `3` or `3x5`"), &[]),
        Rule::number => (Some("a number"), &[]),
        Rule::model => (Some("`model`"), &["model"]),
        Rule::input => (Some("`input`"), &["input"]),
        Rule::layer => (Some("a layer"), LAYERS),
        Rule::activation => (Some("an activation"), ACTIVATIONS),
        Rule::window_option => (
            Some("`kernel`, `stride`, `pad`, `dilation`, `groups`, `bias`, `round`"),
            &["kernel", "stride", "pad", "dilation", "groups", "bias", "round"],
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

/// Every keyword of the language.
pub const KEYWORDS: &[&str] = &[
    "model",
    "input",
    "conv",
    "maxpool",
    "avgpool",
    "global",
    "flatten",
    "dense",
    "dropout",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "leaky_relu",
    "kernel",
    "stride",
    "pad",
    "same",
    "valid",
    "top",
    "bottom",
    "left",
    "right",
    "round",
    "floor",
    "ceil",
    "train",
    "loss",
    "cross_entropy",
    "mse",
    "binary_cross_entropy",
    "optimizer",
    "sgd",
    "adam",
    "adamw",
    "lr",
    "momentum",
    "nesterov",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "schedule",
    "step",
    "gamma",
    "exponential",
    "cosine",
    "min",
    "batch",
    "epochs",
    "validation",
    "seed",
    "residual",
    "shortcut",
    "batchnorm",
    "dilation",
    "groups",
    "bias",
    "off",
    "silu",
    "gelu",
    "normalize",
    "mean",
    "std",
    "augment",
    "flip",
    "horizontal",
    "vertical",
    "crop",
];
