//! What the copier is asked.

use std::path::PathBuf;
use std::sync::Arc;

use actix::Message;
use sauve_archive::{
    ManifestHeader, OpenPart, RestoreOptions, RestoreReport, SetSpec, SourceEntry,
};
use sauve_history::HistoryFile;

use crate::destination::{ReadBack, StoreDestination};
use crate::error::EngineError;
use crate::progress::RunProgress;
use crate::retention::Retained;

/// A set being written, from [`BeginSet`] to [`FinishSet`], which consumes
/// it. Each copy step takes it and gives it back; a step that fails gives
/// nothing back, as the copier has then dropped the set (its part files
/// removed). Only the copier makes one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct WritingSet(pub(super) u64);

/// A finished set (its manifest written, its parts synced), from
/// [`FinishSet`] or [`BuildLogSet`] to [`CommitSet`], which consumes it.
/// Only the copier makes one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FinishedSet(pub(super) u64);

/// Creates the destination and checks it can be written (1407, -61); the
/// bytes free there.
#[derive(Message)]
#[rtype(result = "Result<u64, EngineError>")]
pub(crate) struct PrepareDestination {
    pub(crate) path: PathBuf,
}

/// Takes the destination's advisory lock for `base` (`.<base>.sauve.lock`)
/// for `run`, so two processes never write the same set (1402). Held until
/// [`EndRun`].
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) struct LockDestination {
    pub(crate) run: u64,
    pub(crate) destination: PathBuf,
    pub(crate) base: String,
}

/// Removes the `.part` files a crashed run left; the files removed.
#[derive(Message)]
#[rtype(result = "Result<Vec<PathBuf>, EngineError>")]
pub(crate) struct RemoveStaleParts {
    pub(crate) destination: PathBuf,
    pub(crate) base: String,
}

/// Starts writing a set for `run`.
#[derive(Message)]
#[rtype(result = "Result<Begun, EngineError>")]
pub(crate) struct BeginSet {
    pub(crate) run: u64,
    pub(crate) spec: SetSpec,
    pub(crate) header: ManifestHeader,
    pub(crate) open_part: Option<OpenPart>,
    /// The store the set streams into, for a bucket destination.
    pub(crate) store: Option<Arc<StoreDestination>>,
    /// `[incremental]`, when on (behaviour §21): the copier decides whether
    /// this set is full or builds on the set before it.
    pub(crate) incremental: Option<sauve_settings::IncrementalSettings>,
    /// The run's Stop: the writer's waits for compression end at it.
    pub(crate) stop: sauve_locking::CancellationToken,
}

/// The reply to [`BeginSet`].
#[derive(Debug)]
pub(crate) struct Begun {
    pub(crate) set: WritingSet,
    /// The set it builds on, for an incremental set.
    pub(crate) parent: Option<u32>,
    /// What the journal says of the choice.
    pub(crate) note: Option<String>,
}

/// Reaches the store of a bucket destination and checks its prefix is this
/// app's to use for `base` (behaviour §19).
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) struct ReachStore {
    pub(crate) store: Arc<StoreDestination>,
    pub(crate) key: String,
    pub(crate) base: String,
}

/// The numbers of `base`'s sets in the store, for the numbering.
#[derive(Message)]
#[rtype(result = "Result<Vec<u32>, EngineError>")]
pub(crate) struct StoreNumbers {
    pub(crate) store: Arc<StoreDestination>,
    pub(crate) base: String,
}

/// Reads a set committed in a store back and checks it (behaviour §13.2); with
/// `remove_unsound`, a set that does not match its manifest is removed.
#[derive(Message)]
#[rtype(result = "ReadBack")]
pub(crate) struct VerifyStored {
    pub(crate) store: Arc<StoreDestination>,
    pub(crate) files: Vec<PathBuf>,
    pub(crate) remove_unsound: bool,
    pub(crate) progress: RunProgress,
}

/// Publishes the history the history keeper keeps in `records` to the
/// store (its own object, then `backupHistory.json` rebuilt).
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) struct PublishHistory {
    pub(crate) store: Arc<StoreDestination>,
    pub(crate) records: PathBuf,
    pub(crate) key: String,
}

/// Cuts the log into its pending segment (behaviour §14.2), under the data lock
/// the run holds, before the data-kind entries are copied.
pub(crate) struct CutLog {
    pub(crate) log: PathBuf,
    pub(crate) previous_number: u32,
    pub(crate) writer: Option<Arc<sauve_logfile::LogWriter>>,
}

