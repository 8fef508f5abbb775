//! Alerts that reach a person (behaviour §17.2), end to end: the scheduler gives
//! up, a real webhook receiver and a real SMTP server get the alert, the
//! alert stays in `sauve status` until acknowledged; a notifier that cannot
//! be reached never changes a backup; no backup for too long raises one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::StatusCode;
use sauve_engine::{BackupHandle, Clock, Engine, EngineOptions, Trigger};
use sauve_journal::Title;
use sauve_status::Status;
use sauve_tests::paused::{PausedClock, blocking, finished, frozen, looked_at, scheduler, ts};
use sauve_tests::receivers::{Smtp, webhook};
use sauve_tests::{SampleApp, sauve};

/// An app whose backups fail (its destination cannot be created) until
/// `unblock`, with `sauve.toml` = `toml`.
struct Failing {
    app: SampleApp,
    blocker: PathBuf,
}

impl Failing {
    fn new(settings: &[(&str, &str)], toml: &str) -> Failing {
        let mut pairs = vec![("General/DestinationFolder", "../blocker/bk/")];
        pairs.extend_from_slice(settings);
        let app = SampleApp::with_settings(&pairs).unwrap();
        let blocker = app.root().join("blocker");
        std::fs::write(&blocker, b"a file stands where the folder goes").unwrap();
        std::fs::write(app.path().join("Settings/sauve.toml"), toml).unwrap();
        Failing { app, blocker }
    }

    fn unblock(&self) {
        std::fs::remove_file(&self.blocker).unwrap();
    }

    fn engine(&self, options: EngineOptions) -> BackupHandle {
        Engine::start(
            sauve_settings::AppLayout::discover(self.app.path()).unwrap(),
            options,
        )
        .unwrap()
    }

    /// A 0600 secret file beside the app, its path as sauve.toml names it.
    fn secret(&self, value: &str) -> String {
        let path = self.app.root().join("webhook.key");
        std::fs::write(&path, value).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        "../webhook.key".to_owned()
    }

    fn journal(&self) -> Vec<sauve_journal::Entry> {
        sauve_journal::read_all(&self.app.path().join("Logs")).unwrap()
    }

    /// `sauve status` and `sauve status --json`, run off the test's runtime.
    async fn status(&self) -> (String, serde_json::Value) {
        let arg = self.app.arg();
        let (text, json) = blocking(move || {
            (
                sauve(&["status", "--app", &arg]),
                sauve(&["status", "--json", "--app", &arg]),
            )
        })
        .await;
        assert_eq!(text.code, 0, "{}", text.stderr);
        (text.stdout, serde_json::from_str(&json.stdout).unwrap())
    }

    /// `sauve ARGS --app APP`, run off the test's runtime.
    async fn sauve(&self, args: &[&str]) -> sauve_tests::Output {
        let mut argv: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        argv.extend(["--app".to_owned(), self.app.arg()]);
        blocking(move || sauve(&argv.iter().map(String::as_str).collect::<Vec<_>>())).await
    }
}

const HOURLY_GIVING_UP: &[(&str, &str)] = &[
    ("Scheduler/Frequency", "Hourly"),
    ("Scheduler/Hourly/Every", "1"),
    ("Advanced/BackupFailure/TryToBackupAfter", "00:00:10"),
    ("Advanced/BackupFailure/AbortIfBackupFail", "True"),
    ("Advanced/BackupFailure/RetryCountBeforeAbort", "2"),
];

