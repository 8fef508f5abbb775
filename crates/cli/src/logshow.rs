//! `sauve log show`: a log's operations (behaviour §20), as 4D's activity
//! analysis lists them: sequence, local time, kind, label and size, newest
//! last, filtered by time and kind, or summed per kind and per hour.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sauve_logfile::{LogContents, Record, Tail};

use crate::report::{Failure, Io};
use crate::settings::app_dir;

/// Which log to read.
pub(crate) enum Source {
    File(PathBuf),
    App(PathBuf),
    Archive(PathBuf),
}

/// What to show of it.
pub(crate) struct Filter {
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
    pub(crate) kind: Option<u16>,
    pub(crate) summary: bool,
    pub(crate) json: bool,
    pub(crate) pager: bool,
}

/// One record as listed.
struct Row<'a> {
    record: &'a Record,
    offset: u64,
    /// Left past its point by a point-in-time restore (behaviour §20).
    set_aside: bool,
}

/// What the point-in-time restores of the app holding `file` set aside:
/// the app is `--app`'s, or the folder above the log's (`APP/Data/x.journal`).
fn set_asides(
    app: Option<&Path>,
    file: &Path,
) -> Result<Vec<sauve_logfile::SetAside>, sauve_engine::EngineError> {
    let app = app.map(Path::to_path_buf).or_else(|| {
        file.ancestors()
            .skip(1)
            .take(2)
            .find(|d| sauve_engine::state_path(d).is_file())
            .map(Path::to_path_buf)
    });
    app.map_or(Ok(Vec::new()), |a| sauve_engine::read_set_asides(&a))
}

pub(crate) fn show(source: Source, filter: Filter, io: &mut Io<'_>) -> Result<(), Failure> {
    let zone = TimeZone::system();
    let since = parse(filter.since.as_deref(), "--since", &zone)?;
    let until = parse(filter.until.as_deref(), "--until", &zone)?;
    if let (Some(a), Some(b)) = (since, until)
        && a > b
    {
        return Err(Failure::usage(format!(
            "--since {} is after --until {} (accepted: a --since at or before the --until)",
            sauve_logfile::format_time(a, &zone),
            sauve_logfile::format_time(b, &zone)
        )));
    }
    // A log backup is read from a staging folder, removed when done.
    let staging;
    let mut app = None;
    let file = match source {
        Source::File(f) => f,
        Source::App(dir) => {
            let dir = app_dir(&dir)?;
            let layout = sauve_settings::AppLayout::discover(&dir)
                .map_err(|e| Failure::usage(e.to_string()))?;
            app = Some(dir);
            layout.log_file
        }
        Source::Archive(set) => {
            staging = tempfile::tempdir().map_err(|e| Failure::failed(e.to_string()))?;
            archived_log(&set, staging.path())?
        }
    };
    let set_aside = set_asides(app.as_deref(), &file).unwrap_or_else(|e| {
        io.err(&format!(
            "warning: the records set aside are not marked: {e}\n"
        ));
        Vec::new()
    });
    // Set aside now: on the timeline of the end, the one the data is on.
    let set_aside = sauve_logfile::timeline(&set_aside, sauve_logfile::Until::End);
    let log = sauve_logfile::read_log(&file).map_err(|e| match e {
        sauve_logfile::LogError::NotALog { .. } => Failure::usage(e.to_string()),
        sauve_logfile::LogError::Io { ref source, .. }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Failure::usage(format!(
                "{e} (accepted: a log file, --app DIR for the app's current log, or --archive SET.4BL)"
            ))
        }
        e => Failure::failed(e.to_string()),
    })?;
    let mut offset = sauve_logfile::HEADER_LEN as u64;
    let mut rows = Vec::new();
    let shown = sauve_logfile::RecordFilter {
        since,
        until,
        kind: filter.kind,
    };
    for r in &log.records {
        if shown.matches(r) {
            rows.push(Row {
                record: r,
                offset,
                set_aside: set_aside.iter().any(|s| s.holds(r)),
            });
        }
        offset += r.framed_len(log.header.version);
    }
    let text = if filter.summary {
        summary(&file, &log, &rows, &zone, filter.json)?
    } else if filter.json {
        json(&log, &rows)?
    } else {
        listing(&file, &log, &rows, &zone)
    };
    if filter.pager && !filter.json {
        page(&text, io);
    } else {
        io.out(&text);
    }
    Ok(())
}

fn parse(text: Option<&str>, option: &str, zone: &TimeZone) -> Result<Option<Timestamp>, Failure> {
    text.map(|t| {
        sauve_logfile::parse_time(t, zone).map_err(|e| Failure::usage(format!("{option}: {e}")))
    })
    .transpose()
}

