//! The locking rules of behaviour §7, with paused time: deterministic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sauve_locking::{CancellationToken, Kind, LockError, LockManager, Mode};
use sauve_status::Status;
use tokio::time::{Instant, sleep};

const SEC: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn in_server_mode_readers_go_on_and_writers_wait_for_the_release() {
    let m = LockManager::new();
    let backup = m.backup(&[Kind::Data], Mode::Server, None).await.unwrap();
    let r = m.read(Kind::Data).await;
    assert_eq!(r.waited(), Duration::ZERO);
    assert!(m.try_write(Kind::Data).is_none());
    let m2 = m.clone();
    let writer = tokio::spawn(async move { m2.write(Kind::Data).await.waited() });
    sleep(5 * SEC).await;
    let window = backup.release();
    assert_eq!(window, 5 * SEC);
    assert_eq!(
        writer.await.unwrap(),
        5 * SEC,
        "the writer waited exactly the lock window"
    );
}

#[tokio::test(start_paused = true)]
async fn in_single_user_mode_readers_of_locked_kinds_wait_too() {
    let m = LockManager::new();
    let backup = m
        .backup(&[Kind::Data], Mode::SingleUser, None)
        .await
        .unwrap();
    assert!(m.try_read(Kind::Data).is_none());
    assert!(
        m.try_read(Kind::Structure).is_some(),
        "unlocked kinds stay free"
    );
    let m2 = m.clone();
    let reader = tokio::spawn(async move { m2.read(Kind::Data).await.waited() });
    sleep(2 * SEC).await;
    drop(backup);
    assert_eq!(reader.await.unwrap(), 2 * SEC);
}

#[tokio::test(start_paused = true)]
async fn a_backup_waits_for_writes_in_progress_and_new_writers_queue_behind_it() {
    let m = LockManager::new();
    let first = m.write(Kind::Data).await;
    let m2 = m.clone();
    let backup = tokio::spawn(async move {
        let g = m2
            .backup(&[Kind::Data], Mode::Server, Some(60 * SEC))
            .await
            .unwrap();
        let waited = g.waited();
        sleep(3 * SEC).await;
        (waited, g.release())
    });
    sleep(SEC).await;
    // Arrives after the backup asked: must not overtake it.
    let m3 = m.clone();
    let late = tokio::spawn(async move {
        let g = m3.write(Kind::Data).await;
        (Instant::now(), g.waited())
    });
    sleep(SEC).await;
    assert_eq!(m.snapshot().waiting, 2);
    let start = Instant::now();
    drop(first);
    let (waited, window) = backup.await.unwrap();
    assert_eq!(
        waited,
        2 * SEC,
        "the backup waited for the write in progress"
    );
    assert_eq!(window, 3 * SEC);
    let (at, late_waited) = late.await.unwrap();
    assert_eq!(
        at - start,
        3 * SEC,
        "the late writer went on only after the backup"
    );
    assert_eq!(late_waited, 4 * SEC);
}

#[tokio::test(start_paused = true)]
async fn a_lock_timeout_gives_1405_and_leaves_nothing_locked() {
    let m = LockManager::new();
    let stuck = m.write(Kind::Data).await;
    let m2 = m.clone();
    let queued = tokio::spawn(async move {
        sleep(SEC).await;
        m2.write(Kind::Data).await.waited()
    });
    let err = m
        .backup(&[Kind::Data, Kind::Structure], Mode::Server, Some(3 * SEC))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Status::LockTimeout);
    assert!(matches!(err, LockError::Timeout { .. }));
    assert_eq!(
        queued.await.unwrap(),
        2 * SEC,
        "the writer queued behind the failed backup went on"
    );
    let s = m.snapshot();
    assert_eq!(s.backup, [None, None]);
    assert_eq!(s.waiting, 0);
    drop(stuck);
}

#[tokio::test(start_paused = true)]
async fn waiting_writers_go_on_in_arrival_order() {
    let m = LockManager::new();
    let backup = m.backup(&[Kind::Data], Mode::Server, None).await.unwrap();
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (m, order) = (m.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            sleep(Duration::from_millis(10 * i)).await;
            let _g = m.write(Kind::Data).await;
            order.lock().unwrap().push(i);
        }));
    }
    sleep(SEC).await;
    drop(backup);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_structure_backup_never_blocks_data_and_a_data_backup_never_blocks_structure() {
    let m = LockManager::new();
    let s = m
        .backup(&[Kind::Structure], Mode::SingleUser, None)
        .await
        .unwrap();
    assert!(m.try_write(Kind::Data).is_some());
    assert!(m.try_read(Kind::Data).is_some());
    drop(s);
    let d = m
        .backup(&[Kind::Data], Mode::SingleUser, None)
        .await
        .unwrap();
    assert!(m.try_write(Kind::Structure).is_some());
    assert!(m.try_read(Kind::Structure).is_some());
    drop(d);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiting_writer_gets_minus_9976_and_changed_nothing() {
    let m = LockManager::new();
    let backup = m.backup(&[Kind::Data], Mode::Server, None).await.unwrap();
    let token = CancellationToken::new();
    let (m2, t2) = (m.clone(), token.clone());
    let writer =
        tokio::spawn(async move { m2.write_cancellable(Kind::Data, &t2).await.map(|_| ()) });
    sleep(SEC).await;
    assert_eq!(m.snapshot().waiting, 1);
    token.cancel();
    let err = writer.await.unwrap().unwrap_err();
    assert_eq!(err, LockError::Cancelled);
    assert_eq!(err.status().code(), -9976);
    let s = m.snapshot();
    assert_eq!((s.writers, s.waiting), ([0, 0], 0));
    drop(backup);
    assert_eq!(
        m.snapshot().writers,
        [0, 0],
        "the cancelled writer was not granted later"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_a_waiting_future_withdraws_it() {
    let m = LockManager::new();
    let backup = m.backup(&[Kind::Data], Mode::Server, None).await.unwrap();
    let r = tokio::time::timeout(SEC, m.write(Kind::Data)).await;
    assert!(r.is_err());
    assert_eq!(m.snapshot().waiting, 0);
    drop(backup);
    assert_eq!(m.snapshot().writers, [0, 0]);
}

#[tokio::test(start_paused = true)]
async fn guards_are_released_when_their_holder_panics() {
    let m = LockManager::new();
    let m2 = m.clone();
    let task = tokio::spawn(async move {
        let _g = m2.write(Kind::Data).await;
        let _b = m2.read(Kind::Structure).await;
        panic!("host code failed while holding guards");
    });
    assert!(task.await.is_err());
    let s = m.snapshot();
    assert_eq!((s.readers, s.writers), ([0, 0], [0, 0]));
    assert!(
        m.backup(&Kind::ALL, Mode::SingleUser, Some(SEC))
            .await
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn a_single_user_backup_waits_for_readers_in_progress() {
    let m = LockManager::new();
    let reader = m.read(Kind::Data).await;
    let m2 = m.clone();
    let backup = tokio::spawn(async move {
        m2.backup(&[Kind::Data], Mode::SingleUser, Some(10 * SEC))
            .await
            .map(|g| g.waited())
    });
    sleep(SEC).await;
    assert!(
        m.try_read(Kind::Data).is_none(),
        "new readers queue behind the waiting backup"
    );
    drop(reader);
    assert_eq!(backup.await.unwrap().unwrap(), SEC);
}
