//! Records a point-in-time restore left behind (SPEC 20). Restoring to a
//! point keeps the records past it in the logs; the host then writes on from
//! the restored state, so the log holds two timelines from the point on:
//! the records set aside, then the ones written after the restore. An
//! integration that goes past the restore must step over the records set
//! aside, or it would re-apply what the restore undid; one that stops
//! before the restore reads the timeline as it was then.

use jiff::Timestamp;

use crate::format::Record;
use crate::time::Until;

/// What one point-in-time restore set aside: the records up to `through`
/// that are past `point`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetAside {
    /// The point the data was restored to.
    pub point: Until,
    /// The log's last sequence when the restore ran: every record written
    /// after it belongs to the restored timeline.
    pub through: u64,
    /// The last record the restore applied, once its integration ended.
    pub after: Option<u64>,
    /// When the restore ran (the records it left were all written before).
    pub at: Timestamp,
}

impl SetAside {
    /// Whether this restore left `record` behind: once its integration
    /// ended, the sequences after the last record it applied (times only
    /// stay in order within one log); until then, the records past its
    /// point.
    pub fn holds(&self, record: &Record) -> bool {
        record.seq <= self.through
            && match self.after {
                Some(after) => record.seq > after,
                None => self.point.is_past(record),
            }
    }

    /// Whether an integration to `until` goes past this restore, onto the
    /// timeline written after it: its records set aside are stepped over.
    /// A point before the restore ran stays on the timeline of then.
    pub fn passed_by(&self, until: Until) -> bool {
        match until {
            Until::End => true,
            Until::Sequence(n) => n > self.through,
            Until::Time(t) => t >= self.at,
        }
    }

    /// The range set aside, `(after, through]`, once known and not empty.
    pub fn range(&self) -> Option<(u64, u64)> {
        self.after
            .filter(|a| *a < self.through)
            .map(|a| (a + 1, self.through))
    }
}

/// Where data at `last_applied` stands once the ranges set aside that
/// follow it are stepped over: the sequence a log must go on from.
pub fn step_over(set_aside: &[&SetAside], last_applied: u64) -> u64 {
    let mut at = last_applied;
    while let Some(s) = set_aside
        .iter()
        .find(|s| s.after.is_some_and(|a| a <= at) && at < s.through)
    {
        at = s.through;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, second: i64) -> Record {
        let mut r = Record::new(seq, Vec::new());
        r.time = Some(second * 1_000_000);
        r
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    #[test]
    fn a_restore_sets_aside_what_was_past_its_point_and_written_before_it() {
        let s = SetAside {
            point: Until::Time(at(100)),
            through: 20,
            after: Some(10),
            at: at(300),
        };
        assert!(!s.holds(&record(10, 100)));
        assert!(s.holds(&record(11, 101)));
        assert!(s.holds(&record(20, 250)));
        assert!(!s.holds(&record(21, 301)), "written after the restore");
        assert!(
            s.holds(&record(12, 90)),
            "once known, the range decides, whatever a record's time says"
        );
        let pending = SetAside { after: None, ..s };
        assert!(!pending.holds(&record(12, 90)));
        assert!(pending.holds(&record(12, 101)));
        assert_eq!(s.range(), Some((11, 20)));
        assert!(s.passed_by(Until::End));
        assert!(s.passed_by(Until::Time(at(300))));
        assert!(!s.passed_by(Until::Time(at(299))), "the timeline of then");
        assert!(s.passed_by(Until::Sequence(21)));
        assert!(!s.passed_by(Until::Sequence(20)));
    }

    #[test]
    fn stepping_over_follows_restores_one_after_the_other() {
        let first = SetAside {
            point: Until::Sequence(10),
            through: 20,
            after: Some(10),
            at: at(300),
        };
        let second = SetAside {
            point: Until::Sequence(25),
            through: 40,
            after: Some(25),
            at: at(600),
        };
        assert_eq!(step_over(&[&first, &second], 10), 20);
        assert_eq!(step_over(&[&second, &first], 25), 40);
        assert_eq!(step_over(&[&first, &second], 22), 22);
        assert_eq!(step_over(&[&first], 5), 5, "before the restore's point");
        let pending = SetAside {
            after: None,
            ..first
        };
        assert_eq!(step_over(&[&pending], 10), 10);
        assert_eq!(pending.range(), None);
    }
}
