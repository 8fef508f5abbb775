//! Manual restores (behaviour §13.1) as the engine runs and records them:
//! where a set is read from, the "Restore" journal entry and the history
//! entry beside the archive (or with the app's records of its bucket).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sauve_archive::{EntryKind, RestoreOptions, RestoreReport};
use sauve_history::{HistoryEntry, Operation};
use sauve_journal::{Entry, Stamp, Title};
use sauve_settings::AppLayout;

use crate::actors::history::messages::RecordHistory;
use crate::actors::{Actors, ask};
use crate::api::Trigger;
use crate::destination::StoreDestination;
use crate::error::EngineError;
use crate::settings::AppSettings;

/// A restore done, and what could not be recorded.
#[derive(Debug)]
pub struct Restored {
    /// What was restored where.
    pub report: RestoreReport,
    /// Records not written (journal, history): the restore itself is done.
    pub warnings: Vec<String>,
}

/// Where a restore reads from: a set in a bucket (`s3://…/base[N].4BK`) is
/// read from there, reached with `own` (sauve.toml as the resolver read it,
/// or why it is not valid), and restored beside the app's records of that
/// bucket unless told where; a file by its absolute path.
pub(crate) fn source_of(
    (app, own): (&Path, Result<Arc<sauve_settings::SauveToml>, EngineError>),
    archive: &Path,
    mut options: RestoreOptions,
    io: &crate::io::StoreIo,
) -> Result<(PathBuf, Option<Arc<StoreDestination>>, RestoreOptions), EngineError> {
    let text = archive.to_string_lossy().into_owned();
    if !sauve_settings::is_store_url(&text) {
        let absolute = std::path::absolute(archive).unwrap_or_else(|_| archive.to_path_buf());
        return Ok((absolute, None, options));
    }
    let (url, _) = text.rsplit_once('/').unwrap_or((&text, ""));
    let place = sauve_settings::resolve_destination(app, url).map_err(|source| {
        EngineError::DestinationPath {
            written: url.to_owned(),
            source,
        }
    })?;
    let store = StoreDestination::with_settings(&place.describe(), &*own?, io)?;
    if options.to.is_none() {
        options.to = destination_of(
            &place
                .records()
                .join(archive.file_name().unwrap_or_default()),
            &options,
        );
    }
    Ok((archive.to_path_buf(), Some(Arc::new(store)), options))
}

/// What a restore run by the engine is recorded with.
pub(crate) struct RecordPlace<'a> {
    pub(crate) actors: &'a Actors,
    pub(crate) layout: &'a AppLayout,
    /// The settings in force, when a set came from a bucket: whether the
    /// bucket is the app's own destination.
    pub(crate) settings: Option<&'a AppSettings>,
}

impl RecordPlace<'_> {
    /// Records a restore in the history (a failure is a warning). A restore
    /// from the app's own bucket destination is recorded with the app's
    /// records of the bucket and published there with its history
    /// (behaviour §19); an off-site prefix's history is the off-site
    /// copier's to write.
    pub(crate) async fn record(
        &self,
        archive: &Path,
        report: &mut RestoreReport,
        store: Option<&Arc<StoreDestination>>,
        (started, ended): (Timestamp, Timestamp),
        trigger: Trigger,
        warnings: &mut Vec<String>,
    ) {
        let mut publish = None;
        if let Some(store) = store {
            let url = archive.to_string_lossy();
            let (url, _) = url.rsplit_once('/').unwrap_or((&url, ""));
            if let Ok(place) = sauve_settings::resolve_destination(&self.layout.app, url) {
                report.set.dir = place.records().to_path_buf();
                let own = self
                    .settings
                    .and_then(|s| crate::plan::destination_to_read(&self.layout.app, s).ok());
                if own.is_some_and(|d| d.describe() == place.describe()) {
                    publish = Some(Arc::clone(store));
                }
            }
        }
        let (key, entry) = history_entry(archive, report, started, ended, trigger);
        let msg = RecordHistory {
            destination: report.set.dir.clone(),
            key,
            entry,
            limit: sauve_history::UNLIMITED,
            removed: Vec::new(),
            now: ended,
        };
        if let Err(e) = ask(&self.actors.history, "history", msg)
            .await
            .and_then(|r| r)
        {
            warnings.push(format!("the restore was not recorded in the history: {e}"));
        } else if let Some(store) = publish {
            let url = store.url.clone();
            let records = report.set.dir.clone();
            let key = crate::settings::structure_key(self.layout);
            let published = self
                .actors
                .io
                .blocking(move || store.publish_history(&records, &key))
                .await;
            if let Err(e) = published.and_then(|r| r) {
                warnings.push(format!("the history of {url} was not published: {e}"));
            }
        }
    }
}

/// Where a restore goes: the destination given, else the folder next to the
/// archive named after it (behaviour §13.1), as the journal names it.
pub(crate) fn destination_of(archive: &Path, options: &RestoreOptions) -> Option<PathBuf> {
    options.to.clone().or_else(|| {
        let name = sauve_archive::ArchiveName::parse(&archive.file_name()?.to_string_lossy())?;
        Some(
            archive
                .parent()?
                .join(format!("{}[{}]", name.base, name.number.text())),
        )
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
/// history keeper would. Blocking.
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
