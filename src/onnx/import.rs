//! An ONNX CNN as a `.cnn` model and its weights ([`import`]).
//!
//! The graph is walked in graph order, one item per node (or per group of nodes:
//! `x * Sigmoid(x)` is `silu`, the erf form is `gelu`, `MatMul` and the `Add` of a
//! bias are `dense`), in `walk`. A tensor that starts two branches joined by an
//! `Add` within the scope the nodes' names give is a residual block; any other
//! graph is written with language version 3's references: `from NAME` where a node
//! reads another tensor than the one before it, `add`, `mul` and `concat` for the
//! joins, names for the items read again. Each item keeps the ONNX tensors it takes,
//! in the order cnnc lists a layer's parameters and buffers, so the weights are
//! matched to cnnc's names by walking the checked model in the same order.

use super::graph::{Const, Graph, Node};
use super::items::item_name;
use super::layout::{fold_activations, name_items, name_tensors, Item, Kind, Layout};
use crate::activation::{Activation, Onnx, ALL};
use crate::ir::Shape;
use crate::Model as _;
use ndarray::ArrayD;
use std::collections::HashMap;

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

/// What the walk supports, for the error on any other operator; the
/// activations' forms from their table ([`Activation::onnx`]).
fn supported() -> String {
    let activations: Vec<String> = ALL
        .iter()
        .map(|a| match a.onnx() {
            Onnx::Nothing => String::new(),
            Onnx::Node(op, attrs) if attrs.is_empty() || matches!(a, Activation::LeakyRelu(_)) => op.to_string(),
            Onnx::Node(op, attrs) => {
                let values: Vec<String> = attrs.iter().map(|(k, v, _)| format!("{k} {v}")).collect();
                format!("{op}({})", values.join(", "))
            }
            Onnx::Clip(min, max) => format!("Clip({min}, {max}) ({})", a.keyword()),
            Onnx::TimesSigmoid => "Mul(x, Sigmoid(x))".to_string(),
            Onnx::ErfGelu => "Gelu (and its erf form)".to_string(),
        })
        .filter(|form| !form.is_empty())
        .collect();
    format!(
        "Conv, BatchNormalization, ConvTranspose, {}, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, Resize \
         and Upsample by whole factors, Flatten, Reshape to (N, -1), Gemm, MatMul (+ Add), Add, Mul and Concat of \
         computed tensors, Softmax, Dropout, Identity, Sub/Div on the input (normalize)",
        activations.join(", ")
    )
}

/// Reads the ONNX file's bytes (`what` names it in errors) as a model named `name`,
/// or else after the ONNX graph when its name is a valid model name, or else
/// `fallback`; with `train`, a default train block for fine-tuning is added (and a
/// final softmax when the graph does not end in one, which `cross_entropy` needs).
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
    let input = input_shape(&g, what)?;
    let w = Walker::new(&g, what);
    let (normalize, start, taken) = w.normalize(&g.input, input);
    let region: Vec<usize> = (0..g.nodes.len())
        .filter(|&i| w.live[i] && !taken.contains(&i))
        .collect();
    let mut shapes = HashMap::from([(start.clone(), input)]);
    let mut items = w.block(&region, &start, &g.output, &mut shapes)?;
    if train && !matches!(&items.last(), Some(Item { kind: Kind::Act(word), .. }) if word == "softmax") {
        let mut softmax = Item::act("softmax", None);
        softmax.out = format!("{}#softmax", g.output);
        items.push(softmax);
    }
    let mut items = fold_activations(items);
    let layout = Layout {
        name,
        what,
        nodes: g.nodes.len(),
        opset: g.opset,
        input,
        start: &start,
        normalize,
        train,
    };
    name_items(&mut items, true);
    let mut source = layout.text(&items)?;
    if crate::compile(&source).is_err() {
        // Node names that collide (or clash with default names) in a scope: without them.
        name_items(&mut items, false);
        source = layout.text(&items)?;
    }
    let tensors = name_tensors(&source, name, &items)?;
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

/// The walk over one graph (its steps are in `walk.rs`).
pub(super) struct Walker<'g> {
    pub(super) g: &'g Graph,
    pub(super) what: &'g str,
    opset: i64,
    /// Whether the graph's output depends on each node (the others are left out).
    pub(super) live: Vec<bool>,
    /// The node that writes each tensor.
    pub(super) producer: HashMap<&'g str, usize>,
    /// How many residual blocks the walk is inside.
    pub(super) depth: std::cell::Cell<usize>,
}

