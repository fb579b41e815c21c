//! `fit_resumable`: a run stopped between two steps, or killed with SIGKILL, and
//! resumed from its last checkpoint ends with the parameters, buffers and history
//! of a run never stopped, bit for bit; a checkpoint that does not belong to the
//! run, or that is cut short or corrupted, is a named error and leaves the model
//! as it was.

use cnnc::rt::checkpoint::Checkpoint;
use cnnc::rt::data::{Dataset, Targets};
use cnnc::rt::fit::{fit, fit_resumable, FitConfig, FitOptions, FitReport};
use cnnc::rt::FlatTrain;
use cnnc::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

// Batchnorm (buffers, batches_tracked), dropout (the step's stream), Adam (two
// moments and the step count), a cosine schedule (the epoch), a validation split
// and augmentation (the seed, the epoch and the sample index).
cnn_macros::cnn! {
    model Small {
        input 1x8x8
        conv 4 kernel 3 pad 1 bias off
        batchnorm relu
        maxpool 2
        flatten
        dense 16 relu
        dropout 0.25
        dense 3 softmax
        train {
            loss cross_entropy
            optimizer adam lr 0.01
            batch 8
            epochs 3
            schedule cosine
            validation 0.2
            seed 7
            augment flip horizontal crop 1
        }
    }
}

// The same layers with another seed: another train block.
cnn_macros::cnn! {
    model Reseeded {
        input 1x8x8
        conv 4 kernel 3 pad 1 bias off
        batchnorm relu
        maxpool 2
        flatten
        dense 16 relu
        dropout 0.25
        dense 3 softmax
        train {
            loss cross_entropy
            optimizer adam lr 0.01
            batch 8
            epochs 3
            schedule cosine
            validation 0.2
            seed 8
            augment flip horizontal crop 1
        }
    }
}

// Another model: momentum sgd, no batchnorm.
cnn_macros::cnn! {
    model Plain {
        input 1x8x8
        flatten
        dense 3 softmax
        train {
            loss cross_entropy
            optimizer sgd lr 0.1 momentum 0.9
            batch 8
            epochs 3
        }
    }
}

/// `n` 8x8 images of three classes (a bright row, column or diagonal) with noise.
fn images(n: usize, salt: u32) -> Dataset {
    let mut x = cnnc::ndarray::ArrayD::<f32>::zeros(cnnc::ndarray::IxDyn(&[n, 1, 8, 8]));
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % 3;
        let at = (i / 3) % 8;
        for r in 0..8 {
            for c in 0..8 {
                let on = match class {
                    0 => r == at,
                    1 => c == at,
                    _ => r == c,
                };
                let noise = (((i * 64 + r * 8 + c) as u32 ^ salt).wrapping_mul(2_654_435_761) >> 24) as f32 / 1024.0;
                x[[i, 0, r, c]] = f32::from(u8::from(on)) + noise;
            }
        }
        labels.push(class);
    }
    Dataset::new(x, Targets::Labels(labels)).expect("consistent")
}

fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fit_resume-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Every parameter and buffer as bits, the step counts, and the optimizer's moments.
fn state<M: FlatTrain>(m: &mut M) -> Vec<(String, Vec<u32>)> {
    let mut out: Vec<(String, Vec<u32>)> = Vec::new();
    for name in m.param_names() {
        let v = m.param(&name).expect("listed");
        out.push((name, v.iter().map(|v| v.to_bits()).collect()));
    }
    for name in m.buffer_names() {
        let v = m.buffer(&name).expect("listed");
        out.push((name, v.iter().map(|v| v.to_bits()).collect()));
    }
    out.push(("batches_tracked".into(), vec![m.batches_tracked() as u32]));
    let s = m.optimizer_state();
    out.push(("optimizer step".into(), vec![*s.step as u32]));
    for (i, moment) in s.moments.iter().enumerate() {
        out.push((format!("moment {i}"), moment.iter().map(|v| v.to_bits()).collect()));
    }
    out
}

