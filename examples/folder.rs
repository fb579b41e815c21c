//! Trains a model on your own images: a folder with one subfolder per class.
//!
//!     cargo run --release --example folder -- PATH [MODEL.cnn]
//!
//! PATH/train/CLASS/*.png|jpg are the training images; PATH/test/CLASS/... the
//! test images (without PATH/test, a fifth of PATH/train is held out as the test
//! set). Files that are not PNG or JPEG images are skipped and counted. Images of
//! another size are resized to the model's input.
//!
//! Without MODEL.cnn, the default model `FolderNet` (below) is used: a small
//! residual network with batchnorm for 32x32 color images and up to 10 classes,
//! trained with flips, random crops and a cosine schedule. It is compiled with
//! `cnn!`, so it runs as generated code. A MODEL.cnn (a model with a train block
//! whose input is an image of 1 or 3 channels and whose output has one value per
//! class) runs in the reference interpreter, which is much slower (about 35 times
//! on the default model's size): for speed, compile it with `cnn!` as here.
//!
//! Writes the weights (`NAME.safetensors`), the class names beside them
//! (`classes.txt`) and the training curves (`NAME-training.svg`) to the current
//! folder, prints the confusion matrix and, last, `test accuracy: XX.XX%`.

use cnnc::interp::Interpreter;
use cnnc::ir::Loss;
use cnnc::ndarray::{ArrayD, ArrayViewD, Axis, Slice};
use cnnc::rt::confusion::confusion_matrix;
use cnnc::rt::data::{
    class_names, image_folder, image_folder_with_classes, save_classes, Dataset, FolderOptions, ImageFolder,
};
use cnnc::rt::fit::{evaluate, fit, FitConfig};
use cnnc::rt::plot::training_svg;
use cnnc::rt::weights::save_safetensors;
use cnnc::{Error, Model, Train};
use std::path::{Path, PathBuf};

cnn_macros::cnn! {
    // The default model: 32x32 color images, up to 10 classes (the outputs past
    // the last class are never a target, so they learn to stay low).
    model FolderNet {
        input 3x32x32
        conv 16 kernel 3 pad 1 bias off
        batchnorm relu
        maxpool 2
        residual {
            conv 16 kernel 3 pad 1 bias off
            batchnorm relu
            conv 16 kernel 3 pad 1 bias off
            batchnorm
        } relu
        residual {
            conv 32 kernel 3 stride 2 pad 1 round floor bias off
            batchnorm relu
            conv 32 kernel 3 pad 1 bias off
            batchnorm
            shortcut {
                conv 32 kernel 1 stride 2 round floor bias off
                batchnorm
            }
        } relu
        avgpool global
        flatten
        dense 10 softmax
        train {
            loss cross_entropy
            optimizer adam lr 0.005
            schedule cosine
            batch 16
            epochs 30
            validation 0.1
            augment flip horizontal crop 4
        }
    }
}

/// The classes the default model can tell apart: its outputs.
const DEFAULT_CLASSES: usize = 10;

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
/// weights, classes and curves to `out`; returns the test accuracy. Without
/// `model_file`, the default model runs as generated code.
pub fn run(data: &Path, model_file: Option<&Path>, out: &Path) -> Result<f64, Error> {
    let train_dir = data.join("train");
    if !train_dir.is_dir() {
        return Err(Error::Format {
            path: data.display().to_string(),
            message: "expected a folder `train` (train/CLASS/IMAGE) inside".into(),
        });
    }
    let Some(file) = model_file else {
        let classes = class_names(&train_dir)?.len();
        if classes > DEFAULT_CLASSES {
            return Err(Error::Config(format!(
                "{} holds {classes} classes; the default model tells apart at most {DEFAULT_CLASSES}: \
                 give a MODEL.cnn with one output per class",
                train_dir.display()
            )));
        }
        let mut model = FolderNet::new(FolderNet::FIT.seed);
        return train_and_test(&mut model, "FolderNet", true, data, &FolderNet::FIT, out);
    };
    let text = std::fs::read_to_string(file).map_err(|source| Error::Io {
        path: file.display().to_string(),
        source,
    })?;
    let source_name = file.display().to_string();
    let models = cnnc::compile(&text).map_err(|d| Error::Compile(d.render(&source_name, &text)))?;
    let Some(ir) = models.iter().find(|m| m.train.is_some()) else {
        return Err(Error::Config(format!("{source_name}: no model with a train block")));
    };
    let t = ir.train.clone().ok_or_else(|| Error::Config("no train block".into()))?;
    let mut model = Interpreter::from_source(&text, &ir.name, t.seed)?;
    println!(
        "note: {source_name} runs in the reference interpreter, the slow path (generated code is \
         about 35 times faster): compile it with `cnn!` as this example compiles its default model"
    );
    let config = FitConfig {
        validation: t.validation,
        seed: t.seed,
        // One model per run: its augmentations live as long as the program.
        augment: Box::leak(t.augment.clone().into_boxed_slice()),
        ..FitConfig::new(t.loss, t.epochs, t.batch)
    };
    train_and_test(&mut model, &ir.name, false, data, &config, out)
}

