//! `sauve-manifest.json`, the last entry of every set (behaviour §6.1).

use sauve_number::BackupNumber;
use serde::{Deserialize, Serialize};

use crate::kind::SetKind;

/// The manifest's entry name.
pub const MANIFEST_NAME: &str = "sauve-manifest.json";
/// The `format` value.
pub const FORMAT: &str = "sauve-archive";
/// The `version` value this crate writes: 2 since block hashes are
/// compact ([`BlockHashes`]).
pub const VERSION: u32 = 2;
/// The `version` values this crate reads: 1 is the format before compact
/// block hashes (every block's blake3 in hex), still read.
pub const VERSIONS: std::ops::RangeInclusive<u32> = 1..=VERSION;

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
    /// Every block's hash, in order.
    pub hashes: BlockHashes,
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

/// Every block's hash, in order: of each, the first 8 bytes of its blake3
/// (behaviour §21). A set's manifest stores them as one base64 string of
/// those bytes end to end, 8 bytes per block where hex took 64 characters;
/// manifests of version 1 list each block's blake3 in hex, of which the
/// first 8 bytes are kept, so that a new set compares its blocks with a
/// parent of either format.
///
/// 64 bits tell a changed block from an unchanged one; they are not what
/// proves a restore right: every file's whole blake3 is still recorded and
/// checked after a restore (SECURITY.md says what a crafted collision
/// can and cannot do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockHashes(Vec<u64>);

impl BlockHashes {
    /// The hash of one block's bytes.
    pub fn of(bytes: &[u8]) -> u64 {
        compact(blake3::hash(bytes))
    }

    /// The number of blocks.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Block `index`'s hash.
    pub fn get(&self, index: usize) -> Option<u64> {
        self.0.get(index).copied()
    }

    /// Every hash, in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().copied()
    }
}

impl From<Vec<u64>> for BlockHashes {
    fn from(hashes: Vec<u64>) -> BlockHashes {
        BlockHashes(hashes)
    }
}

/// A block's compact hash: the first 8 bytes of its blake3.
pub(crate) fn compact(hash: blake3::Hash) -> u64 {
    let bytes = hash.as_bytes();
    u64::from_le_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
    ])
}

impl Serialize for BlockHashes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&encode_words(&self.0))
    }
}

/// `words` as one base64 string of their little-endian bytes end to end,
/// encoded 3 words (24 bytes, 32 characters) at a time, so that no second
/// copy of them is made.
fn encode_words(words: &[u64]) -> String {
    use base64::Engine;
    let engine = &base64::engine::general_purpose::STANDARD;
    let mut text = String::with_capacity(words.len().div_ceil(3) * 32);
    for group in words.chunks(3) {
        let mut bytes = [0u8; 24];
        for (i, h) in group.iter().enumerate() {
            bytes[8 * i..8 * i + 8].copy_from_slice(&h.to_le_bytes());
        }
        engine.encode_string(&bytes[..8 * group.len()], &mut text);
    }
    text
}

/// The words [`encode_words`] wrote; the error says what is wrong with
/// the text (`what`: what the words are, for the message).
fn decode_words(text: &str, what: &str) -> Result<Vec<u64>, String> {
    use base64::Engine;
    let engine = &base64::engine::general_purpose::STANDARD;
    // 32 characters are 3 whole words; only the last group is shorter.
    let mut words = Vec::with_capacity(text.len() / 32 * 3 + 3);
    let mut bytes = [0u8; 24];
    for group in text.as_bytes().chunks(32) {
        let n = engine
            .decode_slice(group, &mut bytes)
            .map_err(|e| format!("{what} are not valid base64 ({e})"))?;
        if n % 8 != 0 {
            return Err(format!(
                "{what} of {n} bytes in a group (accepted: 8 bytes each)"
            ));
        }
        words.extend(
            bytes[..n]
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
        );
    }
    Ok(words)
}

impl<'de> Deserialize<'de> for BlockHashes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<BlockHashes, D::Error> {
        deserializer.deserialize_any(HashesVisitor)
    }
}

struct HashesVisitor;

impl<'de> serde::de::Visitor<'de> for HashesVisitor {
    type Value = BlockHashes;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a base64 string of 8 bytes per block, or a list of hex blake3 (version 1)")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<BlockHashes, E> {
        decode_words(text, "block hashes")
            .map(BlockHashes)
            .map_err(E::custom)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<BlockHashes, A::Error> {
        use serde::de::Error;
        let mut hashes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(hex) = seq.next_element::<std::borrow::Cow<'de, str>>()? {
            let hash = blake3::Hash::from_hex(hex.as_bytes()).map_err(|e| {
                A::Error::custom(format_args!("block hash {hex:?} is not a hex blake3 ({e})"))
            })?;
            hashes.push(compact(hash));
        }
        Ok(BlockHashes(hashes))
    }
}

