//! How a rehearsal is recorded (behaviour §22): a `Restore rehearsal`
//! entry in the Backup Journal, a history entry of its own kind beside the
//! app's backups, the state keeper's record (the newest proven point), and
//! an alert when it failed (written with the entry once delivered).

use sauve_alerts::AlertKind;
use sauve_history::{HistoryEntry, Operation};
use sauve_journal::{Entry, Stamp, Title};
use sauve_number::BackupNumber;
use sauve_status::Status;

use super::{Found, Plan};
use crate::actors::alerts::messages::AlertDraft;
use crate::error::EngineError;
use crate::recorder::Recorder;
use crate::state::RehearsalRecord;

/// Records the rehearsal that ran from `started` to `ended` with `result`;
/// the record the state keeps.
pub(super) fn finish(
    rec: &mut Recorder<'_>,
    plan: &Plan,
    found: &Found,
    (started, ended): (jiff::Timestamp, jiff::Timestamp),
    result: Result<(), EngineError>,
) -> RehearsalRecord {
    let status = result
        .as_ref()
        .err()
        .map_or(Status::Ok, EngineError::status);
    let provable = !matches!(result, Err(EngineError::NeedsIdentity { .. }));
    let preempted =
        status == Status::Stopped && plan.preempted.load(std::sync::atomic::Ordering::SeqCst);
    let number = found.number.unwrap_or(BackupNumber::NONE);
    let record = RehearsalRecord {
        set: match found.number {
            Some(n) => format!("{}[{}]", plan.base, n.text()),
            None => format!("{} (no set chosen)", plan.base),
        },
        number,
        source: plan.source.describe(),
        status,
        error: result.as_ref().err().map(|e| match (e, preempted) {
            (EngineError::Stopped, true) => "stopped: a backup came due".to_owned(),
            (e, _) => e.to_string(),
        }),
        provable,
        preempted,
        rate_mib_s: plan.rate.map(|r| r >> 20),
        started,
        ended,
        // What a set says of its time is taken no later than this rehearsal
        // began: a clock that ran ahead cannot pin a proof in the future.
        point: result
            .is_ok()
            .then_some(found.point)
            .flatten()
            .map(|p| p.min(started)),
        last_sequence: found.last_sequence,
        restore_ms: found.restore_ms,
        integrate_ms: found.integrate_ms,
        check_ms: found.check_ms,
        bytes: found.bytes,
        data_bytes: found.data_bytes,
    };
    let entry = journal_entry(rec, plan, found, &record);
    history(rec, plan, found, &record);
    rec.record_rehearsal(record.clone());
    // A failure reaches a person at once; a stop, or a source this host
    // cannot read, is recorded and shown, never alerted.
    let alert = !matches!(status, Status::Ok | Status::Stopped) && provable;
    match alert {
        true => rec.raise(
            AlertDraft {
                kind: AlertKind::RehearsalFailed,
                status,
                trigger: plan.trigger.as_str().to_owned(),
                number,
                scheduled: None,
                started: Some(started),
                ended: Some(ended),
                errors: record.error.iter().cloned().collect(),
                failures: 0,
            },
            entry,
        ),
        false => rec.journal(entry),
    }
    record
}

/// `*** Restore rehearsal`, its lines in behaviour §11.1's order, then
/// the rehearsal's own.
fn journal_entry(
    rec: &Recorder<'_>,
    plan: &Plan,
    found: &Found,
    record: &RehearsalRecord,
) -> Entry {
    let zone = rec.clock().zone();
    let mut e = Entry::new(Title::RestoreRehearsal);
    e.archive = Some(format!("{} from {}", record.set, record.source));
    e.trigger = Some(plan.trigger.as_str().to_owned());
    e.starting = Some(Stamp::at(zone.to_datetime(record.started)));
    e.ending = Some(Stamp::at(zone.to_datetime(record.ended)));
    e.operations = (found.files > 0).then(|| match (found.logs.len(), found.last_sequence) {
        (0, _) => "no log backup after the set".to_owned(),
        (n, Some(seq)) => format!(
            "{} records integrated from {n} log backup{} (to sequence {seq})",
            found.records,
            if n == 1 { "" } else { "s" }
        ),
        (n, None) => format!("{n} log backups read"),
    });
    e.status = Some(record.status.code());
    e.result = Some(match (&record.error, record.point) {
        (None, Some(point)) => format!(
            "proven restorable as of {}",
            sauve_logfile::format_time(point, &zone)
        ),
        (None, None) => "proven restorable".to_owned(),
        (Some(_), _) if !record.provable => "not provable on this host".to_owned(),
        (Some(_), _) => format!("failed: {}", record.status.text()),
    });
    if record.status != Status::Ok {
        e.errors = vec![record.status.to_string()];
        e.errors.extend(record.error.iter().cloned());
    }
    let secs = |ms: u64| format!("{:.3} s", ms as f64 / 1000.0);
    if let Some(rate) = record.rate_mib_s {
        e.notes
            .push(format!("read at most {rate} MiB/s ([rehearsal] max_mib_s)"));
    }
    e.other = vec![
        ("Restore time".to_owned(), secs(record.restore_ms)),
        ("Integration time".to_owned(), secs(record.integrate_ms)),
        ("Check time".to_owned(), secs(record.check_ms)),
        (
            "Bytes restored".to_owned(),
            crate::overview::human_bytes(record.bytes),
        ),
    ];
    if let Some(v) = &found.verdict {
        e.other.push(("Check".to_owned(), v.clone()));
    }
    e
}

/// The history entry: the set's number (no new one), the status, what was
/// measured; never what the check printed nor the error's text, since a
/// bucket's history is published unencrypted (behaviour §19): those stay in
/// the journal and the state, on this machine.
fn history(rec: &mut Recorder<'_>, plan: &Plan, found: &Found, record: &RehearsalRecord) {
    let layout = rec.layout();
    let key = crate::settings::structure_key(layout);
    let destination = match rec
        .settings()
        .and_then(|s| crate::plan::destination_to_read(&layout.app, &s))
    {
        Ok(d) => d.records().to_path_buf(),
        Err(e) => {
            rec.warnings.push(format!(
                "the rehearsal was not recorded in the history: {e}"
            ));
            return;
        }
    };
    let mut entry = HistoryEntry::restore(
        Operation::Rehearsal,
        format!("{}/{}", record.source.trim_end_matches('/'), record.set),
        key.clone(),
        layout.data_file.display().to_string(),
        record.number,
        record.started,
        record.ended,
        Some(plan.trigger.as_str()),
    );
    entry.status = Some(record.status.code());
    let extra = serde_json::json!({
        "source": record.source,
        "restoreMs": record.restore_ms,
        "integrateMs": record.integrate_ms,
        "checkMs": record.check_ms,
        "bytes": record.bytes,
        "provenPoint": record.point.map(|p| p.to_string()),
        "lastSequence": record.last_sequence,
        "logBackups": found.logs,
    });
    if let serde_json::Value::Object(map) = extra {
        entry.extra = map;
    }
    rec.history(destination, key, entry);
}
