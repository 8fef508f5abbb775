//! `sauve verify`, `sauve restore` and `sauve list` as a user sees them.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use sauve_archive::{ArchiveWriter, ManifestHeader, NoProgress, SetKind, SetSpec, resolve_content};
use sauve_settings::{AppLayout, Compression, Settings};
use sauve_tests::{SampleApp, sauve};

/// Backs up a sample app with the archive library; returns the archive.
fn backup(app: &SampleApp, dest: &Path, segment_size: u64) -> Vec<PathBuf> {
    if segment_size == 0 {
        std::fs::write(app.path().join("Data/App.4DD"), vec![42u8; 200_000]).unwrap();
    }
    let layout = AppLayout::discover(app.path()).unwrap();
    let mut settings = Settings::default();
    settings.general.include_structure_file = true;
    let content = resolve_content(&layout, &settings, dest).unwrap();
    let spec = SetSpec {
        destination: dest.to_path_buf(),
        base: layout.base_name(),
        number: 1.into(),
        kind: SetKind::Backup,
        compression: Compression::Fast,
        segment_size,
        threads: 1,
    };
    let header = ManifestHeader {
        data_path: layout.data_file.display().to_string(),
        trigger: "manual".to_owned(),
        ..ManifestHeader::new(
            SetKind::Backup,
            1,
            &layout.base_name(),
            jiff::Timestamp::UNIX_EPOCH,
        )
    };
    let mut w = ArchiveWriter::create(spec, header).unwrap();
    for e in &content.entries {
        w.append(e, &mut NoProgress).unwrap();
    }
    w.finish(jiff::Timestamp::UNIX_EPOCH)
        .unwrap()
        .commit()
        .unwrap()
}

#[test]
fn verify_exits_0_for_a_sound_set_and_1_naming_the_damage() {
    let app = SampleApp::new(None).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let files = backup(&app, dest.path(), 0);
    let archive = files[0].to_str().unwrap();
    let ok = sauve(&["verify", archive]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(
        ok.stdout.starts_with("App[0001].4BK: sound ("),
        "{}",
        ok.stdout
    );

    let by_name = sauve(&["verify", dest.path().join("App[0001]").to_str().unwrap()]);
    assert_eq!(by_name.code, 0, "{}", by_name.stderr);

    let mut bytes = std::fs::read(&files[0]).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 100);
    std::fs::write(&files[0], bytes).unwrap();
    let bad = sauve(&["verify", archive]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr
            .starts_with("error: archive verification failed (1411): "),
        "{}",
        bad.stderr
    );
}

#[test]
fn verify_names_a_missing_segment_with_1410() {
    let app = SampleApp::new(None).unwrap();
    let dest = tempfile::tempdir().unwrap();
    std::fs::write(
        app.path().join("Data/App.4DD"),
        (0..600_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let mut app_files = backup(&app, dest.path(), 16 * 1024);
    assert!(app_files.len() >= 3);
    let gone = app_files.remove(1);
    std::fs::remove_file(&gone).unwrap();
    let out = sauve(&["verify", app_files[0].to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("(1410)"), "{}", out.stderr);
    assert!(
        out.stderr.contains("App[0001-0002].4BK not found"),
        "{}",
        out.stderr
    );
}

#[test]
fn restore_goes_next_to_the_archive_and_refuses_a_non_empty_destination() {
    let app = SampleApp::new(None).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let files = backup(&app, dest.path(), 0);
    let out = sauve(&["restore", files[0].to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let restored = dest.path().join("App[0001]");
    assert!(
        out.stdout.starts_with(&format!(
            "Restored App[0001].4BK into {}",
            restored.display()
        )),
        "{}",
        out.stdout
    );
    assert_eq!(
        std::fs::read(restored.join("Data/App.4DD")).unwrap(),
        vec![42u8; 200_000]
    );
    assert!(restored.join("Project/App.4DProject").is_file());
    // The restore is recorded in the history beside the archive.
    let history = std::fs::read_to_string(dest.path().join("backupHistory.json")).unwrap();
    let h: serde_json::Value = serde_json::from_str(&history).unwrap();
    let e = &h[""][0];
    assert_eq!(e["operation"], "restore");
    assert_eq!(e["backupNumber"], 1);
    assert_eq!(e["status"], 0);
    assert_eq!(
        e["dataPath"],
        restored.join("Data/App.4DD").display().to_string()
    );

    let again = sauve(&["restore", files[0].to_str().unwrap()]);
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("is not empty (use --force"),
        "{}",
        again.stderr
    );
    let forced = sauve(&["restore", files[0].to_str().unwrap(), "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);

    let elsewhere = dest.path().join("elsewhere");
    let to = sauve(&[
        "restore",
        files[0].to_str().unwrap(),
        "--to",
        elsewhere.to_str().unwrap(),
    ]);
    assert_eq!(to.code, 0, "{}", to.stderr);
    assert!(elsewhere.join("Data/App.4DD").is_file());
}

#[test]
fn list_shows_path_kind_and_size() {
    let app = SampleApp::new(None).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let files = backup(&app, dest.path(), 0);
    let out = sauve(&["list", files[0].to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!("list_sample_app", out.stdout);
    let json = sauve(&["list", "--json", files[0].to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["archive"], "App[0001].4BK");
    assert_eq!(
        v["entries"][0],
        serde_json::json!({"path": "Data/App.4DD", "kind": "data", "type": "file", "size": 200_000})
    );
}

#[test]
fn archive_commands_refuse_what_is_not_an_archive() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "x").unwrap();
    let out = sauve(&["verify", notes.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("is not an archive name (accepted: base[NNNN].4BK"),
        "{}",
        out.stderr
    );
    let missing = sauve(&["list", dir.path().join("App[0004].4BK").to_str().unwrap()]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("(1410)"), "{}", missing.stderr);
}
