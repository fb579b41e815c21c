//! Finite-difference checks, in f64, of the interpreter's backward pass: every layer
//! kind, every loss, and every v2 construct (residual blocks, batchnorm in training
//! mode, grouped/depthwise/dilated convolutions, bias off, silu, gelu, normalize). The
//! analytic gradients come from the same generic kernels the f32 interpreter runs
//! (`Network<f64>`); the numeric ones from central differences of the loss,
//! `(L(v + h) - L(v - h)) / 2h`.
//!
//! v2 models are built as IR directly (tests/interp_support/ir_builder.rs), so these
//! checks do not depend on the parser. This file also generates the interpreter's own
//! fixture cases (tests/fixtures_own/, `cargo test --test integration interp_gradcheck:: -- --ignored`),
//! after the same check passes on them.

use crate::ir_builder;

use cnnc::interp::optim::Optimizer;
use cnnc::interp::Network;
use cnnc::ir::{self, Activation, Loss, Shape};
use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::Target;
use ir_builder::Seq;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::Path;

const H: f64 = 1e-6;

/// The loss at the network's parameters; dropout masks from a fixed seed, so every
/// evaluation draws the same masks.
fn loss(net: &Network<f64>, x: &ArrayD<f64>, target: &Target<'_>) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    net.gradients(x.view(), target, Some(&mut rng)).expect("the loss").loss
}

fn random(shape: &[usize], scale: f64, rng: &mut ChaCha8Rng) -> ArrayD<f64> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(-scale..scale))
}

fn close(what: &str, analytic: f64, numeric: f64) {
    let err = (analytic - numeric).abs();
    assert!(
        err <= 1e-7 + 1e-5 * numeric.abs(),
        "{what}: analytic {analytic:e}, finite difference {numeric:e}, error {err:e}"
    );
}

/// A network with random parameters, a random batch and random targets.
struct Problem {
    net: Network<f64>,
    x: ArrayD<f64>,
    labels: Array1<usize>,
    values: ArrayD<f32>,
    /// v3: a label per output position, for cross_entropy on an image.
    maps: ndarray::Array3<usize>,
}

impl Problem {
    /// Parameters uniform in (-0.5, 0.5), inputs in (-1, 1), `batch` samples.
    fn random(model: ir::Model, batch: usize) -> Problem {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let params: Vec<ArrayD<f64>> = model.params().iter().map(|p| random(&p.shape, 0.5, &mut rng)).collect();
        let net = Network::new(model.clone(), params).expect("parameters of the model's shapes");
        let x = random(&batch_of(batch, model.input), 1.0, &mut rng);
        let out = model.output();
        let labels: Array1<usize> = (0..batch).map(|_| rng.random_range(0..out.len())).collect();
        let values = ArrayD::from_shape_simple_fn(IxDyn(&batch_of(batch, out)), || rng.random_range(0.0f32..1.0));
        let (c, h, w) = match out {
            Shape::Image { c, h, w } => (c, h, w),
            Shape::Vector(_) => (1, 0, 0),
        };
        let maps = ndarray::Array3::from_shape_simple_fn((batch, h, w), || rng.random_range(0..c));
        Problem {
            net,
            x,
            labels,
            values,
            maps,
        }
    }

    /// Compares every gradient element of the input and the parameters (or every
    /// `stride`-th one for larger tensors) with its finite difference.
    fn check(&mut self) {
        let image_output = matches!(self.net.model().output(), Shape::Image { .. });
        let target = match self.net.model().train.as_ref().map(|t| t.loss) {
            Some(Loss::CrossEntropy) if image_output => Target::LabelMaps(self.maps.view()),
            Some(Loss::CrossEntropy) => Target::Labels(self.labels.view()),
            _ => Target::Values(self.values.view()),
        };
        check_gradients(&mut self.net, &mut self.x, &target);
    }
}

/// `[batch, ...shape]`.
fn batch_of(batch: usize, shape: Shape) -> Vec<usize> {
    let mut dims = vec![batch];
    dims.extend(shape.dims());
    dims
}

