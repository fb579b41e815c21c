//! The run-time plan executor: a model known only at run time (a `.cnn` file
//! read by `cnnc train`, `predict` or `bench`) run by the same plan, kernels and
//! driver as the code `cnn!` generates, with the shapes as values.
//!
//! `cnn!` lowers the plan ([`crate::codegen::plan`]) to a worker whose calls name
//! marker types with constant shapes; here the plan's steps become a list of
//! [`Op`]s with their shapes, and [`ExecWorker`] walks it, calling each kernel's
//! run-time-shape build (`compute::layers::*_dyn`). Step for step it makes the
//! calls the generated worker makes, in the same order, on the same buffers, so
//! results match generated code bit for bit (`tests/integration/exec.rs`). The
//! driver is the same [`Driver`]: the batch split, batchnorm phases, loss,
//! optimizer, `Model`/`Train`, `fit`, checkpoints and distributed training all
//! work unchanged. The reference interpreter stays the plain-loop oracle.
//!
//! A generated model's [`Spec`] is a constant in the binary. The executor builds
//! its spec once per distinct model and keeps it for the process, like a loaded
//! library: [`Program::new`] looks the model up first, so building the same
//! model again (a test loop, a resumed run) reuses it and adds nothing.

use super::driver::{
    Backward, BatchNormSlot, Driver, Init, LayerOutput, LossIo, Network, Pass, Source, Spec, Tensor, TrainSpec, Worker,
};
use super::Error;
use crate::codegen::plan::{self, ConvGeometry, Kind, OutputSource, Plan, WindowShape};
use crate::compute::{self, layers as k, Activation, ConvShape, PoolShape};
use crate::ir;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

/// A model run by the executor: `Executor::from_source(text, None, seed)`.
pub type Executor = Driver<Program>;

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
}

/// One step of the executed plan.
#[derive(Debug, Clone)]
pub struct ExecStep {
    pub op: Op,
    /// The IR layers the step covers (`conv1+relu1`).
    pub name: String,
    pub inputs: Vec<usize>,
    pub output: usize,
    /// Where the weight and bias (batchnorm: γ and β) are in the parameters.
    pub weight: Option<Range<usize>>,
    pub bias: Option<Range<usize>>,
    /// Per input: whether its gradient adds to one a later reader wrote first.
    accumulates: Vec<bool>,
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
            Op::Activation(_) | Op::Dropout { .. } | Op::Add { .. } => out,
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
            Op::Normalize { .. }
            | Op::MaxPool(_)
            | Op::AvgPool(_)
            | Op::GlobalAvgPool { .. }
            | Op::BatchNorm { .. }
            | Op::Activation(_)
            | Op::Softmax { .. }
            | Op::Dropout { .. }
            | Op::Add { .. } => "",
        }
    }
}

/// The executed plan: steps, buffer sizes and the phase structure.
#[derive(Debug)]
pub struct Compiled {
    pub steps: Vec<ExecStep>,
    /// Per-sample length of each activation buffer; buffer 0 is the input.
    pub buffers: Vec<usize>,
    output: usize,
    loss: Option<plan::LossPlan>,
    /// Per forward phase: its steps in order.
    forward: Vec<Vec<usize>>,
    /// Per backward phase: the steps it runs in order (batchnorm halves included
    /// as [`Half`]).
    backward: Vec<Vec<Half>>,
    /// Per phase: the batchnorm step whose statistics close it.
    closing: Vec<Option<usize>>,
    /// The largest convolution scratch, and every dense layer's sizes (whose
    /// scratch grows with the samples).
    conv_scratch: usize,
    dense_sizes: Vec<(usize, usize)>,
    dtmp: usize,
    partials: usize,
    /// Time spent in each step when profiling ([`Program::profile`]).
    profile: Profile,
}

/// A backward action: a step's backward pass, or the partial sums of a
/// batchnorm that opens a phase.
#[derive(Debug, Clone, Copy)]
enum Half {
    Step(usize),
    BatchNormPartial(usize),
}

/// Nanoseconds and calls per step, summed over the workers; off unless enabled.
#[derive(Debug, Default)]
struct Profile {
    on: std::sync::atomic::AtomicBool,
    forward: Vec<AtomicU64>,
    backward: Vec<AtomicU64>,
}

/// One step's measured time (see [`Program::profile`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StepTime {
    pub name: String,
    pub forward_s: f64,
    pub backward_s: f64,
}