/// The histories without the seconds, which differ from run to run.
fn numbers(r: &FitReport) -> Vec<String> {
    r.history
        .iter()
        .map(|e| {
            format!(
                "{} {:?} {:?} {:?} {:?}",
                e.epoch,
                e.learning_rate.to_bits(),
                e.train_loss.to_bits(),
                e.train_accuracy.map(f64::to_bits),
                e.validation.map(|v| (v.loss.to_bits(), v.accuracy.map(f64::to_bits)))
            )
        })
        .collect()
}

fn quiet() -> FitConfig {
    Small::FIT.quiet()
}

/// The uninterrupted run.
fn reference(data: &Dataset) -> (Vec<(String, Vec<u32>)>, FitReport) {
    let mut m = Small::new(Small::FIT.seed);
    let report = fit_resumable(&mut m, data, &quiet(), &FitOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    (state(&mut m), report)
}

/// A run stopped after `steps` steps with a checkpoint at `path`.
fn stopped(data: &Dataset, path: &Path, steps: u64) -> Error {
    let mut m = Small::new(Small::FIT.seed);
    let options = FitOptions::default().checkpoint(path).stop_after(steps);
    fit_resumable(&mut m, data, &quiet(), &options).expect_err("stopped")
}

#[test]
fn plain_fit_and_fit_resumable_train_alike() {
    let data = images(100, 1);
    let (ours, report) = reference(&data);
    let mut m = Small::new(Small::FIT.seed);
    let plain = fit(&mut m, &data, &quiet()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state(&mut m), ours);
    assert_eq!(numbers(&plain), numbers(&report));
    assert_eq!(report.history.len(), 3);
}

#[test]
fn a_run_stopped_anywhere_and_resumed_ends_bit_identical() {
    // 100 samples, 20 held out: 80 in batches of 8, 10 steps an epoch, 30 in all.
    let data = images(100, 2);
    let (expected, expected_report) = reference(&data);
    let dir = scratch("stopped");
    for steps in [0, 1, 7, 10, 13, 29] {
        let path = dir.join(format!("after-{steps}.ckpt"));
        let e = stopped(&data, &path, steps);
        let (epoch, batch) = ((steps / 10) as usize, (steps % 10) as usize);
        match &e {
            Error::Interrupted {
                epoch: at,
                batch: b,
                checkpoint: Some(p),
            } => {
                assert_eq!((*at, *b), (epoch, batch), "{e}");
                assert_eq!(Path::new(p), path);
            }
            other => panic!("after {steps} steps: {other:?}"),
        }
        let text = e.to_string();
        assert!(
            text.contains(&format!("before epoch {}, batch {}", epoch + 1, batch + 1)) && text.contains("resume"),
            "{text}"
        );
        let c = Checkpoint::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (c.progress.epoch, c.progress.step_in_epoch, c.progress.optimizer_steps),
            (epoch as u64, batch as u64, steps)
        );
        assert_eq!(c.history.len(), epoch);
        assert_eq!(c.epoch_sums.is_some(), batch > 0);
        // A new model, as a new process would build it.
        let mut m = Small::new(Small::FIT.seed);
        let report = fit_resumable(&mut m, &data, &quiet(), &FitOptions::default().resume(&path))
            .unwrap_or_else(|e| panic!("resumed after {steps} steps: {e}"));
        assert!(
            state(&mut m) == expected,
            "resumed after {steps} steps: the state differs"
        );
        assert_eq!(numbers(&report), numbers(&expected_report), "after {steps} steps");
    }
}

