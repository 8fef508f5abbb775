//! What every task stands on: the repository root, cargo run in it, and
//! the parser of the counts their options take.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Parses a count that must be at least 1 (runs, threads).
pub(crate) fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) | Err(_) => Err("takes a whole number of at least 1".to_owned()),
        Ok(n) => Ok(n),
    }
}

/// The repository root (xtask's parent folder).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Runs `cargo args…` in the repository, never writing snapshots; fails
/// when it fails.
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

/// Builds the release `sauve` of this tree; its path.
pub(crate) fn release_sauve() -> anyhow::Result<std::path::PathBuf> {
    cargo(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "sauve-cli",
        "--bin",
        "sauve",
    ])?;
    Ok(repo_root().join("target/release/sauve"))
}