/// Restores the log a `.4BL` holds into `to` and names it.
fn archived_log(set: &Path, to: &Path) -> Result<PathBuf, Failure> {
    let name = set.file_name().map(|n| n.to_string_lossy().into_owned());
    if !name.as_deref().is_some_and(|n| n.ends_with(".4BL")) {
        return Err(Failure::usage(format!(
            "--archive \"{}\" is not a log backup (accepted: a base[NNNN].4BL file)",
            set.display()
        )));
    }
    if !set.is_file() {
        return Err(Failure::usage(format!(
            "--archive \"{}\" does not exist (accepted: a base[NNNN].4BL file)",
            set.display()
        )));
    }
    let options = sauve_archive::RestoreOptions {
        to: Some(to.to_path_buf()),
        force: false,
    };
    let report =
        sauve_archive::restore(set, &options, &mut sauve_archive::NoProgress).map_err(|e| {
            Failure {
                code: crate::report::EXIT_FAILURE,
                message: format!("{}: {e}", set.display()),
            }
        })?;
    report
        .manifest
        .entries
        .iter()
        .find(|e| e.kind == sauve_archive::EntryKind::Log)
        .map(|e| to.join(&e.path))
        .ok_or_else(|| Failure::failed(format!("{} holds no log", set.display())))
}

fn time_text(r: &Record, zone: &TimeZone) -> String {
    r.timestamp()
        .map_or_else(|| "-".to_owned(), |t| sauve_logfile::format_time(t, zone))
}

fn tail_text(tail: Tail) -> String {
    match tail {
        Tail::Clean => "clean".to_owned(),
        Tail::Torn { offset } => {
            format!("torn record at byte {offset} (a crash mid-append; ignored)")
        }
        Tail::Corrupt { offset } => {
            format!("DAMAGED at byte {offset}: records after it cannot be trusted")
        }
    }
}

/// When the log was started.
fn created(log: &LogContents) -> Option<Timestamp> {
    Timestamp::from_nanosecond(i128::from(log.header.created)).ok()
}

