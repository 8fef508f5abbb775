//! The facade host apps use: [`Engine::start`] gives a [`BackupHandle`].

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use actix::{Actor, Addr, SyncArbiter};
use sauve_archive::{RestoreOptions, RestoreReport};
use sauve_journal::Entry;
use sauve_locking::LockManager;
use sauve_logfile::{Record, Until};
use sauve_scheduler::SchedulerState;
use sauve_settings::AppLayout;
use tokio::sync::{broadcast, oneshot, watch};

use crate::actors::alerts::Alerter;
use crate::actors::coordinator::Coordinator;
use crate::actors::coordinator::messages::{
    Admit, Admitted, Dismiss, IsRunning, StartBackup, StopBackup,
};
use crate::actors::copier::Copier;
use crate::actors::copier::messages::RestoreArchive;
use crate::actors::history::HistoryKeeper;
use crate::actors::journal::JournalKeeper;
use crate::actors::journal::messages::AppendJournal;
use crate::actors::locks::LockKeeper;
use crate::actors::resolver::Resolver;
use crate::actors::resolver::messages::ReadSettings;
use crate::actors::state::StateKeeper;
use crate::actors::state::messages::{ReadState, ResolveInterrupted, SaveSchedulerState};
use crate::actors::{Actors, ask};
use crate::api::{BackupEvent, BackupReport, Clock, EngineOptions, Scheduled, Tally, Trigger};
use crate::error::{Busy, EngineError};
use crate::open::{DataHealth, OpenOutcome};
use crate::recorder::Recorder;
use crate::run::Numbered;
use crate::settings::AppSettings;
use crate::state::LastBackup;

/// Starts engines.
#[derive(Debug)]
pub struct Engine;

struct Inner {
    coordinator: Addr<Coordinator>,
    actors: Actors,
    system: actix::System,
    locks: LockManager,
    events: broadcast::Sender<BackupEvent>,
    tally: watch::Receiver<Tally>,
    live: watch::Receiver<Option<crate::live::LiveRun>>,
    layout: AppLayout,
    clock: Arc<dyn Clock>,
    /// Bumped when someone saved the settings: the scheduler loop re-reads
    /// them at once.
    settings_saved: watch::Sender<u64>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.system.stop();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// The engine of one app, for host apps, the CLI and the server. Cheap to
/// clone, `Send` and `Sync`; its async methods work from any tokio runtime.
/// The engine stops when the last clone is dropped or [`BackupHandle::shutdown`]
/// is called.
#[derive(Clone)]
pub struct BackupHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BackupHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupHandle")
            .field("app", &self.inner.layout.app)
            .finish_non_exhaustive()
    }
}

/// How a backup request began: with a number, or it ended first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The run has its number and is copying.
    Started {
        /// Its run id.
        run: u64,
        /// The backup number.
        number: u32,
    },
    /// Refused, or ended before it had a number (invalid settings, a hook's
    /// refusal, a failed pre-check).
    Ended(BackupReport),
}

type ReportFuture = Pin<Box<dyn Future<Output = Result<BackupReport, EngineError>> + Send>>;

/// A backup request on its way. Dropping it does not stop the backup.
pub struct Running {
    numbered: Option<oneshot::Receiver<Numbered>>,
    report: Option<ReportFuture>,
    ended: Option<BackupReport>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").finish_non_exhaustive()
    }
}

impl Running {
    /// Waits until the run has its number, or has ended: whichever comes
    /// first. Never waits on an event that cannot come.
    pub async fn admitted(&mut self) -> Result<Admission, EngineError> {
        if let Some(rx) = self.numbered.take()
            && let Ok(n) = rx.await
        {
            return Ok(Admission::Started {
                run: n.run,
                number: n.number,
            });
        }
        Ok(Admission::Ended(self.wait().await?))
    }

    async fn wait(&mut self) -> Result<BackupReport, EngineError> {
        if let Some(r) = &self.ended {
            return Ok(r.clone());
        }
        let future = self.report.take().ok_or(EngineError::Gone {
            actor: "coordinator",
        })?;
        let report = future.await?;
        self.ended = Some(report.clone());
        Ok(report)
    }

    /// Waits for the report.
    pub async fn report(mut self) -> Result<BackupReport, EngineError> {
        self.wait().await
    }
}

