//! An ONNX file read for import: its nodes in order, with who produces and who
//! reads each tensor, the constant tensors (initializers, `Constant` nodes and the
//! shape arithmetic PyTorch's exporter emits around `Reshape`), and typed attribute
//! access whose errors name the node.

use super::proto::{attribute_proto::AttributeType, tensor_proto::DataType, ModelProto, NodeProto, TensorProto};
use prost::Message;
use std::collections::HashMap;

/// A constant tensor: floats (weights) or integers (shapes, axes).
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    pub dims: Vec<usize>,
    pub floats: Vec<f32>,
    pub ints: Vec<i64>,
}

/// One node, as the importer reads it.
#[derive(Debug, Clone)]
pub struct Node {
    /// The node's name, or `OP#INDEX` when it has none.
    pub name: String,
    pub op: String,
    pub inputs: Vec<String>,
    /// The inputs by position, an omitted optional input as `""` (Resize's `roi`).
    pub slots: Vec<String>,
    pub outputs: Vec<String>,
    attrs: Vec<super::proto::AttributeProto>,
}

/// The decoded graph.
pub struct Graph {
    pub nodes: Vec<Node>,
    pub consts: HashMap<String, Const>,
    /// The graph's one non-constant input and its dimensions (`None`: symbolic).
    pub input: String,
    pub input_dims: Vec<Option<usize>>,
    pub output: String,
    pub opset: i64,
    /// The graph's name, if it has one.
    pub name: Option<String>,
    /// How many nodes would take each item name (see `items::item_name`).
    pub name_counts: HashMap<String, usize>,
    /// The nodes that read each tensor (once each, in graph order).
    readers: HashMap<String, Vec<usize>>,
}

/// Larger files are refused: the importer reads the whole file into memory.
const MAX_BYTES: usize = 2 << 30;

impl Graph {
    /// Decodes an ONNX file's bytes; `what` names the file in errors.
    pub fn decode(bytes: &[u8], what: &str) -> Result<Graph, String> {
        if bytes.len() > MAX_BYTES {
            return Err(format!(
                "{what}: {} bytes, more than the importer's 2 GiB limit",
                bytes.len()
            ));
        }
        let model = ModelProto::decode(bytes).map_err(|e| format!("{what}: not an ONNX model ({e})"))?;
        let opset = model
            .opset_import
            .iter()
            .find(|o| o.domain.as_deref().unwrap_or("").is_empty() || o.domain.as_deref() == Some("ai.onnx"))
            .and_then(|o| o.version)
            .ok_or_else(|| format!("{what}: the model imports no version of the default ONNX operator set"))?;
        let graph = model.graph.ok_or_else(|| format!("{what}: the model has no graph"))?;
        let mut consts = HashMap::new();
        for t in &graph.initializer {
            let name = t.name.clone().unwrap_or_default();
            consts.insert(
                name.clone(),
                tensor(t).map_err(|e| format!("{what}: initializer `{name}`: {e}"))?,
            );
        }
        let inputs: Vec<_> = graph.input.iter().filter(|i| !consts.contains_key(i.name())).collect();
        let [input] = inputs.as_slice() else {
            return Err(format!(
                "{what}: the graph has {} inputs besides its weights ({}); cnnc models have one",
                inputs.len(),
                inputs.iter().map(|i| i.name()).collect::<Vec<_>>().join(", ")
            ));
        };
        let [output] = graph.output.as_slice() else {
            return Err(format!(
                "{what}: the graph has {} outputs; cnnc models have one",
                graph.output.len()
            ));
        };
        let input_dims = dims_of(input);
        let mut nodes = Vec::with_capacity(graph.node.len());
        for (i, n) in graph.node.iter().enumerate() {
            let node = Node::from_proto(n, i);
            if node.outputs.first().is_none_or(|o| o.is_empty()) {
                return Err(format!("{what}: node `{}` ({}) has no output", node.name, node.op));
            }
            if node.op == "Constant" {
                let value = node.attr_tensor("value")?;
                consts.insert(node.outputs.first().cloned().unwrap_or_default(), value);
                continue;
            }
            nodes.push(node);
        }
        let mut g = Graph {
            nodes,
            consts,
            input: input.name().to_string(),
            input_dims,
            output: output.name().to_string(),
            opset,
            name: graph.name.clone().filter(|n| !n.is_empty()),
            name_counts: HashMap::new(),
            readers: HashMap::new(),
        };
        g.fold_shape_arithmetic();
        g.fold_aliases();
        g.sort(what)?;
        for (i, node) in g.nodes.iter().enumerate() {
            let mut seen: Vec<&String> = Vec::new();
            for x in &node.inputs {
                if !seen.contains(&x) {
                    seen.push(x);
                    g.readers.entry(x.clone()).or_default().push(i);
                }
            }
        }
        for node in &g.nodes {
            if let Some(name) = node.candidate_name() {
                *g.name_counts.entry(name).or_insert(0) += 1;
            }
        }
        Ok(g)
    }

