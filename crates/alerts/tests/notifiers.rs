//! The notifiers against real receivers on loopback: an HTTP server for the
//! webhook, `sh` for the command. The email notifier is tested against a
//! real SMTP server in the workspace's `tests/tests/alerts.rs`, which has
//! the shared SMTP harness.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use hmac::Mac;
use sauve_alerts::{
    Alert, AlertKind, CommandNotifier, Notifier, NotifyError, Policy, SIGNATURE_HEADER,
    WebhookNotifier, deliver, deliver_all,
};
use sauve_settings::{CommandSettings, Secret, SecretFrom, WebhookSettings};

fn alert() -> Alert {
    Alert {
        id: 7,
        kind: AlertKind::GiveUp,
        app: "/srv/app".to_owned(),
        host: "server-1".to_owned(),
        status: 1401,
        status_text: "Maximum attempts reached; automatic backup disabled".to_owned(),
        trigger: "scheduled".to_owned(),
        number: 0.into(),
        scheduled: Some("2026-03-14T02:00:00Z".parse().unwrap()),
        started: Some("2026-03-14T02:00:10Z".parse().unwrap()),
        ended: Some("2026-03-14T02:00:11Z".parse().unwrap()),
        errors: vec!["1407 Destination invalid or cannot be created".to_owned()],
        failures: 2,
        page: Some("http://127.0.0.1:7070/".to_owned()),
        raised: "2026-03-14T02:00:11Z".parse().unwrap(),
    }
}

/// What a receiver got: headers and body of each request.
type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// An HTTP receiver on loopback answering `status`; its URL and what it got.
async fn receiver(status: StatusCode) -> (String, Received) {
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push((headers, body));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook?token=t0k", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test]
async fn a_webhook_posts_the_alert_as_json_signed_with_hmac_sha256() {
    let (url, got) = receiver(StatusCode::OK).await;
    let n = WebhookNotifier::new(WebhookSettings {
        url,
        secret: Some(Secret::new("k3y", SecretFrom::Env("X".into()))),
    });
    let d = deliver(&n, &alert(), &Policy::default()).await;
    assert!(d.sent(), "{d:?}");
    assert!(d.line().ends_with("/hook sent"), "{}", d.line());
    assert!(
        !d.line().contains("t0k"),
        "the query (a token) is not shown"
    );
    let got = got.lock().unwrap();
    let (headers, body) = &got[0];
    assert_eq!(headers["content-type"], "application/json");
    let doc: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(doc["status"], 1401);
    assert_eq!(doc["kind"], "give-up");
    assert_eq!(doc["failures"], 2);
    assert_eq!(doc["app"], "/srv/app");
    assert_eq!(
        doc["errors"][0],
        "1407 Destination invalid or cannot be created"
    );
    // The receiver's check: HMAC-SHA256 of the raw body under the shared key.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"k3y").unwrap();
    mac.update(body.as_bytes());
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(headers[SIGNATURE_HEADER], want.as_str());
}

#[tokio::test(start_paused = true)]
async fn a_refusing_webhook_gets_three_attempts_then_fails_with_its_answer() {
    let (url, got) = receiver(StatusCode::SERVICE_UNAVAILABLE).await;
    let n = WebhookNotifier::new(WebhookSettings { url, secret: None });
    let d = deliver(&n, &alert(), &Policy::default()).await;
    assert_eq!(d.attempts, 3);
    assert_eq!(got.lock().unwrap().len(), 3);
    assert!(!got.lock().unwrap()[0].0.contains_key(SIGNATURE_HEADER));
    assert!(
        matches!(&d.error, Some(NotifyError::Refused { answer, .. }) if answer.starts_with("503")),
        "{d:?}"
    );
    assert!(
        d.line().contains("failed after 3 attempts: "),
        "{}",
        d.line()
    );
}

#[tokio::test]
async fn a_webhook_password_is_never_in_what_is_shown_of_a_delivery() {
    // Found by hand: the password of `http://user:PASS@host/…` was in the
    // Backup Journal, the status, the page's banner, the log and the state.
    let (url, got) = receiver(StatusCode::SERVICE_UNAVAILABLE).await;
    let url = url.replacen("http://", "http://user:PASS@", 1);
    let n = WebhookNotifier::new(WebhookSettings { url, secret: None });
    let d = deliver(&n, &alert(), &Policy::default()).await;
    assert_eq!(
        got.lock().unwrap().len(),
        3,
        "it is delivered to all the same"
    );
    for shown in [n.describe(), d.line(), format!("{:?}", d.error)] {
        assert!(!shown.contains("PASS"), "{shown}");
        assert!(!shown.contains("t0k"), "{shown}");
        assert!(!shown.contains("user"), "{shown}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_webhook_gets_three_attempts_and_a_clear_error() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let n = WebhookNotifier::new(WebhookSettings {
        url: format!("http://127.0.0.1:{port}/hook"),
        secret: None,
    });
    let d = deliver(&n, &alert(), &Policy::default()).await;
    assert_eq!(d.attempts, 3);
    assert!(
        matches!(d.error, Some(NotifyError::Unreachable { .. })),
        "{d:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_receiver_that_never_answers_times_out_at_each_attempt() {
    // Accepts connections, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = held.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            h.lock().unwrap().push(s);
        }
    });
    let n = WebhookNotifier::new(WebhookSettings { url, secret: None });
    let started = tokio::time::Instant::now();
    let d = deliver(&n, &alert(), &Policy::default()).await;
    assert_eq!(d.attempts, 3);
    assert_eq!(d.error, Some(NotifyError::Timeout(Duration::from_secs(10))));
    // Three 10 s attempts, 1 s and 5 s apart: 36 s of (paused) time.
    assert_eq!(started.elapsed().as_secs(), 36);
}

