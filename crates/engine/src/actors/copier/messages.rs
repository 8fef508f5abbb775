//! What the copier is asked.

use sauve_number::BackupNumber;
use std::path::PathBuf;
use std::sync::Arc;

use actix::Message;
use sauve_archive::{ManifestHeader, OpenPart, SetSpec, SourceEntry};
use sauve_history::HistoryFile;

use crate::destination::{Opened, ReadBack};
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

/// Opens the run's destination for the whole run (a folder or a store:
/// the copier holds it until [`EndRun`]): its records folder created and
/// checked writable (1407, -61), a store reached and its prefix checked to
/// be this app's (1407, 1409), then the destination's advisory lock for
/// `base` taken (`.<base>.sauve.lock` in its records), so two processes
/// never write the same set (1402).
#[derive(Message)]
#[rtype(result = "Result<Opened, EngineError>")]
pub(crate) struct OpenDestination {
    pub(crate) run: u64,
    pub(crate) place: sauve_settings::Destination,
    /// sauve.toml as the resolver read it for this run, or why it is not
    /// valid now (a store then cannot be reached, and says why).
    pub(crate) own: Result<Arc<sauve_settings::SauveToml>, EngineError>,
    /// The app's history key.
    pub(crate) key: String,
    pub(crate) base: String,
    /// The engine's runtime, for a store's calls.
    pub(crate) io: crate::io::StoreIo,
}

/// Removes the `.part` files a crashed run left in the run's destination;
/// the files removed.
#[derive(Message)]
#[rtype(result = "Result<Vec<PathBuf>, EngineError>")]
pub(crate) struct RemoveStaleParts {
    pub(crate) run: u64,
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
    /// `[incremental]`, when on (behaviour §21): the copier decides whether
    /// this set is full or builds on the set before it, where the run's
    /// destination allows one to.
    pub(crate) incremental: Option<sauve_settings::IncrementalSettings>,
    /// The run's Stop: the writer's waits for compression end at it.
    pub(crate) stop: sauve_locking::CancellationToken,
}

/// The reply to [`BeginSet`].
#[derive(Debug)]
pub(crate) struct Begun {
    pub(crate) set: WritingSet,
    /// The set it builds on, for an incremental set.
    pub(crate) parent: Option<BackupNumber>,
    /// What the journal says of the choice.
    pub(crate) note: Option<String>,
}

/// Reads a committed set back and checks it (behaviour §13.2), where the
/// run's destination is read back after a commit (a store); with
/// `remove_unsound`, a set that does not match its manifest is removed.
#[derive(Message)]
#[rtype(result = "ReadBack")]
pub(crate) struct ReadBackSet {
    pub(crate) run: u64,
    pub(crate) files: Vec<PathBuf>,
    pub(crate) remove_unsound: bool,
    pub(crate) progress: RunProgress,
}

/// Publishes the history the history keeper keeps in the run's records
/// where its destination shows one of its own (a store: its own object,
/// then `backupHistory.json` rebuilt).
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) struct PublishHistory {
    pub(crate) run: u64,
    pub(crate) key: String,
}

/// Cuts the log into its pending segment (behaviour §14.2), under the data lock
/// the run holds, before the data-kind entries are copied.
pub(crate) struct CutLog {
    pub(crate) log: PathBuf,
    pub(crate) previous_number: BackupNumber,
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
    /// What each file holds as stored, piece by piece (behaviour §23).
    pub(crate) pieces: Vec<sauve_archive::Pieces>,
}

/// The run's copying ended: every set it still owns is aborted (part
/// files removed) and the destination's lock is released. The destination
/// stays open for the publication of the run's history, until [`EndRun`].
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct EndSets {
    pub(crate) run: u64,
}

/// The run ended: as [`EndSets`], and its destination is closed.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct EndRun {
    pub(crate) run: u64,
}

/// Deletes the oldest sets of `base` until `keep` remain (behaviour §6.3).
#[derive(Message)]
#[rtype(result = "Retained")]
pub(crate) struct ApplyRetention {
    pub(crate) run: u64,
    pub(crate) base: String,
    pub(crate) keep: usize,
    /// The set the run wrote and the set it builds on, which the history
    /// a store holds does not record yet.
    pub(crate) own: Option<(BackupNumber, Option<BackupNumber>)>,
}
