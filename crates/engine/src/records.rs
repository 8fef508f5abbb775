//! The record files and how they change: the Backup Journal (behaviour §11),
//! `backupHistory.json` (behaviour §12) and `APP/Logs/sauve-state.json` (behaviour §15).
//!
//! Every change is one load-modify-save (or one append) under the advisory
//! lock beside the file ([`sauve_durable::lock_exclusive`]), so processes
//! sharing an app or a destination never lose each other's updates. In a
//! process with an engine, only their keepers (journal, history, state) call these; a process
//! without one (a restore of an archive whose app is elsewhere) calls them
//! directly and is kept in order by the same locks.

use sauve_number::BackupNumber;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use sauve_history::{History, HistoryEntry, Numbering};
use sauve_journal::{Entry, Journal};

use crate::error::EngineError;
use crate::state::{EngineState, state_path};

/// The Backup Journal's lock: one for every journal file of the folder.
fn journal_lock(dir: &Path) -> PathBuf {
    dir.join("Backup Journal.txt")
}

/// The rotation check before a backup (behaviour §11.3); the new number when the
/// journal moved on.
pub(crate) fn rotate_journal(app: &Path) -> Result<Option<u16>, EngineError> {
    let dir = sauve_journal::journal_dir(app);
    let _lock = sauve_durable::lock_exclusive(&journal_lock(&dir))?;
    Ok(Journal::open(&dir)?.rotate_if_needed()?)
}

/// Appends one entry, in one write plus fsync. The journal is reopened
/// under the lock, so its current file and size are the ones on disk even
/// when another process wrote meanwhile.
pub(crate) fn append_journal(app: &Path, entry: &Entry, verbose: bool) -> Result<(), EngineError> {
    let dir = sauve_journal::journal_dir(app);
    let _lock = sauve_durable::lock_exclusive(&journal_lock(&dir))?;
    Journal::open(&dir)?.append(entry, verbose)?;
    Ok(())
}

/// The next backup number (behaviour §6.2) with the notes it produced (a corrupt
/// history moved aside, an existing archive skipped). Under the history's
/// lock, since a corrupt file is moved aside.
pub(crate) fn next_number(
    destination: &Path,
    key: &str,
    base: &str,
    now: Timestamp,
    taken: &[BackupNumber],
) -> Result<(Numbering, Vec<String>), EngineError> {
    let _lock = sauve_durable::lock_exclusive(&destination.join(sauve_history::FILE_NAME))?;
    let loaded = History::load(destination, now)?;
    let mut existing = sauve_history::archive_numbers(destination, base)?;
    existing.extend_from_slice(taken);
    existing.sort_unstable();
    existing.dedup();
    let numbering = sauve_history::next_number(
        &loaded.history,
        key,
        &existing,
        base,
        loaded.moved_aside.is_some(),
    );
    Ok((numbering, loaded.notes))
}

/// Records `entry` under `key` in the history of `destination`: entries of
/// sets retention removed go, the entry is added, the newest `limit` of each
/// class stay. Returns the notes of the load (a corrupt file moved aside).
pub(crate) fn record_history(
    destination: &Path,
    key: &str,
    entry: HistoryEntry,
    limit: usize,
    removed: &[BackupNumber],
    now: Timestamp,
) -> Result<Vec<String>, EngineError> {
    let _lock = sauve_durable::lock_exclusive(&destination.join(sauve_history::FILE_NAME))?;
    let mut loaded = History::load(destination, now)?;
    let h = &mut loaded.history;
    h.remove_numbers(key, removed)?;
    h.add(key, entry)?;
    h.retain(key, limit)?;
    h.save(destination)?;
    Ok(loaded.notes)
}

/// Sets the off-site state of backup `number` under `key` (behaviour §19).
pub(crate) fn record_offsite(
    destination: &Path,
    key: &str,
    number: BackupNumber,
    label: &str,
    copy: sauve_history::OffsiteCopy,
    now: Timestamp,
) -> Result<(), EngineError> {
    let _lock = sauve_durable::lock_exclusive(&destination.join(sauve_history::FILE_NAME))?;
    let mut loaded = History::load(destination, now)?;
    if loaded.history.set_offsite(key, number, label, copy)? {
        loaded.history.save(destination)?;
    }
    Ok(())
}

/// Changes the state of `app` with `change` and saves it; returns the new state.
pub(crate) fn update_state(
    app: &Path,
    change: impl FnOnce(&mut EngineState),
) -> Result<EngineState, EngineError> {
    let path = state_path(app);
    let _lock = sauve_durable::lock_exclusive(&path)?;
    let mut state = match sauve_durable::read_bounded(&path, crate::state::STATE_LIMIT) {
        Ok(bytes) => {
            keep_damaged(app, &bytes)?;
            EngineState::parse(&bytes)
        }
        // Too large to be sauve's: kept aside as it is (never read whole),
        // as a damaged one is, and integrations refuse until a person looks.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            let damaged = crate::state::damaged_state_path(app);
            if !damaged.exists() {
                tracing::warn!("{} is {e}: kept as {}", path.display(), damaged.display());
                std::fs::rename(&path, &damaged).map_err(EngineError::io("keep aside", &path))?;
            }
            EngineState::default()
        }
        Err(_) => EngineState::default(),
    };
    change(&mut state);
    let json = serde_json::to_vec_pretty(&state)
        .map_err(|e| EngineError::Internal(format!("cannot encode {}: {e}", path.display())))?;
    sauve_durable::replace(&path, &json)?;
    Ok(state)
}

