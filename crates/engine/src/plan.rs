//! What a run will do, decided from values alone (behaviour §5 to §7 and
//! §14.2): the destination, the number, the sets and their manifests, the
//! content of each phase, retention before or after, whether the log is cut,
//! the free-space estimate. The run gathers the facts through the actors,
//! then follows the plan; nothing here does IO, so every rule is a table test.

use sauve_number::BackupNumber;
use std::path::Path;
use std::time::Duration;

use sauve_archive::{Content, EntryKind, ManifestHeader, SetKind, SetSpec, SourceEntry};
use sauve_history::Numbering;
use sauve_settings::{AppLayout, Compression};

use crate::api::Trigger;
use crate::error::EngineError;
use crate::settings::AppSettings;
use crate::state::DataStamp;

/// What the log at `APP/Data/<stem>.journal` is (behaviour §14, O-6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogState {
    /// No file there.
    Absent,
    /// A file that is not a sauve log (4D's own journal): archived as it is.
    Foreign,
    /// A sauve log; `records` when it holds records since its last cut.
    Sauve {
        /// Whether records were appended since the last cut.
        records: bool,
    },
}

/// What the attachment resolver found for a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The content, in stream order.
    pub(crate) content: Content,
    /// The log file.
    pub(crate) log: LogState,
}

/// The data file and the log as they are now, for BackupIfDataChange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, actix::MessageResponse)]
pub(crate) struct DataFacts {
    /// The data file's size and mtime (ns), if it exists.
    pub(crate) data: Option<(u64, i64)>,
    /// The log.
    pub(crate) log: LogState,
}

/// Where the backups go: `General/DestinationFolder` resolved against the
/// app, or a bucket prefix (behaviour §19).
pub(crate) fn destination(
    app: &Path,
    settings: &AppSettings,
) -> Result<sauve_settings::Destination, EngineError> {
    resolved(app, settings, sauve_settings::resolve_destination)
}

/// The settings' destination as `resolve` reads it.
fn resolved(
    app: &Path,
    settings: &AppSettings,
    resolve: fn(&Path, &str) -> Result<sauve_settings::Destination, sauve_settings::PathError>,
) -> Result<sauve_settings::Destination, EngineError> {
    let written = &settings.settings.general.destination_folder;
    resolve(app, written).map_err(|source| EngineError::DestinationPath {
        written: written.clone(),
        source,
    })
}

/// [`destination`] for what only reads the sets already there (the
/// history, the status, the automatic restore): a folder inside the app,
/// which no backup writes to any more, still shows and restores the sets
/// written there before.
pub(crate) fn destination_to_read(
    app: &Path,
    settings: &AppSettings,
) -> Result<sauve_settings::Destination, EngineError> {
    resolved(app, settings, sauve_settings::resolve_destination_to_read)
}

/// behaviour §9.3: why a scheduled run with BackupIfDataChange is postponed, if it
/// is. Unchanged means the last successful backup with data saw this size
/// and mtime, and the log holds no record since (or there is no log at all).
pub(crate) fn postpone_reason(
    last: Option<DataStamp>,
    now: DataFacts,
    host_log: bool,
) -> Option<String> {
    let last = last?;
    let (size, mtime) = now.data?;
    let log_quiet = match now.log {
        LogState::Sauve { records } => !records,
        LogState::Absent => !host_log,
        LogState::Foreign => false,
    };
    (last.size == size && last.mtime == mtime && log_quiet)
        .then(|| format!("data unchanged since backup {}", last.number))
}

/// Everything the plan is made from.
pub(crate) struct Facts<'a> {
    pub(crate) trigger: Trigger,
    pub(crate) started: jiff::Timestamp,
    pub(crate) layout: &'a AppLayout,
    pub(crate) settings: &'a AppSettings,
    pub(crate) destination: &'a Path,
    /// Bytes free in the destination.
    pub(crate) free: u64,
    pub(crate) resolved: &'a Resolved,
    /// The host gave the engine its log writer.
    pub(crate) host_log: bool,
    /// Archive size over content size of the last compressed backup.
    pub(crate) last_ratio: Option<f64>,
    pub(crate) numbering: &'a Numbering,
    /// zstd worker threads.
    pub(crate) threads: u32,
}

