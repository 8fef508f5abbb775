//! Automatic restore and automatic log integration at open (behaviour §13.3).

use sauve_durable::fault::{Step, point};
use sauve_number::BackupNumber;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sauve_archive::{EntryKind, RestoreOptions};
use sauve_history::{History, HistoryEntry, Operation};
use sauve_journal::{Entry, Stamp, Title};
use sauve_logfile::{Record, Until};
use sauve_settings::AppLayout;

use crate::error::EngineError;
use crate::io::StoreIo;
use crate::recorder::Recorder;
use crate::settings::AppSettings;

/// What the host says about its data at open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataHealth {
    /// The data file is damaged and must be restored.
    pub damaged: bool,
    /// The last log sequence the (healthy) data has applied.
    pub last_applied: u64,
}

/// What the open check did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenOutcome {
    /// The backup restored, if any.
    pub restored: Option<PathBuf>,
    /// Where the damaged files were moved.
    pub replaced: Option<PathBuf>,
    /// Records applied from the logs.
    pub applied: u64,
    /// The data's last applied sequence afterwards.
    pub last_applied: u64,
    /// `AutomaticRestart`: whether the host goes on opening.
    pub restart: bool,
    /// Records not written (journal, history): what the check did is done.
    pub warnings: Vec<String>,
}

/// The host's function that applies a log record to its data.
type Apply<'a, E> = &'a mut dyn FnMut(&Record) -> Result<(), E>;

/// Runs the open check of behaviour §13.3 (see `BackupHandle::open_check`).
pub(crate) fn run<E: std::fmt::Display>(
    rec: &mut Recorder<'_>,
    health: DataHealth,
    identity: [u8; 16],
    until: Until,
    reload: impl FnMut() -> u64,
    mut apply: impl FnMut(&Record) -> Result<(), E>,
) -> Result<OpenOutcome, EngineError> {
    let layout = rec.layout().clone();
    let settings = rec.settings()?;
    let s = &settings.settings;
    let mut outcome = OpenOutcome {
        restored: None,
        replaced: None,
        applied: 0,
        last_applied: health.last_applied,
        restart: s.advanced.automatic_restart,
        warnings: Vec::new(),
    };
    let marker = interrupted_marker(&layout);
    let interrupted = marker.exists();
    if interrupted && !health.damaged {
        tracing::warn!(
            "an automatic restore was interrupted ({} is there): restoring again",
            marker.display()
        );
    }
    if health.damaged || interrupted {
        if !s.advanced.automatic_restore {
            return Err(EngineError::DamagedWithoutAutomaticRestore {
                data: layout.data_file.clone(),
            });
        }
        let integrate = s.advanced.automatic_log_integration;
        let logs = integrate.then_some((
            identity,
            &mut apply as &mut dyn FnMut(&Record) -> Result<(), E>,
        ));
        automatic_restore(rec, &settings, until, reload, logs, &mut outcome)?;
        remove_marker(&layout, &marker)?;
        return Ok(outcome);
    }
    if s.advanced.automatic_log_integration && crate::logcut::is_sauve_log(&layout.log_file) {
        let i = integrate_current_log(rec, health.last_applied, identity, until, &mut apply)?;
        outcome.applied = i.applied;
        outcome.last_applied = i.last_applied;
    }
    Ok(outcome)
}