/// The model the executor runs: its static spec and its plan.
#[derive(Debug, Clone)]
pub struct Program {
    spec: &'static Spec,
    compiled: Arc<Compiled>,
}

impl Network for Program {
    type Worker = ExecWorker;

    fn spec(&self) -> &'static Spec {
        self.spec
    }

    fn worker(&self, samples: usize) -> ExecWorker {
        ExecWorker::new(Arc::clone(&self.compiled), samples)
    }
}

/// Specs already built, by the model they describe.
static SPECS: LazyLock<Mutex<HashMap<String, &'static Spec>>> = LazyLock::new(Default::default);

impl Program {
    /// The plan of a checked model.
    pub fn new(model: &ir::Model) -> Program {
        let plan = Plan::new(model);
        let compiled = compile(&plan, model.train.is_some());
        let key = format!("{model:?}");
        let spec = {
            let mut specs = SPECS.lock().unwrap_or_else(|e| e.into_inner());
            *specs
                .entry(key)
                .or_insert_with(|| Box::leak(Box::new(spec(model, &plan))))
        };
        Program {
            spec,
            compiled: Arc::new(compiled),
        }
    }

    /// The executed steps.
    pub fn steps(&self) -> &[ExecStep] {
        &self.compiled.steps
    }

    /// Per-sample length of each activation buffer.
    pub fn buffers(&self) -> &[usize] {
        &self.compiled.buffers
    }

    /// Starts timing every step (or stops, with `false`); the times so far are kept.
    pub fn set_profiling(&self, on: bool) {
        self.compiled.profile.on.store(on, Ordering::Relaxed);
    }

    /// Clears the step times.
    pub fn reset_profile(&self) {
        let p = &self.compiled.profile;
        for t in p.forward.iter().chain(&p.backward) {
            t.store(0, Ordering::Relaxed);
        }
    }

    /// The time each step took while profiling, summed over the worker threads.
    pub fn profile(&self) -> Vec<StepTime> {
        let p = &self.compiled.profile;
        self.compiled
            .steps
            .iter()
            .enumerate()
            .map(|(s, step)| StepTime {
                name: step.name.clone(),
                forward_s: p.forward[s].load(Ordering::Relaxed) as f64 * 1e-9,
                backward_s: p.backward[s].load(Ordering::Relaxed) as f64 * 1e-9,
            })
            .collect()
    }
}

impl Driver<Program> {
    /// The model `model` of a checked file, initialized from `seed` as `NAME::new(seed)`.
    pub fn from_model(model: &ir::Model, seed: u64) -> Self {
        Driver::with_network(Program::new(model), seed)
    }

    /// Model `name` of `.cnn` source `text` (the only model when `None`).
    pub fn from_source(text: &str, name: Option<&str>, seed: u64) -> Result<Self, Error> {
        let models = crate::compile(text).map_err(|d| Error::Config(d.to_string()))?;
        let model = match name {
            Some(name) => models.iter().find(|m| m.name == name).ok_or_else(|| {
                let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
                Error::Config(format!("no model named {name}; the source has {}", names.join(", ")))
            })?,
            None => match models.as_slice() {
                [model] => model,
                _ => {
                    return Err(Error::Config(format!(
                        "the source has {} models; name one",
                        models.len()
                    )))
                }
            },
        };
        Ok(Self::from_model(model, seed))
    }

    /// The plan this model runs.
    pub fn program(&self) -> &Program {
        self.network()
    }
}

