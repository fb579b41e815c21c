//! The kernels as generated code calls them: one generic function per layer
//! kind, instantiated in the user's crate for a marker type that carries the
//! layer's constant shape. So every loop bound is a constant after inlining
//! (kernel windows unroll, rows vectorize), and the CPU dispatch is written once,
//! here: each function is built for AVX2 + FMA and for the target's baseline
//! (SSE2 on x86-64) and picks one at run time, following the matrix products'
//! choice (`gemm::selected`, which honours `CNNC_KERNEL`). CPUs with AVX-512 run
//! the AVX2 build: on these loops it measured faster than an AVX-512 build
//! (LeNet training 1.94 against 2.10 ms a step), while the matrix products keep
//! their AVX-512 micro-kernel.

use super::gemm::{selected, Isa};
use super::transpose::{self, TransposeShape};
use super::upsample::{self, UpsampleShape};
use super::{conv, dense, pool, Activation, ConvShape, PoolShape};

/// A convolution layer's constants.
pub trait ConvLayer {
    const SHAPE: ConvShape;
}

/// A dense layer's constants.
pub trait DenseLayer {
    const INPUTS: usize;
    const OUTPUTS: usize;
    /// The activation fused into the output.
    const ACT: Activation;
}

/// A pooling layer's constants.
pub trait PoolLayer {
    const SHAPE: PoolShape;
}

/// Whether the AVX2 + FMA builds may run: the chosen instruction set is an x86
/// one, and both imply AVX2 and FMA.
#[inline(always)]
pub(crate) fn avx2_selected() -> bool {
    !matches!(selected(), Isa::Portable)
}

/// Defines `pub fn $name<L: $bound>(layer: L, args)` running `$body` built for
/// AVX2 + FMA or the baseline, chosen at run time. (The layer is passed as a
/// value, a unit struct, so calls read `conv_forward(Conv1, ...)`.)
macro_rules! dispatched {
    // A plain function (no layer type): the elementwise passes of batchnorm, the
    // residual add and gradient sums, built once in this crate.
    ($(#[$doc:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$doc])*
        #[inline(never)]
        #[allow(clippy::too_many_arguments)]
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) $body
                if $crate::compute::layers::avx2_selected() {
                    // SAFETY: `avx2_selected()` holds only when the CPU has AVX2 and FMA.
                    return unsafe { avx2($($arg),*) };
                }
            }
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn portable($($arg: $ty),*) $body
            portable($($arg),*)
        }
    };
    ($(#[$doc:meta])* $name:ident<L: $bound:ident>($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$doc])*
        #[inline(never)]
        pub fn $name<L: $bound>(_layer: L, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<L: $bound>($($arg: $ty),*) $body
                if avx2_selected() {
                    // SAFETY: `avx2_selected()` holds only when the CPU has AVX2 and FMA.
                    return unsafe { avx2::<L>($($arg),*) };
                }
            }
            #[inline(always)]
            fn portable<L: $bound>($($arg: $ty),*) $body
            portable::<L>($($arg),*)
        }
    };
}

pub(crate) use dispatched;

dispatched! {
    /// `y = act(conv(x, w) + b + add)` for `n` samples. Training passes no `add`;
    /// inference passes a residual join's other input there and the weights and
    /// bias with the batchnorm after the layer folded in (see `codegen::infer`),
    /// so neither the join nor the batchnorm costs a pass of its own.
    conv_forward<L: ConvLayer>(
        x: &[f32], w: &[f32], b: Option<&[f32]>, add: Option<&[f32]>, act: Activation, y: &mut [f32], n: usize,
        scratch: &mut [f32],
    ) {
        conv::forward(&L::SHAPE, conv::Sizes::Constant, conv::Epilogue { add, act }, x, w, b, y, n, scratch)
    }
}

dispatched! {
    /// Adds to `dw` and `db`, writes `dx` when given; `dy` is taken after the activation's derivative.
    conv_backward<L: ConvLayer>(
        x: &[f32], w: &[f32], dy: &[f32], dw: &mut [f32], db: Option<&mut [f32]>,
        dx: Option<&mut [f32]>, n: usize, scratch: &mut [f32],
    ) {
        conv::backward(&L::SHAPE, conv::Sizes::Constant, x, w, dy, dw, db, dx, n, scratch)
    }
}

/// The scratch a worker needs for a convolution layer.
pub const fn conv_scratch<L: ConvLayer>() -> usize {
    L::SHAPE.scratch_len()
}

dispatched! {
    /// `y = act(x·wᵀ + b)` for `n` samples.
    dense_forward<L: DenseLayer>(x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32], n: usize, scratch: &mut [f32]) {
        dense::forward(L::INPUTS, L::OUTPUTS, L::ACT, x, w, b, y, n, scratch)
    }
}

