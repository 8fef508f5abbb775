//! Every malformed or out-of-range input gives an error that names the file,
//! line and column, key path, value as written and what is accepted.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sauve_settings::{SettingsDoc, SettingsError};

const NAME: &str = "backup.4DSettings";

fn defaults() -> String {
    let path = format!(
        "{}/../../tests/fixtures/4d-samples/defaults-modern.backup.4DSettings",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

/// The fixture with `from` replaced by `to` (exactly once).
fn edited(from: &str, to: &str) -> String {
    let text = defaults();
    assert_eq!(text.matches(from).count(), 1, "{from}");
    text.replacen(from, to, 1)
}

fn error_of(bytes: &[u8]) -> String {
    match SettingsDoc::parse(bytes, NAME) {
        Ok(_) => panic!("accepted: {}", String::from_utf8_lossy(bytes)),
        Err(e) => e.to_string(),
    }
}

#[test]
fn out_of_range_values_are_located_and_explained() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "<Every>12</Every>",
            "<Every>25</Every>",
            "backup.4DSettings:46:18: Backup/Settings/Scheduler/Hourly/Every: invalid value \"25\" (accepted: integer 1 to 24)",
        ),
        (
            "<Every>12</Every>",
            "<Every>0</Every>",
            "backup.4DSettings:46:18: Backup/Settings/Scheduler/Hourly/Every: invalid value \"0\" (accepted: integer 1 to 24)",
        ),
        (
            "<StartingAt>0000-00-00T00:00:00.000</StartingAt>",
            "<StartingAt>25:00:00</StartingAt>",
            "backup.4DSettings:47:23: Backup/Settings/Scheduler/Hourly/StartingAt: invalid value \"25:00:00\" (accepted: time of day HH:MM:SS or 0000-00-00THH:MM:SS, hour 00 to 23)",
        ),
        (
            "<DefaultSize>0</DefaultSize>",
            "<DefaultSize>4096</DefaultSize>",
            "backup.4DSettings:25:24: Backup/Settings/Advanced/FileSegmentation/DefaultSize: invalid value \"4096\" (accepted: integer 0 to 2048)",
        ),
        (
            "<RetryCountBeforeAbort>5</RetryCountBeforeAbort>",
            "<RetryCountBeforeAbort>-2</RetryCountBeforeAbort>",
            "backup.4DSettings:10:34: Backup/Settings/Advanced/BackupFailure/RetryCountBeforeAbort: invalid value \"-2\" (accepted: integer 1 or more)",
        ),
        (
            "<Value>3</Value>",
            "<Value>-1</Value>",
            "backup.4DSettings:18:18: Backup/Settings/Advanced/SetNumber/Value: invalid value \"-1\" (accepted: integer 1 or more)",
        ),
        (
            "<ItemsCount>3</ItemsCount>",
            "<ItemsCount>-3</ItemsCount>",
            "backup.4DSettings:37:23: Backup/Settings/General/IncludesFiles/ItemsCount: invalid value \"-3\" (accepted: integer 0 or more)",
        ),
        (
            "<CompressionRate>Fast</CompressionRate>",
            "<CompressionRate>Turbo</CompressionRate>",
            "backup.4DSettings:20:26: Backup/Settings/Advanced/CompressionRate: invalid value \"Turbo\" (accepted: None, Fast or Compact)",
        ),
        (
            "<Frequency>Never</Frequency>",
            "<Frequency>Yearly</Frequency>",
            "backup.4DSettings:44:20: Backup/Settings/Scheduler/Frequency: invalid value \"Yearly\" (accepted: Never, Hourly, Daily, Weekly or Monthly)",
        ),
        (
            "<Day>1</Day>",
            "<Day>32</Day>",
            "backup.4DSettings:87:16: Backup/Settings/Scheduler/Monthly/Day: invalid value \"32\" (accepted: integer 1 to 28, or Last)",
        ),
        (
            "<AutomaticRestore>True</AutomaticRestore>",
            "<AutomaticRestore>yes</AutomaticRestore>",
            "backup.4DSettings:12:27: Backup/Settings/Advanced/AutomaticRestore: invalid value \"yes\" (accepted: True or False)",
        ),
        (
            "<TryToBackupAfter>00:01:00</TryToBackupAfter>",
            "<TryToBackupAfter>2024-01-01T00:01:00</TryToBackupAfter>",
            "backup.4DSettings:8:29: Backup/Settings/Advanced/BackupFailure/TryToBackupAfter: invalid value \"2024-01-01T00:01:00\" (accepted: duration HH:MM:SS[.fff] or 0000-00-00THH:MM:SS[.fff])",
        ),
        (
            "<Value>3</Value>",
            "<Value><N>3</N></Value>",
            "backup.4DSettings:18:18: Backup/Settings/Advanced/SetNumber/Value: expected a value, found element <N>",
        ),
        (
            "<Enable>True</Enable>",
            "<Enable>True</Enable><Enable>False</Enable>",
            "backup.4DSettings:17:32: Backup/Settings/Advanced/SetNumber/Enable: duplicate element <Enable> (accepted: one)",
        ),
    ];
    for (from, to, want) in cases {
        assert_eq!(error_of(edited(from, to).as_bytes()), *want, "{to}");
    }
}

