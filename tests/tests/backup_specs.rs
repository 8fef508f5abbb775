//! The backup run as behaviour §5 describes it, through the handle a host
//! app uses: status codes, stop, hooks, retention, numbering, admission.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use sauve_archive::PartFile;
use sauve_engine::{BackupHandle, BackupReport, Engine, EngineOptions, Hooks, Trigger};
use sauve_journal::Title;
use sauve_settings::AppLayout;
use sauve_status::Status;
use sauve_tests::{SampleApp, fixture};

fn app(pairs: &[(&str, &str)]) -> SampleApp {
    SampleApp::with_settings(pairs).unwrap()
}

fn engine(app: &SampleApp, options: EngineOptions) -> BackupHandle {
    Engine::start(AppLayout::discover(app.path()).unwrap(), options).unwrap()
}

fn backups(app: &SampleApp) -> PathBuf {
    app.root().join("Backups")
}

/// The files of a folder, but the hidden advisory lock files.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !(n.starts_with('.') && n.ends_with(".lock")))
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

fn journal(app: &SampleApp) -> Vec<sauve_journal::Entry> {
    sauve_journal::read_all(&app.path().join("Logs")).unwrap()
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15).fill(&mut bytes);
    bytes
}

/// A disk that takes the first `after` bytes of archive, then holds every
/// write until the test opens it: while the test acts, the backup is surely
/// in the middle of its copy, and no timer decides it. Dropping the gate
/// opens it, so a failing test never leaves the copy blocked.
struct Gate(Arc<GateShared>);

struct GateShared {
    after: u64,
    state: Mutex<GateState>,
    opened: Condvar,
    reached: tokio::sync::Notify,
}

#[derive(Default)]
struct GateState {
    written: u64,
    reached: bool,
    open: bool,
}

impl GateShared {
    fn state(&self) -> MutexGuard<'_, GateState> {
        // A panic elsewhere must not keep the gate from opening.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets `n` more bytes through, first waiting for the gate to open once
    /// `after` bytes went through.
    fn pass(&self, n: usize) {
        let mut state = self.state();
        if state.written >= self.after && !state.open {
            if !state.reached {
                state.reached = true;
                // Stores a permit if the test is not waiting yet.
                self.reached.notify_one();
            }
            state = self
                .opened
                .wait_while(state, |s| !s.open)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.written += n as u64;
    }

    fn open(&self) {
        self.state().open = true;
        self.opened.notify_all();
    }
}

impl Gate {
    fn after(bytes: u64) -> Gate {
        Gate(Arc::new(GateShared {
            after: bytes,
            state: Mutex::new(GateState::default()),
            opened: Condvar::new(),
            reached: tokio::sync::Notify::new(),
        }))
    }

    /// Engine options whose archive files are written through this gate.
    fn disk(&self) -> EngineOptions {
        let shared = self.0.clone();
        EngineOptions {
            open_part: Some(Arc::new(move || {
                let shared = shared.clone();
                Box::new(move |path: &Path| {
                    let f = std::fs::File::create_new(path)?;
                    Ok(Box::new(Gated(f, shared.clone())) as Box<dyn PartFile>)
                })
            })),
            ..EngineOptions::default()
        }
    }

    /// Waits until the backup is held at the gate, or fails the test if
    /// `run` ends first (it was too short to reach the gate, or failed).
    async fn reached(&self, run: &mut tokio::task::JoinHandle<BackupReport>) {
        tokio::select! {
            () = self.0.reached.notified() => {}
            ended = run => panic!("the backup ended before the gate: {ended:?}"),
        }
    }

