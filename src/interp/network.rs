//! The model's layers over one float type: the forward pass that keeps every
//! activation, the backward pass that walks them in reverse, and the loss between.
//! The model is a tree (a residual block holds a body and a shortcut sequence), so
//! both passes recurse into blocks: a block's output is `body(x) + shortcut(x)`, and
//! its input's gradient is the sum of the gradients both paths send back.

use super::real::Real;
use super::{activation, batchnorm, conv, dense, loss, pool, validate};
use crate::ir::{self, Activation, Loss, Op, Shape};
use crate::rt::{Error, Target};
use ndarray::{Array3, ArrayD, ArrayView1, ArrayView2, ArrayView4, ArrayViewD, ArrayViewMut1, Ix1, Ix2, Ix4, IxDyn};
use rand::{Rng, RngCore};

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
}

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
                | Op::Softmax => (Vec::new(), Vec::new()),
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
/// the order they were computed: a residual block's body and shortcut first.
fn collect_outputs<T>(seq: &[ir::Layer], trace: Trace<T>, out: &mut Vec<(String, ArrayD<T>)>) {
    // acts[0] is the sequence's input, acts[i + 1] the output of layer i.
    for ((layer, saved), y) in seq.iter().zip(trace.saved).zip(trace.acts.into_iter().skip(1)) {
        if let (Op::Residual(r), Saved::Residual { body, shortcut }) = (&layer.op, saved) {
            collect_outputs(&r.body, body, out);
            collect_outputs(&r.shortcut, shortcut, out);
        }
        out.push((layer.name.clone(), y));
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
        Network {
            model,
            params,
            buffers,
            slots,
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
        self.forward_seq(&self.model.layers, &self.slots, x, usize::MAX, &mut pass)
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
        let trace = self.forward_seq(layers, &self.slots, self.normalize(x)?, body, &mut pass)?;
        let out = trace.output().view();
        let (loss, grad) = match (loss_kind, target) {
            (Loss::CrossEntropy, Target::Labels(labels)) => {
                let smoothing = self.model.train.as_ref().map_or(0.0, |t| t.smoothing);
                let (l, g) = loss::cross_entropy(matrix(out, "the logits")?, labels.view(), smoothing);
                (l, g.into_dyn())
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
        let dx = self.backward_seq(layers, &self.slots, &trace, grad, &mut params)?;
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

    /// Runs the first `count` layers of `seq` (all of them when it is larger) on `x`.
    fn forward_seq(
        &self,
        seq: &[ir::Layer],
        slots: &[Slot],
        x: ArrayD<T>,
        count: usize,
        pass: &mut Pass<'_>,
    ) -> Result<Trace<T>, Error> {
        let mut trace = Trace {
            acts: vec![x],
            saved: Vec::new(),
        };
        for (layer, slot) in seq.iter().zip(slots).take(count) {
            let (y, saved) = self.forward_layer(layer, slot, trace.output().view(), pass)?;
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
    ) -> Result<(ArrayD<T>, Saved<T>), Error> {
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
            Op::Softmax => activation::softmax_forward(vector(x, layer)?).into_dyn(),
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
            Op::Residual(r) => {
                let body = self.forward_seq(&r.body, &slot.body, x.to_owned(), usize::MAX, pass)?;
                let shortcut = self.forward_seq(&r.shortcut, &slot.shortcut, x.to_owned(), usize::MAX, pass)?;
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
    fn backward_seq(
        &self,
        seq: &[ir::Layer],
        slots: &[Slot],
        trace: &Trace<T>,
        dy: ArrayD<T>,
        grads: &mut [ArrayD<T>],
    ) -> Result<ArrayD<T>, Error> {
        let mut grad = dy;
        for i in (0..trace.saved.len()).rev() {
            let (x, y) = (trace.acts[i].view(), trace.acts[i + 1].view());
            grad = self.backward_layer(&seq[i], &slots[i], x, y, &trace.saved[i], grad.view(), grads)?;
        }
        Ok(grad)
    }

    /// Takes dLoss/d(output of the layer), stores the layer's parameter gradients in
    /// `grads`, and returns dLoss/d(input of the layer).
    #[allow(clippy::too_many_arguments)]
    fn backward_layer(
        &self,
        layer: &ir::Layer,
        slot: &Slot,
        x: ArrayViewD<T>,
        y: ArrayViewD<T>,
        saved: &Saved<T>,
        dy: ArrayViewD<T>,
        grads: &mut [ArrayD<T>],
    ) -> Result<ArrayD<T>, Error> {
        Ok(match &layer.op {
            Op::Conv(c) => {
                let (w, _) = self.weight_bias(layer, slot, c.bias)?;
                let g = conv::backward(image(x, layer)?, image(w, layer)?, c, image(dy, layer)?);
                store(grads, slot.param, g.dw.into_dyn(), layer)?;
                if c.bias {
                    store(grads, slot.param + 1, g.db.into_dyn(), layer)?;
                }
                g.dx.into_dyn()
            }
            Op::MaxPool(win) => pool::max_backward(image(x, layer)?, win, image(dy, layer)?).into_dyn(),
            Op::AvgPool(win) => pool::avg_backward(image(x, layer)?, win, image(dy, layer)?).into_dyn(),
            Op::GlobalAvgPool => pool::global_avg_backward(image(x, layer)?, image(dy, layer)?).into_dyn(),
            Op::Flatten => reshape(dy, x.shape(), layer)?,
            Op::Dense(d) => {
                let (w, _) = self.weight_bias(layer, slot, d.bias)?;
                let g = dense::backward(vector(x, layer)?, vector(w, layer)?, vector(dy, layer)?);
                store(grads, slot.param, g.dw.into_dyn(), layer)?;
                if d.bias {
                    store(grads, slot.param + 1, g.db.into_dyn(), layer)?;
                }
                g.dx.into_dyn()
            }
            Op::Dropout(_) => match saved {
                Saved::Mask(mask) => activation::dropout_apply(dy, mask.view()),
                _ => dy.to_owned(),
            },
            Op::Softmax => activation::softmax_backward(vector(y, layer)?, vector(dy, layer)?).into_dyn(),
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
                // Both paths read the block's input: its gradient is their sum.
                let through_body = self.backward_seq(&r.body, &slot.body, body, dy.to_owned(), grads)?;
                let through_shortcut =
                    self.backward_seq(&r.shortcut, &slot.shortcut, shortcut, dy.to_owned(), grads)?;
                through_body + through_shortcut
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
                | Op::Softmax => {}
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

/// Stores a parameter gradient (each parameter is used once, so it is set, not added).
fn store<T>(grads: &mut [ArrayD<T>], k: usize, value: ArrayD<T>, layer: &ir::Layer) -> Result<(), Error> {
    let slot = grads
        .get_mut(k)
        .ok_or_else(|| internal(layer, "has no parameter slot"))?;
    *slot = value;
    Ok(())
}

fn to_real<T: Real>(v: f32) -> T {
    T::from_f64(v as f64)
}

/// An inconsistency in a hand-built IR (the checker never produces one).
fn internal(layer: &ir::Layer, what: &str) -> Error {
    Error::Config(format!(
        "layer {} {what} (the model IR is inconsistent: {} -> {})",
        layer.name, layer.input, layer.output
    ))
}

fn image<'a, T>(a: ArrayViewD<'a, T>, layer: &ir::Layer) -> Result<ArrayView4<'a, T>, Error> {
    let given = a.shape().to_vec();
    a.into_dimensionality::<Ix4>()
        .map_err(|_| internal(layer, &format!("needs a 4-D tensor, got shape {given:?}")))
}

fn vector<'a, T>(a: ArrayViewD<'a, T>, layer: &ir::Layer) -> Result<ArrayView2<'a, T>, Error> {
    let given = a.shape().to_vec();
    a.into_dimensionality::<Ix2>()
        .map_err(|_| internal(layer, &format!("needs a 2-D tensor, got shape {given:?}")))
}

/// `[N, C, ...]` as `[N, C, S]` (S the positions per channel; 1 for `[N, C]`).
fn per_channel<T: Real>(a: ArrayViewD<T>, layer: &ir::Layer) -> Result<Array3<T>, Error> {
    let shape = a.shape();
    if shape.len() < 2 {
        return Err(internal(
            layer,
            &format!("needs a batch of channels, got shape {shape:?}"),
        ));
    }
    let positions = shape[2..].iter().product();
    let values: Vec<T> = a.iter().copied().collect();
    Array3::from_shape_vec((shape[0], shape[1], positions), values)
        .map_err(|_| internal(layer, "cannot be viewed per channel"))
}

fn vector_mut<'a, T>(a: &'a mut ArrayD<T>, layer: &ir::Layer) -> Result<ArrayViewMut1<'a, T>, Error> {
    a.view_mut()
        .into_dimensionality::<Ix1>()
        .map_err(|_| internal(layer, "has running statistics that are not vectors"))
}

fn matrix<'a, T>(a: ArrayViewD<'a, T>, what: &str) -> Result<ArrayView2<'a, T>, Error> {
    let given = a.shape().to_vec();
    a.into_dimensionality::<Ix2>().map_err(|_| Error::Shape {
        what: what.to_string(),
        expected: "[N, classes]".to_string(),
        given,
    })
}

fn out_hw(layer: &ir::Layer) -> Result<(usize, usize), Error> {
    match layer.output {
        Shape::Image { h, w, .. } => Ok((h, w)),
        Shape::Vector(_) => Err(internal(layer, "has a vector output")),
    }
}

/// The same values in row-major (C, H, W) order, with a new shape.
fn reshape<T: Real>(a: ArrayViewD<T>, shape: &[usize], layer: &ir::Layer) -> Result<ArrayD<T>, Error> {
    let values: Vec<T> = a.iter().copied().collect();
    ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|_| internal(layer, &format!("cannot reshape to {shape:?}")))
}
