//! What the off-site copier is told and asked.

use std::path::PathBuf;

use actix::Message;

/// A run recorded itself: copy what is not yet copied from `destination`
/// (the sets of `key`, named after `base`) to every `[[offsite]]` entry.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub(crate) struct Kick {
    pub(crate) destination: PathBuf,
    pub(crate) key: String,
    pub(crate) base: String,
}

/// Waits until the copy under way (if any) has ended.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct DrainCopies;
