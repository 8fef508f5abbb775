//! The older sets of an incremental set's chain, read for a restore
//! (behaviour §21.2). What each set gives is planned from the manifests
//! alone before any set is read: each needed block comes from exactly one
//! set, so the sets are then read at the same time, each writing its own
//! blocks at their place in the staged files. The oldest set needed (the
//! full one, unless the newer ones hold everything) is read on the
//! restore's thread; the newer ones, newest first, on [`READERS`] more. A set that holds a file whole hashes the file as the restore gives
//! it in the same pass, reading back the blocks newer sets give once they
//! have written them ([`Marks`]), so that no file is read twice (a set read
//! in ranges, `ranged.rs`, writes only the blocks it gives, and the file is
//! hashed once it is whole).

use sauve_durable::beneath::Beneath;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use super::ranged::{self, Reads};
use super::{Budget, create_staged, relative, write_blocks};
use crate::error::ArchiveError;
use crate::incremental::{Needs, Supply};
use crate::index::DeclaredSet;
use crate::kind::SetKind;
use crate::manifest::{EntryType, Manifest};
use crate::reader::{ReadEntry, Seen, VisitError, Visitor, check_seen, hash_content};
use crate::verify::Link;
use crate::writer::Progress;

/// How often a thread waiting for another asks whether the restore stopped.
const STOP_TICK: Duration = Duration::from_millis(10);

/// An older set of a chain, and what the restore takes of it.
pub(super) struct Planned {
    link: Link,
    /// The blake3 of its manifest when the chain was planned: the set must
    /// declare the same manifest when it is read.
    hash: [u8; 32],
    /// Its manifest, while the plan's manifests weigh [`KEPT`] at most;
    /// the others are read again when the set is read (through its index,
    /// or for a set without one, by a pass more).
    kept: Option<Manifest>,
    /// Path → the file's size, and what this set gives of it.
    supplies: BTreeMap<String, (u64, Supply)>,
}

impl Planned {
    /// The set's name, `base[NNNN]`.
    pub(super) fn name(&self) -> String {
        let name = self.link.files().name;
        format!("{}[{}]", name.base, name.number.text())
    }

    /// The files this set gives blocks of, or the rest of: files put
    /// together from blocks of several sets.
    pub(super) fn blocks_of(&self) -> impl Iterator<Item = &str> {
        self.supplies
            .iter()
            .filter(|(_, (_, s))| !matches!(s, Supply::Whole))
            .map(|(path, _)| path.as_str())
    }

    /// The files whose content this set is the first to give, as blocks,
    /// and their sizes: created before any older set is read.
    pub(super) fn first_written(&self) -> impl Iterator<Item = (&str, u64)> {
        self.supplies
            .iter()
            .filter(|(_, (_, s))| matches!(s, Supply::Blocks { first: true, .. }))
            .map(|(path, (size, _))| (path.as_str(), *size))
    }
}

/// The older sets whose manifests are asked for at once, ahead of the walk
/// down the chain.
const AHEAD: u32 = 8;

/// About the most the manifests a plan keeps for the reads, and those it
/// asks for ahead, weigh in memory (a restore's `kept` for [`plan`]) ([`weight`]; those asked for ahead are
/// taken to weigh what the last one did, and one is always asked for): the
/// others are read again when their set is read.
pub(super) const KEPT: u64 = 256 << 20;

