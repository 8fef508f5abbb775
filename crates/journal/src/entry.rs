//! Journal entries and their text (behaviour §11.1).

use std::fmt::Write as _;
use std::time::Duration;

use jiff::civil::DateTime;
use sauve_status::Status;
use serde::Serialize;

/// What an entry reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Title {
    /// A backup that ran to its end (status 0 or -43, or a failure after the start).
    FullBackup,
    /// A backup that failed.
    FullBackupAborted,
    /// A backup stopped by the user (1406).
    BackupStopped,
    /// A scheduled backup not run because the data did not change.
    BackupPostponed,
    /// A manual restore.
    Restore,
    /// A log integration.
    LogIntegration,
    /// An automatic restore at open.
    AutomaticFullBackupRestore,
    /// An automatic log integration at open.
    AutomaticLogIntegration,
    /// An alert not tied to a run: no backup for too long, a test (sauve's).
    Alert,
    /// A restore rehearsal (sauve's, behaviour §22).
    RestoreRehearsal,
}

impl Title {
    /// Every title, in the order of behaviour §11.1, then sauve's own.
    pub const ALL: [Title; 10] = [
        Title::FullBackup,
        Title::FullBackupAborted,
        Title::BackupStopped,
        Title::BackupPostponed,
        Title::Restore,
        Title::LogIntegration,
        Title::AutomaticFullBackupRestore,
        Title::AutomaticLogIntegration,
        Title::Alert,
        Title::RestoreRehearsal,
    ];

    /// The text after `*** `.
    pub fn text(self) -> &'static str {
        match self {
            Title::FullBackup => "Full Backup",
            Title::FullBackupAborted => "Full Backup aborted",
            Title::BackupStopped => "Backup stopped",
            Title::BackupPostponed => "Backup postponed",
            Title::Restore => "Restore",
            Title::LogIntegration => "Log integration",
            Title::AutomaticFullBackupRestore => "Automatic Full Backup Restore",
            Title::AutomaticLogIntegration => "Automatic log integration",
            Title::Alert => "Alert",
            Title::RestoreRehearsal => "Restore rehearsal",
        }
    }

    /// The title for a text, in any case.
    pub fn from_text(text: &str) -> Option<Title> {
        let t = text.trim();
        Title::ALL
            .into_iter()
            .find(|x| x.text().eq_ignore_ascii_case(t))
    }
}

/// A date as written: the text, and the local time when it could be read
/// unambiguously (sauve's `YYYY-MM-DD HH:MM:SS`, or 4D's locale forms).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stamp {
    /// The text as written.
    pub raw: String,
    /// The local date and time, when unambiguous.
    pub local: Option<DateTime>,
}

impl Stamp {
    /// A stamp for a local time, written as sauve writes dates.
    pub fn at(local: DateTime) -> Stamp {
        Stamp {
            raw: local.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            local: Some(local),
        }
    }
}

impl From<DateTime> for Stamp {
    fn from(local: DateTime) -> Stamp {
        Stamp::at(local)
    }
}

/// An attachment line: the path and, when given, whether it was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttachmentLine {
    /// The path as resolved.
    pub path: String,
    /// `[OK]` is `Some(true)`, `[NOT FOUND]` is `Some(false)`.
    pub found: Option<bool>,
}

/// One journal entry. Lines are written only when their field is set, in the
/// order of behaviour §11.1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[allow(missing_docs)] // Undocumented fields are the journal lines of the same name.
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The title; `None` only for a title sauve does not know (kept in `raw_title`).
    pub title: Option<Title>,
    /// The title as written.
    pub raw_title: String,
    pub creating_archive: Option<String>,
    pub creating_log_backup: Option<String>,
    /// `Deleting old archive(s): ` list.
    pub deleted: Vec<String>,
    /// `Attachment(s): ` list.
    pub attachments: Vec<AttachmentLine>,
    pub archive: Option<String>,
    pub destination: Option<String>,
    pub data_file: Option<String>,
    pub log_file: Option<String>,
    pub replaced_files: Option<String>,
    /// `Note` lines.
    pub notes: Vec<String>,
    pub trigger: Option<String>,
    pub attempt: Option<u32>,
    pub scheduled: Option<Stamp>,
    pub starting: Option<Stamp>,
    pub ending: Option<Stamp>,
    /// How long the data lock was held (JSON: seconds).
    #[serde(serialize_with = "seconds")]
    pub data_lock: Option<Duration>,
    /// How the data-kind files were taken under the data lock, after the
    /// time in parentheses: `cloned 2 files`, or `copied` and why not
    /// cloned (sauve's, behaviour §21.3).
    pub data_lock_how: Option<String>,
    /// How long the structure lock was held (JSON: seconds).
    #[serde(serialize_with = "seconds")]
    pub structure_lock: Option<Duration>,
    pub operations: Option<String>,
    pub reason: Option<String>,
    pub next_scheduled: Option<Stamp>,
    /// `Status : <code> <text>`; the number is kept even when sauve does not know it.
    pub status: Option<i32>,
    pub result: Option<String>,
    /// `Error reported` lines.
    pub errors: Vec<String>,
    /// `Alert` lines: how each notifier's delivery of the run's alert went
    /// (sauve's, behaviour §17.2); written last, verbose or not.
    pub alerts: Vec<String>,
    /// Lines the reader did not recognise: (label, value).
    pub other: Vec<(String, String)>,
}