/// An admitted restore or integration: the coordinator refuses others
/// until it is dropped; the app's advisory lock is held meanwhile.
pub(crate) struct Ticket {
    id: u64,
    _lock: std::fs::File,
    coordinator: Addr<Coordinator>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // `do_send` ignores the mailbox's capacity: the release is never
        // dropped while the engine runs.
        self.coordinator.do_send(Dismiss { id: self.id });
    }
}

impl Engine {
    /// Starts the engine of the app `layout` describes. The actors run on an
    /// actix system of their own thread, so this works from inside a tokio
    /// multi-thread runtime as well as outside any runtime.
    pub fn start(layout: AppLayout, options: EngineOptions) -> Result<BackupHandle, EngineError> {
        let locks = LockManager::new();
        let (events, _) = broadcast::channel(256);
        let (tally_tx, tally) = watch::channel(Tally::default());
        let (live_tx, live) = watch::channel(None);
        let live_events = events.subscribe();
        let (tx, rx) = std::sync::mpsc::channel();
        let clock = options.clock.clone();
        let options_clock = options.clock.clone();
        let (thread_locks, thread_events, thread_layout) =
            (locks.clone(), events.clone(), layout.clone());
        let io = crate::io::StoreIo::start().map_err(EngineError::Start)?;
        let thread = std::thread::Builder::new()
            .name("sauve-engine".to_owned())
            .spawn(move || {
                let runner = actix::System::new();
                runner.block_on(async move {
                    let actors = start_actors(&thread_layout, &options, thread_locks, io).await;
                    let coordinator = Coordinator {
                        layout: thread_layout,
                        options,
                        actors: actors.clone(),
                        events: thread_events,
                        tally: tally_tx,
                        busy: None,
                        stop: None,
                        ids: 0,
                    }
                    .start();
                    actix::spawn(crate::live::follow(live_events, live_tx, options_clock));
                    let _ = tx.send((coordinator, actors, actix::System::current()));
                });
                let _ = runner.run();
            })
            .map_err(EngineError::Start)?;
        let (coordinator, actors, system) = rx.recv().map_err(|_| EngineError::Gone {
            actor: "engine thread",
        })?;
        Ok(BackupHandle {
            inner: Arc::new(Inner {
                coordinator,
                actors,
                system,
                locks,
                events,
                tally,
                live,
                layout,
                clock,
                settings_saved: watch::Sender::new(0),
                thread: Mutex::new(Some(thread)),
            }),
        })
    }
}

/// Starts the actors of one engine, on the actix system of the current
/// thread. The journal entries that alert deliveries interrupted by a stop
/// of sauve left waiting are written first, before any request comes.
async fn start_actors(
    layout: &AppLayout,
    options: &EngineOptions,
    locks: LockManager,
    io: crate::io::StoreIo,
) -> Actors {
    let app = layout.app.clone();
    // Blocking file IO: each on a thread of its own.
    let journal_app = app.clone();
    let journal = SyncArbiter::start(1, move || JournalKeeper::new(journal_app.clone()));
    let (resolver_layout, resolver_journal) = (layout.clone(), journal.clone());
    let resolver = SyncArbiter::start(1, move || {
        Resolver::new(resolver_layout.clone(), resolver_journal.clone())
    });
    let history = SyncArbiter::start(1, HistoryKeeper::default);
    let state_app = app.clone();
    let state = SyncArbiter::start(1, move || StateKeeper::new(state_app.clone()));
    for entry in state.send(ResolveInterrupted).await.unwrap_or_default() {
        if let Ok(Err(e)) = journal.send(entry).await {
            tracing::warn!("the journal entry of an interrupted alert was not written: {e}");
        }
    }
    let alerter = Alerter {
        app: app.clone(),
        host: crate::actors::alerts::host_name(),
        page: None,
        policy: options.alert_delivery.clone(),
        state: state.clone(),
        journal: journal.clone(),
        resolver: resolver.clone(),
        clock: options.clock.clone(),
        in_flight: 0,
        drained: Vec::new(),
    }
    .start();
    let offsite =
        crate::actors::offsite::Offsite::new(app, history.clone(), options.clock.clone()).start();
    Actors {
        io,
        resolver,
        copier: SyncArbiter::start(1, Copier::default),
        offsite,
        journal,
        history,
        state,
        locks: LockKeeper::new(locks).start(),
        alerter,
    }
}

