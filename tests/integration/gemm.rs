//! `sgemm` against a naive triple loop in f64, for every kernel this CPU can run:
//! edge shapes, every transpose combination through strides, beta 0 over NaN,
//! beta 1, alpha != 1, k = 0, short slices, and no allocation.

use cnnc::compute::gemm::{sgemm, sgemm_with, workspace_len, GemmError, Isa};
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts allocations per thread, so tests running in parallel do not disturb each other.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn kernels() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|k| k.is_available()).collect()
}

/// A matrix stored with a layout: row-major or column-major, with `pad` unused
/// elements after each row (or column), so strides exceed the minimum.
#[derive(Debug, Clone, Copy)]
struct Layout2 {
    transposed: bool,
    pad: usize,
}

impl Layout2 {
    /// (row stride, column stride, slice length) of a `rows x cols` matrix.
    fn strides(self, rows: usize, cols: usize) -> (usize, usize, usize) {
        if self.transposed {
            let ld = rows + self.pad;
            (1, ld, ld * cols)
        } else {
            let ld = cols + self.pad;
            (ld, 1, ld * rows)
        }
    }
}

/// Deterministic values in [-1, 1), some exactly representable, some not.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

struct Case {
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    beta: f32,
    la: Layout2,
    lb: Layout2,
    lc: Layout2,
}

/// Runs one case with `kernel` and checks every element of C (and that padding
/// between C's elements is untouched).
fn check(kernel: Isa, case: &Case, seed: u64) {
    let Case {
        m,
        n,
        k,
        alpha,
        beta,
        la,
        lb,
        lc,
    } = *case;
    let (rsa, csa, alen) = la.strides(m, k);
    let (rsb, csb, blen) = lb.strides(k, n);
    let (rsc, csc, clen) = lc.strides(m, n);
    let a = values(alen, seed);
    let b = values(blen, seed + 1);
    let c0: Vec<f32> = if beta == 0.0 {
        vec![f32::NAN; clen]
    } else {
        values(clen, seed + 2)
    };
    let mut c = c0.clone();
    let mut work = vec![f32::NAN; workspace_len(m, n, k)];
    sgemm_with(
        kernel, m, n, k, alpha, &a, rsa, csa, &b, rsb, csb, beta, &mut c, rsc, csc, &mut work,
    )
    .unwrap();

    let mut inside = vec![false; clen];
    for i in 0..m {
        for j in 0..n {
            let (mut exact, mut magnitude) = (0.0f64, 0.0f64);
            for p in 0..k {
                let x = f64::from(a[i * rsa + p * csa]) * f64::from(b[p * rsb + j * csb]);
                exact += x;
                magnitude += x.abs();
            }
            let idx = i * rsc + j * csc;
            inside[idx] = true;
            let old = if beta == 0.0 {
                0.0
            } else {
                f64::from(beta) * f64::from(c0[idx])
            };
            let want = f64::from(alpha) * exact + old;
            let tol = 1e-6 * (k as f64 + 4.0) * (f64::from(alpha.abs()) * magnitude + old.abs() + 1.0);
            let got = f64::from(c[idx]);
            assert!(
                (got - want).abs() <= tol,
                "{kernel}: m {m} n {n} k {k} alpha {alpha} beta {beta} {la:?} {lb:?} {lc:?}: \
                 C[{i}, {j}] = {got}, want {want}"
            );
        }
    }
    for (idx, inside) in inside.iter().enumerate() {
        if !inside {
            assert!(
                c[idx].to_bits() == c0[idx].to_bits(),
                "{kernel}: m {m} n {n} k {k}: padding at {idx} was written"
            );
        }
    }
}

const ROW: Layout2 = Layout2 {
    transposed: false,
    pad: 0,
};
const COL: Layout2 = Layout2 {
    transposed: true,
    pad: 0,
};

