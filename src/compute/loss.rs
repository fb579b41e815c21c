//! Losses fused with the layer before them. Each returns the *sum* of its terms
//! over the given samples and writes the gradient of the *mean* over `total`
//! elements, so a batch processed in chunks gives the same numbers as one pass.

/// The shape of a cross-entropy output: `classes` values at each of `area`
/// positions per sample (`area` 1 for a vector output; a label map's H·W for a
/// per-position softmax), and the label that does not count (`ignore L`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classes {
    pub classes: usize,
    pub area: usize,
    pub ignore: Option<usize>,
}

impl Classes {
    /// The labels that count, of those given.
    pub fn counted(&self, labels: &[usize]) -> usize {
        labels.iter().filter(|&&l| Some(l) != self.ignore).count()
    }
}

/// Softmax + cross-entropy: from the logits `z` and the softmax output `p`,
/// with label smoothing `s` (PyTorch's `label_smoothing`; 0 for none): the
/// target is `(1 - s) onehot + s / K`. Loss term `logsumexp(z) - (1 - s) z[label]
/// - s/K Σ z`; gradient wrt the logits `(p - target) / total`. One label per
/// sample and position (`labels[i·area + q]`, class `j` of it at
/// `z[(i·K + j)·area + q]`); positions labelled `ignore` add nothing and get a
/// zero gradient, and `total` counts the others (PyTorch's `ignore_index`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy(
    z: &[f32],
    p: &[f32],
    labels: &[usize],
    dz: &mut [f32],
    shape: Classes,
    total: usize,
    s: f32,
) -> f64 {
    let Classes { classes, area, ignore } = shape;
    let scale = if total == 0 { 0.0 } else { 1.0 / total as f32 };
    let spread = s / classes as f32;
    let mut loss = 0.0f64;
    for (at, &label) in labels.iter().enumerate() {
        let (i, q) = (at / area, at % area);
        let index = |j: usize| (i * classes + j) * area + q;
        if Some(label) == ignore {
            for j in 0..classes {
                dz[index(j)] = 0.0;
            }
            continue;
        }
        let max = (0..classes).map(|j| z[index(j)]).fold(f32::NEG_INFINITY, f32::max);
        let lse = max as f64
            + (0..classes)
                .map(|j| ((z[index(j)] - max) as f64).exp())
                .sum::<f64>()
                .ln();
        // With s = 0 these are exactly the plain terms: `lse - z[label]`, `p - onehot`.
        let sum: f64 = (0..classes).map(|j| z[index(j)] as f64).sum();
        loss += lse - (1.0 - s as f64) * z[index(label)] as f64 - s as f64 / classes as f64 * sum;
        for j in 0..classes {
            dz[index(j)] = (p[index(j)] - spread) * scale;
        }
        dz[index(label)] -= (1.0 - s) * scale;
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

/// How many samples' (or positions') predicted class is the label; ignored
/// labels count neither way.
#[inline(always)]
pub fn count_correct(p: &[f32], labels: &[usize], shape: Classes) -> usize {
    let Classes { classes, area, ignore } = shape;
    if area == 1 {
        return labels
            .iter()
            .zip(p.chunks_exact(classes))
            .filter(|(&label, row)| Some(label) != ignore && predicted_class(row) == label)
            .count();
    }
    labels
        .iter()
        .enumerate()
        .filter(|&(at, &label)| Some(label) != ignore && predicted_class_at(p, shape, at) == label)
        .count()
}

/// [`predicted_class`] at label index `at` of a per-position output (`shape.area`
/// positions per sample, class `j` of position `q` of sample `i` at
/// `p[(i·K + j)·area + q]`): the first largest class, as `torch.argmax(dim=1)`.
#[inline(always)]
pub fn predicted_class_at(p: &[f32], shape: Classes, at: usize) -> usize {
    let Classes { classes, area, .. } = shape;
    let (i, q) = (at / area, at % area);
    let value = |j: usize| p[(i * classes + j) * area + q];
    (0..classes).fold(0, |b, j| if value(j) > value(b) { j } else { b })
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
