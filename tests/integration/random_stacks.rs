//! Random layer stacks, from the checker to the interpreter.
//!
//! - `valid_stacks_*`: a generator that knows the spec's shape rules writes random
//!   VALID models (every layer kind, every padding form including asymmetric and
//!   `pad same`, rectangular kernels and strides, `round floor|ceil`, activation
//!   shorthands, named layers, an optional train block whose loss suits the output)
//!   together with the shape of every layer. The checker must accept each one with
//!   exactly those shapes and parameter shapes; the interpreter must predict a random
//!   batch with the output shape the checker computed and, with a train block, return
//!   gradients with the parameter shapes of the IR.
//! - `loose_stacks_*`: stacks written without regard to shapes, most of them wrong;
//!   whatever the checker accepts runs in the interpreter with the checked shapes.
//! - `mutated_*`: token-level mutations that `tests/integration/no_panic.rs` does not make
//!   (duplicate a token, swap two tokens, numbers set to 0 or to huge values, junk
//!   inserted) of generated and example models: an error located in the source, or
//!   a model that runs in the interpreter, never a panic.

use cnnc::interp::Interpreter;
use cnnc::ir::{self, Shape};
use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::{Model, Target, Train};
use proptest::prelude::*;

use crate::common;
use common::EXAMPLE_MODELS as EXAMPLES;

// ---------------------------------------------------------------------------
// Deterministic values for batches and targets.

/// A small xorshift stream: the batch values come from the case's seed.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// In [-1, 1).
    fn value(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn tensor(&mut self, shape: &[usize]) -> ArrayD<f32> {
        let n = shape.iter().product();
        let values = (0..n).map(|_| self.value()).collect();
        ArrayD::from_shape_vec(IxDyn(shape), values).expect("values fill the shape")
    }
}

fn batch_shape(n: usize, sample: Shape) -> Vec<usize> {
    std::iter::once(n).chain(sample.dims()).collect()
}

/// Predicts a random batch of `n` and, with a train block, takes gradients and one
/// training step: every shape must be the one the checker computed. `finite`: the
/// values must be finite too (not so for mutants, whose huge-but-valid numbers, a
/// leaky_relu slope of 1e38, may overflow).
fn run_in_interpreter(source: &str, model: &ir::Model, n: usize, seed: u64, finite: bool) {
    let mut m = Interpreter::from_source(source, &model.name, seed).unwrap_or_else(|e| panic!("{e}\n{source}"));
    assert_eq!(m.input_shape(), model.input.dims().as_slice(), "{source}");
    assert_eq!(m.output_shape(), model.output().dims().as_slice(), "{source}");
    let mut stream = Stream(seed | 1);
    let x = stream.tensor(&batch_shape(n, model.input));
    let y = m.predict(x.view()).unwrap_or_else(|e| panic!("predict: {e}\n{source}"));
    assert_eq!(y.shape(), batch_shape(n, model.output()).as_slice(), "{source}");
    assert!(
        !finite || y.iter().all(|v| v.is_finite()),
        "non-finite prediction\n{source}"
    );

    let params = model.params();
    let names: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
    assert_eq!(m.param_names(), names, "{source}");
    for p in &params {
        let value = m.param(&p.name).expect("every IR parameter exists");
        assert_eq!(value.shape(), p.shape.as_slice(), "{}\n{source}", p.name);
    }

    let Some(train) = &model.train else { return };
    let labels: Array1<usize>;
    let maps: cnnc::ndarray::Array3<usize>;
    let values: ArrayD<f32>;
    let target = match (train.loss, model.output()) {
        // v3: softmax over the channels of an image output, a label per position.
        (ir::Loss::CrossEntropy, Shape::Image { c, h, w }) => {
            maps = cnnc::ndarray::Array3::from_shape_fn((n, h, w), |_| stream.next() as usize % c);
            Target::LabelMaps(maps.view())
        }
        (ir::Loss::CrossEntropy, _) => {
            let classes = model.output().len();
            labels = (0..n).map(|_| stream.next() as usize % classes).collect();
            Target::Labels(labels.view())
        }
        (ir::Loss::Mse, _) => {
            values = stream.tensor(&batch_shape(n, model.output()));
            Target::Values(values.view())
        }
        (ir::Loss::BinaryCrossEntropy, _) => {
            values = stream.tensor(&batch_shape(n, model.output())).mapv(|v| (v + 1.0) / 2.0);
            Target::Values(values.view())
        }
    };
    let g = m
        .gradients(x.view(), target.clone())
        .unwrap_or_else(|e| panic!("gradients: {e}\n{source}"));
    assert!(!finite || g.loss.is_finite(), "loss {}\n{source}", g.loss);
    assert_eq!(g.input.shape(), x.shape(), "{source}");
    let got: Vec<(String, Vec<usize>)> = g.params.iter().map(|(n, a)| (n.clone(), a.shape().to_vec())).collect();
    let want: Vec<(String, Vec<usize>)> = params.iter().map(|p| (p.name.clone(), p.shape.clone())).collect();
    assert_eq!(got, want, "{source}");
    // Dropout draws new masks, so the loss may differ from the one above.
    let loss = m
        .train_step(x.view(), target)
        .unwrap_or_else(|e| panic!("train_step: {e}\n{source}"));
    assert!(!finite || loss.is_finite(), "train_step loss {loss}\n{source}");
}

