//! The execution plan of a model: which buffers hold which activations, which
//! layers fuse, and where each parameter sits in the flat parameter buffer.
//! Everything the emitters need, computed once from the IR.

pub use crate::ir::Activation;
use crate::ir::{self, Loss, Op, Shape};

/// The activation a layer can absorb: one whose derivative reads only the output.
fn act_of(a: &Activation) -> Option<Activation> {
    a.derivative_from_output().then_some(*a)
}

/// A window's sizes, as the kernels' `ConvShape`/`PoolShape` want them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowShape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub window: [usize; 2],
    pub stride: [usize; 2],
    pub pad_before: [usize; 2],
    pub pad_after: [usize; 2],
    pub oh: usize,
    pub ow: usize,
}

impl WindowShape {
    /// The fields of a `ConvShape` (with `filters`) or a `PoolShape` (without), as
    /// struct-literal tokens.
    pub fn fields(&self, filters: Option<usize>) -> proc_macro2::TokenStream {
        let WindowShape {
            c,
            h,
            w,
            window: [kh, kw],
            stride: [sh, sw],
            pad_before: [pt, pl],
            pad_after: [pb, pr],
            oh,
            ow,
        } = *self;
        let f = filters.map(|f| quote::quote!(f: #f,));
        quote::quote! {
            c: #c, h: #h, w: #w, #f kh: #kh, kw: #kw, sh: #sh, sw: #sw,
            pt: #pt, pb: #pb, pl: #pl, pr: #pr, oh: #oh, ow: #ow,
        }
    }

    fn new(input: Shape, output: Shape, w: &ir::Window) -> Self {
        let (Shape::Image { c, h, w: width }, Shape::Image { h: oh, w: ow, .. }) = (input, output) else {
            unreachable!("the checker gives windows image shapes")
        };
        WindowShape {
            c,
            h,
            w: width,
            window: w.size,
            stride: w.stride,
            pad_before: w.pad_before,
            pad_after: w.pad_after,
            oh,
            ow,
        }
    }
}

/// What one step computes.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Conv {
        shape: WindowShape,
        filters: usize,
        act: Activation,
    },
    Dense {
        inputs: usize,
        outputs: usize,
        act: Activation,
    },
    MaxPool(WindowShape),
    AvgPool(WindowShape),
    GlobalAvgPool {
        channels: usize,
        area: usize,
    },
    Activation(Activation),
    Softmax {
        features: usize,
    },
    Dropout {
        p: f32,
    },
}

/// One step: a layer, perhaps with its activation fused.
#[derive(Debug, Clone)]
pub struct Step {
    pub kind: Kind,
    /// The IR layer names this step covers, for comments and function names.
    pub name: String,
    pub input: usize,
    pub output: usize,
    /// Indices into `Plan::params` of the weight and bias.
    pub params: Option<(usize, usize)>,
}

/// A parameter tensor in the flat buffer.
#[derive(Debug, Clone)]
pub struct ParamSlot {
    pub name: String,
    pub offset: usize,
    pub shape: Vec<usize>,
    /// The IR layer it belongs to, for initialization.
    pub layer: usize,
}

impl ParamSlot {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

/// How the loss meets the last layers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossPlan {
    /// Softmax + cross-entropy: the gradient `p - onehot` goes into the logits' buffer.
    CrossEntropy {
        logits: usize,
        probs: usize,
        classes: usize,
    },
    /// Sigmoid + binary cross-entropy: `p - t` into the logits' buffer.
    BinaryCrossEntropy { logits: usize, probs: usize },
    /// Mean squared error on the output buffer.
    Mse { output: usize },
}

/// The whole plan of one model.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Per-sample length of each activation buffer; buffer 0 is the input.
    pub buffers: Vec<usize>,
    pub steps: Vec<Step>,
    pub params: Vec<ParamSlot>,
    pub param_count: usize,
    pub loss: Option<LossPlan>,
    /// Samples per chunk: the declared batch size.
    pub batch: usize,
    /// The buffer holding the model's output.
    pub output: usize,
}

/// Samples per chunk for models without a train block.
pub const INFERENCE_BATCH: usize = 32;

