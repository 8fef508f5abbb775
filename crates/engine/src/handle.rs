//! The facade host apps use: [`Engine::start`] gives a [`BackupHandle`].
//! The handle holds the verbs a host calls (back up, stop, follow, lock,
//! restore, integrate, check at open, shut down) and hands out the views of
//! `views/` for the rest; it only wires requests to the actors: what a
//! request does is decided in the modules it forwards to.

use sauve_number::BackupNumber;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use actix::{Actor, Addr, SyncArbiter};
use sauve_archive::{RestoreOptions, RestoreReport};
use sauve_locking::LockManager;
use sauve_logfile::{Record, Until};
use sauve_settings::AppLayout;
use tokio::sync::{broadcast, oneshot, watch};

use crate::actors::alerts::Alerter;
use crate::actors::coordinator::Coordinator;
use crate::actors::coordinator::messages::{Admit, Dismiss, IsRunning, StartBackup, StopBackup};
use crate::actors::copier::Copier;
use crate::actors::history::HistoryKeeper;
use crate::actors::journal::JournalKeeper;
use crate::actors::locks::LockKeeper;
use crate::actors::resolver::Resolver;
use crate::actors::state::StateKeeper;
use crate::actors::state::messages::ResolveInterrupted;
use crate::actors::{Actors, ask};
use crate::api::{BackupEvent, BackupReport, Clock, EngineOptions, Scheduled, Tally, Trigger};
use crate::error::{Busy, EngineError};
use crate::open::{DataHealth, OpenOutcome};
use crate::recorder::Recorder;
use crate::run::Numbered;
use crate::views::{Alerts, Config, Offsite, Records};

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
    /// The host's rehearsal functions, when it gave them.
    rehearsal: Option<crate::api::RehearsalFactory>,
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
///
/// Its own methods are the verbs; the rest is in its views:
/// [`records`](BackupHandle::records) (history, journal, last backup, the
/// scheduler's state, verify), [`alerts`](BackupHandle::alerts),
/// [`offsite`](BackupHandle::offsite) and [`config`](BackupHandle::config)
/// (the settings, the destination, the content). Scheduled backups are
/// [`scheduler_loop`](crate::scheduler_loop)'s.
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
        number: BackupNumber,
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

/// Restore rehearsals of the handle's app ([`BackupHandle::rehearsals`]).
#[derive(Clone, Copy)]
pub struct Rehearsals<'a>(&'a BackupHandle);

