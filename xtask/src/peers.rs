//! `cargo xtask bench peers`: a week of daily backups of the sample app by
//! sauve and by its peers, in one run: `tar -I 'zstd -1 -T0'` (a full
//! archive each day), restic and borg (deduplicating repositories, from
//! Debian's packages, installed here when missing; never by the tests).
//!
//! sauve runs twice each day: full sets, and incremental sets with
//! `[incremental] full_every = days + 1` (one full set, then incremental
//! sets on it), each with its own settings put in place before it runs.
//!
//! Day 0 backs up the sample app; each of the 6 following days first
//! overwrites 1% of the data file's 4 KiB pages at random positions and
//! changes 1% of the small project files, then every tool backs up the
//! same tree. Reported per tool: each day's backup time, the destination's
//! size after the week, and the time to restore the last day.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::measure::{Sample, machine, make_sample_app, measure_env, q, settings_set, sh, size_of};
use crate::workspace::{cargo, repo_root};

/// Options of `bench peers`.
#[derive(clap::Args, Debug)]
pub(crate) struct Options {
    /// MB of data file in the sample app
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) data_mb: u64,
    /// MB of attachments beside the sample app
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub(crate) attach_mb: u64,
    /// Daily backups after the first
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = crate::workspace::at_least_one)]
    pub(crate) days: usize,
    /// block_kib of sauve's incremental sets; unset, as a new app has it,
    /// each file's block size is chosen from its size (16 KiB up to 64 GiB)
    #[arg(long, value_name = "KIB", value_parser = clap::value_parser!(u32).range(4..=1048576))]
    pub(crate) block_kib: Option<u32>,
    /// The week into a bucket of a local Garage node instead of folders:
    /// sauve's full and incremental sets, restic's S3 backend, and
    /// rustic's when it installs from crates.io within 10 minutes
    #[arg(long)]
    pub(crate) store: bool,
    /// MB of a file among the attachments that each day rewrites whole
    /// (an export made anew every day): the copies of it in older sets are
    /// what a restore of the last day has no use for
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) export_mb: u64,
    /// With --store: the last day's incremental sets restored again by
    /// `sauve` as it was at REV (built in a worktree), a baseline measured
    /// in the same run
    #[arg(long, value_name = "REV", requires = "store")]
    pub(crate) baseline: Option<String>,
}

/// A tool in the comparison: how it backs up day `d` and restores the last.
struct Peer {
    name: &'static str,
    dest: PathBuf,
    backups: Vec<Sample>,
    restore: Option<Sample>,
}

/// The repositories' passphrase: a benchmark's, in the environment only.
pub(crate) const ENV: &[(&str, &str)] = &[
    ("RESTIC_PASSWORD", "sauve-bench-peers"),
    ("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes"),
    ("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes"),
];

pub(crate) fn install_missing() -> Result<()> {
    let mut missing = Vec::new();
    for (tool, package) in [
        ("restic", "restic"),
        ("borg", "borgbackup"),
        ("zstd", "zstd"),
    ] {
        if Command::new(tool).arg("--version").output().is_err() {
            missing.push(package);
        }
    }
    if !missing.is_empty() {
        eprintln!("installing {}…", missing.join(" "));
        sh(&format!(
            "(apt-get install -y -q {p} || (apt-get update -q && apt-get install -y -q {p})) > /dev/null",
            p = missing.join(" ")
        ))
        .context("restic and borg are needed (apt-get install restic borgbackup)")?;
    }
    Ok(())
}

/// Day `day`'s changes (and the export written anew, `--export-mb`): 1% of the data file's 4 KiB pages overwritten with
/// fresh bytes at random positions, 1% of the small files changed.
pub(crate) fn change(src: &Path, day: usize, export_mb: u64) -> Result<()> {
    // The same pages for the same day, in every run.
    let mut rng = fastrand::Rng::with_seed(day as u64);
    write_export(src, day, export_mb)?;
    let data = src.join("SampleApp/Data/SampleApp.4DD");
    let pages = size_of(&data)? / 4096;
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&data)?;
        let mut page = vec![0u8; 4096];
        for _ in 0..(pages / 100).max(1) {
            rng.fill(&mut page);
            f.seek(SeekFrom::Start(rng.u64(..pages.max(1)) * 4096))?;
            f.write_all(&page)?;
        }
        f.sync_all()?;
    }
    let mut small = Vec::new();
    let mut stack = vec![src.join("SampleApp/Project")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                small.push(p);
            }
        }
    }
    small.sort();
    for _ in 0..(small.len() / 100).max(1) {
        let i = rng.usize(..small.len());
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&small[i])?;
        writeln!(f, "// changed on day {day}")?;
    }
    Ok(())
}

