//! Vectors of floats for the hand-blocked kernels (the matrix product's tiles and
//! the direct convolution): one trait, [`Lanes`], over AVX-512, AVX2 + FMA and
//! plain Rust, so each register-blocked loop is written once and instantiated
//! per instruction set inside a `#[target_feature]` function.
//!
//! (A crate such as `pulp` or `wide` could supply these types; the kernels need
//! eight operations, and the masked edge loads and stores, in exactly the
//! instructions below, so they are written out here.)

#![allow(clippy::missing_safety_doc)]

/// A vector of `LANES` floats.
///
/// # Safety
/// Every method may use the instruction set's intrinsics: call them only where its
/// target features are enabled. Pointers name `LANES` valid floats (the first `n`
/// for the `_first` methods).
pub(crate) trait Lanes: Copy {
    const LANES: usize;
    unsafe fn zero() -> Self;
    unsafe fn splat(x: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(p: *mut f32, v: Self);
    /// The first `n` lanes from `p`, zero in the others; reads only those `n`.
    unsafe fn load_first(p: *const f32, n: usize) -> Self;
    /// Writes only the first `n` lanes.
    unsafe fn store_first(p: *mut f32, n: usize, v: Self);
    /// `a * b + c`.
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self;
    unsafe fn mul(a: Self, b: Self) -> Self;
    unsafe fn add(a: Self, b: Self) -> Self;
    /// `max(a, 0)` per lane, 0 for NaN (as `f32::max`): relu.
    unsafe fn relu(a: Self) -> Self;
    /// The 4x4 transpose of the 16 floats at `src` (four rows of four) into four
    /// runs of four: `dst[p][t] = src[4 t + p]`. Plain Rust here; the x86 vectors
    /// use SSE's shuffles (every x86-64 has SSE).
    #[inline(always)]
    unsafe fn transpose4(src: *const f32, dst: [*mut f32; 4]) {
        for (p, d) in dst.into_iter().enumerate() {
            for t in 0..4 {
                // SAFETY: `src` names 16 floats and each `dst` four (the contract).
                unsafe { *d.add(t) = *src.add(4 * t + p) };
            }
        }
    }
}

/// [`Lanes::transpose4`] with SSE.
///
/// # Safety
/// `src` names 16 readable floats, each `dst` four writable ones.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn transpose4_sse(src: *const f32, dst: [*mut f32; 4]) {
    use core::arch::x86_64::*;
    // SAFETY: SSE is part of x86-64; the pointers are the contract's.
    unsafe {
        let (a, b) = (_mm_loadu_ps(src), _mm_loadu_ps(src.add(4)));
        let (c, d) = (_mm_loadu_ps(src.add(8)), _mm_loadu_ps(src.add(12)));
        let (ab_lo, cd_lo) = (_mm_unpacklo_ps(a, b), _mm_unpacklo_ps(c, d));
        let (ab_hi, cd_hi) = (_mm_unpackhi_ps(a, b), _mm_unpackhi_ps(c, d));
        _mm_storeu_ps(dst[0], _mm_movelh_ps(ab_lo, cd_lo));
        _mm_storeu_ps(dst[1], _mm_movehl_ps(cd_lo, ab_lo));
        _mm_storeu_ps(dst[2], _mm_movelh_ps(ab_hi, cd_hi));
        _mm_storeu_ps(dst[3], _mm_movehl_ps(cd_hi, ab_hi));
    }
}

/// Eight floats in plain Rust: the compiler keeps them in vector registers of the
/// target's baseline width.
#[derive(Clone, Copy)]
pub(crate) struct F32x8(pub [f32; 8]);