/// Plans what the restore takes of each older set of the chain that
/// `newest` (with `manifest`) builds on, newest first, from their manifests
/// alone: every set is checked to be the one asked for, holding the same
/// files, before any older set's content is read. The manifests of the
/// sets a chain is usually made of (the numbers just below, as many as a
/// set's place in its chain says, [`AHEAD`] at most, and as fit under
/// `limit`, [`KEPT`] for a restore) are asked for at once through their
/// indexes; the walk itself goes by what each manifest says it builds on.
/// The manifests are kept for the reads while they weigh `limit` at most.
pub(super) fn plan(
    newest: &Link,
    manifest: &Manifest,
    stop: &AtomicBool,
    limit: u64,
) -> Result<Vec<Planned>, ArchiveError> {
    let stopped = || stop.load(Ordering::SeqCst);
    let mut needs = Needs::of(manifest);
    let mut link = newest.clone();
    let mut chain = Vec::new();
    let mut place = manifest.header.chain;
    let mut ahead: BTreeMap<u32, (Link, DeclaredSet)> = BTreeMap::new();
    // Numbers asked for ahead, found or not: never asked for again.
    let mut asked = BTreeSet::new();
    let mut kept = 0u64;
    let mut last = weight(manifest).max(1);
    while !needs.is_empty() {
        if stopped() {
            return Err(ArchiveError::Stopped);
        }
        let number = needs.parent.map_or(0, u32::from);
        // What was asked for ahead above this number is not in the chain.
        ahead.retain(|&n, _| n < number);
        if !asked.contains(&number) {
            // As many as fit beside what is kept, the manifests below
            // weighing about what the last one did.
            let room = limit.saturating_sub(kept) / last;
            let count = place.unwrap_or(0).min(AHEAD).min(number);
            let count = count.min(u32::try_from(room).unwrap_or(u32::MAX)).max(1);
            asked.extend((0..count.min(number)).map(|i| number - i));
            ahead.extend(look_ahead(&link, number, count.min(number)));
        }
        let (older, declared) = match ahead.remove(&number) {
            Some(found) => found,
            // Not where the chain usually is, or not found there: asked
            // for alone, with the messages that name what is wrong.
            None => {
                let older = link.parent(&needs)?;
                let declared = older.declared(&stopped).map_err(|e| older.named_in(e))?;
                (older, declared)
            }
        };
        link = older;
        let supplies = needs
            .resolve(&declared.manifest)?
            .into_iter()
            .map(|(path, size, supply)| (path, (size, supply)))
            .collect();
        place = declared.manifest.header.chain;
        last = weight(&declared.manifest).max(1);
        let keep = kept.saturating_add(last) <= limit;
        if keep {
            kept = kept.saturating_add(last);
        }
        chain.push(Planned {
            link: link.clone(),
            hash: declared.hash,
            kept: keep.then_some(declared.manifest),
            supplies,
        });
    }
    Ok(chain)
}

/// The sets numbered `from` and the `count - 1` below it, beside `link`,
/// each with what its index declares, asked for at once; those not found,
/// or without an index, are left out.
fn look_ahead(link: &Link, from: u32, count: u32) -> Vec<(u32, (Link, DeclaredSet))> {
    std::thread::scope(|scope| {
        let asked: Vec<_> = (0..count)
            .map(|i| from - i)
            .map(|number| {
                let found = scope.spawn(move || {
                    let older = link.numbered(number.into()).ok()?;
                    let declared = older.indexed().ok()??;
                    Some((older, declared))
                });
                (number, found)
            })
            .collect();
        asked
            .into_iter()
            .filter_map(|(number, found)| {
                let found = found
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                Some((number, found?))
            })
            .collect()
    })
}

/// About the memory a manifest takes: its entries, their block maps.
fn weight(manifest: &Manifest) -> u64 {
    manifest
        .entries
        .iter()
        .map(|e| {
            let blocks = e.blocks.as_ref().map_or(0, |b| {
                8 * b.hashes.len() as u64 + 4 * b.changed.len() as u64
            });
            256 + e.path.len() as u64 + blocks
        })
        .sum()
}

/// Where the sets of a chain write, shared by the threads that read them.
pub(super) struct Staged<'a> {
    pub(super) kind: SetKind,
    pub(super) staging: &'a Beneath,
    pub(super) budget: Mutex<Budget>,
}

/// What the older sets of a chain gave.
#[derive(Default)]
pub(super) struct Filled {
    /// Bytes of content written.
    pub(super) bytes: u64,
    /// Files stored whole in a set and completed by newer ones: their
    /// blake3 and length as the restore gives them.
    pub(super) hashed: Vec<(String, (String, u64))>,
}

/// The threads that read the newer sets of a chain beside the oldest one.
/// One: measured on a 4 GiB chain of 7 in a bucket, two or four read no
/// faster (the store and the cores are shared) and each holds its own
/// buffers (four: 527 MiB at the peak against 290 MiB).
const READERS: usize = 1;

