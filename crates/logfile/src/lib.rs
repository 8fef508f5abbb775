//! The operation log (`APP/Data/<stem>.journal`, behaviour §14): an
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
mod fork;
mod format;
mod integrate;
mod log;
mod time;

pub use error::LogError;
pub use fork::{SetAside, disagrees, step_over, timeline};
pub use format::{
    FORMAT_VERSION, HEADER_LEN, Header, MAGIC, MAX_LABEL, MAX_PAYLOAD, READ_VERSIONS,
    RECORD_HEADER_LEN, RECORD_HEADER_LEN_V1, Record, Records, Tag, Tail, encode_record,
    encode_record_v1,
};
pub use integrate::{IntegrateError, Integrated, Skipped, integrate};
pub use log::{Durability, LogClock, LogContents, LogWriter, read_log};
pub use time::{RecordFilter, TimeError, Until, format_time, parse_time};
