//! Every model in examples/models compiles through `cnn!(file = ...)` and agrees
//! with the interpreter: outputs always; gradients and three training steps for
//! the models that train without dropout (dropout draws differ by design).

use crate::common;

use cnnc::interp::Interpreter;
use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::{Model, Target};
use common::{agree, close, input};

mod lenet {
    cnn_macros::cnn!(file = "examples/models/lenet.cnn");
}
mod mlp_binary {
    cnn_macros::cnn!(file = "examples/models/mlp_binary.cnn");
}
mod regression {
    cnn_macros::cnn!(file = "examples/models/regression.cnn");
}
mod tour {
    cnn_macros::cnn!(file = "examples/models/tour.cnn");
}
mod vgg_cifar {
    cnn_macros::cnn!(file = "examples/models/vgg_cifar.cnn");
}

fn interpreter(file: &str, model: &str) -> Interpreter {
    let path = format!("{}/examples/models/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("example model");
    Interpreter::from_source(&text, model, 0).expect("valid example")
}

/// Predictions agree, starting from the same parameters.
fn same_predictions(generated: &mut dyn Model, interp: &mut dyn Model, x: &ArrayD<f32>) {
    for name in generated.param_names() {
        interp
            .set_param(&name, generated.param(&name).expect("listed").view())
            .expect("same parameters");
    }
    close(
        "output",
        &generated.predict(x.view()).unwrap(),
        &interp.predict(x.view()).unwrap(),
        1e-4,
        1e-6,
    );
}

#[test]
fn lenet_trains_like_the_interpreter() {
    let labels = Array1::from_shape_fn(5, |i| i % 10);
    let x = input(&[5, 1, 28, 28]);
    agree(
        &mut lenet::LeNet::new(1),
        &mut interpreter("lenet.cnn", "LeNet"),
        &x,
        Target::Labels(labels.view()),
    );
}

#[test]
fn spam_filter_trains_like_the_interpreter() {
    let x = input(&[6, 300]);
    let t = ArrayD::from_shape_fn(IxDyn(&[6, 1]), |ix| (ix[0] % 2) as f32);
    let (mut g, mut i) = (
        mlp_binary::SpamFilter::new(2),
        interpreter("mlp_binary.cnn", "SpamFilter"),
    );
    agree(&mut g, &mut i, &x, Target::Values(t.view()));
}

#[test]
fn regressions_train_like_the_interpreter() {
    let x = input(&[4, 12]);
    let t = input(&[4, 3]);
    agree(
        &mut regression::HousePrice::new(3),
        &mut interpreter("regression.cnn", "HousePrice"),
        &x,
        Target::Values(t.view()),
    );
    let x = input(&[3, 1, 16, 16]);
    let t = input(&[3, 1, 16, 16]);
    agree(
        &mut regression::Denoise::new(4),
        &mut interpreter("regression.cnn", "Denoise"),
        &x,
        Target::Values(t.view()),
    );
}

#[test]
fn inference_only_models_predict_like_the_interpreter() {
    same_predictions(
        &mut tour::Tour::new(5),
        &mut interpreter("tour.cnn", "Tour"),
        &input(&[2, 3, 29, 29]),
    );
    same_predictions(
        &mut tour::Head::new(6),
        &mut interpreter("tour.cnn", "Head"),
        &input(&[3, 8, 5, 5]),
    );
    same_predictions(
        &mut tour::conv::new(7),
        &mut interpreter("tour.cnn", "conv"),
        &input(&[2, 4]),
    );
}

#[test]
fn vgg_with_dropout_predicts_like_the_interpreter() {
    // Dropout is off in prediction, so the outputs must agree exactly as others do.
    same_predictions(
        &mut vgg_cifar::VggCifar::new(8),
        &mut interpreter("vgg_cifar.cnn", "VggCifar"),
        &input(&[2, 3, 32, 32]),
    );
}
