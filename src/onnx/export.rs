//! A checked model and its weights as an ONNX `ModelProto` (see the module's docs).

use super::proto::attribute_proto::AttributeType;
use super::proto::tensor_proto::DataType;
use super::proto::tensor_shape_proto::{dimension, Dimension};
use super::proto::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};
use super::{IR_VERSION, OPSET};
use crate::activation::Onnx;
use crate::ir::{Activation, Layer, Model as Ir, Op, Shape, Window};
use crate::rt::Error;
use crate::Model;
use prost::Message;
use std::path::Path;

/// The graph's input and output names.
const INPUT: &str = "input";
const OUTPUT: &str = "output";

/// `model` (checked) with the parameters and buffers of `weights` (a generated model
/// or the interpreter built from the same source) as the bytes of an ONNX file.
/// Fails when `weights` lacks one of the model's tensors or holds it in another shape.
pub fn export(model: &Ir, weights: &dyn Model) -> Result<Vec<u8>, Error> {
    let mut g = Graph {
        nodes: Vec::new(),
        inits: Vec::new(),
        weights,
        outputs: std::collections::HashMap::new(),
    };
    let mut x = INPUT.to_string();
    if let Some(n) = &model.normalize {
        let c = n.mean.len();
        let mean = g.constant("normalize.mean", vec![1, c as i64, 1, 1], n.mean.clone());
        let std = g.constant("normalize.std", vec![1, c as i64, 1, 1], n.std.clone());
        x = g.node("Sub", "normalize.sub", vec![x, mean], vec![]);
        x = g.node("Div", "normalize", vec![x, std], vec![]);
    }
    g.outputs.insert(crate::ir::Ref::INPUT.to_string(), x.clone());
    x = g.sequence(&model.layers, x)?;
    // The last node's output becomes the graph's output: renamed, so that readers
    // find `output` whatever the last layer was called.
    match g.nodes.iter_mut().rev().find(|n| n.output.first() == Some(&x)) {
        Some(last) => last.output = vec![OUTPUT.to_string()],
        None => {
            g.node("Identity", OUTPUT, vec![x], vec![]);
        }
    }
    let graph = GraphProto {
        name: Some(model.name.clone()),
        node: g.nodes,
        initializer: g.inits,
        input: vec![value_info(INPUT, model.input)],
        output: vec![value_info(OUTPUT, model.output())],
        ..Default::default()
    };
    let proto = ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("cnnc".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(format!("model {} exported by cnnc", model.name)),
        graph: Some(graph),
        ..Default::default()
    };
    Ok(proto.encode_to_vec())
}

/// [`export`], written to `path` atomically (a failed write leaves no file behind).
pub fn export_to_file(model: &Ir, weights: &dyn Model, path: &Path) -> Result<(), Error> {
    crate::rt::atomic::write(path, &export(model, weights)?)
}

/// The graph being built: nodes in order, initializers, and where weights come from.
struct Graph<'a> {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    weights: &'a dyn Model,
    /// v3: each layer's output by its IR name, for the items that refer to it.
    outputs: std::collections::HashMap<String, String>,
}

