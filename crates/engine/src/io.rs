//! The engine's one tokio runtime for store calls and blocking reads. The
//! actors run on the actix system of the engine's thread; what talks to a
//! store (an S3 client is async) runs here, and so do the handle's reads
//! of files, on its blocking pool. Nothing drives it with `block_on`: a
//! blocking caller (the copier's thread, a host's thread) hands it a task
//! and waits for the result on a plain channel.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

use crate::error::EngineError;

/// See the module documentation. Cheap to clone; the runtime ends, without
/// waiting, when the last clone goes (wherever that happens: dropping a
/// runtime inside async code is refused by tokio, shutting it down in the
/// background is not).
#[derive(Clone)]
pub(crate) struct StoreIo(Arc<Owned>);

struct Owned {
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
}

impl Drop for Owned {
    fn drop(&mut self) {
        let rt = self
            .runtime
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(rt) = rt {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for StoreIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreIo").finish_non_exhaustive()
    }
}

impl StoreIo {
    /// A runtime of two worker threads.
    pub(crate) fn start() -> io::Result<StoreIo> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sauve-store-io")
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        Ok(StoreIo(Arc::new(Owned {
            runtime: Mutex::new(Some(rt)),
            handle,
        })))
    }

    /// A handle on the runtime, for the archive's ranged readers.
    pub(crate) fn handle(&self) -> tokio::runtime::Handle {
        self.0.handle.clone()
    }

    /// Runs `task` on the runtime and waits for its result on this thread,
    /// which must not be one of the runtime's own (the copier's, a host's,
    /// a blocking task's all qualify).
    pub(crate) fn run<F>(&self, task: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.0.handle.spawn(async move {
            let _ = tx.send(task.await);
        });
        match rx.recv() {
            Ok(out) => out,
            // The task panicked (the runtime lives while `self` does): the
            // panic goes on in the caller, as it would have had the caller
            // run the task itself.
            Err(_) => std::panic::resume_unwind(Box::new("a store task panicked")),
        }
    }

    /// Runs blocking `work` on the runtime's blocking pool; awaitable from
    /// any runtime, or none.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        self.0
            .handle
            .spawn_blocking(work)
            .await
            .map_err(|_| EngineError::Internal("a reading task panicked".to_owned()))
    }
}
