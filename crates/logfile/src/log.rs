//! Writing and reading a log file.

use sauve_durable::fault::{Step, point};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::error::LogError;
use crate::format::{
    HEADER_LEN, Header, MAX_LABEL, MAX_PAYLOAD, Record, Records, Tag, Tail, encode_record_v1,
    encode_v2,
};

/// Where a writer takes the time of each record from: the host's injected
/// clock (tests pass explicit instants), the system clock by default.
pub type LogClock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// When an append is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync after every record.
    EveryAppend,
    /// Records written while an fsync runs share the next one, which starts
    /// as soon as that one ends: an append waits at most for the fsync in
    /// progress and its own, and returns only once its record is durable.
    GroupCommit,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LogError {
    let path = path.to_path_buf();
    move |source| LogError::Io {
        action,
        path,
        source,
    }
}

/// A log read in full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogContents {
    /// The header.
    pub header: Header,
    /// Every valid record, in order.
    pub records: Vec<Record>,
    /// How the file ends.
    pub tail: Tail,
    /// The offset just past the last valid record.
    pub end: u64,
}

/// Reads a whole log. A torn or corrupt tail stops the reading and is
/// reported in `tail`; no bad record is ever returned.
pub fn read_log(path: &Path) -> Result<LogContents, LogError> {
    let mut file = File::open(path).map_err(io_err("open", path))?;
    let len = file.metadata().map_err(io_err("read", path))?.len();
    let mut head = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match file.read(&mut head[got..]).map_err(io_err("read", path))? {
            0 => break,
            n => got += n,
        }
    }
    let header = Header::decode(&head[..got]).ok_or_else(|| LogError::NotALog {
        path: path.to_path_buf(),
    })?;
    let mut records = Records::new(BufReader::with_capacity(1 << 20, file), &header, len);
    let mut out = Vec::new();
    for r in records.by_ref() {
        out.push(r.map_err(io_err("read", path))?);
    }
    Ok(LogContents {
        header,
        records: out,
        tail: records.tail().unwrap_or(Tail::Clean),
        end: records.end(),
    })
}

struct State {
    file: File,
    path: PathBuf,
    header: Header,
    /// The next sequence number to give.
    next: u64,
    /// The last sequence written (not yet durable perhaps); `next - 1`.
    written: u64,
    /// The last sequence known durable.
    durable: u64,
    /// The file's length after the last whole record.
    end: u64,
    closed: bool,
    /// A failed fsync poisons the log: later appends fail too.
    failed: Option<String>,
    /// The time given to the last record, µs: each record's time is at
    /// least its predecessor's, whatever the clock does.
    last_time: i64,
}

/// Where a writer starts: the next sequence, the end of the last whole
/// record, the time of the last record (µs).
struct Position {
    next: u64,
    end: u64,
    last_time: i64,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    durability: Durability,
    /// Read before the lock is taken: appenders wait for each other's
    /// writes, not for each other's clock reads.
    clock: LogClock,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The host's log: appends are framed, checksummed and durable when
/// `append` returns. `Send + Sync`: share it behind an `Arc`. Blocking: call
/// it off async executor threads.
pub struct LogWriter {
    shared: Arc<Shared>,
    committer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.shared.lock();
        f.debug_struct("LogWriter")
            .field("path", &s.path)
            .field("next", &s.next)
            .finish_non_exhaustive()
    }
}

fn system_clock() -> LogClock {
    Arc::new(jiff::Timestamp::now)
}

fn now_ns(clock: &LogClock) -> i64 {
    i64::try_from(clock().as_nanosecond()).unwrap_or(i64::MAX)
}

fn new_file(path: &Path, header: &Header) -> Result<File, LogError> {
    point(Step::Create, path).map_err(io_err("create", path))?;
    let mut f = File::options()
        .read(true)
        .append(true)
        .create_new(true)
        .open(path)
        .map_err(io_err("create", path))?;
    point(Step::Write, path)
        .and_then(|()| f.write_all(&header.encode()))
        .map_err(io_err("write", path))?;
    point(Step::Sync, path)
        .and_then(|()| f.sync_all())
        .map_err(io_err("sync", path))?;
    if let Some(dir) = path.parent() {
        point(Step::SyncFolder, dir)
            .and_then(|()| File::open(dir))
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync folder", dir))?;
    }
    Ok(f)
}

impl LogWriter {
    /// Creates a new log (never replacing a file).
    pub fn create(
        path: &Path,
        identity: [u8; 16],
        first_sequence: u64,
        durability: Durability,
    ) -> Result<LogWriter, LogError> {
        LogWriter::create_with_clock(path, identity, first_sequence, durability, system_clock())
    }

