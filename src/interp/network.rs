//! The model's layers over one float type: the forward pass that keeps every
//! activation, the backward pass that walks them in reverse, and the loss between.
//! The model is a tree (a residual block holds a body and a shortcut sequence), so
//! both passes recurse into blocks: a block's output is `body(x) + shortcut(x)`, and
//! its input's gradient is the sum of the gradients both paths send back.

use super::real::Real;
use super::tensors::{
    by_position, from_positions, image, internal, matrix, out_hw, per_channel, reshape, store, store_weighted, to_real,
    vector, vector_mut,
};
use super::{activation, batchnorm, conv, dense, join, loss, pool, transpose, upsample, validate};
use crate::ir::{self, Activation, Loss, Op};
use crate::rt::{Error, Target};
use ndarray::{ArrayD, ArrayView1, ArrayViewD, Ix1, IxDyn};
use rand::{Rng, RngCore};
use std::collections::{HashMap, HashSet};

/// A checked model with parameters and buffers of type `T`, in the order of
/// `ir::Model::params` and `ir::Model::buffers`.
#[derive(Debug, Clone)]
pub struct Network<T> {
    model: ir::Model,
    params: Vec<ArrayD<T>>,
    /// Batchnorm running statistics: `running_mean`, `running_var` per batchnorm.
    buffers: Vec<ArrayD<T>>,
    /// Where each top-level layer's tensors sit in `params` and `buffers`.
    slots: Vec<Slot>,
    /// v3: the outputs later items read by name (`ir::Ref`), which a pass keeps.
    referenced: HashSet<String>,
}

/// v3: the outputs of referenced layers in a forward pass, by IR name.
type Outputs<T> = HashMap<String, ArrayD<T>>;
/// v3: the gradients sent back to referenced outputs, added up until the backward
/// pass reaches the layer that produced them.
type Sent<T> = HashMap<String, ArrayD<T>>;

/// The loss and its gradients, in `T`.
#[derive(Debug, Clone)]
pub struct NetGradients<T> {
    pub loss: T,
    /// dLoss/dInput, `[N, ...input shape]`.
    pub input: ArrayD<T>,
    /// dLoss/dParam, in the order of the parameters.
    pub params: Vec<ArrayD<T>>,
    /// The buffers moved toward this batch's statistics (one training step's running
    /// update): `train_step` keeps them, `gradients` drops them. The current buffers
    /// when the model has no batchnorm.
    pub buffers: Vec<ArrayD<T>>,
}

/// Where one layer's tensors start in `params` and `buffers` (its own, if it has
/// any), and the same for the layers of a residual block's body and shortcut.
#[derive(Debug, Clone)]
struct Slot {
    param: usize,
    buffer: usize,
    body: Vec<Slot>,
    shortcut: Vec<Slot>,
}

/// The slots of `seq`, numbered from the counters, depth first as `ir::Model::params`
/// lists the tensors: a layer's own, then its body's, then its shortcut's.
fn slots(seq: &[ir::Layer], next_param: &mut usize, next_buffer: &mut usize) -> Vec<Slot> {
    seq.iter()
        .map(|layer| {
            let (param, buffer) = (*next_param, *next_buffer);
            *next_param += layer.params().len();
            *next_buffer += layer.buffers().len();
            let (body, shortcut) = match &layer.op {
                Op::Residual(r) => (
                    slots(&r.body, next_param, next_buffer),
                    slots(&r.shortcut, next_param, next_buffer),
                ),
                Op::Conv(_)
                | Op::MaxPool(_)
                | Op::AvgPool(_)
                | Op::GlobalAvgPool
                | Op::Flatten
                | Op::Dense(_)
                | Op::BatchNorm(_)
                | Op::Dropout(_)
                | Op::Activation(_)
                | Op::Softmax
                | Op::ConvTranspose(_)
                | Op::GlobalMaxPool
                | Op::Upsample(_)
                | Op::Concat(_)
                | Op::Add(_)
                | Op::Mul(_)
                | Op::From(_) => (Vec::new(), Vec::new()),
            };
            Slot {
                param,
                buffer,
                body,
                shortcut,
            }
        })
        .collect()
}

