//! The model's layers over one float type: the forward pass that keeps every
//! activation, the backward pass that walks them in reverse, and the loss between.

use super::real::Real;
use super::{activation, conv, dense, loss, pool, validate};
use crate::ir::{self, Activation, Loss, Op, Shape};
use crate::rt::{Error, Target};
use ndarray::{ArrayD, ArrayView2, ArrayView4, ArrayViewD, Ix1, Ix2, Ix4, IxDyn};
use rand::{Rng, RngCore};

/// A checked model with parameters of type `T`, in the order of `ir::Model::params`.
#[derive(Debug, Clone)]
pub struct Network<T> {
    model: ir::Model,
    params: Vec<ArrayD<T>>,
    /// For each layer, the index in `params` of its weight (its bias follows).
    weight_index: Vec<Option<usize>>,
}

/// The loss and its gradients, in `T`.
#[derive(Debug, Clone)]
pub struct NetGradients<T> {
    pub loss: T,
    /// dLoss/dInput, `[N, ...input shape]`.
    pub input: ArrayD<T>,
    /// dLoss/dParam, in the order of the parameters.
    pub params: Vec<ArrayD<T>>,
}

/// Every activation of one forward pass: `acts[0]` is the input, `acts[i + 1]` the
/// output of layer `i`; `masks[i]` is layer `i`'s dropout mask.
struct Trace<T> {
    acts: Vec<ArrayD<T>>,
    masks: Vec<Option<ArrayD<T>>>,
}

impl<T: Real> Network<T> {
    /// A network with the given parameters, which must have the model's shapes.
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

