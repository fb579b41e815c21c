//! Max, average and global average pooling: one forward and one backward
//! function per distinct shape.

use super::plan::WindowShape;
use proc_macro2::{Ident, TokenStream};
use quote::quote;

fn shape_tokens(s: &WindowShape) -> TokenStream {
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
        ::cnnc::kernels::PoolShape {
            c: #c, h: #h, w: #w, kh: #kh, kw: #kw, sh: #sh, sw: #sw,
            pt: #pt, pb: #pb, pl: #pl, pr: #pr, oh: #oh, ow: #ow,
        }
    }
}

pub fn max_forward_fn(name: &Ident, s: &WindowShape) -> TokenStream {
    let shape = shape_tokens(s);
    quote! {
        #[inline(never)]
        fn #name(x: &[f32], y: &mut [f32], n: usize) {
            const S: ::cnnc::kernels::PoolShape = #shape;
            ::cnnc::kernels::pool::max_forward(&S, x, y, n)
        }
    }
}

pub fn max_backward_fn(name: &Ident, s: &WindowShape) -> TokenStream {
    let shape = shape_tokens(s);
    quote! {
        #[inline(never)]
        fn #name(x: &[f32], dy: &[f32], dx: &mut [f32], n: usize) {
            const S: ::cnnc::kernels::PoolShape = #shape;
            ::cnnc::kernels::pool::max_backward(&S, x, dy, dx, n)
        }
    }
}

pub fn avg_forward_fn(name: &Ident, s: &WindowShape) -> TokenStream {
    let shape = shape_tokens(s);
    quote! {
        #[inline(never)]
        fn #name(x: &[f32], y: &mut [f32], n: usize) {
            const S: ::cnnc::kernels::PoolShape = #shape;
            ::cnnc::kernels::pool::avg_forward(&S, x, y, n)
        }
    }
}

pub fn avg_backward_fn(name: &Ident, s: &WindowShape) -> TokenStream {
    let shape = shape_tokens(s);
    quote! {
        #[inline(never)]
        fn #name(dy: &[f32], dx: &mut [f32], n: usize) {
            const S: ::cnnc::kernels::PoolShape = #shape;
            ::cnnc::kernels::pool::avg_backward(&S, dy, dx, n)
        }
    }
}

pub fn global_forward(channels: usize, area: usize, x: &TokenStream, y: &TokenStream) -> TokenStream {
    quote!(::cnnc::kernels::pool::global_avg_forward(#channels, #area, #x, #y, n);)
}

pub fn global_backward(channels: usize, area: usize, dy: &TokenStream, dx: &TokenStream) -> TokenStream {
    quote!(::cnnc::kernels::pool::global_avg_backward(#channels, #area, #dy, #dx, n);)
}
