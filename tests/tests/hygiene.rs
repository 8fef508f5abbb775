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
    // The test command installs what the suite needs, then runs it: CI
    // runs the very same line.
    let test_command = first_block[1];
    assert_eq!(test_command, "cargo xtask test");
    assert!(
        first_block[0].starts_with("cargo run") && first_block[0].contains(" demo"),
        "{}",
        first_block[0]
    );
    let ci = read(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == test_command),
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

/// The versions of `name` that a lock file holds.
fn locked_versions(lock: &str, name: &str) -> Vec<String> {
    let line = format!("name = \"{name}\"");
    lock.split("[[package]]\n")
        .filter_map(|p| {
            let mut lines = p.lines();
            (lines.next() == Some(line.as_str())).then(|| lines.next())?
        })
        .map(str::to_owned)
        .collect()
}

/// One version each of reqwest, quick-xml and sha2 (issue 28): a second
/// one is as many crates again for every build to compile. (toml has two
/// and cannot have fewer: age 0.12 -> i18n-embed-fl 0.10 -> find-crate 0.6
/// -> toml 0.5, beside sauve.toml's toml 1.)
#[test]
fn the_lock_files_hold_one_version_of_reqwest_quick_xml_and_sha2() {
    for file in ["Cargo.lock", "fuzz/Cargo.lock"] {
        let lock = read(file);
        for (name, how) in [
            (
                "reqwest",
                "take the version object_store depends on, in the root Cargo.toml",
            ),
            (
                "quick-xml",
                "take the version object_store depends on, in the root Cargo.toml",
            ),
            (
                "sha2",
                "rust-embed 8.12 and later (age's localisation) take sha2 0.11 while age takes 0.10: \
                 keep rust-embed, rust-embed-impl and rust-embed-utils at 8.11.0 \
                 (`cargo update -p rust-embed --precise 8.11.0`, the same for the other two, \
                 and with `--manifest-path fuzz/Cargo.toml`) until age and rust-embed agree",
            ),
        ] {
            let versions = locked_versions(&lock, name);
            assert_eq!(
                versions.len(),
                1,
                "{file}: {name} is locked at {versions:?}, one version is expected: {how}"
            );
        }
    }
}

/// Every file git tracks in the repository, as `git ls-files` names them.
fn tracked_files() -> Vec<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo_root())
        .args(["ls-files", "-z"])
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git ls-files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("tracked names are UTF-8")
        .split('\0')
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn real_4d_fixtures_live_in_the_repository_with_their_sources() {
    let folder = "tests/fixtures/4d-samples";
    let sources = read(&format!("{folder}/SOURCES.md"));
    let tracked = tracked_files();
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join(folder))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "SOURCES.md")
        .collect();
    names.sort();
    assert!(names.len() >= 4, "{names:?}");
    for name in names {
        assert!(
            tracked.contains(&format!("{folder}/{name}")),
            "{folder}/{name} is not tracked by git"
        );
        assert!(
            sources
                .lines()
                .any(|l| l.starts_with(&format!("| {name} |"))),
            "{folder}/SOURCES.md does not say where {name} comes from"
        );
    }
}

#[test]
fn no_tracked_file_refers_to_the_shared_folder_outside_the_repository() {
    // Built from two parts, so that this file does not name it.
    let needle = concat!("..", "/shared").as_bytes();
    let mut found = Vec::new();
    for name in tracked_files() {
        // A file deleted in the working tree but still tracked has nothing to say.
        let Ok(bytes) = std::fs::read(repo_root().join(&name)) else {
            continue;
        };
        if bytes.windows(needle.len()).any(|w| w == needle) {
            found.push(name);
        }
    }
    assert!(
        found.is_empty(),
        "these tracked files refer to {} outside the repository: {found:?}",
        String::from_utf8_lossy(needle)
    );
}

