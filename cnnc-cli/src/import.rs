//! `cnnc import IN.onnx -o MODEL.cnn [--weights OUT.safetensors] [--train] [--name NAME]`.

use std::path::Path;

/// What `import` was asked to do.
pub struct Import<'a> {
    pub input: &'a Path,
    pub output: &'a Path,
    pub weights: Option<&'a Path>,
    pub train: bool,
    pub name: Option<&'a str>,
}

/// ONNX files larger than this are refused: the importer holds the file in memory.
const MAX_BYTES: u64 = 2 << 30;

/// Writes the `.cnn` file (and the weights); the error is the message to print.
pub fn run(i: &Import) -> Result<String, String> {
    let shown = i.input.display().to_string();
    let meta = std::fs::metadata(i.input).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if meta.is_dir() || meta.len() > MAX_BYTES {
        return Err(format!(
            "{shown} is a directory or larger than 2 GiB, not an ONNX model"
        ));
    }
    let bytes = std::fs::read(i.input).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let imported = cnnc::onnx::import(&bytes, &shown, i.name, &model_name(i.output), i.train)?;
    let name = imported.name.clone();
    let model = imported.interpreter().map_err(|e| format!("{shown}: {e}"))?;
    cnnc::rt::atomic::write(i.output, imported.source.as_bytes()).map_err(|e| e.to_string())?;
    let mut done = format!(
        "{shown}: imported {name} ({} layers, {} parameters) to {}",
        model.model().all_layers().len(),
        model.model().param_count(),
        i.output.display()
    );
    if let Some(w) = i.weights {
        cnnc::rt::weights::save_safetensors(&model, w).map_err(|e| e.to_string())?;
        done += &format!(", weights to {}", w.display());
    }
    Ok(done)
}

/// The model's name from the output file's stem, where the ONNX graph's name is no
/// valid model name: `resnet18.cnn` gives `Resnet18`; `Imported` where the stem makes
/// no valid name either.
fn model_name(output: &Path) -> String {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let camel: String = stem
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| p[..1].to_ascii_uppercase() + &p[1..])
        .collect();
    let valid = camel.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    let reserved = ["Model", "Train", "Self", "Target", "Error", "Gradients"].contains(&camel.as_str());
    if valid && !reserved && cnnc::compile(&format!("model {camel} {{ input 1 dense 1 }}")).is_ok() {
        camel
    } else {
        "Imported".to_string()
    }
}
