//! The log with each data backup (behaviour §14.2): cut under the data lock, the
//! new log's header in the .4BK, every pending segment in the .4BL.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use sauve_engine::{Engine, EngineOptions, Trigger};
use sauve_logfile::{Durability, LogWriter};
use sauve_settings::AppLayout;
use sauve_status::Status;
use sauve_tests::SampleApp;

const ID: [u8; 16] = *b"sample-data-0001";

fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    n.sort();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_data_backup_cuts_the_log_and_archives_its_records_in_a_4bl() {
    let app = SampleApp::with_settings(&[("Advanced/SetNumber/Value", "5")]).unwrap();
    let log = Arc::new(
        LogWriter::create(
            &app.path().join("Data/App.journal"),
            ID,
            1,
            Durability::EveryAppend,
        )
        .unwrap(),
    );
    for i in 0..3 {
        log.append(format!("write {i}").as_bytes()).unwrap();
    }
    let options = EngineOptions {
        log: Some(log.clone()),
        ..EngineOptions::default()
    };
    let handle = Engine::start(AppLayout::discover(app.path()).unwrap(), options).unwrap();
    let first = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(first.status, Status::Ok, "{:?}", first.errors);
    let bk = app.root().join("Backups");
    assert_eq!(
        names(&bk),
        ["App[0000].4BL", "App[0001].4BK", "backupHistory.json"]
    );
    // The host goes on writing into the new log, numbering continued.
    assert_eq!(log.append(b"write 3").unwrap(), 4);
    assert_eq!(log.append(b"write 4").unwrap(), 5);
    let second = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(second.status, Status::Ok, "{:?}", second.errors);
    assert_eq!(
        names(&bk),
        [
            "App[0000].4BL",
            "App[0001].4BK",
            "App[0001].4BL",
            "App[0002].4BK",
            "backupHistory.json"
        ]
    );
    // No pending segment is left once archived.
    let data = names(&app.path().join("Data"));
    assert_eq!(data, ["App.4DD", "App.journal"]);

    let out = tempfile::tempdir().unwrap();
    let bl0 = sauve_tests::archived_log(&bk.join("App[0000].4BL"), &out.path().join("bl0"));
    assert_eq!(
        bl0.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(bl0.header.identity, ID);
    let bl1 = sauve_tests::archived_log(&bk.join("App[0001].4BL"), &out.path().join("bl1"));
    assert_eq!(
        bl1.records
            .iter()
            .map(|r| r.payload.clone())
            .collect::<Vec<_>>(),
        [b"write 3".to_vec(), b"write 4".to_vec()]
    );
    // The .4BK holds the new log's header only, and the cut in its manifest.
    let bk2 = sauve_tests::archived_log(&bk.join("App[0002].4BK"), &out.path().join("bk2"));
    assert_eq!((bk2.header.first_sequence, bk2.records.len()), (6, 0));
    let (_, manifest) = sauve_archive::list(&bk.join("App[0002].4BK")).unwrap();
    assert_eq!(manifest.header.last_log_sequence, Some(5));
    // Journal, history and status name the log backup.
    let entry = sauve_journal::read_all(&app.path().join("Logs"))
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        entry.creating_log_backup,
        Some(bk.join("App[0001].4BL").display().to_string())
    );
    let last = handle.records().last_backup().await.unwrap();
    assert_eq!(last.log_archive, Some(bk.join("App[0001].4BL")));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_declared_but_missing_gives_1403() {
    let app = SampleApp::new(Some("defaults-modern.backup.4DSettings")).unwrap();
    let file = app.path().join("Settings/backup.4DSettings");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace(
            "<Advanced>",
            "<JournalFileEnabled>True</JournalFileEnabled>\n      <Advanced>",
        )
        .replace("<Item1>./Data/data.4DIndx</Item1>", "")
        .replace("<Item2>./Data/data.4DSyncData</Item2>", "")
        .replace("<Item3>./Data/data.4DSyncHeader</Item3>", "")
        // 4D's ./Backup/ is inside the app, which sauve refuses (1407).
        .replace(
            "<DestinationFolder>./Backup/</DestinationFolder>",
            "<DestinationFolder>../Backups/</DestinationFolder>",
        );
    std::fs::write(&file, text).unwrap();
    let handle = Engine::start(
        AppLayout::discover(app.path()).unwrap(),
        EngineOptions::default(),
    )
    .unwrap();
    let report = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(report.status, Status::LogFileMissing, "{:?}", report.errors);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4d_journal_that_is_not_a_sauve_log_is_archived_as_it_is() {
    let app = SampleApp::new(None).unwrap();
    std::fs::write(
        app.path().join("Data/App.journal"),
        b"4D's own journal bytes",
    )
    .unwrap();
    let handle = Engine::start(
        AppLayout::discover(app.path()).unwrap(),
        EngineOptions::default(),
    )
    .unwrap();
    let report = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(report.status, Status::Ok, "{:?}", report.errors);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("is not a sauve log")),
        "{:?}",
        report.notes
    );
    assert!(
        !names(&app.root().join("Backups"))
            .iter()
            .any(|n| n.ends_with(".4BL"))
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sauve_restore_names_the_logs_a_host_can_integrate() {
    let app = SampleApp::with_settings(&[]).unwrap();
    let (log, handle) = sauve_tests::engine_with_log(&app, ID, EngineOptions::default());
    let first = handle.backup(Trigger::Api).await.unwrap();
    log.append(b"after the backup").unwrap();
    handle.backup(Trigger::Api).await.unwrap();
    handle.shutdown().await;
    let out = sauve_tests::sauve(&["restore", first.archives[0].to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let bk = app.root().join("Backups");
    let expected = format!(
        "Logs to integrate after sequence 0, in order:\n  {}\n  {}\n",
        bk.join("App[0001].4BL").display(),
        app.path().join("Data/App.journal").display()
    );
    assert!(out.stdout.ends_with(&expected), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_record_counts_as_a_data_change_for_backup_if_data_change() {
    let app = SampleApp::with_settings(&[("Advanced/BackupIfDataChange", "True")]).unwrap();
    let (log, handle) = sauve_tests::engine_with_log(&app, ID, EngineOptions::default());
    let slot = |d: &str| -> jiff::Timestamp { format!("2025-03-{d}T02:00:00Z").parse().unwrap() };
    assert_eq!(handle.backup_scheduled(slot("14")).await.unwrap().number, 1);
    assert!(
        handle.backup_scheduled(slot("15")).await.unwrap().postponed,
        "nothing changed"
    );
    // A logged write without a data-file change yet is still a change.
    log.append(b"x=1").unwrap();
    let report = handle.backup_scheduled(slot("16")).await.unwrap();
    assert_eq!((report.postponed, report.number), (false, 2.into()));
    handle.shutdown().await;
}

/// A disk that refuses writes after `quota` bytes.
struct Full(std::fs::File, std::sync::Arc<std::sync::atomic::AtomicU64>);

impl std::io::Write for Full {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::sync::atomic::Ordering;
        let left = self.1.load(Ordering::Relaxed);
        if left == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
        }
        let n = (buf.len() as u64).min(left) as usize;
        self.1.fetch_sub(n as u64, Ordering::Relaxed);
        self.0.write(&buf[..n])
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl sauve_archive::PartFile for Full {
    fn sync(&mut self) -> std::io::Result<()> {
        self.0.sync_all()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_cut_by_a_failed_backup_are_kept_for_integration_and_the_next_log_backup() {
    let app = SampleApp::with_settings(&[("Advanced/CompressionRate", "None")]).unwrap();
    std::fs::write(app.path().join("Data/App.4DD"), vec![3u8; 2 << 20]).unwrap();
    let log_path = app.path().join("Data/App.journal");
    let quota = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let q = quota.clone();
    let options = EngineOptions {
        open_part: Some(Arc::new(move || {
            let q = q.clone();
            Box::new(move |p: &Path| {
                Ok(Box::new(Full(std::fs::File::create_new(p)?, q.clone()))
                    as Box<dyn sauve_archive::PartFile>)
            })
        })),
        ..EngineOptions::default()
    };
    let (log, handle) = sauve_tests::engine_with_log(&app, ID, options);
    let first = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(first.status, Status::Ok);
    log.append(b"a=1").unwrap();
    log.append(b"b=2").unwrap();
    // The next backup cuts the log, then the disk fills up.
    quota.store(1 << 20, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        handle.backup(Trigger::Api).await.unwrap().status,
        Status::DiskFull
    );
    assert!(
        names(&app.path().join("Data"))
            .iter()
            .any(|n| n.starts_with("App[0001-")),
        "the pending segment stays"
    );
    log.append(b"c=3").unwrap();
    // Restoring the first backup brings back every record, the pending ones included.
    let to = app.root().join("restored");
    let report = sauve_archive::restore(
        &first.archives[0],
        &sauve_archive::RestoreOptions {
            to: Some(to),
            force: false,
        },
        &mut sauve_archive::NoProgress,
    )
    .unwrap();
    let mut got = Vec::new();
    tokio::task::block_in_place(|| {
        handle.integrate_after_restore(
            &report,
            ID,
            Some(&log_path),
            sauve_engine::Until::End,
            |r| {
                got.push(String::from_utf8(r.payload.clone()).unwrap());
                Ok::<(), String>(())
            },
        )
    })
    .unwrap();
    assert_eq!(got, ["a=1", "b=2", "c=3"]);
    // The next successful backup archives the pending segment in its .4BL.
    quota.store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
    let third = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(third.status, Status::Ok, "{:?}", third.errors);
    assert!(
        !names(&app.path().join("Data"))
            .iter()
            .any(|n| n.starts_with("App[0001-")),
        "archived, then deleted"
    );
    handle.shutdown().await;
}
