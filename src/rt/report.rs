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

impl EpochReport {
    /// The line `fit` prints: `epoch  1/10  loss 0.4213  acc 87.12%  val_loss
    /// 0.2011  val_acc 93.50%  lr 0.0100  1.23s` (distributed training appends the
    /// rank count).
    pub fn line(&self, epochs: usize) -> String {
        let width = epochs.to_string().len();
        let mut line = format!("epoch {:>width$}/{epochs}  loss {:.4}", self.epoch + 1, self.train_loss);
        if let Some(a) = self.train_accuracy {
            line += &format!("  acc {:.2}%", a * 100.0);
        }
        if let Some(v) = &self.validation {
            line += &format!("  val_loss {:.4}", v.loss);
            if let Some(a) = v.accuracy {
                line += &format!("  val_acc {:.2}%", a * 100.0);
            }
            if let Some(iou) = v.mean_iou {
                line += &format!("  val_miou {iou:.4}");
            }
        }
        line += &format!("  lr {:.4}  {:.2}s", self.learning_rate, self.seconds);
        line
    }
}

/// Every epoch's report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FitReport {
    pub history: Vec<EpochReport>,
}

/// Loss and, for classifiers, accuracy on a data set (for segmentation, the
/// pixel accuracy), and for segmentation the mean intersection over union.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: Option<f64>,
    /// v3 segmentation: the mean over the classes present (in the label maps or
    /// the predictions) of |prediction ∩ label| / |prediction ∪ label|, ignored
    /// positions left out.
    pub mean_iou: Option<f64>,
}
