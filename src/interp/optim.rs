//! The optimizers, as `torch.optim` computes them (float32 tensors, scalars from
//! float64 hyperparameters). Weight decay is applied here, never in the gradients.

use crate::ir;
use ndarray::{ArrayD, Zip};

/// The state of one optimizer over every parameter tensor. No state exists before
/// step 1, as in PyTorch.
#[derive(Debug, Clone)]
pub struct Optimizer {
    config: ir::Optimizer,
    weight_decay: f64,
    /// Steps taken so far.
    step: u32,
    /// SGD: the momentum buffers. Adam/AdamW: the first moments.
    first: Vec<ArrayD<f32>>,
    /// Adam/AdamW: the second moments.
    second: Vec<ArrayD<f32>>,
}

impl Optimizer {
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

    /// One step over every parameter with its gradient, at learning rate `lr`.
    pub fn step(&mut self, params: &mut [ArrayD<f32>], grads: &[ArrayD<f32>], lr: f64) {
        let first_step = self.step == 0;
        self.step += 1;
        if first_step {
            self.first = grads.iter().map(|g| ArrayD::zeros(g.raw_dim())).collect();
            self.second = grads.iter().map(|g| ArrayD::zeros(g.raw_dim())).collect();
        }
        let wd = self.weight_decay;
        for (k, (p, g)) in params.iter_mut().zip(grads).enumerate() {
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
fn sgd(
    p: &mut ArrayD<f32>,
    g: &ArrayD<f32>,
    buf: &mut ArrayD<f32>,
    first_step: bool,
    lr: f64,
    momentum: f64,
    nesterov: bool,
    wd: f64,
) {
    let (lr, momentum, wd) = (lr as f32, momentum as f32, wd as f32);
    Zip::from(p).and(g).and(buf).for_each(|p, &g, buf| {
        let mut d = g;
        if wd != 0.0 {
            d += wd * *p;
        }
        if momentum != 0.0 {
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
fn adam(
    p: &mut ArrayD<f32>,
    g: &ArrayD<f32>,
    m: &mut ArrayD<f32>,
    v: &mut ArrayD<f32>,
    t: u32,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    wd: f64,
    decoupled: bool,
) {
    let step_size = (lr / (1.0 - beta1.powi(t as i32))) as f32;
    let correction2_sqrt = (1.0 - beta2.powi(t as i32)).sqrt() as f32;
    let decay = (1.0 - lr * wd) as f32;
    let (b1, b2, eps, wd) = (beta1 as f32, beta2 as f32, eps as f32, wd as f32);
    Zip::from(p).and(g).and(m).and(v).for_each(|p, &g, m, v| {
        let mut d = g;
        if decoupled {
            *p *= decay;
        } else if wd != 0.0 {
            d += wd * *p;
        }
        *m += (1.0 - b1) * (d - *m);
        *v = b2 * *v + (1.0 - b2) * d * d;
        let denom = v.sqrt() / correction2_sqrt + eps;
        *p -= step_size * *m / denom;
    });
}
