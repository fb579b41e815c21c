//! Dense layers: one forward and one backward function per distinct shape.

use super::activation::act_tokens;
use super::plan::Act;
use proc_macro2::{Ident, TokenStream};
use quote::quote;

pub fn forward_fn(name: &Ident, inputs: usize, outputs: usize, act: Act) -> TokenStream {
    let act = act_tokens(act);
    quote! {
        #[inline(never)]
        fn #name(x: &[f32], w: &[f32], b: &[f32], y: &mut [f32], n: usize, scratch: &mut [f32]) {
            ::cnnc::kernels::dense::forward(#inputs, #outputs, #act, x, w, b, y, n, scratch)
        }
    }
}

pub fn backward_fn(name: &Ident, inputs: usize, outputs: usize) -> TokenStream {
    quote! {
        #[inline(never)]
        #[allow(clippy::too_many_arguments)]
        fn #name(
            x: &[f32], w: &[f32], dy: &[f32], dw: &mut [f32], db: &mut [f32],
            dx: Option<&mut [f32]>, n: usize, scratch: &mut [f32],
        ) {
            ::cnnc::kernels::dense::backward(#inputs, #outputs, x, w, dy, dw, db, dx, n, scratch)
        }
    }
}