    fn open(&self) {
        self.0.open();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// An archive file behind a [`Gate`].
struct Gated(std::fs::File, Arc<GateShared>);

impl Write for Gated {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.pass(buf.len());
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl PartFile for Gated {
    fn sync(&mut self) -> std::io::Result<()> {
        self.0.sync_all()
    }
}

/// A disk that fills up after `quota` bytes (ENOSPC).
struct Quota(std::fs::File, Arc<AtomicU64>);

impl Write for Quota {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
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

impl PartFile for Quota {
    fn sync(&mut self) -> std::io::Result<()> {
        self.0.sync_all()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_in_the_middle_of_a_large_copy_gives_1406_and_leaves_nothing() {
    let app = app(&[("Advanced/CompressionRate", "None")]);
    std::fs::write(app.path().join("Data/App.4DD"), random_bytes(48 << 20)).unwrap();
    let gate = Gate::after(1 << 20);
    let handle = engine(&app, gate.disk());
    let h = handle.clone();
    let mut run = tokio::spawn(async move { h.backup(Trigger::Manual).await.unwrap() });
    // Stop while the copy is held 1 MiB into the 48 MiB data file, then let
    // it go on: it must notice the stop and remove what it wrote.
    gate.reached(&mut run).await;
    assert!(handle.stop().await.unwrap());
    gate.open();
    let report = run.await.unwrap();
    assert_eq!(report.status, Status::Stopped);
    assert!(report.archives.is_empty());
    assert_eq!(
        names(&backups(&app)),
        ["backupHistory.json"],
        "no archive, no .part file"
    );
    let locks = handle.locks().snapshot();
    assert_eq!(
        (locks.backup, locks.waiting),
        ([None, None], 0),
        "every lock released"
    );
    let j = journal(&app);
    assert_eq!(j.last().unwrap().title, Some(Title::BackupStopped));
    assert_eq!(j.last().unwrap().status, Some(1406));
    let h = app.history_entries();
    assert_eq!(
        (h[0].status, h[0].backup_number, h[0].backup_path.as_str()),
        (Some(1406), 0.into(), "")
    );
    assert_eq!(
        handle.records().last_backup().await.unwrap().status,
        Status::Stopped
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_attachment_gives_a_partial_backup_with_status_minus_43() {
    let app = app(&[
        ("General/IncludesFiles/Item1", "./Data/App.4DIndx"),
        ("General/IncludesFiles/Item2", "./Data/App.4DSyncData"),
    ]);
    std::fs::write(app.path().join("Data/App.4DIndx"), b"index").unwrap();
    let handle = engine(&app, EngineOptions::default());
    let report = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(report.status, Status::AttachmentNotFound);
    assert_eq!(report.number, 1);
    sauve_archive::verify(&report.archives[0], &mut sauve_archive::NoProgress).unwrap();
    let entry = journal(&app).pop().unwrap();
    assert_eq!(entry.title, Some(Title::FullBackup));
    let found: Vec<Option<bool>> = entry.attachments.iter().map(|a| a.found).collect();
    assert_eq!(found, [Some(true), Some(false)]);
    let text = entry.render(true);
    assert!(text.contains("App.4DSyncData [NOT FOUND]"), "{text}");
    assert!(text.contains("Status : -43 Attachment not found"), "{text}");
    let h = app.history_entries();
    assert_eq!(
        h[0].attachments.iter().map(|a| a.found).collect::<Vec<_>>(),
        [true, false]
    );
    assert_eq!(h[0].status, Some(-43));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_inside_the_app_gives_1407_and_its_sets_stay_readable() {
    // 4D's new-project default, ./Backup/, is inside the app: a copy that
    // dies with the app's disk, and that each backup would walk into.
    let app = SampleApp::new(Some("defaults-modern.backup.4DSettings")).unwrap();
    let handle = engine(&app, EngineOptions::default());
    let report = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(
        report.status,
        Status::DestinationInvalid,
        "{:?}",
        report.errors
    );
    assert!(
        report.errors[0].contains("is inside the app folder")
            && report.errors[0].contains("accepted: a folder outside the app"),
        "{:?}",
        report.errors
    );
    assert!(!app.path().join("Backup").exists(), "nothing written there");
    // What only reads still works: the history of such a destination.
    assert!(handle.records().history().await.unwrap().is_empty());
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncreatable_destination_gives_1407() {
    // A file stands where the destination's folder goes.
    let app = app(&[("General/DestinationFolder", "../blocker/backups/")]);
    std::fs::write(app.root().join("blocker"), b"a file").unwrap();
    let handle = engine(&app, EngineOptions::default());
    let report = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(report.status, Status::DestinationInvalid);
    assert!(
        report.errors[0].contains("cannot create"),
        "{:?}",
        report.errors
    );
    let entry = journal(&app).pop().unwrap();
    assert_eq!(entry.title, Some(Title::FullBackupAborted));
    assert_eq!(entry.status, Some(1407));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_destination_gives_minus_61() {
    // sysfs refuses new files even to root: a destination that exists but
    // cannot be written, whoever runs the tests.
    let app = app(&[("General/DestinationFolder", "/sys/kernel/")]);
    let handle = engine(&app, EngineOptions::default());
    let report = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(
        report.status,
        Status::WritePermissionDenied,
        "{:?}",
        report.errors
    );
    assert_eq!(journal(&app).pop().unwrap().status, Some(-61));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gives_minus_34_and_removes_partial_files() {
    let app = app(&[("Advanced/CompressionRate", "None")]);
    std::fs::write(app.path().join("Data/App.4DD"), random_bytes(4 << 20)).unwrap();
    let quota = Arc::new(AtomicU64::new(1 << 20));
    let q = quota.clone();
    let options = EngineOptions {
        open_part: Some(Arc::new(move || {
            let q = q.clone();
            Box::new(move |path: &Path| {
                let f = std::fs::File::create_new(path)?;
                Ok(Box::new(Quota(f, q.clone())) as Box<dyn PartFile>)
            })
        })),
        ..EngineOptions::default()
    };
    let handle = engine(&app, options);
    let report = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(report.status, Status::DiskFull, "{:?}", report.errors);
    assert_eq!(
        names(&backups(&app)),
        ["backupHistory.json"],
        "partial files removed"
    );
    assert_eq!(journal(&app).pop().unwrap().status, Some(-34));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_startup_hook_returning_7_refuses_and_the_shutdown_hook_learns_7() {
    let app = app(&[]);
    let seen = Arc::new(AtomicI32::new(i32::MIN));
    let s = seen.clone();
    let options = EngineOptions {
        hooks: Hooks {
            on_startup: Some(Arc::new(|_| Box::pin(async { 7 }))),
            on_shutdown: Some(Arc::new(move |info| {
                let s = s.clone();
                Box::pin(async move {
                    s.store(info.status.code(), Ordering::SeqCst);
                    0
                })
            })),
        },
        ..EngineOptions::default()
    };
    let handle = engine(&app, options);
    let report = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(report.status.code(), 7);
    assert!(report.archives.is_empty());
    assert_eq!(seen.load(Ordering::SeqCst), 7);
    assert!(!backups(&app).exists() || names(&backups(&app)).iter().all(|n| !n.ends_with(".4BK")));
    let entry = journal(&app).pop().unwrap();
    assert_eq!(
        (entry.title, entry.status),
        (Some(Title::FullBackupAborted), Some(7))
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_3_sets_over_6_backups_after_and_before_and_spares_renamed_archives() {
    for before in ["False", "True"] {
        let app = app(&[
            ("Advanced/SetNumber/Value", "3"),
            ("Advanced/EraseOldBackupBefore", before),
        ]);
        let handle = engine(&app, EngineOptions::default());
        let first = handle.backup(Trigger::Api).await.unwrap();
        // A copy under another name is not this app's set: never touched.
        let renamed = backups(&app).join("App[0001] kept by hand.4BK");
        std::fs::copy(&first.archives[0], &renamed).unwrap();
        for _ in 0..5 {
            assert_eq!(
                handle.backup(Trigger::Api).await.unwrap().status,
                Status::Ok
            );
        }
        let sets: Vec<String> = names(&backups(&app))
            .into_iter()
            .filter(|n| n.starts_with("App[") && n.ends_with("].4BK"))
            .collect();
        assert_eq!(
            sets,
            ["App[0004].4BK", "App[0005].4BK", "App[0006].4BK"],
            "before={before}"
        );
        assert!(renamed.exists());
        let deleted: Vec<String> = journal(&app)
            .iter()
            .flat_map(|e| e.deleted.clone())
            .collect();
        assert_eq!(deleted.len(), 3, "{deleted:?}");
        let numbers: Vec<u32> = app
            .history_entries()
            .iter()
            .map(|e| e.backup_number.get())
            .collect();
        assert_eq!(
            numbers,
            [4, 5, 6],
            "history entries of deleted sets are removed"
        );
        handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbering_continues_a_4d_history_and_resets_without_overwriting() {
    let app = app(&[]);
    std::fs::create_dir_all(backups(&app)).unwrap();
    // The 4D fixture, its first structure key moved to this app's project.
    let key = app.history_key();
    let text = std::fs::read_to_string(fixture("two-structures.backupHistory.json")).unwrap().replacen(
        "Macintosh HD:Users:rolandlannuzel:Documents:Github:HDI:4D V20 R4:HDI_NewDateTimeFormats:Project:HDI_NewDateTimeFormats.4DProject\"",
        &format!("{key}\""),
        1,
    );
    std::fs::write(backups(&app).join("backupHistory.json"), text).unwrap();
    let handle = engine(&app, EngineOptions::default());
    let report = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(report.number, 2, "{:?}", report.errors);
    let saved = std::fs::read_to_string(backups(&app).join("backupHistory.json")).unwrap();
    assert!(
        saved.contains("TinySur:Users:rl4d"),
        "the other structure's key is kept"
    );
    assert_eq!(handle.backup(Trigger::Api).await.unwrap().number, 3);

    std::fs::remove_file(backups(&app).join("backupHistory.json")).unwrap();
    let after_reset = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(
        after_reset.number, 1,
        "a deleted history restarts at 1 (no [0001] here)"
    );
    let next = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(
        next.number, 4,
        "2 exists: moved past the highest existing archive, [0003]"
    );
    let note = journal(&app).pop().unwrap().notes;
    assert!(
        note.iter()
            .any(|n| n.contains("App[0002].4BK already exists") && n.contains("0004")),
        "{note:?}"
    );
    // Retention (3 sets by default) took the lowest, [0001]; nothing was overwritten.
    let sets: Vec<String> = names(&backups(&app))
        .into_iter()
        .filter(|n| n.ends_with(".4BK"))
        .collect();
    assert_eq!(sets, ["App[0002].4BK", "App[0003].4BK", "App[0004].4BK"]);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_backup_while_one_runs_gets_1402_in_process_and_across_processes() {
    let app = app(&[("Advanced/CompressionRate", "None")]);
    std::fs::write(app.path().join("Data/App.4DD"), random_bytes(8 << 20)).unwrap();
    let gate = Gate::after(1 << 20);
    let handle = engine(&app, gate.disk());
    let h = handle.clone();
    let mut first = tokio::spawn(async move { h.backup(Trigger::Api).await.unwrap() });
    // The first backup is held in its copy while the second one asks.
    gate.reached(&mut first).await;
    let second = handle.backup(Trigger::Manual).await.unwrap();
    assert_eq!(second.status, Status::AlreadyRunning);
    gate.open();
    assert_eq!(first.await.unwrap().status, Status::Ok);
    assert_eq!(journal(&app).len(), 1, "the refusal recorded nothing");

    // Another process holds the app's advisory lock.
    let lock = std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(app.path().join("Logs/sauve.lock"))
        .unwrap();
    let other = std::thread::spawn(move || {
        lock.lock().unwrap();
        lock
    })
    .join()
    .unwrap();
    let refused = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(
        refused.status,
        Status::AlreadyRunning,
        "{:?}",
        refused.errors
    );
    drop(other);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_holding_a_write_guard_gets_1404_instead_of_waiting_for_itself() {
    let app = app(&[]);
    let handle = engine(&app, EngineOptions::default());
    let guard = handle.locks().write(sauve_locking::Kind::Data).await;
    let report = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(report.status, Status::CallerHoldsWriteGuard);
    // Likewise from a spawned task, as a host's request handler would be.
    let h = handle.clone();
    let in_task = tokio::spawn(async move {
        let _g = h.locks().write(sauve_locking::Kind::Data).await;
        h.backup(Trigger::Api).await.unwrap().status
    });
    assert_eq!(in_task.await.unwrap(), Status::CallerHoldsWriteGuard);
    drop(guard);
    assert_eq!(
        handle.backup(Trigger::Api).await.unwrap().status,
        Status::Ok
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_data_postpones_a_scheduled_backup_without_error() {
    let app = app(&[
        ("Advanced/BackupIfDataChange", "True"),
        ("Scheduler/Frequency", "Daily"),
        ("Scheduler/Daily/Hour", "02:00:00"),
    ]);
    let handle = engine(&app, EngineOptions::default());
    let slot: jiff::Timestamp = "2025-03-14T02:00:00Z".parse().unwrap();
    let first = handle.backup_scheduled(slot).await.unwrap();
    assert_eq!(
        (first.status, first.number, first.postponed),
        (Status::Ok, 1.into(), false)
    );
    let second = handle
        .backup_scheduled("2025-03-15T02:00:00Z".parse().unwrap())
        .await
        .unwrap();
    assert!(second.postponed);
    assert_eq!((second.status, second.number), (Status::Ok, 0.into()));
    let entry = journal(&app).pop().unwrap();
    assert_eq!(entry.title, Some(Title::BackupPostponed));
    assert_eq!(
        entry.reason.as_deref(),
        Some("data unchanged since backup 1")
    );
    assert!(entry.next_scheduled.is_some() && entry.scheduled.is_some());
    assert_eq!(
        app.history_entries().len(),
        1,
        "no history entry for a postponed slot"
    );
    assert_eq!(
        handle.records().last_backup().await.unwrap().number,
        1,
        "last-backup information untouched"
    );
    // Manual backups are never postponed; changed data is backed up.
    assert_eq!(handle.backup(Trigger::Manual).await.unwrap().number, 2);
    std::fs::write(app.path().join("Data/App.4DD"), b"changed data").unwrap();
    let third = handle
        .backup_scheduled("2025-03-16T02:00:00Z".parse().unwrap())
        .await
        .unwrap();
    assert_eq!((third.postponed, third.number), (false, 3.into()));
    handle.shutdown().await;
}