dispatched! {
    /// Adds to `dw` and `db`, writes `dx` when given; `dy` is taken after the activation's derivative.
    dense_backward<L: DenseLayer>(
        x: &[f32], w: &[f32], dy: &[f32], dw: &mut [f32], db: Option<&mut [f32]>,
        dx: Option<&mut [f32]>, n: usize, scratch: &mut [f32],
    ) {
        dense::backward(L::INPUTS, L::OUTPUTS, x, w, dy, dw, db, dx, n, scratch)
    }
}

/// The scratch a worker of `samples` samples needs for a dense layer.
pub const fn dense_scratch<L: DenseLayer>(samples: usize) -> usize {
    dense::scratch_len(L::INPUTS, L::OUTPUTS, samples)
}

dispatched! {
    max_pool_forward<L: PoolLayer>(x: &[f32], y: &mut [f32], n: usize) {
        pool::max_forward(&L::SHAPE, x, y, n)
    }
}

dispatched! {
    max_pool_backward<L: PoolLayer>(x: &[f32], dy: &[f32], dx: &mut [f32], n: usize) {
        pool::max_backward(&L::SHAPE, x, dy, dx, n)
    }
}

dispatched! {
    avg_pool_forward<L: PoolLayer>(x: &[f32], y: &mut [f32], n: usize) {
        pool::avg_forward(&L::SHAPE, x, y, n)
    }
}

dispatched! {
    avg_pool_backward<L: PoolLayer>(dy: &[f32], dx: &mut [f32], n: usize) {
        pool::avg_backward(&L::SHAPE, dy, dx, n)
    }
}

// The same kernels with the shape as a value, for the run-time plan executor
// (`rt::exec`): one build per CPU path instead of one per layer shape. The
// fields the innermost loops read (window, strides, dilation) are made constants
// for the common windows by `fixed!`, so those loops unroll and vectorize as in
// generated code (a stride known to be 1 makes a row access contiguous); the
// other shapes take the general build. Measured on LeNet training (one thread,
// AMD EPYC Zen 5): 18,000 images/s with every field a run-time value, 22,400
// with `fixed!` (2026-12-07, after the literal 2x2 pooling forward in `pool.rs`;
// the backward passes are where it still pays). Loops whose trip counts are
// run-time values still trail generated code's (LeNet's pooling and unfolding
// about 5x: `cnnc bench` shows them).

/// `$call` with `$s` (a `&ConvShape` or `&PoolShape`) rebound to a copy whose
/// window, strides (and for convolutions dilation) are literal constants when
/// they are one of the common combinations.
macro_rules! fixed {
    (conv $s:ident => $call:expr) => {{
        let g = $s;
        match (g.kh, g.kw, g.sh, g.sw, g.dh, g.dw) {
            (1, 1, 1, 1, 1, 1) => {
                let $s = &ConvShape {
                    kh: 1,
                    kw: 1,
                    sh: 1,
                    sw: 1,
                    dh: 1,
                    dw: 1,
                    ..*g
                };
                $call
            }
            (3, 3, 1, 1, 1, 1) => {
                let $s = &ConvShape {
                    kh: 3,
                    kw: 3,
                    sh: 1,
                    sw: 1,
                    dh: 1,
                    dw: 1,
                    ..*g
                };
                $call
            }
            (5, 5, 1, 1, 1, 1) => {
                let $s = &ConvShape {
                    kh: 5,
                    kw: 5,
                    sh: 1,
                    sw: 1,
                    dh: 1,
                    dw: 1,
                    ..*g
                };
                $call
            }
            (1, 1, 2, 2, 1, 1) => {
                let $s = &ConvShape {
                    kh: 1,
                    kw: 1,
                    sh: 2,
                    sw: 2,
                    dh: 1,
                    dw: 1,
                    ..*g
                };
                $call
            }
            (3, 3, 2, 2, 1, 1) => {
                let $s = &ConvShape {
                    kh: 3,
                    kw: 3,
                    sh: 2,
                    sw: 2,
                    dh: 1,
                    dw: 1,
                    ..*g
                };
                $call
            }
            (7, 7, 2, 2, 1, 1) => {
                let $s = &ConvShape {
                    kh: 7,
                    kw: 7,
                    sh: 2,
                    sw: 2,
                    dh: 1,
                    dw: 1,
                    ..*g
                };
                $call
            }
            _ => {
                let $s = g;
                $call
            }
        }
    }};
    (pool $s:ident => $call:expr) => {{
        let g = $s;
        match (g.kh, g.kw, g.sh, g.sw) {
            (2, 2, 2, 2) => {
                let $s = &PoolShape {
                    kh: 2,
                    kw: 2,
                    sh: 2,
                    sw: 2,
                    ..*g
                };
                $call
            }
            (3, 3, 2, 2) => {
                let $s = &PoolShape {
                    kh: 3,
                    kw: 3,
                    sh: 2,
                    sw: 2,
                    ..*g
                };
                $call
            }
            (3, 3, 1, 1) => {
                let $s = &PoolShape {
                    kh: 3,
                    kw: 3,
                    sh: 1,
                    sw: 1,
                    ..*g
                };
                $call
            }
            _ => {
                let $s = g;
                $call
            }
        }
    }};
}

