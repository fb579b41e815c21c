//! The checked model: every default filled in, every shape known, no spans.
//! Code generation and the interpreter read only this.

/// The shape of one sample's activations (no batch axis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// Channels x height x width.
    Image { c: usize, h: usize, w: usize },
    /// A feature vector.
    Vector(usize),
}

impl Shape {
    /// The number of values in one sample.
    pub fn len(&self) -> usize {
        match *self {
            Shape::Image { c, h, w } => c * h * w,
            Shape::Vector(n) => n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The channels of an image, the features of a vector (what batchnorm
    /// normalizes over).
    pub fn channels(&self) -> usize {
        match *self {
            Shape::Image { c, .. } => c,
            Shape::Vector(n) => n,
        }
    }

    /// The dimensions, as in PyTorch without the batch axis.
    pub fn dims(&self) -> Vec<usize> {
        match *self {
            Shape::Image { c, h, w } => vec![c, h, w],
            Shape::Vector(n) => vec![n],
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::Image { c, h, w } => write!(f, "{c}x{h}x{w}"),
            Shape::Vector(n) => write!(f, "{n}"),
        }
    }
}

/// A checked model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub name: String,
    pub input: Shape,
    /// `input ... normalize mean ... std ...`: applied to every sample before the
    /// first layer, in training and inference alike.
    pub normalize: Option<Normalize>,
    /// The top-level sequence, in order; activation shorthands are separate
    /// `Activation` layers here (after a residual block: the layer after it).
    pub layers: Vec<Layer>,
    /// `None` for inference-only models.
    pub train: Option<TrainConfig>,
}

/// Per-channel input normalization, `(x - mean) / std` (torchvision's `Normalize`).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    /// One per input channel.
    pub mean: Vec<f32>,
    /// One per input channel, never 0.
    pub std: Vec<f32>,
}

impl Model {
    /// The shape the model produces.
    pub fn output(&self) -> Shape {
        self.layers.last().map_or(self.input, |l| l.output)
    }

    /// Every parameter tensor, in order: `conv1.weight`, `conv1.bias`, ...
    /// (a residual block's body, then its shortcut).
    pub fn params(&self) -> Vec<Param> {
        walk(&self.layers).iter().flat_map(|l| l.params()).collect()
    }

    /// Every buffer (batchnorm running statistics), in order:
    /// `batchnorm1.running_mean`, `batchnorm1.running_var`, ...
    pub fn buffers(&self) -> Vec<Param> {
        walk(&self.layers).iter().flat_map(|l| l.buffers()).collect()
    }

    /// Every layer, depth first: a residual block, then its body, then its shortcut.
    pub fn all_layers(&self) -> Vec<&Layer> {
        walk(&self.layers)
    }

    /// The total number of trainable parameters (as PyTorch's `parameters()`).
    pub fn param_count(&self) -> usize {
        self.params().iter().map(|p| p.len()).sum()
    }

