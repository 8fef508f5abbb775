//! `cargo xtask fuzz`: builds the cargo-fuzz targets of `fuzz/` on the
//! nightly toolchain and runs each for a while, starting from the
//! committed corpus (`fuzz/corpus/<target>/`, read only) with new inputs
//! kept in `fuzz/target/corpus/<target>/`. `--merge` then adds to the
//! committed corpus the inputs that reach new coverage (libFuzzer's
//! `-merge=1`, which keeps a minimal set). A crash fails the task and
//! leaves the input in `fuzz/artifacts/<target>/`: copy it into the
//! corpus once fixed, so that the stable test runs it for good.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::workspace::repo_root;

/// Options of `fuzz`.
#[derive(clap::Args, Debug)]
pub(crate) struct Options {
    /// How long each target runs
    #[arg(long, value_name = "N", default_value_t = 60)]
    seconds: u64,
    /// Only this target (settings, sauve_toml, journal, history, log, archive, http, restore)
    #[arg(long, value_name = "NAME")]
    target: Option<String>,
    /// Add the inputs that reach new coverage to the committed corpus
    #[arg(long)]
    merge: bool,
    /// Build without optimisations (much faster to build; CI's short run)
    #[arg(long)]
    quick: bool,
    /// Without a nightly toolchain or cargo-fuzz, say so and succeed
    #[arg(long)]
    if_available: bool,
}

/// The targets, as `fuzz/Cargo.toml` names them.
const TARGETS: [&str; 8] = [
    "settings",
    "sauve_toml",
    "journal",
    "history",
    "log",
    "archive",
    "http",
    "restore",
];

/// `cargo fuzz ARGS` on the nightly toolchain, in `fuzz/`.
fn cargo_fuzz(fuzz: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("rustup");
    c.args(["run", "nightly", "cargo", "fuzz"])
        .args(args)
        .current_dir(fuzz)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO");
    c
}

/// libFuzzer's closing line: `Done 123456 runs in 60 second(s)`.
fn executions(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("Done ")?.split(' ').next()?.parse().ok())
}

pub(crate) fn main(o: &Options) -> Result<()> {
    let fuzz = repo_root().join("fuzz");
    let chosen: Vec<&str> = match &o.target {
        Some(t) if TARGETS.contains(&t.as_str()) => vec![t.as_str()],
        Some(t) => bail!("no fuzz target {t:?} (accepted: {})", TARGETS.join(", ")),
        None => TARGETS.to_vec(),
    };
    let built = Command::new("rustup")
        .args(["run", "nightly", "cargo", "fuzz", "--version"])
        .output();
    if !built.is_ok_and(|o| o.status.success()) {
        if o.if_available {
            println!(
                "skipped: cargo fuzz on the nightly toolchain is not available here (the committed corpus runs with the tests)"
            );
            return Ok(());
        }
        bail!(
            "cargo fuzz on the nightly toolchain is needed: `rustup toolchain install nightly` and `cargo install cargo-fuzz --locked`"
        );
    }
    let mode = build(o, &fuzz)?;
    let mut rows = Vec::new();
    let mut crashed = Vec::new();
    for target in chosen {
        let row = run_target(o, &fuzz, mode, target)?;
        if !row.ok {
            crashed.push(target);
        }
        rows.push(row);
    }
    write_table(o, &rows);
    if !crashed.is_empty() {
        bail!(
            "{} crashed; the inputs are in fuzz/artifacts/",
            crashed.join(", ")
        );
    }
    Ok(())
}

/// Builds the targets; the build mode `cargo fuzz` takes for them.
fn build(o: &Options, fuzz: &Path) -> Result<&'static [&'static str]> {
    let started = Instant::now();
    // No sanitizer: our crates forbid unsafe code, and libFuzzer's
    // coverage guidance does not need one.
    let mode: &'static [&'static str] = if o.quick {
        &["--dev", "-s", "none"]
    } else {
        &["-O", "-s", "none"]
    };
    let status = cargo_fuzz(fuzz, &[&["build"], mode].concat())
        .status()
        .context("cannot run cargo fuzz build")?;
    if !status.success() {
        bail!("cargo fuzz build failed ({status})");
    }
    eprintln!(
        "built the fuzz targets in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(mode)
}

/// What one target's run gave, for the table.
struct Row<'a> {
    target: &'a str,
    /// Executions, as libFuzzer's closing line counts them.
    runs: Option<u64>,
    /// Inputs in the committed corpus before the run, and after it.
    seeds: usize,
    kept: usize,
    /// Whether the run ended without a crash.
    ok: bool,
}

/// Runs `target` for `--seconds` from its committed corpus (a crash
/// printed with the end of its output), then with `--merge` adds to that
/// corpus the inputs that reach new coverage.
fn run_target<'a>(o: &Options, fuzz: &Path, mode: &[&str], target: &'a str) -> Result<Row<'a>> {
    let committed = format!("corpus/{target}");
    let scratch = format!("target/corpus/{target}");
    std::fs::create_dir_all(fuzz.join(&scratch))?;
    let seeds = std::fs::read_dir(fuzz.join(&committed))
        .with_context(|| format!("no committed corpus fuzz/{committed}"))?
        .count();
    let time = format!("-max_total_time={}", o.seconds);
    let out = cargo_fuzz(
        fuzz,
        &[
            &["run"],
            mode,
            &[
                target,
                &scratch,
                &committed,
                "--",
                &time,
                "-rss_limit_mb=2048",
                "-timeout=20",
                "-print_final_stats=1",
            ],
        ]
        .concat(),
    )
    .output()
    .with_context(|| format!("cannot run cargo fuzz run {target}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let runs = executions(&stderr);
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        eprintln!(
            "{target}: FAILED\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    if o.merge {
        merge(fuzz, mode, target, (&committed, &scratch))?;
    }
    let kept = std::fs::read_dir(fuzz.join(&committed))?.count();
    eprintln!(
        "{target}: {} runs in {} s",
        runs.map_or("?".to_owned(), |r| r.to_string()),
        o.seconds
    );
    Ok(Row {
        target,
        runs,
        seeds,
        kept,
        ok: out.status.success(),
    })
}

/// libFuzzer's `-merge=1`: the inputs of `scratch` that reach new coverage
/// added to `committed`.
fn merge(
    fuzz: &Path,
    mode: &[&str],
    target: &str,
    (committed, scratch): (&str, &str),
) -> Result<()> {
    let merged = cargo_fuzz(
        fuzz,
        &[
            &["run"],
            mode,
            &[target, committed, scratch, "--", "-merge=1"],
        ]
        .concat(),
    )
    .output()
    .with_context(|| format!("cannot merge the corpus of {target}"))?;
    if !merged.status.success() {
        bail!(
            "merging the corpus of {target} failed:\n{}",
            String::from_utf8_lossy(&merged.stderr)
        );
    }
    Ok(())
}

/// The table: per target, executions, their rate, the committed corpus
/// before and after, crashes.
fn write_table(o: &Options, rows: &[Row]) {
    println!("## cargo xtask fuzz --seconds {}", o.seconds);
    println!();
    println!("| target | executions | per second | committed corpus before / after | crashes |");
    println!("|---|---:|---:|---:|---:|");
    for Row {
        target,
        runs,
        seeds,
        kept,
        ok,
    } in rows
    {
        let per = runs.map_or("?".to_owned(), |r| (r / o.seconds.max(1)).to_string());
        let runs = runs.map_or("?".to_owned(), |r| r.to_string());
        println!(
            "| {target} | {runs} | {per} | {seeds} / {kept} | {} |",
            if *ok { 0 } else { 1 }
        );
    }
}
