//! IR to Rust tokens: the model-dependent half of a generated model.
//!
//! For each model, a private module holding
//! - the public struct (re-exported next to the `cnn!` call), a tuple around the
//!   run-time `Driver`, with its constants;
//! - `Net`, whose `SPEC` describes the model to the driver (shapes, parameter
//!   and buffer tables, batchnorms, the train block);
//! - `Worker`: one thread's activation buffers and the sequence of per-layer
//!   calls of its forward and backward passes, every shape a constant;
//! - one function per distinct layer shape, built for AVX2 and the baseline.
//!
//! Everything that does not depend on the model (the batch split, the loss, the
//! optimizer, the trait implementations) is ordinary Rust in `rt::driver`.
//! `plan.rs` decides buffers, fusion and phases; each layer kind emits its code
//! in the file of its name.

mod activation;
mod batchnorm;
pub mod chunk;
mod conv;
mod dense;
mod dropout;
mod emit;
pub mod infer;
mod join;
mod normalize;
pub mod plan;
mod pool;
mod residual;
mod spec;
mod transpose;
mod upsample;

use crate::ir;
use emit::{act_tokens, buffer_fields, buffer_ref, fused_act_backward, param_constants, Emit};
use plan::{Kind, Plan};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};
use std::collections::HashMap;

/// Every model of a checked file, as one token stream.
pub fn generate(models: &[ir::Model]) -> TokenStream {
    unsuffixed(models.iter().map(generate_model).collect())
}

/// The generated module for a `.cnn` source, formatted: what `cnnc emit` prints.
pub fn emit(source: &str) -> Result<String, crate::Diagnostics> {
    let models = crate::compile(source)?;
    Ok(format(generate(&models)))
}

/// Formats generated tokens with prettyplease.
pub fn format(tokens: TokenStream) -> String {
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(_) => tokens.to_string(),
    }
}

/// Drops the `usize` suffix that `quote!` gives integer literals: every place they
/// land is typed, and `28` reads better than `28usize` in `cnnc emit`.
fn unsuffixed(tokens: TokenStream) -> TokenStream {
    use proc_macro2::{Group, Literal, TokenTree};
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), unsuffixed(g.stream()));
                group.set_span(g.span());
                TokenTree::Group(group)
            }
            TokenTree::Literal(l) => {
                let text = l.to_string();
                match text
                    .strip_suffix("usize")
                    .and_then(|digits| digits.parse::<usize>().ok())
                {
                    Some(v) => TokenTree::Literal(Literal::usize_unsuffixed(v)),
                    None => TokenTree::Literal(l),
                }
            }
            other => other,
        })
        .collect()
}

/// A stand-in for model `name` that failed to compile, for the macro to emit
/// after its errors: a real model with every item a model has, of the same name
/// and (when it can be read) input size, trained by a minimal train block. So
/// code that uses the model type-checks and shows no follow-on errors.
pub fn stub(name: &str, input: &str) -> TokenStream {
    let input = if !input.is_empty() && input.split('x').all(|d| d.parse::<u32>().is_ok_and(|v| v > 0)) {
        input
    } else {
        "1"
    };
    let text = format!("model {name} {{ input {input} train {{ loss mse optimizer sgd lr 0.1 }} }}");
    match crate::compile(&text) {
        Ok(models) => generate(&models),
        Err(_) => TokenStream::new(),
    }
}

/// The private module that holds everything generated for model `name`.
pub fn module_name(name: &str) -> Ident {
    format_ident!("__cnnc_{}", name)
}

/// The forward code of step `s`. Batchnorm is split over two phases, so its
/// emitter is called for its halves by `forward_phase`.
fn forward_step(e: &mut Emit, s: usize) -> TokenStream {
    match &e.step(s).kind {
        Kind::Normalize { .. } => normalize::forward(e, s),
        Kind::Conv { .. } => conv::forward(e, s),
        Kind::Dense { .. } => dense::forward(e, s),
        Kind::MaxPool(_) | Kind::AvgPool(_) | Kind::GlobalAvgPool { .. } => pool::forward(e, s),
        Kind::BatchNorm { .. } => batchnorm::forward_apply(e, s),
        Kind::Activation(_) | Kind::Softmax { .. } => activation::forward(e, s),
        Kind::Dropout { .. } => dropout::forward(e, s),
        Kind::Add { .. } => residual::forward(e, s),
        Kind::ConvTranspose { .. } => transpose::forward(e, s),
        Kind::Upsample { .. } => upsample::forward(e, s),
        Kind::Concat { .. } | Kind::Mul { .. } => join::forward(e, s),
    }
}

