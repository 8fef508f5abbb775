//! One backup run, executed (behaviour §5): the run gathers facts from the
//! actors, follows the plan (`plan.rs`) by asking the lock keeper and the
//! copier, and hands what it learned to `outcome.rs`, whose entries the
//! keepers of the record files write. It does no file IO itself.

use sauve_number::BackupNumber;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use sauve_locking::{CancellationToken, Kind};
use sauve_settings::AppLayout;
use tokio::sync::{broadcast, oneshot};

use crate::actors::alerts::messages::RaiseAlert;
use crate::actors::copier::messages::{
    ApplyRetention, BeginSet, BuildLogSet, CommitSet, Copied, CopyClones, CopyPhase, CutLog,
    EndSets, FinishSet, FinishedSet, OpenDestination, PublishHistory, ReadBackSet,
    RemoveStaleParts, VerifySet, WritingSet,
};
use crate::actors::history::messages::{NextNumber, RecordHistory};
use crate::actors::journal::messages::{AppendJournal, RotateJournal};
use crate::actors::locks::messages::{AcquireBackupLock, ReleaseBackupLock, ReleaseRun};
use crate::actors::resolver::messages::{OwnSettings, ReadOwnSettings, ReadSettings};
use crate::actors::state::messages::{ReadState, RecordLastBackup};
use crate::actors::{Actors, ask};
use crate::api::{
    BackupEvent, BackupReport, EngineOptions, Phase, Scheduled, ShutdownInfo, Trigger,
};
use crate::destination::Opened;
use crate::error::EngineError;
use crate::outcome::{self, Learned, Outcome};
use crate::plan::{self, Facts, Plan};
use crate::progress::RunProgress;
use crate::settings::AppSettings;

/// Sent once the run has its number (behaviour §4: `POST /v1/backup` answers then).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Numbered {
    pub(crate) run: u64,
    pub(crate) number: BackupNumber,
}

/// Everything one run needs.
pub(crate) struct Run {
    pub(crate) id: u64,
    pub(crate) trigger: Trigger,
    pub(crate) scheduled: Option<Scheduled>,
    pub(crate) layout: AppLayout,
    pub(crate) options: EngineOptions,
    pub(crate) actors: Actors,
    pub(crate) events: broadcast::Sender<BackupEvent>,
    pub(crate) stop: CancellationToken,
    pub(crate) numbered: Mutex<Option<oneshot::Sender<Numbered>>>,
}

/// What the steps found that the records need after them.
#[derive(Default)]
struct Held {
    /// The destination the settings name.
    place: Option<sauve_settings::Destination>,
    /// The destination, once opened.
    opened: Option<Opened>,
    /// sauve.toml as the resolver gave it for this run.
    own: Option<OwnSettings>,
}

/// How the steps ended when they did not fail.
enum Flow {
    /// The backup was made.
    Done,
    /// BackupIfDataChange: nothing to do (behaviour §9.3).
    Postponed(String),
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

    fn warn(&self, learned: &mut Learned, message: String) {
        tracing::warn!(run = self.id, "{message}");
        self.emit(BackupEvent::Warning {
            run: self.id,
            message: message.clone(),
        });
        learned.warnings.push(message);
    }

    fn stopped(&self) -> Result<(), EngineError> {
        if self.stop.is_cancelled() {
            Err(EngineError::Stopped)
        } else {
            Ok(())
        }
    }

    fn progress(&self, total: u64) -> RunProgress {
        RunProgress::new(self.id, self.stop.clone(), self.events.clone(), total)
    }

