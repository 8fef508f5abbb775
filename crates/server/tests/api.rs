//! The control API: authorization, conflicts, bad input, events.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sauve_archive::PartFile;
use sauve_engine::{BackupHandle, Engine, EngineOptions, SchedulerView};
use sauve_server::{ApiState, BODY_LIMIT, router};
use tower::ServiceExt;

const TOKEN: &str = "s3cret-token";

/// A gate the test opens: archive writes past the first wait for it, so a
/// backup is still copying for as long as the test needs. Dropping it opens
/// it, so a failing test never leaves the engine stuck.
#[derive(Clone, Default)]
struct Gate(Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    fn open(&self) {
        *self.0.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0.1.notify_all();
    }

    fn wait(&self) {
        let open = self.0.0.lock().unwrap_or_else(|e| e.into_inner());
        let _open = self
            .0
            .1
            .wait_while(open, |o| !*o)
            .unwrap_or_else(|e| e.into_inner());
    }
}

struct Opens(Gate);

impl Drop for Opens {
    fn drop(&mut self) {
        self.0.open();
    }
}

struct Gated(std::fs::File, Gate, bool);

impl Write for Gated {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.2 {
            self.1.wait();
        }
        self.2 = true;
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl PartFile for Gated {
    fn sync(&mut self) -> std::io::Result<()> {
        self.0.sync_all()
    }
}

/// An app with a data file of `mib` MiB of noise, and its engine; with a
/// gate, its archive writes wait for it after the first.
fn engine(root: &Path, mib: usize, gate: Option<Gate>) -> BackupHandle {
    let app = root.join("App");
    std::fs::create_dir_all(app.join("Data")).unwrap();
    let mut data = vec![0u8; mib << 20];
    fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15).fill(&mut data);
    std::fs::write(app.join("Data/App.4DD"), data).unwrap();
    let mut s = sauve_settings::Settings::default();
    s.advanced.compression_rate = sauve_settings::Compression::None;
    sauve_settings::create_file(
        &app.join("Settings/backup.4DSettings"),
        &sauve_settings::SettingsDoc::new(s),
    )
    .unwrap();
    let mut options = EngineOptions::default();
    if let Some(gate) = gate {
        options.open_part = Some(Arc::new(move || {
            let gate = gate.clone();
            Box::new(move |path: &Path| {
                Ok(
                    Box::new(Gated(std::fs::File::create_new(path)?, gate.clone(), false))
                        as Box<dyn PartFile>,
                )
            })
        }));
    }
    Engine::start(sauve_settings::AppLayout::discover(&app).unwrap(), options).unwrap()
}

fn api(handle: &BackupHandle) -> axum::Router {
    router(ApiState {
        handle: handle.clone(),
        token: Arc::new(TOKEN.to_owned()),
        scheduler: tokio::sync::watch::channel(SchedulerView::default()).1,
    })
}

fn request(method: &str, uri: &str, token: Option<&str>, body: Body) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        r = r.header("Authorization", format!("Bearer {t}"));
    }
    r.body(body).unwrap()
}

