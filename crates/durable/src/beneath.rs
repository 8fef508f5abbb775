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
//! by name.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};
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

    fn at(&self, rel: &Path, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let rel = checked(rel)?;
        rustix::fs::openat2(&self.root, rel, flags | OFlags::CLOEXEC, mode, RESOLVE).map_err(io_err)
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

    /// Opens the file `rel` for writing in place.
    pub fn open_write(&self, rel: &Path) -> io::Result<File> {
        let fd = self.at(rel, OFlags::WRONLY | OFlags::NOFOLLOW, Mode::empty())?;
        Ok(File::from(fd))
    }

    /// Opens the file `rel` for reading.
    pub fn open_read(&self, rel: &Path) -> io::Result<File> {
        let fd = self.at(rel, OFlags::RDONLY | OFlags::NOFOLLOW, Mode::empty())?;
        Ok(File::from(fd))
    }

    /// Sets the mode and the modification time of the file or folder
    /// `rel`, on the handle opened for it: a symlink there is an error
    /// (`ELOOP`), never followed.
    pub fn set_mode_and_time(&self, rel: &Path, mode: u32, modified: SystemTime) -> io::Result<()> {
        let fd = self.at(rel, OFlags::RDONLY | OFlags::NOFOLLOW, Mode::empty())?;
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
    /// symlink there is an error (`ELOOP`), never followed.
    pub fn set_mode(&self, rel: &Path, mode: u32) -> io::Result<()> {
        let fd = self.at(rel, OFlags::RDONLY | OFlags::NOFOLLOW, Mode::empty())?;
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

    #[test]
    fn nothing_beneath_the_root_is_followed_nor_left() {
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
        refused(b.open_write(Path::new("link")).map(drop));
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
