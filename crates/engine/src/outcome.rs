//! From what a run did to what is recorded (behaviour §5 steps 14 to 16,
//! §11, §12 and §15): the status, the report, the Backup Journal entry, the
//! history entry and the last-backup information. Pure: the run hands over
//! what it learned, the keepers of the record files write what comes out.

use sauve_number::BackupNumber;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sauve_archive::Attachment;
use sauve_history::{HistoryAttachment, HistoryEntry, HistoryFile, LockWindows, Operation};
use sauve_journal::{AttachmentLine, Entry, Stamp, Title};
use sauve_status::Status;

use crate::api::{BackupReport, Scheduled, Trigger};
use crate::error::EngineError;
use crate::state::{DataStamp, LastBackup};

/// What a run learned on its way, whatever its end.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Learned {
    /// The destination, once resolved.
    pub(crate) destination: Option<PathBuf>,
    /// The number the plan gave (the report says 0 unless an archive was committed).
    pub(crate) number: BackupNumber,
    /// Every attachment of the settings and whether it was found.
    pub(crate) attachments: Vec<Attachment>,
    /// Files retention deleted.
    pub(crate) deleted: Vec<PathBuf>,
    /// Backup numbers whose sets retention removed.
    pub(crate) removed_numbers: Vec<BackupNumber>,
    /// The committed `.4BK` files.
    pub(crate) archives: Vec<PathBuf>,
    /// The committed `.4BL` files.
    pub(crate) log_archives: Vec<PathBuf>,
    /// The archive's files, for the history.
    pub(crate) manifest_files: Vec<HistoryFile>,
    /// What the committed files (the log backup's included) hold as
    /// stored, piece by piece (behaviour §23).
    pub(crate) stored: Vec<sauve_archive::Pieces>,
    pub(crate) data_lock: Option<Duration>,
    /// How the data-kind files were taken under the data lock (cloned,
    /// or copied and why), for the journal's lock line.
    pub(crate) data_lock_how: Option<String>,
    pub(crate) structure_lock: Option<Duration>,
    /// Journal notes.
    pub(crate) notes: Vec<String>,
    /// Warnings (also sent as events).
    pub(crate) warnings: Vec<String>,
    /// Whether the startup hook ran (the shutdown hook then runs too).
    pub(crate) startup_ran: bool,
    /// Archive size over content size, for the next estimate.
    pub(crate) ratio: Option<f64>,
    /// The data file's size and mtime when the archive holds it.
    pub(crate) data_stamp: Option<(u64, i64)>,
    /// Retention's limit on history entries (999 when SetNumber is off).
    pub(crate) history_limit: Option<usize>,
    /// The set this run's set builds on, when incremental (behaviour §21).
    pub(crate) parent: Option<BackupNumber>,
}

impl Learned {
    fn attachment_path(a: &Attachment) -> String {
        a.path
            .as_ref()
            .map_or(a.written.clone(), |p| p.display().to_string())
    }
}

/// The status of a run that ended with `result` (behaviour §8.2): the error's,
/// else -43 when an attachment was missing, else 0; and the errors to
/// report. A failed scheduled attempt that `gives_up` (behaviour §9.1) is 1401,
/// its own status and errors reported under it.
pub(crate) fn settle(
    result: &Result<(), EngineError>,
    learned: &Learned,
    gives_up: bool,
) -> (Status, Vec<String>) {
    let (status, errors) = settle_run(result, learned);
    if gives_up && !status.is_success() {
        let mut all = vec![status.to_string()];
        all.extend(errors);
        return (Status::MaxAttemptsReached, all);
    }
    (status, errors)
}

fn settle_run(result: &Result<(), EngineError>, learned: &Learned) -> (Status, Vec<String>) {
    match result {
        Err(e) => (e.status(), vec![e.to_string()]),
        Ok(()) => {
            let missing: Vec<String> = learned
                .attachments
                .iter()
                .filter(|a| !a.found)
                .map(|a| format!("not found: {}", Learned::attachment_path(a)))
                .collect();
            if missing.is_empty() {
                (Status::Ok, Vec::new())
            } else {
                (Status::AttachmentNotFound, missing)
            }
        }
    }
}

/// A finished run, ready to be recorded.
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    pub(crate) run: u64,
    pub(crate) trigger: Trigger,
    pub(crate) scheduled: Option<Scheduled>,
    pub(crate) started: Timestamp,
    pub(crate) ended: Timestamp,
    pub(crate) status: Status,
    pub(crate) errors: Vec<String>,
    /// The history key (the structure file).
    pub(crate) key: String,
    /// The data file.
    pub(crate) data_path: PathBuf,
    pub(crate) learned: Learned,
}

