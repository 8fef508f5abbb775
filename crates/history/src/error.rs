//! Errors of the history crate.
//!
//! Policy: errors name the file. A corrupt history is not an error: it is
//! moved aside and reported (behaviour §12). A write failure is a warning for the
//! run that wrote it, never a change of its status; retrying may help.

use std::path::PathBuf;

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// Reading, writing or moving the file failed.
    #[error("cannot {action} \"{path}\": {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The file is not a history sauve can read (it is moved aside at the
    /// next backup, which starts a new one).
    #[error(
        "\"{path}\" is not a valid backup history (the next backup moves it aside and starts a new one)"
    )]
    Invalid {
        /// The file.
        path: PathBuf,
    },
    /// The file holds more than a history may ([`crate::MAX_BYTES`]); it was
    /// not read.
    #[error(
        "\"{path}\" holds {size} bytes, more than a history may (accepted: at most {} MiB; the next backup moves it aside and starts a new one)",
        limit >> 20
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit, in bytes.
        limit: u64,
    },
    /// An entry could not be encoded (a bug, not bad input).
    #[error("cannot encode the history: {0}")]
    Encode(String),
}

impl From<sauve_durable::PathError> for HistoryError {
    fn from(e: sauve_durable::PathError) -> HistoryError {
        HistoryError::Io {
            action: e.action,
            path: e.path,
            source: e.source,
        }
    }
}