#[tokio::test(start_paused = true)]
async fn a_scheduled_backup_that_gives_up_alerts_both_notifiers_and_stays_in_status_until_acknowledged()
 {
    let (url, mut posted) = webhook(StatusCode::OK).await;
    let smtp = Smtp::start();
    let app = Failing::new(HOURLY_GIVING_UP, "");
    let key = app.secret("shared-k3y");
    let toml = format!(
        "[[alerts.webhook]]\nurl = \"{url}\"\nsecret_file = \"{key}\"\n\n[[alerts.email]]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nca_file = \"{}\"\nfrom = \"sauve@example.com\"\nto = [\"ops@example.com\"]\n",
        smtp.port,
        smtp.ca.display()
    );
    std::fs::write(app.app.path().join("Settings/sauve.toml"), toml).unwrap();
    let handle = app.engine(EngineOptions {
        clock: PausedClock::at("2026-01-01T10:59:30Z"),
        ..EngineOptions::default()
    });
    let mut events = handle.subscribe();
    let (_view, task) = scheduler(&handle);
    // 11:00 fails (1407); its retry at 11:00:10 reaches the limit: 1401.
    assert_eq!(finished(&mut events).await.0, 1407);
    assert_eq!(finished(&mut events).await.0, 1401);
    let h = handle.clone();
    frozen(async move { h.alerts().delivered().await.unwrap() }).await;
    // The webhook got the alert, signed.
    let (headers, body) = posted.recv().await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            doc["kind"].as_str(),
            doc["status"].as_i64(),
            doc["failures"].as_i64()
        ),
        (Some("give-up"), Some(1401), Some(2))
    );
    assert_eq!(doc["scheduled"], "2026-01-01T11:00:00Z");
    assert_eq!(
        headers[sauve_alerts::SIGNATURE_HEADER],
        sauve_alerts::signature(b"shared-k3y", body.as_bytes()).as_str()
    );
    // The mail server got it too.
    let message = smtp.message();
    assert!(message.contains("RCPT TO: ops@example.com\n"), "{message}");
    assert!(
        message.contains("Subject: sauve: scheduled backups gave up (1401 "),
        "{message}"
    );
    // The run's journal entry says both were delivered.
    let e = app.journal().pop().unwrap();
    assert_eq!(
        (e.title, e.status),
        (Some(Title::FullBackupAborted), Some(1401))
    );
    assert_eq!(e.alerts.len(), 2, "{:?}", e.alerts);
    assert!(
        e.alerts[0].starts_with("webhook http://127.0.0.1:") && e.alerts[0].ends_with(" sent"),
        "{:?}",
        e.alerts
    );
    assert_eq!(e.alerts[1], "email to ops@example.com sent");
    // `sauve status` shows it first, until acknowledged.
    let (text, json) = app.status().await;
    assert!(
        text.starts_with("ALERT 1: scheduled backups gave up (1401 "),
        "{text}"
    );
    assert_eq!(json["alerts"][0]["id"], 1);
    let ack = app.sauve(&["alert", "ack", "1"]).await;
    assert_eq!(ack.code, 0, "{}", ack.stderr);
    let (text, json) = app.status().await;
    assert!(!text.contains("ALERT"), "{text}");
    assert_eq!(json["alerts"], serde_json::json!([]));
    let again = app.sauve(&["alert", "ack", "1"]).await;
    assert_eq!(
        again.code, 1,
        "nothing left to acknowledge: {}",
        again.stderr
    );
    task.abort();
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_webhook_gets_three_attempts_and_never_delays_or_changes_the_backup() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = Failing::new(
        &[],
        &format!(
            "[alerts]\non = \"failure\"\n[[alerts.webhook]]\nurl = \"http://127.0.0.1:{port}/hook\"\n"
        ),
    );
    // Short waits between attempts, so the test is quick; three attempts.
    let handle = app.engine(EngineOptions {
        alert_delivery: sauve_alerts::Policy {
            timeout: Duration::from_secs(5),
            backoff: vec![Duration::from_millis(400), Duration::from_millis(400)],
        },
        ..EngineOptions::default()
    });
    let report = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(
        report.status,
        Status::DestinationInvalid,
        "the backup's own status"
    );
    // (The history cannot be written either: it lives in that destination.)
    assert!(
        report.warnings.iter().all(|w| !w.contains("alert")),
        "{:?}",
        report.warnings
    );
    // The report came back while the deliveries still wait between attempts.
    assert!(
        app.journal().iter().all(|e| e.status != Some(1407)),
        "the run's entry waits for the deliveries"
    );
    handle.alerts().delivered().await.unwrap();
    let e = app.journal().pop().unwrap();
    assert_eq!(e.status, Some(1407));
    assert_eq!(e.alerts.len(), 1);
    assert!(
        e.alerts[0].starts_with(&format!(
            "webhook http://127.0.0.1:{port}/hook failed after 3 attempts: cannot reach"
        )),
        "{:?}",
        e.alerts
    );
    // Not delivered, still in the list.
    let (text, _) = app.status().await;
    assert!(
        text.starts_with("ALERT 1: a backup failed (1407 "),
        "{text}"
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sauve_alert_test_reports_each_notifier_and_exits_1_when_one_failed() {
    let (url, mut posted) = webhook(StatusCode::OK).await;
    let app = Failing::new(
        &[],
        &format!(
            "[[alerts.webhook]]\nurl = \"{url}\"\n\n[[alerts.command]]\nrun = \"echo pager unreachable >&2; exit 4\"\n"
        ),
    );
    let out = app.sauve(&["alert", "test"]).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!("webhook {url} sent")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("command echo pager unreachable >&2; exit 4 failed after 3 attempts: the command exited with 4: pager unreachable"),
        "{}",
        out.stdout
    );
    let (_, body) = posted.recv().await.unwrap();
    assert!(body.contains("\"kind\":\"test\""), "{body}");
    // A test is journaled, not listed.
    let e = app.journal().pop().unwrap();
    assert_eq!(e.title, Some(Title::Alert));
    assert_eq!(e.alerts.len(), 2);
    assert_eq!(app.status().await.1["alerts"], serde_json::json!([]));
}

