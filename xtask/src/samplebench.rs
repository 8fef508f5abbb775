//! `cargo xtask bench sample`: what a sample of the stored bytes
//! (behaviour §23) costs. Kept sets of the sample app are read by `sauve
//! verify --sample` (the default share, and all of it) against `sauve
//! verify` of every set (which reads and decompresses all of them), and a
//! backup that samples the kept sets against one that does not, alternated,
//! the median of each, with the release `sauve`.

use std::path::Path;

use anyhow::Result;

use crate::measure::{machine, make_sample_app, measure, q, sh};

/// Options of `bench sample`.
#[derive(clap::Args, Debug)]
pub(crate) struct Options {
    /// The data file's size, MB
    #[arg(long, value_name = "N", default_value_t = 512)]
    data_mb: u64,
    /// Backups made before measuring (retention keeps what the sample app says)
    #[arg(long, value_name = "N", default_value_t = 4)]
    sets: u32,
    /// Runs of each; the median is reported
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = crate::workspace::at_least_one)]
    runs: usize,
}

pub(crate) fn run(o: &Options) -> Result<()> {
    crate::measure::in_work_dir("sample", |sauve, work| measure_all(o, sauve, work))
}

/// `sauve.toml` with `[verify] sample_percent`.
fn share(app: &Path, percent: u32) -> Result<()> {
    std::fs::write(
        app.join("Settings/sauve.toml"),
        format!("[verify]\nsample_percent = {percent}\nsample_max_mib = 64\n"),
    )?;
    Ok(())
}

fn measure_all(o: &Options, sauve: &Path, work: &Path) -> Result<()> {
    make_sample_app(work, o.data_mb, 0)?;
    let app = work.join("SampleApp");
    let backups = work.join("Backups");
    share(&app, 0)?;
    let backup = format!("{} backup --app {} >/dev/null", q(sauve), q(&app));
    for _ in 0..o.sets {
        sh(&backup)?;
    }
    let mut sets: Vec<String> = std::fs::read_dir(&backups)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".4BK"))
        .collect();
    sets.sort();
    let stored: u64 = sets
        .iter()
        .map(|n| std::fs::metadata(backups.join(n)).map_or(0, |m| m.len()))
        .sum();
    let verify_all = sets
        .iter()
        .map(|n| format!("{} verify {} >/dev/null", q(sauve), q(&backups.join(n))))
        .collect::<Vec<_>>()
        .join(" && ");
    let sample = |p: u32| {
        format!(
            "{} verify --sample {p} --max-mib 1048576 --app {} >/dev/null",
            q(sauve),
            q(&app)
        )
    };
    let full = measure(&verify_all, "sync", o.runs)?;
    let all = measure(&sample(100), "sync", o.runs)?;
    let two = measure(&sample(2), "sync", o.runs)?;
    // A backup with its sample (2%, at most 64 MiB) and one without,
    // alternated; each adds a set, as a day's backup does.
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..o.runs {
        share(&app, 0)?;
        without.push(measure(&backup, "sync", 1)?);
        share(&app, 2)?;
        with.push(measure(&backup, "sync", 1)?);
    }
    let median = |v: &mut Vec<crate::measure::Sample>| {
        v.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        v[v.len() / 2]
    };
    let (with, without) = (median(&mut with), median(&mut without));
    println!(
        "## cargo xtask bench sample --data-mb {} --sets {} --runs {}",
        o.data_mb, o.sets, o.runs
    );
    println!();
    println!("{}", machine());
    println!(
        "{} kept sets of the sample app ({} MB data file), {:.1} MiB stored in all; median of {} runs each, release build",
        sets.len(),
        o.data_mb,
        stored as f64 / f64::from(1 << 20),
        o.runs
    );
    println!();
    println!("| contender | seconds | peak MiB |");
    println!("|---|---:|---:|");
    let row = |what: &str, s: crate::measure::Sample| {
        println!(
            "| {what} | {:.2} | {:.1} |",
            s.seconds,
            s.peak_kib as f64 / 1024.0
        );
    };
    row(
        "`sauve verify` of every kept set (reads and decompresses all)",
        full,
    );
    row(
        "`sauve verify --sample 100`: every stored piece against its sum",
        all,
    );
    row("`sauve verify --sample 2`: the default share", two);
    row(
        "`sauve backup` without a sample (`sample_percent = 0`)",
        without,
    );
    row(
        "`sauve backup` with the default sample (2%, at most 64 MiB)",
        with,
    );
    println!();
    let ratio = all.seconds / full.seconds.max(0.001);
    let cost = with.seconds / without.seconds.max(0.001);
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| reading every piece against its sum / a full verify of the same sets | {ratio:.2}x |"
    );
    println!("| a backup with the default sample / without | {cost:.2}x |");
    Ok(())
}
