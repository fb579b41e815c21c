//! The model-independent half of every generated model.
//!
//! A generated model is two things: a description of itself ([`Spec`]: shapes,
//! the parameter and buffer tables, its batch normalizations, its train block)
//! and a [`Worker`]: the activation buffers one thread works in and the
//! per-layer calls of its forward and backward passes, with every shape a
//! constant. Everything else is here, once, as ordinary Rust: the split of a
//! batch over threads, the chunk loop, the combine of batch statistics, the loss,
//! the ordered gradient sum, the optimizer update, the parameter tables and the
//! `Model`/`Train` implementations.
//!
//! ## Phases
//! Batch normalization needs the statistics of the whole minibatch in the middle
//! of the forward pass (and two sums in the backward pass), but each worker holds
//! only its share of the samples. So a worker's passes are cut at every
//! batchnorm: forward phase `k` ends with batchnorm `k`'s partial statistics; the
//! driver combines them over the workers in worker order (Chan's formula, in f64)
//! and forward phase `k + 1` starts by normalizing with them. Backward phase `k`
//! (run from the last down) ends with batchnorm `k - 1`'s partial sums, which are
//! combined the same way before backward phase `k - 1` starts. Results therefore
//! depend on the thread count only through float summation order. A model
//! without batchnorm has one phase: one parallel region per chunk.

mod activations;
mod fold;
mod parallel;
mod training;
mod traits;

pub use activations::{LayerOutput, Source};
pub use fold::Fold;
pub use parallel::{inference_chunk, worker_count, worker_range, INFERENCE_BUDGET, INFERENCE_MIN_CHUNK};

use parallel::each_rows;

use super::init::Initializer;
use super::inputs::{batch_size, check_finite, copy_rows};
use super::{Error, Model};
use crate::compute;
use crate::ir::{Augment, InitScheme, Loss, Optimizer, Schedule};
use ndarray::ArrayViewD;

/// How a tensor starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    Zeros,
    Ones,
    /// Drawn from the model's seed, in table order.
    Draw(InitScheme),
}

impl Init {
    /// He normal draws for a weight of `fan_in` inputs before a relu or leaky_relu.
    pub const fn he(fan_in: usize, negative_slope: f32) -> Init {
        Init::Draw(InitScheme::HeNormal { fan_in, negative_slope })
    }

    /// Xavier uniform draws for a weight of `fan_in` inputs and `fan_out` outputs.
    pub const fn xavier(fan_in: usize, fan_out: usize) -> Init {
        Init::Draw(InitScheme::XavierUniform { fan_in, fan_out })
    }
}

/// A tensor inside a flat buffer: its PyTorch name, offset and shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tensor {
    pub name: &'static str,
    pub offset: usize,
    pub shape: &'static [usize],
    pub init: Init,
}

impl Tensor {
    /// The tensor `name` at `offset` of its flat buffer (generated specs list them so).
    pub const fn new(name: &'static str, offset: usize, shape: &'static [usize], init: Init) -> Tensor {
        Tensor {
            name,
            offset,
            shape,
            init,
        }
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// One batch normalization layer, as the driver combines its statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormSlot {
    pub name: &'static str,
    pub channels: usize,
    /// Values per channel per sample: H·W for an image, 1 for a vector.
    pub area: usize,
    pub eps: f32,
    pub momentum: f32,
    /// Offset of `running_mean` in the buffers (`running_var` follows).
    pub buffer: usize,
    /// Offset of its region in the shared statistics: `[mean][1/std][Σdy][Σdy·x̂]`,
    /// `channels` values each.
    pub shared: usize,
}

/// The train block, as the driver runs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainSpec {
    pub loss: Loss,
    pub optimizer: Optimizer,
    pub weight_decay: f64,
    pub schedule: Schedule,
    pub epochs: usize,
    pub validation: Option<f64>,
    pub seed: u64,
    pub augment: &'static [Augment],
    /// v3 label smoothing of cross_entropy (0: none).
    pub smoothing: f64,
    /// v3 `ignore L`: the label whose samples or positions do not count.
    pub ignore: Option<usize>,
    /// v3 `clip_grad_norm`: the largest global L2 norm of a step's gradients.
    pub clip_grad_norm: Option<f64>,
    /// v3 `warmup N from F`.
    pub warmup: Option<crate::ir::Warmup>,
    /// v3 `early_stop P`: `fit` stops after P epochs without a better validation
    /// loss and restores the best epoch's weights.
    pub early_stop: Option<usize>,
    /// v3 `freeze`: the top-scope items whose parameters do not train (a
    /// parameter is frozen when its name starts with one of them and a dot).
    pub freeze: &'static [&'static str],
}

