//! The index at the end of a set: where its manifest is, so that a reader
//! knows what a set holds before it reads (or writes) any of its content.
//!
//! The manifest is the stream's last entry, because it records the hashes
//! of everything before it. Since the index was added, the writer starts a
//! new zstd frame at the manifest's tar header and ends the set with 64
//! bytes that say where that header is:
//!
//! ```text
//! 0   u32 LE  0x184D2A5E   a zstd skippable frame: `zstd -d` and sauve's
//! 4   u32 LE  56           frame reader skip it; `tar` stops before it
//! 8   8 bytes "SAUVEIDX"
//! 16  u64 LE  at           offset of the manifest's region in the set's
//!                          bytes (its segments end to end): its tar header,
//!                          or the first zstd frame holding it
//! 24  u64 LE  json_len     the manifest's length, its tar entry's size
//! 32  32 bytes             the manifest's blake3
//! ```
//!
//! A reader that can read a set from any offset (files, unencrypted
//! objects of a store) reads these 64 bytes, then the manifest's region
//! alone, and checks the manifest's hash and safety before it trusts it.
//! The stream's own manifest must then be the same, byte for byte. A set
//! written before the index ends without one: a reader that needs the
//! manifest first finds it with a first pass through the stream.

use std::io::{self, Read};

use crate::error::ArchiveError;
use crate::kind::SetKind;
use crate::manifest::{MANIFEST_NAME, Manifest};
use crate::source::SegmentSource;

/// The index's length, at the very end of a set.
pub(crate) const LEN: usize = 64;
/// The skippable frame's magic (one of 0x184D2A50..=0x184D2A5F).
const MAGIC: u32 = 0x184D_2A5E;
const PAYLOAD: u32 = (LEN - 8) as u32;
const TAG: &[u8; 8] = b"SAUVEIDX";

/// Where a set's manifest is, and its hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Index {
    /// The offset of the manifest's region in the set's bytes.
    pub(crate) at: u64,
    /// The manifest's length in bytes.
    pub(crate) json_len: u64,
    /// The manifest's blake3.
    pub(crate) hash: [u8; 32],
}

impl Index {
    pub(crate) fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        out[4..8].copy_from_slice(&PAYLOAD.to_le_bytes());
        out[8..16].copy_from_slice(TAG);
        out[16..24].copy_from_slice(&self.at.to_le_bytes());
        out[24..32].copy_from_slice(&self.json_len.to_le_bytes());
        out[32..64].copy_from_slice(&self.hash);
        out
    }

    /// The index these bytes hold, if they are one; `None` for any other bytes.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Index> {
        let bytes: &[u8; LEN] = bytes.try_into().ok()?;
        let word = |at: usize| bytes[at..at + 4].try_into().ok().map(u32::from_le_bytes);
        let long = |at: usize| bytes[at..at + 8].try_into().ok().map(u64::from_le_bytes);
        if word(0)? != MAGIC || word(4)? != PAYLOAD || &bytes[8..16] != TAG {
            return None;
        }
        Some(Index {
            at: long(16)?,
            json_len: long(24)?,
            hash: bytes[32..64].try_into().ok()?,
        })
    }
}

/// The bytes before a trailing index: what follows the archive's end in
/// a plain stream (a compressed one skips it as a skippable frame).
pub(crate) fn strip(tail: &[u8]) -> &[u8] {
    match tail.len().checked_sub(LEN) {
        Some(cut) if Index::decode(&tail[cut..]).is_some() => &tail[..cut],
        _ => tail,
    }
}

/// What a set declares before it is read: its manifest and the manifest's
/// blake3 (found through its index, or by reading the set through).
#[derive(Debug)]
pub(crate) struct DeclaredSet {
    pub(crate) manifest: Manifest,
    pub(crate) hash: [u8; 32],
}

