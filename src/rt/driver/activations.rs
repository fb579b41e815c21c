//! `Model::activations` of a generated model: one inference pass per chunk on
//! the first worker, then every layer's output copied out of the worker's
//! activation buffers ([`Worker::buffer`]). A layer whose activation is fused
//! into it (`conv1` of `conv1+relu1`) leaves no buffer of its own: its output
//! is computed again from the step's input with the activation left out, by the
//! same kernels with the shape given at run time. Nothing here runs in `predict`,
//! which stays allocation-free.

use super::{Driver, Network, Pass, Spec, Worker};
use crate::compute::join::MulShape;
use crate::compute::layers::{ConvLayer, DenseLayer};
use crate::compute::transpose::TransposeShape;
use crate::compute::{self, Activation, ConvShape};
use crate::rt::inputs::{batch_size, check_finite, copy_rows};
use crate::rt::Error;
use ndarray::{ArrayD, ArrayViewD, IxDyn};

/// One IR layer's output after an inference pass (`Spec::layers`, in the order
/// the layers run).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerOutput {
    /// The layer's name, as `cnnc summary` shows it.
    pub name: &'static str,
    /// Its output shape, without the batch axis.
    pub shape: &'static [usize],
    pub source: Source,
}

/// Where a layer's output is found, or how it is computed again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    /// Activation buffer `i` of the worker holds it.
    Buffer(usize),
    /// A convolution before its fused activation: `conv(buffer input) + bias`,
    /// the weight and bias at these offsets of the parameters.
    Conv {
        input: usize,
        shape: ConvShape,
        weight: usize,
        bias: Option<usize>,
    },
    /// A dense layer before its fused activation.
    Dense {
        input: usize,
        inputs: usize,
        outputs: usize,
        weight: usize,
        bias: Option<usize>,
    },
    /// Batch normalization `index` of `Spec::batchnorms` before its fused
    /// activation; γ and β at `gamma` and `gamma + channels`.
    BatchNorm { input: usize, index: usize, gamma: usize },
    /// A residual join before its fused activation: `body + shortcut`.
    Add { body: usize, shortcut: usize },
    /// v3: a transposed convolution before its fused activation.
    ConvTranspose {
        input: usize,
        shape: TransposeShape,
        weight: usize,
        bias: Option<usize>,
    },
    /// v3: `mul` before its fused activation: `a * b`, `len` values per sample.
    Mul {
        a: usize,
        b: usize,
        shape: MulShape,
        len: usize,
    },
}

impl LayerOutput {
    pub const fn new(name: &'static str, shape: &'static [usize], source: Source) -> Self {
        LayerOutput { name, shape, source }
    }
}

impl Source {
    /// The convolution of marker type `L`, reading buffer `input`.
    pub const fn conv<L: ConvLayer>(input: usize, weight: usize, bias: Option<usize>) -> Self {
        Source::Conv {
            input,
            shape: L::SHAPE,
            weight,
            bias,
        }
    }

    /// The dense layer of marker type `L`, reading buffer `input`.
    pub const fn dense<L: DenseLayer>(input: usize, weight: usize, bias: Option<usize>) -> Self {
        Source::Dense {
            input,
            inputs: L::INPUTS,
            outputs: L::OUTPUTS,
            weight,
            bias,
        }
    }

    pub const fn batchnorm(input: usize, index: usize, gamma: usize) -> Self {
        Source::BatchNorm { input, index, gamma }
    }

    pub const fn add(body: usize, shortcut: usize) -> Self {
        Source::Add { body, shortcut }
    }
}

