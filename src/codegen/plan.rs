//! The execution plan of a model: the IR's tree of layers flattened into steps
//! that name their input and output buffers, which activations fuse into the
//! step before them, where each parameter and buffer sits in its flat buffer,
//! and where the passes are cut for batch statistics. Computed once from the IR;
//! the emitters only read it.

pub use crate::ir::Activation;
use crate::ir::{self, InitScheme, Layer, Loss, Op, Shape};
use std::collections::{HashMap, HashSet};

/// A window's sizes, as the kernels' `ConvShape`/`PoolShape` want them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowShape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub window: [usize; 2],
    pub stride: [usize; 2],
    pub pad_before: [usize; 2],
    pub pad_after: [usize; 2],
    pub oh: usize,
    pub ow: usize,
}

impl WindowShape {
    fn new(input: Shape, output: Shape, w: &ir::Window) -> Self {
        let (Shape::Image { c, h, w: width }, Shape::Image { h: oh, w: ow, .. }) = (input, output) else {
            unreachable!("the checker gives windows image shapes")
        };
        WindowShape {
            c,
            h,
            w: width,
            window: w.size,
            stride: w.stride,
            pad_before: w.pad_before,
            pad_after: w.pad_after,
            oh,
            ow,
        }
    }
}

/// A convolution's shape: its window plus filters, dilation and groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvGeometry {
    pub window: WindowShape,
    pub filters: usize,
    pub dilation: [usize; 2],
    pub groups: usize,
}

/// What one step computes. Each kind's code lives in the codegen file of its name.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `(x - mean) / std` per channel, before the first layer.
    Normalize {
        channels: usize,
        area: usize,
        mean: Vec<f32>,
        std: Vec<f32>,
    },
    Conv {
        shape: ConvGeometry,
        act: Activation,
        bias: bool,
    },
    Dense {
        inputs: usize,
        outputs: usize,
        act: Activation,
        bias: bool,
    },
    MaxPool(WindowShape),
    AvgPool(WindowShape),
    GlobalAvgPool {
        channels: usize,
        area: usize,
    },
    /// Batch normalization number `index` (in execution order), with the
    /// activation after it fused.
    BatchNorm {
        index: usize,
        channels: usize,
        area: usize,
        act: Activation,
    },
    /// An activation that could not fuse into the step before it.
    Activation(Activation),
    /// Over `features` values per sample, or (v3, an image) over the `features`
    /// channels at each of `area` positions.
    Softmax {
        features: usize,
        area: usize,
    },
    /// `layer` numbers the dropout layers, for their masks' streams.
    Dropout {
        p: f32,
        layer: u64,
    },
    /// A residual block's join or v3's `add`: `inputs[0] + inputs[1]`, then the
    /// activation.
    Add {
        act: Activation,
    },
    /// v3: the transposed convolution whose data gradient is `conv`'s (the
    /// convolution from this layer's output size to its input size).
    ConvTranspose {
        conv: ConvGeometry,
        act: Activation,
        bias: bool,
    },
    /// v3: `upsample`, on `c` channels of `h` x `w`.
    Upsample {
        c: usize,
        h: usize,
        w: usize,
        factor: [usize; 2],
        bilinear: bool,
    },
    /// v3: each input's per-sample values in turn (`lens`, one per input).
    Concat {
        lens: Vec<usize>,
    },
    /// v3: `inputs[0] * inputs[1]`, then the activation; `gate` is the input that is
    /// `[channels, 1, 1]` when one is broadcast over `area` positions.
    Mul {
        act: Activation,
        gate: Option<usize>,
        channels: usize,
        area: usize,
    },
}