#[test]
fn a_run_stopped_twice_and_resumed_twice_ends_bit_identical() {
    let data = images(100, 3);
    let (expected, _) = reference(&data);
    let dir = scratch("twice");
    let path = dir.join("run.ckpt");
    stopped(&data, &path, 4);
    let mut m = Small::new(Small::FIT.seed);
    let options = FitOptions::default().checkpoint(&path).resume(&path).stop_after(17);
    let e = fit_resumable(&mut m, &data, &quiet(), &options).expect_err("stopped again");
    assert!(matches!(e, Error::Interrupted { epoch: 1, batch: 7, .. }), "{e:?}");
    let mut m = Small::new(Small::FIT.seed);
    fit_resumable(&mut m, &data, &quiet(), &FitOptions::default().resume(&path)).unwrap_or_else(|e| panic!("{e}"));
    assert!(state(&mut m) == expected);
}

#[test]
fn the_stop_flag_stops_between_steps_and_a_finished_run_resumes_to_its_end() {
    let data = images(100, 4);
    let (expected, expected_report) = reference(&data);
    let dir = scratch("flag");
    let path = dir.join("run.ckpt");
    let stop = AtomicBool::new(true);
    let mut m = Small::new(Small::FIT.seed);
    let options = FitOptions::default().checkpoint(&path).stop(&stop);
    let e = fit_resumable(&mut m, &data, &quiet(), &options).expect_err("stopped");
    assert!(matches!(e, Error::Interrupted { epoch: 0, batch: 0, .. }), "{e:?}");
    stop.store(false, Ordering::SeqCst);
    // Checkpoints at the end of every epoch: the last is the finished run.
    let mut m = Small::new(Small::FIT.seed);
    let options = FitOptions::default().checkpoint(&path).resume(&path).stop(&stop);
    fit_resumable(&mut m, &data, &quiet(), &options).unwrap_or_else(|e| panic!("{e}"));
    assert!(state(&mut m) == expected);
    let c = Checkpoint::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.progress.epoch, c.progress.step_in_epoch), (3, 0));
    let mut m = Small::new(Small::FIT.seed);
    let report =
        fit_resumable(&mut m, &data, &quiet(), &FitOptions::default().resume(&path)).unwrap_or_else(|e| panic!("{e}"));
    assert!(state(&mut m) == expected, "resuming a finished run trains no more");
    assert_eq!(numbers(&report), numbers(&expected_report));
    // Without a checkpoint path the stop is reported all the same.
    let stop = AtomicBool::new(true);
    let e = fit_resumable(&mut m, &data, &quiet(), &FitOptions::default().stop(&stop)).expect_err("stopped");
    assert!(e.to_string().contains("no checkpoint path was given"), "{e}");
}

#[test]
fn checkpoints_every_n_steps_land_mid_epoch() {
    let data = images(100, 5);
    let dir = scratch("every");
    let path = dir.join("run.ckpt");
    let mut m = Small::new(Small::FIT.seed);
    let options = FitOptions::default().checkpoint(&path).every(3).stop_after(14);
    fit_resumable(&mut m, &data, &quiet(), &options).expect_err("stopped");
    // Written after steps 3, 6, 9, the epoch's end (10), 12 and at the stop (14).
    let c = Checkpoint::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.progress.epoch, c.progress.step_in_epoch), (1, 4));
    let e = fit_resumable(
        &mut m,
        &data,
        &quiet(),
        &FitOptions::default().checkpoint(&path).every(0),
    )
    .expect_err("every 0");
    assert!(e.to_string().contains("every 0 steps"), "{e}");
}

