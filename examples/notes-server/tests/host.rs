//! The notes-server as its clients see it: writes wait during the data phase
//! of a backup while reads go on, and a client can cancel a waiting write.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A minimal HTTP/1.1 client: one request per connection.
fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (code, body)
}

struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_waiting_write_can_be_cancelled_with_minus_9976_while_reads_go_on() {
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("App");
    std::fs::create_dir_all(app.join("Data")).unwrap();
    std::fs::create_dir_all(app.join("Settings")).unwrap();
    // A large attachment inside Data/ is copied under the data lock (O-11);
    // level 19 makes that phase last seconds.
    let mut blob = vec![0u8; 48 << 20];
    fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15).fill(&mut blob);
    std::fs::write(app.join("Data/blob.bin"), blob).unwrap();
    let mut s = sauve_settings::Settings::default();
    s.advanced.compression_rate = sauve_settings::Compression::Compact;
    s.general.includes_files = vec!["./Data/blob.bin".to_owned()];
    sauve_settings::create_file(
        &app.join("Settings/backup.4DSettings"),
        &sauve_settings::SettingsDoc::new(s),
    )
    .unwrap();
    let _host = Host(
        Command::new(env!("CARGO_BIN_EXE_notes-server"))
            .arg("--app")
            .arg(&app)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let file = app.join("Logs/sauve-server.json");
    let mut server = serde_json::Value::Null;
    for _ in 0..400 {
        if let Ok(t) = std::fs::read_to_string(&file)
            && let Ok(v) = serde_json::from_str(&t)
        {
            server = v;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let addr = server["url"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    let token = server["token"].as_str().unwrap().to_owned();
    assert_eq!(http(&addr, "POST", "/notes", None, "before").0, 201);

    let (code, _) = http(&addr, "POST", "/v1/backup", Some(&token), "");
    assert_eq!(code, 202);
    // Wait until the backup holds the data lock: a short-patience write is cancelled.
    let mut cancelled = None;
    // Writes made before the backup took the lock are acknowledged as usual.
    let mut acknowledged = 1;
    for _ in 0..100 {
        let (code, body) = http(&addr, "POST", "/notes?wait_ms=200", None, "impatient");
        if code == 409 {
            cancelled = Some(body);
            break;
        }
        assert_eq!(code, 201, "{body}");
        acknowledged += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let body = cancelled.expect("a write waited on the backup and was cancelled");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], -9976);
    // Reads go on during the backup (server mode).
    let (code, body) = http(&addr, "GET", "/notes/1", None, "");
    assert_eq!((code, body.contains("before")), (200, true));
    // The cancelled write left nothing: only the notes acknowledged exist.
    let (code, _) = http(&addr, "POST", "/notes", None, "after");
    assert_eq!(code, 201);
    acknowledged += 1;
    let notes: Vec<(u16, String)> = (1..=acknowledged + 3)
        .map(|i| http(&addr, "GET", &format!("/notes/{i}"), None, ""))
        .collect();
    let found = notes.iter().filter(|(c, _)| *c == 200).count();
    assert_eq!(found, acknowledged, "{notes:?}");
    // The host mounts sauve's metrics with the control API.
    let (code, body) = http(&addr, "GET", "/metrics", Some(&token), "");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\nsauve_backup_running "), "{body}");
    assert!(body.contains("sauve_alerts_open 0"), "{body}");
    assert_eq!(http(&addr, "GET", "/metrics", None, "").0, 401);
    // Its last write is in its log with its time and its kind (behaviour §20).
    let log = sauve_logfile::read_log(&app.join("Data/Notes.journal")).unwrap();
    let last = log.records.last().unwrap();
    assert_eq!(last.tag, sauve_logfile::Tag::new(1, "notes"));
    assert!(last.time.is_some());
}

/// Starts notes-server on `app`: the host, its address and its token.
fn start(app: &std::path::Path) -> (Host, String, String) {
    let host = Host(
        Command::new(env!("CARGO_BIN_EXE_notes-server"))
            .arg("--app")
            .arg(app)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let file = app.join("Logs/sauve-server.json");
    for _ in 0..400 {
        if let Ok(t) = std::fs::read_to_string(&file)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&t)
        {
            let addr = v["url"].as_str().unwrap().trim_start_matches("http://");
            return (
                host,
                addr.to_owned(),
                v["token"].as_str().unwrap().to_owned(),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("notes-server did not start");
}

/// Backs up through the control API and waits for backup `n` to end.
fn back_up(addr: &str, token: &str, n: u64) {
    assert_eq!(http(addr, "POST", "/v1/backup", Some(token), "").0, 202);
    for _ in 0..1200 {
        let (_, body) = http(addr, "GET", "/v1/status", Some(token), "");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["last_backup"]["number"].as_u64() == Some(n) {
            assert_eq!(v["last_backup"]["status"], 0, "{v}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("backup {n} did not end");
}

#[test]
fn a_rehearsal_applies_the_log_backups_to_the_restored_database_and_checks_it() {
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("App");
    std::fs::create_dir_all(&app).unwrap();
    let (_host, addr, token) = start(&app);
    for i in 0..3 {
        assert_eq!(
            http(&addr, "POST", "/notes", None, &format!("first {i}")).0,
            201
        );
    }
    back_up(&addr, &token, 1);
    for i in 0..2 {
        assert_eq!(
            http(&addr, "POST", "/notes", None, &format!("second {i}")).0,
            201
        );
    }
    back_up(&addr, &token, 2);
    // Set 1 holds three notes; its log backup brings the other two.
    let (code, body) = http(&addr, "POST", "/v1/rehearse", Some(&token), r#"{"set": 1}"#);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], 0, "{v}");
    assert_eq!(v["verdict"], "ok: 5 notes, to sequence 5", "{v}");
    assert_eq!(
        v["logBackups"],
        serde_json::json!(["Notes[0001].4BL"]),
        "{v}"
    );
    // A set damaged since: the rehearsal fails, names it, and alerts.
    let set = root.path().join("Backups/Notes[0002].4BK");
    let mut bytes = std::fs::read(&set).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&set, bytes).unwrap();
    let (code, body) = http(&addr, "POST", "/v1/rehearse", Some(&token), "");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_ne!(v["status"], 0, "{v}");
    assert!(v["error"].as_str().unwrap().contains("Notes[0002]"), "{v}");
    let (_, body) = http(&addr, "GET", "/v1/status", Some(&token), "");
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["alerts"][0]["kind"], "rehearsal-failed", "{s}");
    assert_eq!(s["rehearsal"]["proven"]["set"], "Notes[0001]", "{s}");
    // Bad requests name what is accepted.
    let (code, body) = http(
        &addr,
        "POST",
        "/v1/rehearse",
        Some(&token),
        r#"{"sett": 1}"#,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("accepted"), "{body}");
    let (code, body) = http(&addr, "POST", "/v1/rehearse", Some(&token), r#"{"set": 7}"#);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("(accepted: 0001, 0002)"), "{body}");
}
