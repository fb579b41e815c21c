//! Weight files: every parameter and buffer in a safetensors file with PyTorch's
//! names and layouts, so weights move to and from a PyTorch module unchanged
//! (`safetensors.torch.save_file(module.state_dict())` / `load_state_dict`).
//!
//! A file holds, in f32, every parameter (`conv1.weight`, ...) and every buffer
//! (`batchnorm1.running_mean`, `batchnorm1.running_var`, ...), and for each
//! batchnorm layer `PREFIX.num_batches_tracked`, an i64 scalar (shape `[]`): the
//! model's training steps, as PyTorch's `BatchNorm` counts them.

use crate::rt::{atomic, Error, Model};
use ndarray::{ArrayD, Dimension, IxDyn};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

/// The suffix of a batchnorm layer's first buffer: what is before it names the layer.
const RUNNING_MEAN: &str = ".running_mean";
/// The suffix of a batchnorm layer's variance buffer, which must not be negative.
const RUNNING_VAR: &str = ".running_var";
/// The suffix of a batchnorm layer's step count.
const TRACKED: &str = ".num_batches_tracked";

/// Saves every parameter and buffer (f32) and each batchnorm layer's
/// `num_batches_tracked` (i64 scalar) to a safetensors file, PyTorch names and
/// layouts. The file is written whole or not at all ([`atomic::write`]).
pub fn save_safetensors(model: &dyn Model, path: &Path) -> Result<(), Error> {
    let bytes = to_bytes(model).map_err(|message| Error::Format {
        path: path.display().to_string(),
        message,
    })?;
    atomic::write(path, &bytes)
}

/// The bytes of the weight file [`save_safetensors`] writes. The error says which
/// tensor the model could not give.
pub fn to_bytes(model: &dyn Model) -> Result<Vec<u8>, String> {
    let mut tensors: Vec<Tensor> = Vec::new();
    for (kind, names) in [("parameter", model.param_names()), ("buffer", model.buffer_names())] {
        for name in names {
            let value = if kind == "parameter" {
                model.param(&name)
            } else {
                model.buffer(&name)
            };
            let a = value.ok_or_else(|| format!("the model lists {kind} `{name}` but does not give it"))?;
            tensors.push(Tensor::f32(name, &a));
        }
    }
    let tracked = i64::try_from(model.batches_tracked())
        .map_err(|_| format!("{} training steps do not fit in an i64", model.batches_tracked()))?;
    for name in tracked_names(model) {
        tensors.push(Tensor {
            name,
            dtype: Dtype::I64,
            shape: Vec::new(),
            bytes: tracked.to_le_bytes().to_vec(),
        });
    }
    serialize(&tensors, None)
}

/// Loads every parameter and buffer, and the step count, from a safetensors file
/// written by [`save_safetensors`] or by PyTorch.
///
/// Every parameter and buffer must be present, f32, of the model's shape and
/// finite (a `running_var` also not negative); a `num_batches_tracked` must be an
/// i64 scalar, not negative, and may be absent (the count is then 0, as PyTorch
/// takes it; with several batchnorm layers the largest count is kept: the model
/// keeps one count). A tensor the model does not have is an error too. Everything
/// is checked before anything changes: after an error the model is as it was.
pub fn load_safetensors(model: &mut dyn Model, path: &Path) -> Result<(), Error> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: shown.clone(),
        source: e,
    })?;
    load_bytes(model, &bytes, &shown)
}

/// [`load_safetensors`] of bytes already read; `source` names them in errors (a
/// path, or any name).
pub fn load_bytes(model: &mut dyn Model, bytes: &[u8], source: &str) -> Result<(), Error> {
    load(model, bytes, source, true).map(|_| ())
}

/// What [`load_safetensors_partial`] did: the model's tensors it loaded, the
/// model's tensors the file lacks (they keep their values) and the file's tensors
/// the model does not have (ignored), each sorted by name: PyTorch's
/// `load_state_dict(strict=False)` report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub loaded: Vec<String>,
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
}

