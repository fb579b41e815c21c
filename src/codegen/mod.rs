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
mod conv;
mod dense;
mod dropout;
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

/// What the step emitters share: the plan, and the per-shape functions built so far.
pub(crate) struct Emit<'a> {
    plan: &'a Plan,
    /// Items at module level: shape constants and per-shape functions.
    items: Vec<TokenStream>,
    /// Layer marker types by the constants they carry, so identical layers share one.
    names: HashMap<String, Ident>,
    /// Names the module already uses (`Net`, `Worker`, `rt`, the model's struct).
    reserved: Vec<String>,
    /// Scratch each per-shape function needs, as expressions of `samples`.
    scratch: Vec<TokenStream>,
}

impl<'a> Emit<'a> {
    /// The marker type of the layer constants `key`, declared by `build(name)` the
    /// first time (identical layers share one), named after step `s`.
    fn layer_type(&mut self, key: String, s: usize, build: impl FnOnce(&mut Self, &Ident) -> TokenStream) -> Ident {
        if let Some(name) = self.names.get(&key) {
            return name.clone();
        }
        let mut base: String = self
            .base(s)
            .split('_')
            .map(|part| {
                let mut chars = part.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect();
        while self.names.values().any(|n| *n == base) || self.reserved.contains(&base) {
            base.push('_');
        }
        let name = format_ident!("{}", base);
        let item = build(self, &name);
        self.items.push(item);
        self.names.insert(key, name.clone());
        name
    }

    fn step(&self, s: usize) -> &'a plan::Step {
        &self.plan.steps[s]
    }

    /// A Rust identifier from a step's name: `residual1.conv2+relu3` -> `residual1_conv2`.
    fn base(&self, s: usize) -> String {
        let name = self.step(s).name.split('+').next().unwrap_or("layer");
        name.replace('.', "_")
    }

    /// `&self.a3[..n * 400]`: input `k` of step `s`.
    fn x(&self, s: usize, k: usize) -> TokenStream {
        buffer_ref(
            &a(self.step(s).inputs[k]),
            self.plan.buffers[self.step(s).inputs[k]],
            false,
        )
    }

    fn y(&self, s: usize) -> TokenStream {
        buffer_ref(&a(self.step(s).output), self.plan.buffers[self.step(s).output], false)
    }

    fn y_mut(&self, s: usize) -> TokenStream {
        buffer_ref(&a(self.step(s).output), self.plan.buffers[self.step(s).output], true)
    }

    fn dy(&self, s: usize) -> TokenStream {
        buffer_ref(&d(self.step(s).output), self.plan.buffers[self.step(s).output], false)
    }

    fn dy_mut(&self, s: usize) -> TokenStream {
        buffer_ref(&d(self.step(s).output), self.plan.buffers[self.step(s).output], true)
    }

    /// The gradient of input `k` of step `s`: the place to write it, and the code
    /// to run after (an add when another reader wrote it first). `write(dst)`
    /// builds the statement that writes into `dst`. Skipped for the model input
    /// when the caller did not ask for its gradient.
    fn dx(&self, s: usize, k: usize, write: impl FnOnce(TokenStream) -> TokenStream) -> TokenStream {
        let b = self.step(s).inputs[k];
        let len = self.plan.buffers[b];
        let code = if self.plan.accumulates(s, k) {
            let dst = quote!(&mut self.dtmp[..n * #len]);
            let body = write(dst);
            let field = d(b);
            quote! {
                #body
                rt::norm::accumulate(&mut self.#field[..n * #len], &self.dtmp[..n * #len]);
            }
        } else {
            write(buffer_ref(&d(b), len, true))
        };
        if b == 0 {
            quote!(if pass.input_grad { #code })
        } else {
            code
        }
    }

    /// Hands the gradient `src` on to input `k` of step `s` as it is: a copy, or an
    /// add in place where another reader wrote that gradient first.
    fn pass_gradient(&self, s: usize, k: usize, src: &TokenStream) -> TokenStream {
        let b = self.step(s).inputs[k];
        let (field, len) = (d(b), self.plan.buffers[b]);
        let code = if self.plan.accumulates(s, k) {
            quote!(rt::norm::accumulate(&mut self.#field[..n * #len], #src);)
        } else {
            quote!(self.#field[..n * #len].copy_from_slice(#src);)
        };
        if b == 0 {
            quote!(if pass.input_grad { #code })
        } else {
            code
        }
    }

    /// `Some(dst)` for a kernel's optional `dx`, with the statement to run after:
    /// `None` when the model input's gradient is not wanted.
    fn dx_option(&self, s: usize, call: impl FnOnce(TokenStream) -> TokenStream) -> TokenStream {
        let b = self.step(s).inputs[0];
        let len = self.plan.buffers[b];
        let accumulates = self.plan.accumulates(s, 0);
        let dst = if accumulates {
            quote!(&mut self.dtmp[..n * #len])
        } else {
            buffer_ref(&d(b), len, true)
        };
        let option = if b == 0 {
            quote!(if pass.input_grad { Some(#dst) } else { None })
        } else {
            quote!(Some(#dst))
        };
        let body = call(option);
        if accumulates {
            let field = d(b);
            let add = quote!(rt::norm::accumulate(&mut self.#field[..n * #len], &self.dtmp[..n * #len]););
            let add = if b == 0 {
                quote!(if pass.input_grad { #add })
            } else {
                add
            };
            quote!(#body #add)
        } else {
            body
        }
    }

    /// `&p[0..150]`: parameter `id`'s values.
    fn param(&self, id: Option<usize>) -> TokenStream {
        match id {
            Some(id) => {
                let r = self.plan.params[id].range();
                let (start, end) = (r.start, r.end);
                quote!(&p[#start..#end])
            }
            None => quote!(&[]),
        }
    }

    /// `(&pass.folded[..], Some(&pass.folded[..]))`: fold `f`'s weight and bias.
    fn folded(&self, f: usize) -> (TokenStream, TokenStream) {
        let fold = &self.plan.folds[f];
        let (start, split, end) = (
            fold.offset,
            fold.offset + fold.weight_len,
            fold.offset + fold.weight_len + fold.filters,
        );
        (
            quote!(&pass.folded[#start..#split]),
            quote!(Some(&pass.folded[#split..#end])),
        )
    }

    /// `Some(&p[..])` or `None` for an optional bias.
    fn bias(&self, id: Option<usize>) -> TokenStream {
        match id {
            Some(_) => {
                let b = self.param(id);
                quote!(Some(#b))
            }
            None => quote!(None),
        }
    }

    /// The gradient slices of a weight and its optional bias, bound to `dw` and `db`.
    fn weight_grads(&self, s: usize) -> TokenStream {
        let step = self.step(s);
        let w = &self.plan.params[step.weight.expect("a layer with a weight")];
        match step.bias {
            Some(b) => {
                let (start, split, end) = (w.offset, w.len(), self.plan.params[b].range().end);
                quote! {
                    let (dw, db) = grads[#start..#end].split_at_mut(#split);
                    let db = Some(db);
                }
            }
            None => {
                let r = w.range();
                let (start, end) = (r.start, r.end);
                quote! {
                    let dw = &mut grads[#start..#end];
                    let db = None;
                }
            }
        }
    }
}

/// The names the generated module gives its own items.
const INTERNAL: [&str; 3] = ["Net", "Worker", "rt"];

/// The field holding activation buffer `i`.
fn a(i: usize) -> Ident {
    format_ident!("a{}", i)
}

/// The field holding the gradient of activation buffer `i`.
fn d(i: usize) -> Ident {
    format_ident!("d{}", i)
}

/// `&self.a3[..n * 400]` or `&mut ...`.
fn buffer_ref(field: &Ident, len: usize, mutable: bool) -> TokenStream {
    if mutable {
        quote!(&mut self.#field[..n * #len])
    } else {
        quote!(&self.#field[..n * #len])
    }
}

/// `rt::Activation::Relu`, ...
fn act_tokens(act: ir::Activation) -> TokenStream {
    use ir::Activation as A;
    let path = quote!(rt::Activation);
    match act {
        A::Identity => quote!(#path::Identity),
        A::Relu => quote!(#path::Relu),
        A::LeakyRelu(a) => quote!(#path::LeakyRelu(#a)),
        A::Sigmoid => quote!(#path::Sigmoid),
        A::Tanh => quote!(#path::Tanh),
        A::Silu => quote!(#path::Silu),
        A::Gelu => quote!(#path::Gelu),
        A::Relu6 => quote!(#path::Relu6),
        A::Hardswish => quote!(#path::Hardswish),
        A::Hardsigmoid => quote!(#path::Hardsigmoid),
    }
}

/// `dy *= f'(y)` in place for an activation fused into step `s` (nothing for identity).
fn fused_act_backward(e: &Emit, s: usize, act: ir::Activation) -> TokenStream {
    if act == ir::Activation::Identity {
        return quote!();
    }
    let act = act_tokens(act);
    let (y, dy) = (e.y(s), e.dy_mut(s));
    quote!(#act.backward(#y, #dy);)
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
/// that closes it (training only).
fn forward_phase(e: &mut Emit, phase: usize) -> TokenStream {
    let plan = e.plan;
    let phases = plan.phases();
    let mut code = Vec::new();
    for s in (0..plan.steps.len()).filter(|&s| plan.steps[s].phase == phase) {
        code.push(forward_step(e, s));
    }
    if phase + 1 < phases {
        let closing = opening_batchnorm(plan, phase + 1);
        code.push(batchnorm::forward_stats(e, closing));
    }
    quote!(#(#code)*)
}

/// Backward phase `phase`, the reverse of `forward_phase`: the input gradient of
/// the batchnorm that closes the phase (with the combined sums), the other steps
/// in reverse, and the partial sums of the batchnorm that opens it.
fn backward_phase(e: &mut Emit, phase: usize) -> TokenStream {
    let plan = e.plan;
    let phases = plan.phases();
    let skip = plan.loss.and_then(|l| l.fused_step);
    let mut code = Vec::new();
    if phase + 1 < phases {
        code.push(backward_step(e, opening_batchnorm(plan, phase + 1)));
    }
    for s in (0..plan.steps.len()).rev() {
        let step = &plan.steps[s];
        let opens = phase > 0 && matches!(step.kind, Kind::BatchNorm { index, .. } if index + 1 == phase);
        if step.phase == phase && !opens && Some(s) != skip {
            code.push(backward_step(e, s));
        }
    }
    if phase > 0 {
        code.push(batchnorm::backward_partial(e, opening_batchnorm(plan, phase)));
    }
    quote!(#(#code)*)
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
        /// joins added in the convolutions' stores.
        #[allow(unused_variables)]
        fn infer(&mut self, phases: usize, pass: &rt::Pass<'_>) {
            let (n, p) = (pass.n, pass.params);
            #(#body)*
        }
    }
}

/// `match phase { 0 => {...}, 1 => {...}, _ => {} }`, or the one body.
fn by_phase(bodies: Vec<TokenStream>) -> TokenStream {
    if bodies.len() == 1 {
        let body = &bodies[0];
        return quote! {
            let _ = phase;
            #body
        };
    }
    let arms = bodies.iter().enumerate().map(|(i, b)| quote!(#i => { #b }));
    quote! {
        match phase {
            #(#arms)*
            _ => {}
        }
    }
}

/// One model's private module and the `pub use` of its struct.
pub fn generate_model(model: &ir::Model) -> TokenStream {
    let plan = Plan::new(model);
    let name = Ident::new(&model.name, Span::call_site());
    let module = module_name(&model.name);
    let training = model.train.is_some();
    // Inside the module the struct takes another name if the model's is one of the
    // module's own; the `pub use` gives it the model's name outside.
    let inner = if INTERNAL.contains(&model.name.as_str()) {
        format_ident!("Model")
    } else {
        name.clone()
    };
    let inference = plan.inference();
    let mut e = Emit {
        plan: &plan,
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
    let backward = training.then(|| by_phase((0..phases).map(|p| backward_phase(&mut e, p)).collect()));
    let infer = inference.as_ref().map(|inference| infer(&mut e, inference));

    let buffer_fields: Vec<Ident> = (0..plan.buffers.len()).map(a).collect();
    let buffer_ids = 0..plan.buffers.len();
    let grad_fields: Vec<Ident> = (0..plan.buffers.len()).map(d).collect();
    let lens = &plan.buffers;
    let masks: Vec<(Ident, usize)> = plan
        .steps
        .iter()
        .filter_map(|s| match s.kind {
            Kind::Dropout { layer, .. } => Some((dropout::mask(layer), plan.buffers[s.output])),
            _ => None,
        })
        .collect();
    let (mask_fields, mask_lens): (Vec<Ident>, Vec<usize>) = masks.into_iter().unzip();
    let dtmp_len = (0..plan.buffers.len())
        .filter(|&b| plan.readers(b) > 1)
        .map(|b| plan.buffers[b])
        .max()
        .unwrap_or(0);
    let partials_len = 2 * plan.batchnorms.iter().map(|b| b.channels).max().unwrap_or(0);
    // Buffers only a model that needs them gets: the gradient scratch of a tensor
    // read twice, and batchnorm's partial sums.
    let (dtmp_field, dtmp_init) = if dtmp_len > 0 {
        (quote!(dtmp: Vec<f32>,), quote!(dtmp: vec![0.0; samples * #dtmp_len],))
    } else {
        (quote!(), quote!())
    };
    let (partials_field, partials_init, partials_ref) = if partials_len > 0 {
        (
            quote!(partials: Vec<f64>,),
            quote!(partials: vec![0.0; #partials_len],),
            quote!(&self.partials),
        )
    } else {
        (quote!(), quote!(), quote!(&[]))
    };
    let net_spec = spec::spec(model, &mut e, inference.as_ref());
    let scratch = &e.scratch;
    let output = a(plan.output);
    let items = &e.items;
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
    let (train_fields, train_init, train_impl, train_macro) = if let Some(backward) = backward {
        let loss = plan.loss.expect("a train block plans a loss");
        let (logits, out, dlogits) = (a(loss.logits), a(loss.output), d(loss.logits));
        (
            quote! {
                #(#grad_fields: Vec<f32>,)*
                #(#mask_fields: Vec<f32>,)*
                #dtmp_field
            },
            quote! {
                #(#grad_fields: vec![0.0; samples * #lens],)*
                #(#mask_fields: vec![0.0; samples * #mask_lens],)*
                #dtmp_init
            },
            quote! {
                impl rt::Backward for Worker {
                    fn loss_io(&mut self) -> rt::LossIo<'_> {
                        rt::LossIo { logits: &self.#logits, output: &self.#out, grad: &mut self.#dlogits }
                    }

                    fn input_grad(&self) -> &[f32] {
                        &self.d0
                    }

                    #[allow(unused_variables)]
                    fn backward(&mut self, phase: usize, pass: &rt::Pass<'_>, grads: &mut [f32]) {
                        let (n, p) = (pass.n, pass.params);
                        #backward
                    }
                }
            },
            quote!(rt::train!(#inner);),
        )
    } else {
        Default::default()
    };

    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case, non_camel_case_types, clippy::all)]
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

            impl rt::Network for Net {
                type Worker = Worker;
                fn spec(&self) -> &'static rt::Spec {
                    &Self::SPEC
                }
                fn worker(&self, samples: usize) -> Worker {
                    Worker::new(samples)
                }
            }

            /// The buffers one thread works in.
            pub struct Worker {
                #(#buffer_fields: Vec<f32>,)*
                scratch: Vec<f32>,
                #partials_field
                #train_fields
            }

            impl Worker {
                fn new(samples: usize) -> Self {
                    Worker {
                        #(#buffer_fields: vec![0.0; samples * #lens],)*
                        scratch: vec![0.0; [0, #(#scratch),*].into_iter().max().unwrap_or(0)],
                        #partials_init
                        #train_init
                    }
                }
            }

            impl rt::Worker for Worker {
                fn input(&mut self) -> &mut [f32] {
                    &mut self.a0
                }

                fn output(&self) -> &[f32] {
                    &self.#output
                }

                fn partials(&self) -> &[f64] {
                    #partials_ref
                }

                fn buffer(&self, i: usize) -> &[f32] {
                    match i {
                        #(#buffer_ids => &self.#buffer_fields,)*
                        _ => &[],
                    }
                }

                #[allow(unused_variables)]
                fn forward(&mut self, phase: usize, pass: &rt::Pass<'_>) {
                    let (n, p) = (pass.n, pass.params);
                    #forward
                }

                #infer
            }

            #train_impl

            #(#items)*
        }
        #export
    }
}
