//! The machine's single-thread FP32 FMA peak, measured with a register-only loop.

use super::isa::Isa;
use std::time::Instant;

/// Independent FMA chains per loop round: enough to cover FMA latency times
/// throughput on current x86 cores (4 cycles x 2 pipes).
const CHAINS: usize = 12;

/// The single-thread FP32 FMA rate, in GFLOP/s, on the widest vectors this CPU
/// has (AVX-512 if available). Best of a few runs of about 20 ms each.
pub fn measure_peak_gflops() -> f64 {
    measure_peak_gflops_with(Isa::best())
}

/// The single-thread FP32 FMA rate with the vector width of `kernel`: 16 lanes for
/// AVX-512, 8 for AVX2, the compiler's choice for portable code. Zero if the CPU
/// cannot run `kernel`. Timed with [`Clock`].
pub fn measure_peak_gflops_with(kernel: Isa) -> f64 {
    if !kernel.is_available() {
        return 0.0;
    }
    // About 0.1 s per run, long enough for the run-time clock's tick-sized
    // steps (a few milliseconds) not to matter.
    let iterations = 20_000_000u64;
    let mut best: f64 = 0.0;
    for _ in 0..5 {
        let start = Clock::start();
        let flops = fma_loop(kernel, iterations);
        best = best.max(flops / start.seconds() / 1e9);
    }
    best
}

/// Elapsed time of the calling thread on a CPU: Linux's per-thread run time
/// (`/proc/thread-self/schedstat`, nanoseconds), so time the thread spends
/// waiting while other processes share its core does not count; wall time
/// elsewhere. For benchmarks on shared machines. The run time advances in steps
/// of up to a scheduler tick (a few milliseconds): time intervals of 0.1 s or more.
pub struct Clock {
    wall: Instant,
    cpu_ns: Option<u64>,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            cpu_ns: thread_cpu_ns(),
            wall: Instant::now(),
        }
    }

    /// Seconds since [`Clock::start`], at least a nanosecond.
    pub fn seconds(&self) -> f64 {
        let s = match (self.cpu_ns, thread_cpu_ns()) {
            (Some(a), Some(b)) if b > a => (b - a) as f64 * 1e-9,
            _ => self.wall.elapsed().as_secs_f64(),
        };
        s.max(1e-9)
    }
}

/// The calling thread's total run time in nanoseconds, where the system says.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// FLOPs done by `iterations` rounds of `CHAINS` independent FMAs.
fn fma_loop(kernel: Isa, iterations: u64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    match kernel {
        Isa::Avx512 => {
            // SAFETY: the caller checked that the CPU supports AVX-512F.
            std::hint::black_box(unsafe { fma_avx512(iterations) });
            return iterations as f64 * (CHAINS * 16 * 2) as f64;
        }
        Isa::Avx2 => {
            // SAFETY: the caller checked that the CPU supports AVX2 and FMA.
            std::hint::black_box(unsafe { fma_avx2(iterations) });
            return iterations as f64 * (CHAINS * 8 * 2) as f64;
        }
        Isa::Portable => {}
    }
    let _ = kernel;
    let mut acc = [1.0f32; CHAINS];
    for _ in 0..iterations {
        for a in acc.iter_mut() {
            *a = *a * 0.999_999 + 1e-7;
        }
        acc = std::hint::black_box(acc);
    }
    iterations as f64 * (CHAINS * 2) as f64
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_avx512(iterations: u64) -> f32 {
    use std::arch::x86_64::*;
    let (m, a) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    let mut r = [_mm512_set1_ps(1.0); CHAINS];
    for _ in 0..iterations {
        for v in r.iter_mut() {
            *v = _mm512_fmadd_ps(*v, m, a);
        }
    }
    let mut total = _mm512_setzero_ps();
    for v in r {
        total = _mm512_add_ps(total, v);
    }
    _mm512_reduce_add_ps(total)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_avx2(iterations: u64) -> f32 {
    use std::arch::x86_64::*;
    let (m, a) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    let mut r = [_mm256_set1_ps(1.0); CHAINS];
    for _ in 0..iterations {
        for v in r.iter_mut() {
            *v = _mm256_fmadd_ps(*v, m, a);
        }
    }
    let mut total = _mm256_setzero_ps();
    for v in r {
        total = _mm256_add_ps(total, v);
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` has room for the 8 floats that an unaligned store writes.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), total) };
    lanes.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_is_positive() {
        assert!(fma_loop(Isa::Portable, 1000) > 0.0);
    }

    #[test]
    fn clock_advances_with_work() {
        let clock = Clock::start();
        std::hint::black_box(fma_loop(Isa::Portable, 200_000));
        assert!(clock.seconds() > 0.0);
    }
}
