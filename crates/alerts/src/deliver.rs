//! Delivery: up to three attempts, each within a timeout, with backoff
//! between them (behaviour §17.2), and the journal line that says how it went.

use std::time::Duration;

use crate::{Alert, Notifier, NotifyError};

/// How deliveries are attempted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The limit of one attempt.
    pub timeout: Duration,
    /// The waits before the second, third… attempts; their number plus one
    /// is the number of attempts.
    pub backoff: Vec<Duration>,
}

impl Default for Policy {
    /// behaviour §17.2: a 10 s timeout per attempt, 3 attempts, 1 s then 5 s
    /// apart (25 s would be the wait before a fourth).
    fn default() -> Policy {
        Policy {
            timeout: Duration::from_secs(10),
            backoff: vec![Duration::from_secs(1), Duration::from_secs(5)],
        }
    }
}

/// How one notifier's delivery ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The notifier, as it describes itself.
    pub notifier: String,
    /// Attempts made.
    pub attempts: u32,
    /// `None` when delivered; the last attempt's error otherwise.
    pub error: Option<NotifyError>,
}

impl Delivery {
    /// Whether it was delivered.
    pub fn sent(&self) -> bool {
        self.error.is_none()
    }

    /// The value of its `Alert :` journal line: `webhook https://… sent`,
    /// or `… failed after 3 attempts: …`.
    pub fn line(&self) -> String {
        match &self.error {
            None if self.attempts <= 1 => format!("{} sent", self.notifier),
            None => format!("{} sent (attempt {})", self.notifier, self.attempts),
            Some(e) => format!(
                "{} failed after {} attempt{}: {e}",
                self.notifier,
                self.attempts,
                if self.attempts == 1 { "" } else { "s" }
            ),
        }
    }
}

/// Delivers `alert` through `notifier` under `policy`.
pub async fn deliver(notifier: &dyn Notifier, alert: &Alert, policy: &Policy) -> Delivery {
    let mut attempts = 0;
    let mut waits = policy.backoff.iter();
    loop {
        attempts += 1;
        let result = match tokio::time::timeout(policy.timeout, notifier.send(alert)).await {
            Ok(r) => r,
            Err(_) => Err(NotifyError::Timeout(policy.timeout)),
        };
        let error = result.err();
        let retry = error.as_ref().is_some_and(NotifyError::is_transient);
        match (retry, waits.next()) {
            (true, Some(wait)) => {
                tracing::info!(
                    notifier = notifier.describe(),
                    attempt = attempts,
                    "alert not delivered, trying again in {wait:?}"
                );
                tokio::time::sleep(*wait).await;
            }
            _ => {
                return Delivery {
                    notifier: notifier.describe(),
                    attempts,
                    error,
                };
            }
        }
    }
}

/// Delivers `alert` through every notifier at once; the outcomes in the
/// notifiers' order.
pub async fn deliver_all(
    notifiers: &[Box<dyn Notifier>],
    alert: &Alert,
    policy: &Policy,
) -> Vec<Delivery> {
    futures_util::future::join_all(notifiers.iter().map(|n| deliver(n.as_ref(), alert, policy)))
        .await
}
