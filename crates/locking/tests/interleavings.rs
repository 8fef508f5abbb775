//! Random interleavings of readers, writers, backups and cancellations keep
//! every invariant; 64 tasks on a multi-thread runtime never deadlock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use sauve_locking::{CancellationToken, Kind, LockError, LockManager, Mode};
use tokio::time::{Instant, sleep};

#[derive(Clone, Debug)]
enum Action {
    Read {
        kind: Kind,
        hold: u64,
    },
    Write {
        kind: Kind,
        hold: u64,
        cancel_after: Option<u64>,
    },
    Backup {
        kinds: Vec<Kind>,
        mode: Mode,
        hold: u64,
        timeout: Option<u64>,
    },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Data), Just(Kind::Structure)]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (kind(), 0u64..50).prop_map(|(kind, hold)| Action::Read { kind, hold }),
        4 => (kind(), 0u64..50, proptest::option::of(1u64..80))
            .prop_map(|(kind, hold, cancel_after)| Action::Write { kind, hold, cancel_after }),
        1 => (
            prop_oneof![Just(vec![Kind::Data]), Just(vec![Kind::Structure]), Just(vec![Kind::Data, Kind::Structure])],
            prop_oneof![Just(Mode::Server), Just(Mode::SingleUser)],
            1u64..80,
            proptest::option::of(1u64..60),
        )
            .prop_map(|(kinds, mode, hold, timeout)| Action::Backup { kinds, mode, hold, timeout }),
    ]
}

/// What the tasks themselves see inside their critical sections.
#[derive(Default)]
struct Observed {
    readers: [usize; 2],
    writers: [usize; 2],
    backup: [Option<Mode>; 2],
    violations: Vec<String>,
    writes_applied: usize,
    /// (kind, requested at, granted at) of writers that had to wait.
    waited_writes: Vec<(usize, Instant, Instant)>,
}

fn ix(k: Kind) -> usize {
    match k {
        Kind::Data => 0,
        Kind::Structure => 1,
    }
}

async fn run(
    actor: usize,
    start: u64,
    action: Action,
    m: LockManager,
    obs: Arc<Mutex<Observed>>,
) -> bool {
    sleep(Duration::from_millis(start)).await;
    match action {
        Action::Read { kind, hold } => {
            let _g = m.read(kind).await;
            {
                let mut o = obs.lock().unwrap();
                if o.backup[ix(kind)] == Some(Mode::SingleUser) {
                    o.violations.push(format!(
                        "actor {actor} read {kind:?} during a single-user backup"
                    ));
                }
                o.readers[ix(kind)] += 1;
            }
            sleep(Duration::from_millis(hold)).await;
            obs.lock().unwrap().readers[ix(kind)] -= 1;
            true
        }
        Action::Write {
            kind,
            hold,
            cancel_after,
        } => {
            let token = CancellationToken::new();
            if let Some(after) = cancel_after {
                let t = token.clone();
                tokio::spawn(async move {
                    sleep(Duration::from_millis(after)).await;
                    t.cancel();
                });
            }
            let requested = Instant::now();
            let g = match m.write_cancellable(kind, &token).await {
                Ok(g) => g,
                Err(LockError::Cancelled) => return false,
                Err(e) => panic!("{e}"),
            };
            {
                let mut o = obs.lock().unwrap();
                if o.backup[ix(kind)].is_some() {
                    o.violations
                        .push(format!("actor {actor} wrote {kind:?} during a backup"));
                }
                o.writers[ix(kind)] += 1;
                o.writes_applied += 1;
                if g.waited() > Duration::ZERO {
                    o.waited_writes.push((ix(kind), requested, Instant::now()));
                }
            }
            sleep(Duration::from_millis(hold)).await;
            obs.lock().unwrap().writers[ix(kind)] -= 1;
            drop(g);
            true
        }
        Action::Backup {
            kinds,
            mode,
            hold,
            timeout,
        } => {
            let g = match m
                .backup(&kinds, mode, timeout.map(Duration::from_millis))
                .await
            {
                Ok(g) => g,
                Err(LockError::Timeout { .. }) => return false,
                Err(e) => panic!("{e}"),
            };
            {
                let mut o = obs.lock().unwrap();
                for k in &kinds {
                    let i = ix(*k);
                    if o.writers[i] > 0
                        || (mode == Mode::SingleUser && o.readers[i] > 0)
                        || o.backup[i].is_some()
                    {
                        o.violations
                            .push(format!("actor {actor} locked {k:?} while in use"));
                    }
                    o.backup[i] = Some(mode);
                }
            }
            sleep(Duration::from_millis(hold)).await;
            {
                let mut o = obs.lock().unwrap();
                for k in &kinds {
                    o.backup[ix(*k)] = None;
                }
            }
            g.release();
            true
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_keep_every_invariant(actors in proptest::collection::vec((0u64..100, action()), 1..24)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        let m = LockManager::new();
        let obs = Arc::new(Mutex::new(Observed::default()));
        let successful_writes = rt.block_on(async {
            let mut tasks = Vec::new();
            for (i, (start, action)) in actors.iter().cloned().enumerate() {
                let is_write = matches!(action, Action::Write { .. });
                tasks.push((is_write, tokio::spawn(run(i, start, action, m.clone(), obs.clone()))));
            }
            let mut writes = 0;
            for (is_write, t) in tasks {
                // Virtual time: every hold and timeout is bounded, so all end.
                let ok = tokio::time::timeout(Duration::from_secs(3600), t).await.expect("a task never ended").unwrap();
                if is_write && ok {
                    writes += 1;
                }
            }
            writes
        });
        let o = obs.lock().unwrap();
        prop_assert!(o.violations.is_empty(), "{:?}", o.violations);
        prop_assert_eq!(o.writes_applied, successful_writes, "cancelled writers applied nothing");
        let s = m.snapshot();
        prop_assert_eq!((s.readers, s.writers, s.backup, s.waiting), ([0, 0], [0, 0], [None, None], 0), "every guard released");
        for a in &o.waited_writes {
            for b in &o.waited_writes {
                if a.0 == b.0 && a.1 < b.1 {
                    prop_assert!(a.2 <= b.2, "a writer that waited longer went on later");
                }
            }
        }
    }
}

#[test]
fn sixty_four_tasks_on_two_threads_never_deadlock() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let m = LockManager::new();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..64u64 {
            let m = m.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
                for _ in 0..300 {
                    let kind = if rng.bool() {
                        Kind::Data
                    } else {
                        Kind::Structure
                    };
                    match rng.u8(0..7) {
                        0 | 1 => drop(m.read(kind).await),
                        2 | 3 => {
                            let _g = m.write(kind).await;
                            tokio::task::yield_now().await;
                        }
                        4 => drop(m.try_write(kind)),
                        5 => {
                            let token = CancellationToken::new();
                            token.cancel();
                            assert!(m.write_cancellable(kind, &token).await.is_err());
                        }
                        _ => {
                            let mode = if rng.bool() {
                                Mode::Server
                            } else {
                                Mode::SingleUser
                            };
                            if let Ok(g) = m
                                .backup(&[kind], mode, Some(Duration::from_millis(50)))
                                .await
                            {
                                tokio::task::yield_now().await;
                                g.release();
                            }
                        }
                    }
                }
            }));
        }
        let all = async {
            for t in tasks {
                t.await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .expect("deadlock: the tasks did not finish within 60 s");
    });
    let s = m.snapshot();
    assert_eq!(
        (s.readers, s.writers, s.backup, s.waiting),
        ([0, 0], [0, 0], [None, None], 0)
    );
}
