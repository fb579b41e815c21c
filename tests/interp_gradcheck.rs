//! Finite-difference checks, in f64, of the interpreter's backward pass: every layer
//! kind and every loss. The analytic gradients come from the same generic kernels the
//! f32 interpreter runs (`Network<f64>`); the numeric ones from central differences
//! of the loss, `(L(v + h) - L(v - h)) / 2h`.

use cnnc::interp::Network;
use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::{ir, Target};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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

/// Compares every gradient element of the input and the parameters (or every
/// `stride`-th one for larger tensors) with its finite difference; `batch` samples.
fn gradcheck(source: &str, batch: usize) {
    let model: ir::Model = cnnc::compile(source)
        .unwrap_or_else(|d| panic!("{}", d.render("test", source)))
        .remove(0);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let params: Vec<ArrayD<f64>> = model.params().iter().map(|p| random(&p.shape, 0.5, &mut rng)).collect();
    let mut net = Network::new(model.clone(), params).expect("parameters of the model's shapes");
    let mut input_shape = vec![batch];
    input_shape.extend(model.input.dims());
    let mut x = random(&input_shape, 1.0, &mut rng);
    let out = model.output();
    let labels: Array1<usize> = (0..batch).map(|_| rng.random_range(0..out.len())).collect();
    let mut values_shape = vec![batch];
    values_shape.extend(out.dims());
    let values = ArrayD::from_shape_simple_fn(IxDyn(&values_shape), || rng.random_range(0.0f32..1.0));
    let target = match model.train.as_ref().map(|t| t.loss) {
        Some(ir::Loss::CrossEntropy) => Target::Labels(labels.view()),
        _ => Target::Values(values.view()),
    };

    let mut dropout = ChaCha8Rng::seed_from_u64(99);
    let g = net.gradients(x.view(), &target, Some(&mut dropout)).expect("gradients");
    assert!(
        (g.loss - loss(&net, &x, &target)).abs() < 1e-12,
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
        let plus = loss(&net, &x, &target);
        x.as_slice_mut().expect("contiguous")[i] = v - H;
        let minus = loss(&net, &x, &target);
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
            let plus = loss(&net, &x, &target);
            net.params_mut()[k].as_slice_mut().expect("contiguous")[i] = v - H;
            let minus = loss(&net, &x, &target);
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
