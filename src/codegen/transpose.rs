//! Transposed convolution (v3): a marker type per distinct shape carrying the
//! convolution it transposes, and calls of `compute::transpose` through its
//! run-time-shape entry points.

use super::plan::{Activation, ConvGeometry, Kind};
use super::{act_tokens, fused_act_backward, Emit};
use proc_macro2::{Ident, TokenStream};
use quote::quote;

fn geometry(e: &Emit, s: usize) -> (ConvGeometry, Activation) {
    match e.step(s).kind {
        Kind::ConvTranspose { conv, act, .. } => (conv, act),
        _ => unreachable!("convtranspose emitter on a convtranspose step"),
    }
}

/// `struct ConvTranspose2x2s2_16x16x16_to_32; impl ... { const SHAPE: rt::TransposeShape = ...; }`,
/// named by the convolution it transposes.
pub(super) fn layer_type(e: &mut Emit, s: usize) -> Ident {
    let (g, _) = geometry(e, s);
    let name = super::conv::type_name("ConvTranspose", &g);
    e.layer_type(format!("convtranspose {g:?}"), name, |e, name| {
        let conv = super::conv::shape_literal(&g);
        e.scratch.push(quote!(#name::SHAPE.scratch_len()));
        quote! {
            struct #name;
            impl #name {
                const SHAPE: rt::TransposeShape = rt::TransposeShape { conv: #conv };
            }
        }
    })
}

pub fn forward(e: &mut Emit, s: usize) -> TokenStream {
    let layer = layer_type(e, s);
    let act = act_tokens(geometry(e, s).1);
    let step = e.step(s);
    let (x, w, b, y) = (e.x(s, 0), e.param(step.weight), e.bias(step.bias), e.y_mut(s));
    quote!(rt::conv_transpose_forward_dyn(&#layer::SHAPE, #act, #x, #w, #b, #y, n, &mut self.scratch);)
}

pub fn backward(e: &mut Emit, s: usize) -> TokenStream {
    let layer = layer_type(e, s);
    let act_backward = fused_act_backward(e, s, geometry(e, s).1);
    let grads = e.weight_grads(s);
    let (x, w, dy) = (e.x(s, 0), e.param(e.step(s).weight), e.dy(s));
    let call = e.dx_option(
        s,
        |dx| quote!(rt::conv_transpose_backward_dyn(&#layer::SHAPE, #x, #w, #dy, dw, db, #dx, n, &mut self.scratch);),
    );
    quote! {
        #act_backward
        #grads
        #call
    }
}