/// The automatic restore of damaged data: the newest set that verifies put
/// in place, journaled and recorded, then (with `logs`, the data's
/// identity and the host's apply function) the logs after it integrated.
fn automatic_restore<E: std::fmt::Display>(
    rec: &mut Recorder<'_>,
    settings: &AppSettings,
    until: Until,
    mut reload: impl FnMut() -> u64,
    logs: Option<([u8; 16], Apply<'_, E>)>,
    outcome: &mut OpenOutcome,
) -> Result<(), EngineError> {
    let layout = rec.layout().clone();
    let zone = rec.clock().zone();
    let started = rec.clock().now();
    let mut entry = Entry::new(Title::AutomaticFullBackupRestore);
    entry.data_file = Some(layout.data_file.display().to_string());
    entry.starting = Some(Stamp::at(zone.to_datetime(started)));
    let place = crate::plan::destination_to_read(&layout.app, settings)?;
    let destination = place.records().to_path_buf();
    let set_aside = match rec.set_asides() {
        Ok(s) => s,
        Err(e) => return Err(journal_failed(rec, entry, e)),
    };
    let own = rec.own_settings();
    let restored = match restore_newest(
        (&layout, rec.io(), own.as_deref()),
        &place,
        (started, &zone),
        until,
        &set_aside,
        &mut |_| Ok(()),
    ) {
        Ok(r) => r,
        Err(e) => return Err(journal_failed(rec, entry, e)),
    };
    let extra = serde_json::Map::new();
    record_restored(
        rec,
        entry,
        &restored,
        destination,
        started,
        "automatic",
        extra,
    );
    outcome.restored = Some(restored.archive.clone());
    outcome.replaced = Some(restored.replaced.clone());
    outcome.last_applied = reload();
    if let Some((identity, apply)) = logs {
        let done = crate::integrate::run(
            rec,
            &restored.report,
            identity,
            Some(&layout.log_file),
            None,
            until,
            &set_aside,
            apply,
        )?;
        for d in &done {
            outcome.applied += d.integrated.applied;
            outcome.last_applied = d.integrated.last_applied;
        }
        confirm_pending(rec, &set_aside, &done);
    }
    Ok(())
}

/// The automatic integration of healthy data: the current log's records
/// beyond `last_applied`, journaled.
fn integrate_current_log<E: std::fmt::Display>(
    rec: &mut Recorder<'_>,
    last_applied: u64,
    identity: [u8; 16],
    until: Until,
    apply: impl FnMut(&Record) -> Result<(), E>,
) -> Result<sauve_logfile::Integrated, EngineError> {
    let layout = rec.layout().clone();
    let zone = rec.clock().zone();
    let stamp = |t: jiff::Timestamp| Stamp::at(zone.to_datetime(t));
    let started = rec.clock().now();
    let mut entry = Entry::new(Title::AutomaticLogIntegration);
    entry.data_file = Some(layout.data_file.display().to_string());
    entry.log_file = Some(layout.log_file.display().to_string());
    entry.starting = Some(stamp(started));
    let set_aside = match rec.set_asides() {
        Ok(s) => s,
        Err(e) => return Err(journal_failed(rec, entry, e)),
    };
    let result = sauve_logfile::integrate(
        &layout.log_file,
        identity,
        last_applied,
        until,
        &set_aside,
        apply,
    );
    entry.ending = Some(stamp(rec.clock().now()));
    match result {
        Ok(i) => {
            entry.operations = Some(crate::integrate::operations(&i));
            entry.result = Some("OK".to_owned());
            if until != Until::End {
                entry.other = crate::integrate::stop_lines(until, &i, &zone);
            }
            entry.other.extend(crate::integrate::skipped_line(&i));
            rec.journal(entry);
            Ok(i)
        }
        Err(e) => {
            entry.result = Some(match &e {
                sauve_logfile::IntegrateError::Apply { seq, .. }
                | sauve_logfile::IntegrateError::Untimed { seq, .. } => {
                    format!("failed at sequence {seq}")
                }
                _ => format!("failed: {}", e.status().text()),
            });
            let err = EngineError::from(e);
            entry.errors = vec![err.status().to_string(), err.to_string()];
            rec.journal(entry);
            Err(err)
        }
    }
}

/// Journals a restore that found no set to put in place; gives its error.
fn journal_failed(rec: &mut Recorder<'_>, mut entry: Entry, e: EngineError) -> EngineError {
    let zone = rec.clock().zone();
    entry.ending = Some(Stamp::at(zone.to_datetime(rec.clock().now())));
    entry.result = Some(match e.status() {
        sauve_status::Status::ArchiveMissing => "backup not available".to_owned(),
        status => format!("failed: {}", status.text()),
    });
    entry.errors = vec![e.status().to_string(), e.to_string()];
    rec.journal(entry);
    e
}

/// Journals a restore that put `restored` in place, naming the set and the
/// replaced files, and records it in the history of `destination` with
/// `trigger` and `extra`.
fn record_restored(
    rec: &mut Recorder<'_>,
    mut entry: Entry,
    restored: &Restored,
    destination: PathBuf,
    started: jiff::Timestamp,
    trigger: &str,
    extra: serde_json::Map<String, serde_json::Value>,
) {
    let data_file = rec.layout().data_file.display().to_string();
    entry.archive = Some(restored.archive.display().to_string());
    entry.replaced_files = Some(restored.replaced.display().to_string());
    let ended = rec.clock().now();
    entry.ending = Some(Stamp::at(rec.clock().zone().to_datetime(ended)));
    entry.result = Some("OK".to_owned());
    rec.journal(entry);
    let m = &restored.report.manifest.header;
    let mut history = HistoryEntry::restore(
        Operation::Restore,
        restored.archive.display().to_string(),
        m.structure_path.clone(),
        data_file,
        m.backup_number,
        started,
        ended,
        Some(trigger),
    );
    history.extra.extend(extra);
    rec.history(destination, m.structure_path.clone(), history);
}

/// A restore to a point interrupted before its integration ended leaves
/// its records set aside unconfirmed; redone here to the end, the first
/// record stepped over for that restore tells where its point was met.
/// One none of whose records this integration met stays as it is.
fn confirm_pending(
    rec: &mut Recorder<'_>,
    set_aside: &[sauve_logfile::SetAside],
    done: &[crate::integrate::LogIntegration],
) {
    use crate::actors::state::messages::SetAsideChange;
    for pending in set_aside.iter().filter(|r| r.after.is_none()) {
        let first = done
            .iter()
            .flat_map(|d| &d.integrated.skipped)
            .find(|s| s.restore == pending.at)
            .map(|s| s.first);
        // None stepped over here says nothing: this integration may have
        // started after its records, or read another timeline. It stays
        // pending, holding by its point, which is right as it is.
        let Some(first) = first else {
            continue;
        };
        let change = SetAsideChange::Confirm {
            at: pending.at,
            after: first - 1,
        };
        if let Err(e) = rec.set_aside(change) {
            rec.warnings
                .push(format!("the records set aside were not confirmed: {e}"));
        }
    }
}

/// `Data/.sauve-open-restore`: there from the moment an automatic restore
/// starts putting files in place until its log integration ended. Found at
/// open, it means the previous open check died half-way: the data may be
/// the damaged one, the restored one not yet integrated, or a mix, so the
/// restore runs again, whatever the host says of its data.
pub(crate) fn interrupted_marker(layout: &AppLayout) -> PathBuf {
    layout.app.join("Data/.sauve-open-restore")
}

struct Restored {
    archive: PathBuf,
    replaced: PathBuf,
    report: sauve_archive::RestoreReport,
}

/// A store the automatic restore reads: its URL, the store, what its sets
/// are called in a warning, and the sets a sample found damaged there (the
/// destination's only).
type OffsiteSource<'a> = (
    String,
    Arc<dyn sauve_store::Store>,
    &'a str,
    &'a [BackupNumber],
);

