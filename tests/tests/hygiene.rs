//! Repository hygiene, checked like any other behaviour.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sauve_tests::repo_root;

// The steps `cargo xtask ci` runs, compiled into this test as well: no xtask
// build and no subprocess is needed to know them, and xtask's `ci` runs
// exactly this list (`cargo xtask ci --print` shows it).
#[path = "../../xtask/src/ci_steps.rs"]
mod ci_steps;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = read("README.md");
    let first_block: Vec<&str> = readme
        .split("```")
        .nth(1)
        .expect("README opens with a code block")
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        first_block.len(),
        2,
        "the main command and the test command"
    );
    let test_command = first_block[1];
    assert!(
        test_command.starts_with("cargo nextest run"),
        "{test_command}"
    );
    let ci = read(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim().starts_with(test_command)),
        ".ci/run does not run `{test_command}`"
    );
    assert!(ci.contains("cargo fmt --all --check"));
    assert!(ci.contains("-- -D warnings"));
}

/// The cargo commands a CI shell script runs, in order, as written without a
/// `timeout N` guard. Tool installation (`cargo install`) and version reports
/// (`--version`) are not steps. Any other line that runs cargo in a shape this
/// cannot read (in a condition, a pipe, a chain, a continuation) is an error
/// rather than skipped, so that no step can hide from the comparison.
fn cargo_steps(script: &str) -> Result<Vec<String>, String> {
    let mut steps = Vec::new();
    for line in script.lines() {
        let line = line.split(" #").next().unwrap_or_default().trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with('#') || !words.contains(&"cargo") {
            continue;
        }
        let command = match words.as_slice() {
            ["timeout", seconds, rest @ ..] if seconds.parse::<u64>().is_ok() => rest,
            all => all,
        };
        let tool =
            command.windows(2).any(|w| w == ["cargo", "install"]) || command.contains(&"--version");
        if tool {
            continue;
        }
        let plain = command.first() == Some(&"cargo")
            && !command
                .iter()
                .any(|w| ["|", "||", "&&", ";", "\\", "&"].contains(w) || w.ends_with(';'));
        if !plain {
            return Err(format!("cannot tell which cargo command `{line}` runs"));
        }
        steps.push(command.join(" "));
    }
    Ok(steps)
}

#[test]
fn ci_script_steps_are_its_cargo_lines_without_timeouts_tool_setup_or_comments() {
    let setup = "if ! cargo nextest --version >/dev/null 2>&1; then\n  cargo install cargo-nextest --locked\nfi\ncargo --version\ncargo nextest --version | head -n 1\n";
    for (script, expected) in [
        (
            "# cargo test is run below\nstep \"format\"\ncargo fmt --all --check\n",
            Ok(vec!["cargo fmt --all --check"]),
        ),
        (
            &format!("{setup}timeout 600 cargo xtask e2e --seconds 20\ncargo nextest run  # all\n"),
            Ok(vec!["cargo xtask e2e --seconds 20", "cargo nextest run"]),
        ),
        ("export CARGO_TERM_COLOR=never\necho done\n", Ok(vec![])),
        (
            "cargo build && cargo test\n",
            Err("cannot tell which cargo command `cargo build && cargo test` runs"),
        ),
        (
            "if cargo doc; then echo ok; fi\n",
            Err("cannot tell which cargo command `if cargo doc; then echo ok; fi` runs"),
        ),
        (
            "time cargo test\n",
            Err("cannot tell which cargo command `time cargo test` runs"),
        ),
    ] {
        let expected = expected
            .map(|v| v.into_iter().map(str::to_owned).collect::<Vec<_>>())
            .map_err(str::to_owned);
        assert_eq!(cargo_steps(script), expected, "{script}");
    }
}

#[test]
fn cargo_xtask_ci_runs_the_cargo_commands_of_ci_run_in_the_same_order() {
    let ci_run = cargo_steps(&read(".ci/run")).unwrap_or_else(|e| panic!(".ci/run: {e}"));
    let xtask: Vec<String> = ci_steps::STEPS
        .iter()
        .map(|step| ci_steps::command_line(step))
        .collect();
    assert_eq!(
        xtask, ci_run,
        "`cargo xtask ci` (xtask/src/ci_steps.rs, left) and .ci/run (right) must run the same cargo commands in the same order"
    );
}

