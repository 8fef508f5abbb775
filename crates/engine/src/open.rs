//! Automatic restore and automatic log integration at open (SPEC 13.3).

use std::path::{Path, PathBuf};

use sauve_archive::{EntryKind, RestoreOptions};
use sauve_history::{History, HistoryEntry, Operation};
use sauve_journal::{Entry, Journal, Stamp, Title};
use sauve_logfile::Record;
use sauve_settings::AppLayout;
use sauve_status::Status;

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
}

fn journal(app: &Path, entry: &Entry) {
    if let Ok(mut j) = Journal::open(&app.join("Logs")) {
        let _ = j.append(entry, true);
    }
}

fn stamp(t: jiff::Timestamp) -> Stamp {
    Stamp::at(jiff::tz::TimeZone::system().to_datetime(t))
}

/// Runs the open check of SPEC 13.3. With damaged data and AutomaticRestore,
/// the newest backup that verifies is restored (the damaged data-kind files
/// moved to `APP/Data/Replaced files (restoring) <time>/`, the current log
/// never overwritten), then, with AutomaticLogIntegration, the logs after
/// it are integrated through `reload` (called once the restored data file is
/// in place, returning what it has applied) and `apply`. With healthy data
/// and AutomaticLogIntegration, the current log's records beyond
/// `last_applied` are integrated. Blocking: call it off async threads.
pub fn open_check<E: std::fmt::Display>(
    layout: &AppLayout,
    health: DataHealth,
    identity: [u8; 16],
    mut reload: impl FnMut() -> u64,
    mut apply: impl FnMut(&Record) -> Result<(), E>,
) -> Result<OpenOutcome, (Status, String)> {
    let app = &layout.app;
    let effective = sauve_settings::load_effective(app)
        .map_err(|e| (Status::InvalidSettings, e.to_string()))?;
    let s = effective.doc.settings();
    let mut outcome = OpenOutcome {
        restored: None,
        replaced: None,
        applied: 0,
        last_applied: health.last_applied,
        restart: s.advanced.automatic_restart,
    };
    if health.damaged {
        if !s.advanced.automatic_restore {
            return Err((
                Status::BackupError,
                "the data is damaged and AutomaticRestore is off".to_owned(),
            ));
        }
        let started = jiff::Timestamp::now();
        let mut entry = Entry::new(Title::AutomaticFullBackupRestore);
        entry.data_file = Some(layout.data_file.display().to_string());
        entry.starting = Some(stamp(started));
        let destination = sauve_settings::resolve_path(app, &s.general.destination_folder)
            .map_err(|e| (Status::DestinationInvalid, e.to_string()))?
            .path;
        let restored = match restore_newest(layout, &destination, started) {
            Ok(r) => r,
            Err((status, why)) => {
                entry.ending = Some(stamp(jiff::Timestamp::now()));
                entry.result = Some("backup not available".to_owned());
                entry.errors = vec![status.to_string(), why.clone()];
                journal(app, &entry);
                return Err((status, why));
            }
        };
        entry.archive = Some(restored.archive.display().to_string());
        entry.replaced_files = Some(restored.replaced.display().to_string());
        entry.ending = Some(stamp(jiff::Timestamp::now()));
        entry.result = Some("OK".to_owned());
        journal(app, &entry);
        record_restore(&destination, layout, &restored, started);
        outcome.restored = Some(restored.archive.clone());
        outcome.replaced = Some(restored.replaced.clone());
        outcome.last_applied = reload();
        if s.advanced.automatic_log_integration {
            let done = crate::integrate::integrate_after_restore(
                app,
                &restored.report,
                identity,
                Some(&layout.log_file),
                &mut apply,
            )?;
            for d in &done {
                outcome.applied += d.integrated.applied;
                outcome.last_applied = d.integrated.last_applied;
            }
        }
        return Ok(outcome);
    }
    if s.advanced.automatic_log_integration && crate::logcut::is_sauve_log(&layout.log_file) {
        let started = jiff::Timestamp::now();
        let mut entry = Entry::new(Title::AutomaticLogIntegration);
        entry.data_file = Some(layout.data_file.display().to_string());
        entry.log_file = Some(layout.log_file.display().to_string());
        entry.starting = Some(stamp(started));
        let result =
            sauve_logfile::integrate(&layout.log_file, identity, health.last_applied, &mut apply);
        entry.ending = Some(stamp(jiff::Timestamp::now()));
        match result {
            Ok(i) => {
                entry.operations = Some(match i.range {
                    Some((a, b)) => format!("{} applied ({a} to {b})", i.applied),
                    None => "0 applied".to_owned(),
                });
                entry.result = Some("OK".to_owned());
                journal(app, &entry);
                outcome.applied = i.applied;
                outcome.last_applied = i.last_applied;
            }
            Err(e) => {
                let status = e.status();
                entry.result = Some(match &e {
                    sauve_logfile::IntegrateError::Apply { seq, .. } => {
                        format!("failed at sequence {seq}")
                    }
                    _ => format!("failed: {}", status.text()),
                });
                entry.errors = vec![status.to_string(), e.to_string()];
                journal(app, &entry);
                return Err((status, e.to_string()));
            }
        }
    }
    Ok(outcome)
}

