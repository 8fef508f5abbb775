//! notes-server: a small HTTP server storing notes in SQLite, embedding
//! sauve the way a real host app does.
//!
//! - The SQLite database is the app's data file (`APP/Data/Notes.4DD`);
//!   uploaded files (`POST /files/{name}`) are kept in `APP/Data/Uploads/`,
//!   which the settings attach. Every write is appended to the log
//!   (`APP/Data/Notes.journal`, group commit) before it is applied and
//!   acknowledged, under a data write guard; reads take read guards. The
//!   engine runs in server mode: during a backup reads go on and writes wait.
//! - A client may bound its wait with `?wait_ms=N`: past it, the write is
//!   cancelled and answered 409 with error -9976; nothing of it is applied.
//! - The control API of sauve is mounted under `/v1`, and the scheduler
//!   runs, so backups come from the schedule and from remote requests.
//! - At start, the open check restores damaged data from the newest backup
//!   and integrates the logs (AutomaticRestore, AutomaticLogIntegration).
//!
//! - Restore rehearsals (`POST /v1/rehearse`, the page, `[rehearsal] every`)
//!   restore a set into a sandbox, apply the log backups to the restored
//!   database and run `PRAGMA integrity_check` on it.
//! - `DELETE /notes` deletes every note (logged like any write: a mistake a
//!   point-in-time restore undoes); `GET /notes` lists them.
//! - `notes-server restore --app DIR --until "2026-12-01 14:04:30"` (or
//!   `--until-seq N`), with the server stopped, puts the data back as it was
//!   at that point: the newest backup before it, then the log up to it
//!   (behaviour §20). The writes after the point stay in the log, set aside: the
//!   next start does not apply them again.
//!
//! Usage: `notes-server --app DIR [--listen ADDR]`; it writes its address
//! and token to `APP/Logs/sauve-server.json`.

#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::{Connection, OptionalExtension, params};
use sauve_engine::{BackupHandle, DataHealth, Engine, EngineOptions, SchedulerView};
use sauve_locking::{CancellationToken, Kind, LockError, Mode};
use sauve_logfile::{Durability, LogWriter, Record, Tag};
use serde_json::json;

const IDENTITY: [u8; 16] = *b"notes-server-001";

#[derive(Clone)]
struct App {
    db: Arc<Mutex<Connection>>,
    uploads: PathBuf,
    log: Arc<LogWriter>,
    handle: BackupHandle,
    next_id: Arc<AtomicU64>,
}

fn open_db(path: &Path) -> Result<Connection> {
    let db = Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    db.execute_batch(
        "PRAGMA journal_mode = DELETE;
         PRAGMA synchronous = FULL;
         CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);",
    )?;
    Ok(db)
}

/// The last log sequence the database has applied; `None` when damaged.
fn health(path: &Path) -> Option<u64> {
    let db = Connection::open(path).ok()?;
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .ok()?;
    if ok != "ok" {
        return None;
    }
    db.query_row("SELECT v FROM meta WHERE k = 'last_seq'", [], |r| {
        r.get::<_, i64>(0)
    })
    .optional()
    .ok()
    .map(|v| v.unwrap_or(0) as u64)
}

/// Valid upload names: letters, digits, `.`, `_`, `-`; not `.` or `..`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        bail!("odd hex length");
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(Into::into))
        .collect()
}

