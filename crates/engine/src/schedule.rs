//! The scheduler loop (behaviour §9, §10): scheduled backups for any host
//! of the engine, `sauve run` and embedding hosts alike. The schedule's
//! maths and its failure policy are `sauve-scheduler`'s; this loop only
//! looks, waits and asks the handle, with time from the engine's clock.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sauve_scheduler::{Attempt, RetryPolicy, Schedule, SchedulerState};
use sauve_status::Status;
use tokio::sync::watch;

use crate::api::{Clock, Scheduled, Tally};
use crate::error::EngineError;
use crate::handle::BackupHandle;
use crate::settings::AppSettings;
use crate::state::SchedulerView;

/// The schedule and policy of the last valid settings.
#[derive(Clone)]
struct InForce {
    schedule: Schedule,
    policy: RetryPolicy,
    digest: String,
}

impl InForce {
    fn of(s: &AppSettings) -> InForce {
        InForce {
            schedule: Schedule::from_settings(&s.settings.scheduler),
            policy: RetryPolicy::from_settings(&s.settings.advanced.backup_failure),
            digest: s.digest.clone(),
        }
    }
}

/// How long the loop sleeps at most: settings are re-read at least this often.
const TICK: Duration = Duration::from_secs(60);

/// Runs scheduled backups (behaviour §9, §10) for the engine of `handle`:
/// re-reads the settings at least every minute, before each backup and at
/// once when [`Config::settings_saved`](crate::Config::settings_saved) is
/// called (invalid settings keep the last valid schedule, or none until the
/// file is fixed), applies the failure policy, catches up missed slots,
/// persists its state through the engine's records, checks for
/// staleness (`alerts.stale_after`, `alerts.proven_stale_after`) and runs
/// the restore rehearsals `[rehearsal] every` asks for, clear of backup
/// slots (behaviour §22). Time comes from the engine's clock.
/// It publishes what it planned on `view` each time it looks (`sauve run`
/// shows it in `GET /v1/status`, `/metrics` and the page; a host that shows
/// nothing drops the receiver).
///
/// `sauve run` spawns it beside its server; a host that embeds the engine
/// spawns it on its own runtime, with no server:
///
/// ```no_run
/// # async fn host(handle: sauve_engine::BackupHandle) {
/// use sauve_engine::SchedulerView;
/// let (view, _) = tokio::sync::watch::channel(SchedulerView::default());
/// let scheduler = tokio::spawn(sauve_engine::scheduler_loop(handle.clone(), view));
/// // …
/// scheduler.abort();
/// handle.shutdown().await;
/// # }
/// ```
///
/// It runs until aborted or until the engine is gone.
pub async fn scheduler_loop(handle: BackupHandle, view: watch::Sender<SchedulerView>) {
    let Some(mut scheduler) = SchedulerLoop::start(handle, view).await else {
        return;
    };
    while scheduler.look().await.is_ok() {}
}

/// The engine is gone (or its records did not answer): the loop ends.
struct EngineGone;

/// What the scheduler loop keeps from one look to the next.
struct SchedulerLoop {
    handle: BackupHandle,
    clock: Arc<dyn Clock>,
    tz: TimeZone,
    view: watch::Sender<SchedulerView>,
    state: SchedulerState,
    tally: watch::Receiver<Tally>,
    /// Changes when the page saved the settings.
    saved: watch::Receiver<u64>,
    /// The on-demand successes counted so far.
    successes: u64,
    /// The plan of the last valid settings.
    current: Option<InForce>,
    next: Option<Attempt>,
    /// The last settings problem said, so that it is said once.
    invalid: Option<String>,
    /// The last sauve.toml problem said, so that it is said once.
    own_invalid: Option<String>,
    /// Scheduled restore rehearsals (behaviour §22).
    rehearsals: crate::rehearsal::scheduled::Rehearsals,
}

impl Drop for SchedulerLoop {
    fn drop(&mut self) {
        self.rehearsals.abort();
    }
}

