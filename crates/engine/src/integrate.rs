//! Log integration after a restore (behaviour §13.1, §14.3): the logs that follow a
//! restored backup, applied in order through the host's function, each
//! journaled as "Log integration".

use sauve_number::BackupNumber;
use std::path::{Path, PathBuf};

use sauve_archive::{ArchiveName, RestoreOptions, RestoreReport, SetKind};
use sauve_journal::{Entry, Stamp, Title};
use sauve_logfile::{IntegrateError, Integrated, Record, SetAside, Until};

use crate::error::EngineError;
use crate::recorder::Recorder;

/// One log integrated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogIntegration {
    /// The `.4BL` or the current log.
    pub log: PathBuf,
    /// What was applied.
    pub integrated: Integrated,
}

/// The logs that can follow the restored backup `report`: the `.4BL` sets
/// numbered from the backup's number on (oldest first), then the pending
/// segments a failed or interrupted backup cut, then the app's current log
/// if it is a sauve log.
pub fn integrable_logs(report: &RestoreReport, current_log: Option<&Path>) -> Vec<PathBuf> {
    let number = report.manifest.header.backup_number;
    let base = &report.manifest.header.base_name;
    let mut sets: Vec<(BackupNumber, PathBuf)> = std::fs::read_dir(&report.set.dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let a = ArchiveName::parse(&e.file_name().to_string_lossy())?;
                    (a.kind == SetKind::Log
                        && !a.part
                        && &a.base == base
                        && a.number >= number
                        && a.segment.is_none_or(|s| s == 1))
                    .then_some((a.number, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    sets.sort();
    let mut out: Vec<PathBuf> = sets.into_iter().map(|(_, p)| p).collect();
    if let Some(log) = current_log.filter(|p| crate::logcut::is_sauve_log(p)) {
        // Pending segments: cut by a backup that did not commit (a crash, a
        // failure); their records are in no .4BL yet.
        if let (Some(dir), Some(stem)) = (log.parent(), log.file_stem()) {
            out.extend(crate::logcut::pending_segments(
                dir,
                &stem.to_string_lossy(),
            ));
        }
        out.push(log.to_path_buf());
    }
    out
}

/// What an integration after a restore did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Integration {
    /// Each log integrated, in order.
    pub logs: Vec<LogIntegration>,
    /// Records not written (journal, history): the integration itself is done.
    pub warnings: Vec<String>,
}

/// Refuses a stop point before the restored set's end (behaviour §20): the set's
/// data already holds what came after it. Refuses too a set taken before a
/// point-in-time restore that `until` goes past, when its data holds what
/// that restore set aside.
pub(crate) fn check_until(
    report: &RestoreReport,
    until: Until,
    set_aside: &[SetAside],
    zone: &jiff::tz::TimeZone,
) -> Result<(), EngineError> {
    let set = report
        .set
        .files
        .first()
        .cloned()
        .unwrap_or_else(|| report.set.dir.clone());
    check_manifest(&report.manifest, &set, until, set_aside, zone)
}

/// [`check_until`] for the set `set` whose manifest is `manifest`. The
/// set's end is when it was finished: its data was cut a little before
/// that, so a point in between is refused though the set could reach it.
pub(crate) fn check_manifest(
    manifest: &sauve_archive::Manifest,
    set: &Path,
    until: Until,
    set_aside: &[SetAside],
    zone: &jiff::tz::TimeZone,
) -> Result<(), EngineError> {
    let refused = |end: String| EngineError::UntilBeforeSet {
        set: set.to_path_buf(),
        point: until.describe(zone),
        end,
    };
    if !ends_before(manifest, until) {
        return Err(match until {
            Until::Sequence(_) => refused(format!(
                "sequence {}",
                manifest.header.last_log_sequence.unwrap_or(0)
            )),
            _ => refused(sauve_logfile::format_time(manifest.ended_at, zone)),
        });
    }
    let last = manifest.header.last_log_sequence.unwrap_or(0);
    if let Some(s) = sauve_logfile::disagrees(set_aside, manifest.ended_at, last, until) {
        return Err(EngineError::SetAsideBySet {
            set: set.to_path_buf(),
            point: s.point.describe(zone),
            at: sauve_logfile::format_time(s.at, zone),
        });
    }
    Ok(())
}

/// Whether the set of `manifest` ends at or before `until`.
fn ends_before(manifest: &sauve_archive::Manifest, until: Until) -> bool {
    match until {
        Until::End => true,
        Until::Time(t) => t >= manifest.ended_at,
        Until::Sequence(n) => manifest
            .header
            .last_log_sequence
            .is_none_or(|last| n >= last),
    }
}

/// Integrates, in order, every log that follows the restored backup into the
/// host's data through `apply`, from `start` (the backup's
/// `lastLogSequence` when `None`) up to `until`. `.4BL` sets are verified
/// and extracted to a staging folder inside the restore destination first.
/// Each log gets a "Log integration" journal entry and a history record;
/// the one where the stop point is met says so, and no later log is read.
/// `set_aside` is the caller's one reading of what restores set aside.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<E: std::fmt::Display>(
    rec: &mut Recorder<'_>,
    report: &RestoreReport,
    identity: [u8; 16],
    current_log: Option<&Path>,
    start: Option<u64>,
    until: Until,
    set_aside: &[SetAside],
    mut apply: impl FnMut(&Record) -> Result<(), E>,
) -> Result<Vec<LogIntegration>, EngineError> {
    check_until(report, until, set_aside, &rec.clock().zone())?;
    let mut last = start.unwrap_or(report.manifest.header.last_log_sequence.unwrap_or(0));
    let data_file = report
        .manifest
        .entries
        .iter()
        .find(|e| e.kind == sauve_archive::EntryKind::Data)
        .map(|e| report.destination.join(&e.path).display().to_string())
        .unwrap_or_default();
    let mut done = Vec::new();
    // The time of the last record applied, across logs.
    let mut last_time = None;
    for log in integrable_logs(report, current_log) {
        let started = rec.clock().now();
        let is_set = log.extension().is_some_and(|e| e == "4BL");
        let staging = report
            .destination
            .join(format!(".sauve-log-{}", std::process::id()));
        let readable = if is_set {
            let _ = std::fs::remove_dir_all(&staging);
            let restored = sauve_archive::restore(
                &log,
                &RestoreOptions {
                    to: Some(staging.clone()),
                    force: false,
                },
                &mut sauve_archive::NoProgress,
            );
            match restored {
                Ok(r) => r
                    .manifest
                    .entries
                    .iter()
                    .find(|e| e.kind == sauve_archive::EntryKind::Log)
                    .map(|e| staging.join(&e.path)),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&staging);
                    let err = EngineError::from(e);
                    let entry = failed_entry(rec, &data_file, &log, started, None, &err);
                    rec.journal(entry);
                    return Err(err);
                }
            }
        } else {
            Some(log.clone())
        };
        let result = match &readable {
            Some(path) => {
                sauve_logfile::integrate(path, identity, last, until, set_aside, &mut apply)
            }
            None => Ok(Integrated::nothing(last)),
        };
        if is_set {
            let _ = std::fs::remove_dir_all(&staging);
        }
        match result {
            Ok(mut i) => {
                i.last_time = i.last_time.or(last_time);
                last_time = i.last_time;
                let mut e = base_entry(rec, &data_file, &log, started);
                e.operations = Some(operations(&i));
                e.result = Some("OK".to_owned());
                let zone = rec.clock().zone();
                if i.stopped || until != Until::End {
                    e.other = stop_lines(until, &i, &zone);
                }
                e.other.extend(skipped_line(&i));
                rec.journal(e);
                let (dir, key, mut entry) =
                    history_record(rec, report, &log, &data_file, started, &i);
                if until != Until::End {
                    stop_fields(&mut entry, until, &i, &zone);
                }
                rec.history(dir, key, entry);
                last = i.last_applied;
                let stopped = i.stopped;
                done.push(LogIntegration { log, integrated: i });
                if stopped {
                    break;
                }
            }
            Err(e) => {
                let failed_at = match &e {
                    IntegrateError::Apply { seq, .. } | IntegrateError::Untimed { seq, .. } => {
                        Some(*seq)
                    }
                    _ => None,
                };
                let err = EngineError::from(e);
                let entry = failed_entry(rec, &data_file, &log, started, failed_at, &err);
                rec.journal(entry);
                return Err(err);
            }
        }
    }
    Ok(done)
}

