//! Losses fused with the layer before them. Each returns the *sum* of its terms
//! over the given samples and writes the gradient of the *mean* over `total`
//! elements, so a batch processed in chunks gives the same numbers as one pass.

/// Softmax + cross-entropy: from the logits `z` and the softmax output `p`,
/// with label smoothing `s` (PyTorch's `label_smoothing`; 0 for none): the
/// target is `(1 - s) onehot + s / K`. Loss term `logsumexp(z) - (1 - s) z[label]
/// - s/K Σ z`; gradient wrt the logits `(p - target) / total`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy(
    z: &[f32],
    p: &[f32],
    labels: &[usize],
    dz: &mut [f32],
    classes: usize,
    total: usize,
    s: f32,
) -> f64 {
    let scale = 1.0 / total as f32;
    let spread = s / classes as f32;
    let mut loss = 0.0f64;
    for (i, &label) in labels.iter().enumerate() {
        let z = &z[i * classes..][..classes];
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = max as f64 + z.iter().map(|&v| ((v - max) as f64).exp()).sum::<f64>().ln();
        // With s = 0 these are exactly the plain terms: `lse - z[label]`, `p - onehot`.
        let sum: f64 = z.iter().map(|&v| v as f64).sum();
        loss += lse - (1.0 - s as f64) * z[label] as f64 - s as f64 / classes as f64 * sum;
        let dz = &mut dz[i * classes..][..classes];
        for (d, &p) in dz.iter_mut().zip(&p[i * classes..][..classes]) {
            *d = (p - spread) * scale;
        }
        dz[label] -= (1.0 - s) * scale;
    }
    loss
}

/// Sigmoid + binary cross-entropy from the logits: loss term
/// `max(z, 0) - z t + ln(1 + e^-|z|)`, stable for any z; gradient `(p - t) / total`.
#[inline(always)]
pub fn binary_cross_entropy(z: &[f32], p: &[f32], t: &[f32], dz: &mut [f32], total: usize) -> f64 {
    let scale = 1.0 / total as f32;
    let mut loss = 0.0f64;
    for (((&z, &p), &t), d) in z.iter().zip(p).zip(t).zip(dz.iter_mut()) {
        let z64 = z as f64;
        loss += z64.max(0.0) - z64 * t as f64 + (-z64.abs()).exp().ln_1p();
        *d = (p - t) * scale;
    }
    loss
}

/// Mean squared error: loss term `(y - t)^2`; gradient `2 (y - t) / total`.
#[inline(always)]
pub fn mse(y: &[f32], t: &[f32], dy: &mut [f32], total: usize) -> f64 {
    let scale = 2.0 / total as f32;
    let mut loss = 0.0f64;
    for ((&y, &t), d) in y.iter().zip(t).zip(dy.iter_mut()) {
        let e = y - t;
        loss += (e as f64) * (e as f64);
        *d = e * scale;
    }
    loss
}

// What training, evaluation, the confusion matrix and the distributed path all
// count as right, and what evaluation computes from a model's probabilities: one
// definition each, here.

/// The class an output row predicts: the index of its largest value, the first
/// on ties (as `torch.argmax`); NaN never wins.
#[inline(always)]
pub fn predicted_class(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold(0, |b, (j, &v)| if v > row[b] { j } else { b })
}

/// How many rows' predicted class is the label.
#[inline(always)]
pub fn count_correct(p: &[f32], labels: &[usize], classes: usize) -> usize {
    labels
        .iter()
        .zip(p.chunks_exact(classes))
        .filter(|(&label, row)| predicted_class(row) == label)
        .count()
}

/// Whether a binary output (a probability) and its target fall on the same side of 0.5.
#[inline(always)]
pub fn binary_correct(p: f32, t: f32) -> bool {
    (p > 0.5) == (t > 0.5)
}

/// `-ln p` of the label's probability, floored at the smallest normal float so a
/// confident mistake costs about 87 instead of infinity (evaluation's cross-entropy).
#[inline(always)]
pub fn nll(p: f32) -> f64 {
    -(p.max(f32::MIN_POSITIVE) as f64).ln()
}

/// Binary cross-entropy of a probability `p` against target `t`, each log clamped
/// at -100 as PyTorch's `BCELoss` (evaluation's binary cross-entropy).
#[inline(always)]
pub fn bce_of_probability(p: f32, t: f32) -> f64 {
    let (p, t) = (p as f64, t as f64);
    -(t * p.ln().max(-100.0) + (1.0 - t) * (1.0 - p).ln().max(-100.0))
}