fn gradcheck(source: &str, batch: usize) {
    let model: ir::Model = cnnc::compile(source)
        .unwrap_or_else(|d| panic!("{}", d.render("test", source)))
        .remove(0);
    Problem::random(model, batch).check();
}

/// The check on a model built as IR, with a train block of `loss` that allows `batch`.
fn gradcheck_ir(input: Shape, seq: Seq, loss: Loss, batch: usize) {
    gradcheck_model(ir_builder::model(input, seq, loss, batch), batch);
}

fn gradcheck_model(model: ir::Model, batch: usize) {
    Problem::random(model, batch).check();
}

/// Compares every gradient element of the input and the parameters (or every
/// `stride`-th one for larger tensors) with its finite difference.
fn check_gradients(net: &mut Network<f64>, x: &mut ArrayD<f64>, target: &Target<'_>) {
    let model = net.model().clone();
    let mut dropout = ChaCha8Rng::seed_from_u64(99);
    let g = net.gradients(x.view(), target, Some(&mut dropout)).expect("gradients");
    assert!(
        (g.loss - loss(net, x, target)).abs() < 1e-12,
        "the loss is deterministic"
    );
    assert!(
        g.input.iter().any(|v| v.abs() > 1e-6),
        "the input gradient is not all zero"
    );

    let stride = |len: usize| (len / 40).max(1);
    for i in (0..x.len()).step_by(stride(x.len())) {
        let v = x.as_slice().expect("contiguous")[i];
        x.as_slice_mut().expect("contiguous")[i] = v + H;
        let plus = loss(net, x, target);
        x.as_slice_mut().expect("contiguous")[i] = v - H;
        let minus = loss(net, x, target);
        x.as_slice_mut().expect("contiguous")[i] = v;
        close(
            &format!("d loss / d input[{i}]"),
            g.input.as_slice().expect("contiguous")[i],
            (plus - minus) / (2.0 * H),
        );
    }
    for (k, spec) in model.params().iter().enumerate() {
        assert!(
            g.params[k].iter().any(|v| v.abs() > 1e-6),
            "the gradient of {} is not all zero",
            spec.name
        );
        for i in (0..spec.len()).step_by(stride(spec.len())) {
            let v = net.params()[k].as_slice().expect("contiguous")[i];
            net.params_mut()[k].as_slice_mut().expect("contiguous")[i] = v + H;
            let plus = loss(net, x, target);
            net.params_mut()[k].as_slice_mut().expect("contiguous")[i] = v - H;
            let minus = loss(net, x, target);
            net.params_mut()[k].as_slice_mut().expect("contiguous")[i] = v;
            let analytic = g.params[k].as_slice().expect("contiguous")[i];
            close(
                &format!("d loss / d {}[{i}]", spec.name),
                analytic,
                (plus - minus) / (2.0 * H),
            );
        }
    }
}

fn model(layers: &str, loss: &str) -> String {
    format!("model M {{ {layers} train {{ loss {loss} optimizer sgd lr 0.1 }} }}")
}

#[test]
fn conv_with_stride_and_asymmetric_padding() {
    gradcheck(
        &model(
            "input 2x7x6 conv 3 kernel 3x2 stride 2x1 pad top 2 bottom 0 left 1 right 0 flatten",
            "mse",
        ),
        2,
    );
}

#[test]
fn conv_pad_same() {
    gradcheck(&model("input 2x5x5 conv 2 kernel 2 pad same flatten", "mse"), 2);
}

#[test]
fn maxpool_padded_with_round_ceil() {
    gradcheck(
        &model("input 2x8x8 maxpool 3 stride 2 pad 1 round ceil flatten", "mse"),
        2,
    );
}

#[test]
fn avgpool_padded_with_round_ceil() {
    gradcheck(
        &model("input 2x8x8 avgpool 3 stride 2 pad 1 round ceil flatten", "mse"),
        2,
    );
}

#[test]
fn avgpool_plain() {
    gradcheck(&model("input 1x6x6 avgpool 2 flatten", "mse"), 2);
}

#[test]
fn global_avgpool_then_dense() {
    gradcheck(&model("input 3x4x5 avgpool global flatten dense 2", "mse"), 3);
}

