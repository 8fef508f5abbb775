//! Crash-safe file writes, shared by every crate that persists a file sauve
//! must not lose: settings, the history, the Backup Journal, state files.
//!
//! A replaced file is written to a temporary name in the same folder,
//! fsynced, renamed over the target, and the folder fsynced: after a crash
//! the old file or the new one is there, never a mix. (`tempfile`'s
//! `persist` alone does neither sync.)
//!
//! Records that several processes update (the Backup Journal, the history,
//! the state file) are changed under [`lock_exclusive`], an advisory lock on
//! a lock file beside them, so that two load-modify-save cycles never
//! interleave. [`mtime_ns`] is the one way sauve reads a modification time.
//!
//! Invariant: plain `std::io` errors, each returned with the path it concerns;
//! no policy about what a failure means to the caller.

pub mod beneath;
pub mod fault;
mod shown;

pub use shown::{shown_url, url_scheme};

use std::fs::File;
use std::io::{self, Write};

use fault::{Step, point};
use std::path::{Path, PathBuf};

/// An IO error and the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} \"{}\": {source}", path.display())]
pub struct PathError {
    /// What was being done: "create", "write", "sync", "rename"…
    pub action: &'static str,
    /// The file or folder.
    pub path: PathBuf,
    /// The system's error.
    pub source: io::Error,
}

impl PathError {
    /// Wraps an IO error with what was being done and the path.
    pub fn new(action: &'static str, path: &Path, source: io::Error) -> PathError {
        PathError {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

fn at(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> PathError {
    let path = path.to_path_buf();
    move |source| PathError {
        action,
        path,
        source,
    }
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Fsyncs a folder, so that names created or renamed in it survive a crash.
pub fn sync_folder(dir: &Path) -> Result<(), PathError> {
    point(Step::SyncFolder, dir)
        .and_then(|()| File::open(dir))
        .and_then(|d| d.sync_all())
        .map_err(at("sync folder", dir))
}

/// Writes a fsynced temporary file beside `path` with `fill`, then `place`s it.
fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    place: impl FnOnce(tempfile::NamedTempFile) -> Result<(), PathError>,
) -> Result<(), PathError> {
    let dir = folder_of(path);
    std::fs::create_dir_all(dir).map_err(at("create folder", dir))?;
    let prefix = format!(
        ".{}.",
        path.file_name()
            .map_or_else(|| "sauve".into(), |n| n.to_string_lossy())
    );
    point(Step::Create, path).map_err(at("create a temporary file in", dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(at("create a temporary file in", dir))?;
    // A failure from here on drops `tmp`, which removes the temporary file.
    point(Step::Write, tmp.path()).map_err(at("write", path))?;
    fill(tmp.as_file_mut()).map_err(at("write", path))?;
    point(Step::Sync, tmp.path()).map_err(at("sync", path))?;
    tmp.as_file().sync_all().map_err(at("sync", path))?;
    point(Step::Rename, path).map_err(at("replace", path))?;
    place(tmp)?;
    sync_folder(dir)
}

/// Replaces `path` with `bytes` atomically and durably.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), PathError> {
    replace_with(path, |w| w.write_all(bytes))
}

/// Replaces `path` atomically and durably with what `fill` writes. If `fill`
/// fails, the previous file is left untouched and no temporary file remains.
pub fn replace_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), PathError> {
    write_with(path, fill, |tmp| {
        tmp.persist(path)
            .map(drop)
            .map_err(|e| at("replace", path)(e.error))
    })
}

/// Creates `path` with `bytes`, durably; an existing file is never replaced
/// (the error kind is then `AlreadyExists`), even one created meanwhile.
pub fn create_new(path: &Path, bytes: &[u8]) -> Result<(), PathError> {
    if path.exists() {
        return Err(at("create", path)(io::Error::from(
            io::ErrorKind::AlreadyExists,
        )));
    }
    write_with(
        path,
        |w| w.write_all(bytes),
        |tmp| {
            tmp.persist_noclobber(path)
                .map(drop)
                .map_err(|e| at("create", path)(e.error))
        },
    )
}

/// Appends `bytes` to `path` in one write and fsyncs it (`fdatasync`).
/// Creates the file (and fsyncs its folder) when it does not exist.
pub fn append(path: &Path, bytes: &[u8]) -> Result<(), PathError> {
    let existed = path.exists();
    if !existed {
        point(Step::Create, path).map_err(at("open", path))?;
    }
    // A record file sauve creates is private (0600): the Backup Journal
    // names the app's files and says what failed with them.
    let mut f = std::os::unix::fs::OpenOptionsExt::mode(
        std::fs::OpenOptions::new().create(true).append(true),
        0o600,
    )
    .open(path)
    .map_err(at("open", path))?;
    point(Step::Write, path).map_err(at("append to", path))?;
    f.write_all(bytes).map_err(at("append to", path))?;
    point(Step::Sync, path).map_err(at("sync", path))?;
    f.sync_data().map_err(at("sync", path))?;
    if !existed {
        sync_folder(folder_of(path))?;
    }
    Ok(())
}

/// Whether process `pid` is alive on this machine (this process included).
pub fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists()
}

/// Creates the working folder `<prefix><pid>-<nanos>` in `dir`, which
/// [`remove_dead_folders`] removes once this process is gone.
pub fn create_working_folder(dir: &Path, prefix: &str) -> io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let path = dir.join(format!("{prefix}{}-{nanos}", std::process::id()));
    point(Step::Create, &path)?;
    // Private: what it holds is copied or restored from private files.
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700).create(&path)?;
    Ok(path)
}

/// Reads the file `path` whole, refusing one over `limit` bytes
/// (`InvalidData`, naming the limit) without reading past it: for records a
/// person or another program could have made huge.
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes, more than sauve ever writes there"),
        ));
    }
    Ok(bytes)
}

