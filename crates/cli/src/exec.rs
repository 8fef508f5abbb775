//! The async runtime of a command that runs the engine, reads a store or
//! serves: one per command, owned by it and dropped when it ends.

use crate::report::Failure;

/// A runtime of two workers for one command.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))
}
