//! The real `sauve` binary: exit codes and streams as a shell sees them.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn sauve(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sauve"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_binary_exits_2_on_a_bad_command_line_and_prints_usage_on_stderr() {
    let out = sauve(&["settings", "show", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage:"));
}

#[test]
fn the_binary_validates_a_real_4d_file_with_exit_0() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/4d-samples/daily-modern.backup.4DSettings"
    );
    let out = sauve(&["settings", "validate", file]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": valid\n"));
}

#[test]
fn the_binary_exits_2_for_an_invalid_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.4DSettings");
    std::fs::write(&file, "<Preferences4D><Backup><Settings><General><IncludeDataFile>maybe</IncludeDataFile></General></Settings></Backup></Preferences4D>").unwrap();
    let out = sauve(&["settings", "validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(":1:60: Backup/Settings/General/IncludeDataFile: invalid value \"maybe\" (accepted: True or False)"), "{stderr}");
}
