//! The failure policy of scheduled backups (behaviour §9), as a pure state
//! machine: what to do after an attempt, and what a restart missed.

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sauve_settings::BackupFailure;
use sauve_status::Status;
use serde::{Deserialize, Serialize};

use crate::Schedule;

/// `Advanced/BackupFailure`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// TryBackupAtTheNextScheduledDate: on failure, wait for the next slot.
    pub next_slot_only: bool,
    /// TryToBackupAfter, at least 1 s (O-9).
    pub retry_after: Duration,
    /// AbortIfBackupFail with RetryCountBeforeAbort.
    pub abort_after: Option<u32>,
}

impl RetryPolicy {
    /// The policy the settings describe.
    pub fn from_settings(f: &BackupFailure) -> RetryPolicy {
        RetryPolicy {
            next_slot_only: f.try_backup_at_the_next_scheduled_date,
            retry_after: f
                .try_to_backup_after
                .as_duration()
                .max(Duration::from_secs(1)),
            abort_after: f
                .abort_if_backup_fail
                .then_some(f.retry_count_before_abort.max(1)),
        }
    }
}

/// What the scheduler remembers across restarts (in `APP/Logs/sauve-state.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerState {
    /// The last slot handled (run, failed, postponed or missed).
    #[serde(default)]
    pub last_slot: Option<Timestamp>,
    /// Consecutive failed scheduled attempts, missed slots included.
    #[serde(default)]
    pub failures: u32,
    /// After 1401: off until a restart or a successful manual backup.
    /// Kept in memory only, as 4D does.
    #[serde(skip)]
    pub disabled: bool,
}

/// The next scheduled attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// When to run it.
    pub at: Timestamp,
    /// The slot it stands for (its `Scheduled` line).
    pub slot: Timestamp,
    /// 1 for a slot's first attempt, then 2, 3… for its retries.
    pub number: u32,
}

/// What the policy decided after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The status to record: the attempt's, or 1401 when this failure was
    /// the last allowed.
    pub status: Status,
    /// The next attempt, `None` when the scheduler is off or has no slot.
    pub next: Option<Attempt>,
}

impl SchedulerState {
    /// The attempt to plan at start: a catch-up when slots were missed while
    /// the app was down (one failed attempt, 1418, however many slots), else
    /// the next slot. Returns the missed slot too, for the journal.
    pub fn at_start(
        &mut self,
        schedule: &Schedule,
        policy: &RetryPolicy,
        tz: &TimeZone,
        now: Timestamp,
    ) -> (Option<Timestamp>, Decision) {
        let missed = self
            .last_slot
            .and_then(|since| schedule.missed(tz, since, now));
        match missed {
            Some(slot) => {
                let decision =
                    self.after_attempt(schedule, policy, tz, slot, 1, Status::SlotMissed, now);
                (Some(slot), decision)
            }
            None => (
                None,
                Decision {
                    status: Status::Ok,
                    next: first_attempt(schedule, tz, now),
                },
            ),
        }
    }

