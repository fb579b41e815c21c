//! What generated models and users call at run time: the `Model`/`Train` traits,
//! `Target`, `Gradients` and `Error`, plus data loading,
//! the fit loop, weight files and the seeded initialization.

pub mod atomic;
pub mod augment;
pub mod checkpoint;
pub mod confusion;
pub mod data;
#[cfg(feature = "mpi")]
pub mod distributed;
pub mod driver;
mod error;
pub mod exec;
pub mod fit;
pub mod init;
pub mod inputs;
pub mod plot;
pub mod report;
pub mod weights;

pub use error::Error;

use ndarray::{ArrayD, ArrayView1, ArrayView3, ArrayViewD};

/// What a loss compares the model's output with.
#[derive(Debug, Clone)]
pub enum Target<'a> {
    /// `cross_entropy`: the class index of each sample.
    Labels(ArrayView1<'a, usize>),
    /// `mse`, `binary_cross_entropy`: `[N, ...output shape]`.
    Values(ArrayViewD<'a, f32>),
    /// v3: `cross_entropy` on a CxHxW output: a class index per position, `[N, H, W]`.
    LabelMaps(ArrayView3<'a, usize>),
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

    /// Every layer's output for `x` (`[N, ...input shape]`), in inference mode, as
    /// `(name, [N, ...layer output shape])` in the order the layers run: the names
    /// of `cnnc summary` (`conv1`, `relu1`, `maxpool1`, ...; a residual block's
    /// body and shortcut layers, `residual1.conv1`, ..., before the block itself,
    /// whose output is the sum). An activation written after a layer
    /// (`conv 6 kernel 5 relu`) is a layer of its own: `conv1` is the output
    /// before it, `relu1` after. The model's `normalize` is applied first, as by
    /// `predict`, and is not listed. The forward-hook equivalent, for pictures and
    /// analyses: it allocates every output, while `predict` stays allocation-free.
    /// Generated models and the interpreter implement it; the default is an error.
    fn activations(&mut self, x: ArrayViewD<'_, f32>) -> Result<Vec<(String, ArrayD<f32>)>, Error> {
        let _ = x;
        Err(Error::Config(
            "this model does not report its layers' activations (generated models and the interpreter do)".into(),
        ))
    }

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

    /// Sets the number of epochs the run trains, which the schedule spans (`fit`
    /// calls it with its `epochs`, so that `cosine` anneals over the epochs actually
    /// run); the train block's `epochs` until then.
    fn set_epochs(&mut self, epochs: usize) {
        let _ = epochs;
    }

    /// The fewest samples a training step takes: 2 where a batchnorm layer gets
    /// one value per channel from each sample (after a dense layer, or on 1x1
    /// maps), as PyTorch, which cannot compute a variance from one value; else 1.
    /// Without a finer answer, 2 for any model with buffers.
    fn min_train_batch(&self) -> usize {
        if self.buffer_names().is_empty() {
            1
        } else {
            2
        }
    }

    /// The most samples a training step takes at once, when there is a limit: a
    /// generated model with batchnorm normalizes a step's whole batch in buffers
    /// sized for its compiled `batch`. Inference and evaluation take any number.
    fn max_train_batch(&self) -> Option<usize> {
        None
    }

    /// How many samples of the last `train_step` the model classified right
    /// (argmax of the output equal to the label), when it keeps count.
    fn last_correct(&self) -> Option<usize> {
        None
    }
}

/// A training step in its parts, for data-parallel training (`rt::distributed`):
/// the gradient of a local batch into one flat buffer, which ranks can average
/// with one all-reduce in place, then the update every replica applies alike.
/// Generated models implement it.
pub trait FlatTrain: Train {
    /// Forward and backward over `x` in training mode, without updating anything:
    /// leaves the summed gradient of the mean loss in [`FlatTrain::flat_gradients`]
    /// and returns the loss. Allocates nothing.
    fn local_gradients(&mut self, x: ArrayViewD<'_, f32>, target: Target<'_>) -> Result<f32, Error>;
    /// The gradient buffer, in the order of `param_names` (PyTorch layouts, concatenated).
    fn flat_gradients(&mut self) -> &mut [f32];
    /// The buffers (batchnorm running statistics), concatenated in the order of `buffer_names`.
    fn flat_buffers(&mut self) -> &mut [f32];
    /// The update after `local_gradients`: the batch statistics into the running
    /// statistics, then one optimizer step from `flat_gradients`.
    fn apply_update(&mut self) -> Result<(), Error>;
    /// The optimizer's state, for checkpoints: momentum (sgd) or Adam's first and
    /// second moments, flat like the parameters (empty when unused), and the
    /// number of optimizer steps taken.
    fn optimizer_state(&mut self) -> OptimizerState<'_>;
}

/// See [`FlatTrain::optimizer_state`].
pub struct OptimizerState<'a> {
    pub moments: [&'a mut [f32]; 2],
    pub step: &'a mut u64,
}
