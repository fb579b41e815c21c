//! Upsampling (v3): calls of `compute::upsample` with the shape as a constant.

use super::plan::Kind;
use super::Emit;
use proc_macro2::TokenStream;
use quote::quote;

fn shape(e: &Emit, s: usize) -> TokenStream {
    let Kind::Upsample {
        c,
        h,
        w,
        factor: [fh, fw],
        bilinear,
    } = e.step(s).kind
    else {
        unreachable!("upsample emitter on an upsample step")
    };
    quote!(&rt::UpsampleShape { c: #c, h: #h, w: #w, fh: #fh, fw: #fw, bilinear: #bilinear })
}

pub fn forward(e: &mut Emit, s: usize) -> TokenStream {
    let (shape, x, y) = (shape(e, s), e.x(s, 0), e.y_mut(s));
    quote!(rt::upsample_forward_dyn(#shape, #x, #y, n);)
}

pub fn backward(e: &mut Emit, s: usize) -> TokenStream {
    let (shape, dy) = (shape(e, s), e.dy(s));
    e.dx(s, 0, |dx| quote!(rt::upsample_backward_dyn(#shape, #dy, #dx, n);))
}