/// Reads the folders, trains `model` as `config` says, saves and tests it. With
/// `spare_outputs`, the model may have more outputs than the folder has classes.
fn train_and_test<M: Train>(
    model: &mut M,
    name: &str,
    spare_outputs: bool,
    data: &Path,
    config: &FitConfig,
    out: &Path,
) -> Result<f64, Error> {
    let (train_dir, test_dir) = (data.join("train"), data.join("test"));
    let options = FolderOptions {
        skip_bad: true,
        ..FolderOptions::for_input(model.input_shape())?
    };
    let ImageFolder {
        data: train_set,
        classes,
        mut skipped,
        ..
    } = image_folder(&train_dir, &options)?;
    let outputs: usize = model.output_shape().iter().product();
    let fits = classes.len() == outputs || (spare_outputs && classes.len() < outputs);
    if !fits || config.loss != Loss::CrossEntropy {
        return Err(Error::Config(format!(
            "model {name} needs one output per class and the cross_entropy loss; it has {outputs} outputs, \
             and {} holds {} classes ({})",
            train_dir.display(),
            classes.len(),
            classes.join(", ")
        )));
    }
    let (train, test) = if test_dir.is_dir() {
        let test = image_folder_with_classes(&test_dir, &classes, &options)?;
        skipped.extend(test.skipped);
        (train_set, test.data)
    } else {
        println!(
            "no {}: holding out a fifth of the training images as the test set",
            test_dir.display()
        );
        train_set.split(0.2, config.seed)
    };
    if let Some(first) = skipped.first() {
        println!(
            "skipped {} files that are not images or cannot be read; the first: {first}",
            skipped.len()
        );
    }
    let params: usize = model
        .param_names()
        .iter()
        .filter_map(|n| model.param(n))
        .map(|p| p.len())
        .sum();
    println!(
        "{name}: {params} parameters; {} classes ({}); {} training and {} test images",
        classes.len(),
        classes.join(", "),
        train.len(),
        test.len()
    );
    let report = fit(model, &train, config)?;

    let weights = out.join(format!("{}.safetensors", name.to_lowercase()));
    save_safetensors(model, &weights)?;
    let classes_file = save_classes(&weights, &classes)?;
    let curves = out.join(format!("{}-training.svg", name.to_lowercase()));
    training_svg(&report, &curves)?;
    println!(
        "saved {}, {} and {}",
        weights.display(),
        classes_file.display(),
        curves.display()
    );
    test_report(model, &test, &classes, config)
}

/// Prints the confusion matrix and the test loss and accuracy over the classes'
/// outputs; returns the accuracy.
fn test_report<M: Model>(model: &mut M, test: &Dataset, classes: &[String], config: &FitConfig) -> Result<f64, Error> {
    let mut heads = FirstOutputs {
        model,
        shape: [classes.len()],
    };
    println!("{}", confusion_matrix(&mut heads, test, classes)?);
    let result = evaluate(&mut heads, test, config.loss, config.batch)?;
    let accuracy = result.accuracy.unwrap_or(0.0);
    println!("test loss {:.4}", result.loss);
    println!("test accuracy: {:.2}%", accuracy * 100.0);
    Ok(accuracy)
}

/// The first `shape[0]` outputs of a classifier: the default model's classes
/// when the folder has fewer than its 10 (the whole output otherwise).
struct FirstOutputs<'a, M> {
    model: &'a mut M,
    shape: [usize; 1],
}

impl<M: Model> Model for FirstOutputs<'_, M> {
    fn input_shape(&self) -> &[usize] {
        self.model.input_shape()
    }
    fn output_shape(&self) -> &[usize] {
        &self.shape
    }
    fn param_names(&self) -> Vec<String> {
        self.model.param_names()
    }
    fn param(&self, name: &str) -> Option<ArrayD<f32>> {
        self.model.param(name)
    }
    fn set_param(&mut self, name: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error> {
        self.model.set_param(name, value)
    }
    fn predict(&mut self, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>, Error> {
        let y = self.model.predict(x)?;
        Ok(y.slice_axis(Axis(1), Slice::from(0..self.shape[0])).to_owned())
    }
}
