//! Weight files: every parameter in a safetensors file with PyTorch's names and
//! layouts, so weights move to and from a PyTorch module unchanged.

use crate::rt::{Error, Model};
use ndarray::{ArrayD, Dimension, IxDyn};

/// Saves every parameter to a safetensors file, PyTorch names and layouts (f32).
pub fn save_safetensors(model: &dyn Model, path: &std::path::Path) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Io {
        path: path.display().to_string(),
        source: e,
    };
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for name in model.param_names() {
        let a = model.param(&name).ok_or_else(|| Error::UnknownParam {
            name: name.clone(),
            known: model.param_names(),
        })?;
        let bytes: Vec<u8> = a.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((name, a.shape().to_vec(), bytes));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Format {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
        })
        .collect::<Result<_, _>>()?;
    let bytes = safetensors::serialize(views, None).map_err(|e| Error::Format {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    std::fs::write(path, bytes).map_err(io)
}

/// Loads every parameter from a safetensors file. Every tensor must be present,
/// f32 and of the parameter's shape; extra tensors are an error too.
pub fn load_safetensors(model: &mut dyn Model, path: &std::path::Path) -> Result<(), Error> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: shown.clone(),
        source: e,
    })?;
    let format = |message: String| Error::Format {
        path: shown.clone(),
        message,
    };
    let file = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| format(format!("not a valid safetensors file: {e}")))?;
    let names = model.param_names();
    let mut extra: Vec<String> = file
        .names()
        .into_iter()
        .filter(|n| !names.iter().any(|m| m == *n))
        .map(str::to_string)
        .collect();
    if !extra.is_empty() {
        extra.sort();
        return Err(format(format!(
            "holds tensors the model does not have: {}; the model's are {}",
            extra.join(", "),
            names.join(", ")
        )));
    }
    let mut loaded: Vec<(&str, ArrayD<f32>)> = Vec::with_capacity(names.len());
    for name in &names {
        let t = file
            .tensor(name)
            .map_err(|_| format(format!("tensor `{name}` is missing")))?;
        if t.dtype() != safetensors::Dtype::F32 {
            return Err(format(format!("tensor `{name}` is {:?}, expected F32", t.dtype())));
        }
        let values: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let a =
            ArrayD::from_shape_vec(IxDyn(t.shape()), values).map_err(|e| format(format!("tensor `{name}`: {e}")))?;
        loaded.push((name, a));
    }
    // Check every tensor before changing anything, so a bad file leaves the model as it was.
    for (name, a) in &loaded {
        let want = model.param(name).map(|p| p.shape().to_vec()).unwrap_or_default();
        let got = a.shape();
        if got != want.as_slice() {
            return Err(format(format!(
                "tensor `{name}` has shape {got:?}, the model's is {want:?}"
            )));
        }
        if let Some((index, v)) = a.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(format(format!(
                "tensor `{name}` holds a non-finite value ({v}) at index {:?}",
                index.slice()
            )));
        }
    }
    for (name, a) in &loaded {
        model.set_param(name, a.view())?;
    }
    Ok(())
}
