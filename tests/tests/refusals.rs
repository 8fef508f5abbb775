//! Admission and the records (behaviour §5 steps 1 and 14): every request ends
//! with exactly one report and one `finished` event, refusals included; a
//! restore or an integration keeps backups out; retention and record
//! writes that fail half-way are recorded and reported, never silent.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use sauve_engine::{BackupEvent, BackupHandle, Engine, EngineOptions, Trigger};
use sauve_journal::Title;
use sauve_settings::AppLayout;
use sauve_status::Status;
use sauve_tests::SampleApp;
use tokio::sync::broadcast;

fn engine(app: &SampleApp) -> BackupHandle {
    Engine::start(
        AppLayout::discover(app.path()).unwrap(),
        EngineOptions::default(),
    )
    .unwrap()
}

/// Another process's hold on the app: an advisory lock on
/// `APP/Logs/sauve.lock` through a file description of its own.
fn hold_app_lock(app: &SampleApp) -> std::fs::File {
    std::fs::create_dir_all(app.path().join("Logs")).unwrap();
    let f = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(app.path().join("Logs/sauve.lock"))
        .unwrap();
    f.try_lock().unwrap();
    f
}

/// Every event received so far.
fn drain(events: &mut broadcast::Receiver<BackupEvent>) -> Vec<BackupEvent> {
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    seen
}

fn finished(events: &[BackupEvent]) -> Vec<(u64, i32)> {
    events
        .iter()
        .filter_map(|e| match e {
            BackupEvent::Finished { run, status, .. } => Some((*run, *status)),
            _ => None,
        })
        .collect()
}

fn journal(app: &SampleApp) -> Vec<sauve_journal::Entry> {
    sauve_journal::read_all(&app.path().join("Logs")).unwrap()
}