#[test]
fn dense_with_relu_and_leaky_relu() {
    gradcheck(
        &model("input 6 dense 8 relu dense 5 leaky_relu 0.2 dense 3 leaky_relu", "mse"),
        4,
    );
}

#[test]
fn sigmoid_and_tanh() {
    gradcheck(&model("input 5 dense 4 sigmoid dense 4 tanh dense 2", "mse"), 3);
}

#[test]
fn softmax_not_fused_under_mse() {
    gradcheck(&model("input 5 dense 4 softmax", "mse"), 3);
}

#[test]
fn dropout_with_a_fixed_mask() {
    gradcheck(&model("input 12 dense 10 dropout 0.4 dense 3", "mse"), 3);
}

#[test]
fn relu_on_images_then_maxpool() {
    gradcheck(
        &model(
            "input 1x6x6 conv 2 kernel 3 pad 1 relu maxpool 2 flatten dense 3",
            "mse",
        ),
        2,
    );
}

#[test]
fn cross_entropy_fused_with_softmax() {
    gradcheck(&model("input 6 dense 5 tanh dense 4 softmax", "cross_entropy"), 5);
}

#[test]
fn binary_cross_entropy_fused_with_sigmoid() {
    gradcheck(&model("input 6 dense 3 sigmoid", "binary_cross_entropy"), 4);
}

#[test]
fn lenet_like_stack() {
    gradcheck(
        &model(
            "input 1x10x10 conv 3 kernel 3 relu maxpool 2 stride 2 conv 4 kernel 2 tanh avgpool 2 round ceil flatten dense 6 relu dropout 0.3 dense 3 softmax",
            "cross_entropy",
        ),
        3,
    );
}

// ---- v2 ----

fn image(c: usize, h: usize, w: usize) -> Shape {
    Shape::Image { c, h, w }
}

#[test]
fn residual_identity() {
    let input = image(2, 5, 5);
    let mut seq = Seq::new(input);
    seq.conv(3, 3, 1, 1, 1, 1, true)
        .act(Activation::Relu)
        .residual(
            |b| {
                b.conv(3, 3, 1, 1, 1, 1, true)
                    .act(Activation::Tanh)
                    .conv(3, 3, 1, 1, 1, 1, true);
            },
            |_| {},
        )
        .act(Activation::Relu)
        .flatten()
        .dense(2, true);
    gradcheck_ir(input, seq, Loss::Mse, 2);
}

#[test]
fn residual_projection_with_batchnorm() {
    let input = image(2, 6, 6);
    let mut seq = Seq::new(input);
    seq.residual(
        |b| {
            b.conv(4, 3, 2, 1, 1, 1, false)
                .batchnorm()
                .act(Activation::Relu)
                .conv(4, 3, 1, 1, 1, 1, false)
                .batchnorm();
        },
        |s| {
            s.conv(4, 1, 2, 0, 1, 1, false).batchnorm();
        },
    )
    .act(Activation::Relu)
    .global_avgpool()
    .flatten()
    .dense(3, true)
    .softmax();
    assert_eq!(seq.layers[0].name, "residual1");
    gradcheck_ir(input, seq, Loss::CrossEntropy, 3);
}

#[test]
fn nested_residual_blocks() {
    let input = image(2, 4, 4);
    let mut seq = Seq::new(input);
    seq.residual(
        |b| {
            b.conv(2, 3, 1, 1, 1, 1, true).act(Activation::Tanh).residual(
                |inner| {
                    inner.conv(2, 3, 1, 1, 1, 1, true).act(Activation::Sigmoid);
                },
                |inner| {
                    inner.conv(2, 1, 1, 0, 1, 1, true);
                },
            );
        },
        |_| {},
    )
    .flatten()
    .dense(2, true);
    gradcheck_ir(input, seq, Loss::Mse, 2);
}

#[test]
fn batchnorm_2d_in_training_mode() {
    let input = image(2, 4, 4);
    let mut seq = Seq::new(input);
    seq.conv(3, 3, 1, 0, 1, 1, false)
        .batchnorm()
        .act(Activation::Tanh)
        .flatten()
        .dense(2, true);
    gradcheck_ir(input, seq, Loss::Mse, 3);
}

