//! The copier: everything that reads sources and writes archives. It owns
//! each archive set from its creation to its commit or abort; the run only
//! holds a [`WritingSet`], then a [`FinishedSet`], each consumed by the
//! step that ends that stage. A set that fails, that is stopped, or that is still
//! open when its run ends is dropped here, which removes its part files
//! (the archive writer's ownership rule). It holds each run's
//! [`Destination`] (a folder or a store alike) from [`OpenDestination`] to
//! [`EndRun`], with its advisory lock, applies retention there and restores
//! archives.

mod clones;
pub(crate) mod messages;

use sauve_number::BackupNumber;
use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use actix::{Actor, Handler, MessageResult, SyncContext};
use sauve_archive::{ArchiveWriter, EntryKind, EntryType, PendingSet};
use sauve_history::HistoryFile;

use crate::destination::{Destination, Opened, ReadBack};
use crate::error::EngineError;
use crate::retention::Retained;
use messages::*;

/// A set being written.
struct Writing {
    run: u64,
    writer: Box<ArchiveWriter>,
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
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Copier {
    writing: HashMap<u64, Writing>,
    finished: HashMap<u64, Finished>,
    next: u64,
    /// Each run's destination, from its opening to the end of the run.
    destinations: HashMap<u64, Destination>,
    /// Each run's lock on its destination, until its sets end.
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

    /// The run's destination, opened by [`OpenDestination`].
    fn destination(&self, run: u64) -> Result<&Destination, EngineError> {
        self.destinations
            .get(&run)
            .ok_or_else(|| EngineError::Internal(format!("run {run} has no destination open")))
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

impl Handler<OpenDestination> for Copier {
    type Result = Result<Opened, EngineError>;
    fn handle(&mut self, msg: OpenDestination, _: &mut SyncContext<Self>) -> Self::Result {
        let (destination, opened) =
            Destination::open(&msg.place, msg.own, &msg.io, (&msg.key, &msg.base))?;
        let lock = destination
            .records()
            .join(format!(".{}.sauve.lock", msg.base));
        let file = crate::admission::try_lock(&lock)?;
        self.destination_locks.insert(msg.run, file);
        self.destinations.insert(msg.run, destination);
        Ok(opened)
    }
}

impl Handler<RemoveStaleParts> for Copier {
    type Result = Result<Vec<PathBuf>, EngineError>;
    fn handle(&mut self, msg: RemoveStaleParts, _: &mut SyncContext<Self>) -> Self::Result {
        self.destination(msg.run)?.remove_stale_parts(&msg.base)
    }
}

impl Handler<BeginSet> for Copier {
    type Result = Result<Begun, EngineError>;
    fn handle(&mut self, msg: BeginSet, _: &mut SyncContext<Self>) -> Self::Result {
        let destination = self.destination(msg.run)?;
        let basis = msg
            .incremental
            .map(|settings| basis(&msg.spec, &settings, |name| destination.manifest_of(name)));
        let mut writer =
            ArchiveWriter::create_into(msg.spec, msg.header, destination.target(msg.open_part))?;
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
    manifest_of: impl Fn(&str) -> Result<sauve_archive::Manifest, sauve_archive::ArchiveError>,
) -> (sauve_archive::Incremental, String) {
    let full = |why: String| {
        (
            sauve_archive::Incremental {
                block_size: settings.block_kib.map(|kib| u64::from(kib) << 10),
                verify_unchanged: settings.verify_unchanged,
                parent: None,
            },
            why,
        )
    };
    let Some(previous) = Some(spec.number.previous()).filter(|n| *n > BackupNumber::NONE) else {
        return full("a full set: the first of its base".to_owned());
    };
    let name = format!("{}[{}]", spec.base, previous.text());
    let manifest = match manifest_of(&name) {
        Ok(m) => m,
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
                    block_size: settings.block_kib.map(|kib| u64::from(kib) << 10),
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
        });
        Ok((set, files))
    }
}

impl Handler<BuildLogSet> for Copier {
    type Result = Result<Option<LogSet>, EngineError>;
    fn handle(&mut self, msg: BuildLogSet, _: &mut SyncContext<Self>) -> Self::Result {
        let destination = self.destination(msg.run)?;
        // The log is gathered in the records (the folder, or the app's
        // records of a store): always on this disk.
        let Some(built) = crate::logcut::build(
            &msg.log,
            (msg.spec, msg.header),
            destination.target(msg.open_part),
            (destination.records(), msg.ended),
            msg.stop,
        )?
        else {
            return Ok(None);
        };
        let set = self.finished(Finished {
            run: msg.run,
            pending: Box::new(built.pending),
            segments: built.segments,
        });
        Ok(Some(LogSet {
            set,
            notes: built.notes,
        }))
    }
}

impl Handler<VerifySet> for Copier {
    type Result = Result<FinishedSet, EngineError>;
    fn handle(&mut self, msg: VerifySet, _: &mut SyncContext<Self>) -> Self::Result {
        let VerifySet { set, mut progress } = msg;
        let owned = self.take_finished(set)?;
        owned.pending.verify(&mut progress)?;
        progress.flush();
        Ok(self.finished(owned))
    }
}

impl Handler<CommitSet> for Copier {
    type Result = Result<Committed, EngineError>;
    fn handle(&mut self, msg: CommitSet, _: &mut SyncContext<Self>) -> Self::Result {
        let mut owned = self.take_finished(msg.set)?;
        let pieces = owned.pending.pieces();
        let destination = self.destinations.get(&owned.run);
        // A backup set's manifest, never a log backup's (same base, number
        // one less), is what the next set builds on.
        let backup = owned.pending.manifest().header.kind == sauve_archive::SetKind::Backup;
        let (files, kept) = if backup && destination.is_some_and(Destination::keeps_manifests) {
            let (files, manifest) = owned.pending.commit_keeping_manifest()?;
            (files, Some(manifest))
        } else {
            (owned.pending.commit()?, None)
        };
        let size = destination.map_or(0, |d| d.size_of(&files));
        // The next incremental set of an encrypted store compares with this
        // copy (behaviour §21.1); without it, the next set is full.
        let kept = match (kept, destination) {
            (Some(m), Some(d)) => d.keep_manifest(&m).err().map(|e| {
                format!(
                    "the manifest of {}[{}] cannot be kept ({e}): the next set is full",
                    m.header.base_name,
                    m.header.backup_number.text()
                )
            }),
            _ => None,
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
            .chain(kept)
            .collect();
        Ok(Committed {
            files,
            size,
            notes,
            pieces,
        })
    }
}

impl Copier {
    /// Aborts the sets `run` still owns and releases its destination's lock.
    fn end_sets(&mut self, run: u64) {
        // Dropping a writer or a pending set removes its part files.
        self.writing.retain(|_, set| set.run != run);
        self.finished.retain(|_, set| set.run != run);
        self.destination_locks.remove(&run);
    }
}

impl Handler<EndSets> for Copier {
    type Result = ();
    fn handle(&mut self, msg: EndSets, _: &mut SyncContext<Self>) {
        self.end_sets(msg.run);
    }
}

impl Handler<EndRun> for Copier {
    type Result = ();
    fn handle(&mut self, msg: EndRun, _: &mut SyncContext<Self>) {
        self.end_sets(msg.run);
        self.destinations.remove(&msg.run);
    }
}

impl Handler<ApplyRetention> for Copier {
    type Result = Retained;
    fn handle(&mut self, msg: ApplyRetention, _: &mut SyncContext<Self>) -> Retained {
        match self.destination(msg.run) {
            Ok(destination) => destination.retain(&msg.base, msg.keep, msg.own),
            Err(e) => Retained {
                failure: Some(e),
                ..Retained::default()
            },
        }
    }
}

impl Handler<ReadBackSet> for Copier {
    type Result = MessageResult<ReadBackSet>;
    fn handle(&mut self, msg: ReadBackSet, _: &mut SyncContext<Self>) -> Self::Result {
        let ReadBackSet {
            run,
            files,
            remove_unsound,
            mut progress,
        } = msg;
        let checked = match self.destination(run) {
            Ok(destination) => destination.read_back(&files, remove_unsound, &mut progress),
            Err(e) => ReadBack {
                failure: Some(e),
                ..ReadBack::default()
            },
        };
        progress.flush();
        MessageResult(checked)
    }
}

impl Handler<PublishHistory> for Copier {
    type Result = Result<(), EngineError>;
    fn handle(&mut self, msg: PublishHistory, _: &mut SyncContext<Self>) -> Self::Result {
        self.destination(msg.run)?.publish_history(&msg.key)
    }
}