impl TrainSpec {
    /// Whether parameter `name` belongs to a frozen item.
    pub fn is_frozen(&self, name: &str) -> bool {
        crate::ir::frozen_by(self.freeze, name)
    }
}

/// Everything the driver knows of a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    pub name: &'static str,
    pub input: &'static [usize],
    pub output: &'static [usize],
    pub params: &'static [Tensor],
    pub param_count: usize,
    pub buffers: &'static [Tensor],
    pub buffer_len: usize,
    pub batchnorms: &'static [BatchNormSlot],
    pub shared_len: usize,
    /// Samples per chunk: the train block's `batch` (32 without one).
    pub batch: usize,
    pub train: Option<TrainSpec>,
    /// Every layer's output, in the order the layers run (`Model::activations`).
    pub layers: &'static [LayerOutput],
    /// Floats per sample in a worker's activation buffers (inference sizes its
    /// sub-chunks from it: [`inference_chunk`]).
    pub sample_floats: usize,
    /// Inference: the batchnorms folded into convolutions, and the length of
    /// the buffer of their folded weights ([`Pass::folded`]).
    pub folds: &'static [Fold],
    pub folded_len: usize,
}

impl Spec {
    /// Passes are cut at every batchnorm.
    pub const fn phases(&self) -> usize {
        self.batchnorms.len() + 1
    }

    fn input_len(&self) -> usize {
        self.input.iter().product()
    }

    fn output_len(&self) -> usize {
        self.output.iter().product()
    }

    /// How a cross-entropy output is read: classes per position, positions per
    /// sample (v3: an image output's H·W, a label per position), and `ignore`.
    pub(crate) fn classes(&self) -> compute::loss::Classes {
        let ignore = self.train.and_then(|t| t.ignore);
        match *self.output {
            [c, h, w] => compute::loss::Classes {
                classes: c,
                area: h * w,
                ignore,
            },
            _ => compute::loss::Classes {
                classes: self.output_len(),
                area: 1,
                ignore,
            },
        }
    }
}

/// A model's description and its workers: a generated model's `Net` (a unit
/// struct whose spec is a constant), or the run-time plan executor
/// ([`crate::rt::exec`]), which builds its spec when it reads the model.
pub trait Network: Send + Sync + 'static {
    type Worker: Worker;
    /// The model's description; static for the process (see `rt::exec` for the
    /// executor's).
    fn spec(&self) -> &'static Spec;
    /// A worker with buffers for `samples` samples at a time.
    fn worker(&self, samples: usize) -> Self::Worker;
}

/// What one worker's pass reads besides its own buffers.
#[derive(Debug, Clone, Copy)]
pub struct Pass<'a> {
    pub params: &'a [f32],
    /// `[mean][1/std][Σdy][Σdy·x̂]` per batchnorm (see [`BatchNormSlot::shared`]).
    pub shared: &'a [f32],
    /// Inference: the folded weights and biases of [`Spec::folds`] (empty in training).
    pub folded: &'a [f32],
    /// The worker's samples.
    pub n: usize,
    /// The index of the worker's first sample in the caller's batch.
    pub first: usize,
    /// The samples of the whole chunk, over every worker (batchnorm divides by it).
    pub batch: usize,
    /// Training mode: dropout, batch statistics.
    pub train: bool,
    /// Whether the model input's gradient is wanted.
    pub input_grad: bool,
    /// Dropout masks come from (seed, step, layer, sample).
    pub seed: u64,
    pub step: u64,
}

/// The chunks `(at, n)` of a worker's `total` samples, `size` at a time (the
/// last one shorter), in order; one empty chunk `(0, 0)` when there are none, so
/// that a phase's code runs (and writes its partial sums) as it would unchunked.
/// Generated code runs each phase chunk by chunk (`codegen::chunk`).
pub fn chunks(total: usize, size: usize) -> impl Iterator<Item = (usize, usize)> {
    let size = size.max(1);
    (0..total.div_ceil(size).max(1)).map(move |k| {
        let at = k * size;
        (at, size.min(total - at))
    })
}

/// The per-thread half of a generated model.
pub trait Worker: Send + Sized {
    /// The model input's buffer.
    fn input(&mut self) -> &mut [f32];
    /// The model output's buffer.
    fn output(&self) -> &[f32];
    /// Forward phase `phase` over `pass.n` samples.
    fn forward(&mut self, phase: usize, pass: &Pass<'_>);
    /// Inference over `pass.n` samples: the fused inference plan where the model
    /// has one (batchnorms folded, joins in the convolutions' stores), else the
    /// `phases` forward phases.
    fn infer(&mut self, phases: usize, pass: &Pass<'_>) {
        for phase in 0..phases {
            self.forward(phase, pass);
        }
    }
    /// The partial statistics or sums the last phase left for the combine.
    fn partials(&self) -> &[f64];
    /// Activation buffer `i` (0 is the input), as the last forward pass left it
    /// (`Model::activations` reads them); empty past the last.
    fn buffer(&self, i: usize) -> &[f32];
}

/// The buffers the loss reads and writes: the logits (before a fused final
/// softmax or sigmoid; the output itself for mse), the output, and the gradient
/// of the logits, which the loss writes.
pub struct LossIo<'a> {
    pub logits: &'a [f32],
    pub output: &'a [f32],
    pub grad: &'a mut [f32],
}

