//! Errors of the journal crate.
//!
//! Policy: every error names the file. A journal write failure is a warning
//! for the run that wrote it (behaviour §5 step 14), never a change of its status;
//! the caller decides how to report it. Retrying may help (the disk may have
//! room again).

use std::path::PathBuf;

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Reading or writing a journal file failed.
    #[error("cannot {action} \"{path}\": {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

impl From<sauve_durable::PathError> for JournalError {
    fn from(e: sauve_durable::PathError) -> JournalError {
        JournalError::Io {
            action: e.action,
            path: e.path,
            source: e.source,
        }
    }
}
