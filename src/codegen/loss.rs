//! The loss, fused with the final softmax or sigmoid: its value, and its
//! gradient written straight into the logits' gradient buffer.

use super::plan::LossPlan;
use super::{a, d};
use proc_macro2::TokenStream;
use quote::quote;

/// The body of `fn loss(&mut self, n: usize, total: usize) -> f64`.
pub fn loss_body(loss: LossPlan, out_len: usize) -> TokenStream {
    match loss {
        LossPlan::CrossEntropy { logits, probs, classes } => {
            let (z, p, dz) = (a(logits), a(probs), d(logits));
            quote! {
                ::cnnc::compute::loss::cross_entropy(
                    &self.#z[..n * #classes], &self.#p[..n * #classes], &self.labels[..n],
                    &mut self.#dz[..n * #classes], #classes, total,
                )
            }
        }
        LossPlan::BinaryCrossEntropy { logits, probs } => {
            let (z, p, dz) = (a(logits), a(probs), d(logits));
            quote! {
                ::cnnc::compute::loss::binary_cross_entropy(
                    &self.#z[..n * #out_len], &self.#p[..n * #out_len], &self.targets[..n * #out_len],
                    &mut self.#dz[..n * #out_len], total,
                )
            }
        }
        LossPlan::Mse { output } => {
            let (y, dy) = (a(output), d(output));
            quote! {
                ::cnnc::compute::loss::mse(
                    &self.#y[..n * #out_len], &self.targets[..n * #out_len], &mut self.#dy[..n * #out_len], total,
                )
            }
        }
    }
}
