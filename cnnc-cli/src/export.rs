//! `cnnc export MODEL.cnn [--weights W.safetensors] [--seed S] [--model NAME] -o OUT.onnx`.

use cnnc::interp::Interpreter;
use cnnc::ir::Model as Ir;
use std::path::Path;

/// What `export` was asked to do, the source already read.
pub struct Export<'a> {
    pub path: &'a Path,
    pub source: &'a str,
    pub model: &'a Ir,
    pub weights: Option<&'a Path>,
    pub seed: u64,
    pub output: &'a Path,
}

/// Writes the ONNX file; the error is the message to print (exit code 2).
pub fn run(e: &Export) -> Result<String, String> {
    let model = e.model;
    let mut interp = Interpreter::from_source(e.source, &model.name, e.seed).map_err(|err| err.to_string())?;
    match e.weights {
        Some(w) => cnnc::rt::weights::load_safetensors(&mut interp, w).map_err(|err| err.to_string())?,
        None => eprintln!(
            "note: no --weights: exporting {}'s seeded initialization (seed {})",
            model.name, e.seed
        ),
    }
    cnnc::onnx::export_to_file(model, &interp, e.output).map_err(|err| err.to_string())?;
    Ok(format!(
        "{}: exported {} to {} (ONNX opset {}, batch axis N)",
        e.path.display(),
        model.name,
        e.output.display(),
        cnnc::onnx::OPSET
    ))
}
