//! What the journal keeper is asked.

use actix::Message;
use sauve_journal::Entry;

use crate::error::EngineError;

/// The Backup Journal's rotation check before a backup (behaviour §11.3).
#[derive(Message)]
#[rtype(result = "Result<Option<u16>, EngineError>")]
pub(crate) struct RotateJournal;

/// Appends one entry to the Backup Journal, verbose as the journal's mode
/// says, or whole whatever the mode (an alert's own entry, whose reason is
/// its point).
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) struct AppendJournal {
    pub(crate) entry: Entry,
    pub(crate) whole: bool,
}

impl AppendJournal {
    /// An entry written as the journal's verbose mode says.
    pub(crate) fn new(entry: Entry) -> AppendJournal {
        AppendJournal {
            entry,
            whole: false,
        }
    }

    /// An entry written whole, whatever the mode.
    pub(crate) fn whole(entry: Entry) -> AppendJournal {
        AppendJournal { entry, whole: true }
    }
}

/// The journal's verbose mode as the settings now say (verbose when they
/// cannot be read): told by the resolver each time it reads them.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SetVerbose(pub(crate) bool);
