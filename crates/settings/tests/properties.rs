//! Property tests: any valid settings survive write then read; write, read,
//! write is byte-identical; no mutation of a real file panics the reader.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use proptest::prelude::*;
use sauve_settings::{
    Compression, Delay, Frequency, Level, MonthDay, Settings, SettingsDoc, TimeOfDay, Token,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/4d-samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

fn token<T: Token + std::fmt::Debug>() -> impl Strategy<Value = T> {
    proptest::sample::select(T::ALL)
}

fn time() -> impl Strategy<Value = TimeOfDay> {
    (0u32..24, 0u32..60, 0u32..60).prop_map(|(h, m, s)| TimeOfDay::new(h, m, s).unwrap())
}

fn delay() -> impl Strategy<Value = Delay> {
    prop_oneof![
        (0u64..100_000).prop_map(Delay::from_secs),
        (0u64..3_600_000, 0u32..1_000_000_000).prop_map(|(s, n)| Delay(Duration::new(s, n))),
    ]
}

/// Paths as people write them: any characters XML can carry, no surrounding
/// whitespace (the reader trims values).
fn path() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ./\\\\&<>'\"é_:-]{1,30}"
        .prop_filter("trimmed, non-empty", |s| s.trim() == s && !s.is_empty())
}

fn positive() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..10, 1u32..=i32::MAX as u32]
}

prop_compose! {
    fn settings()(
        b in proptest::collection::vec(any::<bool>(), 14),
        delay in delay(),
        retry in positive(),
        keep in positive(),
        compression in token::<Compression>(),
        redundancy in token::<Level>(),
        interlacing in token::<Level>(),
        strictness in "[a-zA-Z]{1,10}",
        segment in 0u32..=2048,
        destination in path(),
        items in proptest::collection::vec(path(), 0..5),
        frequency in token::<Frequency>(),
        hourly_every in 1u32..=24,
        times in proptest::collection::vec(time(), 10),
        everies in proptest::collection::vec(positive(), 3),
        saves in proptest::collection::vec(any::<bool>(), 7),
        day in prop_oneof![Just(MonthDay::Last), (1u8..=31).prop_map(MonthDay::Day)],
    ) -> Settings {
        let mut s = Settings::default();
        let a = &mut s.advanced;
        a.backup_failure.try_backup_at_the_next_scheduled_date = b[0];
        a.backup_failure.try_to_backup_after = delay;
        a.backup_failure.abort_if_backup_fail = b[1];
        a.backup_failure.retry_count_before_abort = retry;
        a.automatic_restore = b[2];
        a.automatic_log_integration = b[3];
        a.automatic_restart = b[4];
        a.backup_if_data_change = b[5];
        a.set_number.enable = b[6];
        a.set_number.value = keep;
        a.compression_rate = compression;
        a.redundancy = redundancy;
        a.interlacing = interlacing;
        a.automatic_log_integration_strictness = strictness;
        a.file_segmentation.default_size = segment;
        a.erase_old_backup_before = b[7];
        a.check_archive_file_during_backup = b[8];
        a.backup_journal_verbose_mode = b[9];
        let g = &mut s.general;
        g.include_structure_file = b[10];
        g.include_data_file = b[11];
        g.include_alt_struct_file = b[12];
        g.destination_folder = destination;
        g.includes_files = items;
        let sc = &mut s.scheduler;
        sc.frequency = frequency;
        sc.hourly.every = hourly_every;
        sc.hourly.starting_at = times[0];
        sc.daily.every = everies[0];
        sc.daily.hour = times[1];
        sc.weekly.every = everies[1];
        for (i, d) in sc.weekly.days.iter_mut().enumerate() {
            d.save = saves[i];
            d.hour = times[2 + i];
        }
        sc.monthly.every = everies[2];
        sc.monthly.hour = times[9];
        sc.monthly.day = day;
        s
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_valid_settings_survive_write_then_read(s in settings(), on_fixture in any::<bool>()) {
        let mut doc = if on_fixture {
            SettingsDoc::parse(&fixture("daily-modern.backup.4DSettings"), "f").unwrap().doc
        } else {
            SettingsDoc::default()
        };
        *doc.settings_mut() = s.clone();
        let xml = doc.to_xml();
        let back = SettingsDoc::parse(xml.as_bytes(), "f").unwrap().doc;
        prop_assert_eq!(back.settings(), &s);
        prop_assert_eq!(back.to_xml(), xml);
    }

    #[test]
    fn random_mutations_of_a_real_file_never_panic_the_reader(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)
    ) {
        let mut bytes = fixture("daily-modern.backup.4DSettings");
        for (at, byte, op) in edits {
            let i = at.index(bytes.len().max(1));
            match op {
                0 if !bytes.is_empty() => bytes[i] = byte,
                1 => bytes.insert(i.min(bytes.len()), byte),
                _ if !bytes.is_empty() => { bytes.remove(i); }
                _ => {}
            }
        }
        // An error is fine; a panic is not. What is accepted must write back readable.
        if let Ok(loaded) = SettingsDoc::parse(&bytes, "f") {
            let xml = loaded.doc.to_xml();
            match SettingsDoc::parse(xml.as_bytes(), "f") {
                Ok(again) => prop_assert_eq!(again.doc.settings(), loaded.doc.settings()),
                Err(e) => prop_assert!(false, "{e}\n{xml}"),
            }
        }
    }
}

#[test]
fn the_default_file_is_4d_shaped() {
    insta::assert_snapshot!("default_file", SettingsDoc::default().to_xml());
}