/// The newest set of `layout`'s base that restores from a store: the
/// destination when it is a bucket, then each `[[offsite]]` destination;
/// restored into `stage` (every hash checked there). Encrypted destinations
/// are skipped: the open check has no identity. Integration then reads the
/// logs on this machine (the newest set's records since its cut are in the
/// pending segments and the current log).
fn restore_from_offsite(
    (layout, io, own): (&AppLayout, &StoreIo, Option<&sauve_settings::SauveToml>),
    stage: &Path,
    (place, damaged): (&sauve_settings::Destination, &[BackupNumber]),
    fits: &dyn Fn(&sauve_archive::Manifest, &Path) -> bool,
) -> Option<(PathBuf, sauve_archive::RestoreReport)> {
    let destination = place.records();
    // sauve.toml as the resolver read it; none while it is not valid.
    let own = own?;
    // Each store with what its sets are called in a warning.
    let mut stores: Vec<OffsiteSource<'_>> = Vec::new();
    if let sauve_settings::Destination::Store { url, .. } = place {
        match crate::destination::StoreDestination::with_settings(url, own, io) {
            // No identity here for an encrypted one, as for off-site stores.
            Ok(d) if d.encrypted() => {}
            Ok(d) => stores.push((d.url, d.store, "the set", damaged)),
            Err(e) => tracing::warn!("the destination {url} cannot be opened: {e}"),
        }
    }
    for target in own.offsite.iter().filter(|t| t.encrypt_to.is_empty()) {
        if let Ok((store, _)) = crate::stores::open_offsite(&layout.app, target, &own.destination) {
            stores.push((target.url.clone(), store, "the off-site copy", &[]));
        }
    }
    if stores.is_empty() {
        return None;
    }
    let base = layout.base_name();
    for (url, store, what, damaged) in stores {
        let (listing, prefix) = (Arc::clone(&store), format!("{base}["));
        let listed = match io.run(async move { listing.list(&prefix).await }) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("the sets in {url} cannot be listed: {e}");
                continue;
            }
        };
        let mut numbers: Vec<BackupNumber> = listed
            .iter()
            .filter_map(|o| sauve_archive::ArchiveName::parse(&o.key))
            .filter(|a| a.base == base && a.kind == sauve_archive::SetKind::Backup && !a.part)
            .map(|a| a.number)
            .filter(|n| !damaged.contains(n))
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        for number in numbers.into_iter().rev() {
            let name = format!("{base}[{}]", number.text());
            let (located, runtime, set_name) = (store.clone(), io.handle(), name.clone());
            let located = io.run(async move {
                sauve_archive::RemoteSet::locate(located, runtime, &set_name, None).await
            });
            let Ok(set) = located else { continue };
            let _ = std::fs::remove_dir_all(stage);
            let options = RestoreOptions {
                to: Some(stage.to_path_buf()),
                force: false,
            };
            match sauve_archive::restore_remote(&set, &options, &mut sauve_archive::NoProgress) {
                Ok(mut report) => {
                    let archive = PathBuf::from(format!("{}{name}.4BK", store.describe()));
                    if !fits(&report.manifest, &archive) {
                        continue;
                    }
                    // What follows (the history entry, the logs to
                    // integrate) is the destination's, on this machine.
                    report.set.dir = destination.to_path_buf();
                    return Some((archive, report));
                }
                Err(e) => tracing::warn!("{what} {}{name} does not restore: {e}", store.describe()),
            }
        }
    }
    None
}

