//! The reader accepts what 4D and people actually write (behaviour §3.2),
//! and the writer keeps what it does not understand.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sauve_settings::{Compression, Frequency, SettingsDoc, TimeOfDay};

fn defaults() -> String {
    let path = format!(
        "{}/../../tests/fixtures/4d-samples/defaults-modern.backup.4DSettings",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

fn parse(text: &str) -> sauve_settings::Loaded {
    SettingsDoc::parse(text.as_bytes(), "backup.4DSettings").unwrap()
}

#[test]
fn bom_and_every_line_ending_read_the_same_and_line_endings_are_kept() {
    let lf = defaults();
    let expected = parse(&lf).doc.settings().clone();
    for newline in ["\r\n", "\r"] {
        let converted = lf.replace('\n', newline);
        let with_bom = format!("\u{FEFF}{converted}");
        let doc = parse(&with_bom).doc;
        assert_eq!(*doc.settings(), expected, "{newline:?}");
        // The BOM is dropped (4D's modern shape has none), the line ending kept.
        assert_eq!(doc.to_xml(), converted, "{newline:?}");
    }
}

#[test]
fn booleans_tokens_and_times_are_read_in_any_case_form_and_spacing() {
    let text = defaults()
        .replace(
            "<AutomaticRestore>True<",
            "<AutomaticRestore>\n   tRUE  \n<",
        )
        .replace("<CompressionRate>Fast<", "<CompressionRate> compact <")
        .replace("<Frequency>Never<", "<Frequency>wEEKLY<")
        .replace(
            "<TryToBackupAfter>00:01:00<",
            "<TryToBackupAfter>0000-00-00T00:00:00.561<",
        )
        .replacen(
            "<StartingAt>0000-00-00T00:00:00.000<",
            "<StartingAt>02:30:00.5<",
            1,
        );
    let loaded = parse(&text);
    let s = loaded.doc.settings();
    assert!(s.advanced.automatic_restore);
    assert_eq!(s.advanced.compression_rate, Compression::Compact);
    assert_eq!(s.scheduler.frequency, Frequency::Weekly);
    assert_eq!(
        s.advanced.backup_failure.try_to_backup_after.as_duration(),
        Duration::from_millis(561)
    );
    assert_eq!(
        s.scheduler.hourly.starting_at,
        TimeOfDay::new(2, 30, 0).unwrap()
    );
    // Unchanged values keep the text they were written with.
    assert_eq!(loaded.doc.to_xml(), text);
}

#[test]
fn items_count_that_disagrees_uses_the_items_present_by_number() {
    let text = defaults().replace(
        "<ItemsCount>3</ItemsCount>\n          <Item1>./Data/data.4DIndx</Item1>\n          <Item2>./Data/data.4DSyncData</Item2>\n          <Item3>./Data/data.4DSyncHeader</Item3>",
        "<ItemsCount>7</ItemsCount>\n          <Item5>./b</Item5>\n          <Item2>./a</Item2>\n          <Item3></Item3>",
    );
    let loaded = parse(&text);
    assert_eq!(loaded.doc.settings().general.includes_files, ["./a", "./b"]);
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "backup.4DSettings:40:18: Backup/Settings/General/IncludesFiles/Item3: empty item ignored",
            "backup.4DSettings:37:23: Backup/Settings/General/IncludesFiles/ItemsCount: ItemsCount is 7 but 3 items are present; the items present are used",
        ]
    );
    // Written back recounted and renumbered.
    let xml = loaded.doc.to_xml();
    assert!(
        xml.contains("<ItemsCount>2</ItemsCount>\n          <Item1>./a</Item1>\n          <Item2>./b</Item2>\n"),
        "{xml}"
    );
}

#[test]
fn missing_elements_take_sauve_defaults() {
    let text = r#"<?xml version="1.0"?><Preferences4D xmlns="http://www.4d.com/namespace/reserved/2004/backup"><Backup><Settings><Advanced><SetNumber><Value>9</Value></SetNumber></Advanced></Settings></Backup></Preferences4D>"#;
    let loaded = parse(text);
    let s = loaded.doc.settings();
    assert_eq!(s.advanced.set_number.value, 9);
    assert!(s.advanced.set_number.enable);
    assert_eq!(s.general.destination_folder, "../Backups/");
    assert!(s.general.includes_files.is_empty());
    assert!(loaded.warnings.is_empty());
}

