//! Rotation and numbering: a model of the journal files driven by random
//! entry sizes, restarts and a coarse file-system clock; and the real files
//! across a wrap.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use sauve_journal::{Entry, Journal, MAX_NUMBER, SIZE_LIMIT, Title, current, next_number};

#[derive(Clone, Debug)]
enum Op {
    /// An entry of this many bytes.
    Append(u64),
    /// The process restarts: the current file is found again from the files.
    Restart,
    /// The file-system clock ticks.
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => prop_oneof![1u64..4096, 1_000_000u64..6_000_000].prop_map(Op::Append),
        1 => Just(Op::Restart),
        3 => Just(Op::Tick),
    ]
}

/// The journal files as the model sees them: number → (size, modified).
struct Model {
    files: BTreeMap<u16, (u64, SystemTime)>,
    current: u16,
    clock: u64,
}

impl Model {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.clock * 4)
    }

    /// What `Journal::append` does: the rotation check, then the write.
    fn append(&mut self, size: u64) -> Option<u16> {
        let mut rotated = None;
        let cur = self.files.get(&self.current).map_or(0, |f| f.0);
        if cur > SIZE_LIMIT {
            let next = next_number(self.current);
            self.files.insert(next, (0, self.now()));
            rotated = Some(next);
            self.current = next;
        }
        let now = self.now();
        let f = self.files.entry(self.current).or_insert((0, now));
        f.0 += size;
        f.1 = now;
        rotated
    }

    fn restart(&mut self) {
        let list: Vec<(u16, SystemTime)> = self.files.iter().map(|(n, f)| (*n, f.1)).collect();
        self.current = current(&list).unwrap_or(1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn numbers_never_skip_or_repeat_and_files_stay_bounded(
        start in 1u16..=MAX_NUMBER,
        ops in proptest::collection::vec(op(), 1..400),
    ) {
        // The journal as a previous run left it: its current file exists.
        let mut m = Model { files: BTreeMap::new(), current: start, clock: 0 };
        m.files.insert(start, (0, m.now()));
        m.clock += 1;
        let mut sequence = vec![start];
        let mut largest_entry = 0;
        for op in ops {
            match op {
                Op::Append(size) => {
                    largest_entry = largest_entry.max(size);
                    if let Some(n) = m.append(size) {
                        prop_assert_eq!(n, next_number(*sequence.last().unwrap()), "no skip");
                        sequence.push(n);
                    }
                }
                Op::Restart => {
                    let before = m.current;
                    m.restart();
                    prop_assert_eq!(m.current, before, "a restart finds the current file again");
                }
                Op::Tick => m.clock += 1,
            }
            prop_assert!((1..=MAX_NUMBER).contains(&m.current));
            for (n, (size, _)) in &m.files {
                prop_assert!(*size <= SIZE_LIMIT + largest_entry, "file {} holds {} bytes", n, size);
            }
        }
        // Consecutive numbers, wrapping after 999 to 1, none repeated before a full cycle.
        for w in sequence.windows(2) {
            prop_assert_eq!(w[1], next_number(w[0]));
        }
        prop_assert!(sequence.len() <= usize::from(MAX_NUMBER));
    }
}

#[test]
fn the_real_files_wrap_from_999_to_001_and_reopen_there() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path();
    // An old [001] and a full [999], the newest.
    std::fs::write(logs.join("Backup Journal[001].txt"), "*** Full Backup\n\n").unwrap();
    let f999 = std::fs::File::create(logs.join("Backup Journal[999].txt")).unwrap();
    f999.set_len(SIZE_LIMIT + 1).unwrap();
    f999.set_modified(SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    let old = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(logs.join("Backup Journal[001].txt"))
        .unwrap()
        .set_modified(old)
        .unwrap();

    let mut j = Journal::open(logs).unwrap();
    assert_eq!(j.current_number(), 999);
    j.append(&Entry::new(Title::BackupStopped), true).unwrap();
    assert_eq!(j.current_number(), 1);
    assert_eq!(
        std::fs::read_to_string(logs.join("Backup Journal[001].txt")).unwrap(),
        "*** Backup stopped\n\n",
        "[001] was truncated and reused"
    );
    // [001] and [999] may share a clock tick; [001] still wins.
    let t = std::fs::metadata(logs.join("Backup Journal[001].txt"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::File::options()
        .write(true)
        .open(logs.join("Backup Journal[999].txt"))
        .unwrap()
        .set_modified(t)
        .unwrap();
    assert_eq!(Journal::open(logs).unwrap().current_number(), 1);
}

#[test]
fn an_entry_torn_by_a_crash_leaves_earlier_entries_intact() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path()).unwrap();
    let mut first = Entry::new(Title::FullBackup);
    first.trigger = Some("manual".into());
    j.append(&first, true).unwrap();
    // A crash mid-entry: half a line, no end.
    let path = j.current_path();
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("*** Full Backup\nTrigger : sched");
    std::fs::write(&path, &text).unwrap();

    let mut j = Journal::open(dir.path()).unwrap();
    let mut next = Entry::new(Title::BackupStopped);
    next.status = Some(1406);
    j.append(&next, true).unwrap();
    let entries = sauve_journal::read_all(dir.path()).unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0], first);
    assert_eq!(
        entries[1].trigger.as_deref(),
        Some("sched"),
        "the torn entry, as far as it went"
    );
    assert_eq!(entries[2].title, Some(Title::BackupStopped));
    assert_eq!(entries[2].status, Some(1406));
}

