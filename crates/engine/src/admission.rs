//! Admission across processes (behaviour §5 step 1): the advisory locks that keep
//! two processes off one app (`APP/Logs/sauve.lock`) and off one set
//! (`<destination>/.<base>.sauve.lock`), and the guard that keeps a
//! restore out of an app in use ([`hold_restore_target`]). Held for the
//! whole operation, released when the file is dropped, by the kernel if
//! the process dies.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::EngineError;

/// `APP/Logs/sauve.lock`.
pub(crate) fn app_lock_path(app: &Path) -> PathBuf {
    app.join("Logs").join("sauve.lock")
}

/// `APP/Logs/sauve-run.lock`: the lock that makes one `sauve run` per app
/// (`flock`, held for the server's life); a restore into the app holds it
/// too, for the restore's.
pub fn run_lock_path(app: &Path) -> PathBuf {
    app.join("Logs").join("sauve-run.lock")
}

/// What holds an app whose `sauve-run.lock` is taken.
const SERVES: &str = "a `sauve run` serves it, or a restore into it runs";
/// What holds an app whose `sauve.lock` is taken.
const RUNS: &str = "a backup or a restore of it runs";

/// Refuses a restore whose target is an app, or lies inside one, that a
/// `sauve run`, a backup or a restore holds
/// ([`EngineError::RestoreTargetInUse`], 1402), whatever force says:
/// replacing the files of an app in use would leave it reading files that
/// changed under it.
///
/// Every folder above `target` is looked at, both as written (made
/// absolute, `.` and `..` applied) and as the disk resolves it (its
/// longest existing part canonical, the rest appended), so that a symlink
/// into an app (`--to /tmp/lnk/x` with `/tmp/lnk -> /srv/app/Data`) does
/// not hide it. Where `Logs/sauve-run.lock` or `Logs/sauve.lock` exists, its
/// lock is taken without waiting, and the returned files hold them until
/// they are dropped, so that none of these starts meanwhile.
/// `engine_app`: the app whose engine runs the restore and takes its own
/// `sauve.lock`, which is left to it.
pub fn hold_restore_target(
    target: &Path,
    engine_app: Option<&Path>,
) -> Result<Vec<File>, EngineError> {
    let absolute = std::path::absolute(target).map_err(EngineError::io("resolve", target))?;
    // Each lock file once, whatever path reached it: a second `flock` on
    // another handle of a file this process holds would be refused.
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    if let Some(app) = engine_app
        && let Ok(meta) = std::fs::metadata(app_lock_path(app))
    {
        seen.insert((meta.dev(), meta.ino()));
    }
    let mut held = Vec::new();
    // As resolved first, so that a refusal names the app's own folder
    // rather than a symlink to it.
    let paths = [
        sauve_settings::physical(&absolute),
        Some(sauve_settings::lexical(&absolute)),
    ];
    for path in paths.iter().flatten() {
        for dir in path.ancestors() {
            for (lock, holder) in [(run_lock_path(dir), SERVES), (app_lock_path(dir), RUNS)] {
                let Some(file) = open_existing_lock(&lock)? else {
                    continue;
                };
                let meta = file.metadata().map_err(EngineError::io("read", &lock))?;
                if !seen.insert((meta.dev(), meta.ino())) {
                    continue;
                }
                match file.try_lock() {
                    Ok(()) => held.push(file),
                    Err(std::fs::TryLockError::WouldBlock) => {
                        return Err(EngineError::RestoreTargetInUse {
                            target: absolute,
                            app: dir.to_path_buf(),
                            holder,
                            lock,
                        });
                    }
                    Err(std::fs::TryLockError::Error(source)) => {
                        return Err(EngineError::Io {
                            action: "lock",
                            path: lock,
                            source,
                        });
                    }
                }
            }
        }
    }
    Ok(held)
}