/// How a forward pass runs.
struct Pass<'r> {
    /// Training mode: batchnorm normalizes with the batch's statistics and dropout
    /// draws masks from `dropout` (no dropout without it). Inference mode: running
    /// statistics, no dropout.
    training: bool,
    dropout: Option<&'r mut dyn RngCore>,
}

/// What one layer's forward pass keeps for its backward pass, beyond its input and
/// output.
enum Saved<T> {
    Nothing,
    /// Dropout's mask.
    Mask(ArrayD<T>),
    /// Training-mode batchnorm's batch statistics.
    BatchNorm(batchnorm::Stats<T>),
    /// A residual block's two paths.
    Residual {
        body: Trace<T>,
        shortcut: Trace<T>,
    },
}

/// One layer of a forward trace, as its backward pass reads it.
struct Step<'a, T> {
    layer: &'a ir::Layer,
    slot: &'a Slot,
    x: ArrayViewD<'a, T>,
    y: ArrayViewD<'a, T>,
    saved: &'a Saved<T>,
}

/// One sequence's forward pass: `acts[0]` is its input, `acts[i + 1]` the output of
/// its layer `i`, `saved[i]` what layer `i` kept.
struct Trace<T> {
    acts: Vec<ArrayD<T>>,
    saved: Vec<Saved<T>>,
}

impl<T> Trace<T> {
    fn output(&self) -> &ArrayD<T> {
        // `acts` always holds the input at least.
        &self.acts[self.acts.len() - 1]
    }
}

/// Moves the outputs of `seq`'s layers out of its forward `trace` into `out`, in
/// the order they were computed: a residual block's body and shortcut first
/// (`from`, which computes nothing, has no entry).
fn collect_outputs<T>(seq: &[ir::Layer], trace: Trace<T>, out: &mut Vec<(String, ArrayD<T>)>) {
    // acts[0] is the sequence's input, acts[i + 1] the output of layer i.
    for ((layer, saved), y) in seq.iter().zip(trace.saved).zip(trace.acts.into_iter().skip(1)) {
        if let (Op::Residual(r), Saved::Residual { body, shortcut }) = (&layer.op, saved) {
            collect_outputs(&r.body, body, out);
            collect_outputs(&r.shortcut, shortcut, out);
        }
        if !matches!(layer.op, Op::From(_)) {
            out.push((layer.name.clone(), y));
        }
    }
}

/// Adds `g` to what was sent to output `name`.
fn send<T: Real>(sent: &mut Sent<T>, name: &str, g: ArrayD<T>) {
    match sent.get_mut(name) {
        Some(total) => *total += &g,
        None => {
            sent.insert(name.to_string(), g);
        }
    }
}

impl<T: Real> Network<T> {
    /// A network with the given parameters, which must have the model's shapes, and
    /// the buffers at their start (running mean 0, running variance 1).
    pub fn new(model: ir::Model, params: Vec<ArrayD<T>>) -> Result<Self, Error> {
        let specs = model.params();
        if specs.len() != params.len() {
            return Err(Error::Config(format!(
                "model {} has {} parameter tensors, {} were given",
                model.name,
                specs.len(),
                params.len()
            )));
        }
        for (spec, value) in specs.iter().zip(&params) {
            if value.shape() != spec.shape.as_slice() {
                return Err(Error::Shape {
                    what: format!("parameter {}", spec.name),
                    expected: format!("{:?}", spec.shape),
                    given: value.shape().to_vec(),
                });
            }
        }
        Ok(Self::from_parts(model, params))
    }

    /// A network from parameters known to have the model's shapes; buffers at their
    /// start.
    pub(crate) fn from_parts(model: ir::Model, params: Vec<ArrayD<T>>) -> Self {
        let buffers = initial_buffers(&model);
        let (mut next_param, mut next_buffer) = (0, 0);
        let slots = slots(&model.layers, &mut next_param, &mut next_buffer);
        let mut refs = Vec::new();
        ir::references(&model.layers, &mut refs);
        let referenced = refs.iter().map(|r| r.name.clone()).collect();
        Network {
            model,
            params,
            buffers,
            slots,
            referenced,
        }
    }

