//! The records actor: the only writer, in this process, of the app's Backup
//! Journal, of `backupHistory.json` in its destinations and of
//! `APP/Logs/sauve-state.json`. Backup runs, the scheduler, restores,
//! integrations and the open check all ask it; other processes are kept in
//! order by the advisory lock around each change (`crate::records`).
//!
//! Being one actor on one thread is what makes it the only writer here:
//! changes from every part of the process are applied one after the other.
//! It keeps the state as last read or written; every change starts from the
//! file, under its lock, so another process's update is never undone.

pub(crate) mod messages;

use std::path::PathBuf;

use actix::{Actor, Handler, SyncContext};

use crate::error::EngineError;
use crate::records;
use crate::state::EngineState;
use messages::*;

/// See the module documentation.
pub(crate) struct Records {
    app: PathBuf,
    state: EngineState,
}

impl Records {
    pub(crate) fn new(app: PathBuf) -> Records {
        let state = EngineState::load(&app);
        Records { app, state }
    }

    fn update(&mut self, change: impl FnOnce(&mut EngineState)) -> Result<(), EngineError> {
        self.state = records::update_state(&self.app, change)?;
        Ok(())
    }
}

impl Actor for Records {
    type Context = SyncContext<Self>;
}

impl Handler<RotateJournal> for Records {
    type Result = Result<Option<u16>, EngineError>;
    fn handle(&mut self, _: RotateJournal, _: &mut SyncContext<Self>) -> Self::Result {
        records::rotate_journal(&self.app)
    }
}

impl Handler<AppendJournal> for Records {
    type Result = Result<(), EngineError>;
    fn handle(&mut self, msg: AppendJournal, _: &mut SyncContext<Self>) -> Self::Result {
        records::append_journal(&self.app, &msg.entry, msg.verbose)
    }
}

impl Handler<NextNumber> for Records {
    type Result = Result<(sauve_history::Numbering, Vec<String>), EngineError>;
    fn handle(&mut self, msg: NextNumber, _: &mut SyncContext<Self>) -> Self::Result {
        records::next_number(&msg.destination, &msg.key, &msg.base, msg.now)
    }
}

impl Handler<RecordHistory> for Records {
    type Result = Result<Vec<String>, EngineError>;
    fn handle(&mut self, msg: RecordHistory, _: &mut SyncContext<Self>) -> Self::Result {
        records::record_history(
            &msg.destination,
            &msg.key,
            msg.entry,
            msg.limit,
            &msg.removed,
            msg.now,
        )
    }
}

impl Handler<RecordLastBackup> for Records {
    type Result = Result<(), EngineError>;
    fn handle(&mut self, msg: RecordLastBackup, _: &mut SyncContext<Self>) -> Self::Result {
        self.update(|s| {
            s.last_backup = Some(msg.last);
            if msg.ratio.is_some() {
                s.last_ratio = msg.ratio;
            }
            if msg.data.is_some() {
                s.last_data = msg.data;
            }
        })
    }
}

impl Handler<ReadState> for Records {
    type Result = StateRead;
    fn handle(&mut self, _: ReadState, _: &mut SyncContext<Self>) -> StateRead {
        // Another process (a second `sauve backup`) may have written since.
        self.state = EngineState::load(&self.app);
        StateRead(self.state.clone())
    }
}

impl Handler<SaveSchedulerState> for Records {
    type Result = Result<(), EngineError>;
    fn handle(&mut self, msg: SaveSchedulerState, _: &mut SyncContext<Self>) -> Self::Result {
        self.update(|s| s.scheduler = Some(msg.state))
    }
}
