//! `GET /metrics` (behaviour §17.3): the backup's health in the Prometheus text
//! format (OpenMetrics), through prometheus-client. The values are read when
//! scraped: the last-backup information and the alerts from the state file,
//! the running backup from the engine's live view, the scheduler from its
//! view, the counts from the engine's tally.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use sauve_engine::{EngineState, SchedulerView};

use crate::state::ApiState;

/// The OpenMetrics text content type Prometheus asks for.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    trigger: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

/// What a scrape reads, gathered off the async threads.
struct Inputs {
    state: EngineState,
    free_bytes: Option<u64>,
    archive_bytes: Option<u64>,
    /// The data file's size now, to scale the recovery time.
    data_bytes: Option<u64>,
    tally: sauve_engine::Tally,
    live: Option<sauve_engine::LiveRun>,
    scheduler: SchedulerView,
}

fn seconds(t: jiff::Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

fn gauge(value: f64) -> Gauge<f64, std::sync::atomic::AtomicU64> {
    let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    g.set(value);
    g
}

fn int(value: i64) -> Gauge {
    let g = Gauge::default();
    g.set(value);
    g
}

/// The registry of one scrape, family by family in the order they are
/// exposed.
fn registry(i: &Inputs) -> Registry {
    let mut r = Registry::with_prefix("sauve");
    register_last_backup(&mut r, i);
    register_outcomes(&mut r, i);
    register_running(&mut r, i);
    register_scheduler(&mut r, i);
    register_alerts_and_destination(&mut r, i);
    register_proof(&mut r, i);
    register_sample(&mut r, i);
    r
}

/// Proof of recoverability (behaviour §22): the newest proven point, the
/// recovery time, the last rehearsal's status.
fn register_proof(r: &mut Registry, i: &Inputs) {
    if let Some(point) = i.state.proven.as_ref().and_then(|p| p.point) {
        r.register_with_unit(
            "last_proven_restore_timestamp",
            "The newest state a restore rehearsal proved restorable",
            Unit::Seconds,
            gauge(seconds(point)),
        );
    }
    if let Some(ms) = sauve_engine::recovery_ms(&i.state, i.data_bytes) {
        r.register_with_unit(
            "restore_duration",
            "The last successful rehearsal's restore and integration, scaled to the data file's size now",
            Unit::Seconds,
            gauge(ms as f64 / 1000.0),
        );
    }
    if let Some(last) = &i.state.last_rehearsal {
        r.register(
            "last_rehearsal_status",
            "Status code of the last restore rehearsal (0 proven)",
            int(i64::from(last.status.code())),
        );
        r.register(
            "rehearsal_provable",
            "0 when the last rehearsal's source is encrypted and no identity is at hand",
            int(i64::from(last.provable)),
        );
    }
}

/// Samples of the stored bytes (behaviour §23): when the last one began
/// and the sets marked damaged.
fn register_sample(r: &mut Registry, i: &Inputs) {
    let Some(sample) = &i.state.sample else {
        return;
    };
    if let Some(last) = &sample.last {
        r.register_with_unit(
            "last_sample_timestamp",
            "When the last sample of the kept sets' stored bytes began",
            Unit::Seconds,
            gauge(seconds(last.at)),
        );
    }
    r.register(
        "damaged_sets",
        "Kept sets a sample found damaged and no later read found sound",
        int(sample.damaged_numbers().len() as i64),
    );
}

/// The last backup (from the state file) and the last success.
fn register_last_backup(r: &mut Registry, i: &Inputs) {
    if let Some(last) = &i.state.last_backup {
        r.register(
            "last_backup_status",
            "Status code of the last backup (0 success, -43 partial, else a failure)",
            int(i64::from(last.status.code())),
        );
        r.register(
            "last_backup_success",
            "1 when the last backup ended with 0 or -43",
            int(i64::from(last.status.is_success())),
        );
        r.register(
            "last_backup_number",
            "Number of the last backup (0 without an archive)",
            int(i64::from(last.number.get())),
        );
        r.register_with_unit(
            "last_backup_start_timestamp",
            "When the last backup started",
            Unit::Seconds,
            gauge(seconds(last.started)),
        );
        r.register_with_unit(
            "last_backup_end_timestamp",
            "When the last backup ended",
            Unit::Seconds,
            gauge(seconds(last.ended)),
        );
        r.register_with_unit(
            "last_backup_duration",
            "How long the last backup took",
            Unit::Seconds,
            gauge(last.duration().as_secs_f64()),
        );
        if let Some(lock) = last.data_lock {
            r.register_with_unit(
                "last_backup_data_lock",
                "How long the last backup held the data lock",
                Unit::Seconds,
                gauge(lock.as_secs_f64()),
            );
        }
        if let Some(bytes) = i.archive_bytes {
            r.register_with_unit(
                "last_backup_archive",
                "Size of the last backup's archive, every segment",
                Unit::Bytes,
                int(i64::try_from(bytes).unwrap_or(i64::MAX)),
            );
        }
    }
    if let Some(t) = i.state.last_success {
        r.register_with_unit(
            "last_success_timestamp",
            "When a backup last succeeded",
            Unit::Seconds,
            gauge(seconds(t)),
        );
    }
}

/// The backups ended since this process started, from the engine's tally.
fn register_outcomes(r: &mut Registry, i: &Inputs) {
    let outcomes = Family::<Outcome, Counter>::default();
    for ((trigger, status), n) in &i.tally.by_outcome {
        outcomes
            .get_or_create(&Outcome {
                trigger: trigger.as_str().to_owned(),
                status: status.to_string(),
            })
            .inc_by(*n);
    }
    r.register(
        "backups",
        "Backup requests ended since this process started, by trigger and status",
        outcomes,
    );
}

/// Whether a backup runs, and where it is.
fn register_running(r: &mut Registry, i: &Inputs) {
    r.register(
        "backup_running",
        "1 while a backup runs",
        int(i64::from(i.live.is_some())),
    );
    if let Some(live) = &i.live {
        let phases = Family::<PhaseLabel, Gauge>::default();
        let name = serde_json::to_value(live.phase)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        phases.get_or_create(&PhaseLabel { phase: name }).set(1);
        r.register("backup_phase", "The running backup's phase (1)", phases);
        r.register_with_unit(
            "backup_done",
            "Bytes the running backup has copied",
            Unit::Bytes,
            int(i64::try_from(live.bytes_done).unwrap_or(i64::MAX)),
        );
        r.register_with_unit(
            "backup_total",
            "Bytes the running backup copies",
            Unit::Bytes,
            int(i64::try_from(live.bytes_total).unwrap_or(i64::MAX)),
        );
    }
}

/// The scheduler: off after 1401, its next slot, its failures in a row.
fn register_scheduler(r: &mut Registry, i: &Inputs) {
    r.register(
        "scheduler_disabled",
        "1 after scheduled backups gave up (1401), until a manual backup succeeds",
        int(i64::from(i.scheduler.disabled)),
    );
    if let Some(next) = i.scheduler.next {
        r.register_with_unit(
            "next_scheduled_timestamp",
            "When the next scheduled backup is due",
            Unit::Seconds,
            gauge(seconds(next)),
        );
    }
    r.register(
        "scheduler_failures",
        "Consecutive failed scheduled attempts",
        int(i64::from(
            i.state.scheduler.as_ref().map_or(0, |s| s.failures),
        )),
    );
}

/// The open alerts and the destination's free space.
fn register_alerts_and_destination(r: &mut Registry, i: &Inputs) {
    r.register(
        "alerts_open",
        "Alerts raised and not yet acknowledged",
        int(i.state.alerts.iter().filter(|a| a.is_open()).count() as i64),
    );
    if let Some(free) = i.free_bytes {
        r.register_with_unit(
            "destination_free",
            "Bytes free in the backup destination",
            Unit::Bytes,
            int(i64::try_from(free).unwrap_or(i64::MAX)),
        );
    }
}

/// The files of the set whose first segment is `first`, summed.
fn set_size(first: &std::path::Path) -> Option<u64> {
    let set = sauve_archive::SetFiles::locate(first).ok()?;
    Some(
        set.files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum(),
    )
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<ApiState>) -> Response {
    let app = state.handle.app().to_path_buf();
    let tally = state.handle.tally().borrow().clone();
    let live = state.handle.live().borrow().clone();
    let scheduler = *state.scheduler.borrow();
    let read = tokio::task::spawn_blocking(move || {
        let state = EngineState::load(&app);
        let free_bytes = sauve_engine::AppSettings::load(&app)
            .ok()
            .and_then(|s| {
                sauve_settings::resolve_path(&app, &s.settings.general.destination_folder).ok()
            })
            // A store's space is not known here: no gauge for it.
            .and_then(|d| sauve_engine::free_space(&d.path));
        let data_bytes = sauve_engine::data_size(&app);
        let archive_bytes = state
            .last_backup
            .as_ref()
            .and_then(|l| l.archive.as_deref())
            .and_then(set_size);
        Inputs {
            state,
            free_bytes,
            archive_bytes,
            data_bytes,
            tally,
            live,
            scheduler,
        }
    });
    let inputs = match tokio::time::timeout(Duration::from_secs(10), read).await {
        Ok(Ok(i)) => i,
        _ => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the metrics could not be read in time\n",
            )
                .into_response();
        }
    };
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry(&inputs)) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the metrics: {e}\n"),
        )
            .into_response();
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sauve_engine::Phase;

    #[test]
    fn a_scrape_names_every_value_of_spec_17_3() {
        let state = EngineState {
            last_backup: Some(sauve_engine::LastBackup {
                number: 42.into(),
                status: sauve_status::Status::AttachmentNotFound,
                trigger: sauve_engine::Trigger::Scheduled,
                started: "2026-01-01T02:00:00Z".parse().unwrap(),
                ended: "2026-01-01T02:00:30Z".parse().unwrap(),
                archive: None,
                log_archive: None,
                data_lock: Some(Duration::from_millis(1500)),
                structure_lock: None,
            }),
            proven: Some(sauve_engine::RehearsalRecord {
                set: "App[0042]".to_owned(),
                number: 42.into(),
                source: "s3://b/p/".to_owned(),
                status: sauve_status::Status::Ok,
                error: None,
                provable: true,
                preempted: false,
                rate_mib_s: None,
                started: "2026-01-01T04:00:00Z".parse().unwrap(),
                ended: "2026-01-01T04:00:20Z".parse().unwrap(),
                point: Some("2026-01-01T02:00:00Z".parse().unwrap()),
                last_sequence: Some(7),
                restore_ms: 12_000,
                integrate_ms: 2_000,
                check_ms: 10,
                bytes: 1 << 20,
                data_bytes: 1000,
            }),
            sample: Some(sauve_engine::SampleState {
                last: Some(sauve_engine::SampleRecord {
                    at: "2026-01-01T02:00:00Z".parse().unwrap(),
                    source: "/bk".into(),
                    sets: 3,
                    pieces: 5,
                    bytes: 20 << 20,
                    damaged: 2,
                    ended_early: None,
                }),
                cursors: Default::default(),
                damaged: [2, 2, 3]
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| sauve_engine::Damage {
                        set: format!("App[{n:04}]"),
                        number: n.into(),
                        file: format!("App[{n:04}].4BK"),
                        piece: Some(i as u64),
                        why: "does not hold the bytes stored there".into(),
                        found: "2026-01-01T02:00:00Z".parse().unwrap(),
                    })
                    .collect(),
            }),
            ..EngineState::default()
        };
        let mut tally = sauve_engine::Tally::default();
        tally
            .by_outcome
            .insert((sauve_engine::Trigger::Scheduled, 0), 3);
        let inputs = Inputs {
            state,
            free_bytes: Some(1 << 30),
            archive_bytes: Some(4096),
            data_bytes: Some(1500),
            tally,
            live: Some(sauve_engine::LiveRun {
                run: 9,
                trigger: sauve_engine::Trigger::Remote,
                number: 43.into(),
                phase: Phase::Data,
                file: "Data/App.4DD".into(),
                bytes_done: 10,
                bytes_total: 100,
                started: None,
            }),
            scheduler: SchedulerView {
                next: Some("2026-01-01T03:00:00Z".parse().unwrap()),
                disabled: false,
                checked: None,
            },
        };
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry(&inputs)).unwrap();
        for line in [
            "sauve_last_backup_status -43",
            "sauve_last_backup_success 1",
            "sauve_last_backup_number 42",
            "sauve_last_backup_start_timestamp_seconds 1767232800.0",
            "sauve_last_backup_duration_seconds 30.0",
            "sauve_last_backup_data_lock_seconds 1.5",
            "sauve_last_backup_archive_bytes 4096",
            "sauve_backups_total{trigger=\"scheduled\",status=\"0\"} 3",
            "sauve_backup_running 1",
            "sauve_backup_phase{phase=\"data\"} 1",
            "sauve_backup_done_bytes 10",
            "sauve_backup_total_bytes 100",
            "sauve_scheduler_disabled 0",
            "sauve_next_scheduled_timestamp_seconds 1767236400.0",
            "sauve_scheduler_failures 0",
            "sauve_alerts_open 0",
            "sauve_destination_free_bytes 1073741824",
            "sauve_last_proven_restore_timestamp_seconds 1767232800.0",
            // 14 s at 1000 bytes of data, 1500 now.
            "sauve_restore_duration_seconds 21.0",
            "sauve_last_sample_timestamp_seconds 1767232800.0",
            // Two sets, one with two damaged pieces.
            "sauve_damaged_sets 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
