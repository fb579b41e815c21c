//! Data sets: IDX files (the MNIST format, gzipped or not), scaled to [0, 1],
//! with seeded shuffling and minibatches.

use super::Error;
use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::Read;
use std::path::Path;

/// What a data set's samples should produce.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// A class index per sample (cross_entropy).
    Labels(Vec<usize>),
    /// `[N, ...output]` values (mse, binary_cross_entropy).
    Values(ArrayD<f32>),
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
        let m = match &targets {
            Targets::Labels(l) => l.len(),
            Targets::Values(v) => v.shape().first().copied().unwrap_or(0),
        };
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
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let inputs = self.inputs.select(Axis(0), indices);
        let targets = match &self.targets {
            Targets::Labels(l) => Targets::Labels(indices.iter().map(|&i| l[i]).collect()),
            Targets::Values(v) => Targets::Values(v.select(Axis(0), indices)),
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
    pub fn batch(&self, lo: usize, hi: usize) -> (ArrayViewD<'_, f32>, super::Target<'_>) {
        let x = self.inputs.slice_axis(Axis(0), ndarray::Slice::from(lo..hi));
        let t = match &self.targets {
            Targets::Labels(l) => super::Target::Labels(ndarray::ArrayView1::from(&l[lo..hi])),
            Targets::Values(v) => super::Target::Values(v.slice_axis(Axis(0), ndarray::Slice::from(lo..hi))),
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

/// Reads a whole file, un-gzipping it when it starts with gzip's magic bytes.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, Error> {
    let shown = path.display().to_string();
    let raw = std::fs::read(path).map_err(|e| Error::Io {
        path: shown.clone(),
        source: e,
    })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::Format {
                path: shown,
                message: format!("not a valid gzip file: {e}"),
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// An IDX file's dimensions and its unsigned-byte data.
#[derive(Debug, Clone, PartialEq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes (type 0x08), gzipped or not.
pub fn read_idx(path: &Path) -> Result<Idx, Error> {
    let bytes = read_maybe_gz(path)?;
    parse_idx(&bytes).map_err(|message| Error::Format {
        path: path.display().to_string(),
        message,
    })
}

/// Parses IDX bytes: magic `00 00 08 D`, D big-endian u32 dimensions, then data.
pub fn parse_idx(bytes: &[u8]) -> Result<Idx, String> {
    if bytes.len() < 4 {
        return Err(format!(
            "truncated: {} bytes, an IDX header needs at least 4",
            bytes.len()
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!(
            "bad magic number {:02x} {:02x} {:02x} {:02x}: an IDX file starts with 00 00",
            bytes[0], bytes[1], bytes[2], bytes[3]
        ));
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "element type 0x{:02x} is not supported; only unsigned bytes (0x08) are",
            bytes[2]
        ));
    }
    let rank = bytes[3] as usize;
    if rank == 0 {
        return Err("the header declares 0 dimensions".into());
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(format!(
            "truncated header: {rank} dimensions need {header} bytes, the file has {}",
            bytes.len()
        ));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("dimensions {dims:?} are too large"))?;
    let data = &bytes[header..];
    if data.len() != expected {
        let what = if data.len() < expected { "truncated" } else { "too long" };
        return Err(format!(
            "{what}: dimensions {dims:?} need {expected} data bytes, the file has {}",
            data.len()
        ));
    }
    Ok(Idx {
        dims,
        data: data.to_vec(),
    })
}

/// Images `[N, 1, H, W]` scaled to [0, 1] from an IDX images file and an IDX
/// labels file; classes must be below `classes`.
pub fn idx_dataset(images: &Path, labels: &Path, classes: usize) -> Result<Dataset, Error> {
    let img = read_idx(images)?;
    let lab = read_idx(labels)?;
    let format = |path: &Path, message: String| Error::Format {
        path: path.display().to_string(),
        message,
    };
    if img.dims.len() != 3 {
        return Err(format(
            images,
            format!("expected images [N, H, W], found dimensions {:?}", img.dims),
        ));
    }
    if lab.dims.len() != 1 {
        return Err(format(
            labels,
            format!("expected labels [N], found dimensions {:?}", lab.dims),
        ));
    }
    if img.dims[0] != lab.dims[0] {
        return Err(format(
            labels,
            format!(
                "holds {} labels but {} holds {} images",
                lab.dims[0],
                images.display(),
                img.dims[0]
            ),
        ));
    }
    if let Some((i, &l)) = lab.data.iter().enumerate().find(|(_, &l)| l as usize >= classes) {
        return Err(format(
            labels,
            format!("label {l} of sample {i} is not below {classes} classes"),
        ));
    }
    let (n, h, w) = (img.dims[0], img.dims[1], img.dims[2]);
    let pixels: Vec<f32> = img.data.iter().map(|&p| p as f32 / 255.0).collect();
    let inputs = ArrayD::from_shape_vec(IxDyn(&[n, 1, h, w]), pixels).map_err(|e| format(images, e.to_string()))?;
    Dataset::new(inputs, Targets::Labels(lab.data.iter().map(|&l| l as usize).collect()))
}

/// Which half of an MNIST directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// MNIST from a directory holding the standard file names, `.gz` or not:
/// `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-...`.
pub fn mnist(dir: impl AsRef<Path>, split: Split) -> Result<Dataset, Error> {
    let dir = dir.as_ref();
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let find = |kind: &str| {
        let plain = dir.join(format!("{prefix}-{kind}"));
        let gz = dir.join(format!("{prefix}-{kind}.gz"));
        if gz.exists() || !plain.exists() {
            gz
        } else {
            plain
        }
    };
    idx_dataset(&find("images-idx3-ubyte"), &find("labels-idx1-ubyte"), 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn parses_and_rejects() {
        let ok = parse_idx(&idx(&[2, 2], &[1, 2, 3, 4])).unwrap();
        assert_eq!(ok.dims, vec![2, 2]);
        assert!(parse_idx(&idx(&[2, 2], &[1, 2, 3])).unwrap_err().contains("truncated"));
        assert!(parse_idx(&[1, 2, 3, 4, 5]).unwrap_err().contains("bad magic"));
        assert!(parse_idx(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0]).unwrap_err().contains("0x0d"));
        assert!(parse_idx(&[0, 0, 8]).unwrap_err().contains("truncated"));
    }

    #[test]
    fn split_is_seeded_and_disjoint() {
        let inputs = ArrayD::from_shape_vec(IxDyn(&[10, 1]), (0..10).map(|v| v as f32).collect()).unwrap();
        let d = Dataset::new(inputs, Targets::Labels((0..10).collect())).unwrap();
        let (a, b) = d.split(0.3, 1);
        assert_eq!((a.len(), b.len()), (7, 3));
        let (a2, _) = d.split(0.3, 1);
        assert_eq!(a, a2);
        let Targets::Labels(la) = &a.targets else { panic!() };
        let Targets::Labels(lb) = &b.targets else { panic!() };
        assert!(la.iter().all(|l| !lb.contains(l)));
    }
}