async fn json(resp: axum::response::Response) -> (StatusCode, serde_json::Value) {
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_the_right_token_gets_401_and_starts_nothing() {
    let root = tempfile::tempdir().unwrap();
    let handle = engine(root.path(), 1, None);
    for token in [None, Some("wrong"), Some("s3cret-tokeN")] {
        let (status, body) = json(
            api(&handle)
                .oneshot(request("POST", "/v1/backup", token, Body::empty()))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body["error"].as_str().unwrap().contains("bearer token"));
    }
    assert!(
        handle.records().last_backup().await.is_none(),
        "nothing started"
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_answers_202_with_the_number_and_409_with_1402_while_one_runs() {
    let root = tempfile::tempdir().unwrap();
    let gate = Gate::default();
    let opens = Opens(gate.clone());
    let handle = engine(root.path(), 8, Some(gate));
    let (status, body) = json(
        api(&handle)
            .oneshot(request("POST", "/v1/backup", Some(TOKEN), Body::empty()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["number"], 1);
    let (status, body) = json(
        api(&handle)
            .oneshot(request("POST", "/v1/backup", Some(TOKEN), Body::from("{}")))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["status"], 1402);
    // A sample asked meanwhile is refused too: retention may be deleting
    // the sets it would read (behaviour §23).
    let (status, body) = json(
        api(&handle)
            .oneshot(request("POST", "/v1/sample", Some(TOKEN), Body::empty()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["status"], 1402);
    let (status, body) = json(
        api(&handle)
            .oneshot(request("POST", "/v1/stop", Some(TOKEN), Body::empty()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["stopped"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    // The copy goes on, sees Stop, and the run ends.
    let mut tally = handle.tally();
    drop(opens);
    // Two requests end: the refused one, then the stopped one.
    tally.wait_for(|t| t.finished >= 2).await.unwrap();
    let (status, body) = json(
        api(&handle)
            .oneshot(request("GET", "/v1/status", Some(TOKEN), Body::empty()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["last_backup"]["status"], 1406);
    assert_eq!(body["last_backup"]["trigger"], "remote");
    assert_eq!(body["scheduler_disabled"], false);
    let (status, body) = json(
        api(&handle)
            .oneshot(request("GET", "/v1/history", Some(TOKEN), Body::empty()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.as_object().unwrap().values().next().unwrap()[0]["status"] == 1406);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_methods_paths_json_and_oversized_bodies_get_a_json_4xx() {
    let root = tempfile::tempdir().unwrap();
    let handle = engine(root.path(), 1, None);
    let big = vec![b' '; BODY_LIMIT + 1];
    let cases: Vec<(Request<Body>, StatusCode)> = vec![
        (
            request("GET", "/v1/backup", Some(TOKEN), Body::empty()),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            request("DELETE", "/v1/status", Some(TOKEN), Body::empty()),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            request("GET", "/v2/anything", Some(TOKEN), Body::empty()),
            StatusCode::NOT_FOUND,
        ),
        (
            request("POST", "/v1/backup", Some(TOKEN), Body::from("{not json")),
            StatusCode::BAD_REQUEST,
        ),
        (
            request("POST", "/v1/backup", Some(TOKEN), Body::from("[1, 2]")),
            StatusCode::BAD_REQUEST,
        ),
        (
            request("POST", "/v1/backup", Some(TOKEN), Body::from(big)),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (req, want) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let (status, body) = json(api(&handle).oneshot(req).await.unwrap()).await;
        assert_eq!(status, want, "{what}");
        assert!(body["error"].is_string(), "{what}: {body}");
    }
    assert!(
        handle.records().last_backup().await.is_none(),
        "no bad request started a backup"
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_reaches_100_percent_and_the_finished_event() {
    let root = tempfile::tempdir().unwrap();
    let handle = engine(root.path(), 4, None);
    let resp = api(&handle)
        .oneshot(request("GET", "/v1/events", Some(TOKEN), Body::empty()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body().into_data_stream();
    let report = handle.backup(sauve_engine::Trigger::Remote).await.unwrap();
    assert_eq!(report.status.code(), 0);
    let mut text = String::new();
    use tokio_stream::StreamExt;
    while !text.contains("\"event\":\"finished\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(|d| serde_json::from_str(d.trim()).unwrap())
        .collect();
    let last_file = events.iter().rev().find(|e| e["event"] == "file").unwrap();
    assert_eq!(last_file["bytes_done"], last_file["bytes_total"], "100%");
    assert_eq!(events.last().unwrap()["status"], 0);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_reads_the_kept_sets_and_refuses_what_it_does_not_accept() {
    let dir = tempfile::tempdir().unwrap();
    let handle = engine(dir.path(), 9, None);
    let report = handle.backup(sauve_engine::Trigger::Api).await.unwrap();
    assert_eq!(report.status.code(), 0);
    let router = api(&handle);
    for (body, says) in [
        (r#"{"percent": 0}"#, "percent 0 is out of range"),
        (r#"{"percent": 101}"#, "percent 101 is out of range"),
        (r#"{"max_mib": 0}"#, "max_mib 0 is out of range"),
        (r#"{"share": 5}"#, "unknown field"),
        ("[", "bad JSON"),
    ] {
        let resp = router
            .clone()
            .oneshot(request("POST", "/v1/sample", Some(TOKEN), Body::from(body)))
            .await
            .unwrap();
        let (code, v) = json(resp).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {v}");
        let e = v["error"].as_str().unwrap();
        assert!(e.contains(says), "{body}: {e}");
        assert!(e.contains("accepted:"), "{body}: {e}");
    }
    let resp = router
        .clone()
        .oneshot(request("POST", "/v1/sample", None, Body::from("")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = router
        .clone()
        .oneshot(request(
            "POST",
            "/v1/sample",
            Some(TOKEN),
            Body::from(r#"{"percent": 100, "max_mib": 64}"#),
        ))
        .await
        .unwrap();
    let (code, v) = json(resp).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["sets"][0]["set"], "App[0001]", "{v}");
    assert_eq!(v["pieces"], 3, "9 MiB stored: three pieces of 4 MiB: {v}");
    assert_eq!(v["damaged"], serde_json::json!([]), "{v}");
    handle.shutdown().await;
}