    /// A network from parameters known to have the model's shapes.
    pub(crate) fn from_parts(model: ir::Model, params: Vec<ArrayD<T>>) -> Self {
        let mut next = 0;
        let weight_index = model
            .layers
            .iter()
            .map(|layer| {
                let has_params = !layer.params().is_empty();
                let index = has_params.then_some(next);
                if has_params {
                    next += 2;
                }
                index
            })
            .collect();
        Network {
            model,
            params,
            weight_index,
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

    /// Inference: every layer, dropout off. `x` is `[N, ...input shape]`.
    pub fn predict(&self, x: ArrayViewD<T>) -> Result<ArrayD<T>, Error> {
        validate::input(&self.model, x.view())?;
        let mut trace = self.forward(x.to_owned(), self.model.layers.len(), None)?;
        trace
            .acts
            .pop()
            .ok_or_else(|| Error::Config("the forward pass produced nothing".to_string()))
    }

    /// The loss of the model's train block and its gradients, in training mode:
    /// dropout draws its masks from `dropout` (no dropout when `None`).
    pub fn gradients(
        &self,
        x: ArrayViewD<T>,
        target: &Target<'_>,
        dropout: Option<&mut dyn RngCore>,
    ) -> Result<NetGradients<T>, Error> {
        let loss_kind = self.loss()?;
        validate::input(&self.model, x.view())?;
        validate::target(&self.model, loss_kind, x.shape()[0], target)?;
        let layers = &self.model.layers;
        // The fused losses start from the logits: the final softmax/sigmoid is not run.
        let body = match loss_kind {
            Loss::CrossEntropy | Loss::BinaryCrossEntropy => layers.len().saturating_sub(1),
            Loss::Mse => layers.len(),
        };
        let trace = self.forward(x.to_owned(), body, dropout)?;
        let out = trace.acts[body].view();
        let (loss, mut grad) = match (loss_kind, target) {
            (Loss::CrossEntropy, Target::Labels(labels)) => {
                let (l, g) = loss::cross_entropy(matrix(out, "the logits")?, labels.view());
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
        for i in (0..body).rev() {
            grad = self.backward_layer(i, &trace, grad.view(), &mut params)?;
        }
        Ok(NetGradients {
            loss,
            input: grad,
            params,
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

    /// Runs layers `0..count` on `x`.
    fn forward(&self, x: ArrayD<T>, count: usize, mut dropout: Option<&mut dyn RngCore>) -> Result<Trace<T>, Error> {
        let mut acts = vec![x];
        let mut masks = Vec::with_capacity(count);
        for (i, layer) in self.model.layers.iter().enumerate().take(count) {
            let x = acts[i].view();
            let mask = match (&layer.op, dropout.as_deref_mut()) {
                (Op::Dropout(p), Some(rng)) => Some(activation::dropout_mask(*p, x.shape(), || rng.random::<f64>())),
                _ => None,
            };
            let y = self.forward_layer(i, x, mask.as_ref())?;
            masks.push(mask);
            acts.push(y);
        }
        Ok(Trace { acts, masks })
    }

    fn forward_layer(&self, i: usize, x: ArrayViewD<T>, mask: Option<&ArrayD<T>>) -> Result<ArrayD<T>, Error> {
        let layer = &self.model.layers[i];
        let n = x.shape().first().copied().unwrap_or(0);
        Ok(match &layer.op {
            Op::Conv(c) => {
                let (w, b) = self.weight_bias(i)?;
                conv::forward(image(x, layer)?, image(w, layer)?, b, &c.window, out_hw(layer)?).into_dyn()
            }
            Op::MaxPool(win) => pool::max_forward(image(x, layer)?, win, out_hw(layer)?).into_dyn(),
            Op::AvgPool(win) => pool::avg_forward(image(x, layer)?, win, out_hw(layer)?).into_dyn(),
            Op::GlobalAvgPool => pool::global_avg_forward(image(x, layer)?).into_dyn(),
            Op::Flatten => reshape(x, &[n, layer.output.len()], layer)?,
            Op::Dense(_) => {
                let (w, b) = self.weight_bias(i)?;
                dense::forward(vector(x, layer)?, vector(w, layer)?, b).into_dyn()
            }
            Op::Dropout(_) => match mask {
                Some(mask) => activation::dropout_apply(x, mask.view()),
                None => x.to_owned(),
            },
            Op::Softmax => activation::softmax_forward(vector(x, layer)?).into_dyn(),
            Op::Activation(act) => activation::elementwise_forward(*act, x),
            Op::BatchNorm(_) | Op::Residual(_) => {
                return Err(internal(layer, "is not supported by the interpreter yet"))
            }
        })
    }

    /// Takes dLoss/d(output of layer i), adds the layer's parameter gradients to
    /// `grads`, and returns dLoss/d(input of layer i).
    fn backward_layer(
        &self,
        i: usize,
        trace: &Trace<T>,
        dy: ArrayViewD<T>,
        grads: &mut [ArrayD<T>],
    ) -> Result<ArrayD<T>, Error> {
        let layer = &self.model.layers[i];
        let x = trace.acts[i].view();
        let y = trace.acts[i + 1].view();
        Ok(match &layer.op {
            Op::Conv(c) => {
                let (w, _) = self.weight_bias(i)?;
                let g = conv::backward(image(x, layer)?, image(w, layer)?, &c.window, image(dy, layer)?);
                self.store(i, grads, g.dw.into_dyn(), g.db.into_dyn());
                g.dx.into_dyn()
            }
            Op::MaxPool(win) => pool::max_backward(image(x, layer)?, win, image(dy, layer)?).into_dyn(),
            Op::AvgPool(win) => pool::avg_backward(image(x, layer)?, win, image(dy, layer)?).into_dyn(),
            Op::GlobalAvgPool => pool::global_avg_backward(image(x, layer)?, image(dy, layer)?).into_dyn(),
            Op::Flatten => reshape(dy, x.shape(), layer)?,
            Op::Dense(_) => {
                let (w, _) = self.weight_bias(i)?;
                let g = dense::backward(vector(x, layer)?, vector(w, layer)?, vector(dy, layer)?);
                self.store(i, grads, g.dw.into_dyn(), g.db.into_dyn());
                g.dx.into_dyn()
            }
            Op::Dropout(_) => match &trace.masks[i] {
                Some(mask) => activation::dropout_apply(dy, mask.view()),
                None => dy.to_owned(),
            },
            Op::Softmax => activation::softmax_backward(vector(y, layer)?, vector(dy, layer)?).into_dyn(),
            Op::Activation(act) => activation::elementwise_backward(*act, x, y, dy),
            Op::BatchNorm(_) | Op::Residual(_) => {
                return Err(internal(layer, "is not supported by the interpreter yet"))
            }
        })
    }

    fn weight_bias(&self, i: usize) -> Result<(ArrayViewD<'_, T>, ndarray::ArrayView1<'_, T>), Error> {
        let layer = &self.model.layers[i];
        let k = self.weight_index[i].ok_or_else(|| internal(layer, "has no parameters"))?;
        let bias = self.params[k + 1]
            .view()
            .into_dimensionality::<Ix1>()
            .map_err(|_| internal(layer, "has a bias that is not a vector"))?;
        Ok((self.params[k].view(), bias))
    }

    fn store(&self, i: usize, grads: &mut [ArrayD<T>], dw: ArrayD<T>, db: ArrayD<T>) {
        if let Some(k) = self.weight_index[i] {
            grads[k] = dw;
            grads[k + 1] = db;
        }
    }
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
