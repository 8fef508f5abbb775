//! Reading journals: sauve's and 4D's (behaviour §11.2, "Reader"): LF or CRLF,
//! `Label : value`, `Label: value`, 4D v15+'s colon-less
//! `Scheduled|Starting|Ending <date>`, locale dates kept raw and read when
//! unambiguous.

use std::time::Duration;

use jiff::civil::{Date, DateTime, Time};

use crate::entry::{AttachmentLine, Entry, Stamp, Title};

/// Parses a whole journal file. A torn last entry is returned as far as it goes.
pub fn parse_journal(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut current: Option<Entry> = None;
    let mut list: Option<List> = None;
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(title) = line.strip_prefix("*** ") {
            if let Some(e) = current.take() {
                entries.push(e);
            }
            let raw_title = title.trim_end().to_owned();
            let mut e = Entry::new(Title::FullBackup);
            e.title = Title::from_text(&raw_title);
            e.raw_title = raw_title;
            current = Some(e);
            list = None;
            continue;
        }
        let Some(e) = current.as_mut() else {
            continue;
        };
        if line.trim().is_empty() {
            // An empty line ends the entry.
            entries.extend(current.take());
            list = None;
            continue;
        }
        if let Some(item) = line.strip_prefix('\t') {
            match list {
                Some(List::Deleted) => e.deleted.push(item.to_owned()),
                Some(List::Attachments) => e.attachments.push(attachment(item)),
                None => e.other.push((String::new(), item.to_owned())),
            }
            continue;
        }
        let trimmed = line.trim_end();
        if trimmed.eq_ignore_ascii_case("Deleting old archive(s):") {
            list = Some(List::Deleted);
            continue;
        }
        if trimmed.eq_ignore_ascii_case("Attachment(s):") {
            list = Some(List::Attachments);
            continue;
        }
        list = None;
        let (label, value) = split(line);
        apply(e, &label, value);
    }
    entries.extend(current);
    entries
}

#[derive(Clone, Copy)]
enum List {
    Deleted,
    Attachments,
}

fn attachment(item: &str) -> AttachmentLine {
    let item = item.trim_end();
    if let Some(p) = item.strip_suffix(" [OK]") {
        AttachmentLine {
            path: p.to_owned(),
            found: Some(true),
        }
    } else if let Some(p) = item.strip_suffix(" [NOT FOUND]") {
        AttachmentLine {
            path: p.to_owned(),
            found: Some(false),
        }
    } else {
        AttachmentLine {
            path: item.to_owned(),
            found: None,
        }
    }
}

/// Splits `Label : value`, `Label: value`, `Label:  value`, or 4D's
/// colon-less `Starting 7/26/20 12:02 PM`.
fn split(line: &str) -> (String, String) {
    for label in ["Scheduled", "Starting", "Ending"] {
        if let Some(rest) = line.strip_prefix(label)
            && let Some(rest) = rest.strip_prefix(' ')
            && !rest.trim_start().starts_with(':')
        {
            return (label.to_owned(), rest.trim().to_owned());
        }
    }
    if let Some((label, value)) = line.split_once(" : ") {
        return (label.trim().to_owned(), value.trim().to_owned());
    }
    if let Some((label, value)) = line.split_once(':') {
        return (label.trim().to_owned(), value.trim().to_owned());
    }
    (String::new(), line.trim().to_owned())
}

fn apply(e: &mut Entry, label: &str, value: String) {
    let key = label.to_ascii_lowercase();
    match key.as_str() {
        "creating archive" => e.creating_archive = Some(value),
        "creating log backup" => e.creating_log_backup = Some(value),
        "archive" => e.archive = Some(value),
        "destination" => e.destination = Some(value),
        "data file" => e.data_file = Some(value),
        "log file" => e.log_file = Some(value),
        "replaced files" => e.replaced_files = Some(value),
        "note" => e.notes.push(value),
        "trigger" => e.trigger = Some(value),
        "attempt" => match value.parse() {
            Ok(n) => e.attempt = Some(n),
            Err(_) => e.other.push((label.to_owned(), value)),
        },
        "scheduled" => e.scheduled = Some(stamp(value)),
        "starting" => e.starting = Some(stamp(value)),
        "ending" => e.ending = Some(stamp(value)),
        "next scheduled" => e.next_scheduled = Some(stamp(value)),
        "data lock" | "structure lock" => {
            // `0.004` or `0.004 (cloned 2 files)`.
            let (time, how) = match value.split_once(" (") {
                Some((t, h)) if h.ends_with(')') => (t, Some(h[..h.len() - 1].to_owned())),
                _ => (value.as_str(), None),
            };
            match seconds(time) {
                Some(d) if key == "data lock" => {
                    e.data_lock = Some(d);
                    e.data_lock_how = how;
                }
                Some(d) if how.is_none() => e.structure_lock = Some(d),
                _ => e.other.push((label.to_owned(), value)),
            }
        }
        "operations" => e.operations = Some(value),
        "reason" => e.reason = Some(value),
        "status" => match value.split_whitespace().next().and_then(|c| c.parse().ok()) {
            Some(code) => e.status = Some(code),
            None => e.other.push((label.to_owned(), value)),
        },
        "result" => e.result = Some(value),
        "error reported" => e.errors.push(value),
        "alert" => e.alerts.push(value),
        _ => e.other.push((label.to_owned(), value)),
    }
}

