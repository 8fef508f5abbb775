//! [`Alerts`]: the alerts of behaviour §17.2, through the state keeper and
//! the alerter.

use crate::actors::alerts::messages::{CheckStaleness, DrainAlerts, SetPage, TestAlerts};
use crate::actors::ask;
use crate::actors::state::messages::{AcknowledgeAlerts, ReadState};
use crate::error::EngineError;
use crate::state::AlertRecord;
use crate::views::Parts;

/// The alerts (behaviour §17.2): those open, acknowledging them, a test
/// through every notifier, the staleness check, and the page the alerts
/// link to. From [`crate::BackupHandle::alerts`].
#[derive(Clone, Copy, Debug)]
pub struct Alerts<'a> {
    parts: Parts<'a>,
}

impl<'a> Alerts<'a> {
    pub(crate) fn new(parts: Parts<'a>) -> Alerts<'a> {
        Alerts { parts }
    }

    /// The open alerts, oldest first.
    pub async fn open(self) -> Result<Vec<AlertRecord>, EngineError> {
        let state = ask(&self.parts.actors.state, "state", ReadState).await?;
        Ok(state.0.alerts.into_iter().filter(|a| a.is_open()).collect())
    }

    /// Acknowledges alert `id`, or every open alert with `None`: they leave
    /// `sauve status` and the page's banner. How many were acknowledged.
    pub async fn acknowledge(self, id: Option<u64>) -> Result<usize, EngineError> {
        let msg = AcknowledgeAlerts {
            id,
            now: self.parts.clock.now(),
        };
        ask(&self.parts.actors.state, "state", msg).await?
    }

    /// Sends a test alert through every notifier of `sauve.toml` and waits
    /// for each outcome (`sauve alert test`).
    pub async fn test(self) -> Result<Vec<sauve_alerts::Delivery>, EngineError> {
        ask(&self.parts.actors.alerter, "alerter", TestAlerts).await?
    }

    /// Raises the stale alert if no backup succeeded for
    /// `alerts.stale_after`; the id of the alert raised. The scheduler
    /// loop calls it each time it looks (at least every minute); a host
    /// without it calls it itself.
    pub async fn check_staleness(self) -> Result<Option<u64>, EngineError> {
        ask(&self.parts.actors.alerter, "alerter", CheckStaleness).await?
    }

    /// Waits until every alert being delivered has been delivered or has
    /// failed, and its journal entry written.
    pub async fn delivered(self) -> Result<(), EngineError> {
        ask(&self.parts.actors.alerter, "alerter", DrainAlerts).await
    }

    /// Where the MSC page is served, once known: alerts link to it.
    pub async fn set_page_url(self, url: Option<String>) -> Result<(), EngineError> {
        ask(&self.parts.actors.alerter, "alerter", SetPage { url }).await
    }
}
