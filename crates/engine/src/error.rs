//! The engine's errors, and the one place where each becomes a status.
//!
//! Policy: everything that can end a backup, a restore, a log integration or
//! an open check early is an [`EngineError`]. Variants carry their context
//! (the path, the value, the other crate's error) and [`EngineError::status`]
//! maps every one of them to the status code of behaviour §8.2, here and nowhere
//! else; whether a retry can help follows from the status (behaviour §9.1). Writing
//! the records (journal, history, state) is not part of a run's outcome: a
//! failure there is a warning of the run, never a change of its status.

use sauve_number::BackupNumber;
use std::path::PathBuf;

use sauve_status::Status;

/// What the engine was busy with when a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Busy {
    /// A backup.
    Backup,
    /// A restore (or the automatic restore of an open check).
    Restore,
    /// A log integration.
    Integration,
    /// A restore rehearsal (behaviour §22): a backup that comes due stops it.
    Rehearsal,
    /// A sample of the stored bytes asked by hand (behaviour §23).
    Sample,
}

impl Busy {
    /// Whether it gives way to a backup that comes due (stopped, the
    /// backup run once it ended): a rehearsal, a sample asked by hand.
    pub(crate) fn gives_way(self) -> bool {
        matches!(self, Busy::Rehearsal | Busy::Sample)
    }
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Busy::Backup => "a backup",
            Busy::Restore => "a restore",
            Busy::Integration => "a log integration",
            Busy::Rehearsal => "a restore rehearsal",
            Busy::Sample => "a sample of the stored bytes",
        })
    }
}

