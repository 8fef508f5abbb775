//! What the state keeper is asked.

use actix::Message;
use jiff::Timestamp;
use sauve_scheduler::SchedulerState;

use crate::actors::journal::messages::AppendJournal;
use crate::error::EngineError;
use crate::state::{DataStamp, EngineState, LastBackup};

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

/// The deliveries of alert `id` are done: their lines go to the alert;
/// its waiting journal entry, with them, is the reply, for the journal.
#[derive(Message)]
#[rtype(result = "Result<Option<AppendJournal>, EngineError>")]
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

/// A change to what point-in-time restores set aside (behaviour §20).
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) enum SetAsideChange {
    /// A restore to a point is about to put its set's files in place.
    Add(crate::state::SetAsideRecord),
    /// The restore that ran `at` applied records up to `after`.
    Confirm { at: Timestamp, after: u64 },
}

/// The journal entries that alert deliveries interrupted by a stop of
/// sauve left waiting, resolved now with a line saying so, for the journal.
#[derive(Message)]
#[rtype(result = "Vec<AppendJournal>")]
pub(crate) struct ResolveInterrupted;

/// Keeps a rehearsal's record: the last one, and the newest proven point
/// (behaviour §22). A success clears the alerts of failed or stale proof.
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) struct RecordRehearsal {
    pub(crate) record: crate::state::RehearsalRecord,
}

/// Keeps what a sample of the stored bytes read and found (behaviour §23);
/// answers the damage of the sets not known damaged before, which the
/// sampler alerts, and all the damage kept. Damage read sound again, or of
/// a set the history no longer lists, is forgotten and its alert
/// acknowledged; a sample of another source than the last starts afresh.
#[derive(Message)]
#[rtype(result = "Result<SampleRecorded, EngineError>")]
pub(crate) struct RecordSample {
    pub(crate) record: crate::state::SampleRecord,
    /// The cursors of the sets read.
    pub(crate) cursors: std::collections::BTreeMap<String, crate::state::SampleCursor>,
    /// The sets the history lists.
    pub(crate) listed: Vec<sauve_number::BackupNumber>,
    /// Damage found, known or not.
    pub(crate) damaged: Vec<crate::state::Damage>,
    /// Known damage read sound again.
    pub(crate) sound_again: Vec<crate::state::Damage>,
}

/// What [`RecordSample`] answers.
pub(crate) struct SampleRecorded {
    /// The damage of sets not known damaged before.
    pub(crate) new: Vec<crate::state::Damage>,
    /// All the damage kept now.
    pub(crate) marked: Vec<crate::state::Damage>,
}
