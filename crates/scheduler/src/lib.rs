//! When scheduled backups run (behaviour §10): a pure function of the
//! settings, the time zone and an instant.
//!
//! Slots are local civil times. Every-N schedules are anchored on fixed
//! epochs, so that a restart never shifts them (behaviour §16, O-1 to O-4):
//! - Hourly(h, t): every time t + k·h within each day, for any integer k (O-4);
//! - Daily(d, t): t on days whose number since 1970-01-01 is divisible by d (O-1);
//! - Weekly(w): each selected day at its hour, in ISO weeks whose index since
//!   the week of 1970-01-05 is divisible by w (O-2); no day selected, no slot;
//! - Monthly(m, Day, t): months where year·12 + month − 1 is divisible by m;
//!   `Last` is the month's last day, and days 29 to 31 are clamped to it (O-3).
//!
//! Daylight saving time: a slot in a gap runs at the gap's end; a slot in a
//! fold runs once, at its first occurrence; slots falling on the same instant
//! merge.
//!
//! The failure policy (behaviour §9) is here too, as a pure state machine
//! ([`SchedulerState`]): retries after TryToBackupAfter, the next slot only,
//! 1401 after RetryCountBeforeAbort, missed slots as one 1418 attempt.
//!
//! Not here: clocks, timers, running backups (the server's), or any IO.

use jiff::Timestamp;
mod policy;

pub use policy::{Attempt, Decision, RetryPolicy, SchedulerState};

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use sauve_settings::{Frequency, MonthDay, Scheduler, TimeOfDay};

/// A schedule, validated from the settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// No scheduled backups.
    Never,
    /// Every `every` hours (1 to 24) on the grid through `starting_at`.
    Hourly {
        /// Hours between slots.
        every: u32,
        /// A time of the grid.
        starting_at: TimeOfDay,
    },
    /// Every `every` days at `hour`.
    Daily {
        /// Days between slots.
        every: u32,
        /// Time of day.
        hour: TimeOfDay,
    },
    /// Selected days of every `every` weeks, each at its own hour.
    Weekly {
        /// Weeks between slots.
        every: u32,
        /// Monday first: the hour of each selected day.
        days: [Option<TimeOfDay>; 7],
    },
    /// One day of every `every` months.
    Monthly {
        /// Months between slots.
        every: u32,
        /// Day of the month.
        day: MonthDay,
        /// Time of day.
        hour: TimeOfDay,
    },
}

impl Schedule {
    /// The schedule the settings describe.
    pub fn from_settings(s: &Scheduler) -> Schedule {
        let every = |n: u32| n.max(1);
        match s.frequency {
            Frequency::Never => Schedule::Never,
            Frequency::Hourly => Schedule::Hourly {
                every: s.hourly.every.clamp(1, 24),
                starting_at: s.hourly.starting_at,
            },
            Frequency::Daily => Schedule::Daily {
                every: every(s.daily.every),
                hour: s.daily.hour,
            },
            Frequency::Weekly => {
                let mut days = [None; 7];
                for (slot, d) in days.iter_mut().zip(&s.weekly.days) {
                    *slot = d.save.then_some(d.hour);
                }
                Schedule::Weekly {
                    every: every(s.weekly.every),
                    days,
                }
            }
            Frequency::Monthly => Schedule::Monthly {
                every: every(s.monthly.every),
                day: s.monthly.day,
                hour: s.monthly.hour,
            },
        }
    }

    /// The first slot strictly after `after`, in `tz`; `None` when there is
    /// none (Never, a week with no day selected, or past the year 9999).
    pub fn next_after(&self, tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
        // Local civil time maps to instants without going back (a gap maps to
        // its end, a fold to its first occurrence), so the first day holding
        // a slot after `after` holds the answer. Starting a day early covers
        // an `after` inside a fold.
        let mut day = tz.to_datetime(after).date().yesterday().ok()?;
        // Each step jumps to the next day that can hold a slot: a month of
        // days at most between two candidates.
        for _ in 0..64 {
            let first = self
                .civil_slots(day)
                .into_iter()
                .filter_map(|dt| instant(tz, dt))
                .filter(|t| *t > after)
                .min();
            if first.is_some() {
                return first;
            }
            day = self.next_candidate_day(day)?;
        }
        None
    }

    /// The latest slot in `(since, now]`, if any: what a stopped server
    /// missed (behaviour §9.2). Any number of missed slots is one catch-up.
    pub fn missed(&self, tz: &TimeZone, since: Timestamp, now: Timestamp) -> Option<Timestamp> {
        // Only the last period before `now` can hold the latest slot.
        let window = jiff::SignedDuration::from_hours(24 * self.period_days());
        let start = now.checked_sub(window).unwrap_or(since).max(since);
        let mut latest = None;
        let mut at = start;
        while let Some(t) = self.next_after(tz, at).filter(|t| *t <= now) {
            latest = Some(t);
            at = t;
        }
        latest
    }