#[test]
fn batchnorm_1d_in_training_mode() {
    let input = Shape::Vector(6);
    let mut seq = Seq::new(input);
    seq.dense(5, false)
        .batchnorm()
        .act(Activation::Sigmoid)
        .dense(3, true)
        .softmax();
    gradcheck_ir(input, seq, Loss::CrossEntropy, 4);
}

#[test]
fn batchnorm_on_two_values_per_channel() {
    // The smallest batch training allows: N = 2 values per feature.
    let input = Shape::Vector(3);
    let mut seq = Seq::new(input);
    seq.dense(4, false).batchnorm().dense(2, true);
    gradcheck_ir(input, seq, Loss::Mse, 2);
}

#[test]
fn grouped_conv() {
    let input = image(4, 5, 5);
    let mut seq = Seq::new(input);
    seq.conv(6, 3, 1, 1, 1, 2, true).flatten();
    gradcheck_ir(input, seq, Loss::Mse, 2);
}

#[test]
fn depthwise_conv_and_channel_multiplier() {
    let input = image(3, 5, 5);
    let mut seq = Seq::new(input);
    // groups = C = F, then F = 2C.
    seq.conv(3, 3, 1, 1, 1, 3, true)
        .act(Activation::Tanh)
        .conv(6, 3, 2, 1, 1, 3, true)
        .flatten();
    gradcheck_ir(input, seq, Loss::Mse, 2);
}

#[test]
fn dilated_conv() {
    let input = image(2, 8, 8);
    let mut seq = Seq::new(input);
    seq.conv(3, 3, 1, 2, 2, 1, true)
        .act(Activation::Tanh)
        .conv(2, 2, 2, 1, 3, 1, true)
        .flatten();
    gradcheck_ir(input, seq, Loss::Mse, 2);
}

#[test]
fn conv_and_dense_without_bias() {
    let input = image(2, 4, 4);
    let mut seq = Seq::new(input);
    seq.conv(3, 3, 1, 0, 1, 1, false)
        .act(Activation::Relu)
        .flatten()
        .dense(4, false)
        .act(Activation::Tanh)
        .dense(2, false);
    let model = ir_builder::model(input, seq, Loss::Mse, 2);
    assert_eq!(model.params().len(), 3, "weights only");
    gradcheck_model(model, 2);
}

#[test]
fn silu_on_images_and_vectors() {
    let input = image(2, 4, 4);
    let mut seq = Seq::new(input);
    seq.conv(3, 3, 1, 1, 1, 1, true)
        .act(Activation::Silu)
        .flatten()
        .dense(5, true)
        .act(Activation::Silu)
        .dense(2, true);
    gradcheck_ir(input, seq, Loss::Mse, 3);
}

#[test]
fn relu6_hardswish_and_hardsigmoid_on_images_and_vectors() {
    let input = image(2, 4, 4);
    let mut seq = Seq::new(input);
    seq.conv(3, 3, 1, 1, 1, 1, true)
        .act(Activation::Hardswish)
        .conv(3, 1, 1, 0, 1, 1, true)
        .act(Activation::Relu6)
        .flatten()
        .dense(5, true)
        .act(Activation::Hardsigmoid)
        .dense(2, true);
    gradcheck_ir(input, seq, Loss::Mse, 3);
}

#[test]
fn gelu_on_images_and_vectors() {
    let input = image(2, 4, 4);
    let mut seq = Seq::new(input);
    seq.conv(3, 3, 1, 1, 1, 1, true)
        .act(Activation::Gelu)
        .flatten()
        .dense(5, true)
        .act(Activation::Gelu)
        .dense(3, true)
        .softmax();
    gradcheck_ir(input, seq, Loss::CrossEntropy, 3);
}

#[test]
fn convtranspose_stride_pad_output_pad_dilation_groups() {
    gradcheck(
        &model(
            "input 4x3x4 convtranspose 6 kernel 3 stride 2 pad 1 output_pad 1 tanh \
             convtranspose 4 kernel 3 pad 2 dilation 2 groups 2 \
             convtranspose 2 kernel 2x3 stride 2x1 pad 0x1 bias off flatten",
            "mse",
        ),
        2,
    );
}

