//! The `.cnn` items an ONNX import writes: one function per operator family (its
//! attributes checked, its output shape computed with the language's formula, its
//! weights kept), the text layout, and the matching of the kept weights to cnnc's
//! tensor names.

use super::graph::{Const, Graph, Node};
use crate::ir::Shape;
use ndarray::{ArrayD, IxDyn};
use std::fmt::Write as _;

/// What the per-operator functions need from the walk.
pub trait Context {
    /// An error about `node` (its name, op type and the opset).
    fn fail(&self, node: &Node, message: &str) -> String;
    /// Input `index` of `node`, which must be a constant.
    fn constant(&self, node: &Node, index: usize) -> Result<&Const, String>;
    fn graph(&self) -> &Graph;
    fn opset(&self) -> i64;
}

/// One item of the model being written.
#[derive(Debug)]
pub enum Item {
    /// A layer: its text without name (`conv 16 kernel 3 pad 1`), its name, and its
    /// tensors in cnnc's order (parameters, then buffers).
    Layer {
        text: String,
        name: Option<String>,
        tensors: Vec<ArrayD<f32>>,
    },
    /// An activation: a shorthand after the item before it when it has no name.
    Act { word: String, name: Option<String> },
    Residual {
        body: Vec<Item>,
        shortcut: Vec<Item>,
        name: Option<String>,
    },
}

impl Item {
    pub fn layer(text: &str, name: Option<String>, tensors: Vec<ArrayD<f32>>) -> Item {
        Item::Layer {
            text: text.to_string(),
            name,
            tensors,
        }
    }

    pub fn act(word: &str, name: Option<String>) -> Item {
        Item::Act {
            word: word.to_string(),
            name,
        }
    }
}

/// A node's name as a `.cnn` item name: PyTorch's exporter writes
/// `/layer1/layer1.0/conv1/Conv`, cnnc's `residual3.dw`; the last `/` part that is
/// not the op type, then its last `.` part when that is an identifier (`dw`), or the
/// whole part with `.` as `_` (`layer1_0`); none when that is no identifier or looks
/// like a default name (`conv3`, `relu1`: cnnc gives those anyway).
pub fn item_name(g: &Graph, node: &Node) -> Option<String> {
    let name = node.candidate_name()?;
    // A name several nodes would take (PyTorch names a functional `F.relu` after the
    // module that calls it) goes to the residual block's `Add` or to none of them.
    (node.op == "Add" || g.name_counts.get(&name) == Some(&1)).then_some(name)
}

/// A constant's values as an array of its dimensions.
/// Input `index` of `node` as a float array of its dimensions.
fn weight(ctx: &dyn Context, node: &Node, index: usize) -> Result<ArrayD<f32>, String> {
    let c = ctx.constant(node, index)?;
    ArrayD::from_shape_vec(IxDyn(&c.dims), c.floats.clone()).map_err(|_| {
        ctx.fail(
            node,
            &format!("input {index} is not a float tensor of its dimensions {:?}", c.dims),
        )
    })
}

/// `3` or `3x5`.
fn pair(v: [usize; 2]) -> String {
    if v[0] == v[1] {
        v[0].to_string()
    } else {
        format!("{}x{}", v[0], v[1])
    }
}

/// An attribute of two spatial values, or `default` for both when absent.
fn two(ctx: &dyn Context, node: &Node, name: &str, default: usize) -> Result<[usize; 2], String> {
    match node.ints(name).as_slice() {
        [] => Ok([default; 2]),
        // Strides and dilations are at least 1; nothing is larger than 2^20.
        [a, b]
            if [a, b]
                .iter()
                .all(|v| (i64::from(default.min(1) as u8)..=1 << 20).contains(*v)) =>
        {
            Ok([*a as usize, *b as usize])
        }
        other => Err(ctx.fail(
            node,
            &format!(
                "`{name}` is {other:?}; two values from {} to 2^20 (2-D) are read",
                default.min(1)
            ),
        )),
    }
}

