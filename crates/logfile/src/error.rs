//! Errors of the log file.
//!
//! Policy: every error names the file; a log of another data file is 1416;
//! a corrupt log (an invalid record with more bytes after it) is never
//! appended to or integrated past the damage.

use std::path::PathBuf;

use sauve_status::Status;

/// Why a log could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// Reading or writing failed.
    #[error("cannot {action} \"{path}\": {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The file does not start with a sauve log header.
    #[error(
        "\"{path}\" is not a sauve log file (accepted: a file starting with the SAUVELOG header, version 1 or 2)"
    )]
    NotALog {
        /// The file.
        path: PathBuf,
    },
    /// An invalid record with more bytes after it.
    #[error("\"{path}\" is damaged at byte {offset}: records after it cannot be trusted")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the invalid record starts.
        offset: u64,
    },
    /// The log belongs to another data file (1416).
    #[error("\"{path}\" belongs to another data file (its identity differs)")]
    Mismatch {
        /// The file.
        path: PathBuf,
    },
    /// A payload over 64 MiB.
    #[error("a record of {size} bytes is too large (accepted: at most 64 MiB)")]
    TooLarge {
        /// Its size.
        size: usize,
    },
    /// An operation tag's label over 255 bytes.
    #[error("an operation label of {size} bytes is too long (accepted: at most 255 bytes)")]
    LabelTooLong {
        /// Its size.
        size: usize,
    },
    /// An earlier fsync failed: nothing appended since can be trusted durable.
    #[error("the log cannot be written any more: {0}")]
    Failed(String),
}

impl LogError {
    /// The status code a run gets from this error.
    pub fn status(&self) -> Status {
        match self {
            LogError::Mismatch { .. } => Status::LogMismatch,
            _ => Status::LogBackupError,
        }
    }
}
