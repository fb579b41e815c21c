//! What generated models and users call at run time: the `Model`/`Train` traits,
//! `Target`, `Gradients` and `Error`, plus data loading,
//! the fit loop, weight files and the seeded initialization.

pub mod atomic;
pub mod augment;
pub mod checkpoint;
pub mod confusion;
pub mod data;
pub mod driver;
mod error;
pub mod fit;
pub mod init;
pub mod inputs;
pub mod plot;
pub mod weights;

pub use error::Error;

use ndarray::{ArrayD, ArrayView1, ArrayViewD};

/// What a loss compares the model's output with.
#[derive(Debug, Clone)]
pub enum Target<'a> {
    /// `cross_entropy`: the class index of each sample.
    Labels(ArrayView1<'a, usize>),
    /// `mse`, `binary_cross_entropy`: `[N, ...output shape]`.
    Values(ArrayViewD<'a, f32>),
}

/// The loss and its gradients, of the loss alone: no weight_decay term (like
/// PyTorch's `.grad`).
#[derive(Debug, Clone)]
pub struct Gradients {
    pub loss: f32,
    /// dLoss/dInput, `[N, ...input shape]`.
    pub input: ArrayD<f32>,
    /// The same names and shapes as the model's parameters, in the same order.
    pub params: Vec<(String, ArrayD<f32>)>,
}

/// Every generated model and the reference interpreter.
pub trait Model {
    /// The shape of one sample, without the batch axis.
    fn input_shape(&self) -> &[usize];
    /// The shape of one sample's output.
    fn output_shape(&self) -> &[usize];
    /// `conv1.weight`, `conv1.bias`, ... in layer order.
    fn param_names(&self) -> Vec<String>;
    /// A parameter in PyTorch layout.
    fn param(&self, name: &str) -> Option<ArrayD<f32>>;
    /// Replaces a parameter; the value must have the parameter's PyTorch shape.
    fn set_param(&mut self, name: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error>;
    /// Inference (no dropout) on `[N, ...input shape]`.
    fn predict(&mut self, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>, Error>;

    /// Non-trained state (batchnorm running statistics), in layer order:
    /// `batchnorm1.running_mean`, `batchnorm1.running_var`, ...
    fn buffer_names(&self) -> Vec<String> {
        Vec::new()
    }
    /// A buffer, `[C]`.
    fn buffer(&self, name: &str) -> Option<ArrayD<f32>> {
        let _ = name;
        None
    }
    /// Replaces a buffer; the value must have the buffer's shape.
    fn set_buffer(&mut self, name: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error> {
        let _ = value;
        Err(Error::UnknownParam {
            name: name.to_string(),
            known: self.buffer_names(),
        })
    }
    /// Training steps taken: saved as every batchnorm's `num_batches_tracked`.
    fn batches_tracked(&self) -> u64 {
        0
    }
    /// Restores the step count read from a weight file or checkpoint.
    fn set_batches_tracked(&mut self, steps: u64) {
        let _ = steps;
    }
}

/// Models with a train block.
pub trait Train: Model {
    /// The loss and its gradients at the current parameters, in training mode.
    fn gradients(&mut self, x: ArrayViewD<'_, f32>, target: Target<'_>) -> Result<Gradients, Error>;
    /// One optimizer step; returns the loss before the update.
    fn train_step(&mut self, x: ArrayViewD<'_, f32>, target: Target<'_>) -> Result<f32, Error>;
    /// The learning rate in effect while `epoch` (0-based) trains, after the schedule.
    fn learning_rate(&self, epoch: usize) -> f32;

    /// Sets the epoch whose learning rate `train_step` uses (`fit` calls it).
    fn set_epoch(&mut self, epoch: usize) {
        let _ = epoch;
    }

    /// How many samples of the last `train_step` the model classified right
    /// (argmax of the output equal to the label), when it keeps count.
    fn last_correct(&self) -> Option<usize> {
        None
    }
}