impl BackupHandle {
    /// Sends a backup request and returns at once; the run goes on whether
    /// or not the [`Running`] is kept. While one runs, another request ends
    /// at once with 1402 (1417 during a log integration); a caller holding a
    /// write guard gets 1404. Each ends with one report and one `finished`.
    pub fn begin(&self, trigger: Trigger) -> Running {
        self.request(trigger, None)
    }

    fn request(&self, trigger: Trigger, scheduled: Option<Scheduled>) -> Running {
        let (tx, rx) = oneshot::channel();
        // actix queues the message now; the future only waits for the reply.
        let request = self.inner.coordinator.send(StartBackup {
            trigger,
            scheduled,
            holds_write_guard: self.inner.locks.current_task_holds_write_guard(),
            numbered: tx,
        });
        Running {
            numbered: Some(rx),
            report: Some(Box::pin(async move {
                request.await.map_err(|_| EngineError::Gone {
                    actor: "coordinator",
                })
            })),
            ended: None,
        }
    }

    /// Runs a backup now and waits for its report (see [`BackupHandle::begin`]).
    pub async fn backup(&self, trigger: Trigger) -> Result<BackupReport, EngineError> {
        self.begin(trigger).report().await
    }

    /// Runs the first attempt at a scheduled slot (its time goes to the
    /// journal and history).
    pub async fn backup_scheduled(
        &self,
        slot: jiff::Timestamp,
    ) -> Result<BackupReport, EngineError> {
        self.backup_attempt(Scheduled::first(slot)).await
    }

    /// Runs a scheduled attempt: its slot, its number, and whether a failure
    /// gives up (then recorded as 1401, behaviour §9.1).
    pub async fn backup_attempt(&self, scheduled: Scheduled) -> Result<BackupReport, EngineError> {
        self.request(Trigger::Scheduled, Some(scheduled))
            .report()
            .await
    }

    /// The Stop button: the running copy ends within about a second and the
    /// run reports 1406. Returns whether a backup was running.
    pub async fn stop(&self) -> Result<bool, EngineError> {
        ask(&self.inner.coordinator, "coordinator", StopBackup).await
    }

    /// Whether a backup is running.
    pub async fn is_running(&self) -> Result<bool, EngineError> {
        ask(&self.inner.coordinator, "coordinator", IsRunning).await
    }

    /// Events of every run from now on: start, phases, progress (at most 10
    /// file events a second), warnings, the end. A slow subscriber misses
    /// progress events rather than slowing the backup.
    pub fn subscribe(&self) -> broadcast::Receiver<BackupEvent> {
        self.inner.events.subscribe()
    }

    /// The backup running now, if any (phase, bytes, file), as the events
    /// said it last; changes as they come.
    pub fn live(&self) -> watch::Receiver<Option<crate::live::LiveRun>> {
        self.inner.live.clone()
    }

    /// How many requests ended so far; changes with every `finished`.
    pub fn tally(&self) -> watch::Receiver<Tally> {
        self.inner.tally.clone()
    }

    /// The lock manager: host apps take read and write guards here around
    /// their own access, and the engine takes its backup locks from it.
    pub fn locks(&self) -> &LockManager {
        &self.inner.locks
    }

    /// The app folder.
    pub fn app(&self) -> &Path {
        &self.inner.layout.app
    }

    /// The app's files.
    pub fn layout(&self) -> &AppLayout {
        &self.inner.layout
    }

    /// The engine's clock: every time sauve records comes from it.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// The app's effective settings, read and validated now (1419).
    pub async fn settings(&self) -> Result<Arc<AppSettings>, EngineError> {
        ask(&self.inner.actors.resolver, "resolver", ReadSettings).await?
    }