/// The export of day `day` (`--export-mb`): `export_mb` MB of bytes no
/// compressor shrinks, new every day.
fn write_export(src: &Path, day: usize, export_mb: u64) -> Result<()> {
    if export_mb == 0 {
        return Ok(());
    }
    use std::io::Write;
    let mut rng = fastrand::Rng::with_seed(1000 + day as u64);
    let mut f = std::io::BufWriter::new(std::fs::File::create(src.join("Attachments/export.bin"))?);
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..export_mb {
        rng.fill(&mut chunk);
        f.write_all(&chunk)?;
    }
    f.into_inner()?.sync_all()?;
    Ok(())
}

pub(crate) fn peers(o: &Options) -> Result<()> {
    if o.store {
        return crate::peers_store::run(o);
    }
    install_missing()?;
    let Setup {
        sauve,
        work,
        src,
        app,
        input,
    } = set_up(o, "target/bench-peers")?;

    let mut peers = destinations(&work)?;
    let configurations = configure_sauve(
        o,
        &sauve,
        &app,
        &work,
        [
            &format!("{}/", peers[0].dest.display()),
            &format!("{}/", peers[4].dest.display()),
        ],
    )?;
    init_repositories(&peers)?;
    let week = Week {
        sauve,
        src,
        app,
        work,
        configurations,
        export_mb: o.export_mb,
    };
    for day in 0..=o.days {
        back_up_day(&week, &mut peers, day)?;
    }
    sh(&week.configurations.as_full)?;
    restore_last_day(&week, &mut peers, o.days)?;

    report(o, input, &peers)
}

/// What a week runs on: the release `sauve`, the bench's work folder, the
/// sample app's folder (`src`, holding `SampleApp` and `Attachments`) and
/// its size.
pub(crate) struct Setup {
    pub(crate) sauve: PathBuf,
    pub(crate) work: PathBuf,
    pub(crate) src: PathBuf,
    pub(crate) app: PathBuf,
    pub(crate) input: u64,
}

/// Builds the release `sauve`, empties the work folder `dir` (under the
/// repository) and makes the sample app in it.
pub(crate) fn set_up(o: &Options, dir: &str) -> Result<Setup> {
    cargo(&["build", "--release", "--quiet", "-p", "sauve-cli"])?;
    let root = repo_root();
    let sauve = root.join("target/release/sauve");
    let work = root.join(dir);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let src = work.join("src");
    eprintln!(
        "making the sample app ({} MB data, {} MB attachments)…",
        o.data_mb, o.attach_mb
    );
    make_sample_app(&src, o.data_mb, o.attach_mb)?;
    write_export(&src, 0, o.export_mb)?;
    let app = src.join("SampleApp");
    let input = size_of(&app)? + size_of(&src.join("Attachments"))?;
    Ok(Setup {
        sauve,
        work,
        src,
        app,
        input,
    })
}

/// The tools in the order of the table, each with its empty destination
/// `WORK/dest-DIR`: sauve's full sets, tar, restic, borg, sauve's
/// incremental sets (the indices the scripts use).
fn destinations(work: &Path) -> Result<Vec<Peer>> {
    let peers: Vec<Peer> = [
        "sauve (full sets)",
        "tar -I 'zstd -1 -T0'",
        "restic",
        "borg",
        "sauve (incremental sets)",
    ]
    .iter()
    .zip(["sauve", "tar", "restic", "borg", "sauve-inc"])
    .map(|(name, dir)| Peer {
        name,
        dest: work.join(format!("dest-{dir}")),
        backups: Vec::new(),
        restore: None,
    })
    .collect();
    for p in &peers {
        std::fs::create_dir_all(&p.dest)?;
    }
    Ok(peers)
}

