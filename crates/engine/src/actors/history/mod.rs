//! The history keeper: the only writer, in this process, of
//! `backupHistory.json` in the app's destinations (behaviour §12). It owns
//! the numbering of backups (the next number, continued after a history
//! that was deleted or damaged), "keep only the last X" applied to the
//! entries, and the off-site state of each set; a destination asks it for
//! a number, it does not decide one. Other processes are kept in order by
//! the advisory lock around each change (`crate::records`).

pub(crate) mod messages;

use actix::{Actor, Handler, SyncContext};

use crate::error::EngineError;
use crate::records;
use messages::*;

/// See the module documentation.
#[derive(Default)]
pub(crate) struct HistoryKeeper;

impl Actor for HistoryKeeper {
    type Context = SyncContext<Self>;
}

impl Handler<NextNumber> for HistoryKeeper {
    type Result = Result<(sauve_history::Numbering, Vec<String>), EngineError>;
    fn handle(&mut self, msg: NextNumber, _: &mut SyncContext<Self>) -> Self::Result {
        records::next_number(&msg.destination, &msg.key, &msg.base, msg.now, &msg.taken)
    }
}

impl Handler<RecordHistory> for HistoryKeeper {
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

impl Handler<RecordOffsite> for HistoryKeeper {
    type Result = Result<(), EngineError>;
    fn handle(&mut self, msg: RecordOffsite, _: &mut SyncContext<Self>) -> Self::Result {
        records::record_offsite(
            &msg.destination,
            &msg.key,
            msg.number,
            &msg.label,
            msg.copy,
            msg.now,
        )
    }
}
