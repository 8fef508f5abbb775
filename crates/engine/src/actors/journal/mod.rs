//! The journal keeper: the only writer, in this process, of the app's
//! Backup Journal (behaviour §11). It owns the journal's rotation and its
//! verbose mode: read once from the settings when the engine starts, then
//! changed by the resolver's [`messages::SetVerbose`] each time the
//! settings are read, so that no one else decides how an entry is written.
//! Other processes are kept in order by the advisory lock around each
//! append (`crate::records`).

pub(crate) mod messages;

use std::path::PathBuf;

use actix::{Actor, Handler, SyncContext};

use crate::error::EngineError;
use crate::records;
use messages::*;

/// See the module documentation.
pub(crate) struct JournalKeeper {
    app: PathBuf,
    verbose: bool,
}

impl JournalKeeper {
    /// The keeper of `app`'s journal, verbose as its settings say now
    /// (verbose when they cannot be read).
    pub(crate) fn new(app: PathBuf) -> JournalKeeper {
        let verbose = sauve_settings::load_effective(&app).map_or(true, |e| {
            e.doc.settings().advanced.backup_journal_verbose_mode
        });
        JournalKeeper { app, verbose }
    }
}

impl Actor for JournalKeeper {
    type Context = SyncContext<Self>;
}

impl Handler<RotateJournal> for JournalKeeper {
    type Result = Result<Option<u16>, EngineError>;
    fn handle(&mut self, _: RotateJournal, _: &mut SyncContext<Self>) -> Self::Result {
        records::rotate_journal(&self.app)
    }
}

impl Handler<AppendJournal> for JournalKeeper {
    type Result = Result<(), EngineError>;
    fn handle(&mut self, msg: AppendJournal, _: &mut SyncContext<Self>) -> Self::Result {
        records::append_journal(&self.app, &msg.entry, msg.whole || self.verbose)
    }
}

impl Handler<SetVerbose> for JournalKeeper {
    type Result = ();
    fn handle(&mut self, msg: SetVerbose, _: &mut SyncContext<Self>) {
        self.verbose = msg.0;
    }
}