    /// The whole run, admitted; always returns a report, whatever failed.
    /// The coordinator emits its `finished` event.
    pub(crate) async fn execute(self, started: Timestamp) -> BackupReport {
        let mut learned = Learned::default();
        let mut held = Held::default();
        let result = self.steps(&mut learned, &mut held, started).await;
        // Whatever failed: the sets still open are aborted (their part files
        // go) and the locks still held are released, before anything is
        // recorded. Pending log segments stay for the next log backup.
        let _ = ask(&self.actors.copier, "copier", EndSets { run: self.id }).await;
        let _ = ask(
            &self.actors.locks,
            "lock keeper",
            ReleaseRun { run: self.id },
        )
        .await;
        let result = match result {
            Ok(Flow::Postponed(reason)) => {
                return self.postponed(&mut learned, started, reason).await;
            }
            Ok(Flow::Done) => Ok(()),
            Err(e) => Err(e),
        };
        let made = result.is_ok();
        let gives_up = self.scheduled.is_some_and(|s| s.last_allowed);
        let (status, errors) = outcome::settle(&result, &learned, gives_up);
        let outcome = Outcome {
            run: self.id,
            trigger: self.trigger,
            scheduled: self.scheduled,
            started,
            ended: self.options.clock.now(),
            status,
            errors,
            key: crate::settings::structure_key(&self.layout),
            data_path: self.layout.data_file.clone(),
            learned: learned.clone(),
        };
        // sauve.toml as the run read it; read now if it failed before.
        let own = match held.own.take() {
            Some(own) => Ok(own),
            None => ask(&self.actors.resolver, "resolver", ReadOwnSettings).await,
        };
        // 14. History, then journal; failures are warnings.
        let destination = (held.place.as_ref(), held.opened.as_ref());
        self.record_history(&mut learned, &outcome, own.as_ref().ok(), destination)
            .await;
        let verify = own.as_ref().ok().map(|o| o.settings.verify);
        self.journal(&mut learned, &outcome, own.ok()).await;
        // 15. The shutdown hook, whenever the startup hook ran.
        if learned.startup_ran
            && let Some(hook) = &self.options.hooks.on_shutdown
        {
            hook(ShutdownInfo {
                status,
                trigger: self.trigger,
                archive: learned.archives.first().cloned(),
            })
            .await;
        }
        // 16. The last-backup information.
        let (last, ratio, data) = outcome.last_backup();
        let msg = RecordLastBackup { last, ratio, data };
        if let Err(e) = ask(&self.actors.state, "state", msg).await.and_then(|r| r) {
            self.warn(
                &mut learned,
                format!("the last-backup information was not saved: {e}"),
            );
        }
        // 17. A sample of the kept sets, the new one among them, once the
        // run's records are written and its locks released.
        if made && let (Some(verify), Some(place)) = (verify, held.place.as_ref()) {
            self.sample(&mut learned, verify, place).await;
        }
        let mut report = outcome.report();
        report.warnings = learned.warnings;
        report
    }

    /// Step 14: the run's history entry (a committed set pending for every
    /// off-site destination), the bucket's history published, then the
    /// off-site copies started in the background.
    async fn record_history(
        &self,
        learned: &mut Learned,
        outcome: &Outcome,
        own: Option<&OwnSettings>,
        (place, opened): (Option<&sauve_settings::Destination>, Option<&Opened>),
    ) {
        let Some(mut h) = outcome.history() else {
            return;
        };
        let copies = own.is_some_and(|o| !o.settings.offsite.is_empty());
        if let Some(o) = own
            && copies
            && h.entry.is_numbered_backup()
            && h.entry.segments.is_some()
        {
            h.entry.offsite = Some(pending_copies(&o.settings, outcome.ended));
        }
        let kick = crate::actors::offsite::messages::Kick {
            source: place
                .cloned()
                .unwrap_or_else(|| sauve_settings::Destination::Folder(h.destination.clone())),
            destination: h.destination.clone(),
            key: h.key.clone(),
            base: self.layout.base_name(),
        };
        let msg = RecordHistory {
            destination: h.destination,
            key: h.key,
            entry: h.entry,
            limit: h.limit,
            removed: h.removed,
            now: outcome.ended,
        };
        if let Err(e) = ask(&self.actors.history, "history", msg)
            .await
            .and_then(|r| r)
        {
            self.warn(learned, format!("the history was not written: {e}"));
        } else if let Some(o) = opened
            && (!learned.archives.is_empty() || !learned.removed_numbers.is_empty())
        {
            // A bucket's history: the app's own object, then the shared
            // file rebuilt (behaviour §19), whenever the bucket's sets changed
            // (a set added, or removed by retention); a failed run's
            // entry goes with the next. The next write repairs a failure.
            let publish = PublishHistory {
                run: self.id,
                key: outcome.key.clone(),
            };
            if let Err(e) = ask(&self.actors.copier, "copier", publish)
                .await
                .and_then(|r| r)
            {
                self.warn(
                    learned,
                    format!(
                        "the history of {} was not published: {e}",
                        o.named.display()
                    ),
                );
            }
        }
        // In the background, after the record: the next run's locks
        // never wait for a copy (behaviour §19).
        if copies {
            self.actors.offsite.do_send(kick);
        }
    }

