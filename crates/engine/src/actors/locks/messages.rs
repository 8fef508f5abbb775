//! What the lock keeper is asked.

use std::time::Duration;

use actix::Message;
use sauve_locking::{CancellationToken, Kind, Mode};

use crate::error::EngineError;

/// Takes the backup lock of `kind` for run `run`, waiting for the writes in
/// progress within `timeout` (1405), or until `stop` fires (1406). The
/// keeper holds it until released.
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) struct AcquireBackupLock {
    pub(crate) run: u64,
    pub(crate) kind: Kind,
    pub(crate) mode: Mode,
    pub(crate) timeout: Option<Duration>,
    pub(crate) stop: CancellationToken,
}

/// Releases the lock of `kind` held for `run`; its lock window, if it was held.
#[derive(Message)]
#[rtype(result = "Option<Duration>")]
pub(crate) struct ReleaseBackupLock {
    pub(crate) run: u64,
    pub(crate) kind: Kind,
}

/// Releases whatever `run` still holds (a run that failed or panicked).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ReleaseRun {
    pub(crate) run: u64,
}
