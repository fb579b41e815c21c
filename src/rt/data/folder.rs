//! Image folders, one subfolder per class (`train/cat/*.png`, `train/dog/*.jpg`):
//! PNG and JPEG decoded by the `image` crate, converted to the model's channel
//! count, resized to its input, scaled to [0, 1], NCHW. Labels are the indices of
//! the sorted class folder names.

use super::{Dataset, Targets};
use crate::rt::Error;
use image::{DynamicImage, ImageFormat, ImageReader};
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;
use std::io::{Cursor, IsTerminal};
use std::path::{Path, PathBuf};

/// How to read an image folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderOptions {
    /// The model's input channels: 1 (gray) or 3 (RGB).
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Resize images of another size to `height x width` (a bilinear filter,
    /// aspect ratio not kept, like torchvision's `Resize((h, w))`); `false` refuses them.
    pub resize: bool,
    /// Skip a file that cannot be used (and an empty class folder) and report it
    /// in [`ImageFolder::skipped`], instead of stopping with an error.
    pub skip_bad: bool,
    /// Show a progress bar on a terminal for folders of more than
    /// [`PROGRESS_THRESHOLD`] files.
    pub progress: bool,
}

/// Folders with more files than this get a progress bar.
pub const PROGRESS_THRESHOLD: usize = 1000;

/// The name of the file [`save_classes`] writes.
pub const CLASSES_FILE: &str = "classes.txt";

impl FolderOptions {
    /// `channels x height x width`, resizing other sizes, stopping at the first bad file.
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        FolderOptions {
            channels,
            height,
            width,
            resize: true,
            skip_bad: false,
            progress: true,
        }
    }

    /// The options for a model's input shape `[C, H, W]` (`Model::input_shape`).
    pub fn for_input(shape: &[usize]) -> Result<Self, Error> {
        match *shape {
            [c, h, w] if (c == 1 || c == 3) && h > 0 && w > 0 => Ok(FolderOptions::new(c, h, w)),
            _ => Err(Error::Config(format!(
                "an image folder needs a model whose input is an image of 1 or 3 channels \
                 (CxHxW with C = 1 or 3); this model's input is {shape:?}"
            ))),
        }
    }
}

/// A data set read from an image folder.
#[derive(Debug)]
pub struct ImageFolder {
    /// Inputs `[N, C, H, W]` in [0, 1], labels the indices into `classes`.
    pub data: Dataset,
    /// The class names: the folder names, sorted.
    pub classes: Vec<String>,
    /// The file of each sample, in the data set's order.
    pub files: Vec<PathBuf>,
    /// What [`FolderOptions::skip_bad`] skipped, each an error naming the file or folder.
    pub skipped: Vec<Error>,
}

/// Reads `dir/CLASS/IMAGE` for every class folder of `dir`; the classes are the
/// sorted folder names (hidden ones, starting with `.`, are ignored, as are hidden
/// files).
///
/// Errors (each naming the file or folder): `dir` unreadable or without class
/// folders, a class folder without images, a file that is not PNG or JPEG (by its
/// extension or its contents), a corrupt or truncated image, a color image for a
/// 1-channel model (gray images stored as RGB are accepted), an image of another
/// size when `resize` is off, a file directly in `dir`. With `skip_bad`, each of
/// these but the first two is skipped and listed in [`ImageFolder::skipped`].
pub fn image_folder(dir: impl AsRef<Path>, options: &FolderOptions) -> Result<ImageFolder, Error> {
    let dir = dir.as_ref();
    let (classes, skipped) = class_folders(dir, options)?;
    read_classes_from(dir, classes, skipped, options)
}

/// Reads `dir` with the class list of another split (the training set's), so that
/// labels mean the same classes: every class folder of `dir` must be one of
/// `classes` (a class may have no folder here).
pub fn image_folder_with_classes(
    dir: impl AsRef<Path>,
    classes: &[String],
    options: &FolderOptions,
) -> Result<ImageFolder, Error> {
    let dir = dir.as_ref();
    let (found, skipped) = class_folders(dir, options)?;
    if let Some(extra) = found.iter().find(|f| !classes.contains(f)) {
        return Err(Error::Format {
            path: dir.join(extra).display().to_string(),
            message: format!(
                "class `{extra}` is not one of the {} classes of the training set ({})",
                classes.len(),
                classes.join(", ")
            ),
        });
    }
    read_classes_from(dir, classes.to_vec(), skipped, options)
}

