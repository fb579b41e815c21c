//! What `inspect` and `predict` read besides the model: an image as the model's
//! input, the class names beside the weights, and the top classes of an output.

use cnnc::ir;
use cnnc::ndarray::{ArrayD, ArrayViewD, IxDyn};
use std::path::Path;

/// The image as the model's input `[1, C, H, W]`, values in [0, 1] (the model's
/// own `normalize`, if any, comes after, as in training). A size other than the
/// model's is an error unless `resize`.
pub fn read_image(
    path: &Path,
    model: &ir::Model,
    (c, h, w): (usize, usize, usize),
    resize: bool,
) -> Result<ArrayD<f32>, String> {
    let (iw, ih) = image::image_dimensions(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if (ih as usize, iw as usize) != (h, w) && !resize {
        return Err(format!(
            "{} is {ih}x{iw} (height x width), but model {} takes {h}x{w} images (input {}); \
             pass --resize to resize it",
            path.display(),
            model.name,
            model.input
        ));
    }
    let mut options = cnnc::rt::data::FolderOptions::new(c, h, w);
    options.resize = resize;
    let pixels = cnnc::rt::data::load_image(path, &options).map_err(|e| e.to_string())?;
    ArrayD::from_shape_vec(IxDyn(&[1, c, h, w]), pixels).map_err(|e| e.to_string())
}

/// `classes.txt` beside the weights, when it has a name per output; else the
/// output indices.
pub fn class_names(weights: &Path, outputs: usize) -> Vec<String> {
    let path = weights.with_file_name(cnnc::rt::data::CLASSES_FILE);
    if path.is_file() {
        match cnnc::rt::data::read_classes(&path) {
            Ok(names) if names.len() == outputs => return names,
            Ok(names) => eprintln!(
                "warning: {} has {} class names but the model has {outputs} outputs; showing output numbers",
                path.display(),
                names.len()
            ),
            Err(e) => eprintln!("warning: {e}; showing output numbers"),
        }
    }
    (0..outputs).map(|i| i.to_string()).collect()
}

/// The `k` largest outputs with their names, largest first.
pub fn top_k(output: ArrayViewD<'_, f32>, k: usize, names: &[String]) -> Vec<(String, f32)> {
    let mut indexed: Vec<(usize, f32)> = output.iter().copied().enumerate().collect();
    indexed.sort_by(|a, b| b.1.total_cmp(&a.1));
    indexed
        .into_iter()
        .take(k)
        .map(|(i, v)| (names.get(i).cloned().unwrap_or_else(|| i.to_string()), v))
        .collect()
}
