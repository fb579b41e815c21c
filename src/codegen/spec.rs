//! The model's description for the run-time driver (`Net::SPEC`) and the
//! constants of its public struct.

use super::plan::{Init, Kind, OutputSource, Plan, Slot};
use super::Emit;
use crate::ir::{self, Augment, InitScheme, Loss, Optimizer, Schedule};
use proc_macro2::TokenStream;
use quote::quote;

fn init(i: Init) -> TokenStream {
    let path = quote!(rt::Init);
    match i {
        Init::Zeros => quote!(#path::Zeros),
        Init::Ones => quote!(#path::Ones),
        Init::Draw(InitScheme::HeNormal { fan_in, negative_slope }) => quote!(#path::he(#fan_in, #negative_slope)),
        Init::Draw(InitScheme::XavierUniform { fan_in, fan_out }) => quote!(#path::xavier(#fan_in, #fan_out)),
    }
}

fn tensors(slots: &[Slot]) -> TokenStream {
    let rows = slots.iter().map(|t| {
        let (name, offset, shape, init) = (&t.name, t.offset, &t.shape, init(t.init));
        quote!(rt::Tensor::new(#name, #offset, &[#(#shape),*], #init))
    });
    quote!(&[#(#rows),*])
}

fn loss(l: Loss) -> TokenStream {
    match l {
        Loss::CrossEntropy => quote!(rt::Loss::CrossEntropy),
        Loss::Mse => quote!(rt::Loss::Mse),
        Loss::BinaryCrossEntropy => quote!(rt::Loss::BinaryCrossEntropy),
    }
}

fn optimizer(o: Optimizer) -> TokenStream {
    let path = quote!(rt::Optimizer);
    match o {
        Optimizer::Sgd { lr, momentum, nesterov } => {
            quote!(#path::Sgd { lr: #lr, momentum: #momentum, nesterov: #nesterov })
        }
        Optimizer::Adam { lr, beta1, beta2, eps } => {
            quote!(#path::Adam { lr: #lr, beta1: #beta1, beta2: #beta2, eps: #eps })
        }
        Optimizer::AdamW { lr, beta1, beta2, eps } => {
            quote!(#path::AdamW { lr: #lr, beta1: #beta1, beta2: #beta2, eps: #eps })
        }
    }
}

fn schedule(s: Schedule) -> TokenStream {
    let path = quote!(rt::Schedule);
    match s {
        Schedule::Constant => quote!(#path::Constant),
        Schedule::Step { every, gamma } => quote!(#path::Step { every: #every, gamma: #gamma }),
        Schedule::Exponential { gamma } => quote!(#path::Exponential { gamma: #gamma }),
        Schedule::Cosine { min } => quote!(#path::Cosine { min: #min }),
    }
}

fn augment(a: &Augment) -> TokenStream {
    let path = quote!(rt::Augment);
    match *a {
        Augment::FlipHorizontal => quote!(#path::FlipHorizontal),
        Augment::FlipVertical => quote!(#path::FlipVertical),
        Augment::Crop(p) => quote!(#path::Crop(#p)),
    }
}

fn train(t: &ir::TrainConfig) -> TokenStream {
    let (loss, optimizer, schedule) = (loss(t.loss), optimizer(t.optimizer), schedule(t.schedule));
    let (weight_decay, epochs, seed) = (t.weight_decay, t.epochs, t.seed);
    let validation = match t.validation {
        Some(v) => quote!(Some(#v)),
        None => quote!(None),
    };
    let augment = t.augment.iter().map(augment);
    let smoothing = t.smoothing;
    let clip = match t.clip_grad_norm {
        Some(x) => quote!(Some(#x)),
        None => quote!(None),
    };
    let freeze = &t.freeze;
    let ignore = match t.ignore {
        Some(l) => quote!(Some(#l)),
        None => quote!(None),
    };
    let warmup = match t.warmup {
        Some(ir::Warmup { epochs, from }) => quote!(Some(rt::Warmup { epochs: #epochs, from: #from })),
        None => quote!(None),
    };
    let early_stop = match t.early_stop {
        Some(p) => quote!(Some(#p)),
        None => quote!(None),
    };
    quote! {
        Some(rt::TrainSpec {
            loss: #loss,
            optimizer: #optimizer,
            weight_decay: #weight_decay,
            schedule: #schedule,
            epochs: #epochs,
            validation: #validation,
            seed: #seed,
            augment: &[#(#augment),*],
            smoothing: #smoothing,
            ignore: #ignore,
            clip_grad_norm: #clip,
            warmup: #warmup,
            early_stop: #early_stop,
            freeze: &[#(#freeze),*],
        })
    }
}

/// `Some(offset)` of an optional parameter (a bias).
fn offset(plan: &Plan, id: Option<usize>) -> TokenStream {
    match id.map(|i| plan.params[i].offset) {
        Some(at) => quote!(Some(#at)),
        None => quote!(None),
    }
}

/// The `rt::Source` of a layer's output: a buffer, or how `activations` computes
/// the output of a step without its fused activation (for a conv or dense layer,
/// from the step's marker type).
fn source(e: &mut Emit, source: OutputSource) -> TokenStream {
    let s = match source {
        OutputSource::Buffer(b) => return quote!(rt::Source::Buffer(#b)),
        OutputSource::Unfused(s) => s,
    };
    let plan = e.plan;
    let step = &plan.steps[s];
    let input = step.inputs[0];
    let weight = step.weight.map_or(0, |w| plan.params[w].offset);
    let bias = offset(plan, step.bias);
    match &step.kind {
        Kind::Conv { .. } => {
            let layer = super::conv::layer_type(e, s);
            quote!(rt::Source::conv::<#layer>(#input, #weight, #bias))
        }
        Kind::Dense { .. } => {
            let layer = super::dense::layer_type(e, s);
            quote!(rt::Source::dense::<#layer>(#input, #weight, #bias))
        }
        Kind::BatchNorm { index, .. } => quote!(rt::Source::batchnorm(#input, #index, #weight)),
        Kind::Add { .. } => {
            let shortcut = step.inputs[1];
            quote!(rt::Source::add(#input, #shortcut))
        }
        Kind::ConvTranspose { .. } => {
            let layer = super::transpose::layer_type(e, s);
            quote!(rt::Source::ConvTranspose { input: #input, shape: #layer::SHAPE, weight: #weight, bias: #bias })
        }
        Kind::Mul { .. } => {
            let (shape, _) = super::join::mul_shape(e, s);
            let (other, len) = (step.inputs[1], plan.buffers[step.output]);
            quote!(rt::Source::Mul { a: #input, b: #other, shape: #shape, len: #len })
        }
        // Only the kinds above fuse an activation; the others keep their output.
        _ => {
            let b = step.output;
            quote!(rt::Source::Buffer(#b))
        }
    }
}

/// The `rt::Fold` literals of the inference plan's folds.
fn folds(inference: Option<&Plan>) -> Vec<TokenStream> {
    let Some(plan) = inference else { return Vec::new() };
    plan.folds
        .iter()
        .map(|f| {
            let (weight, weight_len, filters, batchnorm, at) = (
                plan.params[f.weight].offset,
                f.weight_len,
                f.filters,
                f.batchnorm,
                f.offset,
            );
            let (bias, gamma, beta) = (offset(plan, f.bias), offset(plan, f.gamma), offset(plan, f.beta));
            quote! {
                rt::Fold {
                    weight: #weight, weight_len: #weight_len, filters: #filters, bias: #bias,
                    batchnorm: #batchnorm, gamma: #gamma, beta: #beta, offset: #at,
                }
            }
        })
        .collect()
}

/// The `Spec` literal.
pub(super) fn spec(model: &ir::Model, e: &mut Emit, inference: Option<&Plan>) -> TokenStream {
    let plan = e.plan;
    let (folds, folded_len) = (folds(inference), inference.map_or(0, |i| i.folded_len));
    let name = &model.name;
    let (input, output) = (model.input.dims(), model.output().dims());
    let params = tensors(&plan.params);
    let buffers = tensors(&plan.stats);
    let (param_count, buffer_len, shared_len, batch) = (plan.param_count, plan.stats_len, plan.shared_len, plan.batch);
    let sample_floats: usize = plan.buffers.iter().sum();
    let batchnorms = plan.batchnorms.iter().map(|b| {
        let (name, channels, area, buffer, shared) = (&b.name, b.channels, b.area, b.buffer, b.shared);
        let (eps, momentum) = (b.eps as f32, b.momentum as f32);
        quote! {
            rt::BatchNormSlot {
                name: #name, channels: #channels, area: #area, eps: #eps, momentum: #momentum,
                buffer: #buffer, shared: #shared,
            }
        }
    });
    let train = match &model.train {
        Some(t) => train(t),
        None => quote!(None),
    };
    let layers: Vec<TokenStream> = plan
        .layers
        .iter()
        .map(|l| {
            let (name, shape, source) = (&l.name, &l.shape, source(e, l.source));
            quote!(rt::LayerOutput::new(#name, &[#(#shape),*], #source))
        })
        .collect();
    quote! {
        rt::Spec {
            name: #name,
            input: &[#(#input),*],
            output: &[#(#output),*],
            params: #params,
            param_count: #param_count,
            buffers: #buffers,
            buffer_len: #buffer_len,
            batchnorms: &[#(#batchnorms),*],
            shared_len: #shared_len,
            batch: #batch,
            train: #train,
            layers: &[#(#layers),*],
            sample_floats: #sample_floats,
            folds: &[#(#folds),*],
            folded_len: #folded_len,
        }
    }
}

/// The public struct's constants.
pub fn constants(model: &ir::Model, plan: &Plan) -> TokenStream {
    let (input, output) = (model.input.dims(), model.output().dims());
    let (in_rank, out_rank) = (input.len(), output.len());
    let (param_count, batch) = (plan.param_count, plan.batch);
    let batch_doc = if model.train.is_some() {
        " Samples per training step (the train block's `batch`); `predict` runs this many at once, split over the threads."
    } else {
        " Samples `predict` runs at once, split over the threads; larger inputs run in chunks of this many."
    };
    let fit = model.train.as_ref().map(|_| {
        quote! {
            /// The model's train block, as `fit` reads it; `FIT.quiet()` prints nothing.
            pub const FIT: ::cnnc::rt::fit::FitConfig =
                ::cnnc::rt::fit::FitConfig::of(&Net::SPEC);
        }
    });
    quote! {
        /// The shape of one input sample.
        pub const INPUT_SHAPE: [usize; #in_rank] = [#(#input),*];
        /// The shape of one output sample.
        pub const OUTPUT_SHAPE: [usize; #out_rank] = [#(#output),*];
        /// The number of trainable parameters (batchnorm's running statistics are buffers, not counted).
        pub const PARAM_COUNT: usize = #param_count;
        #[doc = #batch_doc]
        pub const BATCH: usize = #batch;
        #fit
    }
}
