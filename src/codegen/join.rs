//! The v3 joins `concat` and `mul` (`add` shares the residual block's join): each
//! input's gradient written in place, or added where another reader wrote it
//! first (`Plan::accumulates`).

use super::plan::Kind;
use super::{act_tokens, fused_act_backward, Emit};
use proc_macro2::TokenStream;
use quote::quote;

/// `&mut self.d_conv3[at * 400..][..n * 400]` and whether the gradient of input `k` adds to it,
/// guarded when it is the model input's.
fn gradient_of(e: &Emit, s: usize, k: usize, call: impl FnOnce(TokenStream, bool) -> TokenStream) -> TokenStream {
    let b = e.step(s).inputs[k];
    let (field, len) = (&e.grads[b], e.plan.buffers[b]);
    let code = call(super::buffer_ref(field, len, true), e.plan.accumulates(s, k));
    if b == 0 {
        quote!(if pass.input_grad { #code })
    } else {
        code
    }
}

pub(super) fn mul_shape(e: &Emit, s: usize) -> (TokenStream, super::plan::Activation) {
    let Kind::Mul {
        act,
        gate,
        channels,
        area,
    } = e.step(s).kind
    else {
        unreachable!("mul emitter on a mul step")
    };
    let shape = match gate {
        Some(gate) => quote!(rt::MulShape::Gate { gate: #gate, channels: #channels, area: #area }),
        None => quote!(rt::MulShape::Equal),
    };
    (shape, act)
}

pub fn forward(e: &mut Emit, s: usize) -> TokenStream {
    let y = e.y_mut(s);
    match &e.step(s).kind {
        Kind::Concat { lens } => {
            let parts = (0..lens.len()).map(|k| {
                let x = e.x(s, k);
                quote!(rt::join::concat_forward(#x, &[#(#lens),*], #k, #y, n);)
            });
            quote!(#(#parts)*)
        }
        Kind::Mul { .. } => {
            let (shape, act) = mul_shape(e, s);
            let (a, b, act, len) = (e.x(s, 0), e.x(s, 1), act_tokens(act), e.plan.buffers[e.step(s).output]);
            quote!(rt::join::mul_forward(#shape, #a, #b, #y, #act, n, #len);)
        }
        _ => unreachable!("join emitter on a concat or mul step"),
    }
}

pub fn backward(e: &mut Emit, s: usize) -> TokenStream {
    let dy = e.dy(s);
    match &e.step(s).kind {
        Kind::Concat { lens } => {
            let parts = (0..lens.len()).map(|k| {
                gradient_of(
                    e,
                    s,
                    k,
                    |dx, acc| quote!(rt::join::concat_backward(#dy, &[#(#lens),*], #k, #dx, n, #acc);),
                )
            });
            quote!(#(#parts)*)
        }
        Kind::Mul { .. } => {
            let (shape, act) = mul_shape(e, s);
            let act_backward = fused_act_backward(e, s, act);
            let len = e.plan.buffers[e.step(s).output];
            let parts = (0..2).map(|k| {
                let other = e.x(s, 1 - k);
                gradient_of(
                    e,
                    s,
                    k,
                    |dx, acc| quote!(rt::join::mul_backward(#shape, #k, #dy, #other, #dx, n, #len, #acc);),
                )
            });
            quote! {
                #act_backward
                #(#parts)*
            }
        }
        _ => unreachable!("join emitter on a concat or mul step"),
    }
}
