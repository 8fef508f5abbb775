//! Incremental sets (behaviour §21): what a writer compares with the parent, the
//! layout of a blocks entry, and how a chain of sets resolves back to its
//! full set.
//!
//! A blocks entry is stored under [`BLOCKS_PREFIX`] followed by the file's
//! path, so that `tar -x` of an incremental set never writes a file that
//! holds only some of its blocks. Its content is a head (magic, block size,
//! file size, the block indices) and then those blocks, in order.

use sauve_number::BackupNumber;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::sync::Arc;

use crate::error::ArchiveError;
use crate::kind::SetKind;
use crate::manifest::{
    BlockHashes, Blocks, EntryType, Manifest, ManifestEntry, Store, block_range, compact,
};

/// Where the blocks entry of a file is stored in the stream.
pub const BLOCKS_PREFIX: &str = ".sauve-blocks/";

const MAGIC: &[u8; 8] = b"SAUVEBLK";
/// Smallest and largest block sizes a head may declare.
pub(crate) const BLOCK_SIZES: std::ops::RangeInclusive<u64> = 4096..=(1 << 30);
/// The most blocks one blocks entry may hold.
const MAX_HELD_BLOCKS: u32 = 1 << 24;

/// The smallest block [`block_size_for`] chooses: with 1% of a data file's
/// 4 KiB pages changed at random, 1 − 0.99⁴ ≈ 3.9% of 16 KiB blocks
/// change (at 32 KiB, 7.7%), and 8 bytes of hash per 16 KiB keep the
/// block map at 0.05% of the data.
pub const AUTO_BLOCK: u64 = 16 << 10;
/// The most blocks [`block_size_for`] gives a file: 4 Mi blocks, 32 MiB of
/// hashes, is a 64 GiB file at [`AUTO_BLOCK`]; a larger file gets larger
/// blocks, so that a writer's memory stays bounded.
pub const AUTO_MAX_BLOCKS: u64 = 1 << 22;

/// The block size for a file of `size` bytes when `block_kib` is not set
/// (behaviour §21): [`AUTO_BLOCK`], doubled for files past
/// [`AUTO_MAX_BLOCKS`] of it.
pub fn block_size_for(size: u64) -> u64 {
    let mut block = AUTO_BLOCK;
    while Blocks::count(size, block) > AUTO_MAX_BLOCKS && block < *BLOCK_SIZES.end() {
        block *= 2;
    }
    block
}

/// How a writer builds its set when `[incremental]` is on (behaviour §21).
#[derive(Clone, Debug)]
pub struct Incremental {
    /// Bytes per block: files of at least one block get block hashes.
    /// `None` chooses it for each file: the parent's block size for the
    /// file, so that a chain keeps comparing its blocks, or else
    /// [`block_size_for`] its size.
    pub block_size: Option<u64>,
    /// Also compare the content's blake3 of files whose size, time and
    /// inode are unchanged.
    pub verify_unchanged: bool,
    /// The set this one builds on; `None` for the full set of a chain.
    pub parent: Option<Arc<Manifest>>,
}

/// The head of a blocks entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BlocksHead {
    pub(crate) block_size: u64,
    /// The whole file's size.
    pub(crate) size: u64,
    /// The blocks that follow, ascending.
    pub(crate) indices: Vec<u32>,
}

