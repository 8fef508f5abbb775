//! `sauve restore` (behaviour §13.1): extract into a staging folder inside
//! the destination, hashing while writing; move files into place only once
//! every entry matched the manifest. Nothing is written outside the
//! destination: unsafe sets are refused by the reader ([`crate::safety`]),
//! every file is created, opened, moved and given its mode and time through
//! a handle on the staging folder or the destination that no name can leave
//! ([`Beneath`]), and symlinks are created last, never followed.

use sauve_durable::beneath::{Beneath, Kind};
use sauve_durable::fault::{Step, point};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::ArchiveError;
use crate::index::DeclaredSet;
use crate::kind::SetKind;
use crate::manifest::{EntryType, Manifest, ManifestEntry};
use crate::naming::SetFiles;
use crate::reader::{
    ReadEntry, Seen, VisitError, Visitor, check_against_manifest, hash_content, read_blocks_entry,
};
use crate::remote::RemoteSet;
use crate::safety::{safe_components, unsafe_entry};
use crate::verify::Link;
use crate::writer::Progress;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

mod chain;
mod ranged;

/// How to restore.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// The destination; by default a folder next to the archive named after it.
    pub to: Option<PathBuf>,
    /// Restore into a non-empty destination, replacing same-path files.
    pub force: bool,
}

/// A completed restore.
#[derive(Clone, Debug)]
pub struct RestoreReport {
    /// The set restored.
    pub set: SetFiles,
    /// Where it went.
    pub destination: PathBuf,
    /// The set's manifest.
    pub manifest: Manifest,
    /// Files restored.
    pub files: usize,
    /// Bytes of file content restored.
    pub bytes: u64,
}

/// Restores the set that `path` names.
pub fn restore(
    path: &Path,
    options: &RestoreOptions,
    progress: &mut dyn Progress,
) -> Result<RestoreReport, ArchiveError> {
    let set = SetFiles::locate(path)?;
    // A missing segment is named before anything is created.
    crate::reader::present(&set)?;
    let destination = match &options.to {
        Some(d) => d.clone(),
        None => set.default_restore_dir(),
    };
    restore_from(Link::Folder(set), destination, options, progress)
}

/// Restores a set of a store (behaviour §19): its objects are read as one stream,
/// extracted into a staging folder and moved into place only once every
/// hash matched; an incremental set's chain is read from the same store
/// (behaviour §21.2). Without `options.to`, into `./base[NNNN]`.
pub fn restore_remote(
    remote: &RemoteSet,
    options: &RestoreOptions,
    progress: &mut dyn Progress,
) -> Result<RestoreReport, ArchiveError> {
    let set = remote.set_files();
    let destination = match &options.to {
        Some(d) => d.clone(),
        None => PathBuf::from(format!("{}[{}]", set.name.base, set.name.number.text())),
    };
    restore_from(Link::Store(remote.clone()), destination, options, progress)
}

/// Restores the set `newest`, and what it needs of the older sets of its
/// chain, found beside it.
fn restore_from(
    newest: Link,
    destination: PathBuf,
    options: &RestoreOptions,
    progress: &mut dyn Progress,
) -> Result<RestoreReport, ArchiveError> {
    let set = newest.files();
    let destination = std::path::absolute(&destination)
        .map_err(ArchiveError::io("cannot resolve", &destination))?;
    prepare_destination(&destination, options.force)?;
    let root =
        Beneath::open(&destination).map_err(ArchiveError::io("cannot open", &destination))?;
    let staging = Staging::create(&root)?;
    let mut budget = Budget::of(&staging.dir)?;
    // Set when the chain's plan fails: the newest set's read stops then.
    let halted = AtomicBool::new(false);
    let mut halting = Halting {
        inner: &mut *progress,
        halted: &halted,
    };
    let mut extractor = Extractor {
        kind: set.name.kind,
        staging: &staging.dir,
        budget: &mut budget,
        progress: &mut halting,
        seen: Vec::new(),
        bytes: 0,
        name: format!("{}[{}]", set.name.base, set.name.number.text()),
        assembled: BTreeMap::new(),
    };
    let (manifest, chain) = extract_while_planning(&newest, &mut extractor, &halted)?;
    let Extractor {
        mut assembled,
        bytes,
        ..
    } = extractor;
    for planned in &chain {
        for (path, size) in planned.first_written() {
            let rel = relative(path)?;
            let shown = staging.dir.shown(&rel);
            create_staged(set.name.kind, path, &staging.dir, &rel)?
                .set_len(size)
                .map_err(ArchiveError::io("cannot write", &shown))?;
        }
        for path in planned.blocks_of() {
            let name = planned.name();
            assembled
                .entry(path.to_owned())
                .or_default()
                .from
                .push(name);
        }
    }
    let staged = chain::Staged {
        kind: set.name.kind,
        staging: &staging.dir,
        budget: std::sync::Mutex::new(budget),
    };
    let filled = chain::fill(&chain, &staged, progress)?;
    let bytes = bytes + filled.bytes;
    for (path, whole) in filled.hashed {
        assembled.entry(path).or_default().hashed = Some(whole);
    }
    check_assembled(&manifest, &staging.dir, &assembled)?;
    let files = place(&manifest, &staging, &root)?;
    drop(staging);
    Ok(RestoreReport {
        set,
        destination,
        manifest,
        files,
        bytes,
    })
}

