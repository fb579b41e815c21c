//! The driver's description of a model read at run time, as `codegen::spec`
//! writes it for `cnn!`. Its tables are made static (see `mod.rs`): names, shapes
//! and the train block live as long as the process, like a generated model's.

use super::step::conv_shape;
use crate::codegen::plan::{self, Kind, OutputSource, Plan};
use crate::compute::transpose::TransposeShape;
use crate::ir;
use crate::rt::driver::{BatchNormSlot, Fold, Init, LayerOutput, Source, Spec, Tensor, TrainSpec};

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
        Kind::ConvTranspose { conv, .. } => Source::ConvTranspose {
            input,
            shape: TransposeShape { conv: conv_shape(conv) },
            weight,
            bias,
        },
        Kind::Mul {
            gate, channels, area, ..
        } => Source::Mul {
            a: input,
            b: step.inputs[1],
            shape: super::step::mul_shape(*gate, *channels, *area),
            len: plan.buffers[step.output],
        },
        // Only the kinds above fuse an activation; the others keep their output.
        Kind::Normalize { .. }
        | Kind::MaxPool(_)
        | Kind::AvgPool(_)
        | Kind::GlobalAvgPool { .. }
        | Kind::Activation(_)
        | Kind::Softmax { .. }
        | Kind::Dropout { .. }
        | Kind::Upsample { .. }
        | Kind::Concat { .. } => Source::Buffer(step.output),
    }
}

/// The folds of the inference plan, with their offsets in the parameters.
fn folds(inference: Option<&Plan>) -> &'static [Fold] {
    let Some(plan) = inference else { return &[] };
    let offset = |id: Option<usize>| id.map(|i| plan.params[i].offset);
    leak(
        plan.folds
            .iter()
            .map(|f| Fold {
                weight: plan.params[f.weight].offset,
                weight_len: f.weight_len,
                filters: f.filters,
                bias: offset(f.bias),
                batchnorm: f.batchnorm,
                gamma: offset(f.gamma),
                beta: offset(f.beta),
                offset: f.offset,
            })
            .collect(),
    )
}

/// The driver's description of `model`, as `codegen::spec` writes it for `cnn!`.
pub(super) fn spec(model: &ir::Model, plan: &Plan) -> Spec {
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
        ignore: t.ignore,
        clip_grad_norm: t.clip_grad_norm,
        warmup: t.warmup,
        early_stop: t.early_stop,
        freeze: leak(t.freeze.iter().map(|n| leak_str(n)).collect()),
    });
    let inference = plan.inference();
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
        folds: folds(inference.as_ref()),
        folded_len: inference.as_ref().map_or(0, |i| i.folded_len),
    }
}