/// One step: a layer, perhaps with its activation fused.
#[derive(Debug, Clone)]
pub struct Step {
    pub kind: Kind,
    /// The IR layer names this step covers (`conv1+relu1`), for comments.
    pub name: String,
    /// Buffers read (two for `Add`).
    pub inputs: Vec<usize>,
    pub output: usize,
    /// Indices into `Plan::params`: the weight and, if any, the bias (for
    /// batchnorm: gamma and beta).
    pub weight: Option<usize>,
    pub bias: Option<usize>,
    /// The pass phase: the number of batchnorms before this step (a batchnorm
    /// step opens the phase after its statistics are combined).
    pub phase: usize,
    /// Inference plan only: the fold (`Plan::folds`) whose weight and bias a
    /// convolution reads instead of its parameters.
    pub folded: Option<usize>,
}

/// Where one IR layer's output is after an inference pass, for
/// `Model::activations`: the name and per-sample shape of the layer, and its source.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerOutput {
    pub name: String,
    pub shape: Vec<usize>,
    pub source: OutputSource,
}

/// See [`LayerOutput`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputSource {
    /// An activation buffer holds it (a flatten's output is its input's buffer).
    Buffer(usize),
    /// The output of this step before the activation fused into it, which no
    /// buffer keeps: `activations` computes it again from the step's inputs.
    Unfused(usize),
}

/// A tensor in a flat buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub name: String,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub init: Init,
}

impl Slot {
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

/// How a tensor starts (the driver's `Init`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    Zeros,
    Ones,
    Draw(InitScheme),
}

/// A batch normalization's place in the flat buffers.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormSlot {
    pub name: String,
    pub channels: usize,
    pub area: usize,
    pub eps: f64,
    pub momentum: f64,
    /// Offset of `running_mean` in the buffers (`running_var` follows).
    pub buffer: usize,
    /// Offset of its `[mean][1/std][Σdy][Σdy·x̂]` region in the shared statistics.
    pub shared: usize,
}

/// How the loss meets the last layers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossPlan {
    /// Before the fused final softmax or sigmoid; the output itself for mse.
    pub logits: usize,
    pub output: usize,
    /// The step whose backward pass the loss replaces (the fused softmax or sigmoid).
    pub fused_step: Option<usize>,
}

/// A batchnorm folded into the convolution before it (the inference plan, see
/// `infer.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fold {
    /// The convolution's weight and bias (indices into `Plan::params`).
    pub weight: usize,
    pub bias: Option<usize>,
    /// The batchnorm (an index into `Plan::batchnorms`) and its γ and β.
    pub batchnorm: usize,
    pub gamma: Option<usize>,
    pub beta: Option<usize>,
    /// Where the folded weight starts in the folded buffer; `filters` biases
    /// follow its `weight_len` values.
    pub offset: usize,
    pub weight_len: usize,
    pub filters: usize,
}

/// The whole plan of one model.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Per-sample length of each activation buffer; buffer 0 is the input.
    pub buffers: Vec<usize>,
    pub steps: Vec<Step>,
    pub params: Vec<Slot>,
    pub param_count: usize,
    /// Batchnorm running statistics.
    pub stats: Vec<Slot>,
    pub stats_len: usize,
    pub batchnorms: Vec<BatchNormSlot>,
    pub shared_len: usize,
    pub loss: Option<LossPlan>,
    /// Samples per chunk: the declared batch size.
    pub batch: usize,
    /// The buffer holding the model's output.
    pub output: usize,
    /// Every IR layer's output, in the order the layers run.
    pub layers: Vec<LayerOutput>,
    /// Inference plan only: the batchnorms folded into convolutions, and the
    /// length of the buffer their weights and biases fill (see `infer.rs`).
    pub folds: Vec<Fold>,
    pub folded_len: usize,
}

/// Samples per chunk for models without a train block: what `predict` runs at
/// once, split over the threads (larger inputs run in chunks of this many).
pub const INFERENCE_BATCH: usize = 32;

/// Flattens the tree, keeping count of what it has placed.
struct Planner {
    buffers: Vec<usize>,
    steps: Vec<Step>,
    params: Vec<Slot>,
    param_count: usize,
    stats: Vec<Slot>,
    stats_len: usize,
    batchnorms: Vec<BatchNormSlot>,
    shared_len: usize,
    dropouts: u64,
    layers: Vec<LayerOutput>,
    /// Binary cross-entropy needs the final sigmoid as a step of its own.
    keep_final_sigmoid: bool,
    /// v3: the outputs items read by name, and the buffer of every named output.
    referenced: HashSet<String>,
    named: HashMap<String, usize>,
}

