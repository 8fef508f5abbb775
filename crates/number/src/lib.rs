//! The number of a backup set (behaviour §6.2): `base[0012].4BK` is set 12.
//! One type for it everywhere (the archive's names and manifests, the
//! history, the engine, the page and the command line), so that a number
//! is never confused with a count, a size or a sequence, and the one rule
//! that pairs sets, "set N goes with the log backup N-1", lives here.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The number of a backup set. Written as a plain number in JSON and in
/// messages; [`BackupNumber::text`] is its form in file names (at least
/// four digits, O-8).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BackupNumber(u32);

impl BackupNumber {
    /// No set yet: what a run that ended before it had a number reports.
    pub const NONE: BackupNumber = BackupNumber(0);

    /// Set `n`.
    pub const fn new(n: u32) -> BackupNumber {
        BackupNumber(n)
    }

    /// The number as an integer.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The number before this one (0 stays 0).
    pub const fn previous(self) -> BackupNumber {
        BackupNumber(self.0.saturating_sub(1))
    }

    /// The log backup that goes with backup set N: N-1, the log cut when
    /// set N was made (`base[0000].4BL` with the first set; behaviour
    /// §6.2, §6.3). None for 0, which is no set: `base[0000].4BL` is set
    /// 1's, never a set 0's.
    pub const fn log_set(self) -> Option<BackupNumber> {
        match self.0 {
            0 => None,
            n => Some(BackupNumber(n - 1)),
        }
    }

    /// The number after this one (the last number stays the last).
    pub const fn next(self) -> BackupNumber {
        BackupNumber(self.0.saturating_add(1))
    }

    /// The number as file names write it: at least 4 digits, wider above
    /// 9999 (O-8).
    pub fn text(self) -> String {
        format!("{:04}", self.0)
    }
}

/// As the plain number, the way reports and snapshots have always shown it.
impl fmt::Debug for BackupNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for BackupNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::str::FromStr for BackupNumber {
    type Err = std::num::ParseIntError;

    /// A number as people and forms write it: `12` or `0012`.
    fn from_str(text: &str) -> Result<BackupNumber, Self::Err> {
        text.parse().map(BackupNumber)
    }
}

impl From<u32> for BackupNumber {
    fn from(n: u32) -> BackupNumber {
        BackupNumber(n)
    }
}

impl From<BackupNumber> for u32 {
    fn from(n: BackupNumber) -> u32 {
        n.0
    }
}

impl PartialEq<u32> for BackupNumber {
    fn eq(&self, other: &u32) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_write_four_digits_or_more_and_messages_the_plain_number() {
        assert_eq!(BackupNumber::new(12).text(), "0012");
        assert_eq!(BackupNumber::new(12345).text(), "12345");
        assert_eq!(BackupNumber::new(12).to_string(), "12");
        assert_eq!(format!("{:?}", Some(BackupNumber::new(12))), "Some(12)");
        assert_eq!(format!("{:>4}", BackupNumber::new(7)), "   7");
        assert_eq!("0012".parse::<BackupNumber>(), Ok(BackupNumber::new(12)));
        assert!("-1".parse::<BackupNumber>().is_err());
    }

    #[test]
    fn the_log_backup_of_the_first_set_is_zero_and_zero_has_none() {
        assert_eq!(BackupNumber::new(1).log_set(), Some(BackupNumber::new(0)));
        assert_eq!(BackupNumber::NONE.log_set(), None);
        assert_eq!(BackupNumber::new(1).previous(), BackupNumber::new(0));
        assert_eq!(BackupNumber::NONE.previous(), BackupNumber::NONE);
        assert_eq!(
            BackupNumber::new(u32::MAX).next(),
            BackupNumber::new(u32::MAX)
        );
    }

    proptest! {
        #[test]
        fn json_is_the_plain_number_both_ways(n in any::<u32>()) {
            let b = BackupNumber::new(n);
            let text = serde_json::to_string(&b).unwrap();
            prop_assert_eq!(&text, &n.to_string());
            prop_assert_eq!(serde_json::from_str::<BackupNumber>(&text).unwrap(), b);
        }

        #[test]
        fn previous_then_next_comes_back_above_zero(n in 1..=u32::MAX) {
            let b = BackupNumber::new(n);
            prop_assert_eq!(b.previous().next(), b);
            prop_assert!(b.previous() < b);
            prop_assert_eq!(b.log_set(), Some(b.previous()));
        }
    }
}
