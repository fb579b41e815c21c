//! How many samples a phase's code takes at a time: the loop fusion that only a
//! compiler of the whole network can plan.
//!
//! Between two batchnorm combines (a phase) every step works on each sample on
//! its own, so a worker may run the whole phase on a few samples, then on the
//! next few, instead of running each step over all its samples. Run step by step,
//! a ResNet's batchnorm, activation, residual and copy passes each stream
//! megabytes through the caches (a 16x32x32 activation is 64 KiB per sample, 2
//! MiB for a worker's 32 samples); run chunk by chunk, what a step writes is
//! still in L2 when the next step reads it. The partial statistics and sums that
//! end a phase are merged across chunks (`rt::norm`), and dropout draws each
//! sample's mask from its own stream, so the chunk changes the results only by
//! the rounding of sums taken in another order (the executor, `rt::exec`, runs
//! the same chunks, and equals generated code bit for bit).
//!
//! The chunk holds the phase's buffers of [`TARGET`] bytes, at least one sample.
//! A step with large weights against its input sets a floor ([`CONV_FLOOR`],
//! [`DENSE_FLOOR`] samples), as its cost has a part per call: a Winograd
//! convolution transforms its weights on each call (36 values per 9 taps, so 4x
//! the weights, written and read again), and a dense layer is one matrix product
//! whose rows are the samples. The rule looks at sizes, not at the path a shape
//! takes, which is the kernels' choice (`compute::conv`).

use super::plan::{Kind, Plan};

/// The bytes of a phase's buffers a chunk may hold. Measured on generated
/// training, one thread, AMD EPYC Zen 5 (1 MiB L2): ResNet-20 at batch 128
/// 543 -> 572-600 images/s with 1 MiB chunks; ResNet-8 at batch 64 about 2.5%
/// faster with 1 MiB, and no faster with 256 KiB, where a chunk of one or two
/// samples pays each call's weight repacking and weight-gradient sums more often
/// than it saves; on two threads (half the samples per worker) neither changed.
const TARGET: usize = 1024 * 1024;

/// The fewest samples per call of a convolution with large weights (its
/// Winograd transform) and of a dense layer (its matrix product's rows: LeNet,
/// whose phase holds two dense layers, trained 6% slower on two threads in chunks
/// of 29 samples than in one of 32).
const CONV_FLOOR: usize = 16;
const DENSE_FLOOR: usize = 64;

/// The chunk of forward (or with `backward`, backward) phase `phase`: what
/// generated code and the plan executor (`rt::exec`) both run.
pub fn phase(plan: &Plan, phase: usize, backward: bool) -> usize {
    let steps: Vec<usize> = (0..plan.steps.len())
        .filter(|&s| plan.steps[s].phase == phase)
        .collect();
    chunk(plan, &steps, backward)
}

/// The chunk of the steps `steps` (a phase); `backward` counts the gradient
/// buffers too.
fn chunk(plan: &Plan, steps: &[usize], backward: bool) -> usize {
    let mut buffers: Vec<usize> = steps
        .iter()
        .flat_map(|&s| plan.steps[s].inputs.iter().copied().chain([plan.steps[s].output]))
        .collect();
    buffers.sort_unstable();
    buffers.dedup();
    let per_sample: usize = buffers.iter().map(|&b| plan.buffers[b] * 4).sum::<usize>() * if backward { 2 } else { 1 };
    let floor = steps.iter().map(|&s| per_call_floor(plan, s)).max().unwrap_or(1);
    (TARGET / per_sample.max(1)).max(floor)
}

/// The fewest samples per call for a step whose cost has a part per call: a
/// dense layer, or a convolution whose weights, 4x over (a Winograd transform),
/// outweigh a sample of its input (see the module documentation); 1 for others.
fn per_call_floor(plan: &Plan, s: usize) -> usize {
    let step = &plan.steps[s];
    match step.kind {
        Kind::Dense { .. } => DENSE_FLOOR,
        Kind::Conv { shape, .. } => {
            let [kh, kw] = shape.window.window;
            let weights = shape.window.c / shape.groups * kh * kw * shape.filters;
            if 4 * weights > plan.buffers[step.inputs[0]] {
                CONV_FLOOR
            } else {
                1
            }
        }
        Kind::Normalize { .. }
        | Kind::MaxPool(_)
        | Kind::AvgPool(_)
        | Kind::GlobalAvgPool { .. }
        | Kind::BatchNorm { .. }
        | Kind::Activation(_)
        | Kind::Softmax { .. }
        | Kind::Dropout { .. }
        | Kind::Add { .. }
        | Kind::ConvTranspose { .. }
        | Kind::Upsample { .. }
        | Kind::Concat { .. }
        | Kind::Mul { .. } => 1,
    }
}
