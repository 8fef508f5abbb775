//! `sauve run`: the engine, the engine's scheduler loop and the control
//! API, until SIGTERM or SIGINT; one server per app
//! (`APP/Logs/sauve-run.lock`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sauve_engine::{Engine, EngineError, EngineOptions, SchedulerView, scheduler_loop};
use serde::{Deserialize, Serialize};

use crate::api::router;
use crate::state::ApiState;

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

/// Where the lock that makes one server per app is:
/// `APP/Logs/sauve-run.lock` ([`sauve_engine::run_lock_path`]), locked
/// (`flock`) for the server's life and released by the kernel when its
/// process ends, however it ends. It holds `{"pid": …, "url": …}` of the
/// server that holds it, for the message a second one gives. A restore
/// into the app holds it too ([`sauve_engine::hold_restore_target`]),
/// without writing in it.
pub fn run_lock_path(app: &Path) -> PathBuf {
    sauve_engine::run_lock_path(app)
}

/// Whether the process `pid` is alive: a pid read from a lock whose holder
/// is a restore is a server's that has ended.
fn alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // EPERM: alive, but another user's.
    matches!(
        rustix::process::test_kill_process(pid),
        Ok(()) | Err(rustix::io::Errno::PERM)
    )
}

/// What the lock file says about the server that holds it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct LockInfo {
    pid: Option<u32>,
    url: Option<String>,
}

/// The lock of [`run_lock_path`], held while this value lives.
#[derive(Debug)]
struct RunLock {
    file: std::fs::File,
}

impl RunLock {
    /// Takes the app's lock, or says which server holds it.
    fn take(app: &Path) -> Result<RunLock, DaemonError> {
        let path = run_lock_path(app);
        let failed = |source| DaemonError::Lock {
            path: path.clone(),
            source,
        };
        if let Some(logs) = path.parent() {
            std::fs::create_dir_all(logs).map_err(failed)?;
        }
        // Never truncated before it is ours: its contents name the holder.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut held: LockInfo = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                // The holder may not have written its address yet: its
                // server file may have it.
                if let Some(f) = ServerFile::read(app)
                    && held.pid.is_none_or(|p| p == f.pid)
                {
                    held.pid = Some(f.pid);
                    held.url = held.url.or(Some(f.url));
                }
                // The file names the last server that wrote it; when that
                // one has ended, the holder is a restore into the app (it
                // writes nothing there) or a server that has not written
                // its pid yet: neither is named after a pid that is gone.
                if !held.pid.is_some_and(alive) {
                    held = LockInfo::default();
                }
                return Err(DaemonError::AlreadyRunning {
                    app: app.to_path_buf(),
                    pid: held.pid,
                    url: held.url,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(failed(e)),
        }
        let lock = RunLock { file };
        lock.record(None).map_err(failed)?;
        Ok(lock)
    }

    /// Writes this process's id and, once known, its address into the lock.
    fn record(&self, url: Option<&str>) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let info = LockInfo {
            pid: Some(std::process::id()),
            url: url.map(str::to_owned),
        };
        // Serializing two plain fields cannot fail.
        let json = serde_json::to_vec(&info).unwrap_or_default();
        self.file.set_len(0)?;
        self.file.write_all_at(&json, 0)
    }
}

/// The message of [`DaemonError::AlreadyRunning`].
fn already_running(app: &Path, pid: Option<u32>, url: Option<&str>) -> String {
    let lock = run_lock_path(app);
    match pid {
        Some(pid) => format!(
            "another sauve run serves \"{}\" (pid {pid}, {}; it holds {}): stop it first, or use it (sauve backup --app forwards to it)",
            app.display(),
            url.unwrap_or("address unknown"),
            lock.display()
        ),
        None => format!(
            "\"{}\" is held by a restore into it or by another sauve run that is starting (it holds {}): wait for the restore to end, or stop the other server",
            app.display(),
            lock.display()
        ),
    }
}

/// Whether people reach the page through a TLS proxy in front.
fn behind_tls(public_url: Option<&str>) -> bool {
    public_url.is_some_and(|u| sauve_web::public_origin(u).is_ok_and(|o| o.starts_with("https://")))
}