/// A valid checkpoint 13 steps into a run (mid-epoch), as loaded.
fn mid_run(data: &Dataset, dir: &Path) -> Checkpoint {
    let path = dir.join("mid.ckpt");
    stopped(data, &path, 13);
    Checkpoint::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Resuming `Small` from `path` fails naming every part of `expected`, and leaves
/// the model as it was.
fn refused(data: &Dataset, config: &FitConfig, path: &Path, expected: &[&str]) {
    let mut m = Small::new(Small::FIT.seed);
    let before = state(&mut m);
    let e = fit_resumable(&mut m, data, config, &FitOptions::default().resume(path))
        .expect_err(&format!("resuming should be refused: {expected:?}"));
    let text = e.to_string();
    for part in expected {
        assert!(text.contains(part), "`{part}` is missing from: {text}");
    }
    assert!(state(&mut m) == before, "a refused resume changed the model: {text}");
}

#[test]
fn a_checkpoint_of_another_model_train_block_or_data_set_is_refused() {
    let data = images(100, 6);
    let dir = scratch("other");
    // Another model.
    let path = dir.join("plain.ckpt");
    let mut p = Plain::new(0);
    let e = fit_resumable(
        &mut p,
        &data,
        &Plain::FIT.quiet(),
        &FitOptions::default().checkpoint(&path).stop_after(3),
    )
    .expect_err("stopped");
    assert!(matches!(e, Error::Interrupted { .. }), "{e}");
    let shown = path.display().to_string();
    refused(
        &data,
        &quiet(),
        &path,
        &[&shown, "does not belong", "`Plain`, not `Small`"],
    );
    // The same layers, another train block (its seed).
    let path = dir.join("reseeded.ckpt");
    let mut r = Reseeded::new(0);
    fit_resumable(
        &mut r,
        &data,
        &Reseeded::FIT.quiet(),
        &FitOptions::default().checkpoint(&path).stop_after(3),
    )
    .expect_err("stopped");
    refused(&data, &quiet(), &path, &["`Reseeded`, not `Small`"]);
    // The same model, another configuration or other data.
    let c = mid_run(&data, &dir);
    let path = dir.join("mid.ckpt");
    let other_batch = FitConfig { batch: 4, ..quiet() };
    refused(
        &data,
        &other_batch,
        &path,
        &["does not belong", "`batch 8`", "`batch 4`"],
    );
    let no_augment = FitConfig {
        augment: &[],
        ..quiet()
    };
    refused(
        &data,
        &no_augment,
        &path,
        &["`augment [FlipHorizontal, Crop(1)]`", "this run's `augment []`"],
    );
    refused(&images(100, 7), &quiet(), &path, &["`data hash "]);
    refused(
        &images(90, 6),
        &quiet(),
        &path,
        &["`data 100 samples`", "`data 90 samples`"],
    );
    // A hand-built configuration is not the model's train block.
    let by_hand = FitConfig { model: None, ..quiet() };
    refused(&data, &by_hand, &path, &["`model`"]);
    assert_eq!(c.progress.step_in_epoch, 3);
}

#[test]
fn every_progress_stream_and_optimizer_field_that_disagrees_with_the_run_is_named() {
    let data = images(100, 8);
    let dir = scratch("fields");
    let good = mid_run(&data, &dir);
    type Change = Box<dyn Fn(&mut Checkpoint)>;
    let cases: Vec<(Change, &[&str])> = vec![
        (
            Box::new(|c| c.progress.step_in_epoch = 10),
            &["progress.step_in_epoch 10", "10 batches"],
        ),
        (
            Box::new(|c| {
                c.progress.epoch = 4;
                c.history.push(c.history[0]);
                c.history.push(c.history[0]);
                c.history.push(c.history[0]);
                for (i, r) in c.history.iter_mut().enumerate() {
                    r.epoch = i as u64;
                }
            }),
            &["progress.epoch 4", "3 epochs"],
        ),
        (
            Box::new(|c| c.progress.schedule_position = 0),
            &["schedule_position 0", "epoch 1"],
        ),
        (
            Box::new(|c| c.progress.optimizer_steps += 1),
            &["random stream `dropout`", "[13]", "[14]"],
        ),
        (Box::new(|c| c.epoch_sums = None), &["no epoch_sums"]),
        (
            Box::new(|c| c.epoch_sums.as_mut().unwrap().samples = 20),
            &["epoch_sums.samples 20", "hold 24"],
        ),
        (
            Box::new(|c| c.rng.retain(|r| r.name != "shuffle")),
            &["random stream `shuffle` is missing"],
        ),
        (
            Box::new(|c| c.rng.iter_mut().for_each(|r| r.state = vec![99])),
            &["random stream `shuffle` is at [99]"],
        ),
        (
            Box::new(|c| {
                c.rng.push(cnnc::rt::checkpoint::RngState {
                    name: "mystery".into(),
                    state: vec![1],
                })
            }),
            &["unknown random stream `mystery`"],
        ),
        (
            Box::new(|c| c.optimizer.retain(|(n, _)| n != "optim.state2")),
            &["optimizer tensor `optim.state2`", "missing"],
        ),
        (
            Box::new(|c| c.optimizer[0].1.push(0.0)),
            &["optimizer tensor `optim.state1` holds", "keeps"],
        ),
        (
            Box::new(|c| c.optimizer.push(("optim.state3".into(), vec![0.0]))),
            &["unknown optimizer tensor `optim.state3`"],
        ),
    ];
    for (i, (change, expected)) in cases.iter().enumerate() {
        let mut c = good.clone();
        change(&mut c);
        let path = dir.join(format!("case-{i}.ckpt"));
        c.save(&path)
            .unwrap_or_else(|e| panic!("case {i} ({expected:?}) does not save: {e}"));
        let shown = path.display().to_string();
        let mut parts = expected.to_vec();
        parts.push(&shown);
        refused(&data, &quiet(), &path, &parts);
    }
}

#[test]
fn a_truncated_or_damaged_checkpoint_is_a_named_error_never_a_panic() {
    let data = images(100, 9);
    let dir = scratch("damaged");
    mid_run(&data, &dir);
    let bytes = std::fs::read(dir.join("mid.ckpt")).expect("written");
    let path = dir.join("damaged.ckpt");
    let shown = path.display().to_string();
    for cut in [0, 7, 8, 100, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).expect("write");
        refused(&data, &quiet(), &path, &[&shown]);
    }
    // Every 97th byte flipped: refused, or a checkpoint that still loads (a flipped
    // weight is still a weight); never a panic, and never a model left half-set.
    for at in (0..bytes.len()).step_by(97) {
        let mut b = bytes.clone();
        b[at] ^= 0x5a;
        std::fs::write(&path, &b).expect("write");
        let mut m = Small::new(Small::FIT.seed);
        let before = state(&mut m);
        if let Err(e) = fit_resumable(&mut m, &data, &quiet(), &FitOptions::default().resume(&path)) {
            assert!(e.to_string().contains(&shown), "byte {at}: {e}");
            assert!(state(&mut m) == before, "byte {at}: a refused resume changed the model");
        }
    }
    refused(&data, &quiet(), &dir.join("missing.ckpt"), &["missing.ckpt"]);
}

