//! Developer automation: `cargo xtask <task>`.
//!
//! - `test [--check] [--setup-only] [-- NEXTEST ARGS]`: the whole test
//!   suite, after installing what it needs where it is missing (README's
//!   second command; `.ci/run` runs it too).
//! - `ci [--print]`: what `.ci/run` runs (format check, clippy with warnings
//!   denied, the short end-to-end run, the test suite); `--print` lists the
//!   commands instead of running them.
//! - `bench archive [--data-mb N] [--attach-mb N] [--runs N] [--baseline REV]
//!   [--stop-only] [--stop-after-mb N]`: the archive writer, restore and
//!   verify against tar and zstd, and against REV's in the same run, then
//!   how long Stop takes to end a backup at each level (only that with
//!   `--stop-only`); prints tables for BENCHMARKS.md.
//! - `bench lock-window [--data-mib N] [--runs N]`: the data lock's window
//!   with the data on a loop-mounted XFS (cloned) and on target/ (copied).
//! - `bench peers [--data-mb N] [--attach-mb N] [--days N] [--block-kib N]
//!   [--store]`: a week of daily backups by sauve, `tar -I 'zstd -1 -T0'`,
//!   restic and borg into folders; with `--store`, by sauve, restic and
//!   rustic into a bucket of a local Garage node.
//! - `bench locking`: the lock manager's cost per guard.
//! - `bench offsite [--data-mb N] [--runs N]`: a backup with its off-site
//!   copy to a local Garage node, against a folder only and a plain upload.
//! - `bench logfile`: log appends against a plain write + fdatasync loop.
//! - `e2e [--seconds N] [--cycles N] [--writers N] [--readers N]`: the
//!   notes-server host under load, killed and recovered.
//!
//! The options, their defaults and their help live in the clap definitions
//! below and in `bench.rs` and `e2e.rs`; `cargo xtask --help` lists them all.

#![allow(clippy::print_stdout)]

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod bench;
mod blocks;
mod ci_steps;
mod crash;
mod e2e;
mod e2e_point;
mod e2e_rehearsal;
mod fuzz;
mod lockwindow;
mod measure;
mod notes_server;
mod offsite;
mod peers;
mod peers_store;
mod rehearsebench;
mod samplebench;
mod stopbench;
mod suite;
mod workspace;

use workspace::cargo;

/// Developer automation for sauve.
#[derive(Parser, Debug)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand, Debug)]
enum Task {
    /// Format check, clippy -D warnings, short end-to-end run, tests (as .ci/run does)
    Ci {
        /// Print the commands, one a line, instead of running them
        #[arg(long)]
        print: bool,
    },
    /// Benchmarks; each prints a table for BENCHMARKS.md
    #[command(arg_required_else_help = true)]
    Bench {
        #[command(subcommand)]
        bench: Bench,
    },
    /// The whole test suite, after installing what it needs where missing
    Test(suite::Options),
    /// notes-server under load, backed up, killed and recovered
    E2e(e2e::Options),
    /// A crash (or an I/O error) at every durable step of a run, then the invariants
    Crash(crash::Options),
    /// The cargo-fuzz targets of fuzz/, each for a while (nightly toolchain)
    Fuzz(fuzz::Options),
    /// bench offsite's baseline uploader: stdin as one multipart upload
    #[command(hide = true)]
    BenchUpload {
        /// The bucket
        bucket: String,
        /// The key
        key: String,
    },
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// Archive writer and restore vs tar and zstd; Stop's delay per level
    Archive(bench::ArchiveOptions),
    /// Lock manager: ns per guard acquire and release
    Locking,
    /// Log file: appends/s with fsync per append and group commit
    Logfile(bench::LogfileOptions),
    /// The History page: 999 entries read and rendered, vs the JSON API
    Page,
    /// A backup with its off-site copy to a local Garage node, vs a folder and a plain upload
    Offsite(offsite::Options),
    /// The data lock's window for a large data file on a loop-mounted XFS (cloned) vs target/ (copied)
    LockWindow(lockwindow::Options),
    /// A week of daily backups by sauve, tar+zstd, restic and borg: times, sizes, restore
    Peers(peers::Options),
    /// Incremental sets at any size: a 64 GiB sparse data file full and daily, memory, manifest; 16 GiB vs tar+zstd
    Blocks(blocks::Options),
    /// A restore rehearsal of a set vs a plain restore of it plus the same check
    Rehearsal(rehearsebench::Options),
    /// A sample of the kept sets' stored bytes vs a full verify of them, and a backup with its sample vs without
    Sample(samplebench::Options),
}

fn main() -> Result<()> {
    let matches = command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.task {
        Task::Ci { print } => ci(print),
        Task::Bench { bench } => match bench {
            Bench::Archive(o) => bench::archive(&o),
            Bench::Locking => bench::locking(),
            Bench::Logfile(o) => bench::logfile(&o),
            Bench::Page => bench::page(),
            Bench::Offsite(o) => offsite::run(&o),
            Bench::LockWindow(o) => lockwindow::lock_window(&o),
            Bench::Peers(o) => peers::peers(&o),
            Bench::Blocks(o) => blocks::run(&o),
            Bench::Rehearsal(o) => rehearsebench::run(&o),
            Bench::Sample(o) => samplebench::run(&o),
        },
        Task::BenchUpload { bucket, key } => offsite::upload_stdin(&bucket, &key),
        Task::Test(o) => suite::main(&o),
        Task::E2e(o) => e2e::run(&o),
        Task::Crash(o) => crash::main(&o),
        Task::Fuzz(o) => fuzz::main(&o),
    }
}

