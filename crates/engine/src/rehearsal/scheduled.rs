//! Rehearsals on a schedule (behaviour §22): `[rehearsal] every`, run by the
//! scheduler loop outside backup slots, on a task of its own so that a
//! backup that comes due is never held up (it stops the rehearsal).

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use sauve_status::Status;

use crate::api::Trigger;
use crate::handle::BackupHandle;
use crate::state::RehearsalRecord;

/// No rehearsal starts when a backup attempt is due sooner than this.
const CLEAR_OF_SLOTS: SignedDuration = SignedDuration::from_mins(15);
/// A rehearsal refused (another process busy, a folder inside the app) is
/// tried again after this.
const AFTER_REFUSAL: SignedDuration = SignedDuration::from_hours(1);

/// The scheduled rehearsal: the one running, and the last refusal said.
#[derive(Default)]
pub(crate) struct Rehearsals {
    running: Option<tokio::task::JoinHandle<()>>,
    refused: Arc<Mutex<Option<(Timestamp, String)>>>,
}

/// Whether a rehearsal is due at `now` by `every` (in `zone`): never run,
/// stopped by a backup that came due (it runs again after it), or the
/// last one (one a person stopped included) started `every` ago, or
/// before a time its cron expression names.
pub(crate) fn is_due(
    last: Option<&RehearsalRecord>,
    (every, zone): (&sauve_settings::Every, &jiff::tz::TimeZone),
    now: Timestamp,
) -> bool {
    match last {
        None => true,
        Some(r) if r.status == Status::Stopped && r.preempted => true,
        Some(r) => every.passed(r.started, now, zone),
    }
}

impl Rehearsals {
    /// Starts a rehearsal when one is due and no backup attempt is near
    /// (`next`); each look of the scheduler loop asks.
    pub(crate) async fn look(
        &mut self,
        handle: &BackupHandle,
        next: Option<Timestamp>,
        now: Timestamp,
    ) {
        if self.running.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let Ok((own, _)) = handle.config().own_settings().await else {
            return;
        };
        let Some(every) = own.rehearsal.every.as_ref() else {
            return;
        };
        if next.is_some_and(|n| n.duration_since(now) < CLEAR_OF_SLOTS) {
            return;
        }
        if self
            .refused
            .lock()
            .ok()
            .and_then(|r| r.as_ref().map(|(at, _)| *at))
            .is_some_and(|at| now.duration_since(at) < AFTER_REFUSAL)
        {
            return;
        }
        let Ok(state) = handle.records().state().await else {
            return;
        };
        // Nothing to prove before a first backup succeeded.
        if state.last_success.is_none()
            || !is_due(
                state.last_rehearsal.as_ref(),
                (every, &handle.clock().zone()),
                now,
            )
            || handle.is_running().await.unwrap_or(true)
        {
            return;
        }
        let options = crate::RehearsalOptions {
            trigger: Trigger::Scheduled,
            ..crate::RehearsalOptions::default()
        };
        let (handle, refused) = (handle.clone(), Arc::clone(&self.refused));
        self.running = Some(tokio::spawn(async move {
            match handle.rehearsals().rehearse(options).await {
                Ok(done) => {
                    if let Ok(mut r) = refused.lock() {
                        *r = None;
                    }
                    let r = &done.record;
                    match &r.error {
                        None => tracing::info!(
                            "scheduled rehearsal of {} from {}: proven",
                            r.set,
                            r.source
                        ),
                        Some(e) => tracing::warn!("scheduled rehearsal: {}: {e}", r.status),
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    if let Ok(mut r) = refused.lock() {
                        if r.as_ref().is_none_or(|(_, said)| *said != text) {
                            tracing::warn!("the scheduled rehearsal was refused: {text}");
                        }
                        *r = Some((handle.clock().now(), text));
                    }
                }
            }
        }));
    }

    /// Ends the loop's rehearsal task (the engine stops it, if it runs).
    pub(crate) fn abort(&mut self) {
        if let Some(t) = self.running.take() {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rehearsal_is_due_when_never_run_stopped_or_a_period_old() {
        let at = |s| Timestamp::from_second(s).unwrap();
        let daily = sauve_settings::Every::Period(std::time::Duration::from_secs(86_400));
        let utc = jiff::tz::TimeZone::UTC;
        let every = (&daily, &utc);
        let record = |status, started| RehearsalRecord {
            set: "App[0001]".to_owned(),
            number: sauve_number::BackupNumber::new(1),
            source: "/b".to_owned(),
            status,
            error: None,
            provable: true,
            preempted: false,
            rate_mib_s: None,
            started: at(started),
            ended: at(started + 10),
            point: None,
            last_sequence: None,
            restore_ms: 0,
            integrate_ms: 0,
            check_ms: 0,
            bytes: 0,
            data_bytes: 0,
        };
        let now = at(1_000_000);
        assert!(is_due(None, every, now));
        assert!(!is_due(
            Some(&record(Status::Ok, 1_000_000 - 3600)),
            every,
            now
        ));
        assert!(is_due(
            Some(&record(Status::Ok, 1_000_000 - 86_400)),
            every,
            now
        ));
        assert!(
            !is_due(
                Some(&record(Status::ArchiveCorrupt, 1_000_000 - 60)),
                every,
                now
            ),
            "a failure waits a period: its alert is out"
        );
        let mut stopped = record(Status::Stopped, 1_000_000 - 60);
        assert!(
            !is_due(Some(&stopped), every, now),
            "one a person stopped waits its period"
        );
        stopped.preempted = true;
        assert!(
            is_due(Some(&stopped), every, now),
            "one a backup stopped runs again"
        );
    }

    #[test]
    fn a_cron_expression_is_due_once_a_time_it_names_passed_since_the_last() {
        let toml = "[rehearsal]\nevery = \"30 3 * * sun\"\n";
        let own = sauve_settings::parse_sauve_toml(
            toml,
            "sauve.toml",
            std::path::Path::new("/app"),
            &|_: &str| None,
        )
        .unwrap();
        let every = own.rehearsal.every.unwrap();
        // Paris: Sunday 2026-03-01 03:30 local is 02:30 UTC.
        let zone = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        let t = |text: &str| text.parse::<Timestamp>().unwrap();
        let since = t("2026-02-22T02:31:00Z"); // just after the last Sunday's
        assert!(!every.passed(since, t("2026-03-01T02:29:00Z"), &zone));
        assert!(every.passed(since, t("2026-03-01T02:30:00Z"), &zone));
        assert!(every.passed(since, t("2026-03-04T12:00:00Z"), &zone));
        // Run at 03:30 on Sunday: not again before the next Sunday.
        let ran = t("2026-03-01T02:30:05Z");
        assert!(!every.passed(ran, t("2026-03-07T23:00:00Z"), &zone));
        for bad in ["\"* * * * *\"", "\"0 3 * *\"", "\"0 3 31 2 *\""] {
            let toml = format!("[rehearsal]\nevery = {bad}\n");
            let e = sauve_settings::parse_sauve_toml(
                &toml,
                "sauve.toml",
                std::path::Path::new("/app"),
                &|_: &str| None,
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("not a cron expression sauve takes"),
                "{bad}: {e}"
            );
            assert!(e.contains("such as \"0 3 * * sun\""), "{e}");
        }
    }
}