/// A state file (`bytes`) that cannot say what restores set aside is kept,
/// as it is, as `sauve-state.json.damaged` before a new one replaces it (the
/// first damaged copy stays): integrations refuse while it is there.
fn keep_damaged(app: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let damaged = crate::state::damaged_state_path(app);
    if let Err(reason) = crate::state::read_strictly(bytes)
        && !damaged.exists()
    {
        tracing::warn!(
            "{} cannot be read ({reason}): kept as {}",
            state_path(app).display(),
            damaged.display()
        );
        sauve_durable::create_new(&damaged, bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sauve_scheduler::SchedulerState;

    /// Runs `work(t)` on `n` threads at once, each standing for a process:
    /// its own lock file handle, its own load-modify-save.
    fn in_threads(n: usize, work: impl Fn(usize) + Send + Sync + Clone + 'static) {
        let threads: Vec<_> = (0..n)
            .map(|t| {
                let work = work.clone();
                std::thread::spawn(move || work(t))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn concurrent_state_updates_from_threads_lose_nothing() {
        // Without the lock, updates would overwrite each other.
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().to_path_buf();
        let shared = app.clone();
        in_threads(4, move |t| {
            for i in 0..25 {
                update_state(&shared, |s| {
                    let n = s.extra.get("count").and_then(|v| v.as_u64()).unwrap_or(0);
                    s.extra.insert("count".into(), (n + 1).into());
                    s.extra.insert(format!("t{t}"), i.into());
                })
                .unwrap();
            }
        });
        let state = EngineState::load(&app);
        assert_eq!(state.extra["count"], 100);
        for t in 0..4 {
            assert_eq!(state.extra[&format!("t{t}")], 24);
        }
    }

    #[test]
    fn the_scheduler_state_and_the_last_backup_live_side_by_side() {
        let dir = tempfile::tempdir().unwrap();
        update_state(dir.path(), |s| s.last_ratio = Some(0.3)).unwrap();
        update_state(dir.path(), |s| {
            s.scheduler = Some(SchedulerState {
                failures: 2,
                ..SchedulerState::default()
            })
        })
        .unwrap();
        let s = EngineState::load(dir.path());
        assert_eq!(s.last_ratio, Some(0.3));
        assert_eq!(s.scheduler.map(|s| s.failures), Some(2));
    }

    #[test]
    fn journal_entries_from_threads_are_each_whole() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().to_path_buf();
        let shared = app.clone();
        in_threads(4, move |t| {
            for i in 0..10 {
                let mut e = Entry::new(sauve_journal::Title::FullBackup);
                e.notes = vec![format!("thread {t} entry {i}")];
                e.status = Some(0);
                append_journal(&shared, &e, true).unwrap();
            }
        });
        let entries = sauve_journal::read_all(&app.join("Logs")).unwrap();
        assert_eq!(entries.len(), 40);
        assert!(
            entries
                .iter()
                .all(|e| e.notes.len() == 1 && e.status == Some(0))
        );
    }

    /// Each record file has one writer in a process with an engine: the
    /// functions that change a file are called from its keeper's module
    /// only (and, for the history, from `restore_detached`, which runs
    /// without an engine; test code aside).
    #[test]
    fn each_record_file_is_changed_by_its_keeper_only() {
        let writers: &[(&str, &[&str])] = &[
            ("rotate_journal", &["actors/journal/mod.rs"]),
            ("append_journal", &["actors/journal/mod.rs"]),
            ("next_number", &["actors/history/mod.rs"]),
            ("record_history", &["actors/history/mod.rs", "restore.rs"]),
            ("record_offsite", &["actors/history/mod.rs"]),
            ("update_state", &["actors/state/mod.rs"]),
        ];
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        let mut dirs = vec![src.clone()];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|x| x == "rs") {
                    files.push(path);
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for path in files {
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if rel == "records.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Test code aside: a module's tests come last, in a module.
            let code = text.split("#[cfg(test)]\nmod").next().unwrap_or_default();
            for (function, allowed) in writers {
                if code.contains(&format!("records::{function}(")) {
                    assert!(
                        allowed.contains(&rel.as_str()),
                        "{rel} calls records::{function}, which only {allowed:?} may call"
                    );
                    seen.insert(*function);
                }
            }
        }
        // The check reads what it means to: every writer was found.
        assert_eq!(seen.len(), writers.len(), "found only {seen:?}");
    }
}
