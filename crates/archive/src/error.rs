//! Errors of the archive crate.
//!
//! Policy: every error names the file, entry or segment concerned and maps to
//! one status code of behaviour §8.2 ([`ArchiveError::status`]). IO errors
//! while backing up are 1409 (or -34 when the disk is full) and may be
//! retried; a damaged archive is 1411 (1413 for a `.4BL`) and never helped by
//! a retry.

use std::path::PathBuf;

use sauve_status::Status;

use crate::kind::SetKind;

/// Why an archive could not be written, read, verified or restored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The store holding the set failed (behaviour §19).
    #[error(transparent)]
    Store(#[from] sauve_store::StoreError),
    /// Reading a source file, or writing an archive file, failed.
    #[error("{action} \"{path}\": {source}")]
    Io {
        /// What was being done: "cannot read", "cannot write"…
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// A source file changed size while it was being read.
    #[error("\"{path}\" changed while it was being read ({expected} bytes expected, {found} read)")]
    SourceChanged {
        /// The file.
        path: PathBuf,
        /// Its size when the entry header was written.
        expected: u64,
        /// What could be read.
        found: u64,
    },
    /// A file read twice (an incremental set compares it, then stores
    /// what changed) was not the same both times (1409).
    #[error(
        "\"{0}\" changed while it was being read (two reads of it differ); it is read again at the next backup"
    )]
    SourceRewritten(PathBuf),
    /// The included data file does not exist (1409; never an attachment).
    #[error("data file \"{0}\" not found")]
    DataFileMissing(PathBuf),
    /// An attachment contains the app folder (4D refuses it).
    #[error(
        "attachment \"{attachment}\" contains the app folder \"{app}\" (accepted: files and folders outside the app folder or inside it)"
    )]
    AttachmentContainsApp {
        /// The attachment as resolved.
        attachment: PathBuf,
        /// The app folder.
        app: PathBuf,
    },
    /// A target archive file already exists; nothing is ever overwritten.
    #[error("\"{0}\" already exists; archives are never overwritten")]
    AlreadyExists(PathBuf),
    /// The run was stopped (1406).
    #[error("stopped by the user")]
    Stopped,
    /// The name does not look like an archive.
    #[error(
        "\"{path}\" is not an archive name (accepted: base[NNNN].4BK, base[NNNN-SSSS].4BK, base[NNNN].4BL or base[NNNN])"
    )]
    NotAnArchiveName {
        /// The path as given.
        path: PathBuf,
    },
    /// The archive, or one of its segments, is missing (1410, 1412).
    #[error("{what}")]
    Missing {
        /// Backup or log.
        kind: SetKind,
        /// What is missing.
        what: String,
    },
    /// The set is encrypted (age) and no identity given opens it (behaviour §19).
    #[error(
        "{set} is encrypted with age: {reason} (accepted: --identity FILE naming an age identity file, AGE-SECRET-KEY-1… lines, of a recipient in encrypt_to)"
    )]
    Encrypted {
        /// The set, as typed.
        set: String,
        /// No identity, or none that matches.
        reason: String,
    },
    /// The identity file given cannot be used.
    #[error(
        "{reason} (accepted: an age identity file, AGE-SECRET-KEY-1… lines as age-keygen writes them)"
    )]
    Identity {
        /// What is wrong with it.
        reason: String,
    },
    /// The archive is damaged or not a sauve archive (1411, 1413).
    #[error("{what}")]
    Corrupt {
        /// Backup or log.
        kind: SetKind,
        /// The first problem found, naming the entry or segment.
        what: String,
    },
    /// Restore refused an entry that would write outside the destination (1411).
    #[error("unsafe entry \"{path}\": {reason}; nothing was restored")]
    Unsafe {
        /// The entry's path as stored.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// A restore would write more than the destination's file system has
    /// free (-34): refused before the entry is written, so that a set
    /// whose entries are larger than its manifest says (a decompression
    /// bomb) never fills the disk.
    #[error(
        "entry {path} needs {needed} bytes (its size in the set, in blocks of the file system), more than the {free} bytes still free for the restore in \"{destination}\" (a restore keeps {reserve} bytes free); nothing was restored"
    )]
    DestinationFull {
        /// The entry's path as stored.
        path: String,
        /// Its size in the stream.
        needed: u64,
        /// What the restore may still write.
        free: u64,
        /// What it leaves free.
        reserve: u64,
        /// The destination.
        destination: PathBuf,
    },
    /// A restore would create more names than the destination's file
    /// system has inodes free (-34): a set of millions of empty entries
    /// never exhausts them.
    #[error(
        "entry {path} would be one name more than the file system of \"{destination}\" still has free for a restore (a restore keeps 1% of its names free); nothing was restored"
    )]
    DestinationOutOfNames {
        /// The entry's path as stored.
        path: String,
        /// The destination.
        destination: PathBuf,
    },
    /// The set a restore was asked for declares more than the
    /// destination's file system has free (-34): refused from its manifest,
    /// before anything is written.
    #[error(
        "the set lists {entries} entries that need {needed} bytes (each entry's size in blocks of the file system, and a block for its name), and \"{destination}\" has {free} bytes and {names_free} names free for a restore (a restore keeps {reserve} bytes and 1% of the names free); nothing was restored"
    )]
    DestinationTooSmall {
        /// The entries the set lists.
        entries: u64,
        /// The bytes they need.
        needed: u64,
        /// What the restore may write.
        free: u64,
        /// The names it may create.
        names_free: u64,
        /// What it leaves free.
        reserve: u64,
        /// The destination.
        destination: PathBuf,
    },
    /// The restore destination is not empty and `--force` was not given.
    #[error(
        "destination \"{0}\" is not empty (use --force to replace same-path files and keep the others)"
    )]
    DestinationNotEmpty(PathBuf),
}

