//! The backup engine (behaviour §4, §5, §8, §15): actix actors behind a
//! [`BackupHandle`] that host apps, the CLI and the server use.
//!
//! One actor per responsibility, each owning its state, talking through the
//! typed messages of its `messages.rs`: the coordinator (admission of
//! backups, restores and integrations, Stop), the lock keeper (the backup's
//! locks from the shared [`sauve_locking::LockManager`]), and on
//! `SyncArbiter` threads, since their work is blocking file IO, the
//! attachment resolver (settings and content), the copier (archive sets
//! from creation to commit or abort), and the only writer of each record
//! file: the journal keeper (the Backup Journal, its rotation and verbose
//! mode), the history keeper (`backupHistory.json`, the numbering) and the
//! state keeper (`sauve-state.json`). A run is a pure
//! plan (`plan.rs`), its execution (`run.rs`, which only sends messages)
//! and pure record building (`outcome.rs`). Errors are one enum,
//! [`EngineError`], mapped to a status in one place.
//!
//! actix never appears in the public API: hosts get a `Send + Sync + Clone`
//! handle whose async methods work from any tokio runtime, because the actix
//! system runs on a thread of its own. The handle keeps the verbs (backups,
//! Stop, events, locks, restores, integrations, the open check, shutdown)
//! and hands out views for the rest: [`Records`], [`Alerts`], [`Offsite`],
//! [`Config`]. [`scheduler_loop`] runs the schedule (behaviour §9, §10) for
//! any host, with or without the server.
//!
//! Not here: the container (sauve-archive), the formats of the journal and
//! history (their crates), the rules of locking (sauve-locking), the CLI.

mod actors;
pub use stores::open_store;
mod admission;
mod api;
mod destination;
mod error;
mod facts;
mod handle;
mod integrate;
mod io;
mod live;
mod logcut;
mod manual_restore;
mod open;
mod outcome;
mod overview;
mod plan;
mod progress;
mod proof;
mod recorder;
mod records;
mod rehearsal;
mod restore;
mod retention;
mod run;
mod sample;
mod schedule;
mod settings;
mod state;
mod stores;
mod views;

pub use admission::{hold_restore_target, run_lock_path};
pub use api::{
    BackupEvent, BackupReport, Clock, EngineOptions, HookFuture, Hooks, Phase, RehearsalFactory,
    Scheduled, ShutdownHook, ShutdownInfo, StartupHook, SystemClock, Tally, Trigger,
    UnknownTrigger,
};
pub use error::{Busy, EngineError};
pub use handle::{Admission, BackupHandle, Engine, RehearsalRunning, Rehearsals, Running};
pub use integrate::{Integration, LogIntegration, integrable_logs};
pub use live::LiveRun;
pub use open::{DataHealth, OpenOutcome, PointRestore};
pub use overview::{
    ContentItem, ContentPart, ContentSummary, DestinationState, DestinationUsage,
    destination_usage, human_bytes,
};
pub use proof::{ProofState, ago, proof_json, proof_lines, recovery_ms, took};
pub use rehearsal::{Pick, Rehearsal, RehearsalError, RehearsalHost, RehearsalOptions, Sandbox};
pub use restore::{Restored, restore_detached};
pub use sample::{SampleOptions, SampleReport, SampledSet};
pub use sauve_alerts::{Alert, AlertKind, Delivery};
pub use sauve_logfile::Until;
pub use schedule::scheduler_loop;
pub use settings::AppSettings;
pub use state::{
    AlertRecord, Damage, DataStamp, EngineState, LastBackup, OffsiteFailure, OffsiteStatus,
    PendingJournal, RehearsalRecord, STATE_FILE, SampleCursor, SampleRecord, SampleState,
    SchedulerView, damaged_state_path, data_size, offsite_status, read_set_asides, state_path,
    status_json,
};
pub use views::{Alerts, Config, Offsite, Records};

/// Bytes available to this user on the file system holding `path`.
pub fn free_space(path: &std::path::Path) -> Option<u64> {
    let f = std::fs::File::open(path).ok()?;
    let s = rustix::fs::fstatvfs(&f).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_static<T: Send + 'static>() {}
    fn shared<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn every_message_and_event_type_is_send_and_static() {
        use crate::actors::coordinator::messages as c;
        use crate::actors::copier::messages as p;
        use crate::actors::history::messages as h;
        use crate::actors::journal::messages as j;
        use crate::actors::locks::messages as l;
        use crate::actors::resolver::messages as s;
        use crate::actors::state::messages as st;
        send_static::<c::StartBackup>();
        send_static::<c::StopBackup>();
        send_static::<c::IsRunning>();
        send_static::<c::Admit>();
        send_static::<c::Dismiss>();
        send_static::<l::AcquireBackupLock>();
        send_static::<l::ReleaseBackupLock>();
        send_static::<l::ReleaseRun>();
        send_static::<s::ReadSettings>();
        send_static::<p::OpenDestination>();
        send_static::<p::RemoveStaleParts>();
        send_static::<p::BeginSet>();
        send_static::<p::CopyPhase>();
        send_static::<p::CopyClones>();
        send_static::<p::FinishSet>();
        send_static::<p::BuildLogSet>();
        send_static::<p::VerifySet>();
        send_static::<p::CommitSet>();
        send_static::<p::EndSets>();
        send_static::<p::EndRun>();
        send_static::<p::ReadBackSet>();
        send_static::<p::PublishHistory>();
        send_static::<p::ApplyRetention>();
        send_static::<j::RotateJournal>();
        send_static::<j::AppendJournal>();
        send_static::<j::SetVerbose>();
        send_static::<h::NextNumber>();
        send_static::<h::RecordHistory>();
        send_static::<h::RecordOffsite>();
        send_static::<st::RecordLastBackup>();
        send_static::<st::ReadState>();
        send_static::<st::SaveSchedulerState>();
        send_static::<st::ResolveAlert>();
        send_static::<st::ResolveInterrupted>();
        send_static::<st::RecordRehearsal>();
        send_static::<st::RecordSample>();
        send_static::<BackupEvent>();
        send_static::<BackupReport>();
        send_static::<EngineError>();
        send_static::<Running>();
    }

    #[test]
    fn the_handle_is_send_sync_and_clone() {
        shared::<BackupHandle>();
    }
}
