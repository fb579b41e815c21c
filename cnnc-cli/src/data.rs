//! The data sets `cnnc train` recognises, by what a path holds: an IDX folder
//! (MNIST's file names), a CIFAR-10 binary folder, an image folder (`train/` and
//! `test/` of class folders, or class folders to split), or a CSV file.

use cnnc::rt::data::{
    cifar10, image_folder, image_folder_with_classes, is_segmentation_folder, mnist, read_csv, segmentation_folder,
    CsvOptions, Dataset, FolderOptions, Split, Targets, VOID,
};
use std::path::{Path, PathBuf};

/// What a data path holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// `train-images-idx3-ubyte[.gz]` and the rest of MNIST's four files.
    Idx(PathBuf),
    /// `data_batch_1.bin` ... `test_batch.bin`.
    Cifar(PathBuf),
    /// Class folders: `train` (and `test`, or a fifth of `train` held out).
    Folder { train: PathBuf, test: Option<PathBuf> },
    /// Features then a label per row.
    Csv(PathBuf),
    /// v3: `images/` and `masks/` (a class per pixel), in `train` (and `test`, or
    /// a fifth of `train` held out).
    Segmentation { train: PathBuf, test: Option<PathBuf> },
}

impl Format {
    pub fn describe(&self) -> &'static str {
        match self {
            Format::Idx(_) => "an IDX folder (MNIST's files)",
            Format::Cifar(_) => "a CIFAR-10 binary folder",
            Format::Folder { .. } => "an image folder",
            Format::Csv(_) => "a CSV file",
            Format::Segmentation { .. } => "a segmentation folder (images/ and masks/)",
        }
    }
}

/// Recognises the data at `path`.
pub fn detect(path: &Path) -> Result<Format, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if meta.is_file() {
        let csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        return if csv {
            Ok(Format::Csv(path.to_path_buf()))
        } else {
            Err(format!(
                "{shown} is a file but not a .csv file; --data takes a CSV file or a folder \
                 (IDX, CIFAR-10 binary, or images in class folders)"
            ))
        };
    }
    let has = |name: &str| path.join(name).is_file() || path.join(format!("{name}.gz")).is_file();
    if has("train-images-idx3-ubyte") {
        return Ok(Format::Idx(path.to_path_buf()));
    }
    if path.join("data_batch_1.bin").is_file() {
        return Ok(Format::Cifar(path.to_path_buf()));
    }
    let nested = path.join("cifar-10-batches-bin");
    if nested.join("data_batch_1.bin").is_file() {
        return Ok(Format::Cifar(nested));
    }
    if is_segmentation_folder(path) {
        return Ok(Format::Segmentation {
            train: path.to_path_buf(),
            test: None,
        });
    }
    if is_segmentation_folder(path.join("train")) {
        let test = path.join("test");
        return Ok(Format::Segmentation {
            train: path.join("train"),
            test: is_segmentation_folder(&test).then_some(test),
        });
    }
    if path.join("train").is_dir() {
        let test = path.join("test");
        return Ok(Format::Folder {
            train: path.join("train"),
            test: test.is_dir().then_some(test),
        });
    }
    let subfolders = std::fs::read_dir(path)
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
        .count();
    if subfolders > 0 {
        return Ok(Format::Folder {
            train: path.to_path_buf(),
            test: None,
        });
    }
    Err(format!(
        "{shown}: no data set recognised. Expected one of: MNIST's IDX files \
         (train-images-idx3-ubyte[.gz], ...), CIFAR-10's data_batch_1.bin ... test_batch.bin, \
         image folders (train/CLASS/IMAGE and test/CLASS/IMAGE, or CLASS/IMAGE), segmentation \
         folders (images/NAME.png with masks/NAME.png, or train/ and test/ of them), or a .csv file"
    ))
}

/// The training and test sets, with class names where the data has them, and
/// what was skipped.
pub struct Loaded {
    pub train: Dataset,
    pub test: Dataset,
    /// The class folders' names (empty: the classes are numbered).
    pub classes: Vec<String>,
    pub skipped: Vec<String>,
    /// Whether the test set was held out of the training data.
    pub held_out: bool,
}

/// The per-sample input shape of images in this data, before reading it: what
/// the default model takes.
pub fn image_input(format: &Format) -> Option<[usize; 3]> {
    match format {
        Format::Idx(_) => Some([1, 28, 28]),
        Format::Cifar(_) => Some([3, 32, 32]),
        Format::Folder { .. } => Some([3, 32, 32]),
        Format::Csv(_) | Format::Segmentation { .. } => None,
    }
}

/// Reads the data for a model taking `input` (images are resized to it when
/// `resize`), whose loss reads labels (`labels`) or values.
pub fn load(format: &Format, input: &[usize], labels: bool, resize: bool, seed: u64) -> Result<Loaded, String> {
    let err = |e: cnnc::Error| e.to_string();
    let plain = |train: Dataset, test: Dataset| Loaded {
        train,
        test,
        classes: Vec::new(),
        skipped: Vec::new(),
        held_out: false,
    };
    match format {
        Format::Idx(dir) => Ok(plain(
            mnist(dir, Split::Train).map_err(err)?,
            mnist(dir, Split::Test).map_err(err)?,
        )),
        Format::Cifar(dir) => Ok(plain(
            cifar10(dir, Split::Train).map_err(err)?,
            cifar10(dir, Split::Test).map_err(err)?,
        )),
        Format::Csv(file) => {
            let options = if labels {
                CsvOptions::classification()
            } else {
                CsvOptions::regression()
            };
            let all = read_csv(file, &options).map_err(err)?;
            let (train, test) = all.split(0.2, seed);
            Ok(Loaded {
                held_out: true,
                ..plain(train, test)
            })
        }
        Format::Segmentation { train, test } => {
            let options = FolderOptions {
                resize,
                ..FolderOptions::for_input(input).map_err(err)?
            };
            let read = segmentation_folder(train, &options).map_err(err)?;
            let (train_set, test_set, held_out) = match test {
                Some(dir) => (read.data, segmentation_folder(dir, &options).map_err(err)?.data, false),
                None => {
                    let (a, b) = read.data.split(0.2, seed);
                    (a, b, true)
                }
            };
            Ok(Loaded {
                held_out,
                ..plain(train_set, test_set)
            })
        }
        Format::Folder { train, test } => {
            let options = FolderOptions {
                skip_bad: true,
                resize,
                ..FolderOptions::for_input(input).map_err(err)?
            };
            let read = image_folder(train, &options).map_err(err)?;
            let mut skipped: Vec<String> = read.skipped.iter().map(|e| e.to_string()).collect();
            let (train_set, test_set, held_out) = match test {
                Some(dir) => {
                    let t = image_folder_with_classes(dir, &read.classes, &options).map_err(err)?;
                    skipped.extend(t.skipped.iter().map(|e| e.to_string()));
                    (read.data, t.data, false)
                }
                None => {
                    let (a, b) = read.data.split(0.2, seed);
                    (a, b, true)
                }
            };
            Ok(Loaded {
                train: train_set,
                test: test_set,
                classes: read.classes,
                skipped,
                held_out,
            })
        }
    }
}

/// The number of classes in labelled data (the largest label + 1).
pub fn label_count(data: &Dataset) -> Option<usize> {
    match &data.targets {
        Targets::Labels(l) => Some(l.iter().max().map_or(0, |m| m + 1)),
        Targets::LabelMaps(m) => Some(m.iter().filter(|&&v| v != VOID).max().map_or(0, |m| m + 1)),
        _ => None,
    }
}
