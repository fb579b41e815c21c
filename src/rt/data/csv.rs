//! CSV files of feature vectors for dense-only models: one sample per line, the
//! features then, in the last column, the class label (an integer) or the
//! regression target.

use super::{Dataset, Targets};
use crate::rt::Error;
use ndarray::{ArrayD, IxDyn};
use std::io::IsTerminal;
use std::path::Path;

/// What the last column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvTarget {
    /// A class index, a whole number >= 0 (`Targets::Labels`, for cross_entropy).
    Label,
    /// A number (`Targets::Values` of shape `[N, 1]`, for mse or binary_cross_entropy).
    Value,
}

/// Whether the first line names the columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// A header when no field of the first line is a number; a first line that
    /// mixes numbers and words is an error.
    Auto,
    Present,
    Absent,
}

/// How to read a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvOptions {
    pub target: CsvTarget,
    pub header: Header,
    /// The field separator, `b','` by default.
    pub delimiter: u8,
}

impl CsvOptions {
    /// Class labels in the last column, header detected, commas.
    pub fn classification() -> Self {
        CsvOptions {
            target: CsvTarget::Label,
            header: Header::Auto,
            delimiter: b',',
        }
    }

    /// Targets in the last column, header detected, commas.
    pub fn regression() -> Self {
        CsvOptions {
            target: CsvTarget::Value,
            ..CsvOptions::classification()
        }
    }
}

/// Files larger than this get a progress bar on a terminal.
const PROGRESS_BYTES: u64 = 16 << 20;

/// Reads a CSV file into inputs `[N, F]` (F = columns - 1) and targets from the
/// last column. Every line must have the same number of columns (at least 2);
/// every feature must be a finite number. Errors name the file, the line and the
/// column (both counted from 1). Blank lines are skipped; fields may be quoted
/// and have spaces around them.
pub fn read_csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Dataset, Error> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let io = |source| Error::Io {
        path: shown.clone(),
        source,
    };
    let at = |line: u64, column: Option<usize>, message: String| at_line(&shown, line, column, message);
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = progress_bar(size, &shown);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .delimiter(options.delimiter)
        .from_reader(bar.wrap_read(std::io::BufReader::new(file)));

    let mut columns = Columns::default();
    // The number of columns and the line that set it.
    let mut width: Option<(usize, u64)> = None;
    let mut first = true;
    let mut record = ::csv::StringRecord::new();
    loop {
        let more = reader.read_record(&mut record).map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            match e.into_kind() {
                ::csv::ErrorKind::Io(source) => io(source),
                ::csv::ErrorKind::Utf8 { err, .. } => at(line, Some(err.field() + 1), "not valid UTF-8".into()),
                other => at(line, None, format!("{other:?}")),
            }
        })?;
        if !more {
            break;
        }
        let line = record.position().map_or(0, |p| p.line());
        if first {
            first = false;
            if is_header(&record, options.header, &shown, line)? {
                width = Some((record.len(), line));
                continue;
            }
        }
        check_width(&mut width, &record, &shown, line)?;
        columns.push(&record, options.target, &shown, line)?;
    }
    bar.finish_and_clear();
    let (width, _) = width.unwrap_or((1, 0));
    columns.dataset(width, options.target, shown)
}

/// A format error at `line` (and `column`, when known) of the file `shown`.
fn at_line(shown: &str, line: u64, column: Option<usize>, message: String) -> Error {
    Error::Format {
        path: shown.to_string(),
        message: match column {
            Some(c) => format!("line {line}, column {c}: {message}"),
            None => format!("line {line}: {message}"),
        },
    }
}

/// A progress bar over the file's `size` bytes for a large file read on a
/// terminal; a hidden one otherwise.
fn progress_bar(size: u64, shown: &str) -> indicatif::ProgressBar {
    if size > PROGRESS_BYTES && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(size);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("reading {msg} [{bar:30}] {bytes}/{total_bytes} {elapsed}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(shown.to_string());
        bar
    } else {
        indicatif::ProgressBar::hidden()
    }
}

