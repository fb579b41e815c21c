//! The executed plan: each step with its shapes resolved ([`Op`], [`ExecStep`]),
//! the order the phases run them in ([`Compiled`]), and its construction from the
//! code generator's plan ([`compile`]).

use crate::codegen;
use crate::codegen::plan::{self, ConvGeometry, Kind, Plan, WindowShape};
use crate::compute::join::MulShape;
use crate::compute::transpose::TransposeShape;
use crate::compute::upsample::UpsampleShape;
use crate::compute::{self, Activation, ConvShape, PoolShape};
use std::ops::Range;
use std::sync::atomic::AtomicU64;

/// What one step computes, with every shape resolved.
#[derive(Debug, Clone)]
pub enum Op {
    Normalize {
        area: usize,
        mean: Vec<f32>,
        std: Vec<f32>,
    },
    Conv {
        shape: ConvShape,
        act: Activation,
    },
    Dense {
        inputs: usize,
        outputs: usize,
        act: Activation,
    },
    MaxPool(PoolShape),
    AvgPool(PoolShape),
    GlobalAvgPool {
        channels: usize,
        area: usize,
    },
    /// Batchnorm `index` with its shared-statistics offset.
    BatchNorm {
        channels: usize,
        area: usize,
        act: Activation,
        shared: usize,
    },
    Activation(Activation),
    Softmax {
        features: usize,
        area: usize,
    },
    /// `train`: whether the model trains (an inference-only model copies).
    Dropout {
        p: f32,
        layer: u64,
        train: bool,
    },
    Add {
        act: Activation,
    },
    ConvTranspose {
        shape: TransposeShape,
        act: Activation,
    },
    Upsample(UpsampleShape),
    Concat {
        lens: Vec<usize>,
    },
    Mul {
        shape: MulShape,
        act: Activation,
    },
}

/// One step of the executed plan.
#[derive(Debug, Clone)]
pub struct ExecStep {
    pub op: Op,
    /// The IR layers the step covers (`conv1+relu1`).
    pub name: String,
    pub inputs: Vec<usize>,
    pub output: usize,
    /// Where the weight and bias (batchnorm: γ and β) are in the parameters, or
    /// (`folded`, inference) in the folded weights (`Pass::folded`).
    pub weight: Option<Range<usize>>,
    pub bias: Option<Range<usize>>,
    pub folded: bool,
    /// Per input: whether its gradient adds to one a later reader wrote first.
    pub(super) accumulates: Vec<bool>,
}

impl ExecStep {
    /// Forward FLOPs for one sample (a multiply-add counts two), as `cnnc summary`
    /// counts them for the layers the step covers.
    pub fn flops(&self, buffers: &[usize]) -> u64 {
        let out = buffers[self.output] as u64;
        match &self.op {
            Op::Conv { shape: s, .. } => out * 2 * (s.c / s.g.max(1)) as u64 * (s.kh * s.kw) as u64,
            Op::Dense { inputs, .. } => out * 2 * *inputs as u64,
            Op::MaxPool(s) | Op::AvgPool(s) => out * (s.kh * s.kw) as u64,
            Op::GlobalAvgPool { channels, area } => (channels * area) as u64,
            Op::Softmax { .. } => 3 * out,
            Op::BatchNorm { .. } | Op::Normalize { .. } => 2 * out,
            Op::ConvTranspose { shape: t, .. } => {
                let s = &t.conv;
                t.input_len() as u64 * 2 * (s.c / s.g.max(1)) as u64 * (s.kh * s.kw) as u64
            }
            Op::Upsample(u) if u.bilinear => 4 * out,
            Op::Activation(_) | Op::Dropout { .. } | Op::Add { .. } | Op::Mul { .. } | Op::Upsample(_) => out,
            Op::Concat { .. } => 0,
        }
    }

    /// The algorithm a convolution step runs (`winograd`, `blocked`, ...).
    pub fn algorithm(&self) -> &'static str {
        match &self.op {
            Op::Conv { shape, .. } => match shape.plan() {
                compute::conv::Plan::Depthwise => "depthwise",
                compute::conv::Plan::Direct => "direct",
                compute::conv::Plan::Winograd => "winograd",
                compute::conv::Plan::Blocked => "blocked",
                compute::conv::Plan::Unfolded => "unfolded",
            },
            Op::Dense { .. } => "gemm",
            Op::ConvTranspose { shape, .. } => match shape.conv.plan() {
                compute::conv::Plan::Depthwise => "transposed depthwise",
                compute::conv::Plan::Direct => "transposed direct",
                compute::conv::Plan::Winograd => "transposed winograd",
                compute::conv::Plan::Blocked => "transposed blocked",
                compute::conv::Plan::Unfolded => "transposed unfolded",
            },
            Op::Normalize { .. }
            | Op::MaxPool(_)
            | Op::AvgPool(_)
            | Op::GlobalAvgPool { .. }
            | Op::BatchNorm { .. }
            | Op::Activation(_)
            | Op::Softmax { .. }
            | Op::Dropout { .. }
            | Op::Add { .. }
            | Op::Upsample(_)
            | Op::Concat { .. }
            | Op::Mul { .. } => "",
        }
    }
}

