//! The journal files in `APP/Logs`: finding the current one, rotating,
//! appending whole entries durably, reading them back in order.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::entry::Entry;
use crate::error::JournalError;
use crate::parse::parse_journal;
use crate::rotation;

/// The Backup Journal of one app.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    current: u16,
    size: u64,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> JournalError {
    let path = path.to_path_buf();
    move |source| JournalError::Io {
        action,
        path,
        source,
    }
}

/// The journal files of `dir`: (number, modified), in no order.
fn list(dir: &Path) -> Result<Vec<(u16, SystemTime)>, JournalError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("list", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io("list", dir))?;
        let Some(n) = entry
            .file_name()
            .to_str()
            .and_then(rotation::parse_file_name)
        else {
            continue;
        };
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .map_err(io("read", &entry.path()))?;
        out.push((n, modified));
    }
    Ok(out)
}

/// Where an app keeps its Backup Journal: `APP/Data/Logs/` when a Backup
/// Journal is there and none in `APP/Logs/` (many 4D project apps keep it
/// there), else `APP/Logs/`. Every command that reads or writes the journal
/// asks here, so sauve continues the app's own journal instead of starting
/// a second one.
pub fn journal_dir(app: &Path) -> PathBuf {
    let logs = app.join("Logs");
    let data_logs = app.join("Data").join("Logs");
    let has_journal = |dir: &Path| list(dir).is_ok_and(|files| !files.is_empty());
    if !has_journal(&logs) && has_journal(&data_logs) {
        data_logs
    } else {
        logs
    }
}

impl Journal {
    /// Opens the journal of `logs_dir` (`APP/Logs`): the current file is the
    /// newest (behaviour §11.3), `[001]` when there is none yet. Creates nothing.
    pub fn open(logs_dir: &Path) -> Result<Journal, JournalError> {
        let files = list(logs_dir)?;
        let current = rotation::current(&files).unwrap_or(1);
        let path = logs_dir.join(rotation::file_name(current));
        let size = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io("read", &path)(e)),
        };
        Ok(Journal {
            dir: logs_dir.to_path_buf(),
            current,
            size,
        })
    }

    /// The current file's number.
    pub fn current_number(&self) -> u16 {
        self.current
    }

    /// The current file.
    pub fn current_path(&self) -> PathBuf {
        self.dir.join(rotation::file_name(self.current))
    }

    /// The rotation check run before every backup (and every entry): past
    /// 10 MiB, writing continues in the next number, truncated if it exists
    /// (after 999 comes 001). Returns the new number when it moved on.
    pub fn rotate_if_needed(&mut self) -> Result<Option<u16>, JournalError> {
        if !rotation::must_rotate(self.size) {
            return Ok(None);
        }
        let next = rotation::next_number(self.current);
        let path = self.dir.join(rotation::file_name(next));
        // Truncating and syncing makes the reused file the newest, so that a
        // restart finds it current.
        sauve_durable::fault::point(sauve_durable::fault::Step::Create, &path)
            .map_err(io("create", &path))?;
        let file = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true),
            0o600,
        )
        .open(&path)
        .map_err(io("create", &path))?;
        sauve_durable::fault::point(sauve_durable::fault::Step::Sync, &path)
            .and_then(|()| file.sync_all())
            .map_err(io("sync", &path))?;
        sauve_durable::sync_folder(&self.dir).map_err(JournalError::from)?;
        self.current = next;
        self.size = 0;
        Ok(Some(next))
    }

    /// Appends one entry in one write, then fsyncs. If the file ends inside
    /// an entry (a crash in the middle of one), the new entry starts after an
    /// empty line, so earlier entries stay intact and readable.
    pub fn append(&mut self, entry: &Entry, verbose: bool) -> Result<(), JournalError> {
        self.rotate_if_needed()?;
        std::fs::create_dir_all(&self.dir).map_err(io("create folder", &self.dir))?;
        let path = self.current_path();
        let mut text = String::new();
        if self.size > 0 {
            text.push_str(match self.tail(&path)? {
                Tail::Closed => "",
                Tail::LineEnded => "\n",
                Tail::MidLine => "\n\n",
            });
        }
        text.push_str(&entry.render(verbose));
        sauve_durable::append(&path, text.as_bytes()).map_err(JournalError::from)?;
        self.size += text.len() as u64;
        Ok(())
    }

    fn tail(&self, path: &Path) -> Result<Tail, JournalError> {
        let file = std::fs::File::open(path).map_err(io("open", path))?;
        let len = file.metadata().map_err(io("read", path))?.len();
        let mut last = [0u8; 2];
        let n = len.min(2) as usize;
        file.read_exact_at(&mut last[..n], len - n as u64)
            .map_err(io("read", path))?;
        Ok(match &last[..n] {
            [.., b'\n', b'\n'] => Tail::Closed,
            [.., b'\n'] => Tail::LineEnded,
            _ => Tail::MidLine,
        })
    }

    /// Bytes in the current file.
    pub fn current_size(&self) -> u64 {
        self.size
    }
}

enum Tail {
    Closed,
    LineEnded,
    MidLine,
}

/// The journal files of `logs_dir`, oldest first (by time, then by number
/// counted from the file after the current one, the oldest in the cycle).
fn ordered(logs_dir: &Path) -> Result<Vec<PathBuf>, JournalError> {
    let mut files = list(logs_dir)?;
    let Some(current) = rotation::current(&files) else {
        return Ok(Vec::new());
    };
    let start = rotation::next_number(current);
    let rank = |n: u16| (n + rotation::MAX_NUMBER - start) % rotation::MAX_NUMBER;
    files.sort_by_key(|&(n, t)| (t, rank(n)));
    Ok(files
        .into_iter()
        .map(|(n, _)| logs_dir.join(rotation::file_name(n)))
        .collect())
}

fn read_file(path: &Path) -> Result<Vec<Entry>, JournalError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io("read", path))?;
    Ok(parse_journal(&String::from_utf8_lossy(&bytes)))
}

/// Every entry of the journals in `logs_dir`, oldest first (files ordered
/// oldest to newest, the current one last).
pub fn read_all(logs_dir: &Path) -> Result<Vec<Entry>, JournalError> {
    let mut out = Vec::new();
    for path in ordered(logs_dir)? {
        out.extend(read_file(&path)?);
    }
    Ok(out)
}

/// Entries `skip..skip + take` of the journals in `logs_dir` counted from
/// the newest, newest first, and whether older ones remain. Reads files
/// from the current one back, only as far as needed.
pub fn read_newest(
    logs_dir: &Path,
    skip: usize,
    take: usize,
) -> Result<(Vec<Entry>, bool), JournalError> {
    let want = skip.saturating_add(take);
    let mut newest_first = Vec::new();
    let mut more = false;
    for path in ordered(logs_dir)?.into_iter().rev() {
        if newest_first.len() > want {
            more = true;
            break;
        }
        newest_first.extend(read_file(&path)?.into_iter().rev());
    }
    more |= newest_first.len() > want;
    let page = newest_first.into_iter().skip(skip).take(take).collect();
    Ok((page, more))
}
