//! Diagnostics as the compiler shows them: an error as `compile_error!` at the tokens
//! it is about, a warning as a deprecation warning there (stable Rust has no other
//! way for a macro to warn). The text keeps what `cnnc check` shows: the code, the
//! label, each secondary place with its words and line, and the hint.

use cnnc::Diagnostic;
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote_spanned;
use std::ops::Range;

/// The tokens of the macro input: each one's byte range in the rebuilt text, and its span.
pub(crate) type Spans = [(Range<usize>, Span)];

/// A compile error (or, for a warning, a deprecation warning) for `d`.
pub(crate) fn diagnostic(d: &Diagnostic, text: &str, spans: &Spans) -> TokenStream {
    let (first, last) = locate(spans, d.span.range());
    let message = message(d, text, spans);
    if d.is_warning() {
        warning(first, &message)
    } else {
        spanned_error(first, last, &message)
    }
}

/// `[E033] message`, then `= note:` lines for the label and the secondary places,
/// then `= hint:`.
fn message(d: &Diagnostic, text: &str, spans: &Spans) -> String {
    let mut message = match d.code {
        Some(code) => format!("[{code}] {}", d.message),
        None => d.message.clone(),
    };
    if let Some(label) = &d.label {
        message.push_str("\n  = note: ");
        message.push_str(label);
    }
    // In source order, as `cnnc check` draws them.
    let mut secondary: Vec<&cnnc::diag::Label> = d.secondary.iter().collect();
    secondary.sort_by_key(|place| place.span.start);
    for place in secondary {
        let words = text.get(place.span.range()).unwrap_or("").trim();
        let (first, _) = locate(spans, place.span.range());
        // "`conv` on line 7: the body ends here with 16x8x8"
        let head: Vec<String> = [
            (!words.is_empty()).then(|| format!("`{}`", cnnc::diag::shorten(words))),
            line(first).map(|line| format!("on line {line}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        message.push_str("\n  = note: ");
        if !head.is_empty() {
            message.push_str(&head.join(" "));
            message.push_str(": ");
        }
        message.push_str(&place.text);
    }
    if let Some(hint) = &d.hint {
        message.push_str("\n  = hint: ");
        message.push_str(hint);
    }
    message
}

/// The line (1-based) of a token, when the compiler can say.
fn line(span: Span) -> Option<usize> {
    proc_macro::is_available().then(|| span.unwrap().line())
}

/// The spans of the first and last tokens that a text range touches.
pub(crate) fn locate(spans: &Spans, range: Range<usize>) -> (Span, Span) {
    let end = range.end.max(range.start + 1);
    let touching: Vec<Span> = spans
        .iter()
        .filter(|(r, _)| r.start < end && range.start < r.end)
        .map(|(_, s)| *s)
        .collect();
    match (touching.first(), touching.last()) {
        (Some(f), Some(l)) => (*f, *l),
        // Past the end (e.g. a missing `}`): the last token.
        _ => spans
            .last()
            .map_or((Span::call_site(), Span::call_site()), |(_, s)| (*s, *s)),
    }
}

/// `compile_error!` covering the tokens from `first` to `last`.
pub(crate) fn spanned_error(first: Span, last: Span, message: &str) -> TokenStream {
    let mut tokens = TokenStream::new();
    tokens.extend([
        TokenTree::Ident(proc_macro2::Ident::new("a", first)),
        TokenTree::Ident(proc_macro2::Ident::new("b", last)),
    ]);
    syn::Error::new_spanned(tokens, message).to_compile_error()
}

/// A warning at `span`: the use of a deprecated constant whose note is the message
/// (`warning: use of deprecated constant ...: [W001] ...`). It does not stop the
/// build; `#[allow(deprecated)]` on the enclosing module silences it.
pub(crate) fn warning(span: Span, message: &str) -> TokenStream {
    let name = proc_macro2::Ident::new("cnn_warning", span);
    quote_spanned! {span=>
        const _: () = {
            #[deprecated(note = #message)]
            #[allow(non_upper_case_globals)]
            const cnn_warning: () = ();
            #name
        };
    }
}
