//! `sauve journal` as a user sees it.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sauve_journal::{Entry, Journal, Title};
use sauve_tests::{SampleApp, fixture, sauve};

#[test]
fn journal_shows_a_4d_journal_and_its_tail() {
    let app = SampleApp::new(None).unwrap();
    std::fs::create_dir_all(app.path().join("Logs")).unwrap();
    std::fs::copy(
        fixture("hourly-with-retention.Backup Journal[001].txt"),
        app.path().join("Logs/Backup Journal[001].txt"),
    )
    .unwrap();
    let out = sauve(&["journal", "--app", &app.arg(), "--tail", "2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!("journal_tail_4d", out.stdout);
    let json = sauve(&["journal", "--app", &app.arg(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 41);
    assert_eq!(v[0]["scheduled"]["raw"], "5/30/20 7:00 AM");
    assert_eq!(v[0]["scheduled"]["local"], "2020-05-30T07:00:00");
}

#[test]
fn journal_shows_what_sauve_wrote() {
    let app = SampleApp::new(None).unwrap();
    let mut j = Journal::open(&app.path().join("Logs")).unwrap();
    let mut e = Entry::new(Title::BackupStopped);
    e.trigger = Some("manual".into());
    e.status = Some(1406);
    j.append(&e, true).unwrap();
    let out = sauve(&["journal", "--app", &app.arg()]);
    assert_eq!(
        out.stdout,
        "*** Backup stopped\nTrigger : manual\nStatus : 1406 Stopped by the user\nError reported : 1406 Stopped by the user\n\n"
    );
    let empty = SampleApp::new(None).unwrap();
    let none = sauve(&["journal", "--app", &empty.arg()]);
    assert_eq!(none.code, 0);
    assert!(
        none.stderr.starts_with("no Backup Journal entries in "),
        "{}",
        none.stderr
    );
}

#[test]
fn log_show_lists_records_and_how_the_log_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.journal");
    let w = sauve_logfile::LogWriter::create(
        &path,
        [7; 16],
        10,
        sauve_logfile::Durability::EveryAppend,
    )
    .unwrap();
    w.append(b"first").unwrap();
    w.append(&[0u8; 300]).unwrap();
    drop(w);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[1, 2, 3]);
    std::fs::write(&path, bytes).unwrap();
    let out = sauve(&["log", "show", "--json", path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["header"]["first_sequence"], 10);
    let records = v["records"].as_array().unwrap();
    let framing: Vec<(u64, u64, u64)> = records
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap();
            (n("seq"), n("offset"), n("size"))
        })
        .collect();
    // Version 2: 28 bytes of framing per untagged record.
    assert_eq!(framing, [(10, 42, 5), (11, 75, 300)]);
    assert!(
        records
            .iter()
            .all(|r| r["time"].is_string() && r["kind"].is_null())
    );
    assert_eq!(v["tail"], serde_json::json!({"torn": 403}));
    let human = sauve(&["log", "show", path.to_str().unwrap()]);
    assert!(
        human
            .stdout
            .contains("2 records; end: torn record at byte 403"),
        "{}",
        human.stdout
    );
    let not_log = sauve(&["log", "show", "/etc/hostname"]);
    assert_eq!(not_log.code, 2);
}