/// The data identity the log belongs to, in hex.
fn identity(log: &LogContents) -> String {
    log.header
        .identity
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn heading(file: &Path, log: &LogContents, zone: &TimeZone) -> String {
    let created = created(log)
        .map(|t| sauve_logfile::format_time(t, zone))
        .unwrap_or_default();
    let identity = identity(log);
    let version = if log.header.version == 1 {
        "version 1 (records carry no time)".to_owned()
    } else {
        format!("version {}", log.header.version)
    };
    format!(
        "{}: {version}, created {created}, identity {identity}, first sequence {}\n",
        file.display(),
        log.header.first_sequence
    )
}

fn listing(file: &Path, log: &LogContents, rows: &[Row<'_>], zone: &TimeZone) -> String {
    let mut text = heading(file, log, zone);
    text.push_str(&format!(
        "{:>10}  {:<29}  {:>5}  {:<24}  {:>10}\n",
        "SEQUENCE", "TIME", "KIND", "LABEL", "SIZE"
    ));
    for row in rows {
        let r = row.record;
        let (kind, label) = r.tag.as_ref().map_or(("-".to_owned(), "-"), |t| {
            (t.kind.to_string(), t.label.as_str())
        });
        text.push_str(&format!(
            "{:>10}  {:<29}  {:>5}  {:<24}  {:>10}{}\n",
            r.seq,
            time_text(r, zone),
            kind,
            label,
            r.payload.len(),
            if row.set_aside { "  set aside" } else { "" }
        ));
    }
    let aside = rows.iter().filter(|r| r.set_aside).count();
    if aside > 0 {
        text.push_str(&format!(
            "{aside} set aside: past the point of a point-in-time restore, kept in the log and never applied again\n"
        ));
    }
    let count = if rows.len() == log.records.len() {
        format!("{} records", rows.len())
    } else {
        format!("{} of {} records shown", rows.len(), log.records.len())
    };
    text.push_str(&format!("{count}; end: {}\n", tail_text(log.tail)));
    text
}

fn tail_json(tail: Tail) -> serde_json::Value {
    match tail {
        Tail::Clean => serde_json::json!("clean"),
        Tail::Torn { offset } => serde_json::json!({ "torn": offset }),
        Tail::Corrupt { offset } => serde_json::json!({ "corrupt": offset }),
    }
}

fn header_json(log: &LogContents) -> serde_json::Value {
    let created = created(log).map(|t| t.to_string()).unwrap_or_default();
    let identity = identity(log);
    serde_json::json!({
        "version": log.header.version,
        "identity": identity,
        "first_sequence": log.header.first_sequence,
        "created": created,
    })
}

fn render(v: &serde_json::Value) -> Result<String, Failure> {
    serde_json::to_string_pretty(v)
        .map(|t| format!("{t}\n"))
        .map_err(|e| Failure::failed(format!("cannot render JSON: {e}")))
}

fn json(log: &LogContents, rows: &[Row<'_>]) -> Result<String, Failure> {
    let records: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let r = row.record;
            let mut v = serde_json::json!({
                "seq": r.seq,
                "offset": row.offset,
                "size": r.payload.len(),
                "time": r.timestamp().map(|t| t.to_string()),
                "kind": r.tag.as_ref().map(|t| t.kind),
                "label": r.tag.as_ref().map(|t| t.label.clone()),
            });
            if row.set_aside {
                v["set_aside"] = serde_json::json!(true);
            }
            v
        })
        .collect();
    render(&serde_json::json!({
        "header": header_json(log),
        "records": records,
        "total": log.records.len(),
        "tail": tail_json(log.tail),
    }))
}

/// Operations per kind (with their labels) and per hour of local time.
fn summary(
    file: &Path,
    log: &LogContents,
    rows: &[Row<'_>],
    zone: &TimeZone,
    as_json: bool,
) -> Result<String, Failure> {
    #[derive(Default)]
    struct Sum {
        count: u64,
        bytes: u64,
        labels: BTreeMap<String, u64>,
    }
    let mut kinds: BTreeMap<Option<u16>, Sum> = BTreeMap::new();
    let mut hours: BTreeMap<String, u64> = BTreeMap::new();
    for row in rows {
        let r = row.record;
        let sum = kinds.entry(r.tag.as_ref().map(|t| t.kind)).or_default();
        sum.count += 1;
        sum.bytes += r.payload.len() as u64;
        if let Some(t) = &r.tag {
            *sum.labels.entry(t.label.clone()).or_default() += 1;
        }
        let hour = r.timestamp().map_or_else(
            || "-".to_owned(),
            |t| {
                let z = t.to_zoned_datetime(zone.clone());
                z.strftime("%Y-%m-%d %H:00%:z").to_string()
            },
        );
        *hours.entry(hour).or_default() += 1;
    }
    if as_json {
        let per_kind: Vec<serde_json::Value> = kinds
            .iter()
            .map(|(k, s)| {
                let labels: Vec<serde_json::Value> = top(&s.labels)
                    .into_iter()
                    .map(|(l, n)| serde_json::json!({"label": l, "count": n}))
                    .collect();
                serde_json::json!({"kind": k, "count": s.count, "bytes": s.bytes, "labels": labels})
            })
            .collect();
        let per_hour: Vec<serde_json::Value> = hours
            .iter()
            .map(|(h, n)| serde_json::json!({"hour": h, "count": n}))
            .collect();
        return render(&serde_json::json!({
            "header": header_json(log),
            "operations": rows.len(),
            "per_kind": per_kind,
            "per_hour": per_hour,
        }));
    }
    let mut text = heading(file, log, zone);
    text.push_str(&format!("{} operations\n\nper kind\n", rows.len()));
    text.push_str(&format!(
        "{:>5}  {:>10}  {:>12}  LABELS (most frequent first)\n",
        "KIND", "COUNT", "BYTES"
    ));
    for (k, s) in &kinds {
        let labels: Vec<String> = top(&s.labels)
            .into_iter()
            .take(5)
            .map(|(l, n)| format!("{l} ({n})"))
            .collect();
        let more = s.labels.len().saturating_sub(5);
        let mut labels = if labels.is_empty() {
            "-".to_owned()
        } else {
            labels.join(", ")
        };
        if more > 0 {
            labels.push_str(&format!(", and {more} more"));
        }
        let kind = k.map_or_else(|| "-".to_owned(), |k| k.to_string());
        text.push_str(&format!(
            "{kind:>5}  {:>10}  {:>12}  {labels}\n",
            s.count, s.bytes
        ));
    }
    text.push_str(&format!("\nper hour\n{:<22}  {:>10}\n", "HOUR", "COUNT"));
    for (h, n) in &hours {
        text.push_str(&format!("{h:<22}  {n:>10}\n"));
    }
    Ok(text)
}

/// Shows `text` through `$PAGER` (default `less -FRX`) when standard output
/// is a terminal and the text is longer than a screen; else prints it.
fn page(text: &str, io: &mut Io<'_>) {
    let long = text.lines().count() > 40;
    if !long || !std::io::stdout().is_terminal() {
        io.out(text);
        return;
    }
    let pager = std::env::var("PAGER")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "less -FRX".to_owned());
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(&pager)
        .stdin(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        io.out(text);
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A pager quit early closes the pipe: not a failure.
        let _ = stdin.write_all(text.as_bytes());
    }
    // A pager that could not run (sh says 126 or 127) showed nothing.
    if child
        .wait()
        .is_ok_and(|s| matches!(s.code(), Some(126 | 127)))
    {
        io.out(text);
    }
}

/// Labels, the most frequent first.
fn top(labels: &BTreeMap<String, u64>) -> Vec<(&String, &u64)> {
    let mut l: Vec<(&String, &u64)> = labels.iter().collect();
    l.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    l
}