    /// Whether any layer keeps batch statistics (training then needs the whole
    /// minibatch at each batchnorm).
    pub fn has_batchnorm(&self) -> bool {
        walk(&self.layers).iter().any(|l| matches!(l.op, Op::BatchNorm(_)))
    }
}

/// Every layer of `seq`, depth first (a block before its body and shortcut).
fn walk(seq: &[Layer]) -> Vec<&Layer> {
    let mut out = Vec::new();
    for layer in seq {
        out.push(layer);
        if let Op::Residual(r) = &layer.op {
            out.extend(walk(&r.body));
            out.extend(walk(&r.shortcut));
        }
    }
    out
}

/// How the weights of the conv or dense layer `seq[index]` are initialized: He
/// normal when its output reaches a relu/leaky_relu through nothing but batchnorm
/// layers in the same sequence, Xavier uniform otherwise (the last layer of a
/// residual body gets Xavier: the add comes first). Biases are 0.
///
/// v3: a join (`add`, `concat`, `mul`, `upsample`) in between, or a second reader
/// (a reference by name to the layer or to a batchnorm on the way), gives Xavier.
/// A transposed convolution's fan-in is PyTorch's, `F/G·KH·KW`.
pub fn init_scheme(seq: &[Layer], index: usize) -> InitScheme {
    let layer = &seq[index];
    let (fan_in, fan_out) = match (&layer.op, layer.input) {
        (Op::Conv(c), Shape::Image { c: channels, .. }) => {
            let k = c.window.size[0] * c.window.size[1];
            (channels / c.groups.max(1) * k, c.filters / c.groups.max(1) * k)
        }
        (Op::ConvTranspose(t), Shape::Image { c: channels, .. }) => {
            let k = t.size[0] * t.size[1];
            (t.filters / t.groups.max(1) * k, channels / t.groups.max(1) * k)
        }
        (Op::Dense(d), input) => (input.len(), d.units),
        _ => (0, 0),
    };
    let later = &seq[index + 1..];
    let mut refs = Vec::new();
    references(later, &mut refs);
    let read_twice = |name: &str| refs.iter().any(|r| r.name == name);
    let through_batchnorm = later.iter().take_while(|l| matches!(l.op, Op::BatchNorm(_)));
    if read_twice(&layer.name) || through_batchnorm.clone().any(|l| read_twice(&l.name)) {
        return InitScheme::XavierUniform { fan_in, fan_out };
    }
    let next = later.iter().find(|l| !matches!(l.op, Op::BatchNorm(_)));
    match next.map(|l| &l.op) {
        Some(Op::Activation(Activation::Relu)) => InitScheme::HeNormal {
            fan_in,
            negative_slope: 0.0,
        },
        Some(Op::Activation(Activation::LeakyRelu(a))) => InitScheme::HeNormal {
            fan_in,
            negative_slope: *a,
        },
        _ => InitScheme::XavierUniform { fan_in, fan_out },
    }
}

/// Every reference the layers of `seq` make (inside blocks too), in order.
pub fn references<'a>(seq: &'a [Layer], out: &mut Vec<&'a Ref>) {
    for layer in seq {
        match &layer.op {
            Op::Residual(r) => {
                references(&r.body, out);
                references(&r.shortcut, out);
            }
            Op::Concat(refs) => out.extend(refs),
            Op::Add(r) | Op::Mul(r) | Op::From(r) => out.push(r),
            Op::Conv(_)
            | Op::MaxPool(_)
            | Op::AvgPool(_)
            | Op::GlobalAvgPool
            | Op::Flatten
            | Op::Dense(_)
            | Op::BatchNorm(_)
            | Op::Dropout(_)
            | Op::Activation(_)
            | Op::Softmax
            | Op::ConvTranspose(_)
            | Op::GlobalMaxPool
            | Op::Upsample(_) => {}
        }
    }
}

/// One layer with its concrete input and output shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// The full, dotted name: `conv1`, `residual1.conv2`, `relu1`, or the user's name.
    pub name: String,
    pub op: Op,
    pub input: Shape,
    pub output: Shape,
}

impl Layer {
    /// The layer's own trainable parameters (not those inside a residual block):
    /// weight then bias, in PyTorch layout.
    pub fn params(&self) -> Vec<Param> {
        let param = |suffix: &str, shape: Vec<usize>| Param {
            name: format!("{}.{suffix}", self.name),
            shape,
        };
        match (&self.op, self.input) {
            (Op::Conv(c), Shape::Image { c: channels, .. }) => {
                let weight = vec![
                    c.filters,
                    channels / c.groups.max(1),
                    c.window.size[0],
                    c.window.size[1],
                ];
                let mut out = vec![param("weight", weight)];
                if c.bias {
                    out.push(param("bias", vec![c.filters]));
                }
                out
            }
            (Op::ConvTranspose(t), Shape::Image { c: channels, .. }) => {
                let weight = vec![channels, t.filters / t.groups.max(1), t.size[0], t.size[1]];
                let mut out = vec![param("weight", weight)];
                if t.bias {
                    out.push(param("bias", vec![t.filters]));
                }
                out
            }
            (Op::Dense(d), input) => {
                let mut out = vec![param("weight", vec![d.units, input.len()])];
                if d.bias {
                    out.push(param("bias", vec![d.units]));
                }
                out
            }
            (Op::BatchNorm(_), input) => {
                let c = input.channels();
                vec![param("weight", vec![c]), param("bias", vec![c])]
            }
            _ => Vec::new(),
        }
    }

