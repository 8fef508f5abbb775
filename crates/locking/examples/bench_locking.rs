//! The lock manager benchmark, run by `cargo xtask bench locking` in a
//! release build: nanoseconds per acquire and release of a guard, median of
//! 21 batches of 100 000.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::time::Instant;

use sauve_locking::{Kind, LockManager};

const BATCH: u32 = 100_000;

fn median_ns(mut run_batch: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..21)
        .map(|_| {
            let t = Instant::now();
            run_batch();
            t.elapsed().as_nanos() as f64 / f64::from(BATCH)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let m = LockManager::new();
    let mut rows = Vec::new();
    rows.push((
        "read guard, uncontended (read().await + drop)",
        median_ns(|| {
            rt.block_on(async {
                for _ in 0..BATCH {
                    drop(m.read(Kind::Data).await)
                }
            })
        }),
    ));
    rows.push((
        "write guard, uncontended (write().await + drop)",
        median_ns(|| {
            rt.block_on(async {
                for _ in 0..BATCH {
                    drop(m.write(Kind::Data).await)
                }
            })
        }),
    ));
    rows.push((
        "try_read + drop",
        median_ns(|| {
            for _ in 0..BATCH {
                drop(m.try_read(Kind::Data))
            }
        }),
    ));
    rows.push((
        "try_write + drop",
        median_ns(|| {
            for _ in 0..BATCH {
                drop(m.try_write(Kind::Data))
            }
        }),
    ));
    let held: Vec<_> = (0..1000).map(|_| m.try_read(Kind::Data).unwrap()).collect();
    rows.push((
        "read guard with 1000 readers held",
        median_ns(|| {
            rt.block_on(async {
                for _ in 0..BATCH {
                    drop(m.read(Kind::Data).await)
                }
            })
        }),
    ));
    drop(held);
    // Two threads taking read guards on the same manager at once.
    let per_thread = median_ns(|| {
        std::thread::scope(|s| {
            for _ in 0..2 {
                let m = m.clone();
                s.spawn(move || {
                    for _ in 0..BATCH {
                        drop(m.try_read(Kind::Data))
                    }
                });
            }
        })
    });
    rows.push((
        "read guard, 2 threads at once (wall time per pair)",
        per_thread,
    ));
    for (name, ns) in rows {
        println!("{name}\t{ns:.0}");
    }
}