impl Rehearsals<'_> {
    /// Rehearses a restore (behaviour §22): a set of the source restored
    /// into a sandbox outside the app, its log backups integrated (read and
    /// checked; nothing applied), `[rehearsal] check` run on the result,
    /// the sandbox removed (with [`EngineOptions::rehearsal`], the host's
    /// functions instead of the check). Refused while a backup, a restore or an
    /// integration runs (1402, 1417); a backup that comes due stops it
    /// (1406), as Stop does. Once admitted it is recorded whatever its end
    /// (journal, history, state; an alert when it fails): the report's
    /// `record.status` tells. `Err` is a rehearsal refused before it began.
    pub async fn rehearse(
        self,
        options: crate::RehearsalOptions,
    ) -> Result<crate::Rehearsal, EngineError> {
        let host = self.0.inner.rehearsal.as_ref().map(|make| make());
        self.0.rehearse_on_thread(options, host).await
    }

    /// [`Rehearsals::rehearse`] with the host's own functions: `host`
    /// opens the restored data, applies each log record to it and checks it.
    pub async fn rehearse_with(
        self,
        options: crate::RehearsalOptions,
        host: Box<dyn crate::RehearsalHost>,
    ) -> Result<crate::Rehearsal, EngineError> {
        self.0.rehearse_on_thread(options, Some(host)).await
    }

    /// [`Rehearsals::rehearse`], answering once the rehearsal is admitted:
    /// a refusal (1402, 1417) is the `Err`; the rehearsal then runs on its
    /// own, and [`RehearsalRunning::report`] waits for its end.
    pub async fn begin(
        self,
        options: crate::RehearsalOptions,
    ) -> Result<RehearsalRunning, EngineError> {
        let host = self.0.inner.rehearsal.as_ref().map(|make| make());
        self.0.start_rehearsal(options, host).await
    }

    /// Reads a sample of the stored bytes of the sets the destination
    /// keeps (behaviour §23), as each backup does: `options`, or `[verify]`
    /// of sauve.toml (1% when `sample_percent` is 0). Admitted like a
    /// rehearsal (1402 while a backup, a restore or another sample runs);
    /// a backup that comes due and [`BackupHandle::stop`] end it early. Each piece read is compared with the sum recorded
    /// when it was stored; what was read is recorded in the state, and a
    /// set newly found damaged raises an alert (an automatic restore no
    /// longer picks it). Reads only: nothing is admitted or locked. `Err`
    /// is a sample that could not be read at all (settings, the store out
    /// of reach).
    pub async fn sample(
        self,
        options: Option<crate::SampleOptions>,
        trigger: Trigger,
    ) -> Result<crate::SampleReport, EngineError> {
        use crate::actors::ask;
        use crate::actors::resolver::messages::{ReadOwnSettings, ReadSettings};
        let inner = &self.0.inner;
        let settings = ask(&inner.actors.resolver, "resolver", ReadSettings).await??;
        let own = ask(&inner.actors.resolver, "resolver", ReadOwnSettings)
            .await?
            .valid()?;
        // `sample_percent = 0` turns the backups' samples off; asked by
        // hand, it reads 1%.
        let options = options.unwrap_or(crate::SampleOptions {
            percent: own.verify.sample_percent.max(1),
            max_mib: own.verify.sample_max_mib,
        });
        let job = crate::sample::SampleJob {
            app: inner.layout.app.clone(),
            place: crate::plan::destination_to_read(&inner.layout.app, &settings)?,
            key: crate::settings::structure_key(&inner.layout),
            base: inner.layout.base_name(),
            io: inner.actors.io.clone(),
            options,
            now: inner.clock.now(),
        };
        let zone = inner.clock.zone();
        // Admitted as a rehearsal is: refused while a backup, a restore
        // or another sample runs; a backup that comes due stops it.
        let ticket = self.0.admit(crate::error::Busy::Sample).await?;
        // Its caller gone, the sample stops: its blocking reads end at the
        // next piece, and the admission ends with the ticket.
        struct StopOnDrop(sauve_locking::CancellationToken);
        impl Drop for StopOnDrop {
            fn drop(&mut self) {
                self.0.cancel();
            }
        }
        let stop = ticket.stop.clone();
        let _stops = StopOnDrop(stop.clone());
        let (mut report, warnings) = crate::sample::sample_and_record(
            &inner.actors,
            job,
            move || stop.is_cancelled(),
            (trigger.as_str(), &zone),
        )
        .await?;
        report.warnings = warnings;
        if ticket.preempted.load(std::sync::atomic::Ordering::SeqCst)
            && report.ended_early.is_some()
        {
            report.ended_early = Some("stopped: a backup came due".to_owned());
        }
        drop(ticket);
        Ok(report)
    }
}

/// A rehearsal admitted and running ([`Rehearsals::begin`]).
#[derive(Debug)]
pub struct RehearsalRunning {
    rx: tokio::sync::oneshot::Receiver<Result<crate::Rehearsal, EngineError>>,
}

impl RehearsalRunning {
    /// Waits for its end (recorded by then).
    pub async fn report(self) -> Result<crate::Rehearsal, EngineError> {
        self.rx
            .await
            .map_err(|_| EngineError::Gone { actor: "rehearsal" })?
    }
}

/// An admitted restore, integration or rehearsal: the coordinator refuses
/// others until it is dropped; the app's advisory lock is held meanwhile.
/// Made by the coordinator itself, so that an admission whose asker went
/// away is dismissed all the same.
pub(crate) struct Ticket {
    id: u64,
    lock: Option<std::fs::File>,
    coordinator: Addr<Coordinator>,
    /// Cancelled by Stop and, for a rehearsal, by a backup that comes due.
    pub(crate) stop: sauve_locking::CancellationToken,
    /// Set when a backup that came due cancelled `stop` (behaviour §22).
    pub(crate) preempted: Arc<std::sync::atomic::AtomicBool>,
}

