//! IDX data files (src/rt/data.rs): every bad file is an `Err` that names the path
//! and what is wrong with it, gzipped or not, and nothing reads more than the
//! header declares.

use cnnc::rt::data::{idx_dataset, mnist, read_idx, Split, Targets};
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A fresh directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("errors_data-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// IDX bytes of unsigned bytes: magic, dimensions, data.
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip in memory");
    e.finish().expect("gzip in memory")
}

/// `read_idx` of these bytes, plain and gzipped, must fail naming the path and `expected`.
fn refused(dir: &Path, bytes: &[u8], expected: &str) {
    for (kind, content) in [("plain", bytes.to_vec()), ("gzipped", gzip(bytes))] {
        let path = dir.join(format!("file-{kind}"));
        std::fs::write(&path, &content).expect("written");
        let e = read_idx(&path).expect_err(&format!("{kind} {bytes:?} should be refused"));
        let text = e.to_string();
        assert!(
            text.contains(&path.display().to_string()),
            "{kind}: the path is missing: {text}"
        );
        assert!(text.contains(expected), "{kind}: `{expected}` is missing from: {text}");
    }
}

#[test]
fn a_valid_file_reads_plain_and_gzipped() {
    let dir = scratch("valid");
    let bytes = idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    for (name, content) in [("plain", bytes.clone()), ("gz", gzip(&bytes))] {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let got = read_idx(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.dims, [2, 3]);
        assert_eq!(got.data, [1, 2, 3, 4, 5, 6]);
    }
}

#[test]
fn bad_magic_type_and_rank_are_named() {
    let dir = scratch("magic");
    refused(&dir, &[7, 7, 8, 1, 0, 0, 0, 1, 5], "bad magic number 07 07 08 01");
    refused(&dir, b"P5\n28 28\n255\n", "bad magic number");
    refused(
        &dir,
        &[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0],
        "element type 0x0d is not supported",
    );
    refused(&dir, &[0, 0, 8, 0], "0 dimensions");
}

#[test]
fn truncated_headers_and_data_are_named() {
    let dir = scratch("truncated");
    refused(&dir, &[], "truncated: 0 bytes, an IDX header needs at least 4");
    refused(&dir, &[0, 0, 8], "truncated: 3 bytes");
    refused(
        &dir,
        &[0, 0, 8, 3, 0, 0, 0, 2, 0, 0],
        "truncated header: 3 dimensions need 16 bytes, the file has 10",
    );
    refused(
        &dir,
        &idx(&[3, 2, 2], &[0; 7]),
        "truncated: dimensions [3, 2, 2] need 12 data bytes, the file has 7",
    );
    refused(&dir, &idx(&[2], &[0; 3]), "too long: dimensions [2] need 2 data bytes");
}

#[test]
fn absurd_dimensions_are_refused_without_allocating_them() {
    let dir = scratch("absurd");
    // 2^96 bytes: more than any usize.
    refused(&dir, &idx(&[u32::MAX, u32::MAX, u32::MAX], &[]), "are too large");
    // ~1.8e19 bytes declared by a 16-byte file: truncated, read in no time.
    refused(
        &dir,
        &idx(&[u32::MAX, u32::MAX - 1, 1], &[1, 2, 3]),
        "truncated: dimensions [4294967295, 4294967294, 1] need",
    );
}

#[test]
fn a_gzip_stream_longer_than_its_header_is_not_read_to_the_end() {
    // 4 bytes declared, 64 MiB of zeros after them: a zip bomb must not be inflated.
    let dir = scratch("bomb");
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&idx(&[4], &[1, 2, 3, 4])).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        e.write_all(&zeros).unwrap();
    }
    let path = dir.join("bomb.gz");
    std::fs::write(&path, e.finish().unwrap()).unwrap();
    let text = read_idx(&path).expect_err("too long").to_string();
    // "more than that", not the inflated size: reading stopped one byte past the data.
    assert!(
        text.contains("too long: dimensions [4] need 4 data bytes, the file has more than that"),
        "{text}"
    );
}

#[test]
fn corrupt_gzip_is_named() {
    let dir = scratch("gzip");
    let good = gzip(&idx(&[64], &[7; 64]));
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage after the magic", b"\x1f\x8b not really gzip".to_vec()),
        ("cut in half", good[..good.len() / 2].to_vec()),
        ("cut before the trailer", good[..good.len() - 4].to_vec()),
    ];
    // A flipped bit in the CRC32 of the trailer: the data decodes, the check fails.
    let mut crc = good.clone();
    let at = crc.len() - 8;
    crc[at] ^= 0x01;
    cases.push(("a wrong CRC", crc));
    for (what, bytes) in cases {
        let path = dir.join("corrupt.gz");
        std::fs::write(&path, &bytes).unwrap();
        let text = read_idx(&path).expect_err(what).to_string();
        assert!(
            text.contains(&path.display().to_string()) && text.contains("not a valid gzip file"),
            "{what}: {text}"
        );
    }
}

