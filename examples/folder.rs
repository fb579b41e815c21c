//! Trains a model on your own images: a folder with one subfolder per class.
//!
//!     cargo run --release --example folder -- PATH [MODEL.cnn]
//!
//! PATH/train/CLASS/*.png|jpg are the training images; PATH/test/CLASS/... the
//! test images (without PATH/test, a fifth of PATH/train is held out as the test
//! set). MODEL.cnn is a model with a train block whose input is an image of 1 or
//! 3 channels and whose output has one value per class; without it, a small
//! network for 32x32 color images is used. Images of another size are resized.
//!
//! Writes the weights (`NAME.safetensors`), the class names beside them
//! (`classes.txt`) and the training curves (`NAME-training.svg`) to the current
//! folder, prints the confusion matrix and, last, `test accuracy: XX.XX%`.
//!
//! The model runs in the reference interpreter for now.

use cnnc::interp::Interpreter;
use cnnc::ir::Loss;
use cnnc::rt::confusion::confusion_matrix;
use cnnc::rt::data::{class_names, image_folder, image_folder_with_classes, save_classes, FolderOptions};
use cnnc::rt::fit::{evaluate, fit, FitConfig};
use cnnc::rt::plot::training_svg;
use cnnc::rt::weights::save_safetensors;
use cnnc::{Error, Model};
use std::path::{Path, PathBuf};

/// The model used without a .cnn file, for `classes` classes.
fn default_model(classes: usize) -> String {
    format!(
        "model FolderNet {{
    input 3x32x32
    conv 16 kernel 3 pad 1 relu
    maxpool 2
    conv 32 kernel 3 pad 1 relu
    maxpool 2
    flatten
    dense 64 relu
    dense {classes} softmax
    train {{
        loss cross_entropy
        optimizer adam lr 0.001
        batch 32
        validation 0.1
        epochs 10
    }}
}}"
    )
}

#[allow(dead_code)] // The test runs `run` and not `main`.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, model) = match args.as_slice() {
        [path] => (PathBuf::from(path), None),
        [path, model] => (PathBuf::from(path), Some(PathBuf::from(model))),
        _ => {
            eprintln!("usage: cargo run --release --example folder -- PATH [MODEL.cnn]");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&path, model.as_deref(), Path::new(".")) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Trains on `data/train`, tests on `data/test` (or a held-out fifth), writes the
/// weights, classes and curves to `out`; returns the test accuracy.
pub fn run(data: &Path, model_file: Option<&Path>, out: &Path) -> Result<f64, Error> {
    let train_dir = data.join("train");
    let test_dir = data.join("test");
    if !train_dir.is_dir() {
        return Err(Error::Format {
            path: data.display().to_string(),
            message: "expected a folder `train` (train/CLASS/IMAGE) inside".into(),
        });
    }
    let text = match model_file {
        Some(p) => std::fs::read_to_string(p).map_err(|source| Error::Io {
            path: p.display().to_string(),
            source,
        })?,
        // The class count sets the default model's output.
        None => default_model(class_names(&train_dir)?.len()),
    };
    let source_name = model_file.map_or("<default model>".to_string(), |p| p.display().to_string());
    let models = cnnc::compile(&text).map_err(|d| Error::Compile(d.render(&source_name, &text)))?;
    let Some(ir) = models.iter().find(|m| m.train.is_some()) else {
        return Err(Error::Config(format!("{source_name}: no model with a train block")));
    };
    let train_config = ir.train.clone().ok_or_else(|| Error::Config("no train block".into()))?;
    let mut model = Interpreter::from_source(&text, &ir.name, train_config.seed)?;

    let options = FolderOptions::for_input(model.input_shape())?;
    let train_set = image_folder(&train_dir, &options)?;
    let classes = train_set.classes.clone();
    let outputs: usize = model.output_shape().iter().product();
    if outputs != classes.len() || train_config.loss != Loss::CrossEntropy {
        return Err(Error::Config(format!(
            "{}: model {} needs one output per class and the cross_entropy loss; it has {outputs} outputs, \
             and {} holds {} classes ({})",
            source_name,
            ir.name,
            train_dir.display(),
            classes.len(),
            classes.join(", ")
        )));
    }
    let (train, test) = if test_dir.is_dir() {
        let test = image_folder_with_classes(&test_dir, &classes, &options)?;
        (train_set.data, test.data)
    } else {
        println!(
            "no {}: holding out a fifth of the training images as the test set",
            test_dir.display()
        );
        train_set.data.split(0.2, train_config.seed)
    };
    println!(
        "{}: {} parameters; {} classes ({}); {} training and {} test images",
        ir.name,
        ir.param_count(),
        classes.len(),
        classes.join(", "),
        train.len(),
        test.len()
    );
    if !train_config.augment.is_empty() {
        println!("note: this example does not apply `augment` yet");
    }
    let config = FitConfig {
        loss: train_config.loss,
        epochs: train_config.epochs,
        batch: train_config.batch,
        validation: train_config.validation,
        seed: train_config.seed,
        ..FitConfig::new(train_config.loss, train_config.epochs, train_config.batch)
    };
    let report = fit(&mut model, &train, &config)?;

    let weights = out.join(format!("{}.safetensors", ir.name.to_lowercase()));
    save_safetensors(&model, &weights)?;
    let classes_file = save_classes(&weights, &classes)?;
    let curves = out.join(format!("{}-training.svg", ir.name.to_lowercase()));
    training_svg(&report, &curves)?;
    println!(
        "saved {}, {} and {}",
        weights.display(),
        classes_file.display(),
        curves.display()
    );
    println!("{}", confusion_matrix(&mut model, &test, &classes)?);
    let result = evaluate(&mut model, &test, config.loss, config.batch)?;
    let accuracy = result.accuracy.unwrap_or(0.0);
    println!("test loss {:.4}", result.loss);
    println!("test accuracy: {:.2}%", accuracy * 100.0);
    Ok(accuracy)
}
