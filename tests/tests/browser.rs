//! The MSC page in a real browser (behaviour §18): Chromium headless through
//! WebDriver against a real `sauve run` on a temporary app. Each test saves
//! screenshots under `target/browser/`.
//!
//! Backups made here are slow on purpose and for real: random data at
//! CompressionRate Compact (zstd 19, a few MB/s), so that a thermometer has
//! time to move and Stop has something to stop.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use sauve_tests::SampleApp;
use sauve_tests::browser::{Browser, Server};

fn random_file(path: &Path, bytes: usize) {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut data = vec![0u8; bytes];
    rng.fill(&mut data);
    std::fs::write(path, data).unwrap();
}

/// An app whose data file holds `mib` MiB of random bytes, compressed with
/// Compact.
fn slow_app(mib: usize, more: &[(&str, &str)]) -> SampleApp {
    let mut pairs = vec![("Advanced/CompressionRate", "Compact")];
    pairs.extend_from_slice(more);
    let app = SampleApp::with_settings(&pairs).unwrap();
    random_file(&app.path().join("Data/App.4DD"), mib << 20);
    app
}

/// The ended card's Stop form hidden and not shown, its rate and its time left.
async fn ended_card(b: &Browser) -> serde_json::Value {
    b.js("var f = document.getElementById('stop-form'); return [f.hidden, f.offsetParent === null, document.getElementById('run-rate').textContent, document.getElementById('run-eta').textContent];").await
}

