//! Records a point-in-time restore left behind (behaviour §20). Restoring to a
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

/// The restores whose records an integration to `until` steps over: the
/// timeline it reads. The last restore `until` goes past made that
/// timeline: what it set aside, and the timeline of its own point, which
/// the restores before it made in turn. A restore that a later one went
/// back before is not on the later one's timeline, but stays on the
/// timeline of the points between the two, so none is ever forgotten.
pub fn timeline(set_aside: &[SetAside], until: Until) -> Vec<&SetAside> {
    let mut chain: Vec<&SetAside> = Vec::new();
    let mut point = until;
    // Each step goes to a restore that ran strictly before the last one:
    // a restore to a point after it ran (the future) ends the chain.
    while let Some(s) = set_aside
        .iter()
        .filter(|s| s.passed_by(point))
        .filter(|s| chain.last().is_none_or(|last| s.at < last.at))
        .max_by_key(|s| s.at)
    {
        chain.push(s);
        point = s.point;
    }
    chain
}

/// Whether data taken at `taken`, its log cut after `last`, holds what the
/// timeline of `until` holds up to `last`: the restore that disagrees, if
/// one does. The data stands on the timeline of its own moment; every
/// restore on one of the two timelines and not the other must have set
/// nothing aside up to `last`, or the data has records `until` leaves out,
/// or lacks some it counts.
pub fn disagrees(
    set_aside: &[SetAside],
    taken: Timestamp,
    last: u64,
    until: Until,
) -> Option<&SetAside> {
    let then = timeline(set_aside, Until::Time(taken));
    let there = timeline(set_aside, until);
    let on = |chain: &[&SetAside], s: &SetAside| chain.iter().any(|o| o.at == s.at);
    set_aside.iter().find(|s| {
        if on(&then, s) == on(&there, s) {
            return false;
        }
        let end = s.through.min(last);
        match (s.after, s.point) {
            (Some(after), _) => after < end,
            // Under way: what is past its point, as far as it can tell.
            (None, Until::Sequence(n)) => n < end,
            (None, Until::Time(t)) => t < taken,
            (None, Until::End) => false,
        }
    })
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

    /// Restore A back to 100 (ran at 300), B back before A ran (to 50, ran
    /// at 600), C to 400 (ran at 900), on A's timeline.
    fn crossing() -> [SetAside; 3] {
        [
            SetAside {
                point: Until::Time(at(100)),
                through: 10,
                after: Some(2),
                at: at(300),
            },
            SetAside {
                point: Until::Time(at(50)),
                through: 15,
                after: Some(1),
                at: at(600),
            },
            SetAside {
                point: Until::Time(at(400)),
                through: 20,
                after: Some(13),
                at: at(900),
            },
        ]
    }

    #[test]
    fn the_timeline_of_a_point_is_made_by_the_restores_before_it_one_inside_the_other() {
        let [a, b, c] = crossing();
        let all = [a, b, c];
        let ats =
            |until| -> Vec<Timestamp> { timeline(&all, until).iter().map(|s| s.at).collect() };
        assert_eq!(
            ats(Until::Time(at(299))),
            [] as [Timestamp; 0],
            "as written"
        );
        assert_eq!(
            ats(Until::Time(at(400))),
            [a.at],
            "A's timeline, B not run yet"
        );
        assert_eq!(ats(Until::Time(at(700))), [b.at], "B went back before A");
        assert_eq!(
            ats(Until::End),
            [c.at, a.at],
            "C went back onto A's timeline: what A set aside stays out"
        );
        assert_eq!(ats(Until::Sequence(16)), [b.at]);
        assert_eq!(ats(Until::Sequence(21)), [c.at, a.at]);
        let future = SetAside {
            point: Until::Time(at(2000)),
            through: 20,
            after: Some(20),
            at: at(1000),
        };
        assert_eq!(
            timeline(&[a, b, c, future], Until::End)
                .iter()
                .map(|s| s.at)
                .collect::<Vec<_>>(),
            [future.at, c.at, a.at],
            "a point after its restore ran goes on to the restores before it"
        );
    }

    #[test]
    fn data_taken_on_one_timeline_serves_a_point_only_where_the_two_agree() {
        let [a, b, c] = crossing();
        let all = [a, b, c];
        // Taken between A and B, on A's timeline, cut after 12.
        let on_a = at(500);
        assert_eq!(disagrees(&all, on_a, 12, Until::Time(at(550))), None);
        assert_eq!(
            disagrees(&all, on_a, 12, Until::Time(at(700))).map(|s| s.at),
            Some(a.at),
            "A set aside 3 to 10 on the data's timeline, not on B's"
        );
        assert_eq!(
            disagrees(&[b, c], on_a, 12, Until::Time(at(700))).map(|s| s.at),
            Some(b.at),
            "B set aside records 2 to 12 the data has"
        );
        assert_eq!(
            disagrees(&all, on_a, 12, Until::End),
            None,
            "C came back onto A's timeline after 13"
        );
        // Taken before A, cut after 10: holds what A set aside.
        assert_eq!(
            disagrees(&all, at(200), 10, Until::End).map(|s| s.at),
            Some(a.at)
        );
        assert_eq!(
            disagrees(&all, at(200), 10, Until::Time(at(250))),
            None,
            "before A ran, as written"
        );
        // Taken on B's timeline: lacks the records C brought back.
        assert!(disagrees(&all, at(800), 15, Until::End).is_some());
        // Cut before anything was set aside: every timeline agrees.
        assert_eq!(disagrees(&all, at(800), 1, Until::End), None);
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