/// Picks the newest usable backup, moves the damaged files aside and puts
/// the backup's data-kind files (and attachments inside `Data/`) in place.
fn restore_newest(
    (layout, io, own): (&AppLayout, &StoreIo, Option<&sauve_settings::SauveToml>),
    place: &sauve_settings::Destination,
    (now, zone): (jiff::Timestamp, &jiff::tz::TimeZone),
    until: Until,
    set_aside: &[sauve_logfile::SetAside],
    before_moving: &mut dyn FnMut(&sauve_archive::RestoreReport) -> Result<(), EngineError>,
) -> Result<Restored, EngineError> {
    // Only a set that ends before the stop point can be integrated to it,
    // and none that holds records a point-in-time restore set aside.
    let fits = |m: &sauve_archive::Manifest, set: &Path| {
        crate::integrate::check_manifest(m, set, until, set_aside, zone).is_ok()
    };
    let destination = place.records();
    let key = crate::settings::structure_key(layout);
    // Sets a sample found damaged are never picked (behaviour §23).
    let damaged = crate::state::EngineState::load(&layout.app)
        .sample
        .unwrap_or_default()
        .damaged_in(&crate::sample::source_of(place));
    let mut candidates = restorable_sets(destination, &key);
    candidates.retain(|e| !damaged.contains(&e.backup_number));
    let data_dir = layout.app.join("Data");
    sauve_durable::remove_dead_folders(&data_dir, ".sauve-auto-restore-");
    let stage = data_dir.join(format!(".sauve-auto-restore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&stage);
    let local = candidates
        .iter()
        .map(|e| PathBuf::from(&e.backup_path))
        .find(|p| {
            sauve_archive::verify(p, &mut sauve_archive::NoProgress)
                .is_ok_and(|v| fits(&v.manifest, p))
        });
    let (archive, report) = match local {
        Some(archive) => {
            let report = sauve_archive::restore(
                &archive,
                &RestoreOptions {
                    to: Some(stage.clone()),
                    force: false,
                },
                &mut sauve_archive::NoProgress,
            )?;
            (archive, report)
        }
        // No sound set in the destination (missing, damaged, the disk
        // gone): the newest sound off-site copy (behaviour §19).
        None => restore_from_offsite((layout, io, own), &stage, (place, &damaged), &fits)
            .ok_or_else(|| match until {
                Until::End => EngineError::NoBackupAvailable {
                    key: key.clone(),
                    destination: destination.to_path_buf(),
                },
                _ => EngineError::NoBackupBefore {
                    key: key.clone(),
                    destination: destination.to_path_buf(),
                    point: until.describe(zone),
                },
            })?,
    };
    let replaced = replaced_folder(&data_dir, zone, now)?;
    // From here on the files change: a crash must lead to a new restore.
    let marker = interrupted_marker(layout);
    // Its presence is what counts (no temporary file to leave behind): one
    // line per attempt, naming the set.
    sauve_durable::append(&marker, format!("{}\n", archive.display()).as_bytes())?;
    // After the marker: a crash before the hook's record leads to a full
    // restore to the end (nothing lost), and a record without a marker is
    // always one whose restore put its files in place.
    before_moving(&report)?;
    let result = put_in_place(layout, &stage, &replaced, &report);
    let _ = std::fs::remove_dir_all(&stage);
    result?;
    Ok(Restored {
        archive,
        replaced,
        report,
    })
}

/// The app's sets a restore may put back, newest first: numbered backups
/// that succeeded, from the destination's history, lying in the
/// destination itself.
fn restorable_sets(destination: &Path, key: &str) -> Vec<HistoryEntry> {
    // Read only, and bounded: a corrupt or oversized history is left for
    // the history keeper to move aside.
    let history = sauve_history::read_json_text(destination)
        .ok()
        .flatten()
        .and_then(|t| History::parse(&t))
        .unwrap_or_default();
    // Only sets of the destination itself: a history is a file others can
    // write, and its paths are never followed elsewhere.
    let here = std::fs::canonicalize(destination).ok();
    let in_destination = |path: &str| {
        let folder = Path::new(path).parent().map(std::fs::canonicalize);
        matches!((folder, &here), (Some(Ok(f)), Some(d)) if f == *d)
    };
    let mut candidates: Vec<HistoryEntry> = history
        .entries(key)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            e.is_numbered_backup()
                && e.status.is_none_or(|s| s == 0 || s == -43 || s == -1)
                && in_destination(&e.backup_path)
        })
        .collect();
    candidates.reverse();
    candidates
}

