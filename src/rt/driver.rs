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
mod traits;

pub use activations::{LayerOutput, Source};
pub use fold::Fold;
pub use parallel::{inference_chunk, worker_count, worker_range, INFERENCE_BUDGET, INFERENCE_MIN_CHUNK};

use parallel::{each, each_rows};

use super::init::Initializer;
use super::inputs::{batch_size, check_finite, copy_rows, labels, values};
use super::{Error, Model, Target};
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

impl<N: Network> Driver<N>
where
    N::Worker: Backward,
{
    fn train_spec(&self) -> Result<TrainSpec, Error> {
        self.spec().train.ok_or_else(|| {
            Error::Config(format!(
                "model {} has no train block, so it cannot compute gradients or train",
                self.spec().name
            ))
        })
    }

    /// Combines batchnorm `k`'s partial statistics of the `active` workers of
    /// chunk `lo..hi` into its batch mean and 1/std (and the pending running update).
    fn combine_forward(&mut self, k: usize, lo: usize, hi: usize, active: usize) {
        let bn = self.spec().batchnorms[k];
        let c = bn.channels;
        let count = self.slots.len();
        let pending_at: usize = self.spec().batchnorms[..k].iter().map(|b| 2 * b.channels).sum();
        for ch in 0..c {
            let (mut total, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
            for (w, slot) in self.slots[..active].iter().enumerate() {
                let (a, b) = worker_range(lo, hi, w, count);
                if a == b {
                    continue;
                }
                let m = ((b - a) * bn.area) as f64;
                let part = slot.worker.partials();
                let delta = part[ch] - mean;
                let sum = total + m;
                mean += delta * m / sum;
                m2 += part[c + ch] + delta * delta * total * m / sum;
                total = sum;
            }
            let var = m2 / total;
            self.shared[bn.shared + ch] = mean as f32;
            self.shared[bn.shared + c + ch] = (1.0 / (var + bn.eps as f64).sqrt()) as f32;
            self.pending[pending_at + ch] = mean as f32;
            self.pending[pending_at + c + ch] = (var * total / (total - 1.0).max(1.0)) as f32;
        }
    }

    /// Sums batchnorm `k`'s backward partial sums over the `active` workers.
    fn combine_backward(&mut self, k: usize, active: usize) {
        let bn = self.spec().batchnorms[k];
        let c = bn.channels;
        for i in 0..2 * c {
            let sum: f64 = self.slots[..active].iter().map(|s| s.worker.partials()[i]).sum();
            self.shared[bn.shared + 2 * c + i] = sum as f32;
        }
    }

    /// Forward, loss and backward over a whole batch, in chunks of `batch` split
    /// across the workers; leaves the summed gradient in `grads`. Returns the mean
    /// loss; fills `input_grad` when given.
    fn accumulate(
        &mut self,
        x: ArrayViewD<'_, f32>,
        target: Target<'_>,
        mut input_grad: Option<&mut [f32]>,
    ) -> Result<f32, Error> {
        let spec = self.spec();
        let train = self.train_spec()?;
        let smoothing = train.smoothing as f32;
        let n = batch_size("input", x.shape(), spec.input)?;
        check_finite("input", &x)?;
        if !spec.batchnorms.is_empty() {
            if n > spec.batch {
                return Err(Error::Config(format!(
                    "model {} has batchnorm, so a training step takes the whole batch at once: at most {} \
                     samples (its `batch`), not {n}; split the data into batches of at most {}",
                    spec.name, spec.batch, spec.batch
                )));
            }
            for bn in spec.batchnorms {
                if n * bn.area < 2 {
                    return Err(Error::Config(format!(
                        "batchnorm `{}` needs at least 2 values per channel in training, and a batch of {n} \
                         sample(s) gives it {}; train on at least 2 samples",
                        bn.name,
                        n * bn.area
                    )));
                }
            }
        }
        let out_len = spec.output_len();
        let in_len = spec.input_len();
        let classes = spec.classes();
        let (labels, values) = match train.loss {
            Loss::CrossEntropy => (Some(labels(&target, n, spec.output, classes)?), None),
            Loss::Mse => (None, Some(values(&target, n, spec.output, false)?)),
            Loss::BinaryCrossEntropy => (None, Some(values(&target, n, spec.output, true)?)),
        };
        let total = match &labels {
            Some(l) => classes.counted(l.as_slice().unwrap_or(&[])),
            None => n * out_len,
        };
        let want_input = input_grad.is_some();
        for slot in &mut self.slots {
            slot.grads.fill(0.0);
            slot.correct = 0;
        }
        let count = self.slots.len();
        let phases = spec.phases();
        let (seed, step) = (self.seed, self.step);
        let mut loss = 0.0f64;
        let mut lo = 0;
        while lo < n {
            let hi = (lo + spec.batch).min(n);
            let active = count.min(hi - lo);
            // Forward phases before the last, each followed by a combine.
            for phase in 0..phases {
                let last = phase + 1 == phases;
                let (params, shared) = (&self.params[..], &self.shared[..]);
                let (labels, values) = (&labels, &values);
                loss += each(&mut self.slots[..active], &|w, slot| {
                    let (a, b) = worker_range(lo, hi, w, count);
                    if a == b {
                        return 0.0;
                    }
                    let m = b - a;
                    if phase == 0 {
                        copy_rows(&x, a, b, slot.worker.input());
                        if let Some(l) = labels {
                            let area = classes.area;
                            for (d, s) in slot.labels.iter_mut().zip(l.iter().skip(a * area).take(m * area)) {
                                *d = *s;
                            }
                        }
                        if let Some(v) = values {
                            copy_rows(v, a, b, &mut slot.targets);
                        }
                    }
                    let pass = Pass {
                        params,
                        shared,
                        folded: &[],
                        n: m,
                        first: a,
                        batch: hi - lo,
                        train: true,
                        input_grad: want_input,
                        seed,
                        step,
                    };
                    slot.worker.forward(phase, &pass);
                    if !last {
                        return 0.0;
                    }
                    let io = slot.worker.loss_io();
                    let (z, p, g) = (
                        &io.logits[..m * out_len],
                        &io.output[..m * out_len],
                        &mut io.grad[..m * out_len],
                    );
                    let loss = match train.loss {
                        Loss::CrossEntropy => {
                            let labels = &slot.labels[..m * classes.area];
                            let l = compute::loss::cross_entropy(z, p, labels, g, classes, total, smoothing);
                            slot.correct += compute::loss::count_correct(p, labels, classes);
                            l
                        }
                        Loss::BinaryCrossEntropy => {
                            let t = &slot.targets[..m * out_len];
                            slot.correct += p
                                .iter()
                                .zip(t)
                                .filter(|(&p, &t)| compute::loss::binary_correct(p, t))
                                .count();
                            compute::loss::binary_cross_entropy(z, p, t, g, total)
                        }
                        Loss::Mse => compute::loss::mse(p, &slot.targets[..m * out_len], g, total),
                    };
                    slot.worker.backward(phases - 1, &pass, &mut slot.grads);
                    loss
                });
                if !last {
                    self.combine_forward(phase, lo, hi, active);
                }
            }
            // Backward phases from the second-to-last down, each after a combine.
            for phase in (0..phases - 1).rev() {
                self.combine_backward(phase, active);
                let (params, shared) = (&self.params[..], &self.shared[..]);
                each(&mut self.slots[..active], &|w, slot| {
                    let (a, b) = worker_range(lo, hi, w, count);
                    if a < b {
                        let pass = Pass {
                            params,
                            shared,
                            folded: &[],
                            n: b - a,
                            first: a,
                            batch: hi - lo,
                            train: true,
                            input_grad: want_input,
                            seed,
                            step,
                        };
                        slot.worker.backward(phase, &pass, &mut slot.grads);
                    }
                    0.0
                });
            }
            if let Some(dst) = input_grad.as_deref_mut() {
                for (w, slot) in self.slots[..active].iter().enumerate() {
                    let (a, b) = worker_range(lo, hi, w, count);
                    dst[a * in_len..b * in_len].copy_from_slice(&slot.worker.input_grad()[..(b - a) * in_len]);
                }
            }
            lo = hi;
        }
        // Sum the workers' gradients in a fixed order: deterministic.
        let (first, rest) = self.slots.split_at(1);
        self.grads.copy_from_slice(&first[0].grads);
        self.correct = first[0].correct;
        for slot in rest {
            compute::norm::accumulate(&mut self.grads, &slot.grads);
            self.correct += slot.correct;
        }
        Ok((loss / total as f64) as f32)
    }

    /// Folds the last step's batch statistics into the running statistics.
    fn update_running_stats(&mut self) {
        let mut at = 0;
        for bn in self.spec().batchnorms {
            let c = bn.channels;
            let m = bn.momentum;
            let running = &mut self.buffers[bn.buffer..bn.buffer + 2 * c];
            for (r, &b) in running.iter_mut().zip(&self.pending[at..at + 2 * c]) {
                *r = (1.0 - m) * *r + m * b;
            }
            at += 2 * c;
        }
    }

    /// One optimizer step over the trainable parameters, from `grads`: clipped to
    /// the train block's `clip_grad_norm` first (their global L2 norm, PyTorch's
    /// `clip_grad_norm_`), frozen items left out (no update, no weight decay, no
    /// part in the norm).
    fn optimizer_step(&mut self) -> Result<(), Error> {
        let train = self.train_spec()?;
        self.step += 1;
        let lr = self.learning_rate_at(self.epoch);
        let wd = train.weight_decay as f32;
        if let Some(max) = train.clip_grad_norm {
            let squares: f64 = self
                .trainable
                .iter()
                .flat_map(|r| &self.grads[r.clone()])
                .map(|&g| g as f64 * g as f64)
                .sum();
            let factor = (max / (squares.sqrt() + 1e-6)).min(1.0) as f32;
            if factor < 1.0 {
                for r in &self.trainable {
                    self.grads[r.clone()].iter_mut().for_each(|g| *g *= factor);
                }
            }
        }
        // An optimizer without a moment keeps an empty buffer for it.
        let part = |state: &[f32], r: &std::ops::Range<usize>| if state.is_empty() { 0..0 } else { r.clone() };
        for r in &self.trainable {
            let (s1, s2) = (part(&self.state1, r), part(&self.state2, r));
            let (params, grads) = (&mut self.params[r.clone()], &self.grads[r.clone()]);
            let (state1, state2) = (&mut self.state1[s1], &mut self.state2[s2]);
            match train.optimizer {
                Optimizer::Sgd { momentum, nesterov, .. } => {
                    compute::optim::sgd(params, grads, state1, lr, momentum as f32, nesterov, wd, self.step)
                }
                Optimizer::Adam { beta1, beta2, eps, .. } | Optimizer::AdamW { beta1, beta2, eps, .. } => {
                    compute::optim::adam(
                        params,
                        grads,
                        state1,
                        state2,
                        lr,
                        beta1 as f32,
                        beta2 as f32,
                        eps as f32,
                        wd,
                        matches!(train.optimizer, Optimizer::AdamW { .. }),
                        self.step,
                    )
                }
            }
        }
        Ok(())
    }

    fn learning_rate_at(&self, epoch: usize) -> f32 {
        match self.spec().train {
            Some(t) => crate::ir::learning_rate(t.optimizer.lr(), t.schedule, t.warmup, self.epochs, epoch) as f32,
            None => 0.0,
        }
    }
}