fn backups(app: &SampleApp) -> PathBuf {
    app.root().join("Backups")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_refused_because_another_process_holds_the_app_ends_with_one_report_and_one_finished()
 {
    let app = SampleApp::with_settings(&[]).unwrap();
    let handle = engine(&app);
    let mut events = handle.subscribe();
    let held = hold_app_lock(&app);
    let report = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(
        (report.status, report.number),
        (Status::AlreadyRunning, 0.into())
    );
    assert!(
        report.errors[0].contains("another process"),
        "{:?}",
        report.errors
    );
    let seen = drain(&mut events);
    assert_eq!(finished(&seen), [(report.run, 1402)], "{seen:?}");
    // Refusals record nothing.
    assert!(journal(&app).is_empty());
    assert!(!backups(&app).join("backupHistory.json").exists());
    drop(held);
    // Free again: the next request runs, with a run id of its own.
    let next = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(next.status, Status::Ok);
    assert_ne!(next.run, report.run);
    handle.shutdown().await;
}

#[test]
fn sauve_backup_json_refused_by_another_process_still_prints_its_finished_line() {
    let app = SampleApp::with_settings(&[]).unwrap();
    let _held = hold_app_lock(&app);
    let out = sauve_tests::sauve(&["backup", "--json", "--app", &app.arg()]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let last: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().expect("a finished line")).unwrap();
    assert_eq!(
        last,
        serde_json::json!({"event": "finished", "status": 1402, "status_text": "A backup is already running", "number": 0, "archives": []})
    );
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.contains("\"finished\""))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_slot_refused_is_journaled_as_backup_postponed() {
    let app = SampleApp::with_settings(&[]).unwrap();
    let handle = engine(&app);
    let _held = hold_app_lock(&app);
    let slot: jiff::Timestamp = "2026-03-14T02:00:00Z".parse().unwrap();
    let report = handle.backup_scheduled(slot).await.unwrap();
    assert_eq!(report.status, Status::AlreadyRunning);
    assert!(report.postponed, "the slot is handled, not failed");
    let e = journal(&app).pop().unwrap();
    assert_eq!(e.title, Some(Title::BackupPostponed));
    assert!(e.reason.unwrap().contains("another process"));
    assert!(e.scheduled.is_some());
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_during_a_log_integration_get_1417_and_the_integration_is_unharmed() {
    let app = SampleApp::with_settings(&[("Advanced/CompressionRate", "None")]).unwrap();
    const ID: [u8; 16] = *b"refusal-test-001";
    let (log, handle) = sauve_tests::engine_with_log(&app, ID, EngineOptions::default());
    let first = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(first.status, Status::Ok);
    log.append(b"a=1").unwrap();
    log.append(b"b=2").unwrap();
    let report = sauve_archive::restore(
        &first.archives[0],
        &sauve_archive::RestoreOptions {
            to: Some(app.root().join("restored")),
            force: false,
        },
        &mut sauve_archive::NoProgress,
    )
    .unwrap();
    // The integration applies its first record, then waits for the test.
    let (applying, applied) = std::sync::mpsc::channel::<()>();
    let (go_on, wait) = std::sync::mpsc::channel::<()>();
    let h = handle.clone();
    let log_path = app.path().join("Data/App.journal");
    let integration = std::thread::spawn(move || {
        let mut got = Vec::new();
        let r = h.integrate_after_restore(
            &report,
            ID,
            Some(&log_path),
            sauve_engine::Until::End,
            |r| {
                if got.is_empty() {
                    applying.send(()).unwrap();
                    wait.recv().unwrap();
                }
                got.push(r.payload.clone());
                Ok::<(), String>(())
            },
        );
        (r.map(|i| i.logs.len()), got)
    });
    applied.recv().unwrap();
    let mut events = handle.subscribe();
    let refused = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(refused.status, Status::IntegrationRunning);
    assert_eq!(finished(&drain(&mut events)), [(refused.run, 1417)]);
    // A restore is refused too, with the same status.
    let err = handle
        .restore(
            &first.archives[0],
            sauve_archive::RestoreOptions {
                to: Some(app.root().join("again")),
                force: false,
            },
            Trigger::Api,
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Status::IntegrationRunning);
    go_on.send(()).unwrap();
    let (logs, got) = integration.join().unwrap();
    assert_eq!(logs.unwrap(), 1);
    assert_eq!(got, [b"a=1".to_vec(), b"b=2".to_vec()]);
    // Over: backups run again.
    assert_eq!(
        handle.backup(Trigger::Api).await.unwrap().status,
        Status::Ok
    );
    handle.shutdown().await;
}

/// The names of a folder's files, hidden lock files aside.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !(n.starts_with('.') && n.ends_with(".lock")))
        .collect();
    n.sort();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_that_fails_half_way_records_every_file_it_deleted_and_warns() {
    let app = SampleApp::with_settings(&[("Advanced/SetNumber/Value", "1")]).unwrap();
    let bk = backups(&app);
    std::fs::create_dir_all(&bk).unwrap();
    // Two old sets of another run; the log backup of set 3 cannot be deleted
    // (a folder stands under its name).
    for n in ["App[0001].4BK", "App[0002].4BK", "App[0001].4BL"] {
        std::fs::write(bk.join(n), b"old").unwrap();
    }
    std::fs::create_dir(bk.join("App[0002].4BL")).unwrap();
    std::fs::write(bk.join("App[0002].4BL/inside"), b"x").unwrap();
    std::fs::write(bk.join("App[0003].4BK"), b"old").unwrap();
    let handle = engine(&app);
    let mut events = handle.subscribe();
    let report = handle.backup(Trigger::Api).await.unwrap();
    // The backup itself succeeded: the status is unchanged, the run warns.
    assert_eq!(report.status, Status::Ok, "{:?}", report.errors);
    assert_eq!(report.number, 4);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("retention stopped")
            && report.warnings[0].contains("App[0002].4BL"),
        "{:?}",
        report.warnings
    );
    let warned = drain(&mut events)
        .iter()
        .any(|e| matches!(e, BackupEvent::Warning { message, .. } if message.contains("retention stopped")));
    assert!(warned, "the warning is an event too");
    // Sets 1 and 2 went, set 3's .4BK went before its .4BL failed.
    assert_eq!(
        names(&bk),
        ["App[0002].4BL", "App[0004].4BK", "backupHistory.json"]
    );
    let e = journal(&app).pop().unwrap();
    assert_eq!(
        e.deleted,
        [
            "App[0001].4BK",
            "App[0002].4BK",
            "App[0001].4BL",
            "App[0003].4BK"
        ]
        .iter()
        .map(|n| bk.join(n).display().to_string())
        .collect::<Vec<_>>()
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_be_written_is_a_warning_in_the_report_and_an_event() {
    let app = SampleApp::with_settings(&[]).unwrap();
    // A folder stands where the journal file goes.
    std::fs::create_dir_all(app.path().join("Logs/Backup Journal[001].txt/x")).unwrap();
    let handle = engine(&app);
    let mut events = handle.subscribe();
    let report = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(report.status, Status::Ok, "{:?}", report.errors);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.starts_with("the Backup Journal was not written")),
        "{:?}",
        report.warnings
    );
    let warnings: Vec<String> = drain(&mut events)
        .into_iter()
        .filter_map(|e| match e {
            BackupEvent::Warning { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(warnings, report.warnings);
    // The history still says what happened.
    assert_eq!(
        app.history_in(&backups(&app))
            .highest_number(&app.history_key()),
        Some(1.into())
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_continues_in_data_logs_where_the_app_keeps_it() {
    let app = SampleApp::with_settings(&[]).unwrap();
    let data_logs = app.path().join("Data/Logs");
    std::fs::create_dir_all(&data_logs).unwrap();
    let older =
        "*** Full Backup\nStarting : 2025-01-01 00:00:00\nStatus : 0 No detected error.\n\n";
    std::fs::write(data_logs.join("Backup Journal[002].txt"), older).unwrap();
    let handle = engine(&app);
    assert_eq!(
        handle.backup(Trigger::Api).await.unwrap().status,
        Status::Ok
    );
    handle.shutdown().await;
    let entries = sauve_journal::read_all(&data_logs).unwrap();
    assert_eq!(entries.len(), 2, "appended to the app's own journal");
    assert!(
        !app.path().join("Logs/Backup Journal[001].txt").exists(),
        "no second journal in Logs/"
    );
    // `sauve journal` reads it there.
    let out = sauve_tests::sauve(&["journal", "--app", &app.arg(), "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let shown: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(shown.as_array().unwrap().len(), 2);
}
