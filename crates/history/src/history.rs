//! `backupHistory.json` in the destination: read, change, write atomically,
//! and the next backup number (behaviour §6.2 and §12).

use sauve_number::BackupNumber;
use std::io::Write;
use std::path::{Path, PathBuf};

use sauve_archive::{ArchiveName, SetKind};
use serde_json::{Map, Value};

use crate::entry::{HistoryEntry, Operation};
use crate::error::HistoryError;

/// The file name in the destination.
pub const FILE_NAME: &str = "backupHistory.json";
/// The limit per class of entries when retention (`SetNumber`) is off.
pub const UNLIMITED: usize = 999;
/// The most bytes a `backupHistory.json` may hold: 64 MiB, a thousand
/// entries of a set of a few hundred files each (4D's own files weigh a
/// few KB). A bigger file is not read: where the destination may be
/// written by others (a shared bucket), nobody can make sauve spend its
/// memory on one. Its depth is bounded by serde_json (128 levels).
pub const MAX_BYTES: u64 = 64 << 20;

/// Whether `len` bytes are more than a history may hold.
fn over_limit(len: usize) -> bool {
    u64::try_from(len).map_or(true, |n| n > MAX_BYTES)
}

/// `MAX_BYTES` as people read it.
const LIMIT_TEXT: &str = "64 MiB";

