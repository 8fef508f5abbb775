//! File access confined to a folder (SECURITY.md, "Restore"): a handle on
//! a root folder through which every name is resolved by the kernel with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so that no name, no
//! `..` and no symlink met on the way, whoever put it there and whenever,
//! can reach a file outside the root or follow a link. Paths are never
//! joined by hand to be opened; a path shown in a message is only shown.
//!
//! The root itself is opened as the operator named it, following its own
//! symlinks (`Data -> /mnt/disk` keeps working); beneath it, nothing is
//! followed. Modes and times are set on the handle that was opened, never
//! by name, and only on a file or a folder.
//!
//! Where openat2 is missing (Linux before 5.6) or refused by a seccomp
//! profile (`ENOSYS`, `EPERM`), names are opened one at a time with
//! `openat(O_NOFOLLOW)`, each relative to the folder before it: the same
//! promise, a few more system calls.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};

/// Nothing beneath the root is followed: no symlink, no `..` above it, no
/// absolute name, no magic link of /proc.
const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// What a name beneath the root is, without following it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// A symlink (never followed).
    Symlink,
    /// Anything else: a device, a socket, a pipe.
    Other,
}

/// Set once openat2 answered ENOSYS: the kernel has none, or a seccomp
/// profile refuses it; every name is then resolved by [`walk`].
static OPENAT2_REFUSED: AtomicBool = AtomicBool::new(false);

#[cfg(test)]
thread_local! {
    /// Tests set it to take the road of a kernel without openat2.
    static WALK_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether names are resolved with openat2 (not known to be refused).
fn openat2_usable() -> bool {
    #[cfg(test)]
    if WALK_ONLY.with(std::cell::Cell::get) {
        return false;
    }
    !OPENAT2_REFUSED.load(Ordering::Relaxed)
}

/// Opens `rel` (already [`checked`]: relative, without `..`) beneath
/// `root` one name at a time, where openat2 is missing: every folder on
/// the way with `O_DIRECTORY | O_NOFOLLOW`, the last name with `flags |
/// O_NOFOLLOW`, each relative to the handle of the one before. No symlink
/// is followed (`ELOOP`, or `ENOTDIR` for a folder), no `..` is met and no
/// name is absolute, so nothing outside `root` is reached, as with
/// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`.
fn walk(root: BorrowedFd<'_>, rel: &Path, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
    let rel = checked(rel)?;
    let mut names = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            // `checked` refused these; refused again rather than trusted.
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(io::Error::from(io::ErrorKind::InvalidInput));
            }
        }
    }
    let last_flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Some((last, folders)) = names.split_last() else {
        // The root itself.
        return rustix::fs::openat(root, ".", last_flags, mode).map_err(io_err);
    };
    let mut dir: Option<OwnedFd> = None;
    for name in folders {
        let at = dir.as_ref().map_or(root, AsFd::as_fd);
        let next = rustix::fs::openat(
            at,
            *name,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err)?;
        dir = Some(next);
    }
    let at = dir.as_ref().map_or(root, AsFd::as_fd);
    rustix::fs::openat(at, *last, last_flags, mode).map_err(io_err)
}

/// Opens `rel` to set its mode or its times, and checks what it is: a
/// regular file or a folder. `O_NONBLOCK` so that a FIFO put there does
/// not wait for a writer, `O_NOCTTY` so that a terminal does not become
/// this process's.
fn open_to_change(b: &Beneath, rel: &Path) -> io::Result<OwnedFd> {
    let fd = b.at(
        rel,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd).map_err(io_err)?;
    match rustix::fs::FileType::from_raw_mode(st.st_mode) {
        rustix::fs::FileType::RegularFile | rustix::fs::FileType::Directory => Ok(fd),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "\"{}\" is {}, not a file or a folder: its mode and times are left as they are",
                b.shown(rel).display(),
                match other {
                    rustix::fs::FileType::Fifo => "a named pipe",
                    rustix::fs::FileType::Socket => "a socket",
                    rustix::fs::FileType::CharacterDevice => "a character device",
                    rustix::fs::FileType::BlockDevice => "a block device",
                    rustix::fs::FileType::Symlink => "a symlink",
                    _ => "of an unknown type",
                }
            ),
        )),
    }
}

