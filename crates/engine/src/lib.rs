//! The backup engine (SPEC sections 4, 5, 8, 15): actix actors behind a
//! [`BackupHandle`] that host apps, the CLI and the server use.
//!
//! One actor per concern, talking through typed messages: the coordinator
//! (admission, the run sequence, stop), the lock keeper (backup locks from
//! the shared [`sauve_locking::LockManager`]), and on `SyncArbiter` threads,
//! since their work is blocking file IO, the attachment resolver, the copier,
//! the journal writer and the history keeper. The run itself
//! (`run.rs`) follows SPEC section 5 step by step and only sends messages.
//!
//! actix never appears in the public API: hosts get a `Send + Sync + Clone`
//! handle whose async methods work from any tokio runtime, because the actix
//! system runs on a thread of its own.
//!
//! Not here: the container (sauve-archive), the formats of the journal and
//! history (their crates), the rules of locking (sauve-locking), the CLI.

mod actors;
mod api;
mod handle;
mod integrate;
mod logcut;
mod open;
mod progress;
mod retention;
mod run;
mod state;

pub use api::{
    BackupEvent, BackupReport, Clock, EngineError, EngineOptions, HookFuture, Hooks, Phase,
    ShutdownHook, ShutdownInfo, StartupHook, SystemClock, Trigger,
};
pub use handle::{BackupHandle, Engine};
pub use integrate::{LogIntegration, integrable_logs, integrate_after_restore};
pub use open::{DataHealth, OpenOutcome, open_check};
pub use state::{EngineState, LastBackup, STATE_FILE, SchedulerView, state_path, status_json};

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
    fn sync<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn every_message_and_event_type_is_send_and_static() {
        use crate::actors::coordinator::messages as c;
        use crate::actors::workers::messages as w;
        send_static::<c::StartBackup>();
        send_static::<c::StopBackup>();
        send_static::<c::IsRunning>();
        send_static::<c::TakeBackupLock>();
        send_static::<w::LoadSettings>();
        send_static::<w::ResolveContent>();
        send_static::<w::StatData>();
        send_static::<w::CheckLog>();
        send_static::<w::LogHasRecords>();
        send_static::<w::CutLog>();
        send_static::<w::BuildLogBackup>();
        send_static::<w::RemoveFiles>();
        send_static::<w::PrepareDestination>();
        send_static::<w::LockFiles>();
        send_static::<w::RemoveStaleParts>();
        send_static::<w::CreateWriter>();
        send_static::<w::CopyEntries>();
        send_static::<w::FinishSet>();
        send_static::<w::VerifyPending>();
        send_static::<w::CommitSet>();
        send_static::<w::ApplyRetention>();
        send_static::<w::RotateJournal>();
        send_static::<w::AppendEntry>();
        send_static::<w::NextNumber>();
        send_static::<w::RecordRun>();
        send_static::<w::LoadState>();
        send_static::<w::UpdateState>();
        send_static::<BackupEvent>();
        send_static::<BackupReport>();
    }

    #[test]
    fn the_handle_is_send_sync_and_clone() {
        sync::<BackupHandle>();
    }
}
