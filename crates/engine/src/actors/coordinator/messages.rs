//! What the coordinator is asked.

use std::fs::File;

use actix::Message;
use tokio::sync::oneshot;

use crate::api::{BackupReport, Scheduled, Trigger};
use crate::error::{Busy, EngineError};
use crate::run::Numbered;

/// Runs one backup to its end (or refuses it) and returns its report.
#[derive(Message)]
#[rtype(result = "BackupReport")]
pub(crate) struct StartBackup {
    pub(crate) trigger: Trigger,
    pub(crate) scheduled: Option<Scheduled>,
    /// The caller's task holds a write guard (1404): known only on its side.
    pub(crate) holds_write_guard: bool,
    /// Told the number once the run has one.
    pub(crate) numbered: oneshot::Sender<Numbered>,
}

/// The Stop button: ends the running copy (1406). Whether a backup was running.
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct StopBackup;

/// Whether a backup is running.
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct IsRunning;

/// Admits a restore or a log integration: refused while anything runs here
/// (1402, 1417) or in another process (1402).
#[derive(Message)]
#[rtype(result = "Result<Admitted, EngineError>")]
pub(crate) struct Admit {
    pub(crate) busy: Busy,
}

/// An admitted operation: its id, and the app's advisory lock, held until
/// dropped. `stop` is cancelled by Stop and, for a rehearsal, by a backup
/// that comes due (behaviour §22).
pub(crate) struct Admitted {
    pub(crate) id: u64,
    pub(crate) lock: File,
    pub(crate) stop: sauve_locking::CancellationToken,
}

/// The admitted operation `id` ended.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Dismiss {
    pub(crate) id: u64,
}