/// Copies one phase's entries into `set`, after cutting the log if asked.
/// With `clone_near` (the data phase, under its lock), clones them into a
/// folder there instead where the file system can (behaviour §21.3), leaving the
/// copy to [`CopyClones`] after the lock is released. A failure or Stop
/// aborts the set: its part files (and clones) are removed.
#[derive(Message)]
#[rtype(result = "Result<(WritingSet, Copied), EngineError>")]
pub(crate) struct CopyPhase {
    pub(crate) set: WritingSet,
    pub(crate) entries: Vec<SourceEntry>,
    pub(crate) progress: RunProgress,
    pub(crate) cut: Option<CutLog>,
    pub(crate) clone_near: Option<PathBuf>,
}

/// How a phase's entries were taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Copied {
    /// Cloned under the lock, to be archived by [`CopyClones`].
    Cloned { files: usize },
    /// Copied into the set under the lock; `why` cloning was not used,
    /// when it was asked for.
    UnderLock { why: Option<String> },
}

impl Copied {
    /// What the journal's `Data lock` line says after the time.
    pub(crate) fn lock_line(&self) -> String {
        match self {
            Copied::Cloned { files: 1 } => "cloned 1 file".to_owned(),
            Copied::Cloned { files } => format!("cloned {files} files"),
            Copied::UnderLock { why: Some(why) } => format!("copied: {why}"),
            Copied::UnderLock { why: None } => "copied".to_owned(),
        }
    }
}

/// Archives the clones [`CopyPhase`] took, then removes them.
#[derive(Message)]
#[rtype(result = "Result<WritingSet, EngineError>")]
pub(crate) struct CopyClones {
    pub(crate) set: WritingSet,
    pub(crate) progress: RunProgress,
}

/// Writes the manifest and fsyncs: the set finished, and the files of the
/// archive, for the history.
#[derive(Message)]
#[rtype(result = "Result<(FinishedSet, Vec<HistoryFile>), EngineError>")]
pub(crate) struct FinishSet {
    pub(crate) set: WritingSet,
    pub(crate) ended: jiff::Timestamp,
}

/// Builds the `.4BL` from every pending log segment, finished; `None` when
/// there is none.
#[derive(Message)]
#[rtype(result = "Result<Option<LogSet>, EngineError>")]
pub(crate) struct BuildLogSet {
    pub(crate) run: u64,
    pub(crate) log: PathBuf,
    pub(crate) spec: SetSpec,
    pub(crate) header: ManifestHeader,
    pub(crate) open_part: Option<OpenPart>,
    pub(crate) store: Option<Arc<StoreDestination>>,
    /// A local folder for the gathered log (the destination, or the app's
    /// records of a store).
    pub(crate) scratch: PathBuf,
    pub(crate) ended: jiff::Timestamp,
    /// The run's Stop: the log backup ends at once when it is pressed.
    pub(crate) stop: sauve_locking::CancellationToken,
}

/// A log backup the copier holds.
pub(crate) struct LogSet {
    pub(crate) set: FinishedSet,
    /// Journal notes (a damaged segment archived up to its damage).
    pub(crate) notes: Vec<String>,
}

/// Verifies a finished set under its `.part` names (behaviour §13.2) and
/// gives it back; a failure aborts it.
#[derive(Message)]
#[rtype(result = "Result<FinishedSet, EngineError>")]
pub(crate) struct VerifySet {
    pub(crate) set: FinishedSet,
    pub(crate) progress: RunProgress,
}

/// Gives a set its final names (behaviour §6.1); for a log set, then deletes the
/// pending segments it archived.
#[derive(Message)]
#[rtype(result = "Result<Committed, EngineError>")]
pub(crate) struct CommitSet {
    pub(crate) set: FinishedSet,
}

/// A committed set.
pub(crate) struct Committed {
    pub(crate) files: Vec<PathBuf>,
    /// Their total size.
    pub(crate) size: u64,
    /// Archived segments that could not be deleted.
    pub(crate) notes: Vec<String>,
}

/// The run ended: every set it still owns is aborted (part files removed)
/// and the destination's lock is released.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct EndRun {
    pub(crate) run: u64,
}

/// Deletes the oldest sets of `base` until `keep` remain (behaviour §6.3).
#[derive(Message)]
#[rtype(result = "Retained")]
pub(crate) struct ApplyRetention {
    pub(crate) destination: PathBuf,
    pub(crate) base: String,
    pub(crate) keep: usize,
    /// For a bucket destination, retention runs there.
    pub(crate) store: Option<Arc<StoreDestination>>,
}

/// Restores an archive (behaviour §13.1).
#[derive(Message)]
#[rtype(result = "Result<RestoreReport, EngineError>")]
pub(crate) struct RestoreArchive {
    pub(crate) archive: PathBuf,
    /// The bucket holding `archive` (`s3://…/base[N].4BK`), if it is in one.
    pub(crate) store: Option<Arc<StoreDestination>>,
    pub(crate) options: RestoreOptions,
    /// Bytes restored so far, for whoever watches.
    pub(crate) done: std::sync::Arc<std::sync::atomic::AtomicU64>,
}