/// Reads the older sets of a chain as planned, at the same time: the
/// oldest needed on this thread, the newer ones on [`READERS`] more, each
/// taking the next newest not yet taken (a set only ever waits for
/// newer ones, which were taken before it). A set's failure stops every
/// thread at its next entry (or its next wait); the error returned is the
/// failure, not the stops it caused.
pub(super) fn fill(
    chain: &[Planned],
    staged: &Staged<'_>,
    progress: &mut dyn Progress,
) -> Result<Filled, ArchiveError> {
    let Some((oldest, newer)) = chain.split_last() else {
        return Ok(Filled::default());
    };
    let marks = Marks::of(chain.iter().map(|p| &p.supplies));
    let relayed = AtomicU64::new(0);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..READERS.min(newer.len()))
            .map(|_| {
                scope.spawn(|| {
                    let _panicking = StopOnPanic(&marks);
                    let mut relay = Relay {
                        marks: &marks,
                        advanced: &relayed,
                    };
                    let mut filled = Filled::default();
                    loop {
                        let at = next.fetch_add(1, Ordering::SeqCst);
                        let Some(planned) = newer.get(at) else {
                            return Ok(filled);
                        };
                        let read = read_set(at, planned, staged, &marks, &mut relay);
                        // A failure stops the others first: a waiter that
                        // then sees this set ended also sees the stop, and
                        // reads back nothing it did not write.
                        if read.is_err() {
                            marks.stop();
                        }
                        marks.end(at);
                        filled.add(read?);
                    }
                })
            })
            .collect();
        let _panicking = StopOnPanic(&marks);
        let mut lead = Lead {
            inner: std::cell::RefCell::new(progress),
            marks: &marks,
            relayed: &relayed,
        };
        let mine = read_set(newer.len(), oldest, staged, &marks, &mut lead);
        if mine.is_err() {
            marks.stop();
        }
        marks.end(newer.len());
        // A stop asked for while other threads still read is passed on.
        marks.until(|| readers.iter().all(|r| r.is_finished()), &|| {
            lead.is_stopped()
        });
        let mut results = vec![mine];
        for reader in readers {
            results.push(
                reader
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        lead.flush();
        let mut filled = Filled::default();
        let mut stopped = None;
        for result in results {
            match result {
                Ok(f) => filled.add(f),
                Err(ArchiveError::Stopped) => stopped = Some(ArchiveError::Stopped),
                Err(e) => return Err(e),
            }
        }
        match stopped {
            Some(e) => Err(e),
            None => Ok(filled),
        }
    })
}

/// Stops the restore when the thread that holds it panics: the others
/// then never wait for it.
struct StopOnPanic<'a>(&'a Marks);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

impl Filled {
    fn add(&mut self, other: Filled) {
        self.bytes += other.bytes;
        self.hashed.extend(other.hashed);
    }
}

/// Reads one planned set, the `at`-th of the chain (0: the set the newest
/// builds on), writing what it gives.
fn read_set(
    at: usize,
    planned: &Planned,
    staged: &Staged<'_>,
    marks: &Marks,
    progress: &mut dyn Progress,
) -> Result<Filled, ArchiveError> {
    let link = &planned.link;
    let fresh;
    let manifest = match &planned.kept {
        Some(manifest) => manifest,
        None => {
            fresh = link
                .declared(&|| progress.is_stopped())
                .map_err(|e| link.named_in(e))?;
            if fresh.hash != planned.hash {
                return Err(link.named_in(ArchiveError::corrupt(
                    SetKind::Backup,
                    "its manifest is not the one it declared when the restore began",
                )));
            }
            &fresh.manifest
        }
    };
    // Only what the restore takes of it, where the set says where that is.
    let ranged = link.read(|source, _, _| {
        let Some(lengths) = source.lengths() else {
            return Ok(None);
        };
        let set_len = lengths.iter().try_fold(0u64, |n, &l| n.checked_add(l));
        let Some(reads) = set_len.and_then(|len| Reads::plan(manifest, &planned.supplies, len))
        else {
            return Ok(None);
        };
        let mark = |path: &str, below| marks.set(at, path, below);
        ranged::fill(&reads, (source, &lengths), staged, &mark, &mut *progress).map(Some)
    });
    if let Some(filled) = ranged.map_err(|e| link.named_in(e))? {
        return Ok(filled);
    }
    let mut filler = Filler {
        staged,
        at,
        supplies: &planned.supplies,
        marks,
        progress,
        seen: Vec::new(),
        written: HashSet::new(),
        filled: Filled::default(),
    };
    link.scan_declared(&mut filler, (manifest, planned.hash))
        .map_err(|e| link.named_in(e))?;
    Ok(filler.filled)
}

