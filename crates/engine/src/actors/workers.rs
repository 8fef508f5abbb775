//! The actors whose work is blocking file IO, each on its own `SyncArbiter`
//! thread: the attachment resolver, the copier, the journal writer and the
//! history keeper. Nothing here runs on an async executor thread.

use std::fs::File;
use std::path::{Path, PathBuf};

use actix::{Actor, Handler, SyncContext};
use sauve_archive::{
    ArchiveError, ArchiveName, ArchiveWriter, Content, ManifestHeader, OpenPart, PendingSet,
    SetFiles, SetSpec, SourceEntry,
};
use sauve_history::{History, HistoryEntry, Numbering};
use sauve_journal::{Entry, Journal};
use sauve_settings::{AppLayout, Settings};
use sauve_status::Status;

use crate::progress::RunProgress;
use crate::state::{DataStamp, EngineState, LastBackup, state_path};

/// Messages of the resolver, the copier, the journal writer and the history keeper.
pub(crate) mod messages {
    use super::*;
    use actix::Message;

    /// Loads and validates the effective settings of an app (1419 on failure).
    #[derive(Message)]
    #[rtype(result = "Result<LoadedSettings, String>")]
    pub(crate) struct LoadSettings {
        pub(crate) app: PathBuf,
    }

    /// The settings of a run.
    pub(crate) struct LoadedSettings {
        pub(crate) settings: Settings,
        pub(crate) xml: String,
        pub(crate) warnings: Vec<String>,
    }

    /// A file's size and modification time (ns), if it exists.
    #[derive(Message)]
    #[rtype(result = "Option<(u64, i64)>")]
    pub(crate) struct StatData {
        pub(crate) path: PathBuf,
    }

    /// Whether the log exists (`None`) and is a sauve log.
    #[derive(Message)]
    #[rtype(result = "Option<bool>")]
    pub(crate) struct CheckLog {
        pub(crate) path: PathBuf,
    }

    /// Whether a sauve log holds records (`None`: no sauve log there).
    #[derive(Message)]
    #[rtype(result = "Option<bool>")]
    pub(crate) struct LogHasRecords {
        pub(crate) path: PathBuf,
    }

    /// Cuts the log under the data lock (SPEC 14.2).
    #[derive(Message)]
    #[rtype(result = "Result<crate::logcut::Cut, String>")]
    pub(crate) struct CutLog {
        pub(crate) log: PathBuf,
        pub(crate) previous_number: u32,
        pub(crate) writer: Option<std::sync::Arc<sauve_logfile::LogWriter>>,
    }

    /// Builds the `.4BL` from the pending segments.
    #[derive(Message)]
    #[rtype(result = "Result<Option<crate::logcut::LogBackup>, String>")]
    pub(crate) struct BuildLogBackup {
        pub(crate) log: PathBuf,
        pub(crate) spec: SetSpec,
        pub(crate) header: ManifestHeader,
        pub(crate) open_part: Option<OpenPart>,
        pub(crate) ended: jiff::Timestamp,
    }

    /// Deletes files (archived pending log segments, at commit).
    #[derive(Message)]
    #[rtype(result = "Vec<String>")]
    pub(crate) struct RemoveFiles {
        pub(crate) paths: Vec<PathBuf>,
    }

    /// Resolves what the backup holds.
    #[derive(Message)]
    #[rtype(result = "Result<Content, ArchiveError>")]
    pub(crate) struct ResolveContent {
        pub(crate) layout: AppLayout,
        pub(crate) settings: Settings,
        pub(crate) destination: PathBuf,
    }

    /// Creates the destination and checks it can be written: 1407 or -61.
    #[derive(Message)]
    #[rtype(result = "Result<u64, (Status, String)>")]
    pub(crate) struct PrepareDestination {
        pub(crate) path: PathBuf,
    }

    /// Takes the advisory locks that keep two processes off one app or one set (1402).
    #[derive(Message)]
    #[rtype(result = "Result<Vec<File>, String>")]
    pub(crate) struct LockFiles {
        pub(crate) paths: Vec<PathBuf>,
    }

