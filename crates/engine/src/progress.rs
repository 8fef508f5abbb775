//! Progress and stop for one run: what the copier reports, what observers
//! receive (at most 10 file events a second), and the Stop flag.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sauve_locking::CancellationToken;
use tokio::sync::broadcast;

use crate::api::BackupEvent;

/// Shared by the run and the copier thread.
#[derive(Clone)]
pub(crate) struct RunProgress {
    pub(crate) run: u64,
    pub(crate) stop: CancellationToken,
    pub(crate) events: broadcast::Sender<BackupEvent>,
    pub(crate) done: Arc<AtomicU64>,
    pub(crate) total: u64,
    path: String,
    file_done: u64,
    file_total: u64,
    last: Option<Instant>,
}

const EVERY: Duration = Duration::from_millis(100);

impl RunProgress {
    pub(crate) fn new(
        run: u64,
        stop: CancellationToken,
        events: broadcast::Sender<BackupEvent>,
        total: u64,
    ) -> RunProgress {
        RunProgress {
            run,
            stop,
            events,
            done: Arc::new(AtomicU64::new(0)),
            total,
            path: String::new(),
            file_done: 0,
            file_total: 0,
            last: None,
        }
    }

    /// A new file begins.
    pub(crate) fn set_file(&mut self, path: &str, size: u64) {
        path.clone_into(&mut self.path);
        self.file_done = 0;
        self.file_total = size;
    }

    fn emit(&mut self) {
        self.last = Some(Instant::now());
        // No subscriber is fine: events are droppable.
        let _ = self.events.send(BackupEvent::File {
            run: self.run,
            path: self.path.clone(),
            file_done: self.file_done,
            file_total: self.file_total,
            bytes_done: self.done.load(Ordering::Relaxed),
            bytes_total: self.total,
        });
    }

    /// Sends the last position, whatever the throttle says.
    pub(crate) fn flush(&mut self) {
        self.emit();
    }
}

impl sauve_archive::Progress for RunProgress {
    fn advance(&mut self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
        self.file_done += bytes;
        if self.last.is_none_or(|t| t.elapsed() >= EVERY) {
            self.emit();
        }
    }

    fn is_stopped(&self) -> bool {
        self.stop.is_cancelled() || sauve_durable::fault::stop_requested()
    }
}