#[test]
fn entries_are_read_back_across_files_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path();
    let mut j = Journal::open(logs).unwrap();
    j.append(&Entry::new(Title::FullBackup), true).unwrap();
    // Make [001] full, so the next entry goes to [002].
    std::fs::File::options()
        .write(true)
        .open(j.current_path())
        .unwrap()
        .set_len(SIZE_LIMIT + 1)
        .unwrap();
    let mut j = Journal::open(logs).unwrap();
    j.append(&Entry::new(Title::Restore), true).unwrap();
    assert_eq!(j.current_number(), 2);
    let titles: Vec<_> = sauve_journal::read_all(logs)
        .unwrap()
        .into_iter()
        .map(|e| e.title)
        .collect();
    assert_eq!(titles.first(), Some(&Some(Title::FullBackup)));
    assert_eq!(titles.last(), Some(&Some(Title::Restore)));
}

#[test]
fn the_newest_entries_come_first_page_by_page_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path();
    let mut j = Journal::open(logs).unwrap();
    for t in [Title::FullBackup, Title::BackupStopped] {
        j.append(&Entry::new(t), true).unwrap();
    }
    // The next entries go to [002]: [001] is full.
    let padding = "x".repeat(SIZE_LIMIT as usize + 1);
    std::fs::OpenOptions::new()
        .append(true)
        .open(j.current_path())
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("\n{padding}\n\n").as_bytes()))
        .unwrap();
    let mut j = Journal::open(logs).unwrap();
    for t in [Title::Restore, Title::FullBackupAborted] {
        j.append(&Entry::new(t), true).unwrap();
    }
    assert_eq!(j.current_number(), 2);
    let titles = |skip, take| {
        let (page, more) = sauve_journal::read_newest(logs, skip, take).unwrap();
        (
            page.into_iter()
                .map(|e| e.title.unwrap())
                .collect::<Vec<_>>(),
            more,
        )
    };
    assert_eq!(titles(0, 1), (vec![Title::FullBackupAborted], true));
    assert_eq!(
        titles(1, 2),
        (vec![Title::Restore, Title::BackupStopped], true)
    );
    assert_eq!(titles(3, 5), (vec![Title::FullBackup], false));
    assert_eq!(titles(9, 5), (vec![], false));
    let all: Vec<_> = sauve_journal::read_all(logs)
        .unwrap()
        .into_iter()
        .map(|e| e.title.unwrap())
        .collect();
    assert_eq!(
        all,
        [
            Title::FullBackup,
            Title::BackupStopped,
            Title::Restore,
            Title::FullBackupAborted
        ]
    );
}

#[test]
fn the_journal_continues_in_data_logs_only_when_the_app_keeps_it_there() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path();
    // Nothing anywhere: a new journal starts in APP/Logs.
    assert_eq!(sauve_journal::journal_dir(app), app.join("Logs"));
    // A 4D project app keeping its journal in Data/Logs: continue there.
    std::fs::create_dir_all(app.join("Data/Logs")).unwrap();
    std::fs::write(
        app.join("Data/Logs/Backup Journal[004].txt"),
        "*** Full Backup\n\n",
    )
    .unwrap();
    assert_eq!(sauve_journal::journal_dir(app), app.join("Data/Logs"));
    // APP/Logs holding sauve's state but no journal does not change that.
    std::fs::create_dir_all(app.join("Logs")).unwrap();
    std::fs::write(app.join("Logs/sauve-state.json"), "{}").unwrap();
    assert_eq!(sauve_journal::journal_dir(app), app.join("Data/Logs"));
    // A journal in both: APP/Logs wins, as for an app 4D itself writes there.
    std::fs::write(
        app.join("Logs/Backup Journal[001].txt"),
        "*** Full Backup\n\n",
    )
    .unwrap();
    assert_eq!(sauve_journal::journal_dir(app), app.join("Logs"));
}