/// Extracts the newest set of a chain through `extractor` while the older
/// sets are planned, on another thread, from what the newest declares.
/// `halted` is set when the plan fails, and stops the extraction; a stop,
/// or the newest set's damage, ends the plan too. Returns the newest set's
/// manifest and the plan.
fn extract_while_planning(
    newest: &Link,
    extractor: &mut Extractor<'_>,
    halted: &AtomicBool,
) -> Result<(Manifest, Vec<chain::Planned>), ArchiveError> {
    let DeclaredSet { manifest, hash } = newest.declared(&|| extractor.progress.is_stopped())?;
    let stop = AtomicBool::new(false);
    let waiting = std::thread::current();
    let (read, chain) = std::thread::scope(|scope| {
        let planning = scope.spawn(|| {
            let _panicking = SetOnPanic(halted);
            let chain = chain::plan(newest, &manifest, &stop, chain::KEPT);
            if chain.is_err() {
                halted.store(true, Ordering::SeqCst);
            }
            waiting.unpark();
            chain
        });
        let panicking = SetOnPanic(&stop);
        let read = newest.scan_declared(extractor, (&manifest, hash));
        drop(panicking);
        while !planning.is_finished() {
            if read.is_err() || extractor.progress.is_stopped() {
                stop.store(true, Ordering::SeqCst);
            }
            std::thread::park_timeout(Duration::from_millis(10));
        }
        let chain = planning
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (read, chain)
    });
    match (read, chain) {
        // The read stopped for the plan's failure: that is the error.
        (Err(ArchiveError::Stopped), Err(e)) if halted.load(Ordering::SeqCst) => Err(e),
        (read, chain) => {
            read?;
            Ok((manifest, chain?))
        }
    }
}

/// Sets its flag when the thread that holds it panics: the thread working
/// beside it then stops rather than going on for nothing.
struct SetOnPanic<'a>(&'a AtomicBool);

impl Drop for SetOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

/// A restore's progress that also stops once `halted` is set.
struct Halting<'a> {
    inner: &'a mut dyn Progress,
    halted: &'a AtomicBool,
}

impl Progress for Halting<'_> {
    fn advance(&mut self, bytes: u64) {
        self.inner.advance(bytes);
    }

    fn is_stopped(&self) -> bool {
        self.halted.load(Ordering::SeqCst) || self.inner.is_stopped()
    }
}

/// Extracts into the staging folder, hashing while writing, refusing unsafe entries.
struct Extractor<'a> {
    kind: SetKind,
    staging: &'a Beneath,
    budget: &'a mut Budget,
    progress: &'a mut dyn Progress,
    seen: Vec<Seen>,
    bytes: u64,
    /// The set's name, `base[NNNN]`.
    name: String,
    /// Files put together from blocks, checked whole at the end.
    assembled: BTreeMap<String, Assembled>,
}

/// A file put together from blocks of several sets of a chain: the sets
/// that give its content, newest first, and its blake3 and length once the
/// pass that completed it computed them (else the file is read again and
/// hashed at the end).
#[derive(Default)]
struct Assembled {
    from: Vec<String>,
    hashed: Option<(String, u64)>,
}

