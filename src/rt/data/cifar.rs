//! CIFAR-10 in its binary form (`cifar-10-batches-bin`): files of 3073-byte
//! records, one label byte (0..=9) then 32x32 red, green and blue planes.

use super::{Dataset, Split, Targets};
use crate::rt::Error;
use ndarray::{ArrayD, IxDyn};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

/// Bytes of one record: a label and 3x32x32 pixels.
pub const CIFAR10_RECORD: usize = 1 + 3 * 32 * 32;

/// The class names, in label order (`batches.meta.txt`).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// The files of a split: `data_batch_1.bin` ... `data_batch_5.bin`, or `test_batch.bin`.
pub fn cifar10_files(split: Split) -> Vec<&'static str> {
    match split {
        Split::Train => vec![
            "data_batch_1.bin",
            "data_batch_2.bin",
            "data_batch_3.bin",
            "data_batch_4.bin",
            "data_batch_5.bin",
        ],
        Split::Test => vec!["test_batch.bin"],
    }
}

/// CIFAR-10 from a directory holding the binary batches (or holding
/// `cifar-10-batches-bin/`, as the archive unpacks): images `[N, 3, 32, 32]` in
/// [0, 1] and labels 0..=9.
pub fn cifar10(dir: impl AsRef<Path>, split: Split) -> Result<Dataset, Error> {
    let dir = dir.as_ref();
    let inner = dir.join("cifar-10-batches-bin");
    let dir = if !dir.join(cifar10_files(split)[0]).exists() && inner.is_dir() {
        inner
    } else {
        dir.to_path_buf()
    };
    let paths: Vec<PathBuf> = cifar10_files(split).iter().map(|f| dir.join(f)).collect();
    read_cifar10(&paths)
}

/// Reads CIFAR-10 binary files, in order, into one data set. Each file's size must
/// be a whole number of 3073-byte records, and every label below 10.
pub fn read_cifar10(paths: &[PathBuf]) -> Result<Dataset, Error> {
    let io = |path: &Path, source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let format = |path: &Path, message: String| Error::Format {
        path: path.display().to_string(),
        message,
    };
    if paths.is_empty() {
        return Err(Error::Config("read_cifar10 needs at least one file".into()));
    }
    // Sizes first, so that a wrong file is named before anything is read.
    let mut records = Vec::with_capacity(paths.len());
    for path in paths {
        let size = std::fs::metadata(path).map_err(|e| io(path, e))?.len();
        if size == 0 || size % CIFAR10_RECORD as u64 != 0 {
            return Err(format(
                path,
                format!(
                    "{size} bytes is not a whole number of CIFAR-10 records \
                     ({CIFAR10_RECORD} bytes each: a label byte and 3x32x32 pixels)"
                ),
            ));
        }
        let n = usize::try_from(size / CIFAR10_RECORD as u64)
            .map_err(|_| format(path, format!("{size} bytes is too large")))?;
        records.push(n);
    }
    let total: usize = records.iter().sum();
    let bar = if total > 10_000 && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("reading CIFAR-10 [{bar:30}] {pos}/{len} images {elapsed}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let pixels_per = CIFAR10_RECORD - 1;
    let mut pixels = Vec::with_capacity(total * pixels_per);
    let mut labels = Vec::with_capacity(total);
    let mut record = vec![0u8; CIFAR10_RECORD];
    for (path, &n) in paths.iter().zip(&records) {
        let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(|e| io(path, e))?);
        for r in 0..n {
            file.read_exact(&mut record).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    format(
                        path,
                        format!("truncated while reading record {r} of {n} (the file shrank?)"),
                    )
                } else {
                    io(path, e)
                }
            })?;
            let label = record[0] as usize;
            if label >= CIFAR10_CLASSES.len() {
                return Err(format(
                    path,
                    format!(
                        "record {r} (byte offset {}) has label {label}; CIFAR-10 labels are 0..=9",
                        r * CIFAR10_RECORD
                    ),
                ));
            }
            labels.push(label);
            pixels.extend(record[1..].iter().map(|&p| p as f32 / 255.0));
            if r % 1000 == 999 {
                bar.inc(1000);
            }
        }
    }
    bar.finish_and_clear();
    let inputs = ArrayD::from_shape_vec(IxDyn(&[total, 3, 32, 32]), pixels).map_err(|e| Error::Format {
        path: paths.first().map(|p| p.display().to_string()).unwrap_or_default(),
        message: e.to_string(),
    })?;
    Dataset::new(inputs, Targets::Labels(labels))
}