/// Every layer's input is the previous layer's output.
fn assert_chained(model: &ir::Model) {
    let mut previous = model.input;
    for layer in &model.layers {
        assert_eq!(layer.input, previous, "{}: input of {}", model.name, layer.name);
        previous = layer.output;
    }
    assert_eq!(model.output(), previous);
}

// ---------------------------------------------------------------------------
// The generator of valid stacks.

/// The random numbers one layer is made from; the builder maps them onto the
/// choices that are valid for the current shape, so shrinking stays meaningful.
type Draw = (u8, [u16; 10]);

/// A random choice among `n`, from one drawn number.
fn pick(r: u16, n: usize) -> usize {
    r as usize % n
}

fn shuffle<T>(items: &mut [T], mut r: u64) {
    for i in (1..items.len()).rev() {
        r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        items.swap(i, (r >> 33) as usize % (i + 1));
    }
}

fn size_text(a: usize, b: usize, square_ok: bool) -> String {
    if a == b && square_ok {
        format!("{a}")
    } else {
        format!("{a}x{b}")
    }
}

/// A model under construction: its text, and what the checker must compute.
struct Builder {
    lines: Vec<String>,
    shape: Shape,
    /// The output of every IR layer, shorthand activations included.
    outputs: Vec<Shape>,
    /// The shapes of the parameters, in order.
    params: Vec<Vec<usize>>,
    /// The op of the last IR layer: for the loss's demands.
    last: Option<&'static str>,
    named: usize,
}

const IMAGE_ACTS: &[&str] = &[
    "relu",
    "sigmoid",
    "tanh",
    "leaky_relu",
    "leaky_relu 0.2",
    "leaky_relu 0",
];
const VECTOR_ACTS: &[&str] = &["relu", "sigmoid", "tanh", "leaky_relu", "leaky_relu 0.1", "softmax"];

fn act_word(act: &str) -> &'static str {
    match act.split_whitespace().next() {
        Some("relu") => "relu",
        Some("sigmoid") => "sigmoid",
        Some("tanh") => "tanh",
        Some("softmax") => "softmax",
        _ => "leaky_relu",
    }
}

/// One axis of a window: the output size, or `None` when the division is inexact.
fn axis_out(input: usize, k: usize, s: usize, pb: usize, pa: usize) -> (usize, usize) {
    let travel = input + pb + pa - k;
    (travel / s + 1, travel % s)
}

impl Builder {
    fn new(input: Shape) -> Self {
        Builder {
            lines: Vec::new(),
            shape: input,
            outputs: Vec::new(),
            params: Vec::new(),
            last: None,
            named: 0,
        }
    }

    fn push(&mut self, r: u16, text: String, out: Shape, last: &'static str) {
        // Now and then the layer gets a name of its own.
        let text = if r.is_multiple_of(7) {
            self.named += 1;
            format!("my_{}: {text}", self.named)
        } else {
            text
        };
        self.lines.push(text);
        self.outputs.push(out);
        self.shape = out;
        self.last = Some(last);
    }

