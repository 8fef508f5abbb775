//! Real file systems under a backup: a small tmpfs destination that fills
//! during the copy (-34), a decompression bomb restored onto a small tmpfs
//! (refused before it writes), a destination remounted read-only during a run
//! (-61), and a data folder on a loop-mounted XFS image, whose files are
//! cloned under the data lock (behaviour §21.3), against one on tmpfs, which
//! cannot clone. Each needs `mount` (root, or a user namespace that allows
//! it; XFS also `mkfs.xfs` and a loop device); where mounting is not
//! permitted the test says so and skips.

#![allow(clippy::unwrap_used, clippy::panic)] // Test helpers: failing here fails the test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sauve_tests::SampleApp;
use sauve_tests::browser::sauve_binary;

/// The mount, or the test ends here saying why it could not mount; under
/// `cargo xtask test` (`SAUVE_TESTS_REQUIRE_ALL`), which runs as root, a
/// mount that fails fails the test.
macro_rules! or_skip {
    ($mount:expr) => {
        match $mount {
            Ok(fs) => fs,
            Err(why) => {
                assert!(
                    std::env::var_os("SAUVE_TESTS_REQUIRE_ALL").is_none(),
                    "cannot mount, so this test cannot run: {why}"
                );
                eprintln!("skipped: {why}");
                return;
            }
        }
    };
}

/// A tmpfs mounted by the test, unmounted when dropped.
struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it) at `at`, or
    /// says why it cannot.
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| format!("cannot create {}: {e}", at.display()))?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs was refused: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            at: at.to_path_buf(),
        })
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount -o remount,{options}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// An XFS file system in an image file, loop-mounted by the test and
/// unmounted when dropped.
struct Xfs {
    at: PathBuf,
}

impl Xfs {
    /// Makes a sparse image of `mib` MiB at `image`, an XFS in it (whose
    /// default, reflink, lets files be cloned), and mounts it at `at`; or
    /// says why it cannot.
    fn mount(image: &Path, at: &Path, mib: u64) -> Result<Xfs, String> {
        let run = |cmd: &mut Command, what: &str| -> Result<(), String> {
            let out = cmd.output().map_err(|e| {
                format!("cannot run {what}: {e} (`cargo xtask test` installs xfsprogs)")
            })?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{what} was refused: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        std::fs::File::create(image)
            .and_then(|f| f.set_len(mib << 20))
            .map_err(|e| format!("cannot make {}: {e}", image.display()))?;
        run(Command::new("mkfs.xfs").arg("-q").arg(image), "mkfs.xfs")?;
        std::fs::create_dir_all(at).map_err(|e| format!("cannot create {}: {e}", at.display()))?;
        run(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(image)
                .arg(at),
            "mount -o loop",
        )?;
        Ok(Xfs {
            at: at.to_path_buf(),
        })
    }
}

impl Drop for Xfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.at).status();
    }
}

/// The Backup Journal's last `Data lock` line: the time's explanation.
fn data_lock_how(app: &SampleApp) -> String {
    sauve_journal::read_all(&sauve_journal::journal_dir(app.path()))
        .unwrap()
        .last()
        .and_then(|e| e.data_lock_how.clone())
        .unwrap_or_default()
}

/// Names in `dir` starting with the clone folders' prefix.
fn clone_folders(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(sauve_archive::CLONE_FOLDER_PREFIX))
        .collect()
}

/// Bytes zstd cannot shrink.
fn incompressible(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `sauve backup --json --app APP`: the finished line's status.
fn backup(app: &SampleApp) -> i64 {
    let out = Command::new(sauve_binary())
        .args(["backup", "--json", "--app", &app.arg()])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    finished(&String::from_utf8_lossy(&out.stdout))
}

fn finished(stdout: &str) -> i64 {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "finished")
        .and_then(|v| v["status"].as_i64())
        .unwrap_or_else(|| panic!("no finished line in:\n{stdout}"))
}

/// Names in `dir` that a run must never leave: parts and temporaries.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part") || n.ends_with(".tmp"))
        .collect()
}

fn last_journal_status(app: &SampleApp) -> Option<i32> {
    sauve_journal::read_all(&sauve_journal::journal_dir(app.path()))
        .unwrap()
        .last()
        .and_then(|e| e.status)
}