impl<N: Network> Driver<N> {
    /// Every layer's output for `x`, in inference mode: see [`crate::Model::activations`].
    pub fn activations(&mut self, x: ArrayViewD<'_, f32>) -> Result<Vec<(String, ArrayD<f32>)>, Error> {
        let spec = self.spec();
        let n = batch_size("input", x.shape(), spec.input)?;
        check_finite("input", &x)?;
        self.inference_stats();
        let lens: Vec<usize> = spec.layers.iter().map(|l| l.shape.iter().product()).collect();
        let mut outputs: Vec<Vec<f32>> = lens.iter().map(|len| Vec::with_capacity(n * len)).collect();
        // What one worker's buffers hold (`Driver::new` sizes them so).
        let capacity = spec.batch.div_ceil(self.slots.len().max(1)).max(1);
        let (params, shared) = (&self.params[..], &self.shared[..]);
        let Some(slot) = self.slots.first_mut() else {
            return Err(Error::Config(format!("model {} has no worker", spec.name)));
        };
        let mut lo = 0;
        while lo < n {
            let hi = (lo + capacity).min(n);
            copy_rows(&x, lo, hi, slot.worker.input());
            let pass = Pass {
                params,
                shared,
                folded: &[],
                n: hi - lo,
                first: lo,
                batch: hi - lo,
                train: false,
                input_grad: false,
                seed: self.seed,
                step: self.step,
            };
            for phase in 0..spec.phases() {
                slot.worker.forward(phase, &pass);
            }
            for ((layer, len), out) in spec.layers.iter().zip(&lens).zip(&mut outputs) {
                let values = (hi - lo) * len;
                match layer.source {
                    Source::Buffer(b) => out.extend_from_slice(&slot.worker.buffer(b)[..values]),
                    source => {
                        let start = out.len();
                        out.resize(start + values, 0.0);
                        unfused::<N>(spec, source, &slot.worker, &pass, &mut out[start..]);
                    }
                }
            }
            lo = hi;
        }
        spec.layers
            .iter()
            .zip(outputs)
            .map(|(layer, values)| {
                let mut shape = vec![n];
                shape.extend_from_slice(layer.shape);
                let array = ArrayD::from_shape_vec(IxDyn(&shape), values)
                    .map_err(|e| Error::Config(format!("model {}: the output of {}: {e}", spec.name, layer.name)))?;
                Ok((layer.name.to_string(), array))
            })
            .collect()
    }
}

/// Computes a fused layer's output without its activation into `y`, from the
/// worker's buffers after the forward pass.
fn unfused<N: Network>(spec: &Spec, source: Source, worker: &N::Worker, pass: &Pass<'_>, y: &mut [f32]) {
    let (n, p) = (pass.n, pass.params);
    let bias = |at: Option<usize>, len: usize| at.map(|b| &p[b..b + len]);
    match source {
        Source::Buffer(b) => y.copy_from_slice(&worker.buffer(b)[..y.len()]),
        Source::Conv {
            input,
            shape,
            weight,
            bias: b,
        } => {
            let mut scratch = vec![0.0; shape.scratch_len()];
            let x = &worker.buffer(input)[..n * shape.input_len()];
            let w = &p[weight..weight + shape.weight_len()];
            compute::conv::forward(
                &shape,
                compute::conv::Sizes::RunTime,
                Activation::Identity.into(),
                x,
                w,
                bias(b, shape.f),
                y,
                n,
                &mut scratch,
            );
        }
        Source::Dense {
            input,
            inputs,
            outputs,
            weight,
            bias: b,
        } => {
            let mut scratch = vec![0.0; compute::dense::scratch_len(inputs, outputs, n)];
            let (x, w) = (
                &worker.buffer(input)[..n * inputs],
                &p[weight..weight + inputs * outputs],
            );
            compute::dense::forward(
                inputs,
                outputs,
                Activation::Identity,
                x,
                w,
                bias(b, outputs),
                y,
                n,
                &mut scratch,
            );
        }
        Source::BatchNorm { input, index, gamma } => {
            let bn = spec.batchnorms[index];
            let c = bn.channels;
            let stats = &pass.shared[bn.shared..bn.shared + 2 * c];
            let (g, beta) = (&p[gamma..gamma + c], &p[gamma + c..gamma + 2 * c]);
            let x = &worker.buffer(input)[..y.len()];
            compute::norm::bn_forward(x, y, n, c, bn.area, stats, g, beta, Activation::Identity);
        }
        Source::Add { body, shortcut } => {
            compute::norm::add_forward(worker.buffer(body), worker.buffer(shortcut), y, Activation::Identity);
        }
        Source::ConvTranspose {
            input,
            shape,
            weight,
            bias: b,
        } => {
            let mut scratch = vec![0.0; shape.scratch_len()];
            let x = &worker.buffer(input)[..n * shape.input_len()];
            let w = &p[weight..weight + shape.conv.weight_len()];
            let filters = shape.conv.c;
            compute::transpose::forward(&shape, Activation::Identity, x, w, bias(b, filters), y, n, &mut scratch);
        }
        Source::Mul { a, b, shape, len } => {
            compute::join::mul_forward(
                shape,
                worker.buffer(a),
                worker.buffer(b),
                y,
                Activation::Identity,
                n,
                len,
            );
        }
    }
}