/// Removes the working folders `<prefix><pid>` or `<prefix><pid>-<more>`
/// in `dir` whose process is no longer alive: what a crash or a kill left
/// (restore stagings, the open check's stage). Best effort: a folder that
/// cannot be removed stays for the next time.
pub fn remove_dead_folders(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !process_alive(pid) && point(Step::Unlink, &e.path()).is_ok() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Modification time in nanoseconds since the Unix epoch.
pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

/// The lock file that guards `record`: `.<name>.lock` in the same folder.
pub fn lock_path(record: &Path) -> PathBuf {
    let name = record
        .file_name()
        .map_or_else(|| "sauve".into(), |n| n.to_string_lossy());
    folder_of(record).join(format!(".{name}.lock"))
}

/// Opens the lock file `path` to hold an advisory lock on it, creating it
/// (empty) first when needed. The file is held open read-only (`flock`
/// needs no write access): a file open for writing keeps the kernel from
/// remounting its file system read-only, and a backup holds its locks for
/// the whole run.
pub fn open_lock_file(path: &Path) -> io::Result<File> {
    match File::open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            drop(
                File::options()
                    .create(true)
                    .truncate(false)
                    .append(true)
                    .open(path)?,
            );
            File::open(path)
        }
        other => other,
    }
}

/// An exclusive advisory lock, held until dropped.
#[derive(Debug)]
pub struct RecordLock {
    _file: File,
}

/// Waits for the exclusive advisory lock guarding `record` (see
/// [`lock_path`]), creating its folder and lock file when needed. Every
/// process that changes `record` takes it around its load-modify-save.
pub fn lock_exclusive(record: &Path) -> Result<RecordLock, PathError> {
    let path = lock_path(record);
    let dir = folder_of(&path);
    std::fs::create_dir_all(dir).map_err(at("create folder", dir))?;
    let file = open_lock_file(&path).map_err(at("open", &path))?;
    file.lock().map_err(at("lock", &path))?;
    remove_stale_temporaries(record);
    Ok(RecordLock { _file: file })
}

/// Removes the temporary files a writer of `record` left when it died
/// between creating one and renaming it into place (`.<name>.XXXXXX.tmp`,
/// see [`replace`]). Called with the record's lock held: every writer
/// takes it, so no living process is writing any of them. Best effort: one
/// that cannot be removed is harmless and stays for the next time.
fn remove_stale_temporaries(record: &Path) {
    let Some(name) = record.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(folder_of(record)) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        let file = file.to_string_lossy();
        if file.starts_with(&prefix) && file.ends_with(".tmp") {
            let path = e.path();
            if point(Step::Unlink, &path).is_ok() {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_leaves_only_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        replace(&p, b"one").unwrap();
        replace(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_fill_keeps_the_previous_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        replace(&p, b"previous").unwrap();
        let e = replace_with(&p, |w| {
            w.write_all(b"half of the ne")?;
            Err(io::Error::other("disk unplugged"))
        })
        .unwrap_err();
        assert_eq!(e.action, "write");
        assert_eq!(std::fs::read(&p).unwrap(), b"previous");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_temporary_left_by_a_writer_killed_before_its_rename_goes_at_the_next_lock() {
        // Crash scenario "first", steps 8-10 and 17-19 of `cargo xtask
        // crash`: killed between creating `.NAME.XXXXXX.tmp` and renaming it.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("backupHistory.json");
        replace(&p, b"kept").unwrap();
        std::fs::write(dir.path().join(".backupHistory.json.Ab12Cd.tmp"), b"half").unwrap();
        let other = dir.path().join(".sauve-state.json.Zz99Yy.tmp");
        std::fs::write(&other, b"not this record's").unwrap();
        let held = lock_exclusive(&p).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".backupHistory.json.lock",
                ".sauve-state.json.Zz99Yy.tmp",
                "backupHistory.json"
            ]
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"kept");
        drop(held);
    }

    #[test]
    fn create_new_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/a");
        create_new(&p, b"1").unwrap();
        let e = create_new(&p, b"2").unwrap_err();
        assert_eq!(e.source.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&p).unwrap(), b"1");
    }

    #[test]
    fn the_record_lock_excludes_a_second_holder_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("Logs/sauve-state.json");
        let held = lock_exclusive(&record).unwrap();
        assert_eq!(
            lock_path(&record),
            dir.path().join("Logs/.sauve-state.json.lock")
        );
        let other = File::options()
            .write(true)
            .open(lock_path(&record))
            .unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        other.try_lock().unwrap();
    }

    #[test]
    fn append_adds_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.txt");
        append(&p, b"a\n").unwrap();
        append(&p, b"b\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"a\nb\n");
        // Created private: the Backup Journal names the app's files.
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&p).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
    }
}
