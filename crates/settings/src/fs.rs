//! Crash-safe file writes.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::SettingsError;

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SettingsError {
    let path = path.to_owned();
    move |source| SettingsError::Io {
        action,
        path,
        source,
    }
}

/// Writes `bytes` to a fsynced temporary file beside `path`, then hands it to
/// `place`, then fsyncs the folder so the new name survives a crash.
fn write_with(
    path: &Path,
    bytes: &[u8],
    place: impl FnOnce(tempfile::NamedTempFile) -> Result<(), SettingsError>,
) -> Result<(), SettingsError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io("cannot create folder", dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".backup.4DSettings.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io("cannot create a temporary file in", dir))?;
    tmp.write_all(bytes)
        .map_err(io("cannot write", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(io("cannot sync", tmp.path()))?;
    place(tmp)?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot sync folder", dir))
}

/// Replaces `path` atomically.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SettingsError> {
    write_with(path, bytes, |tmp| {
        tmp.persist(path)
            .map(drop)
            .map_err(|e| io("cannot replace", path)(e.error))
    })
}

/// Creates `path`, refusing to replace an existing file, even one created
/// between the check and the write.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<(), SettingsError> {
    if path.exists() {
        return Err(SettingsError::AlreadyExists(path.to_owned()));
    }
    write_with(path, bytes, |tmp| {
        tmp.persist_noclobber(path).map(drop).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                SettingsError::AlreadyExists(path.to_owned())
            } else {
                io("cannot create", path)(e.error)
            }
        })
    })
}
