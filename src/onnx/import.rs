//! An ONNX CNN as a `.cnn` model and its weights ([`import`]).
//!
//! The graph is walked from its input, one node per item; a tensor read by two
//! nodes starts either a fused activation (`x * Sigmoid(x)` is `silu`, the erf form
//! is `gelu`) or a residual block, whose body and shortcut end at the `Add` that
//! joins them. Each item keeps the ONNX tensors it takes, in the order cnnc lists a
//! layer's parameters and buffers, so the weights are matched to cnnc's names by
//! walking the checked model in the same order.

use super::graph::{Const, Graph, Node};
use super::items::{item_name, Item, Layout};
use crate::ir::Shape;
use crate::Model as _;
use ndarray::ArrayD;
use std::collections::HashSet;

/// An imported model: its `.cnn` text and its tensors under cnnc's names.
pub struct Imported {
    /// The model's name in the text.
    pub name: String,
    pub source: String,
    pub tensors: Vec<(String, ArrayD<f32>)>,
}

impl Imported {
    /// The imported model in the reference interpreter, with the imported weights.
    pub fn interpreter(&self) -> Result<crate::interp::Interpreter, String> {
        let mut model =
            crate::interp::Interpreter::from_source(&self.source, &self.name, 0).map_err(|e| e.to_string())?;
        for (tensor, value) in &self.tensors {
            let set = if model.param_names().contains(tensor) {
                model.set_param(tensor, value.view())
            } else {
                model.set_buffer(tensor, value.view())
            };
            set.map_err(|e| format!("tensor `{tensor}`: {e}"))?;
        }
        Ok(model)
    }
}

/// `normalize`'s per-channel means and standard deviations.
type MeanStd = (Vec<f32>, Vec<f32>);

/// What the walk supports, for the error on any other operator.
const SUPPORTED: &str = "Conv, BatchNormalization, Relu, LeakyRelu, Sigmoid, Tanh, Gelu (and its erf form), \
     Clip(0, 6) (relu6), HardSwish, HardSigmoid(1/6, 0.5), Mul(x, Sigmoid(x)), MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape to (N, -1), Gemm, \
     MatMul (+ Add), Add (residual blocks), Softmax, Dropout, Identity, Sub/Div on the input (normalize)";

/// Operators of language version 3, which this version of the importer cannot write yet.
const V3: &[&str] = &["ConvTranspose", "Concat", "Resize", "Upsample", "GlobalMaxPool"];

/// Reads the ONNX file's bytes (`what` names it in errors) as a model named `name`,
/// or else after the ONNX graph when its name is a valid model name, or else
/// `fallback`; with `train`, a default train block for fine-tuning is added (and a
/// final softmax when the graph ends in logits, which `cross_entropy` needs).
pub fn import(bytes: &[u8], what: &str, name: Option<&str>, fallback: &str, train: bool) -> Result<Imported, String> {
    // Every message starts with the file's name.
    read(bytes, what, name, fallback, train).map_err(|e| if e.starts_with(what) { e } else { format!("{what}: {e}") })
}

fn read(bytes: &[u8], what: &str, name: Option<&str>, fallback: &str, train: bool) -> Result<Imported, String> {
    let g = Graph::decode(bytes, what)?;
    let valid = |n: &str| crate::compile(&format!("model {n} {{ input 1 dense 1 }}")).is_ok();
    // The names exporters give every graph say nothing about the model.
    let generic = |n: &str| ["main_graph", "torch_jit", "torch-jit-export", "graph"].contains(&n);
    let name = match (name, g.name.as_deref()) {
        (Some(n), _) => n.to_string(),
        (None, Some(n)) if valid(n) && !generic(n) => n.to_string(),
        _ => fallback.to_string(),
    };
    let name = name.as_str();
    let mut shape = input_shape(&g, what)?;
    let input = shape;
    let w = Walker {
        g: &g,
        what,
        opset: g.opset,
    };
    let (normalize, start) = w.normalize(&g.input, shape)?;
    let mut items = w.chain(start, &g.output, &mut shape)?;
    if train
        && matches!(shape, Shape::Vector(_))
        && !matches!(items.last(), Some(Item::Act { word, .. }) if word == "softmax")
    {
        items.push(Item::act("softmax", None));
    }
    let layout = Layout {
        name,
        what,
        nodes: g.nodes.len(),
        opset: g.opset,
        input,
        normalize,
        train,
    };
    let mut source = layout.text(&items);
    if crate::compile(&source).is_err() {
        // Node names that collide (or clash with default names) in a scope: without them.
        super::items::without_names(&mut items);
        source = layout.text(&items);
    }
    let tensors = super::items::name_tensors(&source, name, &items)?;
    Ok(Imported {
        name: name.to_string(),
        source,
        tensors,
    })
}

