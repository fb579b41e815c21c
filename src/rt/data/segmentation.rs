//! v3 segmentation data: a folder with `images/NAME.png` (or `.jpg`) and
//! `masks/NAME.png`, a mask pixel's value its class (255 for void, which
//! `loss cross_entropy ignore 255` leaves out). Images are read as
//! [`super::load_image`] reads them; masks must be 8-bit gray (or RGB with equal
//! channels) and are resized with the nearest neighbour, so no blend of two
//! classes appears.

use super::folder::{format_error, io, load_image, FolderOptions};
use super::{Dataset, Targets};
use crate::rt::Error;
use image::{DynamicImage, ImageReader};
use std::path::{Path, PathBuf};

/// The value of a mask pixel that marks a position as void.
pub const VOID: usize = 255;

/// A segmentation set read from a folder.
#[derive(Debug)]
pub struct SegmentationFolder {
    /// Inputs `[N, C, H, W]` in [0, 1] and label maps `[N, H, W]`.
    pub data: Dataset,
    /// The image file of each sample, in order (sorted by name).
    pub files: Vec<PathBuf>,
    /// The number of classes: the largest mask value below 255, plus 1.
    pub classes: usize,
}

/// Whether `dir` looks like a segmentation set: `images/` and `masks/` inside.
pub fn is_segmentation_folder(dir: impl AsRef<Path>) -> bool {
    let dir = dir.as_ref();
    dir.join("images").is_dir() && dir.join("masks").is_dir()
}

/// Reads `dir/images/*` with their `dir/masks/NAME.png`. Errors name the file:
/// an image without a mask, a mask that is not a PNG, a mask with colors, a mask
/// of another size than its image (before any resize), an unreadable image.
pub fn segmentation_folder(dir: impl AsRef<Path>, options: &FolderOptions) -> Result<SegmentationFolder, Error> {
    let dir = dir.as_ref();
    let (images, masks) = (dir.join("images"), dir.join("masks"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&images)
        .map_err(|e| io(&images, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            let visible = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'));
            let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
            visible && matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format_error(&images, "no PNG or JPEG images in this folder"));
    }
    let (c, h, w) = (options.channels, options.height, options.width);
    let mut inputs = Vec::with_capacity(files.len() * c * h * w);
    let mut labels = Vec::with_capacity(files.len() * h * w);
    for file in &files {
        let stem = file.file_stem().unwrap_or_default();
        let mask_path = masks.join(stem).with_extension("png");
        if !mask_path.is_file() {
            return Err(format_error(
                file,
                format!("this image has no mask: {} is missing", mask_path.display()),
            ));
        }
        inputs.extend(load_image(file, options)?);
        labels.extend(load_mask(&mask_path, file, options)?);
    }
    let n = files.len();
    let inputs = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[n, c, h, w]), inputs)
        .map_err(|e| format_error(dir, format!("reading the images: {e}")))?;
    let maps = ndarray::Array3::from_shape_vec((n, h, w), labels)
        .map_err(|e| format_error(dir, format!("reading the masks: {e}")))?;
    let classes = maps.iter().filter(|&&v| v != VOID).max().map_or(0, |m| m + 1);
    Ok(SegmentationFolder {
        data: Dataset::new(inputs, Targets::LabelMaps(maps))?,
        files,
        classes,
    })
}

/// One mask as class indices, `height x width`, resized (nearest) when the
/// options allow it.
fn load_mask(path: &Path, image: &Path, options: &FolderOptions) -> Result<Vec<usize>, Error> {
    let mask = ImageReader::open(path)
        .map_err(|e| io(path, e))?
        .with_guessed_format()
        .map_err(|e| io(path, e))?
        .decode()
        .map_err(|e| format_error(path, format!("cannot decode the mask: {e}")))?;
    let picture = image::image_dimensions(image).map_err(|e| format_error(image, format!("{e}")))?;
    if (mask.width(), mask.height()) != picture {
        return Err(format_error(
            path,
            format!(
                "the mask is {}x{} (height x width) but its image is {}x{}",
                mask.height(),
                mask.width(),
                picture.1,
                picture.0
            ),
        ));
    }
    let (h, w) = (options.height, options.width);
    let resized;
    let mask: &DynamicImage = if (mask.height() as usize, mask.width() as usize) == (h, w) {
        &mask
    } else if options.resize {
        resized = mask.resize_exact(w as u32, h as u32, image::imageops::FilterType::Nearest);
        &resized
    } else {
        return Err(format_error(
            path,
            format!(
                "the mask is {}x{}; the model takes {h}x{w} (resizing is off)",
                mask.height(),
                mask.width()
            ),
        ));
    };
    let rgb = mask.to_rgb8();
    let mut out = Vec::with_capacity(h * w);
    for (i, p) in rgb.pixels().enumerate() {
        let [r, g, b] = p.0;
        if r != g || g != b {
            return Err(format_error(
                path,
                format!(
                    "pixel {} of row {} is a color ({r}, {g}, {b}): a mask pixel's gray value is its class",
                    i % w,
                    i / w
                ),
            ));
        }
        out.push(r as usize);
    }
    Ok(out)
}
