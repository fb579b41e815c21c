//! Atomic writes (src/rt/atomic.rs): a write that fails at any byte, on a full
//! disk, or by a panic never leaves a corrupt file where a good one was, nor a
//! temporary file behind; weight files and checkpoints are written that way.

use crate::io_model;

use cnnc::rt::atomic;
use cnnc::rt::checkpoint::{Checkpoint, Signature};
use cnnc::rt::weights;
use cnnc::Error;
use io_model::TableModel;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// A fresh directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("io_atomic-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("readable")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// How an injected fault shows.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `write` returns an error.
    Error,
    /// `write` returns ENOSPC, as a full disk does.
    DiskFull,
    /// `write` accepts nothing (`Ok(0)`), so `write_all` gives up.
    Zero,
}

/// A writer that passes `left` bytes on (in pieces of at most 7, to exercise short
/// writes), then fails as `fault` says; a flush fails too once the budget is out.
struct Faulty<'a> {
    inner: &'a mut dyn Write,
    left: usize,
    fault: Fault,
}

impl Faulty<'_> {
    fn failure(&self) -> io::Result<usize> {
        match self.fault {
            Fault::Error => Err(io::Error::other("injected fault")),
            Fault::DiskFull => Err(io::Error::from_raw_os_error(28)),
            Fault::Zero => Ok(0),
        }
    }
}

impl Write for Faulty<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            return self.failure();
        }
        let n = buf.len().min(self.left).min(7);
        let n = self.inner.write(&buf[..n])?;
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match (self.left, self.fault) {
            (0, Fault::DiskFull) => Err(io::Error::from_raw_os_error(28)),
            (0, _) => Err(io::Error::other("flush failed")),
            _ => self.inner.flush(),
        }
    }
}

/// A weight file's bytes, for content that is worth keeping.
fn weight_bytes(seed: u64) -> Vec<u8> {
    weights::to_bytes(&TableModel::small(seed)).expect("bytes")
}

#[test]
fn a_write_replaces_the_file_whole_and_leaves_nothing_else() {
    let dir = scratch("replace");
    let path = dir.join("w.safetensors");
    atomic::write(&path, b"first").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
    atomic::write(&path, b"second, longer").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
    atomic::write(&path, b"").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"");
    assert_eq!(listing(&dir), ["w.safetensors"]);
    atomic::write_with(&path, |w| {
        for chunk in b"in pieces".chunks(2) {
            w.write_all(chunk)?;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"in pieces");
}

#[test]
fn a_fault_at_every_byte_leaves_the_old_file_and_no_temporary() {
    let dir = scratch("every-byte");
    let path = dir.join("model.safetensors");
    let old = weight_bytes(1);
    let new = weight_bytes(2);
    assert_ne!(old, new);
    atomic::write(&path, &old).unwrap();
    let shown = path.display().to_string();
    let mut faults = 0;
    for fault in [Fault::Error, Fault::DiskFull, Fault::Zero] {
        // `left == new.len()`: every byte written, the flush fails.
        for left in 0..=new.len() {
            let err = atomic::write_with(&path, |sink| {
                let mut w = Faulty {
                    inner: sink,
                    left,
                    fault,
                };
                w.write_all(&new)?;
                w.flush()
            })
            .expect_err("the fault must surface");
            faults += 1;
            let Error::Io { path: named, source } = &err else {
                panic!("{fault:?} at {left}: not an Io error: {err}");
            };
            assert_eq!(named, &shown, "{fault:?} at {left}");
            let text = err.to_string();
            let cause = match fault {
                Fault::DiskFull => "No space left on device",
                _ if left == new.len() => "flush failed",
                Fault::Error => "injected fault",
                Fault::Zero => "failed to write whole buffer",
            };
            assert!(text.contains(cause), "{fault:?} at {left}: {text}");
            if matches!(fault, Fault::DiskFull) {
                assert_eq!(source.kind(), io::ErrorKind::StorageFull);
            }
            assert_eq!(
                std::fs::read(&path).unwrap(),
                old,
                "{fault:?} at {left}: the old file changed"
            );
            assert_eq!(listing(&dir), ["model.safetensors"], "{fault:?} at {left}");
        }
    }
    assert_eq!(faults, 3 * (new.len() + 1));
    // And without a fault the new file is written.
    atomic::write(&path, &new).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), new);
}

#[test]
fn a_failed_first_write_leaves_no_file_at_all() {
    let dir = scratch("first");
    let path = dir.join("new.safetensors");
    for left in [0, 1, 100] {
        atomic::write_with(&path, |sink| {
            Faulty {
                inner: sink,
                left,
                fault: Fault::DiskFull,
            }
            .write_all(&[7; 1000])
        })
        .expect_err("disk full");
        assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
    }
}

#[test]
fn a_panic_while_writing_leaves_the_old_file_and_no_temporary() {
    let dir = scratch("panic");
    let path = dir.join("w.bin");
    atomic::write(&path, b"good").unwrap();
    let result = std::panic::catch_unwind(|| {
        let _ = atomic::write_with(&path, |w| {
            w.write_all(b"half")?;
            panic!("the writer panicked");
        });
    });
    assert!(result.is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"good");
    assert_eq!(listing(&dir), ["w.bin"]);
}