/// A folder of its own for the files a restore replaces, even when an
/// interrupted check made one this second: `… {stamp}`, else
/// `… {stamp} (2)`, and so on.
fn replaced_folder(
    data_dir: &Path,
    zone: &jiff::tz::TimeZone,
    now: jiff::Timestamp,
) -> Result<PathBuf, EngineError> {
    let stamp = zone
        .to_datetime(now)
        .strftime("%Y-%m-%d %H-%M-%S")
        .to_string();
    let mut replaced = data_dir.join(format!("Replaced files (restoring) {stamp}"));
    for n in 2.. {
        point(Step::Create, &replaced).map_err(EngineError::io("create folder", &replaced))?;
        match std::fs::create_dir(&replaced) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                replaced = data_dir.join(format!("Replaced files (restoring) {stamp} ({n})"));
            }
            Err(e) => return Err(EngineError::io("create folder", &replaced)(e)),
        }
    }
    Ok(replaced)
}

/// Puts the staged files of `report` in place in APP/Data, each file it
/// replaces kept aside in `replaced` first (a second name, then one
/// rename: the file is there at every instant), every changed folder
/// synced. The log is never put back.
fn put_in_place(
    layout: &AppLayout,
    stage: &Path,
    replaced: &Path,
    report: &sauve_archive::RestoreReport,
) -> Result<(), EngineError> {
    let data_dir = layout.app.join("Data");
    let log_name = layout
        .log_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let data_prefix = format!(
        "Attachments/{}/",
        data_dir.display().to_string().trim_start_matches('/')
    );
    // Everything put back lies in APP/Data, and is reached through a
    // handle on it: no name, and no link someone put in the data folder,
    // leads a file elsewhere (SECURITY.md, "Archives").
    let data = sauve_durable::beneath::Beneath::open(&data_dir)
        .map_err(EngineError::io("open", &data_dir))?;
    let beneath_data = |p: &Path| p.strip_prefix(&data_dir).map(Path::to_path_buf).ok();
    let (Some(stage_rel), Some(replaced_rel)) = (beneath_data(stage), beneath_data(replaced))
    else {
        return Err(EngineError::Internal(
            "the stage and the replaced files' folder are in the data folder".to_owned(),
        ));
    };
    let data_file = layout
        .data_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Every folder a name was added to, fsynced before the marker goes.
    let mut changed: std::collections::BTreeSet<PathBuf> =
        [replaced_rel.clone(), PathBuf::new()].into();
    for e in report
        .manifest
        .entries
        .iter()
        .filter(|e| e.entry_type == sauve_archive::EntryType::File)
    {
        let Some(target) = put_back_at((&layout.app, &data_file), &data_dir, &data_prefix, e)
        else {
            continue;
        };
        if e.kind == EntryKind::Log
            || target
                .file_name()
                .is_some_and(|n| n.to_string_lossy() == log_name)
        {
            continue;
        }
        let Some(rel) = beneath_data(&target) else {
            continue;
        };
        let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        let present = data.kind(&rel).map_err(EngineError::io("read", &target))?;
        if present.is_some() {
            let aside = replaced_rel.join(&rel);
            let aside_parent = aside.parent().map(Path::to_path_buf).unwrap_or_default();
            data.create_dir_all(&aside_parent)
                .map_err(EngineError::io("create folder", data.shown(&aside_parent)))?;
            // Kept aside by a second name, then replaced in one rename:
            // the file is there at every instant, damaged or restored.
            point(Step::Link, &data.shown(&aside))
                .and_then(|()| data.hard_link(&rel, &aside))
                .map_err(EngineError::io("keep aside", &target))?;
            changed.insert(aside_parent);
        }
        data.create_dir_all(&parent)
            .map_err(EngineError::io("create folder", data.shown(&parent)))?;
        point(Step::Rename, &target)
            .and_then(|()| data.rename(&stage_rel.join(&e.path), &data, &rel))
            .map_err(EngineError::io("put in place", &target))?;
        changed.insert(parent);
    }
    for dir in &changed {
        point(Step::SyncFolder, &data.shown(dir))
            .and_then(|()| data.sync_dir(dir))
            .map_err(EngineError::io("sync folder", data.shown(dir)))?;
    }
    Ok(())
}

