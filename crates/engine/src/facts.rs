//! What the app's files are now, read for a run: what a backup would hold
//! (the data kinds, structure and attachments in stream order, what is
//! missing), the data file's size and time, and what the log file is.
//! Plain functions over the layout; they read files, so the run calls them
//! on the engine's blocking pool, never on the actors' thread.

use std::path::Path;

use sauve_settings::AppLayout;

use crate::error::EngineError;
use crate::plan::{DataFacts, LogState, Resolved};
use crate::settings::AppSettings;

/// What the log file is (O-6, behaviour §14).
pub(crate) fn log_state(layout: &AppLayout) -> LogState {
    let path = &layout.log_file;
    if !path.is_file() {
        return LogState::Absent;
    }
    if !crate::logcut::is_sauve_log(path) {
        return LogState::Foreign;
    }
    LogState::Sauve {
        // Unreadable counts as holding records: back it up rather than skip.
        records: sauve_logfile::read_log(path).map_or(true, |l| !l.records.is_empty()),
    }
}

/// A run's content with `settings` into `destination` (attachments
/// missing are reported, the run is then partial, -43), and the log's
/// state.
pub(crate) fn resolve(
    layout: &AppLayout,
    settings: &AppSettings,
    destination: &Path,
) -> Result<Resolved, EngineError> {
    let content = sauve_archive::resolve_content(layout, &settings.settings, destination)?;
    Ok(Resolved {
        content,
        log: log_state(layout),
    })
}

/// The data file's size and modification time, and the log's state: what
/// BackupIfDataChange compares (behaviour §9.3).
pub(crate) fn observe_data(layout: &AppLayout) -> DataFacts {
    let data = std::fs::metadata(&layout.data_file)
        .ok()
        .map(|m| (m.len(), sauve_durable::mtime_ns(&m)));
    DataFacts {
        data,
        log: log_state(layout),
    }
}
