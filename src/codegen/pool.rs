//! Max, average and global average pooling: a marker type per distinct window
//! for the windowed kinds, and calls of the generic kernels with it; global
//! pooling calls its kernel directly.

use super::plan::{Kind, WindowShape};
use super::Emit;
use proc_macro2::{Ident, TokenStream};
use quote::quote;

/// The window's marker type, shared by max and average pooling:
/// `struct Pool2x2s2_6x28x28; impl rt::PoolLayer for ... { ... }`.
fn layer_type(e: &mut Emit, w: &WindowShape) -> Ident {
    let ([kh, kw], [sh, sw]) = (w.window, w.stride);
    let stride = if sh == sw {
        format!("s{sh}")
    } else {
        format!("s{sh}x{sw}")
    };
    let name = format!("Pool{kh}x{kw}{stride}_{}x{}x{}", w.c, w.h, w.w);
    e.layer_type(format!("pool {w:?}"), name, |_, name| {
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
            let layer = layer_type(e, &w);
            quote!(rt::max_pool_forward(#layer, #x, #y, n);)
        }
        Kind::AvgPool(w) => {
            let layer = layer_type(e, &w);
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
            let layer = layer_type(e, &w);
            e.dx(s, 0, |dx| quote!(rt::max_pool_backward(#layer, #x, #dy, #dx, n);))
        }
        Kind::AvgPool(w) => {
            let layer = layer_type(e, &w);
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
