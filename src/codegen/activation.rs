//! Activations that run as steps of their own (those that could not fuse into
//! the layer before them: silu and gelu, whose derivatives read the input, and
//! the final sigmoid of binary cross-entropy), and softmax.

use super::plan::Kind;
use super::{act_tokens, Emit};
use proc_macro2::TokenStream;
use quote::quote;

pub fn forward(e: &mut Emit, s: usize) -> TokenStream {
    let (x, y) = (e.x(s, 0), e.y_mut(s));
    match e.step(s).kind {
        Kind::Activation(act) => {
            let act = act_tokens(act);
            quote! {
                (#y).copy_from_slice(#x);
                #act.forward(#y);
            }
        }
        Kind::Softmax { features, area: 1 } => quote!(rt::act::softmax_forward(#x, #y, #features);),
        Kind::Softmax { features, area } => quote!(rt::act::softmax_positions_forward(#x, #y, #features, #area);),
        _ => unreachable!("activation emitter on an activation step"),
    }
}

pub fn backward(e: &mut Emit, s: usize) -> TokenStream {
    let (x, y, dy) = (e.x(s, 0), e.y(s), e.dy(s));
    match e.step(s).kind {
        Kind::Activation(act) => {
            let act = act_tokens(act);
            e.dx(s, 0, |dx| quote!(#act.backward_from(#x, #y, #dy, #dx);))
        }
        Kind::Softmax { features, area: 1 } => {
            e.dx(s, 0, |dx| quote!(rt::act::softmax_backward(#y, #dy, #dx, #features);))
        }
        Kind::Softmax { features, area } => e.dx(
            s,
            0,
            |dx| quote!(rt::act::softmax_positions_backward(#y, #dy, #dx, #features, #area);),
        ),
        _ => unreachable!("activation emitter on an activation step"),
    }
}
