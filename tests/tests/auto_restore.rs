//! Automatic restore and automatic log integration at open (behaviour §13.3).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use sauve_engine::{BackupHandle, DataHealth, Engine, EngineOptions, OpenOutcome, Trigger};
use sauve_locking::Kind;
use sauve_settings::AppLayout;
use sauve_tests::SampleApp;
use sauve_tests::kv::{apply, load, save};

const ID: [u8; 16] = *b"auto-restore-001";

/// The engine of the app laid out as `layout` says, as a host starts it
/// before its open check.
fn engine(layout: AppLayout) -> BackupHandle {
    Engine::start(layout, EngineOptions::default()).unwrap()
}

/// The open check of a host whose data file `data` is damaged: the outcome
/// and the store as restored and rolled forward.
fn restore_at_open(
    layout: AppLayout,
    data: &std::path::Path,
) -> (OpenOutcome, BTreeMap<String, String>) {
    open_with(layout, data, true)
}

/// The open check of a host that says its data file `data` is `damaged`
/// (or not), on an engine of its own.
fn open_with(
    layout: AppLayout,
    data: &std::path::Path,
    damaged: bool,
) -> (OpenOutcome, BTreeMap<String, String>) {
    let mut restored = BTreeMap::new();
    let map = std::cell::RefCell::new(&mut restored);
    let handle = engine(layout);
    let outcome = tokio::task::block_in_place(|| {
        handle.open_check(
            DataHealth {
                damaged,
                last_applied: 0,
            },
            ID,
            sauve_engine::Until::End,
            || {
                let (last, m) = load(data).unwrap();
                **map.borrow_mut() = m;
                last
            },
            |r| apply(&mut map.borrow_mut(), &r.payload),
        )
    })
    .unwrap();
    (outcome, restored)
}

