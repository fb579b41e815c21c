//! Optimizer updates over the model's one flat parameter buffer, as torch.optim.

/// `torch.optim.SGD` (dampening 0). `buf` is the momentum buffer; at `step == 1`
/// it starts as the gradient itself.
pub fn sgd(
    params: &mut [f32],
    grads: &[f32],
    buf: &mut [f32],
    lr: f32,
    momentum: f32,
    nesterov: bool,
    weight_decay: f32,
    step: u64,
) {
    if momentum == 0.0 {
        for (p, &g) in params.iter_mut().zip(grads) {
            *p -= lr * (g + weight_decay * *p);
        }
        return;
    }
    for ((p, &g), b) in params.iter_mut().zip(grads).zip(buf.iter_mut()) {
        let g = g + weight_decay * *p;
        *b = if step == 1 { g } else { momentum * *b + g };
        *p -= lr * if nesterov { g + momentum * *b } else { *b };
    }
}

/// `torch.optim.Adam` (L2 `weight_decay` added to the gradient) or, with
/// `decoupled`, `torch.optim.AdamW` (`p -= lr * wd * p` first).
pub fn adam(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    decoupled: bool,
    step: u64,
) {
    let bc1 = 1.0 - (beta1 as f64).powf(step as f64);
    let bc2 = 1.0 - (beta2 as f64).powf(step as f64);
    let step_size = (lr as f64 / bc1) as f32;
    let bc2_sqrt = bc2.sqrt() as f32;
    for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if decoupled {
            *p *= 1.0 - lr * weight_decay;
            g
        } else {
            g + weight_decay * *p
        };
        *m = beta1 * *m + (1.0 - beta1) * g;
        *v = beta2 * *v + (1.0 - beta2) * g * g;
        let denom = v.sqrt() / bc2_sqrt + eps;
        *p -= step_size * *m / denom;
    }
}