    /// Applies the policy after a scheduled attempt for `slot` ended with
    /// `status` at `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn after_attempt(
        &mut self,
        schedule: &Schedule,
        policy: &RetryPolicy,
        tz: &TimeZone,
        slot: Timestamp,
        attempt: u32,
        status: Status,
        now: Timestamp,
    ) -> Decision {
        self.last_slot = Some(self.last_slot.map_or(slot, |s| s.max(slot)));
        let next_slot = first_attempt(schedule, tz, now.max(slot));
        if status.is_success() {
            self.failures = 0;
            return Decision {
                status,
                next: next_slot,
            };
        }
        self.failures += 1;
        if let Some(limit) = policy.abort_after
            && self.failures >= limit
        {
            self.disabled = true;
            return Decision {
                status: Status::MaxAttemptsReached,
                next: None,
            };
        }
        if policy.next_slot_only || !status.is_retried() {
            return Decision {
                status,
                next: next_slot,
            };
        }
        let retry_at = now
            .checked_add(
                jiff::SignedDuration::try_from(policy.retry_after)
                    .unwrap_or(jiff::SignedDuration::from_secs(1)),
            )
            .unwrap_or(now);
        // A slot falling due before the retry replaces it.
        let next = match next_slot {
            Some(n) if n.at <= retry_at => Some(n),
            _ => Some(Attempt {
                at: retry_at,
                slot,
                number: attempt + 1,
            }),
        };
        Decision { status, next }
    }

    /// A slot postponed because the data did not change: handled, no failure.
    pub fn postponed(
        &mut self,
        schedule: &Schedule,
        tz: &TimeZone,
        slot: Timestamp,
        now: Timestamp,
    ) -> Option<Attempt> {
        self.last_slot = Some(self.last_slot.map_or(slot, |s| s.max(slot)));
        first_attempt(schedule, tz, now.max(slot))
    }

    /// Whether a failure of the next attempt reaches RetryCountBeforeAbort:
    /// the engine then records that attempt as 1401 (behaviour §9.1).
    pub fn gives_up_on_failure(&self, policy: &RetryPolicy) -> bool {
        policy
            .abort_after
            .is_some_and(|limit| self.failures.saturating_add(1) >= limit)
    }

    /// The attempt to plan when the settings changed while running (a new
    /// schedule, or Never to a schedule): none while the scheduler is off;
    /// a pending retry stays if it comes before the new schedule's first
    /// slot, else that slot.
    pub fn replan(
        &self,
        schedule: &Schedule,
        tz: &TimeZone,
        pending: Option<Attempt>,
        now: Timestamp,
    ) -> Option<Attempt> {
        if self.disabled {
            return None;
        }
        let next_slot = first_attempt(schedule, tz, now);
        match (pending, next_slot) {
            (Some(retry), Some(slot)) if retry.number > 1 && retry.at < slot.at => Some(retry),
            (Some(retry), None) if retry.number > 1 => Some(retry),
            (_, next) => next,
        }
    }

    /// A successful manual (or api, remote) backup re-enables the scheduler
    /// and resets the failure counter.
    pub fn manual_success(&mut self) {
        self.disabled = false;
        self.failures = 0;
    }
}