/// Where and what the history records for a run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HistoryRecord {
    pub(crate) destination: PathBuf,
    pub(crate) key: String,
    pub(crate) entry: HistoryEntry,
    pub(crate) limit: usize,
    pub(crate) removed: Vec<BackupNumber>,
}

fn display(p: &std::path::Path) -> String {
    p.display().to_string()
}

impl Outcome {
    /// The backup number: 0 unless an archive was committed.
    pub(crate) fn number(&self) -> BackupNumber {
        if self.learned.archives.is_empty() {
            BackupNumber::NONE
        } else {
            self.learned.number
        }
    }

    fn local(zone: &TimeZone, t: Timestamp) -> Stamp {
        Stamp::at(zone.to_datetime(t))
    }

    /// The Backup Journal entry (behaviour §11.1): `Full Backup`, `Backup stopped`
    /// or `Full Backup aborted`.
    pub(crate) fn journal_entry(&self, zone: &TimeZone) -> Entry {
        let l = &self.learned;
        let title = match self.status {
            Status::Ok | Status::AttachmentNotFound => Title::FullBackup,
            Status::Stopped => Title::BackupStopped,
            _ => Title::FullBackupAborted,
        };
        let mut e = Entry::new(title);
        e.creating_archive = l.archives.first().map(|p| display(p));
        e.creating_log_backup = l.log_archives.first().map(|p| display(p));
        e.deleted = l.deleted.iter().map(|p| display(p)).collect();
        e.attachments = l
            .attachments
            .iter()
            .map(|a| AttachmentLine {
                path: Learned::attachment_path(a),
                found: Some(a.found),
            })
            .collect();
        e.notes = l.notes.clone();
        e.trigger = Some(self.trigger.as_str().to_owned());
        if let Some(s) = self.scheduled {
            e.scheduled = Some(Self::local(zone, s.slot));
            e.attempt = (s.attempt > 1).then_some(s.attempt);
        }
        e.starting = Some(Self::local(zone, self.started));
        e.ending = Some(Self::local(zone, self.ended));
        e.data_lock = l.data_lock;
        e.data_lock_how = l.data_lock_how.clone();
        e.structure_lock = l.structure_lock;
        e.status = Some(self.status.code());
        e.errors = self.errors.clone();
        e
    }

    /// The history entry (behaviour §12), when the destination is known.
    pub(crate) fn history(&self) -> Option<HistoryRecord> {
        let l = &self.learned;
        let destination = l.destination.clone()?;
        let date = sauve_history::format_date;
        let ms = |d: Duration| d.as_millis() as u64;
        let committed = !l.archives.is_empty();
        let entry = HistoryEntry {
            backup_path: l.archives.first().map(|p| display(p)).unwrap_or_default(),
            structure_path: self.key.clone(),
            data_path: display(&self.data_path),
            log_path: l
                .log_archives
                .first()
                .map(|p| display(p))
                .unwrap_or_default(),
            starting_date: date(self.started),
            ending_date: date(self.ended),
            scheduled_date: date(self.scheduled.map_or(self.started, |s| s.slot)),
            status: Some(self.status.code()),
            backup_number: self.number(),
            duration: self.ended.duration_since(self.started).as_millis().max(0) as u64,
            attachments: l
                .attachments
                .iter()
                .map(|a| HistoryAttachment {
                    attachment_path: Learned::attachment_path(a),
                    found: a.found,
                    extra: Default::default(),
                })
                .collect(),
            operation: Some(Operation::Backup),
            trigger: Some(self.trigger.as_str().to_owned()),
            lock_windows: Some(LockWindows {
                data: l.data_lock.map(ms),
                structure: l.structure_lock.map(ms),
            }),
            segments: committed.then(|| l.archives.iter().map(|p| display(p)).collect()),
            files: committed.then(|| l.manifest_files.clone()),
            stored: (committed && !l.stored.is_empty()).then(|| l.stored.clone()),
            offsite: None,
            parent: committed.then_some(l.parent).flatten(),
            extra: Default::default(),
        };
        Some(HistoryRecord {
            destination,
            key: self.key.clone(),
            entry,
            limit: l.history_limit.unwrap_or(sauve_history::UNLIMITED),
            removed: l.removed_numbers.clone(),
        })
    }

