//! Version-1 logs (behaviour §14.1, §20): the files in `tests/fixtures/log-v1`
//! were written by the release before log format version 2 and are read,
//! integrated, continued and archived by today's code.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use sauve_engine::{EngineOptions, Trigger};
use sauve_logfile::{Record, Tag, read_log};
use sauve_status::Status;
use sauve_tests::SampleApp;

const ID: [u8; 16] = *b"sample-data-0001";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/log-v1")
        .join(name)
}

fn v1_records() -> Vec<Record> {
    vec![
        Record::new(1, b"write 0".to_vec()),
        Record::new(2, Vec::new()),
        Record::new(3, vec![0xA5; 1000]),
    ]
}

#[test]
fn a_version_1_log_and_a_version_1_log_backup_read_and_integrate_as_they_were_written() {
    let log = read_log(&fixture("App.journal")).unwrap();
    assert_eq!(log.header.version, 1);
    assert_eq!(log.header.identity, ID);
    assert_eq!(log.tail, sauve_logfile::Tail::Clean);
    assert_eq!(
        log.records,
        [
            Record::new(4, b"write 3".to_vec()),
            Record::new(5, b"write 4".to_vec())
        ]
    );
    let out = tempfile::tempdir().unwrap();
    sauve_archive::verify(&fixture("App[0000].4BL"), &mut sauve_archive::NoProgress).unwrap();
    let archived = sauve_tests::archived_log(&fixture("App[0000].4BL"), out.path());
    assert_eq!(archived.header.version, 1);
    assert_eq!(archived.records, v1_records());

    // Integrated in order, the .4BL's then the current log's.
    let mut applied = Vec::new();
    let mut last = 0;
    for file in [out.path().join("Data/App.journal"), fixture("App.journal")] {
        let done = sauve_logfile::integrate(
            &file,
            ID,
            last,
            sauve_logfile::Until::End,
            &[],
            |r: &Record| {
                applied.push(r.clone());
                Ok::<(), String>(())
            },
        )
        .unwrap();
        last = done.last_applied;
    }
    assert_eq!(last, 5);
    assert_eq!(
        applied.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(applied.iter().all(|r| r.time.is_none() && r.tag.is_none()));

    // A time cannot place a record that has none: refused, naming it.
    let point: jiff::Timestamp = "2026-12-01T13:00:00Z".parse().unwrap();
    let err = sauve_logfile::integrate(
        &fixture("App.journal"),
        ID,
        3,
        sauve_logfile::Until::Time(point),
        &[],
        |_: &Record| Ok::<(), String>(()),
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("record 4 has no time"), "{err}");
    // A sequence can.
    let mut seqs = Vec::new();
    let done = sauve_logfile::integrate(
        &fixture("App.journal"),
        ID,
        3,
        sauve_logfile::Until::Sequence(4),
        &[],
        |r: &Record| {
            seqs.push(r.seq);
            Ok::<(), String>(())
        },
    )
    .unwrap();
    assert_eq!(seqs, [4]);
    assert!(done.stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_log_is_continued_then_cut_into_a_version_2_one_and_archived_readable() {
    let app = SampleApp::with_settings(&[("Advanced/SetNumber/Value", "5")]).unwrap();
    std::fs::copy(fixture("App.journal"), app.path().join("Data/App.journal")).unwrap();
    let (log, handle) = sauve_tests::engine_with_log(&app, ID, EngineOptions::default());
    // Appended as version 1 until the cut: one version per file.
    let tag = Tag::new(3, "notes").unwrap();
    assert_eq!(log.append_tagged(Some(&tag), b"write 5").unwrap(), 6);
    assert_eq!(log.header().version, 1);
    let first = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(first.status, Status::Ok, "{:?}", first.errors);
    // The new log is version 2: its records carry their time and tag.
    assert_eq!(log.header().version, 2);
    assert_eq!(log.append_tagged(Some(&tag), b"write 6").unwrap(), 7);
    let live = read_log(&app.path().join("Data/App.journal")).unwrap();
    assert_eq!(live.header.version, 2);
    assert_eq!(live.records.len(), 1);
    assert_eq!(live.records[0].tag.as_ref(), Some(&tag));
    assert!(live.records[0].time.is_some());

    // The .4BL of the version-1 records is a version-2 log, timeless.
    let out = tempfile::tempdir().unwrap();
    let bl = sauve_tests::archived_log(&app.root().join("Backups/App[0000].4BL"), out.path());
    assert_eq!(bl.header.version, 2);
    assert_eq!(
        bl.records,
        [
            Record::new(4, b"write 3".to_vec()),
            Record::new(5, b"write 4".to_vec()),
            Record::new(6, b"write 5".to_vec()),
        ]
    );
}

#[test]
fn sauve_log_show_lists_a_version_1_log_and_its_log_backup() {
    let out = sauve_tests::sauve(&["log", "show", &fixture("App.journal").display().to_string()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = out.stdout;
    assert!(text.contains("version 1 (records carry no time)"), "{text}");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() == 5 && w[0].parse::<u64>().is_ok())
        .collect();
    // Sequence, no time, no kind, no label, size.
    assert_eq!(
        rows,
        [["4", "-", "-", "-", "7"], ["5", "-", "-", "-", "7"]],
        "{text}"
    );
    let archived = sauve_tests::sauve(&[
        "log",
        "show",
        "--json",
        "--archive",
        &fixture("App[0000].4BL").display().to_string(),
    ]);
    assert_eq!(archived.code, 0, "{}", archived.stderr);
    let v: serde_json::Value = serde_json::from_str(&archived.stdout).unwrap();
    assert_eq!(v["header"]["version"], 1);
    let sizes: Vec<u64> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [7, 0, 1000]);
    assert!(v["records"][0]["time"].is_null());
}