    pub fn model(&self) -> &ir::Model {
        &self.model
    }

    /// The parameters, in the order of `ir::Model::params`.
    pub fn params(&self) -> &[ArrayD<T>] {
        &self.params
    }

    pub fn params_mut(&mut self) -> &mut [ArrayD<T>] {
        &mut self.params
    }

    /// The buffers (batchnorm running statistics), in the order of `ir::Model::buffers`.
    pub fn buffers(&self) -> &[ArrayD<T>] {
        &self.buffers
    }

    pub fn buffers_mut(&mut self) -> &mut [ArrayD<T>] {
        &mut self.buffers
    }

    /// Inference: every layer, batchnorm with its running statistics, dropout off.
    /// `x` is `[N, ...input shape]`.
    pub fn predict(&self, x: ArrayViewD<T>) -> Result<ArrayD<T>, Error> {
        Ok(self.inference(x)?.output().clone())
    }

    /// The whole network in inference mode on `x` (checked, normalized).
    fn inference(&self, x: ArrayViewD<T>) -> Result<Trace<T>, Error> {
        validate::input(&self.model, x.view())?;
        let x = self.normalize(x)?;
        let mut pass = Pass {
            training: false,
            dropout: None,
        };
        let mut outputs = self.start(&x);
        self.forward_seq(&self.model.layers, &self.slots, x, usize::MAX, &mut pass, &mut outputs)
    }

    /// Every layer's output in inference mode, in the order the layers run (a
    /// residual block's body and shortcut layers before the block): what
    /// [`crate::Model::activations`] returns. `x` is `[N, ...input shape]`.
    pub fn activations(&self, x: ArrayViewD<T>) -> Result<Vec<(String, ArrayD<T>)>, Error> {
        let trace = self.inference(x)?;
        let mut out = Vec::new();
        collect_outputs(&self.model.layers, trace, &mut out);
        Ok(out)
    }

    /// The loss of the model's train block and its gradients, in training mode:
    /// batchnorm normalizes with the batch's statistics, dropout draws its masks from
    /// `dropout` (no dropout when `None`). The running statistics are not changed;
    /// their update for this batch is returned in `NetGradients::buffers`.
    pub fn gradients(
        &self,
        x: ArrayViewD<T>,
        target: &Target<'_>,
        dropout: Option<&mut dyn RngCore>,
    ) -> Result<NetGradients<T>, Error> {
        let loss_kind = self.loss()?;
        validate::input(&self.model, x.view())?;
        validate::target(&self.model, loss_kind, x.shape()[0], target)?;
        validate::batchnorm_training(&self.model, x.shape())?;
        let layers = &self.model.layers;
        // The fused losses start from the logits: the final softmax/sigmoid is not run.
        let body = match loss_kind {
            Loss::CrossEntropy | Loss::BinaryCrossEntropy => layers.len().saturating_sub(1),
            Loss::Mse => layers.len(),
        };
        let mut pass = Pass {
            training: true,
            dropout,
        };
        let x = self.normalize(x)?;
        let mut outputs = self.start(&x);
        let trace = self.forward_seq(layers, &self.slots, x, body, &mut pass, &mut outputs)?;
        let out = trace.output().view();
        let smoothing = self.model.train.as_ref().map_or(0.0, |t| t.smoothing);
        let ignore = self.model.train.as_ref().and_then(|t| t.ignore);
        let (loss, grad) = match (loss_kind, target) {
            (Loss::CrossEntropy, Target::Labels(labels)) => {
                let (l, g) = loss::cross_entropy(matrix(out, "the logits")?, labels.view(), smoothing, ignore);
                (l, g.into_dyn())
            }
            (Loss::CrossEntropy, Target::LabelMaps(maps)) => {
                let labels = ndarray::Array1::from_iter(maps.iter().copied());
                let (l, g) = loss::cross_entropy(by_position(out.view()).view(), labels.view(), smoothing, ignore);
                (l, from_positions(g, out.shape()))
            }
            (Loss::BinaryCrossEntropy, Target::Values(t)) => loss::binary_cross_entropy(out, t.mapv(to_real).view()),
            (Loss::Mse, Target::Values(t)) => loss::mse(out, t.mapv(to_real).view()),
            // `validate::target` has ruled the other pairs out.
            _ => return Err(validate::wrong_target_kind(loss_kind)),
        };
        let mut params: Vec<ArrayD<T>> = self
            .params
            .iter()
            .map(|p| ArrayD::from_elem(p.raw_dim(), T::ZERO))
            .collect();
        let mut sent = Sent::new();
        let mut dx = self.backward_seq(layers, &self.slots, &trace, grad, &mut params, &outputs, &mut sent)?;
        if let Some(g) = sent.remove(ir::Ref::INPUT) {
            dx += &g;
        }
        let mut buffers = self.buffers.clone();
        self.update_running(layers, &self.slots, &trace, &mut buffers)?;
        Ok(NetGradients {
            loss,
            input: self.normalize_backward(dx),
            params,
            buffers,
        })
    }