    /// The last-backup information (behaviour §15), and what the next runs need:
    /// the compression ratio and, after a successful backup with data, the
    /// data file's identity (behaviour §9.3).
    pub(crate) fn last_backup(&self) -> (LastBackup, Option<f64>, Option<DataStamp>) {
        let l = &self.learned;
        let last = LastBackup {
            number: self.number(),
            status: self.status,
            trigger: self.trigger,
            started: self.started,
            ended: self.ended,
            archive: l.archives.first().cloned(),
            log_archive: l.log_archives.first().cloned(),
            data_lock: l.data_lock,
            structure_lock: l.structure_lock,
        };
        let data = l
            .data_stamp
            .filter(|_| self.status.is_success() && self.number() > BackupNumber::NONE)
            .map(|(size, mtime)| DataStamp {
                number: self.number(),
                size,
                mtime,
            });
        (last, l.ratio, data)
    }

    /// The report the caller gets.
    pub(crate) fn report(&self) -> BackupReport {
        let l = &self.learned;
        BackupReport {
            run: self.run,
            status: self.status,
            number: self.number(),
            archives: l.archives.clone(),
            trigger: self.trigger,
            started: self.started,
            ended: self.ended,
            data_lock: l.data_lock,
            structure_lock: l.structure_lock,
            errors: self.errors.clone(),
            notes: l.notes.clone(),
            warnings: l.warnings.clone(),
            postponed: false,
        }
    }
}

/// The alert a finished backup raises (behaviour §17.2), if any: the give-up
/// (1401) always; a failure (not 0 or -43) with `on = "failure"` or
/// `"always"`; every other end with `"always"` (the heartbeat).
pub(crate) fn alert_kind(
    on: sauve_settings::AlertOn,
    status: Status,
) -> Option<sauve_alerts::AlertKind> {
    use sauve_alerts::AlertKind;
    use sauve_settings::AlertOn;
    match (status, on) {
        (Status::MaxAttemptsReached, _) => Some(AlertKind::GiveUp),
        (s, AlertOn::Failure | AlertOn::Always) if !s.is_success() => Some(AlertKind::Failure),
        (_, AlertOn::Always) => Some(AlertKind::Heartbeat),
        _ => None,
    }
}

impl Outcome {
    /// The alert of this run, when it raises one.
    pub(crate) fn alert(
        &self,
        on: sauve_settings::AlertOn,
    ) -> Option<crate::actors::alerts::messages::AlertDraft> {
        let kind = alert_kind(on, self.status)?;
        let failed = !self.status.is_success();
        Some(crate::actors::alerts::messages::AlertDraft {
            kind,
            status: self.status,
            trigger: self.trigger.as_str().to_owned(),
            number: self.number(),
            scheduled: self.scheduled.map(|s| s.slot),
            started: Some(self.started),
            ended: Some(self.ended),
            errors: self.errors.clone(),
            failures: self.scheduled.map_or(0, |s| s.failures + u32::from(failed)),
        })
    }
}

/// The report of a request refused at admission (behaviour §5 step 1): nothing
/// ran, number 0; `postponed` for a scheduled slot, which is journaled as
/// "Backup postponed".
pub(crate) fn refusal(
    run: u64,
    trigger: Trigger,
    now: Timestamp,
    why: &EngineError,
) -> BackupReport {
    BackupReport {
        run,
        status: why.status(),
        number: BackupNumber::NONE,
        archives: Vec::new(),
        trigger,
        started: now,
        ended: now,
        data_lock: None,
        structure_lock: None,
        errors: vec![why.to_string()],
        notes: Vec::new(),
        warnings: Vec::new(),
        postponed: trigger == Trigger::Scheduled,
    }
}

/// The report of a scheduled run postponed by BackupIfDataChange (behaviour §9.3).
pub(crate) fn postponed(run: u64, started: Timestamp, reason: String) -> BackupReport {
    BackupReport {
        run,
        status: Status::Ok,
        number: BackupNumber::NONE,
        archives: Vec::new(),
        trigger: Trigger::Scheduled,
        started,
        ended: started,
        data_lock: None,
        structure_lock: None,
        errors: Vec::new(),
        notes: vec![reason],
        warnings: Vec::new(),
        postponed: true,
    }
}