/// Applies one logged write with its sequence: a note (one transaction), or
/// an uploaded file (written to `Data/Uploads/` through a temporary file).
fn apply(db: &mut Connection, uploads: &Path, r: &Record) -> Result<()> {
    let v: serde_json::Value = serde_json::from_slice(&r.payload)?;
    let tx = db.transaction()?;
    if v["delete_all"].as_bool() == Some(true) {
        tx.execute("DELETE FROM notes", [])?;
    } else if let Some(name) = v["file"].as_str() {
        if !valid_name(name) {
            bail!("bad upload name {name:?}");
        }
        std::fs::create_dir_all(uploads)?;
        let tmp = uploads.join(format!(".{name}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &unhex(v["data"].as_str().unwrap_or(""))?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, uploads.join(name))?;
    } else {
        tx.execute(
            "INSERT OR REPLACE INTO notes (id, body) VALUES (?1, ?2)",
            params![
                v["id"].as_i64().unwrap_or(0),
                v["body"].as_str().unwrap_or("")
            ],
        )?;
    }
    tx.execute(
        "INSERT OR REPLACE INTO meta (k, v) VALUES ('last_seq', ?1)",
        params![r.seq as i64],
    )?;
    tx.commit()?;
    Ok(())
}

/// Applies logged writes to the database a restore put in place, opened
/// at the first one (the open check and `restore` replay through it).
struct Replay<'a> {
    data: &'a Path,
    uploads: &'a Path,
    db: Option<Connection>,
}

impl<'a> Replay<'a> {
    fn new(data: &'a Path, uploads: &'a Path) -> Replay<'a> {
        Replay {
            data,
            uploads,
            db: None,
        }
    }

    fn apply(&mut self, r: &Record) -> Result<(), String> {
        let conn = match &mut self.db {
            Some(c) => c,
            None => self
                .db
                .insert(open_db(self.data).map_err(|e| e.to_string())?),
        };
        apply(conn, self.uploads, r).map_err(|e| e.to_string())
    }
}

/// The notes-server's restore rehearsal (behaviour §22): the restored
/// database opened in the sandbox, each logged write of the log backups
/// applied to it with the server's own function (uploads into the
/// sandbox's `Data/Uploads/`), then SQLite's `PRAGMA integrity_check`, and
/// the sequence the database says it holds against the log's last.
#[derive(Default)]
struct Rehearse {
    db: Option<Connection>,
    uploads: PathBuf,
    /// The last sequence applied: the set's, then each record's.
    last: u64,
}

impl Rehearse {
    fn db(&mut self) -> Result<&mut Connection, sauve_engine::RehearsalError> {
        self.db
            .as_mut()
            .ok_or_else(|| "the restored database was not opened".into())
    }
}

impl sauve_engine::RehearsalHost for Rehearse {
    fn open(
        &mut self,
        sandbox: &sauve_engine::Sandbox,
    ) -> Result<(), sauve_engine::RehearsalError> {
        let data = sandbox.data.as_ref().ok_or("the set holds no data file")?;
        let db = open_db(data)?;
        self.last = db
            .query_row("SELECT v FROM meta WHERE k = 'last_seq'", [], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            .unwrap_or(0) as u64;
        self.db = Some(db);
        self.uploads = sandbox.app.join("Data/Uploads");
        Ok(())
    }

    fn apply(&mut self, r: &Record) -> Result<(), sauve_engine::RehearsalError> {
        let uploads = self.uploads.clone();
        apply(self.db()?, &uploads, r)?;
        self.last = r.seq;
        Ok(())
    }

    fn check(&mut self, _: &sauve_engine::Sandbox) -> Result<String, sauve_engine::RehearsalError> {
        let last = self.last;
        let db = self.db()?;
        let ok: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if ok != "ok" {
            return Err(format!("PRAGMA integrity_check says: {ok}").into());
        }
        let held: i64 = db
            .query_row("SELECT v FROM meta WHERE k = 'last_seq'", [], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        if held as u64 != last {
            return Err(format!(
                "the database holds the writes to sequence {held}, the log backups to {last}"
            )
            .into());
        }
        let notes: i64 = db.query_row("SELECT COUNT(*) FROM notes", [], |r| r.get(0))?;
        Ok(format!("ok: {notes} notes, to sequence {last}"))
    }
}

fn error(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

/// 500 with the error's text.
fn internal(e: impl std::fmt::Display) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"error": e.to_string()}),
    )
}

#[derive(serde::Deserialize)]
struct WriteQuery {
    wait_ms: Option<u64>,
}

/// The kind of a logged write of a note.
const KIND_NOTE: u16 = 1;
/// The kind of a logged upload of a file.
const KIND_FILE: u16 = 2;
/// The kind of a logged deletion of every note.
const KIND_DELETE: u16 = 3;