/// The shell lines that put one of sauve's two configurations in place
/// before its run.
pub(crate) struct Configurations {
    /// Full sets into sauve's destination, no `sauve.toml`.
    pub(crate) as_full: String,
    /// Incremental sets (`full_every = days + 1`) into their own destination.
    pub(crate) as_incremental: String,
}

/// Sets the sample app's settings for sauve's full sets (into
/// `destinations[0]`), then keeps them and those of the incremental sets
/// (into `destinations[1]`, with their `sauve.toml`) aside in `work`.
pub(crate) fn configure_sauve(
    o: &Options,
    sauve: &Path,
    app: &Path,
    work: &Path,
    destinations: [&str; 2],
) -> Result<Configurations> {
    for (key, value) in [
        ("Advanced/CompressionRate", "Fast".to_owned()),
        ("Advanced/SetNumber/Enable", "True".to_owned()),
        ("Advanced/SetNumber/Value", (o.days + 1).to_string()),
        ("General/DestinationFolder", destinations[0].to_owned()),
        (
            "General/IncludesFiles/Item1",
            "./Data/SampleApp.4DIndx".to_owned(),
        ),
        ("General/IncludesFiles/Item2", "../Attachments/".to_owned()),
    ] {
        settings_set(sauve, app, key, &value)?;
    }
    // The two sauve configurations, put in place before each of its runs.
    let settings = app.join("Settings/backup.4DSettings");
    let toml = app.join("Settings/sauve.toml");
    let full_settings = work.join("full.4DSettings");
    let inc_settings = work.join("incremental.4DSettings");
    let inc_toml = work.join("incremental.toml");
    std::fs::copy(&settings, &full_settings)?;
    settings_set(sauve, app, "General/DestinationFolder", destinations[1])?;
    std::fs::copy(&settings, &inc_settings)?;
    std::fs::write(
        &inc_toml,
        format!(
            "[incremental]\nfull_every = {}\n{}",
            o.days + 1,
            o.block_kib
                .map_or_else(String::new, |kib| format!("block_kib = {kib}\n"))
        ),
    )?;
    Ok(Configurations {
        as_full: format!(
            "cp {} {} && rm -f {}",
            q(&full_settings),
            q(&settings),
            q(&toml)
        ),
        as_incremental: format!(
            "cp {} {} && cp {} {}",
            q(&inc_settings),
            q(&settings),
            q(&inc_toml),
            q(&toml)
        ),
    })
}

/// `restic init` and `borg init` in their destinations.
fn init_repositories(peers: &[Peer]) -> Result<()> {
    let restic = q(&peers[2].dest);
    let borg = q(&peers[3].dest);
    let init = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "restic init -q -r {restic} > /dev/null && borg init -e none {borg}"
        ))
        .envs(ENV.iter().copied())
        .status()?;
    if !init.success() {
        bail!("cannot make the restic and borg repositories");
    }
    Ok(())
}

/// What the daily backups and the restores run on.
struct Week {
    sauve: PathBuf,
    /// The folder of the sample app and its attachments.
    src: PathBuf,
    app: PathBuf,
    work: PathBuf,
    configurations: Configurations,
    /// MB of the export rewritten every day (`--export-mb`).
    export_mb: u64,
}

impl Week {
    /// restic's cache, outside the repository.
    fn cache(&self) -> String {
        q(&self.work.join("restic-cache"))
    }
}