#[test]
fn sauve_alert_test_with_an_invalid_sauve_toml_exits_2_naming_the_file() {
    // Found in review: once the engine shared one reading of sauve.toml,
    // its error took another variant, and the exit status became 1.
    let app = Failing::new(&[], "[alerts\n");
    let out = std::process::Command::new(sauve_tests::browser::sauve_binary())
        .args(["alert", "test", "--app", &app.app.arg()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("sauve.toml"), "{stderr}");
}

#[test]
fn a_webhook_on_a_system_without_ca_certificates_fails_clearly_and_never_panics() {
    // Found in review: with no CA certificates on the system, the webhook's
    // HTTP client could not be made and its fallback panicked, killing the
    // alerter (every later alert lost).
    let app = Failing::new(
        &[],
        "[[alerts.webhook]]\nurl = \"http://127.0.0.1:9/hook\"\n",
    );
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("none.pem"), "").unwrap();
    let out = std::process::Command::new(sauve_tests::browser::sauve_binary())
        .args(["alert", "test", "--app", &app.app.arg()])
        .env("SSL_CERT_FILE", empty.path().join("none.pem"))
        .env("SSL_CERT_DIR", empty.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("webhook http://127.0.0.1:9/hook failed")
            && stdout.contains("the system's CA certificates"),
        "{stdout}"
    );
}

#[tokio::test(start_paused = true)]
async fn no_success_for_longer_than_stale_after_raises_one_alert_which_the_next_success_clears() {
    let (url, mut posted) = webhook(StatusCode::OK).await;
    let app = Failing::new(
        &[("Scheduler/Frequency", "Never")],
        &format!("[alerts]\nstale_after = \"2h\"\n[[alerts.webhook]]\nurl = \"{url}\"\n"),
    );
    let clock = PausedClock::at("2026-01-01T08:00:00Z");
    let handle = app.engine(EngineOptions {
        clock: clock.clone(),
        ..EngineOptions::default()
    });
    let (mut view, task) = scheduler(&handle);
    // Watched from the first look; raised once past two hours.
    looked_at(&mut view, ts("2026-01-01T10:00:00Z")).await;
    let h = handle.clone();
    assert!(
        frozen(async move { h.alerts().open().await.unwrap() })
            .await
            .is_empty()
    );
    looked_at(&mut view, ts("2026-01-01T10:01:00Z")).await;
    let h = handle.clone();
    frozen(async move { h.alerts().delivered().await.unwrap() }).await;
    let (_, body) = posted.recv().await.unwrap();
    assert!(body.contains("\"kind\":\"stale\""), "{body}");
    looked_at(&mut view, ts("2026-01-01T12:00:00Z")).await;
    let h = handle.clone();
    let open = frozen(async move { h.alerts().open().await.unwrap() }).await;
    assert_eq!(open.len(), 1, "raised once");
    // The next success clears it.
    app.unblock();
    let h = handle.clone();
    let report = frozen(async move { h.backup(Trigger::Api).await.unwrap() }).await;
    assert_eq!(report.status, Status::Ok);
    let h = handle.clone();
    assert!(
        frozen(async move { h.alerts().open().await.unwrap() })
            .await
            .is_empty()
    );
    // And none is raised again while backups succeed.
    looked_at(&mut view, ts("2026-01-01T13:00:00Z")).await;
    let h = handle.clone();
    assert!(
        frozen(async move { h.alerts().open().await.unwrap() })
            .await
            .is_empty()
    );
    assert!(clock.now() >= ts("2026-01-01T13:00:00Z"));
    task.abort();
    handle.shutdown().await;
}

