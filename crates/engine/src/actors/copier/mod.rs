//! The copier: everything that reads sources and writes archives. It owns
//! each archive set from its creation to its commit or abort; the run only
//! holds a [`WritingSet`], then a [`FinishedSet`], each consumed by the
//! step that ends that stage. A set that fails, that is stopped, or that is still
//! open when its run ends is dropped here, which removes its part files
//! (the archive writer's ownership rule). It also holds the destination's
//! advisory lock for a run, applies retention and restores archives.

mod clones;
pub(crate) mod messages;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix::{Actor, Handler, MessageResult, SyncContext};
use sauve_archive::{
    ArchiveName, ArchiveWriter, EntryKind, EntryType, FolderTarget, PendingSet, SetFiles, SetTarget,
};
use sauve_history::HistoryFile;

use crate::destination::StoreDestination;
use crate::error::EngineError;
use crate::retention::Retained;
use messages::*;

/// A set being written.
struct Writing {
    run: u64,
    writer: Box<ArchiveWriter>,
    /// The store the set streams into, for a bucket destination.
    store: Option<Arc<StoreDestination>>,
    /// The data phase's clones, taken under the lock and archived after
    /// it; removed with the set.
    clones: Option<clones::Clones>,
}

/// A finished set, waiting for its verification and commit.
struct Finished {
    run: u64,
    pending: Box<PendingSet>,
    /// The pending log segments a log set holds, deleted at its commit.
    segments: Vec<PathBuf>,
    /// The store the set streams into, for a bucket destination.
    store: Option<Arc<StoreDestination>>,
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Copier {
    writing: HashMap<u64, Writing>,
    finished: HashMap<u64, Finished>,
    next: u64,
    destination_locks: HashMap<u64, File>,
}

impl Copier {
    fn writing(&mut self, set: Writing) -> WritingSet {
        self.next += 1;
        self.writing.insert(self.next, set);
        WritingSet(self.next)
    }

    fn finished(&mut self, set: Finished) -> FinishedSet {
        self.next += 1;
        self.finished.insert(self.next, set);
        FinishedSet(self.next)
    }

    /// The set being written; gone only when its run ended meanwhile.
    fn take_writing(&mut self, set: WritingSet) -> Result<Writing, EngineError> {
        self.writing
            .remove(&set.0)
            .ok_or_else(|| EngineError::Internal(format!("set {} was dropped", set.0)))
    }

    /// The finished set; gone only when its run ended meanwhile.
    fn take_finished(&mut self, set: FinishedSet) -> Result<Finished, EngineError> {
        self.finished
            .remove(&set.0)
            .ok_or_else(|| EngineError::Internal(format!("set {} was dropped", set.0)))
    }
}

impl Actor for Copier {
    type Context = SyncContext<Self>;
}

impl Handler<PrepareDestination> for Copier {
    type Result = Result<u64, EngineError>;
    fn handle(&mut self, msg: PrepareDestination, _: &mut SyncContext<Self>) -> Self::Result {
        let dir = msg.path;
        // Folders sauve creates are private (0700): sets hold the app's data.
        let created = std::os::unix::fs::DirBuilderExt::mode(
            std::fs::DirBuilder::new().recursive(true),
            0o700,
        )
        .create(&dir);
        if let Err(source) = created {
            return Err(EngineError::DestinationUncreatable { path: dir, source });
        }
        if !dir.is_dir() {
            return Err(EngineError::DestinationNotAFolder { path: dir });
        }
        let probe = dir.join(format!(".sauve-write-test-{}", std::process::id()));
        match File::create(&probe) {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
            }
            Err(source)
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                return Err(EngineError::DestinationReadOnly { path: dir, source });
            }
            Err(source) => return Err(EngineError::DestinationUnwritable { path: dir, source }),
        }
        Ok(crate::free_space(&dir).unwrap_or(u64::MAX))
    }
}

impl Handler<LockDestination> for Copier {
    type Result = Result<(), EngineError>;
    fn handle(&mut self, msg: LockDestination, _: &mut SyncContext<Self>) -> Self::Result {
        let path = msg.destination.join(format!(".{}.sauve.lock", msg.base));
        let file = crate::admission::try_lock(&path)?;
        self.destination_locks.insert(msg.run, file);
        Ok(())
    }
}

