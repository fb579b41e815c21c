//! Single-precision matrix product, BLIS style: `C = alpha * A·B + beta * C`.
//!
//! Every operand is addressed through a row stride and a column stride, so a
//! transpose is only a swap of strides. The product is computed in blocks:
//!
//! ```text
//! for jc in n, step NC            columns of C and B
//!   for pc in k, step KC          pack B[pc.., jc..] (KC x NC) into NR-wide panels
//!     for ic in m, step MC        pack A[ic.., pc..] (MC x KC) into MR-tall panels
//!       for jr in NC, step NR
//!         for ir in MC, step MR   micro-kernel: an MR x NR tile of C in registers
//! ```
//!
//! Packed panels are zero-padded to whole tiles, so the micro-kernel's inner
//! loop has no edge cases; the tile's rows and columns beyond C's edge are
//! computed on padding and never stored (masked stores on x86).
//!
//! Three micro-kernels, chosen once at run time: AVX-512F, AVX2 + FMA, and a
//! portable one in plain Rust. Nothing here allocates: the caller provides the
//! packing workspace, [`workspace_len`] floats long.

// The micro-kernels take sizes and pointers as separate arguments on purpose.
#![allow(clippy::too_many_arguments)]
#![warn(unsafe_op_in_unsafe_fn)]

pub use super::isa::{selected, selected_isa, set_isa, Isa};
use super::simd::{F32x8, Lanes};

impl Isa {
    /// Tile height and width: C is computed in `mr x nr` tiles.
    pub const fn tile(self) -> (usize, usize) {
        match self {
            Isa::Portable => (PORTABLE_MR, PORTABLE_NR),
            Isa::Avx2 => (AVX2_MR, AVX2_NR),
            Isa::Avx512 => (AVX512_MR, AVX512_NR),
        }
    }

    /// Cache blocking `(KC, MC, NC)`.
    pub const fn blocking(self) -> (usize, usize, usize) {
        match self {
            Isa::Portable => (PORTABLE_KC, PORTABLE_MC, PORTABLE_NC),
            Isa::Avx2 => (AVX2_KC, AVX2_MC, AVX2_NC),
            Isa::Avx512 => (AVX512_KC, AVX512_MC, AVX512_NC),
        }
    }
}

/// Why [`sgemm`] refused its arguments. Nothing has been written when it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GemmError {
    /// An operand's slice ends before its last element (or the workspace is shorter
    /// than [`workspace_len`]).
    #[error("sgemm: {operand} needs at least {needed} elements for its shape and strides, but has {len}")]
    TooShort {
        operand: &'static str,
        needed: usize,
        len: usize,
    },
    /// An operand's last index does not fit in `usize`.
    #[error("sgemm: the last index of {operand} overflows usize")]
    Overflow { operand: &'static str },
    /// [`sgemm_with`] was asked for a kernel this CPU cannot run.
    #[error("sgemm: kernel {kernel} is not supported by this CPU")]
    Unsupported { kernel: Isa },
}

/// The length of the packing workspace that [`sgemm`] and [`sgemm_with`] (any kernel)
/// need for an `m x n` by `n x k` product. Zero when a dimension is zero.
pub const fn workspace_len(m: usize, n: usize, k: usize) -> usize {
    if m == 0 || n == 0 || k == 0 {
        return 0;
    }
    // sgemm may swap m and n (when C is column-major), and may use any kernel.
    let mut most = 0;
    let mut i = 0;
    while i < Isa::ALL.len() {
        let (tile, blocking) = (Isa::ALL[i].tile(), Isa::ALL[i].blocking());
        let (a, b) = (panels_len(m, n, k, tile, blocking), panels_len(n, m, k, tile, blocking));
        let larger = if a > b { a } else { b };
        if larger > most {
            most = larger;
        }
        i += 1;
    }
    most
}