impl Visitor for Extractor<'_> {
    fn entry(&mut self, entry: &ReadEntry, content: &mut dyn Read) -> Result<(), VisitError> {
        if self.progress.is_stopped() {
            return Err(ArchiveError::Stopped.into());
        }
        // The reader checked the name (crate::safety).
        let rel = relative(&entry.path)?;
        self.budget.take(entry)?;
        let staged = self.staging.shown(&rel);
        if entry.blocks {
            let mut file = create_staged(self.kind, &entry.path, self.staging, &rel)?;
            let seen = write_blocks(
                self.kind,
                entry,
                content,
                (&mut file, &staged),
                (None, None),
                (&mut *self.progress, &mut self.bytes),
                &|_| {},
            )?;
            let name = self.name.clone();
            self.assembled
                .entry(entry.path.clone())
                .or_default()
                .from
                .push(name);
            self.seen.push(seen);
            return Ok(());
        }
        let blake3 = match entry.entry_type {
            EntryType::File => {
                let mut file = create_staged(self.kind, &entry.path, self.staging, &rel)?;
                let (hash, n) = hash_content(content, Some((&mut file, &staged)))?;
                self.bytes += n;
                self.progress.advance(n);
                Some(hash)
            }
            EntryType::Dir => {
                self.staging
                    .create_dir_all(&rel)
                    .map_err(ArchiveError::io("cannot create", &staged))?;
                None
            }
            // Created by `place`, once everything else is written.
            EntryType::Symlink => None,
        };
        self.seen.push(Seen::of(entry, blake3));
        Ok(())
    }

    fn manifest(&mut self, manifest: &Manifest) -> Result<(), ArchiveError> {
        check_against_manifest(self.kind, manifest, &self.seen)
    }

    fn needs_manifest_first(&self) -> bool {
        true
    }

    fn is_stopped(&self) -> bool {
        self.progress.is_stopped()
    }

    fn declared(&mut self, manifest: &Manifest) -> Result<(), ArchiveError> {
        self.budget.declare(manifest)
    }
}

/// What a restore may still write: the space free on the destination's
/// file system when it began, less a reserve. Each entry is taken from it
/// by the size its tar header declares, before any byte of it is written.
struct Budget {
    left: u64,
    reserve: u64,
    /// The file system's block: every entry costs at least one.
    block: u64,
    /// The names (inodes) the restore may still create.
    names: u64,
    destination: PathBuf,
}

impl Budget {
    /// A restore leaves this much free, or 1% of what was free if more.
    const RESERVE: u64 = 64 << 20;

    fn of(staging: &Beneath) -> Result<Budget, ArchiveError> {
        let destination = staging
            .path()
            .parent()
            .unwrap_or(staging.path())
            .to_path_buf();
        let st = rustix::fs::fstatvfs(staging).map_err(|e| {
            ArchiveError::io("cannot read the free space of", &destination)(e.into())
        })?;
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        let reserve = Self::RESERVE.max(free / 100).min(free);
        // File systems without an inode count (btrfs) say 0 files in all.
        let names = if st.f_files == 0 {
            u64::MAX
        } else {
            st.f_favail.saturating_sub(st.f_favail / 100)
        };
        Ok(Budget {
            left: free - reserve,
            reserve,
            block: st.f_bsize.max(512),
            names,
            destination,
        })
    }

    /// Refuses, before anything is written, a set whose files and folders
    /// (as its manifest lists them) do not fit: each entry's size in the
    /// file system's blocks, and a block more for its name.
    fn declare(&self, manifest: &Manifest) -> Result<(), ArchiveError> {
        let entries = manifest.entries.len() as u64;
        let needed = manifest.entries.iter().fold(0u64, |total, e| {
            let blocks = e.size.div_ceil(self.block).saturating_add(1);
            total.saturating_add(blocks.saturating_mul(self.block))
        });
        if needed <= self.left && entries <= self.names {
            return Ok(());
        }
        Err(ArchiveError::DestinationTooSmall {
            entries,
            needed,
            free: self.left,
            names_free: self.names,
            reserve: self.reserve,
            destination: self.destination.clone(),
        })
    }

    /// Takes an entry of the stream: its size rounded up to the file
    /// system's block, and a block more for its name, whatever its type (a
    /// set of millions of empty files or folders costs their blocks and
    /// inodes too).
    fn take(&mut self, entry: &ReadEntry) -> Result<(), ArchiveError> {
        self.take_sized(&entry.path, entry.size)
    }

