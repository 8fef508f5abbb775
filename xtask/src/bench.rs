//! `cargo xtask bench archive`: the archive writer and restore against GNU
//! tar and the zstd CLI on the same sample app, in one run, then how long
//! Stop takes to end a backup at each level (`--stop-only`: that alone),
//! and what the index at the end of a set saves (`--index-only`: that alone).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::measure::{Sample, machine, make_sample_app, measure, q, require_tools, sh, size_of};
use crate::workspace::{cargo, repo_root};

/// Options of `bench archive`.
#[derive(clap::Args, Debug)]
pub(crate) struct ArchiveOptions {
    /// MB of data file in the sample app
    #[arg(long, value_name = "N", default_value_t = 1024)]
    data_mb: u64,
    /// MB of attachments beside the sample app
    #[arg(long, value_name = "N", default_value_t = 512)]
    attach_mb: u64,
    /// Runs per contender, of which the median is reported (Compact and zstd -19 run once)
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = crate::workspace::at_least_one)]
    runs: usize,
    /// A git revision whose writer, restore and verify are measured in the
    /// same run (built from a worktree in target/), for the ratios against it
    #[arg(long, value_name = "REV")]
    baseline: Option<String>,
    /// Only how long Stop takes to end a backup of the sample app, per level
    /// (no writer, restore or verify against tar and zstd)
    #[arg(long)]
    stop_only: bool,
    /// Only what a set's index saves: `list` and a restore of a Fast set,
    /// with its index and without it (as sets written before it are)
    #[arg(long)]
    index_only: bool,
    /// MB the backup has copied when Stop is pressed (at most half of it)
    #[arg(long, value_name = "N", default_value_t = 256)]
    stop_after_mb: u64,
}

pub(crate) fn archive(o: &ArchiveOptions) -> Result<()> {
    if !o.stop_only {
        require_tools()?;
    }
    let root = repo_root();
    let work = root.join("target/bench-archive");
    let src = work.join(format!("src-{}-{}", o.data_mb, o.attach_mb));
    if !src.join("SampleApp/Data/SampleApp.4DD").exists() {
        eprintln!(
            "making the sample app ({} MB data, {} MB attachments)…",
            o.data_mb, o.attach_mb
        );
        let _ = std::fs::remove_dir_all(&src);
        make_sample_app(&src, o.data_mb, o.attach_mb)?;
    }
    if o.stop_only {
        return stops(o, &work, &src);
    }
    cargo(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "sauve-archive",
        "--example",
        "bench_archive",
    ])?;
    let bin = root.join("target/release/examples/bench_archive");
    if o.index_only {
        return index(o, &work, &src, &bin);
    }
    let base = o
        .baseline
        .as_deref()
        .map(|rev| baseline_example(rev, "sauve-archive", "bench_archive"))
        .transpose()?;
    let out = work.join("out");
    let app = src.join("SampleApp");
    let input = size_of(&app)? + size_of(&src.join("Attachments"))?;
    // Warm the page cache so that every contender reads from memory.
    sh(&format!(
        "find {} -type f -exec cat {{}} + > /dev/null",
        q(&src)
    ))?;

    // sauve's writers, this build's and the baseline's.
    let mut writers = vec![("sauve", bin.as_path())];
    if let Some(b) = base.as_ref() {
        writers.push(("baseline", b));
    }
    let contest = Contest {
        runs: o.runs,
        bin: &bin,
        writers,
        work: &work,
        app,
        clean: format!("rm -rf {o} && mkdir -p {o} && sync", o = q(&out)),
        tar_src: format!("-C {} SampleApp Attachments", q(&src)),
        out,
    };
    let mut rows: Vec<Row> = Vec::new();
    time_sauve_writers(&contest, &mut rows)?;
    time_tar_writers(&contest, &mut rows)?;
    let sets = write_sets_to_restore(&contest)?;
    time_restores_and_verifies(&contest, &sets, &mut rows)?;
    let _ = std::fs::remove_dir_all(&contest.out);

    report(o, input, &rows);
    println!();
    index(o, &work, &src, &bin)?;
    println!();
    stops(o, &work, &src)
}

/// A row of the table: a contender, its time and memory, the size of what
/// it wrote (none for a restore or a verify).
type Row = (String, Sample, Option<u64>);

/// Runs of the slow contenders, Compact and zstd -19.
const SLOW_RUNS: usize = 1;