    /// Removes `.part` files of a crashed run.
    #[derive(Message)]
    #[rtype(result = "Result<Vec<PathBuf>, ArchiveError>")]
    pub(crate) struct RemoveStaleParts {
        pub(crate) destination: PathBuf,
        pub(crate) base: String,
    }

    /// Starts an archive set.
    #[derive(Message)]
    #[rtype(result = "Result<Box<ArchiveWriter>, ArchiveError>")]
    pub(crate) struct CreateWriter {
        pub(crate) spec: SetSpec,
        pub(crate) header: ManifestHeader,
        pub(crate) open_part: Option<OpenPart>,
    }

    /// Streams entries into a set; the writer comes back for the next phase.
    /// On failure the writer is dropped, which removes its files.
    #[derive(Message)]
    #[rtype(result = "Result<Box<ArchiveWriter>, ArchiveError>")]
    pub(crate) struct CopyEntries {
        pub(crate) writer: Box<ArchiveWriter>,
        pub(crate) entries: Vec<SourceEntry>,
        pub(crate) progress: RunProgress,
    }

    /// Writes the manifest, fsyncs.
    #[derive(Message)]
    #[rtype(result = "Result<PendingSet, ArchiveError>")]
    pub(crate) struct FinishSet {
        pub(crate) writer: Box<ArchiveWriter>,
        pub(crate) ended: jiff::Timestamp,
    }

    /// Verifies a finished set under its `.part` names (1411 on failure).
    #[derive(Message)]
    #[rtype(result = "Verified")]
    pub(crate) struct VerifyPending {
        pub(crate) pending: PendingSet,
        pub(crate) progress: RunProgress,
    }

    /// A verified (or not) pending set, handed back.
    #[derive(actix::MessageResponse)]
    pub(crate) struct Verified {
        pub(crate) pending: PendingSet,
        pub(crate) result: Result<(), ArchiveError>,
    }

    /// Gives a set its final names; returns them and their total size.
    #[derive(Message)]
    #[rtype(result = "Result<(Vec<PathBuf>, u64), ArchiveError>")]
    pub(crate) struct CommitSet {
        pub(crate) pending: PendingSet,
    }

    /// Deletes the oldest sets of `base` until `keep` remain (SPEC 6.3).
    #[derive(Message)]
    #[rtype(result = "Result<Retained, String>")]
    pub(crate) struct ApplyRetention {
        pub(crate) destination: PathBuf,
        pub(crate) base: String,
        pub(crate) keep: usize,
    }

    /// What retention deleted.
    pub(crate) struct Retained {
        pub(crate) numbers: Vec<u32>,
        pub(crate) files: Vec<PathBuf>,
    }

    /// Checks whether the journal must continue in the next file.
    #[derive(Message)]
    #[rtype(result = "Result<(), String>")]
    pub(crate) struct RotateJournal {
        pub(crate) logs: PathBuf,
    }

    /// Appends one entry to the Backup Journal.
    #[derive(Message)]
    #[rtype(result = "Result<(), String>")]
    pub(crate) struct AppendEntry {
        pub(crate) logs: PathBuf,
        pub(crate) entry: Entry,
        pub(crate) verbose: bool,
    }

    /// The next backup number, with the journal notes it produced.
    #[derive(Message)]
    #[rtype(result = "Result<(Numbering, Vec<String>), String>")]
    pub(crate) struct NextNumber {
        pub(crate) destination: PathBuf,
        pub(crate) key: String,
        pub(crate) base: String,
        pub(crate) now: jiff::Timestamp,
    }

    /// Records a run in the history.
    #[derive(Message)]
    #[rtype(result = "Result<(), String>")]
    pub(crate) struct RecordRun {
        pub(crate) destination: PathBuf,
        pub(crate) key: String,
        pub(crate) entry: HistoryEntry,
        pub(crate) limit: usize,
        pub(crate) removed: Vec<u32>,
        pub(crate) now: jiff::Timestamp,
    }

