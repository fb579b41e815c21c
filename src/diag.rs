//! Diagnostics are data: an error code, a span, a one-line message, an optional
//! label under the caret, secondary places with their own labels, and an optional
//! hint that names the fix. [`Diagnostic::render`] draws one with its source lines,
//! rustc's way (error line, `-->` location, snippet, `= hint:`), the same for
//! `cnnc check`, `cnn!(file = ...)` and the snapshot tests.
//!
//! The renderer is written here rather than taken from `annotate-snippets` (which
//! rustc uses) for a measured reason: that crate lays out the whole source line of
//! every diagnostic, so 20,000 errors on one 200 KB line (the fuzzing case in
//! `tests/integration/fuzz_regressions.rs`) took more than 60 s with annotate-snippets 0.12.18
//! (1,000 of them: 0.4 s, growing with errors x line length), against 0.3 s here
//! (6 MB of text; release build, measured on this project's 2-core machine).
//! Handing it only a window of the line instead would make its `-->` column count
//! from the window, not the line. This renderer shows a long line as a window around
//! the caret, so each diagnostic costs what it shows.

use std::fmt::Write as _;
use std::ops::Range;
use unicode_width::UnicodeWidthChar as _;

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

/// The kind of mistake a diagnostic reports: `E050` and its one-line description
/// (docs/language.md lists them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    Syntax,
    BadNumber,
    NoModel,
    TooDeep,
    DuplicateModel,
    ModelName,
    TooLarge,
    Input,
    Normalize,
    DuplicateName,
    DefaultName,
    Shortcut,
    ResidualShape,
    /// A name (`freeze`, v3's references) that refers to no item.
    UnknownName,
    /// v3: a reference to the item itself, to a later item or into a closed
    /// block; a named or misplaced `from`.
    Reference,
    Repeated,
    NotAllowed,
    Missing,
    WindowArithmetic,
    Padding,
    Size,
    Groups,
    InputKind,
    /// v3: `concat`, `add` or `mul` on shapes that do not fit together.
    JoinShape,
    Range,
    LossLayer,
    Nesterov,
    Augment,
    /// A warning: `input 32x32x3` (height x width x channels).
    ChannelsLast,
    /// A warning: a final softmax on an image smaller than the input.
    PositionSoftmax,
}

impl Code {
    /// Every code, in the order of their numbers.
    pub const ALL: [Code; 30] = [
        Code::Syntax,
        Code::BadNumber,
        Code::NoModel,
        Code::TooDeep,
        Code::DuplicateModel,
        Code::ModelName,
        Code::TooLarge,
        Code::Input,
        Code::Normalize,
        Code::DuplicateName,
        Code::DefaultName,
        Code::Shortcut,
        Code::ResidualShape,
        Code::UnknownName,
        Code::Reference,
        Code::Repeated,
        Code::NotAllowed,
        Code::Missing,
        Code::WindowArithmetic,
        Code::Padding,
        Code::Size,
        Code::Groups,
        Code::InputKind,
        Code::JoinShape,
        Code::Range,
        Code::LossLayer,
        Code::Nesterov,
        Code::Augment,
        Code::ChannelsLast,
        Code::PositionSoftmax,
    ];

