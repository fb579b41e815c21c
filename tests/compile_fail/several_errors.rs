cnn_macros::cnn! {
    model Tiny {
        input 3x8x8
        conv 0 kernel 3
        maxpool 2 pad 2
        train {
            loss cross_entropy
            optimizer adam lr 0 beta1 1.5
            batch 0
        }
    }
}

fn main() {}
