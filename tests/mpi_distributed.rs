//! Data-parallel training under `mpirun -np 2` (feature `mpi`): each test runs
//! examples/mpi_worker.rs in one mode under `timeout` and reads its lines.
//!
//! Needs the worker built first (`cargo test --features mpi` builds examples;
//! with `--test mpi_distributed` alone, run
//! `cargo build --features mpi --example mpi_worker` in the same profile) and
//! Open MPI's `mpirun` on the PATH; without `mpirun` each test says so and passes
//! (CI installs it: .ci/run).
#![cfg(feature = "mpi")]

use cnnc::rt::checkpoint::Checkpoint;
use std::path::{Path, PathBuf};
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
    mpirun_with(2, &[mode], &[])
}

/// Runs the worker with `args` on `ranks` ranks, 1 thread each, with `env`
/// (`NAME=value`) in every rank's environment; returns (exit status, stdout + stderr).
fn mpirun_with(ranks: usize, args: &[&str], env: &[&str]) -> Option<(i32, String)> {
    if !have_mpirun() {
        eprintln!("mpirun not found: install Open MPI (apt-get install -y openmpi-bin libopenmpi-dev)");
        return None;
    }
    let mode = args.join(" ");
    let mut command = Command::new("timeout");
    command
        .args([TIMEOUT, "mpirun", "--oversubscribe", "--allow-run-as-root", "-np"])
        .arg(ranks.to_string())
        .args(["-x", "RAYON_NUM_THREADS=1"]);
    for e in env {
        command.args(["-x", e]);
    }
    let output = command
        .arg(worker())
        .args(args)
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
    let args: Vec<&str> = mode.split(' ').collect();
    let Some((status, text)) = mpirun_with(2, &args, &[]) else {
        return;
    };
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

/// A fresh scratch folder under the target folder's tmp/.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Rank 0's result line of a `checkpoint` run, from `steps` on: the steps, the
/// ranks, the hash of the weights' bits and the epochs' losses.
fn result_line(text: &str) -> &str {
    text.lines()
        .find_map(|l| l.strip_prefix("rank 0: checkpoint run: "))
        .unwrap_or_else(|| panic!("no result line:\n{text}"))
}

/// The weights and losses after `steps: N steps on R ranks; `.
fn weights_and_losses(line: &str) -> &str {
    line.split_once("ranks; ").map_or(line, |(_, rest)| rest)
}

/// An uninterrupted `checkpoint` run of `model` in `dir` on 2 ranks: its result line.
fn uninterrupted(model: &str, dir: &Path) -> Option<String> {
    let (status, text) = mpirun_with(2, &["checkpoint", model, dir.to_str().expect("a UTF-8 path")], &[])?;
    assert_eq!(status, 0, "{text}");
    Some(result_line(&text).to_string())
}

/// A `checkpoint` run of `model` in `dir` on 2 ranks whose rank 1 dies (SIGKILL)
/// at its 8th step; checks that the job stopped and left a checkpoint in the
/// middle of epoch 2 (written after step 6) of the rank count and global batch.
fn killed_run(model: &str, dir: &Path) -> Option<()> {
    let dir_arg = dir.to_str().expect("a UTF-8 path");
    let (status, text) = mpirun_with(2, &["checkpoint", model, dir_arg], &["MPI_WORKER_DIE_AT=8"])?;
    assert_ne!(status, 0, "the job must stop when a rank dies:\n{text}");
    assert!(text.contains("rank 1: SIGKILL at step 8"), "{text}");
    assert!(!text.contains("checkpoint run:"), "a rank finished:\n{text}");
    let checkpoint = Checkpoint::load(&dir.join("run.ckpt")).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!((checkpoint.progress.epoch, checkpoint.progress.step_in_epoch), (1, 1));
    assert_eq!(checkpoint.progress.optimizer_steps, 6);
    let written_by = checkpoint.distributed.expect("a distributed checkpoint");
    assert_eq!((written_by.ranks, written_by.global_batch), (2, 32));
    let per_rank: usize = checkpoint.buffers.iter().map(|(_, a)| a.len()).sum();
    assert_eq!(written_by.rank_buffers.len(), 2 * per_rank);
    Some(())
}

#[test]
fn a_run_with_a_rank_killed_resumes_on_as_many_ranks_to_the_same_bits() {
    // The batchnorm model: each rank's running statistics differ in the middle of
    // an epoch, so the checkpoint must keep every rank's.
    let (full, killed) = (scratch("mpi-bn-full"), scratch("mpi-bn-killed"));
    let Some(reference) = uninterrupted("bn", &full) else {
        return;
    };
    assert!(reference.starts_with("15 steps on 2 ranks"), "{reference}");
    let rank_buffers = Checkpoint::load(&full.join("run.ckpt")).expect("the last checkpoint");
    let per_rank: usize = rank_buffers.buffers.iter().map(|(_, a)| a.len()).sum();
    assert!(per_rank > 0, "the bn model has buffers");

    killed_run("bn", &killed).expect("mpirun ran before");
    let (status, text) = mpirun_with(2, &["checkpoint", "bn", killed.to_str().unwrap(), "resume"], &[]).unwrap();
    assert_eq!(status, 0, "{text}");
    let resumed = result_line(&text);
    assert!(resumed.starts_with("9 steps on 2 ranks"), "{resumed}");
    assert_eq!(weights_and_losses(resumed), weights_and_losses(&reference));

    // The stop flag set on rank 1 alone, as it starts its 8th step: both ranks
    // stop before that step, with a checkpoint there, and the resumed run ends alike.
    let stopped = scratch("mpi-bn-stopped");
    let stopped_arg = stopped.to_str().unwrap();
    let (status, text) = mpirun_with(2, &["checkpoint", "bn", stopped_arg], &["MPI_WORKER_STOP_AT=8"]).unwrap();
    assert_ne!(status, 0, "{text}");
    let found = errors(&text);
    assert_eq!(found.len(), 2, "{text}");
    assert_eq!(found[0].1, found[1].1, "the ranks stopped apart:\n{text}");
    assert!(
        found[0]
            .1
            .starts_with("training stopped before epoch 2, batch 3; checkpoint written to "),
        "{text}"
    );
    let (status, text) = mpirun_with(2, &["checkpoint", "bn", stopped_arg, "resume"], &[]).unwrap();
    assert_eq!(status, 0, "{text}");
    let resumed = result_line(&text);
    assert!(resumed.starts_with("8 steps on 2 ranks"), "{resumed}");
    assert_eq!(weights_and_losses(resumed), weights_and_losses(&reference));
}

#[test]
fn a_checkpoint_of_two_ranks_resumes_on_one_up_to_rounding() {
    let (full, killed) = (scratch("mpi-plain-full"), scratch("mpi-plain-killed"));
    if uninterrupted("plain", &full).is_none() {
        return;
    }
    killed_run("plain", &killed).expect("mpirun ran before");
    let against = format!("compare={}", full.join("final.safetensors").display());
    let args = ["checkpoint", "plain", killed.to_str().unwrap(), "resume", &against];
    let (status, text) = mpirun_with(1, &args, &[]).unwrap();
    assert_eq!(status, 0, "{text}");
    assert!(result_line(&text).starts_with("9 steps on 1 ranks"), "{text}");
    let difference: f32 = text
        .lines()
        .find_map(|l| l.split_once("largest parameter difference from ")?.1.rsplit_once(": "))
        .and_then(|(_, d)| d.trim().parse().ok())
        .unwrap_or_else(|| panic!("no difference line:\n{text}"));
    assert!(difference <= 1e-5, "{difference} from the run on 2 ranks:\n{text}");
}

#[test]
fn resuming_from_a_missing_checkpoint_is_the_same_error_on_every_rank() {
    let dir = scratch("mpi-missing");
    let mode = format!("checkpoint plain {} resume", dir.display());
    same_error_on_both_ranks(&mode, &["rank 0 of 2", "run.ckpt", "No such file"]);
}