#[test]
fn every_invalid_value_of_a_file_is_listed_in_file_order() {
    let text = edited("<Every>12</Every>", "<Every>99</Every>").replacen(
        "<Value>3</Value>",
        "<Value>0</Value>",
        1,
    );
    let Err(SettingsError::Invalid { problems }) = SettingsDoc::parse(text.as_bytes(), NAME) else {
        panic!("accepted");
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "Backup/Settings/Advanced/SetNumber/Value",
            "Backup/Settings/Scheduler/Hourly/Every"
        ]
    );
}

#[test]
fn documents_that_are_not_backup_settings_are_refused_at_the_parser_position() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            defaults().replace("Preferences4D", "Preferences"),
            "backup.4DSettings:1:56: wrong root element <Preferences> (accepted: <Preferences4D xmlns=\"http://www.4d.com/namespace/reserved/2004/backup\">)",
        ),
        (
            defaults().replace("2004/backup", "2004/other"),
            "backup.4DSettings:1:56: foreign namespace \"http://www.4d.com/namespace/reserved/2004/other\" (accepted: http://www.4d.com/namespace/reserved/2004/backup)",
        ),
        (
            defaults()[..1500].to_owned(),
            "backup.4DSettings:35:3: malformed XML: unexpected end of file, <General> is not closed",
        ),
        (
            defaults()[..defaults().find("<Item1>./Da").unwrap() + 11].to_owned(),
            "backup.4DSettings:38:22: malformed XML: unexpected end of file, <Item1> is not closed",
        ),
        (
            defaults()[..defaults().find("<Item1>").unwrap() + 4].to_owned(),
            "backup.4DSettings:38:11: malformed XML: syntax error: tag not closed: `>` not found before end of input",
        ),
        (
            edited("</SetNumber>", "</SetNumbers>"),
            "backup.4DSettings:19:9: malformed XML: ill-formed document: expected `</SetNumber>`, but `</SetNumbers>` was found",
        ),
        (String::new(), "backup.4DSettings:1:1: malformed XML: no root element"),
    ]
    .into_iter()
    .map(|(t, e)| (t.into_bytes(), e))
    .collect();
    for (bytes, want) in cases {
        assert_eq!(error_of(&bytes), want);
    }
}

#[test]
fn non_utf8_is_refused_with_the_position_of_the_first_bad_byte() {
    let mut bytes = edited("./Backup/", "./Bäckup/").into_bytes();
    let at = bytes.iter().position(|&b| b == 0xC3).unwrap();
    bytes[at] = 0xE4; // Latin-1 'ä' followed by a continuation byte: not UTF-8.
    bytes.remove(at + 1);
    assert_eq!(
        error_of(&bytes),
        "backup.4DSettings:35:31: not UTF-8: invalid byte 0xE4 (accepted: UTF-8 text, with or without BOM)"
    );
}

#[test]
fn settings_set_refuses_unknown_keys_and_bad_values() {
    let mut doc = SettingsDoc::default();
    let cases: &[(&str, &str, &str)] = &[
        ("Advanced/Nope", "1", "unknown key \"Advanced/Nope\""),
        (
            "Scheduler/Hourly/Every",
            "0",
            "Scheduler/Hourly/Every: invalid value \"0\" (accepted: integer 1 to 24)",
        ),
        (
            "Scheduler/Daily/Hour",
            "24:00:00",
            "Scheduler/Daily/Hour: invalid value \"24:00:00\"",
        ),
        (
            "General/IncludesFiles/Item3",
            "x",
            "General/IncludesFiles/Item3: invalid value \"x\" (accepted: Item1 to Item1",
        ),
        ("General/IncludesFiles", "x", "accepted: one item at a time"),
    ];
    for (key, value, want) in cases {
        let e = doc.set(key, value).unwrap_err().to_string();
        assert!(e.contains(want), "{key}: {e}");
    }
    assert_eq!(
        doc.to_xml(),
        SettingsDoc::default().to_xml(),
        "a refused set changes nothing"
    );
}
