//! Samples of the stored bytes between rehearsals (behaviour §23): the sums
//! recorded when each set was stored, a share of every kept set read at
//! each backup and by `sauve verify --sample`, damage alerted, named and
//! kept from the automatic restore, and every piece read once before any
//! is read again.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sauve_engine::{AlertKind, BackupHandle, Engine, EngineOptions, SampleOptions, Trigger};
use sauve_settings::AppLayout;
use sauve_status::Status;
use sauve_tests::SampleApp;

/// Bytes zstd cannot shrink: the sets are as large as the data.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn engine(app: &SampleApp) -> BackupHandle {
    Engine::start(
        AppLayout::discover(app.path()).unwrap(),
        EngineOptions::default(),
    )
    .unwrap()
}

/// An app with `toml` as its sauve.toml and `sets` backups of 10 MiB of
/// noise each (three pieces per set).
async fn app_with_sets(toml: &str, sets: u64) -> (SampleApp, BackupHandle) {
    let app = SampleApp::new(None).unwrap();
    std::fs::create_dir_all(app.path().join("Settings")).unwrap();
    std::fs::write(app.path().join("Settings/sauve.toml"), toml).unwrap();
    let handle = engine(&app);
    for i in 0..sets {
        std::fs::write(app.path().join("Data/App.4DD"), noise(10 << 20, i + 7)).unwrap();
        let r = handle.backup(Trigger::Api).await.unwrap();
        assert_eq!(r.status, Status::Ok, "{:?}", r.errors);
    }
    (app, handle)
}

fn set_file(app: &SampleApp, n: u32) -> PathBuf {
    app.root().join(format!("Backups/App[{n:04}].4BK"))
}

/// Flips one byte of `file` at `at`.
fn flip(file: &Path, at: u64) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x55]).unwrap();
    f.sync_all().unwrap();
}

