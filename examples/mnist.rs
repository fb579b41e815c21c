//! The main job: LeNet (examples/models/lenet.cnn) trained on the bundled MNIST
//! subset, 8,000 training and 2,000 test digits.
//!
//!     cargo run --release --example mnist
//!     cargo run --release --example mnist -- --resume lenet.ckpt
//!
//! A checkpoint (`lenet.ckpt`) is written at the end of every epoch. The first
//! Ctrl-C finishes the current step, writes a checkpoint there, prints how to
//! resume and exits with status 130; a second Ctrl-C exits at once (the last
//! checkpoint written stays whole). `--resume PATH` continues a run, ending with
//! the same weights, bit for bit, as a run never stopped (with the same number of
//! threads). At the end: the test accuracy, the confusion matrix, the weights
//! (`lenet.safetensors`) and the training curves (`training.svg`) beside them.

use cnnc::rt::confusion::confusion_matrix;
use cnnc::rt::data::{mnist, Split};
use cnnc::rt::fit::{fit_resumable, FitOptions};
use cnnc::rt::plot::training_svg;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[path = "common/args.rs"]
mod args;

cnn_macros::cnn!(file = "examples/models/lenet.cnn");

/// Set by the first Ctrl-C; `fit_resumable` checks it between steps.
static STOP: AtomicBool = AtomicBool::new(false);

const WEIGHTS: &str = "lenet.safetensors";
const CHECKPOINT: &str = "lenet.ckpt";
const CURVES: &str = "training.svg";
const USAGE: &str = "usage: mnist [--resume CHECKPOINT]";

fn main() {
    let resume = match args::resume_argument(USAGE) {
        Ok(resume) => resume,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let handler = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: exiting now");
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: finishing the current step and writing a checkpoint (Ctrl-C again exits at once)");
    });
    if let Err(e) = handler {
        eprintln!("warning: Ctrl-C will not write a checkpoint: {e}");
    }
    match run(resume) {
        Ok(()) => {}
        Err(cnnc::Error::Interrupted { checkpoint, .. }) => {
            let path = checkpoint.unwrap_or_else(|| CHECKPOINT.to_string());
            eprintln!("stopped; checkpoint written to {path}");
            eprintln!("resume with: cargo run --release --example mnist -- --resume {path}");
            std::process::exit(130);
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn run(resume: Option<PathBuf>) -> Result<(), cnnc::Error> {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");
    let train = mnist(data, Split::Train)?;
    let test = mnist(data, Split::Test)?;
    let fit = LeNet::FIT;
    println!(
        "LeNet: {} parameters; {} training and {} test images; {} epochs of batch {}",
        LeNet::PARAM_COUNT,
        train.len(),
        test.len(),
        fit.epochs,
        fit.batch
    );
    let mut model = LeNet::new(fit.seed);
    let mut options = FitOptions::default().checkpoint(CHECKPOINT).stop(&STOP);
    if let Some(path) = resume {
        options = options.resume(path);
    }
    let start = Instant::now();
    let report = fit_resumable(&mut model, &train, &fit, &options)?;
    let seconds = start.elapsed().as_secs_f64();
    let epoch_seconds: f64 = report.history.iter().map(|e| e.seconds).sum();
    println!(
        "trained in {seconds:.1}s ({:.2}s per epoch)",
        epoch_seconds / report.history.len().max(1) as f64
    );
    let result = model.evaluate(&test)?;
    model.save_safetensors(WEIGHTS)?;
    let curves = Path::new(WEIGHTS).with_file_name(CURVES);
    training_svg(&report, &curves)?;
    println!("{}", confusion_matrix(&mut model, &test, &[])?);
    println!(
        "test loss {:.4}; weights saved to {WEIGHTS}, training curves to {}, checkpoint {CHECKPOINT}",
        result.loss,
        curves.display()
    );
    println!("test accuracy: {:.2}%", result.accuracy.unwrap_or(0.0) * 100.0);
    Ok(())
}