/// Why the engine could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The actor system could not start.
    #[error("cannot start the backup engine: {0}")]
    Start(#[source] std::io::Error),
    /// The engine has shut down, or one of its actors died.
    #[error("the backup engine is not running (its {actor} is gone)")]
    Gone {
        /// Which actor did not answer.
        actor: &'static str,
    },
    /// The settings are invalid (1419).
    #[error(transparent)]
    Settings(#[from] sauve_settings::SettingsError),
    /// sauve.toml is not valid, as the resolver read it last (1419): the
    /// one reading, shared by every run and view that asks for it.
    #[error(transparent)]
    OwnSettings(std::sync::Arc<sauve_settings::SettingsError>),
    /// `DestinationFolder` cannot be used on this system (1407).
    #[error("destination \"{written}\": {source}")]
    DestinationPath {
        /// As written in the settings.
        written: String,
        /// Why it cannot be used.
        source: sauve_settings::PathError,
    },
    /// The destination folder cannot be created (1407).
    #[error("cannot create destination folder \"{}\": {source}", path.display())]
    DestinationUncreatable {
        /// The folder.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The destination exists and is not a folder (1407).
    #[error("destination \"{}\" is not a folder (accepted: a folder, or a path where one can be created)", path.display())]
    DestinationNotAFolder {
        /// The path.
        path: PathBuf,
    },
    /// The destination cannot be written: permission or a read-only file
    /// system (-61).
    #[error("cannot write in destination folder \"{}\": {source}", path.display())]
    DestinationReadOnly {
        /// The folder.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The destination cannot be written for another reason (1407).
    #[error("cannot write in destination folder \"{}\": {source}", path.display())]
    DestinationUnwritable {
        /// The folder.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The free-space estimate does not fit (-34).
    #[error("about {needed} bytes needed in \"{}\", {free} free", path.display())]
    DiskFull {
        /// The destination.
        path: PathBuf,
        /// The estimate (content size × last compression ratio + 10%).
        needed: u64,
        /// Bytes available.
        free: u64,
    },
    /// This engine is busy with a backup or a restore (1402), or, for a
    /// restore or an integration, with a log integration (1417 via
    /// [`EngineError::IntegrationRunning`]).
    #[error("{busy} is already running for this app")]
    AlreadyRunning {
        /// What runs.
        busy: Busy,
    },
    /// Another process holds the app's or the destination's advisory lock (1402).
    #[error("another process is backing up or restoring (it holds \"{}\")", path.display())]
    HeldByAnotherProcess {
        /// The lock file.
        path: PathBuf,
    },
    /// A restore target that is an app in use, or lies inside one (1402),
    /// whatever force says: see [`crate::hold_restore_target`].
    #[error(
        "cannot restore into \"{}\": \"{}\" is an app in use: {holder} (it holds \"{}\"); a restore never writes into an app in use, even when it may replace files (stop it first, or restore into another folder)",
        target.display(),
        app.display(),
        lock.display()
    )]
    RestoreTargetInUse {
        /// Where the restore would go.
        target: PathBuf,
        /// The app folder it is, or lies in.
        app: PathBuf,
        /// What holds the app.
        holder: &'static str,
        /// The lock file held.
        lock: PathBuf,
    },
    /// A log integration runs; backups wait for its end (1417).
    #[error("a log integration is running for this app; try again when it has ended")]
    IntegrationRunning,
    /// The caller holds a write guard: its backup would wait for itself (1404).
    #[error("the caller holds a write guard; release it before asking for a backup")]
    CallerHoldsWriteGuard,
    /// The startup hook returned a non-zero value, which becomes the status.
    #[error("the startup hook refused the backup ({code})")]
    HookRefused {
        /// What the hook returned.
        code: i32,
    },
    /// Stop was asked (1406).
    #[error("stopped by the user")]
    Stopped,
    /// A log is declared (`JournalFileEnabled`) but missing (1403).
    #[error("the log file \"{}\" is missing (JournalFileEnabled is True)", path.display())]
    LogMissing {
        /// Where it should be.
        path: PathBuf,
    },
    /// Writing the log backup (`.4BL`) failed (1408).
    #[error("cannot write the log backup: {source}")]
    LogBackup {
        /// The archive's error.
        source: sauve_archive::ArchiveError,
    },
    /// Writing, reading or verifying an archive failed.
    #[error(transparent)]
    Archive(#[from] sauve_archive::ArchiveError),
    /// A store (an `s3://` URL or an off-site folder) failed (behaviour §19).
    #[error(transparent)]
    Store(#[from] sauve_store::StoreError),
    /// The log file could not be read, cut or written.
    #[error(transparent)]
    Log(#[from] sauve_logfile::LogError),
    /// A log integration stopped.
    #[error(transparent)]
    Integration(#[from] sauve_logfile::IntegrateError),
    /// The backup lock could not be taken in time (1405).
    #[error(transparent)]
    Lock(#[from] sauve_locking::LockError),
    /// `backupHistory.json` could not be read or written.
    #[error(transparent)]
    History(#[from] sauve_history::HistoryError),
    /// The Backup Journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] sauve_journal::JournalError),
    /// A durable write (a state file) failed.
    #[error(transparent)]
    Durable(#[from] sauve_durable::PathError),
    /// No backup of this app is there or verifies (1410).
    #[error("no backup of \"{key}\" in \"{}\" verifies", destination.display())]
    NoBackupAvailable {
        /// The structure key.
        key: String,
        /// The destination searched.
        destination: PathBuf,
    },
    /// An integration's stop point comes before the restored set's end: the
    /// set already holds data from after it (1410, behaviour §20).
    #[error(
        "the stop point {point} is before the end of {} ({end}), which already holds later changes (accepted: a point at or after {end}, or a set that ends before the point)",
        set.display()
    )]
    UntilBeforeSet {
        /// The restored set.
        set: PathBuf,
        /// The stop point, as the journal says it.
        point: String,
        /// The set's end: its end time, or its last log sequence.
        end: String,
    },
    /// No sound backup of this app ends before the point (1410, behaviour §20).
    #[error("no backup of \"{key}\" in \"{}\" ends before {point} and verifies", destination.display())]
    NoBackupBefore {
        /// The structure key.
        key: String,
        /// The destination searched.
        destination: PathBuf,
        /// The stop point, as the journal says it.
        point: String,
    },
    /// A set whose data stands on another timeline than the point asked
    /// for, up to its end: a point-in-time restore set records aside on
    /// one and not the other, so integrating from it would bring back what
    /// was undone, or leave out what counts (1410, behaviour §20).
    #[error(
        "\"{}\" stands on another timeline than the point asked for: the restore to {point} (run {at}) set changes aside on one and not the other (accepted: a set taken on the timeline of the point; an older one serves when there is one)",
        set.display()
    )]
    SetAsideBySet {
        /// The set.
        set: PathBuf,
        /// The point of the restore.
        point: String,
        /// When that restore ran.
        at: String,
    },
    /// The state file cannot say what point-in-time restores set aside
    /// (behaviour §20): no integration runs until a person looks.
    #[error(
        "\"{}\" cannot be read: {reason}. It keeps what point-in-time restores set aside in the log, and integrating without it could apply again what a restore undid (accepted: a state file whose \"set_aside\" list reads, with no sauve-state.json.damaged beside it; put the list back from the damaged copy, or leave it out if no restore to a point was ever made, then remove the .damaged file)",
        path.display()
    )]
    StateDamaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A point-in-time restore of an app without a sauve log: nothing
    /// says what happened when (1410, behaviour §20).
    #[error(
        "cannot restore to {point}: \"{}\" is not a sauve log, so nothing says what the data held then (accepted: an app whose host writes its log with sauve_logfile; `sauve log show --app` lists it)",
        log.display()
    )]
    NoLogForPoint {
        /// The app's log file.
        log: PathBuf,
        /// The point asked for.
        point: String,
    },
    /// No set of that number is in this app's history (1410).
    #[error(
        "no backup numbered {number} in this app's history (accepted: a number `sauve history` lists)"
    )]
    NoSuchBackup {
        /// The number asked for.
        number: BackupNumber,
    },
    /// A restore into the app folder the engine serves (1407): it would
    /// replace the files of the running app.
    #[error("cannot restore into \"{}\": it is the folder of the app this server runs (accepted: another folder, such as the default next to the archive)", destination.display())]
    RestoreIntoLiveApp {
        /// Where the restore would go.
        destination: PathBuf,
        /// The app folder.
        app: PathBuf,
    },
    /// The data is damaged and `AutomaticRestore` is off.
    #[error("the data file \"{}\" is damaged and AutomaticRestore is off", data.display())]
    DamagedWithoutAutomaticRestore {
        /// The data file.
        data: PathBuf,
    },
    /// Any other file operation.
    #[error("cannot {action} \"{}\": {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// A restore rehearsal's check failed (1420, behaviour §22).
    #[error("the check `{check}` failed: {why}")]
    RehearsalCheck {
        /// The check as configured.
        check: String,
        /// What went wrong, with what it printed.
        why: String,
    },
    /// The rehearsal folder is the app or inside it (1407).
    #[error("the rehearsal folder \"{}\" is inside the app \"{}\" (accepted: a folder outside the app, such as the default beside it; rehearsal.folder in sauve.toml)", folder.display(), app.display())]
    RehearsalInsideApp {
        /// The folder.
        folder: PathBuf,
        /// The app.
        app: PathBuf,
    },
    /// The source holds no backup set of the app's base (1410).
    #[error("{source_name} holds no backup set of {base} to rehearse")]
    NothingToRehearse {
        /// Where the sets were looked for.
        source_name: String,
        /// The base name.
        base: String,
    },
    /// A rehearsal asked for a set its source does not hold (1410).
    #[error("{source_name} holds no set {number} of {base} (accepted: {held})")]
    NoSuchSet {
        /// The number asked for.
        number: BackupNumber,
        /// Where the sets were looked for.
        source_name: String,
        /// The base name.
        base: String,
        /// The numbers it holds, as a list for people.
        held: String,
    },
    /// The source's sets are encrypted and no identity is at hand (1419):
    /// a rehearsal cannot prove them on this host.
    #[error(
        "the sets in {source_name} are encrypted and no identity is given: they are not provable on this host (accepted: --identity FILE, or rehearsal.identity_file in sauve.toml)"
    )]
    NeedsIdentity {
        /// Where the sets are.
        source_name: String,
    },
    /// A step of a rehearsal failed: the set and source it read.
    #[error("rehearsal of {set} from {source_name}: {step}: {inner}")]
    Rehearsal {
        /// The set, `App[0012]`.
        set: String,
        /// Where it was read from.
        source_name: String,
        /// What was being done.
        step: &'static str,
        /// What failed.
        inner: Box<EngineError>,
    },
    /// A run panicked; the engine recovered (1409).
    #[error("internal error: {0}")]
    Internal(String),
}