/// Where the automatic restore puts a restored file back, if it does: the
/// data file and Data/Settings go to Data/; attachments inside the data
/// folder go back where they were. Only the entry's path decides (checked
/// safe by the reader: relative, no `..`), never its `source`, which a
/// crafted manifest could point anywhere.
fn put_back_at(
    (app, data_file): (&Path, &str),
    data_dir: &Path,
    data_prefix: &str,
    e: &sauve_archive::ManifestEntry,
) -> Option<PathBuf> {
    match e.kind {
        // The data file under its own name only, and Data/Settings: a set
        // may say any kind of any path, but nothing else of the app (its
        // structure, its settings) is put back by an automatic restore.
        EntryKind::Data if e.path == format!("Data/{data_file}") => Some(app.join(&e.path)),
        // Never sauve.toml: whoever can write the destination must not be
        // able to give sauve commands to run (alerts) or places to copy to.
        EntryKind::DataSettings
            if e.path.starts_with("Data/Settings/")
                && !e
                    .path
                    .ends_with(&format!("/{}", sauve_settings::SAUVE_TOML)) =>
        {
            Some(app.join(&e.path))
        }
        EntryKind::Attachment => e
            .path
            .strip_prefix(data_prefix)
            .map(|rest| data_dir.join(rest)),
        _ => None,
    }
}

/// What a point-in-time restore did (behaviour §20, see
/// `BackupHandle::restore_to_point`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointRestore {
    /// The set restored: the newest that ends before the point and verifies.
    pub archive: PathBuf,
    /// Where the data-kind files it replaced were moved.
    pub replaced: PathBuf,
    /// Each log integrated, in order, the last one where the point was met.
    pub logs: Vec<crate::integrate::LogIntegration>,
    /// Records applied.
    pub applied: u64,
    /// Where the data stands in the log: the last record applied.
    pub last_applied: u64,
    /// The time of the last record applied, when it has one.
    pub last_time: Option<jiff::Timestamp>,
    /// The records past the point that stay in the logs, `(first, last)`:
    /// every later integration steps over them.
    pub set_aside: Option<(u64, u64)>,
    /// Records not written (journal, history): the restore itself is done.
    pub warnings: Vec<String>,
}

