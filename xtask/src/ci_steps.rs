//! The commands `cargo xtask ci` runs, in order: the cargo lines of `.ci/run`
//! without its tool installation and its `timeout` guards.
//!
//! `tests/tests/hygiene.rs` compiles this file too (through `#[path]`) and
//! checks it against `.ci/run`, so it must stay std-only, without `crate::`
//! paths: it is a module of both crates.

/// The arguments to cargo of each step.
pub(crate) const STEPS: &[&[&str]] = &[
    // What the tests need, installed where missing (README's test command).
    &["xtask", "test", "--setup-only"],
    &["fmt", "--all", "--check"],
    &[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ],
    // The API documentation, without a broken or private link.
    &["doc", "--workspace", "--no-deps", "--locked"],
    // The binaries of the timed runs, built before their timeouts start,
    // with the tests' profile: one dependency tree.
    &["build", "--locked", "-p", "notes-server"],
    &["build", "--locked", "-p", "xtask"],
    // The short end-to-end run: exits non-zero if an acknowledged write is lost.
    &["xtask", "e2e", "--seconds", "20", "--cycles", "3", "--dev"],
    // With a 1 GiB data file: writers wait seconds, some cancel.
    &[
        "xtask",
        "e2e",
        "--seconds",
        "20",
        "--cycles",
        "1",
        "--data-mib",
        "1024",
        "--dev",
    ],
    // A crash, then each I/O fault, at every durable step of a first backup.
    &["xtask", "crash"],
    &["xtask", "crash", "--faults"],
    // A crash at every step of an incremental backup into a bucket.
    &["xtask", "crash", "--scenario", "incremental-bucket"],
    // A crash and each fault at every step of a restore rehearsal.
    &["xtask", "crash", "--scenario", "rehearse"],
    &["xtask", "crash", "--scenario", "rehearse", "--faults"],
    // The README's test command.
    &["xtask", "test"],
    // Every fuzz target for 5 s (skipped, saying so, without nightly).
    &[
        "xtask",
        "fuzz",
        "--quick",
        "--seconds",
        "5",
        "--if-available",
    ],
];

/// A step as the shell line that runs it, the way `.ci/run` writes it.
pub(crate) fn command_line(step: &[&str]) -> String {
    format!("cargo {}", step.join(" "))
}