impl Graph<'_> {
    /// Appends a node named `name` whose one output is also called `name`; returns it.
    fn node(&mut self, op: &str, name: &str, inputs: Vec<String>, attribute: Vec<AttributeProto>) -> String {
        self.nodes.push(NodeProto {
            input: inputs,
            output: vec![name.to_string()],
            name: Some(name.to_string()),
            op_type: Some(op.to_string()),
            attribute,
            ..Default::default()
        });
        name.to_string()
    }

    /// An initializer of the given values; returns its name.
    fn constant(&mut self, name: &str, dims: Vec<i64>, values: Vec<f32>) -> String {
        self.inits.push(TensorProto {
            name: Some(name.to_string()),
            dims,
            data_type: Some(DataType::Float as i32),
            raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            ..Default::default()
        });
        name.to_string()
    }

    /// The parameter or buffer `name` of the weights, as an initializer of that name.
    fn tensor(&mut self, name: &str, expected: &[usize]) -> Result<String, Error> {
        let value = self
            .weights
            .param(name)
            .or_else(|| self.weights.buffer(name))
            .ok_or_else(|| Error::Config(format!("the weights have no tensor `{name}`, which the model needs")))?;
        if value.shape() != expected {
            return Err(Error::Config(format!(
                "tensor `{name}` has shape {:?} in the weights, the model needs {expected:?}",
                value.shape()
            )));
        }
        let dims = expected.iter().map(|&d| d as i64).collect();
        Ok(self.constant(name, dims, value.iter().copied().collect()))
    }

    /// The layers of `seq` applied to `x`; returns the last output's name.
    fn sequence(&mut self, seq: &[Layer], mut x: String) -> Result<String, Error> {
        for layer in seq {
            x = self.layer(layer, x)?;
            self.outputs.insert(layer.name.clone(), x.clone());
        }
        Ok(x)
    }

    /// One layer applied to `x`: its nodes and initializers; returns its output.
    fn layer(&mut self, layer: &Layer, x: String) -> Result<String, Error> {
        let name = layer.name.as_str();
        Ok(match &layer.op {
            Op::Conv(c) => {
                let mut inputs = vec![x];
                for p in layer.params() {
                    inputs.push(self.tensor(&p.name, &p.shape)?);
                }
                let mut attrs = window_attrs(&c.window);
                attrs.push(ints("dilations", &c.dilation));
                attrs.push(int("group", c.groups as i64));
                self.node("Conv", name, inputs, attrs)
            }
            Op::MaxPool(w) => self.node("MaxPool", name, vec![x], window_attrs(w)),
            Op::AvgPool(w) => {
                let mut attrs = window_attrs(w);
                attrs.push(int("count_include_pad", 1));
                self.node("AveragePool", name, vec![x], attrs)
            }
            Op::GlobalAvgPool => self.node("GlobalAveragePool", name, vec![x], vec![]),
            Op::Flatten => self.node("Flatten", name, vec![x], vec![int("axis", 1)]),
            Op::Dense(_) => {
                let mut inputs = vec![x];
                for p in layer.params() {
                    inputs.push(self.tensor(&p.name, &p.shape)?);
                }
                self.node("Gemm", name, inputs, vec![int("transB", 1)])
            }
            Op::BatchNorm(b) => {
                let mut inputs = vec![x];
                for p in layer.params().into_iter().chain(layer.buffers()) {
                    inputs.push(self.tensor(&p.name, &p.shape)?);
                }
                // ONNX's momentum weighs the old running value, PyTorch's the new one.
                let attrs = vec![
                    float("epsilon", b.eps as f32),
                    float("momentum", (1.0 - b.momentum) as f32),
                ];
                self.node("BatchNormalization", name, inputs, attrs)
            }
            // Inference graph: dropout is the identity.
            Op::Dropout(_) => x,
            Op::Activation(a) => self.activation(*a, name, x),
            Op::Softmax => self.node("Softmax", name, vec![x], vec![int("axis", 1)]),
            Op::Residual(r) => {
                let body = self.sequence(&r.body, x.clone())?;
                let shortcut = self.sequence(&r.shortcut, x)?;
                self.node("Add", name, vec![body, shortcut], vec![])
            }
            Op::ConvTranspose(t) => {
                let mut inputs = vec![x];
                for p in layer.params() {
                    inputs.push(self.tensor(&p.name, &p.shape)?);
                }
                let attrs = vec![
                    ints("kernel_shape", &t.size),
                    ints("strides", &t.stride),
                    ints("pads", &[t.pad[0], t.pad[1], t.pad[0], t.pad[1]]),
                    ints("output_padding", &t.output_pad),
                    ints("dilations", &t.dilation),
                    int("group", t.groups as i64),
                ];
                self.node("ConvTranspose", name, inputs, attrs)
            }
            Op::GlobalMaxPool => self.node("GlobalMaxPool", name, vec![x], vec![]),
            Op::Upsample(u) => {
                // Resize with scales [1, 1, FH, FW]: nearest is PyTorch's `floor(o / F)`,
                // linear with `pytorch_half_pixel` its `align_corners=False`.
                let scales = self.constant(
                    &format!("{name}.scales"),
                    vec![4],
                    vec![1.0, 1.0, u.factor[0] as f32, u.factor[1] as f32],
                );
                let attrs = if u.bilinear {
                    vec![
                        string("mode", "linear"),
                        string("coordinate_transformation_mode", "pytorch_half_pixel"),
                    ]
                } else {
                    vec![
                        string("mode", "nearest"),
                        string("coordinate_transformation_mode", "asymmetric"),
                        string("nearest_mode", "floor"),
                    ]
                };
                self.node("Resize", name, vec![x, String::new(), scales], attrs)
            }
            Op::Concat(refs) => {
                let mut inputs = vec![x];
                for r in refs {
                    inputs.push(self.output_of(r)?);
                }
                self.node("Concat", name, inputs, vec![int("axis", 1)])
            }
            Op::Add(r) => {
                let other = self.output_of(r)?;
                self.node("Add", name, vec![x, other], vec![])
            }
            Op::Mul(r) => {
                let other = self.output_of(r)?;
                self.node("Mul", name, vec![x, other], vec![])
            }
            Op::From(r) => self.output_of(r)?,
        })
    }

    /// The ONNX value a reference names.
    fn output_of(&self, r: &crate::ir::Ref) -> Result<String, Error> {
        self.outputs.get(&r.name).cloned().ok_or_else(|| {
            Error::Config(format!(
                "the model reads `{}` before any layer produces it (the model IR is inconsistent)",
                r.name
            ))
        })
    }

    /// An activation as its own node(s), named after its layer, in the form its
    /// definition gives ([`Activation::onnx`]).
    fn activation(&mut self, a: Activation, name: &str, x: String) -> String {
        match a.onnx() {
            Onnx::Nothing => x,
            Onnx::Node(op, attrs) => {
                let attrs = attrs.into_iter().map(|(key, v, _)| float(key, v)).collect();
                self.node(op, name, vec![x], attrs)
            }
            Onnx::Clip(min, max) => {
                let lo = self.constant(&format!("{name}.min"), vec![], vec![min]);
                let hi = self.constant(&format!("{name}.max"), vec![], vec![max]);
                self.node("Clip", name, vec![x, lo, hi], vec![])
            }
            Onnx::TimesSigmoid => {
                let s = self.node("Sigmoid", &format!("{name}.sigmoid"), vec![x.clone()], vec![]);
                self.node("Mul", name, vec![x, s], vec![])
            }
            Onnx::ErfGelu => {
                let sqrt2 = self.constant(&format!("{name}.sqrt2"), vec![], vec![std::f32::consts::SQRT_2]);
                let one = self.constant(&format!("{name}.one"), vec![], vec![1.0]);
                let half = self.constant(&format!("{name}.half"), vec![], vec![0.5]);
                let d = self.node("Div", &format!("{name}.div"), vec![x.clone(), sqrt2], vec![]);
                let e = self.node("Erf", &format!("{name}.erf"), vec![d], vec![]);
                let p = self.node("Add", &format!("{name}.add"), vec![e, one], vec![]);
                let m = self.node("Mul", &format!("{name}.mul"), vec![x, p], vec![]);
                self.node("Mul", name, vec![m, half], vec![])
            }
        }
    }
}

