//! The `.cnn` items an ONNX import writes: one function per operator family (its
//! attributes checked, its output shape computed with the language's formula, its
//! weights kept), the text layout, and the matching of the kept weights to cnnc's
//! tensor names.

use super::graph::{Const, Graph, Node};
use super::layout::Item;
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

/// The largest height or width a transposed convolution or an upsampling may
/// output here (the checker bounds the values per sample more tightly).
pub(super) const LARGEST: u128 = 1 << 32;

/// `3` or `3x5`.
pub(super) fn pair(v: [usize; 2]) -> String {
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

pub(super) fn image(ctx: &dyn Context, node: &Node, shape: &Shape) -> Result<[usize; 3], String> {
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
    Ok(Item::layer(&text, item_name(ctx.graph(), node), tensors))
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
    Ok(Item::layer(&text, item_name(ctx.graph(), node), Vec::new()))
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
    Ok(Item::layer(&text, item_name(ctx.graph(), node), tensors))
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
    let tensors = std::iter::once(weight).chain(bias).collect();
    Item::layer(&text, item_name(ctx.graph(), node), tensors)
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
pub fn matmul(ctx: &dyn Context, node: &Node, shape: &mut Shape) -> Result<(Item, String), String> {
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
            (dense(ctx, node, shape, weight, Some(bias)), a.outputs[0].clone())
        }
        None => (dense(ctx, node, shape, weight, None), out),
    })
}

/// `Softmax` over a vector's features, or (opset 13 on) over the channels of each
/// position of an image: the language's `softmax` on either.
pub fn softmax(ctx: &dyn Context, node: &Node, shape: &Shape) -> Result<Item, String> {
    let opset = ctx.opset();
    let axis = node.int("axis", if opset >= 13 { -1 } else { 1 });
    let ok = match *shape {
        Shape::Vector(_) => axis == 1 || axis == -1,
        // Before opset 13, Softmax flattens the axes from `axis` on: one softmax over
        // C·H·W, which is the per-position one only on a 1x1 image.
        Shape::Image { h, w, .. } => (axis == 1 || axis == -3) && (opset >= 13 || h * w == 1),
    };
    if !ok {
        let per_position = if opset < 13 && matches!(shape, Shape::Image { .. }) {
            " (before opset 13, Softmax on an image takes all of C·H·W at once)"
        } else {
            ""
        };
        return Err(ctx.fail(
            node,
            &format!(
                "softmax over axis {axis} of {shape}{per_position}: the language's softmax is over a vector's \
                 features, or over the channels at each position of an image (axis 1)"
            ),
        ));
    }
    Ok(Item::act("softmax", item_name(ctx.graph(), node)))
}

/// `GlobalMaxPool`: `maxpool global`.
pub fn global_pool(ctx: &dyn Context, node: &Node, shape: &mut Shape) -> Result<Item, String> {
    let [c, ..] = image(ctx, node, shape)?;
    *shape = Shape::Image { c, h: 1, w: 1 };
    let text = if node.op == "GlobalMaxPool" {
        "maxpool global"
    } else {
        "avgpool global"
    };
    Ok(Item::layer(text, item_name(ctx.graph(), node), Vec::new()))
}

/// `ConvTranspose` with symmetric padding (as PyTorch's `ConvTranspose2d`): weight
/// `[C, F/G, KH, KW]`.
pub fn conv_transpose(ctx: &dyn Context, node: &Node, shape: &mut Shape) -> Result<Item, String> {
    let [c, h, w] = image(ctx, node, shape)?;
    let weight = weight(ctx, node, 1)?;
    let [wc, per_group, kh, kw] = weight.shape()[..] else {
        return Err(ctx.fail(
            node,
            &format!(
                "weight has dimensions {:?}; a 2-D transposed convolution's are [C, F/G, KH, KW]",
                weight.shape()
            ),
        ));
    };
    let groups = usize::try_from(node.int("group", 1)).unwrap_or(0);
    if groups == 0 || wc != c || c % groups != 0 {
        return Err(ctx.fail(
            node,
            &format!("weight reads {wc} channels in {groups} groups; the input has {c}"),
        ));
    }
    if [per_group, kh, kw].contains(&0) {
        return Err(ctx.fail(node, "has an empty weight"));
    }
    let f = per_group * groups;
    let kernel = node.ints("kernel_shape");
    if !kernel.is_empty() && kernel != [kh as i64, kw as i64] {
        return Err(ctx.fail(
            node,
            &format!("`kernel_shape` {kernel:?} is not the weight's {kh}x{kw}"),
        ));
    }
    match node.string("auto_pad", "NOTSET").as_str() {
        "NOTSET" | "VALID" => {}
        other => {
            return Err(ctx.fail(
                node,
                &format!("`auto_pad` {other} is not read for ConvTranspose; export it with explicit symmetric `pads`"),
            ))
        }
    }
    let t = Transposed {
        kernel: [kh, kw],
        stride: two(ctx, node, "strides", 1)?,
        dilation: two(ctx, node, "dilations", 1)?,
        output_pad: two(ctx, node, "output_padding", 0)?,
        pad: symmetric_pads(ctx, node)?,
    };
    let out = t.output(ctx, node, [h, w])?;
    let mut text = t.text(f, groups);
    let mut tensors = vec![weight];
    match node.inputs.get(2) {
        Some(_) => tensors.push(bias_of(ctx, node, 2, f)?),
        None => text += " bias off",
    }
    *shape = Shape::Image {
        c: f,
        h: out[0],
        w: out[1],
    };
    Ok(Item::layer(&text, item_name(ctx.graph(), node), tensors))
}