/// The lock file `path`, opened to be locked, when there is one: `None`
/// when nothing is there, or something that is no file (a named pipe is
/// opened without waiting for a writer, then left alone).
fn open_existing_lock(path: &Path) -> Result<Option<File>, EngineError> {
    use rustix::fs::{FileType, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return Ok(None),
        Err(e) => {
            return Err(EngineError::Io {
                action: "open",
                path: path.to_path_buf(),
                source: e.into(),
            });
        }
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| EngineError::Io {
        action: "read",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Ok(None);
    }
    Ok(Some(File::from(fd)))
}

/// How many times a lock held elsewhere is tried again, [`RETRY_STEP`]
/// apart: a child this process forks (an alert command, a rehearsal's
/// check) holds a copy of every descriptor, and so every `flock`, until it
/// runs `exec`. A lock released here is free again an instant later.
const RETRIES: u32 = 20;
const RETRY_STEP: std::time::Duration = std::time::Duration::from_millis(10);

/// Takes the exclusive advisory lock of `path` without waiting for its
/// holder: another holder is [`EngineError::HeldByAnotherProcess`] (1402),
/// once it has held it for [`RETRIES`] × [`RETRY_STEP`].
pub(crate) fn try_lock(path: &Path) -> Result<File, EngineError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(EngineError::io("create folder", dir))?;
    }
    let file = sauve_durable::open_lock_file(path).map_err(EngineError::io("open", path))?;
    let mut tries = 0;
    let taken = loop {
        match file.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) if tries < RETRIES => {
                tries += 1;
                std::thread::sleep(RETRY_STEP);
            }
            taken => break taken,
        }
    };
    match taken {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(EngineError::HeldByAnotherProcess {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(EngineError::Io {
            action: "lock",
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `root/<name>` with an empty `Logs/sauve.lock` and `Logs/sauve-run.lock`.
    fn app(root: &Path, name: &str) -> PathBuf {
        let app = root.join(name);
        std::fs::create_dir_all(app.join("Logs")).unwrap();
        std::fs::create_dir_all(app.join("Data")).unwrap();
        std::fs::write(app_lock_path(&app), b"").unwrap();
        std::fs::write(run_lock_path(&app), b"").unwrap();
        app
    }

    /// Another holder of `lock`, as another process would be.
    fn held(lock: &Path) -> File {
        let f = File::open(lock).unwrap();
        f.try_lock().unwrap();
        f
    }

    fn refusal(target: &Path, engine_app: Option<&Path>) -> EngineError {
        match hold_restore_target(target, engine_app) {
            Err(e) => e,
            Ok(files) => panic!("{} held {} locks", target.display(), files.len()),
        }
    }

    #[test]
    fn a_target_in_an_app_in_use_is_refused_however_it_is_reached() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        let app = app(&root, "App");
        std::os::unix::fs::symlink(&app, root.join("lnk")).unwrap();
        std::os::unix::fs::symlink(app.join("Data"), root.join("into")).unwrap();
        std::fs::create_dir(root.join("elsewhere")).unwrap();
        for (lock, holder) in [(run_lock_path(&app), SERVES), (app_lock_path(&app), RUNS)] {
            let other = held(&lock);
            for target in [
                app.clone(),
                app.join("Data/Restored"),
                root.join("elsewhere/../App/Data"),
                root.join("lnk/Data"),
                root.join("lnk/Data/not/yet/there"),
                // Found in review: a symlink into the app hid it from the
                // folders above the path as written.
                root.join("into"),
                root.join("into/Restored"),
                root.join("into/not/yet/there"),
            ] {
                let e = refusal(&target, None);
                assert_eq!(e.status(), sauve_status::Status::AlreadyRunning, "{e}");
                assert!(e.is_refusal());
                let text = e.to_string();
                assert!(
                    text.contains(&format!("\"{}\" is an app in use: {holder}", app.display())),
                    "{text}"
                );
                assert!(text.contains(&lock.display().to_string()), "{text}");
                assert!(text.contains("never writes into an app in use"), "{text}");
            }
            assert!(hold_restore_target(&root.join("elsewhere/x"), None).is_ok());
            drop(other);
        }
    }

    #[test]
    fn the_locks_taken_are_held_until_dropped_and_each_once() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        let app = app(&root, "App");
        std::os::unix::fs::symlink(&app, root.join("lnk")).unwrap();
        // Reached as written and as resolved: each lock is taken once, not
        // refused for being held by this very call.
        let files = hold_restore_target(&root.join("lnk/Data"), None).unwrap();
        assert_eq!(files.len(), 2);
        for lock in [run_lock_path(&app), app_lock_path(&app)] {
            let f = File::open(&lock).unwrap();
            assert!(matches!(
                f.try_lock(),
                Err(std::fs::TryLockError::WouldBlock)
            ));
        }
        drop(files);
        drop(held(&run_lock_path(&app)));
        drop(held(&app_lock_path(&app)));
        // Where no lock file is, nothing is held and nothing is created.
        let bare = root.join("Bare");
        std::fs::create_dir(&bare).unwrap();
        assert!(hold_restore_target(&bare, None).unwrap().is_empty());
        assert!(!bare.join("Logs").exists());
    }

    #[test]
    fn the_engines_own_app_lock_is_left_to_it_but_not_its_server_lock() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        let app = app(&root, "App");
        // The engine that restores holds its own sauve.lock.
        let engine = held(&app_lock_path(&app));
        let files = hold_restore_target(&app.join("Data"), Some(&app)).unwrap();
        assert_eq!(files.len(), 1, "only sauve-run.lock");
        drop(files);
        let server = held(&run_lock_path(&app));
        let e = refusal(&app.join("Data"), Some(&app));
        assert!(e.to_string().contains(SERVES), "{e}");
        drop((engine, server));
    }

    #[test]
    fn a_lock_that_is_no_file_is_passed_over_without_waiting() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("App/Logs")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(run_lock_path(&root.join("App")))
            .status()
            .unwrap();
        assert!(made.success());
        assert!(
            hold_restore_target(&root.join("App/Data"), None)
                .unwrap()
                .is_empty()
        );
    }
}
