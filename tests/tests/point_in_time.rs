//! Stop points (behaviour §20): a model host whose writes carry increasing times,
//! backed up now and then; any backup restored and integrated up to a time
//! or a sequence equals the model's state at that point, a point before the
//! set's end is refused naming that end, and a second integration goes on
//! from where the first stopped.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use proptest::prelude::*;
use sauve_engine::{Clock, Engine, EngineOptions, Trigger, Until};
use sauve_locking::Kind;
use sauve_logfile::{Durability, LogWriter};
use sauve_settings::AppLayout;
use sauve_status::Status;
use sauve_tests::SampleApp;
use sauve_tests::kv::{Map, apply, load, save};

const ID: [u8; 16] = *b"kv-point-data-01";

/// A clock the test moves: the engine's and the log writer's.
struct Manual(AtomicI64);

impl Manual {
    fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms * 1000, Ordering::SeqCst);
    }
}

impl Clock for Manual {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::from_microsecond(self.0.load(Ordering::SeqCst)).unwrap()
    }

    fn zone(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::UTC
    }
}

/// The app's log and engine on one manual clock, starting at
/// 1_780_000_000 s (2026-05-28 20:26:40 UTC).
fn timed_engine(app: &SampleApp) -> (Arc<Manual>, Arc<LogWriter>, sauve_engine::BackupHandle) {
    let clock = Arc::new(Manual(AtomicI64::new(1_780_000_000_000_000)));
    let log_clock = Arc::clone(&clock);
    let log = Arc::new(
        LogWriter::create_with_clock(
            &app.path().join("Data/App.journal"),
            ID,
            1,
            Durability::EveryAppend,
            Arc::new(move || log_clock.now()),
        )
        .unwrap(),
    );
    let options = EngineOptions {
        log: Some(log.clone()),
        clock: clock.clone(),
        ..EngineOptions::default()
    };
    let handle = Engine::start(AppLayout::discover(app.path()).unwrap(), options).unwrap();
    (clock, log, handle)
}

/// [`timed_engine`] on the model host's empty data, backed up once: the
/// clock, the log, the engine and the first set.
async fn backed_up(
    app: &SampleApp,
) -> (
    Arc<Manual>,
    Arc<LogWriter>,
    sauve_engine::BackupHandle,
    std::path::PathBuf,
) {
    let (clock, log, handle) = timed_engine(app);
    save(&app.path().join("Data/App.4DD"), 0, &Map::new()).unwrap();
    let first = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(first.status, Status::Ok, "{:?}", first.errors);
    let set = first.archives[0].clone();
    (clock, log, handle, set)
}

#[derive(Clone, Debug)]
enum Op {
    /// A key, a value, and the milliseconds since the previous operation.
    Write(u8, u16, i64),
    Backup,
}

/// Where to stop: at a write's time (plus a µs offset within its gap), or
/// at a write's sequence.
#[derive(Clone, Debug)]
enum Point {
    Time(prop::sample::Index, i64),
    Sequence(prop::sample::Index),
}

/// What a model host did: each write's (sequence, time, state after it),
/// each backup's set, and the last state.
struct Played {
    writes: Vec<(u64, jiff::Timestamp, Map)>,
    backups: Vec<std::path::PathBuf>,
    map: Map,
}

/// Runs `ops` after a first backup: each write logged with the manual
/// clock moved on, applied and saved; each backup a second later.
async fn play(
    app: &SampleApp,
    clock: &Manual,
    log: &LogWriter,
    handle: &sauve_engine::BackupHandle,
    ops: Vec<Op>,
) -> Played {
    let data = app.path().join("Data/App.4DD");
    let mut played = Played {
        writes: Vec::new(),
        backups: Vec::new(),
        map: Map::new(),
    };
    save(&data, 0, &played.map).unwrap();
    for op in std::iter::once(Op::Backup).chain(ops) {
        match op {
            Op::Write(k, v, ms) => {
                clock.advance_ms(ms);
                let _guard = handle.locks().write(Kind::Data).await;
                let seq = log.append(format!("{k}={v}").as_bytes()).unwrap();
                played.map.insert(k.to_string(), v.to_string());
                save(&data, seq, &played.map).unwrap();
                played.writes.push((seq, clock.now(), played.map.clone()));
            }
            Op::Backup => {
                clock.advance_ms(1000);
                let report = handle.backup(Trigger::Api).await.unwrap();
                assert_eq!(report.status, Status::Ok, "{:?}", report.errors);
                played.backups.push(report.archives[0].clone());
            }
        }
    }
    played
}