/// What the writers, restores and verifies of [`archive`] share.
struct Contest<'a> {
    runs: usize,
    /// This build's `bench_archive`.
    bin: &'a Path,
    /// sauve's writers by name: this build's, and the baseline's.
    writers: Vec<(&'static str, &'a Path)>,
    work: &'a Path,
    app: PathBuf,
    /// Where each contender writes, emptied before each run by `clean`.
    out: PathBuf,
    clean: String,
    /// tar's arguments naming the sample app and its attachments.
    tar_src: String,
}

/// Each of sauve's writers at each level, with the size of its set.
fn time_sauve_writers(c: &Contest, rows: &mut Vec<Row>) -> Result<()> {
    for (who, exe) in &c.writers {
        for level in ["None", "Fast", "Compact"] {
            let runs = if level == "Compact" {
                SLOW_RUNS
            } else {
                c.runs
            };
            eprintln!("{who} {level}…");
            let s = measure(
                &format!(
                    "{} write {} {} {level} > /dev/null",
                    q(exe),
                    q(&c.app),
                    q(&c.out)
                ),
                &c.clean,
                runs,
            )?;
            let size = size_of(&c.out.join("SampleApp[0001].4BK"))?;
            rows.push((format!("{who} {level}"), s, Some(size)));
        }
    }
    Ok(())
}

/// tar, plain and through zstd at levels 1 and 19, with the size of its
/// archive.
fn time_tar_writers(c: &Contest, rows: &mut Vec<Row>) -> Result<()> {
    let (out, tar_src) = (&c.out, &c.tar_src);
    let contenders = [
        (
            "tar -cf",
            format!(
                "tar -cf {a} {tar_src} && sync {a}",
                a = q(&out.join("t.tar"))
            ),
            "t.tar",
            c.runs,
        ),
        (
            "tar -I 'zstd -1 -T0'",
            format!(
                "tar -I 'zstd -1 -T0' -cf {a} {tar_src} && sync {a}",
                a = q(&out.join("t.tar.zst"))
            ),
            "t.tar.zst",
            c.runs,
        ),
        (
            "tar -I 'zstd -19 -T0'",
            format!(
                "tar -I 'zstd -19 -T0' -cf {a} {tar_src} && sync {a}",
                a = q(&out.join("t19.tar.zst"))
            ),
            "t19.tar.zst",
            SLOW_RUNS,
        ),
    ];
    for (name, script, file, runs) in contenders {
        eprintln!("{name}…");
        let s = measure(&script, &c.clean, runs)?;
        rows.push((name.to_owned(), s, Some(size_of(&out.join(file))?)));
    }
    Ok(())
}

/// The sets the restores and verifies read, in `WORK/sets`: each writer's
/// None and Fast sets (`WHO-LEVEL/`), and a plain tar (`t.tar`).
fn write_sets_to_restore(c: &Contest) -> Result<PathBuf> {
    let sets = c.work.join("sets");
    sh(&format!("rm -rf {s} && mkdir -p {s}", s = q(&sets)))?;
    for (who, exe) in &c.writers {
        for level in ["None", "Fast"] {
            let dir = sets.join(format!("{who}-{level}"));
            std::fs::create_dir_all(&dir)?;
            sh(&format!(
                "{} write {} {} {level} > /dev/null",
                q(exe),
                q(&c.app),
                q(&dir)
            ))?;
        }
    }
    sh(&format!("tar -cf {} {}", q(&sets.join("t.tar")), c.tar_src))?;
    Ok(sets)
}

/// Restore and verify: sauve's None and Fast sets (each writer's own),
/// against tar -xf of a plain tar, each followed by sync.
fn time_restores_and_verifies(c: &Contest, sets: &Path, rows: &mut Vec<Row>) -> Result<()> {
    // Each restore goes to `OUT/r`, `out` emptied before it as before a write.
    let restored = c.out.join("r");
    for (who, exe) in &c.writers {
        for level in ["None", "Fast"] {
            let archive = sets
                .join(format!("{who}-{level}"))
                .join("SampleApp[0001].4BK");
            let name = format!("{who} restore {level}");
            eprintln!("{name}…");
            let s = measure(
                &format!(
                    "{} restore {} {} > /dev/null",
                    q(exe),
                    q(&archive),
                    q(&restored)
                ),
                &c.clean,
                c.runs,
            )?;
            rows.push((name, s, None));
        }
        // The baseline's worker may predate `verify`: this build verifies
        // the baseline's set (a set written before frames, one frame of
        // unknown size, goes to zstd's streaming decoder on one core, as
        // the baseline read it).
        let name = if *who == "sauve" {
            "sauve verify Fast".to_owned()
        } else {
            format!("sauve verify of the {who}'s Fast set")
        };
        eprintln!("{name}…");
        let archive = sets.join(format!("{who}-Fast")).join("SampleApp[0001].4BK");
        let s = measure(
            &format!("{} verify {} > /dev/null", q(c.bin), q(&archive)),
            "true",
            c.runs,
        )?;
        rows.push((name, s, None));
    }
    eprintln!("tar -xf…");
    let s = measure(
        &format!(
            "mkdir -p {r} && tar -xf {t} -C {r} && sync -f {r}",
            r = q(&restored),
            t = q(&sets.join("t.tar"))
        ),
        &c.clean,
        c.runs,
    )?;
    rows.push(("tar -xf".to_owned(), s, None));
    Ok(())
}

