//! Integration (behaviour §14.3, §20): applying a log's records to restored data,
//! in order, skipping what the data already has, up to a stop point,
//! stopping at the first error. Records past the stop point stay in the log.

use std::path::Path;

use sauve_status::Status;

use crate::error::LogError;
use crate::fork::{SetAside, step_over, timeline};
use crate::format::{Record, Tail};
use crate::log::read_log;
use crate::time::Until;

/// A run of records stepped over, all set aside by one point-in-time
/// restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// When the restore that set them aside ran (what names it).
    pub restore: jiff::Timestamp,
    /// The first and last sequence of the run.
    pub first: u64,
    /// See `first`.
    pub last: u64,
    /// How many records.
    pub count: u64,
}

/// What an integration applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Integrated {
    /// Records applied.
    pub applied: u64,
    /// The first and last sequence applied.
    pub range: Option<(u64, u64)>,
    /// Where the data stands in the log afterwards: the last record
    /// applied, or the last stepped over when it came later.
    pub last_applied: u64,
    /// The time of the last record applied (µs since the epoch), when it
    /// has one.
    pub last_time: Option<i64>,
    /// Whether a record past the stop point was met: the integration ends
    /// here, and the records from it on stay where they are.
    pub stopped: bool,
    /// The records stepped over, set aside by point-in-time restores: one
    /// run per restore and stretch of the log, in the log's order.
    pub skipped: Vec<Skipped>,
}

impl Integrated {
    /// Nothing applied yet, the data at `last_applied`.
    pub fn nothing(last_applied: u64) -> Integrated {
        Integrated {
            applied: 0,
            range: None,
            last_applied,
            last_time: None,
            stopped: false,
            skipped: Vec::new(),
        }
    }

    /// How many records were stepped over, in every run.
    pub fn skipped_count(&self) -> u64 {
        self.skipped.iter().map(|s| s.count).sum()
    }
}

/// Why an integration stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrateError {
    /// The log could not be read.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The log belongs to another data file, or records are missing between
    /// the data and this log (1416).
    #[error("{0}")]
    Mismatch(String),
    /// The host's apply function failed: the data stays at `last_applied`.
    #[error("failed at sequence {seq}: {message}")]
    Apply {
        /// The record that failed.
        seq: u64,
        /// The host's error.
        message: String,
        /// The last record applied before it.
        last_applied: u64,
    },
    /// A record without a time (of a version-1 log) met while stopping at
    /// a time: nothing tells whether it came before the point.
    #[error(
        "record {seq} has no time (it was written in log format version 1), so it cannot be placed before or after {point}; nothing from it on was applied (accepted: a stop at a sequence, such as the last one before the change to undo)"
    )]
    Untimed {
        /// The record.
        seq: u64,
        /// The stop point asked for, as given (UTC).
        point: String,
        /// The last record applied before it.
        last_applied: u64,
    },
    /// The log is damaged after the records applied.
    #[error("the log is damaged at byte {offset}, after sequence {last_applied}")]
    Corrupt {
        /// Where.
        offset: u64,
        /// The last record applied.
        last_applied: u64,
    },
}

impl IntegrateError {
    /// The status code: 1416 for a log that does not follow the data.
    pub fn status(&self) -> Status {
        match self {
            IntegrateError::Mismatch(_) => Status::LogMismatch,
            IntegrateError::Log(e) => e.status(),
            _ => Status::LogBackupError,
        }
    }
}

/// Applies the records of `log` after `last_applied` and up to `until` to
/// the host's data with `apply`, in order (strict: the first error stops).
/// `identity` is the data's (zero to skip the check). The records that
/// point-in-time restores set aside are stepped over when they are on the
/// timeline of `until` ([`timeline`]), never applied.
pub fn integrate<E: std::fmt::Display>(
    log: &Path,
    identity: [u8; 16],
    last_applied: u64,
    until: Until,
    set_aside: &[SetAside],
    mut apply: impl FnMut(&Record) -> Result<(), E>,
) -> Result<Integrated, IntegrateError> {
    let contents = read_log(log)?;
    if !contents.header.identity_matches(&identity) {
        return Err(IntegrateError::Mismatch(format!(
            "{} belongs to another data file",
            log.display()
        )));
    }
    let passed = timeline(set_aside, until);
    // Where the data goes on from: the records set aside after it count
    // as read, since they are never applied.
    let from = step_over(&passed, last_applied);
    let first = contents
        .records
        .first()
        .map_or(contents.header.first_sequence, |r| r.seq);
    if first > from.saturating_add(1) && contents.records.iter().any(|r| r.seq > from) {
        return Err(IntegrateError::Mismatch(format!(
            "{} starts at sequence {first}, but the data stops at {from}: records {} to {} are missing",
            log.display(),
            from.saturating_add(1),
            first - 1
        )));
    }
    let mut done = Integrated::nothing(last_applied);
    for r in contents.records.iter().filter(|r| r.seq > last_applied) {
        if let Some(s) = passed.iter().find(|s| s.holds(r)) {
            match done.skipped.last_mut() {
                Some(run) if run.restore == s.at && run.last == done.last_applied => {
                    run.last = r.seq;
                    run.count += 1;
                }
                _ => done.skipped.push(Skipped {
                    restore: s.at,
                    first: r.seq,
                    last: r.seq,
                    count: 1,
                }),
            }
            done.last_applied = r.seq;
            continue;
        }
        if let Until::Time(t) = until
            && r.time.is_none()
        {
            return Err(IntegrateError::Untimed {
                seq: r.seq,
                point: t.to_string(),
                last_applied: done.last_applied,
            });
        }
        if until.is_past(r) {
            done.stopped = true;
            return Ok(done);
        }
        if let Err(e) = apply(r) {
            return Err(IntegrateError::Apply {
                seq: r.seq,
                message: e.to_string(),
                last_applied: done.last_applied,
            });
        }
        done.applied += 1;
        done.range = Some((done.range.map_or(r.seq, |(a, _)| a), r.seq));
        done.last_applied = r.seq;
        done.last_time = r.time.or(done.last_time);
    }
    if let Tail::Corrupt { offset } = contents.tail {
        return Err(IntegrateError::Corrupt {
            offset,
            last_applied: done.last_applied,
        });
    }
    Ok(done)
}
