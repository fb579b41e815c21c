//! The optimizers, as `torch.optim` computes them (tensors in `T`, scalars from
//! float64 hyperparameters). Weight decay is applied here, never in the gradients.

use super::real::Real;
use crate::ir;
use ndarray::{ArrayD, Zip};

/// The state of one optimizer over every parameter tensor. No state exists before
/// step 1, as in PyTorch.
#[derive(Debug, Clone)]
pub struct Optimizer<T = f32> {
    config: ir::Optimizer,
    weight_decay: f64,
    /// Steps taken so far.
    step: u32,
    /// SGD: the momentum buffers. Adam/AdamW: the first moments.
    first: Vec<ArrayD<T>>,
    /// Adam/AdamW: the second moments.
    second: Vec<ArrayD<T>>,
}

impl<T: Real> Optimizer<T> {
    pub fn new(config: ir::Optimizer, weight_decay: f64) -> Self {
        Optimizer {
            config,
            weight_decay,
            step: 0,
            first: Vec::new(),
            second: Vec::new(),
        }
    }

    /// The number of steps taken.
    pub fn steps(&self) -> u32 {
        self.step
    }

    /// One step over every parameter with its gradient, at learning rate `lr`;
    /// the parameters whose `trainable` flag is false (v3 `freeze`) are left as
    /// they are, with no weight decay.
    pub fn step(&mut self, params: &mut [ArrayD<T>], grads: &[ArrayD<T>], trainable: &[bool], lr: f64) {
        let first_step = self.step == 0;
        self.step += 1;
        if first_step {
            self.first = grads.iter().map(|g| ArrayD::from_elem(g.raw_dim(), T::ZERO)).collect();
            self.second = grads.iter().map(|g| ArrayD::from_elem(g.raw_dim(), T::ZERO)).collect();
        }
        let wd = self.weight_decay;
        for (k, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            if !trainable.get(k).copied().unwrap_or(true) {
                continue;
            }
            match self.config {
                ir::Optimizer::Sgd { momentum, nesterov, .. } => {
                    sgd(p, g, &mut self.first[k], first_step, lr, momentum, nesterov, wd)
                }
                ir::Optimizer::Adam { beta1, beta2, eps, .. } => {
                    let (m, v) = (&mut self.first[k], &mut self.second[k]);
                    adam(p, g, m, v, self.step, lr, beta1, beta2, eps, wd, false)
                }
                ir::Optimizer::AdamW { beta1, beta2, eps, .. } => {
                    let (m, v) = (&mut self.first[k], &mut self.second[k]);
                    adam(p, g, m, v, self.step, lr, beta1, beta2, eps, wd, true)
                }
            }
        }
    }
}

/// `torch.optim.SGD`, dampening 0:
/// `g += wd p; buf = g (step 1) or momentum buf + g; g = g + momentum buf (nesterov)
/// or buf; p -= lr g`.
#[allow(clippy::too_many_arguments)]
fn sgd<T: Real>(
    p: &mut ArrayD<T>,
    g: &ArrayD<T>,
    buf: &mut ArrayD<T>,
    first_step: bool,
    lr: f64,
    momentum: f64,
    nesterov: bool,
    wd: f64,
) {
    let (use_wd, use_momentum) = (wd != 0.0, momentum != 0.0);
    let (lr, momentum, wd) = (T::from_f64(lr), T::from_f64(momentum), T::from_f64(wd));
    Zip::from(p).and(g).and(buf).for_each(|p, &g, buf| {
        let mut d = g;
        if use_wd {
            d += wd * *p;
        }
        if use_momentum {
            *buf = if first_step { d } else { momentum * *buf + d };
            d = if nesterov { d + momentum * *buf } else { *buf };
        }
        *p -= lr * d;
    });
}

/// `torch.optim.Adam` (`decoupled = false`: `g += wd p`) and `torch.optim.AdamW`
/// (`decoupled = true`: `p *= 1 - lr wd` first), at step `t` (1-based):
/// `m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
/// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
#[allow(clippy::too_many_arguments)]
fn adam<T: Real>(
    p: &mut ArrayD<T>,
    g: &ArrayD<T>,
    m: &mut ArrayD<T>,
    v: &mut ArrayD<T>,
    t: u32,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    wd: f64,
    decoupled: bool,
) {
    let step_size = T::from_f64(lr / (1.0 - beta1.powi(t as i32)));
    let correction2_sqrt = T::from_f64((1.0 - beta2.powi(t as i32)).sqrt());
    let decay = T::from_f64(1.0 - lr * wd);
    let use_wd = wd != 0.0;
    // `1 - beta` in f64 first, as PyTorch passes it from Python: in f32, 1 - 0.999f32
    // is 1.3e-5 off 0.001, which moved a first step by up to 6.6e-6 of lr.
    let (b2, one_minus_b1, one_minus_b2) = (T::from_f64(beta2), T::from_f64(1.0 - beta1), T::from_f64(1.0 - beta2));
    let (eps, wd) = (T::from_f64(eps), T::from_f64(wd));
    Zip::from(p).and(g).and(m).and(v).for_each(|p, &g, m, v| {
        let mut d = g;
        if decoupled {
            *p *= decay;
        } else if use_wd {
            d += wd * *p;
        }
        *m += one_minus_b1 * (d - *m);
        *v = b2 * *v + one_minus_b2 * d * d;
        let denom = v.sqrt() / correction2_sqrt + eps;
        *p -= step_size * *m / denom;
    });
}