#[test]
fn upsample_nearest_and_bilinear() {
    gradcheck(
        &model(
            "input 2x3x4 conv 2 kernel 1 tanh upsample 2 bilinear upsample 2x3 bilinear upsample 1x2 flatten",
            "mse",
        ),
        2,
    );
}

#[test]
fn maxpool_global() {
    gradcheck(&model("input 3x4x5 maxpool global flatten dense 2", "mse"), 2);
}

#[test]
fn joins_concat_add_mul_gate_and_from() {
    // A tensor read by several items (`a`, `input`) gets the sum of their gradients.
    gradcheck(
        &model(
            "input 3x4x4 a: conv 4 kernel 3 pad 1 tanh conv 4 kernel 1 add a tanh concat a input \
             b: conv 4 kernel 1 avgpool global conv 4 kernel 1 sigmoid g: mul b from a mul a \
             concat g flatten dense 3",
            "mse",
        ),
        2,
    );
}

#[test]
fn references_into_enclosing_blocks_and_from_the_shortcut() {
    gradcheck(
        &model(
            "input 2x4x4 s: conv 2 kernel 1 tanh residual { c: conv 2 kernel 3 pad 1 tanh add s \
             shortcut { conv 2 kernel 1 add c } } flatten",
            "mse",
        ),
        2,
    );
}

#[test]
fn segmentation_softmax_with_label_maps_ignore_and_smoothing() {
    gradcheck(
        &model(
            "input 2x4x4 e: conv 3 kernel 3 pad 1 tanh maxpool 2 convtranspose 3 kernel 2 stride 2 concat e \
             conv 3 kernel 1 softmax",
            "cross_entropy ignore 1 smoothing 0.1",
        ),
        2,
    );
}

#[test]
fn normalize_the_input() {
    let input = image(2, 4, 4);
    let mut seq = Seq::new(input);
    seq.conv(2, 3, 1, 0, 1, 1, true).flatten().dense(2, true);
    let mut model = ir_builder::model(input, seq, Loss::Mse, 2);
    model.normalize = Some(ir::Normalize {
        mean: vec![0.5, -0.25],
        std: vec![0.25, 2.0],
    });
    gradcheck_model(model, 2);
}

// ---- The interpreter's own fixture cases ----

/// Constructs PyTorch's fixtures do not cover, as `(name, model.cnn, batch)`.
const OWN_CASES: &[(&str, &str, usize)] = &[
    (
        "silu",
        "// interpreter case silu: silu after a conv (as shorthand) and as a layer after a dense
model SiluCase {
    input 2x5x5
    conv 3 kernel 3 pad 1 silu
    flatten
    dense 6
    silu
    dense 2
    train {
        loss mse
        optimizer sgd lr 0.1 momentum 0.9
        batch 3
        epochs 1
    }
}
",
        3,
    ),
    (
        "gelu",
        "// interpreter case gelu: exact gelu after a conv and after a dense, cross_entropy, adam
model GeluCase {
    input 2x5x5
    conv 3 kernel 3 gelu
    flatten
    dense 6 gelu
    dense 3 softmax
    train {
        loss cross_entropy
        optimizer adam lr 0.01
        batch 4
        epochs 1
    }
}
",
        4,
    ),
];

/// A case's network with PyTorch-fixture-like initial values (weights N(0, 2/fan_in),
/// biases N(0, 0.1^2)), a batch of N(0, 1) inputs and random targets.
fn own_problem(source: &str, batch: usize, seed: u64) -> Problem {
    let model: ir::Model = cnnc::compile(source)
        .unwrap_or_else(|d| panic!("{}", d.render("model.cnn", source)))
        .remove(0);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut normal = |shape: &[usize], std: f64| {
        ArrayD::from_shape_simple_fn(IxDyn(shape), || {
            let z: f64 = StandardNormal.sample(&mut rng);
            z * std
        })
    };
    let params: Vec<ArrayD<f64>> = model
        .params()
        .iter()
        .map(|p| {
            let fan_in: usize = p.shape[1..].iter().product();
            if p.shape.len() > 1 {
                normal(&p.shape, (2.0 / fan_in as f64).sqrt())
            } else {
                normal(&p.shape, 0.1)
            }
        })
        .collect();
    let x = normal(&batch_of(batch, model.input), 1.0);
    let values = normal(&batch_of(batch, model.output()), 1.0).mapv(|v| v as f32);
    let classes = model.output().len();
    let labels: Array1<usize> = (0..batch).map(|s| (s * 7 + seed as usize) % classes).collect();
    let net = Network::new(model, params).expect("parameters of the model's shapes");
    Problem {
        net,
        x,
        labels,
        values,
        maps: ndarray::Array3::zeros((0, 0, 0)),
    }
}