    /// The nodes that read `tensor`, in graph order.
    pub fn consumers(&self, tensor: &str) -> Vec<usize> {
        self.readers.get(tensor).cloned().unwrap_or_default()
    }

    /// `Dropout` and `Identity` (and a `Concat` of one tensor) compute nothing in an
    /// inference graph: their readers read their input instead (an `Identity` of a
    /// constant is that constant: PyTorch writes one for a shared weight).
    fn fold_aliases(&mut self) {
        let mut alias: HashMap<String, String> = HashMap::new();
        let mut keep = Vec::with_capacity(self.nodes.len());
        for mut node in std::mem::take(&mut self.nodes) {
            for x in node.inputs.iter_mut().chain(node.slots.iter_mut()) {
                if let Some(a) = alias.get(x.as_str()) {
                    *x = a.clone();
                }
            }
            let passes =
                matches!(node.op.as_str(), "Dropout" | "Identity") || (node.op == "Concat" && node.inputs.len() == 1);
            match (passes, node.inputs.first(), node.outputs.first()) {
                (true, Some(x), Some(out)) => {
                    if let Some(c) = self.consts.get(x) {
                        let c = c.clone();
                        self.consts.insert(out.clone(), c);
                    } else {
                        alias.insert(out.clone(), x.clone());
                    }
                }
                _ => keep.push(node),
            }
        }
        if let Some(a) = alias.get(&self.output) {
            self.output = a.clone();
        }
        self.nodes = keep;
    }