    /// The loss of the train block, or an error for inference-only models.
    pub fn loss(&self) -> Result<Loss, Error> {
        let train = self.model.train.as_ref().ok_or_else(|| {
            Error::Config(format!(
                "model {} has no train block, so it cannot compute gradients or train; add `train {{ loss ... optimizer ... }}`",
                self.model.name
            ))
        })?;
        let last = self.model.layers.last().map(|l| &l.op);
        let fused_ok = match train.loss {
            Loss::CrossEntropy => matches!(last, Some(Op::Softmax)),
            Loss::BinaryCrossEntropy => matches!(last, Some(Op::Activation(Activation::Sigmoid))),
            Loss::Mse => true,
        };
        if !fused_ok {
            return Err(Error::Config(format!(
                "model {}: cross_entropy needs a final softmax and binary_cross_entropy a final sigmoid",
                self.model.name
            )));
        }
        Ok(train.loss)
    }

    /// `input ... normalize`: `(x - mean[c]) / std[c]` on each channel `c` (axis 1).
    fn normalize(&self, x: ArrayViewD<T>) -> Result<ArrayD<T>, Error> {
        let mut y = x.to_owned();
        if let Some(norm) = &self.model.normalize {
            let channels = self.model.input.channels();
            if norm.mean.len() != channels || norm.std.len() != channels {
                return Err(Error::Config(format!(
                    "model {} normalizes {} mean and {} std values, but its input has {channels} channels (the model IR is inconsistent)",
                    self.model.name,
                    norm.mean.len(),
                    norm.std.len()
                )));
            }
            for (index, v) in y.indexed_iter_mut() {
                let c = index[1];
                *v = (*v - to_real(norm.mean[c])) / to_real(norm.std[c]);
            }
        }
        Ok(y)
    }

    /// The gradient through `normalize`: divided by each channel's std.
    fn normalize_backward(&self, mut dx: ArrayD<T>) -> ArrayD<T> {
        if let Some(norm) = &self.model.normalize {
            // `normalize` checked the lengths before the forward pass.
            for (index, g) in dx.indexed_iter_mut() {
                *g /= to_real(norm.std[index[1]]);
            }
        }
        dx
    }

    /// The referenced outputs at the start of a pass: the (normalized) input, when
    /// an item reads `input`.
    fn start(&self, x: &ArrayD<T>) -> Outputs<T> {
        let mut outputs = Outputs::new();
        if self.referenced.contains(ir::Ref::INPUT) {
            outputs.insert(ir::Ref::INPUT.to_string(), x.clone());
        }
        outputs
    }