/// `kernel_shape`, `strides`, `pads` (ONNX order: every axis's start, then every
/// axis's end) and `ceil_mode` of a window.
fn window_attrs(w: &Window) -> Vec<AttributeProto> {
    let pads = [w.pad_before[0], w.pad_before[1], w.pad_after[0], w.pad_after[1]];
    let mut attrs = vec![
        ints("kernel_shape", &w.size),
        ints("strides", &w.stride),
        ints("pads", &pads),
    ];
    if w.ceil {
        attrs.push(int("ceil_mode", 1));
    }
    attrs
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    }
}

fn ints(name: &str, values: &[usize]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.iter().map(|&v| v as i64).collect(),
        ..Default::default()
    }
}

fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(value.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(value),
        ..Default::default()
    }
}

/// A float tensor of shape `[N, ...shape]`, `N` the dynamic batch axis.
fn value_info(name: &str, shape: Shape) -> ValueInfoProto {
    let batch = Dimension {
        value: Some(dimension::Value::DimParam("N".into())),
        ..Default::default()
    };
    let dims = shape.dims().into_iter().map(|d| Dimension {
        value: Some(dimension::Value::DimValue(d as i64)),
        ..Default::default()
    });
    let tensor = type_proto::Tensor {
        elem_type: Some(DataType::Float as i32),
        shape: Some(TensorShapeProto {
            dim: std::iter::once(batch).chain(dims).collect(),
        }),
    };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        }),
        ..Default::default()
    }
}