/// Logs a write, then applies it; call it holding the data write guard. The
/// caller acknowledges only once this returns: both are durable by then.
async fn commit(
    app: App,
    record: serde_json::Value,
) -> Result<Result<u64>, tokio::task::JoinError> {
    tokio::task::spawn_blocking(move || -> Result<u64> {
        // The operation's kind and table, for `sauve log show` (behaviour §20).
        let tag = if record.get("file").is_some() {
            Tag::new(KIND_FILE, "files")
        } else if record.get("delete_all").is_some() {
            Tag::new(KIND_DELETE, "notes deleted")
        } else {
            Tag::new(KIND_NOTE, "notes")
        };
        let record = serde_json::to_vec(&record)?;
        let seq = app.log.append_tagged(tag.as_ref(), &record)?;
        let mut db = app.db.lock().unwrap_or_else(|e| e.into_inner());
        apply(&mut db, &app.uploads, &Record::new(seq, record))?;
        Ok(seq)
    })
    .await
}

async fn create(State(app): State<App>, Query(q): Query<WriteQuery>, body: String) -> Response {
    let cancel = CancellationToken::new();
    if let Some(ms) = q.wait_ms {
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            c.cancel();
        });
    }
    let guard = match app
        .handle
        .locks()
        .write_cancellable(Kind::Data, &cancel)
        .await
    {
        Ok(g) => g,
        Err(LockError::Cancelled) => {
            return error(
                StatusCode::CONFLICT,
                json!({"error": -9976, "message": "the waiting write was cancelled; nothing was written"}),
            );
        }
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": e.to_string()}),
            );
        }
    };
    let waited = guard.waited();
    let id = app.next_id.fetch_add(1, Ordering::SeqCst);
    let result = commit(app, json!({"id": id, "body": body})).await;
    drop(guard);
    match result {
        Ok(Ok(seq)) => (
            StatusCode::CREATED,
            Json(json!({"id": id, "seq": seq, "waited_ms": waited.as_millis() as u64})),
        )
            .into_response(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

/// `DELETE /notes`: every note goes, in one logged write.
async fn delete_all(State(app): State<App>) -> Response {
    let guard = app.handle.locks().write(Kind::Data).await;
    let result = commit(app, json!({"delete_all": true})).await;
    drop(guard);
    match result {
        Ok(Ok(seq)) => Json(json!({"seq": seq})).into_response(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

/// `GET /notes`: every note, `[{"id", "body"}]` by id.
async fn list(State(app): State<App>) -> Response {
    let _guard = app.handle.locks().read(Kind::Data).await;
    let db = app.db.clone();
    let found = tokio::task::spawn_blocking(move || {
        let db = db.lock().unwrap_or_else(|e| e.into_inner());
        let mut q = db.prepare("SELECT id, body FROM notes ORDER BY id")?;
        let rows = q.query_map([], |r| {
            Ok(json!({"id": r.get::<_, i64>(0)?, "body": r.get::<_, String>(1)?}))
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
    })
    .await;
    match found {
        Ok(Ok(notes)) => Json(notes).into_response(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

async fn upload(
    State(app): State<App>,
    UrlPath(name): UrlPath<String>,
    body: axum::body::Bytes,
) -> Response {
    if !valid_name(&name) {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"error": "bad file name (accepted: letters, digits, '.', '_', '-', at most 64)"}),
        );
    }
    let guard = app.handle.locks().write(Kind::Data).await;
    let result = commit(app, json!({"file": name, "data": hex(&body)})).await;
    drop(guard);
    match result {
        Ok(Ok(seq)) => (StatusCode::CREATED, Json(json!({"seq": seq}))).into_response(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

async fn download(State(app): State<App>, UrlPath(name): UrlPath<String>) -> Response {
    if !valid_name(&name) {
        return error(StatusCode::BAD_REQUEST, json!({"error": "bad file name"}));
    }
    let _guard = app.handle.locks().read(Kind::Data).await;
    let path = app.uploads.join(&name);
    match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
        Ok(Ok(bytes)) => bytes.into_response(),
        _ => error(StatusCode::NOT_FOUND, json!({"error": "no such file"})),
    }
}

async fn read(State(app): State<App>, UrlPath(id): UrlPath<i64>) -> Response {
    let _guard = app.handle.locks().read(Kind::Data).await;
    let db = app.db.clone();
    let found = tokio::task::spawn_blocking(move || {
        let db = db.lock().unwrap_or_else(|e| e.into_inner());
        db.query_row("SELECT body FROM notes WHERE id = ?1", params![id], |r| {
            r.get::<_, String>(0)
        })
        .optional()
    })
    .await;
    match found {
        Ok(Ok(Some(body))) => Json(json!({"id": id, "body": body})).into_response(),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, json!({"error": "no such note"})),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

const USAGE: &str = "usage: notes-server --app DIR [--listen ADDR]\n       notes-server restore --app DIR (--until TIME | --until-seq N)\n         TIME: 2026-12-01 14:04:30 (local time), 2026-12-01T14:04:30+01:00 or 2026-12-01T13:04:30Z";

/// What the command line asks.
enum Command {
    /// Serve the notes (the default).
    Serve {
        app: PathBuf,
        listen: std::net::SocketAddr,
    },
    /// Restore the data to a point, the server stopped.
    Restore { app: PathBuf, point: Point },
}

/// A point as typed.
enum Point {
    Time(String),
    Sequence(u64),
}

fn args() -> Result<Command> {
    let mut app = None;
    let mut listen: std::net::SocketAddr = "127.0.0.1:0".parse()?;
    let mut point = None;
    let mut it = std::env::args().skip(1).peekable();
    let restore = it.peek().is_some_and(|a| a == "restore");
    if restore {
        it.next();
    }
    while let Some(a) = it.next() {
        match a.as_str() {
            "--app" => app = it.next().map(PathBuf::from),
            "--listen" if !restore => {
                listen = it.next().context("--listen needs an address")?.parse()?
            }
            "--until" if restore => {
                point = Some(Point::Time(
                    it.next().context("--until needs a time")?.to_owned(),
                ))
            }
            "--until-seq" if restore => {
                let n = it.next().context("--until-seq needs a sequence")?;
                let n = n.parse().with_context(|| {
                    format!("--until-seq {n:?}: not a sequence (accepted: a whole number, as `sauve log show` lists)")
                })?;
                point = Some(Point::Sequence(n));
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    let app = app.with_context(|| format!("--app DIR is required\n{USAGE}"))?;
    if restore {
        let point =
            point.with_context(|| format!("restore needs --until or --until-seq\n{USAGE}"))?;
        return Ok(Command::Restore { app, point });
    }
    Ok(Command::Serve { app, listen })
}

/// The app's own lock, `APP/Data/.notes-server.lock`, held by a server
/// from before its open check until it exits and by a restore while it
/// runs: neither starts while the other holds it. The kernel releases it
/// when the process dies, so a crash never leaves it taken.
fn hold_app(app_dir: &Path, doing: &str) -> Result<std::fs::File> {
    let data = app_dir.join("Data");
    if !data.is_dir() {
        bail!(
            "{} has no Data folder: not a notes-server app (accepted: the --app folder a notes-server ran with)",
            app_dir.display()
        );
    }
    let path = data.join(".notes-server.lock");
    let file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            let who = sauve_server::ServerFile::read(app_dir)
                .map(|f| format!(" (pid {}, {})", f.pid, f.url))
                .unwrap_or_default();
            bail!(
                "another notes-server (a server, or a restore) is running for {}{who}: stop it first, the data must not change during the {doing}",
                app_dir.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// `notes-server restore`: the data put back as it was at `point`
/// (behaviour §20), the server stopped.
fn restore(app_dir: &Path, point: Point, runtime: &tokio::runtime::Handle) -> Result<()> {
    let _app = hold_app(app_dir, "restore")?;
    let data = app_dir.join("Data/Notes.4DD");
    let uploads = app_dir.join("Data/Uploads");
    let layout = sauve_settings::AppLayout::discover(app_dir)?;
    let handle = Engine::start(
        layout,
        EngineOptions {
            mode: Mode::Server,
            ..EngineOptions::default()
        },
    )?;
    let zone = handle.clock().zone();
    let until = match point {
        Point::Time(text) => match sauve_logfile::parse_time(&text, &zone) {
            Ok(t) => sauve_engine::Until::Time(t),
            Err(e) => {
                runtime.block_on(handle.shutdown());
                bail!("--until: {e}");
            }
        },
        Point::Sequence(n) => sauve_engine::Until::Sequence(n),
    };
    println!(
        "restoring {} to {}",
        app_dir.display(),
        until.describe(&zone)
    );
    let mut replay = Replay::new(&data, &uploads);
    let result = handle.restore_to_point(
        IDENTITY,
        until,
        || health(&data).unwrap_or(0),
        |r| replay.apply(r),
    );
    drop(replay);
    runtime.block_on(handle.shutdown());
    let done = result.map_err(|e| anyhow::anyhow!("restore failed ({}): {e}", e.status()))?;
    println!("restored {}", done.archive.display());
    println!("replaced files kept in {}", done.replaced.display());
    for l in &done.logs {
        println!(
            "log {}: {} records applied",
            l.log.display(),
            l.integrated.applied
        );
    }
    let at = done
        .last_time
        .map(|t| format!(" at {}", sauve_logfile::format_time(t, &zone)))
        .unwrap_or_default();
    println!(
        "{} records applied; the data stands at sequence {}{at}",
        done.applied, done.last_applied
    );
    match done.set_aside {
        Some((a, b)) => println!(
            "records {a} to {b}, past the point, stay in the log set aside: they will not be applied again"
        ),
        None => println!("no record was past the point"),
    }
    for w in done.warnings {
        println!("warning: {w}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    // Signals first: a SIGTERM while the server starts stops it cleanly too.
    let stop = stop_signal()?;
    match args()? {
        Command::Serve { app, listen } => serve(app, listen, stop).await,
        Command::Restore { app, point } => {
            // Blocking work on a thread of its own, off this runtime.
            let runtime = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || restore(&app, point, &runtime)).await?
        }
    }
}

/// SIGTERM and SIGINT, handled from now on; the future ends at the first
/// of them.
fn stop_signal() -> Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// The app's files the server writes.
struct AppFiles {
    /// The SQLite database, the app's data file.
    data: PathBuf,
    /// The log of the writes.
    log: PathBuf,
    /// The uploaded files, which the settings attach.
    uploads: PathBuf,
}

/// `notes-server --app DIR`: the app held, its engine started and its data
/// checked, the notes served until `stop`; then the engine shut down.
async fn serve(
    app_dir: PathBuf,
    listen: std::net::SocketAddr,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    std::fs::create_dir_all(app_dir.join("Data"))?;
    // Held until the process exits: a restore waits for the server's end.
    let _app = hold_app(&app_dir, "start")?;
    let files = prepare_app(&app_dir)?;
    let layout = sauve_settings::AppLayout::discover(&app_dir)?;
    let (log, handle) = start_engine(layout, &files.log)?;
    open_check(&handle, &files).await?;
    let state = app_state(files, log, &handle)?;
    let (view, scheduler_view) = tokio::sync::watch::channel(SchedulerView::default());
    let scheduler = tokio::spawn(sauve_engine::scheduler_loop(handle.clone(), view));
    let token = Arc::new(sauve_server::generate_token()?);
    // The MSC page at `/`, beside the control API and the app's own routes;
    // it answers only to the names of the address it listens on.
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let router = router(state, &token, scheduler_view, &listener)?;
    let url = format!("http://{}", listener.local_addr()?);
    sauve_server::write_server_file(&app_dir, &url, &token)?;
    println!("notes-server listening on {url}");
    // sauve's server loop: header and idle timeouts, and each connection's
    // address for the page's per-address login limit.
    sauve_server::serve(listener, router, stop).await;
    scheduler.abort();
    handle.shutdown().await;
    let _ = std::fs::remove_file(sauve_server::server_file_path(&app_dir));
    Ok(())
}

/// The app's files in place: an empty database and the uploads folder on
/// the first start, and settings that attach that folder.
fn prepare_app(app_dir: &Path) -> Result<AppFiles> {
    let data = app_dir.join("Data/Notes.4DD");
    let log = app_dir.join("Data/Notes.journal");
    if !data.exists() {
        open_db(&data)?;
    }
    let uploads = app_dir.join("Data/Uploads");
    std::fs::create_dir_all(&uploads)?;
    // First start: settings that attach the uploads folder (inside Data/,
    // so it is copied under the data lock with the database, O-11).
    if sauve_settings::locate(app_dir) == sauve_settings::SettingsSource::Defaults {
        let mut s = sauve_settings::Settings::default();
        s.general.includes_files = vec!["./Data/Uploads/".to_owned()];
        sauve_settings::create_file(
            &sauve_settings::structure_settings_path(app_dir),
            &sauve_settings::SettingsDoc::new(s),
        )?;
    }
    Ok(AppFiles { data, log, uploads })
}

/// The log first (it checks the log belongs to this data, 1416), then the
/// engine, in server mode with the log: the open check goes through it, so
/// its restore and integrations are recorded by the engine's records and
/// refused to overlap a backup.
fn start_engine(
    layout: sauve_settings::AppLayout,
    log_path: &Path,
) -> Result<(Arc<LogWriter>, BackupHandle)> {
    let log = Arc::new(LogWriter::open_or_create(
        log_path,
        IDENTITY,
        Durability::GroupCommit,
    )?);
    let handle = Engine::start(
        layout,
        EngineOptions {
            mode: Mode::Server,
            log: Some(log.clone()),
            // One compression thread: the other core keeps serving requests.
            threads: 1,
            // Rehearsals apply the logs and check the database as the host does.
            rehearsal: Some(Arc::new(|| Box::new(Rehearse::default()))),
            ..EngineOptions::default()
        },
    )?;
    Ok((log, handle))
}

/// The open check: automatic restore and log integration.
async fn open_check(handle: &BackupHandle, files: &AppFiles) -> Result<()> {
    let state = health(&files.data);
    let check_path = files.data.clone();
    let check_uploads = files.uploads.clone();
    let check = handle.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut replay = Replay::new(&check_path, &check_uploads);
        check.open_check(
            DataHealth {
                damaged: state.is_none(),
                last_applied: state.unwrap_or(0),
            },
            IDENTITY,
            sauve_engine::Until::End,
            || health(&check_path).unwrap_or(0),
            |r| replay.apply(r),
        )
    })
    .await?;
    match outcome {
        Ok(o) => {
            println!(
                "open check: restored {:?}, {} records applied, last {}",
                o.restored, o.applied, o.last_applied
            );
            for w in o.warnings {
                println!("open check warning: {w}");
            }
        }
        Err(e) => bail!("open check failed ({}): {e}", e.status()),
    }
    Ok(())
}

/// The routes' state: the database opened, the next note's id after the
/// highest there.
fn app_state(files: AppFiles, log: Arc<LogWriter>, handle: &BackupHandle) -> Result<App> {
    let db = open_db(&files.data)?;
    let next: i64 = db.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM notes", [], |r| {
        r.get(0)
    })?;
    Ok(App {
        db: Arc::new(Mutex::new(db)),
        uploads: files.uploads,
        log,
        handle: handle.clone(),
        next_id: Arc::new(AtomicU64::new(next as u64)),
    })
}

/// The app's routes, the control API under `/v1` and the MSC page, for
/// the address `listener` listens on.
fn router(
    state: App,
    token: &Arc<String>,
    scheduler_view: tokio::sync::watch::Receiver<SchedulerView>,
    listener: &tokio::net::TcpListener,
) -> Result<Router> {
    let handle = &state.handle;
    let pages = sauve_web::PageState::new(handle.clone(), token.clone(), scheduler_view.clone())
        .with_listen_addr(listener.local_addr()?);
    let api = sauve_server::router(sauve_server::ApiState {
        handle: handle.clone(),
        token: token.clone(),
        scheduler: scheduler_view,
    });
    let routes = Router::new()
        .route("/notes", post(create).get(list).delete(delete_all))
        .route("/notes/{id}", get(read))
        .route("/files/{name}", post(upload).get(download))
        .with_state(state)
        .merge(api);
    Ok(sauve_web::with_pages(routes, pages))
}