impl BlocksHead {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + 4 * self.indices.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.block_size.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&(self.indices.len() as u32).to_le_bytes());
        for i in &self.indices {
            out.extend_from_slice(&i.to_le_bytes());
        }
        out
    }

    /// The byte range in the file of block `index`.
    pub(crate) fn range(&self, index: u32) -> std::ops::Range<u64> {
        block_range(self.block_size, index, self.size)
    }

    /// The whole entry's length.
    pub(crate) fn entry_len(&self) -> u64 {
        entry_len(self.block_size, self.size, &self.indices)
    }

    /// Reads and checks a head; the error says what is wrong with it.
    fn read(content: &mut dyn Read, entry_len: u64) -> Result<BlocksHead, HeadError> {
        let mut fixed = [0u8; 28];
        content.read_exact(&mut fixed).map_err(HeadError::Stream)?;
        if &fixed[..8] != MAGIC {
            return Err(HeadError::Bad("it does not start with SAUVEBLK".into()));
        }
        let word = |at: usize| u64::from_le_bytes(fixed[at..at + 8].try_into().unwrap_or([0; 8]));
        let block_size = word(8);
        let size = word(16);
        let count = u32::from_le_bytes(fixed[24..28].try_into().unwrap_or([0; 4]));
        if !BLOCK_SIZES.contains(&block_size) {
            return Err(HeadError::Bad(format!(
                "block size {block_size} (accepted: 4 KiB to 1 GiB)"
            )));
        }
        let blocks = Blocks::count(size, block_size);
        // Bounded before anything is allocated: 2^24 blocks (64 MiB of
        // indices) is 64 GiB at the smallest block, far past what one set's
        // changes hold; a head claiming more is not sauve's.
        if count > MAX_HELD_BLOCKS {
            return Err(HeadError::Bad(format!(
                "{count} blocks held (accepted: at most {MAX_HELD_BLOCKS})"
            )));
        }
        if u64::from(count) > blocks || 28 + 4 * u64::from(count) > entry_len {
            return Err(HeadError::Bad(format!(
                "{count} blocks for a file of {blocks}"
            )));
        }
        let mut raw = vec![0u8; 4 * count as usize];
        content.read_exact(&mut raw).map_err(HeadError::Stream)?;
        let indices: Vec<u32> = raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if indices.windows(2).any(|w| w[0] >= w[1])
            || indices.last().is_some_and(|&i| u64::from(i) >= blocks)
        {
            return Err(HeadError::Bad(
                "its block numbers are not ascending within the file".into(),
            ));
        }
        let head = BlocksHead {
            block_size,
            size,
            indices,
        };
        if head.entry_len() != entry_len {
            return Err(HeadError::Bad(format!(
                "{entry_len} bytes where its head says {}",
                head.entry_len()
            )));
        }
        Ok(head)
    }
}

/// A head's length, for `indices`.
pub(crate) fn head_len(indices: &[u32]) -> u64 {
    28 + 4 * indices.len() as u64
}

/// The length of the blocks entry that holds blocks `indices` of a file of
/// `size` bytes in blocks of `block_size`: its head, then those blocks.
pub(crate) fn entry_len(block_size: u64, size: u64, indices: &[u32]) -> u64 {
    let payload: u64 = indices
        .iter()
        .map(|&i| {
            let r = block_range(block_size, i, size);
            r.end - r.start
        })
        .sum();
    head_len(indices) + payload
}

/// Why a blocks entry could not be read.
pub(crate) enum HeadError {
    /// The stream itself failed.
    Stream(io::Error),
    /// The head is not one sauve writes.
    Bad(String),
}

/// Reads a blocks entry: its head, then each block handed to `each` with
/// its index and byte offset in the file. Returns the head and every
/// block's hash.
pub(crate) fn read_blocks(
    content: &mut dyn Read,
    entry_len: u64,
    mut each: impl FnMut(u32, u64, &[u8]) -> Result<(), ArchiveError>,
) -> Result<(BlocksHead, Vec<(u32, u64)>), BlocksReadError> {
    let head = BlocksHead::read(content, entry_len).map_err(|e| match e {
        HeadError::Stream(e) => BlocksReadError::Stream(e),
        HeadError::Bad(why) => BlocksReadError::Bad(why),
    })?;
    let mut buf = vec![0u8; head.block_size.min(1 << 24) as usize];
    let mut hashes = Vec::with_capacity(head.indices.len());
    for &i in &head.indices {
        let range = head.range(i);
        let mut hasher = blake3::Hasher::new();
        let mut at = range.start;
        while at < range.end {
            let n = ((range.end - at) as usize).min(buf.len());
            content
                .read_exact(&mut buf[..n])
                .map_err(BlocksReadError::Stream)?;
            hasher.update(&buf[..n]);
            each(i, at, &buf[..n]).map_err(BlocksReadError::Other)?;
            at += n as u64;
        }
        hashes.push((i, compact(hasher.finalize())));
    }
    Ok((head, hashes))
}

