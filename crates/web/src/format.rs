//! How values read on the page: sizes in human units, durations, dates in
//! the viewer's zone, statuses with their code, text and a sign that is not
//! only a colour.

use sauve_number::BackupNumber;
use std::time::Duration;

use jiff::Timestamp;
use maud::{Markup, html};
use sauve_status::Status;

/// `1.5 GiB`, `12 KiB`, `512 B`.
pub(crate) fn bytes(n: u64) -> String {
    sauve_engine::human_bytes(n)
}

/// `850 ms`, `12.4 s`, `3 min 05 s`, `2 h 07 min`.
pub(crate) fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let s = d.as_secs_f64();
    if s < 60.0 {
        return format!("{s:.1} s");
    }
    let secs = d.as_secs();
    if secs < 3600 {
        return format!("{} min {:02} s", secs / 60, secs % 60);
    }
    format!("{} h {:02} min", secs / 3600, (secs % 3600) / 60)
}

/// A date: the server renders it in its zone with the zone's name; the
/// page's script shows it in the viewer's zone (`datetime` is UTC).
pub(crate) fn time(t: Timestamp, zone: &jiff::tz::TimeZone) -> Markup {
    let text = local_text(t, zone, "%Y-%m-%d %H:%M:%S");
    html! { time datetime=(t.to_string()) data-local="" { (text) } }
}

/// `t` in `zone` as `format`, followed by the zone's abbreviation.
pub(crate) fn local_text(t: Timestamp, zone: &jiff::tz::TimeZone, format: &str) -> String {
    let info = zone.to_offset_info(t);
    format!(
        "{} {}",
        zone.to_datetime(t).strftime(format),
        info.abbreviation()
    )
}

/// How a status reads: the class (success, partial, failure, stopped) and
/// the sign beside its code.
pub(crate) fn status_kind(status: Status) -> (&'static str, &'static str, &'static str) {
    match status {
        Status::Ok => ("ok", "✓", "Success"),
        Status::AttachmentNotFound => ("partial", "◐", "Partial"),
        Status::Stopped => ("stopped", "■", "Stopped"),
        _ => ("failed", "✗", "Failed"),
    }
}

/// A status badge: sign, word and `code text`, so that it reads without
/// colour.
pub(crate) fn status(status: Status) -> Markup {
    let (class, sign, word) = status_kind(status);
    html! {
        span class={"status " (class)} title=(status.text()) {
            span class="sign" aria-hidden="true" { (sign) }
            " " strong { (word) } " "
            span class="code" { (status.code()) " " (status.text()) }
        }
    }
}

/// A number as sauve prints it: `0042`.
pub(crate) fn number(n: BackupNumber) -> String {
    n.text()
}

/// `1 file`, `3 files`.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `text` as a URL query value.
pub(crate) fn query_escape(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The file name of a path, for tables.
pub(crate) fn file_name(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map_or_else(|| path.to_owned(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_as_people_say_them() {
        assert_eq!(duration(Duration::from_millis(850)), "850 ms");
        assert_eq!(duration(Duration::from_millis(12_400)), "12.4 s");
        assert_eq!(duration(Duration::from_secs(185)), "3 min 05 s");
        assert_eq!(duration(Duration::from_secs(7620)), "2 h 07 min");
    }

    #[test]
    fn statuses_carry_a_sign_and_a_word_not_only_a_colour() {
        let ok = status(Status::Ok).into_string();
        assert!(ok.contains("✓") && ok.contains("Success") && ok.contains("0 No detected error."));
        let partial = status(Status::AttachmentNotFound).into_string();
        assert!(partial.contains("Partial") && partial.contains("-43"));
        let failed = status(Status::DestinationInvalid).into_string();
        assert!(failed.contains("✗") && failed.contains("Failed") && failed.contains("1407"));
    }
}