fn seconds(text: &str) -> Option<Duration> {
    // Any text may be in a journal: a value past what a Duration holds (or
    // negative, or not a number) is no duration, and the line is kept as
    // text by the caller.
    let v: f64 = text.trim().parse().ok()?;
    Duration::try_from_secs_f64(v).ok()
}

fn stamp(raw: String) -> Stamp {
    let local = parse_date(&raw);
    Stamp { raw, local }
}

/// Reads sauve's `YYYY-MM-DD HH:MM:SS` and 4D's locale forms: `7/26/20 12:02 PM`
/// (month first or day first, when a part above 12 tells which), `24.04.18 13:51`
/// (day first). Ambiguous dates give `None`; the text is kept anyway.
pub fn parse_date(raw: &str) -> Option<DateTime> {
    let raw = raw.trim();
    if let Ok(dt) = DateTime::strptime("%Y-%m-%d %H:%M:%S", raw) {
        return Some(dt);
    }
    let (date, rest) = raw.split_once(' ')?;
    let time = clock(rest.trim())?;
    let (parts, slash) = if date.contains('/') {
        (date.split('/').collect::<Vec<_>>(), true)
    } else if date.contains('.') {
        (date.split('.').collect::<Vec<_>>(), false)
    } else {
        return None;
    };
    let [a, b, y] = parts.as_slice() else {
        return None;
    };
    let (a, b, y): (i8, i8, i16) = (a.parse().ok()?, b.parse().ok()?, y.parse().ok()?);
    let year = if y < 100 { 2000 + y } else { y };
    let (month, day) = if !slash || a > 12 {
        (b, a)
    } else if b > 12 {
        (a, b)
    } else {
        // 8/6/20: August 6 or June 8 depends on a locale the file does not name.
        return None;
    };
    Some(Date::new(year, month, day).ok()?.to_datetime(time))
}

/// `12:02 PM`, `1:00 pm`, `13:51`, `13:51:07`, through jiff's strptime.
fn clock(text: &str) -> Option<Time> {
    const FORMATS: [&str; 4] = ["%I:%M %p", "%I:%M:%S %p", "%H:%M", "%H:%M:%S"];
    FORMATS
        .iter()
        .find_map(|f| Time::strptime(f, text.trim()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn dates_are_read_when_unambiguous() {
        let cases: &[(&str, Option<DateTime>)] = &[
            (
                "2025-03-14 02:00:01",
                Some(date(2025, 3, 14).at(2, 0, 1, 0)),
            ),
            ("7/26/20 12:02 PM", Some(date(2020, 7, 26).at(12, 2, 0, 0))),
            ("7/26/20 12:02 AM", Some(date(2020, 7, 26).at(0, 2, 0, 0))),
            ("26/7/20 1:00 PM", Some(date(2020, 7, 26).at(13, 0, 0, 0))),
            ("24.04.18 13:51", Some(date(2018, 4, 24).at(13, 51, 0, 0))),
            ("8/6/20 7:06 PM", None),
            ("soon", None),
            ("2/30/20 1:00 PM", None),
            ("7/26/20 1:05 pm", Some(date(2020, 7, 26).at(13, 5, 0, 0))),
            (
                "7/26/20 12:02:09 PM",
                Some(date(2020, 7, 26).at(12, 2, 9, 0)),
            ),
            ("7/26/20 13:02 PM", None),
            ("7/26/20 0:02 AM", None),
            (
                "24.04.18 13:51:07",
                Some(date(2018, 4, 24).at(13, 51, 7, 0)),
            ),
            ("24.04.18 24:00", None),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_date(raw), *want, "{raw}");
        }
    }

    #[test]
    fn a_lock_time_past_what_a_duration_holds_is_kept_as_text() {
        // Found by the fuzzer: 90 digits of seconds panicked in
        // `Duration::from_secs_f64`.
        let huge = format!("0{}.001", "9".repeat(90));
        let text = format!("*** Full backup\nData lock : {huge}\nStructure lock : -1\n\n");
        let entries = parse_journal(&text);
        let e = &entries[0];
        assert_eq!((e.data_lock, e.structure_lock), (None, None));
        assert_eq!(
            e.other,
            [
                ("Data lock".to_owned(), huge),
                ("Structure lock".to_owned(), "-1".to_owned())
            ]
        );
        assert_eq!(seconds("0.004"), Some(Duration::from_millis(4)));
    }

    #[test]
    fn labels_split_in_every_style() {
        assert_eq!(split("Result: OK"), ("Result".into(), "OK".into()));
        assert_eq!(
            split("Data file : A:B:C"),
            ("Data file".into(), "A:B:C".into())
        );
        assert_eq!(split("Result:  OK"), ("Result".into(), "OK".into()));
        assert_eq!(
            split("Starting 7/26/20 12:02 PM"),
            ("Starting".into(), "7/26/20 12:02 PM".into())
        );
        assert_eq!(
            split("Starting : 2025-03-14 02:00:01"),
            ("Starting".into(), "2025-03-14 02:00:01".into())
        );
    }
}