    /// The nodes in an order where each comes after the nodes it reads from (ONNX
    /// requires one; the graph's own order is kept where it is one).
    fn sort(&mut self, what: &str) -> Result<(), String> {
        let mut producer: HashMap<&str, usize> = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            for out in node.outputs.iter().filter(|o| !o.is_empty()) {
                if producer.insert(out, i).is_some() || self.consts.contains_key(out) || *out == self.input {
                    return Err(format!(
                        "{what}: tensor `{out}` is written twice (again by node `{}`)",
                        node.name
                    ));
                }
            }
        }
        let n = self.nodes.len();
        let mut waiting = vec![0usize; n];
        let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, node) in self.nodes.iter().enumerate() {
            let mut from: Vec<usize> = node
                .inputs
                .iter()
                .filter_map(|x| producer.get(x.as_str()).copied())
                .collect();
            from.sort_unstable();
            from.dedup();
            waiting[i] = from.len();
            for p in from {
                next[p].push(i);
            }
        }
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> =
            (0..n).filter(|&i| waiting[i] == 0).map(std::cmp::Reverse).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(std::cmp::Reverse(i)) = ready.pop() {
            order.push(i);
            for &j in &next[i] {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.push(std::cmp::Reverse(j));
                }
            }
        }
        if order.len() < n {
            let stuck = (0..n)
                .find(|&i| waiting[i] > 0)
                .map_or("?", |i| self.nodes[i].name.as_str());
            return Err(format!("{what}: the graph has a cycle through node `{stuck}`"));
        }
        let mut nodes: Vec<Option<Node>> = std::mem::take(&mut self.nodes).into_iter().map(Some).collect();
        self.nodes = order.into_iter().filter_map(|i| nodes[i].take()).collect();
        Ok(())
    }

    /// `Shape`, `Gather`, `Unsqueeze`, `Concat`, `Cast` and `Squeeze` over constants
    /// and the batch axis: what PyTorch's exporter writes for `x.view(x.size(0), -1)`.
    /// The batch size is unknown, so it folds to the marker 0 (`Reshape`'s "copy this
    /// dimension"), which is what it means there.
    fn fold_shape_arithmetic(&mut self) {
        // `None`: the shape of some tensor, of which only the batch axis is known.
        let mut shapes: HashMap<String, Option<Vec<i64>>> = HashMap::new();
        let mut keep = Vec::with_capacity(self.nodes.len());
        for node in std::mem::take(&mut self.nodes) {
            let ints = |x: &String| match shapes.get(x) {
                Some(v) => v.clone(),
                None => self
                    .consts
                    .get(x)
                    .filter(|c| !c.ints.is_empty())
                    .map(|c| c.ints.clone()),
            };
            let folded: Option<Option<Vec<i64>>> = match node.op.as_str() {
                "Shape" => Some(None),
                "Gather" => {
                    let index = node
                        .inputs
                        .get(1)
                        .and_then(|x| self.consts.get(x))
                        .and_then(|c| c.ints.first());
                    match (node.inputs.first().and_then(|x| shapes.get(x)), index) {
                        (Some(None), Some(0)) => Some(Some(vec![0])),
                        (Some(Some(v)), Some(&i)) => {
                            usize::try_from(i).ok().and_then(|i| v.get(i)).map(|&d| Some(vec![d]))
                        }
                        _ => None,
                    }
                }
                "Unsqueeze" | "Squeeze" | "Cast" | "Identity" => node
                    .inputs
                    .first()
                    .filter(|x| shapes.contains_key(*x))
                    .and_then(ints)
                    .map(Some),
                "Concat" if node.inputs.iter().any(|x| shapes.contains_key(x)) => node
                    .inputs
                    .iter()
                    .map(ints)
                    .collect::<Option<Vec<_>>>()
                    .map(|parts| Some(parts.concat())),
                _ => None,
            };
            match (folded, node.outputs.first()) {
                (Some(v), Some(out)) => {
                    if let Some(v) = &v {
                        let c = Const {
                            dims: vec![v.len()],
                            floats: Vec::new(),
                            ints: v.clone(),
                        };
                        self.consts.insert(out.clone(), c);
                    }
                    shapes.insert(out.clone(), v);
                }
                _ => keep.push(node),
            }
        }
        self.nodes = keep;
    }
}

