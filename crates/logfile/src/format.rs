//! The framing of SPEC 14.1.
//!
//! Header: magic `SAUVELOG`, version u16, 16-byte data identity, first
//! sequence u64, creation time i64 (ns since the Unix epoch). Record:
//! `len u32 | seq u64 | crc u32 | payload`, little-endian, CRC-32C over len,
//! seq and payload.

use std::io::{self, Read};

/// The magic at the start of every log.
pub const MAGIC: &[u8; 8] = b"SAUVELOG";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Header size in bytes.
pub const HEADER_LEN: usize = 8 + 2 + 16 + 8 + 8;
/// Record header size in bytes.
pub const RECORD_HEADER_LEN: usize = 4 + 8 + 4;
/// The largest payload.
pub const MAX_PAYLOAD: usize = 64 << 20;

/// A log's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The data file this log belongs to; zero when the host gave none.
    pub identity: [u8; 16],
    /// The sequence number of the first record.
    pub first_sequence: u64,
    /// When the log was started, ns since the Unix epoch.
    pub created: i64,
}

impl Header {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
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
        if version != FORMAT_VERSION {
            return None;
        }
        let mut identity = [0u8; 16];
        identity.copy_from_slice(&b[10..26]);
        Some(Header {
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

fn crc(len: u32, seq: u64, payload: &[u8]) -> u32 {
    let c = crc32c::crc32c(&len.to_le_bytes());
    let c = crc32c::crc32c_append(c, &seq.to_le_bytes());
    crc32c::crc32c_append(c, payload)
}

/// A record's bytes.
pub fn encode_record(seq: u64, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut b = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&seq.to_le_bytes());
    b.extend_from_slice(&crc(len, seq, payload).to_le_bytes());
    b.extend_from_slice(payload);
    b
}

/// One record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number.
    pub seq: u64,
    /// What the host logged.
    pub payload: Vec<u8>,
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
    offset: u64,
    expected: u64,
    len: u64,
    tail: Option<Tail>,
}

impl<R: Read> Records<R> {
    /// Reads records after the header, expecting `first_sequence` first.
    /// `len` is the total size (to tell a torn tail from corruption).
    pub fn new(inner: R, first_sequence: u64, len: u64) -> Records<R> {
        Records {
            inner,
            offset: HEADER_LEN as u64,
            expected: first_sequence,
            len,
            tail: None,
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
        let mut head = [0u8; RECORD_HEADER_LEN];
        let got = match read_full(&mut self.inner, &mut head) {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        if got == 0 {
            self.tail = Some(Tail::Clean);
            return None;
        }
        if got < RECORD_HEADER_LEN {
            return self.bad(got as u64);
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let seq = u64::from_le_bytes(head[4..12].try_into().unwrap_or_default());
        let stored = u32::from_le_bytes([head[12], head[13], head[14], head[15]]);
        let total = (RECORD_HEADER_LEN + len as usize) as u64;
        if len as usize > MAX_PAYLOAD {
            return self.bad(total);
        }
        let mut payload = vec![0u8; len as usize];
        let got = match read_full(&mut self.inner, &mut payload) {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        if got < payload.len() || crc(len, seq, &payload) != stored || seq != self.expected {
            return self.bad(total);
        }
        self.offset += total;
        self.expected += 1;
        Some(Ok(Record { seq, payload }))
    }
}
