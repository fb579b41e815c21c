//! Generated code names nothing from the caller's scope: every prelude name,
//! primitive and the `cnnc` crate itself shadowed here, next to the `cnn!` calls.
#![allow(dead_code, non_camel_case_types, clippy::all)]

type Result<T> = ::std::result::Result<T, ::std::boxed::Box<dyn ::std::error::Error>>;
struct Option;
struct Vec;
struct Box;
struct String;
struct Ok;
struct Some;
struct None;
struct Err;
mod f32 {}
mod usize {}
mod core {}
mod std {}
mod cnnc {}
mod rt {}
struct f64;
struct u64;

cnn_macros::cnn! {
    model Net { input 4 dense 2 softmax train { loss cross_entropy optimizer sgd lr 0.1 } }
}

// A user type named like the helpers of another model: no clash.
struct NetWorker;
struct Worker;

cnn_macros::cnn! {
    model AWorker { input 4 dense 2 }
    model A { input 4 dense 2 }
    model Conv { input 1x6x6 conv 2 kernel 3 relu flatten dense 2 train { loss mse optimizer adam lr 0.01 } }
}

// Models named like the generated module's own items.
mod inner {
    cnn_macros::cnn! {
        model Net { input 3 dense 1 }
        model Worker { input 3 dense 1 }
        model rt { input 3 dense 1 }
        model Conv1 { input 1x5x5 conv 1 kernel 3 flatten }
    }
}

fn main() -> Result<()> {
    let _n = Net::new(0);
    let _a = (AWorker::new(1), A::new(2), Conv::new(3));
    let _inner = (inner::Net::new(0), inner::Worker::new(0), inner::rt::new(0), inner::Conv1::new(0));
    let _shape: [::core::primitive::usize; 3] = Conv::INPUT_SHAPE;
    ::core::result::Result::Ok(())
}
