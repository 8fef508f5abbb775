//! `sauve log show` as a person uses it (behaviour §20): operations with their
//! local time, kind and label, filtered by time and kind, summed per kind
//! and per hour, from a log file, an app or a log backup.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use sauve_logfile::{Durability, LogClock, LogWriter, Tag};

const ID: [u8; 16] = *b"sample-data-0001";

/// A clock that gives 2026-12-01 13:50 UTC, then 10 minutes later at each call.
fn ten_minutes_apart() -> LogClock {
    let start: jiff::Timestamp = "2026-12-01T13:50:00Z".parse().unwrap();
    let calls = std::sync::atomic::AtomicI64::new(0);
    Arc::new(move || {
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        start + jiff::SignedDuration::from_mins(10 * n)
    })
}

/// Six operations, one every 10 minutes from 14:00 UTC (the header takes
/// the clock's first reading): notes (kind 1) and files (kind 2).
fn write_log(path: &Path) {
    let w = LogWriter::create_with_clock(path, ID, 1, Durability::EveryAppend, ten_minutes_apart())
        .unwrap();
    let notes = Tag::new(1, "notes").unwrap();
    let files = Tag::new(2, "files").unwrap();
    for (tag, body) in [
        (Some(&notes), "a"),
        (Some(&notes), "bb"),
        (Some(&files), "ccc"),
        (None, "dddd"),
        (Some(&notes), "eeeee"),
        (Some(&files), "ffffff"),
    ] {
        w.append_tagged(tag, body.as_bytes()).unwrap();
    }
}

/// `sauve ARGS` in Paris.
fn sauve(args: &[&str]) -> std::process::Output {
    std::process::Command::new(sauve_tests::browser::sauve_binary())
        .args(args)
        .env("TZ", "Europe/Paris")
        .output()
        .unwrap()
}

fn text(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn sequences(listing: &str) -> Vec<u64> {
    // A row: sequence, date, time, kind, label, size.
    listing
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() == 6)
        .filter_map(|w| w[0].parse().ok())
        .collect()
}