    /// Step 14: the journal entry: written by the alerter once the deliveries
    /// are known when the run raises an alert, else by the journal keeper,
    /// verbose as its mode (the settings read at step 2) says.
    async fn journal(&self, learned: &mut Learned, outcome: &Outcome, own: Option<OwnSettings>) {
        let entry = outcome.journal_entry(&self.options.clock.zone());
        match own.and_then(|o| outcome.alert(o.settings.alerts.on)) {
            Some(draft) => {
                let raise = RaiseAlert {
                    draft,
                    journal: entry,
                    whole: false,
                };
                if let Err(e) = ask(&self.actors.alerter, "alerter", raise)
                    .await
                    .and_then(|r| r)
                {
                    self.warn(learned, format!("the alert was not raised: {e}"));
                }
            }
            None => {
                let msg = AppendJournal::new(entry);
                if let Err(e) = ask(&self.actors.journal, "journal", msg)
                    .await
                    .and_then(|r| r)
                {
                    self.warn(learned, format!("the Backup Journal was not written: {e}"));
                }
            }
        }
    }

    /// Steps 2 to 13; an early return is the run's failure.
    async fn steps(
        &self,
        l: &mut Learned,
        held: &mut Held,
        started: Timestamp,
    ) -> Result<Flow, EngineError> {
        let settings = self.read_settings(l).await?;
        // sauve.toml, read once for the run.
        let own = &*held
            .own
            .insert(ask(&self.actors.resolver, "resolver", ReadOwnSettings).await?);
        if let Some(reason) = self.unchanged_data(&settings).await? {
            return Ok(Flow::Postponed(reason));
        }
        self.startup_hook(l).await?;

        // 5. Pre-checks, then the plan.
        self.phase(Phase::Precheck);
        let place = &*held
            .place
            .insert(plan::destination(&self.layout.app, &settings)?);
        let plan = self
            .prepare(l, (&settings, own), place, &mut held.opened, started)
            .await?;
        let Some(destination) = held.opened.as_ref() else {
            return Err(EngineError::Internal(
                "the destination was not opened".to_owned(),
            ));
        };
        self.clear_the_way(l, &plan).await?;

        // 7-9. Copy, phase by phase.
        self.announce(&plan);
        let progress = self.progress(plan.total);
        let set = self.begin_set(l, &plan, own).await?;
        let set = self.copy_phases(l, &plan, set, &progress).await?;
        self.stopped()?;

        let (mut set, mut log_set) = self.finish(l, &plan, set).await?;
        // 11. Verify. A store's uploads cannot be read before they are
        // completed: its sets are read back after the commit.
        if plan.verify && destination.verified_before_commit {
            (set, log_set) = self.verify_sets(&plan, set, log_set).await?;
        }
        self.stopped()?;
        self.commit(l, &plan, set, log_set, destination).await?;

        // 13. Retention after.
        if let Some(keep) = plan.retention.after {
            self.retention(l, &plan, keep).await?;
        }
        Ok(Flow::Done)
    }