#[test]
fn the_behaviour_spec_is_cited_by_its_name_in_the_repository() {
    // Citations read "behaviour \u{a7}N" (docs/behaviour.md); the old
    // form named a document outside the repository. Built from two parts,
    // so that this file does not match.
    let old = concat!("SP", "EC ");
    let mut found = Vec::new();
    for name in tracked_files() {
        if !(name.ends_with(".rs") || name.ends_with(".md")) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(repo_root().join(&name)) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let cites = line.match_indices(old).any(|(at, _)| {
                let rest = &line[at + old.len()..];
                rest.starts_with(|c: char| c.is_ascii_digit())
                    || rest.starts_with("section")
                    || rest.starts_with('\u{a7}')
            });
            if cites {
                found.push(format!("{name}:{}", i + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "cite docs/behaviour.md as \"behaviour \u{a7}N\": {found:?}"
    );
}

/// The section numbers cited with the section sign (U+00A7) in `text`: 21,
/// 6.1, or 5 when a space comes between, each with its 1-based line; a
/// sign without a number gives an empty one.
fn section_citations(text: &str) -> Vec<(usize, String)> {
    let mut cited = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for (at, _) in line.match_indices('\u{a7}') {
            let rest = line[at + '\u{a7}'.len_utf8()..].trim_start();
            let mut number = String::new();
            for c in rest.chars() {
                let after_dot = number.ends_with('.');
                if c.is_ascii_digit() || (c == '.' && !number.is_empty() && !after_dot) {
                    number.push(c);
                } else {
                    break;
                }
            }
            // A sentence may end right after the number: "§6.1.".
            while number.ends_with('.') {
                number.pop();
            }
            cited.push((i + 1, number));
        }
    }
    cited
}

/// The numbered headings of docs/behaviour.md (`## 21. …` is "21",
/// `### 6.1 …` is "6.1"), each checked to carry its anchor `sN` on the line
/// before it.
fn behaviour_sections() -> Vec<String> {
    let text = read("docs/behaviour.md");
    let lines: Vec<&str> = text.lines().collect();
    let mut sections = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(title) = line.strip_prefix("##") else {
            continue;
        };
        let title = title.trim_start_matches('#').trim_start();
        let number: String = title
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let number = number.trim_end_matches('.').to_owned();
        if number.is_empty() {
            continue;
        }
        let anchor = format!("<a id=\"s{number}\"></a>");
        assert!(
            i > 0 && lines[i - 1].trim() == anchor,
            "docs/behaviour.md:{}: the heading of section {number} is not preceded by {anchor}",
            i + 1
        );
        assert!(
            !sections.contains(&number),
            "docs/behaviour.md: section {number} appears twice"
        );
        sections.push(number);
    }
    sections
}

#[test]
fn section_citations_are_read_with_their_numbers() {
    let text = "cites \u{a7}21 and \u{a7}6.1.\n(behaviour \u{a7}5 step 1, \u{a7} 13.3)\na lone \u{a7} here";
    assert_eq!(
        section_citations(text),
        [
            (1, "21".to_owned()),
            (1, "6.1".to_owned()),
            (2, "5".to_owned()),
            (2, "13.3".to_owned()),
            (3, String::new()),
        ]
    );
}

#[test]
fn every_section_citation_names_a_section_of_docs_behaviour_md() {
    let sections = behaviour_sections();
    for number in ["1", "5", "6.1", "8.2", "21"] {
        assert!(
            sections.iter().any(|s| s == number),
            "docs/behaviour.md has no section {number}: {sections:?}"
        );
    }
    let mut dangling = Vec::new();
    for name in tracked_files() {
        if !(name.ends_with(".rs") || name.ends_with(".md")) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(repo_root().join(&name)) else {
            continue;
        };
        for (line, number) in section_citations(&text) {
            if !sections.contains(&number) {
                dangling.push(format!("{name}:{line}: \u{a7}{number}"));
            }
        }
    }
    assert!(
        dangling.is_empty(),
        "these citations name no section of docs/behaviour.md: {dangling:#?}"
    );
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
        // Each actor has its messages in a file of their own.
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