#[test]
fn an_invalid_sauve_toml_is_refused_by_settings_validate_and_shown_by_status() {
    let app = SampleApp::with_settings(&[]).unwrap();
    std::fs::create_dir_all(app.path().join("Settings")).unwrap();
    let file = app.path().join("Settings/sauve.toml");
    std::fs::write(&file, "[alerts]\nwebhok = []\n").unwrap();
    let out = sauve(&["settings", "validate", file.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("sauve.toml:2:1: unknown key \"webhok\""),
        "{}",
        out.stderr
    );
    let status = sauve(&["status", "--json", "--app", &app.arg()]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert!(
        v["sauve_toml_problem"]
            .as_str()
            .unwrap()
            .contains("unknown key \"webhok\"")
    );
    let text = sauve(&["status", "--app", &app.arg()]);
    assert!(
        text.stdout.contains("sauve.toml is invalid"),
        "{}",
        text.stdout
    );
}

/// The alert the email notifier tests send.
fn give_up_alert() -> sauve_alerts::Alert {
    sauve_alerts::Alert {
        id: 7,
        kind: sauve_alerts::AlertKind::GiveUp,
        app: "/srv/app".to_owned(),
        host: "server-1".to_owned(),
        status: 1401,
        status_text: "Maximum attempts reached; automatic backup disabled".to_owned(),
        trigger: "scheduled".to_owned(),
        number: 0.into(),
        scheduled: Some(ts("2026-03-14T02:00:00Z")),
        started: Some(ts("2026-03-14T02:00:10Z")),
        ended: Some(ts("2026-03-14T02:00:11Z")),
        errors: vec!["1407 Destination invalid or cannot be created".to_owned()],
        failures: 2,
        page: Some("http://127.0.0.1:7070/".to_owned()),
        raised: ts("2026-03-14T02:00:11Z"),
    }
}

fn email(smtp: &Smtp, to: &[&str], ca: Option<PathBuf>) -> sauve_alerts::EmailNotifier {
    sauve_alerts::EmailNotifier::new(sauve_settings::EmailSettings {
        host: "127.0.0.1".to_owned(),
        port: smtp.port,
        tls: sauve_settings::SmtpTls::StartTls,
        user: None,
        password: None,
        from: "sauve@example.com".to_owned(),
        to: to.iter().map(|t| (*t).to_owned()).collect(),
        ca_file: ca,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_reaches_a_real_smtp_server_over_starttls_with_its_recipients_subject_and_text() {
    use sauve_alerts::Notifier;
    let smtp = Smtp::start();
    let n = email(
        &smtp,
        &["ops@example.com", "oncall@example.com"],
        Some(smtp.ca.clone()),
    );
    assert_eq!(n.describe(), "email to ops@example.com, oncall@example.com");
    let d = sauve_alerts::deliver(&n, &give_up_alert(), &sauve_alerts::Policy::default()).await;
    assert!(d.sent(), "{d:?}");
    let message = smtp.message();
    assert!(
        message.contains("MAIL FROM: sauve@example.com\n"),
        "{message}"
    );
    assert!(
        message.contains("RCPT TO: ops@example.com, oncall@example.com\n"),
        "{message}"
    );
    assert!(
        message.contains("To: ops@example.com, oncall@example.com\n"),
        "{message}"
    );
    assert!(
        message.contains("Subject: sauve: scheduled backups gave up (1401 Maximum attempts reached; automatic backup disabled) for /srv/app on server-1"),
        "{message}"
    );
    assert!(
        message.contains("error:     1407 Destination invalid or cannot be created"),
        "{message}"
    );
    assert!(message.contains("sauve alert ack 7"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_to_a_server_whose_certificate_is_not_trusted_fails_clearly() {
    let smtp = Smtp::start();
    let n = email(&smtp, &["ops@example.com"], None);
    let policy = sauve_alerts::Policy {
        backoff: Vec::new(),
        ..sauve_alerts::Policy::default()
    };
    let d = sauve_alerts::deliver(&n, &give_up_alert(), &policy).await;
    assert!(!d.sent());
    assert!(
        d.line()
            .starts_with("email to ops@example.com failed after 1 attempt: "),
        "{}",
        d.line()
    );
}
