//! One history entry: 4D's keys in 4D's order, then sauve's (behaviour §12).

use sauve_number::BackupNumber;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// A backup run (4D writes no `operation`: absent means backup).
    Backup,
    /// A restore (sauve).
    Restore,
    /// A log integration (sauve).
    Integration,
    /// A restore rehearsal (sauve, behaviour §22): it takes no backup number
    /// and is kept apart from "keep only the last X".
    Rehearsal,
}

/// An attachment and whether the run found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryAttachment {
    /// The attachment's path.
    pub attachment_path: String,
    /// Found on disk.
    pub found: bool,
    /// Fields sauve does not know, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Lock hold times in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockWindows {
    /// The data lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<u64>,
    /// The structure lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structure: Option<u64>,
}

/// Where an off-site copy of a set stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsiteState {
    /// Not copied yet (queued, or waiting for a retry).
    Pending,
    /// Every object of the set is in the destination.
    Copied,
    /// The last attempt failed; retried later, and at the next run.
    Failed,
}

/// One destination's copy of a set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsiteCopy {
    /// Where it stands.
    pub state: OffsiteState,
    /// When it got there (4D's date form).
    pub at: String,
    /// Attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A file in the archive, as the history records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryFile {
    /// Path inside the archive.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex blake3.
    pub blake3: String,
}

/// One run. Dates are kept as written (ISO UTC with milliseconds and `Z`);
/// paths as written (HFS and Windows paths included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// The archive (`""` for a run without one).
    pub backup_path: String,
    /// The structure file.
    pub structure_path: String,
    /// The data file.
    pub data_path: String,
    /// The log backup, `""` without one.
    pub log_path: String,
    /// When the run started.
    pub starting_date: String,
    /// When it ended.
    pub ending_date: String,
    /// The slot of a scheduled run; the start otherwise.
    pub scheduled_date: String,
    /// The status; absent or -1 means unknown (4D files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    /// The archive's number; 0 for a run without an archive.
    pub backup_number: BackupNumber,
    /// Milliseconds.
    pub duration: u64,
    /// The attachments, in settings order.
    pub attachments: Vec<HistoryAttachment>,
    /// sauve: backup or restore; absent means backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// sauve: manual, api, scheduled, remote, automatic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// sauve: lock hold times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_windows: Option<LockWindows>,
    /// sauve: every file of the set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<String>>,
    /// sauve: the archive's files with sizes and checksums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<HistoryFile>>,
    /// sauve: what each stored file of the set (its log backup's included)
    /// holds, piece by piece, for the samples of behaviour §23. A value
    /// that does not read is left out (the set is then not sampled), never
    /// a reason to refuse the whole history.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_stored"
    )]
    pub stored: Option<Vec<sauve_archive::Pieces>>,
    /// sauve: the set's off-site copies, by destination as written in
    /// sauve.toml (behaviour §19).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsite: Option<std::collections::BTreeMap<String, OffsiteCopy>>,
    /// sauve: the number of the set an incremental set builds on (behaviour §21).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<BackupNumber>,
    /// Fields sauve does not know, kept verbatim after the known ones.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `stored` as written, or `None` when it does not read.
fn lenient_stored<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<sauve_archive::Pieces>>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

impl HistoryEntry {
    /// The operation, absent meaning backup.
    pub fn operation(&self) -> Operation {
        self.operation.unwrap_or(Operation::Backup)
    }

    /// A backup that produced an archive (number above 0).
    pub fn is_numbered_backup(&self) -> bool {
        self.operation() == Operation::Backup && self.backup_number > BackupNumber::NONE
    }
}

impl HistoryEntry {
    /// A restore or log-integration record (behaviour §12): the archive, the
    /// restored data file, times and trigger; no attachments.
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        operation: Operation,
        archive: String,
        structure_path: String,
        data_path: String,
        backup_number: BackupNumber,
        started: jiff::Timestamp,
        ended: jiff::Timestamp,
        trigger: Option<&str>,
    ) -> HistoryEntry {
        HistoryEntry {
            backup_path: archive,
            structure_path,
            data_path,
            log_path: String::new(),
            starting_date: format_date(started),
            ending_date: format_date(ended),
            scheduled_date: format_date(started),
            status: Some(0),
            backup_number,
            duration: u64::try_from(ended.duration_since(started).as_millis().max(0))
                .unwrap_or(u64::MAX),
            attachments: Vec::new(),
            operation: Some(operation),
            trigger: trigger.map(str::to_owned),
            lock_windows: None,
            segments: None,
            files: None,
            stored: None,
            offsite: None,
            parent: None,
            extra: Map::new(),
        }
    }
}

/// ISO UTC with milliseconds and `Z`, as 4D writes dates.
pub fn format_date(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
