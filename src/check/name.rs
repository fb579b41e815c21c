//! Model names: a model's name becomes a Rust type name (`cnn!` generates
//! `struct NAME`), so it must be one that Rust accepts there and that does not
//! collide with the names the generated code and the README's imports use.

use crate::diag::{shorten, Code, Diagnostic, Diagnostics};
use crate::syntax::ast;

/// Rust's strict and reserved keywords (every edition), which no type can be named.
const RUST_KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if", "impl", "in",
    "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static", "struct", "super",
    "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn", "abstract", "become", "box",
    "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// Rust's primitive types: a model named so would shadow them in the generated code.
const RUST_PRIMITIVES: &[&str] = &[
    "bool", "char", "str", "f32", "f64", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128",
    "usize",
];

/// Types of Rust's prelude that generated code names unqualified (`Vec<f32>`, ...):
/// a model named so would hide them.
const RUST_PRELUDE_TYPES: &[&str] = &["Vec", "Box", "Option", "Result", "String"];

/// The traits and types the README has users import next to a model
/// (`use cnnc::{Model, Target, Train};`): a model named so would collide with the
/// import (rustc's E0252 at the `cnn!` call).
const CNNC_IMPORTS: &[(&str, &str)] = &[("Model", "trait"), ("Train", "trait"), ("Target", "type")];

/// A model's name becomes a Rust type name (`cnn!` generates `struct NAME`): it must
/// be an identifier that Rust accepts there.
pub(super) fn check_model_name(name: &ast::Spanned<String>, diags: &mut Diagnostics) {
    let n = name.value.as_str();
    let valid_ident = n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let suggestion = {
        let mut chars = n.trim_matches('_').chars();
        match chars.next() {
            Some(first) => format!("{}{}Net", first.to_ascii_uppercase(), chars.as_str()),
            None => "Net".to_string(),
        }
    };
    let error = if n.chars().all(|c| c == '_') {
        Some((
            format!("`{}` cannot name a model", shorten(n)),
            format!("the model's name becomes a Rust type name, and `_` alone is not one; write a name such as `{suggestion}`"),
        ))
    } else if RUST_KEYWORDS.contains(&n) {
        Some((
            format!("`{n}` is a Rust keyword, so it cannot name a model"),
            format!("the model's name becomes a Rust type name; choose another, such as `{suggestion}`"),
        ))
    } else if RUST_PRELUDE_TYPES.contains(&n) {
        Some((
            format!("`{n}` is a type of Rust's prelude, so it cannot name a model"),
            format!("the generated code uses `{n}`, which a model of that name would hide; choose another, such as `{suggestion}`"),
        ))
    } else if let Some((_, kind)) = CNNC_IMPORTS.iter().find(|(i, _)| *i == n) {
        Some((
            format!("`{n}` is the name of the {kind} `cnnc::{n}`, so it cannot name a model"),
            format!("code that uses a model imports `use cnnc::{{Model, Target, Train}};`, and a struct named `{n}` would collide with that import (rustc's E0252); choose another name, such as `{suggestion}`"),
        ))
    } else if RUST_PRIMITIVES.contains(&n) {
        Some((
            format!("`{n}` is a Rust primitive type, so it cannot name a model"),
            format!("the generated code uses `{n}`, which a model of that name would hide; choose another, such as `{suggestion}`"),
        ))
    } else if !valid_ident {
        Some((
            format!("`{}` is not a valid model name", shorten(n)),
            "a model name is a Rust type name: letters, digits and `_`, not starting with a digit".to_string(),
        ))
    } else {
        None
    };
    if let Some((message, hint)) = error {
        diags.push(Diagnostic::new(Code::ModelName, name.span, message).with_hint(hint));
    }
}