/// Day `day`: the day's changes (none on day 0), then a backup by each tool.
fn back_up_day(week: &Week, peers: &mut [Peer], day: usize) -> Result<()> {
    if day > 0 {
        change(&week.src, day, week.export_mb)?;
    }
    // The page cache is warm for every tool alike.
    sh(&format!(
        "find {} -type f -exec cat {{}} + > /dev/null",
        q(&week.src)
    ))?;
    let (sauve, app) = (q(&week.sauve), q(&week.app));
    let tree = format!("{} {}", q(&week.app), q(&week.src.join("Attachments")));
    let tar_tree = format!("-C {} SampleApp Attachments", q(&week.src));
    let (restic, borg, cache) = (q(&peers[2].dest), q(&peers[3].dest), week.cache());
    let scripts = [
        format!(
            "{sauve} backup --app {app} > /dev/null && sync -f {}",
            q(&peers[0].dest)
        ),
        format!(
            "tar -I 'zstd -1 -T0' -cf {d}/day-{day}.tar.zst {tar_tree} && sync -f {d}",
            d = q(&peers[1].dest)
        ),
        format!(
            "restic -q -r {restic} --cache-dir {cache} backup {tree} > /dev/null && sync -f {restic}"
        ),
        format!("borg create --compression zstd,1 {borg}::day-{day} {tree} && sync -f {borg}"),
        format!(
            "{sauve} backup --app {app} > /dev/null && sync -f {}",
            q(&peers[4].dest)
        ),
    ];
    let before = [
        week.configurations.as_full.as_str(),
        "true",
        "true",
        "true",
        week.configurations.as_incremental.as_str(),
    ];
    for ((p, script), before) in peers.iter_mut().zip(scripts).zip(before) {
        eprintln!("day {day}: {}…", p.name);
        p.backups.push(measure_env(&script, before, 1, ENV)?);
    }
    Ok(())
}

/// The newest set sauve wrote in `dest`.
fn newest_set(dest: &Path) -> Result<PathBuf> {
    std::fs::read_dir(dest)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "4BK"))
        .max()
        .context("sauve wrote no set")
}

/// Restores the last day (`days`) by each tool, each into an empty folder,
/// synced.
fn restore_last_day(week: &Week, peers: &mut [Peer], days: usize) -> Result<()> {
    let to = week.work.join("restored");
    let clean = format!("rm -rf {t} && mkdir -p {t} && sync", t = q(&to));
    let last_set = newest_set(&peers[0].dest)?;
    let last_inc = newest_set(&peers[4].dest)?;
    let (sauve, t) = (q(&week.sauve), q(&to));
    let (restic, borg, cache) = (q(&peers[2].dest), q(&peers[3].dest), week.cache());
    let scripts = [
        format!(
            "{sauve} restore {} --to {t}/r > /dev/null && sync -f {t}",
            q(&last_set)
        ),
        format!(
            "tar -xf {d}/day-{days}.tar.zst -C {t} && sync -f {t}",
            d = q(&peers[1].dest)
        ),
        format!(
            "restic -q -r {restic} --cache-dir {cache} restore latest --target {t} > /dev/null && sync -f {t}"
        ),
        format!("cd {t} && borg extract {borg}::day-{days} && sync -f {t}"),
        format!(
            "{sauve} restore {} --to {t}/r > /dev/null && sync -f {t}",
            q(&last_inc)
        ),
    ];
    for (p, script) in peers.iter_mut().zip(scripts) {
        eprintln!("restore: {}…", p.name);
        p.restore = Some(measure_env(&script, &clean, 1, ENV)?);
    }
    let _ = std::fs::remove_dir_all(&to);
    Ok(())
}