impl Planner {
    fn buffer(&mut self, shape: Shape) -> usize {
        self.buffers.push(shape.len());
        self.buffers.len() - 1
    }

    fn param(&mut self, p: ir::Param, init: Init) -> usize {
        let len = p.len();
        self.params.push(Slot {
            name: p.name,
            offset: self.param_count,
            shape: p.shape,
            init,
        });
        self.param_count += len;
        self.params.len() - 1
    }

    /// Records where `layer`'s output is: buffer `output`, or, when the activation
    /// layer `fused` follows it inside the same step, before that activation (and
    /// the activation's output in the buffer).
    fn record(&mut self, layer: &Layer, fused: Option<&Layer>, output: usize) {
        let shape = layer.output.dims();
        let last = fused.unwrap_or(layer);
        self.named.insert(last.name.clone(), output);
        match fused {
            Some(next) => {
                let step = self.steps.len() - 1;
                self.layers.push(LayerOutput {
                    name: layer.name.clone(),
                    shape,
                    source: OutputSource::Unfused(step),
                });
                self.layers.push(LayerOutput {
                    name: next.name.clone(),
                    shape: next.output.dims(),
                    source: OutputSource::Buffer(output),
                });
            }
            None => self.layers.push(LayerOutput {
                name: layer.name.clone(),
                shape,
                source: OutputSource::Buffer(output),
            }),
        }
    }

    fn push(
        &mut self,
        kind: Kind,
        name: String,
        inputs: Vec<usize>,
        output: usize,
        params: (Option<usize>, Option<usize>),
    ) {
        let phase = self.batchnorms.len();
        self.steps.push(Step {
            kind,
            name,
            inputs,
            output,
            weight: params.0,
            bias: params.1,
            phase,
            folded: None,
        });
    }

    /// The weight (drawn by `scheme`) and bias of a conv or dense layer.
    fn weight_and_bias(&mut self, layer: &Layer, scheme: InitScheme) -> (Option<usize>, Option<usize>) {
        let mut tensors = layer.params().into_iter();
        let weight = tensors.next().map(|w| self.param(w, Init::Draw(scheme)));
        let bias = tensors.next().map(|b| self.param(b, Init::Zeros));
        (weight, bias)
    }

    /// Plans a sequence reading buffer `current`; returns the buffer it ends in.
    /// `last_of_model` is true for the top-level sequence.
    fn sequence(&mut self, seq: &[Layer], mut current: usize, last_of_model: bool) -> usize {
        let mut i = 0;
        while i < seq.len() {
            let layer = &seq[i];
            let next = seq.get(i + 1);
            // The activation after this layer, if it can fuse (not the final sigmoid
            // that binary cross-entropy reads, not one whose derivative needs its
            // input); a layer whose output is read by name keeps a buffer of its own.
            let referenced = self.referenced.contains(&layer.name);
            let fusable = next.filter(|_| !referenced).and_then(|next| match &next.op {
                Op::Activation(a) if a.derivative_from_output() => {
                    let final_sigmoid = last_of_model && i + 2 == seq.len() && self.keep_final_sigmoid;
                    (!final_sigmoid).then_some((*a, next.name.as_str()))
                }
                _ => None,
            });
            let (output, fused) = match self.layer(seq, i, current, fusable) {
                Planned::Step(kind, params, fused) => {
                    let output = self.buffer(layer.output);
                    self.push(kind, step_name(layer, fused), vec![current], output, params);
                    self.record(layer, fused.and(next), output);
                    (output, fused.is_some())
                }
                Planned::Buffer(b) => (b, false),
                Planned::Joined { output, fused } => (output, fused),
            };
            current = output;
            i += if fused { 2 } else { 1 };
        }
        current
    }