fn journal_text(app: &Path) -> String {
    sauve_journal::read_all(&sauve_journal::journal_dir(app))
        .unwrap()
        .iter()
        .map(|e| e.render(true))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_wants_a_login_and_the_token_opens_it_and_logout_closes_it() {
    let app = SampleApp::with_settings(&[]).unwrap();
    let server = Server::start(app.path());
    let b = Browser::start(1280, 900).await;
    b.client.goto(&server.at("/history")).await.unwrap();
    b.wait_text("h1", "Log in").await;
    let url = b.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/login");
    assert_eq!(url.query(), Some("next=%2Fhistory"));
    b.screenshot("login").await;

    b.fill("#secret", "not-the-token").await;
    let tried = Instant::now();
    b.click("form[action='/login'] button").await;
    b.wait_text("#action-message", "Wrong token or password")
        .await;
    assert!(
        tried.elapsed() >= Duration::from_millis(900),
        "a failed login waits a second"
    );

    b.fill("#secret", &server.token).await;
    b.click("form[action='/login'] button").await;
    b.wait_text("h1", "History").await;
    b.wait_text("main", "No backup yet").await;
    let cookie = b.js("return document.cookie;").await;
    assert_eq!(cookie, "", "the session cookie is HttpOnly");
    assert!(
        !b.client.source().await.unwrap().contains(&server.token),
        "no page shows the token"
    );

    b.click("form.logout button").await;
    b.wait_text("h1", "Log in").await;
    b.client.goto(&server.at("/")).await.unwrap();
    b.wait_text("h1", "Log in").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_started_with_the_button_moves_every_open_thermometer_to_its_end() {
    // Compact compresses 16 MiB frames on every core, reading up to three
    // frames ahead, so the frames end in bursts: twelve frames give the
    // thermometer steps to show even when a loaded machine merges bursts.
    let app = slow_app(192, &[]);
    let server = Server::start(app.path());
    let a = Browser::start(1280, 1000).await;
    let b = Browser::start(1280, 1000).await;
    a.login(&server).await;
    b.login(&server).await;
    a.wait_text("#last-backup", "No backup yet").await;
    a.screenshot("backup-empty").await;
    // Set on the page now: still there at the end means no reload.
    a.js("window.sauveMark = 42; return true;").await;
    assert_eq!(
        a.js("return document.getElementById('run').hidden;").await,
        true
    );

    // Every value the page gives the thermometer, recorded by the page
    // itself: a poll from here, slow on a loaded machine, misses some.
    a.js("var bar = document.getElementById('run-progress'); var d = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value'); window.sauveSeen = []; Object.defineProperty(bar, 'value', { get: function () { return d.get.call(this); }, set: function (v) { window.sauveSeen.push(Number(v)); d.set.call(this, v); } }); return true;").await;
    a.click("#backup-button").await;
    let mut seen = Vec::new();
    let mut shot = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = a
            .js("var r = document.getElementById('run'); return [r.hidden, Number(document.getElementById('run-progress').value), r.dataset.ended || ''];")
            .await;
        let (hidden, value, ended) = (
            v[0].as_bool().unwrap(),
            v[1].as_f64().unwrap(),
            v[2].as_str().unwrap().to_owned(),
        );
        if !hidden && ended.is_empty() && seen.last() != Some(&value) {
            seen.push(value);
            if !shot && value > 20.0 {
                a.screenshot("backup-running").await;
                shot = true;
            }
        }
        if !ended.is_empty() {
            assert_eq!(ended, "0", "the run ended with status 0");
            assert_eq!(value, 100.0, "the thermometer reaches its end");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backup never ended: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let given: Vec<f64> = a
        .js("return window.sauveSeen;")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    let mut moving: Vec<f64> = given
        .iter()
        .copied()
        .filter(|v| *v > 0.0 && *v < 100.0)
        .collect();
    moving.dedup();
    assert!(
        moving.len() >= 3,
        "the thermometer moved through several values: {given:?} (polled: {seen:?})"
    );
    assert!(
        given.windows(2).all(|w| w[0] <= w[1]) && seen.windows(2).all(|w| w[0] <= w[1]),
        "never backwards: {given:?} (polled: {seen:?})"
    );
    assert_eq!(a.text("#run-title").await, "Backup 0001 ended (manual)");
    assert_eq!(
        ended_card(&a).await,
        serde_json::json!([true, true, "", ""]),
        "the ended card: no Stop, no rate, no time left"
    );

    // Last Backup Information, without a reload.
    let last = a.wait_text("#last-backup", "Success").await;
    assert!(
        last.contains("0001") && last.contains("0 No detected error."),
        "{last}"
    );
    assert!(last.contains("manual"), "{last}");
    assert_eq!(a.js("return window.sauveMark;").await, 42, "no reload");
    // The other browser saw the same run end, live.
    b.wait_text("#run-title", "Backup 0001").await;
    b.wait_text("#last-backup", "Success").await;
    assert_eq!(
        b.js("return document.getElementById('run').dataset.ended;")
            .await,
        "0"
    );
    a.screenshot("backup-done").await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_a_large_backup_with_1406_on_the_page_and_in_the_journal() {
    let app = slow_app(160, &[]);
    let server = Server::start(app.path());
    let b = Browser::start(1280, 1000).await;
    b.login(&server).await;
    b.click("#backup-button").await;
    b.wait_js(
        "return Number(document.getElementById('run-progress').value) > 0 && !document.getElementById('stop-button').disabled;",
        "the thermometer moved",
    )
    .await;
    b.screenshot("stop-before").await;
    b.click("#stop-button").await;
    b.wait_text("#action-message", "1406").await;
    let last = b.wait_text("#last-backup", "1406").await;
    assert!(last.contains("Stopped by the user"), "{last}");
    assert_eq!(
        b.js("return document.getElementById('run').dataset.ended;")
            .await,
        "1406"
    );
    // The ended card shows its final state only, and agrees with the last
    // backup information: the stopped run made no set, so no number.
    assert!(last.contains("none (no archive)"), "{last}");
    assert_eq!(
        b.text("#run-title").await,
        "The backup ended without an archive (manual)"
    );
    assert_eq!(
        ended_card(&b).await,
        serde_json::json!([true, true, "", ""]),
        "the ended card: no Stop, no rate, no time left"
    );
    b.screenshot("stop-after").await;
    assert!(
        journal_text(app.path()).contains("Status : 1406"),
        "the journal records the stop"
    );
    b.client.goto(&server.at("/journal")).await.unwrap();
    let journal = b.wait_text("main", "Backup stopped").await;
    assert!(journal.contains("1406"), "{journal}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_lists_sets_and_verify_checks_one() {
    let app = SampleApp::with_settings(&[]).unwrap();
    let server = Server::start(app.path());
    let b = Browser::start(1280, 1000).await;
    b.login(&server).await;
    for n in ["0001", "0002"] {
        b.click("#backup-button").await;
        b.wait_text("#last-backup", n).await;
    }
    b.client.goto(&server.at("/history")).await.unwrap();
    let table = b.wait_text("table", "0002").await;
    let first = table.find("0002").unwrap();
    assert!(first < table.find("0001").unwrap(), "newest first: {table}");
    b.screenshot("history").await;
    b.click("a[href='/history/1']").await;
    b.wait_text("h1", "Backup 0001").await;
    b.wait_text("main", "Data/App.4DD").await;
    b.click("form[action='/history/1/verify'] button").await;
    let message = b.wait_text("#action-message", "verified").await;
    assert!(message.contains("App[0001].4BK"), "{message}");
    b.screenshot("history-verified").await;

    // A damaged set does not verify, and the page says why.
    let archive = app.root().join("Backups/App[0002].4BK");
    let mut bytes = std::fs::read(&archive).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(&archive, bytes).unwrap();
    b.client.goto(&server.at("/history/2")).await.unwrap();
    b.click("form[action='/history/2/verify'] button").await;
    let message = b.wait_text("#action-message", "does not verify").await;
    assert!(message.contains("141"), "a 141x status: {message}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_goes_into_a_new_folder_and_never_into_the_running_app() {
    let app = SampleApp::with_settings(&[]).unwrap();
    random_file(&app.path().join("Data/App.4DD"), 300_000);
    let server = Server::start(app.path());
    let b = Browser::start(1280, 1000).await;
    b.login(&server).await;
    b.click("#backup-button").await;
    b.wait_text("#last-backup", "0001").await;

    // Into the app this server runs, or a folder inside it: refused before
    // anything is asked, nothing touched.
    for into in [
        app.arg(),
        app.path().join("Data/Data").display().to_string(),
    ] {
        b.client.goto(&server.at("/restore")).await.unwrap();
        b.fill("#destination", &into).await;
        b.click("form[action='/restore'] button[type=submit]").await;
        let m = b
            .wait_text("#action-message", "the app this server serves")
            .await;
        assert!(m.contains("never writes into an app in use"), "{m}");
    }
    assert!(!app.path().join("Data/Data").exists());
    // Found by hand: with force, into any folder of the server. Now only
    // where the operator allowed (by default the app's parent folder).
    b.client.goto(&server.at("/restore")).await.unwrap();
    b.fill("#destination", "/etc/sauve-restore").await;
    b.click("form[action='/restore'] button[type=submit]").await;
    let m = b
        .wait_text(
            "#action-message",
            "outside the folders the operator allowed",
        )
        .await;
    assert!(m.contains(&app.root().display().to_string()), "{m}");
    assert!(!Path::new("/etc/sauve-restore").exists());

    let to = app.root().join("restored here");
    b.client
        .goto(&server.at("/restore?number=1"))
        .await
        .unwrap();
    b.fill("#destination", &to.display().to_string()).await;
    b.click("form[action='/restore'] button[type=submit]").await;
    let confirm = b.wait_text("main", "Restore backup 0001?").await;
    assert!(confirm.contains("restored here"), "{confirm}");
    b.screenshot("restore-confirm").await;
    b.click("form[action='/restore'] button[type=submit]").await;
    let done = b.wait_text("#restore-job", "Restored").await;
    assert!(
        done.contains(" file") && done.contains("restored here"),
        "{done}"
    );
    b.screenshot("restore-done").await;
    assert_eq!(
        std::fs::read(to.join("Data/App.4DD")).unwrap(),
        std::fs::read(app.path().join("Data/App.4DD")).unwrap()
    );
    assert!(
        journal_text(app.path()).contains("Restore"),
        "the restore is journaled"
    );

    // A relative destination is refused with what is accepted.
    b.client.goto(&server.at("/restore")).await.unwrap();
    b.fill("#destination", "relative/folder").await;
    b.click("form[action='/restore'] button[type=submit]").await;
    let m = b.wait_text("#action-message", "not accepted").await;
    assert!(m.contains("absolute folder path"), "{m}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_saved_applied_at_once_and_a_bad_value_is_shown_beside_its_field() {
    let app = SampleApp::with_settings(&[("Scheduler/Frequency", "Never")]).unwrap();
    let file = app.path().join("Settings/backup.4DSettings");
    let server = Server::start(app.path());
    let b = Browser::start(1280, 1200).await;
    b.login(&server).await;
    b.wait_text("main", "Frequency is Never").await;

    b.client.goto(&server.at("/settings")).await.unwrap();
    b.find("#Scheduler-Frequency")
        .await
        .select_by_value("Daily")
        .await
        .unwrap();
    b.fill("#Scheduler-Daily-Hour", "03:30:00").await;
    b.click("form.settings button[type=submit]").await;
    b.wait_text("#action-message", "Saved").await;
    let xml = std::fs::read_to_string(&file).unwrap();
    assert!(xml.contains("<Frequency>Daily</Frequency>"), "{xml}");
    assert!(xml.contains("03:30:00"), "{xml}");
    // The scheduler of the running server applies it without a restart.
    b.client.goto(&server.at("/")).await.unwrap();
    let schedule = b.wait_text("main", "03:30:00").await;
    assert!(!schedule.contains("Frequency is Never"), "{schedule}");

    // A bad value: refused beside its field, the file unchanged.
    let before = std::fs::read(&file).unwrap();
    b.client.goto(&server.at("/settings")).await.unwrap();
    b.fill("#Scheduler-Hourly-Every", "99").await;
    b.fill("#alerts-stale_after", "soon").await;
    b.click("form.settings button[type=submit]").await;
    b.wait_text("#action-message", "Not saved").await;
    let field = b
        .text(".field.invalid:has(#Scheduler-Hourly-Every) .error")
        .await;
    assert!(
        field.contains("invalid value \"99\"") && field.contains("integer 1 to 24"),
        "{field}"
    );
    let stale = b
        .text(".field.invalid:has(#alerts-stale_after) .error")
        .await;
    assert!(stale.contains("26h"), "the accepted values: {stale}");
    assert_eq!(
        b.js("return document.getElementById('Scheduler-Hourly-Every').value;")
            .await,
        "99",
        "what was typed stays in the field"
    );
    b.screenshot("settings-invalid").await;
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the file is unchanged"
    );
    assert!(
        !app.path().join("Settings/sauve.toml").exists(),
        "no sauve.toml was written"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_backup_that_gives_up_shows_a_banner_which_acknowledge_clears_for_everyone() {
    // A daily slot a few seconds from now (UTC, the server's zone), a
    // destination that is a file (1407), and no retry: the first failure
    // gives up (1401).
    let secs = (jiff::Timestamp::now().as_second() + 6).rem_euclid(86_400);
    let at = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    let app = SampleApp::with_settings(&[
        ("Scheduler/Frequency", "Daily"),
        ("Scheduler/Daily/Hour", &at),
        ("General/DestinationFolder", "../blocker"),
        ("Advanced/BackupFailure/AbortIfBackupFail", "True"),
        ("Advanced/BackupFailure/RetryCountBeforeAbort", "1"),
    ])
    .unwrap();
    std::fs::write(app.root().join("blocker"), "not a folder").unwrap();
    let server = Server::start(app.path());
    let a = Browser::start(1280, 1000).await;
    let b = Browser::start(1280, 1000).await;
    a.login(&server).await;
    b.login(&server).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    // The alert is recorded by the run, the scheduler turns itself off
    // just after: a person reloading sees both.
    loop {
        if a.text("#alerts").await.contains("Alert 1")
            && a.text("main").await.contains("Off after 1401")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no alert banner appeared");
        tokio::time::sleep(Duration::from_millis(500)).await;
        a.client.refresh().await.unwrap();
    }
    let banner = a.text("#alerts").await;
    assert!(
        banner.contains("scheduled backups gave up") && banner.contains("1401"),
        "{banner}"
    );
    a.screenshot("alert-banner").await;
    a.click("#alerts form button").await;
    a.wait_js(
        "return document.getElementById('alerts').textContent.trim() === '';",
        "the banner went away",
    )
    .await;
    b.client.goto(&server.at("/history")).await.unwrap();
    b.find("h1").await;
    assert_eq!(b.text("#alerts").await, "", "acknowledged for every viewer");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_csrf_token_is_refused_and_cookies_never_start_an_api_backup() {
    let app = SampleApp::with_settings(&[]).unwrap();
    let server = Server::start(app.path());
    let b = Browser::start(1280, 900).await;
    b.login(&server).await;
    let no_token = b
        .js("return fetch('/backup', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: ''}).then(r => r.status);")
        .await;
    assert_eq!(no_token, 403);
    let wrong = b
        .js("return fetch('/backup', {method: 'POST', headers: {'X-CSRF-Token': 'nope'}, body: new URLSearchParams('csrf=nope')}).then(r => r.status);")
        .await;
    assert_eq!(wrong, 403);
    let api = b
        .js("return fetch('/v1/backup', {method: 'POST'}).then(r => r.status);")
        .await;
    assert_eq!(
        api, 401,
        "the session cookie does not authorise the JSON API"
    );
    b.client.refresh().await.unwrap();
    b.wait_text("#last-backup", "No backup yet").await;
    assert!(!app.root().join("Backups").exists(), "no backup was made");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_fits_a_360_px_wide_screen_without_scrolling_sideways() {
    let app = SampleApp::with_settings(&[(
        "General/IncludesFiles/Item1",
        "../a-long-attachment-name-that-wraps/with/many/parts.txt",
    )])
    .unwrap();
    let server = Server::start(app.path());
    let b = Browser::start(360, 800).await;
    b.login(&server).await;
    b.click("#backup-button").await;
    b.wait_text("#last-backup", "0001").await;
    let width = b.js("return window.innerWidth;").await;
    assert_eq!(width, 360, "the viewport is 360 px wide");
    for (path, name) in [
        ("/", "mobile-backup"),
        ("/history", "mobile-history"),
        ("/history/1", "mobile-set"),
        ("/journal", "mobile-journal"),
        ("/restore", "mobile-restore"),
        ("/settings", "mobile-settings"),
        ("/no-such-page", "mobile-404"),
    ] {
        b.client.goto(&server.at(path)).await.unwrap();
        b.find("h1").await;
        assert!(
            !b.scrolls_sideways().await,
            "{path} scrolls sideways at 360 px"
        );
        b.screenshot(name).await;
    }
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_page_lists_the_operations_with_their_kind_and_filters_them() {
    let app = SampleApp::with_settings(&[]).unwrap();
    let start: jiff::Timestamp = "2026-12-01T13:00:00Z".parse().unwrap();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let clock: sauve_logfile::LogClock = std::sync::Arc::new(move || {
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        start + jiff::SignedDuration::from_mins(10 * n)
    });
    let w = sauve_logfile::LogWriter::create_with_clock(
        &app.path().join("Data/App.journal"),
        [0; 16],
        1,
        sauve_logfile::Durability::EveryAppend,
        clock,
    )
    .unwrap();
    let notes = sauve_logfile::Tag::new(1, "notes").unwrap();
    let files = sauve_logfile::Tag::new(2, "files").unwrap();
    for (i, tag) in [&notes, &notes, &files, &notes, &files].iter().enumerate() {
        w.append_tagged(Some(tag), format!("op {i}").as_bytes())
            .unwrap();
    }
    drop(w);
    // A restore to 13:30 UTC ran at 14:00, when the log ended at sequence
    // 4: the fourth operation is set aside (the state keeper's record).
    std::fs::create_dir_all(app.path().join("Logs")).unwrap();
    std::fs::write(
        sauve_engine::state_path(app.path()),
        r#"{"set_aside": [{"point": {"time": "2026-12-01T13:30:00Z"}, "through": 4, "after": 3, "at": "2026-12-01T14:00:00Z"}]}"#,
    )
    .unwrap();
    let server = Server::start(app.path());
    let b = Browser::start(1280, 900).await;
    b.login(&server).await;
    b.client.goto(&server.at("/log")).await.unwrap();
    let table = b.wait_text("table", "files").await;
    assert_eq!(table.matches("notes").count(), 3, "{table}");
    let rows = b
        .js("return document.querySelectorAll('tbody tr').length;")
        .await;
    assert_eq!(rows, 5);
    let summary = b.wait_text("main", "5 operations").await;
    assert!(summary.contains("version 2"), "{summary}");
    assert!(
        summary.contains("1 of these operations is set aside"),
        "{summary}"
    );
    let aside = b
        .js("return Array.from(document.querySelectorAll('tbody tr.set-aside td:first-child')).map(td => td.textContent.trim()).join('|');")
        .await;
    assert_eq!(aside, serde_json::json!("4 set aside"));
    b.screenshot("log").await;
    // The form's kind filter, as a person uses it.
    b.js("document.querySelector('input[name=kind]').value = '2'; document.querySelector('form.filters').submit(); return 0;")
        .await;
    b.wait_text("main", "2 of 5 operations").await;
    let rows = b
        .js("return document.querySelectorAll('tbody tr').length;")
        .await;
    assert_eq!(rows, 2);
    // A time filter with an explicit offset: 14:15 (UTC+1) and later; the
    // records are at 13:10 to 13:50 UTC (the header took 13:00).
    b.client
        .goto(&server.at("/log?since=2026-12-01T14%3A15%3A00%2B01%3A00"))
        .await
        .unwrap();
    b.wait_text("main", "4 of 5 operations").await;
    // A time it cannot read: a page saying what is accepted.
    b.client
        .goto(&server.at("/log?until=yesterday"))
        .await
        .unwrap();
    let refused = b.wait_text("main", "accepted").await;
    assert!(refused.contains("2026-12-01 14:04:30"), "{refused}");
    b.close().await;
}
