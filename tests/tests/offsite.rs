//! Off-site copies (behaviour §19) on a real Garage node, through the real `sauve`
//! binary with its secrets in its environment: each committed set and the
//! history reach the bucket in the background, `sauve list|verify|restore
//! s3://…` read them back byte for byte, an unreachable store leaves copies
//! pending and retried at the next run, retention runs per destination, and
//! several apps sharing one bucket prefix never lose each other's entries.

// Test helpers: failing there fails the test that called them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use sauve_store::Store;
use sauve_tests::garage::{
    Garage, age_keygen, bucket, extract_with_age_cli, keys, sauve, sauve_command,
};
use sauve_tests::{SampleApp, ok, random, runtime, size_under};

/// An app whose data file is `Data/<stem>.4DD` holding `data`, with
/// `[destination]` reaching Garage and the given `[[offsite]]` tables.
fn app(
    garage: &Garage,
    stem: &str,
    data: &[u8],
    offsite: &str,
    pairs: &[(&str, &str)],
) -> SampleApp {
    let app = SampleApp::with_settings(pairs).unwrap();
    std::fs::remove_file(app.path().join("Data/App.4DD")).unwrap();
    std::fs::write(app.path().join(format!("Data/{stem}.4DD")), data).unwrap();
    std::fs::create_dir_all(app.path().join("Settings")).unwrap();
    std::fs::write(
        app.path().join("Settings/sauve.toml"),
        format!("[destination]\n{}\n{offsite}", garage.toml_lines()),
    )
    .unwrap();
    app
}

