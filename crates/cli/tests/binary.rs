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

#[test]
fn ctrl_c_is_the_stop_button_of_sauve_backup() {
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("App");
    std::fs::create_dir_all(app.join("Data")).unwrap();
    std::fs::create_dir_all(app.join("Settings")).unwrap();
    // Level 19 on 64 MiB of noise takes many seconds: time enough to press Ctrl-C.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let data: Vec<u8> = (0..64 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(app.join("Data/App.4DD"), data).unwrap();
    let out = sauve(&[
        "settings",
        "set",
        "Advanced/CompressionRate",
        "Compact",
        "--app",
        app.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let mut child = Command::new(env!("CARGO_BIN_EXE_sauve"))
        .args(["backup", "--json", "--app", app.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the copy to start, then send SIGINT as a terminal would.
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let started = line.contains("\"event\":\"file\"");
        seen.push(line);
        if started {
            break;
        }
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    seen.extend(lines.map(|l| l.unwrap()));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let last: serde_json::Value = serde_json::from_str(seen.last().unwrap()).unwrap();
    assert_eq!(last["status"], 1406, "{seen:?}");
    let names: Vec<String> = std::fs::read_dir(root.path().join("Backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".4BK"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}
