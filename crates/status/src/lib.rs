//! The status codes of behaviour §8.2: every number and text in one place.
//!
//! A backup, a restore, a verification or a log integration ends with one
//! [`Status`]. Codes are 4D's unless behaviour §8.2 marks them sauve's; the texts
//! are sauve's except for 0. Journal entries, history entries, the last-backup
//! information, reports and exit codes all take their numbers from here.
//!
//! Invariant: this crate knows nothing but the table; it does no IO.

use std::fmt;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// 0: no detected error.
    Ok,
    /// -34: disk full (estimate or ENOSPC).
    DiskFull,
    /// -43: an attachment was not found; the archive is partial but valid.
    AttachmentNotFound,
    /// -61: write permission denied.
    WritePermissionDenied,
    /// 1401: maximum attempts reached; automatic backup disabled.
    MaxAttemptsReached,
    /// 1402: a backup is already running (sauve).
    AlreadyRunning,
    /// 1403: log file missing.
    LogFileMissing,
    /// 1404: the caller holds a write guard.
    CallerHoldsWriteGuard,
    /// 1405: writes in progress outlasted the lock timeout.
    LockTimeout,
    /// 1406: stopped by the user.
    Stopped,
    /// 1407: destination invalid or cannot be created.
    DestinationInvalid,
    /// 1408: log backup error.
    LogBackupError,
    /// 1409: backup error (I/O, internal).
    BackupError,
    /// 1410: archive to verify missing.
    ArchiveMissing,
    /// 1411: archive verification failed.
    ArchiveCorrupt,
    /// 1412: log backup to verify missing.
    LogArchiveMissing,
    /// 1413: log backup verification failed.
    LogArchiveCorrupt,
    /// 1416: the log does not belong to this data.
    LogMismatch,
    /// 1417: a log integration is running.
    IntegrationRunning,
    /// 1418: a scheduled slot was missed while the app was not running (sauve).
    SlotMissed,
    /// 1419: invalid settings (sauve).
    InvalidSettings,
    /// 1420: a restore rehearsal's check failed (sauve).
    RehearsalCheckFailed,
    /// -9976: a waiting write was cancelled; the writer's result, never a backup status.
    WriteCancelled,
    /// Any other value: returned by the startup hook.
    Hook(i32),
}

/// The table: (status, code, text, retried by the scheduled-backup policy).
const TABLE: &[(Status, i32, &str, bool)] = &[
    (Status::Ok, 0, "No detected error.", false),
    (Status::DiskFull, -34, "Disk full", true),
    (
        Status::AttachmentNotFound,
        -43,
        "Attachment not found",
        false,
    ),
    (
        Status::WritePermissionDenied,
        -61,
        "Write permission denied",
        true,
    ),
    (
        Status::MaxAttemptsReached,
        1401,
        "Maximum attempts reached; automatic backup disabled",
        false,
    ),
    (
        Status::AlreadyRunning,
        1402,
        "A backup is already running",
        false,
    ),
    (Status::LogFileMissing, 1403, "Log file missing", false),
    (
        Status::CallerHoldsWriteGuard,
        1404,
        "Caller holds a write guard",
        false,
    ),
    (
        Status::LockTimeout,
        1405,
        "Writes in progress outlasted the lock timeout",
        true,
    ),
    (Status::Stopped, 1406, "Stopped by the user", false),
    (
        Status::DestinationInvalid,
        1407,
        "Destination invalid or cannot be created",
        true,
    ),
    (Status::LogBackupError, 1408, "Log backup error", false),
    (Status::BackupError, 1409, "Backup error", true),
    (
        Status::ArchiveMissing,
        1410,
        "Archive to verify missing",
        false,
    ),
    (
        Status::ArchiveCorrupt,
        1411,
        "Archive verification failed",
        false,
    ),
    (
        Status::LogArchiveMissing,
        1412,
        "Log backup to verify missing",
        false,
    ),
    (
        Status::LogArchiveCorrupt,
        1413,
        "Log backup verification failed",
        false,
    ),
    (
        Status::LogMismatch,
        1416,
        "Log does not belong to this data",
        false,
    ),
    (
        Status::IntegrationRunning,
        1417,
        "Log integration running",
        false,
    ),
    (
        Status::SlotMissed,
        1418,
        "Scheduled slot missed, app not running",
        true,
    ),
    (Status::InvalidSettings, 1419, "Invalid settings", false),
    (
        Status::RehearsalCheckFailed,
        1420,
        "Restore rehearsal check failed",
        false,
    ),
    (
        Status::WriteCancelled,
        -9976,
        "Waiting write cancelled",
        false,
    ),
];

impl Status {
    fn row(self) -> Option<&'static (Status, i32, &'static str, bool)> {
        TABLE.iter().find(|r| r.0 == self)
    }

    /// The number.
    pub fn code(self) -> i32 {
        match self {
            Status::Hook(n) => n,
            s => s.row().map_or(0, |r| r.1),
        }
    }

    /// The text shown after the number.
    pub fn text(self) -> &'static str {
        match self {
            Status::Hook(_) => "Refused by the startup hook",
            s => s.row().map_or("", |r| r.2),
        }
    }

    /// The status of a number; unknown numbers are hook values.
    pub fn from_code(code: i32) -> Status {
        TABLE
            .iter()
            .find(|r| r.1 == code)
            .map_or(Status::Hook(code), |r| r.0)
    }

    /// Whether the scheduled-backup retry policy (behaviour §9) applies.
    pub fn is_retried(self) -> bool {
        self.row().is_some_and(|r| r.3)
    }

    /// 0 and -43 count as success (-43 is a valid partial backup).
    pub fn is_success(self) -> bool {
        matches!(self, Status::Ok | Status::AttachmentNotFound)
    }
}

impl fmt::Display for Status {
    /// `<code> <text>`, as the Backup Journal writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_back_to_its_status() {
        for &(status, code, _, _) in TABLE {
            assert_eq!(status.code(), code);
            assert_eq!(Status::from_code(code), status);
        }
        assert_eq!(Status::from_code(7), Status::Hook(7));
        assert_eq!(Status::Hook(7).code(), 7);
    }

    #[test]
    fn codes_are_unique() {
        let mut codes: Vec<i32> = TABLE.iter().map(|r| r.1).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), TABLE.len());
    }

    #[test]
    fn journal_form_is_code_then_text() {
        assert_eq!(Status::Ok.to_string(), "0 No detected error.");
        assert_eq!(
            Status::AttachmentNotFound.to_string(),
            "-43 Attachment not found"
        );
        assert_eq!(
            Status::DestinationInvalid.to_string(),
            "1407 Destination invalid or cannot be created"
        );
        assert_eq!(Status::Stopped.to_string(), "1406 Stopped by the user");
    }

    #[test]
    fn retry_and_success_follow_the_table() {
        assert!(Status::DiskFull.is_retried());
        assert!(Status::SlotMissed.is_retried());
        assert!(!Status::Stopped.is_retried());
        assert!(!Status::Hook(3).is_retried());
        assert!(Status::AttachmentNotFound.is_success());
        assert!(!Status::BackupError.is_success());
    }
}