impl ArchiveError {
    /// The status code this error ends a run with.
    pub fn status(&self) -> Status {
        match self {
            ArchiveError::Store(e) => e.status(),
            ArchiveError::Io { source, .. } if is_disk_full(source) => Status::DiskFull,
            ArchiveError::DestinationFull { .. }
            | ArchiveError::DestinationOutOfNames { .. }
            | ArchiveError::DestinationTooSmall { .. } => Status::DiskFull,
            // Only a write meets a read-only file system (a source that
            // cannot be read is EACCES or EIO: 1409, naming it).
            ArchiveError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::ReadOnlyFilesystem =>
            {
                Status::WritePermissionDenied
            }
            ArchiveError::Io { .. }
            | ArchiveError::SourceChanged { .. }
            | ArchiveError::SourceRewritten(_)
            | ArchiveError::DataFileMissing(_)
            | ArchiveError::AlreadyExists(_) => Status::BackupError,
            ArchiveError::AttachmentContainsApp { .. } => Status::InvalidSettings,
            ArchiveError::Stopped => Status::Stopped,
            ArchiveError::NotAnArchiveName { .. } | ArchiveError::Encrypted { .. } => {
                Status::ArchiveMissing
            }
            // The operator's identity file, not the archive, is wrong.
            ArchiveError::Identity { .. } => Status::InvalidSettings,
            ArchiveError::Missing {
                kind: SetKind::Backup,
                ..
            } => Status::ArchiveMissing,
            ArchiveError::Missing {
                kind: SetKind::Log, ..
            } => Status::LogArchiveMissing,
            ArchiveError::Corrupt {
                kind: SetKind::Backup,
                ..
            }
            | ArchiveError::Unsafe { .. } => Status::ArchiveCorrupt,
            // Nothing is wrong with the set: the place it goes is refused.
            ArchiveError::DestinationNotEmpty(_) => Status::DestinationInvalid,
            ArchiveError::Corrupt {
                kind: SetKind::Log, ..
            } => Status::LogArchiveCorrupt,
        }
    }

    /// Whether what was read is not what its manifest says (damaged, or a
    /// part of it missing), as against a read that could not be made (a
    /// store out of reach, a disk error): only such a set is unsound.
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            ArchiveError::Corrupt { .. }
                | ArchiveError::Missing { .. }
                | ArchiveError::Store(sauve_store::StoreError::NotFound { .. })
        )
    }

    /// Whether trying again may help.
    pub fn is_transient(&self) -> bool {
        self.status().is_retried()
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ArchiveError {
        let path = path.into();
        move |source| ArchiveError::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn corrupt(kind: SetKind, what: impl Into<String>) -> ArchiveError {
        ArchiveError::Corrupt {
            kind,
            what: what.into(),
        }
    }
}

/// ENOSPC or EDQUOT.
pub(crate) fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each refusal a person meets, the status it ends with and what its
    /// message says: a status never blames the set for what is not its
    /// fault (a non-empty folder was "1411 Archive verification failed",
    /// a bad identity file "1410 Archive to verify missing").
    #[test]
    fn each_refusal_has_the_status_and_message_that_say_what_happened() {
        let io = |kind: std::io::ErrorKind| ArchiveError::Io {
            action: "cannot write",
            path: PathBuf::from("/b/App[0001].4BK"),
            source: std::io::Error::from(kind),
        };
        let cases: Vec<(ArchiveError, i32, &str)> = vec![
            (
                ArchiveError::DestinationNotEmpty(PathBuf::from("/r")),
                1407,
                "destination \"/r\" is not empty (use --force",
            ),
            (
                ArchiveError::Identity {
                    reason: "key.txt holds no identity".to_owned(),
                },
                1419,
                "key.txt holds no identity (accepted: an age identity file",
            ),
            (
                ArchiveError::Encrypted {
                    set: "App[0001]".to_owned(),
                    reason: "no identity given".to_owned(),
                },
                1410,
                "App[0001] is encrypted with age: no identity given",
            ),
            (
                ArchiveError::Unsafe {
                    path: "../x".to_owned(),
                    reason: "the path goes up with ..".to_owned(),
                },
                1411,
                "unsafe entry \"../x\": the path goes up with ..; nothing was restored",
            ),
            (
                ArchiveError::DestinationFull {
                    path: "f".to_owned(),
                    needed: 10,
                    free: 5,
                    reserve: 64,
                    destination: PathBuf::from("/r"),
                },
                -34,
                "entry f needs 10 bytes (its size in the set, in blocks of the file system), more than the 5 bytes still free",
            ),
            (
                ArchiveError::DestinationTooSmall {
                    entries: 3,
                    needed: 12_288,
                    free: 4096,
                    names_free: 100,
                    reserve: 64,
                    destination: PathBuf::from("/r"),
                },
                -34,
                "the set lists 3 entries that need 12288 bytes",
            ),
            (
                ArchiveError::corrupt(SetKind::Log, "entry x appears twice"),
                1413,
                "entry x appears twice",
            ),
            (
                ArchiveError::Missing {
                    kind: SetKind::Backup,
                    what: "App[0002].4BK not found".to_owned(),
                },
                1410,
                "App[0002].4BK not found",
            ),
            (io(std::io::ErrorKind::StorageFull), -34, "cannot write"),
            (
                io(std::io::ErrorKind::ReadOnlyFilesystem),
                -61,
                "cannot write",
            ),
            (ArchiveError::Stopped, 1406, "stopped by the user"),
        ];
        for (e, code, says) in cases {
            assert_eq!(e.status().code(), code, "{e}");
            assert!(e.to_string().contains(says), "{e}\nwanted: {says}");
        }
    }
}
