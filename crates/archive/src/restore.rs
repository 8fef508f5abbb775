//! `sauve restore` (SPEC section 13.1): extract into a staging folder inside
//! the destination, hashing while writing; move files into place only once
//! every entry matched the manifest. Nothing is written outside the
//! destination: unsafe names, hard links, devices and paths through symlinks
//! are refused, and symlinks are created last.

use sauve_durable::fault::{Step, point};
use std::fs::{File, Permissions};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::ArchiveError;
use crate::incremental::{Need, Needs};
use crate::manifest::{EntryType, Manifest, ManifestEntry};
use crate::naming::{SetFiles, SetKind};
use crate::reader::{
    ReadEntry, Seen, VisitError, Visitor, check_against_manifest, check_seen, hash_content,
    read_blocks_entry,
};
use crate::remote::RemoteSet;
use crate::writer::Progress;
use std::collections::BTreeSet;

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
    let files = set.files.clone();
    for f in &files {
        if !f.is_file() {
            return Err(ArchiveError::Missing {
                kind: set.name.kind,
                what: format!("{} not found", f.display()),
            });
        }
    }
    let first = files
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let destination = match &options.to {
        Some(d) => d.clone(),
        None => set.default_restore_dir(),
    };
    restore_from(
        set,
        &crate::reader::Files(&files),
        (&first, true),
        destination,
        options,
        progress,
    )
}

/// Restores a set of a store (SPEC 19): its objects are read as one stream,
/// extracted into a staging folder and moved into place only once every
/// hash matched. Without `options.to`, into `./base[NNNN]`.
pub fn restore_remote(
    remote: &RemoteSet,
    options: &RestoreOptions,
    progress: &mut dyn Progress,
) -> Result<RestoreReport, ArchiveError> {
    let set = remote.set_files();
    let destination = match &options.to {
        Some(d) => d.clone(),
        None => PathBuf::from(format!(
            "{}[{}]",
            set.name.base,
            crate::naming::number_text(set.name.number)
        )),
    };
    restore_from(
        set,
        remote,
        (&remote.first_label(), false),
        destination,
        options,
        progress,
    )
}

/// Restores `set` from `source` (`first` names it; `local`: its chain, if
/// any, is in the same folder).
fn restore_from(
    set: SetFiles,
    source: &dyn crate::reader::SegmentSource,
    (first, local): (&str, bool),
    destination: PathBuf,
    options: &RestoreOptions,
    progress: &mut dyn Progress,
) -> Result<RestoreReport, ArchiveError> {
    let destination = std::path::absolute(&destination)
        .map_err(ArchiveError::io("cannot resolve", &destination))?;
    prepare_destination(&destination, options.force)?;
    let staging = Staging::create(&destination)?;
    let mut extractor = Extractor {
        kind: set.name.kind,
        staging: &staging.path,
        progress,
        seen: Vec::new(),
        symlinks: Vec::new(),
        bytes: 0,
        assembled: Vec::new(),
    };
    let manifest = crate::reader::scan_source(source, set.name.kind, first, &mut extractor)?;
    let mut bytes = extractor.bytes;
    let mut assembled = std::mem::take(&mut extractor.assembled);
    let mut needs = Needs::of(&manifest);
    if !needs.is_empty() && !local {
        return Err(ArchiveError::Missing {
            kind: set.name.kind,
            what: format!(
                "{} is an incremental set: restore it from a folder holding its chain back to its full set (a store's incremental sets are restored after copying them back)",
                needs.name(manifest.header.backup_number)
            ),
        });
    }
    while !needs.is_empty() {
        let link = crate::verify::locate_parent(&set, &needs)?;
        let mut filler = Filler {
            kind: link.name.kind,
            staging: &staging.path,
            needs: &needs,
            progress: extractor.progress,
            seen: Vec::new(),
            bytes: 0,
            assembled: &mut assembled,
        };
        let older = crate::reader::scan(&link, &mut filler)?;
        bytes += filler.bytes;
        needs.resolve(&older)?;
    }
    check_assembled(&manifest, &staging.path, &assembled)?;
    let files = place(&manifest, &staging.path, &destination)?;
    drop(staging);
    Ok(RestoreReport {
        set,
        destination,
        manifest,
        files,
        bytes,
    })
}