/// The lists timed together in one run of [`index`].
const LISTS: usize = 20;

/// `list` and a restore of one Fast set of the sample app, with its index
/// and with its index cut off (a set as sauve wrote it before the index:
/// `list` reads it through, a restore reads it twice), in one run.
fn index(o: &ArchiveOptions, work: &Path, src: &Path, bin: &Path) -> Result<()> {
    let app = src.join("SampleApp");
    let sets = work.join("index");
    let (with, without) = (sets.join("with"), sets.join("without"));
    sh(&format!(
        "rm -rf {s} && mkdir -p {w} {n}",
        s = q(&sets),
        w = q(&with),
        n = q(&without)
    ))?;
    sh(&format!(
        "{} write {} {} Fast > /dev/null",
        q(bin),
        q(&app),
        q(&with)
    ))?;
    let set = "SampleApp[0001].4BK";
    let set_mib = size_of(&with.join(set))? as f64 / (1u64 << 20) as f64;
    std::fs::copy(with.join(set), without.join(set))?;
    sh(&format!("truncate -s -64 {}", q(&without.join(set))))?;
    let restored = work.join("index-restored");
    let clean = format!("rm -rf {r} && sync", r = q(&restored));
    let mut rows: Vec<(&str, Sample)> = Vec::new();
    for (name, dir) in [("with its index", &with), ("without it", &without)] {
        // Twenty lists per run: one through the index takes milliseconds,
        // under what `time` can tell (the process's start included).
        eprintln!("list, {name}…");
        let list = measure(
            &format!(
                "for i in $(seq {LISTS}); do {} list {} > /dev/null; done",
                q(bin),
                q(&dir.join(set))
            ),
            "true",
            o.runs,
        )?;
        let list = Sample {
            seconds: list.seconds / LISTS as f64,
            ..list
        };
        eprintln!("restore, {name}…");
        let restore = measure(
            &format!(
                "{} restore {} {} > /dev/null",
                q(bin),
                q(&dir.join(set)),
                q(&restored)
            ),
            &clean,
            o.runs,
        )?;
        rows.push((name, list));
        rows.push((name, restore));
    }
    sh(&clean)?;
    let _ = std::fs::remove_dir_all(&sets);
    println!(
        "## cargo xtask bench archive --index-only --data-mb {} --attach-mb {} --runs {}",
        o.data_mb, o.attach_mb, o.runs
    );
    println!();
    println!("{}", machine());
    println!(
        "one Fast set of the sample app ({set_mib:.0} MiB); the set without its index is the same set with its last 64 bytes cut off; median of {} runs",
        o.runs
    );
    println!();
    println!("| set | list, ms | restore, s | peak MiB (list / restore) |");
    println!("|---|---:|---:|---:|");
    for pair in rows.chunks(2) {
        let [(name, list), (_, restore)] = pair else {
            continue;
        };
        println!(
            "| {name} | {:.1} | {:.2} | {:.1} / {:.1} |",
            list.seconds * 1000.0,
            restore.seconds,
            list.peak_kib as f64 / 1024.0,
            restore.peak_kib as f64 / 1024.0
        );
    }
    let (list_with, restore_with) = (rows[0].1.seconds, rows[1].1.seconds);
    let (list_without, restore_without) = (rows[2].1.seconds, rows[3].1.seconds);
    println!();
    println!("| target | measured | verdict |");
    println!("|---|---:|---|");
    let list_ratio = list_without / list_with.max(1e-4);
    println!(
        "| list through the index ≥ 10x faster than reading the set through | {list_ratio:.0}x | {} |",
        if list_ratio >= 10.0 { "met" } else { "MISSED" }
    );
    let restore_ratio = restore_without / restore_with.max(0.001);
    println!(
        "| restore of a set without its index (read twice) ≤ 2x one with it | {restore_ratio:.2}x | {} |",
        if restore_ratio <= 2.0 {
            "met"
        } else {
            "MISSED"
        }
    );
    Ok(())
}