#[test]
fn operations_are_listed_with_their_local_time_kind_and_label_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("App.journal");
    write_log(&log);
    let file = log.display().to_string();
    let settings = sauve_tests::redact_app(dir.path());
    let all = text(&sauve(&["log", "show", &file]));
    settings.bind(|| insta::assert_snapshot!("log_show_listing", all));

    // 15:00 to 15:20 Paris time is 14:00 to 14:20 UTC: the first three.
    let window = text(&sauve(&[
        "log",
        "show",
        &file,
        "--since",
        "2026-12-01 15:00",
        "--until",
        "2026-12-01T14:20:00Z",
    ]));
    assert_eq!(sequences(&window), [1, 2, 3], "{window}");
    assert!(window.contains("3 of 6 records shown"), "{window}");
    let kind = text(&sauve(&["log", "show", &file, "--kind", "1"]));
    assert_eq!(sequences(&kind), [1, 2, 5], "{kind}");
    let since = text(&sauve(&[
        "log",
        "show",
        &file,
        "--since",
        "2026-12-01T15:40:00+01:00",
    ]));
    assert_eq!(sequences(&since), [5, 6], "{since}");

    let json = text(&sauve(&["log", "show", &file, "--json", "--kind", "2"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["header"]["version"], 2);
    assert_eq!(v["total"], 6);
    assert_eq!(
        v["records"],
        serde_json::json!([
            {"seq": 3, "offset": 42 + 34 + 35, "size": 3, "time": "2026-12-01T14:20:00Z", "kind": 2, "label": "files"},
            {"seq": 6, "offset": 42 + 34 + 35 + 36 + 32 + 38, "size": 6, "time": "2026-12-01T14:50:00Z", "kind": 2, "label": "files"},
        ])
    );
}

#[test]
fn the_summary_counts_operations_per_kind_and_per_hour() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("App.journal");
    write_log(&log);
    let file = log.display().to_string();
    let summary = text(&sauve(&["log", "show", &file, "--summary"]));
    let settings = sauve_tests::redact_app(dir.path());
    settings.bind(|| insta::assert_snapshot!("log_show_summary", summary));
    let json = text(&sauve(&[
        "log",
        "show",
        &file,
        "--summary",
        "--json",
        "--since",
        "2026-12-01 15:30",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["operations"], 3);
    assert_eq!(
        v["per_hour"],
        serde_json::json!([{"hour": "2026-12-01 15:00+01:00", "count": 3}])
    );
}

#[test]
fn an_apps_log_and_a_log_backup_are_shown_and_bad_times_are_named() {
    let app = sauve_tests::SampleApp::new(None).unwrap();
    write_log(&app.path().join("Data/App.journal"));
    let listing = text(&sauve(&["log", "show", "--app", &app.arg()]));
    assert_eq!(sequences(&listing), [1, 2, 3, 4, 5, 6], "{listing}");

    let bad = sauve(&["log", "show", "--app", &app.arg(), "--until", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--until: cannot read \"yesterday\" as a time (accepted: 2026-12-01 14:04:30 in the local time zone"),
        "{err}"
    );
    let reversed = sauve(&[
        "log",
        "show",
        "--app",
        &app.arg(),
        "--since",
        "2026-12-02 00:00",
        "--until",
        "2026-12-01 00:00",
    ]);
    assert_eq!(reversed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&reversed.stderr).contains("is after --until"));
    let none = sauve(&["log", "show"]);
    assert_eq!(none.status.code(), Some(2));
    let not_a_set = sauve(&[
        "log",
        "show",
        "--archive",
        &app.path().join("Data/App.4DD").display().to_string(),
    ]);
    assert_eq!(not_a_set.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not_a_set.stderr).contains("accepted: a base[NNNN].4BL file"));

    // A backup archives the log in a .4BL, which shows the same operations.
    let backup = sauve(&["backup", "--app", &app.arg()]);
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    let set = app.root().join("Backups/App[0000].4BL");
    let archived = text(&sauve(&[
        "log",
        "show",
        "--archive",
        &set.display().to_string(),
        "--kind",
        "1",
    ]));
    assert_eq!(sequences(&archived), [1, 2, 5], "{archived}");
    assert!(
        archived.contains("2026-12-01 15:00:00.000+01:00"),
        "{archived}"
    );
}

#[test]
fn operations_a_point_in_time_restore_set_aside_are_marked() {
    let app = sauve_tests::SampleApp::new(None).unwrap();
    let log = app.path().join("Data/App.journal");
    write_log(&log);
    // What a restore to 14:20 UTC, run at 15:00 when the log ended at
    // sequence 5, leaves in the app's state (the state keeper writes it).
    std::fs::create_dir_all(app.path().join("Logs")).unwrap();
    std::fs::write(
        sauve_engine::state_path(app.path()),
        r#"{"set_aside": [{"point": {"time": "2026-12-01T14:20:00Z"}, "through": 5, "after": 3, "at": "2026-12-01T15:00:00Z"}]}"#,
    )
    .unwrap();
    for args in [
        vec!["log", "show", "--app", &app.arg()],
        vec!["log", "show", log.to_str().unwrap()],
    ] {
        let listing = text(&sauve(&args));
        let marked: Vec<&str> = listing
            .lines()
            .filter(|l| l.ends_with("  set aside"))
            .collect();
        assert_eq!(marked.len(), 2, "{listing}");
        assert!(marked[0].trim_start().starts_with("4 "), "{listing}");
        assert!(marked[1].trim_start().starts_with("5 "), "{listing}");
        assert!(
            listing.contains("2 set aside: past the point of a point-in-time restore"),
            "{listing}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&text(&sauve(&[
        "log",
        "show",
        "--app",
        &app.arg(),
        "--json",
    ])))
    .unwrap();
    let aside: Vec<u64> = json["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["set_aside"] == true)
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(aside, [4, 5]);
}
