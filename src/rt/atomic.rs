//! Files written whole or not at all: a crash, a full disk or a failed write never
//! leaves a half-written file where a good one was.

use crate::rt::Error;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` as a whole or not at all; see [`write_with`].
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_with(path, |sink| sink.write_all(bytes))
}

/// Writes a file as a whole or not at all.
///
/// `fill` writes the contents into a sink on a new temporary file in the target's
/// folder (a unique name, `.NAME.XXXXXX.tmp`). Then the file is flushed, synced to
/// the disk (`sync_all`) and renamed over `path`, and on Unix the folder is synced
/// so that the rename survives a power cut too.
///
/// On any failure (`fill` returning an error, a full disk, a failed sync or rename)
/// the temporary file is removed, a file already at `path` is left as it was, and
/// the error is [`Error::Io`] with `path` and the cause. A read-only file at `path`
/// is refused, as [`std::fs::write`] refuses it, rather than replaced. A symbolic
/// link at `path` is followed: the file it points to is replaced, the link stays.
/// A new file gets the permissions `std::fs::write` would give it; a replaced file
/// keeps its own.
///
/// The sink is the temporary file itself, unbuffered: `fill` wraps it in a
/// `BufWriter` when it writes in small pieces (tests wrap it in writers that fail).
pub fn write_with(path: &Path, fill: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), Error> {
    let io = |source: io::Error| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let target = resolve(path).map_err(io)?;
    let name = target.file_name().ok_or_else(|| {
        io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file name: the path ends in `..` or a root",
        ))
    })?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let existing = match std::fs::metadata(&target) {
        Ok(m) if m.is_dir() => {
            return Err(io(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory, not a file",
            )))
        }
        Ok(m) if m.permissions().readonly() => {
            return Err(io(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the file is read-only; it was left as it is",
            )))
        }
        Ok(m) => Some(m.permissions()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let mut builder = tempfile::Builder::new();
    let prefix = format!(".{}.", name.to_string_lossy());
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    let new_file = {
        use std::os::unix::fs::PermissionsExt;
        // Masked by the umask when the file is created, like `std::fs::write`'s files.
        std::fs::Permissions::from_mode(0o666)
    };
    #[cfg(unix)]
    builder.permissions(new_file);
    // Dropping `temp` before the rename (every `?` below) deletes the file.
    let mut temp = builder.tempfile_in(&dir).map_err(io)?;
    if let Some(permissions) = existing {
        temp.as_file().set_permissions(permissions).map_err(io)?;
    }
    {
        let sink: &mut dyn Write = temp.as_file_mut();
        fill(sink).map_err(io)?;
        sink.flush().map_err(io)?;
    }
    temp.as_file().sync_all().map_err(io)?;
    temp.persist(&target).map_err(|e| io(e.error))?;
    sync_dir(&dir).map_err(io)
}

/// The file a path names: the target of a symbolic link (followed to the end),
/// otherwise the path itself.
fn resolve(path: &Path) -> io::Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match std::fs::canonicalize(path) {
            Ok(p) => Ok(p),
            // A dangling link: write where it points.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let to = std::fs::read_link(path)?;
                Ok(match path.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                })
            }
            Err(e) => Err(e),
        },
        _ => Ok(path.to_path_buf()),
    }
}

/// Syncs a folder so that a rename in it is on the disk. Unix only: elsewhere a
/// folder cannot be opened as a file, and file systems that cannot sync a folder
/// (`EINVAL`) are let be.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        match std::fs::File::open(dir).and_then(|d| d.sync_all()) {
            Err(e) if matches!(e.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported) => Ok(()),
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