fn local_history(app: &SampleApp) -> serde_json::Value {
    let text = std::fs::read_to_string(app.root().join("Backups/backupHistory.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The `offsite` state of every numbered entry for `url`, in order.
fn states(app: &SampleApp, url: &str) -> Vec<String> {
    let h = local_history(app);
    let (_, entries) = h.as_object().unwrap().iter().next().unwrap();
    entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["backupNumber"].as_u64().unwrap_or(0) > 0)
        .map(|e| {
            e["offsite"][url]["state"]
                .as_str()
                .unwrap_or("none")
                .to_owned()
        })
        .collect()
}

fn same_tree(a: &Path, b: &Path) {
    for entry in std::fs::read_dir(a).unwrap() {
        let entry = entry.unwrap();
        let (pa, pb) = (entry.path(), b.join(entry.file_name()));
        if pa.is_dir() {
            same_tree(&pa, &pb);
        } else {
            assert_eq!(
                std::fs::read(&pa).unwrap(),
                std::fs::read(&pb).unwrap_or_else(|e| panic!("{}: {e}", pb.display())),
                "{}",
                pa.display()
            );
        }
    }
}

#[test]
fn a_segmented_set_is_copied_off_site_and_restores_from_the_bucket_byte_identical() {
    let garage = Garage::start(1);
    let url = "s3://sauve-test/apps/notes/";
    let offsite = format!("[[offsite]]\nurl = \"{url}\"\n\n[[offsite]]\nurl = \"../Offsite/\"\n");
    let data = random(3 << 20);
    let app = app(
        &garage,
        "Notes",
        &data,
        &offsite,
        &[("Advanced/FileSegmentation/DefaultSize", "1")],
    );
    let a = app.arg();
    ok(&sauve(&garage, &["backup", "--app", &a]));

    // The set's segments and the histories are in the bucket; nothing else.
    let rt = runtime();
    let store = bucket(&garage, "apps/notes/");
    let listed = keys(&rt, &store);
    let segments: Vec<&String> = listed
        .iter()
        .filter(|k| k.starts_with("Notes[0001-"))
        .collect();
    assert!(segments.len() >= 3, "{listed:?}");
    assert!(
        listed.iter().any(|k| k == "backupHistory.json"),
        "{listed:?}"
    );
    assert_eq!(
        listed
            .iter()
            .filter(|k| k.starts_with(".sauve/history/"))
            .count(),
        1,
        "{listed:?}"
    );
    // The local folders' copy too, and the state of both in the history.
    assert!(app.root().join("Offsite/backupHistory.json").is_file());
    assert_eq!(states(&app, url), ["copied"]);
    assert_eq!(states(&app, "../Offsite/"), ["copied"]);
    // The bucket's history is 4D's shape, with this app's entry.
    let remote: serde_json::Value =
        serde_json::from_slice(&rt.block_on(store.get("backupHistory.json")).unwrap()).unwrap();
    assert_eq!(remote.as_object().unwrap().len(), 1);

    // Read back from the bucket: list, verify, restore.
    let set = format!("{url}Notes[0001]");
    let listing = ok(&sauve(&garage, &["list", &set, "--app", &a]));
    assert!(listing.contains("Data/Notes.4DD"), "{listing}");
    let verified = ok(&sauve(&garage, &["verify", &set, "--app", &a]));
    assert!(verified.contains("sound"), "{verified}");
    let to = app.root().join("from-bucket");
    let restored = ok(&sauve(
        &garage,
        &[
            "restore",
            &set,
            "--to",
            &to.display().to_string(),
            "--app",
            &a,
        ],
    ));
    assert!(restored.contains("Restored Notes[0001].4BK"), "{restored}");
    assert_eq!(std::fs::read(to.join("Data/Notes.4DD")).unwrap(), data);
    // Byte for byte what a restore of the local set gives.
    let local = app.root().join("from-folder");
    let set_path = app.root().join("Backups/Notes[0001]").display().to_string();
    ok(&sauve(
        &garage,
        &["restore", &set_path, "--to", &local.display().to_string()],
    ));
    same_tree(&local, &to);
    same_tree(&to, &local);

    // A damaged object is named by verify, and restore moves nothing.
    let last = segments.last().unwrap().to_string();
    let mut bytes = rt.block_on(store.get(&last)).unwrap().to_vec();
    bytes[100] ^= 0xff;
    rt.block_on(store.delete(&last)).unwrap();
    rt.block_on(store.put_new(&last, bytes.into())).unwrap();
    let out = sauve(&garage, &["verify", &set, "--app", &a]);
    assert!(!out.status.success());
    let to2 = app.root().join("damaged");
    let out = sauve(
        &garage,
        &[
            "restore",
            &set,
            "--to",
            &to2.display().to_string(),
            "--app",
            &a,
        ],
    );
    assert!(!out.status.success());
    assert!(!to2.join("Data").exists(), "nothing moved into place");

    // A missing segment is named.
    let second = segments[1].to_string();
    rt.block_on(store.delete(&second)).unwrap();
    let out = sauve(&garage, &["verify", &set, "--app", &a]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(
        err.contains("segment s3://sauve-test/apps/notes/Notes[0001-0002].4BK is missing"),
        "{err}"
    );

    // `sauve status` shows where the copies stand.
    let status = ok(&sauve(&garage, &["status", "--app", &a]));
    assert!(
        status.contains(&format!(
            "Off-site:     {url}: 1 copied, 0 pending, 0 failed"
        )),
        "{status}"
    );
}

#[test]
fn an_unreachable_store_leaves_the_copy_pending_and_the_next_run_copies_it() {
    let mut garage = Garage::start(1);
    let url = "s3://sauve-test/p/";
    let offsite = format!("[[offsite]]\nurl = \"{url}\"\nkeep = 2\nretry_after = \"1h\"\n");
    let app = app(&garage, "Notes", b"data", &offsite, &[]);
    let a = app.arg();
    garage.stop_all();
    // The local backup succeeds; its copy fails and says why.
    ok(&sauve(&garage, &["backup", "--app", &a]));
    assert_eq!(states(&app, url), ["failed"]);
    let status = ok(&sauve(&garage, &["status", "--app", &a]));
    assert!(status.contains("0 copied, 0 pending, 1 failed"), "{status}");
    assert!(status.contains("last failure (set 1"), "{status}");
    let json = ok(&sauve(&garage, &["status", "--app", &a, "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let reason = v["offsite"][0]["last_failure"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.contains("s3://sauve-test/p/"), "{reason}");

    // The store is back: the next run copies both sets.
    garage.start_all();
    ok(&sauve(&garage, &["backup", "--app", &a]));
    assert_eq!(states(&app, url), ["copied", "copied"]);
    // Retention per destination: keep = 2 of three sets.
    ok(&sauve(&garage, &["backup", "--app", &a]));
    let rt = runtime();
    let sets: Vec<String> = keys(&rt, &bucket(&garage, "p/"))
        .into_iter()
        .filter(|k| k.ends_with(".4BK"))
        .collect();
    assert_eq!(sets, ["Notes[0002].4BK", "Notes[0003].4BK"]);
}

#[test]
fn three_apps_sharing_one_prefix_keep_every_entry_and_overwrite_nothing() {
    let garage = Garage::start(1);
    let url = "s3://sauve-test/shared/";
    let offsite = format!("[[offsite]]\nurl = \"{url}\"\n");
    let apps: Vec<SampleApp> = (1..=3)
        .map(|i| {
            app(
                &garage,
                &format!("App{i}"),
                format!("data {i}").as_bytes(),
                &offsite,
                &[],
            )
        })
        .collect();
    let garage = Arc::new(garage);
    for _round in 0..2 {
        let handles: Vec<_> = apps
            .iter()
            .map(|a| {
                let (g, arg) = (Arc::clone(&garage), a.arg());
                std::thread::spawn(move || ok(&sauve(&g, &["backup", "--app", &arg])))
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
    let rt = runtime();
    let store = bucket(&garage, "shared/");
    let listed = keys(&rt, &store);
    for i in 1..=3 {
        for n in 1..=2 {
            let key = format!("App{i}[000{n}].4BK");
            assert!(listed.contains(&key), "{key} missing from {listed:?}");
            // Each object is its own app's set, not another's.
            let bytes = rt.block_on(store.get(&key)).unwrap();
            assert!(!bytes.is_empty());
        }
    }
    // Every app's entries are in the rebuilt backupHistory.json, whoever wrote it last.
    let h: serde_json::Value =
        serde_json::from_slice(&rt.block_on(store.get("backupHistory.json")).unwrap()).unwrap();
    let map = h.as_object().unwrap();
    assert_eq!(map.len(), 3, "{h:#}");
    for (_, entries) in map {
        let numbers: Vec<u64> = entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["backupNumber"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, [1, 2]);
    }
}

/// Every object of the bucket is whole: the size of the local file of that name.
fn every_object_whole(rt: &tokio::runtime::Runtime, store: &dyn Store, backups: &Path) {
    for o in rt.block_on(store.list("")).unwrap() {
        if o.key.starts_with('.') || o.key == "backupHistory.json" {
            continue;
        }
        let local = std::fs::metadata(backups.join(&o.key)).unwrap().len();
        assert_eq!(o.size, local, "{} is visible but not whole", o.key);
    }
}

/// `sauve backup --app APP`, killed (SIGKILL) once 16 MiB of its copy are
/// in the store (Garage writes a part's blocks as it arrives): the upload
/// is under way, not completed.
fn backup_killed_mid_copy(garage: &Garage, app: &str) {
    let mut child = sauve_command(&garage.key_id, &garage.secret, &["backup", "--app", app])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let blocks = garage.dir().join("node0/data");
    let started = size_under(&blocks);
    while size_under(&blocks) <= started + (16 << 20) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before its copy was seen under way"
        );
        std::thread::yield_now();
    }
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn a_copy_killed_mid_upload_leaves_no_partial_object_and_the_next_run_finishes_it() {
    let garage = Garage::start(1);
    let url = "s3://sauve-test/k/";
    let offsite = format!("[[offsite]]\nurl = \"{url}\"\n");
    let app = app(
        &garage,
        "Notes",
        &random(160 << 20),
        &offsite,
        &[("Advanced/CompressionRate", "None")],
    );
    let a = app.arg();
    backup_killed_mid_copy(&garage, &a);
    let rt = runtime();
    let store = bucket(&garage, "k/");
    every_object_whole(&rt, &store, &app.root().join("Backups"));
    assert!(
        rt.block_on(store.head("Notes[0001].4BK"))
            .unwrap()
            .is_none(),
        "the interrupted upload is not visible"
    );

    // The next run copies both sets; every object is whole and verifies.
    ok(&sauve(&garage, &["backup", "--app", &a]));
    assert_eq!(states(&app, url), ["copied", "copied"]);
    every_object_whole(&rt, &store, &app.root().join("Backups"));
    for n in ["0001", "0002"] {
        let out = ok(&sauve(
            &garage,
            &["verify", &format!("{url}Notes[{n}]"), "--app", &a],
        ));
        assert!(out.contains("sound"), "{out}");
    }
}

#[test]
fn one_node_of_three_killed_during_a_copy_the_copy_completes_and_verifies() {
    let mut garage = Garage::start(3);
    let url = "s3://sauve-test/cluster/";
    let offsite = format!("[[offsite]]\nurl = \"{url}\"\n");
    let app = app(
        &garage,
        "Notes",
        &random(128 << 20),
        &offsite,
        &[("Advanced/FileSegmentation/DefaultSize", "16")],
    );
    let a = app.arg();
    let (key, secret) = (garage.key_id.clone(), garage.secret.clone());
    let arg = a.clone();
    let backup = std::thread::spawn(move || {
        sauve_command(&key, &secret, &["backup", "--app", &arg])
            .output()
            .unwrap()
    });
    // The third node goes while the copy is under way: parts are arriving.
    let blocks = garage.dir().join("node0/data");
    let started = size_under(&blocks);
    while size_under(&blocks) <= started + (8 << 20) {
        assert!(
            !backup.is_finished(),
            "the backup ended before its copy was seen under way"
        );
        std::thread::yield_now();
    }
    garage.kill_node(2);
    ok(&backup.join().unwrap());
    assert_eq!(states(&app, url), ["copied"]);
    let out = ok(&sauve(
        &garage,
        &["verify", &format!("{url}Notes[0001]"), "--app", &a],
    ));
    assert!(out.contains("sound"), "{out}");
}

#[test]
fn an_encrypted_copy_restores_with_the_age_cli_and_with_identity_and_fails_clearly_without() {
    let garage = Garage::start(1);
    let keys_dir = tempfile::tempdir().unwrap();
    let (key, recipient) = age_keygen(keys_dir.path(), "key.txt");
    let (other, _) = age_keygen(keys_dir.path(), "other.txt");
    let url = "s3://sauve-test/enc/";
    let offsite =
        format!("[[offsite]]\nurl = \"{url}\"\nkeep = 1\nencrypt_to = [\"{recipient}\"]\n");
    let data = random(3 << 20);
    let app = app(
        &garage,
        "Notes",
        &data,
        &offsite,
        &[("Advanced/FileSegmentation/DefaultSize", "1")],
    );
    let a = app.arg();
    ok(&sauve(&garage, &["backup", "--app", &a]));
    assert_eq!(states(&app, url), ["copied"]);
    let rt = runtime();
    let store = bucket(&garage, "enc/");
    let segments: Vec<String> = keys(&rt, &store)
        .into_iter()
        .filter(|k| k.starts_with("Notes[0001-"))
        .collect();
    assert!(segments.len() >= 3, "{segments:?}");
    assert!(
        segments.iter().all(|k| k.ends_with(".4BK.age")),
        "{segments:?}"
    );

    // Without sauve: age -d each segment, in order, | zstd -d | tar -x.
    let work = tempfile::tempdir().unwrap();
    let out_dir = extract_with_age_cli(&rt, &store, &segments, &key, work.path());
    assert_eq!(std::fs::read(out_dir.join("Data/Notes.4DD")).unwrap(), data);

    // With sauve and --identity.
    let set = format!("{url}Notes[0001]");
    let k = key.display().to_string();
    let out = ok(&sauve(
        &garage,
        &["verify", &set, "--app", &a, "--identity", &k],
    ));
    assert!(out.contains("sound"), "{out}");
    let to = app.root().join("decrypted");
    ok(&sauve(
        &garage,
        &[
            "restore",
            &set,
            "--to",
            &to.display().to_string(),
            "--app",
            &a,
            "--identity",
            &k,
        ],
    ));
    assert_eq!(std::fs::read(to.join("Data/Notes.4DD")).unwrap(), data);

    // Without an identity, or with another one: a clear error naming the set.
    let out = sauve(&garage, &["verify", &set, "--app", &a]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(
        err.contains(
            "s3://sauve-test/enc/Notes[0001].4BK is encrypted with age: no identity was given"
        ),
        "{err}"
    );
    let out = sauve(
        &garage,
        &[
            "restore",
            &set,
            "--app",
            &a,
            "--identity",
            &other.display().to_string(),
            "--to",
            &app.root().join("no").display().to_string(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(err.contains("the identities given do not open it"), "{err}");
    assert!(!app.root().join("no/Data").exists());

    // Retention on encrypted sets: keep = 1.
    ok(&sauve(&garage, &["backup", "--app", &a]));
    let left: Vec<String> = keys(&rt, &store)
        .into_iter()
        .filter(|k| k.starts_with("Notes["))
        .collect();
    assert!(
        !left.is_empty() && left.iter().all(|k| k.starts_with("Notes[0002-")),
        "{left:?}"
    );
}

#[test]
fn two_apps_with_the_same_base_in_one_prefix_are_refused_and_nothing_is_overwritten() {
    let garage = Garage::start(1);
    let url = "s3://sauve-test/same/";
    let offsite = format!("[[offsite]]\nurl = \"{url}\"\nkeep = 1\n");
    let first = app(&garage, "Notes", b"first app", &offsite, &[]);
    let second = app(&garage, "Notes", b"second app", &offsite, &[]);
    ok(&sauve(&garage, &["backup", "--app", &first.arg()]));
    assert_eq!(states(&first, url), ["copied"]);
    let rt = runtime();
    let store = bucket(&garage, "same/");
    let before = rt.block_on(store.get("Notes[0001].4BK")).unwrap();

    // The second app's copies are refused, saying why; the first's set stays.
    ok(&sauve(&garage, &["backup", "--app", &second.arg()]));
    ok(&sauve(&garage, &["backup", "--app", &second.arg()]));
    let json = ok(&sauve(
        &garage,
        &["status", "--app", &second.arg(), "--json"],
    ));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["offsite"][0]["copied"], 0, "{v:#}");
    let status = ok(&sauve(&garage, &["status", "--app", &second.arg()]));
    assert!(status.contains("another app"), "{status}");
    assert_eq!(rt.block_on(store.get("Notes[0001].4BK")).unwrap(), before);
    let sets: Vec<String> = keys(&rt, &store)
        .into_iter()
        .filter(|k| k.ends_with(".4BK"))
        .collect();
    assert_eq!(
        sets,
        ["Notes[0001].4BK"],
        "the second app's retention deleted nothing"
    );
}

/// Overwrites 4 KiB of the data file at `at` (and of `data`, its copy)
/// with `seed`, under a new time.
fn change_block(path: &Path, data: &mut [u8], at: usize, seed: u8) {
    use std::os::unix::fs::FileExt;
    data[at..at + 4096].fill(seed);
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.write_all_at(&data[at..at + 4096], at as u64).unwrap();
    let t = f.metadata().unwrap().modified().unwrap();
    f.set_modified(t + std::time::Duration::from_secs(u64::from(seed)))
        .unwrap();
}

#[test]
fn a_chain_copy_killed_mid_upload_is_finished_by_the_next_run_and_restores_from_the_bucket() {
    let mut garage = Garage::start(1);
    let url = "s3://sauve-test/chain/";
    let offsite = format!("[[offsite]]\nurl = \"{url}\"\n\n[incremental]\nfull_every = 5\n");
    let mut data = random(160 << 20);
    let app = app(
        &garage,
        "Notes",
        &data,
        &offsite,
        &[("Advanced/CompressionRate", "None")],
    );
    let a = app.arg();
    let notes = app.path().join("Data/Notes.4DD");
    // Two links of a chain made while the store is down: neither is copied.
    garage.stop_all();
    ok(&sauve(&garage, &["backup", "--app", &a]));
    change_block(&notes, &mut data, 10 * 4096, 1);
    ok(&sauve(&garage, &["backup", "--app", &a]));
    assert_eq!(states(&app, url), ["failed", "failed"]);
    garage.start_all();

    // The third run copies the chain from its full set, and is killed once
    // that copy is under way.
    change_block(&notes, &mut data, 100 << 20, 2);
    backup_killed_mid_copy(&garage, &a);
    let rt = runtime();
    let store = bucket(&garage, "chain/");
    let backups = app.root().join("Backups");
    every_object_whole(&rt, &store, &backups);
    assert!(
        rt.block_on(store.head("Notes[0001].4BK"))
            .unwrap()
            .is_none(),
        "the interrupted upload of the full set is not visible"
    );

    // The next run copies every link, each as the set it is: the daily
    // links stay small in the bucket. (The killed run may have died
    // before committing its own set: then the next one is set 3.)
    change_block(&notes, &mut data, 150 << 20, 3);
    ok(&sauve(&garage, &["backup", "--app", &a]));
    let copied = states(&app, url);
    assert!(copied.len() >= 3, "{copied:?}");
    assert!(copied.iter().all(|s| s == "copied"), "{copied:?}");
    // The newest recorded set (a set the killed run committed but never
    // recorded keeps its number: the next one takes the one after).
    let h = local_history(&app);
    let (_, entries) = h.as_object().unwrap().iter().next().unwrap();
    let numbers: Vec<u32> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["backupNumber"].as_u64())
        .filter(|&n| n > 0)
        .map(|n| n as u32)
        .collect();
    let last = *numbers.last().unwrap();
    every_object_whole(&rt, &store, &backups);
    let size = |n: u32| {
        rt.block_on(store.head(&format!("Notes[{n:04}].4BK")))
            .unwrap()
            .unwrap_or_else(|| panic!("Notes[{n:04}].4BK is not in the bucket"))
            .size
    };
    for &n in numbers.iter().skip(1) {
        assert!(
            size(n) * 20 < size(1),
            "Notes[{n:04}] is {} bytes in the bucket, the full set {}",
            size(n),
            size(1)
        );
    }

    // The newest link restores from the bucket through its chain there,
    // and verifies.
    let newest = format!("{url}Notes[{last:04}]");
    let to = app.root().join("restored");
    ok(&sauve(
        &garage,
        &[
            "restore",
            &newest,
            "--to",
            &to.display().to_string(),
            "--app",
            &a,
        ],
    ));
    let got = std::fs::read(to.join("Data/Notes.4DD")).unwrap();
    if got != data {
        let first = got.iter().zip(&data).position(|(a, b)| a != b);
        panic!("{newest} restores other bytes, the first at {first:?}; sets {numbers:?}");
    }
    let verified = ok(&sauve(&garage, &["verify", &newest, "--app", &a]));
    assert!(verified.contains("sound"), "{verified}");
}
