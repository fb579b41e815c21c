//! The training half of the driver: a batch's forward, loss and backward passes
//! over the workers, chunk by chunk, with the batchnorm combines between the
//! phases (see the phases in [`super`]), the ordered gradient sum, the running
//! statistics' update and the optimizer step.

use super::parallel::{each, worker_range};
use super::{Backward, Driver, Network, Pass, Slot, Spec, TrainSpec, Worker};
use crate::compute;
use crate::ir::{Loss, Optimizer};
use crate::rt::inputs::{batch_size, check_finite, copy_rows, labels, values};
use crate::rt::{Error, Target};
use ndarray::{ArrayViewD, CowArray, Ix1};

/// A batch's targets as the workers' loss reads them.
struct BatchTargets<'a> {
    loss: Loss,
    /// The train block's label smoothing.
    smoothing: f32,
    classes: compute::loss::Classes,
    /// Cross-entropy's labels, one per sample or per position.
    labels: Option<CowArray<'a, usize, Ix1>>,
    /// The target values of mse and binary cross-entropy.
    values: Option<ArrayViewD<'a, f32>>,
    /// The values the mean loss divides by (the labels that count for cross-entropy).
    total: usize,
}

impl<'a> BatchTargets<'a> {
    /// Reads `target` for `n` samples as the train block's loss wants it.
    fn read(spec: &Spec, train: TrainSpec, target: &Target<'a>, n: usize) -> Result<Self, Error> {
        let smoothing = train.smoothing as f32;
        let classes = spec.classes();
        let (labels, values) = match train.loss {
            Loss::CrossEntropy => (Some(labels(target, n, spec.output, classes)?), None),
            Loss::Mse => (None, Some(values(target, n, spec.output, false)?)),
            Loss::BinaryCrossEntropy => (None, Some(values(target, n, spec.output, true)?)),
        };
        let total = match &labels {
            Some(l) => classes.counted(l.as_slice().unwrap_or(&[])),
            None => n * spec.output_len(),
        };
        Ok(BatchTargets {
            loss: train.loss,
            smoothing,
            classes,
            labels,
            values,
            total,
        })
    }
}

/// The samples `lo..hi` of a batch that one round of the workers takes.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    lo: usize,
    hi: usize,
    /// The workers with samples in the chunk.
    active: usize,
    /// Whether the model input's gradient is wanted.
    want_input: bool,
}

impl Chunk {
    /// The training pass of a worker's samples `a..b` of this chunk.
    fn pass<'a>(&self, params: &'a [f32], shared: &'a [f32], a: usize, b: usize, seed: u64, step: u64) -> Pass<'a> {
        Pass {
            params,
            shared,
            folded: &[],
            n: b - a,
            first: a,
            batch: self.hi - self.lo,
            train: true,
            input_grad: self.want_input,
            seed,
            step,
        }
    }
}

/// Refuses a batch that a model with batchnorm cannot train on: more samples than
/// its `batch`, or fewer than 2 values per channel.
fn check_batchnorm_batch(spec: &Spec, n: usize) -> Result<(), Error> {
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
    Ok(())
}

/// Copies samples `a..b` of the input `x` and of the targets into a worker's slot.
fn load_slot<W: Worker>(slot: &mut Slot<W>, x: &ArrayViewD<'_, f32>, targets: &BatchTargets<'_>, a: usize, b: usize) {
    let m = b - a;
    copy_rows(x, a, b, slot.worker.input());
    if let Some(l) = &targets.labels {
        let area = targets.classes.area;
        for (d, s) in slot.labels.iter_mut().zip(l.iter().skip(a * area).take(m * area)) {
            *d = *s;
        }
    }
    if let Some(v) = &targets.values {
        copy_rows(v, a, b, &mut slot.targets);
    }
}

