//! One backup run, step by step (SPEC section 5). The coordinator spawns it;
//! it talks to the worker actors by message and never does file IO itself.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::{Addr, Handler, Message};
use sauve_archive::{
    ArchiveError, ArchiveWriter, Content, EntryType, ManifestHeader, PendingSet, SetKind, SetSpec,
    SourceEntry,
};
use sauve_history::{HistoryAttachment, HistoryEntry, HistoryFile, LockWindows, Operation};
use sauve_journal::{AttachmentLine, Entry, Stamp, Title};
use sauve_locking::Kind;
use sauve_settings::{AppLayout, Settings, resolve_path};
use sauve_status::Status;
use tokio::sync::broadcast;

use crate::actors::coordinator::Workers;
use crate::actors::coordinator::messages::TakeBackupLock;
use crate::actors::workers::messages::*;
use crate::api::{BackupEvent, BackupReport, EngineOptions, Phase, ShutdownInfo, Trigger};
use crate::progress::RunProgress;
use crate::state::LastBackup;

/// Everything one run needs.
pub(crate) struct Run {
    pub(crate) id: u64,
    pub(crate) trigger: Trigger,
    pub(crate) scheduled: Option<jiff::Timestamp>,
    pub(crate) layout: AppLayout,
    pub(crate) options: EngineOptions,
    pub(crate) workers: Workers,
    pub(crate) events: broadcast::Sender<BackupEvent>,
    pub(crate) stop: Arc<AtomicBool>,
}

/// A report for a run refused at admission: nothing is recorded.
pub(crate) fn refused(
    trigger: Trigger,
    now: jiff::Timestamp,
    status: Status,
    why: &str,
) -> BackupReport {
    BackupReport {
        status,
        number: 0,
        archives: Vec::new(),
        trigger,
        started: now,
        ended: now,
        data_lock: None,
        structure_lock: None,
        errors: vec![why.to_owned()],
        notes: Vec::new(),
        postponed: false,
    }
}

/// Why the run ends early: a status and the error to report.
struct Failed(Status, String);

impl From<ArchiveError> for Failed {
    fn from(e: ArchiveError) -> Failed {
        Failed(e.status(), e.to_string())
    }
}

/// Sends a message to a worker; a dead actor is a 1409.
async fn ask<A, M>(addr: &Addr<A>, msg: M) -> Result<M::Result, Failed>
where
    A: actix::Actor + Handler<M>,
    A::Context: actix::dev::ToEnvelope<A, M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    addr.send(msg).await.map_err(|e| {
        Failed(
            Status::BackupError,
            format!("internal error: an engine actor is gone ({e})"),
        )
    })
}

/// What the run learned on its way, for the records.
#[derive(Default)]
struct Record {
    settings: Option<Settings>,
    settings_xml: String,
    destination: Option<PathBuf>,
    number: u32,
    content: Option<Content>,
    deleted: Vec<PathBuf>,
    removed_numbers: Vec<u32>,
    archives: Vec<PathBuf>,
    manifest_files: Vec<HistoryFile>,
    data_lock: Option<Duration>,
    structure_lock: Option<Duration>,
    notes: Vec<String>,
    startup_ran: bool,
    /// Archive size over content size, for the next free-space estimate.
    ratio: Option<f64>,
    /// The committed log backup files.
    log_archives: Vec<PathBuf>,
    /// Why a scheduled run was postponed (BackupIfDataChange).
    postponed: Option<String>,
    /// The data file's size and mtime, when the archive holds it.
    data_stamp: Option<(u64, i64)>,
}

impl Run {
    fn emit(&self, event: BackupEvent) {
        let _ = self.events.send(event);
    }

    fn phase(&self, phase: Phase) {
        self.emit(BackupEvent::Phase {
            run: self.id,
            phase,
        });
    }

    fn stopped(&self) -> Result<(), Failed> {
        if self.stop.load(Ordering::Relaxed) {
            Err(Failed(Status::Stopped, "stopped by the user".to_owned()))
        } else {
            Ok(())
        }
    }

    fn logs(&self) -> PathBuf {
        self.layout.app.join("Logs")
    }

