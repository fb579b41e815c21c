//! Input normalization (`input ... normalize mean ... std ...`): `(x - mean) / std`
//! per channel before the first layer, in training and inference alike.

use super::plan::Kind;
use super::Emit;
use proc_macro2::TokenStream;
use quote::quote;

fn params(e: &Emit, s: usize) -> (usize, Vec<f32>, Vec<f32>) {
    match &e.step(s).kind {
        Kind::Normalize { area, mean, std, .. } => (*area, mean.clone(), std.clone()),
        _ => unreachable!("normalize emitter on a normalize step"),
    }
}

pub fn forward(e: &mut Emit, s: usize) -> TokenStream {
    let (area, mean, std) = params(e, s);
    let (x, y) = (e.x(s, 0), e.y_mut(s));
    quote!(rt::norm::normalize_forward(#x, #y, n, &[#(#mean),*], &[#(#std),*], #area);)
}

pub fn backward(e: &mut Emit, s: usize) -> TokenStream {
    let (area, _, std) = params(e, s);
    let dy = e.dy(s);
    e.dx(
        s,
        0,
        |dx| quote!(rt::norm::normalize_backward(#dy, #dx, n, &[#(#std),*], #area);),
    )
}
