//! What the off-site copier is told and asked.

use std::path::PathBuf;

use actix::Message;

/// A run recorded itself: copy what is not yet copied from `source` (the
/// sets of `key`, named after `base`, recorded in `destination`) to every
/// `[[offsite]]` entry.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub(crate) struct Kick {
    /// The run's destination, a folder or a bucket prefix, as the settings name it.
    pub(crate) source: sauve_settings::Destination,
    /// Its records: the history of the sets and of their copies.
    pub(crate) destination: PathBuf,
    pub(crate) key: String,
    pub(crate) base: String,
}

/// Waits until the copy under way (if any) has ended.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct DrainCopies;