/// Restores the app's data in place to `until` (behaviour §20): the newest set
/// that ends before the point, then its logs up to the point. The records
/// past it are recorded as set aside before any file moves, so that an
/// open check redoing an interrupted restore, and every later integration,
/// steps over them.
pub(crate) fn to_point<E: std::fmt::Display>(
    rec: &mut Recorder<'_>,
    identity: [u8; 16],
    until: Until,
    mut reload: impl FnMut() -> u64,
    mut apply: impl FnMut(&Record) -> Result<(), E>,
) -> Result<PointRestore, EngineError> {
    use crate::actors::state::messages::SetAsideChange;
    use crate::state::{Point, SetAsideRecord};
    let layout = rec.layout().clone();
    let settings = rec.settings()?;
    let zone = rec.clock().zone();
    let log = layout.log_file.clone();
    if !crate::logcut::is_sauve_log(&log) {
        return Err(EngineError::NoLogForPoint {
            log,
            point: until.describe(&zone),
        });
    }
    // Everything in the logs now was written before the restore: what of
    // it is past the point is set aside; what the host writes next is not.
    let contents = sauve_logfile::read_log(&log)?;
    let through = contents
        .records
        .last()
        .map_or(contents.header.first_sequence.saturating_sub(1), |r| r.seq);
    let started = rec.clock().now();
    let record = match until {
        Until::End => None,
        Until::Sequence(n) => Some(Point::Sequence(n)),
        Until::Time(t) => Some(Point::Time(t)),
    }
    .map(|point| SetAsideRecord {
        point,
        through,
        after: None,
        at: started,
    });
    let entry = point_entry(&layout, until, &zone, started, record.map(|_| through));
    let place = crate::plan::destination_to_read(&layout.app, &settings)?;
    let destination = place.records().to_path_buf();
    let marker = interrupted_marker(&layout);
    let set_aside = match rec.set_asides() {
        Ok(s) => s,
        Err(e) => return Err(journal_failed(rec, entry, e)),
    };
    let io = rec.io().clone();
    let own = rec.own_settings();
    let restored = restore_newest(
        (&layout, &io, own.as_deref()),
        &place,
        (started, &zone),
        until,
        &set_aside,
        &mut |_| {
            if let Some(r) = record {
                rec.set_aside(SetAsideChange::Add(r))?;
            }
            Ok(())
        },
    );
    let restored = match restored {
        Ok(r) => r,
        Err(e) => {
            // Failed before the set-aside record: nothing is set aside.
            // Failed after it: the marker is there too, and the next open
            // check redoes this restore, stepping over the same records.
            return Err(journal_failed(rec, entry, e));
        }
    };
    let mut extra = serde_json::Map::new();
    extra.insert(
        "until".to_owned(),
        crate::integrate::point_json(until, &zone),
    );
    record_restored(
        rec,
        entry,
        &restored,
        destination,
        started,
        "point in time",
        extra,
    );
    let mut outcome = PointRestore {
        archive: restored.archive.clone(),
        replaced: restored.replaced.clone(),
        logs: Vec::new(),
        applied: 0,
        last_applied: reload(),
        last_time: None,
        set_aside: None,
        warnings: Vec::new(),
    };
    outcome.logs = crate::integrate::run(
        rec,
        &restored.report,
        identity,
        Some(&log),
        None,
        until,
        &set_aside,
        &mut apply,
    )?;
    for d in &outcome.logs {
        outcome.applied += d.integrated.applied;
        outcome.last_applied = d.integrated.last_applied;
        outcome.last_time = d
            .integrated
            .last_time
            .and_then(|us| jiff::Timestamp::from_microsecond(us).ok());
    }
    if record.is_some() {
        confirm_set_aside(rec, started, through, &mut outcome);
    }
    if marker.exists() {
        remove_marker(&layout, &marker)?;
    }
    Ok(outcome)
}

