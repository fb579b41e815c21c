//! The walk of an ONNX graph into items: in graph order, a `from` wherever a node
//! reads another tensor than the one before it, joins (`add`, `mul`, `concat`) for
//! `Add`, `Mul` and `Concat` of computed tensors, the fused activations (`silu`,
//! `gelu`), and residual blocks: a tensor read by two nodes whose branches meet
//! first at an `Add`, with nothing else reading inside them, and named inside the
//! `Add`'s scope (PyTorch's `/layer1/layer1.0/Add` over `/layer1/layer1.0/conv1`,
//! cnnc's `residual1` over `residual1.conv1`); an `add` otherwise.

use super::import::Walker;
use super::items::item_name;
use super::layout::{Item, Kind};
use crate::ir::Shape;
use std::collections::{HashMap, HashSet};

/// How deep residual blocks are nested at most.
const MAX_DEPTH: usize = 32;

/// A residual block found at a fork: its body and shortcut (nodes in graph order,
/// and the tensor each ends in) and the joining `Add`.
struct Found {
    body: Vec<usize>,
    body_end: String,
    shortcut: Vec<usize>,
    shortcut_end: String,
    join: usize,
}

impl Walker<'_> {
    /// The items of one block: the nodes `region` (in graph order), which start from
    /// tensor `start` (its shape in `shapes`) and end in tensor `end`. The shape of
    /// every tensor an item writes goes into `shapes`.
    pub(super) fn block(
        &self,
        region: &[usize],
        start: &str,
        end: &str,
        shapes: &mut HashMap<String, Shape>,
    ) -> Result<Vec<Item>, String> {
        let g = self.g;
        let inside: HashSet<usize> = region.iter().copied().collect();
        let mut done: HashSet<usize> = HashSet::new();
        let mut items: Vec<Item> = Vec::new();
        let mut current = start.to_string();
        for &i in region {
            if !done.insert(i) {
                continue;
            }
            let node = &g.nodes[i];
            let data: Vec<&String> = node.inputs.iter().filter(|x| !g.consts.contains_key(*x)).collect();
            let is_join = node.op == "Concat" || (matches!(node.op.as_str(), "Add" | "Mul") && data.len() == 2);
            // A join reads computed tensors only; any other node its first input (the
            // weights and options after it are constants, which its item checks).
            let unknown = |x: &&&String| !shapes.contains_key(x.as_str());
            let first: Vec<&String> = node
                .inputs
                .iter()
                .take(1)
                .filter(|x| !g.consts.contains_key(*x))
                .collect();
            let read = if is_join { &data } else { &first };
            if let Some(x) = read.iter().find(unknown) {
                return Err(self.err(
                    node,
                    format!("reads `{x}`, which is neither the graph's input nor the output of a node before it"),
                ));
            }
            let (main, mut item, out, shape, used) = if is_join {
                let (main, item, shape) = self.join(node, &data, &current, shapes)?;
                (main, item, node.outputs[0].clone(), shape, Vec::new())
            } else {
                let main = node
                    .inputs
                    .first()
                    .filter(|x| shapes.contains_key(x.as_str()))
                    .ok_or_else(|| self.err(node, "its first input is a constant; it must be a computed tensor"))?
                    .clone();
                let mut shape = shapes[&main];
                if let Some((item, out, used)) = self.fused(i, &main, shape) {
                    (main, item, out, shape, used)
                } else if let Some(found) = self.residual(i, &main, &inside) {
                    self.depth.set(self.depth.get() + 1);
                    let body = self.block(&found.body, &main, &found.body_end, shapes);
                    let shortcut = self.block(&found.shortcut, &main, &found.shortcut_end, shapes);
                    self.depth.set(self.depth.get() - 1);
                    let (body, shortcut) = (body?, shortcut?);
                    let join = &g.nodes[found.join];
                    let (b, s) = (shapes[&found.body_end], shapes[&found.shortcut_end]);
                    if b != s {
                        return Err(self.err(join, format!("adds a {b} body to a {s} shortcut")));
                    }
                    let kind = Kind::Residual {
                        body,
                        shortcut,
                        act: None,
                    };
                    let mut used = found.body;
                    used.extend(found.shortcut);
                    used.push(found.join);
                    (
                        main,
                        Item::new(kind, item_name(g, join)),
                        join.outputs[0].clone(),
                        b,
                        used,
                    )
                } else {
                    let (item, out) = self.single(i, &mut shape)?;
                    let used = self.producer.get(out.as_str()).filter(|&&p| p != i).copied();
                    (main, item, out, shape, used.into_iter().collect())
                }
            };
            if main != current {
                let mut from = Item::new(Kind::From, None);
                from.out = main;
                items.push(from);
            }
            done.extend(used);
            item.out = out.clone();
            items.push(item);
            shapes.insert(out.clone(), shape);
            current = out;
        }
        if current != end {
            return Err(format!(
                "{}: the graph's output `{end}` is not computed from its input `{}` by the nodes cnnc reads",
                self.what, self.g.input
            ));
        }
        Ok(items)
    }

    /// `Add`, `Mul` or `Concat` of computed tensors: the tensor the item starts from
    /// (the current one, where the operation allows), the item, and its shape.
    fn join(
        &self,
        node: &super::graph::Node,
        data: &[&String],
        current: &str,
        shapes: &HashMap<String, Shape>,
    ) -> Result<(String, Item, Shape), String> {
        if node.inputs.is_empty() {
            return Err(self.err(node, "has no inputs"));
        }
        if data.len() != node.inputs.len() {
            return Err(self.err(node, "joins a constant; only computed tensors are joined"));
        }
        let label = item_name(self.g, node);
        if node.op == "Concat" {
            let shape = shapes[node.inputs[0].as_str()];
            let axis = node.int("axis", i64::MIN);
            let channels = match shape {
                Shape::Image { .. } => [1, -3].contains(&axis),
                Shape::Vector(_) => [1, -1].contains(&axis),
            };
            if !channels {
                return Err(self.err(
                    node,
                    format!("concatenates {shape} tensors along axis {axis}; `concat` joins the channels (axis 1)"),
                ));
            }
            let mut out = shape;
            for x in &node.inputs[1..] {
                out = match (out, shapes[x.as_str()]) {
                    (Shape::Image { c, h, w }, Shape::Image { c: c2, h: h2, w: w2 }) if (h, w) == (h2, w2) => {
                        Shape::Image { c: c + c2, h, w }
                    }
                    (Shape::Vector(a), Shape::Vector(b)) => Shape::Vector(a + b),
                    (_, other) => {
                        return Err(self.err(node, format!("concatenates {shape} and {other} (`{x}`)")));
                    }
                };
            }
            let kind = Kind::Join {
                word: "concat",
                refs: node.inputs[1..].to_vec(),
                act: None,
            };
            return Ok((node.inputs[0].clone(), Item::new(kind, label), out));
        }
        // Add and Mul commute: the current tensor is the one the item starts from.
        let (a, b) = (&node.inputs[0], &node.inputs[1]);
        let (first, other) = if b == current && a != current { (b, a) } else { (a, b) };
        let (sa, sb) = (shapes[first.as_str()], shapes[other.as_str()]);
        let out = match (node.op.as_str(), sa, sb) {
            (_, x, y) if x == y => x,
            ("Mul", Shape::Image { c, h: 1, w: 1 }, big @ Shape::Image { c: c2, .. })
            | ("Mul", big @ Shape::Image { c: c2, .. }, Shape::Image { c, h: 1, w: 1 })
                if c == c2 =>
            {
                big
            }
            _ => {
                let rule = if node.op == "Add" {
                    "`add` needs equal shapes"
                } else {
                    "`mul` needs equal shapes, or a Cx1x1 side with the other's C channels"
                };
                return Err(self.err(node, format!("joins {sa} (`{first}`) and {sb} (`{other}`); {rule}")));
            }
        };
        let word = if node.op == "Add" { "add" } else { "mul" };
        let kind = Kind::Join {
            word,
            refs: vec![other.clone()],
            act: None,
        };
        Ok((first.clone(), Item::new(kind, label), out))
    }

    /// An activation PyTorch's exporter writes as several nodes, starting at node
    /// `i` on tensor `x` of shape `shape`: `x * Sigmoid(x)` (silu), `x * 0.5 * (1 +
    /// Erf(x / sqrt 2))` (gelu), or, before opset 13, the softmax over the channels
    /// of an image as `Transpose`, `Softmax` over the last axis, `Transpose` back.
    /// The item, its output, and the nodes it takes besides `i`.
    fn fused(&self, i: usize, x: &str, shape: Shape) -> Option<(Item, String, Vec<usize>)> {
        let g = self.g;
        let node = &g.nodes[i];
        let only = |t: &str| match self.readers(t).as_slice() {
            [one] => Some(*one),
            _ => None,
        };
        let scalar = |n: &super::graph::Node, value: f32| {
            n.inputs.iter().any(|t| {
                g.consts
                    .get(t)
                    .is_some_and(|c| c.floats.len() == 1 && (c.floats[0] - value).abs() <= 1e-4 * value.abs())
            })
        };
        let reads = |n: &super::graph::Node, a: &str, b: &str| {
            n.inputs.len() == 2 && n.inputs.iter().any(|t| t == a) && n.inputs.iter().any(|t| t == b)
        };
        let out = node.outputs.first()?;
        match node.op.as_str() {
            "Sigmoid" => {
                let m = only(out)?;
                let mul = &g.nodes[m];
                (mul.op == "Mul" && reads(mul, x, out))
                    .then(|| (Item::act("silu", None), mul.outputs[0].clone(), vec![m]))
            }
            "Div" if node.inputs.first().map(String::as_str) == Some(x) && scalar(node, std::f32::consts::SQRT_2) => {
                let e = only(out).filter(|&e| g.nodes[e].op == "Erf")?;
                let a = only(&g.nodes[e].outputs[0]).filter(|&a| g.nodes[a].op == "Add" && scalar(&g.nodes[a], 1.0))?;
                let m = only(&g.nodes[a].outputs[0])
                    .filter(|&m| g.nodes[m].op == "Mul" && reads(&g.nodes[m], x, &g.nodes[a].outputs[0]))?;
                let h = only(&g.nodes[m].outputs[0]).filter(|&h| g.nodes[h].op == "Mul" && scalar(&g.nodes[h], 0.5))?;
                Some((Item::act("gelu", None), g.nodes[h].outputs[0].clone(), vec![e, a, m, h]))
            }
            "Transpose" if matches!(shape, Shape::Image { .. }) => {
                let there = node.ints("perm");
                let s = only(out)
                    .filter(|&s| g.nodes[s].op == "Softmax" && [3, -1].contains(&g.nodes[s].int("axis", 1)))?;
                let t = only(&g.nodes[s].outputs[0]).filter(|&t| g.nodes[t].op == "Transpose")?;
                let back = g.nodes[t].ints("perm");
                let inverse = (0..4).all(|k| {
                    let b = back.get(k).and_then(|&b| usize::try_from(b).ok());
                    b.and_then(|b| there.get(b)) == Some(&(k as i64))
                });
                let channels_last = there.len() == 4 && back.len() == 4 && there[0] == 0 && there[3] == 1;
                (channels_last && inverse)
                    .then(|| (Item::act("softmax", None), g.nodes[t].outputs[0].clone(), vec![s, t]))
            }
            _ => None,
        }
    }

    /// The nodes the output depends on that depend on node `i` (`i` among them).
    fn descendants(&self, i: usize) -> Vec<bool> {
        let mut seen = vec![false; self.g.nodes.len()];
        let mut todo = vec![i];
        while let Some(k) = todo.pop() {
            if std::mem::replace(&mut seen[k], true) {
                continue;
            }
            for out in &self.g.nodes[k].outputs {
                todo.extend(self.readers(out).into_iter().filter(|&r| !seen[r]));
            }
        }
        seen
    }

    /// A residual block at node `first`, which reads the tensor `t`: `t` is read by
    /// `first` and one more node of the block being walked, the two branches from
    /// them first meet at an `Add`, no node between reads or writes anything outside
    /// its branch, and the nodes are named inside the `Add`'s scope. The longer
    /// branch is the body (a cnnc shortcut, `NAME.shortcut.*`, is the shortcut).
    fn residual(&self, first: usize, t: &str, inside: &HashSet<usize>) -> Option<Found> {
        let g = self.g;
        let [a, b] = self.readers(t)[..] else {
            return None;
        };
        // Deeper blocks are written as `add`s, which need no recursion.
        if self.depth.get() >= MAX_DEPTH {
            return None;
        }
        if a != first || !inside.contains(&b) || matches!(g.nodes[a].op.as_str(), "Add" | "Mul" | "Concat") {
            return None;
        }
        let (d1, d2) = (self.descendants(a), self.descendants(b));
        let join = (0..g.nodes.len()).find(|&k| d1[k] && d2[k])?;
        let jn = &g.nodes[join];
        if jn.op != "Add" || jn.inputs.len() != 2 || !inside.contains(&join) {
            return None;
        }
        // The nodes between the fork and the join.
        let mut between = vec![false; g.nodes.len()];
        let mut todo = vec![join];
        while let Some(k) = todo.pop() {
            for x in &g.nodes[k].inputs {
                if let Some(&p) = self.producer.get(x.as_str()) {
                    if (d1[p] || d2[p]) && p != join && !between[p] {
                        between[p] = true;
                        todo.push(p);
                    }
                }
            }
        }
        let side = |d: &[bool]| -> Vec<usize> { (0..g.nodes.len()).filter(|&k| between[k] && d[k]).collect() };
        let (s1, s2) = (side(&d1), side(&d2));
        let produced_in = |x: &str, s: &[usize]| self.producer.get(x).is_some_and(|p| s.contains(p));
        for s in [&s1, &s2] {
            for &k in s.iter() {
                let node = &g.nodes[k];
                let own = |x: &String| x == t || g.consts.contains_key(x) || produced_in(x, s);
                let kept = |o: &String| *o != g.output && self.readers(o).iter().all(|r| *r == join || s.contains(r));
                if !inside.contains(&k) || !node.inputs.iter().all(own) || !node.outputs.iter().all(kept) {
                    return None;
                }
            }
        }
        let (i0, i1) = (&jn.inputs[0], &jn.inputs[1]);
        let ends = |x: &String, y: &String| produced_in(x, &s1) && (produced_in(y, &s2) || (s2.is_empty() && y == t));
        let (e1, e2) = if ends(i0, i1) {
            (i0.clone(), i1.clone())
        } else if ends(i1, i0) {
            (i1.clone(), i0.clone())
        } else {
            return None;
        };
        let nodes = s1.iter().chain(&s2).map(|&k| g.nodes[k].name.as_str());
        if !scoped(&jn.name, &jn.op, nodes) {
            return None;
        }
        let named_shortcut = |s: &[usize]| {
            let prefix = format!("{}.shortcut.", jn.name);
            !s.is_empty() && s.iter().all(|&k| g.nodes[k].name.starts_with(&prefix))
        };
        let mut sides = [(s1, e1), (s2, e2)];
        if named_shortcut(&sides[0].0) || (!named_shortcut(&sides[1].0) && sides[1].0.len() > sides[0].0.len()) {
            sides.swap(0, 1);
        }
        let [(body, body_end), (shortcut, shortcut_end)] = sides;
        Some(Found {
            body,
            body_end,
            shortcut,
            shortcut_end,
            join,
        })
    }
}

/// Whether the nodes `names` of a residual block are named inside the scope of the
/// `Add` that joins them: its `/` path (PyTorch), or its name and a dot (cnnc).
/// An unnamed `Add` says nothing, and takes any.
fn scoped<'a>(join: &str, op: &str, mut names: impl Iterator<Item = &'a str>) -> bool {
    if join.strip_prefix(op).is_some_and(|rest| rest.starts_with('#')) {
        return true;
    }
    let prefix = match join.rfind('/') {
        Some(k) => join[..=k].to_string(),
        None => format!("{join}."),
    };
    names.all(|n| n.starts_with(&prefix))
}
