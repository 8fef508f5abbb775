//! The History page benchmark, run by `cargo xtask bench page` in a release
//! build: milliseconds to read a `backupHistory.json` of 999 sauve entries
//! (each listing 100 files) and render them all as the page's table,
//! median of 21 runs; `GET /v1/history`'s work on the same file (parse and
//! serialize it) is the baseline measured in the same run.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::time::Instant;

const ENTRIES: u32 = 999;
const FILES: usize = 100;
const KEY: &str = "/srv/app/Project/App.4DProject";

fn history_text() -> String {
    let entries: Vec<serde_json::Value> = (1..=ENTRIES)
        .map(|n| {
            let start = jiff::Timestamp::from_second(1_750_000_000 + i64::from(n) * 3600).unwrap();
            let status = match n % 50 {
                0 => 1407,
                7 => -43,
                _ => 0,
            };
            serde_json::json!({
                "backupPath": format!("/srv/backups/App[{n:04}].4BK"),
                "structurePath": KEY,
                "dataPath": "/srv/app/Data/App.4DD",
                "logPath": format!("/srv/backups/App[{n:04}].4BL"),
                "startingDate": sauve_history::format_date(start),
                "endingDate": sauve_history::format_date(start + jiff::SignedDuration::from_secs(83)),
                "scheduledDate": sauve_history::format_date(start),
                "status": status,
                "backupNumber": n,
                "duration": 83_412,
                "attachments": [{"attachmentPath": "/srv/app/Uploads/", "found": status != -43}],
                "operation": "backup",
                "trigger": if n % 3 == 0 { "manual" } else { "scheduled" },
                "lockWindows": {"data": 412, "structure": 12},
                "files": (0..FILES).map(|i| serde_json::json!({
                    "path": format!("Data/Uploads/file-{i:03}.bin"),
                    "size": 1_048_576 + i as u64,
                    "blake3": "9f1c3a2b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8",
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ KEY: entries })).unwrap()
}

fn median_ms(mut run: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..21)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let text = history_text();
    // What the page does: `handle.records().history()` reads the file's
    // text and this app's entries from it.
    let read = || sauve_history::read_entries(&text, KEY).unwrap();
    let entries = read();
    assert_eq!(entries.len(), ENTRIES as usize);
    let html = sauve_web::render_history_for_bench(&entries, 1000);
    assert_eq!(
        html.matches("<tr").count(),
        ENTRIES as usize + 1,
        "every row rendered"
    );
    // What `GET /v1/history` does with the same text: parse and serialize.
    let api = median_ms(|| {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        std::hint::black_box(serde_json::to_vec(&v).unwrap());
    });
    let render = median_ms(|| {
        std::hint::black_box(sauve_web::render_history_for_bench(&entries, 1000));
    });
    let page = median_ms(|| {
        let e = read();
        std::hint::black_box(sauve_web::render_history_for_bench(&e, 1000));
    });
    let first = median_ms(|| {
        let e = read();
        std::hint::black_box(sauve_web::render_history_for_bench(&e, 100));
    });
    println!(
        "history\t{} entries, {} KiB of JSON, {} KiB of HTML",
        ENTRIES,
        text.len() / 1024,
        html.len() / 1024
    );
    println!("baseline\tGET /v1/history: parse and serialize the same file\t{api:.2}");
    println!("render\trender the 999 rows\t{render:.2}");
    println!("page\tread the history and render all 999 rows (?per=1000)\t{page:.2}");
    println!("first\tread the history and render the first page (100 rows)\t{first:.2}");
}
