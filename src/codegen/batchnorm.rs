//! Batch normalization. Its passes are cut in two around the driver's combine of
//! the batch statistics (see `rt::driver`): the forward pass computes this
//! worker's partial statistics at the end of one phase and normalizes at the
//! start of the next; the backward pass computes partial sums at the end of one
//! phase and the input gradient at the start of the next. In inference the
//! statistics come from the running statistics and nothing is combined.

use super::plan::{Activation, Kind};
use super::{act_tokens, Emit};
use proc_macro2::TokenStream;
use quote::quote;

/// `(index, channels, area, act)`.
fn layout(e: &Emit, s: usize) -> (usize, usize, usize, Activation) {
    match e.step(s).kind {
        Kind::BatchNorm {
            index,
            channels,
            area,
            act,
        } => (index, channels, area, act),
        _ => unreachable!("batchnorm emitter on a batchnorm step"),
    }
}

/// End of the phase before: this worker's per-channel mean and squared deviations.
pub fn forward_stats(e: &mut Emit, s: usize) -> TokenStream {
    let (_, c, area, _) = layout(e, s);
    let x = e.x(s, 0);
    quote! {
        if pass.train {
            rt::norm::bn_partial_stats(#x, at, n, #c, #area, &mut self.partials);
        }
    }
}

/// Start of the phase: normalize with the combined (or running) statistics.
pub fn forward_apply(e: &mut Emit, s: usize) -> TokenStream {
    let (index, c, area, act) = layout(e, s);
    let step = e.step(s);
    let (x, y) = (e.x(s, 0), e.y_mut(s));
    let (gamma, beta) = (e.param(step.weight), e.param(step.bias));
    let stats = e.shared(index, false);
    let act = act_tokens(act);
    quote! {
        rt::norm::bn_forward(#x, #y, n, #c, #area, #stats, #gamma, #beta, #act);
    }
}

/// End of the backward phase after: the fused activation's derivative, this
/// worker's Σdy and Σdy·x̂ (also added to dβ and dγ).
pub fn backward_partial(e: &mut Emit, s: usize) -> TokenStream {
    let (index, c, area, act) = layout(e, s);
    let step = e.step(s);
    let (x, y, dy) = (e.x(s, 0), e.y(s), e.dy_mut(s));
    let grads = e.grad_pair(
        step.weight.expect("batchnorm has a weight"),
        step.bias.expect("batchnorm has a bias"),
    );
    let stats = e.shared(index, false);
    let act = act_tokens(act);
    quote! {
        let (dgamma, dbeta) = #grads;
        rt::norm::bn_backward_partial(
            #x, #y, #dy, n, #c, #area, #stats, #act, dgamma, dbeta, at, &mut self.partials,
        );
    }
}

/// Start of the backward phase: the input gradient, from the combined sums.
pub fn backward_input(e: &mut Emit, s: usize) -> TokenStream {
    let (index, c, area, _) = layout(e, s);
    let step = e.step(s);
    let (x, dy, gamma) = (e.x(s, 0), e.dy(s), e.param(step.weight));
    let (stats, sums) = (e.shared(index, false), e.shared(index, true));
    e.dx(s, 0, |dx| {
        quote! {
            rt::norm::bn_backward_input(
                #x, #dy, #dx, n, #c, #area, #stats, #sums, #gamma, pass.batch * #area,
            );
        }
    })
}
