//! The alert document (behaviour §17.2): the webhook's body, the email's text,
//! the command's variables.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Why an alert was raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    /// A scheduled backup gave up after its retries (1401): always raised.
    GiveUp,
    /// A backup failed (`alerts.on = "failure"` or `"always"`).
    Failure,
    /// A backup ended (`alerts.on = "always"`): the heartbeat.
    Heartbeat,
    /// No backup succeeded for longer than `alerts.stale_after`.
    Stale,
    /// `sauve alert test`.
    Test,
    /// A restore rehearsal failed (behaviour §22): always raised.
    RehearsalFailed,
    /// The newest proven recovery point is older than
    /// `alerts.proven_stale_after` (behaviour §22).
    ProofStale,
    /// A sample of the stored bytes found a set damaged (behaviour §23):
    /// always raised.
    SetDamaged,
}

impl AlertKind {
    /// The word in the document and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::GiveUp => "give-up",
            AlertKind::Failure => "failure",
            AlertKind::Heartbeat => "heartbeat",
            AlertKind::Stale => "stale",
            AlertKind::Test => "test",
            AlertKind::RehearsalFailed => "rehearsal-failed",
            AlertKind::ProofStale => "proof-stale",
            AlertKind::SetDamaged => "set-damaged",
        }
    }
}

/// One alert, as every notifier sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Its id in the app's alert list (`sauve alert ack ID`).
    pub id: u64,
    /// Why it was raised.
    pub kind: AlertKind,
    /// The app folder.
    pub app: String,
    /// The machine's name.
    pub host: String,
    /// The backup's status code (0 for a heartbeat or a test).
    pub status: i32,
    /// Its text.
    pub status_text: String,
    /// What started the backup (`scheduled`…), empty when none.
    pub trigger: String,
    /// The backup number, 0 without an archive.
    pub number: sauve_number::BackupNumber,
    /// The scheduled slot, for scheduled runs.
    pub scheduled: Option<Timestamp>,
    /// When the backup started.
    pub started: Option<Timestamp>,
    /// When it ended.
    pub ended: Option<Timestamp>,
    /// The errors it reported.
    pub errors: Vec<String>,
    /// Consecutive failed scheduled attempts.
    pub failures: u32,
    /// The MSC page, when a server runs.
    pub page: Option<String>,
    /// When the alert was raised.
    pub raised: Timestamp,
}

impl Alert {
    /// One line for people: `ALERT 3: backup of /srv/app gave up: 1401 …`.
    pub fn headline(&self) -> String {
        let what = match self.kind {
            AlertKind::GiveUp => "scheduled backups gave up",
            AlertKind::Failure => "a backup failed",
            AlertKind::Heartbeat => "a backup ended",
            AlertKind::Stale => "no backup succeeded for too long",
            AlertKind::Test => "test alert",
            AlertKind::RehearsalFailed => "a restore rehearsal failed",
            AlertKind::ProofStale => "no restore proven for too long",
            AlertKind::SetDamaged => "a stored set is damaged",
        };
        format!(
            "{what} ({} {}) for {} on {}",
            self.status, self.status_text, self.app, self.host
        )
    }

    /// The email's subject.
    pub fn subject(&self) -> String {
        format!("sauve: {}", self.headline())
    }

    /// The email's text: every field on a line of its own.
    pub fn text(&self) -> String {
        let t = |t: Option<Timestamp>| t.map_or_else(|| "-".to_owned(), |t| t.to_string());
        let mut s = format!(
            "{}\n\nalert:     {} ({})\napp:       {}\nhost:      {}\nstatus:    {} {}\ntrigger:   {}\nnumber:    {}\nscheduled: {}\nstarted:   {}\nended:     {}\nfailures:  {}\nraised:    {}\n",
            self.headline(),
            self.id,
            self.kind.as_str(),
            self.app,
            self.host,
            self.status,
            self.status_text,
            if self.trigger.is_empty() {
                "-"
            } else {
                &self.trigger
            },
            self.number,
            t(self.scheduled),
            t(self.started),
            t(self.ended),
            self.failures,
            self.raised,
        );
        for e in &self.errors {
            s.push_str(&format!("error:     {e}\n"));
        }
        if let Some(p) = &self.page {
            s.push_str(&format!("\nThe backup page: {p}\n"));
        }
        s.push_str("\nAcknowledge it with `sauve alert ack ");
        s.push_str(&self.id.to_string());
        s.push_str("` (or on the backup page).\n");
        s
    }

    /// The command's variables: `SAUVE_ALERT_ID`, `SAUVE_ALERT_KIND`,
    /// `SAUVE_APP`, `SAUVE_HOST`, `SAUVE_STATUS`, `SAUVE_STATUS_TEXT`,
    /// `SAUVE_TRIGGER`, `SAUVE_NUMBER`, `SAUVE_SCHEDULED`, `SAUVE_STARTED`,
    /// `SAUVE_ENDED`, `SAUVE_ERRORS` (one per line), `SAUVE_FAILURES`,
    /// `SAUVE_PAGE`, and `SAUVE_ALERT_JSON`, the whole document.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let t = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_default();
        vec![
            ("SAUVE_ALERT_ID", self.id.to_string()),
            ("SAUVE_ALERT_KIND", self.kind.as_str().to_owned()),
            ("SAUVE_APP", self.app.clone()),
            ("SAUVE_HOST", self.host.clone()),
            ("SAUVE_STATUS", self.status.to_string()),
            ("SAUVE_STATUS_TEXT", self.status_text.clone()),
            ("SAUVE_TRIGGER", self.trigger.clone()),
            ("SAUVE_NUMBER", self.number.to_string()),
            ("SAUVE_SCHEDULED", t(self.scheduled)),
            ("SAUVE_STARTED", t(self.started)),
            ("SAUVE_ENDED", t(self.ended)),
            ("SAUVE_ERRORS", self.errors.join("\n")),
            ("SAUVE_FAILURES", self.failures.to_string()),
            ("SAUVE_PAGE", self.page.clone().unwrap_or_default()),
            ("SAUVE_ALERT_JSON", self.json()),
        ]
    }

    /// The webhook's body.
    pub fn json(&self) -> String {
        // Plain fields only: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