/// How far each older set of a chain has written the blocks it gives: a
/// set that holds a file whole reads back the blocks newer sets give only
/// once they are written.
struct Marks {
    /// Per set of the chain, per file it gives blocks of: every block it
    /// gives below this index is written (`u64::MAX` once its entry is read
    /// through, or the set ended). A block is passed once a later block's
    /// bytes come (a block may come in several pieces).
    below: Vec<HashMap<String, AtomicU64>>,
    /// The restore stops (asked to, or a set failed): every set then stops.
    stopped: AtomicBool,
    /// Threads waiting: a mark that moves wakes them.
    waiting: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Marks {
    /// The marks of sets giving `supplies`, newest first.
    fn of<'s>(supplies: impl Iterator<Item = &'s BTreeMap<String, (u64, Supply)>>) -> Marks {
        let below = supplies
            .map(|supplies| {
                supplies
                    .iter()
                    .filter(|(_, (_, s))| matches!(s, Supply::Blocks { .. }))
                    .map(|(path, _)| (path.clone(), AtomicU64::new(0)))
                    .collect()
            })
            .collect();
        Marks {
            below,
            stopped: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// The set `at` has written every block it gives of `path` below `below`.
    fn set(&self, at: usize, path: &str, below: u64) {
        if let Some(mark) = self.below.get(at).and_then(|m| m.get(path))
            && mark.fetch_max(below, Ordering::SeqCst) < below
        {
            self.wake_all();
        }
    }

    /// The set `at` has ended: it writes nothing more.
    fn end(&self, at: usize) {
        if let Some(marks) = self.below.get(at) {
            for mark in marks.values() {
                mark.store(u64::MAX, Ordering::SeqCst);
            }
        }
        self.wake_all();
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    fn wake_all(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.wake.notify_all();
        }
    }

    /// Waits until every set newer than the set `at` has written the
    /// blocks it gives of `path` up to `block`; false when the restore
    /// stopped first.
    fn wait(&self, at: usize, path: &str, block: u64, stopped: &dyn Fn() -> bool) -> bool {
        let ready = || self.passed(at, path, block);
        (ready() && !self.is_stopped()) || self.until(ready, stopped)
    }

    /// Every set newer than the set `at` has written the blocks it gives
    /// of `path` up to `block`.
    fn passed(&self, at: usize, path: &str, block: u64) -> bool {
        self.below[..at.min(self.below.len())].iter().all(|marks| {
            marks
                .get(path)
                .is_none_or(|mark| mark.load(Ordering::SeqCst) > block)
        })
    }

    /// Waits until `ready`; false when the restore stopped first (a set
    /// that failed stops the restore before it ends, so what its end made
    /// ready is not taken). `stopped` is asked without the lock held (it
    /// may stop the restore, which wakes the waiters).
    fn until(&self, ready: impl Fn() -> bool, stopped: &dyn Fn() -> bool) -> bool {
        loop {
            if ready() {
                return !self.is_stopped();
            }
            if stopped() || self.is_stopped() {
                return false;
            }
            let held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.waiting.fetch_add(1, Ordering::SeqCst);
            // A mark moved before this thread counted as waiting is seen
            // here; one moved after wakes it.
            if !ready() && !self.is_stopped() {
                drop(
                    self.wake
                        .wait_timeout(held, STOP_TICK)
                        .unwrap_or_else(PoisonError::into_inner),
                );
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The progress of a thread of the pool that reads the newer sets: its
/// bytes are reported by the restore's thread, and it stops when the
/// restore does.
struct Relay<'a> {
    marks: &'a Marks,
    advanced: &'a AtomicU64,
}

impl Progress for Relay<'_> {
    fn advance(&mut self, bytes: u64) {
        self.advanced.fetch_add(bytes, Ordering::Relaxed);
    }

    fn is_stopped(&self) -> bool {
        self.marks.is_stopped()
    }
}

/// The restore's progress, on its own thread: it also reports the bytes
/// the other thread wrote (each time it is asked whether to stop, too, so
/// that they show while this thread waits), and passes a stop on to it.
struct Lead<'a> {
    inner: std::cell::RefCell<&'a mut dyn Progress>,
    marks: &'a Marks,
    relayed: &'a AtomicU64,
}

impl Lead<'_> {
    /// Reports what the other thread wrote since the last report.
    fn flush(&self) {
        let relayed = self.relayed.swap(0, Ordering::Relaxed);
        if relayed > 0 {
            match self.inner.try_borrow_mut() {
                Ok(mut inner) => inner.advance(relayed),
                Err(_) => {
                    self.relayed.fetch_add(relayed, Ordering::Relaxed);
                }
            }
        }
    }
}

impl Progress for Lead<'_> {
    fn advance(&mut self, bytes: u64) {
        let total = bytes + self.relayed.swap(0, Ordering::Relaxed);
        if total > 0 {
            self.inner.get_mut().advance(total);
        }
    }

    fn is_stopped(&self) -> bool {
        self.flush();
        let asked = self
            .inner
            .try_borrow()
            .map(|inner| inner.is_stopped())
            .unwrap_or(false);
        if asked && !self.marks.is_stopped() {
            self.marks.stop();
        }
        self.marks.is_stopped()
    }
}

/// Takes from an older set of a chain what the plan says it gives
/// (behaviour §21), skipping the rest.
struct Filler<'a, 'p> {
    staged: &'a Staged<'a>,
    /// The set's place in the chain (0: the set the newest builds on).
    at: usize,
    supplies: &'a BTreeMap<String, (u64, Supply)>,
    marks: &'a Marks,
    progress: &'p mut dyn Progress,
    seen: Vec<Seen>,
    /// The files this set wrote: a second entry of one is refused before
    /// it writes (another set may already have read its blocks back).
    written: HashSet<String>,
    filled: Filled,
}

impl Visitor for Filler<'_, '_> {
    fn entry(&mut self, entry: &ReadEntry, content: &mut dyn Read) -> Result<(), VisitError> {
        if self.progress.is_stopped() {
            return Err(ArchiveError::Stopped.into());
        }
        let Some((size, supply)) = self.supplies.get(&entry.path) else {
            return Ok(());
        };
        let kind = self.staged.kind;
        if entry.entry_type != EntryType::File {
            return Ok(());
        }
        if !self.written.insert(entry.path.clone()) {
            return Err(
                ArchiveError::corrupt(kind, format!("entry {} appears twice", entry.path)).into(),
            );
        }
        let rel = relative(&entry.path)?;
        self.staged
            .budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(entry)?;
        let staging = self.staged.staging;
        let shown = staging.shown(&rel);
        let seen = match (supply, entry.blocks) {
            (Supply::Whole, false) => {
                let mut file = create_staged(kind, &entry.path, staging, &rel)?;
                let (hash, n) = hash_content(content, Some((&mut file, &shown)))?;
                self.filled.bytes += n;
                self.progress.advance(n);
                Seen::of(entry, Some(hash))
            }
            (Supply::Blocks { take, .. }, true) => {
                let mut file = open_staged(staging, &rel)?;
                let (marks, at, path) = (self.marks, self.at, entry.path.as_str());
                let seen = write_blocks(
                    kind,
                    entry,
                    content,
                    (&mut file, &shown),
                    (Some(take), Some(*size)),
                    (&mut *self.progress, &mut self.filled.bytes),
                    &|index| marks.set(at, path, u64::from(index)),
                )?;
                marks.set(at, path, u64::MAX);
                seen
            }
            (Supply::Rest { take, block_size }, false) => {
                let stopped = || self.progress.is_stopped();
                let (marks, at, path) = (self.marks, self.at, entry.path.as_str());
                let ready = |block| marks.wait(at, path, block, &stopped);
                let mut sink = NeededBlocks {
                    file: open_staged(staging, &rel)?,
                    at: 0,
                    block_size: *block_size,
                    size: *size,
                    take,
                    written: 0,
                    whole: blake3::Hasher::new(),
                    hashed: 0,
                    scratch: Vec::new(),
                    ready: &ready,
                };
                let whole = copy_content(content, (&mut sink, &shown)).and_then(|()| {
                    sink.finish()
                        .map_err(|e| ArchiveError::io("cannot read", &shown)(e).into())
                });
                // A wait for newer sets that ended because the restore stopped.
                if whole.is_err() && stopped() {
                    return Err(ArchiveError::Stopped.into());
                }
                let whole = whole?;
                self.filled.bytes += sink.written;
                self.progress.advance(sink.written);
                self.filled.hashed.push((entry.path.clone(), whole));
                Seen::of(entry, None)
            }
            _ => {
                return Err(ArchiveError::corrupt(
                    kind,
                    format!(
                        "entry {}: not the content its manifest declares",
                        entry.path
                    ),
                )
                .into());
            }
        };
        self.seen.push(seen);
        Ok(())
    }