#[test]
fn architecture_names_every_crate() {
    let arch = read("ARCHITECTURE.md");
    for entry in std::fs::read_dir(repo_root().join("crates")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            arch.contains(&format!("### crates/{name} ")),
            "ARCHITECTURE.md has no section for crates/{name}"
        );
    }
}

#[test]
fn every_dependency_version_lives_in_the_workspace_manifest() {
    let mut manifests = vec![
        "xtask/Cargo.toml".to_owned(),
        "tests/Cargo.toml".to_owned(),
        "examples/notes-server/Cargo.toml".to_owned(),
    ];
    for entry in std::fs::read_dir(repo_root().join("crates")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        manifests.push(format!("crates/{name}/Cargo.toml"));
    }
    for m in manifests {
        let text = read(&m);
        assert!(
            text.contains("[lints]\nworkspace = true"),
            "{m}: lints not inherited"
        );
        let mut in_deps = false;
        for line in text.lines() {
            if line.starts_with('[') {
                in_deps = line.contains("dependencies");
                continue;
            }
            if in_deps && line.contains('=') && !line.trim_start().starts_with('#') {
                assert!(
                    line.contains(".workspace = true") || line.contains("workspace = true"),
                    "{m}: `{line}` declares its own version"
                );
            }
        }
        if m.starts_with("crates/") {
            assert!(
                text.contains("name = \"sauve-"),
                "{m}: package is not named sauve-<folder>"
            );
        }
    }
}

#[test]
fn vendored_4d_fixtures_are_byte_exact_copies_of_the_shared_ones() {
    let shared = repo_root().join("../shared/fixtures/4d-samples");
    let vendored = repo_root().join("tests/fixtures/4d-samples");
    let mut names: Vec<String> = std::fs::read_dir(&vendored)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    // The shared folder is beside the repository on developers' machines and
    // in CI; a clone elsewhere checks only that the vendored copies exist.
    if !shared.is_dir() {
        return;
    }
    for name in names {
        let a = std::fs::read(vendored.join(&name)).unwrap();
        let b = std::fs::read(shared.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(a == b, "{name} differs from ../shared");
    }
}

#[test]
fn the_readme_sample_app_has_valid_settings() {
    let app = repo_root().join("tests/fixtures/sample-app");
    let effective = sauve_settings::load_effective(&app).unwrap();
    assert!(effective.warnings.is_empty());
    assert!(effective.source.path().is_some());
    let layout = sauve_settings::AppLayout::discover(&app).unwrap();
    assert_eq!(layout.base_name(), "Sample");
}

#[test]
fn architecture_places_every_engine_actor_and_its_messages() {
    let architecture = read("ARCHITECTURE.md");
    let actors = repo_root().join("crates/engine/src/actors");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&actors).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        // Each actor has its messages in a file of their own (STYLE 9).
        let messages = std::fs::read_to_string(entry.path().join("messages.rs"))
            .unwrap_or_else(|e| panic!("actor {name} has no messages.rs: {e}"));
        // Every message it takes (a struct right under its `#[rtype]`) is
        // named in the codemap's table.
        let lines: Vec<&str> = messages.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(rest) = line.strip_prefix("pub(crate) struct ") else {
                continue;
            };
            let msg: String = rest.chars().take_while(|c| c.is_alphanumeric()).collect();
            if i > 0 && lines[i - 1].starts_with("#[rtype") {
                assert!(
                    architecture.contains(&format!("`{msg}`")),
                    "ARCHITECTURE.md does not name the message {msg} of the {name} actor"
                );
            }
        }
        found.push(name);
    }
    found.sort();
    assert_eq!(
        found,
        [
            "alerts",
            "coordinator",
            "copier",
            "locks",
            "offsite",
            "records",
            "resolver"
        ]
    );
}