/// The journal entry of a restore to a point; `set_aside`, the last
/// sequence of the records past the point that stay in the logs.
fn point_entry(
    layout: &AppLayout,
    until: Until,
    zone: &jiff::tz::TimeZone,
    started: jiff::Timestamp,
    set_aside: Option<u64>,
) -> Entry {
    let mut entry = Entry::new(Title::Restore);
    entry.data_file = Some(layout.data_file.display().to_string());
    entry.log_file = Some(layout.log_file.display().to_string());
    entry.starting = Some(Stamp::at(zone.to_datetime(started)));
    entry.other = vec![("Stop point".to_owned(), until.describe(zone))];
    if let Some(through) = set_aside {
        entry.other.push((
            "Set aside".to_owned(),
            format!(
                "the records past the point, up to sequence {through}, stay in the logs; integrations step over them"
            ),
        ));
    }
    entry
}

/// Once the logs are integrated: the records past where the data now
/// stands, up to `through`, confirmed as set aside. Kept even when nothing
/// was past the point: the restore made the timeline of the points after
/// it (`sauve_logfile::timeline`).
fn confirm_set_aside(
    rec: &mut Recorder<'_>,
    started: jiff::Timestamp,
    through: u64,
    outcome: &mut PointRestore,
) {
    use crate::actors::state::messages::SetAsideChange;
    let after = outcome.last_applied.min(through);
    if after < through {
        outcome.set_aside = Some((after + 1, through));
    }
    let change = SetAsideChange::Confirm { at: started, after };
    // Unconfirmed, the records are still stepped over; only a log
    // starting after them would be refused (1416) until the next restore.
    if let Err(e) = rec.set_aside(change) {
        rec.warnings
            .push(format!("the records set aside were not confirmed: {e}"));
    }
}

/// Restored and integrated: the marker of an interrupted restore goes, as
/// a crash from here on needs no new restore.
fn remove_marker(layout: &AppLayout, marker: &Path) -> Result<(), EngineError> {
    point(Step::Unlink, marker)
        .and_then(|()| std::fs::remove_file(marker))
        .map_err(EngineError::io("remove", marker))?;
    sauve_durable::sync_folder(&layout.app.join("Data"))?;
    Ok(())
}

#[cfg(test)]
mod put_back_tests {
    use super::*;

    #[test]
    fn a_restored_attachment_goes_back_by_its_path_never_by_its_source() {
        let e = sauve_archive::ManifestEntry {
            kind: EntryKind::Attachment,
            source: "/etc/passwd".to_owned(),
            path: "Attachments/srv/app/Data/Uploads/a.pdf".to_owned(),
            entry_type: sauve_archive::EntryType::File,
            size: 1,
            mode: 0o644,
            mtime: 0,
            blake3: None,
            target: None,
            store: sauve_archive::Store::Stored,
            inode: None,
            blocks: None,
        };
        let (app, data) = (Path::new("/srv/app"), Path::new("/srv/app/Data"));
        let prefix = "Attachments/srv/app/Data/";
        let app = (app, "App.4DD");
        assert_eq!(
            put_back_at(app, data, prefix, &e),
            Some(PathBuf::from("/srv/app/Data/Uploads/a.pdf"))
        );
        let elsewhere = sauve_archive::ManifestEntry {
            path: "Attachments/home/x/a.pdf".to_owned(),
            ..e.clone()
        };
        assert_eq!(put_back_at(app, data, prefix, &elsewhere), None);
        let data_file = sauve_archive::ManifestEntry {
            kind: EntryKind::Data,
            path: "Data/App.4DD".to_owned(),
            ..e.clone()
        };
        assert_eq!(
            put_back_at(app, data, prefix, &data_file),
            Some(PathBuf::from("/srv/app/Data/App.4DD"))
        );
        // Found in review: a set could put back, as "data", any file of the
        // app, and its sauve.toml (commands run at the next alert).
        for (kind, path) in [
            (EntryKind::Data, "Project/Sources/Methods/x.4dm"),
            (EntryKind::Data, "Settings/backup.4DSettings"),
            (EntryKind::DataSettings, "Settings/sauve.toml"),
            (EntryKind::DataSettings, "Data/Settings/sauve.toml"),
        ] {
            let crafted = sauve_archive::ManifestEntry {
                kind,
                path: path.to_owned(),
                ..e.clone()
            };
            assert_eq!(put_back_at(app, data, prefix, &crafted), None, "{path}");
        }
        let settings = sauve_archive::ManifestEntry {
            kind: EntryKind::DataSettings,
            path: "Data/Settings/backup.4DSettings".to_owned(),
            ..e
        };
        assert!(put_back_at(app, data, prefix, &settings).is_some());
    }
}