fn io_status(e: &std::io::Error) -> Status {
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => Status::DiskFull,
        // Only writes meet a read-only file system: remounted, or a
        // destination on read-only media.
        std::io::ErrorKind::ReadOnlyFilesystem => Status::WritePermissionDenied,
        _ => Status::BackupError,
    }
}

impl EngineError {
    /// The status code this error ends a run with: the one mapping of behaviour §8.2.
    pub fn status(&self) -> Status {
        use EngineError as E;
        match self {
            E::Settings(_) | E::OwnSettings(_) | E::NeedsIdentity { .. } => Status::InvalidSettings,
            E::RehearsalCheck { .. } => Status::RehearsalCheckFailed,
            E::RehearsalInsideApp { .. } => Status::DestinationInvalid,
            E::NothingToRehearse { .. } | E::NoSuchSet { .. } => Status::ArchiveMissing,
            E::Rehearsal { inner, .. } => inner.status(),
            E::DestinationPath { .. }
            | E::DestinationUncreatable { .. }
            | E::DestinationNotAFolder { .. }
            | E::DestinationUnwritable { .. }
            | E::RestoreIntoLiveApp { .. } => Status::DestinationInvalid,
            E::DestinationReadOnly { .. } => Status::WritePermissionDenied,
            E::DiskFull { .. } => Status::DiskFull,
            E::AlreadyRunning { .. }
            | E::HeldByAnotherProcess { .. }
            | E::RestoreTargetInUse { .. } => Status::AlreadyRunning,
            E::IntegrationRunning => Status::IntegrationRunning,
            E::CallerHoldsWriteGuard => Status::CallerHoldsWriteGuard,
            E::HookRefused { code } => Status::from_code(*code),
            E::Stopped => Status::Stopped,
            E::LogMissing { .. } => Status::LogFileMissing,
            E::LogBackup { .. } => Status::LogBackupError,
            E::Archive(e) => e.status(),
            E::Store(e) => e.status(),
            E::Log(e) => e.status(),
            E::Integration(e) => e.status(),
            E::StateDamaged { .. } => Status::LogBackupError,
            E::Lock(e) => e.status(),
            E::NoBackupAvailable { .. }
            | E::NoSuchBackup { .. }
            | E::UntilBeforeSet { .. }
            | E::NoBackupBefore { .. }
            | E::NoLogForPoint { .. }
            | E::SetAsideBySet { .. } => Status::ArchiveMissing,
            E::Io { source, .. } => io_status(source),
            E::Durable(e) => io_status(&e.source),
            E::Start(_)
            | E::Gone { .. }
            | E::History(_)
            | E::Journal(_)
            | E::DamagedWithoutAutomaticRestore { .. }
            | E::Internal(_) => Status::BackupError,
        }
    }