// ---- a training process killed with SIGKILL, or stopped with Ctrl-C ----

/// The child process's run: a larger data set and more epochs, so that the parent
/// can kill it mid-run; checkpoints every 5 steps.
fn child_config() -> FitConfig {
    FitConfig { epochs: 30, ..quiet() }
}

const CHILD_DIR: &str = "CNNC_FIT_CHILD_DIR";
const CHILD_RESUME: &str = "CNNC_FIT_CHILD_RESUME";

/// Not a test: the training process the tests below start (this test binary
/// again, with `--ignored --exact child_training_process`). It trains, writing
/// `DIR/run.ckpt`, stops on SIGINT with status 130, and writes the final state to
/// `DIR/final.txt`.
#[test]
#[ignore = "the training process of the kill tests; started by them"]
fn child_training_process() {
    let Some(dir) = std::env::var_os(CHILD_DIR).map(PathBuf::from) else {
        return;
    };
    static STOP: AtomicBool = AtomicBool::new(false);
    ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst)).expect("a Ctrl-C handler");
    let data = images(400, 10);
    let mut m = Small::new(Small::FIT.seed);
    let mut options = FitOptions::default()
        .checkpoint(dir.join("run.ckpt"))
        .every(5)
        .stop(&STOP);
    if std::env::var_os(CHILD_RESUME).is_some() {
        options = options.resume(dir.join("run.ckpt"));
    }
    match fit_resumable(&mut m, &data, &child_config(), &options) {
        Ok(_) => {
            let text: Vec<String> = state(&mut m).iter().map(|(n, v)| format!("{n} {v:?}")).collect();
            std::fs::write(dir.join("final.txt"), text.join("\n")).expect("final state");
        }
        Err(Error::Interrupted { .. }) => std::process::exit(130),
        Err(e) => panic!("{e}"),
    }
}