#[tokio::test]
async fn a_command_gets_only_the_variables_it_documents() {
    // Found by hand: the command inherited SAUVE_S3_SECRET,
    // SAUVE_WEBHOOK_SECRET and SAUVE_METRICS_TOKEN from sauve's own
    // environment (here: cargo's variables stand for them).
    assert!(std::env::vars().any(|(k, _)| k.starts_with("CARGO")));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env.txt");
    let n = CommandNotifier::new(CommandSettings {
        run: format!("env > '{}'", out.display()),
    });
    assert!(deliver(&n, &alert(), &Policy::default()).await.sent());
    let text = std::fs::read_to_string(&out).unwrap();
    let documented: Vec<&str> = alert().env().iter().map(|(k, _)| *k).collect();
    for line in text.lines().filter(|l| l.contains('=')) {
        let name = line.split('=').next().unwrap();
        // sh itself sets PWD, SHLVL and _.
        let shell = ["PWD", "SHLVL", "_", "OLDPWD"];
        assert!(
            documented.contains(&name)
                || sauve_alerts::PASSED_TO_COMMANDS.contains(&name)
                || shell.contains(&name)
                // A multi-line value (SAUVE_ERRORS, SAUVE_ALERT_JSON) goes on.
                || !name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            "{name} reached the command:\n{text}"
        );
    }
    assert!(text.contains("SAUVE_STATUS=1401"), "{text}");
}

#[tokio::test]
async fn a_command_gets_the_alert_in_sauve_variables_and_its_failure_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env.txt");
    let n = CommandNotifier::new(CommandSettings {
        run: format!(
            "printf '%s|%s|%s|%s' \"$SAUVE_STATUS\" \"$SAUVE_ALERT_KIND\" \"$SAUVE_FAILURES\" \"$SAUVE_APP\" > '{}'",
            out.display()
        ),
    });
    assert!(deliver(&n, &alert(), &Policy::default()).await.sent());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "1401|give-up|2|/srv/app"
    );
    let failing = CommandNotifier::new(CommandSettings {
        run: "echo 'no route to pager' >&2; exit 3".to_owned(),
    });
    let policy = Policy {
        backoff: Vec::new(),
        ..Policy::default()
    };
    let d = deliver(&failing, &alert(), &policy).await;
    assert_eq!(
        d.error,
        Some(NotifyError::Command(
            "the command exited with 3: no route to pager".to_owned()
        ))
    );
}

#[tokio::test]
async fn every_notifier_is_tried_and_reported_in_order() {
    let (url, _) = receiver(StatusCode::OK).await;
    let notifiers: Vec<Box<dyn Notifier>> = vec![
        Box::new(WebhookNotifier::new(WebhookSettings { url, secret: None })),
        Box::new(CommandNotifier::new(CommandSettings {
            run: "exit 1".to_owned(),
        })),
    ];
    let policy = Policy {
        backoff: Vec::new(),
        ..Policy::default()
    };
    let d = deliver_all(&notifiers, &alert(), &policy).await;
    assert_eq!(d.len(), 2);
    assert!(d[0].sent() && !d[1].sent());
    assert!(
        d[1].line()
            .starts_with("command exit 1 failed after 1 attempt: the command exited with 1")
    );
}