    /// Reads `APP/Logs/sauve-state.json`.
    #[derive(Message)]
    #[rtype(result = "Option<EngineState>")]
    pub(crate) struct LoadState {
        pub(crate) app: PathBuf,
    }

    /// Records the last backup (and the compression ratio) in the state file.
    #[derive(Message)]
    #[rtype(result = "Result<(), String>")]
    pub(crate) struct UpdateState {
        pub(crate) app: PathBuf,
        pub(crate) last_backup: LastBackup,
        pub(crate) ratio: Option<f64>,
        pub(crate) data: Option<DataStamp>,
    }
}

use messages::*;

/// Reads settings and resolves content.
pub(crate) struct Resolver;

impl Actor for Resolver {
    type Context = SyncContext<Self>;
}

impl Handler<LoadSettings> for Resolver {
    type Result = Result<LoadedSettings, String>;
    fn handle(&mut self, msg: LoadSettings, _: &mut SyncContext<Self>) -> Self::Result {
        let effective = sauve_settings::load_effective(&msg.app).map_err(|e| e.to_string())?;
        Ok(LoadedSettings {
            xml: effective.doc.to_xml(),
            settings: effective.doc.settings().clone(),
            warnings: effective.warnings.iter().map(ToString::to_string).collect(),
        })
    }
}

impl Handler<CheckLog> for Resolver {
    type Result = Option<bool>;
    fn handle(&mut self, msg: CheckLog, _: &mut SyncContext<Self>) -> Self::Result {
        msg.path
            .is_file()
            .then(|| crate::logcut::is_sauve_log(&msg.path))
    }
}

impl Handler<LogHasRecords> for Resolver {
    type Result = Option<bool>;
    fn handle(&mut self, msg: LogHasRecords, _: &mut SyncContext<Self>) -> Self::Result {
        sauve_logfile::read_log(&msg.path)
            .ok()
            .map(|l| !l.records.is_empty())
    }
}

impl Handler<StatData> for Resolver {
    type Result = Option<(u64, i64)>;
    fn handle(&mut self, msg: StatData, _: &mut SyncContext<Self>) -> Self::Result {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&msg.path).ok()?;
        Some((
            m.len(),
            m.mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.mtime_nsec()),
        ))
    }
}

impl Handler<ResolveContent> for Resolver {
    type Result = Result<Content, ArchiveError>;
    fn handle(&mut self, msg: ResolveContent, _: &mut SyncContext<Self>) -> Self::Result {
        sauve_archive::resolve_content(&msg.layout, &msg.settings, &msg.destination)
    }
}

/// Everything that reads sources and writes archives.
pub(crate) struct Copier;

impl Actor for Copier {
    type Context = SyncContext<Self>;
}

impl Handler<PrepareDestination> for Copier {
    type Result = Result<u64, (Status, String)>;
    fn handle(&mut self, msg: PrepareDestination, _: &mut SyncContext<Self>) -> Self::Result {
        let dir = &msg.path;
        if let Err(e) = std::fs::create_dir_all(dir) {
            return Err((
                Status::DestinationInvalid,
                format!("cannot create {}: {e}", dir.display()),
            ));
        }
        if !dir.is_dir() {
            return Err((
                Status::DestinationInvalid,
                format!("{} is not a folder", dir.display()),
            ));
        }
        let probe = dir.join(format!(".sauve-write-test-{}", std::process::id()));
        match File::create(&probe) {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::PermissionDenied
                    || e.raw_os_error() == Some(30) =>
            {
                return Err((
                    Status::WritePermissionDenied,
                    format!("cannot write in {}: {e}", dir.display()),
                ));
            }
            Err(e) => {
                return Err((
                    Status::DestinationInvalid,
                    format!("cannot write in {}: {e}", dir.display()),
                ));
            }
        }
        Ok(crate::free_space(dir).unwrap_or(u64::MAX))
    }
}

impl Handler<LockFiles> for Copier {
    type Result = Result<Vec<File>, String>;
    fn handle(&mut self, msg: LockFiles, _: &mut SyncContext<Self>) -> Self::Result {
        let mut held = Vec::new();
        for path in msg.paths {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            let f = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            match f.try_lock() {
                Ok(()) => held.push(f),
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(format!("another process holds {}", path.display()));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(format!("cannot lock {}: {e}", path.display()));
                }
            }
        }
        Ok(held)
    }
}

