//! `cnnc predict MODEL.cnn [--weights W] [--seed S] (IMAGE... | --input X.npy --output Y.npy)`:
//! inference mode, through the run-time plan executor (generated code's kernels).

use crate::input::{class_names, read_image, top_k};
use cnnc::ir::{self, Op, Shape};
use cnnc::ndarray::ArrayD;
use cnnc::rt::exec::Executor;
use cnnc::Model as _;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What `predict` was asked to do, the source already read and checked.
pub struct Predict<'a> {
    pub model: &'a ir::Model,
    pub weights: Option<&'a Path>,
    pub seed: u64,
    pub images: &'a [PathBuf],
    pub input: Option<&'a Path>,
    pub output: Option<&'a Path>,
    pub top: usize,
    pub resize: bool,
}

/// Runs the prediction; returns what to print on stdout, or the error.
pub fn run(p: &Predict) -> Result<String, String> {
    let mut model = Executor::from_model(p.model, p.seed);
    match p.weights {
        Some(w) => cnnc::rt::weights::load_safetensors(&mut model, w).map_err(|e| e.to_string())?,
        None => eprintln!(
            "note: no --weights: predicting with {}'s seeded initialization (seed {})",
            p.model.name, p.seed
        ),
    }
    match (p.images, p.input, p.output) {
        ([], Some(input), Some(output)) => batch(&mut model, input, output),
        ([], None, None) => Err("give images to classify, or --input X.npy --output Y.npy".into()),
        ([], _, _) => Err("--input and --output go together".into()),
        (_, None, None) => images(&mut model, p),
        (_, _, _) => Err("give images or --input/--output, not both".into()),
    }
}

/// A NumPy batch `[N, ...input]` of f32 in, the outputs `[N, ...output]` out.
fn batch(model: &mut Executor, input: &Path, output: &Path) -> Result<String, String> {
    let shown = input.display();
    let file = std::fs::File::open(input).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let x = ArrayD::<f32>::read_npy(file).map_err(|e| format!("{shown}: not a .npy array of float32: {e}"))?;
    let y = model.predict(x.view()).map_err(|e| format!("{shown}: {e}"))?;
    let mut bytes = Vec::new();
    y.write_npy(&mut bytes).map_err(|e| e.to_string())?;
    cnnc::rt::atomic::write(output, &bytes).map_err(|e| e.to_string())?;
    Ok(format!(
        "{} -> {}: {} samples, outputs {:?}",
        shown,
        output.display(),
        y.shape().first().copied().unwrap_or(0),
        &y.shape()[1..]
    ))
}

/// Each image's top classes, a line each.
fn images(model: &mut Executor, p: &Predict) -> Result<String, String> {
    let Shape::Image { c, h, w } = p.model.input else {
        return Err(format!(
            "model {} takes vectors ({}), not images: use --input X.npy",
            p.model.name, p.model.input
        ));
    };
    let outputs = p.model.output().len();
    let names = match p.weights {
        Some(w) => class_names(w, outputs),
        None => (0..outputs).map(|i| i.to_string()).collect(),
    };
    // Probabilities where the model ends in softmax, raw scores otherwise.
    let softmax = matches!(p.model.layers.last().map(|l| &l.op), Some(Op::Softmax));
    let mut out = String::new();
    for path in p.images {
        let x = read_image(path, p.model, (c, h, w), p.resize)?;
        let y = model.predict(x.view()).map_err(|e| e.to_string())?;
        let top = top_k(y.view(), p.top.max(1), &names);
        let shown: Vec<String> = top
            .iter()
            .map(|(n, v)| {
                if softmax {
                    format!("{n} {:.2}%", v * 100.0)
                } else {
                    format!("{n} {v:.4}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}: {}", path.display(), shown.join(", "));
    }
    Ok(out.trim_end().to_string())
}
