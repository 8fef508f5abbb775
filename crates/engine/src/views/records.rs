//! [`Records`]: the app's history, its Backup Journal and its state file,
//! read through the engine, changed through their keepers.

use sauve_number::BackupNumber;
use std::path::{Path, PathBuf};

use sauve_history::HistoryEntry;
use sauve_journal::Entry;
use sauve_scheduler::SchedulerState;

use crate::actors::ask;
use crate::actors::journal::messages::AppendJournal;
use crate::actors::state::messages::{ReadState, SaveSchedulerState};
use crate::error::EngineError;
use crate::io::StoreIo;
use crate::state::LastBackup;
use crate::views::Parts;

/// The app's records: `backupHistory.json` in its destination (behaviour
/// §12), its Backup Journal (behaviour §11), the last backup information
/// (behaviour §15) and what the scheduler remembers (behaviour §9.2), and
/// the sets the history names, to verify. From [`crate::BackupHandle::records`].
#[derive(Clone, Copy, Debug)]
pub struct Records<'a> {
    parts: Parts<'a>,
}

impl<'a> Records<'a> {
    pub(crate) fn new(parts: Parts<'a>) -> Records<'a> {
        Records { parts }
    }

    /// This app's entries of `backupHistory.json` in its destination, as
    /// written (oldest first); none when there is no history yet. Reads
    /// only: a damaged file is reported, not moved aside (the history
    /// keeper does that at the next backup).
    pub async fn history(self) -> Result<Vec<HistoryEntry>, EngineError> {
        let settings = crate::views::Config::new(self.parts).settings().await?;
        let layout = self.parts.layout;
        let destination = crate::plan::destination_to_read(&layout.app, &settings)?
            .records()
            .to_path_buf();
        let key = crate::settings::structure_key(layout);
        self.parts
            .actors
            .io
            .blocking(move || read_history(&destination, &key))
            .await?
    }

    /// Entries `skip..skip + take` of this app's Backup Journal counted
    /// from the newest, newest first, and whether older ones remain.
    pub async fn journal_entries(
        self,
        skip: usize,
        take: usize,
    ) -> Result<(Vec<Entry>, bool), EngineError> {
        let dir = sauve_journal::journal_dir(self.parts.layout.app.as_path());
        self.parts
            .actors
            .io
            .blocking(move || {
                sauve_journal::read_newest(&dir, skip, take).map_err(EngineError::from)
            })
            .await?
    }

    /// Appends an entry to the app's Backup Journal, verbose as the settings
    /// say (verbose when they cannot be read).
    pub async fn append_journal(self, entry: Entry) -> Result<(), EngineError> {
        // Read now, the settings tell the journal its mode.
        let _ = crate::views::Config::new(self.parts).settings().await;
        let msg = AppendJournal::new(entry);
        ask(&self.parts.actors.journal, "journal", msg).await?
    }

    /// The last backup information (behaviour §15).
    pub async fn last_backup(self) -> Option<LastBackup> {
        ask(&self.parts.actors.state, "state", ReadState)
            .await
            .ok()
            .and_then(|s| s.0.last_backup)
    }

    /// The whole state as its keeper has it now (behaviour §15, §22).
    pub async fn state(self) -> Result<crate::state::EngineState, EngineError> {
        Ok(ask(&self.parts.actors.state, "state", ReadState).await?.0)
    }

    /// What the scheduler saved last (behaviour §9.2).
    pub async fn scheduler_state(self) -> Result<SchedulerState, EngineError> {
        let state = ask(&self.parts.actors.state, "state", ReadState).await?;
        Ok(state.0.scheduler.unwrap_or_default())
    }

    /// Saves what the scheduler remembers across restarts.
    pub async fn save_scheduler_state(self, state: SchedulerState) -> Result<(), EngineError> {
        let msg = SaveSchedulerState { state };
        ask(&self.parts.actors.state, "state", msg).await?
    }

    /// The first file of the set numbered `number` in this app's history.
    pub async fn archive_of(self, number: BackupNumber) -> Result<PathBuf, EngineError> {
        archive_in(self.history().await?, number)
    }

    /// Verifies (behaviour §13.2) the set numbered `number` in this app's
    /// history: every segment, stream, size and checksum. Writes nothing;
    /// runs beside a backup. 1410 when no such set is in the history.
    pub async fn verify_backup(
        self,
        number: BackupNumber,
    ) -> Result<sauve_archive::VerifyReport, EngineError> {
        let archive = self.archive_of(number).await?;
        let own = ask(
            &self.parts.actors.resolver,
            "resolver",
            crate::actors::resolver::messages::ReadOwnSettings,
        )
        .await?
        .valid();
        let io = self.parts.actors.io.clone();
        self.parts
            .actors
            .io
            .blocking(move || verify_set(own, &archive, &io))
            .await?
    }
}

/// `key`'s entries in `destination/backupHistory.json`, read only.
fn read_history(destination: &Path, key: &str) -> Result<Vec<HistoryEntry>, EngineError> {
    let Some(text) = sauve_history::read_json_text(destination)? else {
        return Ok(Vec::new());
    };
    sauve_history::read_entries(&text, key).ok_or_else(|| {
        EngineError::History(sauve_history::HistoryError::Invalid {
            path: destination.join(sauve_history::FILE_NAME),
        })
    })
}

/// The first file of the newest numbered backup `number` in `history`
/// that names one (1410 when there is none).
fn archive_in(history: Vec<HistoryEntry>, number: BackupNumber) -> Result<PathBuf, EngineError> {
    history
        .into_iter()
        .rev()
        .find(|e| e.is_numbered_backup() && e.backup_number == number && !e.backup_path.is_empty())
        .map(|e| PathBuf::from(e.backup_path))
        .ok_or(EngineError::NoSuchBackup { number })
}

/// Verifies the set whose first file is `archive`: a set in a bucket
/// destination (`s3://…/base[N].4BK`) is read back from there, a file
/// where it is; `own` is sauve.toml as the resolver read it, or why it is
/// not valid (a bucket is reached with it). Blocking.
fn verify_set(
    own: Result<std::sync::Arc<sauve_settings::SauveToml>, EngineError>,
    archive: &Path,
    io: &StoreIo,
) -> Result<sauve_archive::VerifyReport, EngineError> {
    let text = archive.to_string_lossy();
    if sauve_settings::is_store_url(&text) {
        let (url, name) = text.rsplit_once('/').unwrap_or((&text, ""));
        let store =
            crate::destination::StoreDestination::with_settings(&format!("{url}/"), &*own?, io)?;
        return Ok(store.read_back(name, &mut sauve_archive::NoProgress)?);
    }
    sauve_archive::verify(archive, &mut sauve_archive::NoProgress).map_err(EngineError::from)
}
