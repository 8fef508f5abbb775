//! Restore rehearsals (behaviour §22): a set restored into a sandbox, its
//! log backups integrated from the same source, the host's check, one
//! status recorded in the journal, the history and the state, an alert
//! when it fails, nothing left behind.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sauve_engine::{
    BackupHandle, EngineOptions, Pick, RehearsalError, RehearsalHost, RehearsalOptions, Sandbox,
    Trigger,
};
use sauve_logfile::LogWriter;
use sauve_status::Status;
use sauve_tests::SampleApp;
use sauve_tests::kv;

const ID: [u8; 16] = *b"rehearsal-data-1";

/// A model host: its data file is a kv store; each record `k=v` sets a key.
struct KvHost {
    map: kv::Map,
    last: u64,
    /// What the check expects to find.
    expected: kv::Map,
    /// Told each step, for the test to follow.
    seen: Arc<Mutex<Vec<String>>>,
}

impl RehearsalHost for KvHost {
    fn open(&mut self, sandbox: &Sandbox) -> Result<(), RehearsalError> {
        let data = sandbox.data.as_ref().ok_or("the set holds no data file")?;
        let (last, map) = kv::load(data).ok_or("the restored data file does not read")?;
        (self.last, self.map) = (last, map);
        self.seen.lock().unwrap().push(format!("open at {last}"));
        Ok(())
    }

    fn apply(&mut self, record: &sauve_logfile::Record) -> Result<(), RehearsalError> {
        kv::apply(&mut self.map, &record.payload)?;
        self.last = record.seq;
        Ok(())
    }

    fn check(&mut self, sandbox: &Sandbox) -> Result<String, RehearsalError> {
        assert!(
            sandbox.root.exists(),
            "the sandbox is there during the check"
        );
        if self.map != self.expected {
            return Err(format!("holds {:?}, not {:?}", self.map, self.expected).into());
        }
        Ok(format!(
            "{} keys, to sequence {}",
            self.map.len(),
            self.last
        ))
    }
}

/// An app whose host writes `k=v` records and saves its kv data file
/// before each backup: three backups, two records between each.
struct Written {
    app: SampleApp,
    log: Arc<LogWriter>,
    handle: BackupHandle,
    /// Every pair written, in order.
    pairs: Vec<(String, String)>,
}

impl Written {
    async fn new(toml: Option<&str>) -> Written {
        let app = SampleApp::new(None).unwrap();
        if let Some(toml) = toml {
            std::fs::create_dir_all(app.path().join("Settings")).unwrap();
            std::fs::write(app.path().join("Settings/sauve.toml"), toml).unwrap();
        }
        let (log, handle) = sauve_tests::engine_with_log(&app, ID, EngineOptions::default());
        let mut w = Written {
            app,
            log,
            handle,
            pairs: Vec::new(),
        };
        kv::save(&w.data(), 0, &kv::Map::new()).unwrap();
        for round in 0..3 {
            w.write(round * 2);
            w.write(round * 2 + 1);
            w.save();
            let r = w.handle.backup(Trigger::Api).await.unwrap();
            assert_eq!(r.status, Status::Ok, "{:?}", r.errors);
        }
        w.write(6);
        w
    }

    fn data(&self) -> PathBuf {
        self.app.path().join("Data/App.4DD")
    }

    fn write(&mut self, i: usize) {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        self.log.append(format!("{k}={v}").as_bytes()).unwrap();
        self.pairs.push((k, v));
    }

    /// The data file as the host keeps it: every pair so far.
    fn save(&self) {
        let map: kv::Map = self.pairs.iter().cloned().collect();
        kv::save(&self.data(), self.pairs.len() as u64, &map).unwrap();
    }

    /// Rehearses with `host`; the rehearsal, which the engine accepted.
    async fn rehearse(
        &self,
        options: RehearsalOptions,
        host: Box<KvHost>,
    ) -> sauve_engine::Rehearsal {
        self.handle
            .rehearsals()
            .rehearse_with(options, host)
            .await
            .unwrap()
    }

    fn backups(&self) -> PathBuf {
        self.app.root().join("Backups")
    }

    fn folder(&self) -> PathBuf {
        self.app.root().join("App.rehearsal")
    }