    fn manifest(&mut self, manifest: &Manifest) -> Result<(), ArchiveError> {
        check_seen(self.staged.kind, manifest, &self.seen, false)
    }

    /// Each entry it writes is then checked against its declared size as
    /// its header is read.
    fn needs_manifest_first(&self) -> bool {
        true
    }

    fn is_stopped(&self) -> bool {
        self.progress.is_stopped()
    }
}

/// Writes, of a file's whole content streamed through it, only the blocks
/// this set gives, at their place in the staged file, and hashes the file
/// as the restore gives it: the other blocks are read back once the newer
/// sets that give them have written them.
struct NeededBlocks<'a> {
    file: File,
    /// Offset in the file of the next byte written.
    at: u64,
    block_size: u64,
    /// The file's size in the newest set.
    size: u64,
    take: &'a BTreeSet<u32>,
    written: u64,
    /// The file as the restore gives it, hashed up to `hashed`.
    whole: blake3::Hasher,
    hashed: u64,
    /// What blocks newer sets wrote are read back into.
    scratch: Vec<u8>,
    /// Waits until newer sets have written their blocks up to this one;
    /// false when the restore stopped.
    ready: &'a dyn Fn(u64) -> bool,
}

impl NeededBlocks<'_> {
    /// Hashes `len` bytes of the staged file from `at`: blocks newer sets
    /// write there, once they have.
    fn hash_staged(&mut self, mut at: u64, len: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        if len == 0 {
            return Ok(());
        }
        let end = at + len;
        if !(self.ready)((end - 1) / self.block_size) {
            return Err(std::io::Error::other("the restore stopped"));
        }
        let want = len.min(1 << 20) as usize;
        if self.scratch.len() < want {
            self.scratch.resize(want, 0);
        }
        while at < end {
            let n = (end - at).min(self.scratch.len() as u64) as usize;
            self.file.read_exact_at(&mut self.scratch[..n], at)?;
            self.whole.update(&self.scratch[..n]);
            at += n as u64;
        }
        self.hashed = end;
        Ok(())
    }

    /// The blake3 of the file as the restore gives it (what this set gave,
    /// then past its end what newer sets wrote), and the staged file's
    /// length as the file system has it.
    fn finish(&mut self) -> std::io::Result<(String, u64)> {
        if self.hashed < self.size {
            self.hash_staged(self.hashed, self.size - self.hashed)?;
        }
        let len = self.file.metadata()?.len();
        Ok((self.whole.finalize().to_hex().to_string(), len))
    }
}

