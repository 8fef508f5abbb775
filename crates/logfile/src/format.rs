//! The framing of behaviour §14.1 and §20.
//!
//! Header: magic `SAUVELOG`, version u16, 16-byte data identity, first
//! sequence u64, creation time i64 (ns since the Unix epoch).
//!
//! A version-1 record: `len u32 | seq u64 | crc u32 | payload`. A version-2
//! record adds its time and its optional operation tag before the payload:
//! `len u32 | seq u64 | crc u32 | time i64 | flags u8 | kind u16 |
//! label_len u8 | label | payload`, where `len` is the payload's length,
//! `time` is µs since the Unix epoch (UTC), `flags` bit 0 says a tag is
//! there and bit 1 that the time is known (a version-1 record carried into
//! a version-2 file has none), and no other bit is set. Little-endian; the
//! CRC-32C covers every other byte of the record. A file is one version
//! throughout; readers take both.

use std::io::{self, Read};

/// The magic at the start of every log.
pub const MAGIC: &[u8; 8] = b"SAUVELOG";
/// The format version this crate writes (it reads 1 and 2).
pub const FORMAT_VERSION: u16 = 2;
/// The versions this crate reads.
pub const READ_VERSIONS: [u16; 2] = [1, 2];
/// Header size in bytes.
pub const HEADER_LEN: usize = 8 + 2 + 16 + 8 + 8;
/// The fixed part of a version-1 record.
pub const RECORD_HEADER_LEN_V1: usize = 4 + 8 + 4;
/// The fixed part of a version-2 record (its label follows).
pub const RECORD_HEADER_LEN: usize = RECORD_HEADER_LEN_V1 + 8 + 1 + 2 + 1;
/// The largest payload.
pub const MAX_PAYLOAD: usize = 64 << 20;
/// The longest label of an operation tag, in bytes.
pub const MAX_LABEL: usize = 255;

const FLAG_TAG: u8 = 1;
const FLAG_TIME: u8 = 2;

/// A log's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The framing of its records: 1 or 2.
    pub version: u16,
    /// The data file this log belongs to; zero when the host gave none.
    pub identity: [u8; 16],
    /// The sequence number of the first record.
    pub first_sequence: u64,
    /// When the log was started, ns since the Unix epoch.
    pub created: i64,
}

impl Header {
    /// The header of a new log, in the version this crate writes.
    pub fn new(identity: [u8; 16], first_sequence: u64, created: i64) -> Header {
        Header {
            version: FORMAT_VERSION,
            identity,
            first_sequence,
            created,
        }
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        b[10..26].copy_from_slice(&self.identity);
        b[26..34].copy_from_slice(&self.first_sequence.to_le_bytes());
        b[34..42].copy_from_slice(&self.created.to_le_bytes());
        b
    }

    /// Reads a header; `None` when the bytes are not one this crate knows.
    pub fn decode(b: &[u8]) -> Option<Header> {
        if b.len() < HEADER_LEN || &b[..8] != MAGIC {
            return None;
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if !READ_VERSIONS.contains(&version) {
            return None;
        }
        let mut identity = [0u8; 16];
        identity.copy_from_slice(&b[10..26]);
        Some(Header {
            version,
            identity,
            first_sequence: u64::from_le_bytes(b[26..34].try_into().ok()?),
            created: i64::from_le_bytes(b[34..42].try_into().ok()?),
        })
    }

    /// Whether two identities may be integrated together (zero matches all).
    pub fn identity_matches(&self, other: &[u8; 16]) -> bool {
        self.identity == [0; 16] || *other == [0; 16] || self.identity == *other
    }
}

/// What kind of operation a record is, as the host names it (behaviour §20):
/// its own number for the kind, and a label such as a table's name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    /// The host's number for the kind of operation.
    pub kind: u16,
    /// A label of at most 255 bytes.
    pub label: String,
}

impl Tag {
    /// A tag; `None` when the label is over [`MAX_LABEL`] bytes.
    pub fn new(kind: u16, label: impl Into<String>) -> Option<Tag> {
        let label = label.into();
        (label.len() <= MAX_LABEL).then_some(Tag { kind, label })
    }
}

fn crc_v1(len: u32, seq: u64, payload: &[u8]) -> u32 {
    let c = crc32c::crc32c(&len.to_le_bytes());
    let c = crc32c::crc32c_append(c, &seq.to_le_bytes());
    crc32c::crc32c_append(c, payload)
}