    /// The whole run; always returns a report, whatever failed.
    pub(crate) async fn execute(self) -> BackupReport {
        let _span =
            tracing::info_span!("backup", run = self.id, trigger = self.trigger.as_str()).entered();
        let started = self.options.clock.now();
        let mut rec = Record::default();
        // Admission across processes (SPEC 5 step 1): the app's advisory lock.
        let app_lock = match ask(
            &self.workers.copier,
            LockFiles {
                paths: vec![self.logs().join("sauve.lock")],
            },
        )
        .await
        {
            Ok(Ok(files)) => files,
            Ok(Err(why)) => return refused(self.trigger, started, Status::AlreadyRunning, &why),
            Err(Failed(status, why)) => return refused(self.trigger, started, status, &why),
        };
        let outcome = self.steps(&mut rec, started).await;
        if let (Ok(()), Some(reason)) = (&outcome, rec.postponed.clone()) {
            return self.postponed(&rec, started, reason, app_lock).await;
        }
        let (status, errors) = match outcome {
            Ok(()) if rec.content.as_ref().is_some_and(Content::is_partial) => {
                let missing: Vec<String> = rec
                    .content
                    .iter()
                    .flat_map(|c| &c.attachments)
                    .filter(|a| !a.found)
                    .map(|a| {
                        format!(
                            "not found: {}",
                            a.path
                                .as_ref()
                                .map_or(a.written.clone(), |p| p.display().to_string())
                        )
                    })
                    .collect();
                (Status::AttachmentNotFound, missing)
            }
            Ok(()) => (Status::Ok, Vec::new()),
            Err(Failed(status, why)) => (status, vec![why]),
        };
        let ended = self.options.clock.now();
        let report = BackupReport {
            status,
            number: if rec.archives.is_empty() {
                0
            } else {
                rec.number
            },
            archives: rec.archives.clone(),
            trigger: self.trigger,
            started,
            ended,
            data_lock: rec.data_lock,
            structure_lock: rec.structure_lock,
            errors,
            notes: rec.notes.clone(),
            postponed: false,
        };
        self.record(&rec, &report).await;
        // Shutdown hook with the final status, whenever the startup hook ran.
        if rec.startup_ran
            && let Some(hook) = &self.options.hooks.on_shutdown
        {
            hook(ShutdownInfo {
                status: report.status,
                trigger: self.trigger,
                archive: report.archives.first().cloned(),
            })
            .await;
        }
        self.save_state(&rec, &report).await;
        drop(app_lock);
        self.emit(BackupEvent::Finished {
            run: self.id,
            status: report.status.code(),
            status_text: report.status.text().to_owned(),
            number: report.number,
            archives: report.archives.clone(),
        });
        report
    }

