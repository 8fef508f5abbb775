//! Every committed input of `fuzz/corpus/<target>/` through its target, on
//! stable: the fuzzers' findings and seeds stay regression tests.

#![allow(clippy::unwrap_used, clippy::panic)] // Test helpers: failing here fails the test.

use std::path::PathBuf;

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn run(target: &str) {
    let (_, body) = sauve_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no target {target}"));
    let dir = corpus(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no corpus at {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "the corpus of {target} is empty");
    for input in &inputs {
        let data = std::fs::read(input).unwrap();
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} broke the target",
            input.display()
        );
    }
    eprintln!("{target}: {} inputs", inputs.len());
}

#[test]
fn every_target_has_a_corpus() {
    for (name, _) in sauve_fuzz::TARGETS {
        assert!(corpus(name).is_dir(), "fuzz/corpus/{name} is missing");
    }
}

#[test]
fn settings_corpus() {
    run("settings");
}

#[test]
fn sauve_toml_corpus() {
    run("sauve_toml");
}

#[test]
fn journal_corpus() {
    run("journal");
}

#[test]
fn history_corpus() {
    run("history");
}

#[test]
fn log_corpus() {
    run("log");
}

#[test]
fn archive_corpus() {
    run("archive");
}

#[test]
fn http_corpus() {
    // The seeds carry the fuzzed server's token: the fuzzer starts past
    // the authorisation.
    let status = std::fs::read_to_string(corpus("http").join("status")).unwrap();
    assert!(status.contains(sauve_fuzz::HTTP_TOKEN), "{status}");
    run("http");
}

#[test]
fn restore_corpus() {
    run("restore");
}
