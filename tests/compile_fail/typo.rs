cnn_macros::cnn! {
    model Tiny {
        input 3x8x8
        conv 4 kernal 3
    }
}

fn main() {}
