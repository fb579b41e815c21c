cnn_macros::cnn! {
    model Tiny {
        input 4
        dense 2
        train { loss mse optimizer sgd lr -0.1 }
    }
}

fn main() {}