/// The executed plan: steps, buffer sizes and the phase structure.
#[derive(Debug)]
pub struct Compiled {
    pub steps: Vec<ExecStep>,
    /// Per-sample length of each activation buffer; buffer 0 is the input.
    pub buffers: Vec<usize>,
    pub(super) output: usize,
    pub(super) loss: Option<plan::LossPlan>,
    /// Per forward phase: its steps in order.
    pub(super) forward: Vec<Vec<usize>>,
    /// The fused inference plan's steps (`codegen::infer`), when anything fuses.
    pub(super) infer: Option<Vec<ExecStep>>,
    /// Per backward phase: the steps it runs in order (batchnorm halves included
    /// as [`Half`]).
    pub(super) backward: Vec<Vec<Half>>,
    /// Per phase: the batchnorm step whose statistics close it.
    pub(super) closing: Vec<Option<usize>>,
    /// The samples each forward and backward phase takes at a time: generated
    /// code's chunks (`codegen::chunk`).
    pub(super) forward_chunk: Vec<usize>,
    pub(super) backward_chunk: Vec<usize>,
    /// The largest convolution scratch, and every dense layer's sizes (whose
    /// scratch grows with the samples).
    pub(super) conv_scratch: usize,
    pub(super) dense_sizes: Vec<(usize, usize)>,
    pub(super) dtmp: usize,
    pub(super) partials: usize,
    /// Time spent in each step when profiling ([`Program::profile`]).
    pub(super) profile: Profile,
}

/// A backward action: a step's backward pass, or the partial sums of a
/// batchnorm that opens a phase.
#[derive(Debug, Clone, Copy)]
pub(super) enum Half {
    Step(usize),
    BatchNormPartial(usize),
}

/// Nanoseconds and calls per step, summed over the workers; off unless enabled.
#[derive(Debug, Default)]
pub(super) struct Profile {
    pub(super) on: std::sync::atomic::AtomicBool,
    pub(super) forward: Vec<AtomicU64>,
    pub(super) backward: Vec<AtomicU64>,
}

/// One step's measured time (see [`Program::profile`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StepTime {
    pub name: String,
    pub forward_s: f64,
    pub backward_s: f64,
}

pub(super) fn conv_shape(g: &ConvGeometry) -> ConvShape {
    let w = &g.window;
    ConvShape {
        c: w.c,
        h: w.h,
        w: w.w,
        f: g.filters,
        kh: w.window[0],
        kw: w.window[1],
        sh: w.stride[0],
        sw: w.stride[1],
        pt: w.pad_before[0],
        pb: w.pad_after[0],
        pl: w.pad_before[1],
        pr: w.pad_after[1],
        oh: w.oh,
        ow: w.ow,
        dh: g.dilation[0],
        dw: g.dilation[1],
        g: g.groups,
    }
}

/// How a `mul` step's inputs meet, as the kernel takes it.
pub(super) fn mul_shape(gate: Option<usize>, channels: usize, area: usize) -> MulShape {
    match gate {
        Some(gate) => MulShape::Gate { gate, channels, area },
        None => MulShape::Equal,
    }
}

pub(super) fn pool_shape(w: &WindowShape) -> PoolShape {
    PoolShape {
        c: w.c,
        h: w.h,
        w: w.w,
        kh: w.window[0],
        kw: w.window[1],
        sh: w.stride[0],
        sw: w.stride[1],
        pt: w.pad_before[0],
        pb: w.pad_after[0],
        pl: w.pad_before[1],
        pr: w.pad_after[1],
        oh: w.oh,
        ow: w.ow,
    }
}

