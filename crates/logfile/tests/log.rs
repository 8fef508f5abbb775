//! The log file: what was appended reads back; a crash at any byte loses
//! only the record it cut; damage is told apart from a torn tail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use proptest::prelude::*;
use sauve_logfile::{
    Durability, HEADER_LEN, Header, LogClock, LogError, LogWriter, RECORD_HEADER_LEN, Record, Tag,
    Tail, encode_record_v1, read_log,
};

const ID: [u8; 16] = *b"data-file-0001!!";

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_log_cut_at_any_byte_reads_back_exactly_the_records_written_before_the_cut(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.journal");
        let w = LogWriter::create(&path, ID, 41, Durability::EveryAppend).unwrap();
        let mut ends = Vec::new();
        let mut end = HEADER_LEN;
        for p in &payloads {
            w.append(p).unwrap();
            end += RECORD_HEADER_LEN + p.len();
            ends.push(end);
        }
        drop(w);
        let bytes = std::fs::read(&path).unwrap();
        let at = HEADER_LEN + cut.index(bytes.len() - HEADER_LEN + 1);
        std::fs::write(&path, &bytes[..at]).unwrap();
        let read = read_log(&path).unwrap();
        let whole = ends.iter().filter(|e| **e <= at).count();
        prop_assert_eq!(read.records.len(), whole);
        for (i, r) in read.records.iter().enumerate() {
            prop_assert_eq!(r.seq, 41 + i as u64);
            prop_assert_eq!(&r.payload, &payloads[i]);
        }
        let expected_tail = if ends.contains(&at) || at == HEADER_LEN { Tail::Clean } else { Tail::Torn { offset: read.end } };
        prop_assert_eq!(read.tail, expected_tail);
        // The next writer truncates the torn tail and continues the numbering.
        let w = LogWriter::open(&path, Durability::EveryAppend).unwrap();
        prop_assert_eq!(w.append(b"after the crash").unwrap(), 41 + whole as u64);
        drop(w);
        let again = read_log(&path).unwrap();
        prop_assert_eq!(again.records.len(), whole + 1);
        prop_assert_eq!(again.tail, Tail::Clean);
    }
}

/// A clock that gives `start`, then one more µs... at each call, or steps
/// back when `back` says so.
fn stepping_clock(start: i64, steps: Vec<i64>) -> LogClock {
    let at = std::sync::Mutex::new((start, 0usize));
    Arc::new(move || {
        let mut g = at.lock().unwrap();
        let step = steps.get(g.1 % steps.len().max(1)).copied().unwrap_or(1);
        g.0 += step;
        g.1 += 1;
        jiff::Timestamp::from_microsecond(g.0).unwrap()
    })
}

/// A version-1 log of `payloads` from sequence `first`, as written before
/// version 2; the end offset of each record.
fn v1_log(first: u64, payloads: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Header {
        version: 1,
        ..Header::new(ID, first, 0)
    }
    .encode()
    .to_vec();
    let mut ends = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        bytes.extend_from_slice(&encode_record_v1(first + i as u64, p));
        ends.push(bytes.len());
    }
    (bytes, ends)
}