    /// [`LogWriter::create`] with the clock that times the records and the
    /// header.
    pub fn create_with_clock(
        path: &Path,
        identity: [u8; 16],
        first_sequence: u64,
        durability: Durability,
        clock: LogClock,
    ) -> Result<LogWriter, LogError> {
        let header = Header::new(identity, first_sequence, now_ns(&clock));
        let file = new_file(path, &header)?;
        let at = Position {
            next: first_sequence,
            end: HEADER_LEN as u64,
            last_time: 0,
        };
        Ok(LogWriter::start(file, path, header, at, durability, clock))
    }

    /// Opens an existing log to append to it: a torn tail (a crash
    /// mid-append) is truncated; corruption is refused. A version-1 log is
    /// appended to in version 1 (no time, no tag) until the next cut
    /// starts a version-2 one: a file is one version throughout.
    pub fn open(path: &Path, durability: Durability) -> Result<LogWriter, LogError> {
        LogWriter::open_with_clock(path, durability, system_clock())
    }

    /// [`LogWriter::open`] with the clock that times the records.
    pub fn open_with_clock(
        path: &Path,
        durability: Durability,
        clock: LogClock,
    ) -> Result<LogWriter, LogError> {
        let contents = read_log(path)?;
        match contents.tail {
            Tail::Corrupt { offset } => {
                return Err(LogError::Corrupt {
                    path: path.to_path_buf(),
                    offset,
                });
            }
            Tail::Torn { .. } | Tail::Clean => {}
        }
        let file = File::options()
            .read(true)
            .append(true)
            .open(path)
            .map_err(io_err("open", path))?;
        let len = file.metadata().map_err(io_err("read", path))?.len();
        if len != contents.end {
            file.set_len(contents.end)
                .map_err(io_err("truncate the torn tail of", path))?;
            file.sync_all().map_err(io_err("sync", path))?;
        }
        let next = contents
            .records
            .last()
            .map_or(contents.header.first_sequence, |r| r.seq.saturating_add(1));
        let last_time = contents
            .records
            .iter()
            .filter_map(|r| r.time)
            .max()
            .unwrap_or(0);
        let at = Position {
            next,
            end: contents.end,
            last_time,
        };
        Ok(LogWriter::start(
            file,
            path,
            contents.header,
            at,
            durability,
            clock,
        ))
    }

    /// Opens the log at `path`, or creates it (first sequence 1) if there is none.
    pub fn open_or_create(
        path: &Path,
        identity: [u8; 16],
        durability: Durability,
    ) -> Result<LogWriter, LogError> {
        LogWriter::open_or_create_with_clock(path, identity, durability, system_clock())
    }

    /// [`LogWriter::open_or_create`] with the clock that times the records.
    pub fn open_or_create_with_clock(
        path: &Path,
        identity: [u8; 16],
        durability: Durability,
        clock: LogClock,
    ) -> Result<LogWriter, LogError> {
        if path.exists() {
            let w = LogWriter::open_with_clock(path, durability, clock)?;
            if !w.header().identity_matches(&identity) {
                return Err(LogError::Mismatch {
                    path: path.to_path_buf(),
                });
            }
            Ok(w)
        } else {
            LogWriter::create_with_clock(path, identity, 1, durability, clock)
        }
    }

