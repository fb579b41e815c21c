//! Dropout masks that depend on the seed, the training step, the layer and the
//! sample's index in the batch, and on nothing else: a seeded run gives the same
//! weights whatever the number of threads that splits the batch.

/// SplitMix64's output function: a bijective mix of 64 bits.
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random stream of one sample: SplitMix64 started from a hash of
/// `(seed, step, layer, sample)`.
#[derive(Debug, Clone)]
pub struct SampleStream(u64);

impl SampleStream {
    #[inline(always)]
    pub fn new(seed: u64, step: u64, layer: u64, sample: u64) -> Self {
        let mut h = mix(seed ^ 0x5DEE_CE66_D1CE_4E5B);
        h = mix(h ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        h = mix(h ^ layer.wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
        SampleStream(mix(h ^ sample.wrapping_mul(0x1656_67B1_9E37_79F9)))
    }

    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in [0, 1), 24 bits.
    #[inline(always)]
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Dropout in training over `n` samples of `len` values, the first being sample
/// `first` of the batch: `y = x * mask`, the mask 0 with probability `p`, else
/// `1/(1-p)` (inverted scaling).
#[inline(always)]
pub fn forward(
    p: f32,
    seed: u64,
    step: u64,
    layer: u64,
    first: usize,
    x: &[f32],
    y: &mut [f32],
    mask: &mut [f32],
    n: usize,
    len: usize,
) {
    let keep = 1.0 / (1.0 - p);
    for s in 0..n {
        let mut rng = SampleStream::new(seed, step, layer, (first + s) as u64);
        let range = s * len..(s + 1) * len;
        for ((y, &x), m) in y[range.clone()].iter_mut().zip(&x[range.clone()]).zip(&mut mask[range]) {
            *m = if rng.next_f32() < p { 0.0 } else { keep };
            *y = x * *m;
        }
    }
}

/// `dx = dy * mask`.
#[inline(always)]
pub fn backward(mask: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((dx, &dy), &m) in dx.iter_mut().zip(dy).zip(mask) {
        *dx = dy * m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_mask_does_not_depend_on_how_the_batch_is_split() {
        let (len, n) = (50, 6);
        let x = vec![1.0f32; n * len];
        let mut whole = vec![0.0; n * len];
        let mut mask = vec![0.0; n * len];
        forward(0.3, 7, 2, 1, 0, &x, &mut whole, &mut mask, n, len);
        let mut parts = vec![0.0; n * len];
        let (a, b) = parts.split_at_mut(2 * len);
        let (ma, mb) = mask.split_at_mut(2 * len);
        forward(0.3, 7, 2, 1, 0, &x[..2 * len], a, ma, 2, len);
        forward(0.3, 7, 2, 1, 2, &x[2 * len..], b, mb, 4, len);
        assert_eq!(whole, parts);
        let dropped = whole.iter().filter(|&&v| v == 0.0).count() as f64 / (n * len) as f64;
        assert!((0.2..0.4).contains(&dropped), "{dropped}");
        // Another step draws another mask.
        let mut other = vec![0.0; n * len];
        forward(0.3, 7, 3, 1, 0, &x, &mut other, &mut mask, n, len);
        assert_ne!(whole, other);
    }
}