impl Handler<RemoveStaleParts> for Copier {
    type Result = Result<Vec<PathBuf>, ArchiveError>;
    fn handle(&mut self, msg: RemoveStaleParts, _: &mut SyncContext<Self>) -> Self::Result {
        sauve_archive::remove_stale_parts(&msg.destination, &msg.base)
    }
}

impl Handler<CreateWriter> for Copier {
    type Result = Result<Box<ArchiveWriter>, ArchiveError>;
    fn handle(&mut self, msg: CreateWriter, _: &mut SyncContext<Self>) -> Self::Result {
        let w = match msg.open_part {
            Some(open) => ArchiveWriter::create_with(msg.spec, msg.header, open)?,
            None => ArchiveWriter::create(msg.spec, msg.header)?,
        };
        Ok(Box::new(w))
    }
}

impl Handler<CopyEntries> for Copier {
    type Result = Result<Box<ArchiveWriter>, ArchiveError>;
    fn handle(&mut self, msg: CopyEntries, _: &mut SyncContext<Self>) -> Self::Result {
        let CopyEntries {
            mut writer,
            entries,
            mut progress,
        } = msg;
        for e in &entries {
            progress.set_file(&e.path, e.size);
            writer.append(e, &mut progress)?;
        }
        progress.flush();
        Ok(writer)
    }
}

impl Handler<CutLog> for Copier {
    type Result = Result<crate::logcut::Cut, String>;
    fn handle(&mut self, msg: CutLog, _: &mut SyncContext<Self>) -> Self::Result {
        crate::logcut::cut(&msg.log, msg.previous_number, msg.writer.as_ref())
    }
}

impl Handler<BuildLogBackup> for Copier {
    type Result = Result<Option<crate::logcut::LogBackup>, String>;
    fn handle(&mut self, msg: BuildLogBackup, _: &mut SyncContext<Self>) -> Self::Result {
        crate::logcut::build(&msg.log, msg.spec, msg.header, msg.open_part, msg.ended)
    }
}

impl Handler<RemoveFiles> for Copier {
    type Result = Vec<String>;
    fn handle(&mut self, msg: RemoveFiles, _: &mut SyncContext<Self>) -> Vec<String> {
        msg.paths
            .iter()
            .filter_map(|p| {
                std::fs::remove_file(p)
                    .err()
                    .map(|e| format!("cannot delete {}: {e}", p.display()))
            })
            .collect()
    }
}

impl Handler<FinishSet> for Copier {
    type Result = Result<PendingSet, ArchiveError>;
    fn handle(&mut self, msg: FinishSet, _: &mut SyncContext<Self>) -> Self::Result {
        msg.writer.finish(msg.ended)
    }
}

impl Handler<VerifyPending> for Copier {
    type Result = Verified;
    fn handle(&mut self, msg: VerifyPending, _: &mut SyncContext<Self>) -> Self::Result {
        let VerifyPending {
            pending,
            mut progress,
        } = msg;
        let header = &pending.manifest().header;
        let files = pending.part_files();
        let set = SetFiles {
            dir: files
                .first()
                .and_then(|f| f.parent())
                .map_or_else(PathBuf::new, Path::to_path_buf),
            name: ArchiveName {
                base: header.base_name.clone(),
                number: header.backup_number,
                segment: None,
                kind: header.kind,
                part: false,
            },
            files,
        };
        let result = sauve_archive::verify_set(&set, &mut progress).map(drop);
        progress.flush();
        Verified { pending, result }
    }
}

impl Handler<CommitSet> for Copier {
    type Result = Result<(Vec<PathBuf>, u64), ArchiveError>;
    fn handle(&mut self, msg: CommitSet, _: &mut SyncContext<Self>) -> Self::Result {
        let files = msg.pending.commit()?;
        let size = files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        Ok((files, size))
    }
}

