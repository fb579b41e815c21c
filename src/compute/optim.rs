//! Optimizer updates over the model's one flat parameter buffer, as torch.optim.
//!
//! Each update is one elementwise loop (`*_body`), built for AVX2 + FMA and for the
//! baseline and chosen at run time like the matrix products; Rust does not fuse
//! `a * b + c`, so both builds round alike. Buffers longer than [`SPLIT`] are
//! updated in two halves on two threads.

#[cfg(target_arch = "x86_64")]
use super::gemm::{selected, Isa};

/// Parameters above which an update runs on two threads.
pub const SPLIT: usize = 1 << 16;

/// Splits `buf` at `mid`, or gives two empty halves when it is shorter (an
/// optimizer state that this configuration does not use).
fn halves(buf: &mut [f32], mid: usize) -> (&mut [f32], &mut [f32]) {
    if buf.len() > mid {
        buf.split_at_mut(mid)
    } else {
        (&mut [], &mut [])
    }
}

/// Runs `update(params, grads, state1, state2)` once, or on the two halves of every
/// buffer on two threads when there are more than [`SPLIT`] parameters.
fn in_halves(
    params: &mut [f32],
    grads: &[f32],
    state1: &mut [f32],
    state2: &mut [f32],
    update: &(impl Fn(&mut [f32], &[f32], &mut [f32], &mut [f32]) + Sync),
) {
    if params.len() > SPLIT && grads.len() >= params.len() {
        let mid = params.len() / 2;
        let (p0, p1) = params.split_at_mut(mid);
        let (g0, g1) = grads.split_at(mid);
        let (a0, a1) = halves(state1, mid);
        let (b0, b1) = halves(state2, mid);
        rayon::join(|| update(p0, g0, a0, b0), || update(p1, g1, a1, b1));
    } else {
        update(params, grads, state1, state2);
    }
}

/// Whether the AVX2 build may run: the chosen matrix kernel is an x86 one, and
/// both imply AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    selected() != Isa::Portable
}

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
    let update = |p: &mut [f32], g: &[f32], b: &mut [f32], _: &mut [f32]| {
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            // SAFETY: `avx2()` holds only when the CPU has AVX2 and FMA.
            return unsafe { sgd_avx2(p, g, b, lr, momentum, nesterov, weight_decay, step) };
        }
        sgd_body(p, g, b, lr, momentum, nesterov, weight_decay, step)
    };
    in_halves(params, grads, buf, &mut [], &update);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn sgd_avx2(p: &mut [f32], g: &[f32], b: &mut [f32], lr: f32, mu: f32, nesterov: bool, wd: f32, step: u64) {
    sgd_body(p, g, b, lr, mu, nesterov, wd, step)
}

#[inline(always)]
fn sgd_body(
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
    let c = AdamConsts {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        decoupled,
        step_size,
        bc2_sqrt,
    };
    let update = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            // SAFETY: `avx2()` holds only when the CPU has AVX2 and FMA.
            return unsafe { adam_avx2(p, g, m, v, &c) };
        }
        adam_body(p, g, m, v, &c)
    };
    in_halves(params, grads, m, v, &update);
}

/// One Adam step's constants.
struct AdamConsts {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    decoupled: bool,
    step_size: f32,
    bc2_sqrt: f32,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn adam_avx2(params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32], c: &AdamConsts) {
    adam_body(params, grads, m, v, c)
}

#[inline(always)]
fn adam_body(params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32], c: &AdamConsts) {
    for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if c.decoupled {
            *p *= 1.0 - c.lr * c.weight_decay;
            g
        } else {
            g + c.weight_decay * *p
        };
        *m = c.beta1 * *m + (1.0 - c.beta1) * g;
        *v = c.beta2 * *v + (1.0 - c.beta2) * g * g;
        let denom = v.sqrt() / c.bc2_sqrt + c.eps;
        *p -= c.step_size * *m / denom;
    }
}