    /// What layer `i` of `seq`, reading buffer `current`, becomes; `fusable` is the
    /// activation after it that may fuse into its step. One line per kind.
    fn layer<'s>(&mut self, seq: &'s [Layer], i: usize, current: usize, fusable: Fused<'s>) -> Planned<'s> {
        let layer = &seq[i];
        let no_params = (None, None);
        match &layer.op {
            Op::Conv(c) => {
                let params = self.weight_and_bias(layer, ir::init_scheme(seq, i));
                Planned::Step(conv_kind(layer, c, fused_act(fusable)), params, fusable)
            }
            Op::Dense(d) => {
                let params = self.weight_and_bias(layer, ir::init_scheme(seq, i));
                let act = fused_act(fusable);
                let kind = Kind::Dense {
                    inputs: layer.input.len(),
                    outputs: d.units,
                    act,
                    bias: d.bias,
                };
                Planned::Step(kind, params, fusable)
            }
            Op::BatchNorm(bn) => self.batchnorm(layer, bn, fusable),
            Op::MaxPool(w) => Planned::Step(
                Kind::MaxPool(WindowShape::new(layer.input, layer.output, w)),
                no_params,
                None,
            ),
            Op::AvgPool(w) => Planned::Step(
                Kind::AvgPool(WindowShape::new(layer.input, layer.output, w)),
                no_params,
                None,
            ),
            Op::GlobalAvgPool => {
                let channels = layer.input.channels();
                let area = layer.input.len() / channels.max(1);
                Planned::Step(Kind::GlobalAvgPool { channels, area }, no_params, None)
            }
            Op::GlobalMaxPool => Planned::Step(Kind::MaxPool(global_window(layer.input)), no_params, None),
            Op::Flatten => {
                // The same values in the same order: the next step reads the same buffer.
                self.record(layer, None, current);
                Planned::Buffer(current)
            }
            Op::Dropout(p) => {
                self.dropouts += 1;
                Planned::Step(
                    Kind::Dropout {
                        p: *p,
                        layer: self.dropouts,
                    },
                    no_params,
                    None,
                )
            }
            Op::Activation(a) => Planned::Step(Kind::Activation(*a), no_params, None),
            Op::Softmax => {
                let (features, area) = match layer.input {
                    Shape::Image { c, h, w } => (c, h * w),
                    Shape::Vector(n) => (n, 1),
                };
                Planned::Step(Kind::Softmax { features, area }, no_params, None)
            }
            Op::ConvTranspose(t) => {
                let params = self.weight_and_bias(layer, ir::init_scheme(seq, i));
                Planned::Step(conv_transpose_kind(layer, t, fused_act(fusable)), params, fusable)
            }
            Op::Upsample(u) => {
                let Shape::Image { c, h, w } = layer.input else {
                    unreachable!("the checker gives upsample an image")
                };
                let (factor, bilinear) = (u.factor, u.bilinear);
                Planned::Step(
                    Kind::Upsample {
                        c,
                        h,
                        w,
                        factor,
                        bilinear,
                    },
                    no_params,
                    None,
                )
            }
            Op::Concat(refs) => {
                let mut inputs = vec![current];
                inputs.extend(refs.iter().map(|r| self.named[&r.name]));
                let lens = inputs.iter().map(|&b| self.buffers[b]).collect();
                let output = self.buffer(layer.output);
                self.push(Kind::Concat { lens }, layer.name.clone(), inputs, output, no_params);
                self.record(layer, None, output);
                Planned::Joined { output, fused: false }
            }
            Op::Add(r) | Op::Mul(r) => {
                let other = self.named[&r.name];
                let kind = join_kind(layer, r, fused_act(fusable));
                self.join(seq, i, kind, [current, other], fusable)
            }
            // No step: the next layer reads the named output.
            Op::From(r) => Planned::Buffer(self.named[&r.name]),
            Op::Residual(r) => {
                let body = self.sequence(&r.body, current, false);
                let shortcut = match r.shortcut.is_empty() {
                    true => current,
                    false => self.sequence(&r.shortcut, current, false),
                };
                let kind = Kind::Add {
                    act: fused_act(fusable),
                };
                self.join(seq, i, kind, [body, shortcut], fusable)
            }
        }
    }

