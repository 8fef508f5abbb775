//! The actors. actix stays inside this module tree and `handle.rs`.

pub(crate) mod coordinator;
pub(crate) mod workers;
