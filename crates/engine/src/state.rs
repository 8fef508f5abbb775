//! The last-backup information (SPEC section 15), persisted in
//! `APP/Logs/sauve-state.json` and shown by `sauve status`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The state file's name in `APP/Logs`.
pub const STATE_FILE: &str = "sauve-state.json";

/// The last backup, any trigger, failures included, postponed excluded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastBackup {
    /// The backup number, 0 without an archive.
    pub number: u32,
    /// The status code.
    pub status: i32,
    /// Its text.
    pub status_text: String,
    /// RFC 3339.
    pub started: String,
    /// RFC 3339.
    pub ended: String,
    /// Milliseconds.
    pub duration_ms: u64,
    /// The first archive file, if one was committed.
    pub archive: Option<String>,
    /// The log backup, if any.
    pub log_archive: Option<String>,
    /// What started it.
    pub trigger: String,
    /// How long the data lock was held, in milliseconds.
    pub lock_window_ms: Option<u64>,
}

/// What `sauve-state.json` holds; fields other components add are kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    /// The last backup.
    #[serde(default)]
    pub last_backup: Option<LastBackup>,
    /// Archive size over content size of the last compressed backup, for the
    /// free-space estimate (SPEC 6.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ratio: Option<f64>,
    /// The data file as the last successful backup with data saw it, for
    /// BackupIfDataChange (SPEC 9.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_data: Option<DataStamp>,
    /// Fields written by other parts of sauve.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A data file's identity for the data-change check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataStamp {
    /// The backup that saw it.
    pub number: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime: i64,
}

/// `APP/Logs/sauve-state.json`.
pub fn state_path(app: &Path) -> PathBuf {
    app.join("Logs").join(STATE_FILE)
}

impl EngineState {
    /// Reads the state of an app; missing or unreadable gives the empty state
    /// (the file is informational and rewritten by the next backup).
    pub fn load(app: &Path) -> EngineState {
        std::fs::read(state_path(app))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

/// What the scheduler says, for the status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedulerView {
    /// The next scheduled backup.
    pub next: Option<jiff::Timestamp>,
    /// Off after 1401.
    pub disabled: bool,
}

/// The JSON of `sauve status --json` and `GET /v1/status` (SPEC section 15):
/// `{"last_backup", "next_scheduled", "scheduler_disabled", "destination":
/// {"path", "free_bytes", "used_bytes"}}`. Reads files: call it off async threads.
pub fn status_json(app: &Path, scheduler: SchedulerView) -> Result<Value, String> {
    let state = EngineState::load(app);
    let effective = sauve_settings::load_effective(app).map_err(|e| e.to_string())?;
    let dest =
        sauve_settings::resolve_path(app, &effective.doc.settings().general.destination_folder)
            .map_err(|e| e.to_string())?
            .path;
    let base = sauve_settings::AppLayout::discover(app)
        .map(|l| l.base_name())
        .ok();
    let used: u64 = std::fs::read_dir(&dest)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    sauve_archive::ArchiveName::parse(&e.file_name().to_string_lossy())
                        .is_some_and(|a| Some(&a.base) == base.as_ref())
                })
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    Ok(serde_json::json!({
        "last_backup": state.last_backup,
        "next_scheduled": scheduler.next.map(|t| t.to_string()),
        "scheduler_disabled": scheduler.disabled,
        "destination": {"path": dest, "free_bytes": crate::free_space(&dest), "used_bytes": used},
    }))
}