    /// The layer's own buffers: batchnorm's `running_mean` and `running_var`.
    pub fn buffers(&self) -> Vec<Param> {
        match self.op {
            Op::BatchNorm(_) => ["running_mean", "running_var"]
                .map(|b| Param {
                    name: format!("{}.{b}", self.name),
                    shape: vec![self.input.channels()],
                })
                .to_vec(),
            _ => Vec::new(),
        }
    }

    /// Multiply-adds count as two FLOPs; forward pass, one sample (a residual
    /// block counts its add only: its layers are counted on their own).
    pub fn flops(&self) -> u128 {
        let out = self.output.len() as u128;
        match &self.op {
            Op::Conv(c) => {
                let Shape::Image { c: ic, .. } = self.input else {
                    return 0;
                };
                let per_group = (ic / c.groups.max(1)) as u128;
                out * (2 * per_group * c.window.size[0] as u128 * c.window.size[1] as u128)
            }
            Op::Dense(_) => out * 2 * self.input.len() as u128,
            Op::MaxPool(w) | Op::AvgPool(w) => out * (w.size[0] * w.size[1]) as u128,
            Op::GlobalAvgPool => self.input.len() as u128,
            Op::Softmax => 3 * out,
            Op::BatchNorm(_) => 2 * out,
            Op::ConvTranspose(t) => {
                let Shape::Image { c: ic, h, w } = self.input else {
                    return 0;
                };
                let per_group = (t.filters / t.groups.max(1)) as u128;
                (ic * h * w) as u128 * 2 * per_group * (t.size[0] * t.size[1]) as u128
            }
            Op::GlobalMaxPool => self.input.len() as u128,
            Op::Upsample(u) if u.bilinear => 4 * out,
            Op::Activation(_) | Op::Dropout(_) | Op::Residual(_) | Op::Add(_) | Op::Mul(_) | Op::Upsample(_) => out,
            Op::Flatten | Op::Concat(_) | Op::From(_) => 0,
        }
    }
}

/// The spec's weight initialization for one layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InitScheme {
    /// Kaiming normal: N(0, 2 / ((1 + a^2) * fan_in)).
    HeNormal { fan_in: usize, negative_slope: f32 },
    /// Glorot uniform: U(-b, b), b = sqrt(6 / (fan_in + fan_out)).
    XavierUniform { fan_in: usize, fan_out: usize },
}

/// A parameter or buffer tensor's name and PyTorch shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub shape: Vec<usize>,
}

impl Param {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a layer computes. Every stage matches on this exhaustively, so a new
/// kind is a compile error everywhere it needs code.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Conv(Conv),
    MaxPool(Window),
    AvgPool(Window),
    GlobalAvgPool,
    Flatten,
    Dense(Dense),
    /// `BatchNorm2d` on an image, `BatchNorm1d` on a vector.
    BatchNorm(BatchNorm),
    /// The drop probability, 0 <= p < 1.
    Dropout(f32),
    /// An elementwise activation.
    Activation(Activation),
    /// Softmax over each sample's feature vector.
    Softmax,
    /// `body(x) + shortcut(x)`.
    Residual(Residual),
    /// v3: a transposed convolution (`ConvTranspose2d`).
    ConvTranspose(ConvTranspose),
    /// v3: `maxpool global` (`AdaptiveMaxPool2d(1)`).
    GlobalMaxPool,
    /// v3: `upsample F`, nearest or bilinear (`align_corners=False`).
    Upsample(Upsample),
    /// v3: the channels of the input, then of each referenced output (vectors
    /// end to end).
    Concat(Vec<Ref>),
    /// v3: the input plus the referenced output (same shapes).
    Add(Ref),
    /// v3: the input times the referenced output, elementwise; a Cx1x1 side is
    /// broadcast over the other's HxW.
    Mul(Ref),
    /// v3: `from NAME`: the output is the referenced output; the input is not read.
    From(Ref),
}

