//! The syntax tree: what the user wrote, every node with the byte span it came from.
//! Nothing here is validated beyond the grammar; the checker gives it meaning.

use crate::diag::Span;

/// A value with the span of the text it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// A whole `.cnn` file.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub models: Vec<Model>,
}

/// `model NAME { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub name: Spanned<String>,
    pub input: Spanned<Vec<u64>>,
    /// `normalize mean ... std ...` after the input size.
    pub normalize: Option<Normalize>,
    pub layers: Vec<Layer>,
    pub train: Option<Train>,
    pub span: Span,
}

/// `normalize mean m1 .. mC std s1 .. sC`: the values as written (counted by the checker).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    pub mean: Vec<Spanned<f64>>,
    pub std: Vec<Spanned<f64>>,
    /// The `mean` keyword and the `std` keyword.
    pub mean_keyword: Span,
    pub std_keyword: Span,
    pub span: Span,
}

/// One item of a model or block (a layer, a residual block or a shortcut), with its
/// optional user-given name.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub name: Option<Spanned<String>>,
    pub kind: LayerKind,
    /// The span of the layer's keyword (`conv`, `maxpool`, ...).
    pub keyword: Span,
    /// The span of the whole layer, name included.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LayerKind {
    Conv {
        filters: Spanned<u64>,
        options: Vec<WindowOption>,
        activation: Option<Activation>,
    },
    MaxPool {
        kernel: Spanned<Vec<u64>>,
        options: Vec<WindowOption>,
    },
    AvgPool {
        kernel: Spanned<Vec<u64>>,
        options: Vec<WindowOption>,
    },
    GlobalAvgPool,
    /// v3: `maxpool global`.
    GlobalMaxPool,
    Flatten,
    Dense {
        units: Spanned<u64>,
        /// `bias off`, each with its span (a repeat is an error).
        bias_off: Vec<Span>,
        activation: Option<Activation>,
    },
    BatchNorm {
        options: Vec<BatchNormOption>,
        activation: Option<Activation>,
    },
    Dropout {
        p: Spanned<f64>,
    },
    Activation(Activation),
    /// `residual { items }`, the shortcut (if any) still among the items.
    Residual {
        items: Vec<Layer>,
        /// The closing `}`.
        close: Span,
        activation: Option<Activation>,
    },
    /// `shortcut { items }`: valid only as the last item of a residual block.
    Shortcut {
        items: Vec<Layer>,
    },
    /// v3: `convtranspose F kernel K ...`, with `output_pad` among its options.
    ConvTranspose {
        filters: Spanned<u64>,
        options: Vec<WindowOption>,
        activation: Option<Activation>,
    },
    /// v3: `concat NAME+`.
    Concat(Vec<Spanned<String>>),
    /// v3: `add NAME [ACT]`.
    Add {
        other: Spanned<String>,
        activation: Option<Activation>,
    },
    /// v3: `mul NAME [ACT]`.
    Mul {
        other: Spanned<String>,
        activation: Option<Activation>,
    },
    /// v3: `from NAME`.
    From(Spanned<String>),
    /// v3: `upsample F [nearest|bilinear]`: the factor as written, and whether bilinear.
    Upsample {
        factor: Spanned<Vec<u64>>,
        bilinear: bool,
    },
}

/// `eps E` or `momentum M` of a batchnorm layer; the span covers keyword and value.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormOption {
    pub kind: BatchNormOptionKind,
    pub value: Spanned<f64>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchNormOptionKind {
    Eps,
    Momentum,
}

/// `relu`, `leaky_relu 0.2`, ...; also the shorthand after `conv` and `dense`.
#[derive(Debug, Clone, PartialEq)]
pub struct Activation {
    pub kind: ActivationKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ActivationKind {
    /// An elementwise activation other than leaky_relu, by its word
    /// ([`crate::activation`] defines each).
    Function(crate::activation::Activation),
    /// The negative slope, when given (the checker requires it to be 0 or more).
    LeakyRelu(Option<f64>),
    Softmax,
}

/// An option of a conv or pooling window; the span covers keyword and value.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowOption {
    pub kind: WindowOptionKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WindowOptionKind {
    Size(Spanned<Vec<u64>>),
    Stride(Spanned<Vec<u64>>),
    Pad(Padding),
    Round(Rounding),
    Dilation(Spanned<Vec<u64>>),
    Groups(Spanned<u64>),
    BiasOff,
    /// v3, convtranspose only: `output_pad O` or `OHxOW`.
    OutputPad(Spanned<Vec<u64>>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Padding {
    Same,
    Valid,
    /// `pad 1` or `pad 1x2`.
    Size(Spanned<Vec<u64>>),
    /// `pad top 1 left 2`: each side at most once, checked later.
    Sides(Vec<(Side, Spanned<u64>)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Top,
    Bottom,
    Left,
    Right,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    Floor,
    Ceil,
}

/// `train { ... }`: the items as written, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Train {
    pub items: Vec<TrainItem>,
    pub span: Span,
    pub keyword: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainItem {
    pub kind: TrainItemKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrainItemKind {
    /// The loss and, for cross_entropy, v3's `smoothing S` and `ignore L`.
    Loss(LossKind, LossOptions),
    Optimizer {
        kind: OptimizerKind,
        options: Vec<OptimizerOption>,
    },
    WeightDecay(Spanned<f64>),
    Schedule(Schedule),
    Batch(Spanned<u64>),
    Epochs(Spanned<u64>),
    Validation(Spanned<f64>),
    Seed(Spanned<u64>),
    Augment(Vec<Augmentation>),
    /// v3: `clip_grad_norm X`.
    ClipGradNorm(Spanned<f64>),
    /// v3: `freeze NAME+`.
    Freeze(Vec<Spanned<String>>),
    /// v3: `warmup N [from F]`.
    Warmup {
        epochs: Spanned<u64>,
        from: Option<Spanned<f64>>,
    },
    /// v3: `early_stop P`.
    EarlyStop(Spanned<u64>),
}

/// v3 options of `loss cross_entropy`, each with its value's span.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LossOptions {
    pub smoothing: Option<Spanned<f64>>,
    pub ignore: Option<Spanned<u64>>,
    /// Options given a second time (`smoothing` or `ignore`), with their spans.
    pub repeated: Vec<(&'static str, Span)>,
}

/// One augmentation of `augment`; the span covers its words.
#[derive(Debug, Clone, PartialEq)]
pub struct Augmentation {
    pub kind: AugmentationKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AugmentationKind {
    FlipHorizontal,
    FlipVertical,
    Crop(Spanned<u64>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    CrossEntropy,
    Mse,
    BinaryCrossEntropy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    Sgd,
    Adam,
    AdamW,
}

/// `lr 0.1`, `nesterov`, ...; `value` is `None` only for `nesterov`.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerOption {
    pub name: Spanned<String>,
    pub value: Option<Spanned<f64>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Step { every: Spanned<u64>, gamma: Spanned<f64> },
    Exponential { gamma: Spanned<f64> },
    Cosine { min: Option<Spanned<f64>> },
}