fn conv_shape(g: &ConvGeometry) -> ConvShape {
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

fn pool_shape(w: &WindowShape) -> PoolShape {
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

/// The plan's steps with their shapes, and the order the phases run them in
/// (as `codegen::forward_phase` and `backward_phase` emit them).
fn compile(plan: &Plan, training: bool) -> Compiled {
    let range = |id: Option<usize>| id.map(|i| plan.params[i].range());
    let mut conv_scratch = 0;
    let mut dense_sizes = Vec::new();
    let steps: Vec<ExecStep> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(s, step)| {
            let op = match &step.kind {
                Kind::Normalize { area, mean, std, .. } => Op::Normalize {
                    area: *area,
                    mean: mean.clone(),
                    std: std.clone(),
                },
                Kind::Conv { shape, act, .. } => {
                    let shape = conv_shape(shape);
                    conv_scratch = conv_scratch.max(shape.scratch_len());
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
                Kind::Softmax { features } => Op::Softmax { features: *features },
                Kind::Dropout { p, layer } => Op::Dropout {
                    p: *p,
                    layer: *layer,
                    train: training,
                },
                Kind::Add { act } => Op::Add { act: *act },
            };
            ExecStep {
                op,
                name: step.name.clone(),
                inputs: step.inputs.clone(),
                output: step.output,
                weight: range(step.weight),
                bias: range(step.bias),
                accumulates: (0..step.inputs.len()).map(|k| plan.accumulates(s, k)).collect(),
            }
        })
        .collect();
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
        backward,
        closing,
        conv_scratch,
        dense_sizes,
        dtmp,
        partials,
        profile,
    }
}

/// One thread's buffers, as a generated worker has them (named by number).
pub struct ExecWorker {
    program: Arc<Compiled>,
    /// Activations and their gradients, one per plan buffer.
    a: Vec<Vec<f32>>,
    d: Vec<Vec<f32>>,
    /// Dropout masks, by step (empty for other steps).
    masks: Vec<Vec<f32>>,
    dtmp: Vec<f32>,
    scratch: Vec<f32>,
    partials: Vec<f64>,
}

impl ExecWorker {
    fn new(program: Arc<Compiled>, samples: usize) -> Self {
        let training = program.loss.is_some();
        let scratch = program
            .dense_sizes
            .iter()
            .map(|&(i, o)| compute::dense::scratch_len(i, o, samples))
            .fold(program.conv_scratch, usize::max);
        let sized = |len: usize| vec![0.0f32; samples * len];
        let a = program.buffers.iter().map(|&len| sized(len)).collect();
        let d = if training {
            program.buffers.iter().map(|&len| sized(len)).collect()
        } else {
            Vec::new()
        };
        let masks = program
            .steps
            .iter()
            .map(|s| match s.op {
                Op::Dropout { train: true, .. } => sized(program.buffers[s.output]),
                _ => Vec::new(),
            })
            .collect();
        ExecWorker {
            dtmp: if training { sized(program.dtmp) } else { Vec::new() },
            scratch: vec![0.0; scratch],
            partials: vec![0.0; program.partials],
            a,
            d,
            masks,
            program,
        }
    }
}

/// Where a step's input gradient goes.
enum Dx {
    /// The model input, whose gradient the caller did not ask for.
    Skip,
    /// Written into the input's gradient buffer.
    Direct,
    /// Written into `dtmp`, then added to the gradient a later reader wrote.
    Accumulate,
}

fn dx_mode(step: &ExecStep, k: usize, pass: &Pass<'_>) -> Dx {
    if step.inputs[k] == 0 && !pass.input_grad {
        Dx::Skip
    } else if step.accumulates[k] {
        Dx::Accumulate
    } else {
        Dx::Direct
    }
}

/// Runs `f` on the place for input `k`'s gradient (`n` samples of `len`), then
/// adds it where it accumulates; for conv and dense, `f` gets `None` when the
/// model input's gradient is not wanted (they still compute their weights').
fn write_dx(
    d: &mut [Vec<f32>],
    dtmp: &mut [f32],
    step: &ExecStep,
    k: usize,
    len: usize,
    pass: &Pass<'_>,
    f: impl FnOnce(Option<&mut [f32]>),
) {
    let b = step.inputs[k];
    match dx_mode(step, k, pass) {
        Dx::Skip => f(None),
        Dx::Direct => f(Some(&mut d[b][..len])),
        Dx::Accumulate => {
            f(Some(&mut dtmp[..len]));
            compute::norm::accumulate(&mut d[b][..len], &dtmp[..len]);
        }
    }
}

impl ExecWorker {
    fn forward_step(&mut self, s: usize, pass: &Pass<'_>) {
        let ExecWorker {
            program,
            a,
            masks,
            scratch,
            ..
        } = self;
        let step = &program.steps[s];
        let (n, p) = (pass.n, pass.params);
        let mut y_buf = std::mem::take(&mut a[step.output]);
        let y = &mut y_buf[..n * program.buffers[step.output]];
        let x = &a[step.inputs[0]][..n * program.buffers[step.inputs[0]]];
        let w = step.weight.clone().map_or(&[][..], |r| &p[r]);
        let b = step.bias.clone().map(|r| &p[r]);
        match &step.op {
            Op::Normalize { area, mean, std } => compute::norm::normalize_forward(x, y, n, mean, std, *area),
            Op::Conv { shape, act } => k::conv_forward_dyn(shape, *act, x, w, b, y, n, scratch),
            Op::Dense { inputs, outputs, act } => k::dense_forward_dyn(*inputs, *outputs, *act, x, w, b, y, n, scratch),
            Op::MaxPool(shape) => k::max_pool_forward_dyn(shape, x, y, n),
            Op::AvgPool(shape) => k::avg_pool_forward_dyn(shape, x, y, n),
            Op::GlobalAvgPool { channels, area } => compute::pool::global_avg_forward(*channels, *area, x, y, n),
            Op::BatchNorm {
                channels,
                area,
                act,
                shared,
            } => {
                let stats = &pass.shared[*shared..shared + 2 * channels];
                compute::norm::bn_forward(x, y, n, *channels, *area, stats, w, b.unwrap_or(&[]), *act);
            }
            Op::Activation(act) => {
                y.copy_from_slice(x);
                act.forward(y);
            }
            Op::Softmax { features } => compute::act::softmax_forward(x, y, *features),
            Op::Dropout { p: rate, layer, train } => {
                if *train && pass.train {
                    let len = program.buffers[step.output];
                    let mask = &mut masks[s][..n * len];
                    compute::dropout::forward(*rate, pass.seed, pass.step, *layer, pass.first, x, y, mask, n, len);
                } else {
                    y.copy_from_slice(x);
                }
            }
            Op::Add { act } => {
                let shortcut = &a[step.inputs[1]][..n * program.buffers[step.inputs[1]]];
                compute::norm::add_forward(x, shortcut, y, *act);
            }
        }
        a[step.output] = y_buf;
    }

    fn backward_step(&mut self, s: usize, pass: &Pass<'_>, grads: &mut [f32]) {
        let ExecWorker {
            program,
            a,
            d,
            masks,
            dtmp,
            scratch,
            ..
        } = self;
        let step = &program.steps[s];
        let (n, p) = (pass.n, pass.params);
        let o = step.output;
        let ylen = n * program.buffers[o];
        let xlen = n * program.buffers[step.inputs[0]];
        let mut dy_buf = std::mem::take(&mut d[o]);
        let dy = &mut dy_buf[..ylen];
        let x = &a[step.inputs[0]][..xlen];
        let y = &a[o][..ylen];
        let w = step.weight.clone().map_or(&[][..], |r| &p[r]);
        match &step.op {
            Op::Normalize { area, std, .. } => write_dx(d, dtmp, step, 0, xlen, pass, |dx| {
                if let Some(dx) = dx {
                    compute::norm::normalize_backward(dy, dx, n, std, *area)
                }
            }),
            Op::Conv { shape, act } => {
                if *act != Activation::Identity {
                    act.backward(y, dy);
                }
                let (dw, db) = weight_grads(grads, step);
                write_dx(d, dtmp, step, 0, xlen, pass, |dx| {
                    k::conv_backward_dyn(shape, x, w, dy, dw, db, dx, n, scratch)
                });
            }
            Op::Dense { inputs, outputs, act } => {
                if *act != Activation::Identity {
                    act.backward(y, dy);
                }
                let (dw, db) = weight_grads(grads, step);
                write_dx(d, dtmp, step, 0, xlen, pass, |dx| {
                    k::dense_backward_dyn(*inputs, *outputs, x, w, dy, dw, db, dx, n, scratch)
                });
            }
            Op::MaxPool(shape) => write_dx(d, dtmp, step, 0, xlen, pass, |dx| {
                if let Some(dx) = dx {
                    k::max_pool_backward_dyn(shape, x, dy, dx, n)
                }
            }),
            Op::AvgPool(shape) => write_dx(d, dtmp, step, 0, xlen, pass, |dx| {
                if let Some(dx) = dx {
                    k::avg_pool_backward_dyn(shape, dy, dx, n)
                }
            }),
            Op::GlobalAvgPool { channels, area } => write_dx(d, dtmp, step, 0, xlen, pass, |dx| {
                if let Some(dx) = dx {
                    compute::pool::global_avg_backward(*channels, *area, dy, dx, n)
                }
            }),
            Op::BatchNorm {
                channels, area, shared, ..
            } => {
                let c = *channels;
                let (stats, sums) = (
                    &pass.shared[*shared..shared + 2 * c],
                    &pass.shared[shared + 2 * c..shared + 4 * c],
                );
                write_dx(d, dtmp, step, 0, xlen, pass, |dx| {
                    if let Some(dx) = dx {
                        compute::norm::bn_backward_input(x, dy, dx, n, c, *area, stats, sums, w, pass.batch * area)
                    }
                });
            }
            Op::Activation(act) => write_dx(d, dtmp, step, 0, xlen, pass, |dx| {
                if let Some(dx) = dx {
                    act.backward_from(x, y, dy, dx)
                }
            }),
            Op::Softmax { features } => write_dx(d, dtmp, step, 0, xlen, pass, |dx| {
                if let Some(dx) = dx {
                    compute::act::softmax_backward(y, dy, dx, *features)
                }
            }),
            Op::Dropout { .. } => {
                let mask = &masks[s][..ylen];
                write_dx(d, dtmp, step, 0, xlen, pass, |dx| {
                    if let Some(dx) = dx {
                        compute::dropout::backward(mask, dy, dx)
                    }
                });
            }
            Op::Add { act } => {
                if *act != Activation::Identity {
                    act.backward(y, dy);
                }
                for k in 0..2 {
                    let b = step.inputs[k];
                    match dx_mode(step, k, pass) {
                        Dx::Skip => {}
                        Dx::Direct => d[b][..ylen].copy_from_slice(dy),
                        Dx::Accumulate => compute::norm::accumulate(&mut d[b][..ylen], dy),
                    }
                }
            }
        }
        d[o] = dy_buf;
    }

    /// The partial sums of the batchnorm step `s` that opens a phase (its γ and β
    /// gradients and the sums its input gradient needs).
    fn batchnorm_partial(&mut self, s: usize, pass: &Pass<'_>, grads: &mut [f32]) {
        let ExecWorker {
            program,
            a,
            d,
            partials,
            ..
        } = self;
        let step = &program.steps[s];
        let Op::BatchNorm {
            channels: c,
            area,
            act,
            shared,
        } = step.op
        else {
            return;
        };
        let n = pass.n;
        let o = step.output;
        let ylen = n * program.buffers[o];
        let x = &a[step.inputs[0]][..n * program.buffers[step.inputs[0]]];
        let y = &a[o][..ylen];
        let dy = &mut d[o][..ylen];
        let gamma = step.weight.clone().map_or(0, |r| r.start);
        let (dgamma, dbeta) = grads[gamma..gamma + 2 * c].split_at_mut(c);
        let stats = &pass.shared[shared..shared + 2 * c];
        compute::norm::bn_backward_partial(x, y, dy, n, c, area, stats, act, dgamma, dbeta, partials);
    }
}

/// A conv or dense step's weight and bias gradients (the bias follows the weight).
fn weight_grads<'g>(grads: &'g mut [f32], step: &ExecStep) -> (&'g mut [f32], Option<&'g mut [f32]>) {
    let w = step.weight.clone().unwrap_or(0..0);
    match &step.bias {
        Some(b) => {
            let (dw, db) = grads[w.start..b.end].split_at_mut(w.len());
            (dw, Some(db))
        }
        None => (&mut grads[w], None),
    }
}

