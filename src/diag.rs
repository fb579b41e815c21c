//! Diagnostics are data: a span, a one-line message, an optional label under the
//! caret and an optional hint that names the fix. [`Diagnostic::render`] draws one
//! with its source line, the same way for `cnnc check`, `cnn!(file = ...)` and the
//! snapshot tests.

use std::fmt::Write as _;
use std::ops::Range;

/// A byte range in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    pub fn range(self) -> Range<usize> {
        self.start..self.end
    }
}

impl From<pest::Span<'_>> for Span {
    fn from(s: pest::Span<'_>) -> Self {
        Span::new(s.start(), s.end())
    }
}

/// One error, located in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub span: Span,
    /// What is wrong, worded as a fact.
    pub message: String,
    /// A short text under the caret.
    pub label: Option<String>,
    /// The fix, where one exists.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            span,
            message: message.into(),
            label: None,
            hint: None,
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Renders the diagnostic rustc-style: message, `file:line:col`, the source line,
    /// a caret under the span, and the hint.
    pub fn render(&self, file_name: &str, source: &str) -> String {
        let mut start = self.span.start.min(source.len());
        while !source.is_char_boundary(start) {
            start -= 1;
        }
        let (line, col) = line_col(source, start);
        let line_start = start + 1 - col;
        let line_text = source[line_start..].lines().next().unwrap_or("");
        // `lines` drops the `\r` of a `\r\n`: a span starting at that `\n` starts past
        // the text shown.
        let line_end = (line_start + line_text.len()).max(start);
        let end = self.span.end.clamp(start, line_end);
        let caret_col = source[line_start..start].chars().count();
        let carets = source.get(start..end).map_or(1, |s| s.chars().count().max(1));
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let mut out = String::new();
        let _ = writeln!(out, "error: {}", self.message);
        let _ = writeln!(out, "{pad}--> {file_name}:{line}:{}", caret_col + 1);
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{line} | {line_text}");
        let _ = write!(out, "{pad} | {}{}", " ".repeat(caret_col), "^".repeat(carets));
        match &self.label {
            Some(label) => {
                let _ = writeln!(out, " {label}");
            }
            None => out.push('\n'),
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "{pad} = hint: {hint}");
        }
        out
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of a byte offset; an offset past the end
/// is placed at the end.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, offset - line_start + 1)
}

/// All the errors of one compilation, in source order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Every diagnostic rendered, separated by blank lines.
    pub fn render(&self, file_name: &str, source: &str) -> String {
        let parts: Vec<String> = self.0.iter().map(|d| d.render(file_name, source)).collect();
        parts.join("\n")
    }
}

impl std::fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Edit distance with adjacent transpositions (optimal string alignment), for
/// "did you mean": `adma` is one edit from `adam`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j - 1] + cost).min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = word.chars().count();
    // No keyword is this long: a long word is not a typo of one.
    if len > 40 {
        return None;
    }
    let limit = (len / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(d, c)| d <= limit || (c.starts_with(word) && word.len() >= 2))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("kernal", ["kernel", "stride"]), Some("kernel"));
        assert_eq!(did_you_mean("maxpol", ["maxpool", "avgpool"]), Some("maxpool"));
        assert_eq!(did_you_mean("banana", ["kernel", "stride"]), None);
        assert_eq!(did_you_mean("adma", ["sgd", "adam", "adamw"]), Some("adam"));
    }

    #[test]
    fn renders_spans_at_the_end_of_a_crlf_line() {
        let src = "model M {\r\n}";
        for start in 0..=src.len() + 1 {
            let d = Diagnostic::error(Span::new(start, start + 1), "here");
            assert!(d.render("m.cnn", src).contains("--> m.cnn:"));
        }
        let d = Diagnostic::error(Span::new(10, 11), "at the newline");
        assert!(
            d.render("m.cnn", src).contains("--> m.cnn:1:11"),
            "{}",
            d.render("m.cnn", src)
        );
    }

    #[test]
    fn renders_caret_under_span() {
        let src = "model M {\n    conv 3 kernl 3\n}\n";
        let start = src.find("kernl").unwrap();
        let d = Diagnostic::error(Span::new(start, start + 5), "unknown word `kernl`")
            .with_label("here")
            .with_hint("did you mean `kernel`?");
        let text = d.render("m.cnn", src);
        assert_eq!(
            text,
            "error: unknown word `kernl`\n --> m.cnn:2:12\n  |\n2 |     conv 3 kernl 3\n  |            ^^^^^ here\n  = hint: did you mean `kernel`?\n"
        );
    }
}
