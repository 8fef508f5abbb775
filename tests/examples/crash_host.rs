//! The host of `cargo xtask crash`: a tiny key-value app whose data file is
//! `APP/Data/App.4DD` (`last=N` then `key=value` lines) and whose writes go
//! to a sauve log first, as a real host's do. Built with the
//! `fault-points` feature, so that the crash and fault points of the
//! durable steps (behaviour §5) fire in it too.
//!
//! - `crash_host write APP FROM COUNT`: appends records `kI=vI` for I in
//!   FROM..FROM+COUNT (each durable before it returns), applies them to the
//!   data file, prints the last sequence;
//! - `crash_host open APP`: the open check of a host whose data is damaged
//!   (behaviour §13.3): restores the newest sound backup and integrates the logs;
//!   prints the keys the data holds afterwards;
//! - `crash_host check APP DEST`: restores the newest backup into DEST,
//!   integrates every log after it, prints the keys the result holds.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sauve_engine::{DataHealth, Engine, EngineOptions};
use sauve_logfile::{Durability, LogWriter};
use sauve_tests::kv::{Map, apply, load, save};

const ID: [u8; 16] = *b"crash-host-00001";

fn data(app: &Path) -> PathBuf {
    app.join("Data/App.4DD")
}

fn log(app: &Path) -> PathBuf {
    app.join("Data/App.journal")
}

fn engine(app: &Path) -> sauve_engine::BackupHandle {
    let layout = sauve_settings::AppLayout::discover(app).unwrap();
    Engine::start(layout, EngineOptions::default()).unwrap()
}

fn print_keys(map: &Map) {
    println!("{}", serde_json::json!({"keys": map.len()}));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["write", app, from, count] => {
            let app = Path::new(app);
            let (from, count): (u64, u64) = (from.parse().unwrap(), count.parse().unwrap());
            let (_, mut map) = load(&data(app)).unwrap_or_default();
            let w = Arc::new(
                LogWriter::open_or_create(&log(app), ID, Durability::EveryAppend).unwrap(),
            );
            let mut last = 0;
            for i in from..from + count {
                let record = format!("k{i}=v{i}");
                last = w.append(record.as_bytes()).unwrap();
                apply(&mut map, record.as_bytes()).unwrap();
            }
            save(&data(app), last, &map).unwrap();
            println!("{last}");
        }
        ["open", app] => {
            let app = Path::new(app);
            let handle = engine(app);
            let map = std::cell::RefCell::new(Map::new());
            let outcome = handle
                .open_check(
                    DataHealth {
                        damaged: true,
                        last_applied: 0,
                    },
                    ID,
                    sauve_engine::Until::End,
                    || {
                        let (last, m) = load(&data(app)).unwrap_or_default();
                        *map.borrow_mut() = m;
                        last
                    },
                    // Each record durable before the next, as open_check
                    // asks of a host.
                    |r| {
                        apply(&mut map.borrow_mut(), &r.payload)?;
                        save(&data(app), r.seq, &map.borrow()).map_err(|e| e.to_string())
                    },
                )
                .unwrap_or_else(|e| panic!("open check failed ({}): {e}", e.status()));
            let map = map.into_inner();
            save(&data(app), outcome.last_applied, &map).unwrap();
            print_keys(&map);
            pollster_shutdown(handle);
        }
        ["check", app, dest] => {
            let app = Path::new(app);
            let handle = engine(app);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let newest = rt
                .block_on(handle.records().history())
                .unwrap()
                .into_iter()
                .filter(|e| e.is_numbered_backup() && matches!(e.status, Some(0 | -43)))
                .max_by_key(|e| e.backup_number)
                .expect("a backup to restore");
            let restored = rt
                .block_on(handle.restore(
                    Path::new(&newest.backup_path),
                    sauve_archive::RestoreOptions {
                        to: Some(PathBuf::from(dest)),
                        force: false,
                    },
                    sauve_engine::Trigger::Api,
                ))
                .unwrap();
            let (_, mut map) = load(&Path::new(dest).join("Data/App.4DD")).unwrap_or_default();
            handle
                .integrate_after_restore(
                    &restored.report,
                    ID,
                    Some(&log(app)),
                    sauve_engine::Until::End,
                    |r| apply(&mut map, &r.payload),
                )
                .unwrap_or_else(|e| panic!("integration failed ({}): {e}", e.status()));
            print_keys(&map);
            rt.block_on(handle.shutdown());
        }
        _ => {
            eprintln!("usage: crash_host write APP FROM COUNT | open APP | check APP DEST");
            std::process::exit(2);
        }
    }
}

fn pollster_shutdown(handle: sauve_engine::BackupHandle) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(handle.shutdown());
}
