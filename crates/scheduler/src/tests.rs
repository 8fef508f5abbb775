//! The examples of behaviour §10, in Europe/Paris.

use jiff::civil::date;
use jiff::tz::TimeZone;

use super::*;

fn paris() -> TimeZone {
    TimeZone::get("Europe/Paris").unwrap()
}

fn t(h: u32, m: u32) -> TimeOfDay {
    TimeOfDay::new(h, m, 0).unwrap()
}

/// The slots of a local day, as "HH:MM ±offset".
fn day_slots(s: &Schedule, tz: &TimeZone, y: i16, mo: i8, d: i8) -> Vec<String> {
    let start = tz
        .to_ambiguous_timestamp(date(y, mo, d).at(0, 0, 0, 0))
        .earlier()
        .unwrap();
    let end = tz
        .to_ambiguous_timestamp(date(y, mo, d).tomorrow().unwrap().at(0, 0, 0, 0))
        .earlier()
        .unwrap();
    let mut out = Vec::new();
    let mut at = start
        .checked_sub(jiff::SignedDuration::from_nanos(1))
        .unwrap();
    while let Some(next) = s.next_after(tz, at) {
        if next >= end {
            break;
        }
        let z = next.to_zoned_datetime(tz.clone());
        out.push(format!("{} {}", z.strftime("%H:%M"), z.strftime("%:z")));
        at = next;
    }
    out
}

#[test]
fn hourly_grids_are_anchored_on_starting_at_within_each_day() {
    let tz = paris();
    let h4 = Schedule::Hourly {
        every: 4,
        starting_at: t(1, 30),
    };
    assert_eq!(
        day_slots(&h4, &tz, 2025, 1, 10),
        [
            "01:30 +01:00",
            "05:30 +01:00",
            "09:30 +01:00",
            "13:30 +01:00",
            "17:30 +01:00",
            "21:30 +01:00"
        ]
    );
    let h5 = Schedule::Hourly {
        every: 5,
        starting_at: t(8, 0),
    };
    assert_eq!(
        day_slots(&h5, &tz, 2025, 1, 10),
        [
            "03:00 +01:00",
            "08:00 +01:00",
            "13:00 +01:00",
            "18:00 +01:00",
            "23:00 +01:00"
        ]
    );
}

#[test]
fn a_slot_in_a_gap_runs_at_its_end_and_in_a_fold_once() {
    let tz = paris();
    let daily = Schedule::Daily {
        every: 1,
        hour: t(2, 30),
    };
    assert_eq!(day_slots(&daily, &tz, 2025, 3, 30), ["03:00 +02:00"]);
    assert_eq!(day_slots(&daily, &tz, 2025, 10, 26), ["02:30 +02:00"]);
    let hourly = Schedule::Hourly {
        every: 1,
        starting_at: t(0, 0),
    };
    let spring = day_slots(&hourly, &tz, 2025, 3, 30);
    assert_eq!(
        &spring[..4],
        [
            "00:00 +01:00",
            "01:00 +01:00",
            "03:00 +02:00",
            "04:00 +02:00"
        ]
    );
    assert_eq!(spring.len(), 23, "02:00 merged into 03:00");
    let autumn = day_slots(&hourly, &tz, 2025, 10, 26);
    assert_eq!(
        &autumn[..4],
        [
            "00:00 +02:00",
            "01:00 +02:00",
            "02:00 +02:00",
            "03:00 +01:00"
        ]
    );
    assert_eq!(autumn.len(), 24, "no second 02:00");
}

#[test]
fn monthly_last_is_the_last_day_and_29_to_31_clamp() {
    let tz = paris();
    let last = Schedule::Monthly {
        every: 1,
        day: MonthDay::Last,
        hour: t(23, 0),
    };
    let mut at = tz
        .to_ambiguous_timestamp(date(2024, 1, 1).at(0, 0, 0, 0))
        .earlier()
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        at = last.next_after(&tz, at).unwrap();
        got.push(
            at.to_zoned_datetime(tz.clone())
                .strftime("%m-%d %H:%M")
                .to_string(),
        );
    }
    assert_eq!(got, ["01-31 23:00", "02-29 23:00", "03-31 23:00"]);
    let thirty = Schedule::Monthly {
        every: 1,
        day: MonthDay::Day(30),
        hour: t(1, 0),
    };
    let feb = tz
        .to_ambiguous_timestamp(date(2025, 2, 1).at(0, 0, 0, 0))
        .earlier()
        .unwrap();
    let next = thirty
        .next_after(&tz, feb)
        .unwrap()
        .to_zoned_datetime(tz.clone());
    assert_eq!(next.strftime("%m-%d").to_string(), "02-28");
}

#[test]
fn every_n_days_weeks_and_months_are_anchored_on_fixed_epochs() {
    let tz = TimeZone::UTC;
    // 2025-01-01 is day 20089 since 1970-01-01; every 7 days from the epoch
    // lands on days divisible by 7: 20090 is 2025-01-02.
    let daily = Schedule::Daily {
        every: 7,
        hour: t(0, 0),
    };
    let from = date(2025, 1, 1)
        .at(0, 0, 0, 0)
        .to_zoned_datetime(tz.clone())
        .unwrap()
        .timestamp();
    let next = daily.next_after(&tz, from).unwrap();
    assert_eq!(next.to_zoned_datetime(tz.clone()).date(), date(2025, 1, 2));
    // Weeks since the week of 1970-01-05, every 2: the week of 2025-01-06 has index 2870.
    let mut days = [None; 7];
    days[0] = Some(t(12, 0));
    let weekly = Schedule::Weekly { every: 2, days };
    let next = weekly.next_after(&tz, from).unwrap();
    assert_eq!(next.to_zoned_datetime(tz.clone()).date(), date(2025, 1, 6));
    let after = weekly.next_after(&tz, next).unwrap();
    assert_eq!(
        after.to_zoned_datetime(tz.clone()).date(),
        date(2025, 1, 20)
    );
    // Months where year·12 + month − 1 is divisible by 5: 2025·12 + 6 − 1 = 24305, June.
    let monthly = Schedule::Monthly {
        every: 5,
        day: MonthDay::Day(1),
        hour: t(0, 0),
    };
    let next = monthly.next_after(&tz, from).unwrap();
    assert_eq!(next.to_zoned_datetime(tz).date(), date(2025, 6, 1));
}

#[test]
fn never_and_empty_weeks_have_no_slot() {
    let tz = TimeZone::UTC;
    assert_eq!(Schedule::Never.next_after(&tz, Timestamp::UNIX_EPOCH), None);
    let empty = Schedule::Weekly {
        every: 1,
        days: [None; 7],
    };
    assert_eq!(empty.next_after(&tz, Timestamp::UNIX_EPOCH), None);
}

#[test]
fn missed_slots_are_the_latest_one_since_the_last_handled() {
    let tz = paris();
    let hourly = Schedule::Hourly {
        every: 1,
        starting_at: t(0, 0),
    };
    let since = date(2025, 1, 10)
        .at(8, 0, 0, 0)
        .to_zoned_datetime(tz.clone())
        .unwrap()
        .timestamp();
    let now = date(2025, 1, 12)
        .at(9, 30, 0, 0)
        .to_zoned_datetime(tz.clone())
        .unwrap()
        .timestamp();
    let missed = hourly.missed(&tz, since, now).unwrap();
    assert_eq!(
        missed
            .to_zoned_datetime(tz.clone())
            .strftime("%d %H:%M")
            .to_string(),
        "12 09:00"
    );
    assert_eq!(hourly.missed(&tz, missed, now), None);
}
