//! `cargo xtask bench rehearsal`: a restore rehearsal of a set (behaviour
//! §22) against a plain `sauve restore` of the same set followed by the
//! same check, both with the release `sauve`, alternated, the median of
//! each. The rehearsal also integrates the log backup after the set.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::measure::{machine, make_sample_app, measure, q};

/// Options of `bench rehearsal`.
#[derive(clap::Args, Debug)]
pub(crate) struct Options {
    /// The data file's size, MB
    #[arg(long, value_name = "N", default_value_t = 1024)]
    data_mb: u64,
    /// Log records written between the two backups (in the rehearsal's log backup)
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    records: u64,
    /// Runs of each; the median is reported
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = crate::workspace::at_least_one)]
    runs: usize,
}

/// The check both run on the restored data file: reads it whole.
const CHECK: &str = "cksum";

pub(crate) fn run(o: &Options) -> Result<()> {
    crate::measure::in_work_dir("rehearsal", |sauve, work| measure_both(o, sauve, work))
}

/// The sample app with a sauve log, set 1, the records after it, set 2,
/// and `[rehearsal] check`: the app, its destination, set 1's name and the
/// data file's name.
fn prepare(o: &Options, sauve: &Path, work: &Path) -> Result<(PathBuf, PathBuf, String, String)> {
    make_sample_app(work, o.data_mb, 0)?;
    let app = work.join("SampleApp");
    let data = std::fs::read_dir(app.join("Data"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "4DD"))
        .context("the sample app has no data file")?;
    // A sauve log in place of the sample's opaque one: each backup cuts it.
    let log_path = data.with_extension("journal");
    std::fs::remove_file(&log_path)?;
    drop(sauve_logfile::LogWriter::create(
        &log_path,
        [7; 16],
        1,
        sauve_logfile::Durability::GroupCommit,
    )?);
    let backup = format!("{} backup --app {} >/dev/null", q(sauve), q(&app));
    crate::measure::sh(&backup)?;
    // The records after set 1, in the log set 1's backup started: its log
    // backup, which only the rehearsal reads. Eight writers, so that their
    // appends share each fsync.
    let log = sauve_logfile::LogWriter::open(&log_path, sauve_logfile::Durability::GroupCommit)?;
    std::thread::scope(|scope| {
        let log = &log;
        let writers: Vec<_> = (0..8u64)
            .map(|w| {
                scope.spawn(move || -> Result<()> {
                    for i in (w..o.records).step_by(8) {
                        let record = format!(
                            "{{\"id\": {i}, \"body\": \"a note written after the backup\"}}"
                        );
                        log.append(record.as_bytes())?;
                    }
                    Ok(())
                })
            })
            .collect();
        writers.into_iter().try_for_each(|w| {
            w.join()
                .map_err(|_| anyhow::anyhow!("a log writer panicked"))?
        })
    })?;
    drop(log);
    crate::measure::sh(&backup)?;
    let backups = work.join("Backups");
    let set = std::fs::read_dir(&backups)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("[0001].4BK"))
        .min()
        .context("no set 1")?;
    let base = set.trim_end_matches(".4BK");
    let stem = data
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::write(
        app.join("Settings/sauve.toml"),
        format!("[rehearsal]\ncheck = [\"{CHECK}\", \"{{data}}\"]\n"),
    )?;
    Ok((app, backups, base.to_owned(), stem))
}

fn measure_both(o: &Options, sauve: &Path, work: &Path) -> Result<()> {
    let (app, backups, base, stem) = prepare(o, sauve, work)?;
    let restored = work.join("restored");
    let plain = format!(
        "{} restore {} --to {} >/dev/null && {CHECK} {} >/dev/null",
        q(sauve),
        q(&backups.join(&base)),
        q(&restored),
        q(&restored.join("Data").join(&stem)),
    );
    // With the throttle off: every core at normal priority, as the restore.
    let rehearse = format!(
        "{} rehearse --full-speed --app {} --set 1 >/dev/null 2>&1",
        q(sauve),
        q(&app)
    );
    // What the last run wrote is gone and on disk before each run.
    let clear = format!("rm -rf {} && sync", q(&restored));
    // As a schedule runs it: one core, the idle class (no rate set here).
    let low = format!(
        "{} rehearse --app {} --set 1 >/dev/null 2>&1",
        q(sauve),
        q(&app)
    );
    let low = measure(&low, &clear, o.runs)?;
    // Alternated, so that both meet the same page cache.
    let mut plains = Vec::new();
    let mut rehearsals = Vec::new();
    for _ in 0..o.runs {
        plains.push(measure(&plain, &clear, 1)?);
        rehearsals.push(measure(&rehearse, &clear, 1)?);
    }
    let median = |v: &mut Vec<crate::measure::Sample>| {
        v.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        v[v.len() / 2]
    };
    let each = |v: &[crate::measure::Sample]| {
        v.iter()
            .map(|s| format!("{:.2}", s.seconds))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (each_plain, each_rehearsal) = (each(&plains), each(&rehearsals));
    let (p, r) = (median(&mut plains), median(&mut rehearsals));
    let state = std::fs::read_to_string(app.join("Logs/sauve-state.json"))?;
    let state: serde_json::Value = serde_json::from_str(&state)?;
    let last = &state["last_rehearsal"];
    println!(
        "## cargo xtask bench rehearsal --data-mb {} --records {} --runs {}",
        o.data_mb, o.records, o.runs
    );
    println!();
    println!("{}", machine());
    println!(
        "set 1 of the sample app ({} MB data file), then {} log records in its log backup; the check `{CHECK} {{data}}` reads the restored data file; median of {} runs each, alternated, release build",
        o.data_mb, o.records, o.runs
    );
    println!();
    println!("| contender | seconds | peak MiB |");
    println!("|---|---:|---:|");
    println!(
        "| `sauve restore` of set 1, then `{CHECK}` (runs: {each_plain}) | {:.2} | {:.1} |",
        p.seconds,
        p.peak_kib as f64 / 1024.0
    );
    println!(
        "| `sauve rehearse --full-speed --set 1`: restore, integration of its log backup, check, sandbox removed (runs: {each_rehearsal}) | {:.2} | {:.1} |",
        r.seconds,
        r.peak_kib as f64 / 1024.0
    );
    println!(
        "| `sauve rehearse --set 1` at low priority (one core, idle class, nice 19) | {:.2} | {:.1} |",
        low.seconds,
        low.peak_kib as f64 / 1024.0
    );
    println!(
        "| the last rehearsal's own phases: restore / integration (to sequence {}) / check, ms | {} / {} / {} | |",
        last["lastSequence"], last["restoreMs"], last["integrateMs"], last["checkMs"]
    );
    println!();
    let ratio = r.seconds / p.seconds.max(0.001);
    println!("| target | measured | verdict |");
    println!("|---|---:|---|");
    println!(
        "| a rehearsal ≤ 1.2x a plain restore of the same set plus the check | {ratio:.2}x | {} |",
        if ratio <= 1.2 { "met" } else { "MISSED" }
    );
    Ok(())
}