/// The values as f32, little-endian, with their shape.
fn f32_tensor(a: &ArrayD<f64>) -> (Vec<usize>, Vec<u8>) {
    let bytes = a.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect();
    (a.shape().to_vec(), bytes)
}

/// Computes one case with the f64 interpreter, in the format of the PyTorch cases
/// (tests/fixtures/README.md): inference output, training-mode loss and gradients,
/// and 3 optimizer steps.
fn own_case_tensors(p: &mut Problem) -> Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> {
    use safetensors::Dtype;
    let mut out = Vec::new();
    let f32s = |name: String, a: &ArrayD<f64>, out: &mut Vec<_>| {
        let (shape, bytes) = f32_tensor(a);
        out.push((name, Dtype::F32, shape, bytes));
    };
    let model = p.net.model().clone();
    let train = model.train.clone().expect("a train block");
    let param_names: Vec<String> = model.params().into_iter().map(|p| p.name).collect();
    let buffer_names: Vec<String> = model.buffers().into_iter().map(|b| b.name).collect();
    f32s("input".to_string(), &p.x, &mut out);
    let target = match train.loss {
        Loss::CrossEntropy => {
            let bytes = p.labels.iter().flat_map(|&l| (l as i64).to_le_bytes()).collect();
            out.push(("target".to_string(), Dtype::I64, vec![p.labels.len()], bytes));
            Target::Labels(p.labels.view())
        }
        Loss::Mse | Loss::BinaryCrossEntropy => {
            f32s("target".to_string(), &p.values.mapv(f64::from), &mut out);
            Target::Values(p.values.view())
        }
    };
    for (name, value) in param_names.iter().zip(p.net.params()) {
        f32s(format!("params/{name}"), value, &mut out);
    }
    for (name, value) in buffer_names.iter().zip(p.net.buffers()) {
        f32s(format!("buffers/{name}"), value, &mut out);
    }
    let output = p.net.predict(p.x.view()).expect("predict");
    f32s("expected/output".to_string(), &output, &mut out);
    let g = p.net.gradients(p.x.view(), &target, None).expect("gradients");
    f32s(
        "expected/loss".to_string(),
        &ArrayD::from_elem(IxDyn(&[1]), g.loss),
        &mut out,
    );
    f32s("grad/input".to_string(), &g.input, &mut out);
    for (name, value) in param_names.iter().zip(&g.params) {
        f32s(format!("grad/{name}"), value, &mut out);
    }
    let mut optimizer = Optimizer::<f64>::new(train.optimizer, train.weight_decay);
    let mut losses = Vec::new();
    for step in 1..=3 {
        let g = p.net.gradients(p.x.view(), &target, None).expect("gradients");
        losses.push(g.loss);
        for (dst, src) in p.net.buffers_mut().iter_mut().zip(g.buffers) {
            *dst = src;
        }
        optimizer.step(p.net.params_mut(), &g.params, &[], train.learning_rate(0));
        if step == 1 || step == 3 {
            for (name, value) in param_names.iter().zip(p.net.params()) {
                f32s(format!("step{step}/{name}"), value, &mut out);
            }
            for (name, value) in buffer_names.iter().zip(p.net.buffers()) {
                f32s(format!("step{step}/{name}"), value, &mut out);
            }
        }
    }
    f32s(
        "step_losses".to_string(),
        &ArrayD::from_shape_vec(IxDyn(&[3]), losses).expect("3 losses"),
        &mut out,
    );
    out
}

const OWN_SEED: u64 = 2026;