fn verifies(dest: &Path, number: u32) {
    let set = dest.join(format!("App[{number:04}].4BK"));
    sauve_archive::verify(&set, &mut sauve_archive::NoProgress)
        .unwrap_or_else(|e| panic!("{} does not verify: {e}", set.display()));
}

/// After a run that ended with `status` on a failing destination: no new
/// set under a final name, the earlier set sound, the journal saying it.
fn failed_cleanly(app: &SampleApp, dest: &Path, status: i32) {
    assert!(
        !dest.join("App[0002].4BK").exists(),
        "nothing under a final name"
    );
    verifies(dest, 1);
    assert_eq!(
        last_journal_status(app),
        Some(status),
        "the journal says what happened"
    );
}

#[test]
fn a_tmpfs_destination_that_fills_during_the_copy_ends_with_minus_34_and_keeps_every_earlier_set() {
    let app = SampleApp::with_settings(&[("Advanced/CompressionRate", "Fast")]).unwrap();
    let dest = app.root().join("Backups");
    let fs = or_skip!(Tmpfs::mount(&dest, "4m"));
    // A first set of data that compresses to nearly nothing: the next
    // estimate (content × the last ratio + 10%) fits in 4 MiB, the copy
    // does not.
    std::fs::write(app.path().join("Data/App.4DD"), vec![0u8; 2 << 20]).unwrap();
    assert_eq!(backup(&app), 0);
    std::fs::write(app.path().join("Data/App.4DD"), incompressible(8 << 20)).unwrap();
    assert_eq!(backup(&app), -34, "the disk filled during the copy");
    assert_eq!(leftovers(&dest), Vec::<String>::new(), "no part file stays");
    failed_cleanly(&app, &dest, -34);
    // The fault clears (a larger file system): the next run succeeds.
    fs.remount("size=64m");
    assert_eq!(backup(&app), 0);
    verifies(&dest, 1);
    verifies(&dest, 2);
}

/// A plain set written by hand: each `(name, type, size)` entry's header
/// (its content left as a hole: cheap whatever its size), then a manifest
/// listing `listed`. What a real set never is, for the tests of restore's
/// bounds.
fn crafted_set(path: &Path, stream: &[(&str, tar::EntryType, u64)], listed: serde_json::Value) {
    use std::io::{Seek, SeekFrom, Write};
    let mut out = std::fs::File::create(path).unwrap();
    let header = |name: &str, kind: tar::EntryType, size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        h
    };
    for (name, kind, size) in stream {
        out.write_all(header(name, *kind, *size).as_bytes())
            .unwrap();
        out.seek(SeekFrom::Current(
            i64::try_from(size.div_ceil(512) * 512).unwrap(),
        ))
        .unwrap();
    }
    let manifest = serde_json::json!({
        "format": "sauve-archive", "version": 1, "kind": "backup", "backupNumber": 1,
        "baseName": "App", "structurePath": "", "dataPath": "", "trigger": "manual",
        "startedAt": "2026-01-01T00:00:00Z", "settingsDigest": "", "endedAt": "2026-01-01T00:00:00Z",
        "entries": listed,
    })
    .to_string();
    let kind = tar::EntryType::Regular;
    out.write_all(header("sauve-manifest.json", kind, manifest.len() as u64).as_bytes())
        .unwrap();
    out.write_all(manifest.as_bytes()).unwrap();
    let pad = manifest.len().div_ceil(512) * 512 - manifest.len();
    out.write_all(&vec![0u8; pad + 1024]).unwrap();
}

/// A set whose one entry, `f`, is `size` bytes of zeros in the stream but
/// 1 byte in its manifest (the file is sparse: cheap to make).
fn bomb(path: &Path, size: u64) {
    crafted_set(
        path,
        &[("f", tar::EntryType::Regular, size)],
        serde_json::json!([{"kind": "data", "source": "", "path": "f", "type": "file", "size": 1,
            "mode": 420, "mtime": 1_700_000_000_000_000_000_i64,
            // Any hash: the bomb is refused before its content is compared.
            "blake3": "0".repeat(64)}]),
    );
}