/// The packed panels of one kernel: an `MC x KC` block of A and a `KC x NC` block of B.
const fn panels_len(
    m: usize,
    n: usize,
    k: usize,
    (mr, nr): (usize, usize),
    (kc, mc, nc): (usize, usize, usize),
) -> usize {
    let kc = if k < kc { k } else { kc };
    let a = round_up(if m < mc { m } else { mc }, mr) * kc;
    let b = kc * round_up(if n < nc { n } else { nc }, nr);
    // Both panels start on a 64-byte boundary: up to 15 floats of slack each.
    round_up(a, 16) + b + 2 * 16
}

/// `C = alpha * A·B + beta * C` with the fastest kernel this CPU has (see [`sgemm_with`]).
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    rsa: usize,
    csa: usize,
    b: &[f32],
    rsb: usize,
    csb: usize,
    beta: f32,
    c: &mut [f32],
    rsc: usize,
    csc: usize,
    work: &mut [f32],
) -> Result<(), GemmError> {
    sgemm_with(
        selected(),
        m,
        n,
        k,
        alpha,
        a,
        rsa,
        csa,
        b,
        rsb,
        csb,
        beta,
        c,
        rsc,
        csc,
        work,
    )
}

/// `C = alpha * A·B + beta * C`, A `m x k`, B `k x n`, C `m x n`, with the given kernel.
///
/// Element `(i, j)` of A is `a[i * rsa + j * csa]`, and likewise for B and C, so
/// `Aᵀ` is A with its strides swapped. When `beta` is zero, C's old contents are
/// ignored (they may be NaN); otherwise they are scaled by `beta` and added. When
/// `k` is zero or `alpha` is zero, A and B are not read and C becomes `beta * C`.
///
/// `work` is scratch for packed panels, at least [`workspace_len`]`(m, n, k)` long.
/// Every slice length is checked once, before anything is written: a slice too
/// short for its shape and strides is an `Err`, never an out-of-bounds access.
/// Nothing is allocated.
///
/// C's strides should not map two elements to one place (the result would depend
/// on the order of the writes, though it would still be memory-safe).
pub fn sgemm_with(
    kernel: Isa,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    rsa: usize,
    csa: usize,
    b: &[f32],
    rsb: usize,
    csb: usize,
    beta: f32,
    c: &mut [f32],
    rsc: usize,
    csc: usize,
    work: &mut [f32],
) -> Result<(), GemmError> {
    if !kernel.is_available() {
        return Err(GemmError::Unsupported { kernel });
    }
    check_len("A", a.len(), m, k, rsa, csa)?;
    check_len("B", b.len(), k, n, rsb, csb)?;
    check_len("C", c.len(), m, n, rsc, csc)?;
    let needed = workspace_len(m, n, k);
    if work.len() < needed {
        return Err(GemmError::TooShort {
            operand: "work",
            needed,
            len: work.len(),
        });
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 || alpha == 0.0 {
        scale(m, n, beta, c, rsc, csc);
        return Ok(());
    }
    let mut g = Gemm {
        m,
        n,
        k,
        alpha,
        a: a.as_ptr(),
        rsa,
        csa,
        b: b.as_ptr(),
        rsb,
        csb,
        beta,
        c: c.as_mut_ptr(),
        rsc,
        csc,
        work: work.as_mut_ptr(),
    };
    // The kernels store rows of C tiles with unit stride; for a column-major C
    // compute Cᵀ = Bᵀ·Aᵀ instead.
    if csc != 1 && rsc == 1 {
        g = Gemm {
            m: n,
            n: m,
            a: g.b,
            rsa: csb,
            csa: rsb,
            b: g.a,
            rsb: csa,
            csb: rsa,
            rsc: csc,
            csc: rsc,
            ..g
        };
    }
    match kernel {
        // SAFETY (all three): check_len proved that every element (i, j) of A, B and C
        // with i, j inside the shape is inside its slice, and `work` holds
        // workspace_len(m, n, k) floats, which covers this kernel's packed panels in
        // either orientation; the swap above keeps the (m, n, k, strides) of each
        // operand consistent. The kernel is available (checked above), so its target
        // features are present.
        Isa::Portable => unsafe { drive::<Portable>(&g) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::sgemm_avx2(&g) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::sgemm_avx512(&g) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("is_available is false for x86 kernels elsewhere"),
    }
    Ok(())
}

/// One product's arguments, already checked against their slices.
#[derive(Clone, Copy)]
struct Gemm {
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: *const f32,
    rsa: usize,
    csa: usize,
    b: *const f32,
    rsb: usize,
    csb: usize,
    beta: f32,
    c: *mut f32,
    rsc: usize,
    csc: usize,
    work: *mut f32,
}

const fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

/// An `rows x cols` operand with the given strides fits in `len` elements.
fn check_len(
    operand: &'static str,
    len: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
) -> Result<(), GemmError> {
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let last = (rows - 1)
        .checked_mul(rs)
        .and_then(|r| (cols - 1).checked_mul(cs).and_then(|c| r.checked_add(c)))
        .and_then(|i| i.checked_add(1))
        .ok_or(GemmError::Overflow { operand })?;
    if len < last {
        return Err(GemmError::TooShort {
            operand,
            needed: last,
            len,
        });
    }
    Ok(())
}

/// `C = beta * C`, reading C only when `beta` is nonzero. The indices are checked.
fn scale(m: usize, n: usize, beta: f32, c: &mut [f32], rsc: usize, csc: usize) {
    if beta == 1.0 {
        return;
    }
    for i in 0..m {
        for j in 0..n {
            let x = &mut c[i * rsc + j * csc];
            *x = if beta == 0.0 { 0.0 } else { beta * *x };
        }
    }
}

/// What the blocked loops need to know about a micro-kernel.
trait Micro {
    /// Tile height (rows of packed A panels) and width (columns of packed B panels).
    const MR: usize;
    const NR: usize;
    /// Cache blocking; `MC` is a multiple of `MR`.
    const KC: usize;
    const MC: usize;
    const NC: usize;

    /// `C[..mr, ..nr] = alpha * Ap·Bp + beta * C[..mr, ..nr]` for one tile, C read
    /// only when `beta != 0`.
    ///
    /// # Safety
    /// `a` points to `kc * MR` readable floats, `b` to `kc * NR`; `1 <= mr <= MR`,
    /// `1 <= nr <= NR`, and `c + i * rsc + j * csc` is a valid, writable element for
    /// every `i < mr`, `j < nr`. The kernel's target features are enabled.
    unsafe fn tile(
        kc: usize,
        mr: usize,
        nr: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rsc: usize,
        csc: usize,
        alpha: f32,
        beta: f32,
    );

    /// Copies an 8 x 8 block transposed: `dst[q * ds + r] = src[r * ss + q]`.
    ///
    /// # Safety
    /// Both blocks are in bounds; the kernel's target features are enabled.
    #[inline(always)]
    unsafe fn transpose8(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
        for q in 0..8 {
            for r in 0..8 {
                // SAFETY: r, q < 8: inside both blocks (the caller's contract).
                unsafe { *dst.add(q * ds + r) = *src.add(r * ss + q) };
            }
        }
    }
}

/// The blocked loops around `K`'s micro-kernel.
///
/// # Safety
/// Every element `(i, j)` inside the shape of each of `g`'s operands is valid
/// (C writable), `g.work` holds [`workspace_len`] floats, and `K`'s target
/// features are enabled. `m`, `n`, `k` are nonzero.
#[inline(always)]
unsafe fn drive<K: Micro>(g: &Gemm) {
    // k in equal blocks of at most KC: 288 is 2 x 144 rather than 256 + 32.
    let kc_max = g.k.div_ceil(g.k.div_ceil(K::KC));
    let mc_max = round_up(g.m.min(K::MC), K::MR);
    // Both packed buffers start on a 64-byte boundary (workspace_len has 16 floats
    // of slack for each); align_offset may decline, and then we go unaligned.
    let skip = match g.work.align_offset(64) {
        s if s < 16 => s,
        _ => 0,
    };
    // SAFETY: skip < 16, and a_len + b_len + 2 * 16 <= workspace_len (same formula).
    let ap = unsafe { g.work.add(skip) };
    // SAFETY: as above: round_up(mc_max * kc_max, 16) + skip stays inside `work`.
    let bp = unsafe { ap.add(round_up(mc_max * kc_max, 16)) };

    let mut jc = 0;
    while jc < g.n {
        let nc = (g.n - jc).min(K::NC);
        let mut pc = 0;
        while pc < g.k {
            let kc = (g.k - pc).min(kc_max);
            // SAFETY: (pc, jc) is inside B; pack_panels reads only (pc + p, jc + j) for p < kc,
            // j < nc, all inside B, and writes kc * round_up(nc, NR) <= b_len floats.
            unsafe { pack_panels::<K>(K::NR, nc, kc, g.b.add(pc * g.rsb + jc * g.csb), g.rsb, g.csb, bp) };
            let beta = if pc == 0 { g.beta } else { 1.0 };
            let mut ic = 0;
            while ic < g.m {
                let mc = (g.m - ic).min(K::MC);
                // SAFETY: as for B: rows ic.. ic + mc and columns pc.. pc + kc of A, and
                // round_up(mc, MR) * kc <= a_len floats written.
                unsafe { pack_panels::<K>(K::MR, mc, kc, g.a.add(ic * g.rsa + pc * g.csa), g.csa, g.rsa, ap) };
                let mut jr = 0;
                while jr < nc {
                    let nr = (nc - jr).min(K::NR);
                    let mut ir = 0;
                    while ir < mc {
                        let mr = (mc - ir).min(K::MR);
                        // SAFETY: the panels at ir * kc and jr * kc hold kc * MR and kc * NR
                        // packed floats; the tile's mr x nr elements of C, from
                        // (ic + ir, jc + jr), are inside C.
                        unsafe {
                            K::tile(
                                kc,
                                mr,
                                nr,
                                ap.add(ir * kc),
                                bp.add(jr * kc),
                                g.c.add((ic + ir) * g.rsc + (jc + jr) * g.csc),
                                g.rsc,
                                g.csc,
                                g.alpha,
                                beta,
                            )
                        };
                        ir += K::MR;
                    }
                    jr += K::NR;
                }
                ic += K::MC;
            }
            pc += kc_max;
        }
        jc += K::NC;
    }
}

/// Packs `count` lines of `kc` elements into panels of `width` lines, `p`-major:
/// line `l` of the block starts at `src + l * across`, its element `p` is `along`
/// further per step. A's rows go into `MR`-row panels (`along` = A's column stride),
/// B's columns into `NR`-column panels (`along` = B's row stride); the last panel is
/// zero-padded to `width`.
///
/// # Safety
/// `src[l * across + p * along]` is readable for `l < count`, `p < kc`; `dst` has room
/// for `round_up(count, width) * kc` floats.
#[inline(always)]
unsafe fn pack_panels<K: Micro>(
    width: usize,
    count: usize,
    kc: usize,
    src: *const f32,
    along: usize,
    across: usize,
    dst: *mut f32,
) {
    let mut l = 0;
    while l < count {
        // SAFETY: panel l / width of dst holds width * kc floats; lines l.. l + width
        // clipped to count, elements < kc.
        unsafe {
            pack_panel::<K>(
                width,
                (count - l).min(width),
                kc,
                src.add(l * across),
                along,
                across,
                dst.add(l * kc),
            )
        };
        l += width;
    }
}

/// Packs one panel: `dst[p * width + i] = src[p * along + i * across]` for `i < valid`,
/// zero for `valid <= i < width`, for every `p < kc`.
///
/// # Safety
/// `src[p * along + i * across]` is readable for `p < kc`, `i < valid`; `dst` has
/// room for `kc * width` floats.
#[inline(always)]
unsafe fn pack_panel<K: Micro>(
    width: usize,
    valid: usize,
    kc: usize,
    src: *const f32,
    along: usize,
    across: usize,
    dst: *mut f32,
) {
    // SAFETY: every index below is one the contract allows.
    unsafe {
        if valid == width && across == 1 {
            for p in 0..kc {
                std::ptr::copy_nonoverlapping(src.add(p * along), dst.add(p * width), width);
            }
        } else if along == 1 && width >= 16 {
            // A wide panel whose source rows are contiguous along p (a transposed B):
            // move 8 x 8 blocks, 8 contiguous reads and 8 contiguous writes each. Reading
            // `width` rows at once walks as many streams at the same 4 KiB-aliased offsets,
            // and a row-at-a-time copy becomes scatter instructions; both were slower
            // than the matrix product itself for a conv's weight gradient.
            let (rows8, kc8) = (valid / 8 * 8, kc / 8 * 8);
            for i0 in (0..rows8).step_by(8) {
                for p0 in (0..kc8).step_by(8) {
                    K::transpose8(src.add(i0 * across + p0), across, dst.add(p0 * width + i0), width);
                }
                for p in kc8..kc {
                    for i in i0..i0 + 8 {
                        *dst.add(p * width + i) = *src.add(i * across + p);
                    }
                }
            }
            for p in 0..kc {
                for i in rows8..valid {
                    *dst.add(p * width + i) = *src.add(i * across + p);
                }
                for i in valid..width {
                    *dst.add(p * width + i) = 0.0;
                }
            }
        } else if valid == width {
            for p in 0..kc {
                for i in 0..width {
                    *dst.add(p * width + i) = *src.add(p * along + i * across);
                }
            }
        } else {
            for p in 0..kc {
                for i in 0..valid {
                    *dst.add(p * width + i) = *src.add(p * along + i * across);
                }
                for i in valid..width {
                    *dst.add(p * width + i) = 0.0;
                }
            }
        }
    }
}

/// Picks the tile-loop instance that computes exactly `mr` rows and
/// `ceil(nr / LANES)` vectors per row, so edge tiles do no wasted work.
macro_rules! dispatch {
    ($kernel:ident, $lanes:expr, $mr:expr, $nr:expr, $args:tt, $($m:literal)*) => {
        match ($mr, $nr.div_ceil($lanes)) {
            $(
                ($m, 1) => $kernel::<$m, 1> $args,
                ($m, _) => $kernel::<$m, 2> $args,
            )*
            _ => unreachable!("tile rows out of range"),
        }
    };
}

/// The one register-blocked tile loop, for every instruction set: an
/// `M x (LANES V)` tile of C in `M * V` accumulators; per step of `k`, `V` loads
/// of the B panel (`NR` wide) and `M` broadcasts from the A panel (`MR` tall).
///
/// # Safety
/// `Micro::tile`'s contract with panels `MR` tall and `NR` wide, `mr = M <= MR`,
/// `LANES (V - 1) < nr <= LANES V <= NR`; `L`'s target features are enabled.
#[inline(always)]
unsafe fn mxv<L: Lanes, const MR: usize, const NR: usize, const M: usize, const V: usize>(
    kc: usize,
    nr: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: usize,
    csc: usize,
    alpha: f32,
    beta: f32,
) {
    // SAFETY: every pointer below stays inside the panels and the tile of C, as
    // each comment says; the target features are the caller's.
    unsafe {
        let mut acc = [[L::zero(); V]; M];
        let (mut a, mut b) = (a, b);
        for _ in 0..kc {
            let mut bv = [L::zero(); V];
            for (v, x) in bv.iter_mut().enumerate() {
                // V * LANES <= NR floats of this step's row of the B panel.
                *x = L::load(b.add(L::LANES * v));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                // i < M <= MR floats of this step's column of the A panel.
                let ai = L::splat(*a.add(i));
                for (x, &bv) in row.iter_mut().zip(&bv) {
                    *x = L::mul_add(ai, bv, *x);
                }
            }
            // At most one past the panels' ends after the last step.
            a = a.add(MR);
            b = b.add(NR);
        }
        let (va, vb) = (L::splat(alpha), L::splat(beta));
        for (i, row) in acc.iter().enumerate() {
            for (v, &x) in row.iter().enumerate() {
                let j0 = L::LANES * v;
                let lanes = (nr - j0).min(L::LANES);
                let r = L::mul(x, va);
                if csc == 1 {
                    // Row i < mr and columns j0 .. j0 + lanes <= nr of the tile, all
                    // inside C with unit column stride; lanes past `lanes` untouched.
                    let p = c.add(i * rsc + j0);
                    if lanes == L::LANES {
                        let out = if beta == 0.0 { r } else { L::mul_add(vb, L::load(p), r) };
                        L::store(p, out);
                    } else {
                        let out = if beta == 0.0 {
                            r
                        } else {
                            L::mul_add(vb, L::load_first(p, lanes), r)
                        };
                        L::store_first(p, lanes, out);
                    }
                } else {
                    let mut lane = [0.0f32; 16];
                    // `lane` holds 16 >= LANES floats.
                    L::store(lane.as_mut_ptr(), r);
                    for (j, &x) in lane.iter().enumerate().take(lanes) {
                        // i < mr, j0 + j < nr: an element of the tile.
                        let p = &mut *c.add(i * rsc + (j0 + j) * csc);
                        *p = if beta == 0.0 { x } else { x + beta * *p };
                    }
                }
            }
        }
    }
}

/// The portable micro-kernel: [`mxv`] over [`F32x8`].
struct Portable;

const PORTABLE_MR: usize = 4;
const PORTABLE_NR: usize = 8;
const PORTABLE_KC: usize = 256;
const PORTABLE_MC: usize = 128;
const PORTABLE_NC: usize = 1024;

/// # Safety
/// `mxv`'s contract for the portable panels.
#[inline(always)]
unsafe fn mxv_portable<const M: usize, const V: usize>(
    kc: usize,
    nr: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: usize,
    csc: usize,
    alpha: f32,
    beta: f32,
) {
    // SAFETY: the contract is passed on.
    unsafe { mxv::<F32x8, PORTABLE_MR, PORTABLE_NR, M, V>(kc, nr, a, b, c, rsc, csc, alpha, beta) }
}

impl Micro for Portable {
    const MR: usize = PORTABLE_MR;
    const NR: usize = PORTABLE_NR;
    const KC: usize = PORTABLE_KC;
    const MC: usize = PORTABLE_MC;
    const NC: usize = PORTABLE_NC;

    #[inline(always)]
    unsafe fn tile(
        kc: usize,
        mr: usize,
        nr: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rsc: usize,
        csc: usize,
        alpha: f32,
        beta: f32,
    ) {
        // SAFETY: mr <= MR = 4 and nr <= NR = 8 = LANES select an instance with
        // M = mr and V = 1 (the V = 2 arms are never taken).
        unsafe { dispatch!(mxv_portable, 8, mr, nr, (kc, nr, a, b, c, rsc, csc, alpha, beta), 1 2 3 4) }
    }
}

const AVX2_MR: usize = 6;
const AVX2_NR: usize = 16;
const AVX2_KC: usize = 256;
const AVX2_MC: usize = 126;
const AVX2_NC: usize = 1024;
const AVX512_MR: usize = 8;
const AVX512_NR: usize = 32;
const AVX512_KC: usize = 256;
const AVX512_MC: usize = 128;
const AVX512_NC: usize = 1024;

#[cfg(target_arch = "x86_64")]
mod x86;
