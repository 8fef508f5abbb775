//! The engine's scheduler loop on paused tokio time (behaviour §9, §10): the engine
//! takes a clock that reads tokio's paused clock, so a day of schedule
//! passes in milliseconds and every instant is exact.
//!
//! The tests never sleep: they wait on what the scheduler and the engine
//! publish (its view, the `finished` events). Paused time then moves only
//! to the scheduler's own wake-ups, never while it waits on the engine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;

use sauve_engine::{BackupHandle, Engine, EngineOptions, SchedulerView, Trigger};
use sauve_journal::{Entry, Title};
use sauve_status::Status;
use sauve_tests::paused::{
    PausedClock, finished, frozen, looked_at, scheduler as spawn, ts, until,
};
use tokio::sync::watch;

/// An app `ROOT/App` whose settings are `pairs` (`sauve settings set`), with
/// backups in `ROOT/Backups`.
struct App {
    _dir: tempfile::TempDir,
    app: PathBuf,
}

impl App {
    fn new(pairs: &[(&str, &str)]) -> App {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("App");
        std::fs::create_dir_all(app.join("Project")).unwrap();
        std::fs::create_dir_all(app.join("Data")).unwrap();
        std::fs::write(app.join("Project/App.4DProject"), "{}").unwrap();
        std::fs::write(app.join("Data/App.4DD"), b"data").unwrap();
        let a = App { _dir: dir, app };
        a.set(pairs);
        a
    }

    fn settings_file(&self) -> PathBuf {
        self.app.join("Settings/backup.4DSettings")
    }

    /// Changes keys of the settings file, atomically, as `sauve settings set` does.
    fn set(&self, pairs: &[(&str, &str)]) {
        let path = self.settings_file();
        let mut doc = if path.exists() {
            sauve_settings::load_file(&path).unwrap().doc
        } else {
            sauve_settings::SettingsDoc::default()
        };
        for (k, v) in pairs {
            doc.set(k, v).unwrap();
        }
        sauve_settings::save_file(&path, &doc).unwrap();
    }

    fn engine(&self, clock: Arc<PausedClock>) -> BackupHandle {
        let layout = sauve_settings::AppLayout::discover(&self.app).unwrap();
        Engine::start(
            layout,
            EngineOptions {
                clock,
                ..EngineOptions::default()
            },
        )
        .unwrap()
    }

    fn journal(&self) -> Vec<Entry> {
        sauve_journal::read_all(&self.app.join("Logs")).unwrap()
    }

    fn backups(&self) -> PathBuf {
        self.app.parent().unwrap().join("Backups")
    }
}

/// Changes the settings and waits for the scheduler's next look, which must
/// come within a minute.
async fn change(
    app: &App,
    view: &mut watch::Receiver<SchedulerView>,
    clock: &PausedClock,
    pairs: &[(&str, &str)],
) -> SchedulerView {
    app.set(pairs);
    let at = sauve_engine::Clock::now(clock);
    let seen = until(view, "a look after the change", |v| {
        v.checked.is_some_and(|c| c > at)
    })
    .await;
    assert!(seen.checked.unwrap() - at <= jiff::SignedDuration::from_secs(60));
    seen
}

fn stamp(e: &Entry, which: fn(&Entry) -> Option<&sauve_journal::Stamp>) -> String {
    which(e).map(|s| s.raw.clone()).unwrap_or_default()
}

fn scheduled(e: &Entry) -> Option<&sauve_journal::Stamp> {
    e.scheduled.as_ref()
}

fn starting(e: &Entry) -> Option<&sauve_journal::Stamp> {
    e.starting.as_ref()
}

/// A destination that cannot be created (a file is in the way): 1407.
fn block_destination(app: &App) -> PathBuf {
    let blocker = app.app.parent().unwrap().join("blocker");
    std::fs::write(&blocker, b"not a folder").unwrap();
    blocker
}

const HOURLY: &[(&str, &str)] = &[
    ("Scheduler/Frequency", "Hourly"),
    ("Scheduler/Hourly/Every", "1"),
];

