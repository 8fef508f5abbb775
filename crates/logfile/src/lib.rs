//! The operation log (`APP/Data/<stem>.journal`, SPEC section 14): an
//! append-only file of framed, checksummed records that host apps write
//! before acknowledging a change, so that a restored backup can be rolled
//! forward to the last acknowledged write.
//!
//! Appends are durable when they return: fsync per record, or group commit
//! (records written meanwhile share one fsync, within a bounded delay). The
//! reader stops at the first invalid record and never yields a bad one: a
//! torn tail (a crash mid-append) is reported and truncated by the next
//! writer; damage followed by more bytes is reported as corruption. A header
//! ties the log to its data file through an identity the host gives (1416
//! on mismatch). `LogWriter::rotate` cuts the log at a backup.
//!
//! Not here: applying records (the host's function), archives, the engine.
//!
//! Invariant (property-tested): cut anywhere, a log reads back exactly the
//! records fully written before the cut.

mod error;
mod format;
mod integrate;
mod log;

pub use error::LogError;
pub use format::{
    FORMAT_VERSION, HEADER_LEN, Header, MAGIC, MAX_PAYLOAD, RECORD_HEADER_LEN, Record, Records,
    Tail, encode_record,
};
pub use integrate::{IntegrateError, Integrated, integrate};
pub use log::{Durability, LogContents, LogWriter, read_log};
