//! A model name that is not a Rust type name is the checker's error, at the name.
cnn_macros::cnn! {
    model fn { input 4 dense 2 }
}

fn main() {}