    /// The pairs of the first `n` records.
    fn expected(&self, n: usize) -> kv::Map {
        self.pairs.iter().take(n).cloned().collect()
    }

    fn host(&self, n: usize) -> (Box<KvHost>, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let host = KvHost {
            map: kv::Map::new(),
            last: 0,
            expected: self.expected(n),
            seen: seen.clone(),
        };
        (Box::new(host), seen)
    }
}

fn set(n: u32) -> Pick {
    Pick::Number(sauve_archive::BackupNumber::new(n))
}

fn options(pick: Pick) -> RehearsalOptions {
    RehearsalOptions {
        pick,
        trigger: Trigger::Api,
        ..RehearsalOptions::default()
    }
}

/// What is left in the rehearsal folder.
fn left_in(folder: &Path) -> Vec<String> {
    std::fs::read_dir(folder)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_restores_a_set_integrates_the_log_backups_after_it_and_records_the_proof() {
    let w = Written::new(None).await;
    // Set 1 holds records 1 and 2; the .4BL of sets 1 and 2 hold 3 to 6.
    let (host, seen) = w.host(6);
    let done = w.rehearse(options(set(1)), host).await;
    let r = &done.record;
    assert_eq!(r.status, Status::Ok, "{:?}", r.error);
    assert_eq!(r.set, "App[0001]");
    assert_eq!(done.logs, ["App[0001].4BL", "App[0002].4BL"]);
    assert_eq!((done.records, r.last_sequence), (4, Some(6)));
    assert_eq!(done.verdict.as_deref(), Some("6 keys, to sequence 6"));
    assert_eq!(*seen.lock().unwrap(), ["open at 2"]);
    // The proof is the newest record integrated, not the set's start.
    let (_, m1) = sauve_archive::list(&w.backups().join("App[0001]")).unwrap();
    assert!(r.point.unwrap() > m1.header.started_at);
    assert!(r.bytes > 0 && r.data_bytes > 0);
    assert!(
        left_in(&w.folder()).is_empty(),
        "{:?}",
        left_in(&w.folder())
    );
    // Recorded like 4D's other operations.
    let entry = sauve_journal::read_all(&w.app.path().join("Logs"))
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(entry.title, Some(sauve_journal::Title::RestoreRehearsal));
    assert_eq!(entry.status, Some(0));
    assert!(
        entry
            .operations
            .as_deref()
            .unwrap()
            .starts_with("4 records integrated from 2 log backups (to sequence 6)"),
        "{entry:?}"
    );
    let history = w.app.history_entries();
    let last = history.last().unwrap();
    assert_eq!(last.operation(), sauve_history::Operation::Rehearsal);
    assert_eq!(last.backup_number.get(), 1, "the set's number: none taken");
    assert!(!last.is_numbered_backup());
    let state = w.handle.records().state().await.unwrap();
    assert_eq!(state.proven.as_ref().unwrap().set, "App[0001]");
    // The next backup is still number 4.
    let next = w.handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(next.number.get(), 4);
    w.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_set_is_rehearsed_by_default_and_a_random_one_among_those_kept() {
    let w = Written::new(None).await;
    let (host, _) = w.host(6);
    let done = w.rehearse(options(Pick::Newest), host).await;
    assert_eq!(done.record.set, "App[0003]");
    assert_eq!(done.logs, Vec::<String>::new(), "no log backup after set 3");
    let mut picked = std::collections::BTreeSet::new();
    for _ in 0..24 {
        let (host, _) = w.host(6);
        let done = w.rehearse(options(Pick::Random), host).await;
        assert_eq!(done.record.status, Status::Ok, "{:?}", done.record.error);
        picked.insert(done.record.number.get());
    }
    assert!(picked.is_subset(&[1, 2, 3].into()), "{picked:?}");
    assert!(picked.len() > 1, "24 random picks gave only {picked:?}");
    // A random older set never moves the proven point back.
    let state = w.handle.records().state().await.unwrap();
    assert_eq!(state.proven.unwrap().set, "App[0003]");
    w.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_check_is_1420_alerted_journaled_and_leaves_no_sandbox() {
    let toml = "[rehearsal]\ncheck = [\"sh\", \"-c\", \"echo 'row 7 out of order in {data}' >&2; exit 3\"]\n";
    let w = Written::new(Some(toml)).await;
    let done = w
        .handle
        .rehearsals()
        .rehearse(options(Pick::Newest))
        .await
        .unwrap();
    let r = &done.record;
    assert_eq!(r.status, Status::RehearsalCheckFailed);
    let error = r.error.as_deref().unwrap();
    assert!(error.contains("rehearsal of App[0003]"), "{error}");
    assert!(
        error.contains("exited with 3: row 7 out of order in"),
        "{error}"
    );
    assert!(
        error.contains("App.rehearsal/.sauve-rehearsal-"),
        "the data's path: {error}"
    );
    assert!(left_in(&w.folder()).is_empty());
    let alerts = w.handle.alerts().open().await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].alert.kind,
        sauve_engine::AlertKind::RehearsalFailed
    );
    assert_eq!(alerts[0].alert.status, 1420);
    w.handle.alerts().delivered().await.unwrap();
    let entry = sauve_journal::read_all(&w.app.path().join("Logs"))
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(entry.title, Some(sauve_journal::Title::RestoreRehearsal));
    assert_eq!(entry.status, Some(1420));
    assert!(
        entry.errors.iter().any(|e| e.contains("exited with 3")),
        "{entry:?}"
    );
    // A check that holds clears the alert.
    let toml = "[rehearsal]\ncheck = [\"test\", \"-s\", \"{data}\"]\n";
    std::fs::write(w.app.path().join("Settings/sauve.toml"), toml).unwrap();
    let done = w
        .handle
        .rehearsals()
        .rehearse(options(Pick::Newest))
        .await
        .unwrap();
    assert_eq!(done.record.status, Status::Ok, "{:?}", done.record.error);
    assert!(w.handle.alerts().open().await.unwrap().is_empty());
    w.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_set_that_ends_after_the_point_asked_proves_nothing() {
    let w = Written::new(None).await;
    let (host, _) = w.host(6);
    let asked = RehearsalOptions {
        until: sauve_engine::Until::Sequence(1),
        ..options(set(3))
    };
    let done = w.rehearse(asked, host).await;
    let r = &done.record;
    assert_eq!(r.status, Status::ArchiveMissing, "{:?}", r.error);
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("rehearsal of App[0003]"),
        "{:?}",
        r.error
    );
    assert_eq!(r.point, None);
    assert!(left_in(&w.folder()).is_empty());
    w.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_log_backup_fails_the_rehearsal_naming_the_records_lost() {
    let w = Written::new(None).await;
    std::fs::remove_file(w.backups().join("App[0001].4BL")).unwrap();
    let (host, _) = w.host(6);
    let done = w.rehearse(options(set(1)), host).await;
    let r = &done.record;
    assert_eq!(r.status, Status::LogMismatch, "{:?}", r.error);
    let error = r.error.as_deref().unwrap();
    assert!(error.contains("App[0002].4BL"), "{error}");
    assert!(error.contains("records 3 to 4 are missing"), "{error}");
    assert_eq!(r.point, None, "nothing is proven");
    let state = w.handle.records().state().await.unwrap();
    assert!(state.proven.is_none());
    assert_eq!(state.last_rehearsal.unwrap().status, Status::LogMismatch);
    assert!(left_in(&w.folder()).is_empty());
    w.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_set_fails_the_rehearsal_naming_it_and_a_set_not_held_is_refused() {
    let w = Written::new(None).await;
    let file = w.backups().join("App[0002].4BK");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x5a;
    std::fs::write(&file, bytes).unwrap();
    let (host, _) = w.host(6);
    let done = w.rehearse(options(set(2)), host).await;
    let r = &done.record;
    assert!(
        matches!(r.status, Status::ArchiveCorrupt | Status::ArchiveMissing),
        "{:?}",
        r.status
    );
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("rehearsal of App[0002]"),
        "{:?}",
        r.error
    );
    assert!(left_in(&w.folder()).is_empty());
    // A number the source does not hold: refused, nothing recorded.
    let before = w.app.history_entries().len();
    let e = w
        .handle
        .rehearsals()
        .rehearse(options(set(9)))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Status::ArchiveMissing);
    assert!(
        e.to_string().contains("(accepted: 0001, 0002, 0003)"),
        "{e}"
    );
    assert_eq!(w.app.history_entries().len(), before);
    w.handle.shutdown().await;
}

/// A host whose open waits until the rehearsal is stopped.
struct Waiting(Arc<Mutex<bool>>);

impl RehearsalHost for Waiting {
    fn open(&mut self, sandbox: &Sandbox) -> Result<(), RehearsalError> {
        *self.0.lock().unwrap() = true;
        let began = Instant::now();
        while !sandbox.is_stopped() && began.elapsed() < Duration::from_secs(60) {
            std::thread::yield_now();
        }
        Ok(())
    }

    fn check(&mut self, _: &Sandbox) -> Result<String, RehearsalError> {
        Ok("ok".to_owned())
    }
}

/// A rehearsal of the newest set whose host waits, once it has opened the
/// restored data, until the rehearsal is stopped.
async fn waiting_rehearsal(
    w: &Written,
) -> tokio::task::JoinHandle<Result<sauve_engine::Rehearsal, sauve_engine::EngineError>> {
    let opened = Arc::new(Mutex::new(false));
    let host = Box::new(Waiting(opened.clone()));
    let handle = w.handle.clone();
    let rehearsal = tokio::spawn(async move {
        handle
            .rehearsals()
            .rehearse_with(options(Pick::Newest), host)
            .await
    });
    let began = Instant::now();
    while !*opened.lock().unwrap() {
        assert!(began.elapsed() < Duration::from_secs(60), "never opened");
        tokio::task::yield_now().await;
    }
    rehearsal
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_that_comes_due_stops_the_rehearsal_and_runs_after_it() {
    let w = Written::new(None).await;
    let rehearsal = waiting_rehearsal(&w).await;
    // The backup is never skipped: it waits for the stopped rehearsal.
    let backup = w.handle.backup(Trigger::Scheduled).await.unwrap();
    assert_eq!(backup.status, Status::Ok, "{:?}", backup.errors);
    assert_eq!(backup.number.get(), 4);
    let done = rehearsal.await.unwrap().unwrap();
    assert_eq!(done.record.status, Status::Stopped);
    assert!(done.record.preempted, "stopped by the backup");
    assert_eq!(
        done.record.error.as_deref(),
        Some("stopped: a backup came due")
    );
    assert!(left_in(&w.folder()).is_empty());
    // Recorded as stopped; no alert.
    assert!(w.handle.alerts().open().await.unwrap().is_empty());
    let entries = sauve_journal::read_all(&w.app.path().join("Logs")).unwrap();
    let stopped = entries
        .iter()
        .find(|e| e.title == Some(sauve_journal::Title::RestoreRehearsal))
        .unwrap();
    assert_eq!(stopped.status, Some(1406));
    w.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_s_stop_is_not_a_preemption_and_an_abandoned_admission_holds_nothing() {
    let w = Written::new(None).await;
    let rehearsal = waiting_rehearsal(&w).await;
    assert!(w.handle.stop().await.unwrap(), "Stop reaches the rehearsal");
    let done = rehearsal.await.unwrap().unwrap();
    assert_eq!(done.record.status, Status::Stopped);
    assert!(!done.record.preempted);
    // An asker that goes away before its admission comes back: the
    // admission ends with it, and a backup runs.
    for _ in 0..20 {
        let asked = w.handle.rehearsals().rehearse(options(Pick::Newest));
        tokio::select! {
            biased;
            _ = tokio::task::yield_now() => {}
            _ = asked => {}
        }
    }
    let backup = tokio::time::timeout(Duration::from_secs(120), w.handle.backup(Trigger::Api))
        .await
        .expect("a backup after abandoned admissions ends");
    let backup = backup.unwrap();
    assert!(
        matches!(backup.status, Status::Ok | Status::AlreadyRunning),
        "{:?}",
        backup.errors
    );
    let again = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let r = w.handle.backup(Trigger::Api).await.unwrap();
            if r.status == Status::Ok {
                return r;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a backup runs once the rehearsals dropped end");
    assert_eq!(again.status, Status::Ok);
    w.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_is_never_inside_the_app_and_a_dead_one_is_removed() {
    let w = Written::new(Some("[rehearsal]\nfolder = \"./Data/rehearse\"\n")).await;
    let e = w
        .handle
        .rehearsals()
        .rehearse(options(Pick::Newest))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Status::DestinationInvalid);
    assert!(e.to_string().contains("inside the app"), "{e}");
    // What a rehearsal killed mid-way left: removed by the next one.
    std::fs::write(w.app.path().join("Settings/sauve.toml"), "").unwrap();
    let dead = w.folder().join(".sauve-rehearsal-999999999-1/app/Data");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(dead.join("App.4DD"), b"half").unwrap();
    let done = w
        .handle
        .rehearsals()
        .rehearse(options(Pick::Newest))
        .await
        .unwrap();
    assert_eq!(done.record.status, Status::Ok, "{:?}", done.record.error);
    assert!(
        left_in(&w.folder()).is_empty(),
        "{:?}",
        left_in(&w.folder())
    );
    w.handle.shutdown().await;
}

/// Busy-yields (paused time stands still) until the state's last
/// rehearsal started at or after `after`.
async fn rehearsed_since(
    handle: &BackupHandle,
    after: jiff::Timestamp,
) -> sauve_engine::RehearsalRecord {
    let began = Instant::now();
    loop {
        let state = handle.records().state().await.unwrap();
        if let Some(r) = state.last_rehearsal.filter(|r| r.started >= after) {
            return r;
        }
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "no rehearsal ran"
        );
        tokio::task::yield_now().await;
    }
}

/// An app with `toml` as its sauve.toml and one backup, its engine on
/// paused time (call it inside a paused test runtime).
async fn backed_up_on_paused_time(
    toml: &str,
) -> (
    SampleApp,
    Arc<sauve_tests::paused::PausedClock>,
    BackupHandle,
) {
    use sauve_tests::paused::{PausedClock, frozen};
    let app = SampleApp::new(None).unwrap();
    std::fs::create_dir_all(app.path().join("Settings")).unwrap();
    std::fs::write(app.path().join("Settings/sauve.toml"), toml).unwrap();
    let clock = PausedClock::at("2026-03-02T08:00:00Z");
    let layout = sauve_settings::AppLayout::discover(app.path()).unwrap();
    let options = EngineOptions {
        clock: clock.clone(),
        ..EngineOptions::default()
    };
    let handle = sauve_engine::Engine::start(layout, options).unwrap();
    let h = handle.clone();
    let first = frozen(async move { h.backup(Trigger::Api).await.unwrap() }).await;
    assert_eq!(first.status, Status::Ok);
    (app, clock, handle)
}

#[tokio::test(start_paused = true)]
async fn sauve_run_s_scheduler_rehearses_every_period_as_scheduled() {
    use sauve_tests::paused::{looked_at, scheduler};
    let (app, clock, handle) = backed_up_on_paused_time(
        "[rehearsal]\nevery = \"daily\"\ncheck = [\"test\", \"-s\", \"{data}\"]\n",
    )
    .await;
    let started = sauve_engine::Clock::now(&*clock);
    let (mut view, task) = scheduler(&handle);
    // Never rehearsed: the first look starts one.
    let r = rehearsed_since(&handle, started).await;
    assert_eq!(r.status, Status::Ok, "{:?}", r.error);
    let entry = app.history_entries().pop().unwrap();
    assert_eq!(entry.operation(), sauve_history::Operation::Rehearsal);
    assert_eq!(entry.trigger.as_deref(), Some("scheduled"));
    // Not again within the day; again once it has passed.
    let half = r.started + jiff::SignedDuration::from_hours(12);
    looked_at(&mut view, half).await;
    let state = handle.records().state().await.unwrap();
    assert_eq!(state.last_rehearsal.unwrap().started, r.started);
    let day = r.started + jiff::SignedDuration::from_hours(24);
    looked_at(&mut view, day).await;
    let again = rehearsed_since(&handle, day).await;
    assert_eq!(again.status, Status::Ok, "{:?}", again.error);
    task.abort();
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_proof_older_than_proven_stale_after_raises_one_alert_until_a_rehearsal_proves_again() {
    use sauve_tests::paused::frozen;
    let (_app, _clock, handle) =
        backed_up_on_paused_time("[alerts]\nproven_stale_after = \"8d\"\n").await;
    let alerts = handle.alerts();
    // Never proven: watched from now.
    assert_eq!(handle.alerts().check_staleness().await.unwrap(), None);
    tokio::time::advance(Duration::from_secs(8 * 86_400 - 60)).await;
    assert_eq!(handle.alerts().check_staleness().await.unwrap(), None);
    tokio::time::advance(Duration::from_secs(120)).await;
    assert!(handle.alerts().check_staleness().await.unwrap().is_some());
    assert_eq!(
        handle.alerts().check_staleness().await.unwrap(),
        None,
        "raised once"
    );
    let open = alerts.open().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].alert.kind, sauve_engine::AlertKind::ProofStale);
    assert!(
        open[0].alert.errors[0].contains("no restore proven since"),
        "{:?}",
        open[0].alert.errors
    );
    // A rehearsal that proves the set clears it.
    let h = handle.clone();
    let done = frozen(async move {
        h.rehearsals()
            .rehearse(options(Pick::Newest))
            .await
            .unwrap()
    })
    .await;
    assert_eq!(done.record.status, Status::Ok, "{:?}", done.record.error);
    assert!(handle.alerts().open().await.unwrap().is_empty());
    // Nine days on, the proof is stale again: the set's point is old.
    tokio::time::advance(Duration::from_secs(9 * 86_400)).await;
    assert!(handle.alerts().check_staleness().await.unwrap().is_some());
    let open = handle.alerts().open().await.unwrap();
    assert!(
        open[0].alert.errors[0].contains("(set App[0001] from"),
        "{:?}",
        open[0].alert.errors
    );
    handle.shutdown().await;
}

/// The standard output of an in-process `sauve` that exited 0.
fn run_ok(out: &sauve_tests::Output) -> String {
    assert_eq!(
        out.code, 0,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    out.stdout.clone()
}

#[test]
fn sauve_rehearse_proves_the_newest_set_status_shows_it_and_a_live_server_runs_it() {
    let app = SampleApp::new(None).unwrap();
    let a = app.arg();
    run_ok(&sauve_tests::sauve(&["backup", "--app", &a]));
    let out = sauve_tests::sauve(&["rehearse", "--app", &a]);
    let text = run_ok(&out);
    assert!(text.starts_with("Rehearsal of App[0001] from "), "{text}");
    assert!(text.contains("0 No detected error."), "{text}");
    assert!(text.contains("proven recovery point: "), "{text}");
    let status = run_ok(&sauve_tests::sauve(&["status", "--app", &a]));
    assert!(
        status.contains("Last proven restore: set App[0001] from "),
        "{status}"
    );
    assert!(status.contains("recovery time about "), "{status}");
    let json: serde_json::Value = serde_json::from_str(&run_ok(&sauve_tests::sauve(&[
        "status", "--app", &a, "--json",
    ])))
    .unwrap();
    assert_eq!(json["rehearsal"]["state"], "proven");
    assert_eq!(json["rehearsal"]["proven"]["set"], "App[0001]");
    // Bad command lines: exit 2, naming what is accepted.
    let out = sauve_tests::sauve(&["rehearse", "--app", &a, "--set", "5"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("(accepted: 0001)"), "{}", out.stderr);
    let out = sauve_tests::sauve(&["rehearse", "--app", &a, "--set", "1", "--random"]);
    assert_eq!(out.code, 2, "{out:?}");
    let out = sauve_tests::sauve(&["rehearse", "--app", &a, "--offsite", "2"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("sauve.toml has no [[offsite]] entry"),
        "{}",
        out.stderr
    );
    // With a server running the app, the rehearsal runs there.
    let server = sauve_tests::browser::Server::start(app.path());
    let out = sauve_tests::sauve(&["rehearse", "--app", &a, "--json"]);
    let done: serde_json::Value = serde_json::from_str(&run_ok(&out)).unwrap();
    assert_eq!(done["status"], 0, "{done}");
    assert_eq!(done["set"], "App[0001]");
    let entry = app.history_entries().pop().unwrap();
    assert_eq!(entry.trigger.as_deref(), Some("remote"));
    drop(server);
}

#[test]
fn an_encrypted_bucket_is_not_provable_without_its_identity_and_proven_with_it_or_from_an_off_site_copy()
 {
    use sauve_tests::garage::{Garage, sauve};
    let garage = Garage::start(1);
    let app = SampleApp::with_settings(&[("General/DestinationFolder", "s3://sauve-test/sealed/")])
        .unwrap();
    let (key, recipient) = sauve_tests::garage::age_keygen(app.root(), "key.txt");
    std::fs::write(
        app.path().join("Settings/sauve.toml"),
        format!(
            "[destination]\n{}encrypt_to = [\"{recipient}\"]\n\n[[offsite]]\nurl = \"s3://sauve-test/copy/\"\n",
            garage.toml_lines()
        ),
    )
    .unwrap();
    let a = app.arg();
    let out = sauve(&garage, &["backup", "--app", &a]);
    assert!(out.status.success(), "{out:?}");
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let status_json = || -> serde_json::Value {
        let out = sauve(&garage, &["status", "--app", &a, "--json"]);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // Without the identity: recorded, shown, never alerted.
    let out = sauve(&garage, &["rehearse", "--app", &a]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not provable on this host"),
        "{}",
        text(&out)
    );
    let s = status_json();
    assert_eq!(s["rehearsal"]["state"], "not provable on this host", "{s}");
    assert_eq!(s["alerts"].as_array().unwrap().len(), 0, "{s}");
    // With it: proven from the bucket.
    let k = key.display().to_string();
    let out = sauve(&garage, &["rehearse", "--app", &a, "--identity", &k]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Rehearsal of App[0001] from s3://sauve-test/sealed/"),
        "{}",
        text(&out)
    );
    // From the off-site copy (its objects copied as stored: sealed), by its
    // place in sauve.toml.
    let out = sauve(
        &garage,
        &["rehearse", "--app", &a, "--offsite", "1", "--identity", &k],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("from s3://sauve-test/copy/"),
        "{}",
        text(&out)
    );
    let s = status_json();
    // The same point, proven again from the copy: the proof stands as it was.
    assert_eq!(
        s["rehearsal"]["last"]["source"], "s3://sauve-test/copy/",
        "{s}"
    );
    assert_eq!(
        s["rehearsal"]["proven"]["source"], "s3://sauve-test/sealed/",
        "{s}"
    );
    // The identity that reads the sets lost, another in its place: a
    // failure that reaches a person.
    let (other, _) = sauve_tests::garage::age_keygen(app.root(), "other.txt");
    let o = other.display().to_string();
    let out = sauve(&garage, &["rehearse", "--app", &a, "--identity", &o]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("rehearsal of App[0001] from s3://sauve-test/sealed/"),
        "{}",
        text(&out)
    );
    let s = status_json();
    assert_eq!(s["rehearsal"]["state"], "failed", "{s}");
    assert_eq!(s["alerts"][0]["kind"], "rehearsal-failed", "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_reaches_a_backup_that_waits_for_a_stopped_rehearsal() {
    let w = Written::new(None).await;
    let rehearsal = waiting_rehearsal(&w).await;
    let backup = {
        let handle = w.handle.clone();
        tokio::spawn(async move { handle.backup(Trigger::Api).await })
    };
    let began = Instant::now();
    while !w.handle.is_running().await.unwrap() {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the backup never came"
        );
        tokio::task::yield_now().await;
    }
    assert!(
        w.handle.stop().await.unwrap(),
        "a waiting backup is one to stop"
    );
    let report = tokio::time::timeout(Duration::from_secs(120), backup)
        .await
        .expect("the stopped backup ends")
        .unwrap()
        .unwrap();
    assert_eq!(report.status, Status::Stopped, "{:?}", report.errors);
    let done = rehearsal.await.unwrap().unwrap();
    assert_eq!(done.record.status, Status::Stopped);
    // And the engine takes the next one as usual.
    let next = w.handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(next.status, Status::Ok, "{:?}", next.errors);
    w.handle.shutdown().await;
}
