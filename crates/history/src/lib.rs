//! `backupHistory.json` (behaviour §12): 4D's record of backups, in the
//! destination, keyed by structure path, which also sets the next backup
//! number (behaviour §6.2).
//!
//! sauve reads the files 4D writes (one or several structure keys, `status`
//! present or absent, HFS and Windows paths) and continues their numbering;
//! it writes 4D's shape (tab indentation, 4D's key order, no final newline)
//! with its own fields appended, and replaces the file atomically. Restores
//! are recorded too. A corrupt file is moved aside, never lost.
//!
//! Not here: deciding what a run records (the engine does) or deleting
//! archives (retention lives with the engine; this crate drops their entries).
//!
//! Invariants (property-tested): numbered backups stay sorted by number and
//! unique; at most N entries of each class per structure, the newest kept;
//! write then read is lossless; a failed write leaves the previous file.

mod entry;
mod error;
mod history;

pub use entry::{
    HistoryAttachment, HistoryEntry, HistoryFile, LockWindows, OffsiteCopy, OffsiteState,
    Operation, format_date,
};
pub use error::HistoryError;
pub use history::{
    FILE_NAME, History, Loaded, MAX_BYTES, Numbering, UNLIMITED, archive_numbers, next_number,
    read_entries, read_json_text,
};
