//! `sauve backup`, `sauve status` and `sauve history` as a user sees them.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sauve_tests::{SampleApp, sauve};

fn app(pairs: &[(&str, &str)]) -> SampleApp {
    SampleApp::with_settings(pairs).unwrap()
}

/// Replaces the temporary folder and clock readings, which change every run.
fn redacted(app: &SampleApp) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(&regex_escape(&app.root().display().to_string()), "[ROOT]");
    s.add_filter(
        r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?Z?",
        "[TIME]",
    );
    s.add_filter(
        r#""(duration_ms|lock_window_ms|free_bytes|used_bytes|bytes)": \d+"#,
        "\"$1\": [N]",
    );
    s.add_filter(r"(Data|Structure) lock : \d+\.\d+", "$1 lock : [S]");
    // Cloned or copied: the test machine's file system decides
    // (tests/tests/filesystems.rs covers both).
    s.add_filter(
        r"(Data lock : \[S\]) \((cloned|copied)[^\n]*\)",
        "$1 ([HOW])",
    );
    s
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$#&-~".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

#[test]
fn backup_json_prints_events_and_ends_with_the_finished_line() {
    let app = app(&[]);
    let out = sauve(&["backup", "--json", "--app", &app.arg()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"started") && kinds.contains(&"phase"),
        "{kinds:?}"
    );
    let last = lines.last().unwrap();
    let archive = app
        .root()
        .join("Backups/App[0001].4BK")
        .display()
        .to_string();
    assert_eq!(
        *last,
        serde_json::json!({"event": "finished", "status": 0, "status_text": "No detected error.", "number": 1, "archives": [archive]})
    );
    let journal = sauve(&["journal", "--app", &app.arg()]);
    redacted(&app).bind(|| insta::assert_snapshot!("journal_after_cli_backup", journal.stdout));
}

#[test]
fn backup_exit_codes_follow_the_status() {
    let partial = app(&[("General/IncludesFiles/Item1", "./missing.bin")]);
    let out = sauve(&["backup", "--app", &partial.arg()]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("Backup 0001 of App: -43 Attachment not found\n"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("not found: "), "{}", out.stderr);

    // A file stands where the destination's folder goes.
    let bad_destination = app(&[("General/DestinationFolder", "../blocker/x/")]);
    std::fs::write(bad_destination.root().join("blocker"), b"a file").unwrap();
    let out = sauve(&["backup", "--app", &bad_destination.arg()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("1407 Destination invalid or cannot be created"),
        "{}",
        out.stdout
    );

    let invalid = app(&[("Advanced/SetNumber/Value", "3")]);
    let file = invalid.path().join("Settings/backup.4DSettings");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("<Every>12<", "<Every>99<");
    std::fs::write(&file, text).unwrap();
    let out = sauve(&["backup", "--app", &invalid.arg()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Backup/Settings/Scheduler/Hourly/Every: invalid value \"99\""),
        "{}",
        out.stderr
    );

    let usage = sauve(&["backup", "--app"]);
    assert_eq!(usage.code, 2);
}

#[test]
fn hooks_run_as_shell_commands() {
    let app = app(&[]);
    let seen = app.root().join("shutdown.txt");
    let shutdown = format!(
        "echo \"$SAUVE_STATUS $SAUVE_TRIGGER $SAUVE_ARCHIVE\" > '{}'",
        seen.display()
    );
    let out = sauve(&[
        "backup",
        "--app",
        &app.arg(),
        "--on-startup",
        "exit 7",
        "--on-shutdown",
        &shutdown,
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("7 Refused by the startup hook"),
        "{}",
        out.stdout
    );
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "7 manual \n");

    let ok = sauve(&[
        "backup",
        "--app",
        &app.arg(),
        "--on-startup",
        "true",
        "--on-shutdown",
        &shutdown,
    ]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let archive = app.root().join("Backups/App[0001].4BK");
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        format!("0 manual {}\n", archive.display())
    );
}

#[test]
fn status_and_history_show_the_last_backup() {
    let app = app(&[]);
    let none = sauve(&["status", "--json", "--app", &app.arg()]);
    let v: serde_json::Value = serde_json::from_str(&none.stdout).unwrap();
    assert_eq!(v["last_backup"], serde_json::Value::Null);
    assert_eq!(sauve(&["backup", "--app", &app.arg()]).code, 0);
    let status = sauve(&["status", "--json", "--app", &app.arg()]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert!(v["destination"]["used_bytes"].as_u64().unwrap() > 0);
    redacted(&app).bind(|| insta::assert_snapshot!("status_json_after_one_backup", status.stdout));
    let history = sauve(&["history", "--app", &app.arg()]);
    assert_eq!(history.code, 0, "{}", history.stderr);
    assert!(
        history.stdout.contains("0001  backup   "),
        "{}",
        history.stdout
    );
    assert!(
        history.stdout.contains("0 No detected error."),
        "{}",
        history.stdout
    );
}

#[test]
fn demo_runs_the_whole_cycle() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("demo");
    let out = sauve(&["demo", dir.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for step in [
        "Created a sample app",
        "Backup 0001 of DemoApp: 0 No detected error.",
        "$ sauve status",
        "*** Full Backup",
        "$ sauve restore",
        ": sound (",
        "The restored data file matches the original.",
    ] {
        assert!(
            out.stdout.contains(step),
            "missing {step:?} in\n{}",
            out.stdout
        );
    }
    assert!(dir.join("Restored/Data/DemoApp.4DD").is_file());
    let again = sauve(&["demo", dir.to_str().unwrap()]);
    assert_eq!(again.code, 2, "a non-empty folder is refused");
}

#[test]
fn history_json_never_starts_with_a_bom_even_when_4d_wrote_one() {
    let app = app(&[]);
    let fixture =
        std::fs::read_to_string(sauve_tests::fixture("two-structures.backupHistory.json")).unwrap();
    std::fs::create_dir_all(app.root().join("Backups")).unwrap();
    std::fs::write(
        app.root().join("Backups/backupHistory.json"),
        format!("\u{FEFF}{fixture}"),
    )
    .unwrap();
    let out = sauve(&["history", "--json", "--app", &app.arg()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.starts_with('\u{FEFF}'), "no BOM on stdout");
    let printed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        printed,
        serde_json::from_str::<serde_json::Value>(&fixture).unwrap()
    );
}
