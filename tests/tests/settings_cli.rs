//! `sauve settings …` as a user sees it.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sauve_tests::{SampleApp, fixture, redact_app, sauve};

#[test]
fn settings_show_prints_effective_settings_and_their_file() {
    let app = SampleApp::new(Some("daily-modern.backup.4DSettings")).unwrap();
    let out = sauve(&["settings", "show", "--app", &app.arg()]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    redact_app(app.path()).bind(|| insta::assert_snapshot!("settings_show_daily", out.stdout));
}

#[test]
fn settings_show_json_uses_the_xml_element_names_and_types() {
    let app = SampleApp::new(Some("daily-modern.backup.4DSettings")).unwrap();
    let out = sauve(&["settings", "show", "--json", "--app", &app.arg()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        json["Advanced"]["SetNumber"],
        serde_json::json!({"Enable": true, "Value": 3})
    );
    assert_eq!(
        json["Advanced"]["BackupFailure"]["TryToBackupAfter"],
        "00:01:00"
    );
    assert_eq!(json["Scheduler"]["Frequency"], "Daily");
    assert_eq!(json["Scheduler"]["Weekly"]["Sunday"]["Save"], true);
    assert_eq!(json["Scheduler"]["Monthly"]["Day"], 1);
    assert_eq!(
        json["General"]["IncludesFiles"],
        serde_json::json!([
            "./Data/data.4DIndx",
            "./Data/data.4DSyncData",
            "./Data/data.4DSyncHeader"
        ])
    );
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["Advanced", "General", "Scheduler"]);
    insta::assert_snapshot!("settings_show_json_daily", out.stdout);
}

#[test]
fn settings_show_without_a_file_shows_the_builtin_defaults() {
    let app = SampleApp::new(None).unwrap();
    let out = sauve(&["settings", "show", "--app", &app.arg()]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.starts_with("Settings:    built-in defaults"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("General/DestinationFolder                               ../Backups/\n")
    );
    assert!(
        out.stdout
            .contains("General/IncludesFiles                                   (none)\n")
    );
}

#[test]
fn data_settings_take_precedence_over_structure_settings() {
    let app = SampleApp::new(Some("defaults-modern.backup.4DSettings")).unwrap();
    std::fs::create_dir_all(app.path().join("Data/Settings")).unwrap();
    std::fs::copy(
        fixture("daily-modern.backup.4DSettings"),
        app.path().join("Data/Settings/backup.4DSettings"),
    )
    .unwrap();
    let out = sauve(&["settings", "show", "--json", "--app", &app.arg()]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["Scheduler"]["Frequency"], "Daily");
    let human = sauve(&["settings", "show", "--app", &app.arg()]);
    assert!(
        human
            .stdout
            .contains("Data/Settings/backup.4DSettings (data settings)")
    );
}

#[test]
fn settings_init_writes_the_default_file_once() {
    let app = SampleApp::new(None).unwrap();
    let out = sauve(&["settings", "init", "--app", &app.arg()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let path = app.path().join("Settings/backup.4DSettings");
    let written = std::fs::read_to_string(&path).unwrap();
    // The library's default file, itself a snapshot (crates/settings).
    assert_eq!(written, sauve_settings::SettingsDoc::default().to_xml());
    // A new sauve app makes incremental sets, a full one a week.
    let toml = app.path().join("Settings/sauve.toml");
    assert_eq!(
        std::fs::read_to_string(&toml).unwrap(),
        sauve_settings::NEW_APP_SAUVE_TOML
    );
    let own = sauve_settings::load_sauve_toml(app.path()).unwrap();
    assert_eq!(own.incremental.full_every, 7);
    assert!(
        out.stdout.contains("[incremental] full_every = 7"),
        "{}",
        out.stdout
    );

    std::fs::write(&path, "mine").unwrap();
    let again = sauve(&["settings", "init", "--app", &app.arg()]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "mine",
        "never overwritten"
    );
}

#[test]
fn settings_init_adds_incremental_sets_to_a_sauve_toml_without_and_keeps_one_chosen() {
    // Written before init: its own tables stay, [incremental] is added.
    let app = SampleApp::new(None).unwrap();
    let toml = app.path().join("Settings/sauve.toml");
    std::fs::create_dir_all(toml.parent().unwrap()).unwrap();
    std::fs::write(&toml, "# mine\n[alerts]\non = \"failure\"\n").unwrap();
    let out = sauve(&["settings", "init", "--app", &app.arg()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(
        text.starts_with("# mine\n[alerts]\non = \"failure\"\n"),
        "{text}"
    );
    let own = sauve_settings::load_sauve_toml(app.path()).unwrap();
    assert_eq!(own.incremental.full_every, 7);
    // A sauve.toml that cannot be read stops init before anything is written.
    let broken = SampleApp::new(None).unwrap();
    let toml_path = broken.path().join("Settings/sauve.toml");
    std::fs::create_dir_all(toml_path.parent().unwrap()).unwrap();
    std::fs::write(&toml_path, "[incremental\n").unwrap();
    let out = sauve(&["settings", "init", "--app", &broken.arg()]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(out.stderr.contains("sauve.toml"), "{}", out.stderr);
    assert!(!broken.path().join("Settings/backup.4DSettings").exists());
    // Chosen before init (full sets only): kept as it is.
    let app = SampleApp::new(None).unwrap();
    let toml = app.path().join("Settings/sauve.toml");
    std::fs::create_dir_all(toml.parent().unwrap()).unwrap();
    std::fs::write(&toml, "[incremental]\nfull_every = 0\n").unwrap();
    let out = sauve(&["settings", "init", "--app", &app.arg()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("Kept the [incremental]"),
        "{}",
        out.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&toml).unwrap(),
        "[incremental]\nfull_every = 0\n"
    );
}

#[test]
fn settings_validate_exits_0_when_valid_and_2_with_located_errors() {
    let ok = sauve(&[
        "settings",
        "validate",
        fixture("defaults-modern.backup.4DSettings")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("backup.4DSettings");
    let text = std::fs::read_to_string(fixture("defaults-modern.backup.4DSettings"))
        .unwrap()
        .replace("<Every>12</Every>", "<Every>25</Every>")
        .replace("<DefaultSize>0<", "<DefaultSize>9999<");
    std::fs::write(&bad, text).unwrap();
    let out = sauve(&["settings", "validate", bad.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    let shown = bad.display().to_string();
    assert_eq!(
        out.stderr,
        format!(
            "error: {shown}:25:24: Backup/Settings/Advanced/FileSegmentation/DefaultSize: invalid value \"9999\" (accepted: integer 0 to 2048)\n\
             {shown}:46:18: Backup/Settings/Scheduler/Hourly/Every: invalid value \"25\" (accepted: integer 1 to 24)\n"
        )
    );
    let missing = sauve(&["settings", "validate", "/nonexistent/backup.4DSettings"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .contains("cannot read \"/nonexistent/backup.4DSettings\"")
    );
}

#[test]
fn settings_set_changes_one_key_and_keeps_everything_else() {
    let app = SampleApp::new(Some("daily-modern.backup.4DSettings")).unwrap();
    let path = app.path().join("Settings/backup.4DSettings");
    let before = std::fs::read_to_string(&path).unwrap();
    let out = sauve(&[
        "settings",
        "set",
        "Advanced/SetNumber/Value",
        "7",
        "--app",
        &app.arg(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        before.replace("<Value>3</Value>", "<Value>7</Value>")
    );
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(app.path().join("Settings"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["backup.4DSettings"]);
}

#[test]
fn settings_set_refuses_bad_input_and_leaves_the_file_alone() {
    let app = SampleApp::new(Some("daily-modern.backup.4DSettings")).unwrap();
    let path = app.path().join("Settings/backup.4DSettings");
    let before = std::fs::read(&path).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["Scheduler/Hourly/Every", "0"],
            "error: Scheduler/Hourly/Every: invalid value \"0\" (accepted: integer 1 to 24)\n",
        ),
        (
            &["Advanced/Bogus", "1"],
            "error: unknown key \"Advanced/Bogus\"",
        ),
        (
            &["Advanced/CompressionRate", "Max"],
            "(accepted: None, Fast or Compact)",
        ),
    ];
    let dir = app.arg();
    for (args, want) in cases {
        let mut argv = vec!["settings", "set"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--app", &dir]);
        let out = sauve(&argv);
        assert_eq!(out.code, 2, "{args:?}");
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn settings_set_without_a_file_creates_the_structure_settings() {
    let app = SampleApp::new(None).unwrap();
    let out = sauve(&[
        "settings",
        "set",
        "General/IncludesFiles/Item1",
        "./Data/App.4DIndx",
        "--app",
        &app.arg(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json = sauve(&["settings", "show", "--json", "--app", &app.arg()]);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        json["General"]["IncludesFiles"],
        serde_json::json!(["./Data/App.4DIndx"])
    );
}

#[test]
fn an_invalid_effective_file_is_reported_with_status_1419() {
    let app = SampleApp::new(Some("defaults-modern.backup.4DSettings")).unwrap();
    let path = app.path().join("Settings/backup.4DSettings");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("<Every>12<", "<Every>0<");
    std::fs::write(&path, text).unwrap();
    let out = sauve(&["settings", "show", "--app", &app.arg()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("error: invalid settings (backup status 1419):\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(":46:18: Backup/Settings/Scheduler/Hourly/Every")
    );
}

#[test]
fn bad_command_lines_exit_2_with_help() {
    let cases: &[&[&str]] = &[
        &[],
        &["settings"],
        &["settings", "show", "--bogus"],
        &["settings", "set", "OnlyKey"],
        &["frobnicate"],
    ];
    for args in cases {
        let out = sauve(args);
        assert_eq!(out.code, 2, "{args:?}");
        assert!(out.stderr.contains("Usage:"), "{args:?}: {}", out.stderr);
    }
    let missing = sauve(&["settings", "show", "--app", "/nonexistent/app"]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("does not exist"));
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    let help = sauve(&["settings", "set", "--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("General/IncludesFiles/Item<N>"));
    let version = sauve(&["--version"]);
    assert_eq!(version.code, 0);
    assert!(version.stdout.starts_with("sauve "));
}