/// A transposed convolution's window, per axis.
struct Transposed {
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    output_pad: [usize; 2],
    pad: [usize; 2],
}

/// A transposed convolution's padding per axis: ONNX `pads` when it is the same
/// on both sides of each axis (PyTorch's `padding`).
fn symmetric_pads(ctx: &dyn Context, node: &Node) -> Result<[usize; 2], String> {
    match node.ints("pads").as_slice() {
        [] => Ok([0, 0]),
        [t, l, b, r] if t == b && l == r && [t, l].iter().all(|v| (0..=1 << 20).contains(*v)) => {
            Ok([*t as usize, *l as usize])
        }
        other => Err(ctx.fail(
            node,
            &format!(
                "`pads` is {other:?}; a transposed convolution's padding is read when it is the same on both \
                 sides of each axis (PyTorch's `padding`)"
            ),
        )),
    }
}

impl Transposed {
    /// The output height and width over an input of `hw`, checked against the
    /// node's `output_shape` when it has one.
    fn output(&self, ctx: &dyn Context, node: &Node, hw: [usize; 2]) -> Result<[usize; 2], String> {
        let mut out = [0; 2];
        for axis in 0..2 {
            let (s, d, o, p) = (
                self.stride[axis],
                self.dilation[axis],
                self.output_pad[axis],
                self.pad[axis],
            );
            if o >= s.max(d) || o >= s + p {
                return Err(ctx.fail(
                    node,
                    &format!(
                        "`output_padding` {o} with stride {s}, dilation {d} and pad {p}: the language needs it smaller \
                         than the stride or the dilation, and than the stride plus the padding"
                    ),
                ));
            }
            let input = hw[axis] as u128;
            let full = (input - 1) * s as u128 + (d * (self.kernel[axis] - 1) + o + 1) as u128;
            if full > LARGEST {
                return Err(ctx.fail(node, &format!("outputs {full} rows or columns, more than cnnc reads")));
            }
            out[axis] = (full as usize).checked_sub(2 * p).filter(|&v| v >= 1).ok_or_else(|| {
                ctx.fail(
                    node,
                    &format!("pads of {p} leave no output of the {full} rows or columns (axis {axis})"),
                )
            })?;
        }
        if let Some(given) = Some(node.ints("output_shape")).filter(|v| !v.is_empty()) {
            let tail: Vec<i64> = given.iter().rev().take(2).rev().copied().collect();
            if tail != [out[0] as i64, out[1] as i64] {
                return Err(ctx.fail(
                    node,
                    &format!(
                        "`output_shape` {given:?} is not the {}x{} its pads give; export it with explicit `pads` and \
                         `output_padding`",
                        out[0], out[1]
                    ),
                ));
            }
        }
        Ok(out)
    }

    /// The `.cnn` layer of `f` filters in `groups` groups, without its bias option.
    fn text(&self, f: usize, groups: usize) -> String {
        let mut text = format!("convtranspose {f} kernel {}", pair(self.kernel));
        if self.stride != [1, 1] {
            let _ = write!(text, " stride {}", pair(self.stride));
        }
        if self.pad != [0, 0] {
            let _ = write!(text, " pad {}", pair(self.pad));
        }
        if self.output_pad != [0, 0] {
            let _ = write!(text, " output_pad {}", pair(self.output_pad));
        }
        if self.dilation != [1, 1] {
            let _ = write!(text, " dilation {}", pair(self.dilation));
        }
        if groups != 1 {
            let _ = write!(text, " groups {groups}");
        }
        text
    }
}
