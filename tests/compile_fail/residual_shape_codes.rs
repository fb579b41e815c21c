//! Errors inside `cnn!` keep their code and their secondary places, as `cnnc check`
//! shows them.
cnn_macros::cnn! {
    model Net {
        input 8x16x16
        residual {
            conv 16 kernel 3 stride 2 pad 1 round floor
            relu
            shortcut {
                conv 16 kernel 1
            }
        }
    }
}

fn main() {}