impl SchedulerLoop {
    async fn start(
        handle: BackupHandle,
        view: watch::Sender<SchedulerView>,
    ) -> Option<SchedulerLoop> {
        let clock = handle.clock();
        let tz = clock.zone();
        let state = handle.records().scheduler_state().await.ok()?;
        let mut tally = handle.tally();
        let saved = handle.config().watch_settings_saved();
        let successes = tally.borrow_and_update().on_demand_successes;
        Some(SchedulerLoop {
            handle,
            clock,
            tz,
            view,
            state,
            tally,
            saved,
            successes,
            current: None,
            next: None,
            invalid: None,
            own_invalid: None,
            rehearsals: Default::default(),
        })
    }

    /// One look: the settings, the successes, the staleness, then the
    /// attempt that is due, or a wait until one is.
    async fn look(&mut self) -> Result<(), EngineGone> {
        self.read_own_settings().await;
        self.read_settings().await?;
        self.count_on_demand_successes().await;
        // No backup for longer than alerts.stale_after: an alert (behaviour §17.2).
        if let Err(e) = self.handle.alerts().check_staleness().await {
            tracing::warn!("the staleness check failed: {e}");
        }
        let now = self.clock.now();
        // A restore rehearsal when one is due, clear of the next slot.
        let next = self.next.map(|n| n.at);
        self.rehearsals.look(&self.handle, next, now).await;
        self.view.send_replace(SchedulerView {
            next: self.next.map(|n| n.at),
            disabled: self.state.disabled,
            checked: Some(now),
        });
        let (Some(attempt), Some(plan)) = (self.next.filter(|n| n.at <= now), self.current.clone())
        else {
            return self.wait(now).await;
        };
        // A slot that passed by more than a minute ago without firing
        // (suspend, clock jump) is a missed slot (behaviour §9.2).
        if attempt.number == 1
            && now.duration_since(attempt.slot) > jiff::SignedDuration::from_secs(60)
        {
            self.missed(attempt.slot, &plan).await;
            return Ok(());
        }
        self.attempt(attempt, &plan).await
    }

    /// sauve.toml: an invalid file keeps the last valid alert settings
    /// (the engine's resolver holds them); say so once per problem.
    async fn read_own_settings(&mut self) {
        if let Ok((_, problem)) = self.handle.config().own_settings().await {
            let now_problem = problem.map(|e| e.to_string());
            if now_problem != self.own_invalid {
                match &now_problem {
                    Some(p) => tracing::warn!(
                        "invalid sauve.toml; the last valid alert settings stay in force: {p}"
                    ),
                    None if self.own_invalid.is_some() => {
                        tracing::info!("sauve.toml is valid again")
                    }
                    None => {}
                }
                self.own_invalid = now_problem;
            }
        }
    }

    /// The settings, at least every minute and before each backup: a change
    /// of digest replans; invalid settings keep the last valid plan, said
    /// once per problem.
    async fn read_settings(&mut self) -> Result<(), EngineGone> {
        match self.handle.config().settings().await {
            Ok(s) => {
                if self.invalid.take().is_some() {
                    tracing::info!("the settings are valid again");
                }
                if self.current.as_ref().is_none_or(|c| c.digest != s.digest) {
                    self.replan(InForce::of(&s)).await;
                }
            }
            Err(EngineError::Gone { .. }) => return Err(EngineGone),
            Err(e) => {
                let message = e.to_string();
                if self.invalid.as_deref() != Some(message.as_str()) {
                    tracing::warn!(
                        "invalid settings; {}: {message}",
                        if self.current.is_some() {
                            "the last valid schedule stays in force"
                        } else {
                            "no backup is scheduled until they are valid"
                        }
                    );
                    self.invalid = Some(message);
                }
            }
        }
        Ok(())
    }

    /// Plans from `fresh`: the first valid settings catch up what a restart
    /// missed; later ones replan from the next attempt.
    async fn replan(&mut self, fresh: InForce) {
        self.next = if self.current.is_none() {
            let (missed, d) =
                self.state
                    .at_start(&fresh.schedule, &fresh.policy, &self.tz, self.clock.now());
            if let Some(slot) = missed {
                record_missed(&self.handle, slot).await;
                save(&self.handle, &self.state).await;
            }
            d.next
        } else {
            self.state
                .replan(&fresh.schedule, &self.tz, self.next, self.clock.now())
        };
        self.current = Some(fresh);
    }

