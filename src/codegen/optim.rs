//! The optimizer update over the flat parameter buffer, constants baked in.

use crate::ir::{Optimizer, TrainConfig};
use proc_macro2::TokenStream;
use quote::quote;

/// The body of `fn update(&mut self, lr: f32)`.
pub fn update_body(train: &TrainConfig) -> TokenStream {
    let wd = train.weight_decay as f32;
    match train.optimizer {
        Optimizer::Sgd { momentum, nesterov, .. } => {
            let momentum = momentum as f32;
            quote! {
                ::cnnc::compute::optim::sgd(
                    &mut self.params, &self.grads, &mut self.state1, lr, #momentum, #nesterov, #wd, self.step,
                );
            }
        }
        Optimizer::Adam { beta1, beta2, eps, .. } | Optimizer::AdamW { beta1, beta2, eps, .. } => {
            let decoupled = matches!(train.optimizer, Optimizer::AdamW { .. });
            let (beta1, beta2, eps) = (beta1 as f32, beta2 as f32, eps as f32);
            quote! {
                ::cnnc::compute::optim::adam(
                    &mut self.params, &self.grads, &mut self.state1, &mut self.state2,
                    lr, #beta1, #beta2, #eps, #wd, #decoupled, self.step,
                );
            }
        }
    }
}

/// How many state values per parameter the optimizer keeps (momentum, Adam's m and v).
pub fn state_buffers(train: &TrainConfig) -> usize {
    match train.optimizer {
        Optimizer::Sgd { momentum, .. } if momentum != 0.0 => 1,
        Optimizer::Sgd { .. } => 0,
        Optimizer::Adam { .. } | Optimizer::AdamW { .. } => 2,
    }
}
