//! Which `{` is never closed, when the file ends inside a block.
//!
//! Braces pair by nesting, so in
//!
//! ```text
//! model M {
//!     residual {
//!         conv 4 kernel 3
//!     flatten
//! }
//! ```
//!
//! the last `}` closes `residual {` and `model M {` is left open. The user's
//! indentation says otherwise: a `}` that starts a line closes the open block whose
//! line is indented as much, and the blocks opened inside it after that are the ones
//! never closed. That block is reported; without such a hint from the indentation,
//! the innermost open block is.

use crate::diag::{shorten, Code, Diagnostic, Span};

/// The error for a file that ends inside a block: at the `{` never closed, with the
/// end of the file as a second place; `fallback` (the parser's error at the end of
/// the file) when no `{` is open.
pub(super) fn unclosed_error(source: &str, fallback: Diagnostic) -> Diagnostic {
    let Some(open) = unclosed(source) else {
        return fallback.with_hint("a `{` is never closed: add `}` at the end of the block");
    };
    let end = source.trim_end().len();
    let hint = match open.closed_instead {
        Some((close, outer)) => {
            let line = source[..close].matches('\n').count() + 1;
            format!(
                "add `}}` where the block ends; by its indentation, the `}}` on line {line} closes `{}`",
                shorten(&outer)
            )
        }
        None => "add `}` where the block ends".to_string(),
    };
    Diagnostic::new(
        Code::Syntax,
        Span::new(open.brace, open.brace + 1),
        format!("`{}` is never closed", shorten(&open.head)),
    )
    .with_label("this `{` has no matching `}`")
    .with_secondary(Span::new(end, end), "the file ends here")
    .with_hint(hint)
}

/// A `{` left open at the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unclosed {
    /// The byte offset of the `{`.
    pub brace: usize,
    /// The text of its line up to and including the `{`, trimmed: `residual {`.
    pub head: String,
    /// The `}` that, by its indentation, closes the block around this one instead
    /// (its byte offset), and that block's head, if that is how it was found.
    pub closed_instead: Option<(usize, String)>,
}

/// The `{` never closed, if the text ends inside a block. Comments are skipped. One
/// pass over the text, whatever its lines' lengths.
pub(super) fn unclosed(source: &str) -> Option<Unclosed> {
    let bytes = source.as_bytes();
    // Each open `{` and the indentation of its line.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let mut guess: Option<(usize, usize, usize)> = None;
    // The current line's indentation, and whether only whitespace came before `i` on it.
    let (mut indent, mut blank) = (0usize, true);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = source[i + 2..].find("*/").map_or(bytes.len(), |n| i + n + 4);
                // A comment that spans lines leaves its last line's text before `i`.
                if source[i..end].contains('\n') {
                    indent = 0;
                }
                blank = false;
                i = end;
                continue;
            }
            b'\n' => (indent, blank) = (0, true),
            b' ' | b'\t' if blank => indent += 1,
            b'{' => {
                stack.push((i, indent));
                blank = false;
            }
            b'}' => {
                if let (None, true) = (guess, blank) {
                    // The open block whose line is indented as this `}` is.
                    let matching = stack.iter().rposition(|&(_, open)| open == indent);
                    if let Some(m) = matching.filter(|&m| m + 1 < stack.len()) {
                        guess = Some((stack[m + 1].0, i, stack[m].0));
                    }
                }
                stack.pop();
                blank = false;
            }
            _ => blank = false,
        }
        i += 1;
    }
    let (innermost, _) = *stack.last()?;
    let (brace, closed_instead) = match guess {
        Some((brace, close, outer)) => (brace, Some((close, head(source, outer)))),
        None => (innermost, None),
    };
    Some(Unclosed {
        brace,
        head: head(source, brace),
        closed_instead,
    })
}

/// The text of the line of the `{` at `brace`, up to and including it, trimmed.
fn head(source: &str, brace: usize) -> String {
    let line_start = source[..brace].rfind('\n').map_or(0, |n| n + 1);
    source[line_start..=brace].trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_the_indentation_leaves_open() {
        let src = "model M {\n    input 4x8x8\n    residual {\n        conv 4 kernel 3\n    flatten\n}\n";
        let u = unclosed(src).unwrap();
        assert_eq!((u.brace, u.head.as_str()), (src.find("l {").unwrap() + 2, "residual {"));
        assert_eq!(
            u.closed_instead,
            Some((src.rfind('}').unwrap(), "model M {".to_string()))
        );
    }

    #[test]
    fn the_innermost_open_block_otherwise() {
        let src = "model M { input 4 residual { dense 4 } train {";
        let u = unclosed(src).unwrap();
        assert_eq!((u.brace, u.head.as_str(), u.closed_instead), (src.len() - 1, src, None));
        assert_eq!(unclosed("model M { input 4 }"), None);
        assert_eq!(unclosed("model M { // {\n input 4 /* { */ }"), None);
        assert_eq!(
            unclosed("}}{"),
            Some(Unclosed {
                brace: 2,
                head: "}}{".into(),
                closed_instead: None
            })
        );
        // A `}` after a comment on its line does not start the line; one on the line
        // after a comment does.
        let src = "model M {\n    residual {\n        dense 4\n/* x */}\n";
        assert_eq!(unclosed(src).unwrap().closed_instead, None);
        let src = "model M {\n    residual {\n        dense 4 /* a\n */\n}\n";
        assert_eq!(unclosed(src).unwrap().head, "residual {");
    }

    #[test]
    fn one_long_line_is_linear() {
        let src = format!("model M {{ input 4 {}", "residual { dense 4 } ".repeat(200_000));
        let start = std::time::Instant::now();
        assert_eq!(unclosed(&src).unwrap().brace, 8);
        assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
    }
}