impl Played {
    /// The stop point `point` picks among the writes, and the state there.
    fn at(&self, point: &Point) -> (Until, Map) {
        let writes = &self.writes;
        let start = jiff::Timestamp::from_microsecond(1_780_000_000_000_000).unwrap();
        let state = |past: &dyn Fn(&(u64, jiff::Timestamp, Map)) -> bool| {
            writes
                .iter()
                .rev()
                .find(|w| !past(w))
                .map(|w| w.2.clone())
                .unwrap_or_default()
        };
        match point {
            Point::Time(i, us) => {
                let at = if writes.is_empty() {
                    start
                } else {
                    writes[i.index(writes.len())].1
                };
                let t = at + jiff::SignedDuration::from_micros(*us);
                (Until::Time(t), state(&|w| w.1 > t))
            }
            Point::Sequence(i) => {
                let n = if writes.is_empty() {
                    0
                } else {
                    writes[i.index(writes.len())].0
                };
                (Until::Sequence(n), state(&|w| w.0 > n))
            }
        }
    }
}

/// The model host's side of a restore in place: the restored data read
/// back, each record applied and saved with its sequence.
struct Host<'a> {
    data: &'a std::path::Path,
    map: std::cell::RefCell<Map>,
}

impl<'a> Host<'a> {
    fn new(data: &'a std::path::Path) -> Host<'a> {
        Host {
            data,
            map: std::cell::RefCell::new(Map::new()),
        }
    }

    /// Reads the data back; its last applied sequence.
    fn reload(&self) -> u64 {
        let (last, m) = load(self.data).unwrap();
        *self.map.borrow_mut() = m;
        last
    }

    fn apply(&self, r: &sauve_logfile::Record) -> Result<(), String> {
        let mut m = self.map.borrow_mut();
        apply(&mut m, &r.payload)?;
        save(self.data, r.seq, &m).map_err(|e| e.to_string())
    }

    /// A restore to `until` through this host.
    fn restore_to(
        &self,
        handle: &sauve_engine::BackupHandle,
        until: Until,
    ) -> Result<sauve_engine::PointRestore, sauve_engine::EngineError> {
        tokio::task::block_in_place(|| {
            handle.restore_to_point(ID, until, || self.reload(), |r| self.apply(r))
        })
    }

    /// The open check of data that reads back, standing where it says.
    fn open(
        &self,
        handle: &sauve_engine::BackupHandle,
    ) -> Result<sauve_engine::OpenOutcome, sauve_engine::EngineError> {
        let last = self.reload();
        let health = sauve_engine::DataHealth {
            damaged: false,
            last_applied: last,
        };
        tokio::task::block_in_place(|| {
            handle.open_check(health, ID, Until::End, || last, |r| self.apply(r))
        })
    }

    /// The open check of damaged data: the automatic restore, its logs to
    /// the end.
    fn open_damaged(
        &self,
        handle: &sauve_engine::BackupHandle,
    ) -> Result<sauve_engine::OpenOutcome, sauve_engine::EngineError> {
        std::fs::write(self.data, b"damaged").unwrap();
        let health = sauve_engine::DataHealth {
            damaged: true,
            last_applied: 0,
        };
        tokio::task::block_in_place(|| {
            handle.open_check(health, ID, Until::End, || self.reload(), |r| self.apply(r))
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn a_backup_integrated_up_to_any_point_equals_the_state_at_that_point(
        ops in proptest::collection::vec(prop_oneof![
            5 => (any::<u8>(), any::<u16>(), 1i64..2_000).prop_map(|(k, v, ms)| Op::Write(k % 8, v, ms)),
            1 => Just(Op::Backup),
        ], 1..30),
        pick in any::<prop::sample::Index>(),
        point in prop_oneof![
            (any::<prop::sample::Index>(), -999i64..999).prop_map(|(i, us)| Point::Time(i, us)),
            any::<prop::sample::Index>().prop_map(Point::Sequence),
        ],
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let app = SampleApp::with_settings(&[("Advanced/SetNumber/Value", "50"), ("Advanced/CompressionRate", "None")]).unwrap();
            let log_path = app.path().join("Data/App.journal");
            let (clock, log, handle) = timed_engine(&app);
            let played = play(&app, &clock, &log, &handle, ops).await;
            let (writes, backups, map) = (&played.writes, &played.backups, &played.map);
            let archive = &backups[pick.index(backups.len())];
            let to = app.root().join("restored");
            let report = sauve_archive::restore(archive, &sauve_archive::RestoreOptions { to: Some(to.clone()), force: false }, &mut sauve_archive::NoProgress).unwrap();
            let (set_last, mut restored) = load(&to.join("Data/App.4DD")).unwrap();
            let (until, expected) = played.at(&point);
            let before_set = match until {
                Until::Time(t) => t < report.manifest.ended_at,
                Until::Sequence(n) => n < set_last,
                Until::End => false,
            };
            let result = tokio::task::block_in_place(|| handle.integrate_after_restore(&report, ID, Some(&log_path), until, |r| apply(&mut restored, &r.payload)));
            if before_set {
                let err = result.unwrap_err();
                assert_eq!(err.status().code(), 1410, "{err}");
                let end = match until {
                    Until::Time(_) => sauve_logfile::format_time(report.manifest.ended_at, &jiff::tz::TimeZone::UTC),
                    _ => format!("sequence {set_last}"),
                };
                assert!(err.to_string().contains(&end), "{err} does not name {end}");
                handle.shutdown().await;
                return;
            }
            let done = result.unwrap();
            assert_eq!(restored, expected, "integrated up to {until:?}");
            // Nothing past the point was applied, and the records stay.
            let last = done.logs.last().map_or(set_last, |l| l.integrated.last_applied);
            assert!(writes.iter().filter(|w| w.0 > last).all(|w| match until {
                Until::Time(t) => w.1 > t,
                Until::Sequence(n) => w.0 > n,
                Until::End => false,
            }));
            // A second integration goes on to the end: the last state.
            tokio::task::block_in_place(|| handle.continue_integration(&report, ID, Some(&log_path), last, Until::End, |r| apply(&mut restored, &r.payload))).unwrap();
            assert_eq!(&restored, map);
            handle.shutdown().await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_and_the_history_record_the_stop_point_and_the_last_record_applied() {
    let app = SampleApp::with_settings(&[]).unwrap();
    let log_path = app.path().join("Data/App.journal");
    let (clock, log, handle) = timed_engine(&app);
    let first = handle.backup(Trigger::Api).await.unwrap();
    for i in 1..=5 {
        clock.advance_ms(60_000);
        log.append(format!("{i}={i}").as_bytes()).unwrap();
    }
    // The third write was at +3 min; stop 30 s after it.
    let point = jiff::Timestamp::from_microsecond(1_780_000_000_000_000).unwrap()
        + jiff::SignedDuration::from_secs(210);
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
    let mut applied = Vec::new();
    let done = tokio::task::block_in_place(|| {
        handle.integrate_after_restore(&report, ID, Some(&log_path), Until::Time(point), |r| {
            applied.push(r.seq);
            Ok::<(), String>(())
        })
    })
    .unwrap();
    assert_eq!(applied, [1, 2, 3]);
    assert!(done.logs.last().unwrap().integrated.stopped);
    let entry = sauve_journal::read_all(&app.path().join("Logs"))
        .unwrap()
        .pop()
        .unwrap();
    let lines: Vec<(String, String)> = entry.other.clone();
    assert_eq!(
        lines,
        [
            (
                "Stop point".to_owned(),
                "2026-05-28 20:30:10.000+00:00 (reached; later records kept)".to_owned()
            ),
            (
                "Last applied".to_owned(),
                "sequence 3 at 2026-05-28 20:29:40.000+00:00".to_owned()
            ),
        ],
        "{entry:?}"
    );
    // The records after the point are still in the log.
    let still = sauve_logfile::read_log(&log_path).unwrap();
    assert_eq!(still.records.len(), 5);
    let history = handle.records().history().await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.extra["lastApplied"]["sequence"], 3);
    assert_eq!(last.extra["untilReached"], true);
    assert_eq!(last.extra["until"]["time"], point.to_string());
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_check_restores_the_newest_set_ending_before_the_point_and_stops_there() {
    let app = SampleApp::with_settings(&[("Advanced/SetNumber/Value", "10")]).unwrap();
    let data = app.path().join("Data/App.4DD");
    let (clock, log, handle) = timed_engine(&app);
    let mut map = Map::new();
    save(&data, 0, &map).unwrap();
    let mut write = |k: &str, v: &str| {
        clock.advance_ms(60_000);
        let seq = log.append(format!("{k}={v}").as_bytes()).unwrap();
        map.insert(k.to_owned(), v.to_owned());
        save(&data, seq, &map).unwrap();
        (clock.now(), map.clone())
    };
    write("a", "1");
    let first = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(first.status, Status::Ok, "{:?}", first.errors);
    let (_, _) = write("b", "2");
    let (at, state) = write("c", "3");
    write("a", "mistake");
    let second = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(second.status, Status::Ok, "{:?}", second.errors);
    write("d", "4");
    // The data is damaged; open at the moment after "c=3", before the
    // mistake, which the newest set already holds.
    std::fs::write(&data, b"damaged").unwrap();
    let point = at + jiff::SignedDuration::from_secs(30);
    let restored = std::cell::RefCell::new(Map::new());
    let outcome = tokio::task::block_in_place(|| {
        handle.open_check(
            sauve_engine::DataHealth {
                damaged: true,
                last_applied: 0,
            },
            ID,
            Until::Time(point),
            || {
                let (last, m) = load(&data).unwrap();
                *restored.borrow_mut() = m;
                last
            },
            |r| apply(&mut restored.borrow_mut(), &r.payload),
        )
    })
    .unwrap();
    assert_eq!(outcome.restored.as_ref(), Some(&first.archives[0]));
    assert_eq!(*restored.borrow(), state);
    // A point before every set's end: none fits, said so.
    std::fs::write(&data, b"damaged").unwrap();
    let err = tokio::task::block_in_place(|| {
        handle.open_check(
            sauve_engine::DataHealth {
                damaged: true,
                last_applied: 0,
            },
            ID,
            Until::Time(jiff::Timestamp::from_microsecond(1_780_000_000_000_000).unwrap()),
            || 0,
            |_| Ok::<(), String>(()),
        )
    })
    .unwrap_err();
    assert_eq!(err.status().code(), 1410, "{err}");
    assert!(err.to_string().contains("ends before"), "{err}");
    handle.shutdown().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    #[test]
    fn a_restore_to_any_point_equals_the_state_then_and_what_it_set_aside_never_comes_back(
        ops in proptest::collection::vec(prop_oneof![
            5 => (any::<u8>(), any::<u16>(), 1i64..2_000).prop_map(|(k, v, ms)| Op::Write(k % 8, v, ms)),
            1 => Just(Op::Backup),
        ], 1..25),
        point in prop_oneof![
            (any::<prop::sample::Index>(), -999i64..999).prop_map(|(i, us)| Point::Time(i, us)),
            any::<prop::sample::Index>().prop_map(Point::Sequence),
        ],
        later in proptest::collection::vec((any::<u8>(), any::<u16>()), 0..5),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let app = SampleApp::with_settings(&[("Advanced/SetNumber/Value", "50"), ("Advanced/CompressionRate", "None")]).unwrap();
            let data = app.path().join("Data/App.4DD");
            let (clock, log, handle) = timed_engine(&app);
            let played = play(&app, &clock, &log, &handle, ops).await;
            let (writes, map) = (&played.writes, &played.map);
            let (until, expected) = played.at(&point);
            // The sets are in order: none ends before the point if the first does not.
            let first = sauve_archive::verify(&played.backups[0], &mut sauve_archive::NoProgress).unwrap().manifest;
            let fits = match until {
                Until::Time(t) => t >= first.ended_at,
                Until::Sequence(n) => first.header.last_log_sequence.is_none_or(|l| n >= l),
                Until::End => true,
            };
            clock.advance_ms(1000);
            let host = Host::new(&data);
            let reload = || host.reload();
            let applying = |r: &sauve_logfile::Record| host.apply(r);
            let result = tokio::task::block_in_place(|| handle.restore_to_point(ID, until, reload, applying));
            if !fits {
                let err = result.unwrap_err();
                assert_eq!(err.status().code(), 1410, "{err}");
                assert!(err.to_string().contains("ends before"), "{err}");
                assert_eq!(&load(&data).unwrap().1, map, "a refused restore changes nothing");
                handle.shutdown().await;
                return;
            }
            let done = result.unwrap();
            assert_eq!(*host.map.borrow(), expected, "restored to {until:?}");
            assert_eq!(load(&data).unwrap().1, expected);
            let past: Vec<u64> = writes.iter().filter(|w| match until {
                Until::Time(t) => w.1 > t,
                Until::Sequence(n) => w.0 > n,
                Until::End => false,
            }).map(|w| w.0).collect();
            assert_eq!(done.set_aside, past.first().map(|a| (*a, *past.last().unwrap())));

            // The host writes on from the restored state.
            let mut current = expected;
            for (k, v) in later {
                clock.advance_ms(500);
                let _guard = handle.locks().write(Kind::Data).await;
                let seq = log.append(format!("{}={v}", k % 8).as_bytes()).unwrap();
                current.insert((k % 8).to_string(), v.to_string());
                save(&data, seq, &current).unwrap();
            }
            // The next open integrates nothing it set aside.
            let outcome = host.open(&handle).unwrap();
            assert_eq!(outcome.applied, 0);
            assert_eq!(load(&data).unwrap().1, current);
            // Damaged: the automatic restore of the newest set that holds
            // nothing set aside, its logs to the end, stepped over.
            host.open_damaged(&handle).unwrap();
            assert_eq!(*host.map.borrow(), current, "after the automatic restore");
            handle.shutdown().await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_to_a_point_is_journaled_and_a_second_one_back_into_what_the_first_set_aside_reads_it_as_written()
 {
    let app = SampleApp::with_settings(&[("Advanced/SetNumber/Value", "10")]).unwrap();
    let data = app.path().join("Data/App.4DD");
    let (clock, log, handle, first) = backed_up(&app).await;
    let mut map = Map::new();
    let write = |k: &str, v: &str, map: &mut Map| {
        clock.advance_ms(60_000);
        let seq = log.append(format!("{k}={v}").as_bytes()).unwrap();
        map.insert(k.to_owned(), v.to_owned());
        save(&data, seq, map).unwrap();
        clock.now()
    };
    let a = write("a", "1", &mut map); // 1
    let b = write("b", "2", &mut map); // 2
    write("a", "mistake", &mut map); // 3
    let at_b = map.clone();
    let host = Host::new(&data);
    let reload = || host.reload();
    let applying = |r: &sauve_logfile::Record| host.apply(r);
    // Too far back: to just after "a=1".
    let point = a + jiff::SignedDuration::from_secs(1);
    let done = tokio::task::block_in_place(|| {
        handle.restore_to_point(ID, Until::Time(point), reload, applying)
    })
    .unwrap();
    assert_eq!(done.archive, first);
    assert_eq!(done.set_aside, Some((2, 3)));
    assert!(done.replaced.starts_with(app.path().join("Data")));
    assert_eq!(
        host.map.borrow().get("a").map(String::as_str),
        Some("1"),
        "{:?}",
        host.map.borrow()
    );
    assert_eq!(host.map.borrow().get("b"), None);
    let entries = sauve_journal::read_all(&app.path().join("Logs")).unwrap();
    let restore = entries
        .iter()
        .rev()
        .find(|e| e.title == Some(sauve_journal::Title::Restore))
        .unwrap();
    assert_eq!(restore.result.as_deref(), Some("OK"));
    assert_eq!(
        restore.other[0],
        (
            "Stop point".to_owned(),
            sauve_logfile::format_time(point, &jiff::tz::TimeZone::UTC)
        )
    );
    assert!(
        restore.other[1].1.contains("up to sequence 3"),
        "{restore:?}"
    );
    let history = handle.records().history().await.unwrap();
    let recorded = history
        .iter()
        .rev()
        .find(|e| e.trigger.as_deref() == Some("point in time"))
        .unwrap();
    assert_eq!(recorded.extra["until"]["time"], point.to_string());

    // Then to just after "b=2", on the timeline as it was written: the
    // second restore supersedes the first, and the mistake stays out.
    clock.advance_ms(1000);
    let point = b + jiff::SignedDuration::from_secs(1);
    let done = tokio::task::block_in_place(|| {
        handle.restore_to_point(ID, Until::Time(point), reload, applying)
    })
    .unwrap();
    assert_eq!(done.set_aside, Some((3, 3)));
    let mut expected = at_b;
    expected.insert("a".to_owned(), "1".to_owned());
    assert_eq!(*host.map.borrow(), expected);
    let state = sauve_engine::EngineState::load(app.path());
    assert_eq!(
        state.set_aside.len(),
        2,
        "the first restore stays, for the points between the two: {:?}",
        state.set_aside
    );
    // And the next open applies nothing.
    let outcome = host.open(&handle).unwrap();
    assert_eq!(outcome.applied, 0);
    assert_eq!(load(&data).unwrap().1, expected);
    handle.shutdown().await;
}

/// What a test with several restores did: each write's sequence and
/// time, and the data's state from each moment on (writes and restores).
struct Timeline {
    writes: Vec<(u64, jiff::Timestamp)>,
    states: Vec<(jiff::Timestamp, Map)>,
}

impl Timeline {
    /// The data's state at `t` on the wall clock.
    fn at(&self, t: jiff::Timestamp) -> Map {
        self.states
            .iter()
            .rev()
            .find(|s| s.0 <= t)
            .map(|s| s.1.clone())
            .unwrap_or_default()
    }

    /// The stop point `point` picks, and the data's state there: at a
    /// sequence, the moment that record was written.
    fn point(&self, point: &Point) -> Option<(Until, Map)> {
        if self.writes.is_empty() {
            return None;
        }
        Some(match point {
            Point::Time(i, us) => {
                let t = self.writes[i.index(self.writes.len())].1
                    + jiff::SignedDuration::from_micros(*us);
                (Until::Time(t), self.at(t))
            }
            Point::Sequence(i) => {
                let (n, t) = self.writes[i.index(self.writes.len())];
                (Until::Sequence(n), self.at(t))
            }
        })
    }
}

#[derive(Clone, Debug)]
enum Step {
    Write(u8, u16, i64),
    Backup,
    Restore(Point),
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Restores one inside the other: each to any earlier point, on
    /// whichever timeline that point was, gives the data's state then; what
    /// a restore undid never comes back, at the next open or through the
    /// automatic restore of damaged data.
    #[test]
    fn restores_to_points_of_every_timeline_each_give_the_state_then(
        steps in proptest::collection::vec(prop_oneof![
            6 => (any::<u8>(), any::<u16>(), 1i64..2_000).prop_map(|(k, v, ms)| Step::Write(k % 8, v, ms)),
            1 => Just(Step::Backup),
            2 => prop_oneof![
                (any::<prop::sample::Index>(), -999i64..999).prop_map(|(i, us)| Point::Time(i, us)),
                any::<prop::sample::Index>().prop_map(Point::Sequence),
            ].prop_map(Step::Restore),
        ], 1..30),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let app = SampleApp::with_settings(&[("Advanced/SetNumber/Value", "50"), ("Advanced/CompressionRate", "None")]).unwrap();
            let data = app.path().join("Data/App.4DD");
            let (clock, log, handle) = timed_engine(&app);
            let host = Host::new(&data);
            let reload = || host.reload();
            let applying = |r: &sauve_logfile::Record| host.apply(r);
            let mut map = Map::new();
            save(&data, 0, &map).unwrap();
            let mut line = Timeline { writes: Vec::new(), states: vec![(clock.now(), Map::new())] };
            clock.advance_ms(1000);
            let first = handle.backup(Trigger::Api).await.unwrap();
            assert_eq!(first.status, Status::Ok, "{:?}", first.errors);
            let first_end = sauve_archive::verify(&first.archives[0], &mut sauve_archive::NoProgress).unwrap().manifest.ended_at;
            for step in steps {
                match step {
                    Step::Write(k, v, ms) => {
                        clock.advance_ms(ms);
                        let _guard = handle.locks().write(Kind::Data).await;
                        let seq = log.append(format!("{k}={v}").as_bytes()).unwrap();
                        map.insert(k.to_string(), v.to_string());
                        save(&data, seq, &map).unwrap();
                        line.writes.push((seq, clock.now()));
                        line.states.push((clock.now(), map.clone()));
                    }
                    Step::Backup => {
                        clock.advance_ms(1000);
                        let report = handle.backup(Trigger::Api).await.unwrap();
                        assert_eq!(report.status, Status::Ok, "{:?}", report.errors);
                    }
                    Step::Restore(point) => {
                        let Some((until, expected)) = line.point(&point) else { continue };
                        clock.advance_ms(1000);
                        let result = tokio::task::block_in_place(|| handle.restore_to_point(ID, until, reload, applying));
                        if matches!(until, Until::Time(t) if t < first_end) {
                            let err = result.unwrap_err();
                            assert_eq!(err.status().code(), 1410, "{err}");
                            assert_eq!(load(&data).unwrap().1, map, "a refused restore changes nothing");
                            continue;
                        }
                        result.unwrap();

                        assert_eq!(*host.map.borrow(), expected, "restored to {until:?}");
                        map = expected;
                        line.states.push((clock.now(), map.clone()));
                    }
                }
            }
            // The next open integrates nothing set aside.
            let outcome = host.open(&handle).unwrap();
            assert_eq!(outcome.applied, 0);
            assert_eq!(load(&data).unwrap().1, map);
            // Damaged: the automatic restore, its logs to the end, gives the
            // data as it was.
            host.open_damaged(&handle).unwrap();
            assert_eq!(*host.map.borrow(), map, "after the automatic restore");
            handle.shutdown().await;
        });
    }
}

/// Writes `k=v` a minute after the last operation, to the log and the
/// data; the time it was written.
fn write_at_minute(
    clock: &Manual,
    log: &LogWriter,
    data: &std::path::Path,
    map: &mut Map,
    (k, v): (&str, &str),
) -> jiff::Timestamp {
    clock.advance_ms(60_000);
    let seq = log.append(format!("{k}={v}").as_bytes()).unwrap();
    map.insert(k.to_owned(), v.to_owned());
    save(data, seq, map).unwrap();
    clock.now()
}

/// The review's case: A goes back before a mistake, B back before A ran,
/// C forward onto A's timeline. C must not bring the mistake back, and
/// neither may anything after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_onto_the_timeline_of_an_earlier_one_a_later_one_went_back_before_steps_over_what_it_set_aside()
 {
    let app = SampleApp::with_settings(&[("Advanced/SetNumber/Value", "10")]).unwrap();
    let data = app.path().join("Data/App.4DD");
    let (clock, log, handle, _) = backed_up(&app).await;
    let mut map = Map::new();
    let host = Host::new(&data);
    let second = jiff::SignedDuration::from_secs(1);
    let restore = |until: jiff::Timestamp| {
        clock.advance_ms(60_000);
        host.restore_to(&handle, Until::Time(until)).unwrap();
        host.map.borrow().clone()
    };
    let a = write_at_minute(&clock, &log, &data, &mut map, ("a", "1"));
    let b = write_at_minute(&clock, &log, &data, &mut map, ("b", "2"));
    write_at_minute(&clock, &log, &data, &mut map, ("a", "mistake"));
    // A: back to just after a=1; the host writes on.
    let mut on_a = restore(a + second);
    assert_eq!(on_a, Map::from([("a".to_owned(), "1".to_owned())]));
    let c = write_at_minute(&clock, &log, &data, &mut on_a, ("c", "3"));
    write_at_minute(&clock, &log, &data, &mut on_a, ("d", "4"));
    // B: back to just after b=2, before A ran: the log as written then.
    let mut on_b = restore(b + second);
    assert_eq!(
        on_b,
        Map::from([
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned())
        ])
    );
    write_at_minute(&clock, &log, &data, &mut on_b, ("e", "5"));
    // C: forward to just after c=3, on A's timeline.
    let on_c = restore(c + second);
    assert_eq!(
        on_c,
        Map::from([
            ("a".to_owned(), "1".to_owned()),
            ("c".to_owned(), "3".to_owned())
        ]),
        "A set the mistake aside on that timeline"
    );
    let outcome = host.open(&handle).unwrap();
    assert_eq!(outcome.applied, 0);
    host.open_damaged(&handle).unwrap();
    assert_eq!(*host.map.borrow(), on_c, "after the automatic restore");
    handle.shutdown().await;
}

/// A restore to a point interrupted after its record was written and its
/// files moved is redone by the next open check, which steps over what it
/// held by its point and then confirms it from its own first record
/// stepped over, not from an earlier restore's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_restore_to_a_point_is_redone_at_open_and_confirmed_from_its_own_records() {
    let app = SampleApp::with_settings(&[("Advanced/SetNumber/Value", "10")]).unwrap();
    let data = app.path().join("Data/App.4DD");
    let (clock, log, handle, _) = backed_up(&app).await;
    let mut map = Map::new();
    let host = Host::new(&data);
    let restore = |until: jiff::Timestamp| {
        clock.advance_ms(60_000);
        host.restore_to(&handle, Until::Time(until)).unwrap()
    };
    let second = jiff::SignedDuration::from_secs(1);
    let a = write_at_minute(&clock, &log, &data, &mut map, ("a", "1")); // 1
    write_at_minute(&clock, &log, &data, &mut map, ("a", "mistake")); // 2
    assert_eq!(restore(a + second).set_aside, Some((2, 2)));
    let mut on_a = host.map.borrow().clone();
    let b = write_at_minute(&clock, &log, &data, &mut on_a, ("b", "2")); // 3
    write_at_minute(&clock, &log, &data, &mut on_a, ("b", "mistake")); // 4
    assert_eq!(restore(b + second).set_aside, Some((4, 4)));
    let expected = host.map.borrow().clone();
    // As a crash would leave it: the marker there, the second restore's
    // record not confirmed yet, the set's data put in place.
    let state = sauve_engine::state_path(app.path());
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(v["set_aside"][1]["after"], 3);
    v["set_aside"][1]["after"] = serde_json::Value::Null;
    std::fs::write(&state, serde_json::to_vec(&v).unwrap()).unwrap();
    std::fs::write(app.path().join("Data/.sauve-open-restore"), "interrupted\n").unwrap();
    save(&data, 0, &Map::new()).unwrap();
    let outcome = host.open(&handle).unwrap();
    assert!(outcome.restored.is_some(), "redone at open");
    assert_eq!(*host.map.borrow(), expected);
    assert_eq!(load(&data).unwrap().1, expected);
    let records = sauve_engine::EngineState::load(app.path()).set_aside;
    assert_eq!(
        records.iter().map(|r| r.after).collect::<Vec<_>>(),
        [Some(1), Some(3)],
        "confirmed after its own point (3), not the first restore's (1)"
    );
    assert!(!app.path().join("Data/.sauve-open-restore").exists());
    handle.shutdown().await;
}

/// A state file that cannot say what restores set aside refuses every
/// integration, naming it; a backup writing the state keeps the damaged
/// file beside it, and the refusal names that until a person removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_state_file_refuses_integration_until_a_person_repairs_it() {
    let app = SampleApp::with_settings(&[("Advanced/SetNumber/Value", "10")]).unwrap();
    let data = app.path().join("Data/App.4DD");
    let (clock, log, handle, _) = backed_up(&app).await;
    let mut map = Map::new();
    let host = Host::new(&data);
    let a = write_at_minute(&clock, &log, &data, &mut map, ("a", "1"));
    write_at_minute(&clock, &log, &data, &mut map, ("a", "mistake"));
    clock.advance_ms(60_000);
    host.restore_to(&handle, Until::Time(a + jiff::SignedDuration::from_secs(1)))
        .unwrap();
    let restored = host.map.borrow().clone();
    let state = sauve_engine::state_path(app.path());
    let good: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let check = || host.open(&handle);
    // Damaged in place: refused, naming the file.
    std::fs::write(&state, b"{\"set_aside\": [{\"through\": \"three\"}]}").unwrap();
    let err = check().unwrap_err();
    assert!(
        err.to_string().contains(&state.display().to_string()),
        "{err}"
    );
    assert!(
        err.to_string().contains("\"set_aside\" list does not read"),
        "{err}"
    );
    assert!(err.to_string().contains("accepted:"), "{err}");
    assert_eq!(load(&data).unwrap().1, restored, "nothing was applied");
    let journal = sauve_journal::read_all(&app.path().join("Logs")).unwrap();
    let last_entry = journal.last().unwrap();
    assert_eq!(
        last_entry.title,
        Some(sauve_journal::Title::AutomaticLogIntegration)
    );
    assert!(
        last_entry
            .result
            .as_deref()
            .is_some_and(|r| r.starts_with("failed")),
        "{last_entry:?}"
    );
    // A backup writes the state: the damaged file is kept, and named.
    clock.advance_ms(60_000);
    let report = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(report.status, Status::Ok, "{:?}", report.errors);
    let damaged = sauve_engine::damaged_state_path(app.path());
    assert_eq!(
        std::fs::read(&damaged).unwrap(),
        b"{\"set_aside\": [{\"through\": \"three\"}]}"
    );
    let err = check().unwrap_err();
    assert!(
        err.to_string().contains(&damaged.display().to_string()),
        "{err}"
    );
    // Repaired: the list put back, the damaged copy removed.
    let mut now: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    now["set_aside"] = good["set_aside"].clone();
    std::fs::write(&state, serde_json::to_vec(&now).unwrap()).unwrap();
    std::fs::remove_file(&damaged).unwrap();
    assert_eq!(check().unwrap().applied, 0);
    assert_eq!(load(&data).unwrap().1, restored, "the mistake stays out");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_to_a_point_of_an_app_without_a_sauve_log_is_refused_naming_the_log() {
    let app = SampleApp::with_settings(&[]).unwrap();
    let data = app.path().join("Data/App.4DD");
    save(&data, 0, &Map::new()).unwrap();
    let handle = Engine::start(
        AppLayout::discover(app.path()).unwrap(),
        EngineOptions::default(),
    )
    .unwrap();
    let first = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(first.status, Status::Ok, "{:?}", first.errors);
    let log = handle.layout().log_file.clone();
    let _ = std::fs::remove_file(&log);
    let err = tokio::task::block_in_place(|| {
        handle.restore_to_point(ID, Until::Sequence(1), || 0, |_| Ok::<(), String>(()))
    })
    .unwrap_err();
    assert_eq!(err.status().code(), 1410, "{err}");
    assert!(
        err.to_string().contains(&log.display().to_string()),
        "{err}"
    );
    assert!(err.to_string().contains("accepted:"), "{err}");
    assert_eq!(load(&data).unwrap().1, Map::new(), "nothing was touched");
    handle.shutdown().await;
}
