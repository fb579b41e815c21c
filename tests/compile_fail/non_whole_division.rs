use cnnc::Train;

cnn_macros::cnn! {
    model Digits {
        input 1x28x28
        conv 16 kernel 5 stride 2
        flatten
        dense 10 softmax
        train { loss cross_entropy optimizer sgd lr 0.1 }
    }
}

fn main() {
    // The stub keeps this code free of secondary errors.
    let model = Digits::new(0);
    let _ = model.learning_rate(0);
}
