//! What the history keeper is asked.

use sauve_number::BackupNumber;
use std::path::PathBuf;

use actix::Message;
use jiff::Timestamp;
use sauve_history::{HistoryEntry, Numbering};

use crate::error::EngineError;

/// The next backup number in `destination` (behaviour §6.2), with its notes.
#[derive(Message)]
#[rtype(result = "Result<(Numbering, Vec<String>), EngineError>")]
pub(crate) struct NextNumber {
    pub(crate) destination: PathBuf,
    pub(crate) key: String,
    pub(crate) base: String,
    pub(crate) now: Timestamp,
    /// Numbers taken elsewhere than in `destination`: the sets in the
    /// store of a bucket destination.
    pub(crate) taken: Vec<BackupNumber>,
}

/// Records a run, a restore or an integration in the history of `destination`.
#[derive(Message)]
#[rtype(result = "Result<Vec<String>, EngineError>")]
pub(crate) struct RecordHistory {
    pub(crate) destination: PathBuf,
    pub(crate) key: String,
    pub(crate) entry: HistoryEntry,
    /// Entries kept per class (behaviour §12).
    pub(crate) limit: usize,
    /// Numbers whose sets retention deleted.
    pub(crate) removed: Vec<BackupNumber>,
    pub(crate) now: Timestamp,
}

/// Records where the off-site copy of a set stands, in its history entry.
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) struct RecordOffsite {
    pub(crate) destination: PathBuf,
    pub(crate) key: String,
    pub(crate) number: BackupNumber,
    /// The `[[offsite]]` url, as written.
    pub(crate) label: String,
    pub(crate) copy: sauve_history::OffsiteCopy,
    pub(crate) now: Timestamp,
}
