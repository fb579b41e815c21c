//! What training reports: each epoch's numbers and a data set's evaluation. Its own
//! module because both `fit` (which makes them) and `checkpoint` (which stores them)
//! need them; `fit` re-exports them, where they have always been found.

/// The numbers of one epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// 0-based.
    pub epoch: usize,
    pub learning_rate: f32,
    /// The mean of the batch losses (before each update).
    pub train_loss: f64,
    /// The fraction of training samples classified right during the epoch
    /// (cross-entropy: argmax equal to the label; binary cross-entropy: the fraction
    /// of output elements on the target's side of 0.5).
    pub train_accuracy: Option<f64>,
    pub validation: Option<Evaluation>,
    pub seconds: f64,
}

/// Every epoch's report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FitReport {
    pub history: Vec<EpochReport>,
}

/// Loss and, for classifiers, accuracy on a data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: Option<f64>,
}