    /// A batchnorm: its γ and β, its running statistics, its slot in the shared
    /// statistics.
    fn batchnorm<'s>(&mut self, layer: &Layer, bn: &ir::BatchNorm, fusable: Fused<'s>) -> Planned<'s> {
        let mut tensors = layer.params().into_iter();
        let gamma = tensors.next().map(|g| self.param(g, Init::Ones));
        let beta = tensors.next().map(|b| self.param(b, Init::Zeros));
        let channels = layer.input.channels();
        let area = layer.input.len() / channels.max(1);
        let buffer = self.stats_len;
        for (b, init) in layer.buffers().into_iter().zip([Init::Zeros, Init::Ones]) {
            self.stats_len += b.len();
            self.stats.push(Slot {
                name: b.name,
                offset: buffer + if init == Init::Ones { channels } else { 0 },
                shape: b.shape,
                init,
            });
        }
        let index = self.batchnorms.len();
        self.batchnorms.push(BatchNormSlot {
            name: layer.name.clone(),
            channels,
            area,
            eps: bn.eps,
            momentum: bn.momentum,
            buffer,
            shared: self.shared_len,
        });
        self.shared_len += 4 * channels;
        let act = fused_act(fusable);
        Planned::Step(
            Kind::BatchNorm {
                index,
                channels,
                area,
                act,
            },
            (gamma, beta),
            fusable,
        )
    }

    /// A join of two buffers (`add`, `mul`, a residual block's sum) with the
    /// activation after it fused.
    fn join<'s>(
        &mut self,
        seq: &'s [Layer],
        i: usize,
        kind: Kind,
        inputs: [usize; 2],
        fusable: Fused<'s>,
    ) -> Planned<'s> {
        let layer = &seq[i];
        let output = self.buffer(layer.output);
        self.push(kind, step_name(layer, fusable), inputs.to_vec(), output, (None, None));
        self.record(layer, fusable.and(seq.get(i + 1)), output);
        Planned::Joined {
            output,
            fused: fusable.is_some(),
        }
    }
}

/// The activation that fuses into a step, and the name of its layer.
type Fused<'s> = Option<(Activation, &'s str)>;

/// What one layer becomes in the plan.
enum Planned<'s> {
    /// A step reading the current buffer into a new one: its kind, its weight and
    /// bias, and the activation fused into it.
    Step(Kind, (Option<usize>, Option<usize>), Fused<'s>),
    /// No step: the next layer reads this buffer.
    Buffer(usize),
    /// A step already pushed (a join), writing `output`; `fused` when it took the
    /// activation after it.
    Joined { output: usize, fused: bool },
}

fn fused_act(fused: Fused) -> Activation {
    fused.map_or(Activation::Identity, |f| f.0)
}

/// `conv1+relu1`: a step's name, with the activation fused into it.
fn step_name(layer: &Layer, fused: Fused) -> String {
    match fused {
        Some((_, act_name)) => format!("{}+{act_name}", layer.name),
        None => layer.name.clone(),
    }
}

fn conv_kind(layer: &Layer, c: &ir::Conv, act: Activation) -> Kind {
    let shape = ConvGeometry {
        window: WindowShape::new(layer.input, layer.output, &c.window),
        filters: c.filters,
        dilation: c.dilation,
        groups: c.groups,
    };
    Kind::Conv {
        shape,
        act,
        bias: c.bias,
    }
}

