//! The two numbers of behaviour §22 as status, the page and metrics show
//! them: the recovery point (the newest state a rehearsal proved
//! restorable) and the recovery time (the last rehearsal's restore and
//! integration, scaled to the data file's size now), with the last
//! rehearsal's end.

use jiff::Timestamp;
use serde_json::Value;

use crate::state::{EngineState, RehearsalRecord};

/// Where proof of recoverability stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofState {
    /// No rehearsal ever ran.
    Never,
    /// The last rehearsal proved its set.
    Proven,
    /// The last rehearsal failed (an older proof may stand).
    Failed,
    /// The last rehearsal was stopped.
    Stopped,
    /// The source is encrypted and no identity is at hand.
    NotProvable,
}

impl ProofState {
    /// The word in `status --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProofState::Never => "never",
            ProofState::Proven => "proven",
            ProofState::Failed => "failed",
            ProofState::Stopped => "stopped",
            ProofState::NotProvable => "not provable on this host",
        }
    }

    /// Of the last rehearsal recorded.
    pub fn of(last: Option<&RehearsalRecord>) -> ProofState {
        match last {
            None => ProofState::Never,
            Some(r) if !r.provable => ProofState::NotProvable,
            Some(r) if r.status == sauve_status::Status::Ok => ProofState::Proven,
            Some(r) if r.status == sauve_status::Status::Stopped => ProofState::Stopped,
            Some(_) => ProofState::Failed,
        }
    }
}

/// The recovery time in milliseconds: the last successful rehearsal's
/// (the last one when it succeeded, else the one that proved the newest
/// point), scaled to `data_now` bytes.
pub fn recovery_ms(state: &EngineState, data_now: Option<u64>) -> Option<u64> {
    let ok = |r: &&RehearsalRecord| r.status == sauve_status::Status::Ok;
    let r = state
        .last_rehearsal
        .as_ref()
        .filter(ok)
        .or(state.proven.as_ref())?;
    Some(r.recovery_ms(data_now))
}

/// `status --json`'s `rehearsal`.
pub fn proof_json(state: &EngineState, data_now: Option<u64>) -> Value {
    let with_text = |r: &RehearsalRecord| {
        let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
        v["statusText"] = r.status.text().into();
        v
    };
    serde_json::json!({
        "state": ProofState::of(state.last_rehearsal.as_ref()).as_str(),
        "last": state.last_rehearsal.as_ref().map(with_text),
        "proven": state.proven.as_ref().map(with_text),
        "recovery_point": state.proven.as_ref().and_then(|p| p.point),
        "recovery_time_ms": recovery_ms(state, data_now),
        "sample": state.sample.as_ref().map(|s| serde_json::json!({
            "last": s.last,
            "damaged": s.damaged,
        })),
    })
}