/// The manifest a set's index points to; `None` when the source cannot be
/// read from any offset or the set ends without an index (written before
/// it). An index that points to anything but a sound manifest of the right
/// hash is a damaged set.
pub(crate) fn locate(
    source: &dyn SegmentSource,
    kind: SetKind,
) -> Result<Option<DeclaredSet>, ArchiveError> {
    Ok(match locate_with(source, kind, true)? {
        Some((index, Some(manifest))) => Some(DeclaredSet {
            manifest,
            hash: index.hash,
        }),
        _ => None,
    })
}

/// The index at the end of a set, checked as [`locate`] checks it (it
/// points to the set's last entry, the manifest of its length and hash),
/// without keeping or parsing the manifest: what a set just written is
/// checked against before its commit.
pub(crate) fn check(
    source: &dyn SegmentSource,
    kind: SetKind,
) -> Result<Option<Index>, ArchiveError> {
    Ok(locate_with(source, kind, false)?.map(|(index, _)| index))
}

/// [`locate`], parsing the manifest found only when `parse`.
fn locate_with(
    source: &dyn SegmentSource,
    kind: SetKind,
    parse: bool,
) -> Result<Option<(Index, Option<Manifest>)>, ArchiveError> {
    let Some(lengths) = source.lengths() else {
        return Ok(None);
    };
    let total = lengths.iter().try_fold(0u64, |a, &b| a.checked_add(b));
    let Some(end) = total.and_then(|t| t.checked_sub(LEN as u64)) else {
        return Ok(None);
    };
    let bad = |what: String| ArchiveError::corrupt(kind, format!("the set's index {what}"));
    let cannot = |e: io::Error| bad(format!("cannot be read: {e}"));
    // The segment that holds byte `at` of the set, for messages.
    let names = source.names();
    let segment = |at: u64| {
        let mut start = 0u64;
        for (name, len) in names.iter().zip(&lengths) {
            if at < start + len {
                return format!("in segment {name}");
            }
            start += len;
        }
        String::from("past the last segment")
    };
    let mut raw = [0u8; LEN];
    Spans::new(source, &lengths, end)
        .map_err(cannot)?
        .read_exact(&mut raw)
        .map_err(cannot)?;
    let Some(index) = Index::decode(&raw) else {
        return Ok(None);
    };
    if index.at >= end {
        return Err(bad(format!(
            "points to byte {} of a set whose manifest must end by byte {end}: a segment is truncated or missing, or the index is damaged",
            index.at
        )));
    }
    if index.json_len > crate::source::MANIFEST_LIMIT {
        return Err(bad(format!(
            "declares a manifest of {} bytes (accepted: at most {})",
            index.json_len,
            crate::source::MANIFEST_LIMIT
        )));
    }
    let region = Spans::new(source, &lengths, index.at)
        .map_err(cannot)?
        .take(end - index.at);
    let mut region = io::BufReader::new(region);
    let head = io::BufRead::fill_buf(&mut region).map_err(cannot)?;
    let mut plain: Box<dyn Read> = if head.starts_with(&crate::source::ZSTD_MAGIC) {
        let mut d = zstd::stream::read::Decoder::with_buffer(region).map_err(cannot)?;
        d.window_log_max(27).map_err(cannot)?;
        Box::new(d)
    } else {
        Box::new(region)
    };
    let damaged = |e: io::Error| bad(format!("points to no readable manifest: {e}"));
    let mut header = [0u8; 512];
    plain.read_exact(&mut header).map_err(damaged)?;
    let h = tar::Header::from_byte_slice(&header);
    let is_manifest = crate::source::tar_checksum_ok(&header)
        && h.entry_type() == tar::EntryType::Regular
        && &*h.path_bytes() == MANIFEST_NAME.as_bytes()
        && h.size().ok() == Some(index.json_len);
    if !is_manifest {
        return Err(bad(format!(
            "points to something other than the {}-byte {MANIFEST_NAME} (byte {}, {}): a segment is truncated or damaged, or the index is",
            index.json_len,
            index.at,
            segment(index.at)
        )));
    }
    // Hashed as it is read; kept only to be parsed.
    let json = if parse {
        Some(crate::source::read_manifest_bytes(&mut plain, index.json_len).map_err(damaged)?)
    } else {
        None
    };
    let hash = match &json {
        Some(json) => *blake3::hash(json).as_bytes(),
        None => {
            let mut hasher = blake3::Hasher::new();
            io::copy(&mut (&mut plain).take(index.json_len), &mut hasher).map_err(damaged)?;
            *hasher.finalize().as_bytes()
        }
    };
    if hash != index.hash {
        return Err(bad(format!(
            "points to a manifest whose hash is not its own (byte {}, {}): the manifest or the index is damaged",
            index.at,
            segment(index.at)
        )));
    }
    // Only the end of the archive may follow: the manifest pointed to is
    // the stream's last entry, never a decoy held in a file of the set.
    let mut rest = Vec::new();
    plain
        .take(crate::source::TAIL_LIMIT + 1)
        .read_to_end(&mut rest)
        .map_err(damaged)?;
    let padding = (512 - index.json_len % 512) % 512;
    let ends = rest.len() as u64 >= padding + 1024
        && rest.len() as u64 <= crate::source::TAIL_LIMIT
        && rest.iter().all(|&b| b == 0);
    if !ends {
        return Err(bad(format!(
            "points to a manifest that is not the set's last entry (byte {}, {})",
            index.at,
            segment(index.at)
        )));
    }
    let manifest = json
        .map(|json| crate::source::parse_manifest(kind, &json))
        .transpose()?;
    Ok(Some((index, manifest)))
}