/// A window's padding `[top, left, bottom, right]` (ONNX `pads`, or `auto_pad`).
fn pads(
    ctx: &dyn Context,
    node: &Node,
    size: [usize; 2],
    stride: [usize; 2],
    hw: [usize; 2],
) -> Result<[usize; 4], String> {
    match node.string("auto_pad", "NOTSET").as_str() {
        "NOTSET" => match node.ints("pads").as_slice() {
            [] => Ok([0; 4]),
            [a, b, c, d] if [a, b, c, d].iter().all(|v| (0..=1 << 20).contains(*v)) => {
                Ok([*a as usize, *b as usize, *c as usize, *d as usize])
            }
            other => Err(ctx.fail(node, &format!("`pads` is {other:?}; four non-negative values are read"))),
        },
        "VALID" => Ok([0; 4]),
        mode @ ("SAME_UPPER" | "SAME_LOWER") => {
            let mut p = [0; 4];
            for axis in 0..2 {
                let out = hw[axis].div_ceil(stride[axis]);
                let total = (out.saturating_sub(1) * stride[axis] + size[axis]).saturating_sub(hw[axis]);
                let (small, big) = (total / 2, total - total / 2);
                (p[axis], p[axis + 2]) = if mode == "SAME_UPPER" {
                    (small, big)
                } else {
                    (big, small)
                };
            }
            Ok(p)
        }
        other => Err(ctx.fail(node, &format!("`auto_pad` {other} is not read"))),
    }
}

fn pad_text(p: [usize; 4]) -> String {
    let [t, l, b, r] = p;
    if p == [0; 4] {
        String::new()
    } else if t == b && l == r {
        format!(" pad {}", pair([t, l]))
    } else {
        let sides = [("top", t), ("bottom", b), ("left", l), ("right", r)];
        let named: Vec<String> = sides
            .iter()
            .filter(|(_, v)| *v > 0)
            .map(|(s, v)| format!("{s} {v}"))
            .collect();
        format!(" pad {}", named.join(" "))
    }
}

/// The output size of one axis and whether the division was exact.
fn window_out(input: usize, pad: usize, span: usize, stride: usize, ceil: bool) -> Option<(usize, bool)> {
    let room = (input + pad).checked_sub(span)?;
    let exact = room % stride == 0;
    let out = if ceil { room.div_ceil(stride) } else { room / stride } + 1;
    Some((out, exact))
}

fn image(ctx: &dyn Context, node: &Node, shape: &Shape) -> Result<[usize; 3], String> {
    match *shape {
        Shape::Image { c, h, w } => Ok([c, h, w]),
        Shape::Vector(_) => Err(ctx.fail(node, &format!("needs an image input, gets the vector {shape}"))),
    }
}

/// Output HxW of a window over `hw`, and the `round` option it needs.
fn windowed(
    ctx: &dyn Context,
    node: &Node,
    hw: [usize; 2],
    span: [usize; 2],
    stride: [usize; 2],
    p: [usize; 4],
    ceil: bool,
) -> Result<([usize; 2], &'static str), String> {
    let mut out = [0; 2];
    let mut exact = true;
    for axis in 0..2 {
        let (o, e) =
            window_out(hw[axis], p[axis] + p[axis + 2], span[axis], stride[axis].max(1), ceil).ok_or_else(|| {
                ctx.fail(
                    node,
                    &format!(
                        "its window ({}) is larger than the padded input ({})",
                        span[axis],
                        hw[axis] + p[axis] + p[axis + 2]
                    ),
                )
            })?;
        out[axis] = o;
        exact &= e;
    }
    // `round ceil` even where the division is exact: the window keeps ONNX's mode.
    let round = match (exact, ceil) {
        (_, true) => " round ceil",
        (true, false) => "",
        (false, false) => " round floor",
    };
    Ok((out, round))
}

pub fn conv(ctx: &dyn Context, node: &Node, shape: &mut Shape) -> Result<Item, String> {
    let [c, h, w] = image(ctx, node, shape)?;
    let weight = weight(ctx, node, 1)?;
    let [f, per_group, kh, kw] = weight.shape()[..] else {
        return Err(ctx.fail(
            node,
            &format!(
                "weight has dimensions {:?}; a 2-D convolution's are [F, C/G, KH, KW]",
                weight.shape()
            ),
        ));
    };
    let groups = usize::try_from(node.int("group", 1)).unwrap_or(0);
    if groups == 0 || per_group.checked_mul(groups) != Some(c) {
        return Err(ctx.fail(
            node,
            &format!("weight reads {per_group} channels per group of {groups}; the input has {c}"),
        ));
    }
    let stride = two(ctx, node, "strides", 1)?;
    let dilation = two(ctx, node, "dilations", 1)?;
    let span = [dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1];
    let p = pads(ctx, node, span, stride, [h, w])?;
    let (out, round) = windowed(ctx, node, [h, w], span, stride, p, false)?;
    let mut text = format!("conv {f} kernel {}", pair([kh, kw]));
    if stride != [1, 1] {
        let _ = write!(text, " stride {}", pair(stride));
    }
    text += &pad_text(p);
    if dilation != [1, 1] {
        let _ = write!(text, " dilation {}", pair(dilation));
    }
    if groups != 1 {
        let _ = write!(text, " groups {groups}");
    }
    if [f, per_group, kh, kw].contains(&0) {
        return Err(ctx.fail(node, "has an empty weight"));
    }
    let mut tensors = vec![weight];
    match node.inputs.get(2) {
        Some(_) => tensors.push(bias_of(ctx, node, 2, f)?),
        None => text += " bias off",
    }
    text += round;
    *shape = Shape::Image {
        c: f,
        h: out[0],
        w: out[1],
    };
    Ok(Item::Layer {
        text,
        name: item_name(ctx.graph(), node),
        tensors,
    })
}