    /// Takes an entry of `size` bytes of content, as [`Budget::take`].
    fn take_sized(&mut self, path: &str, size: u64) -> Result<(), ArchiveError> {
        let needed = size
            .div_ceil(self.block)
            .saturating_add(1)
            .saturating_mul(self.block);
        let Some(names) = self.names.checked_sub(1) else {
            return Err(ArchiveError::DestinationOutOfNames {
                path: path.to_owned(),
                destination: self.destination.clone(),
            });
        };
        match self.left.checked_sub(needed) {
            Some(left) => {
                self.left = left;
                self.names = names;
                Ok(())
            }
            None => Err(ArchiveError::DestinationFull {
                path: path.to_owned(),
                needed,
                free: self.left,
                reserve: self.reserve,
                destination: self.destination.clone(),
            }),
        }
    }
}

/// A stored path as a relative path, refused if unsafe.
fn relative(path: &str) -> Result<PathBuf, ArchiveError> {
    Ok(safe_components(path)
        .map_err(|reason| unsafe_entry(path, reason))?
        .iter()
        .collect())
}

/// Creates a staged file (never one already there, private until `place`
/// gives it its mode) and its folders.
fn create_staged(
    kind: SetKind,
    path: &str,
    staging: &Beneath,
    rel: &Path,
) -> Result<File, ArchiveError> {
    let staged = &staging.shown(rel);
    if let Some(parent) = rel.parent() {
        staging
            .create_dir_all(parent)
            .map_err(ArchiveError::io("cannot create", &staging.shown(parent)))?;
    }
    let file = point(Step::Create, staged)
        .and_then(|()| staging.create_new(rel, 0o600))
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                ArchiveError::corrupt(kind, format!("entry {path} appears twice"))
            } else {
                ArchiveError::io("cannot create", staged)(e)
            }
        })?;
    point(Step::Write, staged).map_err(ArchiveError::io("cannot write", staged))?;
    Ok(file)
}

/// Writes a blocks entry's blocks (those in `only`, or all) at their place
/// in the staged file, which ends at `size` (by default the entry's file's),
/// telling `reached` the index of each block as its bytes come (every block
/// before it is then written, or skipped).
fn write_blocks(
    kind: SetKind,
    entry: &ReadEntry,
    content: &mut dyn Read,
    (file, staged): (&mut File, &Path),
    (only, size): (Option<&BTreeSet<u32>>, Option<u64>),
    (progress, bytes): (&mut dyn Progress, &mut u64),
    reached: &dyn Fn(u32),
) -> Result<Seen, VisitError> {
    use std::os::unix::fs::FileExt;
    let seen = read_blocks_entry(kind, entry, content, |i, at, block| {
        reached(i);
        if only.is_none_or(|o| o.contains(&i)) {
            file.write_all_at(block, at)
                .map_err(ArchiveError::io("cannot write", staged))?;
            *bytes += block.len() as u64;
            progress.advance(block.len() as u64);
        }
        Ok(())
    })?;
    file.set_len(size.unwrap_or(seen.size))
        .map_err(ArchiveError::io("cannot write", staged))?;
    Ok(seen)
}