impl Handler<ApplyRetention> for Copier {
    type Result = Result<Retained, String>;
    fn handle(&mut self, msg: ApplyRetention, _: &mut SyncContext<Self>) -> Self::Result {
        crate::retention::apply(&msg.destination, &msg.base, msg.keep)
    }
}

/// Writes the Backup Journal.
#[derive(Default)]
pub(crate) struct JournalWriter {
    open: Option<(PathBuf, Journal)>,
}

impl JournalWriter {
    fn journal(&mut self, logs: &Path) -> Result<&mut Journal, String> {
        let reopen = self.open.as_ref().is_none_or(|(p, _)| p != logs);
        if reopen {
            let j = Journal::open(logs).map_err(|e| e.to_string())?;
            self.open = Some((logs.to_path_buf(), j));
        }
        self.open
            .as_mut()
            .map(|(_, j)| j)
            .ok_or_else(|| "journal not open".to_owned())
    }
}

impl Actor for JournalWriter {
    type Context = SyncContext<Self>;
}

impl Handler<RotateJournal> for JournalWriter {
    type Result = Result<(), String>;
    fn handle(&mut self, msg: RotateJournal, _: &mut SyncContext<Self>) -> Self::Result {
        // Reopened each run: another process may have written meanwhile.
        self.open = None;
        self.journal(&msg.logs)?
            .rotate_if_needed()
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

impl Handler<AppendEntry> for JournalWriter {
    type Result = Result<(), String>;
    fn handle(&mut self, msg: AppendEntry, _: &mut SyncContext<Self>) -> Self::Result {
        self.journal(&msg.logs)?
            .append(&msg.entry, msg.verbose)
            .map_err(|e| e.to_string())
    }
}

/// Keeps `backupHistory.json` and the state files.
pub(crate) struct HistoryKeeper;

impl Actor for HistoryKeeper {
    type Context = SyncContext<Self>;
}

impl Handler<NextNumber> for HistoryKeeper {
    type Result = Result<(Numbering, Vec<String>), String>;
    fn handle(&mut self, msg: NextNumber, _: &mut SyncContext<Self>) -> Self::Result {
        let loaded = History::load(&msg.destination, msg.now).map_err(|e| e.to_string())?;
        let existing = sauve_history::archive_numbers(&msg.destination, &msg.base)
            .map_err(|e| e.to_string())?;
        let n = sauve_history::next_number(
            &loaded.history,
            &msg.key,
            &existing,
            &msg.base,
            loaded.moved_aside.is_some(),
        );
        Ok((n, loaded.notes))
    }
}

impl Handler<RecordRun> for HistoryKeeper {
    type Result = Result<(), String>;
    fn handle(&mut self, msg: RecordRun, _: &mut SyncContext<Self>) -> Self::Result {
        let mut loaded = History::load(&msg.destination, msg.now).map_err(|e| e.to_string())?;
        let h = &mut loaded.history;
        let e = |e: sauve_history::HistoryError| e.to_string();
        h.remove_numbers(&msg.key, &msg.removed).map_err(e)?;
        h.add(&msg.key, msg.entry).map_err(e)?;
        h.retain(&msg.key, msg.limit).map_err(e)?;
        h.save(&msg.destination).map(drop).map_err(e)
    }
}

impl Handler<LoadState> for HistoryKeeper {
    type Result = Option<EngineState>;
    fn handle(&mut self, msg: LoadState, _: &mut SyncContext<Self>) -> Option<EngineState> {
        Some(EngineState::load(&msg.app))
    }
}

impl Handler<UpdateState> for HistoryKeeper {
    type Result = Result<(), String>;
    fn handle(&mut self, msg: UpdateState, _: &mut SyncContext<Self>) -> Self::Result {
        let mut state = EngineState::load(&msg.app);
        state.last_backup = Some(msg.last_backup);
        if msg.ratio.is_some() {
            state.last_ratio = msg.ratio;
        }
        if msg.data.is_some() {
            state.last_data = msg.data;
        }
        let json = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
        sauve_durable::replace(&state_path(&msg.app), &json).map_err(|e| e.to_string())
    }
}