fn tag_strategy() -> impl Strategy<Value = Option<Tag>> {
    proptest::option::of((any::<u16>(), "\\PC{0,40}"))
        .prop_map(|t| t.map(|(kind, label)| Tag { kind, label }))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_version_2_log_cut_at_any_byte_reads_back_each_whole_record_with_its_time_and_tag(
        records in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..200), tag_strategy()), 0..16),
        steps in proptest::collection::vec(-5_000_000i64..5_000_000, 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.journal");
        let clock = stepping_clock(1_780_000_000_000_000, steps);
        let w = LogWriter::create_with_clock(&path, ID, 7, Durability::EveryAppend, clock).unwrap();
        let mut ends = Vec::new();
        let mut end = HEADER_LEN;
        for (p, tag) in &records {
            w.append_tagged(tag.as_ref(), p).unwrap();
            end += RECORD_HEADER_LEN + tag.as_ref().map_or(0, |t| t.label.len()) + p.len();
            ends.push(end);
        }
        drop(w);
        let bytes = std::fs::read(&path).unwrap();
        prop_assert_eq!(bytes.len(), end);
        let whole_log = read_log(&path).unwrap();
        prop_assert_eq!(whole_log.header.version, 2);
        // Times never go back, whatever the clock did.
        let times: Vec<i64> = whole_log.records.iter().map(|r| r.time.unwrap()).collect();
        prop_assert!(times.windows(2).all(|w| w[0] <= w[1]), "{:?}", times);
        let at = HEADER_LEN + cut.index(bytes.len() - HEADER_LEN + 1);
        std::fs::write(&path, &bytes[..at]).unwrap();
        let read = read_log(&path).unwrap();
        let whole = ends.iter().filter(|e| **e <= at).count();
        prop_assert_eq!(read.records.len(), whole);
        for (i, r) in read.records.iter().enumerate() {
            prop_assert_eq!(r.seq, 7 + i as u64);
            prop_assert_eq!(&r.payload, &records[i].0);
            prop_assert_eq!(&r.tag, &records[i].1);
            prop_assert_eq!(r.time, Some(times[i]));
        }
        let expected_tail = if ends.contains(&at) || at == HEADER_LEN { Tail::Clean } else { Tail::Torn { offset: read.end } };
        prop_assert_eq!(read.tail, expected_tail);
    }

    #[test]
    fn a_version_1_log_cut_at_any_byte_reads_back_and_is_continued_in_version_1(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.journal");
        let (bytes, ends) = v1_log(3, &payloads);
        let at = HEADER_LEN + cut.index(bytes.len() - HEADER_LEN + 1);
        std::fs::write(&path, &bytes[..at]).unwrap();
        let read = read_log(&path).unwrap();
        let whole = ends.iter().filter(|e| **e <= at).count();
        prop_assert_eq!(read.header.version, 1);
        prop_assert_eq!(read.records.len(), whole);
        for (i, r) in read.records.iter().enumerate() {
            prop_assert_eq!(r, &Record::new(3 + i as u64, payloads[i].clone()));
        }
        // A writer continues it as it is: version 1, no time, no tag.
        let w = LogWriter::open(&path, Durability::EveryAppend).unwrap();
        let tag = Tag::new(2, "notes").unwrap();
        prop_assert_eq!(w.append_tagged(Some(&tag), b"after").unwrap(), 3 + whole as u64);
        drop(w);
        let again = read_log(&path).unwrap();
        prop_assert_eq!(again.header.version, 1);
        prop_assert_eq!(again.records.len(), whole + 1);
        prop_assert_eq!(again.records.last().cloned(), Some(Record::new(3 + whole as u64, b"after".to_vec())));
        prop_assert_eq!(again.tail, Tail::Clean);
    }

    #[test]
    fn a_bit_flipped_in_any_record_of_either_version_never_yields_a_wrong_record(
        records in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..100), tag_strategy()), 1..10),
        version in 1u16..=2,
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.journal");
        let payloads: Vec<Vec<u8>> = records.iter().map(|r| r.0.clone()).collect();
        let (mut bytes, ends) = if version == 1 {
            v1_log(1, &payloads)
        } else {
            let w = LogWriter::create(&path, ID, 1, Durability::EveryAppend).unwrap();
            for (p, tag) in &records {
                w.append_tagged(tag.as_ref(), p).unwrap();
            }
            drop(w);
            let written = read_log(&path).unwrap();
            let mut ends = Vec::new();
            let mut end = HEADER_LEN;
            for r in &written.records {
                end += r.framed_len(2) as usize;
                ends.push(end);
            }
            (std::fs::read(&path).unwrap(), ends)
        };
        std::fs::write(&path, &bytes).unwrap();
        let written = read_log(&path).unwrap().records;
        let i = HEADER_LEN + at.index(bytes.len() - HEADER_LEN);
        bytes[i] ^= 1 << bit;
        std::fs::write(&path, &bytes).unwrap();
        let read = read_log(&path).unwrap();
        // Every record before the damaged one, and nothing from it on.
        let damaged = ends.iter().filter(|e| **e <= i).count();
        prop_assert_eq!(&read.records[..], &written[..damaged]);
        prop_assert!(read.tail != Tail::Clean);
    }
}