/// Step `step`'s operation with its shapes resolved; notes the scratch its
/// convolution needs and its dense sizes.
fn op(
    plan: &Plan,
    step: &plan::Step,
    training: bool,
    conv_scratch: &mut usize,
    dense_sizes: &mut Vec<(usize, usize)>,
) -> Op {
    match &step.kind {
        Kind::Normalize { area, mean, std, .. } => Op::Normalize {
            area: *area,
            mean: mean.clone(),
            std: std.clone(),
        },
        Kind::Conv { shape, act, .. } => {
            let shape = conv_shape(shape);
            *conv_scratch = (*conv_scratch).max(shape.scratch_len());
            Op::Conv { shape, act: *act }
        }
        Kind::Dense {
            inputs, outputs, act, ..
        } => {
            dense_sizes.push((*inputs, *outputs));
            Op::Dense {
                inputs: *inputs,
                outputs: *outputs,
                act: *act,
            }
        }
        Kind::MaxPool(w) => Op::MaxPool(pool_shape(w)),
        Kind::AvgPool(w) => Op::AvgPool(pool_shape(w)),
        Kind::GlobalAvgPool { channels, area } => Op::GlobalAvgPool {
            channels: *channels,
            area: *area,
        },
        Kind::BatchNorm {
            index,
            channels,
            area,
            act,
        } => Op::BatchNorm {
            channels: *channels,
            area: *area,
            act: *act,
            shared: plan.batchnorms[*index].shared,
        },
        Kind::Activation(a) => Op::Activation(*a),
        Kind::Softmax { features, area } => Op::Softmax {
            features: *features,
            area: *area,
        },
        Kind::Dropout { p, layer } => Op::Dropout {
            p: *p,
            layer: *layer,
            train: training,
        },
        Kind::Add { act } => Op::Add { act: *act },
        Kind::ConvTranspose { conv, act, .. } => {
            let shape = TransposeShape { conv: conv_shape(conv) };
            *conv_scratch = (*conv_scratch).max(shape.scratch_len());
            Op::ConvTranspose { shape, act: *act }
        }
        Kind::Upsample {
            c,
            h,
            w,
            factor,
            bilinear,
        } => Op::Upsample(UpsampleShape {
            c: *c,
            h: *h,
            w: *w,
            fh: factor[0],
            fw: factor[1],
            bilinear: *bilinear,
        }),
        Kind::Concat { lens } => Op::Concat { lens: lens.clone() },
        Kind::Mul {
            act,
            gate,
            channels,
            area,
        } => Op::Mul {
            shape: mul_shape(*gate, *channels, *area),
            act: *act,
        },
    }
}

/// The plan's steps with their shapes, and the order the phases run them in
/// (as `codegen::forward_phase` and `backward_phase` emit them).
pub(super) fn compile(plan: &Plan, training: bool) -> Compiled {
    let range = |id: Option<usize>| id.map(|i| plan.params[i].range());
    let mut conv_scratch = 0;
    let mut dense_sizes = Vec::new();
    let steps: Vec<ExecStep> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(s, step)| {
            let op = op(plan, step, training, &mut conv_scratch, &mut dense_sizes);
            ExecStep {
                op,
                name: step.name.clone(),
                inputs: step.inputs.clone(),
                output: step.output,
                weight: range(step.weight),
                bias: range(step.bias),
                folded: false,
                accumulates: (0..step.inputs.len()).map(|k| plan.accumulates(s, k)).collect(),
            }
        })
        .collect();
    let infer = plan.inference().map(|inference| {
        inference
            .steps
            .iter()
            .map(|step| {
                let fold = step.folded.map(|f| inference.folds[f]);
                ExecStep {
                    op: op(&inference, step, training, &mut conv_scratch, &mut dense_sizes),
                    name: step.name.clone(),
                    inputs: step.inputs.clone(),
                    output: step.output,
                    weight: match fold {
                        Some(f) => Some(f.offset..f.offset + f.weight_len),
                        None => range(step.weight),
                    },
                    bias: match fold {
                        Some(f) => Some(f.offset + f.weight_len..f.offset + f.weight_len + f.filters),
                        None => range(step.bias),
                    },
                    folded: fold.is_some(),
                    accumulates: Vec::new(),
                }
            })
            .collect()
    });
    let phases = plan.phases();
    let opening = |phase: usize| {
        plan.steps
            .iter()
            .position(|s| matches!(s.kind, Kind::BatchNorm { index, .. } if index + 1 == phase))
    };
    let forward = (0..phases)
        .map(|p| (0..steps.len()).filter(|&s| plan.steps[s].phase == p).collect())
        .collect();
    let closing = (0..phases).map(|p| opening(p + 1)).collect();
    let skip = plan.loss.and_then(|l| l.fused_step);
    let backward = (0..phases)
        .map(|phase| {
            let mut order = Vec::new();
            if let Some(closing) = opening(phase + 1) {
                order.push(Half::Step(closing));
            }
            let opens = if phase > 0 { opening(phase) } else { None };
            for s in (0..steps.len()).rev() {
                if plan.steps[s].phase == phase && Some(s) != opens && Some(s) != skip {
                    order.push(Half::Step(s));
                }
            }
            if let Some(s) = opens {
                order.push(Half::BatchNormPartial(s));
            }
            order
        })
        .collect();
    let dtmp = (0..plan.buffers.len())
        .filter(|&b| plan.readers(b) > 1)
        .map(|b| plan.buffers[b])
        .max()
        .unwrap_or(0);
    let partials = 2 * plan.batchnorms.iter().map(|b| b.channels).max().unwrap_or(0);
    let profile = Profile {
        on: Default::default(),
        forward: steps.iter().map(|_| AtomicU64::new(0)).collect(),
        backward: steps.iter().map(|_| AtomicU64::new(0)).collect(),
    };
    Compiled {
        steps,
        buffers: plan.buffers.clone(),
        output: plan.output,
        loss: plan.loss,
        forward,
        infer,
        backward,
        closing,
        forward_chunk: (0..phases).map(|p| codegen::chunk::phase(plan, p, false)).collect(),
        backward_chunk: (0..phases).map(|p| codegen::chunk::phase(plan, p, true)).collect(),
        conv_scratch,
        dense_sizes,
        dtmp,
        partials,
        profile,
    }
}