    /// An activation shorthand after conv or dense: its own IR layer.
    fn shorthand(&mut self, act: &str) {
        let line = self.lines.last_mut().expect("a layer before its shorthand");
        line.push(' ');
        line.push_str(act);
        self.outputs.push(self.shape);
        self.last = Some(act_word(act));
    }

    fn layer(&mut self, (kind, r): Draw) {
        match self.shape {
            Shape::Image { c, h, w } => match kind % 10 {
                0..=2 => self.conv(c, [h, w], &r),
                3 | 4 => self.pool("maxpool", c, [h, w], &r),
                5 => self.pool("avgpool", c, [h, w], &r),
                6 => self.push(r[0], "avgpool global".into(), Shape::Image { c, h: 1, w: 1 }, "pool"),
                7 => self.push(r[0], "flatten".into(), Shape::Vector(c * h * w), "flatten"),
                8 => self.dropout(&r),
                _ => {
                    let act = IMAGE_ACTS[pick(r[1], IMAGE_ACTS.len())];
                    self.push(r[0], act.into(), self.shape, act_word(act));
                }
            },
            Shape::Vector(n) => match kind % 6 {
                0..=2 => self.dense(&r),
                3 => self.dropout(&r),
                4 => self.push(r[0], "flatten".into(), Shape::Vector(n), "flatten"),
                _ => {
                    let act = VECTOR_ACTS[pick(r[1], VECTOR_ACTS.len())];
                    self.push(r[0], act.into(), self.shape, act_word(act));
                }
            },
        }
    }

    fn dropout(&mut self, r: &[u16; 10]) {
        let p = ["0", "0.1", "0.5", "0.9", "0.25"][pick(r[1], 5)];
        self.push(r[0], format!("dropout {p}"), self.shape, "dropout");
    }

    fn dense(&mut self, r: &[u16; 10]) {
        let Shape::Vector(n) = self.shape else { unreachable!() };
        let units = 1 + pick(r[1], 8);
        self.params.push(vec![units, n]);
        self.params.push(vec![units]);
        self.push(r[0], format!("dense {units}"), Shape::Vector(units), "dense");
        if r[2].is_multiple_of(2) {
            self.shorthand(VECTOR_ACTS[pick(r[3], VECTOR_ACTS.len())]);
        }
    }

    fn conv(&mut self, c: usize, input: [usize; 2], r: &[u16; 10]) {
        let filters = 1 + pick(r[1], 4);
        let square = r[2].is_multiple_of(2);
        let mut k = if square {
            [1 + pick(r[3], 5); 2]
        } else {
            [1 + pick(r[3], 5), 1 + pick(r[4], 5)]
        };
        let (pad_text, mut pb, mut pa, same) = self.padding(r[5], r[6], k, |k| k - 1);
        // A kernel larger than the padded input is an error: shrink it to fit (the
        // padding stays below it, since every input has at least one cell).
        if !same {
            for i in 0..2 {
                k[i] = k[i].min(input[i] + pb[i] + pa[i]);
            }
        }
        let s = self.stride(r[7], None);
        if same {
            for i in 0..2 {
                (pb[i], pa[i]) = same_pads(input[i], k[i], s[i]);
            }
        }
        let axes: [(usize, usize); 2] = std::array::from_fn(|i| axis_out(input[i], k[i], s[i], pb[i], pa[i]));
        let exact = axes.iter().all(|&(_, rem)| rem == 0) || same;
        // Conv has no `round ceil`: an inexact division needs `round floor`.
        let round = match (exact, r[8] % 3) {
            (false, _) | (true, 0) => Some("round floor"),
            _ => None,
        };
        let mut options = vec![format!("kernel {}", size_text(k[0], k[1], !r[1].is_multiple_of(3)))];
        if s != [1, 1] || r[9].is_multiple_of(2) {
            options.push(format!("stride {}", size_text(s[0], s[1], !r[9].is_multiple_of(4))));
        }
        options.extend(pad_text);
        options.extend(round.map(str::to_string));
        shuffle(&mut options, r[9] as u64 + r[0] as u64);
        let out = Shape::Image {
            c: filters,
            h: axes[0].0,
            w: axes[1].0,
        };
        self.params.push(vec![filters, c, k[0], k[1]]);
        self.params.push(vec![filters]);
        self.push(r[0], format!("conv {filters} {}", options.join(" ")), out, "conv");
        if r[4].is_multiple_of(3) {
            self.shorthand(IMAGE_ACTS[pick(r[2], IMAGE_ACTS.len())]);
        }
    }