/// The backward half of a worker, for models with a train block.
pub trait Backward: Worker {
    fn loss_io(&mut self) -> LossIo<'_>;
    /// Backward phase `phase`: adds this worker's parameter gradients to `grads`.
    fn backward(&mut self, phase: usize, pass: &Pass<'_>, grads: &mut [f32]);
    /// The model input's gradient.
    fn input_grad(&self) -> &[f32];
}

/// A worker with its share of the batch's targets and gradients.
struct Slot<W> {
    worker: W,
    grads: Vec<f32>,
    labels: Vec<usize>,
    targets: Vec<f32>,
    correct: usize,
}

/// A generated model's state and the logic that runs it.
pub struct Driver<N: Network> {
    net: N,
    params: Vec<f32>,
    /// The parameters the optimizer updates: every one but a frozen item's, as
    /// ranges of `params` (one range when nothing is frozen).
    trainable: Vec<std::ops::Range<usize>>,
    buffers: Vec<f32>,
    shared: Vec<f32>,
    /// Inference's folded weights ([`Spec::folds`]), and whether they are those
    /// of the current parameters and buffers.
    folded: Vec<f32>,
    folded_fresh: bool,
    slots: Vec<Slot<N::Worker>>,
    grads: Vec<f32>,
    state1: Vec<f32>,
    state2: Vec<f32>,
    /// The last step's batch statistics per batchnorm, `[mean][unbiased var]`,
    /// applied to the running statistics once the step's loss is known finite.
    pending: Vec<f32>,
    /// Optimizer steps taken.
    step: u64,
    /// Training steps counted for batchnorm's `num_batches_tracked` (a weight
    /// file sets it; the optimizer's count is `step`).
    tracked: u64,
    epoch: usize,
    /// The epochs the schedule spans: the train block's, or the run's (`set_epochs`).
    epochs: usize,
    correct: usize,
    seed: u64,
}

impl<N: Network + Default> Driver<N> {
    /// A model with the spec's initialization drawn from `seed` (which also seeds
    /// dropout).
    pub fn new(seed: u64) -> Self {
        Self::with_network(N::default(), seed)
    }
}

impl<N: Network> Driver<N> {
    /// The network this driver runs.
    pub fn network(&self) -> &N {
        &self.net
    }

    /// The model's description.
    #[inline]
    pub fn spec(&self) -> &'static Spec {
        self.net.spec()
    }

    /// The network `net` with the spec's initialization drawn from `seed` (which
    /// also seeds dropout).
    pub fn with_network(net: N, seed: u64) -> Self {
        let spec = net.spec();
        let mut init = Initializer::new(seed);
        let mut params = vec![0.0f32; spec.param_count];
        let mut buffers = vec![0.0f32; spec.buffer_len];
        for (table, values) in [(spec.params, &mut params), (spec.buffers, &mut buffers)] {
            for t in table {
                match t.init {
                    Init::Zeros => {}
                    Init::Ones => values[t.range()].fill(1.0),
                    Init::Draw(scheme) => values[t.range()].copy_from_slice(&init.weights(scheme, t.len())),
                }
            }
        }
        let workers = worker_count(spec.batch);
        let samples = spec.batch.div_ceil(workers);
        let training = spec.train.is_some();
        let states = match spec.train.map(|t| t.optimizer) {
            Some(Optimizer::Sgd { momentum, .. }) if momentum != 0.0 => 1,
            Some(Optimizer::Adam { .. } | Optimizer::AdamW { .. }) => 2,
            _ => 0,
        };
        let grads_len = if training { spec.param_count } else { 0 };
        let classifier = matches!(spec.train.map(|t| t.loss), Some(Loss::CrossEntropy));
        let slots = (0..workers)
            .map(|_| Slot {
                worker: net.worker(samples),
                grads: vec![0.0; grads_len],
                labels: vec![
                    0;
                    if training && classifier {
                        samples * spec.classes().area
                    } else {
                        0
                    }
                ],
                targets: vec![
                    0.0;
                    if training && !classifier {
                        samples * spec.output_len()
                    } else {
                        0
                    }
                ],
                correct: 0,
            })
            .collect();
        let bn_values: usize = spec.batchnorms.iter().map(|b| 2 * b.channels).sum();
        let mut trainable: Vec<std::ops::Range<usize>> = Vec::new();
        for t in spec.params {
            if spec.train.is_some_and(|train| train.is_frozen(t.name)) {
                continue;
            }
            match trainable.last_mut() {
                Some(last) if last.end == t.offset => last.end = t.range().end,
                _ => trainable.push(t.range()),
            }
        }
        Driver {
            net,
            params,
            trainable,
            buffers,
            shared: vec![0.0; spec.shared_len],
            folded: vec![0.0; spec.folded_len],
            folded_fresh: false,
            slots,
            grads: vec![0.0; grads_len],
            state1: vec![0.0; if states >= 1 { spec.param_count } else { 0 }],
            state2: vec![0.0; if states >= 2 { spec.param_count } else { 0 }],
            pending: vec![0.0; bn_values],
            step: 0,
            tracked: 0,
            epoch: 0,
            epochs: spec.train.map_or(1, |t| t.epochs),
            correct: 0,
            seed,
        }
    }

