//! The instruction set the compute kernels use, chosen once per process: the
//! fastest this CPU has, unless `CNNC_KERNEL` or [`set_isa`] says otherwise.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

/// Which instruction set the inner loops use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust, vectorized by the compiler for the target's baseline.
    Portable,
    /// AVX2 + FMA, 256-bit vectors.
    Avx2,
    /// AVX-512F (with AVX2 + FMA), 512-bit vectors.
    Avx512,
}

impl Isa {
    /// Every instruction set, slowest first.
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    pub const fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the kernels.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            // AVX2 and FMA too: code built for AVX2 runs beside the AVX-512 products.
            Isa::Avx512 => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest instruction set this CPU can run (detected anew on each call;
    /// see [`selected`]).
    pub fn best() -> Isa {
        *Isa::ALL
            .iter()
            .rev()
            .find(|k| k.is_available())
            .unwrap_or(&Isa::Portable)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// [`set_isa`] was asked for an instruction set this CPU lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("instruction set {isa} is not supported by this CPU")]
pub struct Unsupported {
    pub isa: Isa,
}

/// 0: not chosen yet; otherwise 1 + the index in [`Isa::ALL`].
static SELECTED: AtomicU8 = AtomicU8::new(0);

/// The instruction set the kernels use: chosen on first use, the fastest
/// available unless the environment variable `CNNC_KERNEL` names another
/// (`portable`, `avx2`, `avx512`; one this CPU lacks is ignored).
pub fn selected() -> Isa {
    match SELECTED.load(Ordering::Relaxed) {
        0 => {
            let wanted = std::env::var("CNNC_KERNEL").ok();
            let isa = Isa::ALL
                .into_iter()
                .find(|k| wanted.as_deref() == Some(k.name()) && k.is_available())
                .unwrap_or_else(Isa::best);
            store(isa);
            isa
        }
        i => Isa::ALL[usize::from(i - 1)],
    }
}

/// Makes every later kernel call in this process use `isa` (for tests and
/// benchmarks that compare the paths).
pub fn set_isa(isa: Isa) -> Result<(), Unsupported> {
    if !isa.is_available() {
        return Err(Unsupported { isa });
    }
    store(isa);
    Ok(())
}

fn store(isa: Isa) {
    let index = Isa::ALL.iter().position(|&k| k == isa).unwrap_or(0);
    SELECTED.store(index as u8 + 1, Ordering::Relaxed);
}

/// The name of the selected instruction set, for benchmark reports.
pub fn selected_isa() -> &'static str {
    selected().name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_is_always_available_and_names_round_trip() {
        assert!(Isa::Portable.is_available());
        assert!(Isa::best().is_available());
        for isa in Isa::ALL {
            assert_eq!(isa.to_string(), isa.name());
        }
    }
}
