//! The alerter (behaviour §17.2): owns the delivery of alerts. An alert is put in
//! the state file at once (so `sauve status` shows it even if no notifier can
//! be reached); its deliveries then run in the background, bounded in
//! number, each with its timeout and retries (`sauve-alerts`), never
//! holding a backup. When they are done, the run's journal entry is written
//! with one `Alert` line per notifier. It also watches staleness
//! (`alerts.stale_after`) when asked, and answers `sauve alert test`.

pub(crate) mod messages;

use sauve_number::BackupNumber;
use std::path::PathBuf;
use std::sync::Arc;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, ResponseActFuture, WrapFuture,
};
use sauve_alerts::{Alert, AlertKind, Policy};
use sauve_journal::{Entry, Stamp, Title};
use tokio::sync::oneshot;

use crate::actors::ask;
use crate::actors::journal::JournalKeeper;
use crate::actors::journal::messages::AppendJournal;
use crate::actors::resolver::Resolver;
use crate::actors::resolver::messages::ReadOwnSettings;
use crate::actors::state::StateKeeper;
use crate::actors::state::messages::{RecordAlert, ResolveAlert, WatchStaleness};
use crate::api::Clock;
use crate::error::EngineError;
use crate::state::PendingJournal;
use messages::*;

/// Deliveries in progress at most; an alert beyond waits for none and says
/// so in its journal entry (the list keeps it).
const IN_FLIGHT: usize = 8;

/// See the module documentation.
pub(crate) struct Alerter {
    pub(crate) app: PathBuf,
    pub(crate) host: String,
    pub(crate) page: Option<String>,
    pub(crate) policy: Policy,
    pub(crate) state: Addr<StateKeeper>,
    pub(crate) journal: Addr<JournalKeeper>,
    pub(crate) resolver: Addr<Resolver>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) in_flight: usize,
    pub(crate) drained: Vec<oneshot::Sender<()>>,
}

impl Actor for Alerter {
    type Context = Context<Self>;
}

/// The machine's name, for the alert document.
pub(crate) fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

impl Alerter {
    fn alert(&self, d: AlertDraft) -> Alert {
        Alert {
            id: 0,
            kind: d.kind,
            app: self.app.display().to_string(),
            host: self.host.clone(),
            status: d.status.code(),
            status_text: d.status.text().to_owned(),
            trigger: d.trigger,
            number: d.number,
            scheduled: d.scheduled,
            started: d.started,
            ended: d.ended,
            errors: d.errors,
            failures: d.failures,
            page: self.page.clone(),
            raised: self.clock.now(),
        }
    }