pub fn pool(ctx: &dyn Context, node: &Node, shape: &mut Shape) -> Result<Item, String> {
    let [c, h, w] = image(ctx, node, shape)?;
    let size = two(ctx, node, "kernel_shape", 0)?;
    if size.contains(&0) {
        return Err(ctx.fail(node, "has no `kernel_shape`"));
    }
    if two(ctx, node, "dilations", 1)? != [1, 1] {
        return Err(ctx.fail(node, "a dilated pooling window is not in the language"));
    }
    let stride = two(ctx, node, "strides", 1)?;
    let p = pads(ctx, node, size, stride, [h, w])?;
    let avg = node.op == "AveragePool";
    if avg && p != [0; 4] && node.int("count_include_pad", 0) == 0 {
        return Err(ctx.fail(node, "averages without the padded zeros (count_include_pad=0); cnnc's avgpool counts them, as PyTorch's default does"));
    }
    let (out, round) = windowed(ctx, node, [h, w], size, stride, p, node.int("ceil_mode", 0) == 1)?;
    let mut text = format!("{} {}", if avg { "avgpool" } else { "maxpool" }, pair(size));
    if stride != size {
        let _ = write!(text, " stride {}", pair(stride));
    }
    text += &pad_text(p);
    text += round;
    *shape = Shape::Image {
        c,
        h: out[0],
        w: out[1],
    };
    Ok(Item::Layer {
        text,
        name: item_name(ctx.graph(), node),
        tensors: Vec::new(),
    })
}

pub fn batchnorm(ctx: &dyn Context, node: &Node, shape: &mut Shape) -> Result<Item, String> {
    let c = shape.channels();
    let mut tensors = Vec::new();
    for (i, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "var")] {
        let t = ctx.constant(node, i)?;
        if t.floats.len() != c {
            return Err(ctx.fail(
                node,
                &format!("its {what} has {} values for {c} channels", t.floats.len()),
            ));
        }
        tensors.push(ArrayD::from_shape_vec(IxDyn(&[c]), t.floats.clone()).expect("c values"));
    }
    let mut text = "batchnorm".to_string();
    let eps = node.float("epsilon", 1e-5);
    if (eps - 1e-5).abs() > 1e-12 {
        let _ = write!(text, " eps {eps}");
    }
    let momentum = 1.0 - node.float("momentum", 0.9);
    if (momentum - 0.1).abs() > 1e-6 && momentum > 0.0 && momentum <= 1.0 {
        let _ = write!(text, " momentum {}", (momentum * 1e6).round() / 1e6);
    }
    Ok(Item::Layer {
        text,
        name: item_name(ctx.graph(), node),
        tensors,
    })
}

pub fn flatten(ctx: &dyn Context, node: &Node, shape: &mut Shape) -> Result<Item, String> {
    let len = shape.len();
    let ok = match node.op.as_str() {
        "Flatten" => node.int("axis", 1) == 1,
        _ => {
            let target = &ctx.constant(node, 1)?.ints;
            matches!(target.as_slice(), [0 | -1, -1] | [0, _])
                && target.get(1).is_some_and(|&k| k == -1 || k == len as i64)
                || matches!(target.as_slice(), [-1, k] if *k == len as i64)
        }
    };
    if !ok {
        return Err(ctx.fail(node, "only a flatten to (N, -1) is read"));
    }
    *shape = Shape::Vector(len);
    Ok(Item::layer("flatten", item_name(ctx.graph(), node), Vec::new()))
}

