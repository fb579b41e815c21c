//! IR to Rust tokens. For each model: a struct that owns its parameters,
//! gradients, optimizer state and activation buffers (all allocated in `new`),
//! a forward pass, a generated backward pass (no tape), the fused loss and the
//! optimizer update, and the `Model`/`Train` trait implementations.
//!
//! The layer families emit their own functions: `conv.rs`, `pool.rs`, `dense.rs`,
//! `activation.rs`, `loss.rs`, `optim.rs`; `plan.rs` decides buffers and fusion.

mod activation;
mod conv;
mod dense;
mod loss;
mod optim;
pub mod plan;
mod pool;

use crate::ir::{self, InitScheme, Schedule};
use plan::{Kind, LossPlan, Plan};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};
use std::collections::HashMap;

/// The field holding activation buffer `i`.
fn a(i: usize) -> Ident {
    format_ident!("a{}", i)
}

/// The field holding the gradient of activation buffer `i`.
fn d(i: usize) -> Ident {
    format_ident!("d{}", i)
}

/// The field holding dropout mask `i` (for the step writing buffer `i`).
fn mask(i: usize) -> Ident {
    format_ident!("mask{}", i)
}

/// Every model of a checked file, as one token stream.
pub fn generate(models: &[ir::Model]) -> TokenStream {
    unsuffixed(models.iter().map(generate_model).collect())
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

/// A slice of activation buffer `i` for `n` samples: `&self.a3[..n * 400]`.
fn slice(field: &Ident, len: usize) -> TokenStream {
    quote!(&self.#field[..n * #len])
}

fn slice_mut(field: &Ident, len: usize) -> TokenStream {
    quote!(&mut self.#field[..n * #len])
}

/// Builds the per-shape kernel functions, one per distinct (kind, shape), and
/// returns each step's function names.
struct Kernels {
    functions: Vec<TokenStream>,
    /// Each layer shape's scratch need, as expressions of `samples`.
    scratch: Vec<TokenStream>,
    names: HashMap<String, (Ident, Ident)>,
    training: bool,
}

impl Kernels {
    fn names(&mut self, step: &plan::Step) -> Option<(Ident, Ident)> {
        let key = match &step.kind {
            Kind::Conv { shape, filters, act } => format!("conv {shape:?} {filters} {act:?}"),
            Kind::Dense { inputs, outputs, act } => format!("dense {inputs} {outputs} {act:?}"),
            Kind::MaxPool(s) => format!("maxpool {s:?}"),
            Kind::AvgPool(s) => format!("avgpool {s:?}"),
            _ => return None,
        };
        if let Some(names) = self.names.get(&key) {
            return Some(names.clone());
        }
        let base = step.name.split('+').next().unwrap_or("layer").to_string();
        let fwd = format_ident!("forward_{}", base);
        let bwd = format_ident!("backward_{}", base);
        let shape = format_ident!("{}", base.to_uppercase());
        let training = self.training;
        let mut push = |f: TokenStream, b: TokenStream| {
            self.functions.push(f);
            if training {
                self.functions.push(b);
            }
        };
        match &step.kind {
            Kind::Conv { shape: s, filters, act } => {
                self.scratch.push(quote!(Self::#shape.scratch_len()));
                push(conv::shape_const(&shape, s, *filters), quote!());
                push(conv::forward_fn(&fwd, &shape, *act), conv::backward_fn(&bwd, &shape));
            }
            Kind::Dense { inputs, outputs, act } => {
                self.scratch
                    .push(quote!(::cnnc::compute::dense::scratch_len(#inputs, #outputs, samples)));
                push(
                    dense::forward_fn(&fwd, *inputs, *outputs, *act),
                    dense::backward_fn(&bwd, *inputs, *outputs),
                );
            }
            Kind::MaxPool(s) => {
                push(pool::shape_const(&shape, s), quote!());
                push(pool::max_forward_fn(&fwd, &shape), pool::max_backward_fn(&bwd, &shape));
            }
            Kind::AvgPool(s) => {
                push(pool::shape_const(&shape, s), quote!());
                push(pool::avg_forward_fn(&fwd, &shape), pool::avg_backward_fn(&bwd, &shape));
            }
            _ => {}
        }
        self.names.insert(key, (fwd.clone(), bwd.clone()));
        Some((fwd, bwd))
    }
}

/// A per-shape kernel function, built twice: for AVX2 + FMA and for the target's
/// baseline (SSE2 on x86-64). The kernels it calls are `#[inline(always)]`, so
/// each build compiles their loops (pooling, activations, unfolding, small dense
/// layers) for that instruction set; `#name` picks one at run time, following the
/// matrix products' choice (`gemm::selected`, which honours `CNNC_KERNEL`). CPUs
/// with AVX-512 run the AVX2 build: on these loops it measured faster than an
/// AVX-512 build (LeNet training 1.94 against 2.10 ms a step), while the matrix
/// products keep their AVX-512 micro-kernel.
pub(crate) fn multiversion(name: &Ident, params: TokenStream, args: TokenStream, body: TokenStream) -> TokenStream {
    let avx2 = format_ident!("{}_avx2", name);
    let portable = format_ident!("{}_portable", name);
    quote! {
        #[inline(never)]
        #[allow(clippy::too_many_arguments)]
        fn #name(#params) {
            match ::cnnc::compute::gemm::selected() {
                // SAFETY: `selected` only returns a kernel whose features this CPU has,
                // and both x86 kernels imply AVX2 and FMA.
                #[cfg(target_arch = "x86_64")]
                ::cnnc::compute::gemm::Isa::Avx512 | ::cnnc::compute::gemm::Isa::Avx2 => unsafe {
                    Self::#avx2(#args)
                },
                _ => Self::#portable(#args),
            }
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn #avx2(#params) { #body }
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        fn #portable(#params) { #body }
    }
}

fn param_range(plan: &Plan, id: usize) -> TokenStream {
    let p = &plan.params[id];
    let (start, end) = (p.offset, p.offset + p.len());
    quote!(#start..#end)
}

fn forward_step(plan: &Plan, step: &plan::Step, kernels: &mut Kernels) -> TokenStream {
    let (inp, out) = (a(step.input), a(step.output));
    let (in_len, out_len) = (plan.buffers[step.input], plan.buffers[step.output]);
    let x = slice(&inp, in_len);
    let y = slice_mut(&out, out_len);
    match (&step.kind, kernels.names(step)) {
        (Kind::Conv { .. }, Some((f, _))) => {
            let (w, b) = step
                .params
                .map(|(w, b)| (param_range(plan, w), param_range(plan, b)))
                .unzip_tokens();
            quote!(Self::#f(#x, &params[#w], &params[#b], #y, n, &mut self.scratch);)
        }
        (Kind::Dense { .. }, Some((f, _))) => {
            let (w, b) = step
                .params
                .map(|(w, b)| (param_range(plan, w), param_range(plan, b)))
                .unzip_tokens();
            quote!(Self::#f(#x, &params[#w], &params[#b], #y, n, &mut self.scratch);)
        }
        (Kind::MaxPool(_) | Kind::AvgPool(_), Some((f, _))) => quote!(Self::#f(#x, #y, n);),
        (Kind::GlobalAvgPool { channels, area }, _) => pool::global_forward(*channels, *area, &x, &y),
        (Kind::Activation(act), _) => activation::forward(*act, &x, &y),
        (Kind::Softmax { features }, _) => activation::softmax_forward(*features, &x, &y),
        (Kind::Dropout { p }, _) => {
            let m = mask(step.output);
            if kernels.training {
                activation::dropout_forward(*p, &x, &y, &slice_mut(&m, out_len))
            } else {
                quote!((#y).copy_from_slice(#x);)
            }
        }
        _ => unreachable!("every step kind is handled"),
    }
}

/// `(Option<(A, B)>) -> (A, B)` for the parameter ranges of steps that have them.
trait UnzipTokens {
    fn unzip_tokens(self) -> (TokenStream, TokenStream);
}

impl UnzipTokens for Option<(TokenStream, TokenStream)> {
    fn unzip_tokens(self) -> (TokenStream, TokenStream) {
        self.unwrap_or_else(|| (quote!(0..0), quote!(0..0)))
    }
}

fn backward_step(plan: &Plan, step: &plan::Step, kernels: &mut Kernels) -> TokenStream {
    let (inp, out, din, dout) = (a(step.input), a(step.output), d(step.input), d(step.output));
    let (in_len, out_len) = (plan.buffers[step.input], plan.buffers[step.output]);
    let x = slice(&inp, in_len);
    let y = slice(&out, out_len);
    let dy = slice(&dout, out_len);
    let dy_mut = slice_mut(&dout, out_len);
    // The input's gradient is wanted unless the input is the model's own and
    // the caller did not ask for it.
    let dx_mut = slice_mut(&din, in_len);
    let dx_opt = if step.input == 0 {
        quote!(if input_grad { Some(#dx_mut) } else { None })
    } else {
        quote!(Some(#dx_mut))
    };
    let guard = |body: TokenStream| {
        if step.input == 0 {
            quote!(if input_grad { #body })
        } else {
            body
        }
    };
    match (&step.kind, kernels.names(step)) {
        (Kind::Conv { act, .. } | Kind::Dense { act, .. }, Some((_, b))) => {
            let act_backward = if *act == plan::Activation::Identity {
                quote!()
            } else {
                let act = activation::act_tokens(*act);
                quote!(#act.backward(#y, #dy_mut);)
            };
            let (w, bias) = step.params.unwrap_or((0, 0));
            let wr = param_range(plan, w);
            let (w_start, w_len) = (plan.params[w].offset, plan.params[w].len());
            let b_end = plan.params[bias].offset + plan.params[bias].len();
            quote! {
                #act_backward
                let (dw, db) = self.grads[#w_start..#b_end].split_at_mut(#w_len);
                Self::#b(#x, &params[#wr], #dy, dw, db, #dx_opt, n, &mut self.scratch);
            }
        }
        (Kind::MaxPool(_), Some((_, b))) => guard(quote!(Self::#b(#x, #dy, #dx_mut, n);)),
        (Kind::AvgPool(_), Some((_, b))) => guard(quote!(Self::#b(#dy, #dx_mut, n);)),
        (Kind::GlobalAvgPool { channels, area }, _) => guard(pool::global_backward(*channels, *area, &dy, &dx_mut)),
        (Kind::Activation(act), _) => guard(activation::backward(*act, &y, &dy, &dx_mut)),
        (Kind::Softmax { features }, _) => guard(activation::softmax_backward(*features, &y, &dy, &dx_mut)),
        (Kind::Dropout { .. }, _) => {
            let m = slice(&mask(step.output), out_len);
            guard(activation::dropout_backward(&m, &dy, &dx_mut))
        }
        _ => unreachable!("every step kind is handled"),
    }
}

/// The initial parameters, drawn in layer order by the spec's scheme.
fn init_tokens(model: &ir::Model, plan: &Plan) -> TokenStream {
    let draws = plan.params.iter().filter(|p| p.name.ends_with(".weight")).map(|p| {
        let range = (p.offset, p.offset + p.len());
        let (start, end) = range;
        let scheme = match ir::init_scheme(&model.layers, p.layer) {
            InitScheme::HeNormal { fan_in, negative_slope } => {
                quote!(::cnnc::ir::InitScheme::HeNormal { fan_in: #fan_in, negative_slope: #negative_slope })
            }
            InitScheme::XavierUniform { fan_in, fan_out } => {
                quote!(::cnnc::ir::InitScheme::XavierUniform { fan_in: #fan_in, fan_out: #fan_out })
            }
        };
        let len = p.len();
        quote! {
            params[#start..#end].copy_from_slice(&init.weights(#scheme, #len));
        }
    });
    quote! {
        let mut init = ::cnnc::rt::init::Initializer::new(seed);
        #(#draws)*
    }
}

fn schedule_tokens(s: &Schedule) -> TokenStream {
    match *s {
        Schedule::Constant => quote!(::cnnc::ir::Schedule::Constant),
        Schedule::Step { every, gamma } => quote!(::cnnc::ir::Schedule::Step { every: #every, gamma: #gamma }),
        Schedule::Exponential { gamma } => quote!(::cnnc::ir::Schedule::Exponential { gamma: #gamma }),
        Schedule::Cosine { min } => quote!(::cnnc::ir::Schedule::Cosine { min: #min }),
    }
}

/// One model: the model struct (parameters, optimizer state, workers), a worker
/// struct per model (one per thread: activation buffers, their gradients and a
/// gradient accumulator), and the `Model`/`Train` implementations.
pub fn generate_model(model: &ir::Model) -> TokenStream {
    let plan = Plan::new(model);
    let name = Ident::new(&model.name, Span::call_site());
    let worker = format_ident!("{}Worker", model.name);
    let training = model.train.is_some();
    let mut kernels = Kernels {
        functions: Vec::new(),
        scratch: Vec::new(),
        names: HashMap::new(),
        training,
    };
    let batch = plan.batch;
    let input_dims = model.input.dims();
    let output_dims = model.output().dims();
    let (in_rank, out_rank) = (input_dims.len(), output_dims.len());
    let out_len = model.output().len();
    let param_count = plan.param_count;
    let params_table = plan.params.iter().map(|p| {
        let (pname, offset, shape) = (&p.name, p.offset, &p.shape);
        quote!(::cnnc::support::ParamInfo { name: #pname, offset: #offset, shape: &[#(#shape),*] })
    });
    let n_params = plan.params.len();
    let act_fields: Vec<Ident> = (0..plan.buffers.len()).map(a).collect();
    let act_lens: Vec<usize> = plan.buffers.clone();
    let output_field = a(plan.output);
    let forward: Vec<TokenStream> = plan
        .steps
        .iter()
        .map(|s| forward_step(&plan, s, &mut kernels))
        .collect();
    let doc = format!(
        " The `{}` model: input {}, output {}, {} parameters. Generated by `cnn!`.",
        model.name,
        model.input,
        model.output(),
        param_count
    );
    let worker_doc = format!(" The buffers one thread of [`{}`] works in.", model.name);

    let train = model
        .train
        .as_ref()
        .map(|train| train_parts(model, &plan, train, &name, &worker, &mut kernels));
    let (model_fields, model_init, worker_fields, worker_init, worker_methods, train_impl) = match train {
        Some(t) => (
            t.model_fields,
            t.model_init,
            t.worker_fields,
            t.worker_init,
            t.worker_methods,
            t.train_impl,
        ),
        None => Default::default(),
    };
    let functions = &kernels.functions;
    let scratch = &kernels.scratch;
    let init = init_tokens(model, &plan);
    let train_flag = if training { quote!(train) } else { quote!(_train) };
    quote! {
        #[doc = #doc]
        #[allow(non_camel_case_types)]
        pub struct #name {
            params: Vec<f32>,
            workers: Vec<#worker>,
            #model_fields
        }

        #[doc = #worker_doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        pub struct #worker {
            #(#act_fields: Vec<f32>,)*
            scratch: Vec<f32>,
            #worker_fields
        }

        impl #worker {
            /// Buffers for `samples` samples at a time.
            fn new(seed: u64, samples: usize) -> Self {
                let _ = seed;
                #worker {
                    #(#act_fields: vec![0.0; samples * #act_lens],)*
                    scratch: vec![0.0; [0, #(#scratch),*].into_iter().max().unwrap_or(0)],
                    #worker_init
                }
            }

            /// The forward pass over the `n` samples in `a0`.
            #[allow(unused_variables)]
            fn forward(&mut self, params: &[f32], n: usize, #train_flag: bool) {
                #(#forward)*
            }

            #worker_methods

            #(#functions)*
        }

        impl #name {
            /// The shape of one input sample.
            pub const INPUT_SHAPE: [usize; #in_rank] = [#(#input_dims),*];
            /// The shape of one output sample.
            pub const OUTPUT_SHAPE: [usize; #out_rank] = [#(#output_dims),*];
            /// The number of parameters.
            pub const PARAM_COUNT: usize = #param_count;
            /// Samples processed at once (split across threads); larger batches run in chunks.
            pub const BATCH: usize = #batch;
            /// Every parameter: name, offset in the flat buffer, PyTorch shape.
            pub const PARAMS: [::cnnc::support::ParamInfo; #n_params] = [#(#params_table),*];

            /// A model with the spec's initialization: He normal before relu, Xavier
            /// uniform otherwise, biases 0, drawn from `seed`.
            pub fn new(seed: u64) -> Self {
                let mut params = vec![0.0f32; #param_count];
                #init
                let workers = ::cnnc::support::worker_count(Self::BATCH);
                let samples = Self::BATCH.div_ceil(workers);
                #name {
                    params,
                    workers: (0..workers).map(|i| #worker::new(seed.wrapping_add(i as u64), samples)).collect(),
                    #model_init
                }
            }

            /// Saves the parameters with PyTorch names and layouts.
            pub fn save_safetensors(&self, path: impl AsRef<::std::path::Path>) -> Result<(), ::cnnc::Error> {
                ::cnnc::rt::weights::save_safetensors(self, path.as_ref())
            }

            /// Loads parameters saved by `save_safetensors` or by PyTorch.
            pub fn load_safetensors(&mut self, path: impl AsRef<::std::path::Path>) -> Result<(), ::cnnc::Error> {
                ::cnnc::rt::weights::load_safetensors(self, path.as_ref())
            }

            /// Inference into a caller's buffer of `N * OUTPUT_SHAPE` values; allocates nothing.
            pub fn predict_into(&mut self, x: ::cnnc::ndarray::ArrayViewD<'_, f32>, out: &mut [f32]) -> Result<(), ::cnnc::Error> {
                let n = ::cnnc::support::batch_size("input", x.shape(), &Self::INPUT_SHAPE)?;
                ::cnnc::support::check_finite("input", &x)?;
                if out.len() != n * #out_len {
                    return Err(::cnnc::Error::Shape {
                        what: "output buffer".into(),
                        expected: format!("{} values", n * #out_len),
                        given: vec![out.len()],
                    });
                }
                let params = &self.params;
                let count = self.workers.len();
                let mut lo = 0;
                while lo < n {
                    let hi = (lo + Self::BATCH).min(n);
                    let active = count.min(hi - lo);
                    ::cnnc::support::each_worker(&mut self.workers[..active], &|w, worker: &mut #worker| {
                        let (a, b) = ::cnnc::support::worker_range(lo, hi, w, count);
                        if a < b {
                            ::cnnc::support::copy_rows(&x, a, b, &mut worker.a0);
                            worker.forward(params, b - a, false);
                        }
                        0.0
                    });
                    for (w, worker) in self.workers.iter().enumerate() {
                        let (a, b) = ::cnnc::support::worker_range(lo, hi, w, count);
                        out[a * #out_len..b * #out_len].copy_from_slice(&worker.#output_field[..(b - a) * #out_len]);
                    }
                    lo = hi;
                }
                Ok(())
            }
        }

        impl ::cnnc::Model for #name {
            fn input_shape(&self) -> &[usize] {
                &Self::INPUT_SHAPE
            }
            fn output_shape(&self) -> &[usize] {
                &Self::OUTPUT_SHAPE
            }
            fn param_names(&self) -> Vec<String> {
                Self::PARAMS.iter().map(|p| p.name.to_string()).collect()
            }
            fn param(&self, name: &str) -> Option<::cnnc::ndarray::ArrayD<f32>> {
                ::cnnc::support::get_param(&Self::PARAMS, &self.params, name)
            }
            fn set_param(&mut self, name: &str, value: ::cnnc::ndarray::ArrayViewD<'_, f32>) -> Result<(), ::cnnc::Error> {
                ::cnnc::support::set_param(&Self::PARAMS, &mut self.params, name, value)
            }
            fn predict(&mut self, x: ::cnnc::ndarray::ArrayViewD<'_, f32>) -> Result<::cnnc::ndarray::ArrayD<f32>, ::cnnc::Error> {
                let n = ::cnnc::support::batch_size("input", x.shape(), &Self::INPUT_SHAPE)?;
                let mut out = vec![0.0f32; n * #out_len];
                self.predict_into(x, &mut out)?;
                let mut dims = vec![n];
                dims.extend_from_slice(&Self::OUTPUT_SHAPE);
                ::cnnc::ndarray::ArrayD::from_shape_vec(dims, out).map_err(|e| ::cnnc::Error::Config(e.to_string()))
            }
        }

        #train_impl
    }
}

/// The pieces a train block adds.
#[derive(Default)]
struct TrainParts {
    model_fields: TokenStream,
    model_init: TokenStream,
    worker_fields: TokenStream,
    worker_init: TokenStream,
    worker_methods: TokenStream,
    train_impl: TokenStream,
}

fn train_parts(
    model: &ir::Model,
    plan: &Plan,
    train: &ir::TrainConfig,
    name: &Ident,
    worker: &Ident,
    kernels: &mut Kernels,
) -> TrainParts {
    let loss_plan = plan.loss.unwrap_or(LossPlan::Mse { output: plan.output });
    let skip = plan.loss_step();
    let backward: Vec<TokenStream> = plan
        .steps
        .iter()
        .enumerate()
        .rev()
        .filter(|(i, _)| Some(*i) != skip)
        .map(|(_, s)| backward_step(plan, s, kernels))
        .collect();
    let out_len = model.output().len();
    let in_len = model.input.len();
    let param_count = plan.param_count;
    let batch = plan.batch;
    let loss_body = loss::loss_body(loss_plan, out_len);
    let update = optim::update_body(train);
    let states = optim::state_buffers(train);
    let state1_len = if states >= 1 { param_count } else { 0 };
    let state2_len = if states >= 2 { param_count } else { 0 };
    let schedule = schedule_tokens(&train.schedule);
    let base_lr = train.optimizer.lr();
    let epochs = train.epochs;
    let seed = train.seed;
    let loss_kind = match train.loss {
        ir::Loss::CrossEntropy => quote!(::cnnc::ir::Loss::CrossEntropy),
        ir::Loss::Mse => quote!(::cnnc::ir::Loss::Mse),
        ir::Loss::BinaryCrossEntropy => quote!(::cnnc::ir::Loss::BinaryCrossEntropy),
    };
    let validation = match train.validation {
        Some(v) => quote!(Some(#v)),
        None => quote!(None),
    };
    let classifier = matches!(loss_plan, LossPlan::CrossEntropy { .. });
    // Targets: checked once for the whole batch, copied per worker.
    let (target_prep, fill_target, total, count_correct) = match loss_plan {
        LossPlan::CrossEntropy { probs, classes, .. } => {
            let p = a(probs);
            (
                quote!(let labels = ::cnnc::support::labels(&target, n, #classes)?;),
                quote! {
                    for (d, s) in worker.labels.iter_mut().zip(labels.iter().skip(a).take(b - a)) {
                        *d = *s;
                    }
                },
                quote!(n),
                quote! {
                    worker.correct += ::cnnc::compute::loss::count_correct(&worker.#p[..m * #classes], &worker.labels[..m], #classes);
                },
            )
        }
        LossPlan::BinaryCrossEntropy { .. } | LossPlan::Mse { .. } => {
            let bce = matches!(loss_plan, LossPlan::BinaryCrossEntropy { .. });
            let loss_word = if bce { "binary_cross_entropy" } else { "mse" };
            let range_check = if bce {
                quote! {
                    if let Some(v) = values.iter().find(|v| !(0.0..=1.0).contains(*v)) {
                        return Err(::cnnc::Error::Target(format!(
                            "binary_cross_entropy targets must lie in [0, 1]; found {v}"
                        )));
                    }
                }
            } else {
                quote!()
            };
            (
                quote! {
                    let values = ::cnnc::support::values(&target, n, &Self::OUTPUT_SHAPE, #loss_word)?;
                    ::cnnc::support::check_finite("target", &values)?;
                    #range_check
                },
                quote!(::cnnc::support::copy_rows(&values, a, b, &mut worker.targets);),
                quote!(n * #out_len),
                quote!(),
            )
        }
    };
    let last_correct = if classifier {
        quote!(Some(self.correct))
    } else {
        quote!(None)
    };
    let grad_fields: Vec<Ident> = (0..plan.buffers.len()).map(d).collect();
    let grad_lens: Vec<usize> = plan.buffers.clone();
    let mask_ids: Vec<usize> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.kind, Kind::Dropout { .. }))
        .map(|s| s.output)
        .collect();
    let mask_fields: Vec<Ident> = mask_ids.iter().map(|&i| mask(i)).collect();
    let mask_lens: Vec<usize> = mask_ids.iter().map(|&i| plan.buffers[i]).collect();
    let labels_len = usize::from(classifier);
    let targets_len = if classifier { 0 } else { out_len };
    let train_impl = quote! {
        impl #name {
            /// The model's train block, as `fit` reads it.
            pub const FIT: ::cnnc::rt::fit::FitConfig = ::cnnc::rt::fit::FitConfig {
                loss: #loss_kind,
                epochs: #epochs,
                batch: #batch,
                validation: #validation,
                seed: #seed,
                verbose: true,
            };

            /// Trains on `data` as the train block says: epochs, batches, validation
            /// split, schedule; prints a line per epoch.
            pub fn fit(&mut self, data: &::cnnc::rt::data::Dataset) -> Result<::cnnc::rt::fit::FitReport, ::cnnc::Error> {
                ::cnnc::rt::fit::fit(self, data, &Self::FIT)
            }

            /// Loss and accuracy on `data`, in inference mode.
            pub fn evaluate(&mut self, data: &::cnnc::rt::data::Dataset) -> Result<::cnnc::rt::fit::Evaluation, ::cnnc::Error> {
                ::cnnc::rt::fit::evaluate(self, data, Self::FIT.loss, Self::BATCH)
            }

            /// One optimizer step over the flat parameter buffer.
            fn update(&mut self, lr: f32) {
                #update
            }

            /// Forward, loss and backward over a whole batch, in chunks of `BATCH`
            /// split across the workers; leaves the summed gradient in `grads`.
            /// Returns the mean loss; fills `input_grad` when given.
            fn accumulate(
                &mut self,
                x: ::cnnc::ndarray::ArrayViewD<'_, f32>,
                target: ::cnnc::Target<'_>,
                mut input_grad: Option<&mut [f32]>,
            ) -> Result<f32, ::cnnc::Error> {
                let n = ::cnnc::support::batch_size("input", x.shape(), &Self::INPUT_SHAPE)?;
                ::cnnc::support::check_finite("input", &x)?;
                #target_prep
                let total = #total;
                let want_input = input_grad.is_some();
                let params = &self.params;
                let count = self.workers.len();
                for worker in self.workers.iter_mut() {
                    worker.grads.fill(0.0);
                    worker.correct = 0;
                }
                let mut loss = 0.0f64;
                let mut lo = 0;
                while lo < n {
                    let hi = (lo + Self::BATCH).min(n);
                    let active = count.min(hi - lo);
                    loss += ::cnnc::support::each_worker(&mut self.workers[..active], &|w, worker: &mut #worker| {
                        let (a, b) = ::cnnc::support::worker_range(lo, hi, w, count);
                        if a == b {
                            return 0.0;
                        }
                        let m = b - a;
                        ::cnnc::support::copy_rows(&x, a, b, &mut worker.a0);
                        #fill_target
                        worker.forward(params, m, true);
                        #count_correct
                        let loss = worker.loss(m, total);
                        worker.backward(params, m, want_input);
                        loss
                    });
                    if let Some(dst) = input_grad.as_deref_mut() {
                        for (w, worker) in self.workers.iter().enumerate() {
                            let (a, b) = ::cnnc::support::worker_range(lo, hi, w, count);
                            dst[a * #in_len..b * #in_len].copy_from_slice(&worker.d0[..(b - a) * #in_len]);
                        }
                    }
                    lo = hi;
                }
                // Sum the workers' gradients in a fixed order: deterministic.
                let (first, rest) = self.workers.split_at(1);
                self.grads.copy_from_slice(&first[0].grads);
                self.correct = first[0].correct;
                for worker in rest {
                    for (g, w) in self.grads.iter_mut().zip(&worker.grads) {
                        *g += w;
                    }
                    self.correct += worker.correct;
                }
                Ok((loss / total as f64) as f32)
            }
        }

        impl ::cnnc::Train for #name {
            fn gradients(
                &mut self,
                x: ::cnnc::ndarray::ArrayViewD<'_, f32>,
                target: ::cnnc::Target<'_>,
            ) -> Result<::cnnc::Gradients, ::cnnc::Error> {
                let n = ::cnnc::support::batch_size("input", x.shape(), &Self::INPUT_SHAPE)?;
                let mut input = vec![0.0f32; n * #in_len];
                let loss = self.accumulate(x, target, Some(&mut input))?;
                let mut dims = vec![n];
                dims.extend_from_slice(&Self::INPUT_SHAPE);
                let input = ::cnnc::ndarray::ArrayD::from_shape_vec(dims, input)
                    .map_err(|e| ::cnnc::Error::Config(e.to_string()))?;
                let params = Self::PARAMS
                    .iter()
                    .filter_map(|p| ::cnnc::support::get_param(&Self::PARAMS, &self.grads, p.name).map(|g| (p.name.to_string(), g)))
                    .collect();
                Ok(::cnnc::Gradients { loss, input, params })
            }

            fn train_step(
                &mut self,
                x: ::cnnc::ndarray::ArrayViewD<'_, f32>,
                target: ::cnnc::Target<'_>,
            ) -> Result<f32, ::cnnc::Error> {
                let loss = self.accumulate(x, target, None)?;
                if !loss.is_finite() {
                    return Err(::cnnc::Error::Diverged { epoch: self.epoch, batch: self.step as usize, loss });
                }
                self.step += 1;
                let lr = self.learning_rate(self.epoch);
                self.update(lr);
                Ok(loss)
            }

            fn learning_rate(&self, epoch: usize) -> f32 {
                #schedule.learning_rate(#base_lr, #epochs, epoch) as f32
            }

            fn set_epoch(&mut self, epoch: usize) {
                self.epoch = epoch;
            }

            fn last_correct(&self) -> Option<usize> {
                #last_correct
            }
        }
    };
    TrainParts {
        model_fields: quote! {
            grads: Vec<f32>,
            state1: Vec<f32>,
            state2: Vec<f32>,
            step: u64,
            epoch: usize,
            correct: usize,
        },
        model_init: quote! {
            grads: vec![0.0; #param_count],
            state1: vec![0.0; #state1_len],
            state2: vec![0.0; #state2_len],
            step: 0,
            epoch: 0,
            correct: 0,
        },
        worker_fields: quote! {
            grads: Vec<f32>,
            correct: usize,
            rng: ::cnnc::support::Rng,
            labels: Vec<usize>,
            targets: Vec<f32>,
            #(#grad_fields: Vec<f32>,)*
            #(#mask_fields: Vec<f32>,)*
        },
        worker_init: quote! {
            grads: vec![0.0; #param_count],
            correct: 0,
            rng: ::cnnc::support::Rng::new(seed),
            labels: vec![0; samples * #labels_len],
            targets: vec![0.0; samples * #targets_len],
            #(#grad_fields: vec![0.0; samples * #grad_lens],)*
            #(#mask_fields: vec![0.0; samples * #mask_lens],)*
        },
        worker_methods: quote! {
            /// The backward pass over `n` samples, after `loss`: adds to `grads`.
            fn backward(&mut self, params: &[f32], n: usize, input_grad: bool) {
                #(#backward)*
            }

            /// The summed loss of `n` samples; writes the gradient of the mean over `total`.
            fn loss(&mut self, n: usize, total: usize) -> f64 {
                #loss_body
            }
        },
        train_impl,
    }
}