fn report(o: &Options, input: u64, peers: &[Peer]) -> Result<()> {
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    heading(o);
    println!(
        "input: {:.0} MiB (sample app from tests/fixtures/make-sample-app); day 0 backs it up, each later day first overwrites 1% of the data file's 4 KiB pages at random positions and changes 1% of the small files{}; every command ends with its output synced",
        mib(input),
        exported(o)
    );
    println!();
    let mut sizes = Vec::new();
    for p in peers {
        sizes.push(size_of(&p.dest)?);
    }
    days_table(
        o.days,
        peers
            .iter()
            .zip(&sizes)
            .map(|(p, &size)| (p.name, &p.backups[..], p.restore, size)),
    );
    let later = |p: &Peer| later_mean(&p.backups);
    let first = peers[0].backups.first().map_or(0.0, |s| s.seconds);
    println!("| ratio | measured |");
    println!("|---|---:|");
    let first_set = |dest: &Path| -> Result<u64> {
        Ok(std::fs::read_dir(dest)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "4BK"))
            .min()
            .map(|p| size_of(&p))
            .transpose()?
            .unwrap_or(1))
    };
    let restore = |p: &Peer| p.restore.map_or(0.0, |s| s.seconds);
    let inc = &peers[4];
    println!(
        "| incremental week / one full set (size; target ≤ 1.3x) | {:.2}x |",
        sizes[4] as f64 / first_set(&inc.dest)? as f64
    );
    println!(
        "| incremental week / restic's repository (target ≤ 1.2x) | {:.2}x |",
        sizes[4] as f64 / sizes[2] as f64
    );
    println!(
        "| incremental backup / sauve's full backup of the same day (time; target ≤ 0.33x) | {:.2}x |",
        later(inc) / later(&peers[0])
    );
    println!(
        "| incremental backup / restic's (time; target ≤ 1x) | {:.2}x |",
        later(inc) / later(&peers[2])
    );
    println!(
        "| restore of the last incremental / of the last full set (time; target ≤ 1.25x) | {:.2}x |",
        restore(inc) / restore(&peers[0])
    );
    let first_set = first_set(&peers[0].dest)?;
    println!(
        "| sauve's week / its first set (size) | {:.2}x |",
        sizes[0] as f64 / first_set as f64
    );
    println!(
        "| sauve's week / restic's repository | {:.2}x |",
        sizes[0] as f64 / sizes[2] as f64
    );
    println!(
        "| sauve's later backup / its first (time) | {:.2}x |",
        later(&peers[0]) / first
    );
    println!(
        "| sauve's later backup / restic's (time) | {:.2}x |",
        later(&peers[0]) / later(&peers[2])
    );
    println!(
        "| sauve's later backup / borg's (time) | {:.2}x |",
        later(&peers[0]) / later(&peers[3])
    );
    Ok(())
}

/// What the week's days do besides, for the table's heading.
pub(crate) fn exported(o: &Options) -> String {
    match o.export_mb {
        0 => String::new(),
        mb => format!(" and writes the {mb} MB export (Attachments/export.bin) anew"),
    }
}

/// The table's heading: the command that gives it, then the machine.
pub(crate) fn heading(o: &Options) {
    println!(
        "## cargo xtask bench peers{} --data-mb {} --attach-mb {} --days {}{}",
        if o.store { " --store" } else { "" },
        o.data_mb,
        o.attach_mb,
        o.days,
        o.block_kib
            .map_or_else(String::new, |kib| format!(" --block-kib {kib}"))
            + &match o.export_mb {
                0 => String::new(),
                mb => format!(" --export-mb {mb}"),
            }
            + &o.baseline
                .as_ref()
                .map_or_else(String::new, |rev| format!(" --baseline {rev}"))
    );
    println!();
    println!("{}", machine());
}

/// The week's table: per tool (its name, its backups, its restore and its
/// destination's size in bytes after the week), each day's backup time,
/// the size and the time to restore the last day.
pub(crate) fn days_table<'a>(
    days: usize,
    rows: impl Iterator<Item = (&'a str, &'a [Sample], Option<Sample>, u64)>,
) {
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let mut head = String::from("| tool | day 0 s |");
    let mut rule = String::from("|---|---:|");
    for d in 1..=days {
        head.push_str(&format!(" day {d} s |"));
        rule.push_str("---:|");
    }
    head.push_str(" destination after the week MiB | restore of the last day s |");
    rule.push_str("---:|---:|");
    println!("{head}");
    println!("{rule}");
    for (name, backups, restore, size) in rows {
        let days: String = backups
            .iter()
            .map(|s| format!(" {:.2} |", s.seconds))
            .collect();
        println!(
            "| {name} |{days} {:.1} | {:.2} |",
            mib(size),
            restore.map_or(0.0, |s| s.seconds)
        );
    }
    println!();
}

/// The mean time of the backups after the first (day 0's).
pub(crate) fn later_mean(backups: &[Sample]) -> f64 {
    let v: Vec<f64> = backups.iter().skip(1).map(|s| s.seconds).collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}
