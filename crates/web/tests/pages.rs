//! The pages' rules, request by request (behaviour §18): who may see and change
//! what, what bad requests get, the headers every answer carries. The
//! browser tests (tests/tests/browser.rs) drive the same pages in Chromium.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use sauve_engine::{BackupHandle, Engine, EngineOptions, SchedulerView};
use tower::ServiceExt;

const TOKEN: &str = "the-server-token-0123456789abcdef";
const HOST: &str = "127.0.0.1:7070";

struct Site {
    cookie_attributes: String,
    _dir: tempfile::TempDir,
    app: PathBuf,
    handle: BackupHandle,
    router: Router,
}

fn site() -> Site {
    site_at(None)
}

fn site_at(public_url: Option<&str>) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("App");
    std::fs::create_dir_all(app.join("Project")).unwrap();
    std::fs::create_dir_all(app.join("Data")).unwrap();
    std::fs::create_dir_all(app.join("Settings")).unwrap();
    std::fs::write(app.join("Project/App.4DProject"), "{}\n").unwrap();
    std::fs::write(app.join("Data/App.4DD"), b"data").unwrap();
    let doc = sauve_settings::SettingsDoc::default();
    sauve_settings::save_file(&app.join("Settings/backup.4DSettings"), &doc).unwrap();
    let layout = sauve_settings::AppLayout::discover(&app).unwrap();
    let handle = Engine::start(layout, EngineOptions::default()).unwrap();
    let (_, view) = tokio::sync::watch::channel(SchedulerView::default());
    let mut state = sauve_web::PageState::new(handle.clone(), Arc::new(TOKEN.to_owned()), view);
    if let Some(url) = public_url {
        state = state.with_public_url(url).unwrap();
    }
    let router = sauve_web::with_pages(Router::new(), state);
    Site {
        cookie_attributes: String::new(),
        _dir: dir,
        app,
        handle,
        router,
    }
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut r = Request::get(path).header(header::HOST, HOST);
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    r.body(Body::empty()).unwrap()
}

fn post(path: &str, cookie: Option<&str>, origin: Option<&str>, body: &str) -> Request<Body> {
    let mut r = Request::post(path)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json");
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    if let Some(o) = origin {
        r = r.header(header::ORIGIN, o);
    }
    r.body(Body::from(body.to_owned())).unwrap()
}

async fn text(r: Response<Body>) -> (StatusCode, String) {
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 22).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

impl Site {
    async fn send(&self, r: Request<Body>) -> Response<Body> {
        self.router.clone().oneshot(r).await.unwrap()
    }