impl Handler<RemoveStaleParts> for Copier {
    type Result = Result<Vec<PathBuf>, EngineError>;
    fn handle(&mut self, msg: RemoveStaleParts, _: &mut SyncContext<Self>) -> Self::Result {
        Ok(sauve_archive::remove_stale_parts(
            &msg.destination,
            &msg.base,
        )?)
    }
}

impl Handler<BeginSet> for Copier {
    type Result = Result<Begun, EngineError>;
    fn handle(&mut self, msg: BeginSet, _: &mut SyncContext<Self>) -> Self::Result {
        let basis = match (&msg.incremental, &msg.store) {
            (Some(settings), None) => Some(basis(&msg.spec, settings)),
            _ => None,
        };
        let mut writer = ArchiveWriter::create_into(
            msg.spec,
            msg.header,
            target(msg.store.as_ref(), msg.open_part),
        )?;
        // Stop never waits for a frame being compressed (a Compact frame
        // takes seconds): the writer's waits ask the run's Stop and give
        // up, and the frames in flight are abandoned with the set.
        let stop = msg.stop;
        writer.stop_when(move || stop.is_cancelled() || sauve_durable::fault::stop_requested());
        let (mut parent, mut note) = (None, None);
        if let Some((incremental, why)) = basis {
            parent = incremental.parent.as_ref().map(|m| m.header.backup_number);
            note = Some(why);
            writer.set_incremental(incremental)?;
        }
        let set = self.writing(Writing {
            run: msg.run,
            writer: Box::new(writer),
            store: msg.store,
            clones: None,
        });
        Ok(Begun { set, parent, note })
    }
}

/// Whether the set `spec` names is full or builds on the set before it
/// (behaviour §21): incremental when that set is in the destination, was written
/// with `[incremental]` on, and its chain is shorter than `full_every`;
/// and what the journal says of it.
fn basis(
    spec: &sauve_archive::SetSpec,
    settings: &sauve_settings::IncrementalSettings,
) -> (sauve_archive::Incremental, String) {
    let full = |why: String| {
        (
            sauve_archive::Incremental {
                block_size: u64::from(settings.block_kib) << 10,
                verify_unchanged: settings.verify_unchanged,
                parent: None,
            },
            why,
        )
    };
    let Some(previous) = spec.number.checked_sub(1).filter(|n| *n > 0) else {
        return full("a full set: the first of its base".to_owned());
    };
    let name = format!("{}[{}]", spec.base, sauve_archive::number_text(previous));
    let manifest = match sauve_archive::list(&spec.destination.join(&name)) {
        Ok((_, m)) => m,
        Err(sauve_archive::ArchiveError::Missing { .. }) => {
            return full(format!("a full set: {name} is not in the destination"));
        }
        Err(e) => return full(format!("a full set: {name} cannot be read ({e})")),
    };
    match manifest.header.chain {
        None => full(format!(
            "a full set: {name} was written without [incremental]"
        )),
        Some(at) if at + 2 > settings.full_every => full(format!(
            "a full set: one in {} (full_every)",
            settings.full_every
        )),
        Some(at) => {
            let why = format!(
                "incremental on {name}: set {} of {} of its chain",
                at + 2,
                settings.full_every
            );
            (
                sauve_archive::Incremental {
                    block_size: u64::from(settings.block_kib) << 10,
                    verify_unchanged: settings.verify_unchanged,
                    parent: Some(Arc::new(manifest)),
                },
                why,
            )
        }
    }
}

