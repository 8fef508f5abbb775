//! Access to an app during a backup (behaviour §7): the lock manager host
//! apps and the engine share.
//!
//! Host code takes a read or a write guard on a kind (data, structure)
//! before touching it; the engine takes a backup lock on the kinds of its
//! current phase. In server mode a backup blocks only writers; in
//! single-user mode it freezes readers too. A backup first waits for the
//! writes in progress (bounded by a timeout: then 1405 and nothing stays
//! locked); once it has asked, new writers queue behind it, so a stream of
//! writers cannot starve it; waiting writers go on in arrival order when it
//! releases. A waiting request can be cancelled (drop its future, or use a
//! cancellation token): it then reports [`LockError::Cancelled`] (the host's
//! -9976) and nothing of it happened. Guards release on drop, a panic
//! included.
//!
//! This crate is not the engine: it knows nothing of archives or actors. The
//! rules live in a pure state machine (`state.rs`); this module adds waiting
//! on top with tokio primitives, usable from any tokio runtime.
//!
//! Invariants (property-tested): no write to a kind while a backup holds it;
//! no read of a kind while a single-user backup holds it; a cancelled waiter
//! changes nothing; every guard is eventually released; queued writers go on
//! in arrival order.

mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sauve_status::Status;
use tokio::sync::oneshot;
use tokio::time::Instant;
pub use tokio_util::sync::CancellationToken;

use state::{State, Want};

/// What a lock protects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The data file, its settings and log.
    Data,
    /// The project files and structure settings.
    Structure,
}

impl Kind {
    /// Both kinds.
    pub const ALL: [Kind; 2] = [Kind::Data, Kind::Structure];

    fn index(self) -> usize {
        match self {
            Kind::Data => 0,
            Kind::Structure => 1,
        }
    }
}

/// How a backup locks (behaviour §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The locked kinds freeze: readers and writers wait.
    SingleUser,
    /// Readers go on; writers wait.
    Server,
}

/// Why a lock was not obtained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The writes (or single-user reads) in progress outlasted the timeout;
    /// nothing stays locked (1405).
    #[error("writes in progress on {kinds:?} did not end within {timeout:?}")]
    Timeout {
        /// The kinds asked for.
        kinds: Vec<Kind>,
        /// The limit.
        timeout: Duration,
    },
    /// The waiting request was cancelled; nothing of it happened (-9976).
    #[error("the waiting request was cancelled")]
    Cancelled,
}

impl LockError {
    /// The status code: 1405 for a timeout, -9976 for a cancelled wait.
    pub fn status(&self) -> Status {
        match self {
            LockError::Timeout { .. } => Status::LockTimeout,
            LockError::Cancelled => Status::WriteCancelled,
        }
    }
}

/// Holders and waiters, for monitoring and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Active readers per kind (data, structure).
    pub readers: [usize; 2],
    /// Active writers per kind.
    pub writers: [usize; 2],
    /// The mode of a backup holding each kind.
    pub backup: [Option<Mode>; 2],
    /// Requests waiting.
    pub waiting: usize,
}

#[derive(Default)]
struct Shared {
    state: State,
    waiters: HashMap<u64, oneshot::Sender<()>>,
    /// Who holds write guards (with multiplicity), so that a backup asked
    /// for by a writer can be refused (1404) instead of waiting for itself.
    writer_tasks: Vec<Owner>,
}

/// The holder of a write guard: a tokio task, or, outside one (a
/// `block_on`), the thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Task(tokio::task::Id),
    Thread(std::thread::ThreadId),
}

impl Owner {
    fn current() -> Owner {
        match tokio::task::try_id() {
            Some(id) => Owner::Task(id),
            None => Owner::Thread(std::thread::current().id()),
        }
    }
}