/// A folder that names are resolved beneath.
#[derive(Debug)]
pub struct Beneath {
    root: OwnedFd,
    /// The root as it was named, for messages.
    path: PathBuf,
}

fn io_err(e: rustix::io::Errno) -> io::Error {
    io::Error::from(e)
}

/// `rel` as a name beneath a root: relative, without `..`; `.` for the
/// root itself.
fn checked(rel: &Path) -> io::Result<&Path> {
    for c in rel.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "\"{}\" is not a name beneath a folder (accepted: a relative path without ..)",
                        rel.display()
                    ),
                ));
            }
        }
    }
    Ok(if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    })
}

/// The folder part and the last name of `rel`.
fn split(rel: &Path) -> io::Result<(&Path, &std::ffi::OsStr)> {
    let rel = checked(rel)?;
    let name = rel.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("\"{}\" names no file", rel.display()),
        )
    })?;
    Ok((rel.parent().unwrap_or(Path::new("")), name))
}

impl Beneath {
    /// Opens `root`, a folder, following its own symlinks.
    pub fn open(root: &Path) -> io::Result<Beneath> {
        let fd = rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err)?;
        Ok(Beneath {
            root: fd,
            path: root.to_path_buf(),
        })
    }

    /// The root as it was named.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where `rel` is, for a message (never to open it).
    pub fn shown(&self, rel: &Path) -> PathBuf {
        self.path.join(rel)
    }

    /// A second handle on the same root folder (a `dup` of its
    /// descriptor): it stays on the folder that was opened, whatever
    /// becomes of its path meanwhile.
    pub fn try_clone(&self) -> io::Result<Beneath> {
        Ok(Beneath {
            root: self.root.try_clone()?,
            path: self.path.clone(),
        })
    }

    fn at(&self, rel: &Path, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let rel = checked(rel)?;
        if openat2_usable() {
            match rustix::fs::openat2(&self.root, rel, flags | OFlags::CLOEXEC, mode, RESOLVE) {
                // Before Linux 5.6 there is no openat2 (ENOSYS); some
                // seccomp profiles, older container runtimes' among
                // them, refuse it with ENOSYS or EPERM. An ENOSYS stays
                // so for the process; an EPERM may be the file's own
                // answer (an immutable file opened for writing), which
                // the walk gives again.
                Err(rustix::io::Errno::NOSYS) => {
                    OPENAT2_REFUSED.store(true, Ordering::Relaxed);
                }
                Err(rustix::io::Errno::PERM) => {}
                other => return other.map_err(io_err),
            }
        }
        walk(self.root.as_fd(), rel, flags, mode)
    }

    /// The folder `rel` beneath the root, as a root of its own.
    pub fn open_dir(&self, rel: &Path) -> io::Result<Beneath> {
        let fd = self.at(
            rel,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        Ok(Beneath {
            root: fd,
            path: self.path.join(rel),
        })
    }

    /// Creates `rel` and the folders above it that are missing, with the
    /// default mode (0777 less the umask), as `mkdir -p` does: a restore
    /// stages beneath a private (0700) folder, and sets the mode its
    /// manifest lists on every folder the manifest names.
    pub fn create_dir_all(&self, rel: &Path) -> io::Result<()> {
        let rel = checked(rel)?;
        let mut at = PathBuf::new();
        for c in rel.components() {
            let Component::Normal(name) = c else { continue };
            let parent = self.open_dir(&at)?;
            match rustix::fs::mkdirat(&parent.root, name, Mode::from_raw_mode(0o777)) {
                Ok(()) => {}
                Err(rustix::io::Errno::EXIST) => {
                    // Whatever is there must be a folder, not a link to one.
                    parent.open_dir(Path::new(name))?;
                }
                Err(e) => return Err(io_err(e)),
            }
            at.push(name);
        }
        Ok(())
    }

    /// Creates the file `rel`, never one already there (mode `mode`).
    pub fn create_new(&self, rel: &Path, mode: u32) -> io::Result<File> {
        let fd = self.at(
            rel,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW,
            Mode::from_raw_mode(mode),
        )?;
        Ok(File::from(fd))
    }

    /// Opens the file `rel` for reading and writing in place.
    pub fn open_read_write(&self, rel: &Path) -> io::Result<File> {
        let fd = self.at(rel, OFlags::RDWR | OFlags::NOFOLLOW, Mode::empty())?;
        Ok(File::from(fd))
    }

    /// Opens the file `rel` for reading.
    pub fn open_read(&self, rel: &Path) -> io::Result<File> {
        let fd = self.at(rel, OFlags::RDONLY | OFlags::NOFOLLOW, Mode::empty())?;
        Ok(File::from(fd))
    }

    /// Sets the mode and the modification time of the file or folder
    /// `rel`, on the handle opened for it: a symlink there is an error
    /// (`ELOOP`), never followed, and so is anything else that is not a
    /// file or a folder (a named pipe is opened without waiting for a
    /// writer, then refused).
    pub fn set_mode_and_time(&self, rel: &Path, mode: u32, modified: SystemTime) -> io::Result<()> {
        let fd = open_to_change(self, rel)?;
        let stamp = match modified.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => Timespec {
                tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(d.subsec_nanos()),
            },
            Err(before) => {
                let d = before.duration();
                let mut secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                let mut nanos = i64::from(d.subsec_nanos());
                if nanos > 0 {
                    secs -= 1;
                    nanos = 1_000_000_000 - nanos;
                }
                Timespec {
                    tv_sec: secs,
                    tv_nsec: nanos,
                }
            }
        };
        rustix::fs::futimens(
            &fd,
            &Timestamps {
                last_access: Timespec {
                    tv_sec: 0,
                    tv_nsec: rustix::fs::UTIME_OMIT,
                },
                last_modification: stamp,
            },
        )
        .map_err(io_err)?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(io_err)
    }

    /// Sets the mode of the file or folder `rel`, on its own handle: a
    /// symlink there is an error (`ELOOP`), never followed, and so is
    /// anything that is not a file or a folder.
    pub fn set_mode(&self, rel: &Path, mode: u32) -> io::Result<()> {
        let fd = open_to_change(self, rel)?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(io_err)
    }

    /// Creates the symlink `rel` to `target` (the link is made, nothing is
    /// followed).
    pub fn symlink(&self, target: &str, rel: &Path) -> io::Result<()> {
        let (parent, name) = split(rel)?;
        let parent = self.open_dir(parent)?;
        rustix::fs::symlinkat(target, &parent.root, name).map_err(io_err)
    }

    /// What `rel` is, without following it; `None` when nothing is there.
    pub fn kind(&self, rel: &Path) -> io::Result<Option<Kind>> {
        Ok(self.stat(rel)?.map(|(kind, _)| kind))
    }

    /// What `rel` is and its size, without following it; `None` when
    /// nothing is there (nor is a folder above it).
    pub fn stat(&self, rel: &Path) -> io::Result<Option<(Kind, u64)>> {
        let (parent, name) = split(rel)?;
        let parent = match self.open_dir(parent) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match rustix::fs::statat(&parent.root, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let t = rustix::fs::FileType::from_raw_mode(st.st_mode);
                let kind = match t {
                    rustix::fs::FileType::RegularFile => Kind::File,
                    rustix::fs::FileType::Directory => Kind::Dir,
                    rustix::fs::FileType::Symlink => Kind::Symlink,
                    _ => Kind::Other,
                };
                Ok(Some((kind, u64::try_from(st.st_size).unwrap_or(0))))
            }
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    /// Removes the file (or symlink) `rel`, never what a link points to.
    pub fn remove_file(&self, rel: &Path) -> io::Result<()> {
        let (parent, name) = split(rel)?;
        let parent = self.open_dir(parent)?;
        rustix::fs::unlinkat(&parent.root, name, AtFlags::empty()).map_err(io_err)
    }

    /// Gives the file `rel` a second name `to`, beneath the same root: fails
    /// (`AlreadyExists`) when `to` is taken, never replacing it.
    pub fn hard_link(&self, rel: &Path, to: &Path) -> io::Result<()> {
        let (from_parent, from_name) = split(rel)?;
        let (to_parent, to_name) = split(to)?;
        let from_dir = self.open_dir(from_parent)?;
        let to_dir = self.open_dir(to_parent)?;
        rustix::fs::linkat(
            &from_dir.root,
            from_name,
            &to_dir.root,
            to_name,
            AtFlags::empty(),
        )
        .map_err(io_err)
    }

    /// Makes the names in the folder `rel` durable (fsync of the folder).
    pub fn sync_dir(&self, rel: &Path) -> io::Result<()> {
        let dir = self.open_dir(rel)?;
        rustix::fs::fsync(&dir.root).map_err(io_err)
    }

    /// Moves `rel` to `to_rel` beneath `to` (the same file system), by
    /// their folders' handles: replaces a file there, never follows a link.
    pub fn rename(&self, rel: &Path, to: &Beneath, to_rel: &Path) -> io::Result<()> {
        let (from_parent, from_name) = split(rel)?;
        let (to_parent, to_name) = split(to_rel)?;
        let from_dir = self.open_dir(from_parent)?;
        let to_dir = to.open_dir(to_parent)?;
        rustix::fs::renameat(&from_dir.root, from_name, &to_dir.root, to_name).map_err(io_err)
    }

    /// The names in the folder `rel`, sorted.
    pub fn names(&self, rel: &Path) -> io::Result<Vec<OsString>> {
        let dir = self.open_dir(rel)?;
        let mut listing = rustix::fs::Dir::read_from(&dir.root).map_err(io_err)?;
        let mut names = Vec::new();
        while let Some(entry) = listing.read() {
            let entry = entry.map_err(io_err)?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsString::from_vec(name.to_vec()));
            }
        }
        names.sort();
        Ok(names)
    }

    /// The bytes an unprivileged writer may still take on the root's file
    /// system.
    pub fn free_bytes(&self) -> io::Result<u64> {
        let st = rustix::fs::fstatvfs(&self.root).map_err(io_err)?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// Flushes everything written on the root's file system.
    pub fn sync_fs(&self) -> io::Result<()> {
        rustix::fs::syncfs(&self.root).map_err(io_err)
    }
}

