//! Single-precision matrix multiply, `C (+)= A·B`, for the conv and dense kernels.
//!
//! BLIS structure: blocks of B (KC x NC) and A (MC x KC) are packed into the
//! caller's workspace as panels, then a register-blocked MR x NR micro-kernel
//! runs over them with its accumulators in registers. Matrices are given with
//! row and column strides, so transposes cost nothing.
//!
//! The micro-kernel is written once over fixed-size arrays and compiled three
//! times: for AVX-512, for AVX2 + FMA, and portable. The widest one the CPU
//! has is chosen at run time, once, so a plain `cargo build --release` is fast.

use std::sync::atomic::{AtomicU8, Ordering};

/// A read-only matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Mat { data, rs: cols, cs: 1 }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn rows_t(data: &'a [f32], cols: usize) -> Self {
        Mat { data, rs: 1, cs: cols }
    }

    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// The instruction sets a micro-kernel is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    /// The widest one this CPU has (detected once).
    pub fn detect() -> Isa {
        static CACHE: AtomicU8 = AtomicU8::new(0);
        match CACHE.load(Ordering::Relaxed) {
            1 => Isa::Avx512,
            2 => Isa::Avx2,
            3 => Isa::Portable,
            _ => {
                let isa = Isa::probe();
                CACHE.store(
                    match isa {
                        Isa::Avx512 => 1,
                        Isa::Avx2 => 2,
                        Isa::Portable => 3,
                    },
                    Ordering::Relaxed,
                );
                isa
            }
        }
    }

    fn probe() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// Whether this CPU can run code compiled for `self`.
    pub fn available(self) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Avx2 => matches!(Isa::detect(), Isa::Avx2 | Isa::Avx512),
            Isa::Avx512 => Isa::detect() == Isa::Avx512,
        }
    }
}

/// Rows of C per micro-tile and columns per micro-tile, the largest over the ISAs.
/// (Tiles of 8 or more rows defeat LLVM's full unrolling of the accumulator array
/// and run ~30x slower: AVX-512 uses 6 x 32, AVX2 6 x 16, portable 4 x 16.)
const MR_MAX: usize = 8;
const NR_MAX: usize = 32;
/// Cache blocking: depth, rows of A and columns of B per packed block.
const KC: usize = 256;
const MC: usize = 96;
const NC: usize = 2048;

/// The workspace `sgemm` needs for an `m x n x k` product.
pub const fn workspace_len(m: usize, n: usize, k: usize) -> usize {
    let kc = if k < KC { k } else { KC };
    let mc = if m < MC { m } else { MC };
    let nc = if n < NC { n } else { NC };
    kc * (mc + MR_MAX + nc + NR_MAX)
}

/// `C = A·B` (or `C += A·B` with `accumulate`), A `m x k`, B `k x n`, C `m x n`
/// row-major with row stride `ldc`. `work` holds at least `workspace_len(m, n, k)`.
///
/// # Panics
/// When a slice is too short for the sizes given: generated code passes
/// constant sizes checked when the model was compiled, so this is a bug.
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: Mat,
    b: Mat,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    work: &mut [f32],
) {
    sgemm_with(Isa::detect(), m, n, k, a, b, c, ldc, accumulate, work)
}