/// v3: an earlier output a join reads: the IR name of the layer that produced it
/// (the last layer of the item, its activation shorthand included), or
/// [`Ref::INPUT`] for the model's input after `normalize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub name: String,
    pub shape: Shape,
    /// The name as the model's text writes it (`e1`), for summaries and drawings.
    pub written: String,
}

impl Ref {
    /// The name the model's input goes by (no item may take it).
    pub const INPUT: &'static str = "input";
}

/// v3: a transposed convolution; its weight is `[C, F/G, KH, KW]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvTranspose {
    pub filters: usize,
    pub size: [usize; 2],
    pub stride: [usize; 2],
    /// Symmetric padding per axis, removed from both sides of the output.
    pub pad: [usize; 2],
    /// Added to the bottom and right of the output, smaller than the stride or
    /// the dilation.
    pub output_pad: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub bias: bool,
}

/// v3: upsampling by whole factors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upsample {
    /// `[FH, FW]`, each at least 1.
    pub factor: [usize; 2],
    /// `bilinear` (`align_corners=False`); nearest otherwise.
    pub bilinear: bool,
}

/// A convolution: `filters` output channels over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    pub filters: usize,
    pub window: Window,
    /// The spacing of the window's taps per axis `[height, width]`; 1 is a plain
    /// convolution. The window spans `dilation * (size - 1) + 1` cells.
    pub dilation: [usize; 2],
    /// Input and output channels split into this many independent groups
    /// (`groups == channels` is a depthwise convolution).
    pub groups: usize,
    /// Whether the layer has a bias (`bias off` clears it).
    pub bias: bool,
}

/// The sliding window of a conv or pooling layer, per spatial axis `[height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The window's size in taps (the `kernel` option).
    pub size: [usize; 2],
    pub stride: [usize; 2],
    /// Padding before each axis (top, left).
    pub pad_before: [usize; 2],
    /// Padding after each axis (bottom, right).
    pub pad_after: [usize; 2],
    /// `round ceil`: the last partial window is kept (pooling only).
    pub ceil: bool,
}

/// A fully connected layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dense {
    pub units: usize,
    /// Whether the layer has a bias (`bias off` clears it).
    pub bias: bool,
}

/// Batch normalization's options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNorm {
    /// Added to the variance, > 0 (default 1e-5).
    pub eps: f64,
    /// The running statistics' update weight, in [0, 1] (default 0.1).
    pub momentum: f64,
}

/// A residual block: the output is `body(x) + shortcut(x)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Residual {
    pub body: Vec<Layer>,
    /// Empty for the identity shortcut.
    pub shortcut: Vec<Layer>,
}

/// An elementwise activation, defined with everything about it in
/// [`crate::activation`].
pub use crate::activation::Activation;

/// A per-sample augmentation of the training inputs (`augment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Augment {
    /// Mirror left-right with probability 1/2.
    FlipHorizontal,
    /// Mirror top-bottom with probability 1/2.
    FlipVertical,
    /// Pad with this many zeros on every side and take a random window of the
    /// input's size (`RandomCrop(size, padding)`).
    Crop(usize),
}

/// The training block, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub loss: Loss,
    pub optimizer: Optimizer,
    /// L2 for sgd and adam; decoupled for adamw.
    pub weight_decay: f64,
    pub schedule: Schedule,
    pub batch: usize,
    pub epochs: usize,
    /// The held-out fraction of the training set.
    pub validation: Option<f64>,
    pub seed: u64,
    /// Applied in order to each training sample in `fit` (v2 `augment`).
    pub augment: Vec<Augment>,
    /// v3 `loss cross_entropy smoothing S`: label smoothing, 0 without it.
    pub smoothing: f64,
    /// v3 `loss cross_entropy ignore L`: the label whose samples or positions do
    /// not count (`ignore_index`).
    pub ignore: Option<usize>,
    /// v3 `clip_grad_norm X`: the largest global L2 norm of a step's gradients.
    pub clip_grad_norm: Option<f64>,
    /// v3 `freeze NAME+`: the top-scope items whose parameters do not train.
    pub freeze: Vec<String>,
    /// v3 `warmup N [from F]`.
    pub warmup: Option<Warmup>,
    /// v3 `early_stop P`: the patience, in epochs without a better validation loss.
    pub early_stop: Option<usize>,
}

