//! A model named like a trait the README has users import is the checker's error at
//! the name, not rustc's E0252 at the `cnn!` call.
#[allow(unused_imports)]
use cnnc::{Model, Train};

cnn_macros::cnn! {
    model Model {
        input 4
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.1 }
    }
}

fn main() {}