fn dense(ctx: &dyn Context, node: &Node, shape: &mut Shape, weight: ArrayD<f32>, bias: Option<ArrayD<f32>>) -> Item {
    let units = weight.shape()[0];
    *shape = Shape::Vector(units);
    let text = if bias.is_some() {
        format!("dense {units}")
    } else {
        format!("dense {units} bias off")
    };
    Item::Layer {
        text,
        name: item_name(ctx.graph(), node),
        tensors: std::iter::once(weight).chain(bias).collect(),
    }
}

fn vector(ctx: &dyn Context, node: &Node, shape: &Shape) -> Result<usize, String> {
    match *shape {
        Shape::Vector(n) => Ok(n),
        Shape::Image { .. } => Err(ctx.fail(node, &format!("needs a vector input (flatten first), gets {shape}"))),
    }
}

pub fn gemm(ctx: &dyn Context, node: &Node, shape: &mut Shape) -> Result<Item, String> {
    let n = vector(ctx, node, shape)?;
    if node.int("transA", 0) != 0 || node.float("alpha", 1.0) != 1.0 || node.float("beta", 1.0) != 1.0 {
        return Err(ctx.fail(node, "only Gemm with transA=0, alpha=1 and beta=1 is a dense layer"));
    }
    let b = weight(ctx, node, 1)?;
    let weight = if node.int("transB", 0) == 1 {
        b
    } else {
        b.t().to_owned()
    };
    if weight.ndim() != 2 || weight.shape()[1] != n {
        return Err(ctx.fail(
            node,
            &format!("weight {:?} does not take the {n} inputs", weight.shape()),
        ));
    }
    let bias = match node.inputs.get(2) {
        Some(_) => Some(bias_of(ctx, node, 2, weight.shape()[0])?),
        None => None,
    };
    Ok(dense(ctx, node, shape, weight, bias))
}

fn bias_of(ctx: &dyn Context, node: &Node, index: usize, units: usize) -> Result<ArrayD<f32>, String> {
    let c = ctx.constant(node, index)?;
    if c.floats.len() != units {
        return Err(ctx.fail(node, &format!("bias has {} values for {units} units", c.floats.len())));
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&[units]), c.floats.clone()).expect("units values"))
}

/// `MatMul(x, W)`, with the `Add` of a bias after it when there is one.
pub fn matmul(ctx: &dyn Context, node: &Node, shape: &mut Shape) -> Result<(Option<Item>, String), String> {
    let n = vector(ctx, node, shape)?;
    let w = weight(ctx, node, 1)?;
    if w.ndim() != 2 || w.shape()[0] != n {
        return Err(ctx.fail(node, &format!("weight {:?} does not take the {n} inputs", w.shape())));
    }
    let weight = w.t().to_owned();
    let units = weight.shape()[0];
    let out = node.outputs[0].clone();
    let g = ctx.graph();
    let add = match g.consumers(&out).as_slice() {
        [one] if g.nodes[*one].op == "Add" => {
            let a = &g.nodes[*one];
            let other = a.inputs.iter().position(|x| *x != out);
            other.filter(|&i| g.consts.contains_key(&a.inputs[i])).map(|i| (a, i))
        }
        _ => None,
    };
    Ok(match add {
        Some((a, i)) => {
            let bias = bias_of(ctx, a, i, units)?;
            (Some(dense(ctx, node, shape, weight, Some(bias))), a.outputs[0].clone())
        }
        None => (Some(dense(ctx, node, shape, weight, None)), out),
    })
}

pub fn softmax(ctx: &dyn Context, node: &Node, shape: &Shape) -> Result<Item, String> {
    let axis = node.int("axis", if ctx.opset() >= 13 { -1 } else { 1 });
    match shape {
        Shape::Vector(_) if axis == 1 || axis == -1 => Ok(Item::act("softmax", item_name(ctx.graph(), node))),
        _ => Err(ctx.fail(node, &format!("softmax over axis {axis} of {shape}: only a vector's features are read (per-position softmax is language version 3)"))),
    }
}

/// How the model's text is laid out.
pub struct Layout<'a> {
    pub name: &'a str,
    pub what: &'a str,
    pub nodes: usize,
    pub opset: i64,
    pub input: Shape,
    pub normalize: Option<(Vec<f32>, Vec<f32>)>,
    pub train: bool,
}