    /// A successful manual, api or remote backup re-enables a scheduler
    /// turned off by 1401 and resets the failure counter (behaviour §9.1).
    async fn count_on_demand_successes(&mut self) {
        let now_successes = self.tally.borrow_and_update().on_demand_successes;
        if now_successes > self.successes {
            self.successes = now_successes;
            let was_off = self.state.disabled;
            self.state.manual_success();
            if was_off && let Some(c) = &self.current {
                self.next = self
                    .state
                    .replan(&c.schedule, &self.tz, None, self.clock.now());
            }
            save(&self.handle, &self.state).await;
        }
    }

    /// Sleeps until the attempt, waking at least every minute to see
    /// changed settings and clock jumps, and at once when a backup ends or
    /// the page saved the settings.
    async fn wait(&mut self, now: Timestamp) -> Result<(), EngineGone> {
        let wait = self
            .next
            .map(|n| n.at.duration_since(now).unsigned_abs())
            .unwrap_or(TICK)
            .min(TICK);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = self.tally.changed() => if changed.is_err() { return Err(EngineGone) },
            _ = self.saved.changed() => {}
        }
        Ok(())
    }

    /// Journals the missed `slot` and plans past it as a failed first attempt.
    async fn missed(&mut self, slot: Timestamp, plan: &InForce) {
        record_missed(&self.handle, slot).await;
        let d = self.state.after_attempt(
            &plan.schedule,
            &plan.policy,
            &self.tz,
            slot,
            1,
            Status::SlotMissed,
            self.clock.now(),
        );
        self.next = if self.state.disabled { None } else { d.next };
        save(&self.handle, &self.state).await;
    }

    /// Runs the attempt that is due and plans the next from its outcome.
    async fn attempt(&mut self, attempt: Attempt, plan: &InForce) -> Result<(), EngineGone> {
        let scheduled = Scheduled {
            slot: attempt.slot,
            attempt: attempt.number,
            last_allowed: self.state.gives_up_on_failure(&plan.policy),
            failures: self.state.failures,
        };
        let Ok(report) = self.handle.backup_attempt(scheduled).await else {
            return Err(EngineGone);
        };
        self.next = if report.postponed {
            // BackupIfDataChange, or another backup running: the slot is
            // handled, no failure (behaviour §9.3, §5 step 1).
            self.state
                .postponed(&plan.schedule, &self.tz, attempt.slot, self.clock.now())
        } else {
            let d = self.state.after_attempt(
                &plan.schedule,
                &plan.policy,
                &self.tz,
                attempt.slot,
                attempt.number,
                report.status,
                self.clock.now(),
            );
            if self.state.disabled {
                tracing::error!(
                    "scheduled backups are off after {} failed attempts (1401) until a manual backup succeeds",
                    self.state.failures
                );
                None
            } else {
                d.next
            }
        };
        save(&self.handle, &self.state).await;
        Ok(())
    }
}

async fn save(handle: &BackupHandle, state: &SchedulerState) {
    if let Err(e) = handle.records().save_scheduler_state(state.clone()).await {
        tracing::warn!("cannot save the scheduler state: {e}");
    }
}

/// Journals a missed slot as "Full Backup aborted" with 1418 (behaviour §9.2).
async fn record_missed(handle: &BackupHandle, slot: Timestamp) {
    let clock = handle.clock();
    let tz = clock.zone();
    let local = |t: Timestamp| sauve_journal::Stamp::at(tz.to_datetime(t));
    let mut e = sauve_journal::Entry::new(sauve_journal::Title::FullBackupAborted);
    e.trigger = Some("scheduled".to_owned());
    e.scheduled = Some(local(slot));
    e.starting = Some(local(clock.now()));
    e.status = Some(Status::SlotMissed.code());
    e.errors = vec![format!(
        "{}: the app was not running at {}",
        Status::SlotMissed,
        local(slot).raw
    )];
    if let Err(err) = handle.records().append_journal(e).await {
        tracing::warn!("the Backup Journal was not written: {err}");
    }
}