#[test]
fn a_missing_namespace_is_a_warning_and_is_written_back() {
    let text = defaults().replace(
        r#" xmlns="http://www.4d.com/namespace/reserved/2004/backup""#,
        "",
    );
    let loaded = parse(&text);
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].message.contains("no namespace"));
    assert_eq!(loaded.doc.to_xml(), defaults());
}

#[test]
fn a_prefixed_root_with_its_namespace_is_accepted() {
    let text = r#"<p:Preferences4D xmlns:p="http://www.4d.com/namespace/reserved/2004/backup"><p:Backup><p:Settings><p:General><p:IncludeStructureFile>True</p:IncludeStructureFile></p:General></p:Settings></p:Backup></p:Preferences4D>"#;
    let loaded = parse(text);
    assert!(loaded.warnings.is_empty());
    assert!(loaded.doc.settings().general.include_structure_file);
}

#[test]
fn unknown_elements_comments_and_legacy_blocks_survive_a_rewrite_in_place() {
    let text = defaults()
        .replace(
            "  <Backup>\n    <Settings>\n",
            "  <Backup>\n    <DataBase>\n      <Name>Old</Name>\n    </DataBase>\n    <Settings>\n      <!-- kept -->\n      <JournalFileEnabled>True</JournalFileEnabled>\n",
        )
        .replace(
            "        <AutomaticRestore>True</AutomaticRestore>\n",
            "        <AutomaticRestore>True</AutomaticRestore>\n        <Transaction>\n          <Timeout>00:00:30</Timeout>\n          <WaitForEndOfTransaction>False</WaitForEndOfTransaction>\n        </Transaction>\n        <Future a=\"1\">x &amp; y</Future>\n",
        );
    let loaded = parse(&text);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let legacy = &loaded.doc.settings().legacy;
    assert_eq!(legacy.journal_file_enabled, Some(true));
    assert_eq!(
        legacy.transaction_timeout.map(|d| d.as_duration()),
        Some(Duration::from_secs(30))
    );
    assert_eq!(legacy.lock_timeout(), Some(Duration::from_secs(30)));
    // Unchanged, the file comes back byte for byte.
    assert_eq!(loaded.doc.to_xml(), text);
    // Changed, the unknown parts stay after their known siblings.
    let mut doc = loaded.doc;
    doc.set("Advanced/AutomaticRestore", "false").unwrap();
    insta::assert_snapshot!("unknown_elements_after_a_change", doc.to_xml());
}

#[test]
fn day_29_to_31_is_kept_with_a_warning_and_other_oddities_warn_too() {
    let text = defaults()
        .replace("<Day>1</Day>", "<Day>31</Day>")
        .replace("<Redundancy>None<", "<Redundancy>High<")
        .replace(
            "<AutomaticLogIntegrationStrictness>strict<",
            "<AutomaticLogIntegrationStrictness>lenient<",
        )
        .replace("<Frequency>Never<", "<Frequency>Weekly<")
        .replace("<Save>True</Save>", "<Save>False</Save>");
    let loaded = parse(&text);
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    insta::assert_debug_snapshot!("oddities_warnings", warnings);
}

#[test]
fn an_empty_frequency_written_by_4d_reads_as_never_with_a_warning_and_rewrites_unchanged() {
    // A legacy 4D file with an empty <Frequency></Frequency>: 4D treats it as
    // no schedule, and so does sauve.
    let text = defaults().replace("<Frequency>Never</Frequency>", "<Frequency></Frequency>");
    assert!(text.contains("<Frequency></Frequency>"));
    let loaded = parse(&text);
    assert_eq!(loaded.doc.settings().scheduler.frequency, Frequency::Never);
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("Scheduler/Frequency: empty value read as Never"),
        "{warnings:?}"
    );
    // Unchanged, it is written back as 4D wrote it.
    assert_eq!(loaded.doc.to_xml(), text);
    // A blank made of whitespace is empty too.
    let spaced = defaults().replace("<Frequency>Never</Frequency>", "<Frequency>  </Frequency>");
    assert_eq!(
        parse(&spaced).doc.settings().scheduler.frequency,
        Frequency::Never
    );
}
