//! The operator's kit as a packager uses it: `sauve completions SHELL` and
//! `sauve man`, run through the real binary.
//!
//! The checks that need a shell or groff run when the tool is on the machine
//! and otherwise say on stderr that they were skipped and why: the binary's
//! own output is checked either way.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn sauve(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_sauve"))
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// `sauve ARGS`, which must succeed silently on stderr; its stdout.
fn sauve_ok(args: &[&str]) -> String {
    let run = sauve(args);
    assert_eq!(run.code, Some(0), "sauve {args:?}: {}", run.stderr);
    assert_eq!(run.stderr, "", "sauve {args:?}");
    run.stdout
}

/// Whether `tool` can be started here; says so on stderr when it cannot.
/// Under `cargo xtask test` (`SAUVE_TESTS_REQUIRE_ALL`), which installs
/// it, a missing tool fails the test instead.
fn have(tool: &str, why: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("SAUVE_TESTS_REQUIRE_ALL").is_none(),
            "{tool} is not installed here, so {why} cannot be checked (cargo xtask test installs it)"
        );
        eprintln!("skipped: {tool} is not installed here, so {why} is not checked");
    }
    found
}

/// The subcommands `sauve --help` lists, without clap's own `help`.
fn subcommands() -> Vec<String> {
    let help = sauve_ok(&["--help"]);
    let listed: Vec<String> = help
        .split("Commands:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("  "))
        // A name is indented by two spaces; a wrapped description by more.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    for expected in ["backup", "restore", "settings", "completions", "man"] {
        assert!(listed.iter().any(|n| n == expected), "{listed:?}");
    }
    listed
}

