//! Dense layers: a marker type per distinct shape, and calls of the generic
//! kernels with it (`compute::layers`).

use super::plan::{Activation, Kind};
use super::{act_tokens, fused_act_backward, Emit};
use proc_macro2::{Ident, TokenStream};
use quote::quote;

fn sizes(e: &Emit, s: usize) -> (usize, usize, Activation) {
    match e.step(s).kind {
        Kind::Dense {
            inputs, outputs, act, ..
        } => (inputs, outputs, act),
        _ => unreachable!("dense emitter on a dense step"),
    }
}

/// The layer's marker type: `struct Dense400_to_120Relu; impl rt::DenseLayer for ... { ... }`
/// (the fused activation named unless it is the identity).
pub(super) fn layer_type(e: &mut Emit, s: usize) -> Ident {
    let (inputs, outputs, act) = sizes(e, s);
    let act_name: String = match act {
        Activation::Identity => String::new(),
        act => format!("{act:?}").chars().filter(char::is_ascii_alphanumeric).collect(),
    };
    let name = format!("Dense{inputs}_to_{outputs}{act_name}");
    e.layer_type(format!("dense {inputs} {outputs} {act:?}"), name, |e, name| {
        let act = act_tokens(act);
        e.scratch.push(quote!(rt::dense_scratch::<#name>(samples)));
        quote! {
            struct #name;
            impl rt::DenseLayer for #name {
                const INPUTS: usize = #inputs;
                const OUTPUTS: usize = #outputs;
                const ACT: rt::Activation = #act;
            }
        }
    })
}

pub fn forward(e: &mut Emit, s: usize) -> TokenStream {
    let layer = layer_type(e, s);
    let step = e.step(s);
    let (x, w, b, y) = (e.x(s, 0), e.param(step.weight), e.bias(step.bias), e.y_mut(s));
    quote!(rt::dense_forward(#layer, #x, #w, #b, #y, n, &mut self.scratch);)
}

pub fn backward(e: &mut Emit, s: usize) -> TokenStream {
    let layer = layer_type(e, s);
    let act_backward = fused_act_backward(e, s, sizes(e, s).2);
    let grads = e.weight_grads(s);
    let (x, w, dy) = (e.x(s, 0), e.param(e.step(s).weight), e.dy(s));
    let call = e.dx_option(
        s,
        |dx| quote!(rt::dense_backward(#layer, #x, #w, #dy, dw, db, #dx, n, &mut self.scratch);),
    );
    quote! {
        #act_backward
        #grads
        #call
    }
}
