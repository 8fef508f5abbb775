//! The coordinator: admits requests and runs backups. One backup, restore
//! or log integration at a time for the app: in this process through its
//! own state, across processes through `APP/Logs/sauve.lock`. A request it
//! refuses still ends with one report and one `finished` event (behaviour §5
//! step 1); a scheduled slot refused is journaled "Backup postponed". It
//! keeps the Stop token of the running backup, emits every `finished` event
//! once the engine is free again, and counts the runs that ended.

pub(crate) mod messages;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, ResponseActFuture, WrapFuture};
use sauve_locking::CancellationToken;
use sauve_settings::AppLayout;
use tokio::sync::{broadcast, watch};
use tracing::Instrument;

use crate::actors::copier::messages::EndRun;
use crate::actors::journal::messages::AppendJournal;
use crate::actors::locks::messages::ReleaseRun;
use crate::actors::resolver::messages::ReadSettings;
use crate::actors::{Actors, ask};
use crate::api::Tally;
use crate::api::{BackupEvent, BackupReport, EngineOptions, Scheduled, Trigger};
use crate::error::{Busy, EngineError};
use crate::outcome;
use crate::run::Run;
use messages::*;

/// See the module documentation.
pub(crate) struct Coordinator {
    pub(crate) layout: AppLayout,
    pub(crate) options: EngineOptions,
    pub(crate) actors: Actors,
    pub(crate) events: broadcast::Sender<BackupEvent>,
    pub(crate) tally: watch::Sender<Tally>,
    /// What runs now, and its id.
    pub(crate) busy: Option<(u64, Busy)>,
    /// The Stop of the running backup or rehearsal.
    pub(crate) stop: Option<CancellationToken>,
    /// Counts the admitted operations that ended: a backup that stopped a
    /// rehearsal waits for it to end (behaviour §22).
    pub(crate) freed: watch::Sender<u64>,
    /// Backups waiting for a stopped rehearsal: nothing else is admitted
    /// meanwhile, and `IsRunning` says yes.
    pub(crate) waiting: u32,
    /// Set when a backup stopped the running rehearsal.
    pub(crate) preempted: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Stop was asked while backups waited for a stopped rehearsal: they
    /// end at once with 1406 when they run.
    pub(crate) stop_waiting: bool,
    /// Ids given so far (backup requests and admitted operations).
    pub(crate) ids: u64,
}

impl Coordinator {
    fn next_id(&mut self) -> u64 {
        self.ids += 1;
        self.ids
    }

    /// The admitted operation `id` ended: the engine is free, and a backup
    /// waiting for a stopped rehearsal goes on.
    fn dismiss(&mut self, id: u64) {
        if self.busy.is_some_and(|(busy, _)| busy == id) {
            if self.busy.is_some_and(|(_, b)| b.gives_way()) {
                self.stop = None;
                self.preempted = None;
            }
            self.busy = None;
            self.freed.send_modify(|n| *n += 1);
        }
    }

    /// Why a request is refused in this process, if it is.
    fn refusal(&self) -> Option<EngineError> {
        if self.waiting > 0 && self.busy.is_none() {
            return Some(EngineError::AlreadyRunning { busy: Busy::Backup });
        }
        match self.busy {
            Some((_, Busy::Integration)) => Some(EngineError::IntegrationRunning),
            Some((_, busy)) => Some(EngineError::AlreadyRunning { busy }),
            None => None,
        }
    }

    /// The end of a backup request: the engine is free, observers learn it.
    fn finished(&mut self, report: &BackupReport) {
        let text = if report.postponed && report.status.is_success() {
            "Backup postponed".to_owned()
        } else {
            report.status.text().to_owned()
        };
        let _ = self.events.send(BackupEvent::Finished {
            run: report.run,
            status: report.status.code(),
            status_text: text,
            number: report.number,
            archives: report.archives.clone(),
        });
        self.tally.send_modify(|t| {
            t.finished += 1;
            if report.trigger.is_on_demand() && report.status.is_success() {
                t.on_demand_successes += 1;
            }
            *t.by_outcome
                .entry((report.trigger, report.status.code()))
                .or_default() += 1;
        });
    }
}