/// Adds the time since `start` to `slot` when profiling.
fn record(on: bool, slot: &AtomicU64, start: Option<Instant>) {
    if let (true, Some(start)) = (on, start) {
        slot.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

impl Worker for ExecWorker {
    fn input(&mut self) -> &mut [f32] {
        &mut self.a[0]
    }

    fn output(&self) -> &[f32] {
        &self.a[self.program.output]
    }

    fn forward(&mut self, phase: usize, pass: &Pass<'_>) {
        let program = Arc::clone(&self.program);
        let on = program.profile.on.load(Ordering::Relaxed);
        for &s in &program.forward[phase] {
            let start = on.then(Instant::now);
            self.forward_step(s, pass);
            record(on, &program.profile.forward[s], start);
        }
        if let (Some(closing), true) = (program.closing[phase], pass.train) {
            let step = &program.steps[closing];
            if let Op::BatchNorm { channels, area, .. } = step.op {
                let x = &self.a[step.inputs[0]][..pass.n * program.buffers[step.inputs[0]]];
                compute::norm::bn_partial_stats(x, pass.n, channels, area, &mut self.partials);
            }
        }
    }

    fn partials(&self) -> &[f64] {
        &self.partials
    }

    fn buffer(&self, i: usize) -> &[f32] {
        self.a.get(i).map_or(&[], |b| b)
    }
}

impl Backward for ExecWorker {
    fn loss_io(&mut self) -> LossIo<'_> {
        let loss = self.program.loss.unwrap_or(plan::LossPlan {
            logits: self.program.output,
            output: self.program.output,
            fused_step: None,
        });
        LossIo {
            logits: &self.a[loss.logits],
            output: &self.a[loss.output],
            grad: self.d.get_mut(loss.logits).map_or(&mut [], |g| &mut g[..]),
        }
    }

    fn backward(&mut self, phase: usize, pass: &Pass<'_>, grads: &mut [f32]) {
        if self.d.is_empty() {
            return;
        }
        let program = Arc::clone(&self.program);
        let on = program.profile.on.load(Ordering::Relaxed);
        for &half in &program.backward[phase] {
            let start = on.then(Instant::now);
            let s = match half {
                Half::Step(s) => {
                    self.backward_step(s, pass, grads);
                    s
                }
                Half::BatchNormPartial(s) => {
                    self.batchnorm_partial(s, pass, grads);
                    s
                }
            };
            record(on, &program.profile.backward[s], start);
        }
    }

    fn input_grad(&self) -> &[f32] {
        self.d.first().map_or(&[], |g| g)
    }
}

// ---- the spec, built once per model (see the module comment) ----

fn leak<T>(items: Vec<T>) -> &'static [T] {
    Box::leak(items.into_boxed_slice())
}