    /// Runs the first `count` layers of `seq` (all of them when it is larger) on `x`,
    /// keeping the outputs later items refer to in `outputs`.
    fn forward_seq(
        &self,
        seq: &[ir::Layer],
        slots: &[Slot],
        x: ArrayD<T>,
        count: usize,
        pass: &mut Pass<'_>,
        outputs: &mut Outputs<T>,
    ) -> Result<Trace<T>, Error> {
        let mut trace = Trace {
            acts: vec![x],
            saved: Vec::new(),
        };
        for (layer, slot) in seq.iter().zip(slots).take(count) {
            let (y, saved) = self.forward_layer(layer, slot, trace.output().view(), pass, outputs)?;
            if self.referenced.contains(&layer.name) {
                outputs.insert(layer.name.clone(), y.clone());
            }
            trace.acts.push(y);
            trace.saved.push(saved);
        }
        Ok(trace)
    }

    fn forward_layer(
        &self,
        layer: &ir::Layer,
        slot: &Slot,
        x: ArrayViewD<T>,
        pass: &mut Pass<'_>,
        outputs: &mut Outputs<T>,
    ) -> Result<(ArrayD<T>, Saved<T>), Error> {
        let read = |r: &ir::Ref| {
            outputs
                .get(&r.name)
                .cloned()
                .ok_or_else(|| internal(layer, &format!("reads `{}`, which no earlier layer produced", r.name)))
        };
        let n = x.shape().first().copied().unwrap_or(0);
        let y = match &layer.op {
            Op::Conv(c) => {
                let (w, b) = self.weight_bias(layer, slot, c.bias)?;
                conv::forward(image(x, layer)?, image(w, layer)?, b, c, out_hw(layer)?).into_dyn()
            }
            Op::MaxPool(win) => pool::max_forward(image(x, layer)?, win, out_hw(layer)?).into_dyn(),
            Op::AvgPool(win) => pool::avg_forward(image(x, layer)?, win, out_hw(layer)?).into_dyn(),
            Op::GlobalAvgPool => pool::global_avg_forward(image(x, layer)?).into_dyn(),
            Op::Flatten => reshape(x, &[n, layer.output.len()], layer)?,
            Op::Dense(d) => {
                let (w, b) = self.weight_bias(layer, slot, d.bias)?;
                dense::forward(vector(x, layer)?, vector(w, layer)?, b).into_dyn()
            }
            Op::Dropout(p) => match (pass.training, pass.dropout.as_deref_mut()) {
                (true, Some(rng)) => {
                    let mask = activation::dropout_mask(*p, x.shape(), || rng.random::<f64>());
                    let y = activation::dropout_apply(x, mask.view());
                    return Ok((y, Saved::Mask(mask)));
                }
                _ => x.to_owned(),
            },
            // v3: on an image, over the channels at each position.
            Op::Softmax => from_positions(activation::softmax_forward(by_position(x.view()).view()), x.shape()),
            Op::Activation(act) => activation::elementwise_forward(*act, x),
            Op::BatchNorm(bn) => {
                let gamma = self.vector_param(slot.param, layer)?;
                let beta = self.vector_param(slot.param + 1, layer)?;
                let x3 = per_channel(x.view(), layer)?;
                if pass.training {
                    let (y, stats) = batchnorm::forward_train(x3.view(), gamma, beta, bn.eps);
                    let y = reshape(y.into_dyn().view(), x.shape(), layer)?;
                    return Ok((y, Saved::BatchNorm(stats)));
                }
                let mean = self.vector_buffer(slot.buffer, layer)?;
                let var = self.vector_buffer(slot.buffer + 1, layer)?;
                let y = batchnorm::forward_infer(x3.view(), gamma, beta, mean, var, bn.eps);
                reshape(y.into_dyn().view(), x.shape(), layer)?
            }
            Op::ConvTranspose(t) => {
                let (w, b) = self.weight_bias(layer, slot, t.bias)?;
                transpose::forward(image(x, layer)?, image(w, layer)?, b, t, out_hw(layer)?).into_dyn()
            }
            Op::GlobalMaxPool => {
                let x = image(x, layer)?;
                let (_, _, h, w) = x.dim();
                pool::max_forward(x, &pool::global_window(h, w), (1, 1)).into_dyn()
            }
            Op::Upsample(u) => upsample::forward(image(x, layer)?, u).into_dyn(),
            Op::Concat(refs) => {
                let others = refs.iter().map(read).collect::<Result<Vec<_>, _>>()?;
                let parts: Vec<ArrayViewD<T>> = std::iter::once(x.view())
                    .chain(others.iter().map(|o| o.view()))
                    .collect();
                join::concat(&parts).ok_or_else(|| internal(layer, "joins tensors whose shapes do not fit"))?
            }
            Op::Add(r) => {
                let other = read(r)?;
                if other.shape() != x.shape() {
                    return Err(internal(layer, "adds tensors of different shapes"));
                }
                &x + &other
            }
            Op::Mul(r) => join::mul(x, read(r)?.view())
                .ok_or_else(|| internal(layer, "multiplies tensors whose shapes do not fit"))?,
            Op::From(r) => read(r)?,
            Op::Residual(r) => {
                let body = self.forward_seq(&r.body, &slot.body, x.to_owned(), usize::MAX, pass, outputs)?;
                let shortcut =
                    self.forward_seq(&r.shortcut, &slot.shortcut, x.to_owned(), usize::MAX, pass, outputs)?;
                let (a, b) = (body.output(), shortcut.output());
                if a.shape() != b.shape() {
                    return Err(internal(
                        layer,
                        &format!(
                            "adds a body of shape {:?} to a shortcut of shape {:?}",
                            a.shape(),
                            b.shape()
                        ),
                    ));
                }
                let y = a + b;
                return Ok((y, Saved::Residual { body, shortcut }));
            }
        };
        Ok((y, Saved::Nothing))
    }

