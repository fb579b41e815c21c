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
    /// In order; activation shorthands are separate `Activation` layers here.
    pub layers: Vec<Layer>,
    /// `None` for inference-only models.
    pub train: Option<TrainConfig>,
}

impl Model {
    /// The shape the model produces.
    pub fn output(&self) -> Shape {
        self.layers.last().map_or(self.input, |l| l.output)
    }

    /// Every parameter tensor, in order: `conv1.weight`, `conv1.bias`, ...
    pub fn params(&self) -> Vec<Param> {
        self.layers.iter().flat_map(Layer::params).collect()
    }

    /// How the weights of layer `index` (a conv or dense) are initialized: He normal
    /// when a relu/leaky_relu follows, Xavier uniform otherwise (biases are 0).
    pub fn init_scheme(&self, index: usize) -> InitScheme {
        let layer = &self.layers[index];
        let (fan_in, fan_out) = match (&layer.op, layer.input) {
            (Op::Conv(c), Shape::Image { c: channels, .. }) => {
                let k = c.window.size[0] * c.window.size[1];
                (channels * k, c.filters * k)
            }
            (Op::Dense(d), input) => (input.len(), d.units),
            _ => (0, 0),
        };
        match self.layers.get(index + 1).map(|l| &l.op) {
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

    /// The total number of parameters (as PyTorch counts them).
    pub fn param_count(&self) -> usize {
        self.params().iter().map(|p| p.len()).sum()
    }
}

/// One layer with its concrete input and output shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// `conv1`, `dense2`, `relu1`, or the user's name.
    pub name: String,
    pub op: Op,
    pub input: Shape,
    pub output: Shape,
}

impl Layer {
    /// The layer's parameters: weight then bias, in PyTorch layout.
    pub fn params(&self) -> Vec<Param> {
        let (weight, bias) = match (&self.op, self.input) {
            (Op::Conv(c), Shape::Image { c: channels, .. }) => {
                (vec![c.filters, channels, c.window.size[0], c.window.size[1]], c.filters)
            }
            (Op::Dense(d), input) => (vec![d.units, input.len()], d.units),
            _ => return Vec::new(),
        };
        vec![
            Param {
                name: format!("{}.weight", self.name),
                shape: weight,
            },
            Param {
                name: format!("{}.bias", self.name),
                shape: vec![bias],
            },
        ]
    }

    /// Multiply-adds count as two FLOPs; forward pass, one sample.
    pub fn flops(&self) -> u128 {
        let out = self.output.len() as u128;
        match &self.op {
            Op::Conv(c) => {
                let Shape::Image { c: ic, .. } = self.input else {
                    return 0;
                };
                out * (2 * ic as u128 * c.window.size[0] as u128 * c.window.size[1] as u128)
            }
            Op::Dense(_) => out * 2 * self.input.len() as u128,
            Op::MaxPool(w) | Op::AvgPool(w) => out * (w.size[0] * w.size[1]) as u128,
            Op::GlobalAvgPool => self.input.len() as u128,
            Op::Activation(Activation::Softmax) => 3 * out,
            Op::Activation(_) | Op::Dropout(_) => out,
            Op::Flatten => 0,
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

/// A parameter tensor's name and PyTorch shape.
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

/// What a layer computes.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Conv(Conv),
    MaxPool(Window),
    AvgPool(Window),
    GlobalAvgPool,
    Flatten,
    Dense(Dense),
    /// The drop probability, 0 <= p < 1.
    Dropout(f32),
    Activation(Activation),
}

/// A convolution: `filters` output channels over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    pub filters: usize,
    pub window: Window,
}

/// The sliding window of a conv or pooling layer, per spatial axis `[height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
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
}

/// An elementwise activation, as fused into the layer before it: what the code
/// generator plans and the kernels (`cnnc::compute::Act`) apply. Softmax is not
/// elementwise and is not one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    Identity,
    Relu,
    /// The negative slope, which the checker requires to be >= 0 so that the
    /// derivative can be read from the output.
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Relu,
    Sigmoid,
    Tanh,
    Softmax,
    /// The negative slope.
    LeakyRelu(f32),
}

impl Activation {
    /// The keyword, which is also the prefix of default layer names.
    pub fn keyword(&self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
            Activation::LeakyRelu(_) => "leaky_relu",
        }
    }
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
}

impl TrainConfig {
    /// The learning rate in effect while epoch `epoch` (0-based) trains.
    pub fn learning_rate(&self, epoch: usize) -> f64 {
        self.schedule.learning_rate(self.optimizer.lr(), self.epochs, epoch)
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
