//! Property tests of the scheduler, across real daylight-saving transitions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jiff::Timestamp;
use jiff::civil::{Date, date};
use jiff::tz::{AmbiguousOffset, TimeZone};
use proptest::prelude::*;
use sauve_scheduler::{Schedule, instant};
use sauve_settings::{MonthDay, TimeOfDay};

const ZONES: [&str; 3] = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe"];

fn time() -> impl Strategy<Value = TimeOfDay> {
    (0u32..24, prop_oneof![Just(0u32), Just(30), 0u32..60])
        .prop_map(|(h, m)| TimeOfDay::new(h, m, 0).unwrap())
}

fn schedule() -> impl Strategy<Value = Schedule> {
    prop_oneof![
        (1u32..=24, time())
            .prop_map(|(every, starting_at)| Schedule::Hourly { every, starting_at }),
        (1u32..40, time()).prop_map(|(every, hour)| Schedule::Daily { every, hour }),
        (
            1u32..6,
            proptest::collection::vec(proptest::option::of(time()), 7)
        )
            .prop_filter("a day selected", |(_, d)| d.iter().any(Option::is_some))
            .prop_map(|(every, d)| Schedule::Weekly {
                every,
                days: [d[0], d[1], d[2], d[3], d[4], d[5], d[6]]
            }),
        (
            1u32..13,
            prop_oneof![Just(MonthDay::Last), (1u8..=31).prop_map(MonthDay::Day)],
            time()
        )
            .prop_map(|(every, day, hour)| Schedule::Monthly { every, day, hour }),
    ]
}

/// The civil times a slot may have been asked for: the schedule's times.
fn requested(s: &Schedule, on: Date) -> Vec<jiff::civil::DateTime> {
    let at = |t: TimeOfDay| on.at(t.hour() as i8, t.minute() as i8, 0, 0);
    match s {
        Schedule::Never => Vec::new(),
        Schedule::Hourly { every, starting_at } => {
            let step = every * 3600;
            (starting_at.seconds_from_midnight() % step..86_400)
                .step_by(step as usize)
                .map(|x| on.at((x / 3600) as i8, (x / 60 % 60) as i8, 0, 0))
                .collect()
        }
        Schedule::Daily { hour, .. } | Schedule::Monthly { hour, .. } => vec![at(*hour)],
        Schedule::Weekly { days, .. } => days.iter().flatten().map(|t| at(*t)).collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_next_slot_is_after_now_and_on_the_requested_time_or_a_gap_end(
        s in schedule(),
        zone in proptest::sample::select(ZONES.to_vec()),
        seconds in 946_684_800i64..2_208_988_800,
    ) {
        let tz = TimeZone::get(zone).unwrap();
        let now = Timestamp::from_second(seconds).unwrap();
        let next = s.next_after(&tz, now).unwrap();
        prop_assert!(next > now);
        let local = tz.to_datetime(next);
        // Either the local time is one the schedule asks for, or the asked-for
        // time fell in a gap of this day (or the day before) and this is its end.
        let on_time = requested(&s, local.date()).contains(&local);
        let gap_end = [local.date(), local.date().yesterday().unwrap()].iter().any(|d| {
            requested(&s, *d).into_iter().any(|dt| {
                matches!(tz.to_ambiguous_timestamp(dt).offset(), AmbiguousOffset::Gap { .. }) && instant(&tz, dt) == Some(next)
            })
        });
        prop_assert!(on_time || gap_end, "{} in {}: {:?}", next, zone, local);
        // Nothing between now and the answer.
        let just_before = next.checked_sub(jiff::SignedDuration::from_nanos(1)).unwrap();
        if just_before > now {
            prop_assert_eq!(s.next_after(&tz, now), s.next_after(&tz, just_before));
        }
    }
}

fn slots_between(s: &Schedule, tz: &TimeZone, from: Date, to: Date) -> Vec<Timestamp> {
    let end = tz
        .to_ambiguous_timestamp(to.at(0, 0, 0, 0))
        .earlier()
        .unwrap();
    let mut at = tz
        .to_ambiguous_timestamp(from.at(0, 0, 0, 0))
        .earlier()
        .unwrap()
        .checked_sub(jiff::SignedDuration::from_nanos(1))
        .unwrap();
    let mut out = Vec::new();
    while let Some(n) = s.next_after(tz, at) {
        if n >= end {
            break;
        }
        out.push(n);
        at = n;
    }
    out
}

#[test]
fn three_years_of_transitions_skip_no_slot_and_double_none() {
    let (from, to) = (date(2024, 1, 1), date(2027, 1, 1));
    let days = 1096;
    for zone in ZONES {
        let tz = TimeZone::get(zone).unwrap();
        // Daily at each time of the day that a transition touches somewhere:
        // exactly one slot per local date.
        for (h, m) in [(0, 0), (1, 30), (2, 0), (2, 30), (3, 0), (23, 30)] {
            let daily = Schedule::Daily {
                every: 1,
                hour: TimeOfDay::new(h, m, 0).unwrap(),
            };
            let slots = slots_between(&daily, &tz, from, to);
            let mut dates: Vec<Date> = slots.iter().map(|t| tz.to_datetime(*t).date()).collect();
            assert_eq!(slots.len(), days, "{zone} {h}:{m}");
            dates.dedup();
            assert_eq!(dates.len(), days, "{zone} {h}:{m}: one slot per date");
        }
        // Hourly: exactly the distinct instants of every civil hour of every day.
        let hourly = Schedule::Hourly {
            every: 1,
            starting_at: TimeOfDay::MIDNIGHT,
        };
        let slots = slots_between(&hourly, &tz, from, to);
        assert!(
            slots.windows(2).all(|w| w[0] < w[1]),
            "{zone}: strictly increasing"
        );
        let mut expected: Vec<Timestamp> = Vec::new();
        let mut d = from;
        while d < to {
            for h in 0..24 {
                expected.push(instant(&tz, d.at(h, 0, 0, 0)).unwrap());
            }
            d = d.tomorrow().unwrap();
        }
        expected.dedup();
        assert_eq!(slots, expected, "{zone}");
    }
}