    /// Walks `trace` backward from `dy`, dLoss/d(output of the sequence): adds each
    /// layer's parameter gradients to `grads` and returns dLoss/d(input of the sequence).
    /// A layer whose output is referenced first adds what its readers `sent`.
    #[allow(clippy::too_many_arguments)]
    fn backward_seq(
        &self,
        seq: &[ir::Layer],
        slots: &[Slot],
        trace: &Trace<T>,
        dy: ArrayD<T>,
        grads: &mut [ArrayD<T>],
        outputs: &Outputs<T>,
        sent: &mut Sent<T>,
    ) -> Result<ArrayD<T>, Error> {
        let mut grad = dy;
        for i in (0..trace.saved.len()).rev() {
            if let Some(g) = sent.remove(&seq[i].name) {
                grad += &g;
            }
            let (x, y) = (trace.acts[i].view(), trace.acts[i + 1].view());
            let step = Step {
                layer: &seq[i],
                slot: &slots[i],
                x,
                y,
                saved: &trace.saved[i],
            };
            grad = self.backward_layer(step, grad.view(), grads, outputs, sent)?;
        }
        Ok(grad)
    }

    /// Takes dLoss/d(output of the layer), stores the layer's parameter gradients in
    /// `grads`, sends the gradients of referenced outputs, and returns dLoss/d(input
    /// of the layer).
    fn backward_layer(
        &self,
        step: Step<'_, T>,
        dy: ArrayViewD<T>,
        grads: &mut [ArrayD<T>],
        outputs: &Outputs<T>,
        sent: &mut Sent<T>,
    ) -> Result<ArrayD<T>, Error> {
        let Step {
            layer,
            slot,
            x,
            y,
            saved,
        } = step;
        let read = |r: &ir::Ref| kept(outputs, r, layer);
        Ok(match &layer.op {
            Op::Conv(c) => {
                let (w, _) = self.weight_bias(layer, slot, c.bias)?;
                let g = conv::backward(image(x, layer)?, image(w, layer)?, c, image(dy, layer)?);
                store_weighted(grads, slot.param, g.dw.into_dyn(), g.db.into_dyn(), c.bias, layer)?;
                g.dx.into_dyn()
            }
            Op::MaxPool(win) => pool::max_backward(image(x, layer)?, win, image(dy, layer)?).into_dyn(),
            Op::AvgPool(win) => pool::avg_backward(image(x, layer)?, win, image(dy, layer)?).into_dyn(),
            Op::GlobalAvgPool => pool::global_avg_backward(image(x, layer)?, image(dy, layer)?).into_dyn(),
            Op::Flatten => reshape(dy, x.shape(), layer)?,
            Op::Dense(d) => {
                let (w, _) = self.weight_bias(layer, slot, d.bias)?;
                let g = dense::backward(vector(x, layer)?, vector(w, layer)?, vector(dy, layer)?);
                store_weighted(grads, slot.param, g.dw.into_dyn(), g.db.into_dyn(), d.bias, layer)?;
                g.dx.into_dyn()
            }
            Op::Dropout(_) => match saved {
                Saved::Mask(mask) => activation::dropout_apply(dy, mask.view()),
                _ => dy.to_owned(),
            },
            Op::Softmax => from_positions(
                activation::softmax_backward(by_position(y.view()).view(), by_position(dy.view()).view()),
                dy.shape(),
            ),
            Op::Activation(act) => activation::elementwise_backward(*act, x, y, dy),
            Op::BatchNorm(_) => {
                let Saved::BatchNorm(stats) = saved else {
                    return Err(internal(layer, "has no batch statistics to differentiate"));
                };
                let gamma = self.vector_param(slot.param, layer)?;
                let g = batchnorm::backward(stats, gamma, per_channel(dy, layer)?.view());
                store(grads, slot.param, g.dgamma.into_dyn(), layer)?;
                store(grads, slot.param + 1, g.dbeta.into_dyn(), layer)?;
                reshape(g.dx.into_dyn().view(), x.shape(), layer)?
            }
            Op::Residual(r) => {
                let Saved::Residual { body, shortcut } = saved else {
                    return Err(internal(layer, "has no trace of its body"));
                };
                // Both paths read the block's input: its gradient is their sum. The
                // shortcut goes first: it may read the body's items.
                let through_shortcut = self.backward_seq(
                    &r.shortcut,
                    &slot.shortcut,
                    shortcut,
                    dy.to_owned(),
                    grads,
                    outputs,
                    sent,
                )?;
                let through_body = self.backward_seq(&r.body, &slot.body, body, dy.to_owned(), grads, outputs, sent)?;
                through_body + through_shortcut
            }
            Op::ConvTranspose(t) => {
                let (w, _) = self.weight_bias(layer, slot, t.bias)?;
                let g = transpose::backward(image(x, layer)?, image(w, layer)?, t, image(dy, layer)?);
                store_weighted(grads, slot.param, g.dw.into_dyn(), g.db.into_dyn(), t.bias, layer)?;
                g.dx.into_dyn()
            }
            Op::GlobalMaxPool => {
                let x = image(x, layer)?;
                let (_, _, h, w) = x.dim();
                pool::max_backward(x, &pool::global_window(h, w), image(dy, layer)?).into_dyn()
            }
            Op::Upsample(u) => upsample::backward(image(dy, layer)?, u, image(x, layer)?.dim()).into_dyn(),
            Op::Concat(refs) => {
                let sizes: Vec<usize> = std::iter::once(Ok(x.shape()[1]))
                    .chain(refs.iter().map(|r| read(r).map(|o| o.shape()[1])))
                    .collect::<Result<_, _>>()?;
                for (k, r) in refs.iter().enumerate() {
                    send(sent, &r.name, join::part(&dy, &sizes, k + 1).to_owned());
                }
                join::part(&dy, &sizes, 0).to_owned()
            }
            Op::Add(r) => {
                send(sent, &r.name, dy.to_owned());
                dy.to_owned()
            }
            Op::Mul(r) => {
                let other = read(r)?;
                let bad = || internal(layer, "multiplies tensors whose shapes do not fit");
                let to_other = join::mul_backward(dy.view(), x.view(), other.shape()).ok_or_else(bad)?;
                send(sent, &r.name, to_other);
                join::mul_backward(dy.view(), other.view(), x.shape()).ok_or_else(bad)?
            }
            Op::From(r) => {
                send(sent, &r.name, dy.to_owned());
                ArrayD::from_elem(x.raw_dim(), T::ZERO)
            }
        })
    }