/// The CRC of a version-2 record: over its header but the CRC, its label
/// and its payload.
fn crc_v2(head: &[u8], label: &[u8], payload: &[u8]) -> u32 {
    let c = crc32c::crc32c(&head[..12]);
    let c = crc32c::crc32c_append(c, &head[16..RECORD_HEADER_LEN]);
    let c = crc32c::crc32c_append(c, label);
    crc32c::crc32c_append(c, payload)
}

/// A record's bytes in the current version (2). A label over
/// [`MAX_LABEL`] bytes is cut at a character boundary below it.
pub fn encode_record(record: &Record) -> Vec<u8> {
    encode_v2(
        record.seq,
        record.time,
        record.tag.as_ref(),
        &record.payload,
    )
}

/// A version-2 record's bytes from its parts (the writer's path: no copy
/// of the payload but into the frame).
pub(crate) fn encode_v2(seq: u64, time: Option<i64>, tag: Option<&Tag>, payload: &[u8]) -> Vec<u8> {
    let label = tag.map_or("", |t| fit_label(&t.label));
    let mut b = Vec::with_capacity(RECORD_HEADER_LEN + label.len() + payload.len());
    let mut flags = 0;
    if tag.is_some() {
        flags |= FLAG_TAG;
    }
    if time.is_some() {
        flags |= FLAG_TIME;
    }
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(&seq.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&time.unwrap_or(0).to_le_bytes());
    b.push(flags);
    b.extend_from_slice(&tag.map_or(0, |t| t.kind).to_le_bytes());
    b.push(label.len() as u8);
    let crc = crc_v2(&b, label.as_bytes(), payload);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    b.extend_from_slice(label.as_bytes());
    b.extend_from_slice(payload);
    b
}

/// A record's bytes in version 1, the framing of logs written before
/// version 2 (no time, no tag): for tests and tools that must make such a
/// file; [`crate::LogWriter`] writes version 2.
pub fn encode_record_v1(seq: u64, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut b = Vec::with_capacity(RECORD_HEADER_LEN_V1 + payload.len());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&seq.to_le_bytes());
    b.extend_from_slice(&crc_v1(len, seq, payload).to_le_bytes());
    b.extend_from_slice(payload);
    b
}

fn fit_label(label: &str) -> &str {
    if label.len() <= MAX_LABEL {
        return label;
    }
    let mut end = MAX_LABEL;
    while !label.is_char_boundary(end) {
        end -= 1;
    }
    &label[..end]
}

/// One record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number.
    pub seq: u64,
    /// When the writer appended it, µs since the Unix epoch (UTC); `None`
    /// for a record of a version-1 log.
    pub time: Option<i64>,
    /// The host's operation tag, if it gave one.
    pub tag: Option<Tag>,
    /// What the host logged.
    pub payload: Vec<u8>,
}

impl Record {
    /// A record without time or tag.
    pub fn new(seq: u64, payload: Vec<u8>) -> Record {
        Record {
            seq,
            time: None,
            tag: None,
            payload,
        }
    }

    /// Its time, when known.
    pub fn timestamp(&self) -> Option<jiff::Timestamp> {
        self.time
            .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
    }

    /// Its size in a log of `version`, framing included.
    pub fn framed_len(&self, version: u16) -> u64 {
        let fixed = if version == 1 {
            RECORD_HEADER_LEN_V1
        } else {
            RECORD_HEADER_LEN + self.tag.as_ref().map_or(0, |t| fit_label(&t.label).len())
        };
        (fixed + self.payload.len()) as u64
    }
}

/// How a log ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// After the last record, nothing.
    Clean,
    /// A record cut short, or a bad checksum with nothing after it: a crash
    /// mid-append. Ignored, never applied; the writer truncates it.
    Torn {
        /// Where the torn record starts.
        offset: u64,
    },
    /// An invalid record followed by more bytes: damage, not a crash.
    Corrupt {
        /// Where the invalid record starts.
        offset: u64,
    },
}

/// Reads records one by one, stopping at the first invalid one.
pub struct Records<R> {
    inner: R,
    version: u16,
    offset: u64,
    expected: u64,
    len: u64,
    tail: Option<Tail>,
    /// A record numbered `u64::MAX` was read: none can follow.
    exhausted: bool,
}

