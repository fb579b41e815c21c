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
    /// The worker's field for each activation buffer, named after the layer that
    /// writes it (`input` for the model's input), and for its gradient (`d_conv1`).
    fields: Vec<Ident>,
    grads: Vec<Ident>,
    /// Each parameter's range in the flat parameter vector, as a named constant.
    params: Vec<Ident>,
    /// The range constants declared so far (parameters, batchnorm statistics,
    /// folded weights), in order of declaration.
    ranges: Vec<(Ident, TokenStream)>,
}

impl<'a> Emit<'a> {
    /// The marker type of the layer constants `key`, declared by `build(name)` the
    /// first time (identical layers share one), named by what it is (`base`:
    /// `Conv3x3_16x32x32_to_32`), never after one of the layers that share it.
    fn layer_type(&mut self, key: String, base: String, build: impl FnOnce(&mut Self, &Ident) -> TokenStream) -> Ident {
        if let Some(name) = self.names.get(&key) {
            return name.clone();
        }
        let mut base = base;
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

    /// `&self.a3[..n * 400]`: input `k` of step `s`.
    fn x(&self, s: usize, k: usize) -> TokenStream {
        buffer_ref(
            &self.fields[self.step(s).inputs[k]],
            self.plan.buffers[self.step(s).inputs[k]],
            false,
        )
    }

    fn y(&self, s: usize) -> TokenStream {
        buffer_ref(
            &self.fields[self.step(s).output],
            self.plan.buffers[self.step(s).output],
            false,
        )
    }

    fn y_mut(&self, s: usize) -> TokenStream {
        buffer_ref(
            &self.fields[self.step(s).output],
            self.plan.buffers[self.step(s).output],
            true,
        )
    }

    fn dy(&self, s: usize) -> TokenStream {
        buffer_ref(
            &self.grads[self.step(s).output],
            self.plan.buffers[self.step(s).output],
            false,
        )
    }

    fn dy_mut(&self, s: usize) -> TokenStream {
        buffer_ref(
            &self.grads[self.step(s).output],
            self.plan.buffers[self.step(s).output],
            true,
        )
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
            let field = &self.grads[b];
            quote! {
                #body
                rt::norm::accumulate(&mut self.#field[..n * #len], &self.dtmp[..n * #len]);
            }
        } else {
            write(buffer_ref(&self.grads[b], len, true))
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
        let (field, len) = (&self.grads[b], self.plan.buffers[b]);
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
            buffer_ref(&self.grads[b], len, true)
        };
        let option = if b == 0 {
            quote!(if pass.input_grad { Some(#dst) } else { None })
        } else {
            quote!(Some(#dst))
        };
        let body = call(option);
        if accumulates {
            let field = &self.grads[b];
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

    /// `&p[CONV1_WEIGHT]`: parameter `id`'s values.
    fn param(&self, id: Option<usize>) -> TokenStream {
        match id {
            Some(id) => {
                let name = &self.params[id];
                quote!(&p[#name])
            }
            None => quote!(&[]),
        }
    }

    /// The constant `NAME` for the range `start..end`, declared the first time.
    fn range(&mut self, name: String, start: usize, end: usize) -> Ident {
        let name = format_ident!("{}", name);
        if !self.ranges.iter().any(|(n, _)| *n == name) {
            self.ranges.push((name.clone(), quote!(#start..#end)));
        }
        name
    }

    /// `&pass.shared[BATCHNORM1_STATS]` (the combined mean and 1/std) or
    /// `..._SUMS` (Σdy, Σdy·x̂) of batchnorm `index`.
    fn shared(&mut self, index: usize, sums: bool) -> TokenStream {
        let bn = &self.plan.batchnorms[index];
        let (at, c) = (bn.shared, bn.channels);
        let name = constant_name(&bn.name);
        let range = if sums {
            self.range(format!("{name}_SUMS"), at + 2 * c, at + 4 * c)
        } else {
            self.range(format!("{name}_STATS"), at, at + 2 * c)
        };
        quote!(&pass.shared[#range])
    }

    /// `(&pass.folded[CONV1_WEIGHT_FOLDED], Some(&pass.folded[CONV1_BIAS_FOLDED]))`:
    /// fold `f`'s weight and bias.
    fn folded(&mut self, f: usize) -> (TokenStream, TokenStream) {
        let fold = &self.plan.folds[f];
        let conv = constant_name(&self.plan.params[fold.weight].name);
        let conv = conv.strip_suffix("_WEIGHT").unwrap_or(&conv).to_string();
        let (start, split, end) = (
            fold.offset,
            fold.offset + fold.weight_len,
            fold.offset + fold.weight_len + fold.filters,
        );
        let weight = self.range(format!("{conv}_WEIGHT_FOLDED"), start, split);
        let bias = self.range(format!("{conv}_BIAS_FOLDED"), split, end);
        (quote!(&pass.folded[#weight]), quote!(Some(&pass.folded[#bias])))
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

    /// The gradient slices of parameter `first` and the one after it in the flat
    /// vector (a weight and its bias; batchnorm's γ and β), as `(a, b)`.
    fn grad_pair(&self, first: usize, second: usize) -> TokenStream {
        let (w, b) = (&self.params[first], &self.params[second]);
        quote!(grads[#w.start..#b.end].split_at_mut(#w.len()))
    }

    /// The gradient slices of a weight and its optional bias, bound to `dw` and `db`.
    fn weight_grads(&self, s: usize) -> TokenStream {
        let step = self.step(s);
        let w = step.weight.expect("a layer with a weight");
        match step.bias {
            Some(b) => {
                let pair = self.grad_pair(w, b);
                quote! {
                    let (dw, db) = #pair;
                    let db = Some(db);
                }
            }
            None => {
                let w = &self.params[w];
                quote! {
                    let dw = &mut grads[#w];
                    let db = None;
                }
            }
        }
    }
}

/// `CONV1_WEIGHT` from `conv1.weight`.
fn constant_name(name: &str) -> String {
    name.replace(['.', '+'], "_").to_ascii_uppercase()
}

/// The names the generated module gives its own items.
const INTERNAL: [&str; 3] = ["Net", "Worker", "rt"];

/// The worker's fields for the activation buffers and their gradients, named
/// after the layer that writes each (`input` for buffer 0): `conv1` and
/// `d_conv1`. A name taken by another field, or a Rust keyword, gains a `_`.
fn buffer_fields(plan: &Plan, taken: &[Ident]) -> (Vec<Ident>, Vec<Ident>) {
    let mut used: Vec<String> = taken.iter().map(|i| i.to_string()).collect();
    used.extend(["scratch", "partials", "dtmp"].map(String::from));
    let (mut fields, mut grads) = (Vec::new(), Vec::new());
    for b in 0..plan.buffers.len() {
        let layer = match plan.steps.iter().find(|s| s.output == b) {
            Some(step) => step.name.split('+').next().unwrap_or("layer").replace('.', "_"),
            None if b == 0 => "input".to_string(),
            None => format!("buffer{b}"),
        };
        let mut name = layer;
        while used.contains(&name) || used.contains(&format!("d_{name}")) || syn::parse_str::<Ident>(&name).is_err() {
            name.push('_');
        }
        used.push(name.clone());
        used.push(format!("d_{name}"));
        fields.push(format_ident!("{}", name));
        grads.push(format_ident!("d_{}", name));
    }
    (fields, grads)
}

/// One range constant per parameter, named after it (`CONV1_WEIGHT`).
fn param_constants(plan: &Plan) -> (Vec<Ident>, Vec<(Ident, TokenStream)>) {
    let mut names: Vec<Ident> = Vec::new();
    let mut ranges = Vec::new();
    for slot in &plan.params {
        let mut name = constant_name(&slot.name);
        while names.iter().any(|n| *n == name) {
            name.push('_');
        }
        let (ident, r) = (format_ident!("{}", name), slot.range());
        let (start, end) = (r.start, r.end);
        ranges.push((ident.clone(), quote!(#start..#end)));
        names.push(ident);
    }
    (names, ranges)
}

/// `&self.a3[..n * 400]` or `&mut ...`.
fn buffer_ref(field: &Ident, len: usize, mutable: bool) -> TokenStream {
    if mutable {
        quote!(&mut self.#field[..n * #len])
    } else {
        quote!(&self.#field[..n * #len])
    }
}

/// `rt::Activation::Relu`, `rt::Activation::LeakyRelu(0.2)`: the variant by its
/// name, with its one `f32` parameter when it has one, so no activation needs a
/// line here.
fn act_tokens(act: ir::Activation) -> TokenStream {
    let text = format!("{act:?}");
    let (variant, parameter) = match text.split_once('(') {
        Some((variant, rest)) => (variant, rest.strip_suffix(')').and_then(|p| p.parse::<f32>().ok())),
        None => (text.as_str(), None),
    };
    let variant = format_ident!("{}", variant);
    match parameter {
        Some(v) => {
            let v = proc_macro2::Literal::f32_suffixed(v);
            quote!(rt::Activation::#variant(#v))
        }
        None => quote!(rt::Activation::#variant),
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
    (doc + ".", quote!(#(#code)*))
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
    (doc + ".", quote!(#(#code)*))
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
        fn infer(&mut self, phases: usize, pass: &rt::Pass<'_>) {
            let (n, p) = (pass.n, pass.params);
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
    let masks: Vec<(Ident, usize)> = plan
        .steps
        .iter()
        .filter_map(|s| match s.kind {
            Kind::Dropout { layer, .. } => Some((dropout::mask(layer), plan.buffers[s.output])),
            _ => None,
        })
        .collect();
    let (mask_fields, mask_lens): (Vec<Ident>, Vec<usize>) = masks.into_iter().unzip();
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
    let backward = training.then(|| by_phase((0..phases).map(|p| backward_phase(&mut e, p)).collect()));
    let infer = inference.as_ref().map(|inference| infer(&mut e, inference));

    let lens = &plan.buffers;
    // No gradient buffer for an output whose backward pass the loss replaces.
    let dead = plan
        .loss
        .filter(|l| l.fused_step.is_some() && l.output != l.logits && plan.readers(l.output) == 0)
        .map(|l| l.output);
    let (live_grads, grad_lens): (Vec<Ident>, Vec<usize>) = (0..plan.buffers.len())
        .filter(|&b| Some(b) != dead)
        .map(|b| (e.grads[b].clone(), plan.buffers[b]))
        .unzip();
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
    // The largest scratch of any layer: `a.max(b).max(c)`.
    let scratch = match e.scratch.split_first() {
        Some((first, rest)) => quote!(#first #(.max(#rest))*),
        None => quote!(0),
    };
    let (fields, grads) = (&e.fields, &e.grads);
    let (input, output, d_input) = (&fields[0], &fields[plan.output], &grads[0]);
    let buffer_ids = 0..plan.buffers.len();
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
    let (train_fields, train_init, train_impl, train_macro) = if let Some(backward) = backward {
        let loss = plan.loss.expect("a train block plans a loss");
        let (logits, out, dlogits) = (&fields[loss.logits], &fields[loss.output], &grads[loss.logits]);
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
