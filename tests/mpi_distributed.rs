//! Data-parallel training under `mpirun -np 2` (feature `mpi`): each test runs
//! examples/mpi_worker.rs in one mode under `timeout` and reads its lines.
//!
//! Needs the worker built first (`cargo test --features mpi` builds examples;
//! with `--test mpi_distributed` alone, run
//! `cargo build --features mpi --example mpi_worker` in the same profile) and
//! Open MPI's `mpirun` on the PATH; without `mpirun` each test says so and passes
//! (CI installs it: .ci/run).
#![cfg(feature = "mpi")]

use std::path::PathBuf;
use std::process::Command;

/// Seconds before `timeout` ends a run: a hang fails the test instead of blocking CI.
const TIMEOUT: &str = "240";

fn have_mpirun() -> bool {
    Command::new("mpirun")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// target/<profile>/examples/mpi_worker, next to this test's deps/ folder.
fn worker() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = profile.join("examples").join("mpi_worker");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --features mpi --example mpi_worker` \
         (add --release when testing with --release)",
        path.display()
    );
    path
}

/// Runs the worker in `mode` on 2 ranks, 1 thread each; returns (exit status, stdout + stderr).
fn mpirun(mode: &str) -> Option<(i32, String)> {
    if !have_mpirun() {
        eprintln!("mpirun not found: install Open MPI (apt-get install -y openmpi-bin libopenmpi-dev)");
        return None;
    }
    let output = Command::new("timeout")
        .args([TIMEOUT, "mpirun", "--oversubscribe", "--allow-run-as-root", "-np", "2"])
        .args(["-x", "RAYON_NUM_THREADS=1"])
        .arg(worker())
        .arg(mode)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("timeout(1) runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let status = output.status.code().unwrap_or(-1);
    assert_ne!(
        status, 124,
        "mpirun {mode} did not finish within {TIMEOUT}s (a hang):\n{text}"
    );
    Some((status, text))
}

/// Each rank's `error: ...` line, by rank.
fn errors(text: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let (rank, rest) = l.split_once(": error: ")?;
            Some((rank.trim().to_string(), rest.to_string()))
        })
        .collect();
    found.sort();
    found
}

/// Both ranks stopped, with the same error, that contains every one of `words`.
fn same_error_on_both_ranks(mode: &str, words: &[&str]) {
    let Some((status, text)) = mpirun(mode) else { return };
    assert_ne!(status, 0, "{mode} must fail:\n{text}");
    assert!(!text.contains("without error"), "{mode}: a rank trained on:\n{text}");
    let found = errors(&text);
    assert_eq!(
        found.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        ["rank 0", "rank 1"],
        "{mode}: every rank reports the error:\n{text}"
    );
    assert_eq!(found[0].1, found[1].1, "{mode}: the ranks disagree:\n{text}");
    for word in words {
        assert!(
            found[0].1.contains(word),
            "{mode}: `{word}` missing from `{}`",
            found[0].1
        );
    }
}

#[test]
fn two_ranks_of_batch_32_equal_one_process_of_batch_64() {
    let Some((status, text)) = mpirun("equivalence") else {
        return;
    };
    for optimizer in ["sgd", "adam"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("rank 0: equivalence {optimizer}:")))
            .unwrap_or_else(|| panic!("no {optimizer} result:\n{text}"));
        assert!(line.contains("5 steps, 2 ranks x local batch 32"), "{line}");
        assert!(line.ends_with(" ok"), "{line}");
    }
    assert_eq!(status, 0, "{text}");
}

#[test]
fn a_nan_pixel_on_one_rank_stops_every_rank_before_training() {
    same_error_on_both_ranks("bad-data", &["rank 1 of 2", "non-finite", "NaN"]);
}

#[test]
fn a_non_finite_loss_on_one_rank_stops_every_rank() {
    same_error_on_both_ranks(
        "nan-loss",
        &["rank 1 of 2", "became", "epoch 1, batch 1", "lower the learning rate"],
    );
}

#[test]
fn a_rank_count_that_does_not_divide_the_batch_is_an_error_before_training() {
    same_error_on_both_ranks("bad-batch", &["global batch of 63", "2 ranks"]);
}

#[test]
fn replicas_built_from_different_seeds_are_an_error_before_training() {
    same_error_on_both_ranks("other-seed", &["parameters differ before training", "same seed"]);
}
