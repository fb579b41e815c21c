//! The file readers' fuzz inputs (fuzz/fuzz_targets/{weights,checkpoint,idx}.rs):
//! every input that once broke a reader, in `tests/io_fuzz_regressions/TARGET/`,
//! replayed through the fuzz target's own checks (fuzz/io_checks.rs), with the
//! verdict its fix settled on; and the seeds in `fuzz/seeds/TARGET/`, which every
//! reader must accept.
//!
//! To add a finding: copy the libFuzzer artifact (bytes as they are) into
//! `tests/io_fuzz_regressions/TARGET/` under a name that says what it is about,
//! and add a line to `EXPECTED`. To write the seeds again (after a format change):
//! `cargo test --test integration io_fuzz_regressions::write_seeds -- --ignored`.

#[path = "../../fuzz/io_checks.rs"]
mod io_checks;
use crate::io_model;

use cnnc::rt::checkpoint::{Checkpoint, EpochRecord, Progress, RngState, Signature};
use cnnc::rt::weights;
use io_model::TableModel;
use safetensors::{tensor::TensorView, SafeTensors};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const TARGETS: [&str; 3] = ["weights", "checkpoint", "idx"];

/// What a regression input must give: `Ok`, or an error containing the text.
#[allow(dead_code)] // while EXPECTED is empty
enum Verdict {
    Accepted,
    Refused(&'static str),
}

/// (target, file in tests/io_fuzz_regressions/TARGET/, verdict, what went wrong once).
const EXPECTED: &[(&str, &str, Verdict, &str)] = &[];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn check(target: &str, data: &[u8]) -> Result<(), String> {
    match target {
        "weights" => io_checks::weights(data),
        "checkpoint" => io_checks::checkpoint(data),
        "idx" => io_checks::idx(data),
        other => panic!("no fuzz target `{other}`"),
    }
}

/// The files of a folder, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("entry").path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

#[test]
fn every_past_finding_gives_its_verdict() {
    let dir = root().join("tests").join("io_fuzz_regressions");
    let mut listed = 0;
    for target in TARGETS {
        for path in files(&dir.join(target)) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some((_, _, verdict, why)) = EXPECTED.iter().find(|e| e.0 == target && e.1 == name) else {
                panic!("{target}/{name} has no line in EXPECTED");
            };
            listed += 1;
            let data = std::fs::read(&path).unwrap();
            match (check(target, &data), verdict) {
                (Ok(()), Verdict::Accepted) => {}
                (Err(e), Verdict::Refused(text)) if e.contains(text) => {}
                (got, _) => panic!("{target}/{name} ({why}): {got:?}"),
            }
        }
    }
    assert_eq!(listed, EXPECTED.len(), "a line of EXPECTED has no file");
}

#[test]
fn every_seed_is_accepted() {
    let mut seeds = 0;
    for target in TARGETS {
        let found = files(&root().join("fuzz").join("seeds").join(target));
        assert!(!found.is_empty(), "no seeds for {target}");
        for path in found {
            let data = std::fs::read(&path).unwrap();
            if let Err(e) = check(target, &data) {
                panic!(
                    "seed {} is refused: {e}\n(write the seeds again: see the top of this file)",
                    path.display()
                );
            }
            seeds += 1;
        }
    }
    assert!(seeds >= 10, "{seeds} seeds");
}

// ---- the seeds ----

