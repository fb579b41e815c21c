//! One thread of the executor: the buffers a generated worker has, and the calls
//! its forward and backward passes make, step by step, with the shapes as values.

use super::step::{Compiled, ExecStep, Half, Op};
use crate::codegen::plan;
use crate::compute::{self, layers as k, Activation};
use crate::rt::driver::{chunks, Backward, LossIo, Pass, Worker};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

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
    pub(super) fn new(program: Arc<Compiled>, samples: usize) -> Self {
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

/// Runs `f` on the place for input `k`'s gradient (the `len` floats of this
/// chunk's samples, from `at`), then adds it where it accumulates; for conv and
/// dense, `f` gets `None` when the model input's gradient is not wanted (they
/// still compute their weights').
#[allow(clippy::too_many_arguments)]
fn write_dx(
    d: &mut [Vec<f32>],
    dtmp: &mut [f32],
    step: &ExecStep,
    k: usize,
    at: usize,
    len: usize,
    pass: &Pass<'_>,
    f: impl FnOnce(Option<&mut [f32]>),
) {
    let b = step.inputs[k];
    match dx_mode(step, k, pass) {
        Dx::Skip => f(None),
        Dx::Direct => f(Some(&mut d[b][at..][..len])),
        Dx::Accumulate => {
            f(Some(&mut dtmp[..len]));
            compute::norm::accumulate(&mut d[b][at..][..len], &dtmp[..len]);
        }
    }
}

/// As [`write_dx`] for input 0 of a step whose backward pass computes nothing
/// but that input's gradient: `f` runs only where the gradient is wanted.
fn write_input_dx(
    d: &mut [Vec<f32>],
    dtmp: &mut [f32],
    step: &ExecStep,
    at: usize,
    len: usize,
    pass: &Pass<'_>,
    f: impl FnOnce(&mut [f32]),
) {
    write_dx(d, dtmp, step, 0, at, len, pass, |dx| {
        if let Some(dx) = dx {
            f(dx)
        }
    });
}

/// Whether input `k`'s gradient is added to (`Some(true)`), written
/// (`Some(false)`) or skipped (`None`, the model input's unwanted gradient).
fn accumulates(step: &ExecStep, k: usize, pass: &Pass<'_>) -> Option<bool> {
    match dx_mode(step, k, pass) {
        Dx::Skip => None,
        Dx::Direct => Some(false),
        Dx::Accumulate => Some(true),
    }
}

/// The backward pass of an activation fused into a step's store: turns `dy`,
/// the gradient of the activation's output `y`, into that of its input.
fn fused_backward(act: Activation, y: &[f32], dy: &mut [f32]) {
    if act != Activation::Identity {
        act.backward(y, dy);
    }
}

/// An add step's backward pass: `dy` (the chunk's, from `at`) goes to both
/// inputs' gradients.
fn add_backward(d: &mut [Vec<f32>], step: &ExecStep, pass: &Pass<'_>, at: usize, dy: &[f32]) {
    let ylen = dy.len();
    for k in 0..2 {
        let b = step.inputs[k];
        match dx_mode(step, k, pass) {
            Dx::Skip => {}
            Dx::Direct => d[b][at..][..ylen].copy_from_slice(dy),
            Dx::Accumulate => compute::norm::accumulate(&mut d[b][at..][..ylen], dy),
        }
    }
}

/// A mul step's backward pass over the `n` samples from `at`: each input's
/// gradient is `dy` times the other input (`len` floats per sample of the
/// output; `lens` per sample of each buffer).
#[allow(clippy::too_many_arguments)]
fn mul_backward(
    a: &[Vec<f32>],
    d: &mut [Vec<f32>],
    step: &ExecStep,
    pass: &Pass<'_>,
    (at, n): (usize, usize),
    lens: &[usize],
    dy: &[f32],
    shape: compute::join::MulShape,
    len: usize,
) {
    for k in 0..2 {
        let Some(accumulate) = accumulates(step, k, pass) else {
            continue;
        };
        let (b, other) = (step.inputs[k], step.inputs[1 - k]);
        let (other, dx) = (&a[other][at * lens[other]..], &mut d[b][at * lens[b]..]);
        compute::join::mul_backward(shape, k, dy, other, dx, n, len, accumulate);
    }
}

impl ExecWorker {
    /// Runs `step`, step `s` of the plan (of the inference plan when `folded`
    /// weights may be read; `s` then only names a mask that goes unused), on
    /// the `n` samples from `at`.
    fn forward_step(&mut self, step: &ExecStep, s: usize, pass: &Pass<'_>, (at, n): (usize, usize)) {
        let ExecWorker {
            program,
            a,
            masks,
            scratch,
            ..
        } = self;
        let p = if step.folded { pass.folded } else { pass.params };
        let lens = &program.buffers;
        let mut y_buf = std::mem::take(&mut a[step.output]);
        let y = &mut y_buf[at * lens[step.output]..][..n * lens[step.output]];
        let x = &a[step.inputs[0]][at * lens[step.inputs[0]]..][..n * lens[step.inputs[0]]];
        let w = step.weight.clone().map_or(&[][..], |r| &p[r]);
        let b = step.bias.clone().map(|r| &p[r]);
        match &step.op {
            Op::Normalize { area, mean, std } => compute::norm::normalize_forward(x, y, n, mean, std, *area),
            Op::Conv { shape, act } => {
                let add = step.inputs.get(1).map(|&r| &a[r][at * lens[r]..][..n * lens[r]]);
                k::conv_forward_dyn(shape, x, w, b, add, *act, y, n, scratch)
            }
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
            Op::Softmax { features, area: 1 } => compute::act::softmax_forward(x, y, *features),
            Op::Softmax { features, area } => compute::act::softmax_positions_forward(x, y, *features, *area),
            Op::Dropout { p: rate, layer, train } => {
                if *train && pass.train {
                    let len = lens[step.output];
                    let mask = &mut masks[s][at * len..][..n * len];
                    let first = pass.first + at;
                    compute::dropout::forward(*rate, pass.seed, pass.step, *layer, first, x, y, mask, n, len);
                } else {
                    y.copy_from_slice(x);
                }
            }
            Op::Add { act } => {
                let shortcut = &a[step.inputs[1]][at * lens[step.inputs[1]]..][..n * lens[step.inputs[1]]];
                compute::norm::add_forward(x, shortcut, y, *act);
            }
            Op::ConvTranspose { shape, act } => k::conv_transpose_forward_dyn(shape, *act, x, w, b, y, n, scratch),
            Op::Upsample(shape) => k::upsample_forward_dyn(shape, x, y, n),
            Op::Concat { lens } => {
                for (k, &b) in step.inputs.iter().enumerate() {
                    compute::join::concat_forward(&a[b][at * program.buffers[b]..], lens, k, y, n);
                }
            }
            Op::Mul { shape, act } => {
                let other = &a[step.inputs[1]][at * lens[step.inputs[1]]..][..n * lens[step.inputs[1]]];
                compute::join::mul_forward(*shape, x, other, y, *act, n, lens[step.output]);
            }
        }
        a[step.output] = y_buf;
    }

    /// The backward pass of step `s` of the plan over the `n` samples from `at`:
    /// adds its parameter gradients to `grads` and writes (or adds) its inputs'
    /// gradients.
    fn backward_step(&mut self, s: usize, pass: &Pass<'_>, grads: &mut [f32], (at, n): (usize, usize)) {
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
        let p = pass.params;
        let o = step.output;
        let (yat, xat) = (at * program.buffers[o], at * program.buffers[step.inputs[0]]);
        let ylen = n * program.buffers[o];
        let xlen = n * program.buffers[step.inputs[0]];
        let mut dy_buf = std::mem::take(&mut d[o]);
        let dy = &mut dy_buf[yat..][..ylen];
        let x = &a[step.inputs[0]][xat..][..xlen];
        let y = &a[o][yat..][..ylen];
        let w = step.weight.clone().map_or(&[][..], |r| &p[r]);
        match &step.op {
            Op::Normalize { area, std, .. } => write_input_dx(d, dtmp, step, xat, xlen, pass, |dx| {
                compute::norm::normalize_backward(dy, dx, n, std, *area)
            }),
            Op::Conv { shape, act } => {
                fused_backward(*act, y, dy);
                let (dw, db) = weight_grads(grads, step);
                write_dx(d, dtmp, step, 0, xat, xlen, pass, |dx| {
                    k::conv_backward_dyn(shape, x, w, dy, dw, db, dx, n, scratch)
                });
            }
            Op::Dense { inputs, outputs, act } => {
                fused_backward(*act, y, dy);
                let (dw, db) = weight_grads(grads, step);
                write_dx(d, dtmp, step, 0, xat, xlen, pass, |dx| {
                    k::dense_backward_dyn(*inputs, *outputs, x, w, dy, dw, db, dx, n, scratch)
                });
            }
            Op::MaxPool(shape) => write_input_dx(d, dtmp, step, xat, xlen, pass, |dx| {
                k::max_pool_backward_dyn(shape, x, dy, dx, n)
            }),
            Op::AvgPool(shape) => write_input_dx(d, dtmp, step, xat, xlen, pass, |dx| {
                k::avg_pool_backward_dyn(shape, dy, dx, n)
            }),
            Op::GlobalAvgPool { channels, area } => write_input_dx(d, dtmp, step, xat, xlen, pass, |dx| {
                compute::pool::global_avg_backward(*channels, *area, dy, dx, n)
            }),
            Op::BatchNorm {
                channels, area, shared, ..
            } => {
                let c = *channels;
                let (stats, sums) = (
                    &pass.shared[*shared..shared + 2 * c],
                    &pass.shared[shared + 2 * c..shared + 4 * c],
                );
                write_input_dx(d, dtmp, step, xat, xlen, pass, |dx| {
                    compute::norm::bn_backward_input(x, dy, dx, n, c, *area, stats, sums, w, pass.batch * area)
                });
            }
            Op::Activation(act) => write_input_dx(d, dtmp, step, xat, xlen, pass, |dx| act.backward_from(x, y, dy, dx)),
            Op::Softmax { features, area } => write_dx(d, dtmp, step, 0, xat, xlen, pass, |dx| match (dx, *area) {
                (Some(dx), 1) => compute::act::softmax_backward(y, dy, dx, *features),
                (Some(dx), area) => compute::act::softmax_positions_backward(y, dy, dx, *features, area),
                (None, _) => {}
            }),
            Op::Dropout { .. } => {
                let mask = &masks[s][yat..][..ylen];
                write_input_dx(d, dtmp, step, xat, xlen, pass, |dx| {
                    compute::dropout::backward(mask, dy, dx)
                });
            }
            Op::Add { act } => {
                fused_backward(*act, y, dy);
                add_backward(d, step, pass, yat, dy);
            }
            Op::ConvTranspose { shape, act } => {
                fused_backward(*act, y, dy);
                let (dw, db) = weight_grads(grads, step);
                write_dx(d, dtmp, step, 0, xat, xlen, pass, |dx| {
                    k::conv_transpose_backward_dyn(shape, x, w, dy, dw, db, dx, n, scratch)
                });
            }
            Op::Upsample(shape) => write_input_dx(d, dtmp, step, xat, xlen, pass, |dx| {
                k::upsample_backward_dyn(shape, dy, dx, n)
            }),
            Op::Concat { lens } => {
                for (k, &b) in step.inputs.iter().enumerate() {
                    if let Some(accumulate) = accumulates(step, k, pass) {
                        let dx = &mut d[b][at * program.buffers[b]..];
                        compute::join::concat_backward(dy, lens, k, dx, n, accumulate);
                    }
                }
            }
            Op::Mul { shape, act } => {
                fused_backward(*act, y, dy);
                mul_backward(
                    a,
                    d,
                    step,
                    pass,
                    (at, n),
                    &program.buffers,
                    dy,
                    *shape,
                    program.buffers[o],
                );
            }
        }
        d[o] = dy_buf;
    }

    /// The partial sums of the batchnorm step `s` that opens a phase (its γ and β
    /// gradients and the sums its input gradient needs).
    fn batchnorm_partial(&mut self, s: usize, pass: &Pass<'_>, grads: &mut [f32], (at, n): (usize, usize)) {
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
        let o = step.output;
        let (yat, ylen) = (at * program.buffers[o], n * program.buffers[o]);
        let x = &a[step.inputs[0]][at * program.buffers[step.inputs[0]]..][..n * program.buffers[step.inputs[0]]];
        let y = &a[o][yat..][..ylen];
        let dy = &mut d[o][yat..][..ylen];
        let gamma = step.weight.clone().map_or(0, |r| r.start);
        let (dgamma, dbeta) = grads[gamma..gamma + 2 * c].split_at_mut(c);
        let stats = &pass.shared[shared..shared + 2 * c];
        compute::norm::bn_backward_partial(x, y, dy, n, c, area, stats, act, dgamma, dbeta, at, partials);
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
        for (at, n) in chunks(pass.n, program.forward_chunk[phase]) {
            for &s in &program.forward[phase] {
                let start = on.then(Instant::now);
                self.forward_step(&program.steps[s], s, pass, (at, n));
                record(on, &program.profile.forward[s], start);
            }
            if let (Some(closing), true) = (program.closing[phase], pass.train) {
                let step = &program.steps[closing];
                if let Op::BatchNorm { channels, area, .. } = step.op {
                    let len = program.buffers[step.inputs[0]];
                    let x = &self.a[step.inputs[0]][at * len..][..n * len];
                    compute::norm::bn_partial_stats(x, at, n, channels, area, &mut self.partials);
                }
            }
        }
    }

    fn infer(&mut self, phases: usize, pass: &Pass<'_>) {
        let program = Arc::clone(&self.program);
        let Some(steps) = &program.infer else {
            for phase in 0..phases {
                self.forward(phase, pass);
            }
            return;
        };
        for (s, step) in steps.iter().enumerate() {
            self.forward_step(step, s, pass, (0, pass.n));
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
        for chunk in chunks(pass.n, program.backward_chunk[phase]) {
            for &half in &program.backward[phase] {
                let start = on.then(Instant::now);
                let s = match half {
                    Half::Step(s) => {
                        self.backward_step(s, pass, grads, chunk);
                        s
                    }
                    Half::BatchNormPartial(s) => {
                        self.batchnorm_partial(s, pass, grads, chunk);
                        s
                    }
                };
                record(on, &program.profile.backward[s], start);
            }
        }
    }

    fn input_grad(&self) -> &[f32] {
        self.d.first().map_or(&[], |g| g)
    }
}
