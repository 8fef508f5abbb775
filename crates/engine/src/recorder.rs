//! The records side of the blocking operations (open check, log
//! integration, restore to a point): they run on the caller's thread, since
//! they call the host's apply function, and ask the actors through
//! [`call`], which waits for the reply on a plain channel. Their journal
//! entries go to the journal keeper, their history records to the history
//! keeper; a failure to write one is a warning of the operation.

use std::path::PathBuf;
use std::sync::Arc;

use actix::Addr;
use sauve_journal::Entry;
use sauve_settings::AppLayout;

use crate::actors::Actors;
use crate::actors::history::messages::RecordHistory;
use crate::actors::journal::messages::AppendJournal;
use crate::actors::resolver::messages::{ReadOwnSettings, ReadSettings};
use crate::actors::state::messages::SetAsideChange;
use crate::api::Clock;
use crate::error::EngineError;
use crate::settings::AppSettings;

/// Sends `msg` to `addr` and waits on this thread for the reply. The
/// request is sent from the engine's actix thread and the reply comes back
/// through a plain channel: no executor is driven here, so this works on
/// any thread that is not the engine's own (a host's, a blocking task's).
pub(crate) fn call<A, M>(
    system: &actix::System,
    addr: &Addr<A>,
    actor: &'static str,
    msg: M,
) -> Result<M::Result, EngineError>
where
    A: actix::Actor + actix::Handler<M>,
    A::Context: actix::dev::ToEnvelope<A, M>,
    M: actix::Message + Send + 'static,
    M::Result: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let addr = addr.clone();
    let sent = system.arbiter().spawn(async move {
        let _ = tx.send(addr.send(msg).await);
    });
    if !sent {
        return Err(EngineError::Gone { actor });
    }
    match rx.recv() {
        Ok(Ok(reply)) => Ok(reply),
        _ => Err(EngineError::Gone { actor }),
    }
}

/// What a blocking operation records, and the warnings of what it could
/// not record.
pub(crate) struct Recorder<'a> {
    layout: &'a AppLayout,
    clock: &'a dyn Clock,
    actors: &'a Actors,
    system: &'a actix::System,
    pub(crate) warnings: Vec<String>,
}

impl<'a> Recorder<'a> {
    pub(crate) fn new(
        layout: &'a AppLayout,
        clock: &'a dyn Clock,
        actors: &'a Actors,
        system: &'a actix::System,
    ) -> Recorder<'a> {
        Recorder {
            layout,
            clock,
            actors,
            system,
            warnings: Vec::new(),
        }
    }

    pub(crate) fn layout(&self) -> &AppLayout {
        self.layout
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        self.clock
    }

    /// The engine's runtime for store calls.
    pub(crate) fn io(&self) -> &crate::io::StoreIo {
        &self.actors.io
    }

    /// The app's effective settings, read and validated now (1419).
    pub(crate) fn settings(&self) -> Result<Arc<AppSettings>, EngineError> {
        call(self.system, &self.actors.resolver, "resolver", ReadSettings)?
    }

    /// sauve.toml as the resolver reads it now, when it is valid.
    pub(crate) fn own_settings(&self) -> Option<Arc<sauve_settings::SauveToml>> {
        let own = call(
            self.system,
            &self.actors.resolver,
            "resolver",
            ReadOwnSettings,
        )
        .ok()?;
        own.problem.is_none().then_some(own.settings)
    }

    /// sauve.toml as the resolver reads it now, or why it is not valid.
    pub(crate) fn own_settings_valid(&self) -> Result<Arc<sauve_settings::SauveToml>, EngineError> {
        call(
            self.system,
            &self.actors.resolver,
            "resolver",
            ReadOwnSettings,
        )?
        .valid()
    }

    /// What point-in-time restores set aside, for an integration: read
    /// strictly ([`crate::state::read_set_asides`]).
    pub(crate) fn set_asides(&self) -> Result<Vec<sauve_logfile::SetAside>, EngineError> {
        crate::state::read_set_asides(&self.layout.app)
    }

    /// Changes what point-in-time restores set aside (the state keeper
    /// writes it); unlike a journal entry, a failure fails the operation.
    pub(crate) fn set_aside(&mut self, change: SetAsideChange) -> Result<(), EngineError> {
        call(self.system, &self.actors.state, "state", change)?
    }

    pub(crate) fn journal(&mut self, entry: Entry) {
        // Read now, the settings tell the journal its mode.
        let _ = self.settings();
        let msg = AppendJournal::new(entry);
        let written = call(self.system, &self.actors.journal, "journal", msg);
        if let Err(e) = written.and_then(|r| r) {
            self.warnings
                .push(format!("the Backup Journal was not written: {e}"));
        }
    }

    /// Keeps a rehearsal's record in the state (behaviour §22).
    pub(crate) fn record_rehearsal(&mut self, record: crate::state::RehearsalRecord) {
        let msg = crate::actors::state::messages::RecordRehearsal { record };
        let written = call(self.system, &self.actors.state, "state", msg);
        if let Err(e) = written.and_then(|r| r) {
            self.warnings
                .push(format!("the rehearsal was not recorded in the state: {e}"));
        }
    }

    /// Raises an alert; `entry` is journaled once its deliveries are known.
    pub(crate) fn raise(
        &mut self,
        draft: crate::actors::alerts::messages::AlertDraft,
        entry: Entry,
    ) {
        // Read now, the settings tell the journal its mode.
        let _ = self.settings();
        let msg = crate::actors::alerts::messages::RaiseAlert {
            draft,
            journal: entry,
            whole: false,
        };
        let raised = call(self.system, &self.actors.alerter, "alerter", msg);
        if let Err(e) = raised.and_then(|r| r) {
            self.warnings.push(format!("the alert was not raised: {e}"));
        }
    }

    pub(crate) fn history(
        &mut self,
        destination: PathBuf,
        key: String,
        entry: sauve_history::HistoryEntry,
    ) {
        let msg = RecordHistory {
            destination,
            key,
            entry,
            limit: sauve_history::UNLIMITED,
            removed: Vec::new(),
            now: self.clock.now(),
        };
        let written = call(self.system, &self.actors.history, "history", msg);
        if let Err(e) = written.and_then(|r| r) {
            self.warnings
                .push(format!("the history was not written: {e}"));
        }
    }
}