impl std::io::Write for NeededBlocks<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let mut piece = 0usize;
        while piece < buf.len() {
            let pos = self.at + piece as u64;
            // Past the blocks a map can number, or past the file: the rest
            // of this set's content is not the file's.
            let block = pos / self.block_size;
            let Ok(index) = u32::try_from(block) else {
                break;
            };
            if pos >= self.size {
                break;
            }
            if pos != self.hashed {
                return Err(std::io::Error::other(format!(
                    "byte {pos} of the content came before byte {} was hashed",
                    self.hashed
                )));
            }
            let block_end = (block + 1).saturating_mul(self.block_size);
            let end = (block_end - self.at)
                .min(buf.len() as u64)
                .min(self.size - self.at) as usize;
            if self.take.contains(&index) {
                self.file.write_all_at(&buf[piece..end], pos)?;
                self.whole.update(&buf[piece..end]);
                self.hashed = pos + (end - piece) as u64;
                self.written += (end - piece) as u64;
            } else {
                self.hash_staged(pos, (end - piece) as u64)?;
            }
            piece = end;
        }
        self.at += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streams `content` into `sink` (the staged file at `path`) as it comes.
fn copy_content(
    content: &mut dyn Read,
    (sink, path): (&mut dyn std::io::Write, &Path),
) -> Result<(), VisitError> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match content.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(VisitError::Stream(e)),
        };
        sink.write_all(&buf[..n])
            .map_err(ArchiveError::io("cannot write", path))?;
    }
}