    /// Steps 2 to 13; an early return is the run's failure.
    async fn steps(&self, rec: &mut Record, started: jiff::Timestamp) -> Result<(), Failed> {
        // 2. Settings, then the journal rotation check (failing runs rotate too).
        let loaded = ask(
            &self.workers.resolver,
            LoadSettings {
                app: self.layout.app.clone(),
            },
        )
        .await?;
        let _ = ask(&self.workers.journal, RotateJournal { logs: self.logs() }).await;
        let loaded = loaded.map_err(|e| Failed(Status::InvalidSettings, e))?;
        for w in &loaded.warnings {
            self.emit(BackupEvent::Warning {
                run: self.id,
                message: w.clone(),
            });
        }
        let settings = loaded.settings;
        rec.settings = Some(settings.clone());
        rec.settings_xml = loaded.xml;

        // 3. Data-change check (scheduled runs with BackupIfDataChange).
        if self.trigger == Trigger::Scheduled && settings.advanced.backup_if_data_change {
            let state = ask(
                &self.workers.history,
                LoadState {
                    app: self.layout.app.clone(),
                },
            )
            .await?;
            let now = ask(
                &self.workers.resolver,
                StatData {
                    path: self.layout.data_file.clone(),
                },
            )
            .await?;
            // The log holds no records since the last cut: nothing was written.
            let log_empty = ask(
                &self.workers.resolver,
                LogHasRecords {
                    path: self.layout.log_file.clone(),
                },
            )
            .await?
                == Some(false);
            let no_log = self.options.log.is_none()
                && ask(
                    &self.workers.resolver,
                    CheckLog {
                        path: self.layout.log_file.clone(),
                    },
                )
                .await?
                .is_none();
            if let (Some(last), Some(now)) = (state.and_then(|s| s.last_data), now)
                && last.size == now.0
                && last.mtime == now.1
                && (log_empty || no_log)
            {
                rec.postponed = Some(format!("data unchanged since backup {}", last.number));
                return Ok(());
            }
        }

        // 4. Startup hook.
        if let Some(hook) = &self.options.hooks.on_startup {
            rec.startup_ran = true;
            let code = hook(self.trigger).await;
            if code != 0 {
                return Err(Failed(
                    Status::from_code(code),
                    format!("the startup hook refused the backup ({code})"),
                ));
            }
        }
        self.stopped()?;

        // 5. Pre-checks.
        self.phase(Phase::Precheck);
        let destination = resolve_path(&self.layout.app, &settings.general.destination_folder)
            .map_err(|e| Failed(Status::DestinationInvalid, e.to_string()))?
            .path;
        rec.destination = Some(destination.clone());
        let free = ask(
            &self.workers.copier,
            PrepareDestination {
                path: destination.clone(),
            },
        )
        .await?
        .map_err(|(s, e)| Failed(s, e))?;
        let base = self.layout.base_name();
        let _set_lock = ask(
            &self.workers.copier,
            LockFiles {
                paths: vec![destination.join(format!(".{base}.sauve.lock"))],
            },
        )
        .await?
        .map_err(|e| Failed(Status::AlreadyRunning, e))?;
        let content = ask(
            &self.workers.resolver,
            ResolveContent {
                layout: self.layout.clone(),
                settings: settings.clone(),
                destination: destination.clone(),
            },
        )
        .await??;
        let total = content.total_bytes();
        let state = ask(
            &self.workers.history,
            LoadState {
                app: self.layout.app.clone(),
            },
        )
        .await?;
        let ratio = state
            .and_then(|s| s.last_ratio)
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        let estimate = (total as f64 * ratio * 1.1) as u64;
        for s in &content.skipped {
            rec.notes
                .push(format!("skipped {}: {}", s.path.display(), s.reason));
        }
        rec.data_stamp = content
            .entries
            .iter()
            .find(|e| e.kind == sauve_archive::EntryKind::Data)
            .map(|e| (e.size, e.mtime));
        rec.content = Some(content.clone());
        // The log (O-6): on when JournalFileEnabled says so, or the host
        // declares one, or the file exists; cut only when it is a sauve log.
        let log_state = ask(
            &self.workers.resolver,
            CheckLog {
                path: self.layout.log_file.clone(),
            },
        )
        .await?;
        let declared = settings.legacy.journal_file_enabled;
        let host_log = self.options.log.clone();
        if declared == Some(true) && log_state.is_none() && host_log.is_none() {
            return Err(Failed(
                Status::LogFileMissing,
                format!("the log file {} is missing", self.layout.log_file.display()),
            ));
        }
        let cut_log = settings.general.include_data_file
            && declared != Some(false)
            && (host_log.is_some() || log_state == Some(true));
        if log_state == Some(false) && declared != Some(false) {
            rec.notes.push(format!(
                "{} is not a sauve log: it is archived as it is, and not cut",
                self.layout.log_file.display()
            ));
        }
        if estimate > free && !settings.advanced.erase_old_backup_before {
            return Err(Failed(
                Status::DiskFull,
                format!(
                    "about {estimate} bytes needed in {}, {free} free",
                    destination.display()
                ),
            ));
        }

        // 6. Number, stale parts, retention before.
        let key = self.structure_key();
        let (numbering, notes) = ask(
            &self.workers.history,
            NextNumber {
                destination: destination.clone(),
                key,
                base: base.clone(),
                now: started,
            },
        )
        .await?
        .map_err(|e| Failed(Status::BackupError, e))?;
        rec.notes.extend(notes);
        rec.notes.extend(numbering.note.clone());
        rec.number = numbering.number;
        let stale = ask(
            &self.workers.copier,
            RemoveStaleParts {
                destination: destination.clone(),
                base: base.clone(),
            },
        )
        .await??;
        for s in stale {
            rec.notes.push(format!(
                "removed {} left by an interrupted run",
                s.display()
            ));
        }
        if settings.advanced.set_number.enable && settings.advanced.erase_old_backup_before {
            self.retention(
                rec,
                &destination,
                &base,
                settings.advanced.set_number.value as usize - 1,
            )
            .await?;
        }

        // 7-9. Copy, phase by phase.
        self.emit(BackupEvent::Started {
            run: self.id,
            trigger: self.trigger,
            number: rec.number,
            total_bytes: total,
        });
        let progress = RunProgress::new(self.id, self.stop.clone(), self.events.clone(), total);
        let spec = self.set_spec(&settings, &destination, &base, rec.number, SetKind::Backup);
        let header = ManifestHeader {
            settings_digest: blake3::hash(rec.settings_xml.as_bytes())
                .to_hex()
                .to_string(),
            ..self.manifest_header(SetKind::Backup, rec.number, &base, started)
        };
        let open_part = self.options.open_part.as_ref().map(|f| f());
        let mut writer = ask(
            &self.workers.copier,
            CreateWriter {
                spec,
                header,
                open_part,
            },
        )
        .await??;
        let data_len = content.data_phase_len(&self.layout);
        let (data, rest) = content.entries.split_at(data_len);
        let (structure, attachments): (Vec<SourceEntry>, Vec<SourceEntry>) = rest
            .iter()
            .cloned()
            .partition(|e| e.kind != sauve_archive::EntryKind::Attachment);
        let lock_timeout = settings.legacy.lock_timeout();
        if !data.is_empty() {
            let cut = cut_log.then(|| CutLog {
                log: self.layout.log_file.clone(),
                previous_number: rec.number.saturating_sub(1),
                writer: host_log.clone(),
            });
            let (w, window) = self
                .locked_phase(
                    writer,
                    (Kind::Data, Phase::Data),
                    data.to_vec(),
                    &progress,
                    lock_timeout,
                    cut,
                )
                .await?;
            writer = w;
            rec.data_lock = Some(window);
        }
        if !structure.is_empty() {
            let (w, window) = self
                .locked_phase(
                    writer,
                    (Kind::Structure, Phase::Structure),
                    structure,
                    &progress,
                    lock_timeout,
                    None,
                )
                .await?;
            writer = w;
            rec.structure_lock = Some(window);
        }
        if !attachments.is_empty() {
            self.phase(Phase::Attachments);
            writer = ask(
                &self.workers.copier,
                CopyEntries {
                    writer,
                    entries: attachments,
                    progress: progress.clone(),
                },
            )
            .await??;
        }
        self.stopped()?;

        // 10. Finish.
        let pending: PendingSet = ask(
            &self.workers.copier,
            FinishSet {
                writer,
                ended: self.options.clock.now(),
            },
        )
        .await??;
        rec.manifest_files = pending
            .manifest()
            .entries
            .iter()
            .filter(|e| e.entry_type == EntryType::File)
            .map(|e| HistoryFile {
                path: e.path.clone(),
                size: e.size,
                blake3: e.blake3.clone().unwrap_or_default(),
            })
            .collect();

        // 10 (cont.). The log backup, from every pending segment.
        let log_backup = if cut_log {
            let previous = rec.number.saturating_sub(1);
            let log_spec = self.set_spec(&settings, &destination, &base, previous, SetKind::Log);
            let header = self.manifest_header(SetKind::Log, previous, &base, started);
            let built = ask(
                &self.workers.copier,
                BuildLogBackup {
                    log: self.layout.log_file.clone(),
                    spec: log_spec,
                    header,
                    open_part: self.options.open_part.as_ref().map(|f| f()),
                    ended: self.options.clock.now(),
                },
            )
            .await?
            .map_err(|e| Failed(Status::LogBackupError, e))?;
            if let Some(b) = &built {
                rec.notes.extend(b.notes.iter().cloned());
            }
            built
        } else {
            None
        };
        let log_backup = match log_backup {
            Some(b) if settings.advanced.check_archive_file_during_backup => {
                let verified = ask(
                    &self.workers.copier,
                    VerifyPending {
                        pending: b.pending,
                        progress: RunProgress::new(
                            self.id,
                            self.stop.clone(),
                            self.events.clone(),
                            0,
                        ),
                    },
                )
                .await?;
                verified.result?;
                Some(crate::logcut::LogBackup {
                    pending: verified.pending,
                    ..b
                })
            }
            other => other,
        };

        // 11. Verify.
        let pending = if settings.advanced.check_archive_file_during_backup {
            self.phase(Phase::Verify);
            let verified = ask(
                &self.workers.copier,
                VerifyPending {
                    pending,
                    // Verification reports its own pass over the bytes.
                    progress: RunProgress::new(
                        self.id,
                        self.stop.clone(),
                        self.events.clone(),
                        total,
                    ),
                },
            )
            .await?;
            verified.result?;
            verified.pending
        } else {
            pending
        };
        self.stopped()?;

        // 12. Commit: Stop is ignored from here.
        self.phase(Phase::Commit);
        if let Some(b) = log_backup {
            let (files, _) = ask(&self.workers.copier, CommitSet { pending: b.pending }).await??;
            rec.log_archives = files;
            // Archived pending segments go only now; after a failure they
            // stay for the next log backup.
            for warning in ask(&self.workers.copier, RemoveFiles { paths: b.segments }).await? {
                rec.notes.push(warning);
            }
        }
        let (archives, size) = ask(&self.workers.copier, CommitSet { pending }).await??;
        rec.archives = archives;
        if total > 0 && settings.advanced.compression_rate != sauve_settings::Compression::None {
            rec.ratio = Some(size as f64 / total as f64);
        }

        // 13. Retention after.
        if settings.advanced.set_number.enable && !settings.advanced.erase_old_backup_before {
            self.retention(
                rec,
                &destination,
                &base,
                settings.advanced.set_number.value as usize,
            )
            .await?;
        }
        Ok(())
    }

