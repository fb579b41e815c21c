//! The reference interpreter: runs a checked model ([`ir::Model`]) on ndarray with
//! direct loops, one small function per layer kind forward and backward, so that
//! each can be checked against the math by reading it. It is the oracle generated
//! code is tested against.
//!
//! - [`Interpreter`] implements [`Model`] and [`Train`] in `f32`.
//! - [`Network`] holds the layers over any [`Real`] type; its `f64` instance drives
//!   the finite-difference gradient checks.
//!
//! Files: `conv.rs` (groups, dilation), `pool.rs` (max, avg, global avg), `dense.rs`,
//! `batchnorm.rs`, `activation.rs` (relu, leaky_relu, sigmoid, tanh, silu, gelu,
//! softmax, dropout), `loss.rs`, `optim.rs`; `network.rs` chains them through the
//! model's tree of residual blocks, `validate.rs` checks what callers pass in.

pub mod activation;
pub mod batchnorm;
pub mod conv;
pub mod dense;
mod join;
pub mod loss;
mod network;
pub mod optim;
pub mod pool;
mod tensors;
use crate::real;
pub mod transpose;
pub mod upsample;
mod validate;

pub use network::{NetGradients, Network};
pub use real::Real;

use crate::ir::{self, Op, Window};
use crate::rt::init::Initializer;
use crate::rt::{Error, Gradients, Model, Target, Train};
use ndarray::{ArrayD, ArrayViewD, Dimension, IxDyn};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The input index that window cell `k` of output `o` reads along `axis` (0 = height,
/// 1 = width) of an input of `size` cells, or `None` when it falls in the padding:
/// `o * stride + k - pad_before`.
pub(crate) fn tap(o: usize, k: usize, win: &Window, axis: usize, size: usize) -> Option<usize> {
    let i = (o * win.stride[axis] + k).checked_sub(win.pad_before[axis])?;
    (i < size).then_some(i)
}

/// A model run by the reference interpreter, in `f32`.
#[derive(Debug, Clone)]
pub struct Interpreter {
    net: Network<f32>,
    input_shape: Vec<usize>,
    output_shape: Vec<usize>,
    optimizer: Option<optim::Optimizer>,
    /// The epoch whose learning rate `train_step` uses.
    epoch: usize,
    /// The epochs the schedule spans: the train block's, or the run's (`set_epochs`).
    epochs: usize,
    /// Successful `train_step`s so far (a divergence error names the next one); saved
    /// as every batchnorm's `num_batches_tracked`.
    steps: usize,
    /// Draws the dropout masks of `gradients` and `train_step`.
    dropout: ChaCha8Rng,
}

impl Interpreter {
    /// Compiles `text` and builds its model `model_name`, initialized from `seed`.
    pub fn from_source(text: &str, model_name: &str, seed: u64) -> Result<Interpreter, Error> {
        let models = crate::compile(text).map_err(|d| Error::Compile(d.render("<source>", text)))?;
        let available: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
        match models.into_iter().find(|m| m.name == model_name) {
            Some(model) => Ok(Interpreter::new(model, seed)),
            None => Err(Error::UnknownModel {
                name: model_name.to_string(),
                available,
            }),
        }
    }

    /// The model with the spec's initialization: every conv/dense weight drawn by
    /// `ir::init_scheme` within its own sequence (a residual block's body and shortcut
    /// are sequences of their own), in the order of `ir::Model::params`; biases 0;
    /// batchnorm weight 1 and bias 0, running mean 0 and variance 1. `model` is a
    /// checked model, as [`crate::compile`] returns it.
    pub fn new(model: ir::Model, seed: u64) -> Interpreter {
        let mut init = Initializer::new(seed);
        let mut params = Vec::new();
        initial_params(&model.layers, &mut init, &mut params);
        let optimizer = model
            .train
            .as_ref()
            .map(|t| optim::Optimizer::new(t.optimizer, t.weight_decay));
        // Dropout has its own stream of the seed, apart from the initialization's.
        let mut dropout = ChaCha8Rng::seed_from_u64(seed);
        dropout.set_stream(1);
        Interpreter {
            epochs: model.train.as_ref().map_or(1, |t| t.epochs),
            input_shape: model.input.dims(),
            output_shape: model.output().dims(),
            net: Network::from_parts(model, params),
            optimizer,
            epoch: 0,
            steps: 0,
            dropout,
        }
    }

    pub fn model(&self) -> &ir::Model {
        self.net.model()
    }

    /// The layers and parameters.
    pub fn network(&self) -> &Network<f32> {
        &self.net
    }

    /// Sets the epoch whose learning rate (after the schedule) `train_step` uses; 0 at first.
    pub fn set_epoch(&mut self, epoch: usize) {
        self.epoch = epoch;
    }

    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// The learning rate of `epoch` after the schedule, which spans `self.epochs`.
    fn rate(&self, epoch: usize) -> f64 {
        self.net.model().train.as_ref().map_or(0.0, |t| {
            ir::learning_rate(t.optimizer.lr(), t.schedule, t.warmup, self.epochs, epoch)
        })
    }

    /// Loads every parameter and buffer from a weight file (see
    /// [`crate::rt::weights::load_safetensors`]).
    pub fn load_safetensors(&mut self, path: impl AsRef<std::path::Path>) -> Result<(), Error> {
        crate::rt::weights::load_safetensors(self, path.as_ref())
    }

    /// Loads the tensors a weight file has and reports the loaded, missing and
    /// unexpected ones (PyTorch's `strict=False`; see
    /// [`crate::rt::weights::load_safetensors_partial`]).
    pub fn load_safetensors_partial(
        &mut self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<crate::rt::weights::LoadReport, Error> {
        crate::rt::weights::load_safetensors_partial(self, path.as_ref())
    }

    fn param_index(&self, name: &str) -> Result<usize, Error> {
        let names = self.param_names();
        names.iter().position(|n| n == name).ok_or_else(|| Error::UnknownParam {
            name: name.to_string(),
            known: names,
        })
    }

    fn buffer_index(&self, name: &str) -> Result<usize, Error> {
        let names = self.buffer_names();
        names.iter().position(|n| n == name).ok_or_else(|| Error::UnknownParam {
            name: name.to_string(),
            known: names,
        })
    }
}

/// Appends the initial parameters of `seq`'s layers to `out`, drawing weights from
/// `init` in order.
fn initial_params(seq: &[ir::Layer], init: &mut Initializer, out: &mut Vec<ArrayD<f32>>) {
    for (i, layer) in seq.iter().enumerate() {
        match &layer.op {
            Op::Conv(_) | Op::Dense(_) | Op::ConvTranspose(_) => {
                for (k, spec) in layer.params().into_iter().enumerate() {
                    let mut value = ArrayD::zeros(IxDyn(&spec.shape));
                    if k == 0 {
                        let weights = init.weights(ir::init_scheme(seq, i), spec.len());
                        for (dst, src) in value.iter_mut().zip(weights) {
                            *dst = src;
                        }
                    }
                    out.push(value);
                }
            }
            // Weight (gamma) 1, bias (beta) 0.
            Op::BatchNorm(_) => {
                for (k, spec) in layer.params().into_iter().enumerate() {
                    let start = if k == 0 { 1.0 } else { 0.0 };
                    out.push(ArrayD::from_elem(IxDyn(&spec.shape), start));
                }
            }
            Op::Residual(r) => {
                initial_params(&r.body, init, out);
                initial_params(&r.shortcut, init, out);
            }
            Op::MaxPool(_)
            | Op::AvgPool(_)
            | Op::GlobalAvgPool
            | Op::Flatten
            | Op::Dropout(_)
            | Op::Activation(_)
            | Op::Softmax
            | Op::GlobalMaxPool
            | Op::Upsample(_)
            | Op::Concat(_)
            | Op::Add(_)
            | Op::Mul(_)
            | Op::From(_) => {}
        }
    }
}

impl Model for Interpreter {
    fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    fn param_names(&self) -> Vec<String> {
        self.net.model().params().into_iter().map(|p| p.name).collect()
    }

    fn param(&self, name: &str) -> Option<ArrayD<f32>> {
        let index = self.param_index(name).ok()?;
        self.net.params().get(index).cloned()
    }

    fn set_param(&mut self, name: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error> {
        let index = self.param_index(name)?;
        let slot = &mut self.net.params_mut()[index];
        if slot.shape() != value.shape() {
            return Err(Error::Shape {
                what: format!("parameter {name}"),
                expected: format!("{:?}", slot.shape()),
                given: value.shape().to_vec(),
            });
        }
        validate::finite(&format!("parameter {name}"), value.view())?;
        slot.assign(&value);
        Ok(())
    }

    fn predict(&mut self, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>, Error> {
        self.net.predict(x)
    }

    fn activations(&mut self, x: ArrayViewD<'_, f32>) -> Result<Vec<(String, ArrayD<f32>)>, Error> {
        self.net.activations(x)
    }

    fn buffer_names(&self) -> Vec<String> {
        self.net.model().buffers().into_iter().map(|b| b.name).collect()
    }

    fn buffer(&self, name: &str) -> Option<ArrayD<f32>> {
        let index = self.buffer_index(name).ok()?;
        self.net.buffers().get(index).cloned()
    }

    fn set_buffer(&mut self, name: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error> {
        let index = self.buffer_index(name)?;
        let what = format!("buffer {name}");
        let slot = &mut self.net.buffers_mut()[index];
        if slot.shape() != value.shape() {
            return Err(Error::Shape {
                what,
                expected: format!("{:?}", slot.shape()),
                given: value.shape().to_vec(),
            });
        }
        validate::finite(&what, value.view())?;
        if name.ends_with(".running_var") {
            if let Some((index, v)) = value.indexed_iter().find(|(_, v)| **v < 0.0) {
                return Err(Error::Config(format!(
                    "{what} is a variance, but element {:?} is negative ({v})",
                    index.slice()
                )));
            }
        }
        slot.assign(&value);
        Ok(())
    }

    fn batches_tracked(&self) -> u64 {
        self.steps as u64
    }

    fn set_batches_tracked(&mut self, steps: u64) {
        self.steps = usize::try_from(steps).unwrap_or(usize::MAX);
    }
}

impl Train for Interpreter {
    fn set_epoch(&mut self, epoch: usize) {
        self.epoch = epoch;
    }

    fn set_epochs(&mut self, epochs: usize) {
        self.epochs = epochs;
    }

    fn min_train_batch(&self) -> usize {
        validate::min_train_batch(self.net.model())
    }

    fn max_train_batch(&self) -> Option<usize> {
        let model = self.net.model();
        model.train.as_ref().filter(|_| model.has_batchnorm()).map(|t| t.batch)
    }

    fn gradients(&mut self, x: ArrayViewD<'_, f32>, target: Target<'_>) -> Result<Gradients, Error> {
        let g = self.net.gradients(x, &target, Some(&mut self.dropout))?;
        Ok(Gradients {
            loss: g.loss,
            input: g.input,
            params: self.param_names().into_iter().zip(g.params).collect(),
        })
    }

    fn train_step(&mut self, x: ArrayViewD<'_, f32>, target: Target<'_>) -> Result<f32, Error> {
        // An inference-only model fails here with `Error::Config`.
        let g = self.net.gradients(x, &target, Some(&mut self.dropout))?;
        // As generated code: a non-finite loss stops before the update, so the
        // weights stay as they were.
        if !g.loss.is_finite() {
            return Err(Error::Diverged {
                epoch: self.epoch,
                batch: self.steps,
                loss: g.loss,
            });
        }
        self.steps += 1;
        // The running statistics move toward this batch's (before the parameter
        // update, from the same forward pass), as in PyTorch.
        let buffers = self.net.buffers_mut();
        for (dst, src) in buffers.iter_mut().zip(g.buffers) {
            *dst = src;
        }
        let lr = self.rate(self.epoch);
        let names = self.param_names();
        let train = self.net.model().train.clone();
        let trainable: Vec<bool> = names
            .iter()
            .map(|n| train.as_ref().is_none_or(|t| !t.is_frozen(n)))
            .collect();
        let mut grads = g.params;
        // v3 `clip_grad_norm`: the trainable gradients' global L2 norm at most X
        // (`torch.nn.utils.clip_grad_norm_`, with its 1e-6).
        if let Some(max) = train.as_ref().and_then(|t| t.clip_grad_norm) {
            let squares: f64 = grads
                .iter()
                .zip(&trainable)
                .filter(|(_, &t)| t)
                .flat_map(|(g, _)| g.iter())
                .map(|&v| v as f64 * v as f64)
                .sum();
            let factor = (max / (squares.sqrt() + 1e-6)).min(1.0) as f32;
            for (g, _) in grads.iter_mut().zip(&trainable).filter(|(_, &t)| t) {
                g.mapv_inplace(|v| v * factor);
            }
        }
        if let Some(optimizer) = self.optimizer.as_mut() {
            optimizer.step(self.net.params_mut(), &grads, &trainable, lr);
        }
        Ok(g.loss)
    }

    /// The learning rate of `epoch` after the schedule; 0 for an inference-only model.
    fn learning_rate(&self, epoch: usize) -> f32 {
        self.rate(epoch) as f32
    }
}
