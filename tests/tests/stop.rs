//! Stop at any time (issue 27, defect 13): a frame still being compressed
//! never holds up the end of a stopped run. Each test holds the frames of
//! the app's destination in their workers (`sauve_archive::FrameHold`), so
//! that a frame is provably in flight when Stop comes, and checks that the
//! run has ended, with 1406 recorded once and nothing left behind, while
//! that frame is still held; released, the frame is abandoned, never
//! compressed. Nothing is timed: each step awaits what the previous one
//! published.
//!
//! One test per way of pressing Stop: the handle a host app uses, `POST
//! /v1/stop`, the page's Stop button (`POST /stop`), the server's shutdown
//! (what SIGTERM to `sauve run` does) and Ctrl-C in `sauve backup`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use sauve_archive::{FrameHold, HoldCounts};
use sauve_engine::{BackupEvent, BackupHandle, Engine, EngineOptions, SchedulerView, Trigger};
use sauve_journal::Title;
use sauve_settings::AppLayout;
use sauve_status::Status;
use sauve_tests::{SampleApp, random};
use tokio::sync::broadcast;
use tower::ServiceExt;

/// An app at `level` whose data file holds `mib` MiB of noise.
fn app(level: &str, mib: usize) -> SampleApp {
    let app = SampleApp::with_settings(&[("Advanced/CompressionRate", level)]).unwrap();
    std::fs::write(app.path().join("Data/App.4DD"), random(mib << 20)).unwrap();
    app
}

fn backups(app: &SampleApp) -> PathBuf {
    app.root().join("Backups")
}

fn engine(app: &SampleApp) -> BackupHandle {
    Engine::start(
        AppLayout::discover(app.path()).unwrap(),
        EngineOptions::default(),
    )
    .unwrap()
}

/// The files of a folder, but the hidden advisory lock files.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !(n.starts_with('.') && n.ends_with(".lock")))
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

/// The statuses of the `finished` events received so far.
fn finished_so_far(events: &mut broadcast::Receiver<BackupEvent>) -> Vec<i32> {
    let mut statuses = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let BackupEvent::Finished { status, .. } = e {
            statuses.push(status);
        }
    }
    statuses
}

/// A failing test must not hang: a run that waits for its held frame
/// (Stop waiting for compression, the defect) never ends by itself. Not a
/// measure of anything: a passing run ends long before.
const GUARD: Duration = Duration::from_secs(60);

async fn ended<T>(how: &str, until: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, until)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{how}: the run did not end while its frame was held: Stop waits for compression"
            )
        })
}

/// The first `finished` event's status and number.
async fn finished(events: &mut broadcast::Receiver<BackupEvent>) -> (i32, u32) {
    ended("finished", sauve_tests::paused::finished(events)).await
}

/// What every stopped run leaves, checked while its frame is still held:
/// no set and no part file, the journal's last entry and the history's
/// last entry say 1406 without a number.
fn assert_stopped_and_clean(app: &SampleApp, hold: &FrameHold, how: &str) {
    assert!(
        hold.counts().holding > 0,
        "{how}: the run ended while a frame was still being compressed"
    );
    assert_eq!(
        names(&backups(app)),
        ["backupHistory.json"],
        "{how}: no archive, no .part file"
    );
    let journal = sauve_journal::read_all(&app.path().join("Logs")).unwrap();
    let last = journal.last().unwrap();
    assert_eq!(
        (last.title, last.status),
        (Some(Title::BackupStopped), Some(1406)),
        "{how}"
    );
    let history = app.history_entries();
    assert_eq!(history.len(), 1, "{how}: one history entry");
    assert_eq!(
        (history[0].status, history[0].backup_number),
        (Some(1406), 0.into()),
        "{how}"
    );
}

/// Releases the held frames and waits until each left its worker: none
/// was compressed, since nobody wanted it any more.
async fn release_and_settle(hold: &FrameHold, how: &str) -> HoldCounts {
    hold.release();
    let end = hold
        .until(|c| c.holding == 0 && c.compressed + c.abandoned == c.reached)
        .await;
    assert_eq!(
        end.compressed, 0,
        "{how}: abandoned, not compressed: {end:?}"
    );
    assert!(end.abandoned > 0, "{how}: {end:?}");
    end
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_run_while_a_frame_is_still_compressed_at_every_level() {
    // Fast on 24 MiB: frames of 4 MiB, the copy waits for the first one
    // under the data lock. Compact on 2 MiB: one frame, `finish` waits.
    for (level, mib) in [("Fast", 24), ("Compact", 2)] {
        let app = app(level, mib);
        let hold = FrameHold::on(&backups(&app));
        let handle = engine(&app);
        let mut events = handle.subscribe();
        let h = handle.clone();
        let run = tokio::spawn(async move { h.backup(Trigger::Manual).await.unwrap() });
        hold.held().await;
        assert!(handle.stop().await.unwrap(), "{level}: a run to stop");
        assert_eq!(finished(&mut events).await, (1406, 0), "{level}");
        let report = run.await.unwrap();
        assert_eq!(report.status, Status::Stopped, "{level}");
        assert!(report.archives.is_empty(), "{level}");
        assert_stopped_and_clean(&app, &hold, level);
        let locks = handle.locks().snapshot();
        assert_eq!(
            (locks.backup, locks.waiting),
            ([None, None], 0),
            "{level}: every lock released"
        );
        release_and_settle(&hold, level).await;
        handle.clone().shutdown().await;
        assert!(
            finished_so_far(&mut events).is_empty(),
            "{level}: one finished event"
        );
    }
}

/// The shutdown `sauve run` makes on SIGTERM or SIGINT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_shutdown_ends_a_run_whose_frame_is_still_compressed() {
    let app = app("Compact", 2);
    let hold = FrameHold::on(&backups(&app));
    let handle = engine(&app);
    let mut events = handle.subscribe();
    let h = handle.clone();
    let run = tokio::spawn(async move { h.backup(Trigger::Scheduled).await.unwrap() });
    hold.held().await;
    ended("shutdown", handle.shutdown()).await;
    assert_eq!(finished(&mut events).await, (1406, 0));
    assert!(
        finished_so_far(&mut events).is_empty(),
        "one finished event"
    );
    assert_eq!(run.await.unwrap().status, Status::Stopped);
    assert_stopped_and_clean(&app, &hold, "shutdown");
    release_and_settle(&hold, "shutdown").await;
}

