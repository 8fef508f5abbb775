//! The engine driven through its handle, as a host app does.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use sauve_engine::{BackupEvent, BackupHandle, Engine, EngineOptions, Trigger};
use sauve_settings::AppLayout;
use sauve_status::Status;
use sauve_tests::SampleApp;

fn engine(app: &Path, options: EngineOptions) -> BackupHandle {
    Engine::start(AppLayout::discover(app).unwrap(), options).unwrap()
}

fn settings(app: &SampleApp, pairs: &[(&str, &str)]) {
    for (k, v) in pairs {
        let out = sauve_tests::sauve(&["settings", "set", k, v, "--app", &app.arg()]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_on_a_multi_thread_runtime_backs_up_and_gets_every_record() {
    let app = SampleApp::new(None).unwrap();
    settings(
        &app,
        &[
            ("General/DestinationFolder", "../bk/"),
            ("General/IncludeStructureFile", "True"),
        ],
    );
    let handle = engine(app.path(), EngineOptions::default());
    let mut events = handle.subscribe();
    // From a spawned task: the handle and its futures are Send.
    let h = handle.clone();
    let report = tokio::spawn(async move { h.backup(Trigger::Api).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.status, Status::Ok, "{:?}", report.errors);
    assert_eq!(report.number, 1);
    let bk = app.path().parent().unwrap().join("bk");
    assert_eq!(report.archives, [bk.join("App[0001].4BK")]);
    sauve_archive::verify(&report.archives[0], &mut sauve_archive::NoProgress).unwrap();
    // The destination sauve created is private.
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&bk).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "the destination sauve created");
    assert!(report.data_lock.is_some());
    // Journal, history, last-backup information.
    let journal = sauve_journal::read_all(&app.path().join("Logs")).unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].title, Some(sauve_journal::Title::FullBackup));
    assert_eq!(journal[0].status, Some(0));
    assert_eq!(
        app.history_in(&bk).highest_number(&app.history_key()),
        Some(1.into())
    );
    let last = handle.records().last_backup().await.unwrap();
    assert_eq!(
        (last.number, last.status, last.trigger),
        (1.into(), Status::Ok, Trigger::Api)
    );
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert!(
        matches!(seen.first(), Some(BackupEvent::Phase { .. })),
        "{seen:?}"
    );
    assert!(
        matches!(
            seen.last(),
            Some(BackupEvent::Finished {
                status: 0,
                number,
                ..
            }) if *number == 1
        ),
        "{seen:?}"
    );
    // The next backup continues the numbering.
    let second = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(second.number, 2);
    handle.shutdown().await;
}

/// The journal keeper writes each entry as `BackupJournalVerboseMode` said
/// at the last read of the settings (behaviour §11): brief while it is off,
/// whole again from the first run after it is turned on, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_is_brief_or_whole_as_the_settings_say_at_each_run() {
    let app = SampleApp::with_settings(&[("Advanced/BackupJournalVerboseMode", "False")]).unwrap();
    let handle = engine(app.path(), EngineOptions::default());
    assert_eq!(
        handle.backup(Trigger::Api).await.unwrap().status,
        Status::Ok
    );
    settings(&app, &[("Advanced/BackupJournalVerboseMode", "True")]);
    assert_eq!(
        handle.backup(Trigger::Api).await.unwrap().status,
        Status::Ok
    );
    handle.shutdown().await;
    let dir = sauve_journal::journal_dir(app.path());
    let (newest_first, _) = sauve_journal::read_newest(&dir, 0, 10).unwrap();
    let backups: Vec<_> = newest_first
        .iter()
        .rev()
        .filter(|e| e.raw_title == "Full Backup")
        .collect();
    assert_eq!(backups.len(), 2, "{newest_first:#?}");
    assert_eq!(backups[0].trigger, None, "brief: no trigger line");
    assert_eq!(backups[0].creating_archive, None, "brief: no archive line");
    assert!(backups[1].trigger.is_some(), "whole: {:#?}", backups[1]);
    assert!(
        backups[1].creating_archive.is_some(),
        "whole: {:#?}",
        backups[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_from_a_bucket_with_an_invalid_sauve_toml_says_why_and_reaches_no_store() {
    // The bucket is reached with sauve.toml as the engine's resolver read
    // it: not valid, the restore ends at once with its problem (1419),
    // naming the file, and no store is asked.
    let app = SampleApp::new(None).unwrap();
    std::fs::create_dir_all(app.path().join("Settings")).unwrap();
    std::fs::write(app.path().join("Settings/sauve.toml"), "[destination\n").unwrap();
    let handle = engine(app.path(), EngineOptions::default());
    let err = handle
        .restore(
            Path::new("s3://backups/app/App[0001].4BK"),
            sauve_archive::RestoreOptions::default(),
            Trigger::Api,
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Status::InvalidSettings, "{err}");
    assert!(err.to_string().contains("sauve.toml"), "{err}");
    handle.shutdown().await;
}