    fn pool(&mut self, word: &str, c: usize, input: [usize; 2], r: &[u16; 10]) {
        // Pooling windows fit in the input, so their padding (at most K/2) never
        // needs shrinking.
        let k = if r[2].is_multiple_of(2) {
            [1 + pick(r[3], 4.min(input[0]).min(input[1])); 2]
        } else {
            [1 + pick(r[3], 4.min(input[0])), 1 + pick(r[4], 4.min(input[1]))]
        };
        let (pad_text, mut pb, mut pa, same) = self.padding(r[5], r[6], k, |k| k / 2);
        let s = self.stride(r[7], Some(k));
        if same {
            for i in 0..2 {
                (pb[i], pa[i]) = same_pads(input[i], k[i], s[i]);
            }
        }
        let axes: [(usize, usize); 2] = std::array::from_fn(|i| axis_out(input[i], k[i], s[i], pb[i], pa[i]));
        let exact = axes.iter().all(|&(_, rem)| rem == 0) || same;
        // `round ceil` keeps a partial window only when it starts inside the input
        // or its leading padding; otherwise the stack uses `round floor`.
        let ceil_ok = (0..2).all(|i| axes[i].1 == 0 || axes[i].0 * s[i] < input[i] + pb[i]);
        let round = match (exact, r[8] % 3) {
            (_, 0) if ceil_ok => Some("round ceil"),
            (false, _) | (true, 1) => Some("round floor"),
            _ => None,
        };
        let ceil = round == Some("round ceil") && !same;
        let out: [usize; 2] = std::array::from_fn(|i| axes[i].0 + usize::from(ceil && axes[i].1 != 0));
        let mut options = Vec::new();
        if s != k || r[9].is_multiple_of(2) {
            options.push(format!("stride {}", size_text(s[0], s[1], !r[9].is_multiple_of(4))));
        }
        options.extend(pad_text);
        options.extend(round.map(str::to_string));
        shuffle(&mut options, r[9] as u64 + r[0] as u64);
        let text = format!(
            "{word} {} {}",
            size_text(k[0], k[1], !r[1].is_multiple_of(3)),
            options.join(" ")
        );
        self.push(
            r[0],
            text.trim_end().to_string(),
            Shape::Image {
                c,
                h: out[0],
                w: out[1],
            },
            "pool",
        );
    }

    /// A stride: default (1 for conv, the kernel for pooling), square or rectangular.
    fn stride(&self, r: u16, pool_kernel: Option<[usize; 2]>) -> [usize; 2] {
        match (r % 4, pool_kernel) {
            (0, Some(k)) => k,
            (0, None) => [1, 1],
            (1, _) => [1 + pick(r >> 2, 3); 2],
            _ => [1 + pick(r >> 2, 3), 1 + pick(r >> 5, 3)],
        }
    }

    /// A padding for kernel `k` whose sides are at most `limit(k)`, in one of the
    /// spec's forms: (the option's text, before, after, whether it is `pad same`).
    fn padding(
        &self,
        form: u16,
        r: u16,
        k: [usize; 2],
        limit: impl Fn(usize) -> usize,
    ) -> (Option<String>, [usize; 2], [usize; 2], bool) {
        let most = [limit(k[0]), limit(k[1])];
        let amount = |r: u16, i: usize| pick(r, most[i] + 1);
        match form % 6 {
            0 => (None, [0, 0], [0, 0], false),
            1 => (Some("pad valid".into()), [0, 0], [0, 0], false),
            2 => {
                let p = pick(r, most[0].min(most[1]) + 1);
                (Some(format!("pad {p}")), [p, p], [p, p], false)
            }
            3 => {
                let p = [amount(r, 0), amount(r >> 4, 1)];
                (Some(format!("pad {}x{}", p[0], p[1])), p, p, false)
            }
            4 => {
                // Asymmetric: a random subset of the sides, in a random order.
                let values = [amount(r, 0), amount(r >> 3, 0), amount(r >> 6, 1), amount(r >> 9, 1)];
                let mut sides: Vec<(usize, &str)> = ["top", "bottom", "left", "right"]
                    .into_iter()
                    .enumerate()
                    .filter(|&(i, _)| (r >> (12 + i)) & 1 == 1 || i == (r as usize % 4))
                    .collect();
                shuffle(&mut sides, r as u64);
                let mut before = [0, 0];
                let mut after = [0, 0];
                let mut text = String::from("pad");
                for (i, name) in sides {
                    let v = values[i];
                    match i {
                        0 => before[0] = v,
                        1 => after[0] = v,
                        2 => before[1] = v,
                        _ => after[1] = v,
                    }
                    text.push_str(&format!(" {name} {v}"));
                }
                (Some(text), before, after, false)
            }
            _ => (Some("pad same".into()), [0, 0], [0, 0], true),
        }
    }
}