/// Loads the parameters and buffers a safetensors file has, leaving the others as
/// they are and ignoring the file's tensors the model does not have, as PyTorch's
/// `load_state_dict(strict=False)`: fine-tuning loads a pretrained body into a
/// model with a new head. The report lists what was loaded, missing and unexpected.
///
/// A tensor present under one of the model's names must still be f32, of the
/// model's shape (an error names the tensor and both shapes), and finite; the
/// step count is taken as [`load_safetensors`] takes it. Everything is checked
/// before anything changes: after an error the model is as it was.
pub fn load_safetensors_partial(model: &mut dyn Model, path: &Path) -> Result<LoadReport, Error> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: shown.clone(),
        source: e,
    })?;
    load(model, &bytes, &shown, false)
}

/// [`load_safetensors_partial`] of bytes already read.
pub fn load_bytes_partial(model: &mut dyn Model, bytes: &[u8], source: &str) -> Result<LoadReport, Error> {
    load(model, bytes, source, false)
}

/// Tensors read from a file, under the model's names.
type Named = Vec<(String, ArrayD<f32>)>;

/// Reads the file's tensors under the model's names `names` (of the parameters
/// when `params`, else the buffers): the values to set, and the names the file
/// lacks (an error when `strict`).
fn read_all(
    model: &dyn Model,
    file: &SafeTensors<'_>,
    names: &[String],
    params: bool,
    strict: bool,
) -> Result<(Named, Vec<String>), String> {
    let (mut values, mut missing) = (Vec::with_capacity(names.len()), Vec::new());
    for name in names {
        if !strict && file.tensor(name).is_err() {
            missing.push(name.clone());
            continue;
        }
        let current = if params { model.param(name) } else { model.buffer(name) };
        let want = current.map(|a| a.shape().to_vec()).unwrap_or_default();
        values.push((name.clone(), read_f32(file, name, &want, "the model's")?));
    }
    Ok((values, missing))
}

/// The strict load (every tensor present, none extra) or the partial one.
fn load(model: &mut dyn Model, bytes: &[u8], source: &str, strict: bool) -> Result<LoadReport, Error> {
    let format = |message: String| Error::Format {
        path: source.to_string(),
        message,
    };
    let file = deserialize(bytes).map_err(format)?;
    let params = model.param_names();
    let buffers = model.buffer_names();
    let tracked = tracked_names(model);
    let known = || params.iter().chain(&buffers).chain(&tracked);
    let mut extra: Vec<&str> = file.names().into_iter().filter(|n| !known().any(|m| m == n)).collect();
    extra.sort_unstable();
    if strict && !extra.is_empty() {
        let known: Vec<&str> = known().map(String::as_str).collect();
        return Err(format(format!(
            "holds tensors the model does not have: {}; the model's are {}",
            extra.join(", "),
            known.join(", ")
        )));
    }
    let (new_params, mut missing) = read_all(model, &file, &params, true, strict).map_err(format)?;
    let (new_buffers, missing_buffers) = read_all(model, &file, &buffers, false, strict).map_err(format)?;
    missing.extend(missing_buffers);
    missing.sort_unstable();
    let mut loaded: Vec<String> = new_params.iter().chain(&new_buffers).map(|(n, _)| n.clone()).collect();
    loaded.sort_unstable();
    let mut steps = None;
    for name in &tracked {
        if let Some(n) = read_tracked(&file, name).map_err(format)? {
            steps = Some(steps.map_or(n, |m: u64| m.max(n)));
        }
    }
    // Everything is checked; a model that still refuses a value gets its old ones back.
    let old_params: Vec<_> = params.iter().map(|n| model.param(n)).collect();
    let old_buffers: Vec<_> = buffers.iter().map(|n| model.buffer(n)).collect();
    let set = |model: &mut dyn Model| -> Result<(), Error> {
        for (name, a) in &new_params {
            model.set_param(name, a.view())?;
        }
        for (name, a) in &new_buffers {
            model.set_buffer(name, a.view())?;
        }
        Ok(())
    };
    if let Err(e) = set(model) {
        for (name, old) in params.iter().zip(old_params) {
            if let Some(a) = old {
                let _ = model.set_param(name, a.view());
            }
        }
        for (name, old) in buffers.iter().zip(old_buffers) {
            if let Some(a) = old {
                let _ = model.set_buffer(name, a.view());
            }
        }
        return Err(e);
    }
    if !tracked.is_empty() && (strict || steps.is_some()) {
        model.set_batches_tracked(steps.unwrap_or(0));
    }
    Ok(LoadReport {
        loaded,
        missing,
        unexpected: extra.into_iter().map(str::to_string).collect(),
    })
}