fn leak_str(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

fn tensors(slots: &[plan::Slot]) -> &'static [Tensor] {
    leak(
        slots
            .iter()
            .map(|t| Tensor {
                name: leak_str(&t.name),
                offset: t.offset,
                shape: leak(t.shape.clone()),
                init: match t.init {
                    plan::Init::Zeros => Init::Zeros,
                    plan::Init::Ones => Init::Ones,
                    plan::Init::Draw(scheme) => Init::Draw(scheme),
                },
            })
            .collect(),
    )
}

fn source(plan: &Plan, source: OutputSource) -> Source {
    let s = match source {
        OutputSource::Buffer(b) => return Source::Buffer(b),
        OutputSource::Unfused(s) => s,
    };
    let step = &plan.steps[s];
    let input = step.inputs[0];
    let weight = step.weight.map_or(0, |w| plan.params[w].offset);
    let bias = step.bias.map(|b| plan.params[b].offset);
    match &step.kind {
        Kind::Conv { shape, .. } => Source::Conv {
            input,
            shape: conv_shape(shape),
            weight,
            bias,
        },
        Kind::Dense { inputs, outputs, .. } => Source::Dense {
            input,
            inputs: *inputs,
            outputs: *outputs,
            weight,
            bias,
        },
        Kind::BatchNorm { index, .. } => Source::BatchNorm {
            input,
            index: *index,
            gamma: weight,
        },
        Kind::Add { .. } => Source::Add {
            body: input,
            shortcut: step.inputs[1],
        },
        // Only the kinds above fuse an activation; the others keep their output.
        Kind::Normalize { .. }
        | Kind::MaxPool(_)
        | Kind::AvgPool(_)
        | Kind::GlobalAvgPool { .. }
        | Kind::Activation(_)
        | Kind::Softmax { .. }
        | Kind::Dropout { .. } => Source::Buffer(step.output),
    }
}