impl<'g> Walker<'g> {
    fn new(g: &'g Graph, what: &'g str) -> Walker<'g> {
        let mut producer = HashMap::new();
        for (i, node) in g.nodes.iter().enumerate() {
            for out in &node.outputs {
                producer.insert(out.as_str(), i);
            }
        }
        let mut live = vec![false; g.nodes.len()];
        let mut todo = vec![g.output.as_str()];
        while let Some(t) = todo.pop() {
            if let Some(&i) = producer.get(t) {
                if !live[i] {
                    live[i] = true;
                    todo.extend(g.nodes[i].inputs.iter().map(String::as_str));
                }
            }
        }
        Walker {
            g,
            what,
            opset: g.opset,
            live,
            producer,
            depth: std::cell::Cell::new(0),
        }
    }

    pub(super) fn err(&self, node: &Node, message: impl std::fmt::Display) -> String {
        format!(
            "{}: node `{}` ({}, opset {}): {message}",
            self.what, node.name, node.op, self.opset
        )
    }

    /// The nodes the output depends on that read `tensor`, in graph order.
    pub(super) fn readers(&self, tensor: &str) -> Vec<usize> {
        let mut r = self.g.consumers(tensor);
        r.retain(|&i| self.live[i]);
        r
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

    /// `Sub` then `Div` by per-channel constants right after the input: `normalize`,
    /// the tensor the model's items start from, and the two nodes.
    fn normalize(&self, input: &str, shape: Shape) -> (Option<MeanStd>, String, Vec<usize>) {
        let none = (None, input.to_string(), Vec::new());
        let Shape::Image { c, .. } = shape else {
            return none;
        };
        let single = |t: &str| match self.readers(t).as_slice() {
            [one] => Some(*one),
            _ => None,
        };
        let per_channel = |n: &Node| {
            let k = self.g.consts.get(n.inputs.get(1)?)?;
            (k.floats.len() == c && n.inputs[0] != n.inputs[1]).then(|| k.floats.clone())
        };
        let Some(sub) = single(input).filter(|&i| self.g.nodes[i].op == "Sub") else {
            return none;
        };
        let Some(div) = single(&self.g.nodes[sub].outputs[0]).filter(|&i| self.g.nodes[i].op == "Div") else {
            return none;
        };
        let (s, d) = (&self.g.nodes[sub], &self.g.nodes[div]);
        match (per_channel(s), per_channel(d)) {
            (Some(mean), Some(std)) => (Some((mean, std)), d.outputs[0].clone(), vec![sub, div]),
            _ => none,
        }
    }

    /// One node reading its first input, of shape `shape`: its item and its output
    /// (a `MatMul`'s is the `Add` of its bias, when it has one).
    pub(super) fn single(&self, index: usize, shape: &mut Shape) -> Result<(Item, String), String> {
        let g = self.g;
        let node = &g.nodes[index];
        let out = node.outputs.first().cloned().unwrap_or_default();
        let item = match node.op.as_str() {
            "Conv" => super::items::conv(self, node, shape)?,
            "BatchNormalization" => super::items::batchnorm(self, node, shape)?,
            "MaxPool" | "AveragePool" => super::items::pool(self, node, shape)?,
            "GlobalAveragePool" | "GlobalMaxPool" => super::items::global_pool(self, node, shape)?,
            "ConvTranspose" => super::items::conv_transpose(self, node, shape)?,
            "Resize" | "Upsample" => super::resize::resize(self, node, shape)?,
            "Flatten" | "Reshape" => super::items::flatten(self, node, shape)?,
            "Gemm" => super::items::gemm(self, node, shape)?,
            "MatMul" => return super::items::matmul(self, node, shape),
            "Gelu" if node.string("approximate", "none") == "none" => Item::act("gelu", item_name(self.g, node)),
            "Clip" => Item::act(&self.clip(node)?, item_name(self.g, node)),
            op if ALL.iter().any(|a| matches!(a.onnx(), Onnx::Node(o, _) if o == op)) => {
                Item::act(&self.activation(node)?, item_name(self.g, node))
            }
            "Softmax" => super::items::softmax(self, node, shape)?,
            "LogSoftmax" => {
                return Err(self.err(
                    node,
                    "the language has no log-softmax: a model for `loss cross_entropy` ends in `softmax`; export \
                     the model with Softmax, or without its last layer",
                ))
            }
            "Add" | "Mul" | "Sub" | "Div" => {
                return Err(self.err(
                    node,
                    "arithmetic with a constant that is not a dense layer's bias, silu, gelu or the input's \
                     normalization; joins (`add`, `mul`) are of two computed tensors",
                ));
            }
            _ => return Err(self.err(node, format!("is not in the CNN subset cnnc imports: {}", supported()))),
        };
        Ok((item, out))
    }
}

impl Walker<'_> {
    /// The activation a one-node form of the table ([`Activation::onnx`]) reads
    /// as, as the language writes it: leaky_relu with the node's slope, the others
    /// when their attributes are the table's.
    fn activation(&self, node: &Node) -> Result<String, String> {
        let mut wanted = Vec::new();
        for a in ALL {
            let Onnx::Node(op, attrs) = a.onnx() else { continue };
            if op != node.op {
                continue;
            }
            // leaky_relu's slope is its one attribute, whatever its value.
            if let (Activation::LeakyRelu(_), Some(&(k, _, default))) = (a, attrs.first()) {
                return Ok(Activation::LeakyRelu(node.float(k, default)).text());
            }
            if attrs
                .iter()
                .all(|&(k, v, default)| (node.float(k, default) - v).abs() <= 1e-6)
            {
                return Ok(a.text());
            }
            let found: Vec<String> = attrs
                .iter()
                .map(|&(k, _, d)| format!("{k} {}", node.float(k, d)))
                .collect();
            let ours: Vec<String> = attrs.iter().map(|(k, v, _)| format!("{k} {v}")).collect();
            wanted.push(format!(
                "is {} with {}; only {} is `{}`",
                node.op,
                found.join(" and "),
                ours.join(" and "),
                a.keyword()
            ));
        }
        Err(self.err(node, wanted.join("; ")))
    }

    /// The activation a `Clip` with constant bounds is ([`Onnx::Clip`]).
    fn clip(&self, node: &Node) -> Result<String, String> {
        let bound = |k: usize| {
            let c = node.inputs.get(k).and_then(|t| self.g.consts.get(t))?;
            (c.floats.len() == 1).then(|| c.floats[0])
        };
        let (lo, hi) = (bound(1), bound(2));
        let mut forms = Vec::new();
        for a in ALL {
            if let Onnx::Clip(min, max) = a.onnx() {
                if (lo, hi) == (Some(min), Some(max)) {
                    return Ok(a.text());
                }
                forms.push(format!("[{min}, {max}] ({})", a.keyword()));
            }
        }
        Err(self.err(
            node,
            format!(
                "is a Clip other than to {}, which the language cannot write",
                forms.join(" or ")
            ),
        ))
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