    async fn retention(
        &self,
        rec: &mut Record,
        destination: &std::path::Path,
        base: &str,
        keep: usize,
    ) -> Result<(), Failed> {
        self.phase(Phase::Retention);
        let r = ask(
            &self.workers.copier,
            ApplyRetention {
                destination: destination.to_path_buf(),
                base: base.to_owned(),
                keep,
            },
        )
        .await?
        .map_err(|e| Failed(Status::BackupError, e))?;
        rec.deleted.extend(r.files);
        rec.removed_numbers.extend(r.numbers);
        Ok(())
    }

    /// Takes the backup lock of `kind`, copies `entries`, releases, and
    /// returns the lock window.
    async fn locked_phase(
        &self,
        writer: Box<ArchiveWriter>,
        (kind, phase): (Kind, Phase),
        entries: Vec<SourceEntry>,
        progress: &RunProgress,
        timeout: Option<Duration>,
        cut: Option<CutLog>,
    ) -> Result<(Box<ArchiveWriter>, Duration), Failed> {
        self.phase(Phase::WaitingLock);
        let guard = ask(
            &self.workers.locks,
            TakeBackupLock {
                kinds: vec![kind],
                mode: self.options.mode,
                timeout,
            },
        )
        .await?
        .map_err(|e| Failed(e.status(), e.to_string()))?;
        self.phase(phase);
        let mut writer = writer;
        let mut entries = entries;
        if let Some(cut) = cut {
            // Under the data lock: no append can run while the log is cut.
            let done = match ask(&self.workers.copier, cut).await {
                Ok(Ok(done)) => done,
                Ok(Err(e)) | Err(Failed(_, e)) => {
                    let _ = guard.release();
                    return Err(Failed(Status::LogBackupError, e));
                }
            };
            writer.set_last_log_sequence(done.last_sequence);
            for e in entries
                .iter_mut()
                .filter(|e| e.kind == sauve_archive::EntryKind::Log)
            {
                e.size = done.size;
                e.mtime = done.mtime;
            }
        }
        // Dropping the writer on failure (inside the copier) removes its
        // files; the guard is released on every path.
        let result = ask(
            &self.workers.copier,
            CopyEntries {
                writer,
                entries,
                progress: progress.clone(),
            },
        )
        .await;
        let window = guard.release();
        Ok((result??, window))
    }