impl Actor for Coordinator {
    type Context = Context<Self>;
}

/// A refused backup request: its report; a scheduled slot is journaled
/// "Backup postponed" (behaviour §5 step 1), with the next slot when the
/// settings tell it.
async fn refuse(
    actors: Actors,
    options: EngineOptions,
    run: u64,
    trigger: Trigger,
    scheduled: Option<Scheduled>,
    why: EngineError,
) -> BackupReport {
    let now = options.clock.now();
    tracing::info!(run, trigger = trigger.as_str(), "refused: {why}");
    let mut report = outcome::refusal(run, trigger, now, &why);
    if trigger == Trigger::Scheduled {
        let zone = options.clock.zone();
        let settings = ask(&actors.resolver, "resolver", ReadSettings)
            .await
            .ok()
            .and_then(Result::ok);
        let next = settings.as_ref().and_then(|s| {
            sauve_scheduler::Schedule::from_settings(&s.settings.scheduler)
                .next_after(&zone, scheduled.map_or(now, |s| s.slot))
        });
        let slot = scheduled.map(|s| s.slot);
        let entry = outcome::postponed_entry(&zone, slot, now, &why.to_string(), next);
        let msg = AppendJournal::new(entry);
        if let Err(e) = ask(&actors.journal, "journal", msg).await.and_then(|r| r) {
            report
                .warnings
                .push(format!("the Backup Journal was not written: {e}"));
        }
    }
    report
}

/// Takes the app's advisory lock off the actor thread.
async fn lock_app(app: std::path::PathBuf) -> Result<std::fs::File, EngineError> {
    let path = crate::admission::app_lock_path(&app);
    tokio::task::spawn_blocking(move || crate::admission::try_lock(&path))
        .await
        .map_err(|e| EngineError::Internal(format!("the admission check failed: {e}")))?
}

