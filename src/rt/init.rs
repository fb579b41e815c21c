//! The spec's seeded initialization: weights by [`InitScheme`], biases 0. The
//! stream is ChaCha8 (stable across platforms and crate versions), consumed in
//! layer order, so the interpreter and generated code draw the same numbers.

use crate::ir::InitScheme;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Draws the initial weights of a model, one layer after another.
pub struct Initializer {
    rng: ChaCha8Rng,
}

impl Initializer {
    pub fn new(seed: u64) -> Self {
        Initializer {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// `len` weights drawn by `scheme`.
    pub fn weights(&mut self, scheme: InitScheme, len: usize) -> Vec<f32> {
        match scheme {
            InitScheme::HeNormal { fan_in, negative_slope } => {
                let a = negative_slope as f64;
                let std = (2.0 / ((1.0 + a * a) * fan_in.max(1) as f64)).sqrt();
                (0..len)
                    .map(|_| {
                        let z: f64 = StandardNormal.sample(&mut self.rng);
                        (z * std) as f32
                    })
                    .collect()
            }
            InitScheme::XavierUniform { fan_in, fan_out } => {
                let bound = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
                (0..len).map(|_| self.rng.random_range(-bound..bound) as f32).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_scaled() {
        let scheme = InitScheme::HeNormal {
            fan_in: 50,
            negative_slope: 0.0,
        };
        let a = Initializer::new(7).weights(scheme, 10_000);
        let b = Initializer::new(7).weights(scheme, 10_000);
        assert_eq!(a, b);
        let var = a.iter().map(|v| (v * v) as f64).sum::<f64>() / a.len() as f64;
        assert!((var - 2.0 / 50.0).abs() < 0.004, "variance {var}");
        let u = Initializer::new(1).weights(InitScheme::XavierUniform { fan_in: 3, fan_out: 3 }, 1000);
        assert!(u.iter().all(|v| v.abs() <= 1.0) && u.iter().any(|v| v.abs() > 0.9));
    }
}
