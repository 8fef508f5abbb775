//! The handle's views: what a host reads and changes beside the verbs of
//! [`BackupHandle`](crate::BackupHandle). Each view borrows the handle's
//! parts (never the handle itself, so this module does not depend on
//! `handle.rs`), costs nothing to make (`handle.records()`,
//! `handle.alerts()`, `handle.offsite()`, `handle.config()`) and is
//! `Copy`; its methods take it by value, so their futures borrow the
//! handle, not the view.
//!
//! A view asks the actors as the handle does: reads of files run on the
//! engine's blocking pool (`StoreIo::blocking`), never on the caller's
//! executor; every change goes to the actor that owns the file.

use std::sync::Arc;

use sauve_settings::AppLayout;
use tokio::sync::watch;

use crate::actors::Actors;
use crate::api::Clock;

mod alerts;
mod config;
mod offsite;
mod records;

pub use alerts::Alerts;
pub use config::Config;
pub use offsite::Offsite;
pub use records::Records;

/// What a view reads of the engine: the handle's parts.
#[derive(Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub(crate) layout: &'a AppLayout,
    pub(crate) actors: &'a Actors,
    pub(crate) clock: &'a Arc<dyn Clock>,
    /// Bumped when someone saved the settings.
    pub(crate) saved: &'a watch::Sender<u64>,
}

impl std::fmt::Debug for Parts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts")
            .field("app", &self.layout.app)
            .finish_non_exhaustive()
    }
}
