//! The confusion matrix of a classifier on a labelled data set: which classes it
//! takes for which.

use super::data::{Dataset, Targets};
use super::inputs::batch_size;
use super::{Error, Model};
use std::fmt;

/// Counts of (true class, predicted class) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    pub classes: Vec<String>,
    /// `counts[t][p]`: samples of true class `t` predicted as `p`.
    pub counts: Vec<Vec<usize>>,
}

/// Samples predicted per call of `Model::predict`.
const CHUNK: usize = 256;

/// Runs `model` over `data` in chunks and counts each (label, argmax) pair.
/// `classes` names the model's outputs (e.g. [`super::data::ImageFolder::classes`]);
/// an empty slice names them `0`, `1`, ...
pub fn confusion_matrix(model: &mut dyn Model, data: &Dataset, classes: &[String]) -> Result<ConfusionMatrix, Error> {
    let k: usize = model.output_shape().iter().product();
    let classes: Vec<String> = if classes.is_empty() {
        (0..k).map(|i| i.to_string()).collect()
    } else if classes.len() == k {
        classes.to_vec()
    } else {
        return Err(Error::Config(format!(
            "{} class names given, but the model has {k} outputs",
            classes.len()
        )));
    };
    let Targets::Labels(labels) = &data.targets else {
        return Err(Error::Target(
            "a confusion matrix needs class labels (Targets::Labels), not Targets::Values".into(),
        ));
    };
    let n = data.inputs.shape().first().copied().unwrap_or(0);
    if labels.len() != n {
        return Err(Error::Target(format!(
            "{n} inputs but {} labels: each sample needs one label",
            labels.len()
        )));
    }
    if let Some((sample, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= k) {
        return Err(Error::Label {
            sample,
            label,
            classes: k,
        });
    }
    batch_size("the data set's inputs", data.inputs.shape(), model.input_shape())?;
    let mut counts = vec![vec![0usize; k]; k];
    let mut lo = 0;
    while lo < n {
        let hi = (lo + CHUNK).min(n);
        let (x, _) = data.batch(lo, hi);
        let y = model.predict(x)?;
        if y.shape().first() != Some(&(hi - lo)) || y.len() != (hi - lo) * k {
            return Err(Error::Shape {
                what: "the model's output".into(),
                expected: format!("[{}, {k}]", hi - lo),
                given: y.shape().to_vec(),
            });
        }
        let y = y.as_standard_layout();
        let values = y.as_slice().unwrap_or(&[]);
        for (row, &label) in values.chunks_exact(k).zip(&labels[lo..hi]) {
            counts[label][crate::compute::loss::predicted_class(row)] += 1;
        }
        lo = hi;
    }
    Ok(ConfusionMatrix { classes, counts })
}

impl ConfusionMatrix {
    /// Samples counted.
    pub fn total(&self) -> usize {
        self.counts.iter().flatten().sum()
    }

    /// Samples on the diagonal.
    pub fn correct(&self) -> usize {
        (0..self.counts.len()).map(|i| self.counts[i][i]).sum()
    }

    /// The fraction classified right (0 for an empty matrix).
    pub fn accuracy(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            0.0
        } else {
            self.correct() as f64 / total as f64
        }
    }

    /// The fraction of class `class`'s samples classified right (its recall), or
    /// `None` when the data set has no sample of it.
    pub fn class_accuracy(&self, class: usize) -> Option<f64> {
        let row = self.counts.get(class)?;
        let total: usize = row.iter().sum();
        (total > 0).then(|| row[class] as f64 / total as f64)
    }
}

/// Names wider than this are cut with `~` in the table.
const NAME_WIDTH: usize = 12;

fn cut(name: &str, width: usize) -> String {
    if name.chars().count() <= width {
        name.to_string()
    } else {
        let mut s: String = name.chars().take(width.saturating_sub(1)).collect();
        s.push('~');
        s
    }
}

impl fmt::Display for ConfusionMatrix {
    /// ```text
    /// rows: true class, columns: predicted class
    ///         cat  dog  bird | accuracy
    ///   cat    48    2     0 |  96.00%  (48/50)
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.classes.iter().map(|c| cut(c, NAME_WIDTH)).collect();
        let row_width = names.iter().map(|n| n.chars().count()).max().unwrap_or(1).max(4);
        let digits = self.total().max(1).to_string().len();
        let widths: Vec<usize> = names.iter().map(|n| n.chars().count().max(digits)).collect();
        writeln!(f, "rows: true class, columns: predicted class")?;
        write!(f, "{:row_width$}", "")?;
        for (name, w) in names.iter().zip(&widths) {
            write!(f, " {name:>w$}")?;
        }
        writeln!(f, " | accuracy")?;
        for (t, name) in names.iter().enumerate() {
            write!(f, "{name:>row_width$}")?;
            for (count, w) in self.counts[t].iter().zip(&widths) {
                write!(f, " {count:>w$}")?;
            }
            let total: usize = self.counts[t].iter().sum();
            match self.class_accuracy(t) {
                Some(a) => writeln!(f, " | {:>6.2}%  ({}/{total})", a * 100.0, self.counts[t][t])?,
                None => writeln!(f, " |      -  (no samples)")?,
            }
        }
        write!(
            f,
            "overall accuracy {:.2}% ({}/{})",
            self.accuracy() * 100.0,
            self.correct(),
            self.total()
        )
    }
}