/// The backward code of step `s` (for batchnorm: the input-gradient half).
fn backward_step(e: &mut Emit, s: usize) -> TokenStream {
    match &e.step(s).kind {
        Kind::Normalize { .. } => normalize::backward(e, s),
        Kind::Conv { .. } => conv::backward(e, s),
        Kind::Dense { .. } => dense::backward(e, s),
        Kind::MaxPool(_) | Kind::AvgPool(_) | Kind::GlobalAvgPool { .. } => pool::backward(e, s),
        Kind::BatchNorm { .. } => batchnorm::backward_input(e, s),
        Kind::Activation(_) | Kind::Softmax { .. } => activation::backward(e, s),
        Kind::Dropout { .. } => dropout::backward(e, s),
        Kind::Add { .. } => residual::backward(e, s),
        Kind::ConvTranspose { .. } => transpose::backward(e, s),
        Kind::Upsample { .. } => upsample::backward(e, s),
        Kind::Concat { .. } | Kind::Mul { .. } => join::backward(e, s),
    }
}

/// The index of the batchnorm step that opens phase `phase` (> 0).
fn opening_batchnorm(plan: &Plan, phase: usize) -> usize {
    plan.steps
        .iter()
        .position(|s| matches!(s.kind, Kind::BatchNorm { index, .. } if index + 1 == phase))
        .expect("every phase after the first opens with a batchnorm")
}

/// Forward phase `phase`: the batchnorm that opens it (normalizing with the
/// combined statistics), its other steps, and the statistics of the batchnorm
/// that closes it (training only); with a comment naming them.
fn forward_phase(e: &mut Emit, phase: usize) -> (String, TokenStream) {
    let plan = e.plan;
    let phases = plan.phases();
    let mut code = Vec::new();
    let mut names = Vec::new();
    for s in (0..plan.steps.len()).filter(|&s| plan.steps[s].phase == phase) {
        code.push(forward_step(e, s));
        names.push(plan.steps[s].name.as_str());
    }
    let mut doc = format!(" Phase {phase}: {}", names.join(", "));
    if phase + 1 < phases {
        let closing = opening_batchnorm(plan, phase + 1);
        code.push(batchnorm::forward_stats(e, closing));
        doc += &format!("; then this worker's statistics for {}", plan.steps[closing].name);
    }
    chunked(doc + ".", chunk::phase(plan, phase, false), code)
}