    /// Delivers `alert` in the background, then resolves its journal entry.
    fn deliver(
        &mut self,
        alert: Alert,
        notifiers: Vec<Box<dyn sauve_alerts::Notifier>>,
        ctx: &mut Context<Self>,
    ) {
        let (state, journal) = (self.state.clone(), self.journal.clone());
        let id = alert.id;
        self.in_flight += 1;
        let policy = self.policy.clone();
        let work = async move {
            let deliveries = sauve_alerts::deliver_all(&notifiers, &alert, &policy).await;
            for d in &deliveries {
                match &d.error {
                    None => tracing::info!(alert = id, "{}", d.line()),
                    Some(_) => tracing::warn!(alert = id, "{}", d.line()),
                }
            }
            let lines = deliveries
                .iter()
                .map(sauve_alerts::Delivery::line)
                .collect();
            let r = ask(&state, "state", ResolveAlert { id, lines }).await;
            match r.and_then(|r| r) {
                Ok(Some(entry)) => {
                    let written = ask(&journal, "journal", entry).await;
                    if let Err(e) = written.and_then(|r| r) {
                        tracing::warn!("alert {id}: the deliveries were not recorded: {e}");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("alert {id}: the deliveries were not recorded: {e}"),
            }
        };
        ctx.spawn(work.into_actor(self).map(|(), act, _| {
            act.in_flight -= 1;
            if act.in_flight == 0 {
                for tx in act.drained.drain(..) {
                    let _ = tx.send(());
                }
            }
        }));
    }
}

impl Handler<RaiseAlert> for Alerter {
    type Result = ResponseActFuture<Self, Result<u64, EngineError>>;
    fn handle(&mut self, msg: RaiseAlert, _: &mut Context<Self>) -> Self::Result {
        let alert = self.alert(msg.draft);
        let (state, journal, resolver) = (
            self.state.clone(),
            self.journal.clone(),
            self.resolver.clone(),
        );
        let full = self.in_flight >= IN_FLIGHT;
        let RaiseAlert {
            draft: _,
            journal: mut entry,
            whole,
        } = msg;
        let record = async move {
            let own = ask(&resolver, "resolver", ReadOwnSettings).await?;
            let notifiers = sauve_alerts::notifiers(&own.settings.alerts);
            // Nothing to wait for: the entry is written now, saying why.
            let now_line = if notifiers.is_empty() {
                Some(
                    "no notifier is configured in sauve.toml: the alert is in sauve status only"
                        .to_owned(),
                )
            } else if full {
                Some(format!(
                    "not sent: {IN_FLIGHT} alerts are already being delivered; it stays in the list"
                ))
            } else {
                None
            };
            // Kept whole: the journal's mode applies when it is written.
            let pending = now_line.is_none().then(|| PendingJournal {
                text: entry.render(true),
                verbose: whole,
            });
            let recorded = ask(&state, "state", RecordAlert { alert, pending }).await?;
            let line = match (&recorded, now_line) {
                (Err(e), _) => Some(format!("not recorded, not sent: {e}")),
                (Ok(_), line) => line,
            };
            if let Some(line) = line {
                entry.alerts = vec![line];
                let append = AppendJournal { entry, whole };
                ask(&journal, "journal", append).await??;
                return recorded.map(|a| (a, Vec::new()));
            }
            recorded.map(|a| (a, notifiers))
        };
        Box::pin(record.into_actor(self).map(|r, act, ctx| {
            let (alert, notifiers) = r?;
            let id = alert.id;
            if !notifiers.is_empty() {
                act.deliver(alert, notifiers, ctx);
            }
            Ok(id)
        }))
    }
}

impl Handler<TestAlerts> for Alerter {
    type Result = ResponseActFuture<Self, Result<Vec<sauve_alerts::Delivery>, EngineError>>;
    fn handle(&mut self, _: TestAlerts, _: &mut Context<Self>) -> Self::Result {
        let mut alert = self.alert(AlertDraft {
            kind: AlertKind::Test,
            status: sauve_status::Status::Ok,
            trigger: String::new(),
            number: BackupNumber::NONE,
            scheduled: None,
            started: None,
            ended: None,
            errors: Vec::new(),
            failures: 0,
        });
        let (journal, resolver, policy) = (
            self.journal.clone(),
            self.resolver.clone(),
            self.policy.clone(),
        );
        let zone = self.clock.zone();
        let now = self.clock.now();
        Box::pin(
            async move {
                let own = ask(&resolver, "resolver", ReadOwnSettings).await?.valid()?;
                let notifiers = sauve_alerts::notifiers(&own.alerts);
                alert.status_text = "test alert from sauve alert test".to_owned();
                let deliveries = sauve_alerts::deliver_all(&notifiers, &alert, &policy).await;
                let mut entry = Entry::new(Title::Alert);
                entry.reason = Some("test alert (sauve alert test)".to_owned());
                entry.starting = Some(Stamp::at(zone.to_datetime(now)));
                entry.alerts = deliveries
                    .iter()
                    .map(sauve_alerts::Delivery::line)
                    .collect();
                let _ = ask(&journal, "journal", AppendJournal::whole(entry)).await;
                Ok(deliveries)
            }
            .into_actor(self),
        )
    }
}

impl Handler<CheckStaleness> for Alerter {
    type Result = ResponseActFuture<Self, Result<Option<u64>, EngineError>>;
    fn handle(&mut self, _: CheckStaleness, ctx: &mut Context<Self>) -> Self::Result {
        let (state, resolver) = (self.state.clone(), self.resolver.clone());
        let me = ctx.address();
        let now = self.clock.now();
        let zone = self.clock.zone();
        let check = async move {
            let own = ask(&resolver, "resolver", ReadOwnSettings).await?;
            let alerts = &own.settings.alerts;
            if alerts.stale_after.is_none() && alerts.proven_stale_after.is_none() {
                return Ok(None);
            }
            let state = ask(&state, "state", WatchStaleness { now }).await??.0;
            let due = [
                alerts
                    .stale_after
                    .and_then(|after| backup_stale(&state, after, now, &zone)),
                alerts
                    .proven_stale_after
                    .and_then(|after| proof_stale(&state, after, now, &zone)),
            ];
            let mut raised = None;
            for (draft, journal) in due.into_iter().flatten() {
                let raise = RaiseAlert {
                    draft,
                    journal,
                    whole: true,
                };
                raised = Some(ask(&me, "alerter", raise).await??);
            }
            Ok(raised)
        };
        Box::pin(check.into_actor(self))
    }
}

/// `2026-12-01 14:04:29`, local.
fn local(zone: &jiff::tz::TimeZone, t: jiff::Timestamp) -> String {
    zone.to_datetime(t)
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Whether `kind` has an open alert.
fn is_open(state: &crate::state::EngineState, kind: AlertKind) -> bool {
    state
        .alerts
        .iter()
        .any(|a| a.is_open() && a.alert.kind == kind)
}

/// An alert of its own: the draft and its journal entry, saying `reason`.
fn own_alert(
    kind: AlertKind,
    state: &crate::state::EngineState,
    reason: String,
    (now, zone): (jiff::Timestamp, &jiff::tz::TimeZone),
) -> (AlertDraft, Entry) {
    let last = state.last_backup.as_ref();
    let draft = AlertDraft {
        kind,
        status: last.map_or(sauve_status::Status::Ok, |l| l.status),
        trigger: last
            .map(|l| l.trigger.as_str().to_owned())
            .unwrap_or_default(),
        number: last.map_or(BackupNumber::NONE, |l| l.number),
        scheduled: None,
        started: last.map(|l| l.started),
        ended: last.map(|l| l.ended),
        errors: vec![reason.clone()],
        failures: state.scheduler.as_ref().map_or(0, |s| s.failures),
    };
    let mut journal = Entry::new(Title::Alert);
    journal.reason = Some(reason);
    journal.starting = Some(Stamp::at(zone.to_datetime(now)));
    (draft, journal)
}

/// No backup succeeded for longer than `after` (behaviour §17.2).
fn backup_stale(
    state: &crate::state::EngineState,
    after: std::time::Duration,
    now: jiff::Timestamp,
    zone: &jiff::tz::TimeZone,
) -> Option<(AlertDraft, Entry)> {
    if is_open(state, AlertKind::Stale) {
        return None;
    }
    let since = state.last_success.or(state.watching_since)?;
    let after_signed = jiff::SignedDuration::try_from(after).unwrap_or(jiff::SignedDuration::MAX);
    if now.duration_since(since) <= after_signed {
        return None;
    }
    let reason = match state.last_success {
        Some(t) => format!(
            "no backup succeeded since {} (alerts.stale_after is {} s)",
            local(zone, t),
            after.as_secs()
        ),
        None => format!(
            "no backup succeeded since sauve started watching at {} (alerts.stale_after is {} s)",
            local(zone, since),
            after.as_secs()
        ),
    };
    Some(own_alert(AlertKind::Stale, state, reason, (now, zone)))
}

/// The newest proven recovery point is older than `after` (behaviour §22).
/// Never while the last rehearsal could prove nothing on this host (an
/// encrypted source without its identity): that is shown, not alerted.
fn proof_stale(
    state: &crate::state::EngineState,
    after: std::time::Duration,
    now: jiff::Timestamp,
    zone: &jiff::tz::TimeZone,
) -> Option<(AlertDraft, Entry)> {
    if is_open(state, AlertKind::ProofStale)
        || state.last_rehearsal.as_ref().is_some_and(|r| !r.provable)
    {
        return None;
    }
    let point = state.proven.as_ref().and_then(|p| p.point);
    let since = point.or(state.proof_watching_since)?;
    let after_signed = jiff::SignedDuration::try_from(after).unwrap_or(jiff::SignedDuration::MAX);
    if now.duration_since(since) <= after_signed {
        return None;
    }
    let reason = match (point, &state.proven) {
        (Some(t), Some(p)) => format!(
            "the newest state proven restorable is {} (set {} from {}), older than alerts.proven_stale_after ({} s)",
            local(zone, t),
            p.set,
            p.source,
            after.as_secs()
        ),
        _ => format!(
            "no restore proven since sauve started watching at {} (alerts.proven_stale_after is {} s; `sauve rehearse` proves one)",
            local(zone, since),
            after.as_secs()
        ),
    };
    let (mut draft, journal) = own_alert(AlertKind::ProofStale, state, reason, (now, zone));
    // The set it is about: the one that proved the newest point.
    if let Some(p) = &state.proven {
        (draft.number, draft.status, draft.trigger) = (p.number, p.status, String::new());
        (draft.started, draft.ended) = (Some(p.started), Some(p.ended));
    }
    Some((draft, journal))
}

impl Handler<DrainAlerts> for Alerter {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, _: DrainAlerts, _: &mut Context<Self>) -> Self::Result {
        if self.in_flight == 0 {
            return Box::pin(actix::fut::ready(()));
        }
        let (tx, rx) = oneshot::channel();
        self.drained.push(tx);
        Box::pin(
            async move {
                let _ = rx.await;
            }
            .into_actor(self),
        )
    }
}

impl Handler<SetPage> for Alerter {
    type Result = ();
    fn handle(&mut self, msg: SetPage, _: &mut Context<Self>) {
        self.page = msg.url;
    }
}
