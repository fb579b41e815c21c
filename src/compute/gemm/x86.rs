//! The x86-64 micro-kernels: AVX-512 and AVX2 + FMA builds of the register tile
//! and the matrix-vector product, chosen at run time (`Isa`).

use super::*;
use crate::compute::simd::{F32x16, F32x8Avx};
use core::arch::x86_64::*;

/// # Safety
/// `drive`'s contract, and the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn sgemm_avx512(g: &Gemm) {
    // SAFETY: the caller's contract is drive's; the features are enabled here.
    unsafe { drive::<Avx512>(g) }
}

/// # Safety
/// `drive`'s contract, and the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn sgemm_avx2(g: &Gemm) {
    // SAFETY: the caller's contract is drive's; the features are enabled here.
    unsafe { drive::<Avx2>(g) }
}

/// The 8 x 8 transpose of [`Micro::transpose8`] in eight AVX registers:
/// unpack pairs of rows, shuffle pairs of pairs, swap 128-bit halves.
///
/// # Safety
/// `Micro::transpose8`'s contract, and the CPU has AVX.
#[inline]
#[target_feature(enable = "avx")]
unsafe fn transpose8_avx(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
    // SAFETY: rows r < 8 of src and q < 8 of dst hold 8 floats each (the contract).
    unsafe {
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * ss)));
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let out = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (q, v) in out.into_iter().enumerate() {
            _mm256_storeu_ps(dst.add(q * ds), v);
        }
    }
}

/// Defines a micro-kernel over a [`Lanes`] type: its `Micro` impl and the
/// `#[target_feature]` functions that instantiate [`mxv`] with the features on.
macro_rules! micro {
    ($micro:ident, $lanes:ty, $features:literal, $tile:ident, $mxv:ident,
     $mr:ident, $nr:ident, $kc:ident, $mc:ident, $nc:ident, $($m:literal)*) => {
        pub(super) struct $micro;

        impl Micro for $micro {
            const MR: usize = $mr;
            const NR: usize = $nr;
            const KC: usize = $kc;
            const MC: usize = $mc;
            const NC: usize = $nc;

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
                // SAFETY: Micro::tile's contract is $tile's.
                unsafe { $tile(kc, mr, nr, a, b, c, rsc, csc, alpha, beta) }
            }

            #[inline(always)]
            unsafe fn transpose8(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
                // SAFETY: Micro::transpose8's contract is transpose8_avx's; AVX is implied.
                unsafe { transpose8_avx(src, ss, dst, ds) }
            }
        }

        /// # Safety
        /// `Micro::tile`'s contract; the CPU has the features.
        #[target_feature(enable = $features)]
        unsafe fn $tile(
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
            // SAFETY: the contract is passed on; mr <= MR and nr <= NR = 2 LANES
            // select an instance with M = mr and LANES V >= nr > LANES (V - 1).
            unsafe {
                dispatch!($mxv, <$lanes as Lanes>::LANES, mr, nr, (kc, nr, a, b, c, rsc, csc, alpha, beta), $($m)*)
            }
        }

        /// # Safety
        /// `mxv`'s contract for these panels; the CPU has the features.
        #[target_feature(enable = $features)]
        unsafe fn $mxv<const M: usize, const V: usize>(
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
            // SAFETY: the contract is passed on, and the features are enabled here.
            unsafe { mxv::<$lanes, $mr, $nr, M, V>(kc, nr, a, b, c, rsc, csc, alpha, beta) }
        }
    };
}

micro!(Avx512, F32x16, "avx512f", tile_avx512, mxv_avx512,
    AVX512_MR, AVX512_NR, AVX512_KC, AVX512_MC, AVX512_NC, 1 2 3 4 5 6 7 8);
micro!(Avx2, F32x8Avx, "avx2,fma", tile_avx2, mxv_avx2,
    AVX2_MR, AVX2_NR, AVX2_KC, AVX2_MC, AVX2_NC, 1 2 3 4 5 6);
