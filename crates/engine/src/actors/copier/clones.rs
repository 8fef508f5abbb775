//! Clones of the data-kind files, taken under the data lock where the file
//! system can clone (`FICLONE`: XFS, btrfs), so that the lock is held only
//! while the clones are made, whatever the data size (behaviour §21.3). The copier
//! archives the clones once the lock is released; dropping [`Clones`]
//! removes them. A folder left by a killed process is removed by the next
//! run that clones ([`Clones::remove_dead_beside`]) and is never stored (the
//! content walk skips [`CLONE_FOLDER_PREFIX`] folders).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sauve_archive::{CLONE_FOLDER_PREFIX, EntryType, SourceEntry};

/// The clones of one data phase, in a folder of their own.
pub(crate) struct Clones {
    folder: PathBuf,
    /// Each entry, with the clone its content is read from (files only).
    entries: Vec<(SourceEntry, Option<PathBuf>)>,
}

impl Clones {
    /// Clones every file of `entries` into a new folder in `near` (the data
    /// file's folder: clones stay on their file system). `Err` says why
    /// they cannot be cloned; nothing is left behind then.
    pub(crate) fn take(entries: &[SourceEntry], near: &Path) -> Result<Clones, String> {
        let folder = sauve_durable::create_working_folder(near, CLONE_FOLDER_PREFIX)
            .map_err(|e| format!("cannot create a clone folder in {}: {e}", near.display()))?;
        // From here, an early return drops `clones`, which removes the folder.
        let mut clones = Clones {
            folder,
            entries: Vec::with_capacity(entries.len()),
        };
        for (i, e) in entries.iter().enumerate() {
            let clone = match e.entry_type {
                EntryType::File => {
                    let to = clones.folder.join(i.to_string());
                    clone_file(&e.source, &to).map_err(|err| why(&e.source, near, &err))?;
                    Some(to)
                }
                EntryType::Dir | EntryType::Symlink => None,
            };
            clones.entries.push((e.clone(), clone));
        }
        Ok(clones)
    }

    /// Removes the clone folders beside this one that processes no longer
    /// alive left (run after the lock is released: they may be large).
    pub(crate) fn remove_dead_beside(&self) {
        if let Some(near) = self.folder.parent() {
            sauve_durable::remove_dead_folders(near, CLONE_FOLDER_PREFIX);
        }
    }

    /// The files cloned.
    pub(crate) fn files(&self) -> usize {
        self.entries.iter().filter(|(_, c)| c.is_some()).count()
    }

    /// Each entry and where its content is read from.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&SourceEntry, &Path)> {
        self.entries
            .iter()
            .map(|(e, c)| (e, c.as_deref().unwrap_or(&e.source)))
    }
}

impl Drop for Clones {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// Clones `src` into the new file `dst`, sharing its blocks.
fn clone_file(src: &Path, dst: &Path) -> io::Result<()> {
    let from = File::open(src)?;
    let to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)?;
    rustix::fs::ioctl_ficlone(&to, &from).map_err(io::Error::from)
}

/// Why `src` could not be cloned into `near`, for the journal's lock line.
fn why(src: &Path, near: &Path, e: &io::Error) -> String {
    match rustix::io::Errno::from_io_error(e) {
        Some(
            rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOTTY | rustix::io::Errno::INVAL,
        ) => {
            // EINVAL also comes from a file btrfs keeps without
            // copy-on-write (chattr +C): the system's text says which.
            format!(
                "the file system of {} cannot clone {} ({e})",
                near.display(),
                src.display()
            )
        }
        Some(rustix::io::Errno::XDEV) => format!(
            "{} is on another file system than {}",
            src.display(),
            near.display()
        ),
        _ => format!("cannot clone {}: {e}", src.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sauve_archive::EntryKind;

    fn entry(path: &Path, entry_type: EntryType) -> SourceEntry {
        SourceEntry {
            kind: EntryKind::Data,
            source: path.to_path_buf(),
            path: "Data/x".to_owned(),
            entry_type,
            size: 0,
            mode: 0o644,
            mtime: 0,
            target: None,
        }
    }

    /// Where the file system cannot clone (this test's temporary folder is
    /// on ext4 or tmpfs), the reason is given and no folder is left; the
    /// loop-mounted XFS test in `tests/` covers the clones themselves.
    #[test]
    fn a_file_system_that_cannot_clone_is_named_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("App.4DD");
        std::fs::write(&data, b"data").unwrap();
        match Clones::take(&[entry(&data, EntryType::File)], dir.path()) {
            Err(why) => {
                assert!(why.contains("cannot clone"), "{why}");
                let left: Vec<_> = std::fs::read_dir(dir.path())
                    .unwrap()
                    .flatten()
                    .map(|e| e.file_name())
                    .collect();
                assert_eq!(left, vec![std::ffi::OsString::from("App.4DD")]);
            }
            // A temporary folder on a file system that clones (btrfs, XFS):
            // the clone holds the data, and goes with its owner.
            Ok(clones) => {
                let (_, from) = clones.entries().next().unwrap();
                assert_eq!(std::fs::read(from).unwrap(), b"data");
                let folder = clones.folder.clone();
                drop(clones);
                assert!(!folder.exists());
            }
        }
    }

    #[test]
    fn a_missing_source_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone.4DD");
        let why = Clones::take(&[entry(&gone, EntryType::File)], dir.path())
            .err()
            .unwrap();
        assert!(why.contains("gone.4DD"), "{why}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