/// Why [`read_blocks`] stopped.
pub(crate) enum BlocksReadError {
    Stream(io::Error),
    Bad(String),
    Other(ArchiveError),
}

/// Hashes a stream as blocks of a given size, fed in any pieces.
pub(crate) struct BlockHasher {
    size: u64,
    current: blake3::Hasher,
    filled: u64,
    hashes: Vec<u64>,
}

impl BlockHasher {
    /// Blocks of `size` bytes of a file of `expected` bytes, whose hashes
    /// are kept in one allocation of the right size (a vector grown by
    /// doubling would hold twice the hashes of a large file at its peak).
    pub(crate) fn new(size: u64, expected: u64) -> BlockHasher {
        let blocks = Blocks::count(expected, size).min(u64::from(MAX_HELD_BLOCKS));
        BlockHasher {
            size,
            current: blake3::Hasher::new(),
            filled: 0,
            hashes: Vec::with_capacity(blocks as usize),
        }
    }

    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = ((self.size - self.filled) as usize).min(bytes.len());
            self.current.update(&bytes[..take]);
            self.filled += take as u64;
            bytes = &bytes[take..];
            if self.filled == self.size {
                self.push();
            }
        }
    }

    fn push(&mut self) {
        self.hashes.push(compact(self.current.finalize()));
        self.current = blake3::Hasher::new();
        self.filled = 0;
    }

    pub(crate) fn finish(mut self) -> BlockHashes {
        if self.filled > 0 {
            self.push();
        }
        self.hashes.into()
    }
}

/// What a restore or a verify still needs of one file from the older sets
/// of a chain.
#[derive(Clone, Debug)]
pub(crate) enum Need {
    /// The whole file, with this blake3.
    Whole { blake3: Option<String> },
    /// These blocks of the file.
    Blocks {
        blocks: Blocks,
        unfilled: BTreeSet<u32>,
    },
}

impl Need {
    /// What `e`, the file's entry (of `size` bytes) in the older set the
    /// newer one builds on, gives of it, and whether nothing is needed of
    /// older sets any more; the need is left as it stands after that set.
    /// Err: how the entry differs from what is needed.
    fn given_by(
        &mut self,
        size: u64,
        e: &ManifestEntry,
    ) -> Result<(Option<Supply>, bool), &'static str> {
        if e.entry_type != EntryType::File {
            return Err("is not a file");
        }
        match self {
            Need::Whole { blake3 } => {
                if e.size != size || e.blake3 != *blake3 {
                    return Err("has another size or checksum");
                }
                match (e.store, &e.blocks) {
                    (Store::Stored, _) => Ok((Some(Supply::Whole), true)),
                    (Store::Same, _) => Ok((None, false)),
                    (Store::Blocks, Some(b)) => {
                        let take = b.changed.iter().copied().collect();
                        *self = Need::Blocks {
                            blocks: b.clone(),
                            unfilled: unfilled(b, e.size),
                        };
                        Ok((Some(Supply::Blocks { take, first: true }), false))
                    }
                    (Store::Blocks, None) => Err("lists no blocks"),
                }
            }
            Need::Blocks { blocks, unfilled } => {
                let b = e.blocks.as_ref().ok_or("lists no blocks")?;
                if b.block_size != blocks.block_size
                    || unfilled
                        .iter()
                        .any(|&i| b.hashes.get(i as usize) != blocks.hashes.get(i as usize))
                {
                    return Err("has other blocks");
                }
                match e.store {
                    Store::Stored => {
                        let take = std::mem::take(unfilled);
                        let block_size = blocks.block_size;
                        Ok((Some(Supply::Rest { take, block_size }), true))
                    }
                    Store::Same => Ok((None, false)),
                    Store::Blocks => {
                        let take: BTreeSet<u32> = b
                            .changed
                            .iter()
                            .copied()
                            .filter(|i| unfilled.remove(i))
                            .collect();
                        let supply =
                            (!take.is_empty()).then_some(Supply::Blocks { take, first: false });
                        Ok((supply, unfilled.is_empty()))
                    }
                }
            }
        }
    }
}

