//! `cnn! { model Name { ... } }` and `cnn!(file = "models/lenet.cnn")`: a `.cnn`
//! model compiled to a specialized Rust struct at build time.
//!
//! A thin shell: tokens to text (keeping a map back to the tokens' spans), then
//! `cnnc::compile_with_warnings` and `cnnc::codegen::generate`. Every error lands on
//! the tokens it is about, with its code, label, secondary places and hint in its
//! text; a warning is a compiler warning there (see `report`). After an error a stub
//! of each model keeps rustc from cascading.

mod report;

use cnnc::diag::{Code, Diagnostics};
use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use std::ops::Range;

/// Compiles `.cnn` models into Rust structs implementing `cnnc::Model` (and
/// `cnnc::Train` when the model has a train block). See the crate docs of `cnnc`.
#[proc_macro]
pub fn cnn(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    expand(input.into()).into()
}

fn expand(input: TokenStream) -> TokenStream {
    if let Some((path, span)) = file_argument(&input) {
        return expand_file(&path, span);
    }
    let (text, spans) = rebuild(&input);
    let (result, warnings) = cnnc::compile_with_warnings(&text);
    let warnings: TokenStream = warnings.iter().map(|w| report::diagnostic(w, &text, &spans)).collect();
    match result {
        Ok(models) => {
            let code = cnnc::codegen::generate(&models);
            quote!(#warnings #code)
        }
        Err(diags) => {
            let errors = diags.iter().map(|d| report::diagnostic(d, &text, &spans));
            let stubs = stubs(&model_names(&input), &refused_names(&diags, &text));
            quote!(#(#errors)* #warnings #stubs)
        }
    }
}

/// `file = "path"`: the path and the literal's span.
fn file_argument(input: &TokenStream) -> Option<(String, Span)> {
    let tokens: Vec<TokenTree> = input.clone().into_iter().collect();
    match tokens.as_slice() {
        [TokenTree::Ident(i), TokenTree::Punct(p), TokenTree::Literal(l)] if i == "file" && p.as_char() == '=' => {
            let lit: syn::LitStr = syn::parse2(TokenStream::from(TokenTree::Literal(l.clone()))).ok()?;
            Some((lit.value(), l.span()))
        }
        _ => None,
    }
}

fn expand_file(path: &str, span: Span) -> TokenStream {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let full = std::path::Path::new(&dir).join(path);
    let shown = full.display().to_string();
    let text = match std::fs::read_to_string(&full) {
        Ok(t) => t,
        Err(e) => return report::spanned_error(span, span, &format!("cannot read {shown}: {e}")),
    };
    // Rebuild when the file changes.
    let track = quote_spanned!(span=> const _: &str = include_str!(#shown););
    let (result, warnings) = cnnc::compile_with_warnings(&text);
    match result {
        Ok(models) => {
            let code = cnnc::codegen::generate(&models);
            let warning = match warnings.is_empty() {
                true => TokenStream::new(),
                false => {
                    let message = format!("{path} has warnings:\n{}", warnings.render(path, &text));
                    report::warning(span, message.trim_end())
                }
            };
            quote!(#track #warning #code)
        }
        Err(diags) => {
            let refused = refused_names(&diags, &text);
            let mut all = diags;
            all.0.extend(warnings);
            all.0.sort_by_key(|d| d.span.start);
            let message = format!("{path} has errors:\n{}", all.render(path, &text));
            let error = report::spanned_error(span, span, message.trim_end());
            let names = text_model_names(&text);
            let stubs = stubs(&names, &refused);
            quote!(#track #error #stubs)
        }
    }
}

/// Rebuilds the text of the tokens, one space between tokens, with the byte range
/// of each token and its span.
fn rebuild(input: &TokenStream) -> (String, Vec<(Range<usize>, Span)>) {
    let mut text = String::new();
    let mut spans = Vec::new();
    rebuild_into(input.clone(), &mut text, &mut spans);
    (text, spans)
}

fn rebuild_into(input: TokenStream, text: &mut String, spans: &mut Vec<(Range<usize>, Span)>) {
    fn push(s: &str, span: Span, text: &mut String, spans: &mut Vec<(Range<usize>, Span)>) {
        // A minus sign stays attached to its number (`-0.1`), as the user wrote it.
        let signed_number = (text.ends_with(" -") || text == "-") && s.starts_with(|c: char| c.is_ascii_digit());
        if !text.is_empty() && !signed_number {
            text.push(' ');
        }
        let start = text.len();
        text.push_str(s);
        spans.push((start..text.len(), span));
    }
    for tree in input {
        match tree {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                push(open, g.span_open(), text, spans);
                rebuild_into(g.stream(), text, spans);
                push(close, g.span_close(), text, spans);
            }
            TokenTree::Ident(i) => push(&i.to_string(), i.span(), text, spans),
            TokenTree::Punct(p) => push(&p.as_char().to_string(), p.span(), text, spans),
            TokenTree::Literal(l) => push(&l.to_string(), l.span(), text, spans),
        }
    }
}

/// Each model's name and input size (`1x28x28`, `784`) at the top level of the
/// macro input, as far as they can be read.
fn model_names(input: &TokenStream) -> Vec<(String, String)> {
    let tokens: Vec<TokenTree> = input.clone().into_iter().collect();
    tokens
        .windows(3)
        .filter_map(|w| match (&w[0], &w[1], &w[2]) {
            (TokenTree::Ident(k), TokenTree::Ident(n), TokenTree::Group(body)) if k == "model" => {
                let words: Vec<String> = body.stream().into_iter().map(|t| t.to_string()).collect();
                let input = words
                    .windows(2)
                    .find(|w| w[0] == "input")
                    .map(|w| w[1].clone())
                    .unwrap_or_default();
                Some((n.to_string(), input))
            }
            _ => None,
        })
        .collect()
}

/// The same, from a file's text.
fn text_model_names(text: &str) -> Vec<(String, String)> {
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    words
        .iter()
        .enumerate()
        .filter(|(_, w)| **w == "model")
        .filter_map(|(i, _)| {
            let name = words.get(i + 1)?.to_string();
            let input = words[i + 2..]
                .windows(2)
                .take_while(|w| w[0] != "model")
                .find(|w| w[0] == "input")
                .map(|w| w[1].to_string())
                .unwrap_or_default();
            Some((name, input))
        })
        .collect()
}

/// Stand-ins for models that failed to compile: real generated models of the
/// same name and input, so the user's code that uses them (`Net::new`,
/// `Net::INPUT_SHAPE`, `fit`, the traits) type-checks and the only errors shown
/// are the model's own.
fn stubs(models: &[(String, String)], refused: &[&str]) -> TokenStream {
    models
        .iter()
        .filter(|(name, _)| syn::parse_str::<syn::Ident>(name).is_ok() && !refused.contains(&name.as_str()))
        .map(|(name, input)| cnnc::codegen::stub(name, input))
        .collect()
}

/// The model names the checker refused (`E011`): no stub is made for them, since a
/// struct of that name is what the error is about (`model Model` next to
/// `use cnnc::Model;` would add rustc's E0252 to the checker's error).
fn refused_names<'t>(diags: &Diagnostics, text: &'t str) -> Vec<&'t str> {
    diags
        .iter()
        .filter(|d| d.code == Some(Code::ModelName))
        .filter_map(|d| text.get(d.span.range()))
        .collect()
}
