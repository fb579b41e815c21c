//! Convolution: one forward and one backward function per distinct shape, each
//! passing a constant `ConvShape` to the kernel so every bound is known.

use super::activation::act_tokens;
use super::plan::{Act, WindowShape};
use proc_macro2::{Ident, TokenStream};
use quote::quote;

fn shape_tokens(s: &WindowShape, filters: usize) -> TokenStream {
    let WindowShape {
        c,
        h,
        w,
        window: [kh, kw],
        stride: [sh, sw],
        pad_before: [pt, pl],
        pad_after: [pb, pr],
        oh,
        ow,
    } = *s;
    quote! {
        ::cnnc::kernels::ConvShape {
            c: #c, h: #h, w: #w, f: #filters, kh: #kh, kw: #kw, sh: #sh, sw: #sw,
            pt: #pt, pb: #pb, pl: #pl, pr: #pr, oh: #oh, ow: #ow,
        }
    }
}

pub fn forward_fn(name: &Ident, s: &WindowShape, filters: usize, act: Act) -> TokenStream {
    let shape = shape_tokens(s, filters);
    let act = act_tokens(act);
    quote! {
        #[inline(never)]
        fn #name(x: &[f32], w: &[f32], b: &[f32], y: &mut [f32], n: usize, scratch: &mut [f32]) {
            const S: ::cnnc::kernels::ConvShape = #shape;
            ::cnnc::kernels::conv::forward(&S, #act, x, w, b, y, n, scratch)
        }
    }
}

pub fn backward_fn(name: &Ident, s: &WindowShape, filters: usize) -> TokenStream {
    let shape = shape_tokens(s, filters);
    quote! {
        #[inline(never)]
        #[allow(clippy::too_many_arguments)]
        fn #name(
            x: &[f32], w: &[f32], dy: &[f32], dw: &mut [f32], db: &mut [f32],
            dx: Option<&mut [f32]>, n: usize, scratch: &mut [f32], dscratch: &mut [f32],
        ) {
            const S: ::cnnc::kernels::ConvShape = #shape;
            ::cnnc::kernels::conv::backward(&S, x, w, dy, dw, db, dx, n, scratch, dscratch)
        }
    }
}