    /// Says that the settings files were just saved (the page's Settings
    /// form does): the scheduler loop re-reads them now rather than within
    /// its minute.
    pub fn settings_saved(&self) {
        self.inner
            .settings_saved
            .send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes each time [`BackupHandle::settings_saved`] is called.
    pub fn watch_settings_saved(&self) -> watch::Receiver<u64> {
        self.inner.settings_saved.subscribe()
    }

    /// Waits until the off-site copies under way (if any) have ended,
    /// copied or failed; a retry scheduled for later is not waited for.
    pub async fn copies_settled(&self) -> Result<(), EngineError> {
        ask(
            &self.inner.actors.offsite,
            "off-site copier",
            crate::actors::offsite::messages::DrainCopies,
        )
        .await
    }

    /// Where the copies to each `[[offsite]]` destination stand (behaviour §19).
    pub async fn offsite(&self) -> Result<Vec<crate::state::OffsiteStatus>, EngineError> {
        let app = self.inner.layout.app.clone();
        self.inner
            .actors
            .io
            .blocking(move || {
                crate::overview::destination_usage(&app)
                    .map(|d| crate::state::offsite_status(&app, &d.path))
            })
            .await?
    }

    /// The destination folder of the settings in force, with its free and
    /// used space (behaviour §15, §18).
    pub async fn destination(&self) -> Result<crate::overview::DestinationUsage, EngineError> {
        let app = self.inner.layout.app.clone();
        self.inner
            .actors
            .io
            .blocking(move || crate::overview::destination_usage(&app))
            .await?
    }

    /// What a backup with the settings in force would hold now, part by
    /// part, each found or not (the MSC's "Contents of the backup file").
    pub async fn content(&self) -> Result<crate::overview::ContentSummary, EngineError> {
        use crate::actors::resolver::messages::DescribeContent;
        let settings = self.settings().await?;
        ask(
            &self.inner.actors.resolver,
            "resolver",
            DescribeContent { settings },
        )
        .await?
    }

    /// This app's entries of `backupHistory.json` in its destination, as
    /// written (oldest first); none when there is no history yet. Reads
    /// only: a damaged file is reported, not moved aside (the records
    /// actor does that at the next backup).
    pub async fn history(&self) -> Result<Vec<sauve_history::HistoryEntry>, EngineError> {
        let settings = self.settings().await?;
        let destination = crate::plan::destination_to_read(&self.inner.layout.app, &settings)?
            .records()
            .to_path_buf();
        let key = crate::settings::structure_key(&self.inner.layout);
        self.inner
            .actors
            .io
            .blocking(move || read_history(&destination, &key))
            .await?
    }

    /// Entries `skip..skip + take` of this app's Backup Journal counted
    /// from the newest, newest first, and whether older ones remain.
    pub async fn journal_entries(
        &self,
        skip: usize,
        take: usize,
    ) -> Result<(Vec<Entry>, bool), EngineError> {
        let dir = sauve_journal::journal_dir(&self.inner.layout.app);
        self.inner
            .actors
            .io
            .blocking(move || {
                sauve_journal::read_newest(&dir, skip, take).map_err(EngineError::from)
            })
            .await?
    }

    /// Verifies (behaviour §13.2) the set numbered `number` in this app's
    /// history: every segment, stream, size and checksum. Writes nothing;
    /// runs beside a backup. 1410 when no such set is in the history.
    pub async fn verify_backup(
        &self,
        number: u32,
    ) -> Result<sauve_archive::VerifyReport, EngineError> {
        let archive = self.archive_of(number).await?;
        let app = self.inner.layout.app.clone();
        let io = self.inner.actors.io.clone();
        self.inner
            .actors
            .io
            .blocking(move || {
                let text = archive.to_string_lossy();
                if sauve_settings::is_store_url(&text) {
                    // A set in a bucket destination: read back from there.
                    let (url, name) = text.rsplit_once('/').unwrap_or((&text, ""));
                    let store =
                        crate::destination::StoreDestination::open(&app, &format!("{url}/"), &io)?;
                    return Ok(store.read_back(name, &mut sauve_archive::NoProgress)?);
                }
                sauve_archive::verify(&archive, &mut sauve_archive::NoProgress)
                    .map_err(EngineError::from)
            })
            .await?
    }

    /// The first file of the set numbered `number` in this app's history.
    pub async fn archive_of(&self, number: u32) -> Result<PathBuf, EngineError> {
        self.history()
            .await?
            .into_iter()
            .rev()
            .find(|e| {
                e.is_numbered_backup() && e.backup_number == number && !e.backup_path.is_empty()
            })
            .map(|e| PathBuf::from(e.backup_path))
            .ok_or(EngineError::NoSuchBackup { number })
    }

    /// `sauve.toml` (behaviour §17.1): the last valid one, in force, and why the
    /// file is not valid now, if it is not.
    pub async fn own_settings(
        &self,
    ) -> Result<(Arc<sauve_settings::SauveToml>, Option<EngineError>), EngineError> {
        use crate::actors::resolver::messages::ReadOwnSettings;
        let o = ask(&self.inner.actors.resolver, "resolver", ReadOwnSettings).await?;
        Ok((o.settings, o.problem))
    }

    /// The last backup information (behaviour §15).
    pub async fn last_backup(&self) -> Option<LastBackup> {
        ask(&self.inner.actors.state, "state", ReadState)
            .await
            .ok()
            .and_then(|s| s.0.last_backup)
    }

    /// What the scheduler saved last (behaviour §9.2).
    pub async fn scheduler_state(&self) -> Result<SchedulerState, EngineError> {
        let state = ask(&self.inner.actors.state, "state", ReadState).await?;
        Ok(state.0.scheduler.unwrap_or_default())
    }

    /// Saves what the scheduler remembers across restarts.
    pub async fn save_scheduler_state(&self, state: SchedulerState) -> Result<(), EngineError> {
        ask(
            &self.inner.actors.state,
            "state",
            SaveSchedulerState { state },
        )
        .await?
    }

    /// Appends an entry to the app's Backup Journal, verbose as the settings
    /// say (verbose when they cannot be read).
    pub async fn journal(&self, entry: Entry) -> Result<(), EngineError> {
        // Read now, the settings tell the journal its mode.
        let _ = self.settings().await;
        let msg = AppendJournal::new(entry);
        ask(&self.inner.actors.journal, "journal", msg).await?
    }

    async fn admit(&self, busy: Busy) -> Result<Ticket, EngineError> {
        let admitted = ask(&self.inner.coordinator, "coordinator", Admit { busy }).await?;
        Ok(self.ticket(admitted?))
    }

    /// [`Self::admit`] for the blocking operations, on the caller's thread.
    fn admit_blocking(&self, busy: Busy) -> Result<Ticket, EngineError> {
        let admitted = crate::recorder::call(
            &self.inner.system,
            &self.inner.coordinator,
            "coordinator",
            Admit { busy },
        )?;
        Ok(self.ticket(admitted?))
    }

    fn ticket(&self, Admitted { id, lock }: Admitted) -> Ticket {
        Ticket {
            id,
            _lock: lock,
            coordinator: self.inner.coordinator.clone(),
        }
    }

    /// The records side of a blocking operation run on the caller's thread.
    fn recorder(&self) -> Recorder<'_> {
        Recorder::new(
            &self.inner.layout,
            self.inner.clock.as_ref(),
            &self.inner.actors,
            &self.inner.system,
        )
    }