/// The clap command, each level that has tasks under it (`cargo xtask`,
/// `cargo xtask bench`) ending its help with one line per task showing every
/// option at its default.
fn command() -> clap::Command {
    with_overview(Cli::command(), "cargo xtask")
}

fn with_overview(cmd: clap::Command, path: &str) -> clap::Command {
    // Built from the definitions rather than written out, so that the
    // overview cannot drift from the options and defaults it shows.
    let mut text = String::from("Tasks, with every option at its default:\n");
    overview(&cmd, path, &mut text);
    let groups: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| s.has_subcommands())
        .map(|s| s.get_name().to_owned())
        .collect();
    let mut cmd = cmd.after_help(text.trim_end().to_owned());
    for name in groups {
        let sub_path = format!("{path} {name}");
        cmd = cmd.mut_subcommand(&name, |s| with_overview(s, &sub_path));
    }
    cmd
}

fn overview(cmd: &clap::Command, path: &str, out: &mut String) {
    for sub in cmd.get_subcommands() {
        let path = format!("{path} {}", sub.get_name());
        if sub.has_subcommands() {
            overview(sub, &path, out);
            continue;
        }
        out.push_str("  ");
        out.push_str(&path);
        for arg in sub.get_arguments() {
            let Some(long) = arg.get_long() else {
                continue;
            };
            match arg.get_default_values() {
                [] => out.push_str(&format!(" [--{long}]")),
                values => {
                    let values: Vec<_> = values.iter().map(|v| v.to_string_lossy()).collect();
                    out.push_str(&format!(" [--{long} {}]", values.join(",")));
                }
            }
        }
        out.push('\n');
    }
}

/// Runs (or, with `print`, lists) the steps of `ci_steps::STEPS`, which a
/// hygiene test keeps equal to the cargo lines of `.ci/run`.
fn ci(print: bool) -> Result<()> {
    for step in ci_steps::STEPS {
        if print {
            println!("{}", ci_steps::command_line(step));
        } else {
            cargo(step)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clap_definitions_are_consistent() {
        command().debug_assert();
    }

    #[test]
    fn options_left_out_take_their_documented_defaults() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|c| format!("{:?}", c.task));
        for (args, expected) in [
            (
                &["xtask", "bench", "archive"][..],
                "Bench { bench: Archive(ArchiveOptions { data_mb: 1024, attach_mb: 512, runs: 3, baseline: None, stop_only: false, index_only: false, stop_after_mb: 256 }) }",
            ),
            (
                &["xtask", "test"][..],
                "Test(Options { check: false, setup_only: false, nextest: [] })",
            ),
            (
                &["xtask", "test", "--", "--no-fail-fast", "hygiene"][..],
                "Test(Options { check: false, setup_only: false, nextest: [\"--no-fail-fast\", \"hygiene\"] })",
            ),
            (
                &["xtask", "e2e"][..],
                "E2e(Options { seconds: 60, cycles: 20, writers: 4, readers: 4, data_mib: 0, dev: false })",
            ),
            (
                &["xtask", "e2e", "--seconds", "20", "--cycles", "3"][..],
                "E2e(Options { seconds: 20, cycles: 3, writers: 4, readers: 4, data_mib: 0, dev: false })",
            ),
            (
                &["xtask", "crash"][..],
                "Crash(Options { all: false, scenario: None, faults: false })",
            ),
            (
                &["xtask", "fuzz"][..],
                "Fuzz(Options { seconds: 60, target: None, merge: false, quick: false, if_available: false })",
            ),
            (
                &["xtask", "bench", "offsite"][..],
                "Bench { bench: Offsite(Options { data_mb: 1024, runs: 3 }) }",
            ),
            (
                &["xtask", "bench", "blocks"][..],
                "Bench { bench: Blocks(Options { big_gib: 64, tar_gib: 16 }) }",
            ),
            (
                &["xtask", "bench", "peers"][..],
                "Bench { bench: Peers(Options { data_mb: 1024, attach_mb: 512, days: 6, block_kib: None, store: false, export_mb: 0, baseline: None }) }",
            ),
            (
                &["xtask", "bench", "peers", "--store", "--data-mb", "4096"][..],
                "Bench { bench: Peers(Options { data_mb: 4096, attach_mb: 512, days: 6, block_kib: None, store: true, export_mb: 0, baseline: None }) }",
            ),
            (
                &[
                    "xtask",
                    "bench",
                    "peers",
                    "--store",
                    "--export-mb",
                    "512",
                    "--baseline",
                    "ce4cc95",
                ][..],
                "Bench { bench: Peers(Options { data_mb: 1024, attach_mb: 512, days: 6, block_kib: None, store: true, export_mb: 512, baseline: Some(\"ce4cc95\") }) }",
            ),
            (&["xtask", "ci"][..], "Ci { print: false }"),
        ] {
            assert_eq!(parse(args).unwrap(), expected, "{args:?}");
        }
    }

    #[test]
    fn unknown_tasks_and_options_and_zero_counts_are_refused() {
        for args in [
            &["xtask", "deploy"][..],
            &["xtask", "bench", "disk"][..],
            &["xtask", "bench", "locking", "--runs", "3"][..],
            &["xtask", "bench", "archive", "--runs", "0"][..],
            &["xtask", "bench", "archive", "--data-mb", "lots"][..],
            &["xtask", "e2e", "--writers", "0"][..],
            &["xtask", "crash", "--all", "--scenario", "first"][..],
            &["xtask", "fuzz", "--seconds", "soon"][..],
            &["xtask", "ci", "--dry-run"][..],
            &["xtask", "test", "--check", "--setup-only"][..],
            // A baseline's restore is of the bucket's sets.
            &["xtask", "bench", "peers", "--baseline", "ce4cc95"][..],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?} was accepted");
        }
    }
}
