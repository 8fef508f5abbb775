//! Points in a log (behaviour §20): where an integration stops, and the times a
//! person types and reads, in the local zone or with an explicit offset.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Where an integration stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Until {
    /// Every record (the default).
    #[default]
    End,
    /// Every record up to this sequence, inclusive.
    Sequence(u64),
    /// Every record whose time is at or before this instant.
    Time(Timestamp),
}

impl Until {
    /// Whether `record` is past the stop point. A record without a time (of
    /// a version-1 log) is not past a time here; [`crate::integrate`]
    /// refuses to place one under a time stop.
    pub fn is_past(&self, record: &crate::Record) -> bool {
        match self {
            Until::End => false,
            Until::Sequence(n) => record.seq > *n,
            Until::Time(t) => record.timestamp().is_some_and(|at| at > *t),
        }
    }

    /// The stop point as the journal and the history say it.
    pub fn describe(&self, zone: &TimeZone) -> String {
        match self {
            Until::End => "the end".to_owned(),
            Until::Sequence(n) => format!("sequence {n}"),
            Until::Time(t) => format_time(*t, zone),
        }
    }
}

/// Which records a viewer lists (`sauve log show`, the Log page): those at
/// or after `since`, at or before `until`, of `kind`. A record without a
/// time (of a version-1 log) is left out by a time bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// The earliest time shown.
    pub since: Option<Timestamp>,
    /// The latest time shown.
    pub until: Option<Timestamp>,
    /// The only kind shown.
    pub kind: Option<u16>,
}

impl RecordFilter {
    /// Whether `r` is shown.
    pub fn matches(&self, r: &crate::Record) -> bool {
        let at = r.timestamp();
        self.since.is_none_or(|s| at.is_some_and(|t| t >= s))
            && self.until.is_none_or(|u| at.is_some_and(|t| t <= u))
            && self
                .kind
                .is_none_or(|k| r.tag.as_ref().is_some_and(|t| t.kind == k))
    }

    /// Whether nothing is filtered out.
    pub fn is_empty(&self) -> bool {
        *self == RecordFilter::default()
    }
}

/// Why a typed time was not understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "cannot read {text:?} as a time (accepted: 2026-12-01 14:04:30 in the local time zone, 2026-12-01T14:04:30+01:00 or 2026-12-01T13:04:30Z with an explicit offset; the seconds and their fraction may be left out)"
)]
pub struct TimeError {
    /// What was typed.
    pub text: String,
}

/// Reads a time as a person types it: a date and a time of day in `zone`
/// (the earlier instant when a clock change makes it ambiguous, the later
/// side of a gap), or with an explicit offset or `Z`.
pub fn parse_time(text: &str, zone: &TimeZone) -> Result<Timestamp, TimeError> {
    let t = text.trim();
    let error = || TimeError {
        text: text.to_owned(),
    };
    // A date alone is not a point in time: say what is accepted.
    if !t.contains(':') {
        return Err(error());
    }
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    let civil: jiff::civil::DateTime = t.parse().map_err(|_| error())?;
    zone.to_ambiguous_zoned_datetime(civil)
        .compatible()
        .map(|z| z.timestamp())
        .map_err(|_| error())
}

/// A time as `sauve log show` prints it: local, to the millisecond, with
/// the zone's offset.
pub fn format_time(t: Timestamp, zone: &TimeZone) -> String {
    let z = t.to_zoned_datetime(zone.clone());
    format!(
        "{}.{:03}{}",
        z.strftime("%Y-%m-%d %H:%M:%S"),
        z.millisecond(),
        z.strftime("%:z")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_in_the_local_zone_or_with_their_offset() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let at = |s: &str| parse_time(s, &paris).map(|t| t.to_string());
        let utc = Ok("2026-12-01T13:04:30Z".to_owned());
        assert_eq!(at("2026-12-01 14:04:30"), utc);
        assert_eq!(at("2026-12-01T14:04:30"), utc);
        assert_eq!(at(" 2026-12-01T14:04:30+01:00 "), utc);
        assert_eq!(at("2026-12-01T13:04:30Z"), utc);
        assert_eq!(
            at("2026-12-01 14:04"),
            Ok("2026-12-01T13:04:00Z".to_owned())
        );
        assert_eq!(
            at("2026-12-01 14:04:30.250"),
            Ok("2026-12-01T13:04:30.25Z".to_owned())
        );
        // Summer time: +02:00.
        assert_eq!(
            at("2026-07-01 14:00:00"),
            Ok("2026-07-01T12:00:00Z".to_owned())
        );
        for bad in [
            "",
            "yesterday",
            "2026-12-01",
            "14:04:30",
            "2026-13-01 14:04:30",
            "2026-12-01 25:00",
        ] {
            let e = parse_time(bad, &paris).unwrap_err();
            assert!(
                e.to_string().contains("accepted: 2026-12-01 14:04:30"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn times_are_printed_in_the_local_zone_to_the_millisecond() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let t: Timestamp = "2026-12-01T13:04:30.123456Z".parse().unwrap();
        assert_eq!(format_time(t, &paris), "2026-12-01 14:04:30.123+01:00");
        // What is printed reads back (to the millisecond).
        let back = parse_time(&format_time(t, &paris), &paris).unwrap();
        assert_eq!(back.as_millisecond(), t.as_millisecond());
    }

    #[test]
    fn a_stop_point_says_which_records_are_past_it() {
        let t: Timestamp = "2026-12-01T13:04:30Z".parse().unwrap();
        let rec = |seq, time: Option<&str>| crate::Record {
            time: time.map(|s| s.parse::<Timestamp>().unwrap().as_microsecond()),
            ..crate::Record::new(seq, Vec::new())
        };
        assert!(!Until::End.is_past(&rec(9, None)));
        assert!(!Until::Sequence(9).is_past(&rec(9, None)));
        assert!(Until::Sequence(9).is_past(&rec(10, None)));
        assert!(!Until::Time(t).is_past(&rec(1, Some("2026-12-01T13:04:30Z"))));
        assert!(Until::Time(t).is_past(&rec(1, Some("2026-12-01T13:04:30.000001Z"))));
        assert!(!Until::Time(t).is_past(&rec(1, None)));
    }
}
