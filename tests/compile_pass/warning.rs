//! A warning does not stop `cnn!`: the model is generated, and `#[allow(deprecated)]`
//! on the module around it silences the warning (even under `deny(warnings)`).
#![deny(warnings)]

#[allow(deprecated)]
mod digits {
    cnn_macros::cnn! {
        model Digits { input 28x28x1 flatten dense 10 softmax }
    }
}

fn main() {
    let _ = digits::Digits::new(0);
}