/// [`sgemm`] on a given instruction set (for tests and benchmarks); falls back to
/// portable code when the CPU lacks it.
pub fn sgemm_with(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: Mat,
    b: Mat,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    work: &mut [f32],
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        c.len() >= (m - 1) * ldc + n && ldc >= n,
        "sgemm: C holds {} values, {m}x{n} with row stride {ldc} needs {}",
        c.len(),
        (m - 1) * ldc + n
    );
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                c[i * ldc..i * ldc + n].fill(0.0);
            }
        }
        return;
    }
    let last = |x: &Mat, rows: usize, cols: usize| (rows - 1) * x.rs + (cols - 1) * x.cs;
    assert!(a.data.len() > last(&a, m, k), "sgemm: A is too short for {m}x{k}");
    assert!(b.data.len() > last(&b, k, n), "sgemm: B is too short for {k}x{n}");
    assert!(
        work.len() >= workspace_len(m, n, k),
        "sgemm: the workspace is too short"
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if isa.available() => {
            // SAFETY: the CPU supports AVX-512F and FMA (checked by `available`).
            unsafe { gemm_avx512(m, n, k, a, b, c, ldc, accumulate, work) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if isa.available() => {
            // SAFETY: the CPU supports AVX2 and FMA (checked by `available`).
            unsafe { gemm_avx2(m, n, k, a, b, c, ldc, accumulate, work) }
        }
        _ => blocked::<4, 16, false>(m, n, k, a, b, c, ldc, accumulate, work),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn gemm_avx512(m: usize, n: usize, k: usize, a: Mat, b: Mat, c: &mut [f32], ldc: usize, acc: bool, work: &mut [f32]) {
    blocked::<6, 32, true>(m, n, k, a, b, c, ldc, acc, work)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gemm_avx2(m: usize, n: usize, k: usize, a: Mat, b: Mat, c: &mut [f32], ldc: usize, acc: bool, work: &mut [f32]) {
    blocked::<6, 16, true>(m, n, k, a, b, c, ldc, acc, work)
}

/// The blocked loops around the micro-kernel; inlined into each ISA's function so
/// it is compiled with that ISA's features.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn blocked<const MR: usize, const NR: usize, const FMA: bool>(
    m: usize,
    n: usize,
    k: usize,
    a: Mat,
    b: Mat,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    work: &mut [f32],
) {
    let kc_max = k.min(KC);
    // Panels round the rows up to a multiple of MR, at most MR_MAX - 1 more.
    let (apack, bpack) = work.split_at_mut(kc_max * (m.min(MC) + MR_MAX));
    for jc in (0..n).step_by(NC) {
        let nc = (n - jc).min(NC);
        let b_panels = nc.div_ceil(NR);
        for pc in (0..k).step_by(KC) {
            let kc = (k - pc).min(KC);
            pack_b::<NR>(&b, pc, jc, kc, nc, bpack);
            let add = accumulate || pc > 0;
            for ic in (0..m).step_by(MC) {
                let mc = (m - ic).min(MC);
                pack_a::<MR>(&a, ic, pc, mc, kc, apack);
                for jp in 0..b_panels {
                    let bp = &bpack[jp * kc * NR..][..kc * NR];
                    let j0 = jc + jp * NR;
                    let cols = (n - j0).min(NR);
                    for ip in 0..mc.div_ceil(MR) {
                        let ap = &apack[ip * kc * MR..][..kc * MR];
                        let i0 = ic + ip * MR;
                        let rows = (m - i0).min(MR);
                        let tile = micro::<MR, NR, FMA>(kc, ap, bp);
                        for (i, row) in tile.iter().enumerate().take(rows) {
                            let out = &mut c[(i0 + i) * ldc + j0..][..cols];
                            if add {
                                for (o, v) in out.iter_mut().zip(row) {
                                    *o += v;
                                }
                            } else {
                                out.copy_from_slice(&row[..cols]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The MR x NR tile of `A_panel · B_panel` over depth `kc`, accumulated in registers.
#[inline(always)]
fn micro<const MR: usize, const NR: usize, const FMA: bool>(kc: usize, a: &[f32], b: &[f32]) -> [[f32; NR]; MR] {
    let mut acc = [[0.0f32; NR]; MR];
    for (av, bv) in a.chunks_exact(MR).zip(b.chunks_exact(NR)).take(kc) {
        for i in 0..MR {
            let ai = av[i];
            for j in 0..NR {
                acc[i][j] = if FMA {
                    ai.mul_add(bv[j], acc[i][j])
                } else {
                    acc[i][j] + ai * bv[j]
                };
            }
        }
    }
    acc
}

/// Packs rows `i0..i0+mc`, depth `p0..p0+kc` of A into MR-row panels, each stored
/// depth-major (`MR` values per depth step), zero-padded past `mc`.
#[inline(always)]
fn pack_a<const MR: usize>(a: &Mat, i0: usize, p0: usize, mc: usize, kc: usize, out: &mut [f32]) {
    for ip in 0..mc.div_ceil(MR) {
        let panel = &mut out[ip * kc * MR..][..kc * MR];
        let rows = (mc - ip * MR).min(MR);
        for (p, dst) in panel.chunks_exact_mut(MR).enumerate() {
            for (i, d) in dst.iter_mut().enumerate() {
                *d = if i < rows { a.at(i0 + ip * MR + i, p0 + p) } else { 0.0 };
            }
        }
    }
}

/// Packs depth `p0..p0+kc`, columns `j0..j0+nc` of B into NR-column panels, each
/// stored depth-major (`NR` values per depth step), zero-padded past `nc`.
#[inline(always)]
fn pack_b<const NR: usize>(b: &Mat, p0: usize, j0: usize, kc: usize, nc: usize, out: &mut [f32]) {
    for jp in 0..nc.div_ceil(NR) {
        let panel = &mut out[jp * kc * NR..][..kc * NR];
        let cols = (nc - jp * NR).min(NR);
        for (p, dst) in panel.chunks_exact_mut(NR).enumerate() {
            if b.cs == 1 && cols == NR {
                let start = (p0 + p) * b.rs + j0 + jp * NR;
                dst.copy_from_slice(&b.data[start..start + NR]);
            } else {
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = if j < cols { b.at(p0 + p, j0 + jp * NR + j) } else { 0.0 };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &Mat, b: &Mat) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a.at(i, p) as f64 * b.at(p, j) as f64).sum::<f64>() as f32;
            }
        }
        c
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.0 - 1.0)
            .collect()
    }

    #[test]
    fn every_isa_matches_the_naive_product() {
        let shapes = [
            (1, 1, 1),
            (3, 5, 7),
            (8, 32, 256),
            (9, 33, 257),
            (6, 784, 25),
            (16, 100, 150),
            (64, 10, 84),
            (17, 3, 600),
            (100, 70, 3),
        ];
        for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|i| i.available())
        {
            for &(m, n, k) in &shapes {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    let (av, bv) = (values(m * k, 1), values(k * n, 2));
                    let a = if ta { Mat::rows_t(&av, m) } else { Mat::rows(&av, k) };
                    let b = if tb { Mat::rows_t(&bv, k) } else { Mat::rows(&bv, n) };
                    let want = naive(m, n, k, &a, &b);
                    let mut work = vec![f32::NAN; workspace_len(m, n, k)];
                    // beta 0 ignores NaN garbage in C.
                    let mut c = vec![f32::NAN; m * n];
                    sgemm_with(isa, m, n, k, a, b, &mut c, n, false, &mut work);
                    for (g, w) in c.iter().zip(&want) {
                        assert!(
                            (g - w).abs() <= 1e-4 * (1.0 + w.abs()) * k as f32,
                            "{isa:?} {m}x{n}x{k} {ta} {tb}: {g} vs {w}"
                        );
                    }
                    // beta 1 adds.
                    sgemm_with(isa, m, n, k, a, b, &mut c, n, true, &mut work);
                    for (g, w) in c.iter().zip(&want) {
                        assert!(
                            (g - 2.0 * w).abs() <= 2e-4 * (1.0 + w.abs()) * k as f32,
                            "{isa:?} accumulate {m}x{n}x{k}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn zero_depth_clears_or_keeps() {
        let mut c = vec![5.0f32; 6];
        let empty: [f32; 0] = [];
        sgemm(
            2,
            3,
            0,
            Mat::rows(&empty, 0),
            Mat::rows(&empty, 3),
            &mut c,
            3,
            true,
            &mut [],
        );
        assert_eq!(c, vec![5.0; 6]);
        sgemm(
            2,
            3,
            0,
            Mat::rows(&empty, 0),
            Mat::rows(&empty, 3),
            &mut c,
            3,
            false,
            &mut [],
        );
        assert_eq!(c, vec![0.0; 6]);
    }

    #[test]
    fn strided_output_rows() {
        // C is the left 2 columns of a 3x4 buffer.
        let (a, b) = (values(3 * 5, 3), values(5 * 2, 4));
        let mut c = vec![9.0f32; 12];
        let mut work = vec![0.0; workspace_len(3, 2, 5)];
        sgemm(3, 2, 5, Mat::rows(&a, 5), Mat::rows(&b, 2), &mut c, 4, false, &mut work);
        let want = naive(3, 2, 5, &Mat::rows(&a, 5), &Mat::rows(&b, 2));
        for i in 0..3 {
            assert!((c[i * 4] - want[i * 2]).abs() < 1e-4 && (c[i * 4 + 1] - want[i * 2 + 1]).abs() < 1e-4);
            assert_eq!((c[i * 4 + 2], c[i * 4 + 3]), (9.0, 9.0));
        }
    }
}
