//! Incremental sets through the engine (behaviour §21): `[incremental]` in
//! sauve.toml makes every `full_every`-th set full and the others build on
//! the set before; retention keeps whole chains and says so; every set it
//! keeps restores to the data of its time; the history names each parent.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;

use sauve_archive::{NoProgress, RestoreOptions, Store};
use sauve_engine::{Engine, EngineOptions, Trigger};
use sauve_settings::AppLayout;
use sauve_status::Status;
use sauve_tests::{SampleApp, random};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_sets_with_a_full_one_in_four_keep_3_restorable_points_and_their_chains() {
    let app = SampleApp::with_settings(&[
        ("Advanced/SetNumber/Value", "3"),
        ("General/IncludesFiles/Item1", "notes.txt"),
    ])
    .unwrap();
    std::fs::write(app.path().join("notes.txt"), "an attachment\n").unwrap();
    std::fs::write(
        app.path().join("Settings/sauve.toml"),
        "[incremental]\nfull_every = 4\nblock_kib = 4\n",
    )
    .unwrap();
    let data = app.path().join("Data/App.4DD");
    std::fs::write(&data, random(64 * 4096)).unwrap();
    let handle = Engine::start(
        AppLayout::discover(app.path()).unwrap(),
        EngineOptions::default(),
    )
    .unwrap();
    let mut at_time: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for round in 0..10u64 {
        if round > 0 {
            // One block of 64 changes, at a place that moves.
            let f = std::fs::File::options().write(true).open(&data).unwrap();
            f.write_all_at(&random(4096), (round * 7 % 64) * 4096)
                .unwrap();
        }
        let report = handle.backup(Trigger::Api).await.unwrap();
        assert_eq!(report.status, Status::Ok, "{report:?}");
        at_time.insert(report.number.get(), std::fs::read(&data).unwrap());
    }
    handle.shutdown().await;

    let backups = app.root().join("Backups");
    let mut sets: Vec<u32> = std::fs::read_dir(&backups)
        .unwrap()
        .flatten()
        .filter_map(|e| sauve_archive::ArchiveName::parse(&e.file_name().to_string_lossy()))
        .filter(|a| a.kind == sauve_archive::SetKind::Backup && !a.part)
        .map(|a| a.number.get())
        .collect();
    sets.sort_unstable();
    // 8 builds on 7, 6 and the full set 5: they stay with it.
    assert_eq!(sets, [5, 6, 7, 8, 9, 10]);
    for n in &sets {
        let to = app.root().join(format!("restored-{n}"));
        let set = backups.join(format!("App[{n:04}].4BK"));
        let options = RestoreOptions {
            to: Some(to.clone()),
            force: false,
        };
        sauve_archive::restore(&set, &options, &mut NoProgress).unwrap();
        assert!(
            std::fs::read(to.join("Data/App.4DD")).unwrap() == at_time[n],
            "set {n} restores its time's data"
        );
        let (_, manifest) = sauve_archive::list(&set).unwrap();
        let full = (n - 1) % 4 == 0;
        assert_eq!(
            manifest.header.parent.map(|p| p.get()),
            (!full).then(|| n - 1),
            "set {n}"
        );
        let entry = manifest
            .entries
            .iter()
            .find(|e| e.path == "Data/App.4DD")
            .unwrap();
        let want = if full { Store::Stored } else { Store::Blocks };
        assert_eq!(entry.store, want, "set {n}");
    }
    // An incremental set is small: one block of the data and what changed.
    let size = |n: u32| {
        std::fs::metadata(backups.join(format!("App[{n:04}].4BK")))
            .unwrap()
            .len()
    };
    assert!(size(6) * 8 < size(5), "{} against {}", size(6), size(5));

    // `sauve list` says where each file of set 8 comes from.
    let set8 = backups.join("App[0008].4BK").display().to_string();
    let out = sauve_tests::sauve(&["list", "--json", &set8]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(listed["parent"], 7);
    let from = |path: &str| {
        listed["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == path)
            .map(|e| e["from"].clone())
            .unwrap()
    };
    assert_eq!(
        from("Data/App.4DD"),
        serde_json::json!([
            {"set": 8, "blocks": 1}, {"set": 7, "blocks": 1},
            {"set": 6, "blocks": 1}, {"set": 5, "blocks": 61}
        ])
    );
    let notes_path = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .find(|p| p.ends_with("/notes.txt"))
        .unwrap();
    assert_eq!(
        from(&notes_path),
        serde_json::json!([{"set": 5, "blocks": null}]),
        "an attachment that never changed is read from the full set"
    );
    let out = sauve_tests::sauve(&["list", &set8]);
    let text = &out.stdout;
    assert!(text.starts_with("App[0008] builds on App[0007]"), "{text}");
    assert!(
        text.contains(
            "App[0008] (1 block), App[0007] (1 block), App[0006] (1 block), App[0005] (61 blocks)"
        ),
        "{text}"
    );

    let journal = sauve_journal::read_all(&app.path().join("Logs")).unwrap();
    let notes: Vec<String> = journal.iter().flat_map(|e| e.notes.clone()).collect();
    for kept in ["App[0005]", "App[0006]", "App[0007]"] {
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with(&format!("retention kept {kept}"))),
            "{notes:#?}"
        );
    }
    assert!(
        notes
            .iter()
            .any(|n| n == "incremental on App[0009]: set 2 of 4 of its chain"),
        "{notes:#?}"
    );
    // Why each full set is full: the first, then one in four.
    for why in [
        "a full set: the first of its base",
        "a full set: one in 4 (full_every)",
    ] {
        assert!(notes.iter().any(|n| n == why), "{why}: {notes:#?}");
    }
    let parents: BTreeMap<u32, Option<u32>> = app
        .history_entries()
        .iter()
        .map(|e| (e.backup_number.get(), e.parent.map(|p| p.get())))
        .collect();
    assert_eq!(parents.get(&10), Some(&Some(9)), "{parents:?}");
    assert_eq!(parents.get(&9), Some(&None), "{parents:?}");
}