    fn start(
        file: File,
        path: &Path,
        header: Header,
        at: Position,
        durability: Durability,
        clock: LogClock,
    ) -> LogWriter {
        let Position {
            next,
            end,
            last_time,
        } = at;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                file,
                path: path.to_path_buf(),
                header,
                next,
                written: next.saturating_sub(1),
                durable: next.saturating_sub(1),
                end,
                closed: false,
                failed: None,
                last_time,
            }),
            cond: Condvar::new(),
            durability,
            clock,
        });
        let committer = match durability {
            Durability::EveryAppend => None,
            Durability::GroupCommit => {
                let s = shared.clone();
                Some(std::thread::spawn(move || commit_loop(&s)))
            }
        };
        LogWriter { shared, committer }
    }

    /// The log's header.
    pub fn header(&self) -> Header {
        self.shared.lock().header
    }

    /// The file.
    pub fn path(&self) -> PathBuf {
        self.shared.lock().path.clone()
    }

    /// The last sequence appended, if any.
    pub fn last_sequence(&self) -> Option<u64> {
        let s = self.shared.lock();
        (s.next > s.header.first_sequence).then(|| s.next - 1)
    }

    /// Appends one record and returns its sequence number once it is durable.
    pub fn append(&self, payload: &[u8]) -> Result<u64, LogError> {
        self.append_tagged(None, payload)
    }

    /// Appends one record with the host's operation tag (behaviour §20): its kind
    /// and label are shown by `sauve log show` and counted by its summary.
    /// The record's time is the writer's clock, never earlier than the
    /// previous record's. Returns its sequence number once it is durable.
    pub fn append_tagged(&self, tag: Option<&Tag>, payload: &[u8]) -> Result<u64, LogError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(LogError::TooLarge {
                size: payload.len(),
            });
        }
        if let Some(t) = tag
            && t.label.len() > MAX_LABEL
        {
            return Err(LogError::LabelTooLong {
                size: t.label.len(),
            });
        }
        let now = (self.shared.clock)().as_microsecond();
        let mut s = self.shared.lock();
        if let Some(why) = &s.failed {
            return Err(LogError::Failed(why.clone()));
        }
        let seq = s.next;
        let bytes = if s.header.version == 1 {
            encode_record_v1(seq, payload)
        } else {
            // Read before the lock, so at most the previous record's time
            // when another appender went first: kept in order.
            let time = now.max(s.last_time);
            s.last_time = time;
            encode_v2(seq, Some(time), tag, payload)
        };
        let state = &mut *s;
        if let Err(e) = point(Step::Write, &state.path).and_then(|()| state.file.write_all(&bytes))
        {
            // A partial record is a torn tail: cut it so the next append starts clean.
            let end = s.end;
            if s.file.set_len(end).is_err() {
                s.failed = Some(format!(
                    "cannot cut a partial record from {}",
                    s.path.display()
                ));
            }
            return Err(io_err("append to", &s.path)(e));
        }
        s.end += bytes.len() as u64;
        s.next += 1;
        s.written = seq;
        match self.shared.durability {
            Durability::EveryAppend => {
                let state = &mut *s;
                point(Step::Sync, &state.path)
                    .and_then(|()| state.file.sync_data())
                    .map_err(io_err("sync", &state.path))?;
                s.durable = seq;
                Ok(seq)
            }
            Durability::GroupCommit => {
                self.shared.cond.notify_all();
                while s.durable < seq {
                    if let Some(why) = &s.failed {
                        return Err(LogError::Failed(why.clone()));
                    }
                    s = self.shared.cond.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                Ok(seq)
            }
        }
    }

    /// Makes everything appended durable, renames the log to `pending`, and
    /// starts a new one at the next sequence with the same identity
    /// (behaviour §14.2). Call it while no append can run (under the data lock).
    /// Returns the last sequence given so far (`None` before the first).
    pub fn rotate(&self, pending: &Path) -> Result<Option<u64>, LogError> {
        let mut s = self.shared.lock();
        let path = s.path.clone();
        point(Step::Sync, &path)
            .and_then(|()| s.file.sync_all())
            .map_err(io_err("sync", &path))?;
        s.durable = s.written;
        if pending.exists() {
            return Err(io_err("rename to", pending)(std::io::Error::from(
                std::io::ErrorKind::AlreadyExists,
            )));
        }
        point(Step::Rename, pending)
            .and_then(|()| std::fs::rename(&path, pending))
            .map_err(io_err("rename", &path))?;
        let header = Header::new(s.header.identity, s.next, now_ns(&self.shared.clock));
        let file = new_file(&path, &header)?;
        // The last sequence ever given, even when this log got none since
        // the previous cut: it is what the data has applied.
        let last = s.next.checked_sub(1).filter(|n| *n > 0);
        s.file = file;
        s.header = header;
        s.end = HEADER_LEN as u64;
        Ok(last)
    }
}

fn commit_loop(shared: &Shared) {
    loop {
        let mut s = shared.lock();
        while s.written == s.durable && !s.closed {
            s = shared.cond.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        if s.closed && s.written == s.durable {
            return;
        }
        // The fsync starts at once: appends arriving while it runs form the
        // next batch.
        let target = s.written;
        let file = s.file.try_clone();
        let path = s.path.clone();
        drop(s);
        let result = point(Step::Sync, &path)
            .and(file)
            .and_then(|f| f.sync_data());
        let mut s = shared.lock();
        match result {
            Ok(()) => s.durable = s.durable.max(target),
            Err(e) => s.failed = Some(format!("cannot sync {}: {e}", path.display())),
        }
        shared.cond.notify_all();
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.cond.notify_all();
        if let Some(t) = self.committer.take() {
            let _ = t.join();
        }
    }
}
