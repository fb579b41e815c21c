//! Data sets in memory, with seeded shuffling and minibatches, and the readers
//! that fill them: IDX files (`idx`, the MNIST format).

mod cifar;
mod csv;
mod folder;
mod idx;
mod segmentation;

pub use cifar::{cifar10, cifar10_files, read_cifar10, CIFAR10_CLASSES, CIFAR10_RECORD};
pub use csv::{read_csv, CsvOptions, CsvTarget, Header};
pub use folder::{
    class_names, image_folder, image_folder_with_classes, image_to_chw, load_image, read_classes, save_classes,
    FolderOptions, ImageFolder, CLASSES_FILE, PROGRESS_THRESHOLD,
};
pub use idx::{idx_dataset, mnist, parse_idx, read_idx, Idx, Split};
pub use segmentation::{is_segmentation_folder, segmentation_folder, SegmentationFolder, VOID};

use super::Error;
use ndarray::{ArrayD, ArrayViewD, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a data set's samples should produce.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// A class index per sample (cross_entropy).
    Labels(Vec<usize>),
    /// `[N, ...output]` values (mse, binary_cross_entropy).
    Values(ArrayD<f32>),
    /// v3: `[N, H, W]` class indices, a label map per sample (cross_entropy on a
    /// CxHxW output; the `ignore` label marks positions that do not count).
    LabelMaps(ndarray::Array3<usize>),
}

impl Targets {
    /// The number of samples they are for.
    pub fn len(&self) -> usize {
        match self {
            Targets::Labels(l) => l.len(),
            Targets::Values(v) => v.shape().first().copied().unwrap_or(0),
            Targets::LabelMaps(m) => m.shape()[0],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Inputs `[N, ...sample]` and their targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub inputs: ArrayD<f32>,
    pub targets: Targets,
}

impl Dataset {
    /// Pairs inputs with targets; their sample counts must agree.
    pub fn new(inputs: ArrayD<f32>, targets: Targets) -> Result<Self, Error> {
        let n = inputs.shape().first().copied().unwrap_or(0);
        let m = targets.len();
        if n != m {
            return Err(Error::Target(format!(
                "{n} inputs but {m} targets: each sample needs one target"
            )));
        }
        Ok(Dataset { inputs, targets })
    }

    pub fn len(&self) -> usize {
        self.inputs.shape().first().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples at `indices`, in that order.
    ///
    /// # Panics
    /// Like slice indexing, when an index is not below [`Dataset::len`] or the
    /// public fields disagree on the sample count; `fit` and `evaluate` check the
    /// counts before they select.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let inputs = self.inputs.select(Axis(0), indices);
        let targets = match &self.targets {
            Targets::Labels(l) => Targets::Labels(indices.iter().map(|&i| l[i]).collect()),
            Targets::Values(v) => Targets::Values(v.select(Axis(0), indices)),
            Targets::LabelMaps(m) => Targets::LabelMaps(m.select(Axis(0), indices)),
        };
        Dataset { inputs, targets }
    }

    /// Splits off the last `fraction` of a seeded shuffle as a held-out set:
    /// `(train, validation)`.
    pub fn split(&self, fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let order = shuffled(self.len(), seed);
        let held = ((self.len() as f64 * fraction).round() as usize).min(self.len().saturating_sub(1));
        let (train, val) = order.split_at(self.len() - held);
        (self.select(train), self.select(val))
    }

    /// The inputs and targets of samples `lo..hi`.
    ///
    /// # Panics
    /// Like slice indexing, when `lo..hi` is not within `0..len()`.
    pub fn batch(&self, lo: usize, hi: usize) -> (ArrayViewD<'_, f32>, super::Target<'_>) {
        let x = self.inputs.slice_axis(Axis(0), ndarray::Slice::from(lo..hi));
        let t = match &self.targets {
            Targets::Labels(l) => super::Target::Labels(ndarray::ArrayView1::from(&l[lo..hi])),
            Targets::Values(v) => super::Target::Values(v.slice_axis(Axis(0), ndarray::Slice::from(lo..hi))),
            Targets::LabelMaps(m) => super::Target::LabelMaps(m.slice_axis(Axis(0), ndarray::Slice::from(lo..hi))),
        };
        (x, t)
    }
}

/// `0..n` in a seeded random order.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    order
}
