//! The log-file benchmark, run by `cargo xtask bench logfile` in a release
//! build: appends per second and MB/s with fsync per append and with group
//! commit, against a plain write + fdatasync loop on the same disk.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sauve_logfile::{Durability, LogWriter, Tag};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(dir).unwrap();
    for size in [256usize, 4096] {
        let payload = vec![0x5Au8; size];
        let n = 2000;
        // The limit: write and fdatasync, nothing else.
        let path = dir.path().join(format!("plain-{size}"));
        let mut f = std::fs::File::create(&path).unwrap();
        let t = Instant::now();
        for _ in 0..n {
            f.write_all(&payload).unwrap();
            f.sync_data().unwrap();
        }
        report(
            &format!("write + fdatasync loop, {size} B"),
            n,
            size,
            t.elapsed(),
        );

        let path = dir.path().join(format!("every-{size}.journal"));
        let w = LogWriter::create(&path, [0; 16], 1, Durability::EveryAppend).unwrap();
        let t = Instant::now();
        for _ in 0..n {
            w.append(&payload).unwrap();
        }
        report(&format!("fsync per append, {size} B"), n, size, t.elapsed());

        // With an operation tag (format version 2 carries it).
        let path = dir.path().join(format!("tagged-{size}.journal"));
        let w = LogWriter::create(&path, [0; 16], 1, Durability::EveryAppend).unwrap();
        let tag = Tag::new(1, "notes").unwrap();
        let t = Instant::now();
        for _ in 0..n {
            w.append_tagged(Some(&tag), &payload).unwrap();
        }
        report(
            &format!("fsync per append, {size} B, tagged"),
            n,
            size,
            t.elapsed(),
        );

        for threads in [1usize, 8] {
            let path = dir.path().join(format!("group-{size}-{threads}.journal"));
            let w =
                Arc::new(LogWriter::create(&path, [0; 16], 1, Durability::GroupCommit).unwrap());
            let per = if threads == 1 { 1000 } else { 4000 / threads };
            let t = Instant::now();
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    let (w, p) = (w.clone(), payload.clone());
                    std::thread::spawn(move || {
                        for _ in 0..per {
                            w.append(&p).unwrap();
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            report(
                &format!("group commit, {threads} writer(s), {size} B"),
                per * threads,
                size,
                t.elapsed(),
            );
        }
    }
}

fn report(name: &str, n: usize, size: usize, took: Duration) {
    let secs = took.as_secs_f64();
    println!(
        "{name}\t{:.0}\t{:.2}",
        n as f64 / secs,
        (n * size) as f64 / secs / 1e6
    );
}