    /// Restores `archive` (behaviour §13.1), refused while a backup, a restore or
    /// an integration runs (1402, 1417), and into this app's own folder
    /// while the engine serves it (1407). The restore is journaled "Restore"
    /// in this app's Backup Journal and recorded in the history beside the
    /// archive.
    pub async fn restore(
        &self,
        archive: &Path,
        options: RestoreOptions,
        trigger: Trigger,
    ) -> Result<crate::restore::Restored, EngineError> {
        self.restore_watched(archive, options, trigger, Arc::default())
            .await
    }

    /// [`BackupHandle::restore`], adding the bytes restored to `done` as
    /// they are written (for a progress bar).
    pub async fn restore_watched(
        &self,
        archive: &Path,
        options: RestoreOptions,
        trigger: Trigger,
        done: Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<crate::restore::Restored, EngineError> {
        let (archive, store, options) = crate::restore::source_of(
            &self.inner.layout.app,
            archive,
            options,
            &self.inner.actors.io,
        )?;
        if let Some(to) = crate::restore::destination_of(&archive, &options)
            && crate::restore::is_inside_app(&to, &self.inner.layout.app)
        {
            return Err(EngineError::RestoreIntoLiveApp {
                destination: to,
                app: self.inner.layout.app.clone(),
            });
        }
        let _ticket = self.admit(Busy::Restore).await?;
        let started = self.inner.clock.now();
        let result = ask(
            &self.inner.actors.copier,
            "copier",
            RestoreArchive {
                archive: archive.clone(),
                store: store.clone(),
                options: options.clone(),
                done,
            },
        )
        .await
        .and_then(|r| r);
        let ended = self.inner.clock.now();
        let mut warnings = Vec::new();
        let entry = crate::restore::journal_entry(
            &self.inner.clock.zone(),
            &archive,
            &options,
            &result,
            started,
            ended,
        );
        if let Err(e) = self.journal(entry).await {
            warnings.push(format!("the Backup Journal was not written: {e}"));
        }
        let mut report = result?;
        // The settings tell whether a bucket is the app's own destination.
        let settings = match &store {
            Some(_) => self.settings().await.ok(),
            None => None,
        };
        let place = crate::restore::RecordPlace {
            actors: &self.inner.actors,
            layout: &self.inner.layout,
            settings: settings.as_deref(),
        };
        let times = (started, ended);
        place
            .record(
                &archive,
                &mut report,
                store.as_ref(),
                times,
                trigger,
                &mut warnings,
            )
            .await;
        Ok(crate::restore::Restored { report, warnings })
    }

    /// Integrates, in order, every log that follows the restored backup into
    /// the host's data through `apply` (behaviour §13.1, §14.3), up to `until`
    /// (behaviour §20: the end, a sequence, or a time; a point before the set's
    /// end is refused naming that end). Records past the point stay in
    /// their logs. Backups are refused meanwhile (1417). Blocking: call it
    /// off async threads.
    pub fn integrate_after_restore<E: std::fmt::Display>(
        &self,
        report: &RestoreReport,
        identity: [u8; 16],
        current_log: Option<&Path>,
        until: Until,
        apply: impl FnMut(&Record) -> Result<(), E>,
    ) -> Result<crate::integrate::Integration, EngineError> {
        self.integrate_logs(report, identity, current_log, None, until, apply)
    }

    /// Goes on with an integration that an earlier one stopped at a point
    /// (behaviour §20): the records after `last_applied` (where the host's data
    /// stands) up to `until`, from the same restored backup's logs.
    pub fn continue_integration<E: std::fmt::Display>(
        &self,
        report: &RestoreReport,
        identity: [u8; 16],
        current_log: Option<&Path>,
        last_applied: u64,
        until: Until,
        apply: impl FnMut(&Record) -> Result<(), E>,
    ) -> Result<crate::integrate::Integration, EngineError> {
        self.integrate_logs(
            report,
            identity,
            current_log,
            Some(last_applied),
            until,
            apply,
        )
    }

    fn integrate_logs<E: std::fmt::Display>(
        &self,
        report: &RestoreReport,
        identity: [u8; 16],
        current_log: Option<&Path>,
        start: Option<u64>,
        until: Until,
        apply: impl FnMut(&Record) -> Result<(), E>,
    ) -> Result<crate::integrate::Integration, EngineError> {
        let _ticket = self.admit_blocking(Busy::Integration)?;
        let mut recorder = self.recorder();
        let set_aside = recorder.set_asides()?;
        let logs = crate::integrate::run(
            &mut recorder,
            report,
            identity,
            current_log,
            start,
            until,
            &set_aside,
            apply,
        )?;
        Ok(crate::integrate::Integration {
            logs,
            warnings: recorder.warnings,
        })
    }

    /// The open check of behaviour §13.3: with damaged data and AutomaticRestore,
    /// the newest backup that verifies is restored and the logs after it
    /// integrated; with healthy data, the current log's records beyond
    /// `health.last_applied`. An automatic restore that a crash interrupted
    /// (`Data/.sauve-open-restore` is there) is done again, whatever
    /// `health` says. `apply` must make each record durable in the host's
    /// data before it returns: once the check returns, nothing marks the
    /// restored data as needing its logs. Blocking: call it off async
    /// threads.
    pub fn open_check<E: std::fmt::Display>(
        &self,
        health: DataHealth,
        identity: [u8; 16],
        until: Until,
        reload: impl FnMut() -> u64,
        apply: impl FnMut(&Record) -> Result<(), E>,
    ) -> Result<OpenOutcome, EngineError> {
        // An interrupted automatic restore is done again: a restore too.
        let busy = if health.damaged || crate::open::interrupted_marker(&self.inner.layout).exists()
        {
            Busy::Restore
        } else {
            Busy::Integration
        };
        let _ticket = self.admit_blocking(busy)?;
        let mut recorder = self.recorder();
        let mut outcome = crate::open::run(&mut recorder, health, identity, until, reload, apply)?;
        outcome.warnings = recorder.warnings;
        Ok(outcome)
    }

    /// Restores the app's data in place as it was at `until` (behaviour §20):
    /// the newest set that ends before the point and verifies is put in
    /// place as the automatic restore does (the current data-kind files
    /// moved into `Data/Replaced files (restoring) <timestamp>/`, the
    /// current log kept), then its logs are integrated through `apply` up
    /// to the point. Journaled ("Restore", then "Log integration") and
    /// recorded in the history. The records past the point stay in the
    /// logs, recorded as set aside: every later integration (the open
    /// check, a restore of an older set) steps over them, so nothing the
    /// restore undid comes back. Call it before the host opens its data,
    /// as `open_check`; `reload` tells where the restored data stands.
    /// 1410 when no set ends before the point or the app has no sauve log.
    /// Blocking: call it off async threads.
    pub fn restore_to_point<E: std::fmt::Display>(
        &self,
        identity: [u8; 16],
        until: Until,
        reload: impl FnMut() -> u64,
        apply: impl FnMut(&Record) -> Result<(), E>,
    ) -> Result<crate::open::PointRestore, EngineError> {
        let _ticket = self.admit_blocking(Busy::Restore)?;
        let mut recorder = self.recorder();
        let mut outcome = crate::open::to_point(&mut recorder, identity, until, reload, apply)?;
        outcome.warnings = recorder.warnings;
        Ok(outcome)
    }

    /// The open alerts (behaviour §17.2), oldest first.
    pub async fn alerts(&self) -> Result<Vec<crate::state::AlertRecord>, EngineError> {
        let state = ask(&self.inner.actors.state, "state", ReadState).await?;
        Ok(state.0.alerts.into_iter().filter(|a| a.is_open()).collect())
    }

    /// Acknowledges alert `id`, or every open alert with `None`: they leave
    /// `sauve status` and the page's banner. How many were acknowledged.
    pub async fn acknowledge_alerts(&self, id: Option<u64>) -> Result<usize, EngineError> {
        let msg = crate::actors::state::messages::AcknowledgeAlerts {
            id,
            now: self.inner.clock.now(),
        };
        ask(&self.inner.actors.state, "state", msg).await?
    }

    /// Sends a test alert through every notifier of `sauve.toml` and waits
    /// for each outcome (`sauve alert test`).
    pub async fn test_alerts(&self) -> Result<Vec<sauve_alerts::Delivery>, EngineError> {
        use crate::actors::alerts::messages::TestAlerts;
        ask(&self.inner.actors.alerter, "alerter", TestAlerts).await?
    }

    /// Raises the stale alert if no backup succeeded for
    /// `alerts.stale_after`. The scheduler loop calls it each time it
    /// looks (at least every minute); a host without it calls it itself.
    pub async fn check_alerts(&self) -> Result<Option<u64>, EngineError> {
        use crate::actors::alerts::messages::CheckStaleness;
        ask(&self.inner.actors.alerter, "alerter", CheckStaleness).await?
    }

    /// Waits until every alert being delivered has been delivered or has
    /// failed, and its journal entry written.
    pub async fn alerts_delivered(&self) -> Result<(), EngineError> {
        use crate::actors::alerts::messages::DrainAlerts;
        ask(&self.inner.actors.alerter, "alerter", DrainAlerts).await
    }

    /// Where the MSC page is served, once known: alerts link to it.
    pub async fn set_page_url(&self, url: Option<String>) -> Result<(), EngineError> {
        use crate::actors::alerts::messages::SetPage;
        ask(&self.inner.actors.alerter, "alerter", SetPage { url }).await
    }

    /// Stops the engine. A running backup is stopped first (1406) and
    /// recorded; alerts being delivered are waited for (at most their
    /// timeouts and retries); then the actors end.
    pub async fn shutdown(self) {
        if self.stop().await.unwrap_or(false) {
            // Wait for the stopped run to record itself: its `finished`.
            let mut tally = self.tally();
            while self.is_running().await.unwrap_or(false) {
                if tally.changed().await.is_err() {
                    break;
                }
            }
        }
        let _ = ask(
            &self.inner.actors.alerter,
            "alerter",
            crate::actors::alerts::messages::DrainAlerts,
        )
        .await;
        // Copies under way finish (or fail and stay pending for the next run).
        let _ = self.copies_settled().await;
        drop(self);
    }
}

/// `key`'s entries in `destination/backupHistory.json`, read only.
fn read_history(
    destination: &Path,
    key: &str,
) -> Result<Vec<sauve_history::HistoryEntry>, EngineError> {
    let Some(text) = sauve_history::read_json_text(destination)? else {
        return Ok(Vec::new());
    };
    sauve_history::read_entries(&text, key).ok_or_else(|| {
        EngineError::History(sauve_history::HistoryError::Invalid {
            path: destination.join(sauve_history::FILE_NAME),
        })
    })
}
