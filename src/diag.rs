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
    /// Other places the error is about: the first definition of a duplicate name,
    /// the shortcut whose shape disagrees with the body, ...
    pub secondary: Vec<Label>,
}

/// A secondary place in the source, with a short text under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            span,
            message: message.into(),
            label: None,
            hint: None,
            secondary: Vec::new(),
        }
    }

    /// Adds a secondary place, such as "first defined here".
    pub fn with_secondary(mut self, span: Span, text: impl Into<String>) -> Self {
        self.secondary.push(Label {
            span,
            text: text.into(),
        });
        self
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
        self.render_with(file_name, source, &LineIndex::new(source))
    }

    fn render_with(&self, file_name: &str, source: &str, lines: &LineIndex) -> String {
        let mut start = self.span.start.min(source.len());
        while !source.is_char_boundary(start) {
            start -= 1;
        }
        let (line, line_start, line_text, ascii) = lines.line_of(source, start);
        // A span may start at the `\n` of a `\r\n`, past the line's text (which has no
        // `\r`), and end anywhere: the carets stay on the line.
        let end = self.span.end.clamp(start, (line_start + line_text.len()).max(start)) - line_start;
        let column = if ascii {
            start - line_start
        } else {
            source[line_start..start].chars().count()
        };
        let (line_text, caret_col, carets) = shown_part(line_text, start - line_start, end);
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let mut out = String::new();
        let _ = writeln!(out, "error: {}", self.message);
        let _ = writeln!(out, "{pad}--> {file_name}:{line}:{}", column + 1);
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

/// The longest source line shown whole, in characters; a longer one is shown as a
/// window around the caret, so that each diagnostic stays a few lines long.
const MAX_SHOWN: usize = 120;

/// The characters in `text[from..to]`, where `to` may be past the end of `text` by
/// the `\r` of a `\r\n` (which counts as one); offsets inside a character are taken
/// back to its start.
fn chars_between(text: &str, from: usize, to: usize) -> usize {
    let inside = floor_boundary(text, to);
    let from = floor_boundary(text, from).min(inside);
    text[from..inside].chars().count() + to.saturating_sub(text.len())
}

/// The largest char boundary of `text` at or before `i`.
fn floor_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// What to show of `line` for a span from byte `start` to byte `end` of it: the
/// text, the caret's column in it, the number of carets (at least one). A line of
/// at most MAX_SHOWN bytes is shown whole; a longer one as `...`, about MAX_SHOWN
/// bytes around the caret, `...`. Work per call is bounded by the text shown (and
/// the span), not by the line, so that many errors on one long line stay cheap.
fn shown_part(line: &str, start: usize, end: usize) -> (String, usize, usize) {
    let carets = |to: usize| chars_between(line, start, end.min(to)).max(1);
    if line.len() <= MAX_SHOWN {
        return (line.to_string(), chars_between(line, 0, start), carets(usize::MAX));
    }
    let inside = start.min(line.len());
    let from = floor_boundary(
        line,
        inside
            .saturating_sub(MAX_SHOWN / 3)
            .min(line.len().saturating_sub(MAX_SHOWN)),
    );
    let to = floor_boundary(line, from + MAX_SHOWN);
    let mut text = String::with_capacity(MAX_SHOWN + 6);
    let mut col = chars_between(line, from, start);
    if from > 0 {
        text.push_str("...");
        col += 3;
    }
    text.push_str(&line[from..to]);
    if to < line.len() {
        text.push_str("...");
    }
    // None past the text shown, but one may sit just after it.
    (text, col, carets(to))
}

/// Where each line starts, to locate many diagnostics in one text without
/// rescanning it for each.
struct LineIndex {
    starts: Vec<usize>,
    /// Whether each line is ASCII: then its columns are byte offsets.
    ascii: Vec<bool>,
}

impl LineIndex {
    fn new(source: &str) -> Self {
        let starts: Vec<usize> = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let ascii = starts
            .iter()
            .enumerate()
            .map(|(i, &s)| source[s..starts.get(i + 1).copied().unwrap_or(source.len())].is_ascii())
            .collect();
        LineIndex { starts, ascii }
    }

    /// For a byte offset (a char boundary): its 1-based line, the offset the line
    /// starts at, the line's text (without `\r\n` or `\n`), and whether it is ASCII.
    fn line_of<'s>(&self, source: &'s str, offset: usize) -> (usize, usize, &'s str, bool) {
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let end = self.starts.get(line).map_or(source.len(), |next| next - 1);
        let text = &source[start..end];
        // As `str::lines`: `\r\n` ends a line, a lone `\r` at the end of the text does not.
        let text = match self.starts.get(line) {
            Some(_) => text.strip_suffix('\r').unwrap_or(text),
            None => text,
        };
        (line, start, text, self.ascii[line - 1])
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

/// A word of the source as a message quotes it: whole, or its first 40 characters
/// and `...`, so that a megabyte-long name makes a one-line message.
pub fn shorten(word: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 40;
    match word.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &word[..cut]).into(),
        None => word.into(),
    }
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
        let lines = LineIndex::new(source);
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|d| d.render_with(file_name, source, &lines))
            .collect();
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
    fn long_lines_are_shown_around_the_caret() {
        let src = format!(
            "model M {{ input 4 {} dense 0 {} }}",
            "relu ".repeat(100),
            "tanh ".repeat(100)
        );
        let start = src.find("dense 0").unwrap() + 6;
        let d = Diagnostic::error(Span::new(start, start + 1), "zero units");
        let text = d.render("m.cnn", &src);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], format!(" --> m.cnn:1:{}", start + 1));
        assert!(lines[3].starts_with("1 | ...") && lines[3].ends_with("..."), "{text}");
        assert!(lines[3].chars().count() < 140, "{text}");
        // The caret is under the `0`.
        let caret = lines[4].find('^').unwrap();
        assert_eq!(&lines[3][caret..caret + 1], "0", "{text}");
        // Near either end of the line, the window reaches that end.
        for start in [0, src.len() - 1, src.len()] {
            let text = Diagnostic::error(Span::new(start, src.len()), "here").render("m.cnn", &src);
            let lines: Vec<&str> = text.lines().collect();
            let caret = lines[4].find('^').unwrap();
            assert!(lines[4].len() - caret <= 122, "{text}");
            if start < src.len() {
                assert_eq!(lines[3][caret..].chars().next(), src[start..].chars().next(), "{text}");
            }
        }
    }

    #[test]
    fn many_diagnostics_on_one_long_line_stay_linear() {
        let src = format!("model M {{ input 4 {}}}", "dropout 2 ".repeat(20_000));
        let diags = Diagnostics(
            (0..20_000)
                .map(|i| Diagnostic::error(Span::new(18 + 10 * i, 27 + 10 * i), "out of range"))
                .collect(),
        );
        let text = diags.render("m.cnn", &src);
        assert!(text.len() < 20_000 * 400, "{} bytes", text.len());
    }

    #[test]
    fn long_words_are_shortened() {
        assert_eq!(shorten("conv1"), "conv1");
        assert_eq!(shorten(&"é".repeat(40)), "é".repeat(40));
        assert_eq!(shorten(&"é".repeat(41)), format!("{}...", "é".repeat(40)));
    }

    #[test]
    fn renders_any_span_of_any_text() {
        let long = format!("{}\u{1F600}{}\r\nz", "é".repeat(100), "a b ".repeat(60));
        let texts = ["model M {\r\n  input 4\r\n}\r", "é\u{1F600}x\ny\n\n", &long, "", "\n"];
        for src in texts {
            for start in 0..src.len() + 2 {
                for end in [0, start, start + 1, start + 3, start + 200, usize::MAX] {
                    let d = Diagnostic::error(Span::new(start, end), "here").with_label("l");
                    let text = d.render("m.cnn", src);
                    assert!(text.contains("--> m.cnn:"), "{text}");
                    assert!(text.lines().count() <= 6, "{text}");
                    assert!(text.lines().all(|l| l.chars().count() < 150), "{text}");
                }
            }
        }
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
