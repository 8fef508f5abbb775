//! Property tests: add and retain keep numbered backups sorted, unique,
//! bounded, the newest kept; write then read is lossless.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use sauve_history::{History, HistoryEntry, Operation};

fn entry(number: u32, restore: bool, extra: Option<(String, i64)>) -> HistoryEntry {
    let mut e: HistoryEntry = serde_json::from_value(serde_json::json!({
        "backupPath": format!("/bk/d[{number:04}].4BK"),
        "structurePath": "/app/Project/A.4DProject",
        "dataPath": "/app/Data/d.4DD",
        "logPath": "",
        "startingDate": "2025-01-01T00:00:00.000Z",
        "endingDate": "2025-01-01T00:00:01.000Z",
        "scheduledDate": "2025-01-01T00:00:00.000Z",
        "backupNumber": number,
        "duration": 1000,
        "attachments": [],
    }))
    .unwrap();
    if restore {
        e.operation = Some(Operation::Restore);
    }
    if let Some((k, v)) = extra {
        e.extra.insert(format!("x{k}"), serde_json::json!(v));
    }
    e
}

#[derive(Clone, Debug)]
enum Op {
    Add {
        key: u8,
        number: u32,
        restore: bool,
        extra: Option<(String, i64)>,
    },
    Retain {
        key: u8,
        limit: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..2, 0u32..40, any::<bool>(), proptest::option::of(("[a-z]{1,5}", any::<i64>())))
            .prop_map(|(key, number, restore, extra)| Op::Add { key, number, restore, extra }),
        1 => (0u8..2, 1usize..6).prop_map(|(key, limit)| Op::Retain { key, limit }),
    ]
}

proptest! {
    #[test]
    fn add_and_retain_keep_numbers_sorted_unique_bounded_and_newest(ops in proptest::collection::vec(op(), 1..60)) {
        let mut h = History::default();
        let keys = ["/app/Project/A.4DProject", "C:\\app\\Project\\B.4DProject"];
        for op in ops {
            match op {
                Op::Add { key, number, restore, extra } => {
                    h.add(keys[key as usize], entry(number, restore, extra)).unwrap();
                }
                Op::Retain { key, limit } => {
                    let key = keys[key as usize];
                    let before: Vec<u32> = h.entries(key).unwrap().iter().filter(|e| e.is_numbered_backup()).map(|e| e.backup_number.get()).collect();
                    h.retain(key, limit).unwrap();
                    let after: Vec<u32> = h.entries(key).unwrap().iter().filter(|e| e.is_numbered_backup()).map(|e| e.backup_number.get()).collect();
                    let newest: Vec<u32> = before[before.len().saturating_sub(limit)..].to_vec();
                    prop_assert_eq!(after, newest, "the newest {} kept", limit);
                    let e = h.entries(key).unwrap();
                    prop_assert!(e.iter().filter(|x| x.backup_number == 0 && x.operation() == Operation::Backup).count() <= limit);
                    prop_assert!(e.iter().filter(|x| x.operation() == Operation::Restore).count() <= limit);
                }
            }
            for key in keys {
                let numbers: Vec<u32> = h.entries(key).unwrap().iter().filter(|e| e.is_numbered_backup()).map(|e| e.backup_number.get()).collect();
                prop_assert!(numbers.windows(2).all(|w| w[0] < w[1]), "sorted and unique: {:?}", numbers);
            }
        }
        let text = String::from_utf8(h.to_json().unwrap()).unwrap();
        let back = History::parse(&text).unwrap();
        prop_assert_eq!(&back, &h);
        prop_assert_eq!(String::from_utf8(back.to_json().unwrap()).unwrap(), text);
    }
}