/// A host that writes `n` records, backs up every `every` writes, and stops.
async fn run_host(app: &SampleApp, writes: usize, every: usize) -> BTreeMap<String, String> {
    let data = app.path().join("Data/App.4DD");
    let mut map = BTreeMap::new();
    save(&data, 0, &map).unwrap();
    let (log, handle) = sauve_tests::engine_with_log(app, ID, EngineOptions::default());
    for i in 0..writes {
        {
            let _g = handle.locks().write(Kind::Data).await;
            let seq = log.append(format!("k{}=v{i}", i % 7).as_bytes()).unwrap();
            map.insert(format!("k{}", i % 7), format!("v{i}"));
            save(&data, seq, &map).unwrap();
        }
        if (i + 1) % every == 0 {
            assert_eq!(handle.backup(Trigger::Api).await.unwrap().status.code(), 0);
        }
    }
    handle.shutdown().await;
    map
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_data_is_restored_from_the_newest_backup_and_rolled_forward() {
    let app = SampleApp::with_settings(&[]).unwrap();
    let live = run_host(&app, 20, 6).await;
    let data = app.path().join("Data/App.4DD");
    std::fs::write(&data, b"\x00garbage after a crash").unwrap();
    let layout = AppLayout::discover(app.path()).unwrap();
    let (outcome, restored) = restore_at_open(layout, &data);
    assert_eq!(restored, live, "every acknowledged write is back");
    assert!(outcome.restart);
    assert_eq!(
        outcome.restored,
        Some(app.root().join("Backups/App[0003].4BK"))
    );
    let replaced = outcome.replaced.unwrap();
    assert_eq!(
        std::fs::read(replaced.join("App.4DD")).unwrap(),
        b"\x00garbage after a crash"
    );
    let titles: Vec<_> = sauve_journal::read_all(&app.path().join("Logs"))
        .unwrap()
        .into_iter()
        .filter_map(|e| e.title)
        .collect();
    assert!(
        titles.contains(&sauve_journal::Title::AutomaticFullBackupRestore),
        "{titles:?}"
    );
    assert_eq!(titles.last(), Some(&sauve_journal::Title::LogIntegration));
    let history = std::fs::read_to_string(app.root().join("Backups/backupHistory.json")).unwrap();
    assert!(history.contains("\"trigger\": \"automatic\""), "{history}");
    assert!(
        history.contains("\"operation\": \"integration\""),
        "{history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_newest_backup_falls_back_to_the_previous_one() {
    let app = SampleApp::with_settings(&[]).unwrap();
    let live = run_host(&app, 12, 6).await;
    let newest = app.root().join("Backups/App[0002].4BK");
    let mut bytes = std::fs::read(&newest).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 200);
    std::fs::write(&newest, bytes).unwrap();
    let data = app.path().join("Data/App.4DD");
    std::fs::remove_file(&data).unwrap();
    let layout = AppLayout::discover(app.path());
    // The data file is gone: the layout is given explicitly, as a host does.
    let layout = layout.unwrap_or_else(|_| AppLayout {
        app: app.path().to_path_buf(),
        project_file: Some(app.path().join("Project/App.4DProject")),
        data_file: data.clone(),
        log_file: app.path().join("Data/App.journal"),
    });
    let (outcome, restored) = restore_at_open(layout, &data);
    assert_eq!(
        outcome.restored,
        Some(app.root().join("Backups/App[0001].4BK"))
    );
    assert_eq!(restored, live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_a_sample_found_damaged_is_never_picked_even_once_it_verifies() {
    let app = SampleApp::with_settings(&[]).unwrap();
    let live = run_host(&app, 12, 6).await;
    let newest = app.root().join("Backups/App[0002].4BK");
    let sound = std::fs::read(&newest).unwrap();
    let mut bytes = sound.clone();
    bytes[100] ^= 0xff;
    std::fs::write(&newest, &bytes).unwrap();
    let layout = AppLayout::discover(app.path()).unwrap();
    let handle = engine(layout.clone());
    let all = sauve_engine::SampleOptions {
        percent: 100,
        max_mib: 64,
    };
    let report = handle
        .rehearsals()
        .sample(Some(all), Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    handle.shutdown().await;
    // The bytes come back without a sample to see it: the set verifies,
    // and still is not picked.
    std::fs::write(&newest, &sound).unwrap();
    let data = app.path().join("Data/App.4DD");
    std::fs::write(&data, b"damaged").unwrap();
    let (outcome, restored) = restore_at_open(layout, &data);
    assert_eq!(
        outcome.restored,
        Some(app.root().join("Backups/App[0001].4BK"))
    );
    assert_eq!(restored, live, "rolled forward from the older set");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_usable_backup_the_result_is_backup_not_available() {
    let app = SampleApp::with_settings(&[]).unwrap();
    let layout = AppLayout::discover(app.path()).unwrap();
    let handle = engine(layout);
    let err = tokio::task::block_in_place(|| {
        handle.open_check(
            DataHealth {
                damaged: true,
                last_applied: 0,
            },
            ID,
            sauve_engine::Until::End,
            || 0,
            |_| Ok::<(), String>(()),
        )
    })
    .unwrap_err();
    assert_eq!(err.status().code(), 1410, "{err}");
    let entry = sauve_journal::read_all(&app.path().join("Logs"))
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        entry.title,
        Some(sauve_journal::Title::AutomaticFullBackupRestore)
    );
    assert_eq!(entry.result.as_deref(), Some("backup not available"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_data_integrates_the_records_it_does_not_have() {
    let app = SampleApp::with_settings(&[]).unwrap();
    let live = run_host(&app, 10, 100).await;
    // The host's data stopped at sequence 6 (its last writes were lost).
    let mut data = BTreeMap::new();
    for i in 0..6 {
        data.insert(format!("k{}", i % 7), format!("v{i}"));
    }
    let layout = AppLayout::discover(app.path()).unwrap();
    let handle = engine(layout);
    let outcome = tokio::task::block_in_place(|| {
        handle.open_check(
            DataHealth {
                damaged: false,
                last_applied: 6,
            },
            ID,
            sauve_engine::Until::End,
            || 0,
            |r| apply(&mut data, &r.payload),
        )
    })
    .unwrap();
    assert_eq!((outcome.applied, outcome.last_applied), (4, 10));
    assert_eq!(data, live);
    let entry = sauve_journal::read_all(&app.path().join("Logs"))
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        entry.title,
        Some(sauve_journal::Title::AutomaticLogIntegration)
    );
    assert_eq!(entry.operations.as_deref(), Some("4 applied (7 to 10)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_check_killed_half_way_is_redone_at_the_next_open_whatever_the_host_says() {
    // `cargo xtask crash --scenario open`: killed between putting the
    // restored data in place and the end of the integration, the next open
    // found "healthy" data that had missed the logs. The marker makes it
    // restore again; the damaged file stayed in the Replaced files folder.
    let app = SampleApp::with_settings(&[]).unwrap();
    let live = run_host(&app, 20, 6).await;
    let data = app.path().join("Data/App.4DD");
    // What the killed check left: the restored (not yet integrated) data,
    // a stage of a process that cannot exist (above the largest pid),
    // and the marker.
    let (_, older) = load(&data).unwrap();
    assert_eq!(older, live);
    save(&data, 0, &BTreeMap::new()).unwrap();
    std::fs::create_dir_all(app.path().join("Data/.sauve-auto-restore-4194305/x")).unwrap();
    std::fs::write(
        app.path().join("Data/.sauve-open-restore"),
        "App[0003].4BK\n",
    )
    .unwrap();
    let layout = AppLayout::discover(app.path()).unwrap();
    let (outcome, restored) = open_with(layout, &data, false);
    assert_eq!(
        outcome.restored,
        Some(app.root().join("Backups/App[0003].4BK")),
        "restored again though the host said healthy"
    );
    assert_eq!(
        restored, live,
        "and rolled forward to every acknowledged write"
    );
    assert!(
        !app.path().join("Data/.sauve-open-restore").exists(),
        "done: no marker"
    );
    assert!(
        !app.path().join("Data/.sauve-auto-restore-4194305").exists(),
        "a dead process's stage is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_destination_gone_the_newest_off_site_copy_is_restored_and_rolled_forward() {
    let garage = sauve_tests::garage::Garage::start(1);
    let app = SampleApp::with_settings(&[]).unwrap();
    // The secret in a 0600 file: this test's engine runs in this process.
    let secret = app.root().join("s3.secret");
    std::fs::write(&secret, &garage.secret).unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::create_dir_all(app.path().join("Settings")).unwrap();
    std::fs::write(
        app.path().join("Settings/sauve.toml"),
        format!(
            "[destination]\nendpoint = \"{}\"\nregion = \"garage\"\npath_style = true\naccess_key_id = \"{}\"\nsecret_access_key_file = \"{}\"\n\n[[offsite]]\nurl = \"s3://{}/open/\"\n",
            garage.endpoint(),
            garage.key_id,
            secret.display(),
            garage.bucket
        ),
    )
    .unwrap();
    let live = run_host(&app, 12, 6).await;
    // Set 2 went off-site whole: its backup and the log backup it pairs with (behaviour §6.3).
    let store =
        sauve_store::S3Store::open(garage.bucket.clone(), "open/".into(), &garage.options())
            .unwrap();
    let keys: Vec<String> = sauve_store::Store::list(&store, "App[")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        keys,
        [
            "App[0000].4BL",
            "App[0001].4BK",
            "App[0001].4BL",
            "App[0002].4BK"
        ]
    );
    // The disk of the destination is gone, and the data is damaged.
    std::fs::remove_dir_all(app.root().join("Backups")).unwrap();
    let data = app.path().join("Data/App.4DD");
    std::fs::write(&data, b"\x00garbage after a crash").unwrap();
    let layout = AppLayout::discover(app.path()).unwrap();
    let (outcome, restored) = restore_at_open(layout, &data);
    assert_eq!(
        outcome.restored,
        Some(std::path::PathBuf::from(
            "s3://sauve-test/open/App[0002].4BK"
        ))
    );
    assert_eq!(restored, live, "every acknowledged write is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_bucket_as_the_destination_its_newest_set_is_restored_and_rolled_forward() {
    let garage = sauve_tests::garage::Garage::start(1);
    let url = format!("s3://{}/primary/", garage.bucket);
    let app = SampleApp::with_settings(&[("General/DestinationFolder", &url)]).unwrap();
    let secret = app.root().join("s3.secret");
    std::fs::write(&secret, &garage.secret).unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::create_dir_all(app.path().join("Settings")).unwrap();
    std::fs::write(
        app.path().join("Settings/sauve.toml"),
        format!(
            "[destination]\nendpoint = \"{}\"\nregion = \"garage\"\npath_style = true\naccess_key_id = \"{}\"\nsecret_access_key_file = \"{}\"\n",
            garage.endpoint(),
            garage.key_id,
            secret.display(),
        ),
    )
    .unwrap();
    let live = run_host(&app, 12, 6).await;
    // The sets and the log backups they pair with went to the bucket, and
    // nothing of them is on this disk.
    let store =
        sauve_store::S3Store::open(garage.bucket.clone(), "primary/".into(), &garage.options())
            .unwrap();
    let keys: Vec<String> = sauve_store::Store::list(&store, "App[")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        keys,
        [
            "App[0000].4BL",
            "App[0001].4BK",
            "App[0001].4BL",
            "App[0002].4BK"
        ]
    );
    assert!(!app.root().join("Backups").exists());

    // A manual restore through the handle reads the set from the bucket.
    let to = app.root().join("manual");
    let layout = AppLayout::discover(app.path()).unwrap();
    let handle = engine(layout.clone());
    let done = handle
        .restore(
            std::path::Path::new(&format!("{url}App[0001].4BK")),
            sauve_archive::RestoreOptions {
                to: Some(to.clone()),
                force: false,
            },
            Trigger::Api,
        )
        .await
        .unwrap();
    assert_eq!(done.report.manifest.header.backup_number, 1);
    assert!(to.join("Data/App.4DD").is_file());
    handle.shutdown().await;

    // The data is damaged: the newest set comes back from the bucket and
    // the log rolls it forward to every acknowledged write.
    let data = app.path().join("Data/App.4DD");
    std::fs::write(&data, b"\x00garbage after a crash").unwrap();
    let (outcome, restored) = restore_at_open(layout, &data);
    assert_eq!(
        outcome.restored,
        Some(std::path::PathBuf::from(format!("{url}App[0002].4BK")))
    );
    assert_eq!(restored, live, "every acknowledged write is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_set_is_restored_through_its_chain_and_a_broken_chain_falls_back() {
    let app = SampleApp::with_settings(&[("General/IncludesFiles/Item1", "notes.txt")]).unwrap();
    std::fs::write(app.path().join("notes.txt"), "never changes\n").unwrap();
    std::fs::write(
        app.path().join("Settings/sauve.toml"),
        "[incremental]\nfull_every = 4\nblock_kib = 4\n",
    )
    .unwrap();
    let live = run_host(&app, 24, 6).await;
    let backups = app.root().join("Backups");
    let set = |n: u32| backups.join(format!("App[{n:04}].4BK"));
    let located = |n: u32| sauve_archive::SetFiles::locate(&set(n)).unwrap();
    assert_eq!(
        sauve_archive::parent_of(&located(4)).unwrap(),
        Some(3.into())
    );
    let data = app.path().join("Data/App.4DD");

    // The newest set, incremental: restored through 3, 2 and 1.
    std::fs::write(&data, b"\x00garbage").unwrap();
    let layout = AppLayout::discover(app.path()).unwrap();
    let (outcome, restored) = restore_at_open(layout.clone(), &data);
    assert_eq!(outcome.restored, Some(set(4)));
    assert_eq!(restored, live, "every acknowledged write is back");

    // A link gone: set 4 cannot be restored, set 2 (on the full set 1) is,
    // and the log brings the data to the end again.
    std::fs::rename(set(3), app.root().join("aside.4BK")).unwrap();
    std::fs::write(&data, b"\x00garbage again").unwrap();
    let (outcome, restored) = restore_at_open(layout, &data);
    assert_eq!(outcome.restored, Some(set(2)));
    assert_eq!(restored, live, "every acknowledged write is back");
}
