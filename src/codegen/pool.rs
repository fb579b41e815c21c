//! Max, average and global average pooling: a marker type per distinct window
//! for the windowed kinds, and calls of the generic kernels with it; global
//! pooling calls its kernel directly.

use super::plan::{Kind, WindowShape};
use super::Emit;
use proc_macro2::{Ident, TokenStream};
use quote::quote;

/// The layer's marker type: `struct Maxpool1; impl rt::PoolLayer for Maxpool1 { ... }`.
fn layer_type(e: &mut Emit, s: usize, w: &WindowShape) -> Ident {
    e.layer_type(format!("pool {w:?}"), s, |_, name| {
        let (c, h, width) = (w.c, w.h, w.w);
        let ([kh, kw], [sh, sw], [pt, pl], [pb, pr], oh, ow) =
            (w.window, w.stride, w.pad_before, w.pad_after, w.oh, w.ow);
        quote! {
            struct #name;
            impl rt::PoolLayer for #name {
                const SHAPE: rt::PoolShape = rt::PoolShape {
                    c: #c, h: #h, w: #width, kh: #kh, kw: #kw, sh: #sh, sw: #sw,
                    pt: #pt, pb: #pb, pl: #pl, pr: #pr, oh: #oh, ow: #ow,
                };
            }
        }
    })
}

pub fn forward(e: &mut Emit, s: usize) -> TokenStream {
    let (x, y) = (e.x(s, 0), e.y_mut(s));
    match e.step(s).kind.clone() {
        Kind::MaxPool(w) => {
            let layer = layer_type(e, s, &w);
            quote!(rt::max_pool_forward(#layer, #x, #y, n);)
        }
        Kind::AvgPool(w) => {
            let layer = layer_type(e, s, &w);
            quote!(rt::avg_pool_forward(#layer, #x, #y, n);)
        }
        Kind::GlobalAvgPool { channels, area } => quote!(rt::pool::global_avg_forward(#channels, #area, #x, #y, n);),
        _ => unreachable!("pool emitter on a pool step"),
    }
}

pub fn backward(e: &mut Emit, s: usize) -> TokenStream {
    let (x, dy) = (e.x(s, 0), e.dy(s));
    match e.step(s).kind.clone() {
        Kind::MaxPool(w) => {
            let layer = layer_type(e, s, &w);
            e.dx(s, 0, |dx| quote!(rt::max_pool_backward(#layer, #x, #dy, #dx, n);))
        }
        Kind::AvgPool(w) => {
            let layer = layer_type(e, s, &w);
            e.dx(s, 0, |dx| quote!(rt::avg_pool_backward(#layer, #dy, #dx, n);))
        }
        Kind::GlobalAvgPool { channels, area } => e.dx(
            s,
            0,
            |dx| quote!(rt::pool::global_avg_backward(#channels, #area, #dy, #dx, n);),
        ),
        _ => unreachable!("pool emitter on a pool step"),
    }
}