/// Refuses a `--listen` address outside loopback without TLS in front or
/// the operator's explicit word.
fn check_listen(
    listen: SocketAddr,
    public_url: Option<&str>,
    insecure: bool,
) -> Result<(), DaemonError> {
    if listen.ip().to_canonical().is_loopback() || behind_tls(public_url) || insecure {
        return Ok(());
    }
    Err(DaemonError::ListenRefused { addr: listen })
}

impl ServerFile {
    /// Reads the server file of `app`, if any.
    pub fn read(app: &Path) -> Option<ServerFile> {
        let bytes = std::fs::read(server_file_path(app)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Whether its process is alive (the file is ignored otherwise): a
    /// signal 0 reaches it, or it exists but belongs to someone else.
    pub fn pid_alive(&self) -> bool {
        let Some(pid) = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return false;
        };
        match rustix::process::test_kill_process(pid) {
            Ok(()) => true,
            Err(e) => e == rustix::io::Errno::PERM,
        }
    }
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The app folder is not usable.
    #[error("app folder \"{}\": {source}", app.display())]
    App {
        /// The folder.
        app: PathBuf,
        /// Why.
        source: sauve_settings::SettingsError,
    },
    /// The engine could not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// `--listen` names an address outside loopback, with neither TLS in
    /// front nor `--insecure-listen`.
    #[error(
        "refusing to listen on {addr}: it is not a loopback address, and the page and API would be reachable from the network without TLS (accepted: a loopback address such as 127.0.0.1:7070; or --public-url https://... with a TLS proxy in front; or --insecure-listen to accept plain HTTP on {addr})"
    )]
    ListenRefused {
        /// The address.
        addr: SocketAddr,
    },
    /// Another `sauve run` serves this app, or a restore into it runs.
    #[error("{}", already_running(app, *pid, url.as_deref()))]
    AlreadyRunning {
        /// The app folder.
        app: PathBuf,
        /// The other server's process id, when it wrote it and is alive;
        /// `None` when the holder is a restore, or a server that has not
        /// written it yet.
        pid: Option<u32>,
        /// The other server's address, when it wrote it.
        url: Option<String>,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock \"{}\": {source}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The system's error.
        source: std::io::Error,
    },
    /// The system's random source failed.
    #[error("cannot draw a token from the system's random source: {0}")]
    Random(String),
    /// The server file could not be written.
    #[error(transparent)]
    ServerFile(#[from] sauve_durable::PathError),
    /// Serving failed.
    #[error("the control API stopped: {0}")]
    Serve(#[source] std::io::Error),
    /// `--public-url` is not a URL the page can be reached at.
    #[error(transparent)]
    PublicUrl(#[from] sauve_web::PublicUrlError),
}

/// How `sauve run` serves.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Where the API and the page listen: a loopback address, unless
    /// `public_url` is `https://…` or `insecure_listen` is set.
    pub listen: SocketAddr,
    /// Listen outside loopback over plain HTTP, without a TLS proxy in
    /// front (`--insecure-listen`).
    pub insecure_listen: bool,
    /// How backups lock the app.
    pub mode: sauve_locking::Mode,
    /// The page's address as people reach it through a proxy in front
    /// (`https://backup.example.com/`): alerts link to it, forms must come
    /// from it, and under `https://` session cookies are `Secure`.
    pub public_url: Option<String>,
}

/// A fresh bearer token: 32 random bytes from the kernel, in hex.
pub fn generate_token() -> Result<String, DaemonError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| DaemonError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// Writes `APP/Logs/sauve-server.json` for a server at `url`: created 0600
/// through a temporary file and renamed, so the token is never readable by
/// others, not even for an instant.
pub fn write_server_file(app: &Path, url: &str, token: &str) -> Result<(), DaemonError> {
    let file = ServerFile {
        url: url.to_owned(),
        pid: std::process::id(),
        app: app.to_path_buf(),
        token: token.to_owned(),
    };
    // Serializing four plain fields cannot fail.
    let json = serde_json::to_vec_pretty(&file).unwrap_or_default();
    Ok(sauve_durable::replace(&server_file_path(app), &json)?)
}

/// Removes the server file of `app` if this process wrote it: a server file
/// another server wrote meanwhile stays.
fn remove_own_server_file(app: &Path) {
    if ServerFile::read(app).is_some_and(|f| f.pid == std::process::id()) {
        let _ = std::fs::remove_file(server_file_path(app));
    }
}

/// Runs the server of `app` until `shutdown` completes; a running backup is
/// then stopped (1406) and recorded before returning. Starts whatever the
/// settings say: invalid settings are reported by the scheduler loop and
/// applied as soon as they are valid.
///
/// Refused before anything starts: a `listen` address outside loopback
/// without `https://` public URL or `insecure_listen`
/// ([`DaemonError::ListenRefused`]), and a second server for the same app
/// ([`DaemonError::AlreadyRunning`]: the lock of [`run_lock_path`] is taken
/// before the server file is written, and held until the server file is
/// removed). Connections get [`crate::HEADER_TIMEOUT`] and
/// [`crate::IDLE_TIMEOUT`] (see [`crate::serve`]); the page answers only
/// requests for the listen address's names and the public URL's.
pub async fn run(
    app: PathBuf,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let ServeOptions {
        listen,
        insecure_listen,
        mode,
        public_url,
    } = options;
    if let Some(u) = &public_url {
        sauve_web::public_origin(u)?;
    }
    check_listen(listen, public_url.as_deref(), insecure_listen)?;
    let layout = sauve_settings::AppLayout::discover(&app).map_err(|source| DaemonError::App {
        app: app.clone(),
        source,
    })?;
    // Before anything else is started or written: one server per app.
    let lock = RunLock::take(&app)?;
    if !listen.ip().to_canonical().is_loopback() {
        tracing::warn!(
            "listening on {listen}, outside loopback{}",
            if behind_tls(public_url.as_deref()) {
                ": only a TLS proxy in front should reach it"
            } else {
                " over plain HTTP (--insecure-listen): tokens and passwords cross the network in clear"
            }
        );
    }
    let handle = Engine::start(
        layout,
        EngineOptions {
            mode,
            ..EngineOptions::default()
        },
    )?;
    let token = match ServerFile::read(&app) {
        Some(old) if !old.token.is_empty() => old.token,
        _ => generate_token()?,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(DaemonError::Serve)?;
    let url = format!("http://{addr}");
    lock.record(Some(&url))
        .map_err(|source| DaemonError::Lock {
            path: run_lock_path(&app),
            source,
        })?;
    write_server_file(&app, &url, &token)?;
    tracing::info!(url = %url, app = %app.display(), "sauve server listening");

    let (view, scheduler_view) = tokio::sync::watch::channel(SchedulerView::default());
    let scheduler = tokio::spawn(scheduler_loop(handle.clone(), view));
    let token = Arc::new(token);
    let mut pages =
        sauve_web::PageState::new(handle.clone(), token.clone(), scheduler_view.clone())
            .with_listen_addr(addr);
    if let Some(public) = &public_url {
        pages = pages.with_public_url(public)?;
    }
    let state = ApiState {
        handle: handle.clone(),
        token,
        scheduler: scheduler_view,
    };
    // Alerts link to the page (behaviour §17.2).
    let page_url = public_url.unwrap_or_else(|| format!("{url}/"));
    if let Err(e) = handle.alerts().set_page_url(Some(page_url)).await {
        tracing::warn!("alerts will not link to the page: {e}");
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(crate::serve(
        listener,
        sauve_web::with_pages(router(state), pages),
        async {
            let _ = stop_rx.await;
        },
    ));
    shutdown.await;
    tracing::info!("stopping: a running backup ends with 1406");
    scheduler.abort();
    let _ = scheduler.await;
    handle.clone().shutdown().await;
    let _ = stop_tx.send(());
    // Open event streams would hold the graceful shutdown forever: give the
    // connections a moment, then drop them.
    let _ = tokio::time::timeout(Duration::from_millis(500), served).await;
    remove_own_server_file(&app);
    // Only now may another server start.
    drop(lock);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    /// Held by the tests that take a run lock and let it go, and by those
    /// that start a process: a child forked by another thread holds the
    /// lock's file (and so the lock) until it runs its command.
    static FORKS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn no_forks() -> std::sync::MutexGuard<'static, ()> {
        FORKS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[test]
    fn a_listen_address_outside_loopback_needs_an_https_public_url_or_insecure_listen() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        for ok in [
            "127.0.0.1:7070",
            "127.0.0.2:0",
            "[::1]:7070",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(check_listen(addr(ok), None, false).is_ok(), "{ok}");
        }
        for outside in ["0.0.0.0:7070", "[::]:0", "192.0.2.1:7070"] {
            let e = check_listen(addr(outside), None, false).unwrap_err();
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("refusing to listen on {outside}:")),
                "{text}"
            );
            assert!(
                text.contains("--public-url https://") && text.contains("--insecure-listen"),
                "{text}"
            );
            let plain = Some("http://backup.example.com/");
            assert!(
                check_listen(addr(outside), plain, false).is_err(),
                "{outside}"
            );
            let tls = Some("https://backup.example.com/");
            assert!(check_listen(addr(outside), tls, false).is_ok(), "{outside}");
            assert!(check_listen(addr(outside), None, true).is_ok(), "{outside}");
        }
    }

    #[test]
    fn a_second_run_lock_on_an_app_is_refused_naming_the_holder_until_it_is_released() {
        let _alone = no_forks();
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("App");
        let first = RunLock::take(&app).unwrap();
        first.record(Some("http://127.0.0.1:7070")).unwrap();
        match RunLock::take(&app) {
            Err(e @ DaemonError::AlreadyRunning { .. }) => {
                let text = e.to_string();
                let pid = std::process::id();
                assert!(
                    text.contains(&format!("(pid {pid}, http://127.0.0.1:7070;")),
                    "{text}"
                );
                assert!(text.contains("sauve-run.lock"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        let again = RunLock::take(&app).unwrap();
        let info: LockInfo =
            serde_json::from_slice(&std::fs::read(run_lock_path(&app)).unwrap()).unwrap();
        assert_eq!(info.pid, Some(std::process::id()));
        assert_eq!(
            info.url, None,
            "the old address is not taken for the new one's"
        );
        drop(again);
    }

    #[test]
    fn a_run_lock_held_by_a_restore_is_named_as_held_not_after_the_last_servers_pid() {
        // Found in review: a restore holding the lock got a second server
        // told that the last one, long gone, "serves" the app.
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("App");
        drop(RunLock::take(&app).map(|l| l.record(Some("http://127.0.0.1:7070"))));
        // The last server's pid, of a process that has ended.
        let forking = no_forks();
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let pid = gone.id();
        gone.wait().unwrap();
        drop(forking);
        let info = format!(r#"{{"pid":{pid},"url":"http://127.0.0.1:7070"}}"#);
        std::fs::write(run_lock_path(&app), info).unwrap();
        write_server_file(&app, "http://127.0.0.1:7070", "t").unwrap();
        let mut stale = ServerFile::read(&app).unwrap();
        stale.pid = pid;
        std::fs::write(server_file_path(&app), serde_json::to_vec(&stale).unwrap()).unwrap();
        // A restore into the app holds the lock, as sauve restore does.
        let restore = sauve_engine::hold_restore_target(&app.join("Data"), None).unwrap();
        match RunLock::take(&app) {
            Err(e @ DaemonError::AlreadyRunning { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains("is held by a restore into it or by another sauve run"),
                    "{text}"
                );
                assert!(!text.contains(&format!("pid {pid}")), "{text}");
                assert!(!text.contains("7070"), "{text}");
                assert!(text.contains("sauve-run.lock"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        drop(restore);
        assert!(RunLock::take(&app).is_ok());
    }

    #[test]
    fn only_the_server_that_wrote_the_server_file_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("App");
        write_server_file(&app, "http://127.0.0.1:1", "t").unwrap();
        let mut other = ServerFile::read(&app).unwrap();
        other.pid = std::process::id().wrapping_add(1);
        std::fs::write(server_file_path(&app), serde_json::to_vec(&other).unwrap()).unwrap();
        remove_own_server_file(&app);
        assert_eq!(ServerFile::read(&app), Some(other));
        write_server_file(&app, "http://127.0.0.1:1", "t").unwrap();
        remove_own_server_file(&app);
        assert!(!server_file_path(&app).exists());
    }
}