/// A transposed convolution, as the convolution from its output back to its
/// input: that convolution's bottom and right padding make its output exactly
/// h x w (the checker keeps output_pad - pad below the stride).
fn conv_transpose_kind(layer: &Layer, t: &ir::ConvTranspose, act: Activation) -> Kind {
    let (Shape::Image { c, h, w }, Shape::Image { c: f, h: oh, w: ow }) = (layer.input, layer.output) else {
        unreachable!("the checker gives convtranspose image shapes")
    };
    let after = |axis: usize, out: usize, inp: usize| {
        let span = t.dilation[axis] * (t.size[axis] - 1) + 1;
        ((inp - 1) * t.stride[axis] + span).saturating_sub(out + t.pad[axis])
    };
    let conv = ConvGeometry {
        window: WindowShape {
            c: f,
            h: oh,
            w: ow,
            window: t.size,
            stride: t.stride,
            pad_before: t.pad,
            pad_after: [after(0, oh, h), after(1, ow, w)],
            oh: h,
            ow: w,
        },
        filters: c,
        dilation: t.dilation,
        groups: t.groups,
    };
    Kind::ConvTranspose {
        conv,
        act,
        bias: t.bias,
    }
}

/// `maxpool global`: one window over the whole image.
fn global_window(input: Shape) -> WindowShape {
    let Shape::Image { c, h, w } = input else {
        unreachable!("the checker gives maxpool global an image")
    };
    WindowShape {
        c,
        h,
        w,
        window: [h, w],
        stride: [h, w],
        pad_before: [0, 0],
        pad_after: [0, 0],
        oh: 1,
        ow: 1,
    }
}

/// `add` or `mul` of the current tensor and the named one `r`: a `mul` by a
/// 1x1 tensor broadcasts it over the other's area (the SE block's gate).
fn join_kind(layer: &Layer, r: &ir::Ref, act: Activation) -> Kind {
    match (&layer.op, layer.input, r.shape) {
        (Op::Add(_), _, _) => Kind::Add { act },
        (_, Shape::Image { c, h, w }, Shape::Image { h: 1, w: 1, .. }) if h * w > 1 => Kind::Mul {
            act,
            gate: Some(1),
            channels: c,
            area: h * w,
        },
        (_, Shape::Image { c, h: 1, w: 1 }, Shape::Image { h, w, .. }) if h * w > 1 => Kind::Mul {
            act,
            gate: Some(0),
            channels: c,
            area: h * w,
        },
        _ => Kind::Mul {
            act,
            gate: None,
            channels: layer.output.channels(),
            area: layer.output.len() / layer.output.channels().max(1),
        },
    }
}

impl Plan {
    pub fn new(model: &ir::Model) -> Plan {
        let loss = model.train.as_ref().map(|t| t.loss);
        let mut planner = Planner {
            buffers: vec![model.input.len()],
            steps: Vec::new(),
            params: Vec::new(),
            param_count: 0,
            stats: Vec::new(),
            stats_len: 0,
            batchnorms: Vec::new(),
            shared_len: 0,
            dropouts: 0,
            layers: Vec::new(),
            keep_final_sigmoid: loss == Some(Loss::BinaryCrossEntropy),
            referenced: {
                let mut refs = Vec::new();
                ir::references(&model.layers, &mut refs);
                refs.into_iter().map(|r| r.name.clone()).collect()
            },
            named: HashMap::new(),
        };
        let mut current = 0;
        if let (Some(n), Shape::Image { c, h, w }) = (&model.normalize, model.input) {
            let output = planner.buffer(model.input);
            let kind = Kind::Normalize {
                channels: c,
                area: h * w,
                mean: n.mean.clone(),
                std: n.std.clone(),
            };
            planner.push(kind, "normalize".into(), vec![0], output, (None, None));
            current = output;
        }
        planner.named.insert(ir::Ref::INPUT.to_string(), current);
        let output = planner.sequence(&model.layers, current, true);
        let loss = loss.map(|l| match l {
            Loss::CrossEntropy | Loss::BinaryCrossEntropy => {
                let last = planner.steps.len() - 1;
                LossPlan {
                    logits: planner.steps[last].inputs[0],
                    output,
                    fused_step: Some(last),
                }
            }
            Loss::Mse => LossPlan {
                logits: output,
                output,
                fused_step: None,
            },
        });
        Plan {
            buffers: planner.buffers,
            steps: planner.steps,
            params: planner.params,
            param_count: planner.param_count,
            stats: planner.stats,
            stats_len: planner.stats_len,
            batchnorms: planner.batchnorms,
            shared_len: planner.shared_len,
            loss,
            batch: model.train.as_ref().map_or(INFERENCE_BATCH, |t| t.batch),
            output,
            layers: planner.layers,
            folds: Vec::new(),
            folded_len: 0,
        }
    }