/// Retention of this run (behaviour §6.3): how many sets to keep, before the
/// backup (EraseOldBackupBefore, Value − 1) or after it (Value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Retention {
    pub(crate) before: Option<usize>,
    pub(crate) after: Option<usize>,
}

/// A set to write: where and how, and its manifest's header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SetPlan {
    pub(crate) spec: SetSpec,
    pub(crate) header: ManifestHeader,
}

/// What the run will do.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    pub(crate) number: BackupNumber,
    pub(crate) base: String,
    /// `base[N].4BK`.
    pub(crate) backup: SetPlan,
    /// `base[N-1].4BL`, when the log is cut (behaviour §14.2).
    pub(crate) log: Option<SetPlan>,
    /// Under the data lock: data kinds and attachments inside `Data/` (O-11).
    pub(crate) data: Vec<SourceEntry>,
    /// Under the structure lock.
    pub(crate) structure: Vec<SourceEntry>,
    /// Unlocked.
    pub(crate) attachments: Vec<SourceEntry>,
    /// Bytes of file content.
    pub(crate) total: u64,
    /// The free-space estimate.
    pub(crate) estimate: u64,
    pub(crate) retention: Retention,
    /// CheckArchiveFileDuringBackup.
    pub(crate) verify: bool,
    /// The lock-wait limit (legacy `Transaction/Timeout`).
    pub(crate) lock_timeout: Option<Duration>,
    /// Journal notes the plan raised.
    pub(crate) notes: Vec<String>,
    /// The data file's size and mtime when the archive holds it.
    pub(crate) data_stamp: Option<(u64, i64)>,
    /// Whether the archive is compressed (its ratio then counts for the next estimate).
    pub(crate) compressed: bool,
}

/// Decides the run (behaviour §5 steps 5 to 13). Fails with 1403 when a declared
/// log is missing and with -34 when the estimate does not fit.
pub(crate) fn plan(f: &Facts<'_>) -> Result<Plan, EngineError> {
    let s = &f.settings.settings;
    let advanced = &s.advanced;
    let base = f.layout.base_name();
    let number = f.numbering.number;
    let content = &f.resolved.content;
    let mut notes: Vec<String> = f.numbering.note.iter().cloned().collect();
    notes.extend(
        content
            .skipped
            .iter()
            .map(|s| format!("skipped {}: {}", s.path.display(), s.reason)),
    );

    let cut_log = cut_log(f, &mut notes)?;

    // The free-space estimate (behaviour §6.1): content × the last ratio + 10%.
    let total = content.total_bytes();
    let compressed = advanced.compression_rate != Compression::None;
    let estimate = free_space_check(f, total, compressed)?;

    let retention = retention(advanced);

    let set = |kind: SetKind, number: BackupNumber| SetSpec {
        destination: f.destination.to_path_buf(),
        base: base.clone(),
        number,
        kind,
        compression: advanced.compression_rate,
        segment_size: u64::from(advanced.file_segmentation.default_size) << 20,
        threads: f.threads,
    };
    let header = |kind: SetKind, number: BackupNumber| ManifestHeader {
        structure_path: crate::settings::structure_key(f.layout),
        data_path: f.layout.data_file.display().to_string(),
        trigger: f.trigger.as_str().to_owned(),
        ..ManifestHeader::new(kind, number, &base, f.started)
    };
    let backup = SetPlan {
        spec: set(SetKind::Backup, number),
        header: ManifestHeader {
            settings_digest: f.settings.digest.clone(),
            ..header(SetKind::Backup, number)
        },
    };
    // The log backup pairs with the previous data backup's number (behaviour §6.2).
    let log = cut_log.then(|| {
        // Numbers start at 1: set 1's log backup is 0.
        let previous = number.log_set().unwrap_or_default();
        SetPlan {
            spec: set(SetKind::Log, previous),
            header: header(SetKind::Log, previous),
        }
    });

    let data_len = content.data_phase_len(f.layout);
    let (data, rest) = content.entries.split_at(data_len);
    let (structure, attachments): (Vec<SourceEntry>, Vec<SourceEntry>) = rest
        .iter()
        .cloned()
        .partition(|e| e.kind != EntryKind::Attachment);
    let data_stamp = content
        .entries
        .iter()
        .find(|e| e.kind == EntryKind::Data)
        .map(|e| (e.size, e.mtime));

    Ok(Plan {
        number,
        base,
        backup,
        log,
        data: data.to_vec(),
        structure,
        attachments,
        total,
        estimate,
        retention,
        verify: advanced.check_archive_file_during_backup,
        lock_timeout: s.legacy.lock_timeout(),
        notes,
        data_stamp,
        compressed,
    })
}

