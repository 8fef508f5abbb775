//! The types host apps see: triggers, options, hooks, events, reports.
//! None of them is an actix type.

use sauve_number::BackupNumber;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sauve_archive::OpenPart;
use sauve_locking::Mode;
use sauve_status::Status;
use serde::{Deserialize, Serialize};

/// What started a backup (behaviour §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// `sauve backup`.
    Manual,
    /// The library API.
    Api,
    /// The scheduler.
    Scheduled,
    /// The control API.
    Remote,
    /// An automatic restore (O-14).
    Automatic,
}

/// A trigger word that is none of behaviour §1's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown trigger \"{0}\" (accepted: manual, api, scheduled, remote, automatic)")]
pub struct UnknownTrigger(pub String);

impl std::str::FromStr for Trigger {
    type Err = UnknownTrigger;
    fn from_str(s: &str) -> Result<Trigger, UnknownTrigger> {
        [
            Trigger::Manual,
            Trigger::Api,
            Trigger::Scheduled,
            Trigger::Remote,
            Trigger::Automatic,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| UnknownTrigger(s.to_owned()))
    }
}

impl Trigger {
    /// Whether a person or a program asked for it now (manual, api,
    /// remote): its success re-enables a scheduler turned off by 1401.
    pub fn is_on_demand(self) -> bool {
        matches!(self, Trigger::Manual | Trigger::Api | Trigger::Remote)
    }

    /// The word the journal and the history write.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Api => "api",
            Trigger::Scheduled => "scheduled",
            Trigger::Remote => "remote",
            Trigger::Automatic => "automatic",
        }
    }
}

/// A scheduled attempt (behaviour §9.1): the slot it stands for (its `Scheduled`
/// line), which attempt at that slot it is, and whether a failure now is
/// the one that gives up (AbortIfBackupFail: recorded as 1401, with the
/// underlying error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scheduled {
    /// The slot.
    pub slot: jiff::Timestamp,
    /// 1 for the slot's first attempt, then 2, 3… for its retries.
    pub attempt: u32,
    /// A failure of this attempt reaches RetryCountBeforeAbort.
    pub last_allowed: bool,
    /// Consecutive failed scheduled attempts before this one.
    pub failures: u32,
}

impl Scheduled {
    /// The first attempt at `slot`, with retries left.
    pub fn first(slot: jiff::Timestamp) -> Scheduled {
        Scheduled {
            slot,
            attempt: 1,
            last_allowed: false,
            failures: 0,
        }
    }
}

/// A future returned by a hook.
pub type HookFuture = Pin<Box<dyn Future<Output = i32> + Send>>;

/// *On Backup Startup*: returns 0 to go on; anything else refuses the run
/// and becomes its status.
pub type StartupHook = Arc<dyn Fn(Trigger) -> HookFuture + Send + Sync>;

/// *On Backup Shutdown*: receives the final status (and the archive, if any).
pub type ShutdownHook = Arc<dyn Fn(ShutdownInfo) -> HookFuture + Send + Sync>;

/// What the shutdown hook learns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShutdownInfo {
    /// The final status.
    pub status: Status,
    /// What started the run.
    pub trigger: Trigger,
    /// The first archive file, if one was committed.
    pub archive: Option<PathBuf>,
}

/// The hooks of behaviour §4.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Runs before every backup.
    pub on_startup: Option<StartupHook>,
    /// Runs after every backup whose startup hook ran.
    pub on_shutdown: Option<ShutdownHook>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("on_startup", &self.on_startup.is_some())
            .field("on_shutdown", &self.on_shutdown.is_some())
            .finish()
    }
}

/// Wall-clock time, injected so that journals and histories are testable.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> jiff::Timestamp;
    /// The local time zone for the journal's dates (`TZ` is honoured).
    fn zone(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::system()
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// How the engine runs.
#[derive(Clone)]
pub struct EngineOptions {
    /// Single-user (the CLI) or server (`sauve run`, hosts choose): behaviour §7.
    pub mode: Mode,
    /// Hooks.
    pub hooks: Hooks,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Creates archive files; tests inject writers with a byte quota.
    pub open_part: Option<Arc<dyn Fn() -> OpenPart + Send + Sync>>,
    /// zstd worker threads; 0 uses every core.
    pub threads: u32,
    /// The host's log writer, which the engine cuts at each data backup
    /// (behaviour §14.2). Without one, a sauve log found at `APP/Data/<stem>.journal`
    /// is cut by the engine itself.
    pub log: Option<Arc<sauve_logfile::LogWriter>>,
    /// How alerts are delivered: timeout and retries (behaviour §17.2's by
    /// default; tests shorten them).
    pub alert_delivery: sauve_alerts::Policy,
    /// The host's own rehearsal functions (behaviour §22), made anew for
    /// each rehearsal that is not given its own (the schedule's, the page's,
    /// `POST /v1/rehearse`'s, [`Rehearsals::rehearse`]'s); without it,
    /// `[rehearsal] check` runs.
    ///
    /// [`Rehearsals::rehearse`]: crate::Rehearsals::rehearse
    pub rehearsal: Option<RehearsalFactory>,
}

/// Makes the host's functions for one rehearsal.
pub type RehearsalFactory = Arc<dyn Fn() -> Box<dyn crate::RehearsalHost> + Send + Sync>;

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            mode: Mode::SingleUser,
            hooks: Hooks::default(),
            clock: Arc::new(SystemClock),
            open_part: None,
            threads: 0,
            log: None,
            alert_delivery: sauve_alerts::Policy::default(),
            rehearsal: None,
        }
    }
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("mode", &self.mode)
            .field("hooks", &self.hooks)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