    /// Whether trying again later may help (behaviour §9.1's retried statuses).
    pub fn is_transient(&self) -> bool {
        self.status().is_retried()
    }

    /// Whether the request was refused at admission: nothing ran and
    /// nothing was recorded (behaviour §5 step 1).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            EngineError::AlreadyRunning { .. }
                | EngineError::HeldByAnotherProcess { .. }
                | EngineError::RestoreTargetInUse { .. }
                | EngineError::IntegrationRunning
                | EngineError::CallerHoldsWriteGuard
        )
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> EngineError {
        let path = path.into();
        move |source| EngineError::Io {
            action,
            path,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn every_error_maps_to_the_status_of_spec_8_2() {
        let p = || PathBuf::from("/bk");
        let cases: Vec<(EngineError, Status)> = vec![
            (
                EngineError::DestinationUncreatable {
                    path: p(),
                    source: Error::from(ErrorKind::PermissionDenied),
                },
                Status::DestinationInvalid,
            ),
            (
                EngineError::DestinationReadOnly {
                    path: p(),
                    source: Error::from(ErrorKind::ReadOnlyFilesystem),
                },
                Status::WritePermissionDenied,
            ),
            (
                EngineError::DiskFull {
                    path: p(),
                    needed: 2,
                    free: 1,
                },
                Status::DiskFull,
            ),
            (
                EngineError::AlreadyRunning { busy: Busy::Backup },
                Status::AlreadyRunning,
            ),
            (
                EngineError::HeldByAnotherProcess { path: p() },
                Status::AlreadyRunning,
            ),
            (
                EngineError::RestoreTargetInUse {
                    target: p(),
                    app: p(),
                    holder: "a backup or a restore of it runs",
                    lock: p(),
                },
                Status::AlreadyRunning,
            ),
            (EngineError::IntegrationRunning, Status::IntegrationRunning),
            (
                EngineError::CallerHoldsWriteGuard,
                Status::CallerHoldsWriteGuard,
            ),
            (EngineError::HookRefused { code: 7 }, Status::Hook(7)),
            (EngineError::Stopped, Status::Stopped),
            (
                EngineError::LogMissing { path: p() },
                Status::LogFileMissing,
            ),
            (
                EngineError::Io {
                    action: "write",
                    path: p(),
                    source: Error::from(ErrorKind::StorageFull),
                },
                Status::DiskFull,
            ),
            (
                EngineError::Io {
                    action: "write",
                    path: p(),
                    source: Error::from(ErrorKind::ReadOnlyFilesystem),
                },
                Status::WritePermissionDenied,
            ),
            (
                EngineError::Archive(sauve_archive::ArchiveError::Io {
                    action: "cannot write",
                    path: p(),
                    source: Error::from_raw_os_error(30),
                }),
                Status::WritePermissionDenied,
            ),
            (
                EngineError::Archive(sauve_archive::ArchiveError::Io {
                    action: "cannot read",
                    path: p(),
                    source: Error::from(ErrorKind::PermissionDenied),
                }),
                Status::BackupError,
            ),
            (
                EngineError::Io {
                    action: "write",
                    path: p(),
                    source: Error::other("EIO"),
                },
                Status::BackupError,
            ),
            (
                EngineError::NoBackupAvailable {
                    key: "k".into(),
                    destination: p(),
                },
                Status::ArchiveMissing,
            ),
            (
                EngineError::Lock(sauve_locking::LockError::Timeout {
                    kinds: vec![sauve_locking::Kind::Data],
                    timeout: std::time::Duration::from_secs(1),
                }),
                Status::LockTimeout,
            ),
            (
                EngineError::Archive(sauve_archive::ArchiveError::Stopped),
                Status::Stopped,
            ),
            (EngineError::Gone { actor: "copier" }, Status::BackupError),
        ];
        for (e, status) in cases {
            assert_eq!(e.status(), status, "{e}");
            assert_eq!(e.is_transient(), status.is_retried(), "{e}");
        }
    }

    #[test]
    fn only_admission_refusals_are_refusals() {
        assert!(
            EngineError::AlreadyRunning {
                busy: Busy::Restore
            }
            .is_refusal()
        );
        assert!(EngineError::IntegrationRunning.is_refusal());
        assert!(!EngineError::Stopped.is_refusal());
        assert!(!EngineError::HookRefused { code: 1 }.is_refusal());
    }

    #[test]
    fn messages_name_the_object_in_lowercase_without_a_final_period() {
        let e = EngineError::DestinationUncreatable {
            path: PathBuf::from("/backups"),
            source: Error::from(ErrorKind::PermissionDenied),
        };
        assert_eq!(
            e.to_string(),
            "cannot create destination folder \"/backups\": permission denied"
        );
        for e in [
            EngineError::Stopped,
            EngineError::IntegrationRunning,
            EngineError::AlreadyRunning { busy: Busy::Backup },
        ] {
            let m = e.to_string();
            assert!(!m.ends_with('.'), "{m}");
            assert!(m.chars().next().is_some_and(char::is_lowercase), "{m}");
        }
    }
}