#[tokio::test(start_paused = true)]
async fn a_slot_fires_at_its_time_and_is_recorded_as_scheduled() {
    let app = App::new(HOURLY);
    let handle = app.engine(PausedClock::at("2026-01-01T10:59:30Z"));
    let mut events = handle.subscribe();
    let (mut v, task) = spawn(&handle);
    assert_eq!(finished(&mut events).await, (0, 1));
    let e = app.journal().pop().unwrap();
    assert_eq!(e.title, Some(Title::FullBackup));
    assert_eq!(e.trigger.as_deref(), Some("scheduled"));
    assert_eq!(stamp(&e, scheduled), "2026-01-01 11:00:00");
    assert_eq!(stamp(&e, starting), "2026-01-01 11:00:00");
    let history = std::fs::read_to_string(app.backups().join("backupHistory.json")).unwrap();
    assert!(
        history.contains("\"scheduledDate\": \"2026-01-01T11:00:00.000Z\""),
        "{history}"
    );
    // The next slot is planned, and the handled slot persisted.
    until(&mut v, "the 12:00 slot", |v| {
        v.next == Some(ts("2026-01-01T12:00:00Z"))
    })
    .await;
    let state = handle.records().scheduler_state().await.unwrap();
    assert_eq!(
        state.last_slot,
        Some("2026-01-01T11:00:00Z".parse().unwrap())
    );
    task.abort();
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_slot_is_retried_after_try_to_backup_after_with_the_same_slot() {
    let app = App::new(HOURLY);
    let blocker = block_destination(&app);
    app.set(&[
        ("General/DestinationFolder", "../blocker/bk/"),
        ("Advanced/BackupFailure/TryToBackupAfter", "00:00:10"),
    ]);
    let handle = app.engine(PausedClock::at("2026-01-01T10:59:30Z"));
    let mut events = handle.subscribe();
    let (_v, task) = spawn(&handle);
    assert_eq!(
        finished(&mut events).await.0,
        Status::DestinationInvalid.code()
    );
    // The destination becomes usable before the retry.
    std::fs::remove_file(&blocker).unwrap();
    assert_eq!(finished(&mut events).await, (0, 1));
    let journal = app.journal();
    let [failed, retried] = &journal[journal.len() - 2..] else {
        panic!("{journal:?}")
    };
    assert_eq!(failed.title, Some(Title::FullBackupAborted));
    assert_eq!(failed.status, Some(1407));
    assert_eq!(stamp(failed, starting), "2026-01-01 11:00:00");
    assert_eq!(retried.title, Some(Title::FullBackup));
    assert_eq!(retried.attempt, Some(2));
    assert_eq!(stamp(retried, scheduled), "2026-01-01 11:00:00");
    assert_eq!(stamp(retried, starting), "2026-01-01 11:00:10");
    task.abort();
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn giving_up_turns_the_scheduler_off_until_a_manual_backup_succeeds() {
    let app = App::new(HOURLY);
    let blocker = block_destination(&app);
    app.set(&[
        ("General/DestinationFolder", "../blocker/bk/"),
        ("Advanced/BackupFailure/TryToBackupAfter", "00:00:10"),
        ("Advanced/BackupFailure/AbortIfBackupFail", "True"),
        ("Advanced/BackupFailure/RetryCountBeforeAbort", "2"),
    ]);
    let handle = app.engine(PausedClock::at("2026-01-01T10:59:30Z"));
    let mut events = handle.subscribe();
    let (mut v, task) = spawn(&handle);
    assert_eq!(finished(&mut events).await.0, 1407);
    // The second failure reaches RetryCountBeforeAbort: recorded as 1401,
    // with the underlying error under it.
    assert_eq!(finished(&mut events).await.0, 1401);
    let e = app.journal().pop().unwrap();
    assert_eq!(
        (e.title, e.status, e.attempt),
        (Some(Title::FullBackupAborted), Some(1401), Some(2))
    );
    assert!(
        e.errors.iter().any(|l| l.starts_with("1407 ")),
        "{:?}",
        e.errors
    );
    // Off: no slot planned, however long we wait.
    let off = looked_at(&mut v, ts("2026-01-01T13:00:10Z")).await;
    assert_eq!((off.next, off.disabled), (None, true));
    assert_eq!(app.journal().len(), 2, "nothing ran while off");
    // A successful manual backup turns it back on.
    std::fs::remove_file(&blocker).unwrap();
    let h = handle.clone();
    let manual = frozen(async move { h.backup(Trigger::Api).await.unwrap() }).await;
    assert_eq!(manual.status, Status::Ok);
    assert_eq!(finished(&mut events).await.0, 0);
    let on = until(&mut v, "the scheduler back on", |v| !v.disabled).await;
    assert_eq!(on.next, Some(ts("2026-01-01T14:00:00Z")));
    assert_eq!(finished(&mut events).await.0, 0);
    let e = app.journal().pop().unwrap();
    assert_eq!(e.trigger.as_deref(), Some("scheduled"));
    assert_eq!(stamp(&e, scheduled), "2026-01-01 14:00:00");
    assert_eq!(
        handle.records().scheduler_state().await.unwrap().failures,
        0
    );
    task.abort();
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn settings_invalid_at_start_then_fixed_start_the_schedule_without_a_restart() {
    let app = App::new(HOURLY);
    let valid = std::fs::read_to_string(app.settings_file()).unwrap();
    std::fs::write(
        app.settings_file(),
        valid.replace("<Every>1</Every>", "<Every>25</Every>"),
    )
    .unwrap();
    let clock = PausedClock::at("2026-01-01T10:55:00Z");
    let handle = app.engine(clock.clone());
    let mut events = handle.subscribe();
    let (mut v, task) = spawn(&handle);
    let before = looked_at(&mut v, ts("2026-01-01T10:57:00Z")).await;
    assert_eq!(
        before.next, None,
        "nothing is scheduled from invalid settings"
    );
    std::fs::write(app.settings_file(), &valid).unwrap();
    let fixed = sauve_engine::Clock::now(&*clock);
    // Noticed at the next look, within a minute.
    let after = until(&mut v, "a look after the fix", |v| {
        v.checked.is_some_and(|c| c > fixed)
    })
    .await;
    assert!(after.checked.unwrap() - fixed <= jiff::SignedDuration::from_secs(60));
    assert_eq!(after.next, Some(ts("2026-01-01T11:00:00Z")));
    assert_eq!(finished(&mut events).await, (0, 1));
    let e = app.journal().pop().unwrap();
    assert_eq!(stamp(&e, scheduled), "2026-01-01 11:00:00");
    task.abort();
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_change_from_never_to_a_schedule_and_between_schedules_applies_within_a_minute() {
    let app = App::new(&[("Scheduler/Frequency", "Never")]);
    let clock = PausedClock::at("2026-01-01T10:50:00Z");
    let handle = app.engine(clock.clone());
    let mut events = handle.subscribe();
    let (mut v, task) = spawn(&handle);
    assert_eq!(
        looked_at(&mut v, ts("2026-01-01T10:51:30Z")).await.next,
        None
    );
    assert_eq!(
        change(&app, &mut v, &clock, HOURLY).await.next,
        Some(ts("2026-01-01T11:00:00Z"))
    );
    assert_eq!(finished(&mut events).await, (0, 1));
    // Hourly to daily at 13:30.
    let daily = [
        ("Scheduler/Frequency", "Daily"),
        ("Scheduler/Daily/Hour", "13:30:00"),
    ];
    assert_eq!(
        change(&app, &mut v, &clock, &daily).await.next,
        Some(ts("2026-01-01T13:30:00Z"))
    );
    // And back to Never: nothing planned, nothing runs.
    let never = [("Scheduler/Frequency", "Never")];
    assert_eq!(change(&app, &mut v, &clock, &never).await.next, None);
    looked_at(&mut v, ts("2026-01-01T15:00:00Z")).await;
    assert_eq!(app.journal().len(), 1);
    task.abort();
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn slots_missed_while_the_server_was_down_are_one_1418_attempt_then_a_catch_up() {
    let app = App::new(HOURLY);
    // The last handled slot was 08:00; the server starts at 10:20.
    let handle = app.engine(PausedClock::at("2026-01-01T10:20:00Z"));
    let mut state = handle.records().scheduler_state().await.unwrap();
    state.last_slot = Some("2026-01-01T08:00:00Z".parse().unwrap());
    handle.records().save_scheduler_state(state).await.unwrap();
    let mut events = handle.subscribe();
    let (_v, task) = spawn(&handle);
    // The catch-up after TryToBackupAfter (1 minute), for the 10:00 slot.
    assert_eq!(finished(&mut events).await, (0, 1));
    let journal = app.journal();
    let [missed, caught_up] = &journal[..] else {
        panic!("{journal:?}")
    };
    assert_eq!(
        (missed.title, missed.status),
        (Some(Title::FullBackupAborted), Some(1418))
    );
    assert_eq!(stamp(missed, scheduled), "2026-01-01 10:00:00");
    assert_eq!(stamp(caught_up, scheduled), "2026-01-01 10:00:00");
    assert_eq!(stamp(caught_up, starting), "2026-01-01 10:21:00");
    task.abort();
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_host_runs_the_schedule_from_the_engine_alone_and_saved_settings_replan_at_once() {
    // What an embedding host does, with no server: start the engine, spawn
    // the engine's loop with a view of its own, tell it when it saved the
    // settings.
    let app = App::new(&[("Scheduler/Frequency", "Never")]);
    let clock = PausedClock::at("2026-01-01T10:50:00Z");
    let handle = app.engine(clock.clone());
    let mut events = handle.subscribe();
    let (view, mut v) = watch::channel(SchedulerView::default());
    let task = tokio::spawn(sauve_engine::scheduler_loop(handle.clone(), view));
    let first = looked_at(&mut v, ts("2026-01-01T10:50:00Z")).await;
    assert_eq!(first.next, None);
    app.set(HOURLY);
    let at = sauve_engine::Clock::now(clock.as_ref());
    handle.config().settings_saved();
    let seen = until(&mut v, "the 11:00 slot", |v| v.next.is_some()).await;
    assert_eq!(seen.next, Some(ts("2026-01-01T11:00:00Z")));
    assert_eq!(
        seen.checked,
        Some(at),
        "replanned at once, not at the minute"
    );
    assert_eq!(finished(&mut events).await, (0, 1));
    let e = app.journal().pop().unwrap();
    assert_eq!(e.trigger.as_deref(), Some("scheduled"));
    assert_eq!(stamp(&e, scheduled), "2026-01-01 11:00:00");
    task.abort();
    handle.shutdown().await;
}