/// The lock manager of one app. Cheap to clone; all clones share the locks.
#[derive(Clone, Default)]
pub struct LockManager {
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for LockManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockManager")
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

impl LockManager {
    /// A manager with nothing held.
    pub fn new() -> LockManager {
        LockManager::default()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // The state stays consistent even if a holder of the mutex panicked:
        // no code panics while holding it, and every change is one step.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holders and waiters now.
    pub fn snapshot(&self) -> Snapshot {
        let g = self.lock();
        let d = g.state.holders(Kind::Data);
        let s = g.state.holders(Kind::Structure);
        Snapshot {
            readers: [d.0, s.0],
            writers: [d.1, s.1],
            backup: [d.2, s.2],
            waiting: g.state.waiting(),
        }
    }

    /// Waits until `want` is granted. Dropping the future before that
    /// withdraws the request; if it was granted meanwhile, the grant is
    /// released, so nothing of it remains.
    async fn acquire(&self, want: Want) -> Duration {
        let started = Instant::now();
        let (ticket, rx) = {
            let mut g = self.lock();
            match g.state.request(want) {
                Ok(()) => return Duration::ZERO,
                Err(ticket) => {
                    let (tx, rx) = oneshot::channel();
                    g.waiters.insert(ticket, tx);
                    (ticket, rx)
                }
            }
        };
        let mut waiting = Waiting {
            manager: self,
            ticket,
            want,
            done: false,
        };
        // The sender is only dropped after a grant or a withdrawal, and a
        // withdrawal only happens through `waiting`, which is alive here.
        let _ = rx.await;
        waiting.done = true;
        started.elapsed()
    }

    fn release(&self, want: Want) {
        let mut g = self.lock();
        g.state.release(want);
        wake(&mut g);
    }

    /// A read guard on `kind`. Waits only while a single-user backup holds
    /// (or waits for) that kind.
    pub async fn read(&self, kind: Kind) -> ReadGuard {
        let waited = self.acquire(Want::Read(kind)).await;
        ReadGuard {
            manager: self.clone(),
            kind,
            waited,
        }
    }

    /// A read guard now, or `None` if it would wait.
    pub fn try_read(&self, kind: Kind) -> Option<ReadGuard> {
        self.lock()
            .state
            .try_request(Want::Read(kind))
            .then(|| ReadGuard {
                manager: self.clone(),
                kind,
                waited: Duration::ZERO,
            })
    }

    /// A write guard on `kind`. Waits while a backup holds or waits for that
    /// kind, behind earlier waiting writers.
    pub async fn write(&self, kind: Kind) -> WriteGuard {
        let waited = self.acquire(Want::Write(kind)).await;
        self.write_guard(kind, waited)
    }

    fn write_guard(&self, kind: Kind, waited: Duration) -> WriteGuard {
        let owner = Owner::current();
        self.lock().writer_tasks.push(owner);
        WriteGuard {
            manager: self.clone(),
            kind,
            waited,
            owner,
        }
    }

    /// A write guard now, or `None` if it would wait (the non-blocking attempt).
    pub fn try_write(&self, kind: Kind) -> Option<WriteGuard> {
        let granted = self.lock().state.try_request(Want::Write(kind));
        granted.then(|| self.write_guard(kind, Duration::ZERO))
    }

    /// Whether the calling tokio task holds a write guard: a backup it asked
    /// for would wait for itself, so the engine refuses it (1404).
    pub fn current_task_holds_write_guard(&self) -> bool {
        let owner = Owner::current();
        self.lock().writer_tasks.contains(&owner)
    }

    /// A write guard, unless `cancel` fires first: then
    /// [`LockError::Cancelled`] and nothing was written or held (4D's Cancel
    /// of a waiting write, -9976).
    pub async fn write_cancellable(
        &self,
        kind: Kind,
        cancel: &CancellationToken,
    ) -> Result<WriteGuard, LockError> {
        if cancel.is_cancelled() {
            return Err(LockError::Cancelled);
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(LockError::Cancelled),
            guard = self.write(kind) => Ok(guard),
        }
    }

    /// The backup lock on `kinds` in `mode`: waits for the writes in
    /// progress (and, single-user, the reads), at most `timeout`; meanwhile
    /// new writers queue behind it. On timeout nothing stays locked and the
    /// writers behind it go on.
    pub async fn backup(
        &self,
        kinds: &[Kind],
        mode: Mode,
        timeout: Option<Duration>,
    ) -> Result<BackupGuard, LockError> {
        let mut set = [false; 2];
        for k in kinds {
            set[k.index()] = true;
        }
        let want = Want::Backup { kinds: set, mode };
        let waited = match timeout {
            None => self.acquire(want).await,
            Some(limit) => match tokio::time::timeout(limit, self.acquire(want)).await {
                Ok(waited) => waited,
                Err(_) => {
                    return Err(LockError::Timeout {
                        kinds: kinds.to_vec(),
                        timeout: limit,
                    });
                }
            },
        };
        Ok(BackupGuard {
            manager: self.clone(),
            want,
            waited,
            acquired: Instant::now(),
            released: false,
        })
    }
}

/// Grants what can go on and tells the waiters.
fn wake(g: &mut Shared) {
    for (ticket, _) in g.state.wake() {
        if let Some(tx) = g.waiters.remove(&ticket) {
            // A waiter whose future is gone withdraws itself; see `Waiting`.
            let _ = tx.send(());
        }
    }
}

/// A request in the queue; dropped before its grant arrived, it withdraws
/// (or gives back a grant that arrived too late).
struct Waiting<'a> {
    manager: &'a LockManager,
    ticket: u64,
    want: Want,
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut g = self.manager.lock();
        g.waiters.remove(&self.ticket);
        if !g.state.withdraw(self.ticket) {
            // Granted while being dropped: give it back.
            g.state.release(self.want);
        }
        // Either way, those queued behind may go on now.
        wake(&mut g);
    }
}

/// Read access to a kind; released on drop.
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct ReadGuard {
    manager: LockManager,
    kind: Kind,
    waited: Duration,
}

impl ReadGuard {
    /// The kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }
    /// How long the reader waited.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        self.manager.release(Want::Read(self.kind));
    }
}

/// Write access to a kind; released on drop.
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct WriteGuard {
    manager: LockManager,
    kind: Kind,
    waited: Duration,
    owner: Owner,
}

impl WriteGuard {
    /// The kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }
    /// How long the writer waited (what the engine records).
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        {
            let mut g = self.manager.lock();
            if let Some(i) = g.writer_tasks.iter().position(|t| *t == self.owner) {
                g.writer_tasks.swap_remove(i);
            }
        }
        self.manager.release(Want::Write(self.kind));
    }
}

/// A backup's hold on some kinds; released by [`BackupGuard::release`] or on drop.
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct BackupGuard {
    manager: LockManager,
    want: Want,
    waited: Duration,
    acquired: Instant,
    released: bool,
}

impl BackupGuard {
    /// How long the backup waited for writes in progress.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// Releases the lock and returns the lock window (acquired to released),
    /// which the journal and the history record.
    pub fn release(mut self) -> Duration {
        self.released = true;
        self.manager.release(self.want);
        self.acquired.elapsed()
    }
}

impl Drop for BackupGuard {
    fn drop(&mut self) {
        if !self.released {
            self.manager.release(self.want);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<LockManager>();
        assert_send_sync::<ReadGuard>();
        assert_send_sync::<WriteGuard>();
        assert_send_sync::<BackupGuard>();
        assert_send_sync::<LockError>();
    }
}
