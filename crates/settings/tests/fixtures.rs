//! Real files written by 4D read to the values they hold, and rewrite unchanged.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sauve_settings::{Compression, Frequency, Level, MonthDay, Settings, SettingsDoc, TimeOfDay};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/4d-samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn read(name: &str) -> SettingsDoc {
    let loaded = SettingsDoc::parse(&fixture(name), name).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    loaded.doc
}

#[test]
fn defaults_modern_reads_to_4d_new_project_values() {
    let doc = read("defaults-modern.backup.4DSettings");
    let s = doc.settings();
    assert_eq!(*s, Settings::four_d_new_project());
    // Spelled out, so that a wrong default cannot hide behind the comparison.
    assert_eq!(
        s.advanced.backup_failure.try_to_backup_after.as_duration(),
        Duration::from_secs(60)
    );
    assert_eq!(s.advanced.backup_failure.retry_count_before_abort, 5);
    assert!(s.advanced.set_number.enable);
    assert_eq!(s.advanced.set_number.value, 3);
    assert_eq!(s.advanced.compression_rate, Compression::Fast);
    assert_eq!(s.advanced.redundancy, Level::None);
    assert_eq!(s.advanced.automatic_log_integration_strictness, "strict");
    assert_eq!(s.advanced.file_segmentation.default_size, 0);
    assert!(s.advanced.check_archive_file_during_backup);
    assert!(!s.general.include_structure_file);
    assert!(s.general.include_data_file);
    assert_eq!(s.general.destination_folder, "./Backup/");
    assert_eq!(
        s.general.includes_files,
        [
            "./Data/data.4DIndx",
            "./Data/data.4DSyncData",
            "./Data/data.4DSyncHeader"
        ]
    );
    assert_eq!(s.scheduler.frequency, Frequency::Never);
    assert_eq!(s.scheduler.hourly.every, 12);
    assert_eq!(s.scheduler.weekly.days.iter().filter(|d| d.save).count(), 1);
    assert!(s.scheduler.weekly.days[6].save, "Sunday");
    assert_eq!(s.scheduler.monthly.day, MonthDay::Day(1));
}

#[test]
fn daily_modern_reads_its_schedule_destination_and_dated_delay() {
    let doc = read("daily-modern.backup.4DSettings");
    let s = doc.settings();
    assert_eq!(s.scheduler.frequency, Frequency::Daily);
    assert_eq!(s.scheduler.daily.every, 1);
    assert_eq!(s.scheduler.daily.hour, TimeOfDay::MIDNIGHT);
    assert_eq!(s.general.destination_folder, "./Data\\");
    assert_eq!(
        s.advanced.backup_failure.try_to_backup_after.as_duration(),
        Duration::from_secs(60)
    );
    assert_eq!(s.general.includes_files.len(), 3);
}

#[test]
fn modern_fixtures_rewrite_byte_identical() {
    for name in [
        "defaults-modern.backup.4DSettings",
        "daily-modern.backup.4DSettings",
    ] {
        let bytes = fixture(name);
        let doc = read(name);
        assert_eq!(doc.to_xml().as_bytes(), bytes.as_slice(), "{name}");
    }
}

#[test]
fn a_changed_value_is_written_in_4d_form_and_the_rest_kept() {
    let name = "daily-modern.backup.4DSettings";
    let original = String::from_utf8(fixture(name)).unwrap();
    let mut doc = read(name);
    doc.set("Scheduler/Daily/Hour", "02:30:00").unwrap();
    doc.set(
        "Advanced/BackupFailure/TryToBackupAfter",
        "0000-00-00T00:00:03.600",
    )
    .unwrap();
    let xml = doc.to_xml();
    let expected = original
        .replacen(
            "<Hour>0000-00-00T00:00:00.000</Hour>\n        </Daily>",
            "<Hour>0000-00-00T02:30:00.000</Hour>\n        </Daily>",
            1,
        )
        .replace(
            "<TryToBackupAfter>0000-00-00T00:01:00.000</TryToBackupAfter>",
            "<TryToBackupAfter>00:00:03.600</TryToBackupAfter>",
        );
    assert_eq!(xml, expected);
}