/// An entry's text as it is rendered.
struct Text(String);

impl Text {
    /// A `Label : value` line. Values never span lines: a newline would end
    /// the entry.
    fn line(&mut self, label: &str, value: &str) {
        let value = value.replace(['\r', '\n'], " ");
        let _ = writeln!(self.0, "{label} : {value}");
    }

    /// `head` on a line of its own, then each item on one after a tab;
    /// nothing without items.
    fn list(&mut self, head: &str, items: Vec<String>) {
        if !items.is_empty() {
            let _ = writeln!(self.0, "{head}");
            for i in items {
                let _ = writeln!(self.0, "\t{}", i.replace(['\r', '\n'], " "));
            }
        }
    }
}

/// A time as written.
fn stamp(t: &Option<Stamp>) -> Option<String> {
    t.as_ref().map(|t| t.raw.clone())
}

fn seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

impl Entry {
    /// An empty entry with a title.
    pub fn new(title: Title) -> Entry {
        Entry {
            title: Some(title),
            raw_title: title.text().to_owned(),
            creating_archive: None,
            creating_log_backup: None,
            deleted: Vec::new(),
            attachments: Vec::new(),
            archive: None,
            destination: None,
            data_file: None,
            log_file: None,
            replaced_files: None,
            notes: Vec::new(),
            trigger: None,
            attempt: None,
            scheduled: None,
            starting: None,
            ending: None,
            data_lock: None,
            data_lock_how: None,
            structure_lock: None,
            operations: None,
            reason: None,
            next_scheduled: None,
            status: None,
            result: None,
            errors: Vec::new(),
            alerts: Vec::new(),
            other: Vec::new(),
        }
    }

    /// The entry's text: verbose, every applicable line; otherwise only the
    /// title, `Starting` and `Error reported` (behaviour §11.2). Ends with the empty
    /// line that closes an entry. Any non-zero status gives at least one
    /// `Error reported` line.
    pub fn render(&self, verbose: bool) -> String {
        let mut t = Text(String::with_capacity(512));
        let _ = writeln!(t.0, "*** {}", self.raw_title);
        if verbose {
            self.render_what(&mut t);
            self.render_how(&mut t);
        } else if let Some(v) = stamp(&self.starting) {
            t.line("Starting", &v);
        }
        for e in &self.errors_to_write() {
            t.line("Error reported", e);
        }
        for a in &self.alerts {
            t.line("Alert", a);
        }
        t.0.push('\n');
        t.0
    }

    /// The verbose lines of what the run wrote and read: archives, deletions,
    /// attachments, files, notes.
    fn render_what(&self, t: &mut Text) {
        if let Some(v) = &self.creating_archive {
            t.line("Creating archive", v);
        }
        if let Some(v) = &self.creating_log_backup {
            t.line("Creating log backup", v);
        }
        t.list("Deleting old archive(s): ", self.deleted.clone());
        t.list(
            "Attachment(s): ",
            self.attachments
                .iter()
                .map(|a| match a.found {
                    Some(true) => format!("{} [OK]", a.path),
                    Some(false) => format!("{} [NOT FOUND]", a.path),
                    None => a.path.clone(),
                })
                .collect(),
        );
        for (label, value) in [
            ("Archive", &self.archive),
            ("Destination", &self.destination),
            ("Data file", &self.data_file),
            ("Log file", &self.log_file),
            ("Replaced files", &self.replaced_files),
        ] {
            if let Some(v) = value {
                t.line(label, v);
            }
        }
        for n in &self.notes {
            t.line("Note", n);
        }
    }

    /// The verbose lines of how the run went: trigger, times, locks,
    /// status, result, and the lines kept from the reader.
    fn render_how(&self, t: &mut Text) {
        if let Some(v) = &self.trigger {
            t.line("Trigger", v);
        }
        if let Some(v) = self.attempt {
            t.line("Attempt", &v.to_string());
        }
        for (label, value) in [
            ("Scheduled", stamp(&self.scheduled)),
            ("Starting", stamp(&self.starting)),
            ("Ending", stamp(&self.ending)),
        ] {
            if let Some(v) = value {
                t.line(label, &v);
            }
        }
        for (label, value, how) in [
            ("Data lock", self.data_lock, self.data_lock_how.as_deref()),
            ("Structure lock", self.structure_lock, None),
        ] {
            if let Some(d) = value {
                let how = how.map_or(String::new(), |h| format!(" ({h})"));
                t.line(
                    label,
                    &format!("{}.{:03}{how}", d.as_secs(), d.subsec_millis()),
                );
            }
        }
        if let Some(v) = &self.operations {
            t.line("Operations", v);
        }
        if let Some(v) = &self.reason {
            t.line("Reason", v);
        }
        if let Some(v) = stamp(&self.next_scheduled) {
            t.line("Next scheduled", &v);
        }
        if let Some(code) = self.status {
            t.line("Status", &Status::from_code(code).to_string());
        }
        if let Some(v) = &self.result {
            t.line("Result", v);
        }
        for (label, value) in &self.other {
            t.line(label, value);
        }
    }

    fn errors_to_write(&self) -> Vec<String> {
        match self.status {
            Some(code) if code != 0 && self.errors.is_empty() => {
                vec![Status::from_code(code).to_string()]
            }
            _ => self.errors.clone(),
        }
    }
}
