//! `sauve run`: the engine, the scheduler loop and the control API, until
//! SIGTERM or SIGINT.

use std::future::Future;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sauve_engine::{BackupHandle, Engine, EngineOptions, SchedulerView};
use sauve_scheduler::{Attempt, RetryPolicy, Schedule, SchedulerState};
use sauve_status::Status;
use serde::{Deserialize, Serialize};

use crate::api::{ApiState, router};

/// `APP/Logs/sauve-server.json`: how to reach a live server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerFile {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The server's process id.
    pub pid: u32,
    /// The app folder.
    pub app: PathBuf,
    /// The bearer token.
    pub token: String,
}

/// Where the server file is.
pub fn server_file_path(app: &Path) -> PathBuf {
    app.join("Logs").join("sauve-server.json")
}

impl ServerFile {
    /// Reads the server file of `app`, if any.
    pub fn read(app: &Path) -> Option<ServerFile> {
        let bytes = std::fs::read(server_file_path(app)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Whether its process is alive (the file is ignored otherwise).
    pub fn pid_alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The app folder is not usable.
    #[error("{0}")]
    App(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The system's error.
        source: std::io::Error,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// A fresh token: 32 random bytes from the kernel, in hex.
fn new_token() -> Result<String, DaemonError> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| DaemonError::Other(format!("cannot read /dev/urandom: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh bearer token, for hosts that serve the API themselves.
pub fn generate_token() -> Result<String, DaemonError> {
    new_token()
}

/// Writes `APP/Logs/sauve-server.json` (mode 0600) for a server at `url`.
pub fn write_server_file(app: &Path, url: &str, token: &str) -> Result<(), DaemonError> {
    let file = ServerFile {
        url: url.to_owned(),
        pid: std::process::id(),
        app: app.to_path_buf(),
        token: token.to_owned(),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| DaemonError::Other(e.to_string()))?;
    sauve_durable::replace(&server_file_path(app), &json)
        .map_err(|e| DaemonError::Other(e.to_string()))
}

/// Runs the server of `app` until `shutdown` completes; a running backup is
/// then stopped (1406) and recorded before returning.
pub async fn run(
    app: PathBuf,
    listen: SocketAddr,
    mode: sauve_locking::Mode,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let layout =
        sauve_settings::AppLayout::discover(&app).map_err(|e| DaemonError::App(e.to_string()))?;
    let handle = Engine::start(
        layout,
        EngineOptions {
            mode,
            ..EngineOptions::default()
        },
    )
    .map_err(|e| DaemonError::Other(e.to_string()))?;
    let token = match ServerFile::read(&app) {
        Some(old) if !old.token.is_empty() => old.token,
        _ => new_token()?,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| DaemonError::Other(e.to_string()))?;
    let file = ServerFile {
        url: format!("http://{addr}"),
        pid: std::process::id(),
        app: app.clone(),
        token: token.clone(),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| DaemonError::Other(e.to_string()))?;
    // Written through a temporary file, created 0600, renamed: the token is
    // never readable by others, not even for an instant.
    sauve_durable::replace(&server_file_path(&app), &json)
        .map_err(|e| DaemonError::Other(e.to_string()))?;
    tracing::info!(url = %file.url, app = %app.display(), "sauve server listening");

    let view = Arc::new(Mutex::new(SchedulerView::default()));
    let scheduler = tokio::spawn(scheduler_loop(handle.clone(), view.clone()));
    let state = ApiState {
        handle: handle.clone(),
        token: Arc::new(token),
        scheduler: view,
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });
    shutdown.await;
    tracing::info!("stopping: a running backup ends with 1406");
    scheduler.abort();
    handle.clone().shutdown().await;
    let _ = stop_tx.send(());
    let _ = served.await;
    let _ = std::fs::remove_file(server_file_path(&app));
    Ok(())
}

/// What the scheduler persists, under `scheduler` in `APP/Logs/sauve-state.json`.
fn load_state(app: &Path) -> SchedulerState {
    let state = sauve_engine::EngineState::load(app);
    state
        .extra
        .get("scheduler")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

fn save_state(app: &Path, s: &SchedulerState) {
    let mut state = sauve_engine::EngineState::load(app);
    if let Ok(v) = serde_json::to_value(s) {
        state.extra.insert("scheduler".to_owned(), v);
    }
    if let Ok(json) = serde_json::to_vec_pretty(&state)
        && let Err(e) = sauve_durable::replace(&sauve_engine::state_path(app), &json)
    {
        tracing::warn!("cannot save the scheduler state: {e}");
    }
}

/// The schedule and policy of the current settings; `None` when they are
/// invalid (the last valid ones stay in force, with a warning).
fn plan(app: &Path) -> Option<(Schedule, RetryPolicy, std::time::SystemTime)> {
    let source = sauve_settings::locate(app);
    let modified = source
        .path()
        .and_then(|p| std::fs::metadata(p).ok())
        .and_then(|m| m.modified().ok())
        .unwrap_or(std::time::UNIX_EPOCH);
    match sauve_settings::load_effective(app) {
        Ok(e) => {
            let s = e.doc.settings();
            Some((
                Schedule::from_settings(&s.scheduler),
                RetryPolicy::from_settings(&s.advanced.backup_failure),
                modified,
            ))
        }
        Err(e) => {
            tracing::warn!("invalid settings; the last valid schedule stays in force: {e}");
            None
        }
    }
}

/// Runs scheduled backups: re-reads the settings at least every minute and
/// before each backup, applies the failure policy, catches up missed slots.
/// Host apps spawn it beside their own server; it runs until aborted.
pub async fn scheduler_loop(handle: BackupHandle, view: Arc<Mutex<SchedulerView>>) {
    let app = handle.app().to_path_buf();
    let tz = TimeZone::system();
    let a = app.clone();
    let Ok(Some(mut current)) = tokio::task::spawn_blocking(move || plan(&a)).await else {
        return;
    };
    let a = app.clone();
    let mut state = tokio::task::spawn_blocking(move || load_state(&a))
        .await
        .unwrap_or_default();
    let (missed, decision) = state.at_start(&current.0, &current.1, &tz, Timestamp::now());
    if let Some(slot) = missed {
        record_missed(&handle, slot).await;
    }
    let mut next: Option<Attempt> = decision.next;
    loop {
        {
            let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
            *v = SchedulerView {
                next: next.map(|n| n.at),
                disabled: state.disabled,
            };
        }
        let now = Timestamp::now();
        let due = next.filter(|n| n.at <= now);
        let Some(attempt) = due else {
            // Sleep until the attempt, waking every minute to notice changed
            // settings and clock jumps.
            let wait = next
                .map(|n| n.at.duration_since(now).unsigned_abs())
                .unwrap_or(Duration::from_secs(60))
                .min(Duration::from_secs(60));
            tokio::time::sleep(wait).await;
            // A successful manual, api or remote backup re-enables a
            // scheduler turned off by 1401 (SPEC 9.1).
            if state.disabled
                && let Some(last) = handle.last_backup().await
                && last.trigger != "scheduled"
                && Status::from_code(last.status).is_success()
                && last
                    .ended
                    .parse::<Timestamp>()
                    .is_ok_and(|t| state.last_slot.is_none_or(|s| t > s))
            {
                state.manual_success();
                next = state.postponed(&current.0, &tz, Timestamp::now(), Timestamp::now());
            }
            let a = app.clone();
            if let Ok(Some(fresh)) = tokio::task::spawn_blocking(move || plan(&a)).await
                && fresh.2 != current.2
            {
                current = fresh;
                next = state
                    .postponed(
                        &current.0,
                        &tz,
                        state.last_slot.unwrap_or(now),
                        Timestamp::now(),
                    )
                    .filter(|_| !state.disabled);
            }
            continue;
        };
        // A slot that passed by more than a minute ago without firing
        // (suspend, clock jump) is a missed slot.
        if attempt.number == 1
            && Timestamp::now().duration_since(attempt.slot) > jiff::SignedDuration::from_secs(60)
        {
            record_missed(&handle, attempt.slot).await;
            let d = state.after_attempt(
                &current.0,
                &current.1,
                &tz,
                attempt.slot,
                1,
                Status::SlotMissed,
                Timestamp::now(),
            );
            next = d.next;
            let (a, s) = (app.clone(), state.clone());
            let _ = tokio::task::spawn_blocking(move || save_state(&a, &s)).await;
            continue;
        }
        let a = app.clone();
        if let Ok(Some(fresh)) = tokio::task::spawn_blocking(move || plan(&a)).await {
            current = fresh;
        }
        let report = match handle.backup_scheduled(attempt.slot).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("the engine is gone: {e}");
                return;
            }
        };
        if report.postponed {
            // BackupIfDataChange: the slot is handled, no failure (SPEC 9.3).
            next = state.postponed(&current.0, &tz, attempt.slot, Timestamp::now());
            let (a, s) = (app.clone(), state.clone());
            let _ = tokio::task::spawn_blocking(move || save_state(&a, &s)).await;
            continue;
        }
        let decision = state.after_attempt(
            &current.0,
            &current.1,
            &tz,
            attempt.slot,
            attempt.number,
            report.status,
            Timestamp::now(),
        );
        if decision.status == Status::MaxAttemptsReached {
            record_abort(&handle, attempt, &report).await;
        }
        next = if state.disabled { None } else { decision.next };
        let (a, s) = (app.clone(), state.clone());
        let _ = tokio::task::spawn_blocking(move || save_state(&a, &s)).await;
    }
}

/// Journals a missed slot as "Full Backup aborted" with 1418 (SPEC 9.2).
async fn record_missed(handle: &BackupHandle, slot: Timestamp) {
    let tz = TimeZone::system();
    let mut e = sauve_journal::Entry::new(sauve_journal::Title::FullBackupAborted);
    e.trigger = Some("scheduled".to_owned());
    e.scheduled = Some(sauve_journal::Stamp::at(tz.to_datetime(slot)));
    e.starting = Some(sauve_journal::Stamp::at(tz.to_datetime(Timestamp::now())));
    e.status = Some(Status::SlotMissed.code());
    append(handle, e).await;
}

/// Journals the attempt that reached RetryCountBeforeAbort as 1401.
async fn record_abort(
    handle: &BackupHandle,
    attempt: Attempt,
    report: &sauve_engine::BackupReport,
) {
    let tz = TimeZone::system();
    let mut e = sauve_journal::Entry::new(sauve_journal::Title::FullBackupAborted);
    e.trigger = Some("scheduled".to_owned());
    e.attempt = Some(attempt.number);
    e.scheduled = Some(sauve_journal::Stamp::at(tz.to_datetime(attempt.slot)));
    e.starting = Some(sauve_journal::Stamp::at(tz.to_datetime(report.started)));
    e.ending = Some(sauve_journal::Stamp::at(tz.to_datetime(report.ended)));
    e.status = Some(Status::MaxAttemptsReached.code());
    e.errors = vec![report.status.to_string()];
    e.errors.extend(report.errors.iter().cloned());
    append(handle, e).await;
}

async fn append(handle: &BackupHandle, entry: sauve_journal::Entry) {
    let logs = handle.app().join("Logs");
    let _ = tokio::task::spawn_blocking(move || {
        sauve_journal::Journal::open(&logs).and_then(|mut j| j.append(&entry, true))
    })
    .await;
}