impl AsFd for Beneath {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.root.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Runs `f` as on a kernel without openat2: every name is walked.
    fn without_openat2<T>(f: impl FnOnce() -> T) -> T {
        WALK_ONLY.with(|w| w.set(true));
        let out = f();
        WALK_ONLY.with(|w| w.set(false));
        out
    }

    #[test]
    fn nothing_beneath_the_root_is_followed_nor_left() {
        nothing_is_followed_nor_left();
    }

    #[test]
    fn without_openat2_nothing_beneath_the_root_is_followed_nor_left_either() {
        without_openat2(nothing_is_followed_nor_left);
        without_openat2(the_root_is_reached_through_the_operators_symlink);
    }

    #[test]
    fn the_walk_opens_names_beneath_the_root_and_follows_no_link_on_the_way() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), b"inside").unwrap();
        std::fs::write(t.path().join("outside"), b"decoy").unwrap();
        std::os::unix::fs::symlink(t.path(), root.join("up")).unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("a-link")).unwrap();
        std::os::unix::fs::symlink("b/f", root.join("a/f-link")).unwrap();
        let b = Beneath::open(&root).unwrap();
        let open = |rel: &str| walk(b.as_fd(), Path::new(rel), OFlags::RDONLY, Mode::empty());
        let mut inside = String::new();
        std::io::Read::read_to_string(&mut File::from(open("a/./b/f").unwrap()), &mut inside)
            .unwrap();
        assert_eq!(inside, "inside");
        assert!(open("").is_ok(), "the root itself");
        assert!(open(".").is_ok(), "the root itself");
        for refused in [
            "up/outside",
            "a-link/b/f",
            "a/f-link",
            "up",
            "../outside",
            "a/../../outside",
            "/etc/passwd",
        ] {
            assert!(open(refused).is_err(), "{refused}");
        }
        let created = walk(
            b.as_fd(),
            Path::new("up/new"),
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY,
            Mode::from_raw_mode(0o600),
        );
        assert!(created.is_err());
        assert!(!t.path().join("new").exists());
    }

    #[test]
    fn a_named_pipe_is_refused_at_once_and_keeps_its_mode() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for walked in [false, true] {
            let root = t.path().to_path_buf();
            let (tx, rx) = std::sync::mpsc::channel();
            // On a thread of its own: without O_NONBLOCK the open waits for
            // a writer that never comes, and the test would hang instead of
            // failing.
            std::thread::spawn(move || {
                WALK_ONLY.with(|w| w.set(walked));
                let b = Beneath::open(&root).unwrap();
                let timed = b.set_mode_and_time(Path::new("pipe"), 0o777, SystemTime::UNIX_EPOCH);
                let moded = b.set_mode(Path::new("pipe"), 0o777);
                let _ = tx.send((timed, moded));
            });
            let (timed, moded) = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("the open of a named pipe waited for a writer");
            for r in [timed, moded] {
                let e = r.unwrap_err();
                assert!(e.to_string().contains("is a named pipe"), "{e}");
                assert!(e.to_string().contains("pipe\""), "names it: {e}");
            }
            let meta = std::fs::symlink_metadata(&fifo).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_clone_stays_on_the_folder_opened_whatever_becomes_of_its_path() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("store")).unwrap();
        let b = Beneath::open(&t.path().join("store")).unwrap();
        let c = b.try_clone().unwrap();
        drop(b);
        std::fs::rename(t.path().join("store"), t.path().join("moved")).unwrap();
        std::fs::create_dir(t.path().join("store")).unwrap();
        drop(c.create_new(Path::new("f"), 0o600).unwrap());
        assert!(t.path().join("moved/f").exists());
        assert!(!t.path().join("store/f").exists());
        assert_eq!(c.path(), t.path().join("store"));
    }

    fn nothing_is_followed_nor_left() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let outside = t.path().join("outside");
        std::fs::write(&outside, b"decoy").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        std::os::unix::fs::symlink(t.path(), root.join("up")).unwrap();
        let b = Beneath::open(&root).unwrap();
        let refused = |r: io::Result<()>| assert!(r.is_err());
        refused(b.set_mode_and_time(Path::new("link"), 0o777, SystemTime::UNIX_EPOCH));
        refused(b.create_new(Path::new("up/new"), 0o600).map(drop));
        refused(b.create_new(Path::new("../new"), 0o600).map(drop));
        refused(b.create_new(Path::new("/tmp/new"), 0o600).map(drop));
        refused(b.open_read_write(Path::new("link")).map(drop));
        refused(b.create_dir_all(Path::new("up/x")));
        refused(b.create_dir_all(Path::new("link/x")));
        refused(b.symlink("/etc", Path::new("up/l")));
        assert_eq!(b.kind(Path::new("link")).unwrap(), Some(Kind::Symlink));
        assert_eq!(b.kind(Path::new("none")).unwrap(), None);
        // The decoy is as it was, and nothing new appeared beside it.
        let meta = std::fs::metadata(&outside).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&outside).unwrap(), b"decoy");
        let mut beside: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        beside.sort();
        assert_eq!(beside, ["outside", "root"]);
    }

    #[test]
    fn the_root_may_be_reached_through_the_operators_symlink() {
        the_root_is_reached_through_the_operators_symlink();
    }

    fn the_root_is_reached_through_the_operators_symlink() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("disk")).unwrap();
        std::os::unix::fs::symlink(t.path().join("disk"), t.path().join("Data")).unwrap();
        let b = Beneath::open(&t.path().join("Data")).unwrap();
        b.create_dir_all(Path::new("a/b")).unwrap();
        let mut f = b.create_new(Path::new("a/b/f"), 0o600).unwrap();
        std::io::Write::write_all(&mut f, b"x").unwrap();
        b.set_mode_and_time(Path::new("a/b/f"), 0o640, SystemTime::UNIX_EPOCH)
            .unwrap();
        let meta = std::fs::metadata(t.path().join("disk/a/b/f")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(meta.modified().unwrap(), SystemTime::UNIX_EPOCH);
        b.symlink("/etc/passwd", Path::new("a/l")).unwrap();
        assert_eq!(b.kind(Path::new("a/l")).unwrap(), Some(Kind::Symlink));
        b.rename(Path::new("a/b/f"), &b, Path::new("g")).unwrap();
        assert_eq!(b.names(Path::new("")).unwrap(), ["a", "g"]);
    }
}