/// A phase's code in a loop over chunks of `size` of the worker's samples (see
/// `chunk.rs`), with its comment.
fn chunked(doc: String, size: usize, code: Vec<TokenStream>) -> (String, TokenStream) {
    let doc = format!("{doc} In chunks of {size} sample{}.", if size == 1 { "" } else { "s" });
    (doc, quote!(for (at, n) in rt::chunks(pass.n, #size) { #(#code)* }))
}

/// Backward phase `phase`, the reverse of `forward_phase`: the input gradient of
/// the batchnorm that closes the phase (with the combined sums), the other steps
/// in reverse, and the partial sums of the batchnorm that opens it.
fn backward_phase(e: &mut Emit, phase: usize) -> (String, TokenStream) {
    let plan = e.plan;
    let phases = plan.phases();
    let skip = plan.loss.and_then(|l| l.fused_step);
    let mut code = Vec::new();
    let mut names = Vec::new();
    if phase + 1 < phases {
        let closing = opening_batchnorm(plan, phase + 1);
        code.push(backward_step(e, closing));
        names.push(format!("{} (input gradient)", plan.steps[closing].name));
    }
    for s in (0..plan.steps.len()).rev() {
        let step = &plan.steps[s];
        let opens = phase > 0 && matches!(step.kind, Kind::BatchNorm { index, .. } if index + 1 == phase);
        if step.phase == phase && !opens && Some(s) != skip {
            code.push(backward_step(e, s));
            names.push(step.name.clone());
        }
    }
    let mut doc = format!(" Phase {phase}, backward: {}", names.join(", "));
    if phase > 0 {
        let opening = opening_batchnorm(plan, phase);
        code.push(batchnorm::backward_partial(e, opening));
        doc += &format!("; then this worker's sums for {}", plan.steps[opening].name);
    }
    chunked(doc + ".", chunk::phase(plan, phase, true), code)
}

/// The worker's `infer`: the inference plan's steps in order, in one pass (no
/// phases: the statistics are the running ones), emitted by the same step
/// emitters over the inference plan (see `infer.rs`).
fn infer<'a>(e: &mut Emit<'a>, inference: &'a Plan) -> TokenStream {
    let training = std::mem::replace(&mut e.plan, inference);
    let body: Vec<TokenStream> = (0..inference.steps.len()).map(|s| forward_step(e, s)).collect();
    e.plan = training;
    quote! {
        /// Inference: batchnorms folded into the convolutions before them, residual
        /// joins added in the convolutions' stores. (The driver hands each worker
        /// its samples a few at a time already: `rt::driver::inference_chunk`.)
        fn infer(&mut self, phases: usize, pass: &rt::Pass<'_>) {
            let (at, n, p) = (0, pass.n, pass.params);
            #(#body)*
        }
    }
}

/// `match phase { 0 => {...}, 1 => {...}, _ => {} }`, each arm under its
/// comment, or the one body.
fn by_phase(bodies: Vec<(String, TokenStream)>) -> TokenStream {
    if bodies.len() == 1 {
        let body = &bodies[0].1;
        return body.clone();
    }
    let arms = bodies
        .iter()
        .enumerate()
        .map(|(i, (doc, b))| quote!(#[doc = #doc] #i => { #b }));
    quote! {
        match phase {
            #(#arms)*
            _ => {}
        }
    }
}

/// The names the generated module gives its own items.
const INTERNAL: [&str; 3] = ["Net", "Worker", "rt"];

/// The dropout layers' mask fields and their per-sample lengths.
fn masks(plan: &Plan) -> Vec<(Ident, usize)> {
    plan.steps
        .iter()
        .filter_map(|s| match s.kind {
            Kind::Dropout { layer, .. } => Some((dropout::mask(layer), plan.buffers[s.output])),
            _ => None,
        })
        .collect()
}

/// One model's private module and the `pub use` of its struct.
pub fn generate_model(model: &ir::Model) -> TokenStream {
    let plan = Plan::new(model);
    let name = Ident::new(&model.name, Span::call_site());
    let module = module_name(&model.name);
    // Inside the module the struct takes another name if the model's is one of the
    // module's own; the `pub use` gives it the model's name outside.
    let inner = if INTERNAL.contains(&model.name.as_str()) {
        format_ident!("Model")
    } else {
        name.clone()
    };
    let inference = plan.inference();
    let mask_fields: Vec<Ident> = masks(&plan).into_iter().map(|(m, _)| m).collect();
    let (fields, grads) = buffer_fields(&plan, &mask_fields);
    let (params, ranges) = param_constants(&plan);
    let mut e = Emit {
        plan: &plan,
        fields,
        grads,
        params,
        ranges,
        items: Vec::new(),
        names: HashMap::new(),
        reserved: INTERNAL
            .iter()
            .map(|s| s.to_string())
            .chain([inner.to_string()])
            .collect(),
        scratch: Vec::new(),
    };
    let phases = plan.phases();
    let forward = by_phase((0..phases).map(|p| forward_phase(&mut e, p)).collect());
    let backward = model
        .train
        .is_some()
        .then(|| by_phase((0..phases).map(|p| backward_phase(&mut e, p)).collect()));
    let infer = inference.as_ref().map(|inference| infer(&mut e, inference));
    let train_macro = backward.is_some().then(|| quote!(rt::train!(#inner);));
    let net_spec = spec::spec(model, &mut e, inference.as_ref());
    let worker = worker(&e, forward, backward, infer);
    let items = &e.items;
    let (range_names, range_values): (Vec<&Ident>, Vec<&TokenStream>) = e.ranges.iter().map(|(n, r)| (n, r)).unzip();
    let constants = spec::constants(model, &plan);
    let doc = format!(
        " The `{}` model: input {}, output {}, {} parameters. Generated by `cnn!`.",
        model.name,
        model.input,
        model.output(),
        plan.param_count
    );
    let export = if inner == name {
        quote!(pub use #module::#name;)
    } else {
        quote!(pub use #module::#inner as #name;)
    };
    quote! {
        #[doc(hidden)]
        // The phase a one-phase pass ignores, and `n` or `p` a step may not use.
        #[allow(non_snake_case, non_camel_case_types, clippy::all)]
        #[allow(unused_doc_comments, unused_variables)]
        mod #module {
            use ::cnnc::__private as rt;

            #[doc = #doc]
            pub struct #inner(rt::Driver<Net>);

            impl #inner {
                #constants
            }

            rt::model!(#inner);
            #train_macro

            /// The model, as the run-time driver sees it.
            #[derive(Default)]
            pub struct Net;

            impl Net {
                const SPEC: rt::Spec = #net_spec;
            }

            #(const #range_names: rt::Range = #range_values;)*

            impl rt::Network for Net {
                type Worker = Worker;
                fn spec(&self) -> &'static rt::Spec {
                    &Self::SPEC
                }
                fn worker(&self, samples: usize) -> Worker {
                    Worker::new(samples)
                }
            }

            #worker

            #(#items)*
        }
        #export
    }
}

/// The `Worker`: one thread's buffers, each named after its layer, and its
/// passes (`forward`, `infer`, and `backward` when the model trains). Buffers only
/// a model that needs them gets: the gradients and dropout masks of a trained
/// one, the gradient scratch of a tensor read twice, batchnorm's partial sums.
fn worker(e: &Emit, forward: TokenStream, backward: Option<TokenStream>, infer: Option<TokenStream>) -> TokenStream {
    let plan = e.plan;
    let (fields, lens) = (&e.fields, &plan.buffers);
    let (input, output) = (&fields[0], &fields[plan.output]);
    let buffer_ids = 0..plan.buffers.len();
    let partials_len = 2 * plan.batchnorms.iter().map(|b| b.channels).max().unwrap_or(0);
    let (partials_field, partials_init, partials_ref) = if partials_len > 0 {
        (
            quote!(partials: Vec<f64>,),
            quote!(partials: vec![0.0; #partials_len],),
            quote!(&self.partials),
        )
    } else {
        (quote!(), quote!(), quote!(&[]))
    };
    // The largest scratch of any layer: `a.max(b).max(c)`.
    let scratch = match e.scratch.split_first() {
        Some((first, rest)) => quote!(#first #(.max(#rest))*),
        None => quote!(0),
    };
    let (train_fields, train_init, train_impl) = match backward {
        Some(backward) => training_worker(e, backward),
        None => Default::default(),
    };
    quote! {
        /// The buffers one thread works in.
        pub struct Worker {
            #(#fields: Vec<f32>,)*
            scratch: Vec<f32>,
            #partials_field
            #train_fields
        }

        impl Worker {
            fn new(samples: usize) -> Self {
                let scratch = #scratch;
                Worker {
                    #(#fields: vec![0.0; samples * #lens],)*
                    scratch: vec![0.0; scratch],
                    #partials_init
                    #train_init
                }
            }
        }

        impl rt::Worker for Worker {
            fn input(&mut self) -> &mut [f32] {
                &mut self.#input
            }

            fn output(&self) -> &[f32] {
                &self.#output
            }

            fn partials(&self) -> &[f64] {
                #partials_ref
            }

            fn buffer(&self, i: usize) -> &[f32] {
                match i {
                    #(#buffer_ids => &self.#fields,)*
                    _ => &[],
                }
            }

            fn forward(&mut self, phase: usize, pass: &rt::Pass<'_>) {
                let p = pass.params;
                #forward
            }

            #infer
        }

        #train_impl
    }
}

/// A trained model's worker fields, their initial values, and its
/// `rt::Backward` implementation.
fn training_worker(e: &Emit, backward: TokenStream) -> (TokenStream, TokenStream, TokenStream) {
    let plan = e.plan;
    let (fields, grads) = (&e.fields, &e.grads);
    let loss = plan.loss.expect("a train block plans a loss");
    // No gradient buffer for an output whose backward pass the loss replaces.
    let dead = Some(loss.output).filter(|&o| loss.fused_step.is_some() && o != loss.logits && plan.readers(o) == 0);
    let (live_grads, grad_lens): (Vec<&Ident>, Vec<usize>) = (0..plan.buffers.len())
        .filter(|&b| Some(b) != dead)
        .map(|b| (&grads[b], plan.buffers[b]))
        .unzip();
    let (mask_fields, mask_lens): (Vec<Ident>, Vec<usize>) = masks(plan).into_iter().unzip();
    let dtmp_len = (0..plan.buffers.len())
        .filter(|&b| plan.readers(b) > 1)
        .map(|b| plan.buffers[b])
        .max()
        .unwrap_or(0);
    let (dtmp_field, dtmp_init) = if dtmp_len > 0 {
        (quote!(dtmp: Vec<f32>,), quote!(dtmp: vec![0.0; samples * #dtmp_len],))
    } else {
        (quote!(), quote!())
    };
    let (logits, out, dlogits, d_input) = (
        &fields[loss.logits],
        &fields[loss.output],
        &grads[loss.logits],
        &grads[0],
    );
    (
        quote! {
            #(#live_grads: Vec<f32>,)*
            #(#mask_fields: Vec<f32>,)*
            #dtmp_field
        },
        quote! {
            #(#live_grads: vec![0.0; samples * #grad_lens],)*
            #(#mask_fields: vec![0.0; samples * #mask_lens],)*
            #dtmp_init
        },
        quote! {
            impl rt::Backward for Worker {
                fn loss_io(&mut self) -> rt::LossIo<'_> {
                    rt::LossIo { logits: &self.#logits, output: &self.#out, grad: &mut self.#dlogits }
                }

                fn input_grad(&self) -> &[f32] {
                    &self.#d_input
                }

                fn backward(&mut self, phase: usize, pass: &rt::Pass<'_>, grads: &mut [f32]) {
                    let p = pass.params;
                    #backward
                }
            }
        },
    )
}