/// A [`sauve_archive::Progress`] that counts the bytes a restore wrote.
#[derive(Default)]
struct Written(u64);

impl sauve_archive::Progress for Written {
    fn advance(&mut self, bytes: u64) {
        self.0 += bytes;
    }
}

/// Restores `set` into `target/restored`: the error, and the bytes written.
fn restore_into(set: &Path, target: &Path) -> (sauve_archive::ArchiveError, u64) {
    let mut written = Written::default();
    let e = sauve_archive::restore(
        set,
        &sauve_archive::RestoreOptions {
            to: Some(target.join("restored")),
            force: false,
        },
        &mut written,
    )
    .unwrap_err();
    (e, written.0)
}

/// The bytes used on the file system holding `path`.
fn used(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=used", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_decompression_bomb_is_refused_before_it_fills_the_restore_target() {
    // Found by hand: a 33 KB set whose manifest declares a 1-byte file but
    // whose entry is 1 GiB wrote about 1 GiB before the mismatch was seen.
    // Larger than the target (256 MiB on 96 MiB) or smaller (32 MiB), with
    // the index sauve writes now or without (a set written before it),
    // the entry is refused at its header: not a byte of it is written.
    let root = tempfile::tempdir().unwrap();
    let target = root.path().join("small");
    let _fs = or_skip!(Tmpfs::mount(&target, "96m"));
    for (size, index) in [(256u64 << 20, false), (32 << 20, false), (32 << 20, true)] {
        let set = root.path().join("App[0001].4BK");
        bomb(&set, size);
        if index {
            append_index(&set);
        }
        let (e, written) = restore_into(&set, &target);
        assert_eq!(e.status().code(), 1411, "{e}");
        assert!(
            e.to_string().contains(&format!(
                "entry f: {size} bytes in the archive, 1 in the manifest"
            )),
            "{e}"
        );
        assert_eq!(written, 0, "bytes restored of a {size}-byte bomb");
        let left = std::fs::read_dir(target.join("restored")).unwrap().count();
        assert_eq!(left, 0, "the staging folder is removed");
        assert!(
            used(&target) < 1 << 20,
            "{} bytes used on the target",
            used(&target)
        );
        std::fs::remove_dir(target.join("restored")).unwrap();
    }
}

/// Appends to a plain crafted set the index sauve writes: where its
/// manifest's header is, the manifest's length and blake3.
fn append_index(set: &Path) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(set)
        .unwrap();
    let len = f.metadata().unwrap().len();
    // The manifest's header: the last block naming it, before the two
    // zero blocks of the end.
    let mut at = len - 1024 - 512;
    let mut block = [0u8; 512];
    loop {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut block).unwrap();
        if block.starts_with(b"sauve-manifest.json") {
            break;
        }
        at -= 512;
    }
    let size = tar::Header::from_byte_slice(&block).size().unwrap();
    let mut json = vec![0u8; size as usize];
    f.read_exact(&mut json).unwrap();
    let mut index = Vec::new();
    index.extend_from_slice(&0x184D_2A5Eu32.to_le_bytes());
    index.extend_from_slice(&56u32.to_le_bytes());
    index.extend_from_slice(b"SAUVEIDX");
    index.extend_from_slice(&at.to_le_bytes());
    index.extend_from_slice(&size.to_le_bytes());
    index.extend_from_slice(blake3::hash(&json).as_bytes());
    f.seek(SeekFrom::End(0)).unwrap();
    f.write_all(&index).unwrap();
}