/// The journal's lines of a stop point: where, and what was applied last.
pub(crate) fn stop_lines(
    until: Until,
    i: &Integrated,
    zone: &jiff::tz::TimeZone,
) -> Vec<(String, String)> {
    let mut lines = vec![(
        "Stop point".to_owned(),
        if i.stopped {
            format!("{} (reached; later records kept)", until.describe(zone))
        } else {
            format!("{} (not reached in this log)", until.describe(zone))
        },
    )];
    lines.push(("Last applied".to_owned(), last_applied_text(i, zone)));
    lines
}

/// `Set aside : 37 records stepped over (51296 to 51332), left by a
/// point-in-time restore`, when some were; each run of them named.
pub(crate) fn skipped_line(i: &Integrated) -> Option<(String, String)> {
    if i.skipped.is_empty() {
        return None;
    }
    let n = i.skipped_count();
    let records = if n == 1 { "record" } else { "records" };
    let runs: Vec<String> = i
        .skipped
        .iter()
        .map(|s| match s.first == s.last {
            true => s.first.to_string(),
            false => format!("{} to {}", s.first, s.last),
        })
        .collect();
    let mut restores: Vec<jiff::Timestamp> = i.skipped.iter().map(|s| s.restore).collect();
    restores.sort();
    restores.dedup();
    let by = match restores.len() {
        1 => "a point-in-time restore".to_owned(),
        k => format!("{k} point-in-time restores"),
    };
    Some((
        "Set aside".to_owned(),
        format!(
            "{n} {records} stepped over ({}), left by {by}",
            runs.join(", ")
        ),
    ))
}

