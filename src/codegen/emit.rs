//! What the step emitters share ([`Emit`]): the plan, the worker's field names
//! (after the layers), the named range constants, the marker types made so far,
//! and the token helpers every layer kind's emitter calls.

use super::plan::{self, Plan};
use crate::ir;
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};
use std::collections::HashMap;

/// What the step emitters share: the plan, and the per-shape functions built so far.
pub(crate) struct Emit<'a> {
    pub(super) plan: &'a Plan,
    /// Items at module level: shape constants and per-shape functions.
    pub(super) items: Vec<TokenStream>,
    /// Layer marker types by the constants they carry, so identical layers share one.
    pub(super) names: HashMap<String, Ident>,
    /// Names the module already uses (`Net`, `Worker`, `rt`, the model's struct).
    pub(super) reserved: Vec<String>,
    /// Scratch each per-shape function needs, as expressions of `samples`.
    pub(super) scratch: Vec<TokenStream>,
    /// The worker's field for each activation buffer, named after the layer that
    /// writes it (`input` for the model's input), and for its gradient (`d_conv1`).
    pub(super) fields: Vec<Ident>,
    pub(super) grads: Vec<Ident>,
    /// Each parameter's range in the flat parameter vector, as a named constant.
    pub(super) params: Vec<Ident>,
    /// The range constants declared so far (parameters, batchnorm statistics,
    /// folded weights), in order of declaration.
    pub(super) ranges: Vec<(Ident, TokenStream)>,
}

impl<'a> Emit<'a> {
    /// The marker type of the layer constants `key`, declared by `build(name)` the
    /// first time (identical layers share one), named by what it is (`base`:
    /// `Conv3x3_16x32x32_to_32`), never after one of the layers that share it.
    pub(super) fn layer_type(
        &mut self,
        key: String,
        base: String,
        build: impl FnOnce(&mut Self, &Ident) -> TokenStream,
    ) -> Ident {
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

    pub(super) fn step(&self, s: usize) -> &'a plan::Step {
        &self.plan.steps[s]
    }

    /// `&self.conv3[at * 400..][..n * 400]` (or `&mut`, or its gradient
    /// `self.d_conv3`): buffer `b` for the `n` samples of this chunk.
    fn slice(&self, b: usize, grad: bool, mutable: bool) -> TokenStream {
        let field = if grad { &self.grads[b] } else { &self.fields[b] };
        buffer_ref(field, self.plan.buffers[b], mutable)
    }

    /// Input `k` of step `s`.
    pub(super) fn x(&self, s: usize, k: usize) -> TokenStream {
        self.slice(self.step(s).inputs[k], false, false)
    }

    pub(super) fn y(&self, s: usize) -> TokenStream {
        self.slice(self.step(s).output, false, false)
    }

    pub(super) fn y_mut(&self, s: usize) -> TokenStream {
        self.slice(self.step(s).output, false, true)
    }

    pub(super) fn dy(&self, s: usize) -> TokenStream {
        self.slice(self.step(s).output, true, false)
    }

    pub(super) fn dy_mut(&self, s: usize) -> TokenStream {
        self.slice(self.step(s).output, true, true)
    }