impl Handler<CopyPhase> for Copier {
    type Result = Result<(WritingSet, Copied), EngineError>;
    fn handle(&mut self, msg: CopyPhase, _: &mut SyncContext<Self>) -> Self::Result {
        let CopyPhase {
            set,
            mut entries,
            mut progress,
            cut,
            clone_near,
        } = msg;
        let mut owned = self.take_writing(set)?;
        let writer = &mut owned.writer;
        // From here, an early return drops `owned`: the set is aborted and
        // its part files removed.
        if let Some(cut) = cut {
            // Under the data lock: no append can run while the log is cut.
            let done = crate::logcut::cut(&cut.log, cut.previous_number, cut.writer.as_ref())?;
            writer.set_last_log_sequence(done.last_sequence);
            for e in entries.iter_mut().filter(|e| e.kind == EntryKind::Log) {
                e.size = done.size;
                e.mtime = done.mtime;
            }
        }
        let mut why = None;
        if let Some(near) = clone_near {
            match clones::Clones::take(&entries, &near) {
                Ok(c) => {
                    let files = c.files();
                    owned.clones = Some(c);
                    return Ok((self.writing(owned), Copied::Cloned { files }));
                }
                Err(reason) => why = Some(reason),
            }
        }
        for e in &entries {
            progress.set_file(&e.path, e.size);
            writer.append(e, &mut progress)?;
        }
        progress.flush();
        Ok((self.writing(owned), Copied::UnderLock { why }))
    }
}

impl Handler<CopyClones> for Copier {
    type Result = Result<WritingSet, EngineError>;
    fn handle(&mut self, msg: CopyClones, _: &mut SyncContext<Self>) -> Self::Result {
        let CopyClones { set, mut progress } = msg;
        let id = set.0;
        let mut owned = self.take_writing(set)?;
        // Removed when this returns, on every path.
        let Some(clones) = owned.clones.take() else {
            return Err(EngineError::Internal(format!(
                "set {id} holds no clones to copy"
            )));
        };
        // Outside the lock: folders a killed run left, which may hold
        // large files.
        clones.remove_dead_beside();
        for (e, from) in clones.entries() {
            progress.set_file(&e.path, e.size);
            owned.writer.append_from(e, from, &mut progress)?;
        }
        progress.flush();
        drop(clones);
        Ok(self.writing(owned))
    }
}

impl Handler<FinishSet> for Copier {
    type Result = Result<(FinishedSet, Vec<HistoryFile>), EngineError>;
    fn handle(&mut self, msg: FinishSet, _: &mut SyncContext<Self>) -> Self::Result {
        let owned = self.take_writing(msg.set)?;
        let pending = owned.writer.finish(msg.ended)?;
        let files = pending
            .manifest()
            .entries
            .iter()
            .filter(|e| e.entry_type == EntryType::File)
            .map(|e| HistoryFile {
                path: e.path.clone(),
                size: e.size,
                blake3: e.blake3.clone().unwrap_or_default(),
            })
            .collect();
        let set = self.finished(Finished {
            run: owned.run,
            pending: Box::new(pending),
            segments: Vec::new(),
            store: owned.store,
        });
        Ok((set, files))
    }
}

impl Handler<BuildLogSet> for Copier {
    type Result = Result<Option<LogSet>, EngineError>;
    fn handle(&mut self, msg: BuildLogSet, _: &mut SyncContext<Self>) -> Self::Result {
        let Some(built) = crate::logcut::build(
            &msg.log,
            (msg.spec, msg.header),
            target(msg.store.as_ref(), msg.open_part),
            (&msg.scratch, msg.ended),
            msg.stop,
        )?
        else {
            return Ok(None);
        };
        let set = self.finished(Finished {
            run: msg.run,
            pending: Box::new(built.pending),
            segments: built.segments,
            store: msg.store,
        });
        Ok(Some(LogSet {
            set,
            notes: built.notes,
        }))
    }
}

/// The files of a pending set under their part names, as verify reads them.
fn part_set(pending: &PendingSet) -> SetFiles {
    let header = &pending.manifest().header;
    let files = pending.part_files();
    SetFiles {
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
    }
}

impl Handler<VerifySet> for Copier {
    type Result = Result<FinishedSet, EngineError>;
    fn handle(&mut self, msg: VerifySet, _: &mut SyncContext<Self>) -> Self::Result {
        let VerifySet { set, mut progress } = msg;
        let owned = self.take_finished(set)?;
        sauve_archive::verify_set(&part_set(&owned.pending), &mut progress)?;
        progress.flush();
        Ok(self.finished(owned))
    }
}

