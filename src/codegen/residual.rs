//! Residual blocks: the body and the shortcut are ordinary steps; the block
//! itself is the join, `body + shortcut`, with the activation after it fused.
//! Its backward pass hands the gradient to both branches; the block's input,
//! read by both, accumulates the two (see `Plan::accumulates`).

use super::plan::Kind;
use super::{act_tokens, fused_act_backward, Emit};
use proc_macro2::TokenStream;
use quote::quote;

fn act(e: &Emit, s: usize) -> super::plan::Activation {
    match e.step(s).kind {
        Kind::Add { act } => act,
        _ => unreachable!("residual emitter on a join step"),
    }
}

pub fn forward(e: &mut Emit, s: usize) -> TokenStream {
    let act = act_tokens(act(e, s));
    let (a, b, y) = (e.x(s, 0), e.x(s, 1), e.y_mut(s));
    quote!(rt::norm::add_forward(#a, #b, #y, #act);)
}

pub fn backward(e: &mut Emit, s: usize) -> TokenStream {
    let act_backward = fused_act_backward(e, s, act(e, s));
    let dy = e.dy(s);
    let to_body = e.pass_gradient(s, 0, &dy);
    let to_shortcut = e.pass_gradient(s, 1, &dy);
    quote! {
        #act_backward
        #to_body
        #to_shortcut
    }
}