/// The spec's `pad same`: total max((out-1)·S + K - in, 0), smaller half first.
fn same_pads(input: usize, k: usize, s: usize) -> (usize, usize) {
    let out = input.div_ceil(s);
    let total = ((out - 1) * s + k).saturating_sub(input);
    (total / 2, total - total / 2)
}

/// The train block's random numbers.
type TrainDraw = [u16; 8];

/// A train block whose loss suits the model; appends the layers the loss needs
/// (a final softmax for cross_entropy, a final sigmoid for binary_cross_entropy).
fn train_block(b: &mut Builder, r: &TrainDraw) -> String {
    let loss = match r[0] % 3 {
        0 => {
            if b.last != Some("softmax") {
                if let Shape::Image { c, h, w } = b.shape {
                    b.push(1, "flatten".into(), Shape::Vector(c * h * w), "flatten");
                }
                let classes = 2 + pick(r[1], 4);
                b.params.push(vec![classes, b.shape.len()]);
                b.params.push(vec![classes]);
                b.push(1, format!("dense {classes}"), Shape::Vector(classes), "dense");
                b.shorthand("softmax");
            }
            "cross_entropy"
        }
        1 => "mse",
        _ => {
            if b.last != Some("sigmoid") {
                b.push(1, "sigmoid".into(), b.shape, "sigmoid");
            }
            "binary_cross_entropy"
        }
    };
    let lr = ["0.1", "0.01", "1e-3", "3.0E-2"][pick(r[2], 4)];
    let optimizer = match r[3] % 3 {
        0 => {
            let mut text = format!("optimizer sgd lr {lr}");
            if r[4].is_multiple_of(2) {
                text.push_str(" momentum 0.9");
                if r[4].is_multiple_of(4) {
                    text.push_str(" nesterov");
                }
            }
            text
        }
        k => {
            let mut opts = vec![format!("lr {lr}")];
            if r[4].is_multiple_of(2) {
                opts.push("beta1 0.8".into());
            }
            if r[4].is_multiple_of(3) {
                opts.push("beta2 0.99".into());
            }
            if r[4].is_multiple_of(5) {
                opts.push("eps 1e-6".into());
            }
            shuffle(&mut opts, r[4] as u64);
            format!("optimizer {} {}", if k == 1 { "adam" } else { "adamw" }, opts.join(" "))
        }
    };
    let mut items = vec![format!("loss {loss}"), optimizer];
    let extras = [
        "weight_decay 1e-4",
        "schedule step 2 gamma 0.5",
        "schedule exponential 0.9",
        "schedule cosine min 0.001",
        "batch 8",
        "epochs 3",
        "validation 0.2",
        "seed 42",
    ];
    let mut schedule = false;
    for (i, e) in extras.iter().enumerate() {
        if (r[5] >> i) & 1 == 1 {
            if e.starts_with("schedule") {
                if schedule {
                    continue;
                }
                schedule = true;
            }
            items.push(e.to_string());
        }
    }
    shuffle(&mut items, r[6] as u64);
    format!("train {{ {} }}", items.join(" "))
}

/// A valid model: its text and the builder that knows its shapes.
fn valid_model(input: (bool, usize, usize, usize), draws: &[Draw], train: Option<TrainDraw>) -> (String, Builder) {
    let (image, c, h, w) = input;
    let input_shape = if image {
        Shape::Image { c, h, w }
    } else {
        Shape::Vector(h * w)
    };
    let mut b = Builder::new(input_shape);
    for &d in draws {
        b.layer(d);
    }
    let train = train.map(|r| train_block(&mut b, &r));
    let mut text = format!("model R {{\n    input {input_shape}\n");
    for line in &b.lines {
        text.push_str(&format!("    {line}\n"));
    }
    if let Some(t) = train {
        text.push_str(&format!("    {t}\n"));
    }
    text.push_str("}\n");
    (text, b)
}