#[test]
fn unwritable_targets_name_the_path_and_change_nothing() {
    let dir = scratch("unwritable");
    // A folder that does not exist.
    let nowhere = dir.join("no-such-dir").join("w.safetensors");
    let text = atomic::write(&nowhere, b"x").unwrap_err().to_string();
    assert!(
        text.contains(&nowhere.display().to_string()) && text.contains("No such file"),
        "{text}"
    );
    // A directory where the file should be.
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let text = atomic::write(&sub, b"x").unwrap_err().to_string();
    assert!(
        text.contains(&sub.display().to_string()) && text.contains("directory"),
        "{text}"
    );
    assert!(sub.is_dir());
    // A read-only file is refused like std::fs::write refuses it, not replaced.
    let ro = dir.join("read-only");
    std::fs::write(&ro, b"keep me").unwrap();
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&ro, perms).unwrap();
    let text = atomic::write(&ro, b"x").unwrap_err().to_string();
    assert!(
        text.contains(&ro.display().to_string()) && text.contains("read-only"),
        "{text}"
    );
    assert_eq!(std::fs::read(&ro).unwrap(), b"keep me");
    assert_eq!(listing(&dir), ["read-only", "sub"]);
}

#[cfg(unix)]
#[test]
fn links_are_followed_and_permissions_kept() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let dir = scratch("links");
    let real = dir.join("real.safetensors");
    std::fs::write(&real, b"old").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.join("link.safetensors");
    symlink("real.safetensors", &link).unwrap();
    atomic::write(&link, b"new").unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&real).unwrap(), b"new");
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the replaced file keeps its permissions");
    // A dangling link: the file is created where it points.
    let dangling = dir.join("dangling");
    symlink("target-to-be", &dangling).unwrap();
    atomic::write(&dangling, b"made").unwrap();
    assert_eq!(std::fs::read(dir.join("target-to-be")).unwrap(), b"made");
    // A new file gets what std::fs::write gives (0666 less the umask), not 0600.
    let fresh = dir.join("fresh");
    let plain = dir.join("plain");
    atomic::write(&fresh, b"x").unwrap();
    std::fs::write(&plain, b"x").unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&fresh), mode(&plain));
}

#[test]
fn a_reader_sees_the_old_file_or_the_new_one_never_a_mix() {
    let dir = scratch("readers");
    let path = dir.join("w.bin");
    let a = vec![b'a'; 256 * 1024];
    let b = vec![b'b'; 200 * 1024];
    atomic::write(&path, &a).unwrap();
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            for i in 0..40 {
                atomic::write(&path, if i % 2 == 0 { &b } else { &a }).unwrap();
            }
        });
        let mut reads = 0;
        while !writer.is_finished() || reads == 0 {
            let got = std::fs::read(&path).unwrap();
            assert!(got == a || got == b, "a read saw {} bytes of a mix", got.len());
            reads += 1;
        }
    });
    assert_eq!(listing(&dir), ["w.bin"]);
}

/// An open handle on the old file still reads the old bytes in full after a save:
/// the save wrote a new file and renamed it, it did not truncate the old one.
fn replaced_not_rewritten(path: &Path, save: impl FnOnce()) {
    let old = std::fs::read(path).unwrap();
    let mut handle = std::fs::File::open(path).unwrap();
    save();
    let mut through_handle = Vec::new();
    handle.read_to_end(&mut through_handle).unwrap();
    assert_eq!(through_handle, old, "the old file was overwritten in place");
    assert_ne!(std::fs::read(path).unwrap(), old, "the new file is not in place");
}

#[test]
fn weight_files_and_checkpoints_are_written_atomically() {
    let dir = scratch("users");
    let path = dir.join("model.safetensors");
    weights::save_safetensors(&TableModel::small(1), &path).unwrap();
    replaced_not_rewritten(&path, || {
        weights::save_safetensors(&TableModel::small(2), &path).unwrap()
    });
    let ckpt = dir.join("run.ckpt");
    let model = TableModel::small(3);
    let checkpoint = |m: &TableModel| Checkpoint::new(Signature::of("Small", m, "train"), m).unwrap();
    checkpoint(&model).save(&ckpt).unwrap();
    replaced_not_rewritten(&ckpt, || checkpoint(&TableModel::small(4)).save(&ckpt).unwrap());
    assert_eq!(listing(&dir), ["model.safetensors", "run.ckpt"]);
    // A checkpoint that would not load is not saved: the good file stays.
    let before = std::fs::read(&ckpt).unwrap();
    let mut broken = checkpoint(&TableModel::small(5));
    broken.params[0].1[[0, 0, 0, 0]] = f32::NAN;
    let text = broken.save(&ckpt).unwrap_err().to_string();
    assert!(
        text.contains(&ckpt.display().to_string()) && text.contains("non-finite"),
        "{text}"
    );
    assert_eq!(std::fs::read(&ckpt).unwrap(), before);
    // Nor is a model that cannot give a checkpoint.
    let mut nan_model = TableModel::small(6);
    nan_model.buffers[0].1[[1]] = f32::INFINITY;
    let text = Checkpoint::new(Signature::of("Small", &nan_model, "train"), &nan_model)
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("buffer `batchnorm1.running_mean` holds a non-finite value (inf)"),
        "{text}"
    );
}