impl Plan {
    pub fn new(model: &ir::Model) -> Plan {
        let mut buffers = vec![model.input.len()];
        let mut steps: Vec<Step> = Vec::new();
        let mut params = Vec::new();
        let mut offset = 0;
        let mut current = 0;
        let last = model.layers.len().saturating_sub(1);
        let loss = model.train.as_ref().map(|t| t.loss);
        let mut i = 0;
        while i < model.layers.len() {
            let layer = &model.layers[i];
            // Fuse a following elementwise activation, unless it is the final sigmoid that
            // binary cross-entropy needs to see separately.
            let fused = model.layers.get(i + 1).and_then(|next| match &next.op {
                Op::Activation(a) if !(i + 1 == last && loss == Some(Loss::BinaryCrossEntropy)) => act_of(a),
                _ => None,
            });
            let mut name = layer.name.clone();
            let kind = match &layer.op {
                Op::Conv(c) => Kind::Conv {
                    shape: WindowShape::new(layer.input, layer.output, &c.window),
                    filters: c.filters,
                    act: fused.unwrap_or(Activation::Identity),
                },
                Op::Dense(d) => Kind::Dense {
                    inputs: layer.input.len(),
                    outputs: d.units,
                    act: fused.unwrap_or(Activation::Identity),
                },
                Op::MaxPool(w) => Kind::MaxPool(WindowShape::new(layer.input, layer.output, w)),
                Op::AvgPool(w) => Kind::AvgPool(WindowShape::new(layer.input, layer.output, w)),
                Op::GlobalAvgPool => {
                    let Shape::Image { c, h, w } = layer.input else {
                        unreachable!("checked")
                    };
                    Kind::GlobalAvgPool {
                        channels: c,
                        area: h * w,
                    }
                }
                Op::Flatten => {
                    i += 1;
                    continue;
                }
                Op::Dropout(p) => Kind::Dropout { p: *p },
                Op::Softmax => Kind::Softmax {
                    features: layer.input.len(),
                },
                Op::Activation(a) => Kind::Activation(*a),
                Op::BatchNorm(_) | Op::Residual(_) => todo!("v2 code generation"),
            };
            let has_params = matches!(kind, Kind::Conv { .. } | Kind::Dense { .. });
            let fuses = has_params && fused.is_some();
            if fuses {
                name = format!("{name}+{}", model.layers[i + 1].name);
            }
            let param_ids = has_params.then(|| {
                let first = params.len();
                for p in layer.params() {
                    let len: usize = p.shape.iter().product();
                    params.push(ParamSlot {
                        name: p.name,
                        offset,
                        shape: p.shape,
                        layer: i,
                    });
                    offset += len;
                }
                (first, first + 1)
            });
            buffers.push(layer.output.len());
            let output = buffers.len() - 1;
            steps.push(Step {
                kind,
                name,
                input: current,
                output,
                params: param_ids,
            });
            current = output;
            i += if fuses { 2 } else { 1 };
        }
        let loss = model.train.as_ref().map(|t| match t.loss {
            Loss::CrossEntropy => {
                let softmax = &steps[steps.len() - 1];
                LossPlan::CrossEntropy {
                    logits: softmax.input,
                    probs: softmax.output,
                    classes: buffers[softmax.output],
                }
            }
            Loss::BinaryCrossEntropy => {
                let sigmoid = &steps[steps.len() - 1];
                LossPlan::BinaryCrossEntropy {
                    logits: sigmoid.input,
                    probs: sigmoid.output,
                }
            }
            Loss::Mse => LossPlan::Mse { output: current },
        });
        Plan {
            buffers,
            steps,
            params,
            param_count: offset,
            loss,
            batch: model.train.as_ref().map_or(INFERENCE_BATCH, |t| t.batch),
            output: current,
        }
    }

    /// The step whose backward pass the loss replaces (the fused softmax or sigmoid).
    pub fn loss_step(&self) -> Option<usize> {
        match self.loss? {
            LossPlan::CrossEntropy { .. } | LossPlan::BinaryCrossEntropy { .. } => Some(self.steps.len() - 1),
            LossPlan::Mse { .. } => None,
        }
    }
}