fn child(dir: &Path, resume: bool) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("the test binary"));
    // The test's full name in the integration binary (tests/integration/main.rs).
    c.args([
        "--ignored",
        "--exact",
        "fit_resume::child_training_process",
        "--test-threads",
        "1",
    ])
    .env(CHILD_DIR, dir)
    .stdout(std::process::Stdio::null());
    if resume {
        c.env(CHILD_RESUME, "1");
    }
    c
}

/// Runs the child to its end and returns its final state.
fn finish(dir: &Path, resume: bool) -> String {
    let status = child(dir, resume).status().expect("the child runs");
    assert!(status.success(), "the training process failed: {status}");
    std::fs::read_to_string(dir.join("final.txt")).expect("the final state")
}

/// Starts the child, waits until it has written a checkpoint and a little more,
/// then calls `interrupt` on it and returns its exit status.
fn interrupted(dir: &Path, after: Duration, interrupt: impl Fn(&mut std::process::Child)) -> std::process::ExitStatus {
    let mut process = child(dir, false).spawn().expect("the child starts");
    let start = Instant::now();
    let ckpt = dir.join("run.ckpt");
    while !ckpt.exists() {
        assert!(start.elapsed() < Duration::from_secs(300), "no checkpoint after 300 s");
        if let Some(status) = process.try_wait().expect("wait") {
            panic!("the training process ended before its first checkpoint: {status}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(after);
    interrupt(&mut process);
    process.wait().expect("wait")
}

#[cfg(unix)]
#[test]
fn a_training_process_killed_mid_run_resumes_to_the_same_bits() {
    use std::os::unix::process::ExitStatusExt;
    let reference_dir = scratch("kill-reference");
    let expected = finish(&reference_dir, false);
    for (k, after) in [0u64, 10, 30].into_iter().enumerate() {
        let dir = scratch(&format!("kill-{k}"));
        let status = interrupted(&dir, Duration::from_millis(after), |p| p.kill().expect("SIGKILL"));
        assert_eq!(
            status.signal(),
            Some(9),
            "the child was to be killed mid-run, {after} ms after its first checkpoint: {status}"
        );
        // Whatever the kill interrupted, the checkpoint on disk is whole.
        let c = Checkpoint::load(&dir.join("run.ckpt")).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.progress.epoch < 30, "{:?}", c.progress);
        assert!(!dir.join("final.txt").exists());
        let resumed = finish(&dir, true);
        assert!(
            resumed == expected,
            "killed after {after} ms at {:?}: the resumed run ends with other parameters",
            c.progress
        );
    }
}

#[cfg(unix)]
#[test]
fn a_training_process_stopped_with_sigint_writes_a_checkpoint_exits_130_and_resumes_to_the_same_bits() {
    let reference_dir = scratch("sigint-reference");
    let expected = finish(&reference_dir, false);
    let dir = scratch("sigint");
    let status = interrupted(&dir, Duration::from_millis(10), |p| {
        let sent = Command::new("kill")
            .args(["-INT", &p.id().to_string()])
            .status()
            .expect("kill -INT");
        assert!(sent.success());
    });
    assert_eq!(status.code(), Some(130), "{status}");
    let c = Checkpoint::load(&dir.join("run.ckpt")).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.progress.epoch < 30);
    assert_eq!(finish(&dir, true), expected);
}