/// The class names of an image folder: its subfolders, sorted (hidden ones and
/// files are ignored).
pub fn class_names(dir: impl AsRef<Path>) -> Result<Vec<String>, Error> {
    let options = FolderOptions {
        skip_bad: true,
        ..FolderOptions::new(3, 1, 1)
    };
    class_folders(dir.as_ref(), &options).map(|(classes, _)| classes)
}

pub(super) fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(super) fn format_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Format {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// The sorted names of the class folders of `dir`, and the files found directly
/// in `dir` when skipping.
fn class_folders(dir: &Path, options: &FolderOptions) -> Result<(Vec<String>, Vec<Error>), Error> {
    if !(options.channels == 1 || options.channels == 3) || options.height == 0 || options.width == 0 {
        return Err(Error::Config(format!(
            "image folder options {}x{}x{}: images are read with 1 or 3 channels and a height and width of at least 1",
            options.channels, options.height, options.width
        )));
    }
    let mut classes = Vec::new();
    let mut skipped = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(format_error(&path, "the name is not valid UTF-8"));
        };
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if name.contains(['\n', '\r']) {
                return Err(format_error(&path, "a class name cannot hold a line break"));
            }
            classes.push(name.to_string());
        } else {
            let e = format_error(
                &path,
                "a file directly in the image folder: images belong in one subfolder per class (DIR/CLASS/IMAGE)",
            );
            if options.skip_bad {
                skipped.push(e);
            } else {
                return Err(e);
            }
        }
    }
    if classes.is_empty() {
        return Err(format_error(
            dir,
            "no class folders: an image folder holds one subfolder per class (DIR/CLASS/IMAGE)",
        ));
    }
    classes.sort();
    Ok((classes, skipped))
}

/// Whether a file name has the extension of a PNG or JPEG file.
fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
}

fn read_classes_from(
    dir: &Path,
    classes: Vec<String>,
    mut skipped: Vec<Error>,
    options: &FolderOptions,
) -> Result<ImageFolder, Error> {
    // Every (file, label), in class order then file name order.
    let mut files: Vec<(PathBuf, usize)> = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let folder = dir.join(class);
        if !folder.is_dir() {
            // A class of the training set with no folder in this split.
            continue;
        }
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&folder).map_err(|e| io(&folder, e))? {
            let path = entry.map_err(|e| io(&folder, e))?.path();
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
            {
                continue;
            }
            // An image name that is not a readable file (a dangling link) fails
            // when read, with the system's reason.
            if !path.is_dir() && has_image_extension(&path) {
                found.push(path);
            } else {
                let what = if path.is_dir() {
                    "a folder"
                } else {
                    "not a PNG or JPEG file"
                };
                let e = format_error(
                    &path,
                    format!("{what} inside class folder `{class}`: expected .png, .jpg or .jpeg images"),
                );
                if options.skip_bad {
                    skipped.push(e);
                } else {
                    return Err(e);
                }
            }
        }
        if found.is_empty() {
            let e = format_error(&folder, format!("class folder `{class}` holds no PNG or JPEG images"));
            if options.skip_bad {
                skipped.push(e);
            } else {
                return Err(e);
            }
        }
        found.sort();
        files.extend(found.into_iter().map(|p| (p, label)));
    }

    let bar = if options.progress && files.len() > PROGRESS_THRESHOLD && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(files.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} images {elapsed}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(format!("reading {}", dir.display()));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let sample = options.channels * options.height * options.width;
    // Decoding is the slow part: one file per task, results kept in file order.
    let decoded: Vec<Result<Vec<f32>, Error>> = files
        .par_iter()
        .map(|(path, _)| {
            let r = load_image(path, options);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();

    let mut pixels = Vec::with_capacity(files.len() * sample);
    let mut labels = Vec::with_capacity(files.len());
    let mut kept = Vec::with_capacity(files.len());
    for ((path, label), image) in files.into_iter().zip(decoded) {
        match image {
            Ok(values) => {
                pixels.extend_from_slice(&values);
                labels.push(label);
                kept.push(path);
            }
            Err(e) if options.skip_bad => skipped.push(e),
            Err(e) => return Err(e),
        }
    }
    if labels.is_empty() {
        return Err(format_error(
            dir,
            format!("no image could be read ({} files skipped)", skipped.len()),
        ));
    }
    let shape = [labels.len(), options.channels, options.height, options.width];
    let inputs = ArrayD::from_shape_vec(IxDyn(&shape), pixels).map_err(|e| format_error(dir, e.to_string()))?;
    Ok(ImageFolder {
        data: Dataset::new(inputs, Targets::Labels(labels))?,
        classes,
        files: kept,
        skipped,
    })
}

/// Decodes one PNG or JPEG file into `C x H x W` values in [0, 1].
pub fn load_image(path: &Path, options: &FolderOptions) -> Result<Vec<f32>, Error> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| io(path, e))?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg) => {}
        Some(other) => {
            return Err(format_error(
                path,
                format!("a {other:?} image; only PNG and JPEG are read"),
            ))
        }
        None => return Err(format_error(path, "not a PNG or JPEG image (unknown contents)")),
    }
    let image = reader
        .decode()
        .map_err(|e| format_error(path, format!("cannot decode the image: {e}")))?;
    image_to_chw(&image, options).map_err(|m| format_error(path, m))
}