    /// Moves each batchnorm's running statistics in `buffers` toward the batch
    /// statistics its training-mode pass in `trace` kept.
    fn update_running(
        &self,
        seq: &[ir::Layer],
        slots: &[Slot],
        trace: &Trace<T>,
        buffers: &mut [ArrayD<T>],
    ) -> Result<(), Error> {
        for ((layer, slot), saved) in seq.iter().zip(slots).zip(&trace.saved) {
            match &layer.op {
                Op::BatchNorm(bn) => {
                    let Saved::BatchNorm(stats) = saved else {
                        return Err(internal(layer, "has no batch statistics"));
                    };
                    let [mean, var] = buffers
                        .get_disjoint_mut([slot.buffer, slot.buffer + 1])
                        .map_err(|_| internal(layer, "has no running statistics"))?;
                    batchnorm::update_running(vector_mut(mean, layer)?, vector_mut(var, layer)?, stats, bn.momentum);
                }
                Op::Residual(r) => {
                    let Saved::Residual { body, shortcut } = saved else {
                        return Err(internal(layer, "has no trace of its body"));
                    };
                    self.update_running(&r.body, &slot.body, body, buffers)?;
                    self.update_running(&r.shortcut, &slot.shortcut, shortcut, buffers)?;
                }
                Op::Conv(_)
                | Op::MaxPool(_)
                | Op::AvgPool(_)
                | Op::GlobalAvgPool
                | Op::Flatten
                | Op::Dense(_)
                | Op::Dropout(_)
                | Op::Activation(_)
                | Op::Softmax
                | Op::ConvTranspose(_)
                | Op::GlobalMaxPool
                | Op::Upsample(_)
                | Op::Concat(_)
                | Op::Add(_)
                | Op::Mul(_)
                | Op::From(_) => {}
            }
        }
        Ok(())
    }