impl Layout<'_> {
    pub fn text(&self, items: &[Item]) -> String {
        let mut s = format!(
            "// Imported by `cnnc import` from {} ({} nodes, opset {}).\n",
            self.what, self.nodes, self.opset
        );
        let _ = write!(s, "model {} {{\n    input {}", self.name, self.input);
        if let Some((mean, std)) = &self.normalize {
            let list = |v: &[f32]| v.iter().map(|x| format!("{x}")).collect::<Vec<_>>().join(" ");
            let _ = write!(s, " normalize mean {} std {}", list(mean), list(std));
        }
        s.push('\n');
        lines(&mut s, items, 1);
        if self.train {
            s += "\n    // A default recipe for fine-tuning: edit it to suit the data.\n";
            s += "    train {\n        loss cross_entropy\n        optimizer sgd lr 0.01 momentum 0.9\n";
            s += "        weight_decay 5e-4\n        schedule cosine\n        batch 32\n        epochs 5\n    }\n";
        }
        s += "}\n";
        s
    }
}

fn lines(s: &mut String, items: &[Item], depth: usize) {
    let indent = "    ".repeat(depth);
    let mut open_line = false; // the last line may take an activation shorthand
    for item in items {
        match item {
            Item::Act { word, name: None } if open_line => {
                let _ = writeln!(s, " {word}");
                open_line = false;
                continue;
            }
            _ => {}
        }
        if open_line {
            s.push('\n');
        }
        let label = |name: &Option<String>| name.as_ref().map(|n| format!("{n}: ")).unwrap_or_default();
        match item {
            Item::Layer { text, name, .. } => {
                let _ = write!(s, "{indent}{}{text}", label(name));
                open_line = ["conv", "dense", "batchnorm"].iter().any(|k| text.starts_with(k));
                if !open_line {
                    s.push('\n');
                }
            }
            Item::Act { word, name } => {
                let _ = writeln!(s, "{indent}{}{word}", label(name));
                open_line = false;
            }
            Item::Residual { body, shortcut, name } => {
                let _ = writeln!(s, "{indent}{}residual {{", label(name));
                lines(s, body, depth + 1);
                if !shortcut.is_empty() {
                    let _ = writeln!(s, "{indent}    shortcut {{");
                    lines(s, shortcut, depth + 2);
                    let _ = writeln!(s, "{indent}    }}");
                }
                let _ = write!(s, "{indent}}}");
                open_line = true;
            }
        }
    }
    if open_line {
        s.push('\n');
    }
}

/// The kept tensors under cnnc's names: the checked model's layers with parameters
/// or buffers, in order, take the items' tensors in order.
pub fn name_tensors(source: &str, model: &str, items: &[Item]) -> Result<Vec<(String, ArrayD<f32>)>, String> {
    let models = crate::compile(source).map_err(|d| {
        format!(
            "the imported model does not check (a bug in the importer; please report it):\n{}",
            d.render("imported.cnn", source)
        )
    })?;
    let ir = models
        .iter()
        .find(|m| m.name == model)
        .ok_or("the imported model is missing")?;
    let mut kept = Vec::new();
    collect(items, &mut kept);
    let layers: Vec<_> = ir
        .all_layers()
        .into_iter()
        .filter(|l| !l.params().is_empty() || !l.buffers().is_empty())
        .collect();
    if layers.len() != kept.len() {
        return Err(format!(
            "the importer kept weights for {} layers, the model has {} (a bug; please report it)",
            kept.len(),
            layers.len()
        ));
    }
    let mut out = Vec::new();
    for (layer, tensors) in layers.into_iter().zip(kept) {
        let names = layer.params().into_iter().chain(layer.buffers());
        for (p, t) in names.zip(tensors) {
            if p.shape != t.shape() {
                return Err(format!(
                    "tensor `{}` is {:?} in the ONNX file, the model needs {:?}",
                    p.name,
                    t.shape(),
                    p.shape
                ));
            }
            out.push((p.name, t.clone()));
        }
    }
    Ok(out)
}

/// The items without the names taken from the ONNX nodes (used when those names
/// collide in the language's scopes).
pub fn without_names(items: &mut [Item]) {
    for item in items {
        match item {
            Item::Layer { name, .. } | Item::Act { name, .. } => *name = None,
            Item::Residual { body, shortcut, name } => {
                *name = None;
                without_names(body);
                without_names(shortcut);
            }
        }
    }
}

fn collect<'a>(items: &'a [Item], out: &mut Vec<&'a [ArrayD<f32>]>) {
    for item in items {
        match item {
            Item::Layer { tensors, .. } if !tensors.is_empty() => out.push(tensors),
            Item::Residual { body, shortcut, .. } => {
                collect(body, out);
                collect(shortcut, out);
            }
            _ => {}
        }
    }
}