const ALL: Option<SampleOptions> = Some(SampleOptions {
    percent: 100,
    max_mib: 1024,
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_set_records_its_pieces_as_stored_and_a_whole_sample_finds_them_sound() {
    let (app, handle) = app_with_sets("[verify]\nsample_percent = 0\n", 2).await;
    for (i, entry) in app.history_entries().iter().enumerate() {
        let stored = entry.stored.as_ref().expect("pieces recorded");
        let file = &stored[0];
        assert_eq!(file.name, format!("App[{:04}].4BK", i + 1));
        let on_disk = std::fs::metadata(set_file(&app, i as u32 + 1))
            .unwrap()
            .len();
        assert_eq!(file.size, on_disk, "the size as stored");
        assert_eq!(file.count(), on_disk.div_ceil(4 << 20));
    }
    let report = handle
        .rehearsals()
        .sample(ALL, Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(report.sets.len(), 2, "{report:?}");
    assert!(report.damaged.is_empty(), "{report:?}");
    let total: u64 = report.sets.iter().map(|s| s.total).sum();
    assert_eq!(report.pieces, total, "every piece read: {report:?}");
    let on_disk: u64 = (1..=2)
        .map(|n| std::fs::metadata(set_file(&app, n)).unwrap().len())
        .sum();
    assert_eq!(report.bytes, on_disk);
    let state = sauve_engine::EngineState::load(app.path());
    let last = state.sample.unwrap().last.unwrap();
    assert_eq!((last.pieces, last.damaged), (total, 0));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_byte_is_found_named_alerted_once_and_forgotten_once_read_sound_again() {
    let (app, handle) = app_with_sets("[verify]\nsample_percent = 0\n", 2).await;
    let file = set_file(&app, 1);
    // In its second piece.
    flip(&file, (4 << 20) + 1000);
    let report = handle
        .rehearsals()
        .sample(ALL, Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    let d = &report.damaged[0];
    assert_eq!(
        (d.set.as_str(), d.file.as_str(), d.piece),
        ("App[0001]", "App[0001].4BK", Some(1))
    );
    let open = handle.alerts().open().await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].alert.kind, AlertKind::SetDamaged);
    assert!(
        open[0].alert.errors[0].contains("App[0001] is damaged: App[0001].4BK, piece 1"),
        "{:?}",
        open[0].alert.errors
    );
    let state = sauve_engine::EngineState::load(app.path());
    assert_eq!(
        state.sample.as_ref().unwrap().damaged_numbers(),
        [sauve_archive::BackupNumber::new(1)]
    );
    // Found again: no second alert.
    let again = handle
        .rehearsals()
        .sample(ALL, Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(again.damaged.len(), 1);
    assert_eq!(handle.alerts().open().await.unwrap().len(), 1);
    // Repaired: read sound again, forgotten, its alert acknowledged.
    flip(&file, (4 << 20) + 1000);
    let sound = handle
        .rehearsals()
        .sample(ALL, Trigger::Manual)
        .await
        .unwrap();
    assert!(sound.damaged.is_empty(), "{sound:?}");
    assert_eq!(sound.sound_again.len(), 1, "{sound:?}");
    assert!(handle.alerts().open().await.unwrap().is_empty());
    let state = sauve_engine::EngineState::load(app.path());
    assert!(state.sample.unwrap().damaged.is_empty());
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_replaced_or_missing_file_is_damage_until_it_is_whole_again() {
    let (app, handle) = app_with_sets("[verify]\nsample_percent = 0\n", 3).await;
    let (one, two, three) = (set_file(&app, 1), set_file(&app, 2), set_file(&app, 3));
    let kept = std::fs::read(&one).unwrap();
    let len = kept.len() as u64;
    let f = std::fs::OpenOptions::new().write(true).open(&one).unwrap();
    f.set_len(len - 10).unwrap();
    drop(f);
    let kept_two = std::fs::read(&two).unwrap();
    std::fs::remove_file(&two).unwrap();
    std::fs::write(&three, b"not a set").unwrap();
    let report = handle
        .rehearsals()
        .sample(ALL, Trigger::Manual)
        .await
        .unwrap();
    let named: BTreeSet<(String, Option<u64>, String)> = report
        .damaged
        .iter()
        .map(|d| (d.set.clone(), d.piece, d.why.clone()))
        .collect();
    let expected: BTreeSet<(String, Option<u64>, String)> = [
        (
            "App[0001]".to_owned(),
            None,
            format!("{} bytes stored where {len} were written", len - 10),
        ),
        ("App[0002]".to_owned(), None, "missing".to_owned()),
        (
            "App[0003]".to_owned(),
            None,
            format!(
                "9 bytes stored where {} were written",
                app.history_entries()[2].stored.as_ref().unwrap()[0].size
            ),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(named, expected, "{report:?}");
    assert_eq!(report.pieces, 0, "no piece of a cut file is read");
    // Whole again: forgotten, their alerts acknowledged.
    std::fs::write(&one, &kept).unwrap();
    std::fs::write(&two, &kept_two).unwrap();
    let report = handle
        .rehearsals()
        .sample(ALL, Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(report.sound_again.len(), 2, "{report:?}");
    assert_eq!(report.marked.len(), 1, "set 3 stays: {report:?}");
    assert_eq!(report.marked[0].set, "App[0003]");
    let open = handle.alerts().open().await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].alert.number, sauve_archive::BackupNumber::new(3));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_the_history_no_longer_lists_is_gone_not_damaged_and_a_missing_destination_is_an_error()
 {
    let (app, handle) = app_with_sets("[verify]\nsample_percent = 0\n", 2).await;
    // As retention removes a set: its files, then its history entry.
    std::fs::remove_file(set_file(&app, 1)).unwrap();
    let history = app.root().join("Backups/backupHistory.json");
    let mut h = sauve_history::History::parse(&std::fs::read_to_string(&history).unwrap()).unwrap();
    h.remove_numbers(&app.history_key(), &[sauve_archive::BackupNumber::new(1)])
        .unwrap();
    std::fs::write(&history, h.to_json().unwrap()).unwrap();
    let report = handle
        .rehearsals()
        .sample(ALL, Trigger::Manual)
        .await
        .unwrap();
    assert!(report.damaged.is_empty(), "{report:?}");
    assert_eq!(report.sets.len(), 1);
    assert_eq!(report.sets[0].set, "App[0002]");
    // The destination folder gone (a disk not mounted): an error, never a
    // sample with no set.
    std::fs::rename(app.root().join("Backups"), app.root().join("Away")).unwrap();
    let e = handle
        .rehearsals()
        .sample(ALL, Trigger::Manual)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("the destination folder is not there"),
        "{e}"
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_piece_is_read_once_before_any_is_read_again_and_the_cap_holds() {
    let (app, handle) = app_with_sets("[verify]\nsample_percent = 0\n", 1).await;
    let total = app.history_entries()[0].stored.as_ref().unwrap()[0].count();
    assert!(total >= 3, "{total}");
    // One piece per sample: the cap of 1 MiB still reads one.
    let one = Some(SampleOptions {
        percent: 1,
        max_mib: 1,
    });
    let mut covered = Vec::new();
    for _ in 0..total {
        let r = handle
            .rehearsals()
            .sample(one, Trigger::Manual)
            .await
            .unwrap();
        assert_eq!(r.pieces, 1, "{r:?}");
        covered.push(r.sets[0].covered);
    }
    assert_eq!(covered, (1..=total).collect::<Vec<_>>());
    // Then a new order begins.
    let r = handle
        .rehearsals()
        .sample(one, Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(r.sets[0].covered, 1);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_backup_samples_the_kept_sets_the_new_one_included_and_alerts_damage() {
    let (app, handle) = app_with_sets("[verify]\nsample_percent = 100\n", 2).await;
    flip(&set_file(&app, 1), 10);
    std::fs::write(app.path().join("Data/App.4DD"), noise(1 << 20, 99)).unwrap();
    let r = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(r.status, Status::Ok, "the backup itself is sound");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("App[0001] is damaged: App[0001].4BK, piece 0")),
        "{:?}",
        r.warnings
    );
    let journal: String = std::fs::read_dir(app.path().join("Logs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("Backup Journal"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    // The alert's entry names the set, the file and the piece.
    assert!(
        journal.contains("App[0001] is damaged: App[0001].4BK, piece 0"),
        "{journal}"
    );
    assert!(
        journal.contains("an automatic restore no longer picks it"),
        "{journal}"
    );
    let state = sauve_engine::EngineState::load(app.path());
    let last = state.sample.unwrap().last.unwrap();
    assert_eq!(last.damaged, 1);
    // All three sets, the new one among them.
    assert_eq!(last.sets, 3);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crafted_record_is_left_unread_and_said_so() {
    let (app, handle) = app_with_sets("[verify]\nsample_percent = 0\n", 1).await;
    let history = app.root().join("Backups/backupHistory.json");
    let text = std::fs::read_to_string(&history).unwrap();
    let crafted = text.replace("\"App[0001].4BK\"", "\"../../App/Data/App.4DD\"");
    assert_ne!(crafted, text);
    std::fs::write(&history, crafted).unwrap();
    let report = handle
        .rehearsals()
        .sample(ALL, Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(report.pieces, 0, "{report:?}");
    assert!(
        report.unrecorded[0].contains("is not a plain file name"),
        "{report:?}"
    );
    handle.shutdown().await;
}

#[test]
fn an_encrypted_bucket_is_sampled_without_its_identity_by_ranged_reads_of_the_ciphertext() {
    use sauve_store::Store;
    use sauve_tests::garage::{Garage, age_keygen, bucket, sauve};
    let garage = Garage::start(1);
    let app = SampleApp::with_settings(&[("General/DestinationFolder", "s3://sauve-test/sealed/")])
        .unwrap();
    let (_key, recipient) = age_keygen(app.root(), "key.txt");
    std::fs::write(
        app.path().join("Settings/sauve.toml"),
        format!(
            "[destination]\n{}encrypt_to = [\"{recipient}\"]\n\n[verify]\nsample_percent = 0\n",
            garage.toml_lines()
        ),
    )
    .unwrap();
    std::fs::write(app.path().join("Data/App.4DD"), noise(9 << 20, 3)).unwrap();
    let a = app.arg();
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let out = sauve(&garage, &["backup", "--app", &a]);
    assert!(out.status.success(), "{}", text(&out));
    let out = sauve(
        &garage,
        &["verify", "--sample", "100", "--app", &a, "--json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["source"], "s3://sauve-test/sealed/", "{report}");
    assert_eq!(report["sets"][0]["set"], "App[0001]", "{report}");
    assert_eq!(report["pieces"], report["sets"][0]["total"], "{report}");
    assert!(report["pieces"].as_u64().unwrap() >= 3, "{report}");
    assert_eq!(report["damaged"], serde_json::json!([]), "{report}");
    // One byte of the ciphertext changed in the bucket.
    let rt = sauve_tests::runtime();
    let store = bucket(&garage, "sealed/");
    let key = "App[0001].4BK.age";
    let mut bytes = rt.block_on(store.get(key)).unwrap().to_vec();
    bytes[(4 << 20) + 17] ^= 1;
    rt.block_on(store.delete(key)).unwrap();
    rt.block_on(store.put_new(key, bytes.into())).unwrap();
    let out = sauve(&garage, &["verify", "--sample", "100", "--app", &a]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("DAMAGED: App[0001] App[0001].4BK.age, piece 1"),
        "{}",
        text(&out)
    );
    let out = sauve(&garage, &["status", "--app", &a, "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["alerts"][0]["kind"], "set-damaged", "{status}");
}

#[test]
fn verify_sample_refuses_what_it_does_not_accept() {
    let app = SampleApp::new(None).unwrap();
    let a = app.arg();
    for (args, says) in [
        (
            vec!["verify", "--sample", "0", "--app", &a],
            "accepted: 1 to 100 percent",
        ),
        (
            vec!["verify", "--sample", "101", "--app", &a],
            "accepted: 1 to 100 percent",
        ),
        (
            vec!["verify", "--sample", "5", "--max-mib", "0", "--app", &a],
            "accepted: 1 to 1048576",
        ),
        (
            vec!["verify", "x.4BK", "--sample", "5"],
            "cannot be used with",
        ),
        (vec!["verify"], "required"),
    ] {
        let out = sauve_tests::sauve(&args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_badly_damaged_file_keeps_sixteen_pieces_and_its_alert_ten_lines() {
    let app = SampleApp::new(None).unwrap();
    std::fs::create_dir_all(app.path().join("Settings")).unwrap();
    std::fs::write(
        app.path().join("Settings/sauve.toml"),
        "[verify]\nsample_percent = 0\n",
    )
    .unwrap();
    let handle = engine(&app);
    std::fs::write(app.path().join("Data/App.4DD"), noise(80 << 20, 5)).unwrap();
    let r = handle.backup(Trigger::Api).await.unwrap();
    assert_eq!(r.status, Status::Ok, "{:?}", r.errors);
    let file = set_file(&app, 1);
    let pieces = std::fs::metadata(&file).unwrap().len().div_ceil(4 << 20);
    assert!(pieces >= 20, "{pieces}");
    for p in 0..pieces {
        flip(&file, p * (4 << 20) + 7);
    }
    let report = handle
        .rehearsals()
        .sample(ALL, Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(
        report.damaged.len(),
        16,
        "sixteen kept per file: {report:?}"
    );
    assert_eq!(report.marked.len(), 16);
    let open = handle.alerts().open().await.unwrap();
    assert_eq!(open.len(), 1);
    let errors = &open[0].alert.errors;
    assert_eq!(errors.len(), 11, "{errors:?}");
    assert_eq!(errors[10], "and 6 more");
    handle.shutdown().await;
}