/// What one older set of a chain gives a file that newer sets need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Supply {
    /// The file whole, stored in this set.
    Whole,
    /// These blocks, from this set's blocks entry of the file; `first` when
    /// no newer set holds any of the file (these are the first written).
    Blocks { take: BTreeSet<u32>, first: bool },
    /// The file stored whole in this set, of which these blocks are still
    /// needed: newer sets hold the others.
    Rest {
        take: BTreeSet<u32>,
        block_size: u64,
    },
}

impl Supply {
    /// How many blocks it gives (`None`: the file whole).
    pub(crate) fn blocks(&self) -> Option<usize> {
        match self {
            Supply::Whole => None,
            Supply::Blocks { take, .. } | Supply::Rest { take, .. } => Some(take.len()),
        }
    }
}

/// What the newest set of a chain needs of the sets it builds on.
#[derive(Debug)]
pub(crate) struct Needs {
    base: String,
    /// Path → (the file's size, what is still needed).
    pub(crate) files: BTreeMap<String, (u64, Need)>,
    /// The set the needs were last resolved against.
    newer: BackupNumber,
    /// The next link, if any.
    pub(crate) parent: Option<BackupNumber>,
}

impl Needs {
    /// What `manifest`'s files need of older sets.
    pub(crate) fn of(manifest: &Manifest) -> Needs {
        let mut files = BTreeMap::new();
        for e in &manifest.entries {
            if e.entry_type != EntryType::File {
                continue;
            }
            match (e.store, &e.blocks) {
                (Store::Same, _) => {
                    files.insert(
                        e.path.clone(),
                        (
                            e.size,
                            Need::Whole {
                                blake3: e.blake3.clone(),
                            },
                        ),
                    );
                }
                (Store::Blocks, Some(b)) => {
                    let unfilled = unfilled(b, e.size);
                    if !unfilled.is_empty() {
                        files.insert(
                            e.path.clone(),
                            (
                                e.size,
                                Need::Blocks {
                                    blocks: b.clone(),
                                    unfilled,
                                },
                            ),
                        );
                    }
                }
                _ => {}
            }
        }
        Needs {
            base: manifest.header.base_name.clone(),
            files,
            newer: manifest.header.backup_number,
            parent: manifest.header.parent,
        }
    }