const TOKEN: &str = "the-server-token-0123456789abcdef";
const HOST: &str = "127.0.0.1:7070";

/// The API and the pages, as `sauve run` serves them, in process.
fn site(handle: &BackupHandle) -> axum::Router {
    let (_, view) = tokio::sync::watch::channel(SchedulerView::default());
    let token = Arc::new(TOKEN.to_owned());
    let api = sauve_server::router(sauve_server::ApiState {
        handle: handle.clone(),
        token: token.clone(),
        scheduler: view.clone(),
    });
    sauve_web::with_pages(api, sauve_web::PageState::new(handle.clone(), token, view))
}

async fn body(r: axum::response::Response) -> (StatusCode, String) {
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 22).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// A page session through a one-time code: its cookie and CSRF token.
async fn login(site: &axum::Router) -> (String, String) {
    let r = Request::post("/login/code")
        .header(header::HOST, HOST)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let (status, text) = body(site.clone().oneshot(r).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let r = Request::get(v["path"].as_str().unwrap())
        .header(header::HOST, HOST)
        .body(Body::empty())
        .unwrap();
    let r = site.clone().oneshot(r).await.unwrap();
    let cookie = r.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = Request::get("/")
        .header(header::HOST, HOST)
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let (_, page) = body(site.clone().oneshot(r).await.unwrap()).await;
    let csrf = page
        .split(r#"name="csrf-token" content=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_v1_stop_and_the_pages_stop_button_end_a_run_whose_frame_is_still_compressed() {
    for how in ["POST /v1/stop", "the page's Stop"] {
        let app = app("Compact", 2);
        let hold = FrameHold::on(&backups(&app));
        let handle = engine(&app);
        let site = site(&handle);
        let mut events = handle.subscribe();
        let h = handle.clone();
        let run = tokio::spawn(async move { h.backup(Trigger::Manual).await.unwrap() });
        hold.held().await;
        let request = if how == "POST /v1/stop" {
            Request::post("/v1/stop")
                .header(header::HOST, HOST)
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap()
        } else {
            let (cookie, csrf) = login(&site).await;
            Request::post("/stop")
                .header(header::HOST, HOST)
                .header(header::ORIGIN, format!("http://{HOST}"))
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ACCEPT, "application/json")
                .body(Body::from(format!("csrf={csrf}")))
                .unwrap()
        };
        let (status, text) = body(site.clone().oneshot(request).await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{how}: {text}");
        assert_eq!(finished(&mut events).await, (1406, 0), "{how}");
        assert_eq!(run.await.unwrap().status, Status::Stopped, "{how}");
        assert_stopped_and_clean(&app, &hold, how);
        release_and_settle(&hold, how).await;
        handle.shutdown().await;
        assert!(
            finished_so_far(&mut events).is_empty(),
            "{how}: one finished event"
        );
    }
}

/// Ctrl-C in `sauve backup` (in process): SIGINT to this process, which
/// first installs a handler of its own, so that a SIGINT can never end the
/// test binary. `sauve backup` listens once its run is under way; a SIGINT
/// that arrives before is sent again (each one is seen by this test's
/// handler first), never on a timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_ends_sauve_backup_while_a_frame_is_still_compressed() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigint = signal(SignalKind::interrupt()).unwrap();
    let app = app("Compact", 2);
    let hold = FrameHold::on(&backups(&app));
    let arg = app.arg();
    let cli = tokio::task::spawn_blocking(move || {
        sauve_tests::sauve(&["backup", "--json", "--app", &arg])
    });
    tokio::pin!(cli);
    hold.held().await;
    let out = ended("Ctrl-C", async {
        loop {
            let sent = std::process::Command::new("kill")
                .args(["-INT", &std::process::id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
            tokio::select! {
                out = &mut cli => break out.unwrap(),
                _ = sigint.recv() => {}
            }
            // Delivered; if `sauve backup` took it, its run is ending.
            tokio::select! {
                biased;
                out = &mut cli => break out.unwrap(),
                () = tokio::task::yield_now() => {}
            }
        }
    })
    .await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let finished: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "finished")
        .collect();
    assert_eq!(finished.len(), 1, "{}", out.stdout);
    assert_eq!(finished[0]["status"], 1406, "{}", out.stdout);
    assert_stopped_and_clean(&app, &hold, "Ctrl-C");
    release_and_settle(&hold, "Ctrl-C").await;
}