    /// `E001`, ...
    pub fn id(self) -> &'static str {
        self.info().0
    }

    /// A warning (`W001`, ...): the text is valid but likely not what was meant. A
    /// warning does not stop a model from compiling.
    pub fn is_warning(self) -> bool {
        self.id().starts_with('W')
    }

    /// What kind of mistake it is, in a few words.
    pub fn title(self) -> &'static str {
        self.info().1
    }

    fn info(self) -> (&'static str, &'static str) {
        match self {
            Code::Syntax => ("E001", "a word the grammar does not accept there"),
            Code::BadNumber => ("E002", "a number too large to represent"),
            Code::NoModel => ("E003", "a file without a model"),
            Code::TooDeep => ("E004", "blocks nested too deep"),
            Code::DuplicateModel => ("E010", "two models with one name"),
            Code::ModelName => ("E011", "a model name that cannot be a Rust type name"),
            Code::TooLarge => ("E012", "an input, layer output or parameter count past the size limits"),
            Code::Input => ("E020", "an input that is neither CxHxW nor N, or has a zero dimension"),
            Code::Normalize => ("E021", "`normalize` that does not fit the input"),
            Code::DuplicateName => ("E030", "a name used twice in one block"),
            Code::DefaultName => ("E031", "a name equal to the default name of another item in the block"),
            Code::Shortcut => (
                "E032",
                "a misplaced or named `shortcut`, or a residual block with no body",
            ),
            Code::ResidualShape => ("E033", "a residual body and shortcut of different shapes"),
            Code::UnknownName => ("E034", "a name that refers to no item"),
            Code::Reference => (
                "E035",
                "a reference to the item itself, a later item or an item inside a closed block; a misplaced `from`",
            ),
            Code::Repeated => ("E040", "an option or item given twice"),
            Code::NotAllowed => ("E041", "an option on a layer or optimizer that does not take it"),
            Code::Missing => ("E042", "a required option or item left out"),
            Code::WindowArithmetic => (
                "E050",
                "an output size that is not whole, or a window larger than its input",
            ),
            Code::Padding => ("E051", "padding too large for the window"),
            Code::Size => ("E052", "a count or size that is zero, too large or of the wrong form"),
            Code::Groups => ("E053", "`groups` that does not divide the channels and the filters"),
            Code::InputKind => ("E054", "an image where a layer needs a vector, or the other way round"),
            Code::JoinShape => ("E055", "`concat`, `add` or `mul` on shapes that do not fit together"),
            Code::Range => ("E060", "a value out of its range"),
            Code::LossLayer => ("E061", "a loss whose model does not end with the layer it needs"),
            Code::Nesterov => ("E062", "nesterov without momentum"),
            Code::Augment => ("E063", "`augment` on a vector input"),
            Code::ChannelsLast => ("W001", "an input that looks like height x width x channels"),
            Code::PositionSoftmax => (
                "W002",
                "a final softmax over the positions of an image smaller than the input",
            ),
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// One error or warning (by its code), located in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The kind of mistake; `None` only for diagnostics made outside the checker.
    pub code: Option<Code>,
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
    /// An error of a known kind.
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code: Some(code),
            ..Diagnostic::error(span, message)
        }
    }

    /// An error without a code.
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code: None,
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

    /// Whether this is a warning rather than an error (see [`Code::is_warning`]).
    pub fn is_warning(&self) -> bool {
        self.code.is_some_and(Code::is_warning)
    }

    /// Renders the diagnostic rustc-style: `error[CODE]: message` (`warning[W001]`), `--> file:line:col`,
    /// the source lines with a caret under the span (and a `-` line under each
    /// secondary place), then the hint.
    pub fn render(&self, file_name: &str, source: &str) -> String {
        self.render_with(file_name, source, &LineIndex::new(source))
    }

    fn render_with(&self, file_name: &str, source: &str, lines: &LineIndex) -> String {
        // Each place, its line, and the part of the line it covers.
        let places = std::iter::once((self.span, self.label.as_deref(), true))
            .chain(self.secondary.iter().map(|l| (l.span, Some(l.text.as_str()), false)))
            .map(|(span, label, primary)| {
                let start = floor_boundary(source, span.start);
                let (line, line_start, text) = lines.line_of(source, start);
                // A span may start at the `\n` of a `\r\n`, past the line's text (which
                // has no `\r`), and end anywhere: the carets stay on the line.
                let end = span.end.clamp(start, (line_start + text.len()).max(start)) - line_start;
                Place {
                    line,
                    text,
                    start: start - line_start,
                    end,
                    label,
                    primary,
                }
            })
            .collect::<Vec<_>>();
        let primary = &places[0];
        let column = chars_between(primary.text, 0, primary.start) + 1;
        let mut shown: Vec<usize> = places.iter().map(|p| p.line).collect();
        shown.sort_unstable();
        shown.dedup();
        let gutter = shown.last().map_or(1, |l| l.to_string().len());
        let pad = " ".repeat(gutter);
        let mut out = String::new();
        match self.code {
            Some(code) => {
                let severity = if code.is_warning() { "warning" } else { "error" };
                let _ = writeln!(out, "{severity}[{code}]: {}", self.message);
            }
            None => {
                let _ = writeln!(out, "error: {}", self.message);
            }
        }
        let _ = writeln!(out, "{pad}--> {file_name}:{}:{column}", primary.line);
        let _ = writeln!(out, "{pad} |");
        for (i, &line) in shown.iter().enumerate() {
            if i > 0 && shown[i - 1] + 1 != line {
                let _ = writeln!(out, "...");
            }
            let mut on_line: Vec<&Place> = places.iter().filter(|p| p.line == line).collect();
            // The window of a long line is placed around the primary span, or the
            // first place on the line.
            on_line.sort_by_key(|p| (!p.primary, p.start));
            let anchor = on_line[0];
            let window = Window::around(anchor.text, anchor.start);
            on_line.sort_by_key(|p| p.start);
            let _ = writeln!(out, "{line:>gutter$} | {}", window.text(anchor.text));
            for p in on_line {
                let (col, width) = window.columns(p.text, p.start, p.end);
                let mark = if p.primary { "^" } else { "-" };
                let _ = write!(out, "{pad} | {}{}", " ".repeat(col), mark.repeat(width));
                match p.label {
                    Some(label) => {
                        let _ = writeln!(out, " {label}");
                    }
                    None => out.push('\n'),
                }
            }
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "{pad} = hint: {hint}");
        }
        out
    }
}

