//! Convolution: a marker type per distinct shape carrying it as a constant, and
//! calls of the generic kernels with it (`compute::layers`).

use super::plan::{Activation, ConvGeometry, Kind};
use super::{act_tokens, fused_act_backward, Emit};
use proc_macro2::{Ident, TokenStream};
use quote::quote;

fn geometry(e: &Emit, s: usize) -> (ConvGeometry, Activation) {
    match e.step(s).kind {
        Kind::Conv { shape, act, .. } => (shape, act),
        _ => unreachable!("conv emitter on a conv step"),
    }
}

/// What a convolution of geometry `g` is, as a type name: `Conv3x3_16x32x32_to_32`,
/// with the stride, dilation and groups when not 1 (`Conv3x3s2_...`), and
/// `DwConv` for a depthwise one.
pub(super) fn type_name(kind: &str, g: &ConvGeometry) -> String {
    let w = &g.window;
    let [kh, kw] = w.window;
    let mut name = match g.groups {
        1 => format!("{kind}{kh}x{kw}"),
        groups if groups == w.c && groups == g.filters => format!("Dw{kind}{kh}x{kw}"),
        groups => format!("{kind}{kh}x{kw}g{groups}"),
    };
    for (letter, [a, b]) in [('s', w.stride), ('d', g.dilation)] {
        match (a, b) {
            (1, 1) => {}
            (a, b) if a == b => name += &format!("{letter}{a}"),
            (a, b) => name += &format!("{letter}{a}x{b}"),
        }
    }
    format!("{name}_{}x{}x{}_to_{}", w.c, w.h, w.w, g.filters)
}

/// The layer's marker type: `struct Conv3x3_16x32x32_to_16; impl rt::ConvLayer for ... { ... }`.
pub(super) fn layer_type(e: &mut Emit, s: usize) -> Ident {
    let (g, _) = geometry(e, s);
    e.layer_type(format!("conv {g:?}"), type_name("Conv", &g), |e, name| {
        let shape = shape_literal(&g);
        e.scratch.push(quote!(rt::conv_scratch::<#name>()));
        quote! {
            struct #name;
            impl rt::ConvLayer for #name {
                const SHAPE: rt::ConvShape = #shape;
            }
        }
    })
}

/// `rt::ConvShape { c: .., .. }` of a convolution's geometry (also the shape a
/// transposed convolution is the data gradient of).
pub(super) fn shape_literal(g: &ConvGeometry) -> TokenStream {
    let w = &g.window;
    let (c, h, width, f) = (w.c, w.h, w.w, g.filters);
    let ([kh, kw], [sh, sw], [pt, pl], [pb, pr]) = (w.window, w.stride, w.pad_before, w.pad_after);
    let ([dh, dw], groups, oh, ow) = (g.dilation, g.groups, w.oh, w.ow);
    quote! {
        rt::ConvShape {
            c: #c, h: #h, w: #width, f: #f, kh: #kh, kw: #kw, sh: #sh, sw: #sw,
            pt: #pt, pb: #pb, pl: #pl, pr: #pr, oh: #oh, ow: #ow, dh: #dh, dw: #dw, g: #groups,
        }
    }
}

/// `act(conv(x) + b)`; in the inference plan also a folded batchnorm (the
/// weights and bias from `pass.folded`) and a residual join's other input added.
pub fn forward(e: &mut Emit, s: usize) -> TokenStream {
    let layer = layer_type(e, s);
    let step = e.step(s);
    let (w, b) = match step.folded {
        Some(f) => e.folded(f),
        None => (e.param(step.weight), e.bias(step.bias)),
    };
    let add = match step.inputs.len() {
        2 => {
            let r = e.x(s, 1);
            quote!(Some(#r))
        }
        _ => quote!(None),
    };
    let (x, y, act) = (e.x(s, 0), e.y_mut(s), act_tokens(geometry(e, s).1));
    quote!(rt::conv_forward(#layer, #x, #w, #b, #add, #act, #y, n, &mut self.scratch);)
}

pub fn backward(e: &mut Emit, s: usize) -> TokenStream {
    let layer = layer_type(e, s);
    let act_backward = fused_act_backward(e, s, geometry(e, s).1);
    let grads = e.weight_grads(s);
    let (x, w, dy) = (e.x(s, 0), e.param(e.step(s).weight), e.dy(s));
    let call = e.dx_option(
        s,
        |dx| quote!(rt::conv_backward(#layer, #x, #w, #dy, dw, db, #dx, n, &mut self.scratch);),
    );
    quote! {
        #act_backward
        #grads
        #call
    }
}