impl Lanes for F32x8 {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        F32x8([0.0; 8])
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        F32x8([x; 8])
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: p names 8 floats (the trait's contract).
        F32x8(unsafe { p.cast::<[f32; 8]>().read_unaligned() })
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self) {
        // SAFETY: p names 8 floats (the trait's contract).
        unsafe { p.cast::<[f32; 8]>().write_unaligned(v.0) }
    }
    #[inline(always)]
    unsafe fn load_first(p: *const f32, n: usize) -> Self {
        let mut v = [0.0; 8];
        for (i, x) in v.iter_mut().enumerate().take(n) {
            // SAFETY: i < n floats from p (the trait's contract).
            *x = unsafe { *p.add(i) };
        }
        F32x8(v)
    }
    #[inline(always)]
    unsafe fn store_first(p: *mut f32, n: usize, v: Self) {
        for (i, &x) in v.0.iter().enumerate().take(n) {
            // SAFETY: i < n floats from p (the trait's contract).
            unsafe { *p.add(i) = x };
        }
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        F32x8(std::array::from_fn(|i| a.0[i] * b.0[i] + c.0[i]))
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        F32x8(std::array::from_fn(|i| a.0[i] * b.0[i]))
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        F32x8(std::array::from_fn(|i| a.0[i] + b.0[i]))
    }
    #[inline(always)]
    unsafe fn relu(a: Self) -> Self {
        F32x8(std::array::from_fn(|i| a.0[i].max(0.0)))
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{F32x16, F32x8Avx};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Lanes;
    use core::arch::x86_64::*;

    /// Sixteen floats in an AVX-512 register.
    #[derive(Clone, Copy)]
    pub(crate) struct F32x16(__m512);

    /// The mask of the first `n <= 16` lanes.
    #[inline(always)]
    fn first16(n: usize) -> __mmask16 {
        if n >= 16 {
            0xffff
        } else {
            (1u16 << n) - 1
        }
    }

    // SAFETY (every block below): AVX-512F is enabled wherever these are called
    // (the trait's contract); pointers name 16 floats, or the first n for masked ones.
    impl Lanes for F32x16 {
        const LANES: usize = 16;
        #[inline(always)]
        unsafe fn zero() -> Self {
            F32x16(unsafe { _mm512_setzero_ps() })
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            F32x16(unsafe { _mm512_set1_ps(x) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            F32x16(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: Self) {
            unsafe { _mm512_storeu_ps(p, v.0) }
        }
        #[inline(always)]
        unsafe fn load_first(p: *const f32, n: usize) -> Self {
            F32x16(unsafe { _mm512_maskz_loadu_ps(first16(n), p) })
        }
        #[inline(always)]
        unsafe fn store_first(p: *mut f32, n: usize, v: Self) {
            unsafe { _mm512_mask_storeu_ps(p, first16(n), v.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            F32x16(unsafe { _mm512_fmadd_ps(a.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn mul(a: Self, b: Self) -> Self {
            F32x16(unsafe { _mm512_mul_ps(a.0, b.0) })
        }
        #[inline(always)]
        unsafe fn add(a: Self, b: Self) -> Self {
            F32x16(unsafe { _mm512_add_ps(a.0, b.0) })
        }
        #[inline(always)]
        unsafe fn relu(a: Self) -> Self {
            // maxps returns its second operand when the first is NaN: 0.
            F32x16(unsafe { _mm512_max_ps(a.0, _mm512_setzero_ps()) })
        }
        #[inline(always)]
        unsafe fn transpose4(src: *const f32, dst: [*mut f32; 4]) {
            unsafe { super::transpose4_sse(src, dst) }
        }
    }

    /// Eight floats in an AVX register, with FMA.
    #[derive(Clone, Copy)]
    pub(crate) struct F32x8Avx(__m256);

    /// The mask of the first `n <= 8` lanes.
    #[inline(always)]
    unsafe fn first8(n: usize) -> __m256i {
        // SAFETY: AVX2 is enabled wherever this is called (Lanes' contract).
        unsafe { _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)) }
    }

    // SAFETY (every block below): AVX2 and FMA are enabled wherever these are
    // called (the trait's contract); pointers name 8 floats, or the first n for
    // masked ones.
    impl Lanes for F32x8Avx {
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn zero() -> Self {
            F32x8Avx(unsafe { _mm256_setzero_ps() })
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            F32x8Avx(unsafe { _mm256_set1_ps(x) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            F32x8Avx(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: Self) {
            unsafe { _mm256_storeu_ps(p, v.0) }
        }
        #[inline(always)]
        unsafe fn load_first(p: *const f32, n: usize) -> Self {
            F32x8Avx(unsafe { _mm256_maskload_ps(p, first8(n)) })
        }
        #[inline(always)]
        unsafe fn store_first(p: *mut f32, n: usize, v: Self) {
            unsafe { _mm256_maskstore_ps(p, first8(n), v.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            F32x8Avx(unsafe { _mm256_fmadd_ps(a.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn mul(a: Self, b: Self) -> Self {
            F32x8Avx(unsafe { _mm256_mul_ps(a.0, b.0) })
        }
        #[inline(always)]
        unsafe fn add(a: Self, b: Self) -> Self {
            F32x8Avx(unsafe { _mm256_add_ps(a.0, b.0) })
        }
        #[inline(always)]
        unsafe fn relu(a: Self) -> Self {
            // maxps returns its second operand when the first is NaN: 0.
            F32x8Avx(unsafe { _mm256_max_ps(a.0, _mm256_setzero_ps()) })
        }
        #[inline(always)]
        unsafe fn transpose4(src: *const f32, dst: [*mut f32; 4]) {
            unsafe { super::transpose4_sse(src, dst) }
        }
    }
}