/// One place a diagnostic marks, on its line.
struct Place<'s> {
    /// 1-based.
    line: usize,
    /// The line's text, without its line break.
    text: &'s str,
    /// Byte offsets in `text`; `end` may pass its end by a `\r`.
    start: usize,
    end: usize,
    label: Option<&'s str>,
    primary: bool,
}

/// The longest source line shown whole, in bytes; a longer one is shown as a
/// window around the caret, so that each diagnostic stays a few lines long.
const MAX_SHOWN: usize = 120;

/// The part of a line that is shown: all of it, or about MAX_SHOWN bytes around a
/// place, with `...` where it is cut. Work per call is bounded by the text shown
/// (and the span), not by the line, so that many errors on one long line stay cheap.
struct Window {
    from: usize,
    to: usize,
}

impl Window {
    fn around(line: &str, start: usize) -> Window {
        if line.len() <= MAX_SHOWN {
            return Window {
                from: 0,
                to: line.len(),
            };
        }
        let inside = start.min(line.len());
        let from = floor_boundary(
            line,
            inside
                .saturating_sub(MAX_SHOWN / 3)
                .min(line.len().saturating_sub(MAX_SHOWN)),
        );
        let to = floor_boundary(line, from + MAX_SHOWN);
        Window { from, to }
    }

    /// The text shown, tabs expanded to four spaces (as rustc does) so that the
    /// carets below line up whatever the terminal's tab stops.
    fn text(&self, line: &str) -> String {
        let mut text = String::with_capacity(self.to - self.from + 6);
        if self.from > 0 {
            text.push_str("...");
        }
        text.push_str(&line[self.from..self.to].replace('\t', "    "));
        if self.to < line.len() {
            text.push_str("...");
        }
        text
    }