fn draw() -> impl Strategy<Value = Draw> {
    (any::<u8>(), any::<[u16; 10]>())
}

fn input() -> impl Strategy<Value = (bool, usize, usize, usize)> {
    (prop::bool::weighted(0.8), 1usize..=3, 1usize..=10, 1usize..=10)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn valid_stacks_check_and_run_with_the_checked_shapes(
        input in input(),
        draws in prop::collection::vec(draw(), 0..9),
        train in prop::option::weighted(0.6, any::<TrainDraw>()),
        n in 1usize..=3,
        seed in any::<u64>(),
    ) {
        let (source, b) = valid_model(input, &draws, train);
        let models = cnnc::compile(&source)
            .unwrap_or_else(|d| panic!("a valid model was rejected:\n{source}\n{}", d.render("r.cnn", &source)));
        prop_assert_eq!(models.len(), 1);
        let m = &models[0];
        assert_chained(m);
        let outputs: Vec<Shape> = m.layers.iter().map(|l| l.output).collect();
        prop_assert_eq!(&outputs, &b.outputs, "layer outputs of\n{}", source);
        let params: Vec<Vec<usize>> = m.params().into_iter().map(|p| p.shape).collect();
        prop_assert_eq!(&params, &b.params, "parameter shapes of\n{}", source);
        prop_assert_eq!(m.train.is_some(), train.is_some());
        run_in_interpreter(&source, m, n, seed, true);
    }
}

// ---------------------------------------------------------------------------
// Loose stacks: random options regardless of shapes; only accepted ones run.

fn loose_layer() -> impl Strategy<Value = String> {
    let size = prop_oneof![
        (0usize..5).prop_map(|a| a.to_string()),
        (0usize..5, 0usize..5).prop_map(|(a, b)| format!("{a}x{b}")),
    ];
    let pad = prop_oneof![
        Just(String::new()),
        Just(" pad same".to_string()),
        Just(" pad valid".to_string()),
        size.clone().prop_map(|s| format!(" pad {s}")),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3)
            .prop_map(|(t, b, l, r)| format!(" pad left {l} bottom {b} right {r} top {t}")),
        (0usize..3, 0usize..3).prop_map(|(t, r)| format!(" pad right {r} top {t}")),
    ];
    let stride = prop_oneof![Just(String::new()), size.clone().prop_map(|s| format!(" stride {s}"))];
    let round = prop::sample::select(vec!["", " round floor", " round ceil"]);
    let act = prop::sample::select(vec!["", " relu", " sigmoid", " tanh", " softmax", " leaky_relu 0.3"]);
    let pool = prop::sample::select(vec!["maxpool", "avgpool"]);
    prop_oneof![
        (
            0usize..4,
            size.clone(),
            stride.clone(),
            pad.clone(),
            round.clone(),
            act.clone()
        )
            .prop_map(|(f, k, s, p, r, a)| format!("conv {f} kernel {k}{s}{p}{r}{a}")),
        (pool, size, stride, pad, round).prop_map(|(w, k, s, p, r)| format!("{w} {k}{s}{p}{r}")),
        Just("avgpool global".to_string()),
        Just("flatten".to_string()),
        (0usize..6, act.clone()).prop_map(|(n, a)| format!("dense {n}{a}")),
        prop::sample::select(vec!["dropout 0.5", "dropout 1", "dropout 0"]).prop_map(str::to_string),
        act.prop_filter("an activation", |a| !a.is_empty())
            .prop_map(|a| a.trim().to_string()),
    ]
}

