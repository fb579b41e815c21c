//! The residual examples: examples/models/resnet8.cnn (the spec's ResNet-8) and
//! examples/models/mnist_resnet.cnn (examples/mnist_resnet.rs) compile through
//! `cnn!(file = ...)`, agree with the interpreter (outputs, gradients, three training
//! steps and the batchnorm buffers after them), carry the tensor names the spec and
//! the PyTorch twin (docs/mnist_resnet.py) use, and round-trip through safetensors
//! with `num_batches_tracked`.

use crate::common;

use cnnc::interp::Interpreter;
use cnnc::ndarray::Array1;
use cnnc::{Model, Target, Train};
use common::{agree, close, input};

mod resnet8 {
    cnn_macros::cnn!(file = "examples/models/resnet8.cnn");
}
mod mnist_resnet {
    cnn_macros::cnn!(file = "examples/models/mnist_resnet.cnn");
}

fn interpreter(file: &str, model: &str) -> Interpreter {
    let path = format!("{}/examples/models/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("example model");
    Interpreter::from_source(&text, model, 0).expect("valid example")
}

/// `agree`, then the running statistics after its three training steps.
fn agree_with_buffers(a: &mut dyn Train, b: &mut dyn Train, shape: &[usize]) {
    let x = input(shape);
    let labels = Array1::from_shape_fn(shape[0], |i| (i * 3) % 10);
    assert_eq!(a.buffer_names(), b.buffer_names());
    agree(a, b, &x, Target::Labels(labels.view()));
    for name in a.buffer_names() {
        close(
            &format!("{name} after 3 steps"),
            &a.buffer(&name).expect("listed buffer"),
            &b.buffer(&name).expect("listed buffer"),
            1e-3,
            1e-5,
        );
    }
}

#[test]
fn resnet8_trains_like_the_interpreter() {
    agree_with_buffers(
        &mut resnet8::ResNet8::new(1),
        &mut interpreter("resnet8.cnn", "ResNet8"),
        &[4, 3, 32, 32],
    );
}

#[test]
fn mnist_resnet_trains_like_the_interpreter() {
    agree_with_buffers(
        &mut mnist_resnet::MnistResNet::new(1),
        &mut interpreter("mnist_resnet.cnn", "MnistResNet"),
        &[4, 1, 28, 28],
    );
}

#[test]
fn resnet8_has_the_tensors_the_spec_names() {
    let model = resnet8::ResNet8::new(0);
    let shape = |name: &str| model.param(name).map(|p| p.shape().to_vec());
    assert_eq!(shape("conv1.weight"), Some(vec![16, 3, 3, 3]));
    assert_eq!(shape("batchnorm1.weight"), Some(vec![16]));
    assert_eq!(shape("residual1.conv1.weight"), Some(vec![16, 16, 3, 3]));
    assert_eq!(shape("residual2.shortcut.conv1.weight"), Some(vec![32, 16, 1, 1]));
    assert_eq!(shape("residual3.dw.weight"), Some(vec![32, 1, 3, 3]));
    assert_eq!(shape("conv1.bias"), None, "bias off");
    let mean = model.buffer("batchnorm1.running_mean").expect("a buffer");
    assert_eq!(mean.shape(), &[16]);
    assert!(mean.iter().all(|&v| v == 0.0), "running means start at 0");
    assert_eq!(model.output_shape(), &[10]);
}

/// The `state_dict` keys of docs/mnist_resnet.py's `MnistResNet` without the
/// `num_batches_tracked` entries (those are only in the weight file).
#[test]
fn mnist_resnet_names_are_the_pytorch_modules() {
    let bn = |p: &str| {
        ["weight", "bias", "running_mean", "running_var"]
            .map(|t| format!("{p}.{t}"))
            .to_vec()
    };
    let mut want = vec!["conv1.weight".to_string()];
    want.extend(bn("batchnorm1"));
    for (block, projection) in [("residual1", false), ("residual2", true), ("residual3", true)] {
        want.push(format!("{block}.conv1.weight"));
        want.extend(bn(&format!("{block}.batchnorm1")));
        want.push(format!("{block}.conv2.weight"));
        want.extend(bn(&format!("{block}.batchnorm2")));
        if projection {
            want.push(format!("{block}.shortcut.conv1.weight"));
            want.extend(bn(&format!("{block}.shortcut.batchnorm1")));
        }
    }
    want.extend(["dense1.weight".to_string(), "dense1.bias".to_string()]);
    let model = mnist_resnet::MnistResNet::new(0);
    let mut have = model.param_names();
    have.extend(model.buffer_names());
    have.sort();
    want.sort();
    assert_eq!(have, want);
    assert_eq!(mnist_resnet::MnistResNet::PARAM_COUNT, 77_754);
}

#[test]
fn mnist_resnet_weights_round_trip_with_num_batches_tracked() {
    let mut model = mnist_resnet::MnistResNet::new(3);
    let x = input(&[8, 1, 28, 28]);
    let labels = Array1::from_shape_fn(8, |i| i % 10);
    for _ in 0..2 {
        model.train_step(x.view(), Target::Labels(labels.view())).expect("step");
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("mnist_resnet.safetensors");
    model.save_safetensors(&path).expect("save");

    // The header (8-byte little-endian length, then JSON) lists one i64
    // `num_batches_tracked` per batchnorm layer, as PyTorch's state_dict has.
    let bytes = std::fs::read(&path).expect("saved file");
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + len]).expect("UTF-8 header");
    let tracked = header.matches(".num_batches_tracked\":{\"dtype\":\"I64\"").count();
    assert_eq!(tracked, 9, "one per batchnorm layer in {header}");

    let mut loaded = mnist_resnet::MnistResNet::new(4);
    loaded.load_safetensors(&path).expect("load");
    for name in model.param_names() {
        assert_eq!(model.param(&name), loaded.param(&name), "{name}");
    }
    for name in model.buffer_names() {
        assert_eq!(model.buffer(&name), loaded.buffer(&name), "{name}");
    }
    let (a, b) = (model.predict(x.view()).unwrap(), loaded.predict(x.view()).unwrap());
    assert_eq!(a, b, "same predictions in inference mode");
}