/// `PREFIX.num_batches_tracked` for each buffer `PREFIX.running_mean`: one per
/// batchnorm layer, in layer order.
pub fn tracked_names(model: &dyn Model) -> Vec<String> {
    model
        .buffer_names()
        .iter()
        .filter_map(|b| b.strip_suffix(RUNNING_MEAN))
        .map(|prefix| format!("{prefix}{TRACKED}"))
        .collect()
}

/// A tensor to write: its name, dtype, shape and little-endian bytes.
#[derive(Debug, Clone)]
pub(crate) struct Tensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl Tensor {
    pub fn f32(name: String, a: &ArrayD<f32>) -> Tensor {
        Tensor {
            name,
            dtype: Dtype::F32,
            shape: a.shape().to_vec(),
            bytes: a.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// A safetensors file of `tensors`, with `metadata` as its `__metadata__`.
pub(crate) fn serialize(tensors: &[Tensor], metadata: Option<HashMap<String, String>>) -> Result<Vec<u8>, String> {
    let views = tensors
        .iter()
        .map(|t| {
            TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
                .map(|v| (t.name.as_str(), v))
                .map_err(|e| format!("tensor `{}`: {e}", t.name))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, metadata).map_err(|e| e.to_string())
}

/// Parses a safetensors file: its header, and that its tensors tile its data.
pub(crate) fn deserialize(bytes: &[u8]) -> Result<SafeTensors<'_>, String> {
    SafeTensors::deserialize(bytes).map_err(|e| format!("not a valid safetensors file: {e}"))
}

/// Tensor `key`: present, f32, of shape `want`, finite (and, for a
/// `running_var`, not negative). The shape is checked before the data is read.
/// `owner` says whose shape `want` is in the error ("the model's").
pub(crate) fn read_f32(file: &SafeTensors<'_>, key: &str, want: &[usize], owner: &str) -> Result<ArrayD<f32>, String> {
    let t = file.tensor(key).map_err(|_| format!("tensor `{key}` is missing"))?;
    if t.dtype() != Dtype::F32 {
        return Err(format!("tensor `{key}` is {:?}, expected F32", t.dtype()));
    }
    if t.shape() != want {
        return Err(format!("tensor `{key}` has shape {:?}, {owner} is {want:?}", t.shape()));
    }
    let values: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let a = ArrayD::from_shape_vec(IxDyn(want), values).map_err(|e| format!("tensor `{key}`: {e}"))?;
    if let Some((index, v)) = a.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(format!(
            "tensor `{key}` holds a non-finite value ({v}) at index {:?}",
            index.slice()
        ));
    }
    if key.ends_with(RUNNING_VAR) {
        if let Some((index, v)) = a.indexed_iter().find(|(_, v)| **v < 0.0) {
            return Err(format!(
                "tensor `{key}` holds a negative variance ({v}) at index {:?}",
                index.slice()
            ));
        }
    }
    Ok(a)
}

/// A `num_batches_tracked`: an i64 scalar, not negative; `None` when absent.
fn read_tracked(file: &SafeTensors<'_>, key: &str) -> Result<Option<u64>, String> {
    let Ok(t) = file.tensor(key) else {
        return Ok(None);
    };
    if t.dtype() != Dtype::I64 {
        return Err(format!("tensor `{key}` is {:?}, expected I64", t.dtype()));
    }
    if !t.shape().is_empty() {
        return Err(format!(
            "tensor `{key}` has shape {:?}, expected a scalar (shape [])",
            t.shape()
        ));
    }
    let b: [u8; 8] = t
        .data()
        .try_into()
        .map_err(|_| format!("tensor `{key}` holds {} bytes, an i64 needs 8", t.data().len()))?;
    let n = i64::from_le_bytes(b);
    u64::try_from(n)
        .map(Some)
        .map_err(|_| format!("tensor `{key}` is {n}: a count of training steps cannot be negative"))
}