/// The "Backup postponed" entry (behaviour §11.2): the slot, when, why and the
/// next slot.
pub(crate) fn postponed_entry(
    zone: &TimeZone,
    scheduled: Option<Timestamp>,
    started: Timestamp,
    reason: &str,
    next: Option<Timestamp>,
) -> Entry {
    let local = |t: Timestamp| Stamp::at(zone.to_datetime(t));
    let mut e = Entry::new(Title::BackupPostponed);
    e.scheduled = scheduled.map(local);
    e.starting = Some(local(started));
    e.reason = Some(reason.to_owned());
    e.next_scheduled = next.map(local);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn attachment(path: &str, found: bool) -> Attachment {
        Attachment {
            written: path.to_owned(),
            path: Some(PathBuf::from(path)),
            found,
            reason: None,
        }
    }

    fn learned() -> Learned {
        Learned {
            destination: Some(PathBuf::from("/bk")),
            number: 42.into(),
            attachments: vec![
                attachment("/app/Data/data.4DIndx", true),
                attachment("/app/Data/data.4DSyncData", false),
            ],
            deleted: vec![PathBuf::from("/bk/data[0039].4BK")],
            removed_numbers: vec![39.into()],
            archives: vec![PathBuf::from("/bk/data[0042].4BK")],
            log_archives: vec![PathBuf::from("/bk/data[0041].4BL")],
            manifest_files: vec![HistoryFile {
                path: "Data/data.4DD".to_owned(),
                size: 4,
                blake3: "ab".to_owned(),
            }],
            data_lock: Some(Duration::from_millis(12_408)),
            data_stamp: Some((4, 9)),
            ratio: Some(0.4),
            history_limit: Some(3),
            ..Learned::default()
        }
    }

    fn outcome(result: Result<(), EngineError>, learned: Learned) -> Outcome {
        let (status, errors) = settle(&result, &learned, false);
        Outcome {
            run: 5,
            trigger: Trigger::Scheduled,
            scheduled: Some(Scheduled {
                slot: t("2025-03-14T01:00:00Z"),
                attempt: 2,
                last_allowed: false,
                failures: 1,
            }),
            started: t("2025-03-14T01:00:01Z"),
            ended: t("2025-03-14T01:03:27Z"),
            status,
            errors,
            key: "/app/Project/data.4DProject".to_owned(),
            data_path: PathBuf::from("/app/Data/data.4DD"),
            learned,
        }
    }

    #[test]
    fn the_status_is_the_errors_else_minus_43_for_a_missing_attachment_else_0() {
        let mut all_found = learned();
        all_found.attachments.truncate(1);
        type Row = (Result<(), EngineError>, Learned, Status, Vec<&'static str>);
        let table: Vec<Row> = vec![
            (Ok(()), all_found.clone(), Status::Ok, vec![]),
            (
                Ok(()),
                learned(),
                Status::AttachmentNotFound,
                vec!["not found: /app/Data/data.4DSyncData"],
            ),
            (
                Err(EngineError::Stopped),
                learned(),
                Status::Stopped,
                vec!["stopped by the user"],
            ),
            (
                Err(EngineError::HookRefused { code: 7 }),
                all_found,
                Status::Hook(7),
                vec!["the startup hook refused the backup (7)"],
            ),
        ];
        for (i, (result, learned, status, errors)) in table.into_iter().enumerate() {
            let (s, e) = settle(&result, &learned, false);
            assert_eq!(
                (s, e.iter().map(String::as_str).collect::<Vec<_>>()),
                (status, errors),
                "row {i}"
            );
        }
    }

    #[test]
    fn the_attempt_that_gives_up_is_1401_with_its_own_error_under_it() {
        let failed = Err(EngineError::LogMissing {
            path: "/app/Data/data.journal".into(),
        });
        let (status, errors) = settle(&failed, &learned(), true);
        assert_eq!(status, Status::MaxAttemptsReached);
        assert_eq!(
            errors,
            [
                "1403 Log file missing",
                "the log file \"/app/Data/data.journal\" is missing (JournalFileEnabled is True)"
            ]
        );
        // A success, partial included, gives nothing up.
        assert_eq!(
            settle(&Ok(()), &learned(), true).0,
            Status::AttachmentNotFound
        );
    }

    #[test]
    fn alerts_are_raised_on_give_up_always_and_otherwise_as_configured() {
        use sauve_alerts::AlertKind as K;
        use sauve_settings::AlertOn as On;
        let table: &[(On, Status, Option<K>)] = &[
            (On::GiveUp, Status::MaxAttemptsReached, Some(K::GiveUp)),
            (On::GiveUp, Status::DestinationInvalid, None),
            (On::GiveUp, Status::Ok, None),
            (On::Failure, Status::DestinationInvalid, Some(K::Failure)),
            (On::Failure, Status::AttachmentNotFound, None),
            (On::Failure, Status::MaxAttemptsReached, Some(K::GiveUp)),
            (On::Always, Status::Ok, Some(K::Heartbeat)),
            (On::Always, Status::AttachmentNotFound, Some(K::Heartbeat)),
            (On::Always, Status::Stopped, Some(K::Failure)),
        ];
        for (on, status, want) in table {
            assert_eq!(alert_kind(*on, *status), *want, "{on:?} {status:?}");
        }
        // The scheduled run's failure counter includes this failure.
        let o = outcome(Err(EngineError::Stopped), learned());
        let draft = o.alert(On::Failure).unwrap();
        assert_eq!((draft.failures, draft.status), (2, Status::Stopped));
    }

    #[test]
    fn the_journal_title_follows_the_status() {
        let table: Vec<(Result<(), EngineError>, Title)> = vec![
            (Ok(()), Title::FullBackup),
            (Err(EngineError::Stopped), Title::BackupStopped),
            (
                Err(EngineError::DiskFull {
                    path: "/bk".into(),
                    needed: 2,
                    free: 1,
                }),
                Title::FullBackupAborted,
            ),
        ];
        let zone = TimeZone::UTC;
        for (result, title) in table {
            let e = outcome(result, learned()).journal_entry(&zone);
            assert_eq!(e.title, Some(title));
        }
    }

    #[test]
    fn a_successful_run_is_recorded_everywhere_with_its_number_and_files() {
        let o = outcome(Ok(()), learned());
        let zone = TimeZone::UTC;
        let e = o.journal_entry(&zone);
        assert_eq!(e.creating_archive.as_deref(), Some("/bk/data[0042].4BK"));
        assert_eq!(e.creating_log_backup.as_deref(), Some("/bk/data[0041].4BL"));
        assert_eq!(e.deleted, ["/bk/data[0039].4BK"]);
        assert_eq!(
            e.scheduled.as_ref().map(|s| s.raw.as_str()),
            Some("2025-03-14 01:00:00")
        );
        assert_eq!(e.status, Some(-43));
        assert_eq!(e.attempt, Some(2));
        let h = o.history().unwrap();
        assert_eq!(h.destination, PathBuf::from("/bk"));
        assert_eq!((h.limit, h.removed.as_slice()), (3, &[39.into()][..]));
        assert_eq!(h.entry.backup_number, 42);
        assert_eq!(h.entry.duration, 206_000);
        assert_eq!(h.entry.scheduled_date, "2025-03-14T01:00:00.000Z");
        assert_eq!(h.entry.lock_windows.as_ref().unwrap().data, Some(12_408));
        assert_eq!(h.entry.files.as_ref().unwrap().len(), 1);
        let (last, ratio, data) = o.last_backup();
        assert_eq!(
            (last.number, last.status, last.trigger),
            (42.into(), Status::AttachmentNotFound, Trigger::Scheduled)
        );
        assert_eq!(ratio, Some(0.4));
        assert_eq!(
            data,
            Some(DataStamp {
                number: 42.into(),
                size: 4,
                mtime: 9
            })
        );
        assert_eq!(o.report().number, 42);
    }

    #[test]
    fn a_failed_run_has_number_0_no_segments_and_leaves_the_data_stamp() {
        let mut l = learned();
        l.archives.clear();
        l.log_archives.clear();
        let o = outcome(Err(EngineError::Stopped), l);
        assert_eq!(o.number(), 0);
        assert_eq!(o.report().number, 0);
        let h = o.history().unwrap();
        assert_eq!(h.entry.backup_path, "");
        assert_eq!(h.entry.log_path, "");
        assert!(h.entry.segments.is_none() && h.entry.files.is_none());
        assert_eq!(o.last_backup().2, None);
        // Without a destination there is no history to write.
        let mut l = learned();
        l.destination = None;
        assert!(outcome(Err(EngineError::Stopped), l).history().is_none());
    }

    #[test]
    fn a_refused_request_reports_its_status_and_a_scheduled_one_is_postponed() {
        let now = t("2025-03-14T01:00:00Z");
        let r = refusal(3, Trigger::Remote, now, &EngineError::IntegrationRunning);
        assert_eq!(
            (r.run, r.status, r.number, r.postponed),
            (3, Status::IntegrationRunning, 0.into(), false)
        );
        let s = refusal(4, Trigger::Scheduled, now, &EngineError::IntegrationRunning);
        assert!(s.postponed);
    }
}
