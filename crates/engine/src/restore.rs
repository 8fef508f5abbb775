//! Manual restores (behaviour §13.1) as the engine records them: the "Restore"
//! journal entry and the history entry beside the archive.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sauve_archive::{EntryKind, RestoreOptions, RestoreReport};
use sauve_history::{HistoryEntry, Operation};
use sauve_journal::{Entry, Stamp, Title};

use crate::api::Trigger;
use crate::error::EngineError;

/// A restore done, and what could not be recorded.
#[derive(Debug)]
pub struct Restored {
    /// What was restored where.
    pub report: RestoreReport,
    /// Records not written (journal, history): the restore itself is done.
    pub warnings: Vec<String>,
}

/// Where a restore goes: the destination given, else the folder next to the
/// archive named after it (behaviour §13.1), as the journal names it.
pub(crate) fn destination_of(archive: &Path, options: &RestoreOptions) -> Option<PathBuf> {
    options.to.clone().or_else(|| {
        let name = sauve_archive::ArchiveName::parse(&archive.file_name()?.to_string_lossy())?;
        Some(archive.parent()?.join(format!(
            "{}[{}]",
            name.base,
            sauve_archive::number_text(name.number)
        )))
    })
}

/// Whether a restore into `destination` would write the files of the app
/// in `app`: the app folder itself (its `Data/`, `Project/` and `Settings/`
/// would be replaced), compared after resolving symlinks where the folders
/// exist.
pub(crate) fn is_inside_app(destination: &Path, app: &Path) -> bool {
    let canon = |p: &Path| {
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        std::fs::canonicalize(&abs).unwrap_or(abs)
    };
    canon(destination) == canon(app)
}

/// The "Restore" entry of behaviour §11.2, for a restore that ended with `result`.
pub(crate) fn journal_entry(
    zone: &TimeZone,
    archive: &Path,
    options: &RestoreOptions,
    result: &Result<RestoreReport, EngineError>,
    started: Timestamp,
    ended: Timestamp,
) -> Entry {
    let local = |t: Timestamp| Stamp::at(zone.to_datetime(t));
    let mut e = Entry::new(Title::Restore);
    e.archive = Some(archive.display().to_string());
    e.destination = match result {
        Ok(r) => Some(r.destination.display().to_string()),
        Err(_) => destination_of(archive, options).map(|p| p.display().to_string()),
    };
    e.starting = Some(local(started));
    e.ending = Some(local(ended));
    match result {
        Ok(_) => e.status = Some(0),
        Err(err) => {
            e.status = Some(err.status().code());
            e.errors = vec![err.to_string()];
        }
    }
    e
}

/// The history entry of a restore (behaviour §12): the structure key it goes
/// under (the manifest's), and the entry.
pub(crate) fn history_entry(
    archive: &Path,
    report: &RestoreReport,
    started: Timestamp,
    ended: Timestamp,
    trigger: Trigger,
) -> (String, HistoryEntry) {
    let m = &report.manifest.header;
    let data = report
        .manifest
        .entries
        .iter()
        .find(|e| e.kind == EntryKind::Data)
        .map(|e| report.destination.join(&e.path).display().to_string())
        .unwrap_or_default();
    let mut entry = HistoryEntry::restore(
        Operation::Restore,
        archive.display().to_string(),
        m.structure_path.clone(),
        data,
        m.backup_number,
        started,
        ended,
        Some(trigger.as_str()),
    );
    entry.segments = Some(
        report
            .set
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect(),
    );
    (m.structure_path.clone(), entry)
}

/// Restores an archive whose app is not on this machine (no engine runs for
/// it): the history beside the archive records it, under its lock, as the
/// records actor would. Blocking.
pub fn restore_detached(archive: &Path, options: &RestoreOptions) -> Result<Restored, EngineError> {
    let started = Timestamp::now();
    let archive = std::path::absolute(archive).unwrap_or_else(|_| archive.to_path_buf());
    let report = sauve_archive::restore(&archive, options, &mut sauve_archive::NoProgress)?;
    let ended = Timestamp::now();
    let (key, entry) = history_entry(&archive, &report, started, ended, Trigger::Manual);
    let mut warnings = Vec::new();
    if let Err(e) = crate::records::record_history(
        &report.set.dir,
        &key,
        entry,
        sauve_history::UNLIMITED,
        &[],
        ended,
    ) {
        warnings.push(format!("the restore was not recorded in the history: {e}"));
    }
    Ok(Restored { report, warnings })
}