/// A run's phase, for progress (behaviour §8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Checking the destination, the data file, the free space.
    Precheck,
    /// Waiting for writes in progress to end.
    WaitingLock,
    /// Copying data-kind files under the data lock.
    Data,
    /// Copying the structure under the structure lock.
    Structure,
    /// Copying attachments.
    Attachments,
    /// Verifying the archive.
    Verify,
    /// Giving the archive its final names.
    Commit,
    /// Deleting old sets.
    Retention,
}

/// What observers are told (behaviour §8.1); the CLI prints these as JSON lines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum BackupEvent {
    /// A run began.
    Started {
        /// Run id.
        run: u64,
        /// What started it.
        trigger: Trigger,
        /// The backup number.
        number: BackupNumber,
        /// Bytes to copy.
        total_bytes: u64,
    },
    /// A new phase.
    Phase {
        /// Run id.
        run: u64,
        /// The phase.
        phase: Phase,
    },
    /// Copy progress, at most 10 per second.
    File {
        /// Run id.
        run: u64,
        /// The file being copied (archive path).
        path: String,
        /// Bytes of this file done.
        file_done: u64,
        /// Bytes of this file.
        file_total: u64,
        /// Bytes done overall.
        bytes_done: u64,
        /// Bytes overall.
        bytes_total: u64,
    },
    /// Something worth knowing that does not change the status.
    Warning {
        /// Run id.
        run: u64,
        /// The message.
        message: String,
    },
    /// The run ended.
    Finished {
        /// Run id.
        run: u64,
        /// The status code.
        status: i32,
        /// Its text.
        status_text: String,
        /// The backup number, 0 without an archive.
        number: BackupNumber,
        /// The committed archive files.
        archives: Vec<PathBuf>,
    },
}

/// How a backup request ended, refusals included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupReport {
    /// The request's run id (refused requests get one too), the same as in
    /// its events.
    #[serde(default)]
    pub run: u64,
    /// The final status.
    #[serde(with = "status_code")]
    pub status: Status,
    /// The backup number, 0 when no archive was made.
    pub number: BackupNumber,
    /// The committed archive files.
    pub archives: Vec<PathBuf>,
    /// What started the run.
    pub trigger: Trigger,
    /// When it started.
    pub started: jiff::Timestamp,
    /// When it ended.
    pub ended: jiff::Timestamp,
    /// How long the data lock was held.
    pub data_lock: Option<Duration>,
    /// How long the structure lock was held.
    pub structure_lock: Option<Duration>,
    /// The errors reported, first first.
    pub errors: Vec<String>,
    /// Notes for the journal (numbering, retention, skipped files).
    pub notes: Vec<String>,
    /// What went wrong without changing the status: a record (history,
    /// journal, last-backup information) not written, a retention that
    /// stopped half-way. Each was also sent as a `warning` event.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// A scheduled run not made because the data did not change
    /// (BackupIfDataChange): only "Backup postponed" was journaled.
    #[serde(default)]
    pub postponed: bool,
}

pub(crate) mod status_code {
    use sauve_status::Status;

    pub(crate) fn serialize<S: serde::Serializer>(s: &Status, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_i32(s.code())
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
        let code: i32 = serde::Deserialize::deserialize(d)?;
        Ok(Status::from_code(code))
    }
}

/// How many backup requests ended, for those who wait on the engine
/// without following every event (the scheduler re-enables itself after a
/// successful manual backup, behaviour §9.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests ended, refusals included.
    pub finished: u64,
    /// Manual, api or remote backups that ended with 0 or -43.
    pub on_demand_successes: u64,
    /// Requests ended since the engine started, by trigger and status code
    /// (postponed runs under their status, 0).
    pub by_outcome: std::collections::BTreeMap<(Trigger, i32), u64>,
}