impl Ticket {
    pub(crate) fn new(
        (id, lock): (u64, std::fs::File),
        coordinator: Addr<Coordinator>,
        stop: sauve_locking::CancellationToken,
        preempted: Arc<std::sync::atomic::AtomicBool>,
    ) -> Ticket {
        Ticket {
            id,
            lock: Some(lock),
            coordinator,
            stop,
            preempted,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // The app's lock first: a backup waiting for this operation takes
        // it as soon as the coordinator hears of the end.
        drop(self.lock.take());
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
        let rehearsal = options.rehearsal.clone();
        let options_clock = options.clock.clone();
        let (thread_locks, thread_events, thread_layout) =
            (locks.clone(), events.clone(), layout.clone());
        let io = crate::io::StoreIo::start().map_err(EngineError::Start)?;
        let thread = std::thread::Builder::new()
            .name("sauve-engine".to_owned())
            .spawn(move || {
                // The actors start on the system's own arbiter, once it runs:
                // nothing drives a future by hand.
                let runner = actix::System::new();
                actix::Arbiter::current().spawn(async move {
                    let actors = start_actors(&thread_layout, &options, thread_locks, io).await;
                    let coordinator = Coordinator {
                        layout: thread_layout,
                        options,
                        actors: actors.clone(),
                        events: thread_events,
                        tally: tally_tx,
                        busy: None,
                        stop: None,
                        freed: watch::channel(0).0,
                        waiting: 0,
                        preempted: None,
                        stop_waiting: false,
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
                rehearsal,
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
    let offsite = crate::actors::offsite::Offsite::new(
        app,
        (history.clone(), resolver.clone()),
        options.clock.clone(),
        io.clone(),
    )
    .start();
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
            waited: false,
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

    /// The app's records: its history, its Backup Journal, the last backup
    /// information, what the scheduler saved, and the sets to verify.
    pub fn records(&self) -> Records<'_> {
        Records::new(self.parts())
    }

    /// The alerts (behaviour §17.2): the open ones, acknowledging, testing
    /// the notifiers, the staleness check.
    pub fn alerts(&self) -> Alerts<'_> {
        Alerts::new(self.parts())
    }

    /// The copies to the `[[offsite]]` destinations (behaviour §19).
    pub fn offsite(&self) -> Offsite<'_> {
        Offsite::new(self.parts())
    }

    /// The settings in force (`backup.4DSettings`, `sauve.toml`) and what
    /// they say: the destination and the content of a backup.
    pub fn config(&self) -> Config<'_> {
        Config::new(self.parts())
    }

    /// What the views read of the engine.
    fn parts(&self) -> crate::views::Parts<'_> {
        crate::views::Parts {
            layout: &self.inner.layout,
            actors: &self.inner.actors,
            clock: &self.inner.clock,
            saved: &self.inner.settings_saved,
        }
    }

    /// Admits a restore, an integration or a rehearsal: the coordinator
    /// refuses others while the ticket lives.
    pub(crate) async fn admit(&self, busy: Busy) -> Result<Ticket, EngineError> {
        ask(&self.inner.coordinator, "coordinator", Admit { busy }).await?
    }

    /// [`Self::admit`] for the blocking operations, on the caller's thread.
    fn admit_blocking(&self, busy: Busy) -> Result<Ticket, EngineError> {
        crate::recorder::call(
            &self.inner.system,
            &self.inner.coordinator,
            "coordinator",
            Admit { busy },
        )?
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

    /// Restore rehearsals (behaviour §22): run one, with the host's own
    /// functions or not, or start one and follow it.
    pub fn rehearsals(&self) -> Rehearsals<'_> {
        Rehearsals(self)
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

    async fn rehearse_on_thread(
        &self,
        options: crate::RehearsalOptions,
        host: Option<Box<dyn crate::RehearsalHost>>,
    ) -> Result<crate::Rehearsal, EngineError> {
        self.start_rehearsal(options, host).await?.report().await
    }

    /// Admits a rehearsal, then runs it on a thread of its own, at low
    /// priority unless told otherwise (its decompression threads inherit
    /// it); the admission ends once it is recorded.
    async fn start_rehearsal(
        &self,
        options: crate::RehearsalOptions,
        host: Option<Box<dyn crate::RehearsalHost>>,
    ) -> Result<RehearsalRunning, EngineError> {
        let ticket = self.admit(Busy::Rehearsal).await?;
        let (handle, (tx, mut rx)) = (self.clone(), tokio::sync::oneshot::channel());
        let (prepared, is_prepared) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("sauve-rehearsal".to_owned())
            .spawn(move || {
                if options.low_priority {
                    crate::rehearsal::lower_priority();
                }
                let job = crate::rehearsal::Job {
                    options,
                    host,
                    stop: ticket.stop.clone(),
                    preempted: ticket.preempted.clone(),
                    prepared: Some(prepared),
                };
                let mut rec = handle.recorder();
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    crate::rehearsal::run(&mut rec, job)
                }));
                drop(ticket);
                let _ = tx.send(ran.unwrap_or_else(|_| {
                    Err(EngineError::Internal("the rehearsal panicked".to_owned()))
                }));
            })
            .map_err(EngineError::Start)?;
        // Answered once it is prepared: a rehearsal refused before (its
        // settings, its source, its folder) is this call's error.
        if is_prepared.await.is_err() {
            return match (&mut rx).await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(_)) | Err(_) => Err(EngineError::Gone { actor: "rehearsal" }),
            };
        }
        Ok(RehearsalRunning { rx })
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
        let parts = crate::manual_restore::Parts {
            layout: &self.inner.layout,
            actors: &self.inner.actors,
            clock: self.inner.clock.as_ref(),
        };
        let source = crate::manual_restore::source(&parts, archive, options).await?;
        let ticket = self.admit(Busy::Restore).await?;
        crate::manual_restore::run(&parts, (source, ticket), trigger, done).await
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
        let _ = self.alerts().delivered().await;
        // Copies under way finish (or fail and stay pending for the next run).
        let _ = self.offsite().settled().await;
        drop(self);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    /// The public functions of every `impl BackupHandle` block in `source`:
    /// lines at the block's first indent that start with `pub fn` or
    /// `pub async fn` (`pub(crate)` helpers are not public).
    fn public_functions(source: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut inside = false;
        for line in source.lines() {
            if line.starts_with("impl BackupHandle ") {
                inside = true;
            } else if inside && line == "}" {
                inside = false;
            } else if inside {
                let signature = line
                    .strip_prefix("    pub fn ")
                    .or_else(|| line.strip_prefix("    pub async fn "));
                if let Some(rest) = signature {
                    let end = rest.find(['(', '<']).unwrap_or(rest.len());
                    names.push(rest[..end].to_owned());
                }
            }
        }
        names
    }

    #[test]
    fn the_handle_keeps_at_most_25_public_functions_and_hands_out_views_for_the_rest() {
        // Every source file of the crate: a second `impl BackupHandle`
        // elsewhere counts too.
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut pending = vec![src];
        let mut names = Vec::new();
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    names.extend(public_functions(&std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        assert!(
            names.iter().any(|n| n == "begin") && names.iter().any(|n| n == "records"),
            "the count found the handle's functions: {names:?}"
        );
        assert!(
            names.len() <= 25,
            "BackupHandle has {} public functions (at most 25: the verbs a host calls; \
             queries and settings belong in a view such as records() or config()): {names:?}",
            names.len()
        );
    }

    #[test]
    fn the_count_sees_plain_and_async_public_functions_only() {
        let source = "impl BackupHandle {\n    pub fn a(&self) {}\n    pub async fn b<T>(&self) {}\n    pub(crate) fn c(&self) {}\n    fn d(&self) {}\n}\nimpl Other {\n    pub fn e(&self) {}\n}\n";
        assert_eq!(public_functions(source), ["a", "b"]);
    }
}
