//! What every reader of a set stands on: where its segments come from
//! ([`SegmentSource`]), the bounds of what sauve writes, and how a tar
//! header and a manifest are recognised. The stream reader (`reader.rs`)
//! and the index (`index.rs`) both build on it.

use std::io::{self, Read};

use crate::error::ArchiveError;
use crate::kind::SetKind;
use crate::manifest::{FORMAT, Manifest, VERSIONS};

/// How a zstd frame starts.
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// A manifest larger than this is not one sauve wrote.
pub(crate) const MANIFEST_LIMIT: u64 = 1 << 30;
/// What may follow the end-of-archive marker: the rest of its blocks and
/// the index ([`crate::index`]); more is not a set sauve wrote.
pub(crate) const TAIL_LIMIT: u64 = 64 << 10;

/// Where a set's segments are read from: files, or objects of a store.
pub trait SegmentSource {
    /// The segments' names, in stream order (for messages).
    fn names(&self) -> Vec<String>;
    /// Opens segment `index` for reading from its start.
    fn open(&self, index: usize) -> io::Result<Box<dyn Read + '_>>;
    /// The segments' lengths, when each can be read from any offset
    /// ([`SegmentSource::open_at`]) without reading what comes before:
    /// the set's index is then read first (its `index` module). `None` (the
    /// default): the set is only read from its start.
    fn lengths(&self) -> Option<Vec<u64>> {
        None
    }
    /// Opens segment `index` for reading from byte `offset`.
    fn open_at(&self, index: usize, offset: u64) -> io::Result<Box<dyn Read + '_>> {
        let mut r = self.open(index)?;
        io::copy(&mut (&mut r).take(offset), &mut io::sink())?;
        Ok(r)
    }
    /// Opens segment `index` for reading the bytes of `range` alone. A
    /// source that reads ahead starts reading them now (a store asks for
    /// them at once), so that ranges opened one after another are read
    /// at the same time.
    fn open_range(
        &self,
        index: usize,
        range: std::ops::Range<u64>,
    ) -> io::Result<Box<dyn Read + '_>> {
        let len = range.end.saturating_sub(range.start);
        Ok(Box::new(self.open_at(index, range.start)?.take(len)))
    }
}

/// Reads at most `len` bytes of a manifest from `r` (fewer at its end), into
/// a vector that doubles as they arrive but never past `len`, so that it
/// ends at exactly their size: never sized from a header or an index alone,
/// and never twice the manifest, as a vector doubled freely would be (a
/// 64 GiB file's block map is 43 MiB of JSON).
pub(crate) fn read_manifest_bytes(r: &mut dyn Read, len: u64) -> io::Result<Vec<u8>> {
    const STEP: u64 = 1 << 20;
    let mut json: Vec<u8> = Vec::new();
    let mut left = len;
    while left > 0 {
        let want = left.min(STEP) as usize;
        let at = json.len();
        if json.capacity() < at + want {
            let grown = (json.capacity() as u64 * 2).max(STEP).min(len) as usize;
            json.reserve_exact(grown.max(at + want) - at);
        }
        json.resize(at + want, 0);
        let mut filled = 0;
        while filled < want {
            match r.read(&mut json[at + filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        json.truncate(at + filled);
        if filled < want {
            break;
        }
        left -= want as u64;
    }
    Ok(json)
}

/// A backup set's manifest kept in a file of its own (the copy a bucket
/// destination whose sets are encrypted keeps beside its records, behaviour
/// §21.1), read within a manifest's bound and checked as one read from a set.
pub fn read_manifest_file(path: &std::path::Path) -> Result<Manifest, ArchiveError> {
    let cannot = |e: io::Error| ArchiveError::Io {
        action: "cannot read",
        path: path.to_path_buf(),
        source: e,
    };
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    let json = read_manifest_bytes(&mut file, MANIFEST_LIMIT + 1).map_err(cannot)?;
    if json.len() as u64 > MANIFEST_LIMIT {
        return Err(ArchiveError::corrupt(
            SetKind::Backup,
            format!(
                "{} holds more than a manifest (accepted: at most {MANIFEST_LIMIT} bytes)",
                path.display()
            ),
        ));
    }
    parse_manifest(SetKind::Backup, &json)
}

/// A manifest's JSON, parsed and checked: its format and version, and
/// that restoring what it lists is safe ([`crate::safety`]).
pub(crate) fn parse_manifest(kind: SetKind, json: &[u8]) -> Result<Manifest, ArchiveError> {
    let m: Manifest = serde_json::from_slice(json)
        .map_err(|e| ArchiveError::corrupt(kind, format!("the manifest is not valid: {e}")))?;
    if m.format != FORMAT || !VERSIONS.contains(&m.version) {
        return Err(ArchiveError::corrupt(
            kind,
            format!(
                "manifest format {} version {} (accepted: {FORMAT} versions {} to {})",
                m.format,
                m.version,
                VERSIONS.start(),
                VERSIONS.end()
            ),
        ));
    }
    crate::safety::check_manifest(&m)?;
    Ok(m)
}

pub(crate) fn tar_checksum_ok(block: &[u8]) -> bool {
    if block.iter().all(|&b| b == 0) {
        return false;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(b)
            }
        })
        .sum();
    stored == Some(sum)
}