impl Handler<StartBackup> for Coordinator {
    type Result = ResponseActFuture<Self, BackupReport>;
    fn handle(&mut self, msg: StartBackup, ctx: &mut Context<Self>) -> Self::Result {
        let id = self.next_id();
        let msg_trigger = msg.trigger;
        if msg.waited {
            self.waiting = self.waiting.saturating_sub(1);
        }
        let (actors, options) = (self.actors.clone(), self.options.clone());
        let refusal = if msg.holds_write_guard {
            Some(EngineError::CallerHoldsWriteGuard)
        } else {
            self.refusal()
        };
        // A rehearsal gives way to a backup: stopped, then the backup runs
        // once it has ended (behaviour §22).
        if !msg.holds_write_guard && self.busy.is_some_and(|(_, b)| b.gives_way()) {
            // A rehearsal a person stopped first stays stopped by the person.
            if let Some(preempted) = &self.preempted
                && !self
                    .stop
                    .as_ref()
                    .is_some_and(CancellationToken::is_cancelled)
            {
                preempted.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            if let Some(stop) = &self.stop {
                stop.cancel();
            }
            if let Some((_, busy)) = self.busy {
                tracing::info!("a backup came due: {busy} is stopped");
            }
            self.waiting += 1;
            let (mut freed, me) = (self.freed.subscribe(), ctx.address());
            let trigger = msg_trigger;
            let mut msg = msg;
            msg.waited = true;
            let again = async move {
                let _ = freed.changed().await;
                match me.send(msg).await {
                    Ok(report) => report,
                    Err(e) => {
                        let why = EngineError::Internal(format!("the coordinator is gone: {e}"));
                        outcome::refusal(id, trigger, options.clock.now(), &why)
                    }
                }
            };
            return Box::pin(again.into_actor(self));
        }
        if let Some(why) = refusal {
            let refused = refuse(actors, options, id, msg.trigger, msg.scheduled, why);
            return Box::pin(refused.into_actor(self).map(|report, act, _| {
                act.finished(&report);
                report
            }));
        }
        let stop = CancellationToken::new();
        // Stop asked while it waited for a rehearsal: it ends at once.
        if msg.waited && self.stop_waiting {
            stop.cancel();
        }
        if self.waiting == 0 {
            self.stop_waiting = false;
        }
        self.busy = Some((id, Busy::Backup));
        self.stop = Some(stop.clone());
        let run = Run {
            id,
            trigger: msg.trigger,
            scheduled: msg.scheduled,
            layout: self.layout.clone(),
            options: options.clone(),
            actors: actors.clone(),
            events: self.events.clone(),
            stop,
            numbered: std::sync::Mutex::new(Some(msg.numbered)),
        };
        let app = self.layout.app.clone();
        let (trigger, scheduled) = (msg.trigger, msg.scheduled);
        let span = tracing::info_span!("backup", run = id, trigger = trigger.as_str());
        let work = async move {
            let app_lock = match lock_app(app).await {
                Ok(lock) => lock,
                Err(why) => return refuse(actors, options, id, trigger, scheduled, why).await,
            };
            let started = options.clock.now();
            // The run on a task of its own: a panic in it becomes a 1409
            // report instead of taking the engine down (behaviour §5).
            let report = match actix::spawn(run.execute(started)).await {
                Ok(report) => report,
                Err(e) => {
                    let why = EngineError::Internal(format!("the backup run panicked: {e}"));
                    let mut r = outcome::refusal(id, trigger, started, &why);
                    r.postponed = false;
                    r.ended = options.clock.now();
                    r
                }
            };
            // Safety net after a panic; a no-op after a normal end.
            let _ = ask(&actors.copier, "copier", EndRun { run: id }).await;
            let _ = ask(&actors.locks, "lock keeper", ReleaseRun { run: id }).await;
            drop(app_lock);
            report
        }
        .instrument(span);
        Box::pin(work.into_actor(self).map(|report, act, _| {
            act.busy = None;
            act.stop = None;
            act.finished(&report);
            report
        }))
    }
}

impl Handler<StopBackup> for Coordinator {
    type Result = bool;
    fn handle(&mut self, _: StopBackup, _: &mut Context<Self>) -> bool {
        if self.waiting > 0 {
            self.stop_waiting = true;
        }
        match &self.stop {
            Some(stop) => {
                stop.cancel();
                true
            }
            None => self.waiting > 0,
        }
    }
}

impl Handler<IsRunning> for Coordinator {
    type Result = bool;
    fn handle(&mut self, _: IsRunning, _: &mut Context<Self>) -> bool {
        matches!(self.busy, Some((_, Busy::Backup))) || self.waiting > 0
    }
}

impl Handler<Admit> for Coordinator {
    type Result = ResponseActFuture<Self, Result<crate::handle::Ticket, EngineError>>;
    fn handle(&mut self, msg: Admit, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(why) = self.refusal() {
            return Box::pin(actix::fut::ready(Err(why)));
        }
        let id = self.next_id();
        self.busy = Some((id, msg.busy));
        let stop = CancellationToken::new();
        let preempted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if msg.busy.gives_way() {
            self.stop = Some(stop.clone());
            self.preempted = Some(preempted.clone());
        }
        let (app, me) = (self.layout.app.clone(), ctx.address());
        Box::pin(
            lock_app(app)
                .into_actor(self)
                .map(move |lock, act, _| match lock {
                    // The ticket dismisses the admission when dropped,
                    // even if its asker is gone before it gets it.
                    Ok(lock) => Ok(crate::handle::Ticket::new((id, lock), me, stop, preempted)),
                    Err(e) => {
                        act.dismiss(id);
                        Err(e)
                    }
                }),
        )
    }
}

impl Handler<Dismiss> for Coordinator {
    type Result = ();
    fn handle(&mut self, msg: Dismiss, _: &mut Context<Self>) {
        self.dismiss(msg.id);
    }
}