/// The seeds, by target: weight files from the hand-built model (as cnnc writes
/// them and as PyTorch would), checkpoints, and IDX files cut from the bundled MNIST.
fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let mut model = TableModel::small(5);
    model.tracked = 17;
    out.push(("weights", "cnnc", weights::to_bytes(&model).unwrap()));
    // PyTorch's save_file: {"format": "pt"} metadata; and a file without counts.
    let file = weights::to_bytes(&model).unwrap();
    let st = SafeTensors::deserialize(&file).unwrap();
    let tensors: Vec<(String, TensorView<'_>)> = st.tensors();
    let pt = HashMap::from([("format".to_string(), "pt".to_string())]);
    out.push((
        "weights",
        "pytorch",
        safetensors::serialize(tensors.clone(), Some(pt)).unwrap(),
    ));
    let untracked: Vec<_> = tensors
        .into_iter()
        .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
        .collect();
    out.push(("weights", "no-count", safetensors::serialize(untracked, None).unwrap()));

    let fresh = TableModel::small(6);
    let c = Checkpoint::new(Signature::of("Small", &fresh, "loss mse optimizer sgd lr 0.1"), &fresh).unwrap();
    out.push(("checkpoint", "fresh", c.to_bytes().unwrap()));
    let mut c = c;
    c.optimizer = vec![
        ("optim.state1".into(), vec![0.25; 12]),
        ("optim.state2".into(), vec![1e-3; 5]),
    ];
    c.progress = Progress {
        optimizer_steps: 9,
        epoch: 1,
        step_in_epoch: 2,
        schedule_position: 1,
        batches_tracked: 9,
    };
    c.rng = vec![RngState {
        name: "shuffle".into(),
        state: vec![7, u64::MAX],
    }];
    c.history = vec![EpochRecord {
        epoch: 0,
        learning_rate: 0.1,
        train_loss: 0.75,
        train_accuracy: Some(0.5),
        validation_loss: Some(0.8),
        validation_accuracy: None,
        seconds: 0.25,
    }];
    out.push(("checkpoint", "resumed", c.to_bytes().unwrap()));

    let mnist = root().join("data").join("mnist-10k");
    let gunzip = |name: &str| {
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(mnist.join(name)).unwrap())
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    };
    let gzip = |bytes: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    };
    // The first `n` samples, with the header's count set to `n`.
    let cut = |bytes: &[u8], n: u32, sample: usize, header: usize| {
        let mut out = bytes[..header + n as usize * sample].to_vec();
        out[4..8].copy_from_slice(&n.to_be_bytes());
        out
    };
    let images = cut(&gunzip("t10k-images-idx3-ubyte.gz"), 2, 28 * 28, 16);
    let labels = cut(&gunzip("train-labels-idx1-ubyte.gz"), 16, 1, 8);
    out.push(("idx", "images-2", images.clone()));
    out.push(("idx", "images-2.gz", gzip(&images)));
    out.push(("idx", "labels-16", labels.clone()));
    out.push(("idx", "labels-16.gz", gzip(&labels)));
    let (a, b) = labels.split_at(10);
    out.push(("idx", "labels-16-two-members.gz", [gzip(a), gzip(b)].concat()));
    out
}

#[test]
#[ignore = "writes fuzz/seeds/; run it by hand after a format change"]
fn write_seeds() {
    for (target, name, bytes) in seeds() {
        let dir = root().join("fuzz").join("seeds").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        check(target, &bytes).unwrap_or_else(|e| panic!("{target}/{name}: {e}"));
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn the_seeds_written_from_code_are_accepted() {
    for (target, name, bytes) in seeds() {
        check(target, &bytes).unwrap_or_else(|e| panic!("{target}/{name}: {e}"));
    }
    // And a few inputs a mutation is likely to make are refused by name.
    let Err(e) = io_checks::weights(b"") else { panic!() };
    assert!(e.contains("not a valid safetensors file"), "{e}");
    let Err(e) = io_checks::idx(&[0x1f, 0x8b]) else {
        panic!()
    };
    assert!(e.contains("not a valid gzip file"), "{e}");
}

#[test]
#[ignore = "replays the local fuzz/corpus/ (not in git) after a fuzz run"]
fn replay_corpus() {
    for target in TARGETS {
        let found = files(&root().join("fuzz").join("corpus").join(target));
        let accepted = found
            .iter()
            .filter(|p| check(target, &std::fs::read(p).unwrap()).is_ok())
            .count();
        println!("{target}: {} inputs, {accepted} accepted", found.len());
    }
}