    /// The display column of byte `start` in the shown text and the display width
    /// of `start..end` (at least 1), in terminal cells: wide characters take two,
    /// tabs four. A place outside the window is drawn at its edge.
    fn columns(&self, line: &str, start: usize, end: usize) -> (usize, usize) {
        let prefix = if self.from > 0 { 3 } else { 0 };
        let start_in = start.clamp(self.from, self.to.max(self.from));
        let col = prefix + width(line, self.from, start_in);
        // A span may pass the end of the text by a `\r`: it counts as one cell.
        let past = end.saturating_sub(line.len()).min(1);
        let carets = width(line, start_in, end.min(self.to)) + if end > self.to { past } else { 0 };
        (col, carets.max(1))
    }
}

/// The display width of `text[from..to]` (offsets taken back to char boundaries).
fn width(text: &str, from: usize, to: usize) -> usize {
    let to = floor_boundary(text, to);
    let from = floor_boundary(text, from).min(to);
    text[from..to]
        .chars()
        .map(|c| match c {
            '\t' => 4,
            c => c.width().unwrap_or(0),
        })
        .sum()
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

/// Where each line starts, to locate many diagnostics in one text without
/// rescanning it for each.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(source: &str) -> Self {
        let starts: Vec<usize> = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    /// For a byte offset (a char boundary): its 1-based line, the offset the line
    /// starts at, and the line's text (without `\r\n` or `\n`).
    fn line_of<'s>(&self, source: &'s str, offset: usize) -> (usize, usize, &'s str) {
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let end = self.starts.get(line).map_or(source.len(), |next| next - 1);
        let text = &source[start..end];
        // As `str::lines`: `\r\n` ends a line, a lone `\r` at the end of the text does not.
        let text = match self.starts.get(line) {
            Some(_) => text.strip_suffix('\r').unwrap_or(text),
            None => text,
        };
        (line, start, text)
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
    fn carets_align_under_tabs_and_wide_characters() {
        use unicode_width::UnicodeWidthStr as _;
        for line in [
            "\tconv 4 kernal 3",
            "    /* \u{7573}\u{307f}\u{8fbc}\u{307f}\u{5c64} */ conv 4 kernal 3",
            "\t\u{4e2d}\t\u{1F600} kernal",
        ] {
            let src = format!("model M {{\n{line}\n}}");
            let start = src.find("kernal").unwrap();
            let text = Diagnostic::error(Span::new(start, start + 6), "typo")
                .with_secondary(Span::new(10, 11), "here")
                .render("m.cnn", &src);
            let lines: Vec<&str> = text.lines().collect();
            let code = lines.iter().find(|l| l.contains("kernal")).unwrap();
            let carets = lines.iter().find(|l| l.contains('^')).unwrap();
            assert!(!code.contains('\t'), "{text}");
            let prefix = &code[..code.find("kernal").unwrap()];
            assert_eq!(prefix.width(), carets.find('^').unwrap(), "{text}");
            assert_eq!(carets.matches('^').count(), 6, "{text}");
            let secondary = lines.iter().find(|l| l.contains('-') && l.ends_with("here")).unwrap();
            assert_eq!(&secondary[..4], "  | ", "{text}");
        }
    }

    #[test]
    fn renders_code_and_secondary_places_in_line_order() {
        let src = "model M {\n    a: conv 1 kernel 1\n    relu\n    a: conv 1 kernel 1\n}\n";
        let first = src.find("a:").unwrap();
        let second = src.rfind("a:").unwrap();
        let d = Diagnostic::new(Code::DuplicateName, Span::new(second, second + 1), "twice")
            .with_secondary(Span::new(first, first + 1), "first defined here")
            .with_hint("rename one");
        assert_eq!(
            d.render("m.cnn", src),
            "error[E030]: twice\n --> m.cnn:4:5\n  |\n2 |     a: conv 1 kernel 1\n  |     - first defined here\n...\n4 |     a: conv 1 kernel 1\n  |     ^\n  = hint: rename one\n"
        );
    }

    #[test]
    fn codes_are_unique_and_ordered() {
        let ids: Vec<&str> = Code::ALL.iter().map(|c| c.id()).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(ids, sorted);
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