impl Node {
    /// The item name this node would take, before collisions are ruled out (see
    /// `items::item_name`).
    pub fn candidate_name(&self) -> Option<String> {
        let node = self;
        let part = node.name.rsplit('/').find(|p| !p.is_empty() && *p != node.op)?;
        let last = part.rsplit('.').next().unwrap_or(part);
        let name = if last.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            last.to_string()
        } else {
            part.replace('.', "_")
        };
        let ident = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '_');
        // `Relu_1`: PyTorch's name for a functional call (F.relu) is its op type.
        let default_like = stem.is_empty()
            || crate::syntax::is_keyword(stem)
            || stem == "shortcut"
            || stem.eq_ignore_ascii_case(&node.op);
        (ident && !default_like && name.len() <= 64 && name != "input").then_some(name)
    }

    fn from_proto(n: &NodeProto, index: usize) -> Node {
        let op = n.op_type.clone().unwrap_or_default();
        let name = match n.name.as_deref() {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => format!("{op}#{index}"),
        };
        Node {
            name,
            op,
            inputs: n.input.iter().filter(|s| !s.is_empty()).cloned().collect(),
            slots: n.input.clone(),
            outputs: n.output.clone(),
            attrs: n.attribute.clone(),
        }
    }

    fn attr(&self, name: &str) -> Option<&super::proto::AttributeProto> {
        self.attrs.iter().find(|a| a.name.as_deref() == Some(name))
    }

    /// An integer attribute, or `default` when absent.
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).and_then(|a| a.i).unwrap_or(default)
    }

    /// A float attribute, or `default` when absent.
    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.attr(name).and_then(|a| a.f).unwrap_or(default)
    }

    /// A float-list attribute (empty when absent).
    pub fn floats(&self, name: &str) -> Vec<f32> {
        self.attr(name).map(|a| a.floats.clone()).unwrap_or_default()
    }

    /// An integer-list attribute (empty when absent).
    pub fn ints(&self, name: &str) -> Vec<i64> {
        self.attr(name).map(|a| a.ints.clone()).unwrap_or_default()
    }

    /// A string attribute, or `default` when absent.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.attr(name)
            .and_then(|a| a.s.as_ref())
            .map_or_else(|| default.to_string(), |s| String::from_utf8_lossy(s).into_owned())
    }

    fn attr_tensor(&self, name: &str) -> Result<Const, String> {
        let a = self
            .attr(name)
            .filter(|a| a.r#type == Some(AttributeType::Tensor as i32) || a.t.is_some());
        match a.and_then(|a| a.t.as_ref()) {
            Some(t) => tensor(t).map_err(|e| format!("node `{}` (Constant): {e}", self.name)),
            None => Err(format!(
                "node `{}` (Constant) has no tensor `{name}`; only tensor constants are read",
                self.name
            )),
        }
    }
}

/// A tensor's values: float32 (and float64, narrowed) as floats, integer types as ints.
fn tensor(t: &TensorProto) -> Result<Const, String> {
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect::<Result<Vec<_>, _>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= 1 << 31)
        .ok_or_else(|| format!("dimensions {dims:?} hold more than 2^31 values"))?;
    if !t.external_data.is_empty() {
        return Err("its data is in an external file; save the model with its weights inside".into());
    }
    let raw = t.raw_data.as_deref();
    let dtype = t.data_type.unwrap_or(0);
    let (floats, ints): (Vec<f32>, Vec<i64>) = match DataType::try_from(dtype) {
        Ok(DataType::Float) => (
            match raw {
                Some(b) => b
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                None => t.float_data.clone(),
            },
            Vec::new(),
        ),
        Ok(DataType::Double) => (
            match raw {
                Some(b) => b
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                    .collect(),
                None => t.double_data.iter().map(|&v| v as f32).collect(),
            },
            Vec::new(),
        ),
        Ok(DataType::Int64) => (
            Vec::new(),
            match raw {
                Some(b) => b
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect(),
                None => t.int64_data.clone(),
            },
        ),
        Ok(DataType::Int32) => (
            Vec::new(),
            match raw {
                Some(b) => b
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64)
                    .collect(),
                None => t.int32_data.iter().map(|&v| v as i64).collect(),
            },
        ),
        _ => {
            return Err(format!(
                "data type {dtype} is not read (float, double, int32 and int64 are)"
            ))
        }
    };
    let got = floats.len().max(ints.len());
    if got != count {
        return Err(format!("holds {got} values, its dimensions {dims:?} need {count}"));
    }
    Ok(Const { dims, floats, ints })
}

/// A graph input's dimensions; `None` for symbolic ones.
fn dims_of(v: &super::proto::ValueInfoProto) -> Vec<Option<usize>> {
    use super::proto::tensor_shape_proto::dimension::Value;
    use super::proto::type_proto::Value as Type;
    let Some(Type::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Vec::new();
    };
    t.shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(Value::DimValue(v)) => usize::try_from(v).ok(),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}