    /// A conv or dense layer's weight, and its bias when it has one.
    fn weight_bias(
        &self,
        layer: &ir::Layer,
        slot: &Slot,
        bias: bool,
    ) -> Result<(ArrayViewD<'_, T>, Option<ArrayView1<'_, T>>), Error> {
        let weight = self
            .params
            .get(slot.param)
            .ok_or_else(|| internal(layer, "has no weight"))?
            .view();
        let bias = if bias {
            Some(self.vector_param(slot.param + 1, layer)?)
        } else {
            None
        };
        Ok((weight, bias))
    }

    fn vector_param(&self, k: usize, layer: &ir::Layer) -> Result<ArrayView1<'_, T>, Error> {
        self.params
            .get(k)
            .and_then(|p| p.view().into_dimensionality::<Ix1>().ok())
            .ok_or_else(|| internal(layer, "lacks a vector parameter"))
    }

    fn vector_buffer(&self, k: usize, layer: &ir::Layer) -> Result<ArrayView1<'_, T>, Error> {
        self.buffers
            .get(k)
            .and_then(|p| p.view().into_dimensionality::<Ix1>().ok())
            .ok_or_else(|| internal(layer, "lacks a running statistic"))
    }
}

/// The output `r` names, which the forward pass kept for the layer reading it.
fn kept<'o, T>(outputs: &'o Outputs<T>, r: &ir::Ref, layer: &ir::Layer) -> Result<&'o ArrayD<T>, Error> {
    outputs.get(&r.name).ok_or_else(|| {
        internal(
            layer,
            &format!("reads `{}`, which the forward pass did not keep", r.name),
        )
    })
}

/// Every buffer at its start: running mean 0, running variance 1.
fn initial_buffers<T: Real>(model: &ir::Model) -> Vec<ArrayD<T>> {
    model
        .buffers()
        .iter()
        .map(|b| {
            let start = if b.name.ends_with(".running_var") {
                T::ONE
            } else {
                T::ZERO
            };
            ArrayD::from_elem(IxDyn(&b.shape), start)
        })
        .collect()
}
