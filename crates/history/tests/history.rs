//! backupHistory.json: real 4D files, numbering, corruption, atomic writes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sauve_history::{
    FILE_NAME, History, HistoryAttachment, HistoryEntry, HistoryFile, LockWindows, Operation,
    archive_numbers, format_date, next_number, read_entries,
};

const KEY_A: &str = "Macintosh HD:Users:rolandlannuzel:Documents:Github:HDI:4D V20 R4:HDI_NewDateTimeFormats:Project:HDI_NewDateTimeFormats.4DProject";
const KEY_B: &str = "TinySur:Users:rl4d:Documents:Github:HDIs:V20R4:HDI_NewDateTimeFormats:Project:HDI_NewDateTimeFormats.4DProject";

fn fixture() -> String {
    let path = format!(
        "{}/../../tests/fixtures/4d-samples/two-structures.backupHistory.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

fn t(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn entry(number: u32, status: i32) -> HistoryEntry {
    HistoryEntry {
        backup_path: if number > 0 {
            format!("/bk/data[{number:04}].4BK")
        } else {
            String::new()
        },
        structure_path: "/app/Project/Invoices.4DProject".into(),
        data_path: "/app/Data/data.4DD".into(),
        log_path: String::new(),
        starting_date: format_date(t("2025-03-14T01:00:01.204Z")),
        ending_date: format_date(t("2025-03-14T01:03:27.950Z")),
        scheduled_date: format_date(t("2025-03-14T01:00:00Z")),
        status: Some(status),
        backup_number: number.into(),
        duration: 206_746,
        attachments: vec![HistoryAttachment {
            attachment_path: "/app/Data/data.4DIndx".into(),
            found: true,
            extra: Default::default(),
        }],
        operation: Some(Operation::Backup),
        trigger: Some("scheduled".into()),
        lock_windows: Some(LockWindows {
            data: Some(12_408),
            structure: None,
        }),
        segments: Some(vec![format!("/bk/data[{number:04}].4BK")]),
        files: Some(vec![HistoryFile {
            path: "Data/data.4DD".into(),
            size: 734_003_200,
            blake3: "9f2c".into(),
        }]),
        stored: None,
        offsite: None,
        parent: None,
        extra: Default::default(),
    }
}

#[test]
fn the_4d_fixture_reads_with_both_structure_keys() {
    let h = History::parse(&fixture()).unwrap();
    assert_eq!(h.keys().collect::<Vec<_>>(), [KEY_A, KEY_B]);
    let a = h.entries(KEY_A).unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].backup_number, 1);
    assert_eq!(a[0].status, None, "4D wrote no status");
    assert_eq!(a[0].operation(), Operation::Backup);
    assert_eq!(a[0].duration, 55);
    assert_eq!(a[0].log_path, "");
    assert_eq!(a[0].starting_date, "2023-12-06T07:55:51.552Z");
    assert_eq!(
        a[0].attachments.iter().map(|x| x.found).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert!(
        a[0].backup_path
            .ends_with("HDI_NewDateTimeFormats:data[0001].4BK")
    );
    assert_eq!(h.entries(KEY_B).unwrap()[0].duration, 62);
}

#[test]
fn a_field_twice_in_an_entry_reads_the_same_through_both_readers() {
    // `cargo xtask fuzz`, target history: with `structurePath` twice in an
    // entry, the one-pass reader (the History page) found no history where
    // the whole-file reader (the records) found the entry.
    let text = fixture().replacen(
        "\"structurePath\":",
        "\"structurePath\": \"first, then replaced\",\n\t\t\t\"structurePath\":",
        1,
    );
    let h = History::parse(&text).unwrap();
    let whole = h.entries(KEY_A).unwrap();
    assert_eq!(whole.len(), 1);
    assert_ne!(
        whole[0].structure_path, "first, then replaced",
        "the last one wins"
    );
    assert_eq!(read_entries(&text, KEY_A), Some(whole));
    assert_eq!(read_entries(&text, KEY_B), h.entries(KEY_B));
}

#[test]
fn one_keys_entries_read_in_one_pass_are_those_the_whole_history_gives() {
    let text = fixture();
    let h = History::parse(&text).unwrap();
    for key in [KEY_A, KEY_B, "no such structure"] {
        assert_eq!(read_entries(&text, key), h.entries(key), "{key}");
    }
    assert_eq!(
        read_entries(&format!("\u{FEFF}{text}"), KEY_A),
        h.entries(KEY_A)
    );
    // Ours written beside 4D's, files and all.
    let mut h = h;
    h.add("/srv/app", entry(3, -43)).unwrap();
    let text = String::from_utf8(h.to_json().unwrap()).unwrap();
    assert_eq!(read_entries(&text, "/srv/app").unwrap(), [entry(3, -43)]);
    for bad in ["[]", "{\"/srv/app\": 3}", "{", "{} trailing", ""] {
        assert_eq!(read_entries(bad, "/srv/app"), None, "{bad}");
    }
    // Another key's damage does not hide this one's entries.
    assert_eq!(read_entries("{\"x\": 3, \"k\": []}", "k"), Some(vec![]));
}

#[test]
fn the_4d_fixture_rewrites_byte_identical() {
    let text = fixture();
    let h = History::parse(&text).unwrap();
    assert_eq!(String::from_utf8(h.to_json().unwrap()).unwrap(), text);
}

#[test]
fn numbering_continues_a_4d_history_and_keeps_keys_apart() {
    let mut h = History::parse(&fixture()).unwrap();
    assert_eq!(next_number(&h, KEY_A, &nums(&[]), "data", false).number, 2);
    assert_eq!(
        next_number(
            &h,
            "/elsewhere/Project/X.4DProject",
            &nums(&[]),
            "data",
            false
        )
        .number,
        1
    );
    h.add(KEY_A, entry(2, 0)).unwrap();
    assert_eq!(next_number(&h, KEY_A, &nums(&[]), "data", false).number, 3);
    assert_eq!(next_number(&h, KEY_B, &nums(&[]), "data", false).number, 2);
}

#[test]
fn a_taken_number_moves_past_the_highest_archive_with_a_note() {
    let h = History::default();
    let n = next_number(
        &h,
        "/app/Project/A.4DProject",
        &nums(&[1, 2, 7]),
        "data",
        false,
    );
    assert_eq!(n.number, 8);
    assert_eq!(
        n.note.as_deref(),
        Some("data[0001].4BK already exists in the destination; numbering continues at 0008")
    );
    let free = next_number(
        &h,
        "/app/Project/A.4DProject",
        &nums(&[2, 7]),
        "data",
        false,
    );
    assert_eq!((free.number, free.note), (1.into(), None));
}

#[test]
fn archive_numbers_count_segments_and_ignore_others() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "data[0003].4BK",
        "data[0005-0001].4BK",
        "data[0005-0002].4BK",
        "data[0009].4BL",
        "data[0011].4BK.part",
        "other[0020].4BK",
        "data[0002].4BK",
    ] {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    assert_eq!(archive_numbers(dir.path(), "data").unwrap(), [2, 3, 5]);
    assert_eq!(
        archive_numbers(&dir.path().join("missing"), "data").unwrap(),
        Vec::<u32>::new()
    );
}

#[test]
fn a_corrupt_history_is_moved_aside_and_numbering_follows_the_archives() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), b"{\"half\": [").unwrap();
    std::fs::write(dir.path().join("data[0004].4BK"), b"").unwrap();
    let loaded = History::load(dir.path(), t("2025-03-19T07:58:12Z")).unwrap();
    let aside = dir
        .path()
        .join("backupHistory.json.corrupt-20250319T075812Z");
    assert_eq!(loaded.moved_aside.as_deref(), Some(aside.as_path()));
    assert_eq!(std::fs::read(&aside).unwrap(), b"{\"half\": [");
    assert!(!dir.path().join(FILE_NAME).exists());
    assert!(
        loaded.notes[0].contains("was not a valid history"),
        "{:?}",
        loaded.notes
    );
    let existing = archive_numbers(dir.path(), "data").unwrap();
    let n = next_number(
        &loaded.history,
        "/app/Project/A.4DProject",
        &existing,
        "data",
        true,
    );
    assert_eq!(n.number, 5);
}