/// Converts a decoded image to `C x H x W` values in [0, 1]: RGBA drops alpha, gray
/// is replicated for 3 channels, and a color image for 1 channel must be gray in
/// fact (R = G = B everywhere).
pub fn image_to_chw(image: &DynamicImage, options: &FolderOptions) -> Result<Vec<f32>, String> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let resized;
    let image = if (h, w) == (options.height, options.width) {
        image
    } else if options.resize {
        let (Ok(tw), Ok(th)) = (u32::try_from(options.width), u32::try_from(options.height)) else {
            return Err(format!("cannot resize to {}x{}", options.height, options.width));
        };
        resized = image.resize_exact(tw, th, image::imageops::FilterType::Triangle);
        &resized
    } else {
        return Err(format!(
            "the image is {h}x{w} (height x width); the model takes {}x{} (resizing is off)",
            options.height, options.width
        ));
    };
    let plane = options.height * options.width;
    let mut out = vec![0.0f32; options.channels * plane];
    let color = image.color().has_color();
    match (options.channels, color) {
        (1, false) => {
            for (o, p) in out.iter_mut().zip(image.to_luma32f().pixels()) {
                *o = p.0[0];
            }
        }
        (1, true) => {
            for (i, p) in image.to_rgb32f().pixels().enumerate() {
                let [r, g, b] = p.0;
                if r != g || g != b {
                    return Err(format!(
                        "a color image (pixel {} of row {} is not gray), but the model takes 1 channel",
                        i % options.width,
                        i / options.width
                    ));
                }
                out[i] = r;
            }
        }
        (3, _) => {
            for (i, p) in image.to_rgb32f().pixels().enumerate() {
                for (c, v) in p.0.iter().enumerate() {
                    out[c * plane + i] = *v;
                }
            }
        }
        (c, _) => return Err(format!("{c} channels: images are read with 1 or 3")),
    }
    // Decoders give values in [0, 1]; a resize filter can overshoot by rounding.
    for v in &mut out {
        *v = v.clamp(0.0, 1.0);
    }
    Ok(out)
}

/// Writes `classes`, one per line, to `classes.txt` in the folder of `weights`
/// (the weight file it belongs with), atomically: a temporary file in the same
/// folder renamed over it. Returns the path written.
pub fn save_classes(weights: impl AsRef<Path>, classes: &[String]) -> Result<PathBuf, Error> {
    let weights = weights.as_ref();
    let folder = match weights.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let path = folder.join(CLASSES_FILE);
    if let Some(bad) = classes.iter().find(|c| c.is_empty() || c.contains(['\n', '\r'])) {
        return Err(format_error(
            &path,
            format!("class name {bad:?} cannot be written one per line (empty or holding a line break)"),
        ));
    }
    let mut text = classes.join("\n");
    text.push('\n');
    crate::rt::atomic::write(&path, text.as_bytes())?;
    Ok(path)
}

/// Reads a class list written by [`save_classes`]: one name per line, blank lines
/// at the end ignored.
pub fn read_classes(path: impl AsRef<Path>) -> Result<Vec<String>, Error> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
    let classes: Vec<String> = text.lines().map(|l| l.trim_end_matches('\r').to_string()).collect();
    let end = classes.iter().rposition(|c| !c.is_empty()).map_or(0, |i| i + 1);
    let classes = classes[..end].to_vec();
    if let Some(line) = classes.iter().position(|c| c.is_empty()) {
        return Err(format_error(
            path,
            format!("line {} is empty: expected one class name per line", line + 1),
        ));
    }
    if classes.is_empty() {
        return Err(format_error(path, "no class names"));
    }
    Ok(classes)
}
