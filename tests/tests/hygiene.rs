//! Repository hygiene, checked like any other behaviour.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sauve_tests::repo_root;

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
