//! Developer automation: `cargo xtask <task>`.
//!
//! - `ci`: what `.ci/run` runs (format check, clippy with warnings denied,
//!   the test suite), without installing anything.
//! - `bench archive [--data-mb N] [--attach-mb N] [--runs N]`: the archive
//!   writer and restore against tar and zstd; prints a table for BENCHMARKS.md.
//! - `bench locking`: the lock manager's cost per guard.
//! - `e2e`: the notes-server host under load, killed and recovered.

#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod bench;
mod e2e;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci                                   format check, clippy -D warnings, tests (as .ci/run does)
  bench archive [--data-mb N] [--attach-mb N] [--runs N]
                                       archive writer and restore vs tar and zstd (default 1024 MB data, 512 MB attachments)
  bench locking                        lock manager: ns per guard acquire and release
  bench logfile                        log file: appends/s with fsync per append and group commit
  e2e [--seconds N] [--cycles N] [--writers N] [--readers N]
                                       notes-server under load, backed up, killed and recovered (default 60 s, 20 cycles)";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("e2e") => e2e::run(&args[1..]),
        Some("bench") => match args.get(1).map(String::as_str) {
            Some("archive") => bench::archive(&args[2..]),
            Some("locking") => bench::locking(&args[2..]),
            Some("logfile") => bench::logfile(&args[2..]),
            other => bail!(
                "unknown benchmark {other:?} (accepted: archive, locking, logfile)\n\n{USAGE}"
            ),
        },
        Some("help" | "--help" | "-h") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task \"{other}\"\n\n{USAGE}"),
    }
}

/// The repository root (xtask's parent folder).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

pub(crate) fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(repo_root())
        .env("INSTA_UPDATE", "no")
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn ci() -> Result<()> {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["nextest", "run", "--workspace", "--locked"])
}