/// A set's bytes from `offset` on, across its segments.
struct Spans<'a> {
    source: &'a dyn SegmentSource,
    /// The segment being read, and the next one.
    current: Option<Box<dyn Read + 'a>>,
    next: usize,
    count: usize,
}

impl<'a> Spans<'a> {
    fn new(source: &'a dyn SegmentSource, lengths: &[u64], offset: u64) -> io::Result<Spans<'a>> {
        let mut start = 0u64;
        for (i, &len) in lengths.iter().enumerate() {
            if offset < start + len {
                return Ok(Spans {
                    source,
                    current: Some(source.open_at(i, offset - start)?),
                    next: i + 1,
                    count: lengths.len(),
                });
            }
            start += len;
        }
        Ok(Spans {
            source,
            current: None,
            next: lengths.len(),
            count: lengths.len(),
        })
    }
}

impl Read for Spans<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(r) = self.current.as_mut() {
                let n = r.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
            }
            if self.next >= self.count {
                return Ok(0);
            }
            self.current = Some(self.source.open_at(self.next, 0)?);
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_reads_back_and_nothing_else_is_one() {
        let index = Index {
            at: 123_456,
            json_len: 789,
            hash: [7; 32],
        };
        let bytes = index.encode();
        assert_eq!(Index::decode(&bytes), Some(index));
        // zstd sees a skippable frame of 56 bytes.
        assert_eq!(&bytes[..8], &[0x5E, 0x2A, 0x4D, 0x18, 56, 0, 0, 0]);
        let mut wrong = bytes;
        wrong[9] ^= 1;
        assert_eq!(Index::decode(&wrong), None);
        assert_eq!(Index::decode(&bytes[1..]), None);
        assert_eq!(Index::decode(&[0; LEN]), None);
    }

    #[test]
    fn strip_removes_only_a_trailing_index() {
        let index = Index {
            at: 0,
            json_len: 1,
            hash: [0; 32],
        }
        .encode();
        let mut tail = vec![0u8; 512];
        tail.extend_from_slice(&index);
        assert_eq!(strip(&tail), &[0u8; 512][..]);
        assert_eq!(strip(&[0u8; 600]), &[0u8; 600][..]);
        assert_eq!(strip(&index[..10]), &index[..10]);
    }
}
