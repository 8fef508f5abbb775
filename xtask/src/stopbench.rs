//! `cargo xtask bench archive`'s Stop: how long a stopped backup takes to
//! end, per compression level (issue 27, defect 13: Compact took 12.7 s).
//!
//! Each run starts `sauve backup --json` on a copy of the sample app,
//! presses Stop as a terminal does (SIGINT, which `sauve backup` turns into
//! the engine's Stop, as the page's button and `POST /v1/stop` do) once the
//! copy is well under way, and times the `finished` line and the exit from
//! the moment the signal was sent. The goal is 1 s at every level.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::measure::{machine, q, settings_set, sh, size_of};

/// The goal: Stop ends the run within a second (README).
const GOAL: Duration = Duration::from_secs(1);

/// One stopped run.
#[derive(Clone, Debug)]
pub(crate) struct Stopped {
    /// Bytes the copy had done when Stop was sent (the last file event).
    copied: u64,
    /// From the signal to the `finished` line.
    finished: Duration,
    /// From the signal to the process's exit.
    exited: Duration,
    /// The `finished` line's status.
    status: i64,
    /// Archive and part files left in the destination.
    left: Vec<String>,
}

/// Stops `runs` backups of `app` at each level once `stop_after` bytes
/// (at most half the backup) were copied, and prints the table for
/// BENCHMARKS.md under `title`.
pub(crate) fn stop_bench(
    sauve: &Path,
    src_app: &Path,
    work: &Path,
    stop_after: u64,
    runs: usize,
    title: &str,
) -> Result<()> {
    // A copy of its own: settings, journal and log cut stay out of the
    // sample app the other measures read.
    let dir = work.join("stop");
    sh(&format!(
        "rm -rf {d} && mkdir -p {d} && cp -a {s} {d}/",
        d = q(&dir),
        s = q(src_app)
    ))?;
    let app = dir.join(
        src_app
            .file_name()
            .context("the sample app has no folder name")?,
    );
    let backups = dir.join("Backups");
    let input = size_of(&app)?;
    sh(&format!(
        "find {} -type f -exec cat {{}} + > /dev/null",
        q(&app)
    ))?;
    let mut rows: Vec<(&str, Vec<Stopped>)> = Vec::new();
    for level in ["None", "Fast", "Compact"] {
        settings_set(sauve, &app, "Advanced/CompressionRate", level)?;
        let mut stopped = Vec::new();
        for run in 1..=runs {
            eprintln!("Stop at {level}, run {run}…");
            let _ = std::fs::remove_dir_all(&backups);
            stopped.push(one(sauve, &app, &backups, stop_after)?);
        }
        rows.push((level, stopped));
    }
    let _ = std::fs::remove_dir_all(&dir);
    report(input, stop_after, runs, title, &rows);
    Ok(())
}

/// One backup, stopped once `stop_after` bytes (at most half of it) were
/// copied.
fn one(sauve: &Path, app: &Path, backups: &Path, stop_after: u64) -> Result<Stopped> {
    let mut child = Command::new(sauve)
        .args(["backup", "--json", "--app"])
        .arg(app)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start sauve backup")?;
    let stdout = child.stdout.take().context("sauve backup has no stdout")?;
    // Each line with the instant it arrived, read on a thread of its own so
    // that the instants do not wait for the loop below.
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let mut total = 0;
    let mut sent: Option<(Instant, u64)> = None;
    let mut finished = None;
    for (at, line) in lines {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        match v["event"].as_str() {
            Some("started") => total = v["total_bytes"].as_u64().unwrap_or(0),
            Some("file") if sent.is_none() => {
                let done = v["bytes_done"].as_u64().unwrap_or(0);
                if done >= stop_after.min(total / 2).max(1) {
                    let t0 = Instant::now();
                    let ok = Command::new("kill")
                        .args(["-INT", &child.id().to_string()])
                        .status()?
                        .success();
                    if !ok {
                        bail!("cannot send SIGINT to sauve backup");
                    }
                    sent = Some((t0, done));
                }
            }
            Some("finished") => finished = Some((at, v["status"].as_i64().unwrap_or(0))),
            _ => {}
        }
    }
    child.wait()?;
    let exit = Instant::now();
    let Some((t0, copied)) = sent else {
        bail!("the backup ended before Stop could be pressed: use a larger --data-mb");
    };
    let Some((at, status)) = finished else {
        bail!("sauve backup printed no finished line");
    };
    let left = std::fs::read_dir(backups)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".4BK") || n.contains(".4BL") || n.contains(".part"))
                .collect()
        })
        .unwrap_or_default();
    Ok(Stopped {
        copied,
        finished: at.saturating_duration_since(t0),
        exited: exit.saturating_duration_since(t0),
        status,
        left,
    })
}

fn report(input: u64, stop_after: u64, runs: usize, title: &str, rows: &[(&str, Vec<Stopped>)]) {
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("{title}");
    println!();
    println!("{}", machine());
    println!(
        "app: {:.0} MiB (sample app from tests/fixtures/make-sample-app); Stop is SIGINT to `sauve backup --json` (the engine's Stop, as the page's button and POST /v1/stop) once {:.0} MiB (at most half the backup) were copied; {runs} run(s) per level, times from the signal",
        mib(input),
        mib(stop_after),
    );
    println!();
    println!(
        "| level | copied at Stop MiB | Stop → finished ms (median) | Stop → finished ms (max) | Stop → exit ms (max) | status | left in the destination | ≤ 1 s |"
    );
    println!("|---|---:|---:|---:|---:|---|---|---|");
    for (level, runs) in rows {
        let mut finished: Vec<Duration> = runs.iter().map(|r| r.finished).collect();
        finished.sort();
        let median = finished[finished.len() / 2];
        let max = finished.last().copied().unwrap_or_default();
        let exited = runs.iter().map(|r| r.exited).max().unwrap_or_default();
        let copied = runs.iter().map(|r| r.copied).min().unwrap_or(0);
        let statuses: std::collections::BTreeSet<String> =
            runs.iter().map(|r| r.status.to_string()).collect();
        let left: Vec<&str> = runs
            .iter()
            .flat_map(|r| r.left.iter().map(String::as_str))
            .collect();
        let met = max <= GOAL && runs.iter().all(|r| r.status == 1406) && left.is_empty();
        println!(
            "| {level} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {} |",
            mib(copied),
            ms(median),
            ms(max),
            ms(exited),
            statuses.into_iter().collect::<Vec<_>>().join(", "),
            if left.is_empty() {
                "nothing".to_owned()
            } else {
                left.join(", ")
            },
            if met { "met" } else { "MISSED" }
        );
    }
}
