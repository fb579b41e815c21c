//! v3 references: the names an item can see (the earlier items of its block and of
//! the blocks around it, and `input`), and the errors for the names it cannot
//! (itself, later items, items inside a closed block, unknown names).

use crate::diag::{did_you_mean, shorten, Code, Diagnostic, Diagnostics, Span};
use crate::ir::{self, Shape};
use crate::syntax::ast;

/// An item a later item may refer to.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// The name as written or defaulted in its block (`e1`, `conv3`).
    pub(super) name: String,
    /// The IR layer whose output the name refers to (the item's last layer, its
    /// activation shorthand included), or `input`.
    pub(super) ir: String,
    /// `None` when an earlier error left it unknown.
    pub(super) shape: Option<Shape>,
    /// The item's keyword, for the secondary label of a join error.
    pub(super) span: Span,
    /// `maxpool2 floors 17 to 8`: when the item's window dropped cells.
    pub(super) rounded: Option<String>,
    /// The product of its strides per axis (1 for items without a window).
    pub(super) stride: [usize; 2],
}

/// The names visible inside one block.
#[derive(Debug)]
pub(super) struct Scope<'p> {
    parent: Option<&'p Scope<'p>>,
    /// The block's items checked so far, in order.
    defined: Vec<Entry>,
    /// Every item name of the block with its span, checked or not.
    names: Vec<(String, Span)>,
    /// The item being checked (its index in `names`).
    at: usize,
    /// Names inside this block's closed blocks: (inner name, block name).
    hidden: Vec<(String, String)>,
}

/// What a reference resolved to.
pub(super) struct Resolved {
    pub(super) entry: Entry,
}

impl Resolved {
    /// The IR reference, when the shape is known.
    pub(super) fn to_ref(&self) -> Option<ir::Ref> {
        Some(ir::Ref {
            name: self.entry.ir.clone(),
            shape: self.entry.shape?,
            written: self.entry.name.clone(),
        })
    }
}

impl<'p> Scope<'p> {
    /// The model's scope: `input` and nothing else yet.
    pub(super) fn model(input: Option<Shape>, span: Span) -> Scope<'static> {
        Scope {
            parent: None,
            defined: vec![Entry {
                name: ir::Ref::INPUT.to_string(),
                ir: ir::Ref::INPUT.to_string(),
                shape: input,
                span,
                rounded: None,
                stride: [1, 1],
            }],
            names: Vec::new(),
            at: 0,
            hidden: Vec::new(),
        }
    }

    /// A block's scope inside `parent`, with its items' names.
    pub(super) fn block(parent: Option<&'p Scope<'p>>, names: Vec<(String, Span)>) -> Scope<'p> {
        Scope {
            parent,
            defined: Vec::new(),
            names,
            at: 0,
            hidden: Vec::new(),
        }
    }

    /// A fresh scope for `names` on top of this one's items (a residual body's
    /// items for its shortcut): the body's defined items stay visible.
    pub(super) fn set_names(&mut self, names: Vec<(String, Span)>) {
        self.names = names;
        self.at = 0;
    }

    pub(super) fn enter(&mut self, index: usize) {
        self.at = index;
    }

    pub(super) fn define(&mut self, entry: Entry) {
        self.defined.push(entry);
    }

    /// Marks the names inside a closed block as not visible from here.
    pub(super) fn hide(&mut self, inner: impl IntoIterator<Item = String>, block: &str) {
        self.hidden.extend(inner.into_iter().map(|n| (n, block.to_string())));
    }

    /// The names of this block's defined items.
    pub(super) fn item_names(&self) -> impl Iterator<Item = String> + '_ {
        self.defined.iter().map(|e| e.name.clone())
    }

    /// Every entry visible from here, innermost first.
    pub(super) fn visible(&self) -> Vec<&Entry> {
        let mut out: Vec<&Entry> = self.defined.iter().rev().collect();
        if let Some(p) = self.parent {
            out.extend(p.visible());
        }
        out
    }

    /// Looks `name` up; reports why it cannot be read when it cannot.
    pub(super) fn resolve(&self, name: &ast::Spanned<String>, diags: &mut Diagnostics) -> Option<Resolved> {
        let mut scope = Some(self);
        while let Some(s) = scope {
            if let Some(e) = s.defined.iter().rev().find(|e| e.name == name.value) {
                return Some(Resolved { entry: e.clone() });
            }
            if let Some((i, (_, span))) = s.names.iter().enumerate().find(|(_, (n, _))| *n == name.value) {
                let shown = shorten(&name.value);
                let (message, hint) = if i == s.at {
                    (
                        format!("`{shown}` refers to the item that contains this reference"),
                        "an item cannot read its own output; name an earlier item".to_string(),
                    )
                } else {
                    (
                        format!("`{shown}` is a later item: a reference must name an earlier one"),
                        format!("move the item that reads `{shown}` after it, or read an earlier item"),
                    )
                };
                diags.push(
                    Diagnostic::new(Code::Reference, name.span, message)
                        .with_secondary(*span, format!("`{shown}` is defined here"))
                        .with_hint(hint),
                );
                return None;
            }
            scope = s.parent;
        }
        let shown = shorten(&name.value);
        let mut scope = Some(self);
        while let Some(s) = scope {
            if let Some((_, block)) = s.hidden.iter().find(|(n, _)| *n == name.value) {
                let block = shorten(block);
                diags.push(
                    Diagnostic::new(
                        Code::Reference,
                        name.span,
                        format!("`{shown}` is inside `{block}`, whose items are not visible outside it"),
                    )
                    .with_hint(format!(
                        "read the block's output, `{block}`, or move the reference into the block"
                    )),
                );
                return None;
            }
            scope = s.parent;
        }
        let visible = self.visible();
        let mut d = Diagnostic::new(
            Code::UnknownName,
            name.span,
            format!("no earlier item is named `{shown}`"),
        );
        let candidates: Vec<&str> = visible.iter().map(|e| e.name.as_str()).collect();
        d = match did_you_mean(&name.value, candidates.iter().copied()) {
            Some(close) => d.with_hint(format!("did you mean `{close}`?")),
            None => {
                let mut names: Vec<&str> = candidates.clone();
                names.truncate(8);
                d.with_hint(format!("the names visible here: {}", names.join(", ")))
            }
        };
        diags.push(d);
        None
    }
}