    /// Step 17: a sample of the kept sets' stored bytes (behaviour §23),
    /// once the run is recorded: the state keeper keeps what it read, a set
    /// newly found damaged raises an alert (journaled with it), and damage
    /// is a warning of the report. The set is committed and the locks
    /// released: nothing here changes the run's status; a Stop, or a
    /// backup asked meanwhile, waits at most for the sample's cap
    /// (`sample_max_mib`), and Stop ends it early.
    async fn sample(
        &self,
        l: &mut Learned,
        verify: sauve_settings::VerifySettings,
        place: &sauve_settings::Destination,
    ) {
        let options = crate::sample::SampleOptions::from(verify);
        if options.percent == 0 {
            return;
        }
        self.phase(Phase::Verify);
        let job = crate::sample::SampleJob {
            app: self.layout.app.clone(),
            place: place.clone(),
            key: crate::settings::structure_key(&self.layout),
            base: self.layout.base_name(),
            io: self.actors.io.clone(),
            options,
            now: self.options.clock.now(),
        };
        let stop = self.stop.clone();
        let zone = self.options.clock.zone();
        let sampled = crate::sample::sample_and_record(
            &self.actors,
            job,
            move || stop.is_cancelled(),
            (self.trigger.as_str(), &zone),
        )
        .await;
        match sampled {
            Ok((report, warnings)) => {
                tracing::info!(run = self.id, "{}", report.summary());
                let shown = 10;
                for d in report.damaged.iter().take(shown) {
                    self.warn(l, d.to_string());
                }
                if report.damaged.len() > shown {
                    let more = report.damaged.len() - shown;
                    self.warn(l, format!("and {more} more damaged pieces or files"));
                }
                for w in warnings.into_iter().chain(report.unreadable) {
                    self.warn(l, w);
                }
            }
            Err(e) => self.warn(l, format!("the sample of the kept sets was not read: {e}")),
        }
    }

    /// Step 2: settings, then the journal rotation check (failing runs rotate
    /// too); what the records need of them is learned now.
    async fn read_settings(&self, l: &mut Learned) -> Result<Arc<AppSettings>, EngineError> {
        let settings = ask(&self.actors.resolver, "resolver", ReadSettings).await?;
        if let Err(e) = ask(&self.actors.journal, "journal", RotateJournal).await? {
            self.warn(l, format!("the Backup Journal could not rotate: {e}"));
        }
        let settings = settings?;
        let set_number = &settings.settings.advanced.set_number;
        l.history_limit = Some(if set_number.enable {
            set_number.value as usize
        } else {
            sauve_history::UNLIMITED
        });
        for w in &settings.warnings {
            self.emit(BackupEvent::Warning {
                run: self.id,
                message: w.clone(),
            });
        }
        Ok(settings)
    }

    /// Step 3: the data-change check of scheduled runs with BackupIfDataChange:
    /// why the run is postponed, if it is.
    async fn unchanged_data(&self, settings: &AppSettings) -> Result<Option<String>, EngineError> {
        if self.trigger != Trigger::Scheduled || !settings.settings.advanced.backup_if_data_change {
            return Ok(None);
        }
        let state = ask(&self.actors.state, "state", ReadState).await?;
        let layout = self.layout.clone();
        let facts = self
            .actors
            .io
            .blocking(move || crate::facts::observe_data(&layout))
            .await?;
        Ok(plan::postpone_reason(
            state.0.last_data,
            facts,
            self.options.log.is_some(),
        ))
    }

    /// Step 4: the startup hook: a code other than 0 refuses the run.
    async fn startup_hook(&self, l: &mut Learned) -> Result<(), EngineError> {
        if let Some(hook) = &self.options.hooks.on_startup {
            l.startup_ran = true;
            let code = hook(self.trigger).await;
            if code != 0 {
                return Err(EngineError::HookRefused { code });
            }
        }
        self.stopped()
    }

    /// Step 6: parts an interrupted run left, then retention before.
    async fn clear_the_way(&self, l: &mut Learned, plan: &Plan) -> Result<(), EngineError> {
        let stale = ask(
            &self.actors.copier,
            "copier",
            RemoveStaleParts {
                run: self.id,
                base: plan.base.clone(),
            },
        )
        .await??;
        for s in stale {
            l.notes.push(format!(
                "removed {} left by an interrupted run",
                s.display()
            ));
        }
        if let Some(keep) = plan.retention.before {
            self.retention(l, plan, keep).await?;
        }
        Ok(())
    }

