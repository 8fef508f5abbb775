//! What the control API (`api.rs`) and `GET /metrics` (`metrics.rs`) serve
//! from.

use std::sync::Arc;

use sauve_engine::{BackupHandle, SchedulerView};
use tokio::sync::watch;

/// What the API serves from.
#[derive(Clone)]
pub struct ApiState {
    /// The engine.
    pub handle: BackupHandle,
    /// The bearer token.
    pub token: Arc<String>,
    /// What the scheduler says, for `GET /v1/status` (published by
    /// [`sauve_engine::scheduler_loop`]; a host without a scheduler passes a
    /// receiver of the default view).
    pub scheduler: watch::Receiver<SchedulerView>,
}