/// Extracts into the staging folder, hashing while writing, refusing unsafe entries.
struct Extractor<'a> {
    kind: SetKind,
    staging: &'a Path,
    progress: &'a mut dyn Progress,
    seen: Vec<Seen>,
    symlinks: Vec<String>,
    bytes: u64,
    /// Files put together from blocks, checked whole at the end.
    assembled: Vec<String>,
}

impl Visitor for Extractor<'_> {
    fn entry(&mut self, entry: &ReadEntry, content: &mut dyn Read) -> Result<(), VisitError> {
        if self.progress.is_stopped() {
            return Err(ArchiveError::Stopped.into());
        }
        let parts =
            safe_components(&entry.path).map_err(|reason| unsafe_entry(&entry.path, reason))?;
        if let Some(link) = through_symlink(&entry.path, &self.symlinks) {
            return Err(
                unsafe_entry(&entry.path, format!("it goes through the symlink {link}")).into(),
            );
        }
        let staged = self.staging.join(parts.iter().collect::<PathBuf>());
        if entry.blocks {
            let mut file = create_staged(self.kind, entry, &staged)?;
            let seen = write_blocks(
                self.kind,
                entry,
                content,
                (&mut file, &staged),
                (None, None),
                (&mut *self.progress, &mut self.bytes),
            )?;
            self.assembled.push(entry.path.clone());
            self.seen.push(seen);
            return Ok(());
        }
        let blake3 = match entry.entry_type {
            EntryType::File => {
                let mut file = create_staged(self.kind, entry, &staged)?;
                let (hash, n) = hash_content(content, Some((&mut file, &staged)))?;
                self.bytes += n;
                self.progress.advance(n);
                Some(hash)
            }
            EntryType::Dir => {
                std::fs::create_dir_all(&staged)
                    .map_err(ArchiveError::io("cannot create", &staged))?;
                None
            }
            EntryType::Symlink => {
                let prefix = format!("{}/", entry.path);
                if let Some(s) = self.seen.iter().find(|s| s.path.starts_with(&prefix)) {
                    return Err(unsafe_entry(
                        &s.path,
                        format!("it goes through the symlink {}", entry.path),
                    )
                    .into());
                }
                self.symlinks.push(entry.path.clone());
                None
            }
        };
        self.seen.push(Seen::of(entry, blake3));
        Ok(())
    }

    fn manifest(&mut self, manifest: &Manifest) -> Result<(), ArchiveError> {
        check_against_manifest(self.kind, manifest, &self.seen)
    }
}

/// Creates a staged file (never one already there) and its folders.
fn create_staged(kind: SetKind, entry: &ReadEntry, staged: &Path) -> Result<File, ArchiveError> {
    if let Some(parent) = staged.parent() {
        std::fs::create_dir_all(parent).map_err(ArchiveError::io("cannot create", parent))?;
    }
    let file = point(Step::Create, staged)
        .and_then(|()| File::create_new(staged))
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                ArchiveError::corrupt(kind, format!("entry {} appears twice", entry.path))
            } else {
                ArchiveError::io("cannot create", staged)(e)
            }
        })?;
    point(Step::Write, staged).map_err(ArchiveError::io("cannot write", staged))?;
    Ok(file)
}