    /// The run has its number: the `started` event, and whoever waits for
    /// the number is told.
    fn announce(&self, plan: &Plan) {
        self.emit(BackupEvent::Started {
            run: self.id,
            trigger: self.trigger,
            number: plan.number,
            total_bytes: plan.total,
        });
        if let Some(tx) = self
            .numbered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = tx.send(Numbered {
                run: self.id,
                number: plan.number,
            });
        }
    }

    /// The backup set opened, full or incremental on its parent.
    async fn begin_set(
        &self,
        l: &mut Learned,
        plan: &Plan,
        own: &OwnSettings,
    ) -> Result<WritingSet, EngineError> {
        let incremental =
            Some(own.settings.incremental).filter(|i| i.is_on() && own.problem.is_none());
        let begun = ask(
            &self.actors.copier,
            "copier",
            BeginSet {
                run: self.id,
                spec: plan.backup.spec.clone(),
                header: plan.backup.header.clone(),
                open_part: self.options.open_part.as_ref().map(|f| f()),
                incremental,
                stop: self.stop.clone(),
            },
        )
        .await??;
        l.parent = begun.parent;
        l.notes.extend(begun.note);
        Ok(begun.set)
    }

    /// Steps 7 to 9: the data (the log cut first, cloned under the lock where it
    /// can be), the structure, the attachments.
    async fn copy_phases(
        &self,
        l: &mut Learned,
        plan: &Plan,
        mut set: WritingSet,
        progress: &RunProgress,
    ) -> Result<WritingSet, EngineError> {
        if !plan.data.is_empty() {
            let cut = plan.log.as_ref().map(|_| CutLog {
                log: self.layout.log_file.clone(),
                previous_number: plan.number.log_set().unwrap_or_default(),
                writer: self.options.log.clone(),
            });
            // Cloned under the lock where the data's file system can, and
            // archived from the clones after it (behaviour §21.3).
            let near = self.layout.data_file.parent().map(Path::to_path_buf);
            let (window, copied);
            (set, window, copied) = self
                .locked_phase(
                    set,
                    (Kind::Data, Phase::Data),
                    plan,
                    plan.data.clone(),
                    progress,
                    (cut, near),
                )
                .await?;
            l.data_lock = Some(window);
            l.data_lock_how = Some(copied.lock_line());
            if let Copied::Cloned { .. } = copied {
                let msg = CopyClones {
                    set,
                    progress: progress.clone(),
                };
                set = ask(&self.actors.copier, "copier", msg).await??;
            }
        }
        if !plan.structure.is_empty() {
            let window;
            (set, window, _) = self
                .locked_phase(
                    set,
                    (Kind::Structure, Phase::Structure),
                    plan,
                    plan.structure.clone(),
                    progress,
                    (None, None),
                )
                .await?;
            l.structure_lock = Some(window);
        }
        if !plan.attachments.is_empty() {
            self.phase(Phase::Attachments);
            let msg = CopyPhase {
                set,
                entries: plan.attachments.clone(),
                progress: progress.clone(),
                cut: None,
                clone_near: None,
            };
            (set, _) = ask(&self.actors.copier, "copier", msg).await??;
        }
        Ok(set)
    }

    /// Step 10: finish, and the log backup from every pending segment.
    async fn finish(
        &self,
        l: &mut Learned,
        plan: &Plan,
        set: WritingSet,
    ) -> Result<(FinishedSet, Option<FinishedSet>), EngineError> {
        let finish = FinishSet {
            set,
            ended: self.options.clock.now(),
        };
        let (set, files) = ask(&self.actors.copier, "copier", finish).await??;
        l.manifest_files = files;
        let Some(log) = &plan.log else {
            return Ok((set, None));
        };
        let msg = BuildLogSet {
            run: self.id,
            log: self.layout.log_file.clone(),
            spec: log.spec.clone(),
            header: log.header.clone(),
            open_part: self.options.open_part.as_ref().map(|f| f()),
            ended: self.options.clock.now(),
            stop: self.stop.clone(),
        };
        let built = ask(&self.actors.copier, "copier", msg).await??;
        if let Some(b) = &built {
            l.notes.extend(b.notes.iter().cloned());
        }
        Ok((set, built.map(|b| b.set)))
    }

    /// Step 11: the sets verified before their commit, the log backup first.
    async fn verify_sets(
        &self,
        plan: &Plan,
        set: FinishedSet,
        log_set: Option<FinishedSet>,
    ) -> Result<(FinishedSet, Option<FinishedSet>), EngineError> {
        self.phase(Phase::Verify);
        let log_set = match log_set {
            Some(log) => {
                let msg = VerifySet {
                    set: log,
                    progress: self.progress(0),
                };
                Some(ask(&self.actors.copier, "copier", msg).await??)
            }
            None => None,
        };
        // Verification reports its own pass over the bytes.
        let msg = VerifySet {
            set,
            progress: self.progress(plan.total),
        };
        let set = ask(&self.actors.copier, "copier", msg).await??;
        Ok((set, log_set))
    }

    /// Step 12: commit: Stop is ignored from here. The .4BK first, then the
    /// .4BL, which deletes the pending segments it holds. Killed between
    /// the two, the segments stay and go into the next run's .4BL, whose
    /// name (this number) is then free: a .4BL committed before its .4BK
    /// would take the name the next attempt at this number needs.
    async fn commit(
        &self,
        l: &mut Learned,
        plan: &Plan,
        set: FinishedSet,
        log_set: Option<FinishedSet>,
        destination: &Opened,
    ) -> Result<(), EngineError> {
        self.phase(Phase::Commit);
        let c = ask(&self.actors.copier, "copier", CommitSet { set }).await??;
        l.archives = c.files.clone();
        l.stored = c.pieces;
        let backup_files = c.files;
        l.notes.extend(c.notes);
        if plan.total > 0 && plan.compressed {
            l.ratio = Some(c.size as f64 / plan.total as f64);
        }
        // A store's set is read back once completed, before its .4BL is
        // committed: a .4BK removed as unsound leaves the log's records in
        // their pending segments for the next attempt at this number.
        let read_back = plan.verify && destination.read_back;
        let named = destination.named.display().to_string();
        if read_back {
            self.phase(Phase::Verify);
            self.read_back(l, &named, backup_files, plan.total).await?;
        }
        if let Some(log) = log_set {
            self.commit_log(l, log).await?;
        }
        if read_back && !l.log_archives.is_empty() {
            self.read_back_log(l, &named).await?;
        }
        if plan.verify && destination.encrypted {
            // Only an identity reads an encrypted set, and sauve holds none.
            l.notes.push(format!(
                "the set is encrypted in {named}: sauve holds no identity to read it back; `sauve verify {named}{}[{}] --identity FILE` checks it",
                plan.base,
                plan.number.text()
            ));
        }
        Ok(())
    }

    /// The .4BL committed once the .4BK is final: one that cannot be
    /// committed now loses nothing (its segments stay for the next log
    /// backup) and is a note, not the status of a sound, restorable set.
    async fn commit_log(&self, l: &mut Learned, log: FinishedSet) -> Result<(), EngineError> {
        match ask(&self.actors.copier, "copier", CommitSet { set: log }).await? {
            Ok(c) => {
                l.log_archives = c.files;
                l.stored.extend(c.pieces);
                l.notes.extend(c.notes);
            }
            Err(e) => l.notes.push(format!(
                "the log backup could not be committed ({e}); its records stay in the pending log segments and go into the next log backup"
            )),
        }
        Ok(())
    }

    /// The committed .4BL read back from its store. Its records are in no
    /// pending segment any more: a set that fails stays, for a person to
    /// look at, never removed.
    async fn read_back_log(&self, l: &mut Learned, named: &str) -> Result<(), EngineError> {
        let msg = ReadBackSet {
            run: self.id,
            files: l.log_archives.clone(),
            remove_unsound: false,
            progress: self.progress(0),
        };
        let checked = ask(&self.actors.copier, "copier", msg).await?;
        if let Some(e) = checked.failure {
            self.warn(
                l,
                format!(
                    "the log backup does not verify in the store ({e}); it is kept there, as its records are in no other file: `sauve verify {}{}` checks it again",
                    named,
                    l.log_archives
                        .first()
                        .and_then(|p| p.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ),
            );
        }
        Ok(())
    }

    /// Reads the committed backup set back from its store. A set that does
    /// not match its manifest is removed and the run fails with why; one
    /// that could not be read (the store out of reach) stays, committed but
    /// unverified, and the run fails with the store's error.
    async fn read_back(
        &self,
        l: &mut Learned,
        named: &str,
        files: Vec<PathBuf>,
        total: u64,
    ) -> Result<(), EngineError> {
        let name = files
            .first()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let msg = ReadBackSet {
            run: self.id,
            files,
            remove_unsound: true,
            progress: self.progress(total),
        };
        let checked = ask(&self.actors.copier, "copier", msg).await?;
        let Some(e) = checked.failure else {
            return Ok(());
        };
        for left in &checked.left {
            self.warn(l, format!("cannot remove the unsound set's {left}"));
        }
        if checked.removed {
            // Nothing was committed.
            l.archives.clear();
            l.stored.clear();
        } else if checked.left.is_empty() {
            l.notes.push(format!(
                "{named}{name} stays in the store unverified: `sauve verify {named}{name}` checks it"
            ));
        }
        Err(e)
    }

    /// Step 5: the destination, the set lock, the content, the number, the
    /// free space; then the plan.
    async fn prepare(
        &self,
        l: &mut Learned,
        (settings, own): (&Arc<AppSettings>, &OwnSettings),
        place: &sauve_settings::Destination,
        opened_slot: &mut Option<Opened>,
        started: Timestamp,
    ) -> Result<Plan, EngineError> {
        let base = self.layout.base_name();
        // A bucket: the sets go there; the history, the set lock and the
        // scratch files stay in the app's records of it, where a failure
        // to open it is recorded too.
        l.destination = Some(place.records().to_path_buf());
        let open = OpenDestination {
            run: self.id,
            place: place.clone(),
            own: own.valid(),
            key: crate::settings::structure_key(&self.layout),
            base: base.clone(),
            io: self.actors.io.clone(),
        };
        let opened = &*opened_slot.insert(ask(&self.actors.copier, "copier", open).await??);
        let destination = opened.records.clone();
        let resolved = {
            let (layout, settings, at) =
                (self.layout.clone(), settings.clone(), destination.clone());
            self.actors
                .io
                .blocking(move || crate::facts::resolve(&layout, &settings, &at))
                .await??
        };
        l.attachments = resolved.content.attachments.clone();
        let state = ask(&self.actors.state, "state", ReadState).await?;
        let (numbering, notes) = ask(
            &self.actors.history,
            "history",
            NextNumber {
                destination: destination.clone(),
                key: crate::settings::structure_key(&self.layout),
                base,
                now: started,
                taken: opened.taken.clone(),
            },
        )
        .await??;
        l.notes.extend(notes);
        let plan = plan::plan(&Facts {
            trigger: self.trigger,
            started,
            layout: &self.layout,
            settings,
            destination: &destination,
            free: opened.free,
            resolved: &resolved,
            host_log: self.options.log.is_some(),
            last_ratio: state.0.last_ratio,
            numbering: &numbering,
            threads: self.options.threads,
        });
        // The notes of skipped files matter even when the plan fails.
        let mut plan = plan?;
        // The sets are named where they go: the folder, or the store
        // (`s3://bucket/prefix/base[N].4BK`).
        plan.backup.spec.destination = opened.named.clone();
        if let Some(log) = plan.log.as_mut() {
            log.spec.destination = opened.named.clone();
        }
        l.notes.extend(plan.notes.iter().cloned());
        l.number = plan.number;
        l.data_stamp = plan.data_stamp;
        Ok(plan)
    }

    /// Retention keeping `keep` sets. A deletion that fails ends retention
    /// with a warning, the files already deleted recorded, the status
    /// unchanged (behaviour §6.3).
    async fn retention(
        &self,
        l: &mut Learned,
        plan: &Plan,
        keep: usize,
    ) -> Result<(), EngineError> {
        self.phase(Phase::Retention);
        let r = ask(
            &self.actors.copier,
            "copier",
            ApplyRetention {
                run: self.id,
                base: plan.base.clone(),
                keep,
                own: Some((plan.number, l.parent)),
            },
        )
        .await?;
        l.deleted.extend(r.files);
        l.removed_numbers.extend(r.numbers);
        for (kept, by) in r.kept_for {
            let name = |n: BackupNumber| format!("{}[{}]", plan.base, n.text());
            l.notes.push(format!(
                "retention kept {}: {}, which stays, builds on it (whole chains only)",
                name(kept),
                name(by)
            ));
        }
        if let Some(e) = r.failure {
            self.warn(l, format!("retention stopped: {e}"));
        }
        Ok(())
    }

    /// Takes the backup lock of `kind`, copies `entries` (after cutting the
    /// log, for the data phase) or clones them into a folder in
    /// `clone_near`, releases; the lock window, and how they were taken.
    async fn locked_phase(
        &self,
        set: WritingSet,
        (kind, phase): (Kind, Phase),
        plan: &Plan,
        entries: Vec<sauve_archive::SourceEntry>,
        progress: &RunProgress,
        (cut, clone_near): (Option<CutLog>, Option<PathBuf>),
    ) -> Result<(WritingSet, std::time::Duration, Copied), EngineError> {
        self.phase(Phase::WaitingLock);
        let acquire = AcquireBackupLock {
            run: self.id,
            kind,
            mode: self.options.mode,
            timeout: plan.lock_timeout,
            stop: self.stop.clone(),
        };
        ask(&self.actors.locks, "lock keeper", acquire).await??;
        self.phase(phase);
        let copy = CopyPhase {
            set,
            entries,
            progress: progress.clone(),
            cut,
            clone_near,
        };
        let copied = ask(&self.actors.copier, "copier", copy).await;
        // Released on every path; the window is the hold time.
        let window = ask(
            &self.actors.locks,
            "lock keeper",
            ReleaseBackupLock { run: self.id, kind },
        )
        .await?;
        let (set, copied) = copied??;
        Ok((set, window.unwrap_or_default(), copied))
    }

    /// behaviour §9.3: only "Backup postponed" is written: no hooks, no history,
    /// the last-backup information and the failure counter untouched.
    async fn postponed(&self, l: &mut Learned, started: Timestamp, reason: String) -> BackupReport {
        let zone = self.options.clock.zone();
        let next = match (
            ask(&self.actors.resolver, "resolver", ReadSettings).await,
            self.scheduled,
        ) {
            (Ok(Ok(s)), Some(at)) => {
                sauve_scheduler::Schedule::from_settings(&s.settings.scheduler)
                    .next_after(&zone, at.slot)
            }
            _ => None,
        };
        let slot = self.scheduled.map(|s| s.slot);
        let entry = outcome::postponed_entry(&zone, slot, started, &reason, next);
        let msg = AppendJournal::new(entry);
        if let Err(e) = ask(&self.actors.journal, "journal", msg)
            .await
            .and_then(|r| r)
        {
            self.warn(l, format!("the Backup Journal was not written: {e}"));
        }
        let mut report = outcome::postponed(self.id, started, reason);
        report.warnings = std::mem::take(&mut l.warnings);
        report
    }
}

/// Every `[[offsite]]` destination's copy of a committed set, pending.
fn pending_copies(
    own: &sauve_settings::SauveToml,
    ended: Timestamp,
) -> std::collections::BTreeMap<String, sauve_history::OffsiteCopy> {
    let at = sauve_history::format_date(ended);
    own.offsite
        .iter()
        .map(|t| {
            let copy = sauve_history::OffsiteCopy {
                state: sauve_history::OffsiteState::Pending,
                at: at.clone(),
                attempts: 0,
                reason: None,
            };
            (t.url.clone(), copy)
        })
        .collect()
}