/// How long Stop takes to end a backup, per level, with the `sauve` binary
/// of this build (see `stopbench`).
fn stops(o: &ArchiveOptions, work: &Path, src: &Path) -> Result<()> {
    let sauve = crate::workspace::release_sauve()?;
    let title = format!(
        "## cargo xtask bench archive --stop-only --data-mb {} --attach-mb {} --runs {} --stop-after-mb {}",
        o.data_mb, o.attach_mb, o.runs, o.stop_after_mb
    );
    crate::stopbench::stop_bench(
        &sauve,
        &src.join("SampleApp"),
        work,
        o.stop_after_mb << 20,
        o.runs,
        &title,
    )
}

fn report(o: &ArchiveOptions, input: u64, rows: &[Row]) {
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let find = |name: &str| rows.iter().find(|r| r.0 == name);
    println!(
        "## cargo xtask bench archive --data-mb {} --attach-mb {} --runs {}{}",
        o.data_mb,
        o.attach_mb,
        o.runs,
        o.baseline
            .as_deref()
            .map_or(String::new(), |b| format!(" --baseline {b}"))
    );
    println!();
    println!("{}", machine());
    println!(
        "input: {:.0} MiB (sample app from tests/fixtures/make-sample-app); median of {} runs (1 for level 19); every writer ends with its output synced to disk",
        mib(input),
        o.runs
    );
    println!();
    println!("| contender | seconds | MiB/s | size MiB | peak MiB |");
    println!("|---|---:|---:|---:|---:|");
    for (name, s, size) in rows {
        println!(
            "| {name} | {:.2} | {:.0} | {} | {:.1} |",
            s.seconds,
            mib(input) / s.seconds,
            size.map_or("".to_owned(), |b| format!("{:.1}", mib(b))),
            s.peak_kib as f64 / 1024.0
        );
    }
    println!();
    println!("| target | measured | verdict |");
    println!("|---|---:|---|");
    let speed = |a: &str, b: &str| -> Option<f64> { Some(find(b)?.1.seconds / find(a)?.1.seconds) };
    let size = |a: &str, b: &str| -> Option<f64> { Some(find(a)?.2? as f64 / find(b)?.2? as f64) };
    let line = |what: &str, v: Option<f64>, ok: &dyn Fn(f64) -> bool| {
        let (m, verdict) = v.map_or(("n/a".to_owned(), "n/a"), |v| {
            (format!("{v:.2}x"), if ok(v) { "met" } else { "MISSED" })
        });
        println!("| {what} | {m} | {verdict} |");
    };
    line(
        "None throughput ≥ 0.9x tar -cf",
        speed("sauve None", "tar -cf"),
        &|v| v >= 0.9,
    );
    line(
        "Fast throughput ≥ 1.0x tar -I 'zstd -1 -T0'",
        speed("sauve Fast", "tar -I 'zstd -1 -T0'"),
        &|v| v >= 1.0,
    );
    line(
        "Fast size within 5% of tar -I 'zstd -1 -T0'",
        size("sauve Fast", "tar -I 'zstd -1 -T0'"),
        &|v| (0.95..=1.05).contains(&v) || v < 0.95,
    );
    line(
        "restore throughput ≥ 0.9x tar -xf (None set)",
        speed("sauve restore None", "tar -xf"),
        &|v| v >= 0.9,
    );
    line(
        "Compact size ≤ 1.02x tar -I 'zstd -19 -T0'",
        size("sauve Compact", "tar -I 'zstd -19 -T0'"),
        &|v| v <= 1.02,
    );
    if o.baseline.is_some() {
        line(
            "Fast backup no slower than the baseline's (within 5%)",
            speed("sauve Fast", "baseline Fast"),
            &|v| v >= 0.95,
        );
        line(
            "Compact throughput ≥ 1.8x the baseline's",
            speed("sauve Compact", "baseline Compact"),
            &|v| v >= 1.8,
        );
        line(
            "restore of a Fast set ≥ 1.6x the baseline's",
            speed("sauve restore Fast", "baseline restore Fast"),
            &|v| v >= 1.6,
        );
        line(
            "verify of a Fast set ≥ 1.6x the baseline's",
            speed(
                "sauve verify Fast",
                "sauve verify of the baseline's Fast set",
            ),
            &|v| v >= 1.6,
        );
    }
    let peak = |compact: bool| {
        rows.iter()
            .filter(|r| r.0.starts_with("sauve") && r.0.contains("Compact") == compact)
            .map(|r| r.1.peak_kib)
            .max()
            .unwrap_or(0) as f64
            / 1024.0
    };
    let (other, compact) = (peak(false), peak(true));
    println!(
        "| peak memory ≤ 100 MiB at None and Fast and in restore and verify | {other:.1} MiB | {} |",
        if other <= 100.0 { "met" } else { "MISSED" }
    );
    println!(
        "| peak memory ≤ 256 MiB at Compact | {compact:.1} MiB | {} |",
        if compact <= 256.0 { "met" } else { "MISSED" }
    );
}

