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
    let mut data = vec![0u8; 64 << 20];
    fastrand::Rng::with_seed(0x2545_F491_4F6C_DD1D).fill(&mut data);
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

/// Waits (bounded) for the server file of a `sauve run` to appear.
fn server_file(app: &std::path::Path) -> serde_json::Value {
    let path = app.join("Logs/sauve-server.json");
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(v) = serde_json::from_str(&text)
        {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("sauve run wrote no {}", path.display());
}

#[test]
fn backup_remote_runs_on_a_real_sauve_run_and_sigterm_stops_it_cleanly() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("App");
    std::fs::create_dir_all(app.join("Data")).unwrap();
    std::fs::write(app.join("Data/App.4DD"), vec![7u8; 1 << 20]).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_sauve"))
        .args([
            "run",
            "--app",
            app.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let file = server_file(&app);
    let mode = std::fs::metadata(app.join("Logs/sauve-server.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let url = file["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let token = file["token"].as_str().unwrap().to_owned();

    let out = sauve(&["backup", "--remote", &url, "--token", &token, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        (
            last["event"].as_str(),
            last["status"].as_i64(),
            last["number"].as_i64()
        ),
        (Some("finished"), Some(0), Some(1))
    );

    // Without --remote, the backup is forwarded to the live server (trigger remote).
    let forwarded = sauve(&["backup", "--app", app.to_str().unwrap()]);
    assert_eq!(
        forwarded.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&forwarded.stderr)
    );
    assert!(String::from_utf8_lossy(&forwarded.stderr).contains("forwarding to the live server"));
    let status = sauve(&["status", "--remote", &url, "--token", &token, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        (
            v["last_backup"]["number"].as_i64(),
            v["last_backup"]["trigger"].as_str()
        ),
        (Some(2), Some("remote"))
    );

    let wrong = sauve(&["backup", "--remote", &url, "--token", "nope"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("refused"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );

    let kill = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let exit = server.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
    assert!(
        !app.join("Logs/sauve-server.json").exists(),
        "the server file is removed at exit"
    );
}