    /// The flat parameter buffer, in the order of `Spec::params`.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// The inference statistics of every batchnorm, from the running statistics.
    fn inference_stats(&mut self) {
        for bn in self.spec().batchnorms {
            let c = bn.channels;
            compute::norm::bn_inference_stats(
                &self.buffers[bn.buffer..bn.buffer + 2 * c],
                c,
                bn.eps,
                &mut self.shared[bn.shared..bn.shared + 2 * c],
            );
        }
    }

    /// Inference into a caller's buffer of `N * output` values; allocates nothing.
    pub fn predict_into(&mut self, x: ArrayViewD<'_, f32>, out: &mut [f32]) -> Result<(), Error> {
        let spec = self.spec();
        let n = batch_size("input", x.shape(), spec.input)?;
        check_finite("input", &x)?;
        let out_len = spec.output_len();
        if out.len() != n * out_len {
            return Err(Error::Shape {
                what: "output buffer".into(),
                expected: format!("{} values", n * out_len),
                given: vec![out.len()],
            });
        }
        self.inference_stats();
        if !self.folded_fresh {
            fold::fold_all(spec, &self.params, &self.buffers, &mut self.folded);
            self.folded_fresh = true;
        }
        let count = self.slots.len();
        let (params, shared, folded) = (&self.params[..], &self.shared[..], &self.folded[..]);
        let (seed, step) = (self.seed, self.step);
        let mut lo = 0;
        while lo < n {
            let hi = (lo + spec.batch).min(n);
            let active = count.min(hi - lo);
            let sub = inference_chunk(spec.sample_floats);
            let rows = &|w: usize| worker_range(lo, hi, w, count).0 - lo;
            each_rows(
                &mut self.slots[..active],
                &mut out[lo * out_len..hi * out_len],
                out_len,
                rows,
                &|w, slot, out| {
                    let (a, b) = worker_range(lo, hi, w, count);
                    // Sub-chunks small enough that one sample's activations stay in
                    // cache from layer to layer (see INFERENCE_BUDGET).
                    let mut a0 = a;
                    while a0 < b {
                        let b0 = (a0 + sub).min(b);
                        copy_rows(&x, a0, b0, slot.worker.input());
                        let pass = Pass {
                            params,
                            shared,
                            folded,
                            n: b0 - a0,
                            first: a0,
                            batch: hi - lo,
                            train: false,
                            input_grad: false,
                            seed,
                            step,
                        };
                        slot.worker.infer(spec.phases(), &pass);
                        out[(a0 - a) * out_len..(b0 - a) * out_len]
                            .copy_from_slice(&slot.worker.output()[..(b0 - a0) * out_len]);
                        a0 = b0;
                    }
                },
            );
            lo = hi;
        }
        Ok(())
    }

    /// Saves parameters and buffers with PyTorch names and layouts.
    pub fn save_safetensors(&self, path: &std::path::Path) -> Result<(), Error>
    where
        Self: Model,
    {
        super::weights::save_safetensors(self, path)
    }

    /// Loads parameters (and buffers) saved by `save_safetensors` or by PyTorch.
    pub fn load_safetensors(&mut self, path: &std::path::Path) -> Result<(), Error>
    where
        Self: Model,
    {
        super::weights::load_safetensors(self, path)
    }

    /// Loads the tensors a weight file has and reports the loaded, missing and
    /// unexpected ones (PyTorch's `strict=False`; see
    /// [`super::weights::load_safetensors_partial`]).
    pub fn load_safetensors_partial(&mut self, path: &std::path::Path) -> Result<super::weights::LoadReport, Error>
    where
        Self: Model,
    {
        super::weights::load_safetensors_partial(self, path)
    }
}
