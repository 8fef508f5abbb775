//! The coordinator: admits one run at a time (1402), starts it, stops it,
//! and keeps the last report. The lock keeper: the engine's side of the
//! lock manager, handing out backup locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::{
    Actor, ActorFutureExt, Addr, Context, Handler, ResponseActFuture, ResponseFuture, SyncArbiter,
    WrapFuture,
};
use sauve_locking::{BackupGuard, Kind, LockError, LockManager, Mode};
use sauve_settings::AppLayout;
use sauve_status::Status;
use tokio::sync::broadcast;

use crate::actors::workers::{Copier, HistoryKeeper, JournalWriter, Resolver};
use crate::api::{BackupEvent, BackupReport, EngineOptions, Trigger};
use crate::run::{Run, refused};

/// Messages of the coordinator and the lock keeper.
pub(crate) mod messages {
    use super::*;
    use actix::Message;

    /// Runs one backup to its end and returns its report.
    #[derive(Message)]
    #[rtype(result = "BackupReport")]
    pub(crate) struct StartBackup {
        pub(crate) trigger: Trigger,
        pub(crate) scheduled: Option<jiff::Timestamp>,
    }

    /// The Stop button: ends the running copy (1406). Returns whether a run was going.
    #[derive(Message)]
    #[rtype(result = "bool")]
    pub(crate) struct StopBackup;

    /// Whether a run is going.
    #[derive(Message)]
    #[rtype(result = "bool")]
    pub(crate) struct IsRunning;

    /// The backup lock on some kinds.
    #[derive(Message)]
    #[rtype(result = "Result<BackupGuard, LockError>")]
    pub(crate) struct TakeBackupLock {
        pub(crate) kinds: Vec<Kind>,
        pub(crate) mode: Mode,
        pub(crate) timeout: Option<std::time::Duration>,
    }
}

use messages::*;

/// The addresses a run talks to.
#[derive(Clone)]
pub(crate) struct Workers {
    pub(crate) resolver: Addr<Resolver>,
    pub(crate) copier: Addr<Copier>,
    pub(crate) journal: Addr<JournalWriter>,
    pub(crate) history: Addr<HistoryKeeper>,
    pub(crate) locks: Addr<LockKeeper>,
}

impl Workers {
    /// Starts the worker actors; must run inside the actix system.
    pub(crate) fn start(locks: LockManager) -> Workers {
        Workers {
            resolver: SyncArbiter::start(1, || Resolver),
            copier: SyncArbiter::start(1, || Copier),
            journal: SyncArbiter::start(1, JournalWriter::default),
            history: SyncArbiter::start(1, || HistoryKeeper),
            locks: LockKeeper { locks }.start(),
        }
    }
}

/// Hands out backup locks from the lock manager host apps share.
pub(crate) struct LockKeeper {
    locks: LockManager,
}

impl Actor for LockKeeper {
    type Context = Context<Self>;
}

impl Handler<TakeBackupLock> for LockKeeper {
    type Result = ResponseFuture<Result<BackupGuard, LockError>>;
    fn handle(&mut self, msg: TakeBackupLock, _: &mut Context<Self>) -> Self::Result {
        let locks = self.locks.clone();
        Box::pin(async move { locks.backup(&msg.kinds, msg.mode, msg.timeout).await })
    }
}

/// Runs backups, one at a time.
pub(crate) struct Coordinator {
    pub(crate) layout: AppLayout,
    pub(crate) options: EngineOptions,
    pub(crate) workers: Workers,
    pub(crate) events: broadcast::Sender<BackupEvent>,
    pub(crate) running: Option<Arc<AtomicBool>>,
    pub(crate) runs: u64,
    pub(crate) last: Option<BackupReport>,
}

impl Actor for Coordinator {
    type Context = Context<Self>;
}

impl Handler<StartBackup> for Coordinator {
    type Result = ResponseActFuture<Self, BackupReport>;
    fn handle(&mut self, msg: StartBackup, _: &mut Context<Self>) -> Self::Result {
        let now = self.options.clock.now();
        if self.running.is_some() {
            // Refusals record nothing (SPEC 5 step 1).
            let report = refused(
                msg.trigger,
                now,
                Status::AlreadyRunning,
                "a backup is already running for this app",
            );
            return Box::pin(actix::fut::ready(report));
        }
        let stop = Arc::new(AtomicBool::new(false));
        self.running = Some(stop.clone());
        self.runs += 1;
        let run = Run {
            id: self.runs,
            trigger: msg.trigger,
            scheduled: msg.scheduled,
            layout: self.layout.clone(),
            options: self.options.clone(),
            workers: self.workers.clone(),
            events: self.events.clone(),
            stop,
        };
        Box::pin(run.execute().into_actor(self).map(|report, act, _| {
            act.running = None;
            act.last = Some(report.clone());
            report
        }))
    }
}

impl Handler<StopBackup> for Coordinator {
    type Result = bool;
    fn handle(&mut self, _: StopBackup, _: &mut Context<Self>) -> bool {
        match &self.running {
            Some(stop) => {
                stop.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

impl Handler<IsRunning> for Coordinator {
    type Result = bool;
    fn handle(&mut self, _: IsRunning, _: &mut Context<Self>) -> bool {
        self.running.is_some()
    }
}