/// `2 days ago`, `3 hours ago`, `just now`.
pub fn ago(then: Timestamp, now: Timestamp) -> String {
    let s = now.duration_since(then).as_secs();
    let (n, unit) = match s {
        ..60 => return "just now".to_owned(),
        60..3600 => (s / 60, "minute"),
        3600..86_400 => (s / 3600, "hour"),
        _ => (s / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// `14 s`, `2.5 min`, `1.2 h`.
pub fn took(ms: u64) -> String {
    match ms {
        ..1000 => format!("{ms} ms"),
        1000..120_000 => format!("{:.0} s", ms as f64 / 1000.0),
        120_000..7_200_000 => format!("{:.1} min", ms as f64 / 60_000.0),
        _ => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

/// The lines people read, from `proof` (as [`proof_json`] gives it) at
/// `now`: the last proven restore, the recovery point and time, and the
/// last rehearsal when it did not prove anything.
pub fn proof_lines(proof: &Value, now: Timestamp, zone: &jiff::tz::TimeZone) -> Vec<String> {
    let time = |v: &Value| v.as_str().and_then(|t| t.parse::<Timestamp>().ok());
    let mut lines = Vec::new();
    let p = &proof["proven"];
    match time(&p["ended"]) {
        Some(ended) => {
            let ms = p["restoreMs"].as_u64().unwrap_or(0) + p["integrateMs"].as_u64().unwrap_or(0);
            let paced = p["rateMibS"]
                .as_u64()
                .map(|r| format!(" (read at most {r} MiB/s)"))
                .unwrap_or_default();
            lines.push(format!(
                "Last proven restore: set {} from {}, {}, restored in {}{paced}",
                p["set"].as_str().unwrap_or("?"),
                p["source"].as_str().unwrap_or("?"),
                ago(ended, now),
                took(ms)
            ));
            if let Some(point) = time(&proof["recovery_point"]) {
                let rto = proof["recovery_time_ms"]
                    .as_u64()
                    .map(|ms| format!("; recovery time about {} at today's data size", took(ms)))
                    .unwrap_or_default();
                lines.push(format!(
                    "  recovery point {} ({}){rto}",
                    sauve_logfile::format_time(point, zone),
                    ago(point, now)
                ));
            }
        }
        None => {
            lines.push("Last proven restore: none yet (`sauve rehearse` proves one)".to_owned())
        }
    }
    let last = &proof["last"];
    match proof["state"].as_str() {
        Some("failed") | Some("stopped") | Some("not provable on this host") => {
            let when = time(&last["ended"])
                .map(|t| ago(t, now))
                .unwrap_or_default();
            let what = match proof["state"].as_str() {
                Some("failed") => "FAILED",
                Some("stopped") => "stopped",
                _ => "not provable on this host",
            };
            lines.push(format!(
                "Last rehearsal: {what}, set {} from {}, {when}: {}",
                last["set"].as_str().unwrap_or("?"),
                last["source"].as_str().unwrap_or("?"),
                last["error"].as_str().unwrap_or("")
            ));
        }
        _ => {}
    }
    sample_lines(&proof["sample"], now, &mut lines);
    lines
}

/// The last sample of the stored bytes and the damage known (behaviour §23).
fn sample_lines(sample: &Value, now: Timestamp, lines: &mut Vec<String>) {
    let last = &sample["last"];
    if let Some(at) = last["at"]
        .as_str()
        .and_then(|t| t.parse::<Timestamp>().ok())
    {
        let n = |k: &str| last[k].as_u64().unwrap_or(0);
        lines.push(format!(
            "Last sample of the stored bytes: {} pieces ({}) of {} kept sets, {}{}",
            n("pieces"),
            crate::overview::human_bytes(n("bytes")),
            n("sets"),
            ago(at, now),
            last["endedEarly"]
                .as_str()
                .map(|w| format!(", ended early: {w}"))
                .unwrap_or_default()
        ));
    }
    for d in sample["damaged"].as_array().into_iter().flatten() {
        let damage: Option<crate::state::Damage> = serde_json::from_value(d.clone()).ok();
        if let Some(d) = damage {
            lines.push(format!(
                "  DAMAGED: {d} (found {}; never picked by an automatic restore)",
                ago(d.found, now)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: sauve_status::Status, point: i64, restore_ms: u64) -> RehearsalRecord {
        let at = |s| Timestamp::from_second(s).unwrap();
        RehearsalRecord {
            set: "App[0012]".to_owned(),
            number: sauve_number::BackupNumber::new(12),
            source: "s3://b/p/".to_owned(),
            status,
            error: (status != sauve_status::Status::Ok).then(|| "damaged".to_owned()),
            provable: true,
            preempted: false,
            rate_mib_s: None,
            started: at(point + 100),
            ended: at(point + 200),
            point: Some(at(point)),
            last_sequence: Some(9),
            restore_ms,
            integrate_ms: 1000,
            check_ms: 5,
            bytes: 1 << 20,
            data_bytes: 1000,
        }
    }

    #[test]
    fn the_recovery_time_is_the_last_success_scaled_to_the_data_now() {
        let mut state = EngineState::default();
        assert_eq!(recovery_ms(&state, None), None);
        state.proven = Some(record(sauve_status::Status::Ok, 1_000_000, 13_000));
        state.last_rehearsal = state.proven.clone();
        assert_eq!(recovery_ms(&state, Some(1000)), Some(14_000));
        assert_eq!(
            recovery_ms(&state, Some(2000)),
            Some(28_000),
            "twice the data"
        );
        assert_eq!(
            recovery_ms(&state, Some(10)),
            Some(14_000),
            "never scaled down"
        );
        // A failure since: the last success still tells the time.
        state.last_rehearsal = Some(record(sauve_status::Status::ArchiveCorrupt, 2_000_000, 1));
        assert_eq!(recovery_ms(&state, Some(1000)), Some(14_000));
    }

    #[test]
    fn status_lines_name_the_last_sample_and_the_damage_kept() {
        let zone = jiff::tz::TimeZone::UTC;
        let at = Timestamp::from_second(1_000_000).unwrap();
        let now = Timestamp::from_second(1_000_000 + 7200).unwrap();
        let mut state = EngineState::default();
        state.sample = Some(crate::state::SampleState {
            last: Some(crate::state::SampleRecord {
                at,
                source: "/bk".to_owned(),
                sets: 3,
                pieces: 5,
                bytes: 20 << 20,
                damaged: 1,
                ended_early: None,
            }),
            cursors: Default::default(),
            damaged: vec![crate::state::Damage {
                set: "App[0002]".to_owned(),
                number: sauve_number::BackupNumber::new(2),
                file: "App[0002].4BK".to_owned(),
                piece: Some(4),
                why: "does not hold the bytes stored there".to_owned(),
                found: at,
            }],
        });
        let lines = proof_lines(&proof_json(&state, None), now, &zone);
        assert!(
            lines.contains(
                &"Last sample of the stored bytes: 5 pieces (20 MiB) of 3 kept sets, 2 hours ago"
                    .to_owned()
            ),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"  DAMAGED: App[0002] is damaged: App[0002].4BK, piece 4: does not hold the bytes stored there (found 2 hours ago; never picked by an automatic restore)".to_owned()),
            "{lines:?}"
        );
    }

    #[test]
    fn status_lines_name_the_proof_and_a_failure_since() {
        let zone = jiff::tz::TimeZone::UTC;
        let now = Timestamp::from_second(1_000_000 + 2 * 86_400).unwrap();
        let mut state = EngineState::default();
        let never = proof_lines(&proof_json(&state, None), now, &zone);
        assert_eq!(
            never,
            vec!["Last proven restore: none yet (`sauve rehearse` proves one)"]
        );
        state.proven = Some(record(sauve_status::Status::Ok, 1_000_000, 13_000));
        state.last_rehearsal = Some(record(sauve_status::Status::ArchiveCorrupt, 1_100_000, 1));
        let lines = proof_lines(&proof_json(&state, Some(1000)), now, &zone);
        assert_eq!(
            lines,
            vec![
                // Rehearsed 200 s after its point: a day and 23 hours ago.
                "Last proven restore: set App[0012] from s3://b/p/, 1 day ago, restored in 14 s",
                "  recovery point 1970-01-12 13:46:40.000+00:00 (2 days ago); recovery time about 14 s at today's data size",
                "Last rehearsal: FAILED, set App[0012] from s3://b/p/, 20 hours ago: damaged",
            ]
        );
    }
}
