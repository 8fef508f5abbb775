//! A real 4D journal reads into typed entries, LF or CRLF.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jiff::civil::date;
use sauve_journal::{Title, parse_journal};

fn fixture() -> String {
    let path = format!(
        "{}/../../tests/fixtures/4d-samples/hourly-with-retention.Backup Journal[001].txt",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_4d_journal_reads_entry_by_entry() {
    let text = fixture();
    let entries = parse_journal(&text);
    let full = entries
        .iter()
        .filter(|e| e.title == Some(Title::FullBackup))
        .count();
    assert_eq!(full, 40);
    assert_eq!(entries.len(), 41);

    let first = &entries[0];
    assert_eq!(
        first.creating_archive.as_deref(),
        Some("Macintosh HD:Users:kirk:4D Workspace:v18:Databases:gedcom_parser:data[0001].4BK")
    );
    let found: Vec<Option<bool>> = first.attachments.iter().map(|a| a.found).collect();
    assert_eq!(found, [Some(true), Some(false), Some(false), Some(true)]);
    assert_eq!(
        first.attachments[0].path,
        "Macintosh HD:Users:kirk:4D Workspace:v18:Databases:gedcom_parser:backup:"
    );
    let scheduled = first.scheduled.as_ref().unwrap();
    assert_eq!(scheduled.raw, "5/30/20 7:00 AM");
    assert_eq!(scheduled.local, Some(date(2020, 5, 30).at(7, 0, 0, 0)));
    assert_eq!(
        first.starting.as_ref().unwrap().local,
        Some(date(2020, 7, 26).at(12, 2, 0, 0))
    );

    let with_deletion = &entries[3];
    assert_eq!(
        with_deletion.deleted,
        ["Macintosh HD:Users:kirk:4D Workspace:v18:Databases:gedcom_parser:data[0001].4BK"]
    );

    let integration = entries
        .iter()
        .find(|e| e.title == Some(Title::AutomaticLogIntegration))
        .unwrap();
    assert_eq!(
        integration.log_file.as_deref(),
        Some("Macintosh HD:Users:kirk:4D Workspace:v18:Databases:gedcom_parser:Data:data.journal")
    );
    assert_eq!(integration.result.as_deref(), Some("OK"));
    // An ambiguous locale date stays raw.
    let ambiguous = entries
        .iter()
        .find_map(|e| e.starting.as_ref().filter(|s| s.raw.starts_with("8/6/20")))
        .unwrap();
    assert_eq!(ambiguous.local, None);
    assert!(
        entries.iter().all(|e| e.other.is_empty()),
        "every line understood"
    );
}

#[test]
fn crlf_journals_read_the_same() {
    let text = fixture();
    assert_eq!(
        parse_journal(&text.replace('\n', "\r\n")),
        parse_journal(&text)
    );
}