#[test]
fn a_deleted_history_restarts_at_1_without_overwriting() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = History::load(dir.path(), t("2025-03-19T07:58:12Z")).unwrap();
    assert!(loaded.moved_aside.is_none());
    assert_eq!(
        next_number(&loaded.history, "k", &nums(&[]), "data", false).number,
        1
    );
    assert_eq!(
        next_number(&loaded.history, "k", &nums(&[1, 2, 3]), "data", false).number,
        4
    );
}

#[test]
fn a_write_that_fails_half_way_leaves_the_previous_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = History::default();
    h.add("/app/Project/A.4DProject", entry(1, 0)).unwrap();
    h.save(dir.path()).unwrap();
    let before = std::fs::read(dir.path().join(FILE_NAME)).unwrap();

    h.add("/app/Project/A.4DProject", entry(2, 0)).unwrap();
    let err = h
        .save_through(dir.path(), |w, bytes| {
            w.write_all(&bytes[..bytes.len() / 2])?;
            Err(std::io::Error::other("disk unplugged"))
        })
        .unwrap_err();
    assert!(err.to_string().contains("disk unplugged"), "{err}");
    assert_eq!(std::fs::read(dir.path().join(FILE_NAME)).unwrap(), before);
    let again = History::load(dir.path(), t("2025-03-19T07:58:12Z")).unwrap();
    assert_eq!(
        again.history.highest_number("/app/Project/A.4DProject"),
        Some(1.into())
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
}

