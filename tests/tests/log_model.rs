//! A model host: a key-value store that logs every write before applying
//! it. Random writes interleaved with backups; then any backup restored and
//! the logs after it integrated gives back the state after the last
//! acknowledged write.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use sauve_engine::{EngineOptions, Trigger};
use sauve_locking::Kind;
use sauve_status::Status;
use sauve_tests::SampleApp;
use sauve_tests::kv::{Map, apply, load, save};

const ID: [u8; 16] = *b"kv-model-data-01";

#[derive(Clone, Debug)]
enum Op {
    Write(u8, u16),
    Backup,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn any_backup_restored_and_integrated_equals_the_last_acknowledged_state(
        ops in proptest::collection::vec(prop_oneof![4 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Write(k % 16, v)), 1 => Just(Op::Backup)], 1..40),
        pick in any::<prop::sample::Index>(),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let app = SampleApp::with_settings(&[("Advanced/SetNumber/Value", "50"), ("Advanced/CompressionRate", "None")]).unwrap();
            let data = app.path().join("Data/App.4DD");
            let log_path = app.path().join("Data/App.journal");
            let mut map = Map::new();
            save(&data, 0, &map).unwrap();
            let (log, handle) = sauve_tests::engine_with_log(&app, ID, EngineOptions::default());
            let mut backups = Vec::new();
            // Every set starts with one backup, so there is one to restore.
            for op in std::iter::once(Op::Backup).chain(ops) {
                match op {
                    Op::Write(k, v) => {
                        let _guard = handle.locks().write(Kind::Data).await;
                        let seq = log.append(format!("{k}={v}").as_bytes()).unwrap();
                        map.insert(k.to_string(), v.to_string());
                        save(&data, seq, &map).unwrap();
                    }
                    Op::Backup => {
                        let report = handle.backup(Trigger::Api).await.unwrap();
                        assert_eq!(report.status, Status::Ok, "{:?}", report.errors);
                        backups.push(report.archives[0].clone());
                    }
                }
            }
            let archive = &backups[pick.index(backups.len())];
            let to = app.root().join("restored");
            let report = sauve_archive::restore(archive, &sauve_archive::RestoreOptions { to: Some(to.clone()), force: false }, &mut sauve_archive::NoProgress).unwrap();
            let (last, mut restored) = load(&to.join("Data/App.4DD")).unwrap();
            assert_eq!(report.manifest.header.last_log_sequence.unwrap_or(0), last, "the data and its cut agree");
            tokio::task::block_in_place(|| handle.integrate_after_restore(&report, ID, Some(&log_path), sauve_engine::Until::End, |r| apply(&mut restored, &r.payload))).unwrap();
            assert_eq!(restored, map);
            handle.shutdown().await;
        });
    }
}

#[test]
fn a_gap_in_the_logs_is_refused_with_1416() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let app = SampleApp::with_settings(&[]).unwrap();
        let log_path = app.path().join("Data/App.journal");
        let (log, handle) = sauve_tests::engine_with_log(&app, ID, EngineOptions::default());
        let first = handle.backup(Trigger::Api).await.unwrap();
        log.append(b"1=1").unwrap();
        handle.backup(Trigger::Api).await.unwrap();
        log.append(b"2=2").unwrap();
        // The log backup between the two backups is lost.
        std::fs::remove_file(app.root().join("Backups/App[0001].4BL")).unwrap();
        let to = app.root().join("restored");
        let report = sauve_archive::restore(
            &first.archives[0],
            &sauve_archive::RestoreOptions {
                to: Some(to),
                force: false,
            },
            &mut sauve_archive::NoProgress,
        )
        .unwrap();
        let err = tokio::task::block_in_place(|| {
            handle.integrate_after_restore(
                &report,
                ID,
                Some(&log_path),
                sauve_engine::Until::End,
                |_| Ok::<(), String>(()),
            )
        })
        .unwrap_err();
        assert_eq!(err.status().code(), 1416, "{err}");
        let entry = sauve_journal::read_all(&app.path().join("Logs"))
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(entry.title, Some(sauve_journal::Title::LogIntegration));
        handle.shutdown().await;
    });
}
