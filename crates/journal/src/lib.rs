//! The Backup Journal (behaviour §11): `APP/Logs/Backup Journal[NNN].txt`,
//! the human-readable report of every backup, restore and log integration.
//!
//! Entries are typed ([`Entry`]) and rendered in 4D's grammar, verbose or
//! not; each is appended in one write and fsynced, so a crash never garbles
//! an earlier entry. Files rotate past 10 MiB, `[999]` wrapping to `[001]`.
//! The reader parses sauve's journals and 4D's (old `Label : value` lines,
//! v15+'s colon-less dates, locale dates).
//!
//! Not here: deciding what a run writes (the engine does), clocks (entries
//! carry their times), or anything about archives.
//!
//! Invariants (property-tested): numbers never skip or repeat, never pass
//! 999, wrap to 001; a file holds at most 10 MiB plus one entry.

mod entry;
mod error;
mod files;
mod parse;
mod rotation;

pub use entry::{AttachmentLine, Entry, Stamp, Title};
pub use error::JournalError;
pub use files::{Journal, journal_dir, read_all, read_newest};
pub use parse::{parse_date, parse_journal};
pub use rotation::{
    LIMIT as SIZE_LIMIT, MAX_NUMBER, current, file_name, next_number, parse_file_name,
};
