//! Paused tokio time for the engine and the scheduler loop: a clock that
//! reads the test runtime's paused clock from any thread, and waits that
//! never sleep (they wait on what the scheduler and the engine publish, so
//! paused time moves only to the scheduler's own wake-ups).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use jiff::Timestamp;
use sauve_engine::{BackupEvent, Clock, SchedulerView};
use tokio::sync::{broadcast, watch};

/// Wall-clock time that is tokio's paused time: `base` plus what the test
/// runtime's clock says elapsed. It enters that runtime to read it, so the
/// engine's thread sees the same instant as the scheduler.
pub struct PausedClock {
    base: Timestamp,
    start: tokio::time::Instant,
    runtime: tokio::runtime::Handle,
}

impl PausedClock {
    /// A clock that reads `base` now; call it inside the paused test runtime.
    pub fn at(base: &str) -> Arc<PausedClock> {
        Arc::new(PausedClock {
            base: base.parse().unwrap(),
            start: tokio::time::Instant::now(),
            runtime: tokio::runtime::Handle::current(),
        })
    }
}

impl Clock for PausedClock {
    fn now(&self) -> Timestamp {
        let _in_test_runtime = self.runtime.enter();
        let elapsed = tokio::time::Instant::now() - self.start;
        self.base + jiff::SignedDuration::try_from(elapsed).unwrap()
    }

    fn zone(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::UTC
    }
}

/// The next `finished` event: (status, number).
pub async fn finished(events: &mut broadcast::Receiver<BackupEvent>) -> (i32, u32) {
    loop {
        if let BackupEvent::Finished { status, number, .. } = events.recv().await.unwrap() {
            return (status, number.get());
        }
    }
}

/// Waits until the scheduler publishes a view that `ok` accepts; each look
/// it takes (at least one a minute of paused time) is one chance.
pub async fn until(
    view: &mut watch::Receiver<SchedulerView>,
    what: &str,
    ok: impl Fn(&SchedulerView) -> bool,
) -> SchedulerView {
    for _ in 0..100_000 {
        let v = *view.borrow_and_update();
        if ok(&v) {
            return v;
        }
        view.changed().await.unwrap();
    }
    panic!("the scheduler never showed {what}: {:?}", *view.borrow());
}

/// Waits until the scheduler has looked at or after `t`.
pub async fn looked_at(view: &mut watch::Receiver<SchedulerView>, t: Timestamp) -> SchedulerView {
    until(view, &format!("a look at {t}"), |v| {
        v.checked.is_some_and(|c| c >= t)
    })
    .await
}

/// Runs `work` (a call into the engine that takes real time) on a thread of
/// its own while this runtime busy-yields: paused time stands still until
/// it is done, as it would for a call that takes no time.
pub async fn frozen<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let thread = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work)
    });
    while !thread.is_finished() {
        tokio::task::yield_now().await;
    }
    thread.join().unwrap()
}

/// Runs `work` (blocking: the CLI in-process, which starts runtimes of its
/// own) on a plain thread while this runtime busy-yields, as [`frozen`].
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let thread = std::thread::spawn(work);
    while !thread.is_finished() {
        tokio::task::yield_now().await;
    }
    thread.join().unwrap()
}

/// Spawns the scheduler loop of `handle`; its view and its task.
pub fn scheduler(
    handle: &sauve_engine::BackupHandle,
) -> (watch::Receiver<SchedulerView>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(SchedulerView::default());
    let task = tokio::spawn(sauve_engine::scheduler_loop(handle.clone(), tx));
    (rx, task)
}

/// `s` as a timestamp.
pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}