    /// Where and how a set of this run is written.
    fn set_spec(
        &self,
        settings: &Settings,
        destination: &std::path::Path,
        base: &str,
        number: u32,
        kind: SetKind,
    ) -> SetSpec {
        SetSpec {
            destination: destination.to_path_buf(),
            base: base.to_owned(),
            number,
            kind,
            compression: settings.advanced.compression_rate,
            segment_size: u64::from(settings.advanced.file_segmentation.default_size) << 20,
            threads: self.options.threads,
        }
    }

    /// The manifest header of a set of this run.
    fn manifest_header(
        &self,
        kind: SetKind,
        number: u32,
        base: &str,
        started: jiff::Timestamp,
    ) -> ManifestHeader {
        ManifestHeader {
            structure_path: self.structure_key(),
            data_path: self.layout.data_file.display().to_string(),
            trigger: self.trigger.as_str().to_owned(),
            ..ManifestHeader::new(kind, number, base, started)
        }
    }

    fn structure_key(&self) -> String {
        self.layout
            .project_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| self.layout.app.display().to_string())
    }

    /// Steps 14: history, then journal; failures are warnings.
    async fn record(&self, rec: &Record, report: &BackupReport) {
        let zone = self.options.clock.zone();
        let local = |t: jiff::Timestamp| Stamp::at(zone.to_datetime(t));
        let title = match report.status {
            Status::Ok | Status::AttachmentNotFound => Title::FullBackup,
            Status::Stopped => Title::BackupStopped,
            _ => Title::FullBackupAborted,
        };
        let mut entry = Entry::new(title);
        if !report.archives.is_empty() {
            entry.creating_archive = report.archives.first().map(|p| p.display().to_string());
        }
        entry.creating_log_backup = rec.log_archives.first().map(|p| p.display().to_string());
        entry.deleted = rec
            .deleted
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        if let Some(c) = &rec.content {
            entry.attachments = c
                .attachments
                .iter()
                .map(|a| AttachmentLine {
                    path: a
                        .path
                        .as_ref()
                        .map_or(a.written.clone(), |p| p.display().to_string()),
                    found: Some(a.found),
                })
                .collect();
        }
        entry.notes = rec.notes.clone();
        entry.trigger = Some(self.trigger.as_str().to_owned());
        if self.trigger == Trigger::Scheduled {
            entry.scheduled = self.scheduled.map(local);
        }
        entry.starting = Some(local(report.started));
        entry.ending = Some(local(report.ended));
        entry.data_lock = rec.data_lock;
        entry.structure_lock = rec.structure_lock;
        entry.status = Some(report.status.code());
        entry.errors = report.errors.clone();
        let verbose = rec
            .settings
            .as_ref()
            .is_none_or(|s| s.advanced.backup_journal_verbose_mode);

        if let Some(destination) = &rec.destination {
            let keep = rec
                .settings
                .as_ref()
                .filter(|s| s.advanced.set_number.enable)
                .map_or(sauve_history::UNLIMITED, |s| {
                    s.advanced.set_number.value as usize
                });
            let date = sauve_history::format_date;
            let history = HistoryEntry {
                backup_path: report
                    .archives
                    .first()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                structure_path: self.structure_key(),
                data_path: self.layout.data_file.display().to_string(),
                log_path: rec
                    .log_archives
                    .first()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                starting_date: date(report.started),
                ending_date: date(report.ended),
                scheduled_date: date(self.scheduled.unwrap_or(report.started)),
                status: Some(report.status.code()),
                backup_number: report.number,
                duration: report
                    .ended
                    .duration_since(report.started)
                    .as_millis()
                    .max(0) as u64,
                attachments: rec
                    .content
                    .iter()
                    .flat_map(|c| &c.attachments)
                    .map(|a| HistoryAttachment {
                        attachment_path: a
                            .path
                            .as_ref()
                            .map_or(a.written.clone(), |p| p.display().to_string()),
                        found: a.found,
                        extra: Default::default(),
                    })
                    .collect(),
                operation: Some(Operation::Backup),
                trigger: Some(self.trigger.as_str().to_owned()),
                lock_windows: Some(LockWindows {
                    data: rec.data_lock.map(|d| d.as_millis() as u64),
                    structure: rec.structure_lock.map(|d| d.as_millis() as u64),
                }),
                segments: (!report.archives.is_empty()).then(|| {
                    report
                        .archives
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect()
                }),
                files: (!report.archives.is_empty()).then(|| rec.manifest_files.clone()),
                extra: Default::default(),
            };
            let msg = RecordRun {
                destination: destination.clone(),
                key: self.structure_key(),
                entry: history,
                limit: keep,
                removed: rec.removed_numbers.clone(),
                now: report.ended,
            };
            if let Ok(Err(e)) | Err(Failed(_, e)) = ask(&self.workers.history, msg).await {
                self.emit(BackupEvent::Warning {
                    run: self.id,
                    message: format!("the history was not written: {e}"),
                });
            }
        }
        let msg = AppendEntry {
            logs: self.logs(),
            entry,
            verbose,
        };
        if let Ok(Err(e)) | Err(Failed(_, e)) = ask(&self.workers.journal, msg).await {
            self.emit(BackupEvent::Warning {
                run: self.id,
                message: format!("the Backup Journal was not written: {e}"),
            });
        }
    }

    /// SPEC 9.3: only "Backup postponed" is written; no hooks, no history,
    /// the last-backup information and the failure counter untouched.
    async fn postponed(
        &self,
        rec: &Record,
        started: jiff::Timestamp,
        reason: String,
        app_lock: Vec<std::fs::File>,
    ) -> BackupReport {
        let zone = self.options.clock.zone();
        let local = |t: jiff::Timestamp| Stamp::at(zone.to_datetime(t));
        let mut entry = Entry::new(Title::BackupPostponed);
        entry.scheduled = self.scheduled.map(local);
        entry.starting = Some(local(started));
        entry.reason = Some(reason.clone());
        if let (Some(settings), Some(slot)) = (&rec.settings, self.scheduled) {
            let schedule = sauve_scheduler::Schedule::from_settings(&settings.scheduler);
            entry.next_scheduled = schedule.next_after(&zone, slot).map(local);
        }
        let verbose = rec
            .settings
            .as_ref()
            .is_none_or(|s| s.advanced.backup_journal_verbose_mode);
        let msg = AppendEntry {
            logs: self.logs(),
            entry,
            verbose,
        };
        if let Ok(Err(e)) | Err(Failed(_, e)) = ask(&self.workers.journal, msg).await {
            self.emit(BackupEvent::Warning {
                run: self.id,
                message: format!("the Backup Journal was not written: {e}"),
            });
        }
        drop(app_lock);
        let mut report = refused(self.trigger, started, Status::Ok, &reason);
        report.errors.clear();
        report.notes.push(reason);
        report.postponed = true;
        self.emit(BackupEvent::Finished {
            run: self.id,
            status: 0,
            status_text: "Backup postponed".to_owned(),
            number: 0,
            archives: Vec::new(),
        });
        report
    }

    /// Step 16: the last-backup information.
    async fn save_state(&self, rec: &Record, report: &BackupReport) {
        let last = LastBackup {
            number: report.number,
            status: report.status.code(),
            status_text: report.status.text().to_owned(),
            started: report.started.to_string(),
            ended: report.ended.to_string(),
            duration_ms: report
                .ended
                .duration_since(report.started)
                .as_millis()
                .max(0) as u64,
            archive: report.archives.first().map(|p| p.display().to_string()),
            log_archive: rec.log_archives.first().map(|p| p.display().to_string()),
            trigger: self.trigger.as_str().to_owned(),
            lock_window_ms: rec.data_lock.map(|d| d.as_millis() as u64),
        };
        let data = rec
            .data_stamp
            .filter(|_| report.status.is_success() && report.number > 0)
            .map(|(size, mtime)| crate::state::DataStamp {
                number: report.number,
                size,
                mtime,
            });
        let msg = UpdateState {
            app: self.layout.app.clone(),
            last_backup: last,
            ratio: rec.ratio,
            data,
        };
        if let Ok(Err(e)) | Err(Failed(_, e)) = ask(&self.workers.history, msg).await {
            self.emit(BackupEvent::Warning {
                run: self.id,
                message: format!("the last-backup information was not saved: {e}"),
            });
        }
    }
}
