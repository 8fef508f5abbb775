//! Developer automation: `cargo xtask <task>`.
//!
//! - `ci`: what `.ci/run` runs (format check, clippy with warnings denied,
//!   the test suite), without installing anything.

use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("help") | Some("--help") | Some("-h") | None => {
            eprintln!(
                "usage: cargo xtask <task>\n\ntasks:\n  ci    format check, clippy -D warnings, tests (as .ci/run does)"
            );
            Ok(())
        }
        Some(other) => bail!("unknown task \"{other}\" (accepted: ci)"),
    }
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args(args)
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
