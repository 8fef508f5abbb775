//! The lock keeper: the backup's side of the shared [`LockManager`] (behaviour §7).
//! Host code takes its read and write guards directly from the manager (a
//! few dozen nanoseconds, no message); the keeper owns the backup's
//! acquisitions: it waits for the writes in progress within the timeout
//! (1405), holds each backup guard for its run, releases it when asked or
//! when the run ends however it ends, and measures the lock windows.

pub(crate) mod messages;

use std::collections::HashMap;
use std::time::Duration;

use actix::{Actor, ActorFutureExt, Context, Handler, ResponseActFuture, WrapFuture};
use sauve_locking::{BackupGuard, Kind, LockManager};

use crate::error::EngineError;
use messages::*;

/// See the module documentation.
pub(crate) struct LockKeeper {
    locks: LockManager,
    held: HashMap<(u64, Kind), BackupGuard>,
}

impl LockKeeper {
    pub(crate) fn new(locks: LockManager) -> LockKeeper {
        LockKeeper {
            locks,
            held: HashMap::new(),
        }
    }
}

impl Actor for LockKeeper {
    type Context = Context<Self>;
}

impl Handler<AcquireBackupLock> for LockKeeper {
    type Result = ResponseActFuture<Self, Result<(), EngineError>>;
    fn handle(&mut self, msg: AcquireBackupLock, _: &mut Context<Self>) -> Self::Result {
        let locks = self.locks.clone();
        let AcquireBackupLock {
            run,
            kind,
            mode,
            timeout,
            stop,
        } = msg;
        // The wait runs beside other messages: a release for another kind,
        // or a ReleaseRun, is never stuck behind it.
        Box::pin(
            async move {
                let kinds = [kind];
                // Dropping the waiting request withdraws it: Stop leaves
                // nothing queued, and the writers behind it go on.
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => Err(EngineError::Stopped),
                    lock = locks.backup(&kinds, mode, timeout) => lock.map_err(EngineError::from),
                }
            }
            .into_actor(self)
            .map(move |result, act, _| {
                let guard = result?;
                act.held.insert((run, kind), guard);
                Ok(())
            }),
        )
    }
}

impl Handler<ReleaseBackupLock> for LockKeeper {
    type Result = Option<Duration>;
    fn handle(&mut self, msg: ReleaseBackupLock, _: &mut Context<Self>) -> Option<Duration> {
        self.held
            .remove(&(msg.run, msg.kind))
            .map(BackupGuard::release)
    }
}

impl Handler<ReleaseRun> for LockKeeper {
    type Result = ();
    fn handle(&mut self, msg: ReleaseRun, _: &mut Context<Self>) {
        self.held.retain(|(run, _), _| *run != msg.run);
    }
}