/// `sequence 51295 at 2026-12-01 14:04:29.812+01:00`.
pub(crate) fn last_applied_text(i: &Integrated, zone: &jiff::tz::TimeZone) -> String {
    let at = i
        .last_time
        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
        .map(|t| format!(" at {}", sauve_logfile::format_time(t, zone)))
        .unwrap_or_default();
    format!("sequence {}{at}", i.last_applied)
}

/// A stop point in the history: `"end"`, `{"sequence": N}` or `{"time",
/// "local"}`.
pub(crate) fn point_json(until: Until, zone: &jiff::tz::TimeZone) -> serde_json::Value {
    match until {
        Until::End => serde_json::json!("end"),
        Until::Sequence(n) => serde_json::json!({ "sequence": n }),
        Until::Time(t) => {
            serde_json::json!({ "time": t.to_string(), "local": until.describe(zone) })
        }
    }
}

/// The history's fields of a stop point (`until`, `lastApplied`).
fn stop_fields(
    entry: &mut sauve_history::HistoryEntry,
    until: Until,
    i: &Integrated,
    zone: &jiff::tz::TimeZone,
) {
    entry
        .extra
        .insert("until".to_owned(), point_json(until, zone));
    entry
        .extra
        .insert("untilReached".to_owned(), serde_json::json!(i.stopped));
    let time = i
        .last_time
        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
        .map(|t| t.to_string());
    entry.extra.insert(
        "lastApplied".to_owned(),
        serde_json::json!({ "sequence": i.last_applied, "time": time }),
    );
}

/// `1284 applied (50012 to 51295)` (behaviour §11.2).
pub(crate) fn operations(i: &Integrated) -> String {
    match i.range {
        Some((a, b)) => format!("{} applied ({a} to {b})", i.applied),
        None => "0 applied".to_owned(),
    }
}

fn base_entry(rec: &Recorder<'_>, data_file: &str, log: &Path, started: jiff::Timestamp) -> Entry {
    let zone = rec.clock().zone();
    let mut e = Entry::new(Title::LogIntegration);
    e.data_file = Some(data_file.to_owned());
    e.log_file = Some(log.display().to_string());
    e.starting = Some(Stamp::at(zone.to_datetime(started)));
    e.ending = Some(Stamp::at(zone.to_datetime(rec.clock().now())));
    e
}

/// `Result : failed at sequence N` or `failed: <text>`, with the errors.
fn failed_entry(
    rec: &Recorder<'_>,
    data_file: &str,
    log: &Path,
    started: jiff::Timestamp,
    at: Option<u64>,
    err: &EngineError,
) -> Entry {
    let mut e = base_entry(rec, data_file, log, started);
    let status = err.status();
    e.result = Some(match at {
        Some(seq) => format!("failed at sequence {seq}"),
        None => format!("failed: {}", status.text()),
    });
    e.errors = vec![status.to_string(), err.to_string()];
    e
}

/// The history record of an integration, beside the restored archive.
fn history_record(
    rec: &Recorder<'_>,
    report: &RestoreReport,
    log: &Path,
    data_file: &str,
    started: jiff::Timestamp,
    i: &Integrated,
) -> (PathBuf, String, sauve_history::HistoryEntry) {
    let m = &report.manifest.header;
    let mut extra = serde_json::Map::new();
    if let Some((a, b)) = i.range {
        extra.insert("sequences".to_owned(), serde_json::json!([a, b]));
    }
    if !i.skipped.is_empty() {
        let runs: Vec<[u64; 2]> = i.skipped.iter().map(|s| [s.first, s.last]).collect();
        extra.insert(
            "setAside".to_owned(),
            serde_json::json!({ "sequences": runs, "count": i.skipped_count() }),
        );
    }
    let mut entry = sauve_history::HistoryEntry::restore(
        sauve_history::Operation::Integration,
        report
            .set
            .files
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        m.structure_path.clone(),
        data_file.to_owned(),
        m.backup_number,
        started,
        rec.clock().now(),
        None,
    );
    entry.log_path = log.display().to_string();
    entry.extra = extra;
    (report.set.dir.clone(), m.structure_path.clone(), entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_aside_line_names_each_run_and_how_many_restores_left_them() {
        let at = |s| jiff::Timestamp::from_second(s).unwrap();
        let run = |restore, first, last| sauve_logfile::Skipped {
            restore: at(restore),
            first,
            last,
            count: last - first + 1,
        };
        let mut i = Integrated::nothing(0);
        assert_eq!(skipped_line(&i), None);
        i.skipped = vec![run(100, 4, 4)];
        assert_eq!(
            skipped_line(&i).unwrap().1,
            "1 record stepped over (4), left by a point-in-time restore"
        );
        i.skipped = vec![run(100, 2, 3), run(200, 6, 9), run(100, 11, 11)];
        assert_eq!(
            skipped_line(&i).unwrap(),
            (
                "Set aside".to_owned(),
                "7 records stepped over (2 to 3, 6 to 9, 11), left by 2 point-in-time restores"
                    .to_owned()
            )
        );
    }
}
