//! The one error type of the run-time API.

/// Everything that can go wrong when a model runs, trains, or reads a file.
/// Each message names what was expected and what was given.
///
/// `Debug` prints the message, as `Display` does (and as `anyhow::Error` does), so
/// that `fn main() -> Result<(), cnnc::Error>` shows a user the message rather than
/// the enum's fields.
#[derive(thiserror::Error)]
pub enum Error {
    /// A tensor passed to a model has the wrong shape.
    #[error("{what} has shape {given:?}, expected {expected}")]
    Shape {
        what: String,
        expected: String,
        given: Vec<usize>,
    },
    /// A class label is not below the number of classes.
    #[error("label {label} of sample {sample} is out of range: the model has {classes} classes (0..={max})", max = classes.saturating_sub(1))]
    Label {
        sample: usize,
        label: usize,
        classes: usize,
    },
    /// The target does not suit the model's loss.
    #[error("{0}")]
    Target(String),
    /// An input or target holds NaN or infinity.
    #[error("{what} holds a non-finite value ({value}) at index {index:?}")]
    NonFinite {
        what: String,
        value: f32,
        index: Vec<usize>,
    },
    /// The model has no parameter of that name.
    #[error("no parameter named `{name}`; the model has {}", known.join(", "))]
    UnknownParam { name: String, known: Vec<String> },
    /// A model name that the source does not define.
    #[error("no model named `{name}`; the source defines {}", available.join(", "))]
    UnknownModel { name: String, available: Vec<String> },
    /// The source has errors (rendered with its lines).
    #[error("the model source has errors:\n{0}")]
    Compile(String),
    /// Training diverged: the loss of a batch was not finite. `epoch` and `batch`
    /// count from 0; the message counts from 1, like the epoch lines `fit` prints.
    #[error(
        "the loss became {loss} in epoch {}, batch {}; lower the learning rate (lr)",
        epoch.saturating_add(1),
        batch.saturating_add(1)
    )]
    Diverged { epoch: usize, batch: usize, loss: f32 },
    /// Training diverged: a parameter stopped being finite although every batch's
    /// loss was finite. `epoch` counts from 0; the message counts from 1.
    #[error(
        "parameter `{param}` became non-finite in epoch {}; lower the learning rate (lr)",
        epoch.saturating_add(1)
    )]
    DivergedParams { epoch: usize, param: String },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its contents are wrong (bad magic, truncated, wrong dtype...).
    #[error("{path}: {message}")]
    Format { path: String, message: String },
    /// The model was built without a training configuration.
    #[error("{0}")]
    Config(String),
    /// `fit_resumable` stopped between two steps because its stop flag was set
    /// (Ctrl-C) or its step limit was reached. `epoch` and `batch` count from 0 and
    /// say where training resumes; `checkpoint` is the file written there, if any.
    #[error(
        "training stopped before epoch {}, batch {}; {}",
        epoch.saturating_add(1),
        batch.saturating_add(1),
        match checkpoint {
            Some(path) => format!("checkpoint written to {path}: resume from it to continue"),
            None => "no checkpoint path was given, so nothing was saved".to_string(),
        }
    )]
    Interrupted {
        epoch: usize,
        batch: usize,
        checkpoint: Option<String>,
    },
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_reads_like_display() {
        let e = Error::Label {
            sample: 3,
            label: 10,
            classes: 10,
        };
        let message = "label 10 of sample 3 is out of range: the model has 10 classes (0..=9)";
        assert_eq!(format!("{e}"), message);
        assert_eq!(format!("{e:?}"), message);
        // What `fn main() -> Result<(), cnnc::Error>` prints on an error: `Error: `
        // and the Debug form.
        let e = Error::Config("this model has no train block".into());
        assert_eq!(format!("Error: {e:?}"), "Error: this model has no train block");
    }
}