fn loose_train() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["cross_entropy", "mse", "binary_cross_entropy"]),
        prop::sample::select(vec![
            "sgd lr 0.1",
            "adam lr 0.01",
            "adamw lr 1e-3 beta2 0.9",
            "sgd lr 0",
        ]),
    )
        .prop_map(|(l, o)| format!("train {{ loss {l} optimizer {o} }}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn loose_stacks_that_check_run_with_the_checked_shapes(
        c in 1usize..=3,
        h in 1usize..=9,
        w in 1usize..=9,
        layers in prop::collection::vec(loose_layer(), 0..8),
        train in prop::option::of(loose_train()),
        n in 1usize..=2,
        seed in any::<u64>(),
    ) {
        let source = format!(
            "model L {{ input {c}x{h}x{w}\n{}\n{} }}",
            layers.join("\n"),
            train.unwrap_or_default()
        );
        match cnnc::compile(&source) {
            Ok(models) => {
                assert_chained(&models[0]);
                run_in_interpreter(&source, &models[0], n, seed, true);
            }
            Err(d) => assert_located(&source, &d),
        }
    }
}

// ---------------------------------------------------------------------------
// Mutations.

/// Every diagnostic is rendered with its location, and its span lies in the text.
fn assert_located(source: &str, diags: &cnnc::Diagnostics) {
    assert!(!diags.is_empty(), "an error without a diagnostic\n{source}");
    let text = diags.render("m.cnn", source);
    assert_eq!(text.matches("--> m.cnn:").count(), diags.len(), "{text}");
    for d in diags.iter() {
        assert!(
            d.span.start <= d.span.end && d.span.end <= source.len(),
            "span {:?}\n{source}",
            d.span
        );
    }
}

/// Small enough to run in the interpreter within the suite's few seconds.
fn small(model: &ir::Model) -> bool {
    model.param_count() <= 200_000
        && model.input.len() <= 100_000
        && model.layers.iter().all(|l| l.output.len() <= 100_000)
        && model.layers.iter().map(|l| l.flops()).sum::<u128>() <= 20_000_000
}

