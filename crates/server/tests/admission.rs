//! `POST /v1/backup` answers from the run itself (behaviour §4, §5 step 1): a
//! refusal at once with its status, never a wait on an event that will not
//! come; and `GET /v1/history` serves 4D's files as JSON.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sauve_engine::{BackupHandle, Engine, EngineOptions, SchedulerView};
use sauve_server::{ApiState, router};
use tower::ServiceExt;

const TOKEN: &str = "t0ken";

fn app(root: &Path, settings: impl FnOnce(&mut sauve_settings::Settings)) -> PathBuf {
    let app = root.join("App");
    std::fs::create_dir_all(app.join("Data")).unwrap();
    std::fs::write(app.join("Data/App.4DD"), b"data").unwrap();
    let mut s = sauve_settings::Settings::default();
    settings(&mut s);
    sauve_settings::create_file(
        &app.join("Settings/backup.4DSettings"),
        &sauve_settings::SettingsDoc::new(s),
    )
    .unwrap();
    app
}

fn engine(app: &Path) -> BackupHandle {
    Engine::start(
        sauve_settings::AppLayout::discover(app).unwrap(),
        EngineOptions::default(),
    )
    .unwrap()
}

async fn call(handle: &BackupHandle, method: &str, uri: &str) -> (StatusCode, serde_json::Value) {
    let api = router(ApiState {
        handle: handle.clone(),
        token: Arc::new(TOKEN.to_owned()),
        scheduler: tokio::sync::watch::channel(SchedulerView::default()).1,
    });
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("Authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let resp = api.oneshot(request).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_refused_because_another_process_holds_the_app_is_answered_409_with_1402() {
    let root = tempfile::tempdir().unwrap();
    let app = app(root.path(), |_| {});
    let handle = engine(&app);
    // Another process (a `sauve backup` with a long startup hook) holds the app.
    std::fs::create_dir_all(app.join("Logs")).unwrap();
    let held = std::fs::File::create(app.join("Logs/sauve.lock")).unwrap();
    held.try_lock().unwrap();
    let mut events = handle.subscribe();
    let (status, body) = call(&handle, "POST", "/v1/backup").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["status"], 1402);
    assert_eq!(body["number"], 0);
    assert!(
        body["error"].as_str().unwrap().contains("another process"),
        "{body}"
    );
    // The refusal had its finished event too, with the run id answered.
    let finished = loop {
        if let sauve_engine::BackupEvent::Finished { run, status, .. } =
            events.recv().await.unwrap()
        {
            break (run, status);
        }
    };
    assert_eq!(finished, (body["run"].as_u64().unwrap(), 1402));
    drop(held);
    let (status, body) = call(&handle, "POST", "/v1/backup").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["number"], 1);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_ends_before_its_number_is_answered_422_with_its_status() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("blocker"), b"a file").unwrap();
    let app = app(root.path(), |s| {
        s.general.destination_folder = "../blocker/bk/".to_owned();
    });
    let handle = engine(&app);
    let (status, body) = call(&handle, "POST", "/v1/backup").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["status"], 1407);
    assert_eq!(
        body["status_text"],
        "Destination invalid or cannot be created"
    );
    assert!(
        body["error"].as_str().unwrap().contains("blocker"),
        "{body}"
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_4d_wrote_with_a_bom_is_served_as_json() {
    let root = tempfile::tempdir().unwrap();
    let app = app(root.path(), |_| {});
    let fixture = std::fs::read_to_string(format!(
        "{}/../../tests/fixtures/4d-samples/two-structures.backupHistory.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    std::fs::create_dir_all(root.path().join("Backups")).unwrap();
    std::fs::write(
        root.path().join("Backups/backupHistory.json"),
        format!("\u{FEFF}{fixture}"),
    )
    .unwrap();
    let handle = engine(&app);
    let (status, body) = call(&handle, "GET", "/v1/history").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        serde_json::from_str::<serde_json::Value>(&fixture).unwrap()
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_take_the_server_token_or_their_own_and_count_backups() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let app = app(root.path(), |_| {});
    let key = root.path().join("metrics.key");
    std::fs::write(&key, "scrape-me").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        app.join("Settings/sauve.toml"),
        "[metrics]\ntoken_file = \"../metrics.key\"\n",
    )
    .unwrap();
    let handle = engine(&app);
    assert_eq!(
        handle
            .backup(sauve_engine::Trigger::Api)
            .await
            .unwrap()
            .status
            .code(),
        0
    );
    let scrape = |token: &'static str| {
        let api = router(ApiState {
            handle: handle.clone(),
            token: Arc::new(TOKEN.to_owned()),
            scheduler: tokio::sync::watch::channel(SchedulerView::default()).1,
        });
        async move {
            let request = Request::builder()
                .uri("/metrics")
                .header("Authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let resp = api.oneshot(request).await.unwrap();
            let status = resp.status();
            let kind = resp.headers().get("content-type").cloned();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, kind, String::from_utf8(bytes.to_vec()).unwrap())
        }
    };
    let (status, kind, text) = scrape(TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(kind.unwrap(), sauve_server::METRICS_CONTENT_TYPE);
    assert!(
        text.contains("sauve_backups_total{trigger=\"api\",status=\"0\"} 1"),
        "{text}"
    );
    assert!(text.contains("sauve_last_backup_number 1"), "{text}");
    assert!(text.contains("sauve_last_backup_archive_bytes "), "{text}");
    assert!(text.contains("sauve_backup_running 0"), "{text}");
    // Its own token works for the metrics, not for the rest of the API.
    assert_eq!(scrape("scrape-me").await.0, StatusCode::OK);
    assert_eq!(scrape("wrong").await.0, StatusCode::UNAUTHORIZED);
    let api = router(ApiState {
        handle: handle.clone(),
        token: Arc::new(TOKEN.to_owned()),
        scheduler: tokio::sync::watch::channel(SchedulerView::default()).1,
    });
    let request = Request::builder()
        .method("POST")
        .uri("/v1/backup")
        .header("Authorization", "Bearer scrape-me")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        api.oneshot(request).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    handle.shutdown().await;
}