#[test]
fn damage_followed_by_more_records_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.journal");
    let w = LogWriter::create(&path, ID, 1, Durability::EveryAppend).unwrap();
    for i in 0..5u8 {
        w.append(&[i; 100]).unwrap();
    }
    drop(w);
    let mut bytes = std::fs::read(&path).unwrap();
    let second = HEADER_LEN + RECORD_HEADER_LEN + 100 + RECORD_HEADER_LEN + 10;
    bytes[second] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let read = read_log(&path).unwrap();
    assert_eq!(read.records.len(), 1, "reading stops before the bad record");
    assert_eq!(
        read.tail,
        Tail::Corrupt {
            offset: (HEADER_LEN + RECORD_HEADER_LEN + 100) as u64
        }
    );
    let e = LogWriter::open(&path, Durability::EveryAppend).unwrap_err();
    assert!(matches!(e, LogError::Corrupt { .. }), "{e}");
}

#[test]
fn group_commit_appends_from_many_threads_are_all_durable_and_ordered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.journal");
    let w = Arc::new(LogWriter::create(&path, ID, 1, Durability::GroupCommit).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let w = w.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| w.append(format!("{t}-{i}").as_bytes()).unwrap())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=400).collect::<Vec<u64>>());
    drop(w);
    let read = read_log(&path).unwrap();
    assert_eq!(read.records.len(), 400);
    assert_eq!(read.tail, Tail::Clean);
}

#[test]
fn rotation_renames_the_log_and_continues_the_numbering_in_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.journal");
    let w = LogWriter::create(&path, ID, 1, Durability::EveryAppend).unwrap();
    w.append(b"one").unwrap();
    w.append(b"two").unwrap();
    let pending = dir.path().join("data[0000-0001].journal");
    assert_eq!(w.rotate(&pending).unwrap(), Some(2));
    assert_eq!(w.append(b"three").unwrap(), 3);
    drop(w);
    let old = read_log(&pending).unwrap();
    assert_eq!(
        old.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2]
    );
    let new = read_log(&path).unwrap();
    assert_eq!((new.header.first_sequence, new.records.len()), (3, 1));
    assert_eq!(new.header.identity, ID);
}

#[test]
fn a_log_of_another_data_file_is_refused_with_1416() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.journal");
    drop(LogWriter::create(&path, ID, 1, Durability::EveryAppend).unwrap());
    let e = LogWriter::open_or_create(&path, *b"another-data-fil", Durability::EveryAppend)
        .unwrap_err();
    assert_eq!(e.status().code(), 1416);
    // A zero identity on either side matches.
    assert!(LogWriter::open_or_create(&path, [0; 16], Durability::EveryAppend).is_ok());
}

#[test]
fn what_is_not_a_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.journal");
    std::fs::write(&path, b"4D's own journal format").unwrap();
    assert!(matches!(
        read_log(&path).unwrap_err(),
        LogError::NotALog { .. }
    ));
}

/// Restore A (back to 1, run with 3 records) then B (back to 4, on A's
/// timeline, run with 6): an integration to the end applies 1 and 4 and
/// names each run it stepped over with the restore that set it aside.
#[test]
fn an_integration_names_each_run_stepped_over_with_its_restore() {
    use sauve_logfile::{SetAside, Skipped, Until, integrate};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.journal");
    let w = LogWriter::create(&path, ID, 1, Durability::EveryAppend).unwrap();
    for i in 1..=6u8 {
        w.append(&[i]).unwrap();
    }
    drop(w);
    let at = |s| jiff::Timestamp::from_second(s).unwrap();
    let a = SetAside {
        point: Until::Sequence(1),
        through: 3,
        after: Some(1),
        at: at(100),
    };
    let b = SetAside {
        point: Until::Sequence(4),
        through: 6,
        after: Some(4),
        at: at(200),
    };
    let mut applied = Vec::new();
    let done = integrate(&path, ID, 0, Until::End, &[a, b], |r| {
        applied.push(r.seq);
        Ok::<(), String>(())
    })
    .unwrap();
    assert_eq!(applied, [1, 4]);
    assert_eq!(
        done.skipped,
        [
            Skipped {
                restore: a.at,
                first: 2,
                last: 3,
                count: 2
            },
            Skipped {
                restore: b.at,
                first: 5,
                last: 6,
                count: 2
            },
        ]
    );
    assert_eq!(done.skipped_count(), 4);
    assert_eq!(done.last_applied, 6);
}