/// Opens a staged file that a newer set of the chain created.
pub(super) fn open_staged(staging: &Beneath, rel: &Path) -> Result<File, ArchiveError> {
    staging
        .open_read_write(rel)
        .map_err(ArchiveError::io("cannot open", &staging.shown(rel)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes set `number` of "App" into `dir`: the data file `data`, in
    /// blocks of 4 KiB, incremental on `parent` when given.
    fn write_set(
        dir: &Path,
        data: &Path,
        number: u32,
        parent: Option<std::sync::Arc<Manifest>>,
    ) -> std::sync::Arc<Manifest> {
        use crate::{ArchiveWriter, Incremental, SetSpec, SourceEntry};
        let spec = SetSpec {
            destination: dir.to_path_buf(),
            base: "App".to_owned(),
            number: number.into(),
            kind: SetKind::Backup,
            compression: sauve_settings::Compression::None,
            segment_size: 0,
            threads: 1,
        };
        let header = crate::manifest::ManifestHeader::new(
            SetKind::Backup,
            number,
            "App",
            jiff::Timestamp::UNIX_EPOCH,
        );
        let mut w = ArchiveWriter::create(spec, header).unwrap();
        w.set_incremental(Incremental {
            block_size: Some(4096),
            verify_unchanged: false,
            parent,
        })
        .unwrap();
        let entry = SourceEntry {
            kind: crate::manifest::EntryKind::Data,
            source: data.to_path_buf(),
            path: "Data/App.4DD".to_owned(),
            entry_type: EntryType::File,
            size: std::fs::metadata(data).unwrap().len(),
            mode: 0o600,
            mtime: i64::from(number),
            target: None,
        };
        w.append(&entry, &mut crate::NoProgress).unwrap();
        let pending = w.finish(jiff::Timestamp::UNIX_EPOCH).unwrap();
        let manifest = std::sync::Arc::new(pending.manifest().clone());
        pending.commit().unwrap();
        manifest
    }

    /// A manifest the plan did not keep (past its limit) is read again when
    /// its set is read, and held to the hash the plan saw: the set read as
    /// planned gives its blocks; a set that changed since is 1411, named.
    #[test]
    fn a_manifest_not_kept_is_read_again_and_held_to_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        let sets = dir.path().join("sets");
        std::fs::create_dir(&sets).unwrap();
        let data = dir.path().join("App.4DD");
        std::fs::write(&data, vec![1u8; 4 * 4096]).unwrap();
        let full = write_set(&sets, &data, 1, None);
        let changed = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&changed, &[2u8; 4096], 2 * 4096).unwrap();
        let newest = write_set(&sets, &data, 2, Some(full));
        let link = Link::Folder(crate::SetFiles::locate(&sets.join("App[0002]")).unwrap());
        let chain = plan(&link, &newest, &AtomicBool::new(false), 0).unwrap();
        assert_eq!(chain.len(), 1);
        assert!(chain[0].kept.is_none(), "nothing fits in a limit of 0");
        assert_eq!(
            chain[0]
                .supplies
                .get("Data/App.4DD")
                .map(|(_, s)| s.blocks()),
            Some(Some(3)),
            "set 1 gives the 3 blocks set 2 does not hold"
        );

        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let staging = Beneath::open(&out).unwrap();
        std::fs::create_dir(out.join("Data")).unwrap();
        std::fs::File::create(out.join("Data/App.4DD"))
            .unwrap()
            .set_len(4 * 4096)
            .unwrap();
        let staged = Staged {
            kind: SetKind::Backup,
            staging: &staging,
            budget: Mutex::new(Budget::of(&staging).unwrap()),
        };
        let marks = Marks::of(chain.iter().map(|p| &p.supplies));
        let mut relay = Relay {
            marks: &marks,
            advanced: &AtomicU64::new(0),
        };
        let filled = read_set(0, &chain[0], &staged, &marks, &mut relay).unwrap();
        assert_eq!(filled.bytes, 3 * 4096);
        assert_eq!(filled.hashed.len(), 1);

        // Set 1 written again with other bytes: another manifest.
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        write_set(&other, &data, 1, None);
        std::fs::copy(other.join("App[0001].4BK"), sets.join("App[0001].4BK")).unwrap();
        let Err(err) = read_set(0, &chain[0], &staged, &marks, &mut relay) else {
            panic!("a set changed since the plan was read");
        };
        assert_eq!(err.status(), sauve_status::Status::ArchiveCorrupt, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("App[0001]") && text.contains("not the one it declared"),
            "{text}"
        );
    }

    /// The sets asked for ahead are the numbers just below; a chain that
    /// skips some (set 5 on 3 on 1, a full set 2 between) is still walked
    /// by what each set builds on, and what was asked for ahead that is not
    /// in it is not used.
    #[test]
    fn a_chain_that_skips_numbers_is_planned_by_what_each_set_builds_on() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("App.4DD");
        let page = |at: u64, byte: u8| {
            let f = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
            std::os::unix::fs::FileExt::write_all_at(&f, &[byte; 4096], at * 4096).unwrap();
        };
        std::fs::write(&data, vec![1u8; 8 * 4096]).unwrap();
        let one = write_set(dir.path(), &data, 1, None);
        page(5, 9);
        write_set(dir.path(), &data, 2, None);
        page(1, 3);
        let three = write_set(dir.path(), &data, 3, Some(one));
        page(6, 5);
        let five = write_set(dir.path(), &data, 5, Some(three));
        let link = Link::Folder(crate::SetFiles::locate(&dir.path().join("App[0005]")).unwrap());
        let chain = plan(&link, &five, &AtomicBool::new(false), KEPT).unwrap();
        let walked: Vec<String> = chain.iter().map(Planned::name).collect();
        assert_eq!(walked, ["App[0003]", "App[0001]"]);
        let blocks = |p: &Planned| p.supplies.get("Data/App.4DD").map(|(_, s)| s.blocks());
        // Set 3 gives its block 1 and block 5 (both changed since set 1);
        // set 1 the 5 others.
        assert_eq!(blocks(&chain[0]), Some(Some(2)));
        assert_eq!(blocks(&chain[1]), Some(Some(5)));
    }

    /// Set 0 gives blocks 2 and 7 of "f"; set 1, older, holds it whole.
    fn marks() -> Marks {
        let blocks = BTreeMap::from([(
            "f".to_owned(),
            (
                100,
                Supply::Blocks {
                    take: BTreeSet::from([2, 7]),
                    first: true,
                },
            ),
        )]);
        let rest = BTreeMap::from([(
            "f".to_owned(),
            (
                100,
                Supply::Rest {
                    take: BTreeSet::from([0, 1]),
                    block_size: 10,
                },
            ),
        )]);
        Marks::of([&blocks, &rest].into_iter())
    }

    #[test]
    fn a_block_is_read_back_only_once_the_newer_sets_passed_it() {
        let m = marks();
        assert!(!m.passed(1, "f", 0));
        m.set(0, "f", 3);
        assert!(m.passed(1, "f", 2));
        assert!(!m.passed(1, "f", 3));
        // A mark never goes back.
        m.set(0, "f", 1);
        assert!(m.passed(1, "f", 2));
        // The newest set waits for none; a file no newer set gives is ready.
        assert!(m.passed(0, "f", 9));
        assert!(m.passed(1, "g", 9));
        // A waiter on another thread goes on once the mark passes its block.
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| m.wait(1, "f", 7, &|| false));
            m.set(0, "f", 8);
            assert!(waiter.join().unwrap());
        });
        // A set that ended has passed every block.
        let m = marks();
        m.end(0);
        assert!(m.passed(1, "f", u64::from(u32::MAX)));
    }

    /// Found in review: the wait asked whether to stop with its lock held,
    /// and the restore's own progress, stopping the other thread, took that
    /// lock again.
    #[test]
    fn a_stop_asked_while_waiting_ends_the_wait_and_stops_the_other_thread() {
        struct Asked;
        impl Progress for Asked {
            fn is_stopped(&self) -> bool {
                true
            }
        }
        let m = marks();
        let relayed = AtomicU64::new(5);
        let mut asked = Asked;
        let lead = Lead {
            inner: std::cell::RefCell::new(&mut asked),
            marks: &m,
            relayed: &relayed,
        };
        assert!(!m.wait(1, "f", 7, &|| lead.is_stopped()));
        assert!(m.is_stopped());
        assert_eq!(relayed.load(Ordering::SeqCst), 0, "reported while waiting");
    }

    #[test]
    fn a_wait_ends_unready_when_the_restore_stops() {
        let m = marks();
        assert!(!m.wait(1, "f", 7, &|| true));
        assert!(!m.is_stopped(), "a stop asked of one thread is its own");
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| m.wait(1, "f", 7, &|| false));
            m.stop();
            assert!(!waiter.join().unwrap());
        });
        assert!(m.is_stopped());
    }
}