#[test]
fn each_shells_completion_script_names_the_subcommands() {
    for (shell, marker) in [
        ("bash", "complete -F _sauve"),
        ("zsh", "#compdef sauve"),
        ("fish", "complete -c sauve"),
    ] {
        let script = sauve_ok(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: no `{marker}`");
        for sub in ["backup", "restore", "settings", "man"] {
            assert!(script.contains(sub), "{shell}: {sub} is not completed");
        }
    }
}

#[test]
fn the_bash_completion_script_is_valid_bash_and_registers_sauve() {
    let script = sauve_ok(&["completions", "bash"]);
    if !have("bash", "the bash script's syntax") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sauve.bash");
    std::fs::write(&file, &script).unwrap();
    let bash = |args: &[&str]| {
        Command::new("bash")
            .args(args)
            .env_remove("BASH_ENV")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let syntax = bash(&["-n", "sauve.bash"]);
    assert!(
        syntax.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    // Sourced as /etc/bash_completion.d/ does it, the script binds the
    // completion function to the command name.
    let loaded = bash(&[
        "--norc",
        "--noprofile",
        "-c",
        ". ./sauve.bash && complete -p sauve",
    ]);
    let loaded_out = String::from_utf8_lossy(&loaded.stdout);
    assert!(
        loaded.status.success()
            && loaded_out.contains("_sauve")
            && loaded_out.ends_with(" sauve\n"),
        "{loaded_out}{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
}

#[test]
fn the_zsh_and_fish_scripts_parse_where_those_shells_are_installed() {
    for shell in ["zsh", "fish"] {
        let script = sauve_ok(&["completions", shell]);
        if !have(shell, &format!("the {shell} script's syntax")) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(format!("sauve.{shell}"));
        std::fs::write(&file, &script).unwrap();
        // `-n`: parse without running, in both shells.
        let out = Command::new(shell)
            .arg("-n")
            .arg(&file)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{shell} -n: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn an_unknown_shell_is_refused_by_clap_with_exit_2() {
    let run = sauve(&["completions", "tcsh"]);
    assert_eq!(run.code, Some(2));
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("invalid value 'tcsh'"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("bash"), "{}", run.stderr);
}

#[test]
fn the_man_page_is_roff_and_lists_every_subcommands_page() {
    let page = sauve_ok(&["man"]);
    // Before the title, only the control lines of clap_mangen's preamble.
    let (preamble, rest) = page.split_once(".TH ").unwrap();
    assert!(preamble.lines().all(|l| l.starts_with('.')), "{preamble}");
    let title = rest.lines().next().unwrap();
    assert_eq!(
        title,
        format!(
            "sauve 1 \"\" \"sauve {}\" \"sauve manual\"",
            env!("CARGO_PKG_VERSION")
        )
    );
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH DESCRIPTION",
        ".SH SUBCOMMANDS",
    ] {
        assert!(page.contains(section), "no {section}");
    }
    for sub in subcommands() {
        assert!(
            page.contains(&format!("sauve\\-{sub}(1)")),
            "the page does not list sauve-{sub}(1)"
        );
    }
    // clap's `help` subcommand has no page, so the main page names none.
    assert!(!page.contains("sauve\\-help(1)"));
}

#[test]
fn a_subcommands_page_is_titled_by_its_full_name() {
    let page = sauve_ok(&["man", "settings", "set"]);
    assert!(page.contains(".TH sauve-settings-set 1 "), "{page}");
    assert!(page.contains("Advanced/SetNumber/Value"));
    let page = sauve_ok(&["man", "backup"]);
    assert!(page.contains(".TH sauve-backup 1 "));
    assert!(page.contains("\\-\\-on\\-startup"));
}

#[test]
fn man_out_writes_a_page_per_command_and_prints_each_path() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("share/man/man1");
    let printed = sauve_ok(&["man", "--out", dir.to_str().unwrap()]);
    let printed: Vec<&str> = printed.lines().collect();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(printed.len(), names.len(), "{printed:?}");
    assert_eq!(printed[0], dir.join("sauve.1").to_str().unwrap());
    let mut expected = vec!["sauve.1".to_owned()];
    expected.extend(subcommands().iter().map(|s| format!("sauve-{s}.1")));
    expected.extend([
        "sauve-settings-set.1".to_owned(),
        "sauve-log-show.1".to_owned(),
    ]);
    for name in &expected {
        assert!(names.contains(name), "no {name} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
    for name in &names {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let title = format!(".TH {} 1 ", name.trim_end_matches(".1"));
        assert!(text.contains(&title), "{name} is not titled {title}");
    }
    // Under a subcommand, only its own pages.
    let only = root.path().join("settings");
    let printed = sauve_ok(&["man", "settings", "--out", only.to_str().unwrap()]);
    let names: Vec<&str> = printed
        .lines()
        .map(|l| Path::new(l).file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "sauve-settings.1",
            "sauve-settings-show.1",
            "sauve-settings-init.1",
            "sauve-settings-validate.1",
            "sauve-settings-set.1"
        ]
    );
}

#[test]
fn a_command_that_does_not_exist_has_no_man_page_and_exits_2() {
    for (args, message) in [
        (
            &["man", "nope"][..],
            "error: no man page for \"sauve nope\" (accepted: backup, run, ",
        ),
        (
            &["man", "settings", "nope"][..],
            "error: no man page for \"sauve settings nope\" (accepted: show, init, validate, set)\n",
        ),
        (
            &["man", "backup", "now"][..],
            "error: no man page for \"sauve backup now\": sauve backup has no subcommands\n",
        ),
    ] {
        let run = sauve(args);
        assert_eq!(run.code, Some(2), "{args:?}");
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(run.stderr.starts_with(message), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn every_man_page_renders_without_a_groff_warning() {
    let dir = tempfile::tempdir().unwrap();
    sauve_ok(&["man", "--out", dir.path().to_str().unwrap()]);
    if !have("groff", "rendering the man pages") {
        return;
    }
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        // -ww: every warning; -z: check only, print nothing.
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn completions_and_man_write_through_the_writer_they_are_given() {
    for args in [
        &["sauve", "completions", "fish"][..],
        &["sauve", "man", "restore"][..],
    ] {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(sauve_cli::run(args, &mut out, &mut err), 0, "{args:?}");
        assert!(!out.is_empty(), "{args:?}");
        assert!(err.is_empty(), "{args:?}");
    }
}
