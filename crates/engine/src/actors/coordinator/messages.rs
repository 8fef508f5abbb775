//! What the coordinator is asked.

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
    /// Sent again once the rehearsal it stopped has ended (behaviour §22).
    pub(crate) waited: bool,
}

/// The Stop button: ends the running copy (1406). Whether a backup was running.
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct StopBackup;

/// Whether a backup is running.
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct IsRunning;

/// Admits a restore, a log integration or a rehearsal: refused while
/// anything runs here (1402, 1417), or a backup waits for a stopped
/// rehearsal, or in another process (1402). The reply is the admission.
#[derive(Message)]
#[rtype(result = "Result<crate::handle::Ticket, EngineError>")]
pub(crate) struct Admit {
    pub(crate) busy: Busy,
}

/// The admitted operation `id` ended.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Dismiss {
    pub(crate) id: u64,
}
