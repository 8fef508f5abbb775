//! `sauve-manifest.json`, the last entry of every set (behaviour §6.1).

use sauve_number::BackupNumber;
use serde::{Deserialize, Serialize};

use crate::kind::SetKind;

/// The manifest's entry name.
pub const MANIFEST_NAME: &str = "sauve-manifest.json";
/// The `format` value.
pub const FORMAT: &str = "sauve-archive";
/// The `version` value this crate writes and reads.
pub const VERSION: u32 = 1;

/// What an entry is, by where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// The data file.
    Data,
    /// `Data/Settings/…`.
    DataSettings,
    /// The log file.
    Log,
    /// `Project/…`.
    Structure,
    /// `Settings/…`.
    StructureSettings,
    /// A file or folder from `General/IncludesFiles`.
    Attachment,
}

impl EntryKind {
    /// Data-kind entries are restored by automatic restore and copied under the data lock.
    pub fn is_data(self) -> bool {
        matches!(
            self,
            EntryKind::Data | EntryKind::DataSettings | EntryKind::Log
        )
    }
}

/// The type of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// A symbolic link, stored, never followed.
    Symlink,
}

/// One entry as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEntry {
    /// Where it came from.
    pub kind: EntryKind,
    /// The original absolute path.
    pub source: String,
    /// The path inside the archive.
    pub path: String,
    /// File, folder or symlink.
    #[serde(rename = "type")]
    pub entry_type: EntryType,
    /// Content size in bytes (0 for folders and symlinks).
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime: i64,
    /// Hex blake3 of the content (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// The link target (symlinks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// How the content is held (behaviour §21): whole in this set (the default,
    /// and always in a full set), the same as the parent's, or as the
    /// blocks that changed.
    #[serde(default, skip_serializing_if = "Store::is_stored")]
    pub store: Store,
    /// The file's inode when it was read (files only), which the next
    /// incremental set compares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
    /// The file as fixed-size blocks, each with its blake3 (files of at
    /// least one block, in sets written with `[incremental]` on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Blocks>,
}

/// How an entry's content is held (behaviour §21).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    /// Whole, in this set's stream under its own path.
    #[default]
    Stored,
    /// Not in this set: identical to the parent's entry.
    Same,
    /// The blocks that differ from the parent's, in one entry under
    /// [`crate::BLOCKS_PREFIX`] followed by the path.
    Blocks,
}

impl Store {
    fn is_stored(&self) -> bool {
        *self == Store::Stored
    }
}

/// The byte range of block `index` of a `size`-byte file cut into blocks
/// of `block_size` (the last one may be shorter).
pub(crate) fn block_range(block_size: u64, index: u32, size: u64) -> std::ops::Range<u64> {
    let start = u64::from(index) * block_size;
    start.min(size)..(start + block_size).min(size)
}

/// A file as fixed-size blocks (behaviour §21).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocks {
    /// Bytes per block (the last block may be shorter).
    pub block_size: u64,
    /// Hex blake3 of every block, in order.
    pub hashes: Vec<String>,
    /// The blocks this set holds ([`Store::Blocks`] only), ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<u32>,
}

impl Blocks {
    /// The number of blocks of a `size`-byte file.
    pub fn count(size: u64, block_size: u64) -> u64 {
        size.div_ceil(block_size.max(1))
    }

    /// The byte range of block `index` of a `size`-byte file.
    pub fn range(&self, index: u32, size: u64) -> std::ops::Range<u64> {
        block_range(self.block_size, index, size)
    }
}

/// What the caller knows about the run; the writer adds the entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestHeader {
    /// Backup or log.
    pub kind: SetKind,
    /// The number in the file name.
    pub backup_number: BackupNumber,
    /// The data file's stem.
    pub base_name: String,
    /// The structure file's absolute path (the history key), or "".
    pub structure_path: String,
    /// The data file's absolute path.
    pub data_path: String,
    /// manual, api, scheduled, remote or automatic.
    pub trigger: String,
    /// When the run started.
    pub started_at: jiff::Timestamp,
    /// A digest of the settings used.
    pub settings_digest: String,
    /// The data's last applied log sequence, when a log is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_log_sequence: Option<u64>,
    /// Log backups: the first record's sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sequence: Option<u64>,
    /// Log backups: the last record's sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sequence: Option<u64>,
    /// An incremental set: the number of the set it builds on (behaviour §21).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<BackupNumber>,
    /// A set written with `[incremental]` on: its place in its chain, 0
    /// for the full set, 1 for the first incremental set on it, and so on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<u32>,
}

impl ManifestHeader {
    /// A header with the given identity; paths, trigger, digest and log
    /// sequences empty, to be filled with struct update syntax.
    pub fn new(
        kind: SetKind,
        backup_number: impl Into<BackupNumber>,
        base_name: &str,
        started_at: jiff::Timestamp,
    ) -> ManifestHeader {
        ManifestHeader {
            kind,
            backup_number: backup_number.into(),
            base_name: base_name.to_owned(),
            structure_path: String::new(),
            data_path: String::new(),
            trigger: String::new(),
            started_at,
            settings_digest: String::new(),
            last_log_sequence: None,
            first_sequence: None,
            last_sequence: None,
            parent: None,
            chain: None,
        }
    }
}

impl Manifest {
    /// The permissions of a set's files: those of the most private file it
    /// holds (the bits every file has), at most 0644 and at least the
    /// owner's read and write. A set holding a 0600 data file is 0600.
    pub fn set_mode(&self) -> u32 {
        self.entries
            .iter()
            .filter(|e| e.entry_type == EntryType::File)
            .fold(0o644, |mode, e| mode & e.mode)
            | 0o600
    }
}

/// The manifest as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always `sauve-archive`.
    pub format: String,
    /// Always 1.
    pub version: u32,
    /// The run.
    #[serde(flatten)]
    pub header: ManifestHeader,
    /// When the archive was finished.
    pub ended_at: jiff::Timestamp,
    /// Every entry, in stream order.
    pub entries: Vec<ManifestEntry>,
    /// The set ends with an index to this manifest (sets written since the
    /// index, `index.rs`): a set that says so and ends without one lost its
    /// end. Absent (false) in older sets.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub indexed: bool,
}
