//! What the records actor is asked.

use std::path::PathBuf;

use actix::Message;
use jiff::Timestamp;
use sauve_history::{HistoryEntry, Numbering};
use sauve_journal::Entry;
use sauve_scheduler::SchedulerState;

use crate::error::EngineError;
use crate::state::{DataStamp, EngineState, LastBackup};

/// The Backup Journal's rotation check before a backup (behaviour §11.3).
#[derive(Message)]
#[rtype(result = "Result<Option<u16>, EngineError>")]
pub(crate) struct RotateJournal;

/// Appends one entry to the Backup Journal.
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) struct AppendJournal {
    pub(crate) entry: Entry,
    pub(crate) verbose: bool,
}

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
    pub(crate) taken: Vec<u32>,
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
    pub(crate) removed: Vec<u32>,
    pub(crate) now: Timestamp,
}

/// Saves the last-backup information with the compression ratio and the
/// data file's identity (behaviour §15, §6.1, §9.3).
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) struct RecordLastBackup {
    pub(crate) last: LastBackup,
    pub(crate) ratio: Option<f64>,
    pub(crate) data: Option<DataStamp>,
}

/// The state as it is on disk now.
#[derive(Message)]
#[rtype(result = "StateRead")]
pub(crate) struct ReadState;

/// The reply to [`ReadState`].
#[derive(actix::MessageResponse)]
pub(crate) struct StateRead(pub(crate) EngineState);

/// Saves what the scheduler remembers (behaviour §9.2).
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) struct SaveSchedulerState {
    pub(crate) state: SchedulerState,
}

/// Adds an alert to the list; it gets its id here. A run's journal entry
/// waits in the record until its deliveries are known.
#[derive(Message)]
#[rtype(result = "Result<sauve_alerts::Alert, EngineError>")]
pub(crate) struct RecordAlert {
    pub(crate) alert: sauve_alerts::Alert,
    pub(crate) pending: Option<crate::state::PendingJournal>,
}

/// The deliveries of alert `id` are done: their lines go to the alert and,
/// with them, its waiting journal entry is written.
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) struct ResolveAlert {
    pub(crate) id: u64,
    pub(crate) lines: Vec<String>,
}

/// Acknowledges alert `id`, or every open one; how many were.
#[derive(Message)]
#[rtype(result = "Result<usize, EngineError>")]
pub(crate) struct AcknowledgeAlerts {
    pub(crate) id: Option<u64>,
    pub(crate) now: Timestamp,
}

/// Starts watching staleness at `now` if no backup ever succeeded; the
/// state after.
#[derive(Message)]
#[rtype(result = "Result<StateRead, EngineError>")]
pub(crate) struct WatchStaleness {
    pub(crate) now: Timestamp,
}

/// Records where the off-site copy of a set stands, in its history entry.
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) struct RecordOffsite {
    pub(crate) destination: PathBuf,
    pub(crate) key: String,
    pub(crate) number: u32,
    /// The `[[offsite]]` url, as written.
    pub(crate) label: String,
    pub(crate) copy: sauve_history::OffsiteCopy,
    pub(crate) now: Timestamp,
}

/// A change to what point-in-time restores set aside (behaviour §20).
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) enum SetAsideChange {
    /// A restore to a point is about to put its set's files in place.
    Add(crate::state::SetAsideRecord),
    /// The restore that ran `at` applied records up to `after`.
    Confirm { at: Timestamp, after: u64 },
}