#[test]
fn restores_and_runs_without_archive_are_recorded_apart() {
    let mut h = History::default();
    let key = "/app/Project/A.4DProject";
    for n in 1..=5 {
        h.add(key, entry(n, 0)).unwrap();
        h.add(key, entry(0, 1407)).unwrap();
        let mut r = entry(n, 0);
        r.operation = Some(Operation::Restore);
        h.add(key, r).unwrap();
    }
    h.retain(key, 3).unwrap();
    let e = h.entries(key).unwrap();
    let numbered: Vec<u32> = e
        .iter()
        .filter(|x| x.is_numbered_backup())
        .map(|x| x.backup_number.get())
        .collect();
    assert_eq!(numbered, [3, 4, 5]);
    assert_eq!(e.iter().filter(|x| x.backup_number == 0).count(), 3);
    assert_eq!(
        e.iter()
            .filter(|x| x.operation() == Operation::Restore)
            .count(),
        3
    );
    h.remove_numbers(key, &nums(&[3])).unwrap();
    assert_eq!(h.highest_number(key), Some(5.into()));
    assert!(
        !h.entries(key)
            .unwrap()
            .iter()
            .any(|x| x.is_numbered_backup() && x.backup_number == 3)
    );
}

#[test]
fn sauve_writes_4d_shape_with_its_fields_after_4d_keys() {
    let mut h = History::default();
    h.add("/app/Project/Invoices.4DProject", entry(42, 0))
        .unwrap();
    let text = String::from_utf8(h.to_json().unwrap()).unwrap();
    assert!(!text.ends_with('\n'));
    insta::assert_snapshot!("sauve_history", text);
    let dir = tempfile::tempdir().unwrap();
    h.save(dir.path()).unwrap();
    let back = History::load(dir.path(), t("2025-01-01T00:00:00Z"))
        .unwrap()
        .history;
    assert_eq!(back, h);
}

#[test]
fn a_history_4d_wrote_with_a_bom_reads_and_prints_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = fixture();
    std::fs::write(dir.path().join(FILE_NAME), format!("\u{FEFF}{text}")).unwrap();
    let printed = sauve_history::read_json_text(dir.path()).unwrap().unwrap();
    assert!(!printed.starts_with('\u{FEFF}'));
    assert_eq!(printed, text);
    serde_json::from_str::<serde_json::Value>(&printed).unwrap();
    let loaded = History::load(dir.path(), t("2025-01-01T00:00:00Z")).unwrap();
    assert!(loaded.moved_aside.is_none());
    assert!(loaded.history.highest_number(KEY_A).is_some());
    // No history yet: nothing to print.
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(sauve_history::read_json_text(empty.path()).unwrap(), None);
}

/// Backup numbers from plain ones.
fn nums(v: &[u32]) -> Vec<sauve_number::BackupNumber> {
    v.iter().copied().map(Into::into).collect()
}

#[test]
fn a_stored_record_that_does_not_read_is_left_out_and_the_history_still_reads() {
    let mut e = serde_json::to_value(entry(3, 0)).unwrap();
    e["stored"] =
        serde_json::json!([{"name": "data[0003].4BK", "size": -1, "pieceSize": "x", "sums": "%%"}]);
    let text = serde_json::json!({ "/app/A.4DProject": [e] }).to_string();
    let h = History::parse(&text).expect("the history reads");
    let read = h.entries("/app/A.4DProject").unwrap();
    assert_eq!(read[0].backup_number, 3);
    assert_eq!(read[0].stored, None);
    let good = serde_json::json!([{"name": "data[0003].4BK", "size": 5, "pieceSize": 4194304, "sums": "AAAAAAAAAAA="}]);
    let mut e = serde_json::to_value(entry(4, 0)).unwrap();
    e["stored"] = good;
    let text = serde_json::json!({ "/app/A.4DProject": [e] }).to_string();
    let h = History::parse(&text).unwrap();
    let stored = h.entries("/app/A.4DProject").unwrap()[0]
        .stored
        .clone()
        .unwrap();
    assert_eq!((stored[0].size, stored[0].count()), (5, 1));
}