/// v3 `warmup N from F`: for epochs `e < N` the rate is `lr·(F + (1 - F)·e/N)`,
/// then the schedule runs over the remaining `epochs - N` epochs (PyTorch's
/// `SequentialLR([LinearLR(F, total_iters=N), SCHEDULE], milestones=[N])`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warmup {
    pub epochs: usize,
    pub from: f64,
}

/// The learning rate in effect while `epoch` (0-based) trains, of a run of
/// `epochs` epochs: the warmup's ramp, then the schedule from its own epoch 0
/// over the epochs left. The one formula of the checker's config and the driver.
pub fn learning_rate(lr: f64, schedule: Schedule, warmup: Option<Warmup>, epochs: usize, epoch: usize) -> f64 {
    match warmup {
        Some(w) if epoch < w.epochs => lr * (w.from + (1.0 - w.from) * epoch as f64 / w.epochs as f64),
        Some(w) => schedule.learning_rate(lr, epochs.saturating_sub(w.epochs), epoch - w.epochs),
        None => schedule.learning_rate(lr, epochs, epoch),
    }
}

impl TrainConfig {
    /// Whether parameter `name` (`stem.weight`, `block1.conv1.bias`) belongs to a
    /// frozen item.
    pub fn is_frozen(&self, name: &str) -> bool {
        frozen_by(&self.freeze, name)
    }
}

/// Whether parameter `name` belongs to one of the `freeze` items: its name starts
/// with the item's and a dot (`stem.weight` for `stem`, `block1.conv1.bias` for
/// `block1`). The one rule for the checker's config and the driver's spec.
pub fn frozen_by<S: AsRef<str>>(items: &[S], name: &str) -> bool {
    items.iter().any(|item| {
        name.strip_prefix(item.as_ref())
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

impl TrainConfig {
    /// The learning rate in effect while epoch `epoch` (0-based) trains.
    pub fn learning_rate(&self, epoch: usize) -> f64 {
        learning_rate(self.optimizer.lr(), self.schedule, self.warmup, self.epochs, epoch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Fused with the final softmax; targets are class labels.
    CrossEntropy,
    /// Mean of squared errors over every output element.
    Mse,
    /// Fused with the final sigmoid; targets in [0, 1].
    BinaryCrossEntropy,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    Sgd { lr: f64, momentum: f64, nesterov: bool },
    Adam { lr: f64, beta1: f64, beta2: f64, eps: f64 },
    AdamW { lr: f64, beta1: f64, beta2: f64, eps: f64 },
}

impl Optimizer {
    /// The base learning rate.
    pub fn lr(&self) -> f64 {
        match *self {
            Optimizer::Sgd { lr, .. } | Optimizer::Adam { lr, .. } | Optimizer::AdamW { lr, .. } => lr,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    Constant,
    /// `StepLR`: times `gamma` every `every` epochs.
    Step {
        every: usize,
        gamma: f64,
    },
    /// `ExponentialLR`.
    Exponential {
        gamma: f64,
    },
    /// `CosineAnnealingLR` with `T_max = epochs`.
    Cosine {
        min: f64,
    },
}

impl Schedule {
    /// The learning rate in effect while `epoch` (0-based) trains, from the base
    /// rate `lr` over `epochs` epochs (PyTorch's closed forms).
    pub fn learning_rate(&self, lr: f64, epochs: usize, epoch: usize) -> f64 {
        match *self {
            Schedule::Constant => lr,
            Schedule::Step { every, gamma } => lr * gamma.powf((epoch / every.max(1)) as f64),
            Schedule::Exponential { gamma } => lr * gamma.powf(epoch as f64),
            Schedule::Cosine { min } => {
                let t = epoch as f64 / epochs.max(1) as f64;
                min + (lr - min) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0
            }
        }
    }
}
