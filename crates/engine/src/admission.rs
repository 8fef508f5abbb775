//! Admission across processes (SPEC 5 step 1): the advisory locks that keep
//! two processes off one app (`APP/Logs/sauve.lock`) and off one set
//! (`<destination>/.<base>.sauve.lock`). Held for the whole operation,
//! released when the file is dropped, by the kernel if the process dies.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::EngineError;

/// `APP/Logs/sauve.lock`.
pub(crate) fn app_lock_path(app: &Path) -> PathBuf {
    app.join("Logs").join("sauve.lock")
}

/// Takes the exclusive advisory lock of `path` without waiting: another
/// holder is [`EngineError::HeldByAnotherProcess`] (1402).
pub(crate) fn try_lock(path: &Path) -> Result<File, EngineError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(EngineError::io("create folder", dir))?;
    }
    let file = sauve_durable::open_lock_file(path).map_err(EngineError::io("open", path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(EngineError::HeldByAnotherProcess {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(EngineError::Io {
            action: "lock",
            path: path.to_path_buf(),
            source,
        }),
    }
}
