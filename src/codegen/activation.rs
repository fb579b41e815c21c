//! Activations: tokens for the kernels' `Activation`, and the standalone elementwise,
//! softmax and dropout steps.

use super::plan::Activation;
use proc_macro2::TokenStream;
use quote::quote;

/// `::cnnc::compute::Activation::Relu`, ...
pub fn act_tokens(act: Activation) -> TokenStream {
    match act {
        Activation::Identity => quote!(::cnnc::compute::Activation::Identity),
        Activation::Relu => quote!(::cnnc::compute::Activation::Relu),
        Activation::LeakyRelu(a) => quote!(::cnnc::compute::Activation::LeakyRelu(#a)),
        Activation::Sigmoid => quote!(::cnnc::compute::Activation::Sigmoid),
        Activation::Tanh => quote!(::cnnc::compute::Activation::Tanh),
        Activation::Silu => quote!(::cnnc::compute::Activation::Silu),
        Activation::Gelu => quote!(::cnnc::compute::Activation::Gelu),
    }
}

/// `y = f(x)` for a standalone activation.
pub fn forward(act: Activation, x: &TokenStream, y: &TokenStream) -> TokenStream {
    let act = act_tokens(act);
    quote! {
        (#y).copy_from_slice(#x);
        #act.forward(#y);
    }
}

/// `dx = dy * f'(y)`.
pub fn backward(act: Activation, y: &TokenStream, dy: &TokenStream, dx: &TokenStream) -> TokenStream {
    let act = act_tokens(act);
    quote! {
        (#dx).copy_from_slice(#dy);
        #act.backward(#y, #dx);
    }
}

pub fn softmax_forward(features: usize, x: &TokenStream, y: &TokenStream) -> TokenStream {
    quote!(::cnnc::compute::act::softmax_forward(#x, #y, #features);)
}

pub fn softmax_backward(features: usize, y: &TokenStream, dy: &TokenStream, dx: &TokenStream) -> TokenStream {
    quote!(::cnnc::compute::act::softmax_backward(#y, #dy, #dx, #features);)
}

/// Dropout: a fresh mask in training, the identity in inference.
pub fn dropout_forward(p: f32, x: &TokenStream, y: &TokenStream, mask: &TokenStream) -> TokenStream {
    quote! {
        if train {
            ::cnnc::support::dropout_forward(#p, &mut self.rng, #x, #y, #mask);
        } else {
            (#y).copy_from_slice(#x);
        }
    }
}

pub fn dropout_backward(mask: &TokenStream, dy: &TokenStream, dx: &TokenStream) -> TokenStream {
    quote! {
        for ((dx, dy), m) in (#dx).iter_mut().zip((#dy).iter()).zip((#mask).iter()) {
            *dx = dy * m;
        }
    }
}