#[test]
fn a_set_larger_than_the_free_space_is_refused_before_anything_is_written() {
    // Honest, but too large: its manifest declares a 200 MiB file (and a
    // small one before it) for a 96 MiB target. Refused from the manifest,
    // before the small file is written, with or without the index.
    let root = tempfile::tempdir().unwrap();
    let target = root.path().join("small");
    let _fs = or_skip!(Tmpfs::mount(&target, "96m"));
    for index in [false, true] {
        let set = root.path().join("App[0001].4BK");
        let entry = |path: &str, size: u64| {
            serde_json::json!({"kind": "data", "source": "", "path": path, "type": "file",
                "size": size, "mode": 420, "mtime": 1_700_000_000_000_000_000_i64,
                "blake3": "0".repeat(64)})
        };
        crafted_set(
            &set,
            &[
                ("small", tar::EntryType::Regular, 4096),
                ("f", tar::EntryType::Regular, 200 << 20),
            ],
            serde_json::json!([entry("small", 4096), entry("f", 200 << 20)]),
        );
        if index {
            append_index(&set);
        }
        let (e, written) = restore_into(&set, &target);
        assert_eq!(e.status().code(), -34, "{e}");
        let message = e.to_string();
        assert!(
            message.contains("the set lists 2 entries that need 209727488 bytes")
                && message.contains("nothing was restored"),
            "{message}"
        );
        assert_eq!(written, 0);
        assert_eq!(
            std::fs::read_dir(target.join("restored")).unwrap().count(),
            0
        );
        std::fs::remove_dir(target.join("restored")).unwrap();
    }
}

/// A set of `n` empty folders `d0`, `d1`, … (a few KB whatever `n`).
fn many_names(path: &Path, n: usize) {
    let names: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
    let stream: Vec<(&str, tar::EntryType, u64)> = names
        .iter()
        .map(|name| (name.as_str(), tar::EntryType::Directory, 0))
        .collect();
    let listed: Vec<serde_json::Value> = names
        .iter()
        .map(|name| {
            serde_json::json!({"kind": "attachment", "source": "", "path": name,
                "type": "dir", "size": 0, "mode": 420, "mtime": 1_700_000_000_000_000_000_i64})
        })
        .collect();
    crafted_set(path, &stream, serde_json::Value::Array(listed));
}

