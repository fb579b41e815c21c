//! v3 joins: the output shapes of `concat`, `add` and `mul`, and their errors,
//! which name both shapes and both lines, and, for a height and width that do not
//! agree, the layers that rounded on the way.

use super::layer::shape_len;
use super::scope::{Entry, Resolved, Scope};
use super::MAX_ELEMENTS;
use crate::diag::{shorten, Code, Diagnostic, Diagnostics, Span};
use crate::ir::{self, Shape};
use crate::syntax::ast;

/// The tensor a join starts from: the current one, and the item it came from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Current {
    pub(super) shape: Shape,
    /// The keyword of the item that produced it.
    pub(super) span: Span,
}

/// A join item: its display name and keyword.
pub(super) struct Join<'a> {
    pub(super) name: &'a str,
    pub(super) keyword: Span,
}

/// `concat NAME+`: channels of the current tensor, then each named one's (equal
/// height and width); vectors end to end.
pub(super) fn concat(
    join: &Join,
    current: Current,
    others: &[(&ast::Spanned<String>, Resolved)],
    scope: &Scope,
    diags: &mut Diagnostics,
) -> Option<(ir::Op, Shape)> {
    let mut refs = Vec::new();
    let mut out = current.shape;
    for (written, resolved) in others {
        let shape = resolved.entry.shape?;
        out = match (out, shape) {
            (Shape::Image { c, h, w }, Shape::Image { c: c2, h: h2, w: w2 }) if (h, w) == (h2, w2) => {
                Shape::Image { c: c + c2, h, w }
            }
            (Shape::Vector(a), Shape::Vector(b)) => Shape::Vector(a + b),
            (Shape::Image { .. }, Shape::Image { .. }) => {
                let d = mismatch(
                    join,
                    current,
                    written,
                    &resolved.entry,
                    "concat needs the same height and width",
                )
                .with_hint(size_hint(
                    scope,
                    "concat joins along the channels: the heights and widths must agree",
                ));
                diags.push(d);
                return None;
            }
            _ => {
                let d = mismatch(
                    join,
                    current,
                    written,
                    &resolved.entry,
                    "concat cannot join an image and a vector",
                )
                .with_hint("`flatten` the image first to join vectors, or join images only");
                diags.push(d);
                return None;
            }
        };
        refs.push(resolved.to_ref()?);
    }
    if shape_len(out) > MAX_ELEMENTS {
        diags.push(Diagnostic::new(
            Code::TooLarge,
            join.keyword,
            format!(
                "{} outputs {out}, more than {MAX_ELEMENTS} values per sample",
                join.name
            ),
        ));
        return None;
    }
    Some((ir::Op::Concat(refs), out))
}

/// `add NAME`: equal shapes.
pub(super) fn add(
    join: &Join,
    current: Current,
    other: &ast::Spanned<String>,
    resolved: &Resolved,
    scope: &Scope,
    diags: &mut Diagnostics,
) -> Option<(ir::Op, Shape)> {
    let shape = resolved.entry.shape?;
    if shape != current.shape {
        let hint = match (current.shape, shape) {
            (Shape::Image { c, h, w }, Shape::Image { c: c2, h: h2, w: w2 }) if (h, w) == (h2, w2) && c != c2 => {
                format!(
                "the channels differ ({c} and {c2}): a `conv {c} kernel 1` on `{}` (read with `from`) makes them agree",
                shorten(&other.value)
            )
            }
            (Shape::Image { .. }, Shape::Image { .. }) => size_hint(scope, "add needs the same shape on both sides"),
            _ => "add needs the same shape on both sides".to_string(),
        };
        diags.push(mismatch(join, current, other, &resolved.entry, "add needs equal shapes").with_hint(hint));
        return None;
    }
    Some((ir::Op::Add(resolved.to_ref()?), shape))
}

/// `mul NAME`: equal shapes, or a Cx1x1 side broadcast over the other's HxW.
pub(super) fn mul(
    join: &Join,
    current: Current,
    other: &ast::Spanned<String>,
    resolved: &Resolved,
    scope: &Scope,
    diags: &mut Diagnostics,
) -> Option<(ir::Op, Shape)> {
    let shape = resolved.entry.shape?;
    let out = match (current.shape, shape) {
        (a, b) if a == b => a,
        (Shape::Image { c, h: 1, w: 1 }, big @ Shape::Image { c: c2, .. }) if c == c2 => big,
        (big @ Shape::Image { c, .. }, Shape::Image { c: c2, h: 1, w: 1 }) if c == c2 => big,
        _ => {
            let hint = match (current.shape, shape) {
                (Shape::Image { c: g, h: 1, w: 1 }, Shape::Image { c, .. })
                | (Shape::Image { c, .. }, Shape::Image { c: g, h: 1, w: 1 }) => format!(
                    "a Cx1x1 gate needs the other side's channels: the gate has {g} and the other side {c};                      end the gate with `conv {c} kernel 1 hardsigmoid`"
                ),
                (Shape::Image { .. }, Shape::Image { .. }) => size_hint(
                    scope,
                    "mul needs equal shapes, or a Cx1x1 gate with the other side's C channels (squeeze-and-excitation)",
                ),
                _ => "mul needs equal shapes, or a Cx1x1 gate with the other side's C channels".to_string(),
            };
            diags.push(
                mismatch(
                    join,
                    current,
                    other,
                    &resolved.entry,
                    "mul needs equal shapes or a Cx1x1 side",
                )
                .with_hint(hint),
            );
            return None;
        }
    };
    Some((ir::Op::Mul(resolved.to_ref()?), out))
}

/// The error of a join whose operands do not fit: at the name, with both shapes
/// and both lines.
fn mismatch(join: &Join, current: Current, written: &ast::Spanned<String>, other: &Entry, rule: &str) -> Diagnostic {
    let name = shorten(&written.value);
    let shape = other.shape.map_or("?".to_string(), |s| s.to_string());
    Diagnostic::new(
        Code::JoinShape,
        written.span,
        format!(
            "{}: `{name}` is {shape} but the current tensor is {}; {rule}",
            join.name, current.shape
        ),
    )
    .with_label(shape.clone())
    .with_secondary(other.span, format!("`{name}` gives {shape}"))
    .with_secondary(
        current.span,
        format!("the current tensor, {}, comes from here", current.shape),
    )
}

/// For a height and width that do not agree: the layers that rounded on the way
/// (`maxpool2 floors 17 to 8`) and the input sizes that divide evenly.
fn size_hint(scope: &Scope, rule: &str) -> String {
    let visible = scope.visible();
    let mut rounded: Vec<&str> = visible.iter().filter_map(|e| e.rounded.as_deref()).collect();
    rounded.reverse();
    if rounded.is_empty() {
        return format!("{rule}; an `upsample` or a pooling layer on one side makes them agree");
    }
    let factor = visible.iter().fold([1usize, 1], |acc, e| {
        [acc[0].saturating_mul(e.stride[0]), acc[1].saturating_mul(e.stride[1])]
    });
    let sizes = match visible.iter().find(|e| e.name == ir::Ref::INPUT).and_then(|e| e.shape) {
        Some(Shape::Image { h, w, .. }) => {
            let up = |v: usize, f: usize| v.div_ceil(f).saturating_mul(f);
            format!(
                "; an input of {}x{} (multiples of {}x{}) divides evenly",
                up(h, factor[0]),
                up(w, factor[1]),
                factor[0],
                factor[1]
            )
        }
        _ => String::new(),
    };
    format!("{rule}: {}{sizes}", rounded.join(", "))
}
