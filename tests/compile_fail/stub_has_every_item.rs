//! After a model error, code that uses the model's items shows no follow-on error.
use cnnc::{Model, Train};

cnn_macros::cnn! {
    model Net {
        input 1x8x8
        conv 4 kernal 3
        flatten
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.1 }
    }
}

fn main() {
    let [c, h, w] = Net::INPUT_SHAPE;
    let mut net = Net::new(0);
    let x = cnnc::ndarray::ArrayD::<f32>::zeros(vec![1, c, h, w]);
    let mut out = vec![0.0; Net::OUTPUT_SHAPE.iter().product::<usize>()];
    let _ = net.predict_into(x.view(), &mut out);
    let _ = (Net::PARAM_COUNT, Net::BATCH, Net::FIT.quiet(), net.param_names(), net.learning_rate(0));
}
