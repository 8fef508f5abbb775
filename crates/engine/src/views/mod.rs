//! The handle's views: what a host reads and changes beside the verbs of
//! [`BackupHandle`](crate::BackupHandle). Each view borrows the handle,
//! costs nothing to make (`handle.records()`, `handle.alerts()`,
//! `handle.offsite()`, `handle.config()`) and is `Copy`; its methods take
//! it by value, so their futures borrow the handle, not the view.
//!
//! A view asks the actors as the handle does: reads of files run on the
//! engine's blocking pool (`StoreIo::blocking`), never on the caller's
//! executor; every change goes to the actor that owns the file.

mod alerts;
mod config;
mod offsite;
mod records;

pub use alerts::Alerts;
pub use config::Config;
pub use offsite::Offsite;
pub use records::Records;
