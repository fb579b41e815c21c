//! Builds v2 models as IR directly, without the parser: each call appends one layer
//! to a sequence with the spec's default name (`conv1`, `residual1.batchnorm2`,
//! `residual1.shortcut.conv1`) and its output shape (floor rounding).
#![allow(dead_code)]

use cnnc::ir::{self, Activation, Layer, Op, Shape, Window};
use std::collections::BTreeMap;

/// One sequence of layers (the model's, or a residual block's body or shortcut).
pub struct Seq {
    prefix: String,
    shape: Shape,
    pub layers: Vec<Layer>,
    counts: BTreeMap<&'static str, usize>,
}

impl Seq {
    pub fn new(input: Shape) -> Seq {
        Seq::scoped("", input)
    }

    fn scoped(prefix: &str, input: Shape) -> Seq {
        Seq {
            prefix: prefix.to_string(),
            shape: input,
            layers: Vec::new(),
            counts: BTreeMap::new(),
        }
    }

    /// The output shape so far.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    fn name(&mut self, kind: &'static str) -> String {
        let count = self.counts.entry(kind).or_insert(0);
        *count += 1;
        format!("{}{kind}{count}", self.prefix)
    }

    fn push(&mut self, kind: &'static str, op: Op, output: Shape) -> &mut Seq {
        let name = self.name(kind);
        self.layers.push(Layer {
            name,
            op,
            input: self.shape,
            output,
        });
        self.shape = output;
        self
    }

    /// `conv F kernel K stride S pad P dilation D groups G [bias off]`, square.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        filters: usize,
        k: usize,
        stride: usize,
        pad: usize,
        dilation: usize,
        groups: usize,
        bias: bool,
    ) -> &mut Seq {
        let Shape::Image { h, w, .. } = self.shape else {
            panic!("conv needs an image")
        };
        let span = dilation * (k - 1) + 1;
        let out = |n: usize| (n + 2 * pad - span) / stride + 1;
        let window = Window {
            size: [k, k],
            stride: [stride, stride],
            pad_before: [pad, pad],
            pad_after: [pad, pad],
            ceil: false,
        };
        let op = Op::Conv(ir::Conv {
            filters,
            window,
            dilation: [dilation, dilation],
            groups,
            bias,
        });
        self.push(
            "conv",
            op,
            Shape::Image {
                c: filters,
                h: out(h),
                w: out(w),
            },
        )
    }

    pub fn dense(&mut self, units: usize, bias: bool) -> &mut Seq {
        self.push("dense", Op::Dense(ir::Dense { units, bias }), Shape::Vector(units))
    }

    pub fn batchnorm(&mut self) -> &mut Seq {
        let shape = self.shape;
        self.push(
            "batchnorm",
            Op::BatchNorm(ir::BatchNorm {
                eps: 1e-5,
                momentum: 0.1,
            }),
            shape,
        )
    }

    pub fn act(&mut self, act: Activation) -> &mut Seq {
        let shape = self.shape;
        self.push(act.keyword(), Op::Activation(act), shape)
    }

    pub fn softmax(&mut self) -> &mut Seq {
        let shape = self.shape;
        self.push("softmax", Op::Softmax, shape)
    }

    pub fn flatten(&mut self) -> &mut Seq {
        let n = self.shape.len();
        self.push("flatten", Op::Flatten, Shape::Vector(n))
    }

    pub fn global_avgpool(&mut self) -> &mut Seq {
        let c = self.shape.channels();
        self.push("avgpool", Op::GlobalAvgPool, Shape::Image { c, h: 1, w: 1 })
    }

    /// `residual { body [shortcut { shortcut }] }`; `shortcut` adds nothing for the
    /// identity.
    pub fn residual(&mut self, body: impl FnOnce(&mut Seq), shortcut: impl FnOnce(&mut Seq)) -> &mut Seq {
        let count = self.counts.get("residual").copied().unwrap_or(0) + 1;
        let block = format!("{}residual{count}.", self.prefix);
        let mut b = Seq::scoped(&block, self.shape);
        body(&mut b);
        let mut s = Seq::scoped(&format!("{block}shortcut."), self.shape);
        shortcut(&mut s);
        assert_eq!(b.shape, s.shape, "body and shortcut shapes");
        let output = b.shape;
        self.push(
            "residual",
            Op::Residual(ir::Residual {
                body: b.layers,
                shortcut: s.layers,
            }),
            output,
        )
    }
}

/// A model with a train block: `loss`, sgd, the given batch limit.
pub fn model(input: Shape, seq: Seq, loss: ir::Loss, batch: usize) -> ir::Model {
    ir::Model {
        name: "M".to_string(),
        input,
        normalize: None,
        layers: seq.layers,
        train: Some(ir::TrainConfig {
            loss,
            optimizer: ir::Optimizer::Sgd {
                lr: 0.1,
                momentum: 0.0,
                nesterov: false,
            },
            weight_decay: 0.0,
            schedule: ir::Schedule::Constant,
            batch,
            epochs: 1,
            validation: None,
            seed: 0,
            augment: Vec::new(),
            smoothing: 0.0,
            ignore: None,
            clip_grad_norm: None,
            warmup: None,
            early_stop: None,
            freeze: Vec::new(),
        }),
    }
}