/// The loss of a worker's `m` samples after its last forward phase: writes the
/// gradient of the logits and counts the correct predictions; returns the
/// worker's loss sum.
fn slot_loss<W: Backward>(slot: &mut Slot<W>, m: usize, out_len: usize, targets: &BatchTargets<'_>) -> f64 {
    let (classes, total, smoothing) = (targets.classes, targets.total, targets.smoothing);
    let io = slot.worker.loss_io();
    let (z, p, g) = (
        &io.logits[..m * out_len],
        &io.output[..m * out_len],
        &mut io.grad[..m * out_len],
    );
    match targets.loss {
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
                (mean, m2) = compute::norm::merge_moments(total, mean, m2, m, part[ch], part[c + ch]);
                total += m;
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
    pub(super) fn accumulate(
        &mut self,
        x: ArrayViewD<'_, f32>,
        target: Target<'_>,
        mut input_grad: Option<&mut [f32]>,
    ) -> Result<f32, Error> {
        let spec = self.spec();
        let train = self.train_spec()?;
        let n = batch_size("input", x.shape(), spec.input)?;
        check_finite("input", &x)?;
        check_batchnorm_batch(spec, n)?;
        let targets = BatchTargets::read(spec, train, &target, n)?;
        let want_input = input_grad.is_some();
        for slot in &mut self.slots {
            slot.grads.fill(0.0);
            slot.correct = 0;
        }
        let count = self.slots.len();
        let mut loss = 0.0f64;
        let mut lo = 0;
        while lo < n {
            let hi = (lo + spec.batch).min(n);
            let chunk = Chunk {
                lo,
                hi,
                active: count.min(hi - lo),
                want_input,
            };
            self.forward_phases(&x, &targets, chunk, &mut loss);
            self.backward_phases(chunk);
            if let Some(dst) = input_grad.as_deref_mut() {
                self.copy_input_grad(dst, chunk);
            }
            lo = hi;
        }
        self.sum_gradients();
        Ok((loss / targets.total as f64) as f32)
    }

    /// The forward phases of `chunk`, each but the last followed by a combine; the
    /// last one also runs the loss and the last backward phase. Adds the workers'
    /// loss sums to `loss`.
    fn forward_phases(&mut self, x: &ArrayViewD<'_, f32>, targets: &BatchTargets<'_>, chunk: Chunk, loss: &mut f64) {
        let spec = self.spec();
        let Chunk { lo, hi, active, .. } = chunk;
        let out_len = spec.output_len();
        let count = self.slots.len();
        let phases = spec.phases();
        let (seed, step) = (self.seed, self.step);
        for phase in 0..phases {
            let last = phase + 1 == phases;
            let (params, shared) = (&self.params[..], &self.shared[..]);
            *loss += each(&mut self.slots[..active], &|w, slot| {
                let (a, b) = worker_range(lo, hi, w, count);
                if a == b {
                    return 0.0;
                }
                let m = b - a;
                if phase == 0 {
                    load_slot(slot, x, targets, a, b);
                }
                let pass = chunk.pass(params, shared, a, b, seed, step);
                slot.worker.forward(phase, &pass);
                if !last {
                    return 0.0;
                }
                let loss = slot_loss(slot, m, out_len, targets);
                slot.worker.backward(phases - 1, &pass, &mut slot.grads);
                loss
            });
            if !last {
                self.combine_forward(phase, lo, hi, active);
            }
        }
    }

    /// The backward phases of `chunk` from the second-to-last down, each after a
    /// combine of the batchnorm sums the phase after it left.
    fn backward_phases(&mut self, chunk: Chunk) {
        let Chunk { lo, hi, active, .. } = chunk;
        let count = self.slots.len();
        let (seed, step) = (self.seed, self.step);
        for phase in (0..self.spec().phases() - 1).rev() {
            self.combine_backward(phase, active);
            let (params, shared) = (&self.params[..], &self.shared[..]);
            each(&mut self.slots[..active], &|w, slot| {
                let (a, b) = worker_range(lo, hi, w, count);
                if a < b {
                    let pass = chunk.pass(params, shared, a, b, seed, step);
                    slot.worker.backward(phase, &pass, &mut slot.grads);
                }
                0.0
            });
        }
    }

    /// Copies the model input's gradient of `chunk`'s samples from the workers to `dst`.
    fn copy_input_grad(&self, dst: &mut [f32], chunk: Chunk) {
        let (count, in_len) = (self.slots.len(), self.spec().input_len());
        for (w, slot) in self.slots[..chunk.active].iter().enumerate() {
            let (a, b) = worker_range(chunk.lo, chunk.hi, w, count);
            dst[a * in_len..b * in_len].copy_from_slice(&slot.worker.input_grad()[..(b - a) * in_len]);
        }
    }

    /// Sums the workers' gradients (and correct counts) in a fixed order: deterministic.
    fn sum_gradients(&mut self) {
        let (first, rest) = self.slots.split_at(1);
        self.grads.copy_from_slice(&first[0].grads);
        self.correct = first[0].correct;
        for slot in rest {
            compute::norm::accumulate(&mut self.grads, &slot.grads);
            self.correct += slot.correct;
        }
    }

    /// Folds the last step's batch statistics into the running statistics.
    pub(super) fn update_running_stats(&mut self) {
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
    pub(super) fn optimizer_step(&mut self) -> Result<(), Error> {
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

    pub(super) fn learning_rate_at(&self, epoch: usize) -> f32 {
        match self.spec().train {
            Some(t) => crate::ir::learning_rate(t.optimizer.lr(), t.schedule, t.warmup, self.epochs, epoch) as f32,
            None => 0.0,
        }
    }
}