    /// Forward and backward passes are cut at every batchnorm.
    pub fn phases(&self) -> usize {
        self.batchnorms.len() + 1
    }

    /// How many steps read buffer `b`.
    pub fn readers(&self, b: usize) -> usize {
        self.steps.iter().flat_map(|s| &s.inputs).filter(|&&i| i == b).count()
    }

    /// Whether the backward pass of step `s` must add its gradient for input `k`
    /// to what is there rather than overwrite it: a later step (in forward order)
    /// that reads the same buffer has written it first.
    pub fn accumulates(&self, s: usize, k: usize) -> bool {
        let b = self.steps[s].inputs[k];
        let earlier_input = self.steps[s].inputs[..k].contains(&b);
        earlier_input || self.steps[s + 1..].iter().any(|t| t.inputs.contains(&b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(src: &str) -> Plan {
        Plan::new(&crate::compile(src).expect("valid model")[0])
    }

    #[test]
    fn sequential_models_fuse_activations_and_skip_flatten() {
        let p = plan("model M { input 1x8x8 conv 4 kernel 3 relu maxpool 2 flatten dense 3 softmax }");
        let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["conv1+relu1", "maxpool1", "dense1", "softmax1"]);
        assert_eq!(p.buffers, [64, 144, 36, 3, 3]);
        assert_eq!(p.phases(), 1);
        assert_eq!(
            p.params.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["conv1.weight", "conv1.bias", "dense1.weight", "dense1.bias"]
        );
    }

    #[test]
    fn layer_outputs_name_every_layer_and_point_before_fused_activations() {
        let p = plan(
            "model M { input 1x8x8 conv 4 kernel 3 relu maxpool 2 residual { conv 4 kernel 1 } relu flatten dense 3 softmax }",
        );
        let outs: Vec<(&str, OutputSource)> = p.layers.iter().map(|l| (l.name.as_str(), l.source)).collect();
        use OutputSource::{Buffer, Unfused};
        assert_eq!(
            outs,
            [
                ("conv1", Unfused(0)),
                ("relu1", Buffer(1)),
                ("maxpool1", Buffer(2)),
                ("residual1.conv1", Buffer(3)),
                ("residual1", Unfused(3)),
                ("relu2", Buffer(4)),
                ("flatten1", Buffer(4)),
                ("dense1", Buffer(5)),
                ("softmax1", Buffer(6)),
            ]
        );
        assert_eq!(p.layers[6].shape, [36]);
    }

    #[test]
    fn a_block_input_read_twice_accumulates_its_gradient() {
        let model = ir::Model {
            name: "R".into(),
            input: Shape::Vector(4),
            normalize: None,
            layers: vec![Layer {
                name: "residual1".into(),
                op: Op::Residual(ir::Residual {
                    body: vec![Layer {
                        name: "residual1.dense1".into(),
                        op: Op::Dense(ir::Dense { units: 4, bias: true }),
                        input: Shape::Vector(4),
                        output: Shape::Vector(4),
                    }],
                    shortcut: vec![],
                }),
                input: Shape::Vector(4),
                output: Shape::Vector(4),
            }],
            train: None,
        };
        let p = Plan::new(&model);
        assert_eq!(p.steps.len(), 2);
        assert_eq!(p.steps[1].inputs, [1, 0]);
        // The add writes the input's gradient first (backward order); the dense adds to it.
        assert!(!p.accumulates(1, 1));
        assert!(p.accumulates(0, 0));
    }
}
