//! The names of a block's items: the given ones and the defaults (`conv1`,
//! `relu2`, ...), counted per kind, and the checks on them (repeats, a name equal
//! to another item's default, a named `shortcut`).

use super::lower::activation_keyword;
use crate::diag::{shorten, Code, Diagnostic, Diagnostics, Span};
use crate::syntax::ast::{self, LayerKind};
use std::collections::HashMap;

/// Where a sequence of items sits, which decides what a `shortcut` item means there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Block {
    /// The model's own items.
    Model,
    /// A residual block's body: its shortcut, if last, has been taken out already.
    Body,
    /// A residual block's shortcut.
    Shortcut,
}

pub(super) struct ItemNames {
    pub(super) item: String,
    pub(super) shorthand: Option<String>,
}

/// One name given in a block: where, and whether the user wrote it.
pub(super) struct Given {
    pub(super) name: String,
    pub(super) span: Span,
    pub(super) explicit: bool,
}

/// Names the items of one block: a user's name, or the kind and the 1-based position
/// among the block's items of that kind, named or not (activation shorthands count
/// as activations). Reports names used twice and names equal to a default name.
pub(super) fn name_items(items: &[ast::Layer], block: Block, diags: &mut Diagnostics) -> Vec<ItemNames> {
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
            // A shortcut is named by its place, `BLOCK.shortcut`; `from` is not named.
            let item_name = if let LayerKind::From(_) = item.kind {
                check_from_unnamed(item, diags);
                String::new()
            } else {
                check_shortcut_unnamed(item, diags);
                "shortcut".to_string()
            };
            out.push(ItemNames {
                item: item_name,
                shorthand: None,
            });
            continue;
        };
        let default = next(kind);
        let item_name = match &item.name {
            Some(n) if n.value == crate::ir::Ref::INPUT => {
                diags.push(
                    Diagnostic::new(Code::Reference, n.span, "`input` cannot name an item")
                        .with_hint("`input` refers to the model's input; choose another name"),
                );
                n.value.clone()
            }
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
pub(super) fn shortcut_items(item: &ast::Layer) -> Option<&[ast::Layer]> {
    if let LayerKind::Shortcut { items } = &item.kind {
        Some(items)
    } else {
        None
    }
}

/// A shortcut is named by its place, `BLOCK.shortcut`: a `NAME:` on it is an error.
pub(super) fn check_shortcut_unnamed(item: &ast::Layer, diags: &mut Diagnostics) {
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

/// `from NAME` has no output of its own: a `NAME:` on it is an error.
fn check_from_unnamed(item: &ast::Layer, diags: &mut Diagnostics) {
    if let Some(n) = &item.name {
        diags.push(
            Diagnostic::new(
                Code::Reference,
                n.span,
                format!("`from` cannot be named (`{}:`)", shorten(&n.value)),
            )
            .with_hint("`from` only chooses what the next item reads; name the item after it instead"),
        );
    }
}

/// The activation shorthand written after an item, if any.
pub(crate) fn shorthand_of(item: &ast::Layer) -> Option<&ast::Activation> {
    match &item.kind {
        LayerKind::Conv { activation, .. }
        | LayerKind::Dense { activation, .. }
        | LayerKind::BatchNorm { activation, .. }
        | LayerKind::Residual { activation, .. }
        | LayerKind::ConvTranspose { activation, .. }
        | LayerKind::Add { activation, .. }
        | LayerKind::Mul { activation, .. } => activation.as_ref(),
        LayerKind::GlobalMaxPool
        | LayerKind::Concat(_)
        | LayerKind::From(_)
        | LayerKind::Upsample { .. }
        | LayerKind::MaxPool { .. }
        | LayerKind::AvgPool { .. }
        | LayerKind::GlobalAvgPool
        | LayerKind::Flatten
        | LayerKind::Dropout { .. }
        | LayerKind::Activation(_)
        | LayerKind::Shortcut { .. } => None,
    }
}

/// The word default names start with; `None` for a shortcut, which is named by its
/// place, and for `from`, which has no output of its own.
pub(super) fn kind_word(kind: &LayerKind) -> Option<&'static str> {
    Some(match kind {
        LayerKind::Conv { .. } => "conv",
        LayerKind::MaxPool { .. } | LayerKind::GlobalMaxPool => "maxpool",
        LayerKind::ConvTranspose { .. } => "convtranspose",
        LayerKind::Concat(_) => "concat",
        LayerKind::Add { .. } => "add",
        LayerKind::Mul { .. } => "mul",
        LayerKind::Upsample { .. } => "upsample",
        // `from` takes no name and counts as nothing.
        LayerKind::From(_) => return None,
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
