//! A warning (height x width x channels) inside `cnn!` is a compiler warning at the
//! input, shown here next to the error that follows from it.
cnn_macros::cnn! {
    model Net {
        input 28x28x1
        conv 6 kernel 5 pad 2 relu
        maxpool 2
        flatten
        dense 10 softmax
    }
}

fn main() {}
