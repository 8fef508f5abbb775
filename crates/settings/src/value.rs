//! The value types of backup.4DSettings and their text forms.
//!
//! Parsing is tolerant (any case, surrounding whitespace, both time forms);
//! formatting produces 4D's canonical text.

use std::fmt;
use std::time::Duration;

/// A time of day, to the second. 4D writes a fraction; it is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimeOfDay {
    secs: u32,
}

impl TimeOfDay {
    /// Midnight.
    pub const MIDNIGHT: TimeOfDay = TimeOfDay { secs: 0 };

    /// A time from its parts; `None` unless `hour < 24`, `minute < 60` and `second < 60`.
    pub fn new(hour: u32, minute: u32, second: u32) -> Option<TimeOfDay> {
        // Checked before the sum is made: any u32 may come in.
        (hour < 24 && minute < 60 && second < 60).then(|| TimeOfDay {
            secs: hour * 3600 + minute * 60 + second,
        })
    }

    /// The hour, 0 to 23.
    pub fn hour(self) -> u32 {
        self.secs / 3600
    }

    /// The minute, 0 to 59.
    pub fn minute(self) -> u32 {
        self.secs / 60 % 60
    }

    /// The second, 0 to 59.
    pub fn second(self) -> u32 {
        self.secs % 60
    }

    /// Seconds since midnight.
    pub fn seconds_from_midnight(self) -> u32 {
        self.secs
    }

    /// 4D's modern form for a changed time: `0000-00-00THH:MM:SS.000`.
    pub(crate) fn to_4d(self) -> String {
        format!("0000-00-00T{self}.000")
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}:{:02}",
            self.hour(),
            self.minute(),
            self.second()
        )
    }
}

/// A duration as 4D writes it (`HH:MM:SS[.f]`), kept literally, fraction included
/// (behaviour §16, O-9: `00:00:03.600` is 3.6 s). Consumers apply their own floors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Delay(pub Duration);

impl Delay {
    /// A delay of whole seconds.
    pub const fn from_secs(secs: u64) -> Delay {
        Delay(Duration::from_secs(secs))
    }

    /// The delay as a `Duration`.
    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl fmt::Display for Delay {
    /// `HH:MM:SS`, with `.fff` (or more digits when needed) for a fraction.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        write!(
            f,
            "{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )?;
        let nanos = self.0.subsec_nanos();
        if nanos == 0 {
            Ok(())
        } else if nanos.is_multiple_of(1_000_000) {
            write!(f, ".{:03}", nanos / 1_000_000)
        } else {
            let digits = format!("{nanos:09}");
            write!(f, ".{}", digits.trim_end_matches('0'))
        }
    }
}

/// The parts of a 4D time text: hours (unbounded), minutes, seconds, nanoseconds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Clock {
    pub(crate) hours: u64,
    pub(crate) minutes: u64,
    pub(crate) seconds: u64,
    pub(crate) nanos: u32,
}

/// Parses `HH:MM:SS[.f]` or `0000-00-00THH:MM:SS[.f]`. Any date part other than
/// `0000-00-00` is refused: 4D writes times, never dates, in these keys.
pub(crate) fn parse_clock(text: &str) -> Option<Clock> {
    let text = text.trim();
    let time = match text.split_once(['T', 't']) {
        Some(("0000-00-00", time)) => time,
        Some(_) => return None,
        None => text,
    };
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, fraction)) => (hms, Some(fraction)),
        None => (time, None),
    };
    let mut parts = hms.split(':');
    let (Some(h), Some(m), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let number = |p: &str, max_len: usize| -> Option<u64> {
        if p.is_empty() || p.len() > max_len || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let (hours, minutes, seconds) = (number(h, 6)?, number(m, 2)?, number(s, 2)?);
    if minutes > 59 || seconds > 59 {
        return None;
    }
    let nanos = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            // Digits past the ninth cannot be represented; they are dropped.
            let mut digits: String = f.chars().take(9).collect();
            while digits.len() < 9 {
                digits.push('0');
            }
            digits.parse().ok()?
        }
        Some(_) => return None,
    };
    Some(Clock {
        hours,
        minutes,
        seconds,
        nanos,
    })
}

pub(crate) fn parse_time_of_day(text: &str) -> Option<TimeOfDay> {
    let c = parse_clock(text)?;
    TimeOfDay::new(
        u32::try_from(c.hours).ok()?,
        u32::try_from(c.minutes).ok()?,
        u32::try_from(c.seconds).ok()?,
    )
}

pub(crate) fn parse_delay(text: &str) -> Option<Delay> {
    let c = parse_clock(text)?;
    // At most 6 digits of hours today, but checked where it is summed.
    let secs = c
        .hours
        .checked_mul(3600)?
        .checked_add(c.minutes * 60 + c.seconds)?;
    Some(Delay(Duration::new(secs, c.nanos)))
}

pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("true") {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

pub(crate) fn format_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// Enumerations written as 4D's tokens.
pub trait Token: Copy + Sized + 'static {
    /// Every value, in 4D's order.
    const ALL: &'static [Self];
    /// 4D's token for this value.
    fn token(self) -> &'static str;
    /// The value for a token, in any case, trimmed.
    fn from_token(text: &str) -> Option<Self> {
        let t = text.trim();
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.token().eq_ignore_ascii_case(t))
    }
}

macro_rules! token_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl Token for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn token(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.token())
            }
        }
    };
}

token_enum! {
    /// `Advanced/CompressionRate` (behaviour §6.1).
    Compression {
        /// Plain tar.
        None,
        /// zstd level 1, multi-threaded.
        Fast,
        /// zstd level 19.
        Compact,
    }
}

token_enum! {
    /// `Advanced/Redundancy` and `Advanced/Interlacing`: read and kept, no effect.
    Level {
        /// The only value with no warning.
        None,
        /// Low.
        Low,
        /// Medium.
        Medium,
        /// High.
        High,
    }
}

token_enum! {
    /// `Scheduler/Frequency`.
    Frequency {
        /// No scheduled backups.
        Never,
        /// Every N hours.
        Hourly,
        /// Every N days.
        Daily,
        /// Selected days of every N weeks.
        Weekly,
        /// One day of every N months.
        Monthly,
    }
}

/// `Scheduler/Monthly/Day`: a day number or the month's last day.
///
/// 4D accepts 1 to 28 and `Last`; 29 to 31 are read, kept as written, and
/// clamped to the month's last day by the scheduler, with a warning at load (O-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MonthDay {
    /// A day number, 1 to 31.
    Day(u8),
    /// The month's last day.
    Last,
}

impl fmt::Display for MonthDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MonthDay::Day(d) => write!(f, "{d}"),
            MonthDay::Last => f.write_str("Last"),
        }
    }
}

pub(crate) fn parse_month_day(text: &str) -> Option<MonthDay> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("last") {
        return Some(MonthDay::Last);
    }
    match parse_int(t)? {
        d @ 1..=31 => u8::try_from(d).ok().map(MonthDay::Day),
        _ => None,
    }
}

/// Parses a decimal integer with an optional sign, trimmed.
pub(crate) fn parse_int(text: &str) -> Option<i64> {
    let t = text.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_time_forms_and_odd_fractions_parse() {
        type Hms = Option<(u32, u32, u32)>;
        let cases: &[(&str, Hms)] = &[
            ("00:01:00", Some((0, 1, 0))),
            ("0000-00-00T23:59:59.000", Some((23, 59, 59))),
            (" 0000-00-00t02:30:00.5999 ", Some((2, 30, 0))),
            ("12:00:00.", None),
            ("24:00:00", None),
            ("25:00:00", None),
            ("2025-01-01T02:00:00", None),
            ("1:2", None),
            ("10:60:00", None),
            ("aa:00:00", None),
        ];
        for (text, want) in cases {
            let got = parse_time_of_day(text).map(|t| (t.hour(), t.minute(), t.second()));
            assert_eq!(got, *want, "{text}");
        }
    }

    #[test]
    fn durations_keep_their_fraction_literally() {
        let cases: &[(&str, Option<Duration>)] = &[
            ("00:01:00", Some(Duration::from_secs(60))),
            ("0000-00-00T00:00:00.561", Some(Duration::from_millis(561))),
            ("0000-00-00T00:00:03.600", Some(Duration::from_millis(3600))),
            ("00:00:00.6", Some(Duration::from_millis(600))),
            ("48:00:00", Some(Duration::from_secs(48 * 3600))),
            ("00:00:01.1234567891", Some(Duration::new(1, 123_456_789))),
            ("00:00:1x", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_delay(text).map(Delay::as_duration), *want, "{text}");
        }
    }

    #[test]
    fn delays_format_as_hh_mm_ss_with_fraction_only_when_present() {
        assert_eq!(Delay::from_secs(60).to_string(), "00:01:00");
        assert_eq!(
            Delay(Duration::from_millis(3600)).to_string(),
            "00:00:03.600"
        );
        assert_eq!(
            Delay(Duration::new(0, 1_500)).to_string(),
            "00:00:00.0000015"
        );
        assert_eq!(Delay::from_secs(100 * 3600).to_string(), "100:00:00");
    }

    #[test]
    fn booleans_and_tokens_accept_any_case() {
        assert_eq!(parse_bool(" tRuE\n"), Some(true));
        assert_eq!(parse_bool("FALSE"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(
            Compression::from_token("compact"),
            Some(Compression::Compact)
        );
        assert_eq!(Frequency::from_token(" WEEKLY "), Some(Frequency::Weekly));
        assert_eq!(Frequency::from_token("Yearly"), None);
    }

    #[test]
    fn month_days_accept_last_and_1_to_31() {
        assert_eq!(parse_month_day("last"), Some(MonthDay::Last));
        assert_eq!(parse_month_day("28"), Some(MonthDay::Day(28)));
        assert_eq!(parse_month_day("31"), Some(MonthDay::Day(31)));
        assert_eq!(parse_month_day("0"), None);
        assert_eq!(parse_month_day("32"), None);
    }
}
