//! Dense layers: one forward and one backward function per distinct shape.

use super::activation::act_tokens;
use super::plan::Activation;
use proc_macro2::{Ident, TokenStream};
use quote::quote;

pub fn forward_fn(name: &Ident, inputs: usize, outputs: usize, act: Activation) -> TokenStream {
    let act = act_tokens(act);
    let params = quote!(x: &[f32], w: &[f32], b: &[f32], y: &mut [f32], n: usize, scratch: &mut [f32]);
    let args = quote!(x, w, b, y, n, scratch);
    let body = quote!(::cnnc::compute::dense::forward(#inputs, #outputs, #act, x, w, b, y, n, scratch));
    super::multiversion(name, params, args, body)
}

pub fn backward_fn(name: &Ident, inputs: usize, outputs: usize) -> TokenStream {
    let params = quote!(x: &[f32], w: &[f32], dy: &[f32], dw: &mut [f32], db: &mut [f32], dx: Option<&mut [f32]>, n: usize, scratch: &mut [f32]);
    let args = quote!(x, w, dy, dw, db, dx, n, scratch);
    let body = quote!(::cnnc::compute::dense::backward(#inputs, #outputs, x, w, dy, dw, db, dx, n, scratch));
    super::multiversion(name, params, args, body)
}