fn first_attempt(schedule: &Schedule, tz: &TimeZone, after: Timestamp) -> Option<Attempt> {
    schedule.next_after(tz, after).map(|slot| Attempt {
        at: slot,
        slot,
        number: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sauve_settings::TimeOfDay;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn hourly() -> Schedule {
        Schedule::Hourly {
            every: 1,
            starting_at: TimeOfDay::MIDNIGHT,
        }
    }

    fn policy(abort: Option<u32>) -> RetryPolicy {
        RetryPolicy {
            next_slot_only: false,
            retry_after: Duration::from_secs(1),
            abort_after: abort,
        }
    }

    #[test]
    fn a_failure_retries_after_the_delay_with_the_same_slot() {
        let tz = TimeZone::UTC;
        let mut s = SchedulerState::default();
        let slot = ts("2025-01-01T10:00:00Z");
        let now = ts("2025-01-01T10:00:05Z");
        let d = s.after_attempt(
            &hourly(),
            &policy(None),
            &tz,
            slot,
            1,
            Status::WritePermissionDenied,
            now,
        );
        assert_eq!(d.status, Status::WritePermissionDenied);
        assert_eq!(
            d.next,
            Some(Attempt {
                at: ts("2025-01-01T10:00:06Z"),
                slot,
                number: 2
            })
        );
        assert_eq!(s.failures, 1);
    }

    #[test]
    fn the_attempt_reaching_the_limit_records_1401_and_turns_the_scheduler_off_until_a_manual_success()
     {
        let tz = TimeZone::UTC;
        let mut s = SchedulerState::default();
        let slot = ts("2025-01-01T10:00:00Z");
        let p = policy(Some(3));
        let mut now = ts("2025-01-01T10:00:01Z");
        let mut statuses = Vec::new();
        for attempt in 1..=3 {
            let d = s.after_attempt(
                &hourly(),
                &p,
                &tz,
                slot,
                attempt,
                Status::DestinationInvalid,
                now,
            );
            statuses.push(d.status);
            if let Some(n) = d.next {
                now = n.at;
            }
        }
        assert_eq!(
            statuses,
            [
                Status::DestinationInvalid,
                Status::DestinationInvalid,
                Status::MaxAttemptsReached
            ]
        );
        assert!(s.disabled);
        s.manual_success();
        assert!(!s.disabled);
        assert_eq!(s.failures, 0);
    }

    #[test]
    fn statuses_without_retry_and_next_slot_only_wait_for_the_next_slot() {
        let tz = TimeZone::UTC;
        let slot = ts("2025-01-01T10:00:00Z");
        let now = ts("2025-01-01T10:00:03Z");
        let mut s = SchedulerState::default();
        let d = s.after_attempt(&hourly(), &policy(None), &tz, slot, 1, Status::Stopped, now);
        assert_eq!(d.next.map(|n| n.slot), Some(ts("2025-01-01T11:00:00Z")));
        let p = RetryPolicy {
            next_slot_only: true,
            ..policy(None)
        };
        let d = s.after_attempt(&hourly(), &p, &tz, slot, 1, Status::DiskFull, now);
        assert_eq!(
            d.next.map(|n| (n.at, n.number)),
            Some((ts("2025-01-01T11:00:00Z"), 1))
        );
    }

    #[test]
    fn a_slot_falling_due_before_the_retry_replaces_it() {
        let tz = TimeZone::UTC;
        let mut s = SchedulerState::default();
        let p = RetryPolicy {
            retry_after: Duration::from_secs(7200),
            ..policy(None)
        };
        let slot = ts("2025-01-01T10:00:00Z");
        let d = s.after_attempt(
            &hourly(),
            &p,
            &tz,
            slot,
            1,
            Status::BackupError,
            ts("2025-01-01T10:00:02Z"),
        );
        assert_eq!(
            d.next,
            Some(Attempt {
                at: ts("2025-01-01T11:00:00Z"),
                slot: ts("2025-01-01T11:00:00Z"),
                number: 1
            })
        );
    }

    #[test]
    fn the_attempt_that_reaches_the_limit_is_known_before_it_runs() {
        let mut s = SchedulerState::default();
        assert!(!s.gives_up_on_failure(&policy(None)));
        assert!(!s.gives_up_on_failure(&policy(Some(2))));
        s.failures = 1;
        assert!(s.gives_up_on_failure(&policy(Some(2))));
        assert!(s.gives_up_on_failure(&policy(Some(1))));
        assert!(!s.gives_up_on_failure(&policy(Some(3))));
    }

    #[test]
    fn a_changed_schedule_plans_its_first_slot_keeping_an_earlier_retry() {
        let tz = TimeZone::UTC;
        let now = ts("2025-01-01T10:20:00Z");
        let s = SchedulerState::default();
        let daily = Schedule::Daily {
            every: 1,
            hour: TimeOfDay::MIDNIGHT,
        };
        // Never to a schedule: its first slot.
        assert_eq!(
            s.replan(&hourly(), &tz, None, now).map(|a| a.at),
            Some(ts("2025-01-01T11:00:00Z"))
        );
        // A schedule to Never: nothing, unless a retry is pending.
        assert_eq!(s.replan(&Schedule::Never, &tz, None, now), None);
        let retry = Attempt {
            at: ts("2025-01-01T10:25:00Z"),
            slot: ts("2025-01-01T10:00:00Z"),
            number: 2,
        };
        assert_eq!(
            s.replan(&Schedule::Never, &tz, Some(retry), now),
            Some(retry)
        );
        // Hourly to daily: the pending first attempt is replaced, a retry
        // due before the new slot kept.
        let pending = Attempt {
            at: ts("2025-01-01T11:00:00Z"),
            slot: ts("2025-01-01T11:00:00Z"),
            number: 1,
        };
        assert_eq!(
            s.replan(&daily, &tz, Some(pending), now).map(|a| a.at),
            Some(ts("2025-01-02T00:00:00Z"))
        );
        assert_eq!(s.replan(&daily, &tz, Some(retry), now), Some(retry));
        // Off after 1401: nothing until a manual success.
        let off = SchedulerState {
            disabled: true,
            ..SchedulerState::default()
        };
        assert_eq!(off.replan(&hourly(), &tz, None, now), None);
    }

    #[test]
    fn slots_missed_while_down_are_one_failed_attempt_with_1418() {
        let tz = TimeZone::UTC;
        let mut s = SchedulerState {
            last_slot: Some(ts("2025-01-01T10:00:00Z")),
            ..SchedulerState::default()
        };
        let now = ts("2025-01-01T15:30:00Z");
        let (missed, d) = s.at_start(&hourly(), &policy(None), &tz, now);
        assert_eq!(missed, Some(ts("2025-01-01T15:00:00Z")));
        assert_eq!(d.status, Status::SlotMissed);
        assert_eq!(s.failures, 1);
        assert_eq!(
            d.next,
            Some(Attempt {
                at: ts("2025-01-01T15:30:01Z"),
                slot: ts("2025-01-01T15:00:00Z"),
                number: 2
            })
        );
        // First start: nothing is missed.
        let mut fresh = SchedulerState::default();
        let (missed, d) = fresh.at_start(&hourly(), &policy(None), &tz, now);
        assert_eq!((missed, d.status), (None, Status::Ok));
        assert_eq!(d.next.map(|n| n.at), Some(ts("2025-01-01T16:00:00Z")));
    }
}
