//! Max, average and global average pooling: one forward and one backward
//! function per distinct shape.

use super::plan::WindowShape;
use proc_macro2::{Ident, TokenStream};
use quote::quote;

/// `const NAME: PoolShape = ...;`, shared by the layer's forward and backward functions.
pub fn shape_const(name: &Ident, s: &WindowShape) -> TokenStream {
    let fields = s.fields(None);
    quote! {
        const #name: ::cnnc::compute::PoolShape = ::cnnc::compute::PoolShape { #fields };
    }
}

pub fn max_forward_fn(name: &Ident, shape: &Ident) -> TokenStream {
    let params = quote!(x: &[f32], y: &mut [f32], n: usize);
    let args = quote!(x, y, n);
    let body = quote!(::cnnc::compute::pool::max_forward(&Self::#shape, x, y, n));
    super::multiversion(name, params, args, body)
}

pub fn max_backward_fn(name: &Ident, shape: &Ident) -> TokenStream {
    let params = quote!(x: &[f32], dy: &[f32], dx: &mut [f32], n: usize);
    let args = quote!(x, dy, dx, n);
    let body = quote!(::cnnc::compute::pool::max_backward(&Self::#shape, x, dy, dx, n));
    super::multiversion(name, params, args, body)
}

pub fn avg_forward_fn(name: &Ident, shape: &Ident) -> TokenStream {
    let params = quote!(x: &[f32], y: &mut [f32], n: usize);
    let args = quote!(x, y, n);
    let body = quote!(::cnnc::compute::pool::avg_forward(&Self::#shape, x, y, n));
    super::multiversion(name, params, args, body)
}

pub fn avg_backward_fn(name: &Ident, shape: &Ident) -> TokenStream {
    let params = quote!(dy: &[f32], dx: &mut [f32], n: usize);
    let args = quote!(dy, dx, n);
    let body = quote!(::cnnc::compute::pool::avg_backward(&Self::#shape, dy, dx, n));
    super::multiversion(name, params, args, body)
}

pub fn global_forward(channels: usize, area: usize, x: &TokenStream, y: &TokenStream) -> TokenStream {
    quote!(::cnnc::compute::pool::global_avg_forward(#channels, #area, #x, #y, n);)
}

pub fn global_backward(channels: usize, area: usize, dy: &TokenStream, dx: &TokenStream) -> TokenStream {
    quote!(::cnnc::compute::pool::global_avg_backward(#channels, #area, #dy, #dx, n);)
}