struct Restored {
    archive: PathBuf,
    replaced: PathBuf,
    report: sauve_archive::RestoreReport,
}

/// Picks the newest usable backup, moves the damaged files aside and puts
/// the backup's data-kind files (and attachments inside `Data/`) in place.
fn restore_newest(
    layout: &AppLayout,
    destination: &Path,
    now: jiff::Timestamp,
) -> Result<Restored, (Status, String)> {
    let key = layout
        .project_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| layout.app.display().to_string());
    let history = History::load(destination, now)
        .map_err(|e| (Status::ArchiveMissing, e.to_string()))?
        .history;
    let mut candidates: Vec<HistoryEntry> = history
        .entries(&key)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            e.is_numbered_backup() && e.status.is_none_or(|s| s == 0 || s == -43 || s == -1)
        })
        .collect();
    candidates.reverse();
    let archive = candidates
        .iter()
        .map(|e| PathBuf::from(&e.backup_path))
        .find(|p| sauve_archive::verify(p, &mut sauve_archive::NoProgress).is_ok())
        .ok_or_else(|| {
            (
                Status::ArchiveMissing,
                format!("no backup of {key} in {} verifies", destination.display()),
            )
        })?;
    let data_dir = layout.app.join("Data");
    let stage = data_dir.join(format!(".sauve-auto-restore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&stage);
    let report = sauve_archive::restore(
        &archive,
        &RestoreOptions {
            to: Some(stage.clone()),
            force: false,
        },
        &mut sauve_archive::NoProgress,
    )
    .map_err(|e| (e.status(), e.to_string()))?;
    let stamp = jiff::tz::TimeZone::system()
        .to_datetime(now)
        .strftime("%Y-%m-%d %H-%M-%S")
        .to_string();
    let replaced = data_dir.join(format!("Replaced files (restoring) {stamp}"));
    std::fs::create_dir_all(&replaced).map_err(|e| {
        (
            Status::BackupError,
            format!("cannot create {}: {e}", replaced.display()),
        )
    })?;
    let log_name = layout
        .log_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let data_prefix = format!(
        "Attachments/{}/",
        data_dir.display().to_string().trim_start_matches('/')
    );
    let result = (|| {
        for e in report
            .manifest
            .entries
            .iter()
            .filter(|e| e.entry_type == sauve_archive::EntryType::File)
        {
            // The data file and Data/Settings go to Data/; attachments inside
            // the data folder go back where they were; never the current log.
            let target = match e.kind {
                EntryKind::Data | EntryKind::DataSettings => layout.app.join(&e.path),
                EntryKind::Attachment if e.path.starts_with(&data_prefix) => {
                    PathBuf::from(&e.source)
                }
                _ => continue,
            };
            if e.kind == EntryKind::Log
                || target
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy() == log_name)
            {
                continue;
            }
            if target.exists() {
                let rel = target.strip_prefix(&data_dir).unwrap_or(&target);
                let aside = replaced.join(rel);
                if let Some(p) = aside.parent() {
                    std::fs::create_dir_all(p)
                        .map_err(|e| format!("cannot create {}: {e}", p.display()))?;
                }
                std::fs::rename(&target, &aside)
                    .map_err(|e| format!("cannot move {} aside: {e}", target.display()))?;
            }
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p)
                    .map_err(|e| format!("cannot create {}: {e}", p.display()))?;
            }
            std::fs::rename(stage.join(&e.path), &target)
                .map_err(|e| format!("cannot put {} in place: {e}", target.display()))?;
        }
        Ok::<(), String>(())
    })();
    let _ = std::fs::remove_dir_all(&stage);
    result.map_err(|e| (Status::BackupError, e))?;
    Ok(Restored {
        archive,
        replaced,
        report,
    })
}

/// The history entry of an automatic restore (trigger `automatic`, O-14).
fn record_restore(destination: &Path, layout: &AppLayout, r: &Restored, started: jiff::Timestamp) {
    let ended = jiff::Timestamp::now();
    let m = &r.report.manifest.header;
    let entry = HistoryEntry::restore(
        Operation::Restore,
        r.archive.display().to_string(),
        m.structure_path.clone(),
        layout.data_file.display().to_string(),
        m.backup_number,
        started,
        ended,
        Some("automatic"),
    );
    if let Ok(mut loaded) = History::load(destination, ended) {
        let _ = loaded.history.add(&m.structure_path, entry);
        let _ = loaded.history.save(destination);
    }
}