#[test]
fn own_fixture_models_pass_the_gradient_check() {
    for (_, source, batch) in OWN_CASES {
        own_problem(source, *batch, OWN_SEED).check();
    }
}

/// A safetensors file with `metadata` (in this order) in its header's `__metadata__`.
/// safetensors' own writer takes a `HashMap`, whose order changes from run to run; this
/// inserts the entries after the header's `{` instead, so regenerated files are
/// byte-identical. The data offsets count from the end of the header, so they stay.
fn with_metadata(file: &[u8], metadata: &[(&str, String)]) -> Vec<u8> {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let header_len = u64::from_le_bytes(file[..8].try_into().expect("8 bytes")) as usize;
    let header = std::str::from_utf8(&file[8..8 + header_len]).expect("a UTF-8 header");
    let entries: Vec<String> = metadata
        .iter()
        .map(|(k, v)| format!("{}:{}", quote(k), quote(v)))
        .collect();
    let body = header.trim_end().strip_prefix('{').expect("a JSON object");
    let mut header = format!("{{\"__metadata__\":{{{}}},{body}", entries.join(","));
    // The data starts 8-byte aligned, as safetensors writes it.
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&file[8 + header_len..]);
    out
}

/// Writes tests/fixtures_own/<name>/{model.cnn, case.safetensors} for every own case,
/// each after its finite-difference check passes.
#[test]
#[ignore = "writes tests/fixtures_own/; run it to regenerate the interpreter's own cases"]
fn write_own_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures_own");
    for (name, source, batch) in OWN_CASES {
        own_problem(source, *batch, OWN_SEED).check();
        let mut problem = own_problem(source, *batch, OWN_SEED);
        let tensors = own_case_tensors(&mut problem);
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(n, dtype, shape, bytes)| {
                let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes).expect("a tensor");
                (n.clone(), view)
            })
            .collect();
        let metadata = [
            ("case", name.to_string()),
            (
                "generator",
                "cnnc tests/integration/interp_gradcheck.rs write_own_fixtures (f64 interpreter)".to_string(),
            ),
            ("seed", OWN_SEED.to_string()),
            (
                "tolerances",
                r#"{"expected/output": [0.0001, 1e-06], "expected/loss": [0.0001, 1e-06], "step_losses": [0.0001, 1e-06], "grad/": [0.001, 1e-05], "step1/": [0.0001, 1e-06], "step3/": [0.0001, 1e-06]}"#.to_string(),
            ),
        ];
        let bytes = with_metadata(&safetensors::serialize(views, None).expect("serialize"), &metadata);
        let check = safetensors::SafeTensors::read_metadata(&bytes).expect("a valid header");
        assert_eq!(
            check.1.metadata().as_ref().and_then(|m| m.get("seed")),
            Some(&OWN_SEED.to_string())
        );
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("create the case directory");
        std::fs::write(dir.join("model.cnn"), source).expect("write model.cnn");
        std::fs::write(dir.join("case.safetensors"), bytes).expect("write case.safetensors");
    }
}

#[test]
fn small_resnet_from_text() {
    // Every v2 construct at once, through the parser: normalize, a named layer,
    // batchnorm with shorthands, a dilated depthwise conv, grouped convs, bias off,
    // a residual block nested in another, a projection shortcut, silu and gelu.
    gradcheck(
        "model R {
            input 2x7x7 normalize mean 0.5 -0.25 std 0.5 2.0
            stem: conv 4 kernel 3 pad 1 bias off
            batchnorm silu
            residual {
                conv 4 kernel 3 pad 2 dilation 2 groups 4 bias off
                batchnorm relu
                conv 4 kernel 1 bias off
                batchnorm
            } gelu
            residual {
                conv 6 kernel 3 stride 2 pad 1 groups 2 bias off
                batchnorm tanh
                residual { conv 6 kernel 3 pad 1 groups 3 silu }
                shortcut { conv 6 kernel 1 stride 2 bias off batchnorm }
            } relu
            avgpool global
            flatten
            dense 3 softmax
            train { loss cross_entropy optimizer sgd lr 0.1 batch 4 }
        }",
        3,
    );
}
