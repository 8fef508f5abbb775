//! The typed settings: one struct per XML group, one field per key.

use crate::value::{Compression, Delay, Frequency, Level, MonthDay, TimeOfDay};

/// The effective backup settings (`Preferences4D/Backup/Settings`).
///
/// `Default` gives sauve's built-in defaults: 4D's new-project values, except
/// `DestinationFolder` (`../Backups/`) and an empty attachment list (behaviour §16, O-13).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `Advanced`.
    pub advanced: Advanced,
    /// `General`.
    pub general: General,
    /// `Scheduler`.
    pub scheduler: Scheduler,
    /// Values read from legacy elements, which are kept but never written by sauve.
    pub legacy: Legacy,
}

impl Default for Settings {
    fn default() -> Settings {
        let mut s = Settings::four_d_new_project();
        s.general.destination_folder = "../Backups/".to_owned();
        s.general.includes_files.clear();
        s
    }
}

impl Settings {
    /// The values 4D writes for a new project (`defaults-modern.backup.4DSettings`).
    pub fn four_d_new_project() -> Settings {
        let midnight = TimeOfDay::MIDNIGHT;
        let day = |save| WeekDay {
            save,
            hour: midnight,
        };
        Settings {
            advanced: Advanced {
                backup_failure: BackupFailure {
                    try_backup_at_the_next_scheduled_date: false,
                    try_to_backup_after: Delay::from_secs(60),
                    abort_if_backup_fail: false,
                    retry_count_before_abort: 5,
                },
                automatic_restore: true,
                automatic_log_integration: true,
                automatic_restart: true,
                backup_if_data_change: false,
                set_number: SetNumber {
                    enable: true,
                    value: 3,
                },
                compression_rate: Compression::Fast,
                redundancy: Level::None,
                interlacing: Level::None,
                automatic_log_integration_strictness: "strict".to_owned(),
                file_segmentation: FileSegmentation { default_size: 0 },
                erase_old_backup_before: false,
                check_archive_file_during_backup: true,
                backup_journal_verbose_mode: true,
            },
            general: General {
                include_structure_file: false,
                include_data_file: true,
                include_alt_struct_file: false,
                destination_folder: "./Backup/".to_owned(),
                includes_files: vec![
                    "./Data/data.4DIndx".to_owned(),
                    "./Data/data.4DSyncData".to_owned(),
                    "./Data/data.4DSyncHeader".to_owned(),
                ],
            },
            scheduler: Scheduler {
                frequency: Frequency::Never,
                hourly: Hourly {
                    every: 12,
                    starting_at: midnight,
                },
                daily: Daily {
                    every: 1,
                    hour: midnight,
                },
                weekly: Weekly {
                    every: 1,
                    days: [
                        day(false),
                        day(false),
                        day(false),
                        day(false),
                        day(false),
                        day(false),
                        day(true),
                    ],
                },
                monthly: Monthly {
                    every: 1,
                    hour: midnight,
                    day: MonthDay::Day(1),
                },
            },
            legacy: Legacy::default(),
        }
    }
}

/// `Advanced`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Each field is the XML element of the same name (behaviour §3.1).
pub struct Advanced {
    pub backup_failure: BackupFailure,
    pub automatic_restore: bool,
    pub automatic_log_integration: bool,
    /// sauve: the host goes on opening after an automatic restore.
    pub automatic_restart: bool,
    pub backup_if_data_change: bool,
    pub set_number: SetNumber,
    pub compression_rate: Compression,
    /// No effect; a warning unless `None`.
    pub redundancy: Level,
    /// No effect; a warning unless `None`.
    pub interlacing: Level,
    /// Only `strict` is implemented; another token is kept and treated as strict (O-7).
    pub automatic_log_integration_strictness: String,
    pub file_segmentation: FileSegmentation,
    pub erase_old_backup_before: bool,
    pub check_archive_file_during_backup: bool,
    pub backup_journal_verbose_mode: bool,
}

/// `Advanced/BackupFailure`: the retry policy of scheduled backups (behaviour §9).
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Each field is the XML element of the same name.
pub struct BackupFailure {
    pub try_backup_at_the_next_scheduled_date: bool,
    pub try_to_backup_after: Delay,
    pub abort_if_backup_fail: bool,
    /// At least 1.
    pub retry_count_before_abort: u32,
}

/// `Advanced/SetNumber`: retention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetNumber {
    /// Retention is applied.
    pub enable: bool,
    /// Sets kept, at least 1.
    pub value: u32,
}

/// `Advanced/FileSegmentation`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSegmentation {
    /// Segment size in MiB, 0 to 2048; 0 means one file.
    pub default_size: u32,
}

/// `General`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Each field is the XML element of the same name.
pub struct General {
    pub include_structure_file: bool,
    pub include_data_file: bool,
    /// Read and kept; sauve ignores it.
    pub include_alt_struct_file: bool,
    /// As written: relative to the app folder, `/` or `\` separators (behaviour §2).
    pub destination_folder: String,
    /// `IncludesFiles/Item<N>` in order, as written.
    pub includes_files: Vec<String>,
}

/// `Scheduler` (behaviour §10).
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Each field is the XML element of the same name.
pub struct Scheduler {
    pub frequency: Frequency,
    pub hourly: Hourly,
    pub daily: Daily,
    pub weekly: Weekly,
    pub monthly: Monthly,
}

/// `Scheduler/Hourly`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hourly {
    /// 1 to 24 hours.
    pub every: u32,
    /// The anchor of the day's grid (O-4).
    pub starting_at: TimeOfDay,
}

/// `Scheduler/Daily`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Daily {
    /// At least 1 day.
    pub every: u32,
    /// Time of day.
    pub hour: TimeOfDay,
}

/// `Scheduler/Weekly`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Weekly {
    /// At least 1 week.
    pub every: u32,
    /// Monday first, as 4D writes them.
    pub days: [WeekDay; 7],
}

/// `Scheduler/Weekly/<Day>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeekDay {
    /// A backup runs on this day.
    pub save: bool,
    /// At this time.
    pub hour: TimeOfDay,
}

/// `Scheduler/Monthly`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Monthly {
    /// At least 1 month.
    pub every: u32,
    /// Time of day.
    pub hour: TimeOfDay,
    /// Day of the month.
    pub day: MonthDay,
}

/// Values sauve reads from legacy elements (`Advanced/Transaction/*`,
/// `JournalFileEnabled`); the elements themselves are kept verbatim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Legacy {
    /// `Advanced/Transaction/Timeout`: the lock-wait limit (default 3 min).
    pub transaction_timeout: Option<Delay>,
    /// `Advanced/Transaction/WaitForEndOfTransaction`: `true` removes the limit.
    pub wait_for_end_of_transaction: Option<bool>,
    /// `JournalFileEnabled`, wherever it appears under `Backup/Settings` (O-6).
    pub journal_file_enabled: Option<bool>,
}

impl Legacy {
    /// The lock-wait limit: `None` means wait without limit.
    pub fn lock_timeout(&self) -> Option<std::time::Duration> {
        if self.wait_for_end_of_transaction == Some(true) {
            return None;
        }
        Some(
            self.transaction_timeout
                .map_or(std::time::Duration::from_secs(180), Delay::as_duration),
        )
    }
}
