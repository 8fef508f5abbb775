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
    /// Fields written by other parts of sauve.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
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