/// Every file put together from blocks of several sets has the blake3 the
/// newest manifest lists.
fn check_assembled(
    manifest: &Manifest,
    staging: &Beneath,
    assembled: &BTreeMap<String, Assembled>,
) -> Result<(), ArchiveError> {
    for (e, a) in manifest
        .entries
        .iter()
        .filter_map(|e| assembled.get(&e.path).map(|a| (e, a)))
    {
        let (hash, size) = match &a.hashed {
            Some(hashed) => hashed.clone(),
            None => {
                let rel = relative(&e.path)?;
                let staged = staging.shown(&rel);
                let mut file = staging
                    .open_read(&rel)
                    .map_err(ArchiveError::io("cannot read", &staged))?;
                hash_content(&mut file, None).map_err(|e| match e {
                    VisitError::Stream(e) => ArchiveError::io("cannot read", &staged)(e),
                    VisitError::Other(e) => e,
                })?
            }
        };
        if size != e.size || Some(hash) != e.blake3 {
            return Err(ArchiveError::corrupt(
                SetKind::Backup,
                format!(
                    "entry {}: its blocks, from {}, do not give its checksum (`sauve verify` of the set names the damaged one)",
                    e.path,
                    a.from.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The destination must be an empty folder, or any folder with `force`.
fn prepare_destination(destination: &Path, force: bool) -> Result<(), ArchiveError> {
    // What a killed restore left does not make the folder "not empty": the
    // same command must work again.
    sauve_durable::remove_dead_folders(destination, ".sauve-restore-");
    match std::fs::read_dir(destination) {
        Ok(mut entries) => {
            if !force && entries.next().is_some() {
                return Err(ArchiveError::DestinationNotEmpty(destination.to_owned()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(destination)
            .map_err(ArchiveError::io("cannot create", destination)),
        Err(e) => Err(ArchiveError::io("cannot open", destination)(e)),
    }
}

/// The staging folder, removed with everything in it when dropped.
struct Staging {
    path: PathBuf,
    /// Its name in the destination.
    name: PathBuf,
    /// The handle everything in it is reached through.
    dir: Beneath,
}

impl Staging {
    fn create(root: &Beneath) -> Result<Staging, ArchiveError> {
        let destination = root.path();
        sauve_durable::remove_dead_folders(destination, ".sauve-restore-");
        let path = sauve_durable::create_working_folder(destination, ".sauve-restore-").map_err(
            ArchiveError::io("cannot create a staging folder in", destination),
        )?;
        let name = PathBuf::from(path.file_name().unwrap_or_default());
        // Opened beneath the destination's handle: never a link put there.
        let dir = root
            .open_dir(&name)
            .map_err(ArchiveError::io("cannot open", &path))?;
        Ok(Staging { path, name, dir })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if point(Step::Unlink, &self.path).is_ok() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn mtime_of(e: &ManifestEntry) -> SystemTime {
    if e.mtime >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(e.mtime as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_nanos(e.mtime.unsigned_abs())
    }
}

/// Gives `rel` beneath `root` the mode and time `e` lists, on its own
/// handle: a symlink there is refused, never followed.
fn set_times_and_mode(root: &Beneath, rel: &Path, e: &ManifestEntry) -> Result<(), ArchiveError> {
    // Modes are restored without setuid, setgid and sticky bits (behaviour §13.1).
    root.set_mode_and_time(rel, e.mode & 0o777, mtime_of(e))
        .map_err(|err| {
            if err.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                unsafe_entry(
                    &e.path,
                    format!(
                        "\"{}\" is a symlink in the destination",
                        root.shown(rel).display()
                    ),
                )
            } else {
                ArchiveError::io("cannot set the mode and time of", &root.shown(rel))(err)
            }
        })
}

/// Flushes everything written on the file system holding `root`.
fn sync_fs(root: &Beneath) -> Result<(), ArchiveError> {
    let path = root.path();
    point(Step::Sync, path).map_err(ArchiveError::io("cannot sync", path))?;
    root.sync_fs()
        .map_err(ArchiveError::io("cannot sync", path))
}

/// Completes the verified staging tree (file modes and times, symlinks, made
/// durable), then moves it into the destination: a whole folder in one
/// rename where the destination has none, merged entry by entry where it
/// has (`--force`), never through a symlink. Folder modes and times come
/// last. Returns the number of files placed.
fn place(manifest: &Manifest, staging: &Staging, root: &Beneath) -> Result<usize, ArchiveError> {
    let stage = &staging.dir;
    let mut files = 0;
    let mut dirs: Vec<(&ManifestEntry, PathBuf)> = Vec::new();
    for e in &manifest.entries {
        let rel = relative(&e.path)?;
        match e.entry_type {
            EntryType::File => {
                set_times_and_mode(stage, &rel, e)?;
                files += 1;
            }
            EntryType::Dir => dirs.push((e, rel)),
            EntryType::Symlink => {
                // Created only now, after every file was written: nothing is
                // ever written through a restored symlink.
                if let Some(parent) = rel.parent() {
                    stage
                        .create_dir_all(parent)
                        .map_err(ArchiveError::io("cannot create", &stage.shown(parent)))?;
                }
                let target = e.target.as_deref().unwrap_or_default();
                stage.symlink(target, &rel).map_err(ArchiveError::io(
                    "cannot create symlink",
                    &stage.shown(&rel),
                ))?;
            }
        }
    }
    sync_fs(stage)?;
    let tops = stage
        .names(Path::new(""))
        .map_err(ArchiveError::io("cannot read", &staging.path))?;
    for top in tops {
        merge_move((root, &staging.name.join(&top)), (root, Path::new(&top)))?;
    }
    dirs.sort_by_key(|(_, p)| std::cmp::Reverse(p.components().count()));
    for (e, rel) in dirs {
        set_times_and_mode(root, &rel, e)?;
    }
    sync_fs(root)?;
    Ok(files)
}

/// Moves `src` to `dst` (each a name beneath a handle): one rename when
/// `dst` is free; into an existing folder, child by child; over an existing
/// file, replacing it. An existing symlink on the way is refused, never
/// followed.
fn merge_move(
    (from, src): (&Beneath, &Path),
    (to, dst): (&Beneath, &Path),
) -> Result<(), ArchiveError> {
    let shown_dst = to.shown(dst);
    let existing = to
        .kind(dst)
        .map_err(ArchiveError::io("cannot read", &shown_dst))?;
    let Some(existing) = existing else {
        return point(Step::Rename, &shown_dst)
            .and_then(|()| from.rename(src, to, dst))
            .map_err(ArchiveError::io("cannot move into place", &shown_dst));
    };
    let src_kind = from
        .kind(src)
        .map_err(ArchiveError::io("cannot read", &from.shown(src)))?;
    let refuse = |what: &str| {
        unsafe_entry(
            &dst.to_string_lossy(),
            format!("\"{}\" is {what} in the destination", shown_dst.display()),
        )
    };
    match (existing, src_kind) {
        (Kind::Symlink, _) => Err(refuse("a symlink")),
        (Kind::Other, _) => Err(refuse("neither a file nor a folder")),
        (Kind::Dir, Some(Kind::Dir)) => {
            let children = from
                .names(src)
                .map_err(ArchiveError::io("cannot read", &from.shown(src)))?;
            for child in children {
                merge_move((from, &src.join(&child)), (to, &dst.join(&child)))?;
            }
            Ok(())
        }
        (Kind::File, Some(Kind::File | Kind::Symlink)) => point(Step::Rename, &shown_dst)
            .and_then(|()| from.rename(src, to, dst))
            .map_err(ArchiveError::io("cannot replace", &shown_dst)),
        (Kind::Dir, _) => Err(ArchiveError::io(
            "cannot replace a folder with a file",
            &shown_dst,
        )(std::io::Error::from(
            std::io::ErrorKind::IsADirectory,
        ))),
        (Kind::File, _) => Err(ArchiveError::io(
            "cannot replace a file with a folder",
            &shown_dst,
        )(std::io::Error::from(
            std::io::ErrorKind::NotADirectory,
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incremental::BlocksHead;
    use crate::writer::NoProgress;
    use std::cell::RefCell;
    use std::os::unix::fs::FileExt;

    /// A block larger than the pieces it is read in (16 MiB) is reached
    /// piece by piece under its own index: the next index is told only once
    /// every byte of the block before it is written.
    #[test]
    fn a_block_is_passed_only_once_all_its_pieces_are_written() {
        let block = 32u64 << 20;
        let head = BlocksHead {
            block_size: block,
            size: 3 * block,
            indices: vec![1, 2],
        };
        let mut content = head.encode();
        for i in [1u8, 2] {
            content.extend(std::iter::repeat_n(i, block as usize));
        }
        let entry = ReadEntry {
            path: "f".to_owned(),
            entry_type: EntryType::File,
            size: head.entry_len(),
            target: None,
            mode: 0o600,
            mtime_secs: 0,
            blocks: true,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = File::create_new(&path).unwrap();
        let reader = File::open(&path).unwrap();
        let told = RefCell::new(Vec::new());
        let reached = |i: u32| {
            // Every block before `i` is in the file.
            if i == 2 {
                let mut last = [0u8; 1];
                reader.read_exact_at(&mut last, 2 * block - 1).unwrap();
                assert_eq!(last, [1], "block 1 is written whole before 2 is reached");
            }
            told.borrow_mut().push(i);
        };
        let mut bytes = 0;
        write_blocks(
            SetKind::Backup,
            &entry,
            &mut content.as_slice(),
            (&mut file, &path),
            (None, None),
            (&mut NoProgress, &mut bytes),
            &reached,
        )
        .unwrap();
        assert_eq!(told.into_inner(), vec![1, 1, 2, 2]);
        assert_eq!(bytes, 2 * block);
    }
}