/// The driver's description of `model`, as `codegen::spec` writes it for `cnn!`.
fn spec(model: &ir::Model, plan: &Plan) -> Spec {
    let train = model.train.as_ref().map(|t| TrainSpec {
        loss: t.loss,
        optimizer: t.optimizer,
        weight_decay: t.weight_decay,
        schedule: t.schedule,
        epochs: t.epochs,
        validation: t.validation,
        seed: t.seed,
        augment: leak(t.augment.clone()),
        smoothing: t.smoothing,
        clip_grad_norm: t.clip_grad_norm,
        freeze: leak(t.freeze.iter().map(|n| leak_str(n)).collect()),
    });
    Spec {
        name: leak_str(&model.name),
        input: leak(model.input.dims()),
        output: leak(model.output().dims()),
        params: tensors(&plan.params),
        param_count: plan.param_count,
        buffers: tensors(&plan.stats),
        buffer_len: plan.stats_len,
        batchnorms: leak(
            plan.batchnorms
                .iter()
                .map(|b| BatchNormSlot {
                    name: leak_str(&b.name),
                    channels: b.channels,
                    area: b.area,
                    eps: b.eps as f32,
                    momentum: b.momentum as f32,
                    buffer: b.buffer,
                    shared: b.shared,
                })
                .collect(),
        ),
        shared_len: plan.shared_len,
        batch: plan.batch,
        train,
        layers: leak(
            plan.layers
                .iter()
                .map(|l| LayerOutput::new(leak_str(&l.name), leak(l.shape.clone()), source(plan, l.source)))
                .collect(),
        ),
        sample_floats: plan.buffers.iter().sum(),
    }
}