dispatched! {
    /// [`conv_forward`] for a shape known at run time.
    pub fn conv_forward_dyn(
        s: &ConvShape, x: &[f32], w: &[f32], b: Option<&[f32]>, add: Option<&[f32]>, act: Activation, y: &mut [f32],
        n: usize, scratch: &mut [f32],
    ) {
        fixed!(conv s => conv::forward(s, conv::Sizes::RunTime, conv::Epilogue { add, act }, x, w, b, y, n, scratch))
    }
}

dispatched! {
    /// [`conv_backward`] for a shape known at run time.
    pub fn conv_backward_dyn(
        s: &ConvShape, x: &[f32], w: &[f32], dy: &[f32], dw: &mut [f32], db: Option<&mut [f32]>,
        dx: Option<&mut [f32]>, n: usize, scratch: &mut [f32],
    ) {
        fixed!(conv s => conv::backward(s, conv::Sizes::RunTime, x, w, dy, dw, db, dx, n, scratch))
    }
}

dispatched! {
    /// [`dense_forward`] for sizes known at run time.
    pub fn dense_forward_dyn(
        inputs: usize, outputs: usize, act: Activation, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32],
        n: usize, scratch: &mut [f32],
    ) {
        dense::forward(inputs, outputs, act, x, w, b, y, n, scratch)
    }
}

dispatched! {
    /// [`dense_backward`] for sizes known at run time.
    pub fn dense_backward_dyn(
        inputs: usize, outputs: usize, x: &[f32], w: &[f32], dy: &[f32], dw: &mut [f32], db: Option<&mut [f32]>,
        dx: Option<&mut [f32]>, n: usize, scratch: &mut [f32],
    ) {
        dense::backward(inputs, outputs, x, w, dy, dw, db, dx, n, scratch)
    }
}

dispatched! {
    /// [`max_pool_forward`] for a shape known at run time.
    pub fn max_pool_forward_dyn(s: &PoolShape, x: &[f32], y: &mut [f32], n: usize) {
        fixed!(pool s => pool::max_forward(s, x, y, n))
    }
}

dispatched! {
    /// [`max_pool_backward`] for a shape known at run time.
    pub fn max_pool_backward_dyn(s: &PoolShape, x: &[f32], dy: &[f32], dx: &mut [f32], n: usize) {
        fixed!(pool s => pool::max_backward(s, x, dy, dx, n))
    }
}

dispatched! {
    /// [`avg_pool_forward`] for a shape known at run time.
    pub fn avg_pool_forward_dyn(s: &PoolShape, x: &[f32], y: &mut [f32], n: usize) {
        fixed!(pool s => pool::avg_forward(s, x, y, n))
    }
}

dispatched! {
    /// [`avg_pool_backward`] for a shape known at run time.
    pub fn avg_pool_backward_dyn(s: &PoolShape, dy: &[f32], dx: &mut [f32], n: usize) {
        fixed!(pool s => pool::avg_backward(s, dy, dx, n))
    }
}

dispatched! {
    /// v3: [`transpose::forward`] for a shape known at run time.
    pub fn conv_transpose_forward_dyn(
        s: &TransposeShape, act: Activation, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32], n: usize,
        scratch: &mut [f32],
    ) {
        transpose::forward(s, act, x, w, b, y, n, scratch)
    }
}

dispatched! {
    /// v3: [`transpose::backward`] for a shape known at run time.
    pub fn conv_transpose_backward_dyn(
        s: &TransposeShape, x: &[f32], w: &[f32], dy: &[f32], dw: &mut [f32], db: Option<&mut [f32]>,
        dx: Option<&mut [f32]>, n: usize, scratch: &mut [f32],
    ) {
        transpose::backward(s, x, w, dy, dw, db, dx, n, scratch)
    }
}

dispatched! {
    /// v3: [`upsample::forward`] for a shape known at run time.
    pub fn upsample_forward_dyn(s: &UpsampleShape, x: &[f32], y: &mut [f32], n: usize) {
        upsample::forward(s, x, y, n)
    }
}

dispatched! {
    /// v3: [`upsample::backward`] for a shape known at run time.
    pub fn upsample_backward_dyn(s: &UpsampleShape, dy: &[f32], dx: &mut [f32], n: usize) {
        upsample::backward(s, dy, dx, n)
    }
}