    /// A bound, in days, on the time between two consecutive slots.
    fn period_days(&self) -> i64 {
        match *self {
            Schedule::Never => 1,
            Schedule::Hourly { .. } => 2,
            Schedule::Daily { every, .. } => i64::from(every) + 2,
            Schedule::Weekly { every, .. } => 7 * i64::from(every) + 7,
            Schedule::Monthly { every, .. } => 31 * i64::from(every) + 31,
        }
    }

    /// The next day after `day` that may hold a slot.
    fn next_candidate_day(&self, day: Date) -> Option<Date> {
        match *self {
            Schedule::Never => None,
            Schedule::Weekly { days, .. } if days.iter().all(Option::is_none) => None,
            Schedule::Hourly { .. } | Schedule::Weekly { every: 1, .. } => day.tomorrow().ok(),
            Schedule::Daily { every, .. } => {
                let n = epoch_day(day)? + 1;
                let e = i64::from(every);
                date_of(n.div_euclid(e) * e + if n.rem_euclid(e) == 0 { 0 } else { e })
            }
            Schedule::Weekly { every, .. } => {
                let n = epoch_day(day)? + 1;
                let week = (n - 4).div_euclid(7);
                let e = i64::from(every);
                if week.rem_euclid(e) == 0 {
                    date_of(n)
                } else {
                    let next_week = week.div_euclid(e) * e + e;
                    date_of(next_week * 7 + 4)
                }
            }
            Schedule::Monthly { every, .. } => {
                let tomorrow = day.tomorrow().ok()?;
                if tomorrow.month() == day.month() && month_index(day) % i64::from(every) == 0 {
                    return Some(tomorrow);
                }
                let e = i64::from(every);
                let next = month_index(day) + 1;
                let m = next.div_euclid(e) * e + if next.rem_euclid(e) == 0 { 0 } else { e };
                let year = i16::try_from(m.div_euclid(12)).ok()?;
                let month = i8::try_from(m.rem_euclid(12) + 1).ok()?;
                Date::new(year, month, 1).ok()
            }
        }
    }

    /// The civil times of `day`'s slots, before DST adjustment.
    fn civil_slots(&self, day: Date) -> Vec<DateTime> {
        let at = |t: TimeOfDay| day.at(t.hour() as i8, t.minute() as i8, t.second() as i8, 0);
        match *self {
            Schedule::Never => Vec::new(),
            Schedule::Hourly { every, starting_at } => {
                let step = every * 3600;
                let first = starting_at.seconds_from_midnight() % step;
                (first..86_400)
                    .step_by(step as usize)
                    .map(|s| day.at((s / 3600) as i8, (s / 60 % 60) as i8, (s % 60) as i8, 0))
                    .collect()
            }
            Schedule::Daily { every, hour } => match epoch_day(day) {
                Some(n) if n.rem_euclid(i64::from(every)) == 0 => vec![at(hour)],
                _ => Vec::new(),
            },
            Schedule::Weekly { every, days } => {
                let Some(n) = epoch_day(day) else {
                    return Vec::new();
                };
                if (n - 4).div_euclid(7).rem_euclid(i64::from(every)) != 0 {
                    return Vec::new();
                }
                let weekday = day.weekday().to_monday_zero_offset() as usize;
                days[weekday].map(at).into_iter().collect()
            }
            Schedule::Monthly {
                every,
                day: md,
                hour,
            } => {
                if month_index(day) % i64::from(every) != 0 {
                    return Vec::new();
                }
                let last = day.days_in_month();
                let wanted = match md {
                    MonthDay::Last => last,
                    MonthDay::Day(d) => (d as i8).min(last),
                };
                if day.day() == wanted {
                    vec![at(hour)]
                } else {
                    Vec::new()
                }
            }
        }
    }
}

/// year·12 + month − 1.
fn month_index(d: Date) -> i64 {
    i64::from(d.year()) * 12 + i64::from(d.month()) - 1
}

/// Days since 1970-01-01.
fn epoch_day(d: Date) -> Option<i64> {
    let ts = TimeZone::UTC
        .to_ambiguous_timestamp(d.at(0, 0, 0, 0))
        .compatible()
        .ok()?;
    Some(ts.as_second().div_euclid(86_400))
}

fn date_of(day: i64) -> Option<Date> {
    let ts = Timestamp::from_second(day.checked_mul(86_400)?).ok()?;
    Some(TimeZone::UTC.to_datetime(ts).date())
}

/// The instant of a local civil time: as is; in a gap, the gap's end; in a
/// fold, the first occurrence.
pub fn instant(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    let amb = tz.to_ambiguous_timestamp(dt);
    match amb.offset() {
        AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => amb.earlier().ok(),
        AmbiguousOffset::Gap { .. } => {
            // `earlier` lies before the transition, `later` after it; the
            // transition itself is the gap's end.
            let before = amb.earlier().ok()?;
            tz.following(before).next().map(|t| t.timestamp())
        }
    }
}

#[cfg(test)]
mod tests;
