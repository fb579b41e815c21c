//! IDX files (the MNIST format), gzipped or not, from a file ([`read_idx`]) or
//! from bytes ([`parse_idx`]) by one decoder: header first, data only up to the
//! declared size, scaled to [0, 1].

use super::{Dataset, Targets};
use crate::rt::Error;
use ndarray::{ArrayD, IxDyn};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// An IDX file's dimensions and its unsigned-byte data.
#[derive(Debug, Clone, PartialEq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes (type 0x08), gzipped or not.
///
/// The header is read first and the data after it only up to the size the header
/// declares (plus one byte, to tell a file that is too long): a file, or a gzip
/// stream, that holds more than its header says is refused without reading it all.
pub fn read_idx(path: &Path) -> Result<Idx, Error> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::Io {
        path: shown.clone(),
        source: e,
    })?;
    decode(BufReader::new(file)).map_err(|fault| match fault {
        Fault::Io(source) => Error::Io { path: shown, source },
        Fault::Format(message) => Error::Format { path: shown, message },
    })
}

/// What stopped [`decode`]: the input could not be read, or it is not an IDX file.
enum Fault {
    Io(std::io::Error),
    Format(String),
}

/// An IDX file from a reader: gzipped when it starts with the gzip magic
/// (`1f 8b`; every member of a multi-member stream, as `gunzip` reads it), plain
/// otherwise. Reads the header, then at most the declared data and one byte more.
fn decode(mut input: impl BufRead) -> Result<Idx, Fault> {
    let gzipped = input.fill_buf().map_err(Fault::Io)?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read + '_> = if gzipped {
        Box::new(flate2::bufread::MultiGzDecoder::new(input))
    } else {
        Box::new(input)
    };
    // Errors while reading are the gzip stream's when there is one.
    let mut read = |n: u64, into: &mut Vec<u8>| -> Result<(), Fault> {
        reader.by_ref().take(n).read_to_end(into).map(|_| ()).map_err(|e| {
            if gzipped {
                Fault::Format(format!("not a valid gzip file: {e}"))
            } else {
                Fault::Io(e)
            }
        })
    };
    let mut bytes = Vec::new();
    read(4, &mut bytes)?;
    if let Some(&rank) = bytes.get(3) {
        read(4 * rank as u64, &mut bytes)?;
    }
    let header = parse_header(&bytes).map_err(Fault::Format)?;
    let mut data = Vec::new();
    // `expected` fits in memory only if the file really holds it; `take` stops at the end.
    read((header.expected as u64).saturating_add(1), &mut data)?;
    check_data_len(&header, data.len()).map_err(Fault::Format)?;
    Ok(Idx {
        dims: header.dims,
        data,
    })
}

/// A parsed IDX header.
struct IdxHeader {
    dims: Vec<usize>,
    /// Data bytes the dimensions need.
    expected: usize,
}

/// Parses the header at the start of `bytes`: magic `00 00 08 D`, then D
/// big-endian u32 dimensions.
fn parse_header(bytes: &[u8]) -> Result<IdxHeader, String> {
    let [m0, m1, kind, rank, ..] = *bytes else {
        return Err(format!(
            "truncated: {} bytes, an IDX header needs at least 4",
            bytes.len()
        ));
    };
    if m0 != 0 || m1 != 0 {
        return Err(format!(
            "bad magic number {m0:02x} {m1:02x} {kind:02x} {rank:02x}: an IDX file starts with 00 00"
        ));
    }
    if kind != 0x08 {
        return Err(format!(
            "element type 0x{kind:02x} is not supported; only unsigned bytes (0x08) are"
        ));
    }
    let rank = rank as usize;
    if rank == 0 {
        return Err("the header declares 0 dimensions".into());
    }
    let len = 4 + 4 * rank;
    let Some(raw) = bytes.get(4..len) else {
        return Err(format!(
            "truncated header: {rank} dimensions need {len} bytes, the file has {}",
            bytes.len()
        ));
    };
    let dims: Vec<usize> = raw
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("dimensions {dims:?} are too large"))?;
    Ok(IdxHeader { dims, expected })
}

fn check_data_len(header: &IdxHeader, found: usize) -> Result<(), String> {
    if found == header.expected {
        return Ok(());
    }
    let what = if found < header.expected {
        "truncated"
    } else {
        "too long"
    };
    let found = if found > header.expected {
        "more than that".to_string()
    } else {
        found.to_string()
    };
    Err(format!(
        "{what}: dimensions {:?} need {} data bytes, the file has {found}",
        header.dims, header.expected
    ))
}

/// Parses the bytes of an IDX file, gzipped or not, as [`read_idx`] reads a file:
/// magic `00 00 08 D`, D big-endian u32 dimensions, then the data.
pub fn parse_idx(bytes: &[u8]) -> Result<Idx, String> {
    decode(bytes).map_err(|fault| match fault {
        Fault::Format(message) => message,
        // Reading a slice never fails; a gzip stream's errors are `Format`.
        Fault::Io(e) => e.to_string(),
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