/// Writes a blocks entry's blocks (those in `only`, or all) at their place
/// in the staged file, which ends at `size` (by default the entry's file's).
fn write_blocks(
    kind: SetKind,
    entry: &ReadEntry,
    content: &mut dyn Read,
    (file, staged): (&mut File, &Path),
    (only, size): (Option<&BTreeSet<u32>>, Option<u64>),
    (progress, bytes): (&mut dyn Progress, &mut u64),
) -> Result<Seen, VisitError> {
    use std::os::unix::fs::FileExt;
    let seen = read_blocks_entry(kind, entry, content, |i, at, block| {
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

/// Takes from an older set of a chain what the newer sets need of it
/// (SPEC 21), skipping the rest.
struct Filler<'a> {
    kind: SetKind,
    staging: &'a Path,
    needs: &'a Needs,
    progress: &'a mut dyn Progress,
    seen: Vec<Seen>,
    bytes: u64,
    assembled: &'a mut Vec<String>,
}

impl Visitor for Filler<'_> {
    fn entry(&mut self, entry: &ReadEntry, content: &mut dyn Read) -> Result<(), VisitError> {
        use std::os::unix::fs::FileExt;
        if self.progress.is_stopped() {
            return Err(ArchiveError::Stopped.into());
        }
        let Some((size, need)) = self.needs.files.get(&entry.path) else {
            return Ok(());
        };
        if entry.entry_type != EntryType::File {
            return Ok(());
        }
        let parts =
            safe_components(&entry.path).map_err(|reason| unsafe_entry(&entry.path, reason))?;
        let staged = self.staging.join(parts.iter().collect::<PathBuf>());
        let seen = match (need, entry.blocks) {
            (Need::Whole { .. }, false) => {
                let mut file = create_staged(self.kind, entry, &staged)?;
                let (hash, n) = hash_content(content, Some((&mut file, &staged)))?;
                self.bytes += n;
                self.progress.advance(n);
                Seen::of(entry, Some(hash))
            }
            (Need::Whole { .. }, true) => {
                let mut file = create_staged(self.kind, entry, &staged)?;
                self.assembled.push(entry.path.clone());
                write_blocks(
                    self.kind,
                    entry,
                    content,
                    (&mut file, &staged),
                    (None, Some(*size)),
                    (&mut *self.progress, &mut self.bytes),
                )?
            }
            (Need::Blocks { unfilled, .. }, true) => {
                let mut file = open_staged(&staged)?;
                write_blocks(
                    self.kind,
                    entry,
                    content,
                    (&mut file, &staged),
                    (Some(unfilled), Some(*size)),
                    (&mut *self.progress, &mut self.bytes),
                )?
            }
            (Need::Blocks { blocks, unfilled }, false) => {
                // The file whole: its needed blocks are written, all of it hashed.
                let file = open_staged(&staged)?;
                let mut hasher = blake3::Hasher::new();
                let mut buf = vec![0u8; 1 << 20];
                let mut at = 0u64;
                loop {
                    let n = match content.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(VisitError::Stream(e)),
                    };
                    hasher.update(&buf[..n]);
                    let mut piece = 0usize;
                    while piece < n {
                        let pos = at + piece as u64;
                        let index = (pos / blocks.block_size) as u32;
                        let end = ((u64::from(index) + 1) * blocks.block_size - at).min(n as u64)
                            as usize;
                        if unfilled.contains(&index) && pos < *size {
                            file.write_all_at(&buf[piece..end], pos)
                                .map_err(ArchiveError::io("cannot write", &staged))?;
                            self.bytes += (end - piece) as u64;
                            self.progress.advance((end - piece) as u64);
                        }
                        piece = end;
                    }
                    at += n as u64;
                }
                Seen::of(entry, Some(hasher.finalize().to_hex().to_string()))
            }
        };
        self.seen.push(seen);
        Ok(())
    }

    fn manifest(&mut self, manifest: &Manifest) -> Result<(), ArchiveError> {
        check_seen(self.kind, manifest, &self.seen, false)
    }
}

/// Opens a staged file that a newer set of the chain created.
fn open_staged(staged: &Path) -> Result<File, ArchiveError> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(staged)
        .map_err(ArchiveError::io("cannot open", staged))
}