impl Handler<CommitSet> for Copier {
    type Result = Result<Committed, EngineError>;
    fn handle(&mut self, msg: CommitSet, _: &mut SyncContext<Self>) -> Self::Result {
        let owned = self.take_finished(msg.set)?;
        let files = owned.pending.commit()?;
        let size = match &owned.store {
            Some(store) => store.size_of(&files),
            None => files
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum(),
        };
        // Archived pending segments go only now; after a failure they stay
        // for the next log backup.
        let notes = owned
            .segments
            .iter()
            .filter_map(|p| {
                sauve_durable::fault::point(sauve_durable::fault::Step::Unlink, p)
                    .and_then(|()| std::fs::remove_file(p))
                    .err()
                    .map(|e| format!("cannot delete {}: {e}", p.display()))
            })
            .collect();
        Ok(Committed { files, size, notes })
    }
}

impl Handler<EndRun> for Copier {
    type Result = ();
    fn handle(&mut self, msg: EndRun, _: &mut SyncContext<Self>) {
        // Dropping a writer or a pending set removes its part files.
        self.writing.retain(|_, set| set.run != msg.run);
        self.finished.retain(|_, set| set.run != msg.run);
        self.destination_locks.remove(&msg.run);
    }
}

impl Handler<ApplyRetention> for Copier {
    type Result = Retained;
    fn handle(&mut self, msg: ApplyRetention, _: &mut SyncContext<Self>) -> Retained {
        match &msg.store {
            Some(store) => store.retain(&msg.base, msg.keep),
            None => crate::retention::apply(&msg.destination, &msg.base, msg.keep),
        }
    }
}

impl Handler<ReachStore> for Copier {
    type Result = Result<(), EngineError>;
    fn handle(&mut self, msg: ReachStore, _: &mut SyncContext<Self>) -> Self::Result {
        msg.store.check(&msg.key, &msg.base)
    }
}

impl Handler<StoreNumbers> for Copier {
    type Result = Result<Vec<u32>, EngineError>;
    fn handle(&mut self, msg: StoreNumbers, _: &mut SyncContext<Self>) -> Self::Result {
        msg.store.numbers(&msg.base)
    }
}

impl Handler<VerifyStored> for Copier {
    type Result = MessageResult<VerifyStored>;
    fn handle(&mut self, msg: VerifyStored, _: &mut SyncContext<Self>) -> Self::Result {
        let VerifyStored {
            store,
            files,
            remove_unsound,
            mut progress,
        } = msg;
        let checked = store.verify(&files, remove_unsound, &mut progress);
        progress.flush();
        MessageResult(checked)
    }
}

impl Handler<PublishHistory> for Copier {
    type Result = Result<(), EngineError>;
    fn handle(&mut self, msg: PublishHistory, _: &mut SyncContext<Self>) -> Self::Result {
        msg.store.publish_history(&msg.records, &msg.key)
    }
}

/// Where a set's files go: the store's uploads, or files made with `open`
/// (real ones by default).
fn target(
    store: Option<&Arc<StoreDestination>>,
    open: Option<sauve_archive::OpenPart>,
) -> Box<dyn SetTarget> {
    match store {
        Some(store) => store.target(),
        None => Box::new(FolderTarget::new(
            open.unwrap_or_else(sauve_archive::open_real_file),
        )),
    }
}

/// A restore's progress: bytes written so far.
struct Counted(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl sauve_archive::Progress for Counted {
    fn advance(&mut self, bytes: u64) {
        self.0
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Handler<RestoreArchive> for Copier {
    type Result = Result<sauve_archive::RestoreReport, EngineError>;
    fn handle(&mut self, msg: RestoreArchive, _: &mut SyncContext<Self>) -> Self::Result {
        let mut progress = Counted(msg.done);
        if let Some(store) = &msg.store {
            let name = msg
                .archive
                .file_name()
                .unwrap_or_default()
                .to_string_lossy();
            return store.restore(&name, &msg.options, &mut progress);
        }
        Ok(sauve_archive::restore(
            &msg.archive,
            &msg.options,
            &mut progress,
        )?)
    }
}