#[test]
fn missing_files_and_directories_are_named() {
    let dir = scratch("missing");
    let nowhere = dir.join("nowhere");
    let text = read_idx(&nowhere).expect_err("missing").to_string();
    assert!(
        text.contains(&nowhere.display().to_string()) && text.contains("No such file"),
        "{text}"
    );
    let text = read_idx(&dir).expect_err("a directory").to_string();
    assert!(text.contains(&dir.display().to_string()), "{text}");
    assert!(text.to_lowercase().contains("directory"), "{text}");
    // mnist names the file it looked for.
    let text = mnist(&dir, Split::Test).expect_err("missing").to_string();
    assert!(
        text.contains("t10k-images-idx3-ubyte") && text.contains("No such file"),
        "{text}"
    );
    // Images present, labels missing: the labels' path is named.
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), idx(&[1, 1, 1], &[0])).unwrap();
    let text = mnist(&dir, Split::Test).expect_err("missing labels").to_string();
    assert!(
        text.contains("t10k-labels-idx1-ubyte") && text.contains("No such file"),
        "{text}"
    );
}

#[test]
fn image_and_label_files_that_disagree_are_named() {
    let dir = scratch("disagree");
    let (images, labels) = (dir.join("images"), dir.join("labels"));
    let write = |path: &Path, bytes: Vec<u8>| std::fs::write(path, bytes).unwrap();
    write(&images, idx(&[3, 2, 2], &[0; 12]));
    write(&labels, idx(&[4], &[0, 1, 2, 3]));
    let text = idx_dataset(&images, &labels, 10).expect_err("3 vs 4").to_string();
    assert!(text.contains("holds 4 labels") && text.contains("3 images"), "{text}");
    write(&labels, idx(&[2], &[0, 1]));
    let text = idx_dataset(&images, &labels, 10).expect_err("3 vs 2").to_string();
    assert!(text.contains("holds 2 labels") && text.contains("3 images"), "{text}");
    // Swapped files: the images are 1-D, the labels 3-D.
    let text = idx_dataset(&labels, &images, 10).expect_err("swapped").to_string();
    assert!(
        text.contains("expected images [N, H, W], found dimensions [2]"),
        "{text}"
    );
    write(&labels, idx(&[3, 1], &[0, 1, 2]));
    let text = idx_dataset(&images, &labels, 10).expect_err("2-D labels").to_string();
    assert!(text.contains("expected labels [N], found dimensions [3, 1]"), "{text}");
    write(&labels, idx(&[3], &[0, 1, 10]));
    let text = idx_dataset(&images, &labels, 10).expect_err("label 10").to_string();
    assert!(text.contains("label 10 of sample 2 is not below 10 classes"), "{text}");
    // And a consistent pair reads, gzipped labels beside plain images.
    write(&labels, gzip(&idx(&[3], &[0, 1, 9])));
    let data = idx_dataset(&images, &labels, 10).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(data.inputs.shape(), &[3, 1, 2, 2]);
    assert_eq!(data.targets, Targets::Labels(vec![0, 1, 9]));
}

#[test]
fn bytes_parse_as_files_read_plain_gzipped_or_in_several_gzip_members() {
    use cnnc::rt::data::parse_idx;
    let dir = scratch("bytes");
    let bytes = idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    // `cat a.gz b.gz` is one gzip file: `gunzip` gives both members' bytes.
    let (a, b) = bytes.split_at(7);
    let members = [gzip(a), gzip(b)].concat();
    for (what, content) in [
        ("plain", bytes.clone()),
        ("gzip", gzip(&bytes)),
        ("two members", members),
    ] {
        let parsed = parse_idx(&content).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            (parsed.dims.as_slice(), parsed.data.as_slice()),
            (&[2, 3][..], &[1, 2, 3, 4, 5, 6][..])
        );
        let path = dir.join(what);
        std::fs::write(&path, &content).unwrap();
        assert_eq!(read_idx(&path).unwrap(), parsed, "{what}");
    }
    // The same errors, word for word, as the file reader's after its path.
    let good = gzip(&idx(&[64], &[7; 64]));
    let bad: Vec<Vec<u8>> = vec![
        vec![],
        idx(&[3, 2, 2], &[0; 7]),
        gzip(&idx(&[3, 2, 2], &[0; 7])),
        gzip(&idx(&[2], &[0; 3])),
        good[..good.len() / 2].to_vec(),
        [&good[..], b"trailing garbage"].concat(),
    ];
    for content in bad {
        let message = parse_idx(&content).expect_err("refused");
        let path = dir.join("bad");
        std::fs::write(&path, &content).unwrap();
        let text = read_idx(&path).expect_err("refused").to_string();
        assert_eq!(text, format!("{}: {message}", path.display()));
    }
    // A gzip bomb in memory is not inflated either.
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&idx(&[4], &[1, 2, 3, 4])).unwrap();
    e.write_all(&vec![0u8; 64 << 20]).unwrap();
    let message = parse_idx(&e.finish().unwrap()).expect_err("too long");
    assert!(message.contains("the file has more than that"), "{message}");
}
