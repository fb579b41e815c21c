//! `cnnc export MODEL.cnn [--weights W.safetensors] [--seed S] [--model NAME] -o OUT.onnx`.

use cnnc::interp::Interpreter;
use cnnc::ir::Model as Ir;
use std::path::Path;

/// What `export` was asked to do, the source already read.
pub struct Export<'a> {
    pub path: &'a Path,
    pub source: &'a str,
    pub models: &'a [Ir],
    pub model: Option<&'a str>,
    pub weights: Option<&'a Path>,
    pub seed: u64,
    pub output: &'a Path,
}

/// Writes the ONNX file; the error is the message to print (exit code 2).
pub fn run(e: &Export) -> Result<String, String> {
    let model = choose(e.path, e.models, e.model)?;
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

/// The model named `only`, or the file's one model.
fn choose<'m>(path: &Path, models: &'m [Ir], only: Option<&str>) -> Result<&'m Ir, String> {
    let names = models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ");
    match (only, models) {
        (Some(name), _) => models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| format!("{} has no model `{name}`; it has {names}", path.display())),
        (None, [one]) => Ok(one),
        (None, _) => Err(format!(
            "{} has {} models ({names}); choose one with --model NAME",
            path.display(),
            models.len()
        )),
    }
}