/// Errors are located; accepted models are consistent and, when small, run.
fn errors_or_valid(source: &str, seed: u64) {
    match cnnc::compile(source) {
        Ok(models) => {
            for m in &models {
                assert_chained(m);
                let _ = cnnc::summary::summary(m);
                if small(m) {
                    run_in_interpreter(source, m, 1, seed, false);
                }
            }
        }
        Err(d) => assert_located(source, &d),
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Duplicate(usize),
    Swap(usize, usize),
    /// A number token set to another number: 0, 1, or huge.
    Number(usize, &'static str),
    /// Junk inserted before a token.
    Junk(usize, String),
    Delete(usize),
}

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "0x0",
    "1x0x1",
    "2147483647",
    "2147483648",
    "4294967297",
    "1048576",
    "1048577",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "65536x65536",
    "46341x46341x1",
    "1e308",
    "1e309",
    "0.0000000000000000000000000000000000000000000001",
    "0.999999999",
    "-0",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let junk = prop_oneof![
        "[ -~]{1,6}",
        "[{}:/*x0-9]{1,4}",
        any::<char>().prop_map(|c| c.to_string()),
        Just("/*".to_string()),
        Just("//".to_string()),
        Just("\r".to_string()),
        Just("\u{feff}".to_string()),
        Just("model X { input 1".to_string()),
    ];
    prop_oneof![
        any::<usize>().prop_map(Mutation::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (any::<usize>(), prop::sample::select(NUMBERS)).prop_map(|(i, n)| Mutation::Number(i, n)),
        (any::<usize>(), junk).prop_map(|(i, j)| Mutation::Junk(i, j)),
        any::<usize>().prop_map(Mutation::Delete),
    ]
}

/// Applies mutations to the whitespace-separated tokens of a source (comments
/// dropped first, so that tokens are words of the language).
fn mutate(source: &str, mutations: &[Mutation]) -> String {
    let code: String = source
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut words: Vec<String> = code.split_whitespace().map(str::to_string).collect();
    for m in mutations {
        let n = words.len();
        if n == 0 {
            break;
        }
        match m {
            Mutation::Duplicate(i) => {
                let w = words[i % n].clone();
                words.insert(i % n, w);
            }
            Mutation::Swap(a, b) => words.swap(a % n, b % n),
            Mutation::Number(i, value) => {
                let numbers: Vec<usize> = (0..n)
                    .filter(|&j| words[j].starts_with(|c: char| c.is_ascii_digit()))
                    .collect();
                if !numbers.is_empty() {
                    words[numbers[i % numbers.len()]] = value.to_string();
                }
            }
            Mutation::Junk(i, junk) => words.insert(i % (n + 1), junk.clone()),
            Mutation::Delete(i) => {
                words.remove(i % n);
            }
        }
    }
    words.join(" ")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    #[test]
    fn mutated_random_stacks_give_errors_or_valid_models(
        input in input(),
        draws in prop::collection::vec(draw(), 0..7),
        train in prop::option::weighted(0.5, any::<TrainDraw>()),
        mutations in prop::collection::vec(mutation(), 1..4),
        seed in any::<u64>(),
    ) {
        let (source, _) = valid_model(input, &draws, train);
        errors_or_valid(&mutate(&source, &mutations), seed);
    }

    #[test]
    fn mutated_examples_give_errors_or_valid_models(
        example in prop::sample::select(EXAMPLES),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        // Example models are large: they are checked, and run only when small.
        errors_or_valid(&mutate(example, &mutations), 0);
    }
}

// ---------------------------------------------------------------------------
// Guards: the generators make what they claim to.

#[test]
fn the_generator_covers_every_form() {
    let mut text = String::new();
    let mut accepted = 0;
    let mut stream = Stream(0x9e37_79b9_7f4a_7c15);
    for i in 0..400usize {
        let mut r = || stream.next() as u16;
        let draws: Vec<Draw> = (0..6).map(|_| (r() as u8, std::array::from_fn(|_| r()))).collect();
        let train = i.is_multiple_of(2).then(|| std::array::from_fn(|_| r()));
        let (source, _) = valid_model((!i.is_multiple_of(5), 1 + i % 3, 8, 7), &draws, train);
        if cnnc::compile(&source).is_ok() {
            accepted += 1;
        }
        text.push_str(&source);
    }
    assert_eq!(accepted, 400);
    for form in [
        "conv",
        "maxpool",
        "avgpool",
        "avgpool global",
        "flatten",
        "dense",
        "dropout",
        "pad same",
        "pad valid",
        "pad top",
        "pad left",
        "round floor",
        "round ceil",
        "stride",
        "x",
        "relu",
        "softmax",
        "leaky_relu",
        ": ",
        "cross_entropy",
        "mse",
        "binary_cross_entropy",
        "sgd",
        "adam ",
        "adamw",
        "momentum",
        "nesterov",
        "schedule",
    ] {
        assert!(text.contains(form), "no `{form}` in 400 generated models");
    }
}

#[test]
fn a_generated_model_reads_as_written() {
    let draws: Vec<Draw> = vec![
        (0, [0, 1, 1, 2, 3, 4, 0, 1, 1, 2]),
        (7, [1; 10]),
        (0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    ];
    let (source, b) = valid_model((true, 2, 6, 5), &draws, Some([0; 8]));
    let models = cnnc::compile(&source).unwrap_or_else(|d| panic!("{source}\n{d}"));
    assert_eq!(models[0].output(), *b.outputs.last().unwrap(), "{source}");
    assert_eq!(models[0].output(), Shape::Vector(2));
    run_in_interpreter(&source, &models[0], 2, 7, true);
}

#[test]
fn mutations_change_the_tokens() {
    let src = "model M { input 4 dense 2 } // note";
    assert_eq!(
        mutate(src, &[Mutation::Duplicate(0)]),
        "model model M { input 4 dense 2 }"
    );
    assert_eq!(mutate(src, &[Mutation::Swap(0, 1)]), "M model { input 4 dense 2 }");
    assert_eq!(mutate(src, &[Mutation::Number(1, "0")]), "model M { input 4 dense 0 }");
    assert_eq!(
        mutate(src, &[Mutation::Junk(8, "@".into())]),
        "model M { input 4 dense 2 } @"
    );
}

#[test]
fn loose_stacks_are_often_accepted() {
    // Guards the loose property against testing nothing: enough of its stacks run.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(loose_layer(), 0..8);
    let mut accepted = 0;
    for _ in 0..500 {
        let layers = strategy.new_tree(&mut runner).expect("a stack").current();
        let source = format!("model L {{ input 2x7x6\n{}\n}}", layers.join("\n"));
        accepted += usize::from(cnnc::compile(&source).is_ok());
    }
    assert!(accepted >= 50, "only {accepted} of 500 loose stacks were accepted");
}
