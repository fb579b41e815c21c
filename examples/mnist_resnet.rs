//! A small residual network with batchnorm (examples/models/mnist_resnet.cnn)
//! trained on the bundled MNIST subset, 8,000 training and 2,000 test digits.
//!
//!     cargo run --release --example mnist_resnet
//!
//! The same network and recipe in PyTorch: `python docs/mnist_resnet.py`; the saved
//! weights load into it unchanged: `python docs/load_resnet_in_pytorch.py`.

use cnnc::rt::data::{mnist, Split};
use std::time::Instant;

cnn_macros::cnn!(file = "examples/models/mnist_resnet.cnn");

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), cnnc::Error> {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");
    let train = mnist(data, Split::Train)?;
    let test = mnist(data, Split::Test)?;
    let fit = MnistResNet::FIT;
    println!(
        "MnistResNet: {} parameters; {} training and {} test images; {} epochs of batch {}",
        MnistResNet::PARAM_COUNT,
        train.len(),
        test.len(),
        fit.epochs,
        fit.batch
    );
    let mut model = MnistResNet::new(fit.seed);
    let start = Instant::now();
    let report = model.fit(&train)?; // prints a line per epoch
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "trained in {seconds:.1}s ({:.2}s per epoch)",
        seconds / report.history.len().max(1) as f64
    );
    let result = model.evaluate(&test)?;
    let path = "mnist_resnet.safetensors";
    model.save_safetensors(path)?;
    println!("test loss {:.4}; weights saved to {path}", result.loss);
    println!("test accuracy: {:.2}%", result.accuracy.unwrap_or(0.0) * 100.0);
    Ok(())
}