/// Where a set's content lies in its bytes, so that a reader can read the
/// parts it needs alone (behaviour §21.2): written by sets since ranged
/// restores, absent from older ones (which are read through). Nothing in
/// it is trusted: a reader checks it against the set's length before use,
/// and every byte read through it against the hashes the manifest lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layout {
    /// Per entry of the manifest, in order: the offset in the tar stream
    /// of its content (of its blocks entry, head first, for a
    /// [`Store::Blocks`] file); [`Layout::NONE`] for an entry with none here
    /// (a folder, a link, a file the same as the parent's).
    pub content: Words,
    /// Whether the set's stream is zstd frames; else it is a plain tar
    /// stream, whose offsets are the set's.
    pub compressed: bool,
    /// Pairs of offsets, (in the tar stream, in the set's bytes, its
    /// segments end to end): where each zstd frame starts, then where the
    /// manifest's frame starts; for a stream that is not compressed, the
    /// single pair of the manifest's tar header.
    pub frames: Words,
}

impl Layout {
    /// The content offset of an entry that has none in this set.
    pub const NONE: u64 = u64::MAX;

    /// `frames` as pairs (a word left over is not one).
    pub fn pairs(&self) -> Vec<(u64, u64)> {
        self.frames
            .0
            .chunks_exact(2)
            .map(|w| (w[0], w[1]))
            .collect()
    }
}

/// Offsets, stored as one base64 string of 8 little-endian bytes each (as
/// [`BlockHashes`] are).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Words(pub Vec<u64>);

impl Serialize for Words {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&encode_words(&self.0))
    }
}

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Words, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        decode_words(&text, "offsets")
            .map(Words)
            .map_err(serde::de::Error::custom)
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
    /// [`VERSION`] when written; one of [`VERSIONS`] when read.
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
    /// Where each entry's content and each frame are in the set's bytes
    /// (sets written since ranged restores; `None` in older sets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use proptest::prelude::*;

    fn blocks_json(hashes: &BlockHashes) -> String {
        serde_json::to_string(hashes).unwrap()
    }

    proptest! {
        /// Any block map reads back as it was written, whatever its length
        /// (the encoding works 3 hashes at a time).
        #[test]
        fn block_hashes_read_back_as_written(hashes in proptest::collection::vec(any::<u64>(), 0..40)) {
            let hashes = BlockHashes::from(hashes);
            let back: BlockHashes = serde_json::from_str(&blocks_json(&hashes)).unwrap();
            prop_assert_eq!(back, hashes);
        }
    }

    #[test]
    fn block_hashes_are_stored_as_the_base64_of_their_little_endian_bytes() {
        // The format itself, pinned: sets already written must read the same.
        let hashes = BlockHashes::from(vec![1, 0x0102_0304_0506_0708, u64::MAX, 0]);
        assert_eq!(
            blocks_json(&hashes),
            r#""AQAAAAAAAAAIBwYFBAMCAf//////////AAAAAAAAAAA=""#
        );
        let back: BlockHashes =
            serde_json::from_str(r#""AQAAAAAAAAAIBwYFBAMCAf//////////AAAAAAAAAAA=""#).unwrap();
        assert_eq!(back, hashes);
    }

    #[test]
    fn version_1_hex_hashes_keep_their_first_8_bytes() {
        let data = [b"first block".as_slice(), b"second"];
        let hex: Vec<String> = data
            .iter()
            .map(|d| blake3::hash(d).to_hex().to_string())
            .collect();
        let back: BlockHashes = serde_json::from_value(serde_json::json!(hex)).unwrap();
        assert_eq!(back.len(), 2);
        for (i, d) in data.iter().enumerate() {
            assert_eq!(back.get(i), Some(BlockHashes::of(d)));
        }
    }

    #[test]
    fn a_block_map_that_is_not_one_is_refused_naming_what_is_accepted() {
        for (json, says) in [
            (r#""not base64!""#, "not valid base64"),
            // 4 bytes: half a hash.
            (r#""AAAAAA==""#, "accepted: 8 bytes each"),
            (r#"["abc"]"#, "not a hex blake3"),
            ("7", "a base64 string of 8 bytes per block"),
        ] {
            let err = serde_json::from_str::<BlockHashes>(json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{json}: {err}");
        }
    }

    #[test]
    fn a_block_map_is_at_most_a_thousandth_of_the_file_it_describes() {
        // 1 GiB at 16 KiB: 65,536 blocks, in the manifest's own encoding.
        let size = 1u64 << 30;
        let block_size = crate::incremental::block_size_for(size);
        let count = Blocks::count(size, block_size) as usize;
        let blocks = Blocks {
            block_size,
            hashes: BlockHashes::from(
                (0..count as u64)
                    .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                    .collect::<Vec<_>>(),
            ),
            changed: Vec::new(),
        };
        let json = serde_json::to_vec_pretty(&blocks).unwrap();
        assert!(
            (json.len() as u64) * 1000 <= size,
            "{} bytes of block map for {size}",
            json.len()
        );
    }
}