    /// The set the needs were last resolved against.
    pub(crate) fn newer(&self) -> BackupNumber {
        self.newer
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The set name `number` has in this chain.
    pub(crate) fn name(&self, number: BackupNumber) -> String {
        format!("{}[{}]", self.base, number.text())
    }

    /// Resolves what is needed against `link`, the older set the newer one
    /// builds on: what it holds is no longer needed, what it has the same
    /// is needed of its own parent. Every needed file must be in `link`
    /// with the same size and hashes. Returns what `link` supplies: each
    /// file it holds content of, its size, and what of it `link` gives (the
    /// blocks two sets give are never the same).
    pub(crate) fn resolve(
        &mut self,
        link: &Manifest,
    ) -> Result<Vec<(String, u64, Supply)>, ArchiveError> {
        let newer = self.name(self.newer);
        let here = self.name(link.header.backup_number);
        // The link must be the set asked for: its number is the parent's,
        // strictly older than the set built on it (so a chain always ends,
        // whatever its manifests say), and its base the same.
        let asked = self.parent.unwrap_or(BackupNumber::NONE);
        if link.header.backup_number != asked
            || link.header.backup_number >= self.newer
            || link.header.base_name != self.base
        {
            return Err(ArchiveError::corrupt(
                SetKind::Backup,
                format!(
                    "{newer} builds on {}, whose manifest says it is {here} of {:?} (accepted: the set it builds on, older than it)",
                    self.name(asked),
                    link.header.base_name
                ),
            ));
        }
        let by_path: BTreeMap<&str, &ManifestEntry> =
            link.entries.iter().map(|e| (e.path.as_str(), e)).collect();
        let mut done = Vec::new();
        let mut supplied = Vec::new();
        for (path, (size, need)) in &mut self.files {
            let (supply, whole) = by_path
                .get(path.as_str())
                .ok_or("is missing")
                .and_then(|e| need.given_by(*size, e))
                .map_err(|what| {
                    ArchiveError::corrupt(
                        SetKind::Backup,
                        format!("entry {path} of {newer} builds on {here}, whose entry {what}"),
                    )
                })?;
            if let Some(supply) = supply {
                supplied.push((path.clone(), *size, supply));
            }
            if whole {
                done.push(path.clone());
            }
        }
        for path in done {
            self.files.remove(&path);
        }
        if let Some((path, _)) = self.files.iter().next()
            && link.header.parent.is_none()
        {
            return Err(ArchiveError::corrupt(
                SetKind::Backup,
                format!("entry {path} of {newer} is not held by {here}, the full set of its chain"),
            ));
        }
        self.newer = link.header.backup_number;
        self.parent = link.header.parent;
        Ok(supplied)
    }
}

/// The blocks of a [`Store::Blocks`] file that its set does not hold.
fn unfilled(b: &Blocks, size: u64) -> BTreeSet<u32> {
    let count = Blocks::count(size, b.block_size) as u32;
    let held: BTreeSet<u32> = b.changed.iter().copied().collect();
    (0..count).filter(|i| !held.contains(i)).collect()
}

/// The error of a chain whose next link is not there (1410).
pub(crate) fn missing_link(newer: &str, parent: &str, folder: &std::path::Path) -> ArchiveError {
    ArchiveError::Missing {
        kind: SetKind::Backup,
        what: format!(
            "{newer} is an incremental set built on {parent}, which is not in \"{}\" (an incremental set needs every set of its chain back to its full set)",
            folder.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(number: u32, parent: Option<u32>, base: &str) -> Manifest {
        let e = crate::manifest::ManifestEntry {
            kind: crate::manifest::EntryKind::Data,
            source: String::new(),
            path: "Data/App.4DD".to_owned(),
            entry_type: EntryType::File,
            size: 1,
            mode: 0o600,
            mtime: 0,
            blake3: Some("0".repeat(64)),
            target: None,
            store: if parent.is_some() {
                Store::Same
            } else {
                Store::Stored
            },
            inode: None,
            blocks: None,
        };
        Manifest {
            format: crate::manifest::FORMAT.to_owned(),
            version: crate::manifest::VERSION,
            header: crate::manifest::ManifestHeader {
                parent: parent.map(Into::into),
                ..crate::manifest::ManifestHeader::new(
                    SetKind::Backup,
                    number,
                    base,
                    jiff::Timestamp::UNIX_EPOCH,
                )
            },
            ended_at: jiff::Timestamp::UNIX_EPOCH,
            entries: vec![e],
            indexed: false,
            layout: None,
        }
    }

    #[test]
    fn a_link_must_be_the_older_set_asked_for_so_every_chain_ends() {
        // Found in review: App[0005].4BK holding a manifest of set 9 on 7,
        // and App[0007].4BK one of set 8 on 5, made every walk of the
        // chain loop for ever.
        let newest = manifest(10, Some(5), "App");
        for (link, why) in [
            (
                manifest(9, Some(7), "App"),
                "whose manifest says it is App[0009]",
            ),
            (manifest(5, Some(7), "Other"), "of \"Other\""),
            (manifest(12, None, "App"), "App[0012]"),
        ] {
            let mut needs = Needs::of(&newest);
            let err = needs.resolve(&link).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        let mut needs = Needs::of(&newest);
        needs.resolve(&manifest(5, None, "App")).unwrap();
        assert!(needs.is_empty());
    }

    #[test]
    fn a_head_reads_back_and_bad_heads_are_refused() {
        let head = BlocksHead {
            block_size: 4096,
            size: 3 * 4096 + 10,
            indices: vec![1, 3],
        };
        let mut bytes = head.encode();
        bytes.extend(std::iter::repeat_n(7u8, 4096 + 10));
        let len = bytes.len() as u64;
        assert_eq!(len, head.entry_len());
        let mut seen = Vec::new();
        let (back, hashes) = read_blocks(&mut bytes.as_slice(), len, |i, at, b| {
            seen.push((i, at, b.len()));
            Ok(())
        })
        .ok()
        .expect("reads");
        assert_eq!(back, head);
        assert_eq!(seen, [(1, 4096, 4096), (3, 3 * 4096, 10)]);
        assert_eq!(hashes.len(), 2);

        let bad = |bytes: &[u8], len: u64| match read_blocks(&mut &bytes[..], len, |_, _, _| Ok(()))
        {
            Err(BlocksReadError::Bad(why)) => why,
            _ => panic!("accepted"),
        };
        let mut descending = head.clone();
        descending.indices = vec![3, 1];
        let mut d = descending.encode();
        d.extend(std::iter::repeat_n(0u8, 4096 + 10));
        assert!(bad(&d, len).contains("ascending"));
        assert!(bad(&bytes, len + 1).contains("head says"));
        let mut magic = bytes.clone();
        magic[0] = b'X';
        assert!(bad(&magic, len).contains("SAUVEBLK"));
        // Found in review: a head of 2^32-1 blocks of a huge file allocated
        // 16 GiB before anything else was read.
        let huge = BlocksHead {
            block_size: 4096,
            size: 1 << 50,
            indices: Vec::new(),
        };
        let mut h = huge.encode();
        h[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(bad(&h, u64::MAX).contains("blocks held (accepted: at most 16777216)"));
    }

    #[test]
    fn block_hashes_do_not_depend_on_how_the_bytes_arrive() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let mut one = BlockHasher::new(4096, data.len() as u64);
        one.update(&data);
        let mut many = BlockHasher::new(4096, 0);
        for piece in data.chunks(777) {
            many.update(piece);
        }
        let one = one.finish();
        assert_eq!(one, many.finish());
        assert_eq!(one.len(), 5);
        assert_eq!(one.get(4), Some(BlockHashes::of(&data[4 * 4096..])));
    }

    proptest::proptest! {
        /// The block size chosen from a file's size: at least 16 KiB, a
        /// power of two, at most 4 Mi blocks for any file sauve may hold;
        /// up to 64 GiB, small enough that 1% of the file's 4 KiB pages
        /// changed at random touch at most 5% of its blocks.
        #[test]
        fn a_chosen_block_size_fits_the_file(size in 0u64..(1 << 52)) {
            let block = block_size_for(size);
            proptest::prop_assert!(block >= AUTO_BLOCK && block.is_power_of_two());
            proptest::prop_assert!(Blocks::count(size, block) <= AUTO_MAX_BLOCKS);
            if size <= 64 << 30 {
                // The chance a block holds none of the changed pages.
                let pages = (block / 4096) as i32;
                let touched = 1.0 - 0.99f64.powi(pages);
                proptest::prop_assert!(touched <= 0.05, "{} KiB: {:.3}", block >> 10, touched);
            }
        }
    }
}