#[test]
fn edge_shapes_every_kernel() {
    let dims = [1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 31, 33, 47];
    for kernel in kernels() {
        for &m in &dims {
            for &n in &dims {
                for k in [1, 3, 8, 17] {
                    let case = Case {
                        m,
                        n,
                        k,
                        alpha: 1.0,
                        beta: 0.0,
                        la: ROW,
                        lb: ROW,
                        lc: ROW,
                    };
                    check(kernel, &case, (m * 100 + n * 10 + k) as u64);
                }
            }
        }
    }
}

#[test]
fn k_crosses_the_cache_block() {
    for kernel in kernels() {
        for (m, n, k) in [
            (9, 35, 255),
            (9, 35, 256),
            (9, 35, 257),
            (13, 37, 600),
            (3, 1100, 20),
            (130, 20, 30),
        ] {
            for beta in [0.0, 1.0] {
                let case = Case {
                    m,
                    n,
                    k,
                    alpha: 0.5,
                    beta,
                    la: ROW,
                    lb: ROW,
                    lc: ROW,
                };
                check(kernel, &case, k as u64);
            }
        }
    }
}

#[test]
fn every_transpose_alpha_and_beta() {
    for kernel in kernels() {
        for la in [ROW, COL] {
            for lb in [ROW, COL] {
                for lc in [
                    ROW,
                    COL,
                    Layout2 {
                        transposed: false,
                        pad: 3,
                    },
                    Layout2 {
                        transposed: true,
                        pad: 2,
                    },
                ] {
                    for (alpha, beta) in [(1.0, 0.0), (1.0, 1.0), (-0.75, 1.0), (2.5, 0.0), (1.5, -0.5)] {
                        for (m, n, k) in [(6, 33, 25), (19, 40, 11), (1, 1, 1), (64, 10, 84)] {
                            let case = Case {
                                m,
                                n,
                                k,
                                alpha,
                                beta,
                                la,
                                lb,
                                lc,
                            };
                            check(kernel, &case, (m + n + k) as u64);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn padded_strides_on_every_operand() {
    for kernel in kernels() {
        for t in [false, true] {
            let l = Layout2 { transposed: t, pad: 5 };
            let case = Case {
                m: 21,
                n: 45,
                k: 30,
                alpha: 1.0,
                beta: 1.0,
                la: l,
                lb: l,
                lc: l,
            };
            check(kernel, &case, 7);
        }
    }
}

#[test]
fn k_zero_scales_c_by_beta() {
    for kernel in kernels() {
        for beta in [0.0f32, 1.0, 0.5] {
            let mut c = if beta == 0.0 { vec![f32::NAN; 12] } else { values(12, 3) };
            let before = c.clone();
            sgemm_with(kernel, 3, 4, 0, 1.0, &[], 0, 0, &[], 0, 0, beta, &mut c, 4, 1, &mut []).unwrap();
            for (x, y) in c.iter().zip(&before) {
                let want = if beta == 0.0 { 0.0 } else { beta * y };
                assert_eq!(*x, want, "{kernel}: beta {beta}");
            }
        }
    }
}

#[test]
fn empty_shapes_touch_nothing() {
    for kernel in kernels() {
        let mut c = vec![7.0f32; 4];
        sgemm_with(
            kernel,
            0,
            4,
            3,
            1.0,
            &[],
            3,
            1,
            &[1.0; 12],
            4,
            1,
            0.0,
            &mut c,
            4,
            1,
            &mut [],
        )
        .unwrap();
        sgemm_with(
            kernel,
            4,
            0,
            3,
            1.0,
            &[1.0; 12],
            3,
            1,
            &[],
            0,
            1,
            0.0,
            &mut c,
            0,
            1,
            &mut [],
        )
        .unwrap();
        assert_eq!(c, vec![7.0; 4]);
    }
}

#[test]
fn short_slices_are_errors_and_write_nothing() {
    let (m, n, k) = (5, 7, 3);
    let (a, b) = (vec![1.0f32; m * k], vec![1.0f32; k * n]);
    let mut c = vec![9.0f32; m * n];
    let mut work = vec![0.0f32; workspace_len(m, n, k)];
    let short = |operand, needed, len| Err(GemmError::TooShort { operand, needed, len });
    let r = sgemm(m, n, k, 1.0, &a[1..], k, 1, &b, n, 1, 0.0, &mut c, n, 1, &mut work);
    assert_eq!(r, short("A", m * k, m * k - 1));
    let r = sgemm(m, n, k, 1.0, &a, k, 1, &b, n + 1, 1, 0.0, &mut c, n, 1, &mut work);
    assert_eq!(r, short("B", (k - 1) * (n + 1) + n, k * n));
    let r = sgemm(
        m,
        n,
        k,
        1.0,
        &a,
        k,
        1,
        &b,
        n,
        1,
        0.0,
        &mut c[..m * n - 1],
        n,
        1,
        &mut work,
    );
    assert_eq!(r, short("C", m * n, m * n - 1));
    let len = work.len();
    let r = sgemm(
        m,
        n,
        k,
        1.0,
        &a,
        k,
        1,
        &b,
        n,
        1,
        0.0,
        &mut c,
        n,
        1,
        &mut work[..len - 1],
    );
    assert_eq!(r, short("work", len, len - 1));
    let r = sgemm(m, n, k, 1.0, &a, usize::MAX, 1, &b, n, 1, 0.0, &mut c, n, 1, &mut work);
    assert_eq!(r, Err(GemmError::Overflow { operand: "A" }));
    assert_eq!(c, vec![9.0; m * n]);
}

#[test]
fn workspace_covers_every_kernel_and_orientation() {
    // The same workspace serves a row-major C and its column-major transpose.
    for kernel in kernels() {
        let case = Case {
            m: 300,
            n: 5,
            k: 260,
            alpha: 1.0,
            beta: 0.0,
            la: ROW,
            lb: COL,
            lc: COL,
        };
        check(kernel, &case, 11);
    }
}

#[test]
fn sgemm_allocates_nothing() {
    let (m, n, k) = (32, 300, 288);
    let (a, b) = (values(m * k, 1), values(k * n, 2));
    let mut c = vec![0.0f32; m * n];
    let mut work = vec![0.0f32; workspace_len(m, n, k)];
    for kernel in kernels() {
        let before = ALLOCATIONS.with(Cell::get);
        sgemm_with(kernel, m, n, k, 1.0, &a, k, 1, &b, n, 1, 0.0, &mut c, n, 1, &mut work).unwrap();
        sgemm_with(kernel, m, n, k, 1.0, &a, 1, m, &b, 1, k, 1.0, &mut c, 1, m, &mut work).unwrap();
        assert_eq!(ALLOCATIONS.with(Cell::get) - before, 0, "{kernel} allocated");
    }
}

#[test]
fn selected_kernel_is_the_best_available() {
    let name = cnnc::compute::gemm::selected_isa();
    assert_eq!(name, Isa::best().name());
    assert!(Isa::best().is_available());
}

fn layout() -> impl Strategy<Value = Layout2> {
    (any::<bool>(), prop_oneof![3 => Just(0usize), 1 => 1usize..4])
        .prop_map(|(transposed, pad)| Layout2 { transposed, pad })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_shapes_match_naive(
        m in 1usize..70,
        n in 1usize..90,
        k in prop_oneof![4 => 1usize..40, 1 => 240usize..300],
        alpha in prop_oneof![Just(1.0f32), -2.0f32..2.0],
        beta in prop_oneof![Just(0.0f32), Just(1.0f32)],
        la in layout(),
        lb in layout(),
        lc in layout(),
        seed in any::<u64>(),
    ) {
        for kernel in kernels() {
            check(kernel, &Case { m, n, k, alpha, beta, la, lb, lc }, seed);
        }
    }
}