/// Whether the first line `record` (at `line`) is a header, as `header` says or,
/// for [`Header::Auto`], as its fields show; a header must name at least 2 columns.
fn is_header(record: &::csv::StringRecord, header: Header, shown: &str, line: u64) -> Result<bool, Error> {
    let at = |column: Option<usize>, message: String| at_line(shown, line, column, message);
    let numeric = record.iter().filter(|f| f.parse::<f64>().is_ok()).count();
    let is_word = |f: &str| !f.is_empty() && f.parse::<f64>().is_err();
    let words = record.iter().filter(|f| is_word(f)).count();
    let header = match header {
        Header::Present => true,
        Header::Absent => false,
        Header::Auto if numeric == 0 => true,
        // Numbers and empty fields: data, whose empty fields are reported below.
        Header::Auto if words == 0 => false,
        Header::Auto => {
            let (column, word) = record
                .iter()
                .enumerate()
                .find(|(_, f)| is_word(f))
                .map_or((0, ""), |(i, f)| (i + 1, f));
            return Err(at(
                Some(column),
                format!(
                    "`{}` is not a number, but other fields of the first line are: \
                     a header line holds no numbers (or set the header option)",
                    short(word)
                ),
            ));
        }
    };
    if header && record.len() < 2 {
        return Err(at(
            None,
            format!(
                "the header has {} column; at least 2 are needed (features, then the target)",
                record.len()
            ),
        ));
    }
    Ok(header)
}

/// Checks that the data line `record` (at `line`) has at least 2 columns and as
/// many as the lines before it; the first line sets `width`.
fn check_width(
    width: &mut Option<(usize, u64)>,
    record: &::csv::StringRecord,
    shown: &str,
    line: u64,
) -> Result<(), Error> {
    match *width {
        None if record.len() < 2 => {
            return Err(at_line(
                shown,
                line,
                None,
                format!(
                    "{} column; at least 2 are needed (features, then the target in the last column)",
                    record.len()
                ),
            ))
        }
        None => *width = Some((record.len(), line)),
        Some((w, from)) if w != record.len() => {
            return Err(at_line(
                shown,
                line,
                None,
                format!(
                    "{} columns, but line {from} has {w}: every line needs the same number",
                    record.len()
                ),
            ))
        }
        Some(_) => {}
    }
    Ok(())
}

/// The values read so far: every line's features, then its label or target value.
#[derive(Default)]
struct Columns {
    features: Vec<f32>,
    labels: Vec<usize>,
    values: Vec<f32>,
}

impl Columns {
    /// Reads the data line `record` (at `line`): its features and, in the last
    /// column, its target.
    fn push(&mut self, record: &::csv::StringRecord, target: CsvTarget, shown: &str, line: u64) -> Result<(), Error> {
        let at = |column: Option<usize>, message: String| at_line(shown, line, column, message);
        let last = record.len() - 1;
        for (i, field) in record.iter().enumerate().take(last) {
            self.features.push(number(field).map_err(|m| at(Some(i + 1), m))?);
        }
        let value = &record[last];
        match target {
            CsvTarget::Label => self.labels.push(value.parse::<usize>().map_err(|_| {
                at(
                    Some(last + 1),
                    format!("label `{}` is not a class index (a whole number >= 0)", short(value)),
                )
            })?),
            CsvTarget::Value => self.values.push(number(value).map_err(|m| at(Some(last + 1), m))?),
        }
        Ok(())
    }

    /// The data set of the lines read, of `columns` columns each.
    fn dataset(self, columns: usize, target: CsvTarget, shown: String) -> Result<Dataset, Error> {
        let Columns {
            features,
            labels,
            values,
        } = self;
        let n = labels.len().max(values.len());
        if n == 0 {
            return Err(Error::Format {
                path: shown,
                message: "no data lines".into(),
            });
        }
        let format = |e: ndarray::ShapeError| Error::Format {
            path: shown.clone(),
            message: e.to_string(),
        };
        let inputs = ArrayD::from_shape_vec(IxDyn(&[n, columns - 1]), features).map_err(format)?;
        let targets = match target {
            CsvTarget::Label => Targets::Labels(labels),
            CsvTarget::Value => Targets::Values(ArrayD::from_shape_vec(IxDyn(&[n, 1]), values).map_err(format)?),
        };
        Dataset::new(inputs, targets)
    }
}

/// A finite number, or what is wrong with the field.
fn number(field: &str) -> Result<f32, String> {
    match field.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(format!("{v} is not a finite number")),
        Err(_) if field.is_empty() => Err("empty field: expected a number".into()),
        Err(_) => Err(format!("`{}` is not a number", short(field))),
    }
}

/// At most 40 characters of a user's field, as the compiler's messages quote words.
fn short(field: &str) -> String {
    match field.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &field[..i]),
        None => field.to_string(),
    }
}