/// Every file put together from blocks of several sets has the blake3 the
/// newest manifest lists.
fn check_assembled(
    manifest: &Manifest,
    staging: &Path,
    assembled: &[String],
) -> Result<(), ArchiveError> {
    for e in manifest
        .entries
        .iter()
        .filter(|e| assembled.contains(&e.path))
    {
        let parts = safe_components(&e.path).map_err(|reason| unsafe_entry(&e.path, reason))?;
        let staged = staging.join(parts.iter().collect::<PathBuf>());
        let mut file = File::open(&staged).map_err(ArchiveError::io("cannot read", &staged))?;
        let (hash, size) = hash_content(&mut file, None).map_err(|e| match e {
            VisitError::Stream(e) => ArchiveError::io("cannot read", &staged)(e),
            VisitError::Other(e) => e,
        })?;
        if size != e.size || Some(hash) != e.blake3 {
            return Err(ArchiveError::corrupt(
                SetKind::Backup,
                format!(
                    "entry {}: the blocks of its chain do not give its checksum",
                    e.path
                ),
            ));
        }
    }
    Ok(())
}

fn unsafe_entry(path: &str, reason: String) -> ArchiveError {
    ArchiveError::Unsafe {
        path: path.to_owned(),
        reason,
    }
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
}

impl Staging {
    fn create(destination: &Path) -> Result<Staging, ArchiveError> {
        sauve_durable::remove_dead_folders(destination, ".sauve-restore-");
        let path = sauve_durable::create_working_folder(destination, ".sauve-restore-").map_err(
            ArchiveError::io("cannot create a staging folder in", destination),
        )?;
        Ok(Staging { path })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if point(Step::Unlink, &self.path).is_ok() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The components of a stored path, or why it is refused (SPEC 13.1).
pub(crate) fn safe_components(path: &str) -> Result<Vec<&str>, String> {
    if path.is_empty() {
        return Err("empty name".to_owned());
    }
    if path.contains('\0') {
        return Err("the name contains NUL".to_owned());
    }
    if path.contains('\\') {
        return Err("the name contains a backslash".to_owned());
    }
    if path.starts_with('/') {
        return Err("absolute path".to_owned());
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if let Some(first) = parts.first() {
        let b = first.as_bytes();
        if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
            return Err("drive prefix".to_owned());
        }
    }
    if parts.contains(&"..") {
        return Err("the path goes up with ..".to_owned());
    }
    if parts.is_empty() {
        return Err("empty name".to_owned());
    }
    Ok(parts)
}

/// The stored symlink that `path` would go through, if any.
fn through_symlink<'a>(path: &str, symlinks: &'a [String]) -> Option<&'a str> {
    symlinks
        .iter()
        .find(|s| {
            path.len() > s.len() && path.starts_with(s.as_str()) && path.as_bytes()[s.len()] == b'/'
        })
        .map(String::as_str)
}

fn mtime_of(e: &ManifestEntry) -> SystemTime {
    if e.mtime >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(e.mtime as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_nanos(e.mtime.unsigned_abs())
    }
}

fn set_times_and_mode(path: &Path, e: &ManifestEntry) -> Result<(), ArchiveError> {
    let f = File::open(path).map_err(ArchiveError::io("cannot open", path))?;
    f.set_modified(mtime_of(e))
        .map_err(ArchiveError::io("cannot set the time of", path))?;
    // Modes are restored without setuid, setgid and sticky bits (SPEC 13.1).
    std::fs::set_permissions(path, Permissions::from_mode(e.mode & 0o777))
        .map_err(ArchiveError::io("cannot set the mode of", path))
}

/// Flushes everything written on the file system holding `path`.
fn sync_fs(path: &Path) -> Result<(), ArchiveError> {
    point(Step::Sync, path).map_err(ArchiveError::io("cannot sync", path))?;
    let dir = File::open(path).map_err(ArchiveError::io("cannot open", path))?;
    rustix::fs::syncfs(&dir).map_err(|e| ArchiveError::io("cannot sync", path)(e.into()))
}

