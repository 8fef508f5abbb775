//! Alerts that reach a person (behaviour §17.2): the alert document, and the
//! notifiers that deliver it: a webhook (a JSON POST, signed with
//! HMAC-SHA256 when a secret is set), an email over SMTP (STARTTLS, TLS or
//! plain, through lettre), and a shell command (with `SAUVE_*` variables).
//!
//! Every notifier is one [`Notifier`], used as a trait object, so that the
//! engine delivers to all of them the same way: [`deliver`] makes up to
//! three attempts, each bounded by a timeout, with backoff between them,
//! and returns the outcome as the journal line it becomes.
//!
//! Not here: when an alert is raised, where it is kept, or who waits for
//! deliveries (the engine decides; a backup never waits for one).
//!
//! Invariant: a secret (webhook key, SMTP password) never appears in an
//! error, a log line or a [`Delivery`].

mod alert;
mod command;
mod deliver;
mod email;
mod error;
mod webhook;

pub use alert::{Alert, AlertKind};
pub use command::{CommandNotifier, PASSED as PASSED_TO_COMMANDS};
pub use deliver::{Delivery, Policy, deliver, deliver_all};
pub use email::EmailNotifier;
pub use error::NotifyError;
pub use webhook::{SIGNATURE_HEADER, WebhookNotifier, signature};

/// Something that delivers an alert to a person.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync {
    /// What it is, as the journal and `sauve alert test` name it:
    /// `webhook https://…`, `email to a@b`, `command notify.sh`.
    fn describe(&self) -> String;

    /// One attempt at delivering `alert`. [`deliver`] adds the timeout and
    /// the retries.
    async fn send(&self, alert: &Alert) -> Result<(), NotifyError>;
}

/// The notifiers `[alerts]` configures, in the file's order: webhooks,
/// emails, commands.
pub fn notifiers(settings: &sauve_settings::AlertSettings) -> Vec<Box<dyn Notifier>> {
    let mut out: Vec<Box<dyn Notifier>> = Vec::new();
    for w in &settings.webhooks {
        out.push(Box::new(WebhookNotifier::new(w.clone())));
    }
    for e in &settings.emails {
        out.push(Box::new(EmailNotifier::new(e.clone())));
    }
    for c in &settings.commands {
        out.push(Box::new(CommandNotifier::new(c.clone())));
    }
    out
}
