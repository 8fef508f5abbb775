//! Which journal file is current, and when writing moves on (behaviour §11.3).
//! Pure: the file system is read by the caller.

use std::time::SystemTime;

/// A journal file past this size makes writing continue in the next number.
pub const LIMIT: u64 = 10 * 1024 * 1024;
/// The highest number; after it comes 1.
pub const MAX_NUMBER: u16 = 999;

/// `Backup Journal[NNN].txt`.
pub fn file_name(number: u16) -> String {
    format!("Backup Journal[{number:03}].txt")
}

/// The number of a journal file name, 1 to 999.
pub fn parse_file_name(name: &str) -> Option<u16> {
    let n = name
        .strip_prefix("Backup Journal[")?
        .strip_suffix("].txt")?;
    if n.len() != 3 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|n| (1..=MAX_NUMBER).contains(n))
}

/// The number after `n`: 999 is followed by 1.
pub fn next_number(n: u16) -> u16 {
    if n >= MAX_NUMBER { 1 } else { n + 1 }
}

/// The current file among `(number, modified)`: the newest. Files modified
/// within the same clock tick are ordered by their numbers, the last of a
/// run of consecutive numbers winning, so that 001 follows 999 after a wrap
/// even when the file system's clock cannot tell them apart.
pub fn current(files: &[(u16, SystemTime)]) -> Option<u16> {
    let newest = files.iter().map(|f| f.1).max()?;
    let tied: Vec<u16> = files
        .iter()
        .filter(|f| f.1 == newest)
        .map(|f| f.0)
        .collect();
    tied.iter()
        .copied()
        .find(|n| !tied.contains(&next_number(*n)))
        .or_else(|| tied.iter().copied().max())
}

/// Whether a current file of `size` bytes makes writing move on.
pub(crate) fn must_rotate(size: u64) -> bool {
    size > LIMIT
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn names_round_trip_and_others_are_refused() {
        assert_eq!(file_name(7), "Backup Journal[007].txt");
        assert_eq!(parse_file_name("Backup Journal[007].txt"), Some(7));
        for bad in [
            "Backup Journal[000].txt",
            "Backup Journal[1000].txt",
            "Backup Journal[07].txt",
            "journal.txt",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_newest_wins_and_ties_follow_the_numbers_across_a_wrap() {
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(current(&[(1, t(5)), (2, t(9)), (3, t(7))]), Some(2));
        assert_eq!(current(&[(998, t(1)), (999, t(9)), (1, t(9))]), Some(1));
        assert_eq!(current(&[(4, t(9)), (5, t(9))]), Some(5));
        assert_eq!(current(&[]), None);
    }
}