impl<R: Read> Records<R> {
    /// Reads the records that follow `header`, expecting its first sequence
    /// first, in its version's framing. `len` is the file's total size (to
    /// tell a torn tail from corruption).
    pub fn new(inner: R, header: &Header, len: u64) -> Records<R> {
        Records {
            inner,
            version: header.version,
            offset: HEADER_LEN as u64,
            expected: header.first_sequence,
            len,
            tail: None,
            exhausted: false,
        }
    }

    /// How the log ended, once the iterator is exhausted.
    pub fn tail(&self) -> Option<Tail> {
        self.tail
    }

    /// The offset just past the last valid record.
    pub fn end(&self) -> u64 {
        self.offset
    }

    fn bad(&mut self, record_len: u64) -> Option<io::Result<Record>> {
        // Nothing (or only this record's bytes) after it: a torn tail.
        let end = self.offset.saturating_add(record_len);
        self.tail = Some(if end >= self.len {
            Tail::Torn {
                offset: self.offset,
            }
        } else {
            Tail::Corrupt {
                offset: self.offset,
            }
        });
        None
    }

    /// Reads `n` bytes; `Ok(None)` when fewer are there.
    fn take(&mut self, n: usize) -> io::Result<Option<Vec<u8>>> {
        let mut b = vec![0u8; n];
        let got = read_full(&mut self.inner, &mut b)?;
        Ok((got == n).then_some(b))
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl<R: Read> Iterator for Records<R> {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<io::Result<Record>> {
        if self.tail.is_some() {
            return None;
        }
        let fixed = if self.version == 1 {
            RECORD_HEADER_LEN_V1
        } else {
            RECORD_HEADER_LEN
        };
        let mut head = [0u8; RECORD_HEADER_LEN];
        let got = match read_full(&mut self.inner, &mut head[..fixed]) {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        if got == 0 {
            self.tail = Some(Tail::Clean);
            return None;
        }
        if got < fixed {
            return self.bad(got as u64);
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let seq = u64::from_le_bytes(head[4..12].try_into().unwrap_or_default());
        let stored = u32::from_le_bytes([head[12], head[13], head[14], head[15]]);
        let label_len = if self.version == 1 {
            0
        } else {
            usize::from(head[RECORD_HEADER_LEN - 1])
        };
        let total = (fixed + label_len + len as usize) as u64;
        if len as usize > MAX_PAYLOAD {
            return self.bad(total);
        }
        let label = match self.take(label_len) {
            Ok(Some(l)) => l,
            Ok(None) => return self.bad(total),
            Err(e) => return Some(Err(e)),
        };
        let payload = match self.take(len as usize) {
            Ok(Some(p)) => p,
            Ok(None) => return self.bad(total),
            Err(e) => return Some(Err(e)),
        };
        let record = if self.version == 1 {
            (crc_v1(len, seq, &payload) == stored).then(|| Record::new(seq, payload))
        } else {
            decode_v2(&head, label, payload)
        };
        let sound = record.filter(|r| {
            !self.exhausted
                && r.seq == self.expected
                && (self.version == 1 || crc_of(&head, r) == stored)
        });
        let Some(record) = sound else {
            return self.bad(total);
        };
        self.offset += total;
        // A record numbered u64::MAX can have no successor: any bytes after
        // it are damage.
        match self.expected.checked_add(1) {
            Some(n) => self.expected = n,
            None => self.exhausted = true,
        }
        Some(Ok(record))
    }
}

/// The CRC a version-2 record with this head should carry.
fn crc_of(head: &[u8], r: &Record) -> u32 {
    let label = r.tag.as_ref().map_or("", |t| t.label.as_str());
    crc_v2(head, label.as_bytes(), &r.payload)
}

/// A version-2 record from its parts, when its flags and label are sound.
fn decode_v2(head: &[u8], label: Vec<u8>, payload: Vec<u8>) -> Option<Record> {
    let seq = u64::from_le_bytes(head[4..12].try_into().ok()?);
    let time = i64::from_le_bytes(head[16..24].try_into().ok()?);
    let flags = head[24];
    let kind = u16::from_le_bytes([head[25], head[26]]);
    if flags & !(FLAG_TAG | FLAG_TIME) != 0 {
        return None;
    }
    let tag = if flags & FLAG_TAG != 0 {
        Some(Tag {
            kind,
            label: String::from_utf8(label).ok()?,
        })
    } else if kind != 0 || !label.is_empty() {
        return None;
    } else {
        None
    };
    Some(Record {
        seq,
        time: (flags & FLAG_TIME != 0).then_some(time),
        tag,
        payload,
    })
}
