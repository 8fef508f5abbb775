//! The next ten slots of each fixture settings file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jiff::tz::TimeZone;
use sauve_scheduler::Schedule;
use sauve_settings::SettingsDoc;

#[test]
fn next_ten_slots_of_each_fixture() {
    let dir = format!(
        "{}/../../tests/fixtures/4d-samples",
        env!("CARGO_MANIFEST_DIR")
    );
    let tz = TimeZone::get("Europe/Paris").unwrap();
    let start: jiff::Timestamp = "2025-03-28T12:00:00Z".parse().unwrap();
    let mut table = String::from(
        "| file | frequency | next ten slots (Europe/Paris, from 2025-03-28 13:00) |\n|---|---|---|\n",
    );
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".4DSettings"))
        .collect();
    names.sort();
    for name in names {
        let bytes = std::fs::read(format!("{dir}/{name}")).unwrap();
        let doc = SettingsDoc::parse(&bytes, &name).unwrap().doc;
        let schedule = Schedule::from_settings(&doc.settings().scheduler);
        let mut at = start;
        let mut slots = Vec::new();
        for _ in 0..10 {
            match schedule.next_after(&tz, at) {
                Some(t) => {
                    slots.push(
                        t.to_zoned_datetime(tz.clone())
                            .strftime("%Y-%m-%d %H:%M %:z")
                            .to_string(),
                    );
                    at = t;
                }
                None => break,
            }
        }
        let shown = if slots.is_empty() {
            "none".to_owned()
        } else {
            slots.join("<br>")
        };
        table.push_str(&format!(
            "| {name} | {} | {shown} |\n",
            doc.settings().scheduler.frequency
        ));
    }
    insta::assert_snapshot!("next_ten_slots", table);
}