    /// A session through a one-time code: its cookie and its CSRF token.
    async fn login(&mut self) -> (String, String) {
        let r = Request::post("/login/code")
            .header(header::HOST, HOST)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap();
        let (status, body) = text(self.send(r).await).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let r = self.send(get(v["path"].as_str().unwrap(), None)).await;
        assert_eq!(r.status(), StatusCode::OK);
        let set = r.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        self.cookie_attributes = set.clone();
        let cookie = set.split(';').next().unwrap().to_owned();
        let (_, page) = text(self.send(get("/", Some(&cookie))).await).await;
        let csrf = page
            .split(r#"name="csrf-token" content=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        (cookie, csrf)
    }
}

fn origin() -> Option<&'static str> {
    Some("http://127.0.0.1:7070")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_want_a_session_and_fragments_say_401_instead_of_redirecting() {
    let s = site();
    let r = s.send(get("/settings", None)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/login?next=%2Fsettings");
    for path in ["/parts/last", "/parts/alerts", "/events"] {
        let (status, body) = text(s.send(get(path, None)).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(body.contains("log in at /login"), "{path}: {body}");
    }
    let (status, _) = text(s.send(get("/", Some("sauve_session=forged"))).await).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_needs_the_session_its_csrf_token_and_this_sites_origin() {
    let mut s = site();
    let (cookie, csrf) = s.login().await;
    let with = format!("csrf={csrf}");
    let cases = [
        (
            post("/backup", None, origin(), &with),
            StatusCode::UNAUTHORIZED,
        ),
        (
            post("/backup", Some(&cookie), origin(), ""),
            StatusCode::FORBIDDEN,
        ),
        (
            post("/backup", Some(&cookie), origin(), "csrf=wrong"),
            StatusCode::FORBIDDEN,
        ),
        (
            post("/backup", Some(&cookie), Some("http://evil.example"), &with),
            StatusCode::FORBIDDEN,
        ),
        (
            post("/backup", Some(&cookie), None, &with),
            StatusCode::FORBIDDEN,
        ),
        (
            post(
                "/settings",
                Some(&cookie),
                origin(),
                "Scheduler/Frequency=Daily",
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            post("/alerts/1/ack", Some(&cookie), origin(), ""),
            StatusCode::FORBIDDEN,
        ),
        (
            post("/restore", Some(&cookie), origin(), "number=1"),
            StatusCode::FORBIDDEN,
        ),
        (
            post("/rehearse", Some(&cookie), origin(), ""),
            StatusCode::FORBIDDEN,
        ),
        (
            post("/rehearse", None, origin(), &with),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (req, want) in cases {
        let what = format!("{} {:?}", req.uri(), req.headers().get(header::ORIGIN));
        let (status, body) = text(s.send(req).await).await;
        assert_eq!(status, want, "{what}: {body}");
        assert!(body.contains("\"error\""), "{what}: {body}");
    }
    assert!(
        s.handle.records().last_backup().await.is_none(),
        "nothing was started"
    );
    let before = std::fs::read(s.app.join("Settings/backup.4DSettings")).unwrap();
    // The token in a header instead of the form is accepted too (the script).
    let r = Request::post("/backup")
        .header(header::HOST, HOST)
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, "http://127.0.0.1:7070")
        .header("X-CSRF-Token", &csrf)
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::empty())
        .unwrap();
    let (status, body) = text(s.send(r).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("Backup 0001 started"), "{body}");
    assert_eq!(
        std::fs::read(s.app.join("Settings/backup.4DSettings")).unwrap(),
        before
    );
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_code_works_once_and_only_the_bearer_token_makes_one() {
    let s = site();
    let no_bearer = Request::post("/login/code")
        .header(header::HOST, HOST)
        .body(Body::empty())
        .unwrap();
    assert_eq!(s.send(no_bearer).await.status(), StatusCode::UNAUTHORIZED);
    let r = Request::post("/login/code")
        .header(header::HOST, HOST)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let (_, body) = text(s.send(r).await).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let path = v["path"].as_str().unwrap().to_owned();
    assert!(!path.contains(TOKEN), "the link never holds the token");
    assert_eq!(v["valid_seconds"], 60);
    assert_eq!(s.send(get(&path, None)).await.status(), StatusCode::OK);
    let (status, page) = text(s.send(get(&path, None)).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a code works once");
    assert!(page.contains("used already"), "{page}");
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_bodies_too_large_and_assets_get_their_proper_answers() {
    let mut s = site();
    let r = s.send(get("/nowhere", None)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let (_, body) = text(r).await;
    assert!(
        body.contains("Page not found") && body.contains("<html"),
        "{body}"
    );
    let (status, body) = text(s.send(get("/v1/nowhere", None)).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.starts_with("{\"error\""), "JSON under /v1/: {body}");

    let (cookie, csrf) = s.login().await;
    let big = format!("csrf={csrf}&x={}", "a".repeat(sauve_web::FORM_LIMIT));
    let (status, _) = text(
        s.send(post("/settings", Some(&cookie), origin(), &big))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body) = text(s.send(get("/history?page=zero", Some(&cookie))).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("a whole number from 1"), "{body}");
    let (status, body) = text(s.send(get("/history/abc", Some(&cookie))).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!body.contains("panicked"), "{body}");

    // The page names its assets by hash; each is cached for good.
    let (_, page) = text(s.send(get("/", Some(&cookie))).await).await;
    assert!(!page.contains(TOKEN), "no page shows the token");
    for ext in ["css", "js", "svg"] {
        let name = page
            .split("/assets/")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap())
            .find(|n| n.ends_with(ext))
            .unwrap()
            .to_owned();
        let r = s.send(get(&format!("/assets/{name}"), None)).await;
        assert_eq!(r.status(), StatusCode::OK, "{name}");
        assert_eq!(
            r.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
    }
    let r = s.send(get("/assets/sauve-000000000000.css", None)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    s.handle.shutdown().await;
}

fn settings_file(app: &Path) -> Vec<u8> {
    std::fs::read(app.join("Settings/backup.4DSettings")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_save_all_or_nothing_with_each_refusal_beside_its_field() {
    let mut s = site();
    let (cookie, csrf) = s.login().await;
    let before = settings_file(&s.app);
    let bad = format!(
        "csrf={csrf}&Scheduler%2FFrequency=Hourly&Scheduler%2FHourly%2FEvery=0&Advanced%2FCompressionRate=Maximum&alerts.on=give-up&alerts.stale_after=2h"
    );
    let (status, page) = text(
        s.send(post("/settings", Some(&cookie), origin(), &bad))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("2 values were refused"), "{page}");
    assert!(
        page.contains("invalid value &quot;0&quot; (accepted: integer 1 to 24)"),
        "{page}"
    );
    assert!(page.contains("accepted: None, Fast or Compact"), "{page}");
    assert_eq!(settings_file(&s.app), before, "nothing written");
    assert!(
        !s.app.join("Settings/sauve.toml").exists(),
        "sauve.toml neither"
    );

    let good = format!(
        "csrf={csrf}&Scheduler%2FFrequency=Hourly&Scheduler%2FHourly%2FEvery=6&General%2FIncludesFiles=notes.txt%0D%0A%0D%0Adocs&alerts.on=failure&alerts.stale_after=26h"
    );
    let (status, page) = text(
        s.send(post("/settings", Some(&cookie), origin(), &good))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Saved"), "{page}");
    let s2 = s.handle.config().settings().await.unwrap();
    assert_eq!(s2.settings.scheduler.hourly.every, 6);
    assert_eq!(s2.settings.general.includes_files, ["notes.txt", "docs"]);
    let toml = std::fs::read_to_string(s.app.join("Settings/sauve.toml")).unwrap();
    assert!(
        toml.contains("on = \"failure\"") && toml.contains("stale_after = \"26h\""),
        "{toml}"
    );
    // The app had 4D's own settings file: it keeps 4D's full sets.
    assert!(!toml.contains("[incremental]"), "{toml}");
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_save_beside_an_unreadable_sauve_toml_writes_nothing() {
    let mut s = site();
    std::fs::remove_file(s.app.join("Settings/backup.4DSettings")).unwrap();
    std::fs::write(s.app.join("Settings/sauve.toml"), "[incremental\n").unwrap();
    let (cookie, csrf) = s.login().await;
    let form = format!("csrf={csrf}&Scheduler%2FFrequency=Daily");
    let (status, page) = text(
        s.send(post("/settings", Some(&cookie), origin(), &form))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("Not saved"), "{page}");
    // Still a first save once sauve.toml is fixed.
    assert!(!s.app.join("Settings/backup.4DSettings").exists());
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_save_of_an_app_without_settings_makes_incremental_sets() {
    let mut s = site();
    std::fs::remove_file(s.app.join("Settings/backup.4DSettings")).unwrap();
    let (cookie, csrf) = s.login().await;
    let form = format!("csrf={csrf}&Scheduler%2FFrequency=Daily&alerts.on=give-up");
    let (status, page) = text(
        s.send(post("/settings", Some(&cookie), origin(), &form))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let toml_path = s.app.join("Settings/sauve.toml");
    assert!(
        page.contains(&format!("and {}", toml_path.display())),
        "the page names what it wrote: {page}"
    );
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    assert_eq!(toml, sauve_settings::NEW_APP_SAUVE_TOML);
    let own = sauve_settings::load_sauve_toml(&s.app).unwrap();
    assert_eq!(own.incremental.full_every, 7);
    // The next save changes nothing of it.
    assert!(s.app.join("Settings/backup.4DSettings").is_file());
    let form = format!("csrf={csrf}&Scheduler%2FFrequency=Weekly&alerts.on=give-up");
    let (status, page) = text(
        s.send(post("/settings", Some(&cookie), origin(), &form))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        std::fs::read_to_string(s.app.join("Settings/sauve.toml")).unwrap(),
        sauve_settings::NEW_APP_SAUVE_TOML
    );
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_login_waits_a_second_and_the_password_of_sauve_toml_logs_in() {
    let s = site();
    use argon2::PasswordHasher;
    let salt = argon2::password_hash::SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let hash = argon2::Argon2::default()
        .hash_password(b"correct horse battery", &salt)
        .unwrap()
        .to_string();
    std::fs::write(
        s.app.join("Settings/sauve.toml"),
        format!("[ui]\npassword_hash = \"{hash}\"\n"),
    )
    .unwrap();
    let start = tokio::time::Instant::now();
    let r = s
        .send(post(
            "/login",
            None,
            origin(),
            "secret=wrong&next=%2Fhistory",
        ))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(start.elapsed() >= std::time::Duration::from_secs(1));
    let r = s
        .send(post(
            "/login",
            None,
            origin(),
            "secret=correct+horse+battery&next=%2Fhistory",
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key(header::SET_COOKIE));
    let (_, body) = text(r).await;
    assert!(
        body.contains("url=/history"),
        "back to the page asked for: {body}"
    );
    // A `next` off this site is not followed, whatever a browser would
    // strip from it (a tab or a line feed) or read as a slash.
    for next in [
        "%2F%2Fevil.example",
        "%2F%09%2Fevil.example",
        "%2F%0A%2Fevil.example",
        "%2F%5Cevil.example",
    ] {
        let r = s
            .send(post(
                "/login",
                None,
                origin(),
                &format!("secret={TOKEN}&next={next}"),
            ))
            .await;
        let (_, body) = text(r).await;
        assert!(body.contains("url=/\""), "{next}: {body}");
        assert!(!body.contains("evil.example"), "{next}: {body}");
    }
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_an_https_proxy_the_cookie_is_secure_and_forms_come_from_its_origin() {
    let mut s = site_at(Some("https://backup.example.com/"));
    let (cookie, csrf) = s.login().await;
    assert!(
        s.cookie_attributes.ends_with("; Secure"),
        "{}",
        s.cookie_attributes
    );
    let form = format!("csrf={csrf}");
    let (status, _) = text(
        s.send(post("/backup", Some(&cookie), origin(), &form))
            .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the Host's origin is not the public one"
    );
    let (status, body) = text(
        s.send(post(
            "/backup",
            Some(&cookie),
            Some("https://backup.example.com"),
            &form,
        ))
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_page_shows_where_the_off_site_copies_stand() {
    let mut s = site();
    // One destination that takes the copy (a folder), one that cannot (a
    // folder path that is a file).
    std::fs::write(s.app.join("../not-a-folder"), b"x").unwrap();
    std::fs::write(
        s.app.join("Settings/sauve.toml"),
        "[[offsite]]\nurl = \"../Offsite\"\nkeep = 3\n\n[[offsite]]\nurl = \"../not-a-folder\"\nretry_after = \"1h\"\n",
    )
    .unwrap();
    let report = s
        .handle
        .backup(sauve_engine::Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(report.status.code(), 0);
    // The copies run in the background: wait for them as a shutdown does.
    s.handle.offsite().settled().await.unwrap();
    let (cookie, _) = s.login().await;
    let (code, body) = text(s.send(get("/", Some(&cookie))).await).await;
    assert_eq!(code, StatusCode::OK);
    assert!(body.contains("Off-site copies"), "{body}");
    assert!(body.contains("../Offsite</span>: 1 copied"), "{body}");
    assert!(body.contains("(keeps 3)"), "{body}");
    assert!(body.contains("1 failed"), "{body}");
    assert!(body.contains("retried with backoff"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_page_names_a_bucket_destination_without_a_disk_meter() {
    let mut s = site();
    let mut doc = sauve_settings::SettingsDoc::default();
    doc.settings_mut().general.destination_folder = "s3://backups/apps/notes/".to_owned();
    sauve_settings::save_file(&s.app.join("Settings/backup.4DSettings"), &doc).unwrap();
    let (cookie, _) = s.login().await;
    let (code, body) = text(s.send(get("/", Some(&cookie))).await).await;
    assert_eq!(code, StatusCode::OK);
    assert!(body.contains("<dt>Bucket</dt>"), "{body}");
    assert!(body.contains("s3://backups/apps/notes/"), "{body}");
    assert!(body.contains("nothing is kept on this disk"), "{body}");
    assert!(!body.contains("disk-meter"), "{body}");
    assert!(!body.contains("Free space unknown"), "{body}");
}

/// Waits (yielding, never sleeping) until a rehearsal ended after `n`
/// earlier ones: the state's last one then differs.
async fn rehearsed(s: &Site, before: Option<jiff::Timestamp>) -> sauve_engine::RehearsalRecord {
    let began = std::time::Instant::now();
    loop {
        let state = s.handle.records().state().await.unwrap();
        if let Some(r) = state.last_rehearsal.filter(|r| Some(r.started) != before) {
            return r;
        }
        assert!(
            began.elapsed() < std::time::Duration::from_secs(60),
            "no rehearsal ended"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_page_rehearses_on_request_and_shows_the_proof_and_a_failure_since() {
    let mut s = site();
    let report = s
        .handle
        .backup(sauve_engine::Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(report.status.code(), 0);
    let (cookie, csrf) = s.login().await;
    let (_, body) = text(s.send(get("/", Some(&cookie))).await).await;
    assert!(body.contains("Proven recovery"), "{body}");
    assert!(body.contains("No restore proven yet"), "{body}");
    assert!(body.contains("Rehearse a restore now"), "{body}");
    let (code, body) = text(
        s.send(post(
            "/rehearse",
            Some(&cookie),
            origin(),
            &format!("csrf={csrf}"),
        ))
        .await,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    let done = rehearsed(&s, None).await;
    assert_eq!(done.status.code(), 0, "{:?}", done.error);
    let (_, body) = text(s.send(get("/", Some(&cookie))).await).await;
    assert!(
        body.contains("Last proven restore: set 0001 from"),
        "{body}"
    );
    assert!(body.contains("Recovery point"), "{body}");
    assert!(body.contains("at today's data size"), "{body}");
    // The set damaged since: the next rehearsal fails, and the page says so
    // beside the proof that still stands.
    let set = s.app.join("../Backups/App[0001].4BK");
    let mut bytes = std::fs::read(&set).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&set, bytes).unwrap();
    let (code, _) = text(
        s.send(post(
            "/rehearse",
            Some(&cookie),
            origin(),
            &format!("csrf={csrf}"),
        ))
        .await,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let failed = rehearsed(&s, Some(done.started)).await;
    assert_ne!(failed.status.code(), 0);
    let (_, body) = text(s.send(get("/", Some(&cookie))).await).await;
    assert!(body.contains("The last rehearsal failed"), "{body}");
    assert!(body.contains("App[0001]"), "{body}");
    assert!(body.contains("Last proven restore: set 0001"), "{body}");
    s.handle.shutdown().await;
}

/// `text` for a form body.
fn form_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_into_another_app_in_use_is_refused_in_the_form_whatever_force_says() {
    // Found in review: the page refused only the app it serves; a sibling
    // app that another `sauve run` serves took the restore.
    let mut s = site();
    let report = s
        .handle
        .backup(sauve_engine::Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(report.status.code(), 0);
    let root = s.app.parent().unwrap().to_path_buf();
    let other = root.join("Other");
    std::fs::create_dir_all(other.join("Logs")).unwrap();
    std::fs::create_dir_all(other.join("Data")).unwrap();
    std::fs::write(other.join("Data/Other.4DD"), b"other").unwrap();
    let lock = sauve_engine::run_lock_path(&other);
    std::fs::write(&lock, b"").unwrap();
    std::os::unix::fs::symlink(other.join("Data"), root.join("into")).unwrap();
    // Another server, as another process would hold it.
    let server = std::fs::File::open(&lock).unwrap();
    server.try_lock().unwrap();
    let (cookie, csrf) = s.login().await;
    let ask = |into: &std::path::Path, confirm: bool| {
        let mut body = format!(
            "csrf={csrf}&number=1&force=on&destination={}",
            form_value(&into.display().to_string())
        );
        if confirm {
            body.push_str("&confirm=yes");
        }
        Request::post("/restore")
            .header(header::HOST, HOST)
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, "http://127.0.0.1:7070")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "text/html")
            .body(Body::from(body))
            .unwrap()
    };
    for into in [
        other.clone(),
        other.join("Data/Restored"),
        root.join("into/Restored"),
    ] {
        for confirm in [false, true] {
            let (status, page) = text(s.send(ask(&into, confirm)).await).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
            assert!(page.contains("Destination refused (status 1402)"), "{page}");
            assert!(
                page.contains("is an app in use: a `sauve run` serves it"),
                "{page}"
            );
            assert!(page.contains("sauve-run.lock"), "{page}");
        }
    }
    assert_eq!(
        std::fs::read(other.join("Data/Other.4DD")).unwrap(),
        b"other"
    );
    assert!(!other.join("Data/Restored").exists());
    // Once the other app is free, the same restore is asked for confirmation.
    drop(server);
    let (status, page) = text(s.send(ask(&other.join("Data/Restored"), false)).await).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Restore backup 0001?"), "{page}");
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proof_card_shows_the_last_sample_and_the_damage_it_found() {
    let mut s = site();
    let report = s
        .handle
        .backup(sauve_engine::Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(report.status.code(), 0);
    let (cookie, _) = s.login().await;
    let set = s.app.join("../Backups/App[0001].4BK");
    let mut bytes = std::fs::read(&set).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&set, bytes).unwrap();
    let all = sauve_engine::SampleOptions {
        percent: 100,
        max_mib: 64,
    };
    let sampled = s
        .handle
        .rehearsals()
        .sample(Some(all), sauve_engine::Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(sampled.damaged.len(), 1, "{sampled:?}");
    let (_, body) = text(s.send(get("/", Some(&cookie))).await).await;
    assert!(body.contains("Last sample of the stored bytes: "), "{body}");
    assert!(
        body.contains("App[0001] is damaged: App[0001].4BK, piece 0"),
        "{body}"
    );
    assert!(
        body.contains("An automatic restore never picks it."),
        "{body}"
    );
    s.handle.shutdown().await;
}
