//! Crash and fault points: every durable step sauve takes (create, write,
//! fsync, rename, link, unlink, folder fsync), in sauve-durable, the archive
//! writer and its commit, retention, the log cut and the records, calls
//! [`point`] first. So does every request that writes to a bucket
//! (sauve-store's S3 store: an upload started, a part, the completion that
//! makes it visible and its answer received, a put, a delete), its path the
//! object's `s3://` URL.
//!
//! In a normal build `point` does nothing and costs nothing. Built with the
//! `fault-points` feature (tests and `cargo xtask crash` only, never a
//! release), it counts the steps of the process and, as the environment
//! says, stops at the Nth:
//!
//! - `SAUVE_FAULT_AT=N`: the step to act at (1 is the first);
//! - `SAUVE_FAULT=abort` (the default) ends the process there at once, as a
//!   power cut or `kill -9` would (no destructor runs, nothing is flushed);
//!   `enospc`, `eio` or `erofs` make that one step fail with that error;
//! - `SAUVE_FAULT_LOG=FILE` appends `N step path` for every step taken, so
//!   that a first run tells how many points a scenario has;
//! - `SAUVE_STOP_AT=M` makes [`stop_requested`] true from the Mth step on:
//!   the engine then stops its run as if Stop was pressed.

use std::io;
use std::path::Path;

/// A durable step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// A file or folder created.
    Create,
    /// Bytes written.
    Write,
    /// A file fsynced.
    Sync,
    /// A rename.
    Rename,
    /// A hard link made.
    Link,
    /// A file or folder removed.
    Unlink,
    /// A folder fsynced.
    SyncFolder,
}

impl Step {
    /// The word the log uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::Write => "write",
            Step::Sync => "sync",
            Step::Rename => "rename",
            Step::Link => "link",
            Step::Unlink => "unlink",
            Step::SyncFolder => "sync-folder",
        }
    }
}

/// Called before each durable step on `path`: `Ok` to go on, or the fault
/// to return instead. Ends the process at the crash point.
#[inline]
pub fn point(step: Step, path: &Path) -> io::Result<()> {
    #[cfg(feature = "fault-points")]
    {
        armed::point(step, path)
    }
    #[cfg(not(feature = "fault-points"))]
    {
        let _ = (step, path);
        Ok(())
    }
}

/// Whether a Stop is asked now: with `SAUVE_STOP_AT=M`, once M steps were
/// taken (a stopped backup at a chosen step, for the crash tests). Always
/// `false` in a normal build.
#[inline]
pub fn stop_requested() -> bool {
    #[cfg(feature = "fault-points")]
    {
        armed::stop_requested()
    }
    #[cfg(not(feature = "fault-points"))]
    {
        false
    }
}

/// Whether this build has fault points.
pub const ENABLED: bool = cfg!(feature = "fault-points");

#[cfg(feature = "fault-points")]
mod armed {
    use std::io::{self, Write};
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, OnceLock};

    use super::Step;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Action {
        Abort,
        /// A raw OS error code (ENOSPC 28, EIO 5, EROFS 30 on Linux).
        Fail(i32),
    }

    struct Plan {
        at: Option<u64>,
        stop_at: Option<u64>,
        action: Action,
        log: Option<Mutex<std::fs::File>>,
    }

    static COUNT: AtomicU64 = AtomicU64::new(0);

    fn plan() -> &'static Plan {
        static PLAN: OnceLock<Plan> = OnceLock::new();
        PLAN.get_or_init(|| {
            let at = std::env::var("SAUVE_FAULT_AT")
                .ok()
                .and_then(|v| v.trim().parse().ok());
            let action = match std::env::var("SAUVE_FAULT").as_deref().map(str::trim) {
                Ok("enospc") => Action::Fail(28),
                Ok("eio") => Action::Fail(5),
                Ok("erofs") => Action::Fail(30),
                _ => Action::Abort,
            };
            let log = std::env::var_os("SAUVE_FAULT_LOG").and_then(|p| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .ok()
                    .map(Mutex::new)
            });
            let stop_at = std::env::var("SAUVE_STOP_AT")
                .ok()
                .and_then(|v| v.trim().parse().ok());
            Plan {
                at,
                stop_at,
                action,
                log,
            }
        })
    }

    pub(super) fn stop_requested() -> bool {
        plan()
            .stop_at
            .is_some_and(|m| COUNT.load(Ordering::SeqCst) >= m)
    }

    pub(super) fn point(step: Step, path: &Path) -> io::Result<()> {
        let plan = plan();
        let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(log) = &plan.log {
            let mut f = log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // One write per line, unbuffered: a crash keeps every line before it.
            let _ = f.write_all(format!("{n} {} {}\n", step.as_str(), path.display()).as_bytes());
        }
        if plan.at != Some(n) {
            return Ok(());
        }
        match plan.action {
            Action::Abort => std::process::abort(),
            Action::Fail(code) => Err(io::Error::from_raw_os_error(code)),
        }
    }
}