/// Whether the run cuts the log (O-6): on when JournalFileEnabled says so,
/// or the host declares one, or the file exists; cut only when it is a
/// sauve log. A declared log that is missing fails the run.
fn cut_log(f: &Facts<'_>, notes: &mut Vec<String>) -> Result<bool, EngineError> {
    let s = &f.settings.settings;
    let declared = s.legacy.journal_file_enabled;
    if declared == Some(true) && f.resolved.log == LogState::Absent && !f.host_log {
        return Err(EngineError::LogMissing {
            path: f.layout.log_file.clone(),
        });
    }
    let sauve_log = matches!(f.resolved.log, LogState::Sauve { .. });
    let cut_log =
        s.general.include_data_file && declared != Some(false) && (f.host_log || sauve_log);
    if f.resolved.log == LogState::Foreign && declared != Some(false) {
        notes.push(format!(
            "{} is not a sauve log: it is archived as it is, and not cut",
            f.layout.log_file.display()
        ));
    }
    Ok(cut_log)
}

/// The free-space estimate (behaviour §6.1): content × the last ratio +
/// 10%; -34 when the destination has less, unless old sets go first.
fn free_space_check(f: &Facts<'_>, total: u64, compressed: bool) -> Result<u64, EngineError> {
    let advanced = &f.settings.settings.advanced;
    let ratio = if compressed {
        f.last_ratio.unwrap_or(1.0).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let estimate = (total as f64 * ratio * 1.1).ceil() as u64;
    if estimate > f.free && !advanced.erase_old_backup_before {
        return Err(EngineError::DiskFull {
            path: f.destination.to_path_buf(),
            needed: estimate,
            free: f.free,
        });
    }
    Ok(estimate)
}

/// "Keep only the last X backup files": before the run (X − 1 kept, room
/// for the new set) or after it.
fn retention(advanced: &sauve_settings::Advanced) -> Retention {
    if advanced.set_number.enable {
        let value = advanced.set_number.value as usize;
        if advanced.erase_old_backup_before {
            Retention {
                before: Some(value.saturating_sub(1)),
                after: None,
            }
        } else {
            Retention {
                before: None,
                after: Some(value),
            }
        }
    } else {
        Retention::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sauve_archive::{EntryType, Skipped};
    use sauve_settings::Settings;
    use sauve_status::Status;
    use std::path::PathBuf;

    fn layout() -> AppLayout {
        AppLayout {
            app: PathBuf::from("/app"),
            project_file: Some(PathBuf::from("/app/Project/App.4DProject")),
            data_file: PathBuf::from("/app/Data/App.4DD"),
            log_file: PathBuf::from("/app/Data/App.journal"),
        }
    }

    fn entry(kind: EntryKind, source: &str, path: &str, size: u64) -> SourceEntry {
        SourceEntry {
            kind,
            source: PathBuf::from(source),
            path: path.to_owned(),
            entry_type: EntryType::File,
            size,
            mode: 0o644,
            mtime: 7,
            target: None,
        }
    }

    fn resolved(log: LogState) -> Resolved {
        Resolved {
            content: Content {
                entries: vec![
                    entry(EntryKind::Data, "/app/Data/App.4DD", "Data/App.4DD", 1000),
                    entry(
                        EntryKind::Attachment,
                        "/app/Data/App.4DIndx",
                        "Attachments/app/Data/App.4DIndx",
                        100,
                    ),
                    entry(
                        EntryKind::Structure,
                        "/app/Project/App.4DProject",
                        "Project/App.4DProject",
                        10,
                    ),
                    entry(
                        EntryKind::Attachment,
                        "/etc/hosts",
                        "Attachments/etc/hosts",
                        1,
                    ),
                ],
                attachments: Vec::new(),
                skipped: vec![Skipped {
                    path: PathBuf::from("/app/Data/fifo"),
                    reason: "a FIFO".to_owned(),
                }],
            },
            log,
        }
    }

    struct Case {
        settings: fn(&mut Settings),
        log: LogState,
        host_log: bool,
        free: u64,
        last_ratio: Option<f64>,
    }

    impl Default for Case {
        fn default() -> Case {
            Case {
                settings: |_| {},
                log: LogState::Absent,
                host_log: false,
                free: u64::MAX,
                last_ratio: None,
            }
        }
    }

    fn run(case: Case) -> Result<Plan, EngineError> {
        let mut s = Settings::default();
        (case.settings)(&mut s);
        let settings = AppSettings::for_tests(s);
        let layout = layout();
        let resolved = resolved(case.log);
        let numbering = Numbering {
            number: 42.into(),
            note: None,
        };
        plan(&Facts {
            trigger: Trigger::Scheduled,
            started: "2025-03-14T01:00:00Z".parse().unwrap(),
            layout: &layout,
            settings: &settings,
            destination: Path::new("/bk"),
            free: case.free,
            resolved: &resolved,
            host_log: case.host_log,
            last_ratio: case.last_ratio,
            numbering: &numbering,
            threads: 1,
        })
    }

    #[test]
    fn phases_split_data_and_inner_attachments_structure_then_other_attachments() {
        let p = run(Case::default()).unwrap();
        let paths = |v: &[SourceEntry]| v.iter().map(|e| e.path.clone()).collect::<Vec<_>>();
        assert_eq!(
            paths(&p.data),
            ["Data/App.4DD", "Attachments/app/Data/App.4DIndx"]
        );
        assert_eq!(paths(&p.structure), ["Project/App.4DProject"]);
        assert_eq!(paths(&p.attachments), ["Attachments/etc/hosts"]);
        assert_eq!(p.total, 1111);
        assert_eq!(p.data_stamp, Some((1000, 7)));
        assert_eq!(p.notes, ["skipped /app/Data/fifo: a FIFO"]);
    }

    #[test]
    fn sets_are_numbered_and_the_log_backup_pairs_with_the_previous_number() {
        let p = run(Case {
            log: LogState::Sauve { records: true },
            ..Case::default()
        })
        .unwrap();
        assert_eq!(p.number, 42);
        assert_eq!(p.backup.spec.number, 42);
        assert_eq!(p.backup.header.backup_number, 42);
        assert_eq!(p.backup.header.structure_path, "/app/Project/App.4DProject");
        assert_eq!(p.backup.header.trigger, "scheduled");
        assert_eq!(p.backup.header.settings_digest, "digest");
        let log = p.log.unwrap();
        assert_eq!((log.spec.kind, log.spec.number), (SetKind::Log, 41.into()));
        assert_eq!(log.header.settings_digest, "");
    }

    #[test]
    fn the_log_is_cut_only_when_it_is_a_sauve_log_or_the_host_gives_one() {
        type Row = (LogState, bool, fn(&mut Settings), bool);
        let table: &[Row] = &[
            (LogState::Absent, false, |_| {}, false),
            (LogState::Absent, true, |_| {}, true),
            (LogState::Sauve { records: false }, false, |_| {}, true),
            (LogState::Foreign, false, |_| {}, false),
            (
                LogState::Sauve { records: true },
                false,
                |s| s.legacy.journal_file_enabled = Some(false),
                false,
            ),
            (
                LogState::Sauve { records: true },
                true,
                |s| s.general.include_data_file = false,
                false,
            ),
        ];
        for (i, (log, host_log, settings, cut)) in table.iter().enumerate() {
            let p = run(Case {
                log: *log,
                host_log: *host_log,
                settings: *settings,
                ..Case::default()
            })
            .unwrap();
            assert_eq!(p.log.is_some(), *cut, "row {i}");
        }
        let foreign = run(Case {
            log: LogState::Foreign,
            ..Case::default()
        })
        .unwrap();
        assert!(
            foreign
                .notes
                .iter()
                .any(|n| n.contains("is not a sauve log"))
        );
    }

    #[test]
    fn a_declared_log_that_is_missing_gives_1403() {
        let e = run(Case {
            settings: |s| s.legacy.journal_file_enabled = Some(true),
            ..Case::default()
        })
        .unwrap_err();
        assert_eq!(e.status(), Status::LogFileMissing);
        // The host's writer counts as the log.
        assert!(
            run(Case {
                settings: |s| s.legacy.journal_file_enabled = Some(true),
                host_log: true,
                ..Case::default()
            })
            .is_ok()
        );
    }

    #[test]
    fn retention_runs_after_with_value_or_before_with_value_minus_one() {
        type Row = (fn(&mut Settings), Retention);
        let table: &[Row] = &[
            (
                |_| {},
                Retention {
                    before: None,
                    after: Some(3),
                },
            ),
            (
                |s| s.advanced.erase_old_backup_before = true,
                Retention {
                    before: Some(2),
                    after: None,
                },
            ),
            (
                |s| s.advanced.set_number.enable = false,
                Retention::default(),
            ),
            (
                |s| s.advanced.set_number.value = 7,
                Retention {
                    before: None,
                    after: Some(7),
                },
            ),
        ];
        for (i, (settings, want)) in table.iter().enumerate() {
            let p = run(Case {
                settings: *settings,
                ..Case::default()
            })
            .unwrap();
            assert_eq!(p.retention, *want, "row {i}");
        }
    }

    #[test]
    fn the_estimate_uses_the_last_ratio_plus_ten_percent_and_gives_minus_34() {
        // Fast (the default) with a last ratio of 0.5: 1111 × 0.5 × 1.1.
        let p = run(Case {
            last_ratio: Some(0.5),
            ..Case::default()
        })
        .unwrap();
        assert_eq!(p.estimate, 612);
        let e = run(Case {
            last_ratio: Some(0.5),
            free: 611,
            ..Case::default()
        })
        .unwrap_err();
        assert_eq!(e.status(), Status::DiskFull);
        // Uncompressed, the ratio is 1 whatever the last one was.
        let none = run(Case {
            settings: |s| s.advanced.compression_rate = Compression::None,
            last_ratio: Some(0.1),
            ..Case::default()
        })
        .unwrap();
        assert_eq!(none.estimate, 1223);
        assert!(!none.compressed);
        // With EraseOldBackupBefore the sets about to go count as free.
        assert!(
            run(Case {
                settings: |s| s.advanced.erase_old_backup_before = true,
                free: 0,
                ..Case::default()
            })
            .is_ok()
        );
    }

    #[test]
    fn unchanged_data_without_new_log_records_postpones() {
        let last = Some(DataStamp {
            number: 9.into(),
            size: 10,
            mtime: 5,
        });
        let facts = |data, log| DataFacts { data, log };
        let table: &[(Option<DataStamp>, DataFacts, bool, bool)] = &[
            (last, facts(Some((10, 5)), LogState::Absent), false, true),
            (
                last,
                facts(Some((10, 5)), LogState::Sauve { records: false }),
                false,
                true,
            ),
            (
                last,
                facts(Some((10, 5)), LogState::Sauve { records: true }),
                false,
                false,
            ),
            (last, facts(Some((10, 6)), LogState::Absent), false, false),
            (last, facts(Some((11, 5)), LogState::Absent), false, false),
            (last, facts(None, LogState::Absent), false, false),
            (None, facts(Some((10, 5)), LogState::Absent), false, false),
            // A host log that is not on disk as a sauve log: cannot tell, back up.
            (last, facts(Some((10, 5)), LogState::Absent), true, false),
            (last, facts(Some((10, 5)), LogState::Foreign), false, false),
        ];
        for (i, (last, now, host, postponed)) in table.iter().enumerate() {
            let r = postpone_reason(*last, *now, *host);
            assert_eq!(r.is_some(), *postponed, "row {i}");
        }
        assert_eq!(
            postpone_reason(last, facts(Some((10, 5)), LogState::Absent), false).unwrap(),
            "data unchanged since backup 9"
        );
    }
}