/// examples/models/resnet20.cnn (the benchmark network of `examples/bench.rs`, the
/// same text as `../shared/bench/resnet20.cnn`) has PyTorch's parameter count for
/// CIFAR ResNet-20 with projection shortcuts (272,474, as `torch_baseline.py` asserts),
/// and it takes a training step.
#[test]
fn resnet20_has_pytorchs_parameter_count() {
    let mut interp = interpreter("resnet20.cnn", "ResNet20");
    let count: usize = interp
        .param_names()
        .iter()
        .map(|n| interp.param(n).expect("listed").len())
        .sum();
    assert_eq!(count, 272_474);
    let x = input(&[2, 3, 32, 32]);
    let labels = Array1::from_shape_fn(2, |i| i * 7);
    let first = interp
        .train_step(x.view(), Target::Labels(labels.view()))
        .expect("a step");
    assert!(first.is_finite() && first > 0.0, "loss {first}");
}

/// The generated ResNet-8's gradients against the same network computed in f64 by
/// the interpreter's generic kernels: every tensor within 2e-5 of its largest
/// magnitude (measured: 2e-6 at worst; the f32 interpreter's is 7e-5).
#[test]
fn resnet8_gradients_match_an_f64_network() {
    use cnnc::interp::Network;
    let mut a = resnet8::ResNet8::new(1);
    let x = input(&[4, 3, 32, 32]);
    let labels = Array1::from_shape_fn(4, |i| (i * 3) % 10);
    let names = a.param_names();
    let params = names
        .iter()
        .map(|n| a.param(n).expect("listed").mapv(f64::from))
        .collect();
    let model = interpreter("resnet8.cnn", "ResNet8").model().clone();
    let net = Network::<f64>::new(model, params).expect("the model's parameters");
    let want = net
        .gradients(x.mapv(f64::from).view(), &Target::Labels(labels.view()), None)
        .expect("f64 gradients");
    let got = a.gradients(x.view(), Target::Labels(labels.view())).expect("gradients");
    for (i, name) in names.iter().enumerate() {
        let (g, w) = (&got.params[i].1, &want.params[i]);
        let scale = w.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
        let worst = g
            .iter()
            .zip(w)
            .map(|(&g, &w)| (f64::from(g) - w).abs())
            .fold(0.0, f64::max);
        assert!(
            worst <= 2e-5 * scale,
            "{name}: error {:e} of the gradient's scale",
            worst / scale
        );
    }
}
