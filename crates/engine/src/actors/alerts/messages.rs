//! What the alerter is asked.

use actix::Message;
use jiff::Timestamp;
use sauve_alerts::{AlertKind, Delivery};
use sauve_journal::Entry;
use sauve_number::BackupNumber;

use crate::error::EngineError;

/// What a run or a check knows of an alert; the alerter adds the app, the
/// host, the page, the time, and the records its id.
#[derive(Clone, Debug)]
pub(crate) struct AlertDraft {
    pub(crate) kind: AlertKind,
    pub(crate) status: sauve_status::Status,
    pub(crate) trigger: String,
    pub(crate) number: BackupNumber,
    pub(crate) scheduled: Option<Timestamp>,
    pub(crate) started: Option<Timestamp>,
    pub(crate) ended: Option<Timestamp>,
    pub(crate) errors: Vec<String>,
    pub(crate) failures: u32,
}

/// Raises an alert: recorded at once, delivered in the background; the
/// journal entry given (the run's) is written once the deliveries are
/// known, with an `Alert` line for each. The alert's id.
#[derive(Message)]
#[rtype(result = "Result<u64, EngineError>")]
pub(crate) struct RaiseAlert {
    pub(crate) draft: AlertDraft,
    pub(crate) journal: Entry,
    /// Written whole whatever the journal's verbose mode (an alert of its
    /// own, whose reason is its point); a run's entry is written as the
    /// mode says.
    pub(crate) whole: bool,
}

/// Sends a test alert through every notifier and waits for the outcomes
/// (`sauve alert test`); it is journaled, not listed.
#[derive(Message)]
#[rtype(result = "Result<Vec<Delivery>, EngineError>")]
pub(crate) struct TestAlerts;

/// Raises the stale alert if no backup succeeded for `alerts.stale_after`;
/// its id when it did.
#[derive(Message)]
#[rtype(result = "Result<Option<u64>, EngineError>")]
pub(crate) struct CheckStaleness;

/// Waits until every delivery in progress has ended.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct DrainAlerts;

/// The MSC page's address, once a server listens: alerts link to it.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SetPage {
    pub(crate) url: Option<String>,
}