pub(crate) fn locking() -> Result<()> {
    cargo(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "sauve-locking",
        "--example",
        "bench_locking",
    ])?;
    let bin = repo_root().join("target/release/examples/bench_locking");
    let out = Command::new(&bin)
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "bench_locking failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    println!("## cargo xtask bench locking");
    println!();
    println!("{}", machine());
    println!(
        "nanoseconds per acquire and release, median of 21 batches of 100 000 (release build)"
    );
    println!();
    println!("| operation | ns | target < 1000 ns |");
    println!("|---|---:|---|");
    for line in text.lines() {
        let Some((name, ns)) = line.split_once('\t') else {
            continue;
        };
        let value: f64 = ns.parse().unwrap_or(f64::NAN);
        let verdict = if name.contains("uncontended") {
            if value < 1000.0 { "met" } else { "MISSED" }
        } else {
            ""
        };
        println!("| {name} | {ns} | {verdict} |");
    }
    Ok(())
}

/// `cargo xtask bench page`: the History page with 999 entries (behaviour §18's
/// target: rendered in under 50 ms), against `GET /v1/history` on the same
/// file, in the same run.
pub(crate) fn page() -> Result<()> {
    cargo(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "sauve-web",
        "--example",
        "bench_page",
    ])?;
    let bin = repo_root().join("target/release/examples/bench_page");
    let out = Command::new(&bin)
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "bench_page failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = Vec::new();
    let mut about = String::new();
    let mut baseline = f64::NAN;
    for line in text.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        match parts.as_slice() {
            ["history", what] => about = (*what).to_owned(),
            [name, what, ms] => {
                let ms: f64 = ms.parse().unwrap_or(f64::NAN);
                if *name == "baseline" {
                    baseline = ms;
                }
                rows.push((*name == "page", (*what).to_owned(), ms));
            }
            _ => {}
        }
    }
    println!("## cargo xtask bench page");
    println!();
    println!("{}", machine());
    println!("{about}; median of 21 runs, release build");
    println!();
    println!("| work | ms | vs GET /v1/history | target < 50 ms |");
    println!("|---|---:|---:|---|");
    for (target, what, ms) in rows {
        let verdict = match (target, ms < 50.0) {
            (true, true) => "met",
            (true, false) => "MISSED",
            _ => "",
        };
        println!("| {what} | {ms:.2} | {:.2}x | {verdict} |", ms / baseline);
    }
    Ok(())
}

/// Options of `bench logfile`.
#[derive(clap::Args, Debug)]
pub(crate) struct LogfileOptions {
    /// A git revision whose log writer is measured in the same run, each
    /// contender alternating with it (built from a worktree in target/)
    #[arg(long, value_name = "REV")]
    baseline: Option<String>,
    /// Runs of each, of which the median is reported
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = crate::workspace::at_least_one)]
    runs: usize,
    /// Where the logs are written (default target/); on a tmpfs such as
    /// /dev/shm, fsync costs nothing and the writer's own work shows
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The rows `bench_logfile` prints: name → (appends/s, MB/s).
fn logfile_rows(bin: &Path, dir: &Path) -> Result<Vec<(String, f64, f64)>> {
    let out = Command::new(bin)
        .arg(dir)
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut rows = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if let [name, rate, mbs] = cols.as_slice() {
            rows.push((
                (*name).to_owned(),
                rate.parse().unwrap_or(0.0),
                mbs.parse().unwrap_or(0.0),
            ));
        }
    }
    Ok(rows)
}

