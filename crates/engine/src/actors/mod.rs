//! The actors, each owning its state and its responsibility; they talk
//! through the typed messages of their `messages.rs`. actix stays inside
//! this module tree and `handle.rs`.
//!
//! - [`coordinator`]: admits requests (one backup, restore or integration at
//!   a time, in this process and across processes), runs backups, Stop.
//! - [`locks`]: the backup's side of the lock manager: acquisitions,
//!   timeouts, lock windows.
//! - [`resolver`]: the settings and the content of a run, what is missing.
//! - [`copier`]: archive sets from creation to commit or abort, retention,
//!   restores.
//! - [`journal`]: the only writer of the Backup Journal; owns its rotation
//!   and its verbose mode.
//! - [`history`]: the only writer of `backupHistory.json`; owns the
//!   numbering and "keep only the last X".
//! - [`state`]: the only writer of `APP/Logs/sauve-state.json` (last
//!   backup, scheduler, alerts, set-aside records).
//! - [`alerts`]: alerts delivered in the background, journaled when done.
//! - [`offsite`]: committed sets copied to every `[[offsite]]` destination
//!   in the background, retried with backoff, pruned there.

use actix::Addr;

pub(crate) mod alerts;
pub(crate) mod coordinator;
pub(crate) mod copier;
pub(crate) mod history;
pub(crate) mod journal;
pub(crate) mod locks;
pub(crate) mod offsite;
pub(crate) mod resolver;
pub(crate) mod state;

/// The addresses a run and the handle talk to, and the engine's runtime
/// for store calls and blocking reads.
#[derive(Clone)]
pub(crate) struct Actors {
    pub(crate) io: crate::io::StoreIo,
    pub(crate) resolver: Addr<resolver::Resolver>,
    pub(crate) copier: Addr<copier::Copier>,
    pub(crate) journal: Addr<journal::JournalKeeper>,
    pub(crate) history: Addr<history::HistoryKeeper>,
    pub(crate) state: Addr<state::StateKeeper>,
    pub(crate) locks: Addr<locks::LockKeeper>,
    pub(crate) alerter: Addr<alerts::Alerter>,
    pub(crate) offsite: Addr<offsite::Offsite>,
}

/// Sends `msg` to `addr` and waits for the reply; a dead actor is
/// [`crate::EngineError::Gone`].
pub(crate) async fn ask<A, M>(
    addr: &Addr<A>,
    actor: &'static str,
    msg: M,
) -> Result<M::Result, crate::EngineError>
where
    A: actix::Actor + actix::Handler<M>,
    A::Context: actix::dev::ToEnvelope<A, M>,
    M: actix::Message + Send + 'static,
    M::Result: Send,
{
    addr.send(msg)
        .await
        .map_err(|_| crate::EngineError::Gone { actor })
}