/// The file at `path`, read whole if it holds at most [`MAX_BYTES`];
/// `Ok(Err(size))` for a bigger one, which is not read.
fn read_bounded(path: &Path) -> std::io::Result<Result<Vec<u8>, u64>> {
    use std::io::Read;
    // A FIFO or a device in the destination would block or never end.
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    if size > MAX_BYTES {
        return Ok(Err(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(MAX_BYTES.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if over_limit(bytes.len()) {
        // It grew while it was read.
        return Ok(Err(u64::try_from(bytes.len()).unwrap_or(u64::MAX)));
    }
    Ok(Ok(bytes))
}

/// The history: an object keyed by structure path, each holding entries
/// oldest first. Keys sauve does not touch are kept verbatim.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    map: Map<String, Value>,
}

/// A history as loaded.
#[derive(Debug)]
pub struct Loaded {
    /// The history (empty when there was none, or it was corrupt).
    pub history: History,
    /// Where a corrupt file was moved; numbering then continues from the
    /// archives in the destination (behaviour §12).
    pub moved_aside: Option<PathBuf>,
    /// What happened, for the Backup Journal.
    pub notes: Vec<String>,
}

/// The next backup number, and why it is not the obvious one when it is not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Numbering {
    /// The number to use.
    pub number: BackupNumber,
    /// A journal note when the number moved past existing archives.
    pub note: Option<String>,
}

impl History {
    /// Parses a history; `None` when the text is not one, or holds more
    /// than [`MAX_BYTES`].
    pub fn parse(text: &str) -> Option<History> {
        if over_limit(text.len()) {
            return None;
        }
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        match serde_json::from_str::<Value>(text).ok()? {
            Value::Object(map) => {
                let h = History { map };
                // Every key sauve might read must hold entries it can read.
                h.map.keys().all(|k| h.entries(k).is_some()).then_some(h)
            }
            _ => None,
        }
    }

    /// Loads `destination/backupHistory.json`. A missing file is an empty
    /// history; a corrupt one, or one over [`MAX_BYTES`] (which is not
    /// read), is renamed `backupHistory.json.corrupt-<UTC stamp>` and
    /// reported.
    pub fn load(destination: &Path, now: jiff::Timestamp) -> Result<Loaded, HistoryError> {
        let path = destination.join(FILE_NAME);
        let bytes = match read_bounded(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Loaded {
                    history: History::default(),
                    moved_aside: None,
                    notes: Vec::new(),
                });
            }
            Err(source) => {
                return Err(HistoryError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        let why = match bytes {
            Ok(bytes) => {
                if let Some(history) = std::str::from_utf8(&bytes).ok().and_then(History::parse) {
                    return Ok(Loaded {
                        history,
                        moved_aside: None,
                        notes: Vec::new(),
                    });
                }
                "was not a valid history".to_owned()
            }
            Err(size) => format!(
                "holds {size} bytes, more than a history may ({LIMIT_TEXT}), and was not read"
            ),
        };
        let aside = destination.join(format!(
            "{FILE_NAME}.corrupt-{}",
            now.strftime("%Y%m%dT%H%M%SZ")
        ));
        sauve_durable::fault::point(sauve_durable::fault::Step::Rename, &aside)
            .and_then(|()| std::fs::rename(&path, &aside))
            .map_err(|source| HistoryError::Io {
                action: "move aside",
                path: path.clone(),
                source,
            })?;
        sauve_durable::sync_folder(destination)?;
        Ok(Loaded {
            history: History::default(),
            notes: vec![format!(
                "{} {why}; moved to {}; numbering continues from the archives in the destination",
                path.display(),
                aside.display()
            )],
            moved_aside: Some(aside),
        })
    }

    /// The structure keys, in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// The entries under `key` (exact match, O-12), oldest first; `None` when
    /// the key holds something that is not a list of entries.
    pub fn entries(&self, key: &str) -> Option<Vec<HistoryEntry>> {
        match self.map.get(key) {
            None => Some(Vec::new()),
            Some(v) => serde_json::from_value(v.clone()).ok(),
        }
    }

    fn set_entries(&mut self, key: &str, entries: &[HistoryEntry]) -> Result<(), HistoryError> {
        let v = serde_json::to_value(entries).map_err(|e| HistoryError::Encode(e.to_string()))?;
        self.map.insert(key.to_owned(), v);
        Ok(())
    }

    /// Adds an entry under `key`. Numbered backups stay sorted by number and
    /// unique: an entry with the number of an existing one replaces it.
    pub fn add(&mut self, key: &str, entry: HistoryEntry) -> Result<(), HistoryError> {
        let mut entries = self.entries(key).unwrap_or_default();
        if entry.is_numbered_backup() {
            if let Some(same) = entries
                .iter_mut()
                .find(|e| e.is_numbered_backup() && e.backup_number == entry.backup_number)
            {
                *same = entry;
            } else if let Some(at) = entries
                .iter()
                .position(|e| e.is_numbered_backup() && e.backup_number > entry.backup_number)
            {
                entries.insert(at, entry);
            } else {
                entries.push(entry);
            }
        } else {
            entries.push(entry);
        }
        self.set_entries(key, &entries)
    }

    /// Keeps, under `key`, the newest `limit` entries of each class: backups
    /// with an archive, runs without one, restores and log integrations,
    /// restore rehearsals (behaviour §12, §22; 999 when retention is off).
    pub fn retain(&mut self, key: &str, limit: usize) -> Result<(), HistoryError> {
        let entries = self.entries(key).unwrap_or_default();
        let class = |e: &HistoryEntry| match (e.operation(), e.backup_number) {
            (Operation::Restore | Operation::Integration, _) => 2,
            (Operation::Rehearsal, _) => 3,
            (Operation::Backup, BackupNumber::NONE) => 1,
            (Operation::Backup, _) => 0,
        };
        let mut counts = [0usize; 4];
        let mut keep = vec![false; entries.len()];
        for (i, e) in entries.iter().enumerate().rev() {
            let c = class(e);
            if counts[c] < limit {
                counts[c] += 1;
                keep[i] = true;
            }
        }
        let kept: Vec<HistoryEntry> = entries
            .into_iter()
            .zip(keep)
            .filter_map(|(e, k)| k.then_some(e))
            .collect();
        self.set_entries(key, &kept)
    }

    /// Removes, under `key`, the backups of the given numbers (their sets were
    /// deleted by retention).
    pub fn remove_numbers(
        &mut self,
        key: &str,
        numbers: &[BackupNumber],
    ) -> Result<(), HistoryError> {
        let mut entries = self.entries(key).unwrap_or_default();
        entries.retain(|e| !(e.is_numbered_backup() && numbers.contains(&e.backup_number)));
        self.set_entries(key, &entries)
    }

    /// Records where the off-site copy of set `number` under `key` to
    /// `destination` stands; false when no such backup is recorded.
    pub fn set_offsite(
        &mut self,
        key: &str,
        number: BackupNumber,
        destination: &str,
        copy: crate::entry::OffsiteCopy,
    ) -> Result<bool, HistoryError> {
        let mut entries = self.entries(key).unwrap_or_default();
        let Some(e) = entries
            .iter_mut()
            .find(|e| e.is_numbered_backup() && e.backup_number == number)
        else {
            return Ok(false);
        };
        e.offsite
            .get_or_insert_with(Default::default)
            .insert(destination.to_owned(), copy);
        self.set_entries(key, &entries)?;
        Ok(true)
    }

    /// The history of `key` alone (an app's own object on a store, behaviour §19).
    pub fn only(&self, key: &str) -> History {
        let mut map = Map::new();
        if let Some(v) = self.map.get(key) {
            map.insert(key.to_owned(), v.clone());
        }
        History { map }
    }

    /// Adds the keys of `other` (each app's own object, when rebuilding a
    /// store's `backupHistory.json`); a key both hold keeps `other`'s entries.
    pub fn merge(&mut self, other: History) {
        for (k, v) in other.map {
            self.map.insert(k, v);
        }
    }

    /// The highest backup number recorded under `key`.
    pub fn highest_number(&self, key: &str) -> Option<BackupNumber> {
        self.entries(key)?
            .iter()
            .filter(|e| e.is_numbered_backup())
            .map(|e| e.backup_number)
            .max()
    }

    /// The file's text: tab-indented, LF, no BOM, no final newline (4D's shape).
    pub fn to_json(&self) -> Result<Vec<u8>, HistoryError> {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        serde::Serialize::serialize(&self.map, &mut ser)
            .map_err(|e| HistoryError::Encode(e.to_string()))?;
        Ok(out)
    }

    /// Writes `destination/backupHistory.json` atomically (temporary file,
    /// fsync, rename, folder fsync).
    pub fn save(&self, destination: &Path) -> Result<PathBuf, HistoryError> {
        self.save_through(destination, |w, bytes| w.write_all(bytes))
    }

    /// [`History::save`], writing the bytes through `write`: tests inject a
    /// writer that fails half-way to check the previous file survives.
    pub fn save_through(
        &self,
        destination: &Path,
        write: impl FnOnce(&mut dyn Write, &[u8]) -> std::io::Result<()>,
    ) -> Result<PathBuf, HistoryError> {
        let bytes = self.to_json()?;
        let path = destination.join(FILE_NAME);
        sauve_durable::replace_with(&path, |w| write(w, &bytes))?;
        Ok(path)
    }
}

/// The text of `destination/backupHistory.json`, to print or serve as JSON:
/// without the BOM some 4D files start with (JSON sauve prints never starts
/// with one), `None` when there is no history yet. A file over
/// [`MAX_BYTES`] is refused without being read.
pub fn read_json_text(destination: &Path) -> Result<Option<String>, HistoryError> {
    let path = destination.join(FILE_NAME);
    let text = read_bounded(&path).and_then(|read| match read {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Ok)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(size) => Ok(Err(size)),
    });
    match text {
        Ok(Err(size)) => Err(HistoryError::TooLarge {
            path,
            size,
            limit: MAX_BYTES,
        }),
        Ok(Ok(text)) => Ok(Some(match text.strip_prefix('\u{FEFF}') {
            Some(rest) => rest.to_owned(),
            None => text,
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HistoryError::Io {
            action: "read",
            path,
            source,
        }),
    }
}

/// The entries under `key` in the text of a history, oldest first, read in
/// one pass straight into entries: the other keys are skipped without
/// being built, so a page showing one app's history does not pay for the
/// whole file twice. `None` when the text is not a history object or
/// `key`'s entries cannot be read; no entries when `key` is absent.
pub fn read_entries(text: &str, key: &str) -> Option<Vec<HistoryEntry>> {
    if over_limit(text.len()) {
        return None;
    }
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    // Straight into the types; a file they refuse (a field twice in an
    // entry, which a JSON object may hold) is read again through a JSON
    // value of this key's list, where the last duplicate wins, as
    // `History::parse` reads it: the two readers never disagree.
    pick::<Vec<HistoryEntry>>(text, key).or_else(|| {
        pick::<serde_json::Value>(text, key).and_then(|v| serde_json::from_value(v).ok())
    })
}

/// The value of `key` in the JSON object `text`, read as `T` in one pass,
/// every other key skipped; the default of `T` when the key is absent.
fn pick<T: serde::de::DeserializeOwned + Default>(text: &str, key: &str) -> Option<T> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    struct Pick<'k, T>(&'k str, std::marker::PhantomData<T>);

    impl<'de, T: serde::de::DeserializeOwned + Default> Visitor<'de> for Pick<'_, T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a history object keyed by structure path")
        }
        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            let mut found = T::default();
            while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if k == self.0 {
                    found = map.next_value()?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }

    impl<'de, T: serde::de::DeserializeOwned + Default> DeserializeSeed<'de> for Pick<'_, T> {
        type Value = T;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    let mut de = serde_json::Deserializer::from_str(text);
    let value = Pick(key, std::marker::PhantomData)
        .deserialize(&mut de)
        .ok()?;
    de.end().ok()?;
    Some(value)
}

/// The numbers of the `.4BK` archives (any segment) of `base` in `destination`.
pub fn archive_numbers(destination: &Path, base: &str) -> Result<Vec<BackupNumber>, HistoryError> {
    let entries = match std::fs::read_dir(destination) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(HistoryError::Io {
                action: "list",
                path: destination.to_path_buf(),
                source,
            });
        }
    };
    let mut numbers: Vec<BackupNumber> = entries
        .flatten()
        .filter_map(|e| ArchiveName::parse(&e.file_name().to_string_lossy()))
        .filter(|a| !a.part && a.base == base && a.kind == SetKind::Backup)
        .map(|a| a.number)
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    Ok(numbers)
}

/// The next backup number (behaviour §6.2): the highest recorded under `key` plus
/// one, 1 with no history; after a corrupt history, the highest archive plus
/// one. If an archive with that number exists (`existing`, from
/// [`archive_numbers`]), the number moves past the highest existing one:
/// nothing is ever overwritten.
pub fn next_number(
    history: &History,
    key: &str,
    existing: &[BackupNumber],
    base: &str,
    after_corrupt_history: bool,
) -> Numbering {
    let highest_archive = existing.iter().copied().max().unwrap_or_default();
    let candidate = if after_corrupt_history {
        highest_archive.next()
    } else {
        history.highest_number(key).unwrap_or_default().next()
    };
    if existing.contains(&candidate) {
        let number = highest_archive.next();
        let taken = ArchiveName {
            base: base.to_owned(),
            number: candidate,
            segment: None,
            kind: SetKind::Backup,
            part: false,
        };
        return Numbering {
            number,
            note: Some(format!(
                "{taken} already exists in the destination; numbering continues at {}",
                number.text()
            )),
        };
    }
    Numbering {
        number: candidate,
        note: None,
    }
}