/// Builds `package`'s example `example` as it was at `rev`, in a worktree
/// of its own.
fn baseline_example(rev: &str, package: &str, example: &str) -> Result<PathBuf> {
    let target = baseline_build(rev, &["-p", package, "--example", example])?;
    Ok(target.join("release/examples").join(example))
}

/// Builds the `sauve` command as it was at `rev`, in a worktree of its own.
pub(crate) fn baseline_sauve(rev: &str) -> Result<PathBuf> {
    let target = baseline_build(rev, &["-p", "sauve-cli", "--bin", "sauve"])?;
    Ok(target.join("release/sauve"))
}

/// Runs `cargo build --release` with `what` in a worktree of `rev`, and
/// returns the target folder.
fn baseline_build(rev: &str, what: &[&str]) -> Result<PathBuf> {
    let src = repo_root().join("target/bench-baseline-src");
    // A worktree left by an interrupted run.
    let _ = Command::new("git")
        .args(["worktree", "remove", "--force"])
        .arg(&src)
        .current_dir(repo_root())
        .stderr(std::process::Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(&src);
    let added = Command::new("git")
        .args(["worktree", "add", "--detach", "--quiet"])
        .arg(&src)
        .arg(rev)
        .current_dir(repo_root())
        .status()
        .context("cannot run git")?;
    if !added.success() {
        bail!(
            "git worktree add {rev} failed (accepted: a commit, tag or branch of this repository)"
        );
    }
    let target = repo_root().join("target/bench-baseline");
    let cargo_bin = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let built = Command::new(cargo_bin)
        .args(["build", "--release", "--quiet"])
        .args(what)
        .arg("--target-dir")
        .arg(&target)
        .current_dir(&src)
        .status()
        .context("cannot run cargo")?;
    let _ = Command::new("git")
        .args(["worktree", "remove", "--force"])
        .arg(&src)
        .current_dir(repo_root())
        .status();
    if !built.success() {
        bail!("cannot build {} at {rev}", what.join(" "));
    }
    Ok(target)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub(crate) fn logfile(o: &LogfileOptions) -> Result<()> {
    cargo(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "sauve-logfile",
        "--example",
        "bench_logfile",
    ])?;
    let bin = repo_root().join("target/release/examples/bench_logfile");
    let base = o
        .baseline
        .as_deref()
        .map(|rev| baseline_example(rev, "sauve-logfile", "bench_logfile"))
        .transpose()?;
    let dir = o.dir.clone().unwrap_or_else(|| repo_root().join("target"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // name → rates of each run, for this tree and the baseline.
    let mut now: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    let mut then: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for _ in 0..o.runs {
        if let Some(b) = &base {
            for (name, rate, _) in logfile_rows(b, &dir)? {
                then.entry(name).or_default().push(rate);
            }
        }
        for (name, rate, mbs) in logfile_rows(&bin, &dir)? {
            match now.iter_mut().find(|r| r.0 == name) {
                Some(r) => {
                    r.1.push(rate);
                    r.2.push(mbs);
                }
                None => now.push((name, vec![rate], vec![mbs])),
            }
        }
    }
    println!(
        "## cargo xtask bench logfile --runs {}{}{}",
        o.runs,
        o.baseline
            .as_deref()
            .map(|b| format!(" --baseline {b}"))
            .unwrap_or_default(),
        o.dir
            .as_deref()
            .map(|d| format!(" --dir {}", d.display()))
            .unwrap_or_default()
    );
    println!();
    println!("{}", machine());
    println!(
        "appends in {}, each one durable before the next (or, with group commit, before its append returns); medians of {} runs, alternating",
        dir.display(),
        o.runs
    );
    println!();
    match &o.baseline {
        Some(rev) => {
            println!("| writer | appends/s ({rev}) | appends/s (this tree) | ratio |");
            println!("|---|---:|---:|---:|");
        }
        None => {
            println!("| writer | appends/s | MB/s |");
            println!("|---|---:|---:|");
        }
    }
    for (name, rates, mbs) in now {
        let rate = median(rates);
        match (&o.baseline, then.remove(&name)) {
            (Some(_), Some(b)) => {
                let b = median(b);
                println!("| {name} | {b:.0} | {rate:.0} | {:.2}x |", rate / b);
            }
            (Some(_), None) => println!("| {name} | - | {rate:.0} | |"),
            (None, _) => println!("| {name} | {rate:.0} | {:.2} |", median(mbs)),
        }
    }
    Ok(())
}