    /// The gradient of input `k` of step `s`: the place to write it, and the code
    /// to run after (an add when another reader wrote it first). `write(dst)`
    /// builds the statement that writes into `dst`. Skipped for the model input
    /// when the caller did not ask for its gradient.
    pub(super) fn dx(&self, s: usize, k: usize, write: impl FnOnce(TokenStream) -> TokenStream) -> TokenStream {
        let b = self.step(s).inputs[k];
        let len = self.plan.buffers[b];
        let code = if self.plan.accumulates(s, k) {
            let dst = quote!(&mut self.dtmp[..n * #len]);
            let body = write(dst);
            let dst = buffer_ref(&self.grads[b], len, true);
            quote! {
                #body
                rt::norm::accumulate(#dst, &self.dtmp[..n * #len]);
            }
        } else {
            write(self.slice(b, true, true))
        };
        if b == 0 {
            quote!(if pass.input_grad { #code })
        } else {
            code
        }
    }

    /// Hands the gradient `src` on to input `k` of step `s` as it is: a copy, or an
    /// add in place where another reader wrote that gradient first.
    pub(super) fn pass_gradient(&self, s: usize, k: usize, src: &TokenStream) -> TokenStream {
        let b = self.step(s).inputs[k];
        let dst = buffer_ref(&self.grads[b], self.plan.buffers[b], true);
        let code = if self.plan.accumulates(s, k) {
            quote!(rt::norm::accumulate(#dst, #src);)
        } else {
            quote!((#dst).copy_from_slice(#src);)
        };
        if b == 0 {
            quote!(if pass.input_grad { #code })
        } else {
            code
        }
    }

    /// `Some(dst)` for a kernel's optional `dx`, with the statement to run after:
    /// `None` when the model input's gradient is not wanted.
    pub(super) fn dx_option(&self, s: usize, call: impl FnOnce(TokenStream) -> TokenStream) -> TokenStream {
        let b = self.step(s).inputs[0];
        let len = self.plan.buffers[b];
        let accumulates = self.plan.accumulates(s, 0);
        let dst = if accumulates {
            quote!(&mut self.dtmp[..n * #len])
        } else {
            self.slice(b, true, true)
        };
        let option = if b == 0 {
            quote!(if pass.input_grad { Some(#dst) } else { None })
        } else {
            quote!(Some(#dst))
        };
        let body = call(option);
        if accumulates {
            let dst = buffer_ref(&self.grads[b], len, true);
            let add = quote!(rt::norm::accumulate(#dst, &self.dtmp[..n * #len]););
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
    pub(super) fn param(&self, id: Option<usize>) -> TokenStream {
        match id {
            Some(id) => {
                let name = &self.params[id];
                quote!(&p[#name])
            }
            None => quote!(&[]),
        }
    }

    /// The constant `NAME` for the range `start..end`, declared the first time.
    pub(super) fn range(&mut self, name: String, start: usize, end: usize) -> Ident {
        let name = format_ident!("{}", name);
        if !self.ranges.iter().any(|(n, _)| *n == name) {
            self.ranges.push((name.clone(), quote!(#start..#end)));
        }
        name
    }

    /// `&pass.shared[BATCHNORM1_STATS]` (the combined mean and 1/std) or
    /// `..._SUMS` (Σdy, Σdy·x̂) of batchnorm `index`.
    pub(super) fn shared(&mut self, index: usize, sums: bool) -> TokenStream {
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
    pub(super) fn folded(&mut self, f: usize) -> (TokenStream, TokenStream) {
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
    pub(super) fn bias(&self, id: Option<usize>) -> TokenStream {
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
    pub(super) fn grad_pair(&self, first: usize, second: usize) -> TokenStream {
        let (w, b) = (&self.params[first], &self.params[second]);
        quote!(grads[#w.start..#b.end].split_at_mut(#w.len()))
    }

    /// The gradient slices of a weight and its optional bias, bound to `dw` and `db`.
    pub(super) fn weight_grads(&self, s: usize) -> TokenStream {
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
pub(super) fn constant_name(name: &str) -> String {
    name.replace(['.', '+'], "_").to_ascii_uppercase()
}

/// The worker's fields for the activation buffers and their gradients, named
/// after the layer that writes each (`input` for buffer 0): `conv1` and
/// `d_conv1`. A name taken by another field, or a Rust keyword, gains a `_`.
pub(super) fn buffer_fields(plan: &Plan, taken: &[Ident]) -> (Vec<Ident>, Vec<Ident>) {
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
pub(super) fn param_constants(plan: &Plan) -> (Vec<Ident>, Vec<(Ident, TokenStream)>) {
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

/// `&self.conv3[at * 400..][..n * 400]` or `&mut ...`: the `n` samples of the
/// chunk at sample `at` (see [`super::chunk`]).
pub(super) fn buffer_ref(field: &Ident, len: usize, mutable: bool) -> TokenStream {
    if mutable {
        quote!(&mut self.#field[at * #len..][..n * #len])
    } else {
        quote!(&self.#field[at * #len..][..n * #len])
    }
}

/// `rt::Activation::Relu`, `rt::Activation::LeakyRelu(0.2)`: the variant by its
/// name, with its one `f32` parameter when it has one, so no activation needs a
/// line here.
pub(super) fn act_tokens(act: ir::Activation) -> TokenStream {
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
pub(super) fn fused_act_backward(e: &Emit, s: usize, act: ir::Activation) -> TokenStream {
    if act == ir::Activation::Identity {
        return quote!();
    }
    let act = act_tokens(act);
    let (y, dy) = (e.y(s), e.dy_mut(s));
    quote!(#act.backward(#y, #dy);)
}
