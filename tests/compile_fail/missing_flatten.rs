cnn_macros::cnn! {
    model Tiny {
        input 3x8x8
        conv 4 kernel 3 relu
        dense 10
    }
}

fn main() {}
