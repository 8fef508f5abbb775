//! Several real `sauve` processes on one app and one destination at once:
//! backups in a loop from two processes, restores and verifies of the sets
//! already there, history and status readers, then the same beside a
//! `sauve run` taking scheduled and remote backups. Afterwards every run is
//! in the history exactly once, every journal entry is whole, no number is
//! used twice and every set verifies (issue 15).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers: failing here fails the test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sauve_history::{History, HistoryEntry, Operation};
use sauve_journal::Title;
use sauve_tests::SampleApp;
use sauve_tests::browser::{Server, sauve_binary};

/// One finished run as the process reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Finished {
    status: i32,
    number: u32,
}

fn sauve(args: &[&str]) -> std::process::Output {
    Command::new(sauve_binary())
        .args(args)
        .env("TZ", "UTC")
        .output()
        .unwrap_or_else(|e| panic!("cannot run sauve {args:?}: {e}"))
}

/// `sauve backup --json ARGS`: its one `finished` line.
fn backup(args: &[&str]) -> Finished {
    let mut all = vec!["backup", "--json"];
    all.extend_from_slice(args);
    let out = sauve(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let finished: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "finished")
        .collect();
    assert_eq!(
        finished.len(),
        1,
        "sauve {all:?}: one finished line expected\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = &finished[0];
    Finished {
        status: i32::try_from(f["status"].as_i64().unwrap_or(i64::MIN)).unwrap_or(i32::MIN),
        number: u32::try_from(f["number"].as_u64().unwrap_or(0)).unwrap_or(0),
    }
}

/// The committed `.4BK` sets of `dest`, by number.
fn committed_sets(dest: &Path) -> Vec<(u32, PathBuf)> {
    let mut sets: Vec<(u32, PathBuf)> = std::fs::read_dir(dest)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let a = sauve_archive::ArchiveName::parse(&name)?;
                    (!a.part && a.kind == sauve_archive::SetKind::Backup).then(|| {
                        (
                            a.number.get(),
                            dest.join(format!("{}[{:04}]", a.base, a.number)),
                        )
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    sets.sort();
    sets.dedup();
    sets
}

fn history(dest: &Path) -> Vec<HistoryEntry> {
    let text = sauve_history::read_json_text(dest)
        .unwrap()
        .expect("a backupHistory.json");
    let h = History::parse(&text).unwrap();
    h.keys()
        .flat_map(|k| h.entries(k).unwrap_or_default())
        .collect()
}

/// What the readers and the restore/verify loop saw.
#[derive(Default)]
struct Side {
    restores: usize,
    restores_refused: usize,
    verifies: usize,
    reads: usize,
}

/// Sets its flag when dropped: the side work ends even when the thread
/// that waits for it panics.
struct Done<'a>(&'a AtomicBool);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// `sauve backup --json ARGS` until `wanted` of its runs went through (a
/// run refused with 1402 while another holds the app is tried again after
/// a pause), at most `attempts` times; every run's finished line.
fn backups_until(args: &[&str], wanted: usize, attempts: usize) -> Vec<Finished> {
    let mut runs = Vec::new();
    while runs.iter().filter(|f: &&Finished| f.status == 0).count() < wanted
        && runs.len() < attempts
    {
        let f = backup(args);
        runs.push(f);
        std::thread::sleep(Duration::from_millis(if f.status == 0 { 20 } else { 150 }));
    }
    runs
}

/// Runs, until `done`: `sauve history --json` / `sauve status --json`,
/// verifies of the newest committed set and, with `restores`, restores of
/// it (each into a fresh folder).
fn side_work(app: &SampleApp, done: &AtomicBool, side: &Mutex<Side>, restores: bool) {
    let dest = app.root().join("Backups");
    let mut i = 0;
    while !done.load(Ordering::SeqCst) {
        i += 1;
        for (what, args) in [
            ("history", vec!["history", "--json", "--app", &app.arg()]),
            ("status", vec!["status", "--json", "--app", &app.arg()]),
        ] {
            let out = sauve(&args.iter().map(|s| s.as_ref()).collect::<Vec<&str>>());
            assert!(
                out.status.success(),
                "sauve {what} failed during the backups: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("sauve {what} --json printed no JSON ({e}):\n{text}"));
            side.lock().unwrap().reads += 1;
        }
        let Some((number, set)) = committed_sets(&dest).into_iter().next_back() else {
            continue;
        };
        let out = sauve(&["verify", &set.display().to_string()]);
        assert!(
            out.status.success(),
            "set {number} did not verify while other processes backed up: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        side.lock().unwrap().verifies += 1;
        if !restores {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let to = app.root().join(format!("restored-{i}"));
        let out = sauve(&[
            "restore",
            &set.display().to_string(),
            "--to",
            &to.display().to_string(),
            "--app",
            &app.arg(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            assert!(
                to.join("Data/App.4DD").is_file(),
                "restore {number} gave no data file"
            );
            side.lock().unwrap().restores += 1;
        } else {
            // A restore is refused while the app backs up (behaviour §13.1): said
            // so, and nothing was restored.
            assert!(
                stderr.contains("1402")
                    || stderr.contains("backing up")
                    || stderr.contains("backup"),
                "restore {number} failed: {stderr}"
            );
            assert!(
                !to.join("Data/App.4DD").exists(),
                "a refused restore wrote files"
            );
            side.lock().unwrap().restores_refused += 1;
        }
    }
}

/// The records after the runs: each successful run in the history exactly
/// once under the number it reported, no number twice, every journal entry
/// whole, as many journal entries of each kind as runs, every set sound.
fn check_records(app: &SampleApp, runs: &[Finished], restores: usize) {
    let dest = app.root().join("Backups");
    let entries = history(&dest);
    let backups: Vec<&HistoryEntry> = entries.iter().filter(|e| e.is_numbered_backup()).collect();
    let mut numbers = BTreeSet::new();
    for e in &backups {
        assert!(
            numbers.insert(e.backup_number.get()),
            "number {} is in the history twice",
            e.backup_number
        );
    }
    let ran: BTreeSet<u32> = runs
        .iter()
        .filter(|f| f.status == 0)
        .map(|f| f.number)
        .collect();
    assert_eq!(
        ran.len(),
        runs.iter().filter(|f| f.status == 0).count(),
        "two successful runs reported one number: {runs:?}"
    );
    assert_eq!(numbers, ran, "the history's numbers are the runs' numbers");
    for f in runs {
        assert!(
            [0, 1402].contains(&f.status),
            "a run ended with {} (expected 0, or 1402 while another ran)",
            f.status
        );
    }
    let restored = entries
        .iter()
        .filter(|e| e.operation() == Operation::Restore)
        .count();
    assert_eq!(restored, restores, "every restore is in the history once");

    let journal = sauve_journal::read_all(&sauve_journal::journal_dir(app.path())).unwrap();
    for e in &journal {
        assert!(
            e.title.is_some(),
            "a journal entry is not whole: {:?}",
            e.raw_title
        );
    }
    let titled = |t: Title| journal.iter().filter(|e| e.title == Some(t)).count();
    assert_eq!(
        titled(Title::FullBackup),
        ran.len(),
        "one journal entry per backup"
    );
    assert_eq!(
        titled(Title::Restore),
        restores,
        "one journal entry per restore"
    );

    let sets = committed_sets(&dest);
    assert_eq!(
        sets.iter().map(|(n, _)| *n).collect::<BTreeSet<_>>(),
        ran,
        "a set on disk for every successful run, and no other"
    );
    for (number, set) in sets {
        sauve_archive::verify(&set, &mut sauve_archive::NoProgress)
            .unwrap_or_else(|e| panic!("set {number} does not verify: {e}"));
    }
}

fn app() -> SampleApp {
    let app = SampleApp::with_settings(&[
        ("Advanced/SetNumber/Enable", "False"),
        ("Advanced/CompressionRate", "Fast"),
    ])
    .unwrap();
    // Enough data that a backup takes a while and the processes overlap.
    let block: Vec<u8> = (0..4 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(app.path().join("Data/App.4DD"), block).unwrap();
    app
}

#[test]
fn two_processes_backing_up_in_a_loop_beside_restores_verifies_and_readers_lose_no_record() {
    let app = app();
    let done = AtomicBool::new(false);
    let side = Mutex::new(Side::default());
    let runs = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        let _done = Done(&done);
        let backers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mine = backups_until(&["--app", &app.arg()], 4, 40);
                    runs.lock().unwrap().extend(mine);
                })
            })
            .collect();
        let reader = s.spawn(|| side_work(&app, &done, &side, true));
        for b in backers {
            b.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
        reader.join().unwrap();
    });
    let runs = runs.into_inner().unwrap();
    let side = side.into_inner().unwrap();
    eprintln!(
        "{} runs: {} ok, {} refused (1402); {} restores ({} refused), {} verifies, {} reads",
        runs.len(),
        runs.iter().filter(|f| f.status == 0).count(),
        runs.iter().filter(|f| f.status == 1402).count(),
        side.restores,
        side.restores_refused,
        side.verifies,
        side.reads
    );
    assert_eq!(
        runs.iter().filter(|f| f.status == 0).count(),
        8,
        "each process got 4 runs through: {runs:?}"
    );
    assert!(side.reads > 0 && side.verifies > 0, "the readers ran");
    check_records(&app, &runs, side.restores);
}

#[test]
fn scheduled_remote_and_forwarded_backups_of_a_running_server_beside_other_processes_lose_no_record()
 {
    let app = app();
    // An hourly grid through a time 12 s from now (the settings and the
    // server's start come first): a scheduled slot fires during the test.
    let slot = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(12);
    let at = jiff::tz::TimeZone::UTC
        .to_datetime(slot)
        .strftime("%H:%M:%S")
        .to_string();
    for (k, v) in [
        ("Scheduler/Frequency", "Hourly"),
        ("Scheduler/Hourly/Every", "1"),
        ("Scheduler/Hourly/StartingAt", at.as_str()),
    ] {
        let out = sauve(&["settings", "set", k, v, "--app", &app.arg()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let server = Server::start(app.path());
    let dest = app.root().join("Backups");
    let done = AtomicBool::new(false);
    let side = Mutex::new(Side::default());
    let runs = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        let _done = Done(&done);
        let remote = s.spawn(|| {
            let mine = backups_until(&["--app", &app.arg(), "--remote", &server.url], 3, 30);
            runs.lock().unwrap().extend(mine);
        });
        // Without --remote, a backup of an app served by `sauve run` is
        // forwarded to it.
        let forwarded = s.spawn(|| {
            let mine = backups_until(&["--app", &app.arg()], 3, 30);
            runs.lock().unwrap().extend(mine);
        });
        // Readers and verifiers beside them (restores are phase 1's: one
        // holds the app, and the slot would be postponed).
        let reader = s.spawn(|| side_work(&app, &done, &side, false));
        remote.join().unwrap();
        forwarded.join().unwrap();
        // Until the slot is handled: a scheduled backup, or "Backup
        // postponed" when another backup held the app at that moment.
        let deadline = Instant::now() + Duration::from_secs(60);
        while slot_handled(&app).is_none() {
            assert!(
                Instant::now() < deadline,
                "the scheduled slot was never handled"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        done.store(true, Ordering::SeqCst);
        reader.join().unwrap();
    });
    drop(server);
    let mut runs = runs.into_inner().unwrap();
    let side = side.into_inner().unwrap();
    let scheduled: Vec<Finished> = history(&dest)
        .iter()
        .filter(|e| e.is_numbered_backup() && e.trigger.as_deref() == Some("scheduled"))
        .map(|e| Finished {
            status: e.status.unwrap_or(i32::MIN),
            number: e.backup_number.get(),
        })
        .collect();
    let handled = slot_handled(&app);
    match handled {
        Some(Slot::Ran) => assert_eq!(scheduled.len(), 1, "one slot, one scheduled backup"),
        Some(Slot::Postponed) => assert!(scheduled.is_empty(), "a postponed slot ran too"),
        None => unreachable!("waited for above"),
    }
    // The scheduled run reported to nobody: it counts from the history.
    runs.extend(scheduled);
    eprintln!(
        "{} runs: {} ok, {} refused; scheduled slot {handled:?}; {} verifies, {} reads",
        runs.len(),
        runs.iter().filter(|f| f.status == 0).count(),
        runs.iter().filter(|f| f.status == 1402).count(),
        side.verifies,
        side.reads
    );
    assert!(
        runs.iter().filter(|f| f.status == 0).count() >= 6,
        "the remote and forwarded loops each got 3 runs through: {runs:?}"
    );
    check_records(&app, &runs, 0);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Ran,
    Postponed,
}

/// How the one scheduled slot of the test was handled, if it was yet: a
/// journal entry of a scheduled backup, or "Backup postponed".
fn slot_handled(app: &SampleApp) -> Option<Slot> {
    let journal = sauve_journal::read_all(&sauve_journal::journal_dir(app.path())).ok()?;
    let scheduled: Vec<Slot> = journal
        .iter()
        .filter(|e| e.trigger.as_deref() == Some("scheduled"))
        .filter_map(|e| match e.title {
            Some(Title::FullBackup) => Some(Slot::Ran),
            Some(Title::BackupPostponed) => Some(Slot::Postponed),
            _ => None,
        })
        .collect();
    assert!(
        scheduled.len() <= 1,
        "one slot handled twice: {scheduled:?}"
    );
    scheduled.first().copied()
}
