//! Dropout: in training a mask drawn from (seed, step, layer, sample), so a seeded
//! run does not depend on the thread count; the identity in inference.

use super::plan::Kind;
use super::Emit;
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// The field holding dropout layer `layer`'s mask.
pub fn mask(layer: u64) -> Ident {
    format_ident!("mask{}", layer)
}

fn params(e: &Emit, s: usize) -> (f32, u64) {
    match e.step(s).kind {
        Kind::Dropout { p, layer } => (p, layer),
        _ => unreachable!("dropout emitter on a dropout step"),
    }
}

pub fn forward(e: &mut Emit, s: usize) -> TokenStream {
    let (p, layer) = params(e, s);
    let (x, y) = (e.x(s, 0), e.y_mut(s));
    let len = e.plan.buffers[e.step(s).output];
    if e.plan.loss.is_none() {
        // Inference only: no masks.
        return quote!((#y).copy_from_slice(#x););
    }
    let m = super::buffer_ref(&mask(layer), len, true);
    quote! {
        if pass.train {
            rt::dropout::forward(
                #p, pass.seed, pass.step, #layer, pass.first + at, #x, #y, #m, n, #len,
            );
        } else {
            (#y).copy_from_slice(#x);
        }
    }
}

pub fn backward(e: &mut Emit, s: usize) -> TokenStream {
    let (_, layer) = params(e, s);
    let len = e.plan.buffers[e.step(s).output];
    let m = super::buffer_ref(&mask(layer), len, false);
    let dy = e.dy(s);
    e.dx(s, 0, |dx| quote!(rt::dropout::backward(#m, #dy, #dx);))
}