#[test]
fn a_set_of_more_names_than_the_target_has_inodes_is_refused_before_it_exhausts_them() {
    // Found in review: empty files and folders cost nothing to the space
    // check, so a set of millions of them could exhaust the inodes (or the
    // folder blocks) of the file system holding the target.
    let root = tempfile::tempdir().unwrap();
    let target = root.path().join("small");
    let _fs = or_skip!(Tmpfs::mount(&target, "256m,nr_inodes=400"));
    let set = root.path().join("App[0001].4BK");
    many_names(&set, 1000);
    let e = sauve_archive::restore(
        &set,
        &sauve_archive::RestoreOptions {
            to: Some(target.join("restored")),
            force: false,
        },
        &mut sauve_archive::NoProgress,
    )
    .unwrap_err();
    assert_eq!(e.status().code(), -34, "{e}");
    // Refused from the manifest, before the first folder is created.
    assert!(
        e.to_string().contains("the set lists 1000 entries")
            && e.to_string().contains("names free"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_dir(target.join("restored")).unwrap().count(),
        0
    );
}

#[test]
fn a_destination_remounted_read_only_during_a_run_ends_with_minus_61_and_releases_the_app() {
    let app = SampleApp::with_settings(&[
        ("Advanced/CompressionRate", "None"),
        ("Advanced/CheckArchiveFileDuringBackup", "True"),
    ])
    .unwrap();
    let dest = app.root().join("Backups");
    let fs = or_skip!(Tmpfs::mount(&dest, "256m"));
    assert_eq!(backup(&app), 0);
    // Enough data that verifying it takes a while: the remount lands
    // between the copy and the commit.
    std::fs::write(app.path().join("Data/App.4DD"), incompressible(96 << 20)).unwrap();
    let mut child = Command::new(sauve_binary())
        .args(["backup", "--json", "--app", &app.arg()])
        .env("TZ", "UTC")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut remounted = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if !remounted && line.contains(r#""phase":"verify""#) {
            fs.remount("ro");
            remounted = true;
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    child.wait().unwrap();
    assert!(remounted, "the run never reached its verify phase:\n{seen}");
    assert_eq!(finished(&seen), -61, "{seen}");
    failed_cleanly(&app, &dest, -61);
    // The fault clears. The part files a read-only file system kept from
    // being deleted go at the next run, which the app's release lets run.
    fs.remount("rw");
    assert_eq!(backup(&app), 0);
    assert_eq!(leftovers(&dest), Vec::<String>::new(), "no part file stays");
    verifies(&dest, 2);
}

#[test]
fn a_data_folder_on_xfs_is_cloned_under_the_lock_and_archived_from_the_clones() {
    let app = SampleApp::with_settings(&[("Advanced/CompressionRate", "Fast")]).unwrap();
    let data_dir = app.path().join("Data");
    let _fs = or_skip!(Xfs::mount(&app.root().join("xfs.img"), &data_dir, 512));
    let data = incompressible(24 << 20);
    std::fs::write(data_dir.join("App.4DD"), &data).unwrap();
    // A clone folder a killed run left: removed, and never archived.
    let mut dead = Command::new("true").spawn().unwrap();
    dead.wait().unwrap();
    let stale = data_dir.join(format!(
        "{}{}-1",
        sauve_archive::CLONE_FOLDER_PREFIX,
        dead.id()
    ));
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("0"), b"a clone of an earlier run").unwrap();

    assert_eq!(backup(&app), 0);
    assert_eq!(data_lock_how(&app), "cloned 1 file");
    assert_eq!(
        clone_folders(&data_dir),
        Vec::<String>::new(),
        "clones removed"
    );
    let dest = app.root().join("Backups");
    verifies(&dest, 1);
    let restored = app.root().join("restored");
    sauve_archive::restore(
        &dest.join("App[0001].4BK"),
        &sauve_archive::RestoreOptions {
            to: Some(restored.clone()),
            force: false,
        },
        &mut sauve_archive::NoProgress,
    )
    .unwrap();
    assert!(std::fs::read(restored.join("Data/App.4DD")).unwrap() == data);
    let sources: Vec<String> =
        sauve_archive::verify(&dest.join("App[0001].4BK"), &mut sauve_archive::NoProgress)
            .unwrap()
            .manifest
            .entries
            .into_iter()
            .map(|e| e.source)
            .collect();
    assert!(
        sources.contains(&data_dir.join("App.4DD").display().to_string()),
        "the manifest names the source, not its clone: {sources:?}"
    );
    assert!(
        !sources
            .iter()
            .any(|s| s.contains(sauve_archive::CLONE_FOLDER_PREFIX)),
        "{sources:?}"
    );
}

#[test]
fn a_data_folder_that_cannot_clone_is_copied_under_the_lock_and_the_journal_says_why() {
    let app = SampleApp::with_settings(&[("Advanced/CompressionRate", "Fast")]).unwrap();
    let data_dir = app.path().join("Data");
    let _fs = or_skip!(Tmpfs::mount(&data_dir, "64m"));
    std::fs::write(data_dir.join("App.4DD"), incompressible(1 << 20)).unwrap();
    assert_eq!(backup(&app), 0);
    let how = data_lock_how(&app);
    let expected = format!(
        "copied: the file system of {} cannot clone {} (",
        data_dir.display(),
        data_dir.join("App.4DD").display()
    );
    assert!(how.starts_with(&expected), "{how}");
    assert_eq!(clone_folders(&data_dir), Vec::<String>::new());
    verifies(&app.root().join("Backups"), 1);
}

#[test]
fn a_run_that_fails_after_cloning_removes_its_clones_and_keeps_the_earlier_set() {
    let app = SampleApp::with_settings(&[("Advanced/CompressionRate", "Fast")]).unwrap();
    let data_dir = app.path().join("Data");
    let _xfs = or_skip!(Xfs::mount(&app.root().join("xfs.img"), &data_dir, 512));
    let dest = app.root().join("Backups");
    let fs = or_skip!(Tmpfs::mount(&dest, "4m"));
    // As in the -34 test above: a first set that compresses to nothing,
    // then data that fills the destination while the clones are archived.
    std::fs::write(data_dir.join("App.4DD"), vec![0u8; 2 << 20]).unwrap();
    assert_eq!(backup(&app), 0);
    std::fs::write(data_dir.join("App.4DD"), incompressible(8 << 20)).unwrap();
    assert_eq!(
        backup(&app),
        -34,
        "the disk filled while the clones were archived"
    );
    assert_eq!(data_lock_how(&app), "cloned 1 file");
    assert_eq!(
        clone_folders(&data_dir),
        Vec::<String>::new(),
        "clones removed"
    );
    failed_cleanly(&app, &dest, -34);
    fs.remount("size=64m");
    assert_eq!(backup(&app), 0);
    verifies(&dest, 2);
}
