//! Convolution: one forward and one backward function per distinct shape, each
//! passing a constant `ConvShape` to the kernel so every bound is known.

use super::activation::act_tokens;
use super::plan::{Activation, WindowShape};
use proc_macro2::{Ident, TokenStream};
use quote::quote;

/// `const NAME: ConvShape = ...;`, shared by the layer's forward and backward functions.
pub fn shape_const(name: &Ident, s: &WindowShape, filters: usize) -> TokenStream {
    let fields = s.fields(Some(filters));
    quote! {
        const #name: ::cnnc::compute::ConvShape = ::cnnc::compute::ConvShape { #fields };
    }
}

pub fn forward_fn(name: &Ident, shape: &Ident, act: Activation) -> TokenStream {
    let act = act_tokens(act);
    let params = quote!(x: &[f32], w: &[f32], b: &[f32], y: &mut [f32], n: usize, scratch: &mut [f32]);
    let args = quote!(x, w, b, y, n, scratch);
    let body = quote!(::cnnc::compute::conv::forward(&Self::#shape, #act, x, w, b, y, n, scratch));
    super::multiversion(name, params, args, body)
}

pub fn backward_fn(name: &Ident, shape: &Ident) -> TokenStream {
    let params = quote!(x: &[f32], w: &[f32], dy: &[f32], dw: &mut [f32], db: &mut [f32], dx: Option<&mut [f32]>, n: usize, scratch: &mut [f32]);
    let args = quote!(x, w, dy, dw, db, dx, n, scratch);
    let body = quote!(::cnnc::compute::conv::backward(&Self::#shape, x, w, dy, dw, db, dx, n, scratch));
    super::multiversion(name, params, args, body)
}