/// Completes the verified staging tree (file modes and times, symlinks, made
/// durable), then moves it into the destination: a whole folder in one
/// rename where the destination has none, merged entry by entry where it
/// has (`--force`), never through a symlink. Folder modes and times come
/// last. Returns the number of files placed.
fn place(manifest: &Manifest, staging: &Path, destination: &Path) -> Result<usize, ArchiveError> {
    let mut files = 0;
    let mut dirs: Vec<(&ManifestEntry, PathBuf)> = Vec::new();
    for e in &manifest.entries {
        let rel: PathBuf = safe_components(&e.path)
            .map_err(|reason| unsafe_entry(&e.path, reason))?
            .iter()
            .collect();
        let staged = staging.join(&rel);
        match e.entry_type {
            EntryType::File => {
                set_times_and_mode(&staged, e)?;
                files += 1;
            }
            EntryType::Dir => dirs.push((e, destination.join(&rel))),
            EntryType::Symlink => {
                // Created only now, after every file was written: nothing is
                // ever written through a restored symlink.
                if let Some(parent) = staged.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(ArchiveError::io("cannot create", parent))?;
                }
                let target = e.target.clone().unwrap_or_default();
                std::os::unix::fs::symlink(&target, &staged)
                    .map_err(ArchiveError::io("cannot create symlink", &staged))?;
            }
        }
    }
    sync_fs(staging)?;
    let tops = std::fs::read_dir(staging).map_err(ArchiveError::io("cannot read", staging))?;
    for top in tops {
        let top = top.map_err(ArchiveError::io("cannot read", staging))?;
        merge_move(&top.path(), &destination.join(top.file_name()), destination)?;
    }
    dirs.sort_by_key(|(_, p)| std::cmp::Reverse(p.components().count()));
    for (e, target) in dirs {
        set_times_and_mode(&target, e)?;
    }
    sync_fs(destination)?;
    Ok(files)
}

/// Moves `src` to `dst`: one rename when `dst` is free; into an existing
/// folder, child by child; over an existing file, replacing it. An existing
/// symlink on the way is refused, never followed.
fn merge_move(src: &Path, dst: &Path, destination: &Path) -> Result<(), ArchiveError> {
    let shown = || {
        dst.strip_prefix(destination)
            .unwrap_or(dst)
            .to_string_lossy()
            .into_owned()
    };
    let existing = match std::fs::symlink_metadata(dst) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return point(Step::Rename, dst)
                .and_then(|()| std::fs::rename(src, dst))
                .map_err(ArchiveError::io("cannot move into place", dst));
        }
        Err(e) => return Err(ArchiveError::io("cannot read", dst)(e)),
    };
    if existing.file_type().is_symlink() {
        return Err(unsafe_entry(
            &shown(),
            format!("\"{}\" is a symlink in the destination", dst.display()),
        ));
    }
    let src_is_dir = std::fs::symlink_metadata(src)
        .map_err(ArchiveError::io("cannot read", src))?
        .is_dir();
    match (existing.is_dir(), src_is_dir) {
        (true, true) => {
            let children = std::fs::read_dir(src).map_err(ArchiveError::io("cannot read", src))?;
            for child in children {
                let child = child.map_err(ArchiveError::io("cannot read", src))?;
                merge_move(&child.path(), &dst.join(child.file_name()), destination)?;
            }
            Ok(())
        }
        (false, false) => point(Step::Rename, dst)
            .and_then(|()| std::fs::rename(src, dst))
            .map_err(ArchiveError::io("cannot replace", dst)),
        (true, false) => Err(
            ArchiveError::io("cannot replace a folder with a file", dst)(std::io::Error::from(
                std::io::ErrorKind::IsADirectory,
            )),
        ),
        (false, true) => Err(
            ArchiveError::io("cannot replace a file with a folder", dst)(std::io::Error::from(
                std::io::ErrorKind::NotADirectory,
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_refused() {
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            "C:/x",
            "a\\b",
            "a\0b",
            "",
            "./",
        ] {
            assert!(safe_components(bad).is_err(), "{bad:?}");
        }
        assert_eq!(safe_components("Data/./x.4DD").unwrap(), ["Data", "x.4DD"]);
    }

    #[test]
    fn paths_through_stored_symlinks_are_detected() {
        let links = vec!["Attachments/l".to_owned()];
        assert_eq!(
            through_symlink("Attachments/l/x", &links),
            Some("Attachments/l")
        );
        assert_eq!(through_symlink("Attachments/lx", &links), None);
        assert_eq!(through_symlink("Attachments/l", &links), None);
    }
}