fn input_shape(g: &Graph, what: &str) -> Result<Shape, String> {
    let dims: Option<Vec<usize>> = g.input_dims.iter().skip(1).copied().collect();
    let sane = |d: &usize| (1..=1 << 20).contains(d);
    match dims.as_deref() {
        Some([c, h, w]) if [c, h, w].into_iter().all(sane) => Ok(Shape::Image { c: *c, h: *h, w: *w }),
        Some([n]) if sane(n) => Ok(Shape::Vector(*n)),
        _ => Err(format!(
            "{what}: input `{}` has dimensions {:?}; cnnc reads [N, C, H, W] or [N, F] with fixed C, H, W, F",
            g.input, g.input_dims
        )),
    }
}

struct Walker<'g> {
    g: &'g Graph,
    what: &'g str,
    opset: i64,
}

impl Walker<'_> {
    fn err(&self, node: &Node, message: impl std::fmt::Display) -> String {
        format!(
            "{}: node `{}` ({}, opset {}): {message}",
            self.what, node.name, node.op, self.opset
        )
    }

    fn constant_input(&self, node: &Node, index: usize) -> Result<&Const, String> {
        let name = node
            .inputs
            .get(index)
            .ok_or_else(|| self.err(node, format!("has no input {index}")))?;
        self.g
            .consts
            .get(name)
            .ok_or_else(|| self.err(node, format!("input `{name}` must be a constant (an initializer)")))
    }

    /// `Sub` then `Div` by per-channel constants right after the input: `normalize`.
    fn normalize(&self, input: &str, shape: Shape) -> Result<(Option<MeanStd>, String), String> {
        let Shape::Image { c, .. } = shape else {
            return Ok((None, input.to_string()));
        };
        let single = |t: &str| match self.g.consumers(t).as_slice() {
            [one] => Some(&self.g.nodes[*one]),
            _ => None,
        };
        let per_channel = |n: &Node| {
            let k = self.g.consts.get(n.inputs.get(1)?)?;
            (k.floats.len() == c && n.inputs[0] != n.inputs[1]).then(|| k.floats.clone())
        };
        if let Some(sub) = single(input).filter(|n| n.op == "Sub") {
            if let Some(div) = single(&sub.outputs[0]).filter(|n| n.op == "Div") {
                if let (Some(mean), Some(std)) = (per_channel(sub), per_channel(div)) {
                    return Ok((Some((mean, std)), div.outputs[0].clone()));
                }
            }
        }
        Ok((None, input.to_string()))
    }

    /// The items from tensor `t` up to tensor `end`.
    fn chain(&self, mut t: String, end: &str, shape: &mut Shape) -> Result<Vec<Item>, String> {
        let mut items = Vec::new();
        let mut steps = 0;
        while t != end {
            steps += 1;
            if steps > self.g.nodes.len() + 1 {
                return Err(format!("{}: the graph has a cycle at tensor `{t}`", self.what));
            }
            let consumers = self.g.consumers(&t);
            let (item, next) = match consumers.as_slice() {
                [] => {
                    return Err(format!(
                        "{}: tensor `{t}` is read by no node and is not the output",
                        self.what
                    ))
                }
                [one] => self.single(*one, &t, shape)?,
                many => match self.fused_activation(&t, many)? {
                    Some(found) => found,
                    None => self.residual(&t, many, shape)?,
                },
            };
            items.extend(item);
            t = next;
        }
        Ok(items)
    }

    /// `x * Sigmoid(x)` (silu) or `x * 0.5 * (1 + erf(x / sqrt 2))` (gelu) from `t`.
    fn fused_activation(&self, t: &str, consumers: &[usize]) -> Result<Option<(Option<Item>, String)>, String> {
        let nodes: Vec<&Node> = consumers.iter().map(|&i| &self.g.nodes[i]).collect();
        let only_reader = |tensor: &str| match self.g.consumers(tensor).as_slice() {
            [one] => Some(&self.g.nodes[*one]),
            _ => None,
        };
        let [a, b] = nodes.as_slice() else { return Ok(None) };
        for (first, mul) in [(a, b), (b, a)] {
            let reads_t = mul.inputs.iter().any(|x| x == t);
            if first.op == "Sigmoid" && mul.op == "Mul" && reads_t && mul.inputs.contains(&first.outputs[0]) {
                return Ok(Some((Some(Item::act("silu", None)), mul.outputs[0].clone())));
            }
            if first.op == "Div" && mul.op == "Mul" && reads_t {
                let erf = only_reader(&first.outputs[0]).filter(|n| n.op == "Erf");
                let add = erf.and_then(|e| only_reader(&e.outputs[0])).filter(|n| n.op == "Add");
                let joined = add.filter(|p| mul.inputs.contains(&p.outputs[0]));
                let half = only_reader(&mul.outputs[0]).filter(|n| n.op == "Mul");
                if let (Some(_), Some(half)) = (joined, half) {
                    return Ok(Some((Some(Item::act("gelu", None)), half.outputs[0].clone())));
                }
            }
        }
        Ok(None)
    }

    /// Every tensor reachable from node `start`'s outputs.
    fn reach(&self, start: usize) -> HashSet<String> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut todo: Vec<String> = self.g.nodes[start].outputs.clone();
        while let Some(t) = todo.pop() {
            if seen.insert(t.clone()) {
                for c in self.g.consumers(&t) {
                    todo.extend(self.g.nodes[c].outputs.iter().cloned());
                }
            }
        }
        seen
    }

    /// A residual block from the fork at `t`: the two branches and the `Add` that
    /// joins them; the longer branch is the body, an identity branch the shortcut.
    fn residual(&self, t: &str, consumers: &[usize], shape: &mut Shape) -> Result<(Option<Item>, String), String> {
        let first = &self.g.nodes[consumers[0]];
        let [c1, c2] = consumers else {
            return Err(self.err(
                first,
                format!(
                    "tensor `{t}` is read by {} nodes; only residual blocks (two branches joined by Add) are written",
                    consumers.len()
                ),
            ));
        };
        let branch = |c: usize| -> HashSet<String> {
            let n = &self.g.nodes[c];
            if n.op == "Add" && n.inputs.iter().any(|x| x == t) {
                HashSet::from([t.to_string()])
            } else {
                self.reach(c)
            }
        };
        let (b1, b2) = (branch(*c1), branch(*c2));
        let join = self.g.nodes.iter().find(|n| {
            n.op == "Add"
                && n.inputs.len() == 2
                && ((b1.contains(&n.inputs[0]) && b2.contains(&n.inputs[1]))
                    || (b1.contains(&n.inputs[1]) && b2.contains(&n.inputs[0])))
        });
        let Some(join) = join else {
            return Err(self.err(
                first,
                format!(
                    "tensor `{t}` starts two branches that no Add joins; joins other than residual blocks need \
                 language version 3 (`add`, `concat`), which this version cannot write yet"
                ),
            ));
        };
        let end_of = |b: &HashSet<String>| {
            if b.contains(&join.inputs[0]) {
                join.inputs[0].clone()
            } else {
                join.inputs[1].clone()
            }
        };
        let mut sides = [(*c1, end_of(&b1), b1.len()), (*c2, end_of(&b2), b2.len())];
        if sides[0].1 == t || (sides[1].1 != t && sides[1].2 > sides[0].2) {
            sides.swap(0, 1);
        }
        let start = *shape;
        let body = self.branch(t, sides[0].0, &sides[0].1, shape)?;
        let mut short_shape = start;
        let shortcut = self.branch(t, sides[1].0, &sides[1].1, &mut short_shape)?;
        if short_shape != *shape {
            return Err(self.err(join, format!("adds a {shape} body to a {short_shape} shortcut")));
        }
        Ok((
            Some(Item::Residual {
                body,
                shortcut,
                name: item_name(self.g, join),
            }),
            join.outputs[0].clone(),
        ))
    }

    /// A branch from the fork `t` through node `first` up to tensor `end` (empty for
    /// the identity).
    fn branch(&self, t: &str, first: usize, end: &str, shape: &mut Shape) -> Result<Vec<Item>, String> {
        if end == t {
            return Ok(Vec::new());
        }
        let (item, next) = self.single(first, t, shape)?;
        let mut items: Vec<Item> = item.into_iter().collect();
        items.extend(self.chain(next, end, shape)?);
        Ok(items)
    }

    /// One node reading `t`: its item (none for Dropout and Identity) and its output.
    fn single(&self, index: usize, t: &str, shape: &mut Shape) -> Result<(Option<Item>, String), String> {
        let g = self.g;
        let node = &g.nodes[index];
        let out = node.outputs.first().cloned().unwrap_or_default();
        if node.inputs.first().map(String::as_str) != Some(t) && !matches!(node.op.as_str(), "Add" | "Mul") {
            return Err(self.err(node, format!("reads `{t}` as a weight; only constant weights are read")));
        }
        let item = match node.op.as_str() {
            "Conv" => super::items::conv(self, node, shape)?,
            "BatchNormalization" => super::items::batchnorm(self, node, shape)?,
            "MaxPool" | "AveragePool" => super::items::pool(self, node, shape)?,
            "GlobalAveragePool" => {
                let Shape::Image { c, .. } = *shape else {
                    return Err(self.err(node, "needs an image input"));
                };
                *shape = Shape::Image { c, h: 1, w: 1 };
                Item::layer("avgpool global", item_name(self.g, node), Vec::new())
            }
            "Flatten" | "Reshape" => super::items::flatten(self, node, shape)?,
            "Gemm" => super::items::gemm(self, node, shape)?,
            "MatMul" => return super::items::matmul(self, node, shape),
            "Relu" => Item::act("relu", item_name(self.g, node)),
            "Sigmoid" => Item::act("sigmoid", item_name(self.g, node)),
            "Tanh" => Item::act("tanh", item_name(self.g, node)),
            "LeakyRelu" => {
                let a = node.float("alpha", 0.01);
                let word = if a == 0.01 {
                    "leaky_relu".to_string()
                } else {
                    format!("leaky_relu {a}")
                };
                Item::act(&word, item_name(self.g, node))
            }
            "Gelu" if node.string("approximate", "none") == "none" => Item::act("gelu", item_name(self.g, node)),
            "HardSwish" => Item::act("hardswish", item_name(self.g, node)),
            "HardSigmoid" => {
                let (a, b) = (node.float("alpha", 0.2), node.float("beta", 0.5));
                if (a - 1.0 / 6.0).abs() > 1e-6 || b != 0.5 {
                    return Err(self.err(
                        node,
                        format!(
                            "is HardSigmoid with alpha {a} and beta {b}; only PyTorch's (1/6, 0.5) is `hardsigmoid`"
                        ),
                    ));
                }
                Item::act("hardsigmoid", item_name(self.g, node))
            }
            "Clip" => {
                let bound = |k: usize| {
                    let c = node.inputs.get(k).and_then(|t| self.g.consts.get(t))?;
                    (c.floats.len() == 1).then(|| c.floats[0])
                };
                if (bound(1), bound(2)) != (Some(0.0), Some(6.0)) {
                    return Err(self.err(
                        node,
                        "is a Clip other than to [0, 6] (relu6), which the language cannot write",
                    ));
                }
                Item::act("relu6", item_name(self.g, node))
            }
            "Softmax" => super::items::softmax(self, node, shape)?,
            "Dropout" | "Identity" => return Ok((None, out)),
            "Add" | "Mul" | "Sub" | "Div" => {
                return Err(self.err(
                    node,
                    "an elementwise join or constant arithmetic that is not a residual \
                     block, silu, gelu or input normalization; language version 3 (`add`, `mul`) will write joins",
                ));
            }
            op if V3.contains(&op) => {
                return Err(self.err(
                    node,
                    "needs language version 3's graphs and layers (convtranspose, concat, upsample, \
                     maxpool global), which this version of the importer cannot write yet",
                ));
            }
            _ => return Err(self.err(node, format!("is not in the CNN subset cnnc imports: {SUPPORTED}"))),
        };
        Ok((Some(item), out))
    }
}

impl<'g> super::items::Context for Walker<'g> {
    fn fail(&self, node: &Node, message: &str) -> String {
        self.err(node, message)
    }
    fn constant(&self, node: &Node, index: usize) -> Result<&Const, String> {
        self.constant_input(node, index)
    }
    fn graph(&self) -> &Graph {
        self.g
    }
    fn opset(&self) -> i64 {
        self.opset
    }
}
