//! Incremental sets (behaviour §21): chains of random changes restore and verify
//! to the tree at each set's time, a missing or damaged link is named, and
//! unchanged files are not stored again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{Fixture, header, snapshot};
use proptest::prelude::*;
use sauve_archive::{
    ArchiveError, ArchiveWriter, BLOCKS_PREFIX, Incremental, Manifest, NoProgress, RestoreOptions,
    Store, restore, verify,
};
use sauve_settings::Compression;

const BLOCK: u64 = 4096;

#[derive(Clone, Debug)]
enum Op {
    /// Overwrites block `index % blocks` of the data file.
    Block(usize, u8),
    Append(usize, u8),
    Truncate(usize),
    Small(usize, usize, u8),
    Remove(usize),
    /// A new time, the same bytes.
    Touch(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, s)| Op::Block(i, s)),
        1 => (1usize..9000, any::<u8>()).prop_map(|(n, s)| Op::Append(n, s)),
        1 => (0usize..20_000).prop_map(Op::Truncate),
        3 => (0usize..6, 0usize..6000, any::<u8>()).prop_map(|(f, n, s)| Op::Small(f, n, s)),
        1 => (0usize..6).prop_map(Op::Remove),
        1 => (0usize..6).prop_map(Op::Touch),
    ]
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(u32::from(seed) % 31) as u8
        })
        .collect()
}

/// Gives `path` a time no earlier change had: a change is always seen.
fn stamp(path: &Path, clock: &mut u64) {
    *clock += 1;
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + *clock))
        .unwrap();
}

fn apply(app: &Path, op: &Op, clock: &mut u64) {
    use std::os::unix::fs::FileExt;
    let data = app.join("Data/App.4DD");
    let small = |i: usize| app.join(format!("Project/Sources/m{i}.4dm"));
    match op {
        Op::Block(i, seed) => {
            let len = std::fs::metadata(&data).unwrap().len();
            let blocks = len.div_ceil(BLOCK).max(1);
            let at = (*i as u64 % blocks) * BLOCK;
            let n = BLOCK.min(len.saturating_sub(at)).max(1) as usize;
            let f = std::fs::File::options().write(true).open(&data).unwrap();
            f.write_all_at(&bytes(n, *seed), at).unwrap();
            stamp(&data, clock);
        }
        Op::Append(n, seed) => {
            let f = std::fs::File::options().append(true).open(&data).unwrap();
            let len = f.metadata().unwrap().len();
            f.write_all_at(&bytes(*n, *seed), len).unwrap();
            stamp(&data, clock);
        }
        Op::Truncate(n) => {
            let f = std::fs::File::options().write(true).open(&data).unwrap();
            let len = f.metadata().unwrap().len();
            f.set_len((*n as u64).min(len)).unwrap();
            stamp(&data, clock);
        }
        Op::Small(i, n, seed) => {
            std::fs::write(small(*i), bytes(*n, *seed)).unwrap();
            stamp(&small(*i), clock);
        }
        Op::Remove(i) => {
            let _ = std::fs::remove_file(small(*i));
        }
        Op::Touch(i) => {
            if small(*i).exists() {
                stamp(&small(*i), clock);
            }
        }
    }
}

/// Writes set `number` of the fixture, incremental on `parent` when given.
fn backup(
    fx: &Fixture,
    number: u32,
    compression: Compression,
    parent: Option<Arc<Manifest>>,
    verify_unchanged: bool,
) -> Arc<Manifest> {
    backup_with(
        fx,
        number,
        (compression, Some(BLOCK)),
        parent,
        verify_unchanged,
    )
}

/// [`backup`] with blocks of `block_size` (`None`: chosen per file).
fn backup_with(
    fx: &Fixture,
    number: u32,
    (compression, block_size): (Compression, Option<u64>),
    parent: Option<Arc<Manifest>>,
    verify_unchanged: bool,
) -> Arc<Manifest> {
    backup_in_segments(
        fx,
        number,
        (compression, block_size, 0),
        parent,
        verify_unchanged,
    )
}

/// [`backup_with`], in segments of `segment` bytes (0: one file).
fn backup_in_segments(
    fx: &Fixture,
    number: u32,
    (compression, block_size, segment): (Compression, Option<u64>, u64),
    parent: Option<Arc<Manifest>>,
    verify_unchanged: bool,
) -> Arc<Manifest> {
    let content = fx.content();
    let mut w =
        ArchiveWriter::create(fx.spec(number, compression, segment), header(number)).unwrap();
    w.set_incremental(Incremental {
        block_size,
        verify_unchanged,
        parent,
    })
    .unwrap();
    for e in &content.entries {
        w.append(e, &mut NoProgress).unwrap();
    }
    let pending = w.finish(jiff::Timestamp::UNIX_EPOCH).unwrap();
    let manifest = Arc::new(pending.manifest().clone());
    pending.commit().unwrap();
    manifest
}

type Tree = BTreeMap<String, (char, Vec<u8>, u32, i64)>;

/// The manifest's entry of `path`.
fn entry<'a>(manifest: &'a Manifest, path: &str) -> &'a sauve_archive::ManifestEntry {
    manifest
        .entries
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("{path} is not in set {}", manifest.header.backup_number))
}

/// The app's tree as a restore gives it back (folder times aside, as
/// `common::same_contents` leaves them).
fn tree(app: &Path) -> Tree {
    let mut t = snapshot(app);
    for v in t.values_mut() {
        if v.0 == 'd' {
            v.3 = 0;
        }
    }
    t
}

/// The first difference between two trees, short.
fn differs(got: &Tree, want: &Tree) -> Option<String> {
    for (path, w) in want {
        match got.get(path) {
            None => return Some(format!("{path} is missing")),
            Some(g) if g != w => {
                let at = g.1.iter().zip(&w.1).position(|(a, b)| a != b);
                return Some(format!(
                    "{path}: {:?} {} bytes mode {:o} time {}, want {:?} {} bytes mode {:o} time {}; first byte difference at {at:?}",
                    g.0,
                    g.1.len(),
                    g.2,
                    g.3,
                    w.0,
                    w.1.len(),
                    w.2,
                    w.3
                ));
            }
            Some(_) => {}
        }
    }
    got.keys()
        .find(|p| !want.contains_key(*p))
        .map(|p| format!("{p} should not be there"))
}

fn set_path(fx: &Fixture, number: u32) -> std::path::PathBuf {
    fx.destination.join(format!("App[{number:04}].4BK"))
}

fn restored(fx: &Fixture, number: u32) -> Result<std::path::PathBuf, ArchiveError> {
    let to = fx.root.path().join(format!("restored-{number}"));
    let options = RestoreOptions {
        to: Some(to.clone()),
        force: false,
    };
    // By its name alone: one file, or its segments.
    let set = fx.destination.join(format!("App[{number:04}]"));
    restore(&set, &options, &mut NoProgress)?;
    Ok(to)
}

/// The initial data file: 12 blocks and a half.
fn start(fx: &Fixture, clock: &mut u64) {
    let data = fx.app().join("Data/App.4DD");
    std::fs::write(&data, bytes(12 * BLOCK as usize + 2048, 1)).unwrap();
    stamp(&data, clock);
    for i in 0..3 {
        let p = fx.app().join(format!("Project/Sources/m{i}.4dm"));
        std::fs::write(&p, bytes(100 * (i + 1), i as u8)).unwrap();
        stamp(&p, clock);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Any set of a chain of random changes restores to the tree at its
    /// time and verifies with its chain; a full set every `full_every`.
    #[test]
    fn every_set_of_a_chain_restores_to_the_tree_at_its_time(
        steps in proptest::collection::vec(proptest::collection::vec(op(), 0..5), 2..7),
        full_every in 2u32..5,
        fast in any::<bool>(),
        auto in any::<bool>(),
    ) {
        let fx = Fixture::new();
        let mut clock = 0;
        start(&fx, &mut clock);
        let compression = if fast { Compression::Fast } else { Compression::None };
        let mut wants = Vec::new();
        let mut parent: Option<Arc<Manifest>> = None;
        for (k, ops) in steps.iter().enumerate() {
            let number = k as u32 + 1;
            for op in ops {
                apply(fx.app(), op, &mut clock);
            }
            let base = if (k as u32).is_multiple_of(full_every) { None } else { parent.clone() };
            let blocks = if auto { None } else { Some(BLOCK) };
            let m = backup_with(&fx, number, (compression, blocks), base.clone(), false);
            prop_assert_eq!(m.header.parent, base.as_ref().map(|b| b.header.backup_number));
            parent = Some(m);
            wants.push(tree(fx.app()));
        }
        for (k, want) in wants.iter().enumerate() {
            let number = k as u32 + 1;
            let to = restored(&fx, number).unwrap();
            let diff = differs(&tree(&to), want);
            prop_assert!(diff.is_none(), "set {}: {:?}", number, diff);
            let report = verify(&set_path(&fx, number), &mut NoProgress).unwrap();
            prop_assert!(report.chain.len() < full_every as usize);
            let located = sauve_archive::SetFiles::locate(&set_path(&fx, number)).unwrap();
            prop_assert_eq!(
                sauve_archive::parent_of(&located).unwrap(),
                report.manifest.header.parent
            );
        }
    }
}

#[test]
fn unchanged_files_are_not_stored_again_and_changed_blocks_only() {
    let fx = Fixture::new();
    let mut clock = 0;
    start(&fx, &mut clock);
    let full = backup(&fx, 1, Compression::None, None, false);
    let data = entry(&full, "Data/App.4DD");
    assert_eq!(data.store, Store::Stored);
    assert_eq!(data.blocks.as_ref().unwrap().hashes.len(), 13);
    apply(fx.app(), &Op::Block(4, 9), &mut clock);
    let inc = backup(&fx, 2, Compression::None, Some(full), false);
    let store = |path: &str| {
        let e = entry(&inc, path);
        (e.store, e.blocks.as_ref().map(|b| b.changed.clone()))
    };
    assert_eq!(store("Data/App.4DD"), (Store::Blocks, Some(vec![4])));
    assert_eq!(store("Project/Sources/m1.4dm").0, Store::Same);
    assert_eq!(inc.header.parent, Some(1.into()));
    assert_eq!(inc.header.chain, Some(1));
    let located = |n| sauve_archive::SetFiles::locate(&set_path(&fx, n)).unwrap();
    assert_eq!(
        sauve_archive::parent_of(&located(2)).unwrap(),
        Some(1.into())
    );
    assert_eq!(sauve_archive::parent_of(&located(1)).unwrap(), None);
    // GNU tar reads an incremental set too: its own files whole, the
    // changed blocks under .sauve-blocks/.
    let out = std::process::Command::new("tar")
        .arg("-tf")
        .arg(set_path(&fx, 2))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(listing.contains(".sauve-blocks/Data/App.4DD"), "{listing}");
    assert!(!listing.contains("Project/Sources/m1.4dm"), "{listing}");
    // The set holds one block, not the file.
    let size = std::fs::metadata(set_path(&fx, 2)).unwrap().len();
    let full_size = std::fs::metadata(set_path(&fx, 1)).unwrap().len();
    assert!(size * 4 < full_size, "{size} against {full_size}");
    let to = restored(&fx, 2).unwrap();
    assert_eq!(differs(&tree(&to), &tree(fx.app())), None);
}

#[test]
fn a_new_block_size_stores_a_changed_file_whole_and_keeps_unchanged_ones_same() {
    let fx = Fixture::new();
    let mut clock = 0;
    start(&fx, &mut clock);
    let full = backup(&fx, 1, Compression::None, None, false);
    apply(fx.app(), &Op::Block(2, 5), &mut clock);
    // The parent's blocks are 4 KiB, this set's 8 KiB: nothing to compare
    // block by block, so the changed data file is stored whole, with blocks
    // of the new size; the unchanged small files stay `same`.
    let inc = backup_with(
        &fx,
        2,
        (Compression::None, Some(2 * BLOCK)),
        Some(full),
        false,
    );
    let data = entry(&inc, "Data/App.4DD");
    assert_eq!(data.store, Store::Stored);
    assert_eq!(data.blocks.as_ref().unwrap().block_size, 2 * BLOCK);
    assert_eq!(entry(&inc, "Project/Sources/m1.4dm").store, Store::Same);
    let to = restored(&fx, 2).unwrap();
    assert_eq!(differs(&tree(&to), &tree(fx.app())), None);
    // The next set, at 8 KiB again, compares block by block.
    apply(fx.app(), &Op::Block(3, 6), &mut clock);
    let next = backup_with(
        &fx,
        3,
        (Compression::None, Some(2 * BLOCK)),
        Some(inc),
        false,
    );
    assert_eq!(entry(&next, "Data/App.4DD").store, Store::Blocks);
    let to = restored(&fx, 3).unwrap();
    assert_eq!(differs(&tree(&to), &tree(fx.app())), None);
}

#[test]
fn verify_unchanged_catches_a_change_that_kept_size_time_and_inode() {
    use std::os::unix::fs::FileExt;
    let fx = Fixture::new();
    let mut clock = 0;
    start(&fx, &mut clock);
    let path = fx.app().join("Project/Sources/m0.4dm");
    let full = backup(&fx, 1, Compression::None, None, true);
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.write_all_at(b"XY", 10).unwrap();
    f.set_modified(before).unwrap();
    drop(f);
    let inc = backup(&fx, 2, Compression::None, Some(full.clone()), true);
    assert_eq!(entry(&inc, "Project/Sources/m0.4dm").store, Store::Stored);
    let to = restored(&fx, 2).unwrap();
    assert_eq!(differs(&tree(&to), &tree(fx.app())), None);
    // Without the setting, size, time and inode decide: the change is not seen.
    let blind = backup(&fx, 3, Compression::None, Some(full), false);
    assert_eq!(entry(&blind, "Project/Sources/m0.4dm").store, Store::Same);
}

#[test]
fn a_missing_link_is_named_and_a_damaged_one_refused() {
    let fx = Fixture::new();
    let mut clock = 0;
    start(&fx, &mut clock);
    let mut parent = None;
    for number in 1..=3 {
        apply(
            fx.app(),
            &Op::Block(number as usize, number as u8),
            &mut clock,
        );
        apply(fx.app(), &Op::Small(number as usize, 50, 3), &mut clock);
        parent = Some(backup(&fx, number, Compression::Fast, parent, false));
    }
    // Damage set 1 (the full set) in its data file's bytes: restoring set 3
    // needs blocks of it.
    let one = set_path(&fx, 1);
    let saved = std::fs::read(&one).unwrap();
    let mut bad = saved.clone();
    let at = bad.len() / 3;
    bad[at] ^= 0x55;
    std::fs::write(&one, &bad).unwrap();
    let err = restored(&fx, 3).unwrap_err();
    assert_eq!(err.status(), sauve_status::Status::ArchiveCorrupt, "{err}");
    // The damaged link is named, not only the set asked for.
    assert!(err.to_string().contains("App[0001]"), "{err}");
    assert!(verify(&set_path(&fx, 3), &mut NoProgress).is_err());
    std::fs::write(&one, &saved).unwrap();
    // Set 2 gone: restoring or verifying set 3 names it (1410).
    let two = set_path(&fx, 2);
    std::fs::rename(&two, fx.root.path().join("aside")).unwrap();
    let err = restored(&fx, 3).unwrap_err();
    assert_eq!(err.status(), sauve_status::Status::ArchiveMissing);
    let text = err.to_string();
    assert!(
        text.contains("App[0003]") && text.contains("App[0002]"),
        "{text}"
    );
    let err = verify(&set_path(&fx, 3), &mut NoProgress).unwrap_err();
    assert_eq!(err.status(), sauve_status::Status::ArchiveMissing);
    // Nothing was left in the destinations tried.
    assert!(
        !fx.root.path().join("restored-3").exists()
            || std::fs::read_dir(fx.root.path().join("restored-3"))
                .unwrap()
                .next()
                .is_none()
    );
    // Set 1, the full set, still restores alone.
    std::fs::rename(fx.root.path().join("aside"), &two).unwrap();
    assert!(restored(&fx, 1).is_ok());
}

/// Where the content of `path` starts in an uncompressed set: after its
/// tar header (the one at a 512-byte boundary that names it).
fn content_offset(set: &[u8], path: &str) -> usize {
    let mut name = path.as_bytes().to_vec();
    name.push(0);
    (0..set.len())
        .step_by(512)
        .find(|&at| set[at..].starts_with(&name))
        .map(|at| at + 512)
        .unwrap_or_else(|| panic!("no tar header names {path}"))
}

/// A restore of a chain checks the file it puts together, hashed in the
/// pass over the older set that holds it whole: a wrong byte that the
/// restore would use fails it (1411) naming the file, and nothing is
/// placed; a wrong byte in a block that a newer set replaced is not used,
/// so the restore gives the right file, while `verify` of the chain still
/// refuses the damaged link.
#[test]
fn a_wrong_byte_in_an_older_link_fails_a_restore_only_where_the_restore_uses_it() {
    let fx = Fixture::new();
    let mut clock = 0;
    start(&fx, &mut clock);
    let full = backup(&fx, 1, Compression::None, None, false);
    apply(fx.app(), &Op::Block(2, 7), &mut clock);
    let inc = backup(&fx, 2, Compression::None, Some(full), false);
    assert_eq!(
        entry(&inc, "Data/App.4DD")
            .blocks
            .as_ref()
            .map(|b| b.changed.clone()),
        Some(vec![2])
    );
    let want = tree(fx.app());
    let one = set_path(&fx, 1);
    let saved = std::fs::read(&one).unwrap();
    let data = content_offset(&saved, "Data/App.4DD");

    // Block 5 of set 1 is the file's: a byte changed there fails the restore.
    let mut bad = saved.clone();
    bad[data + 5 * BLOCK as usize + 100] ^= 0x55;
    std::fs::write(&one, &bad).unwrap();
    let err = restored(&fx, 2).unwrap_err();
    assert_eq!(err.status(), sauve_status::Status::ArchiveCorrupt, "{err}");
    assert!(err.to_string().contains("Data/App.4DD"), "{err}");
    // The sets its blocks came from are named, newest first.
    assert!(err.to_string().contains("App[0002], App[0001]"), "{err}");
    let left = fx.root.path().join("restored-2");
    assert!(
        !left.join("Data/App.4DD").exists(),
        "nothing is placed after a failed check"
    );
    let _ = std::fs::remove_dir_all(&left);

    // Block 2 of set 1 was replaced by set 2's: a byte changed there is not
    // used, and the restore gives the file as it was backed up.
    let mut bad = saved.clone();
    bad[data + 2 * BLOCK as usize + 100] ^= 0x55;
    std::fs::write(&one, &bad).unwrap();
    let to = restored(&fx, 2).unwrap();
    assert_eq!(differs(&tree(&to), &want), None);
    let err = verify(&set_path(&fx, 2), &mut NoProgress).unwrap_err();
    assert!(err.to_string().contains("App[0001]"), "{err}");
}

/// A chain of four uncompressed sets, each changing two blocks of the data
/// file: the restore of set 4 reads sets 3 and 2 on one thread while it
/// reads set 1, the full set, on another.
fn chain_of_four(fx: &Fixture, clock: &mut u64) -> Tree {
    start(fx, clock);
    let mut parent = None;
    for number in 1..=4u32 {
        if number > 1 {
            apply(fx.app(), &Op::Block(number as usize, number as u8), clock);
            apply(
                fx.app(),
                &Op::Block(number as usize + 5, number as u8),
                clock,
            );
        }
        parent = Some(backup(fx, number, Compression::None, parent, false));
    }
    tree(fx.app())
}

/// Damage in a set read beside the full set (on the other thread) fails
/// the restore with that damage, naming the set, not with the stop it
/// causes on the full set's thread; nothing is placed. Undamaged, the same
/// chain restores to the tree at its time.
#[test]
fn damage_in_a_set_read_beside_the_full_one_is_the_error_and_names_the_set() {
    let fx = Fixture::new();
    let mut clock = 0;
    let want = chain_of_four(&fx, &mut clock);
    let to = restored(&fx, 4).unwrap();
    assert_eq!(differs(&tree(&to), &want), None);
    std::fs::remove_dir_all(&to).unwrap();

    let three = set_path(&fx, 3);
    let saved = std::fs::read(&three).unwrap();
    // Set 3's blocks entry of the data file: a head, then blocks 3 and 8,
    // neither replaced by set 4. Its last bytes are block 8's.
    let at = content_offset(&saved, &format!("{BLOCKS_PREFIX}Data/App.4DD"));
    let mut bad = saved.clone();
    bad[at + 2 * BLOCK as usize - 100] ^= 0x55;
    std::fs::write(&three, &bad).unwrap();
    let err = restored(&fx, 4).unwrap_err();
    assert_eq!(err.status(), sauve_status::Status::ArchiveCorrupt, "{err}");
    assert!(err.to_string().contains("App[0003]"), "{err}");
    let left = fx.root.path().join("restored-4");
    assert!(!left.join("Data/App.4DD").exists(), "nothing is placed");
}

/// Stops after `after` bytes of content were reported, counting them.
struct StopAfter {
    after: u64,
    seen: u64,
}

impl sauve_archive::Progress for StopAfter {
    fn advance(&mut self, bytes: u64) {
        self.seen += bytes;
    }

    fn is_stopped(&self) -> bool {
        self.seen >= self.after
    }
}

/// A stop asked while the older sets of a chain are read stops both
/// threads reading them: the restore ends stopped (1406) and places
/// nothing; every byte the other thread wrote was reported.
#[test]
fn a_stop_while_the_older_sets_are_read_stops_both_readers_and_places_nothing() {
    let fx = Fixture::new();
    let mut clock = 0;
    chain_of_four(&fx, &mut clock);
    let to = fx.root.path().join("stopped");
    let options = RestoreOptions {
        to: Some(to.clone()),
        force: false,
    };
    // Set 4 gives two blocks; the stop comes once more than those are written.
    let mut progress = StopAfter {
        after: 3 * BLOCK,
        seen: 0,
    };
    let err = restore(&set_path(&fx, 4), &options, &mut progress).unwrap_err();
    assert!(matches!(err, ArchiveError::Stopped), "{err}");
    assert_eq!(err.status(), sauve_status::Status::Stopped, "{err}");
    assert!(progress.seen >= 3 * BLOCK);
    assert!(
        !to.exists() || std::fs::read_dir(&to).unwrap().next().is_none(),
        "nothing is placed"
    );
    // Without the stop, everything is reported.
    let mut counted = StopAfter {
        after: u64::MAX,
        seen: 0,
    };
    let report = restore(&set_path(&fx, 4), &options, &mut counted).unwrap();
    assert_eq!(counted.seen, report.bytes);
}

/// `len` bytes no compressor shrinks.
fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    fastrand::Rng::with_seed(seed).fill(&mut data);
    data
}

/// The pairs of the set's layout: (tar, set) offsets of each frame's
/// start, then of the manifest's region.
fn frame_pairs(manifest: &Manifest) -> Vec<(u64, u64)> {
    let layout = manifest
        .layout
        .as_ref()
        .expect("a set written now has a layout");
    layout.frames.0.chunks(2).map(|w| (w[0], w[1])).collect()
}

/// Where the content of `path` starts in the set's tar stream.
fn content_at(manifest: &Manifest, path: &str) -> u64 {
    let i = manifest
        .entries
        .iter()
        .position(|e| e.path == path)
        .unwrap();
    manifest.layout.as_ref().unwrap().content.0[i]
}

/// Changes a byte of set `number` that holds byte `tar` of its stream: the
/// byte itself in a stream that is not compressed, else one in the middle
/// of the zstd frame that holds it.
fn damage(fx: &Fixture, number: u32, manifest: &Manifest, tar: u64) {
    let pairs = frame_pairs(manifest);
    let at = if pairs.len() == 1 {
        tar
    } else {
        let f = pairs.partition_point(|p| p.0 <= tar) - 1;
        (pairs[f].1 + pairs[f + 1].1) / 2
    };
    // The set's file, or the segment that holds the byte.
    let mut segments: Vec<_> = std::fs::read_dir(&fx.destination)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with(&format!("App[{number:04}")) && name.ends_with(".4BK")
        })
        .collect();
    segments.sort();
    let mut at = at;
    for path in segments {
        let mut bytes = std::fs::read(&path).unwrap();
        if at < bytes.len() as u64 {
            bytes[at as usize] ^= 0x55;
            std::fs::write(&path, bytes).unwrap();
            return;
        }
        at -= bytes.len() as u64;
    }
    panic!("set {number} is shorter than its layout says");
}

/// A set's layout says where each file's content and each frame start:
/// the stream holds each file's bytes there, and each frame declares the
/// bytes up to the next one.
#[test]
fn a_set_s_layout_points_at_each_file_s_content_and_each_frame() {
    for compression in [Compression::Fast, Compression::None] {
        let fx = Fixture::new();
        std::fs::write(fx.app().join("Data/App.4DD"), random(9 << 20, 1)).unwrap();
        let m = backup_with(&fx, 1, (compression, Some(64 << 10)), None, false);
        let set = std::fs::read(set_path(&fx, 1)).unwrap();
        let stream = match compression {
            Compression::None => set.clone(),
            _ => zstd::decode_all(&set[..]).unwrap(),
        };
        let pairs = frame_pairs(&m);
        for e in m.entries.iter().filter(|e| e.size > 0) {
            let at = content_at(&m, &e.path) as usize;
            let want = std::fs::read(fx.app().join(&e.path)).unwrap();
            assert!(
                stream[at..].starts_with(&want),
                "{compression:?} {}",
                e.path
            );
        }
        match compression {
            Compression::None => assert_eq!(pairs.len(), 1),
            _ => {
                assert!(
                    pairs.len() > 3,
                    "9 MiB of data is at least 3 frames: {pairs:?}"
                );
                for w in pairs.windows(2) {
                    let frame = &set[w[0].1 as usize..w[1].1 as usize];
                    let declared = zstd::zstd_safe::get_frame_content_size(frame).unwrap();
                    assert_eq!(declared, Some(w[1].0 - w[0].0), "{pairs:?}");
                }
            }
        }
        // The manifest's region is where the set's index says.
        let (tar, at) = *pairs.last().unwrap();
        assert_eq!(&stream[tar as usize + 257..tar as usize + 262], b"ustar");
        assert!(at < set.len() as u64);
    }
}

/// An older set of a chain is read only where the restore takes from it:
/// a damaged frame (or tar header) holding only a file that newer sets
/// replaced does not stop the restore, from a folder or from a store,
/// while `verify`, which reads every byte, refuses the set; damage where
/// the restore takes bytes fails it, naming the set, and places nothing.
#[test]
fn an_older_set_is_read_only_where_the_restore_takes_from_it() {
    const KIB64: u64 = 64 << 10;
    // One file, or segments of 5 MiB (frames across two of them).
    for (compression, segment) in [
        (Compression::Fast, 0),
        (Compression::None, 0),
        (Compression::Fast, 5 << 20),
    ] {
        let fx = Fixture::new();
        let mut clock = 0;
        let data = fx.app().join("Data/App.4DD");
        let big = "Project/Sources/big.bin";
        let write = |path: &Path, bytes: Vec<u8>, clock: &mut u64| {
            std::fs::write(path, bytes).unwrap();
            stamp(path, clock);
        };
        let change_block = |index: u64, seed: u64, clock: &mut u64| {
            use std::os::unix::fs::FileExt;
            let f = std::fs::File::options().write(true).open(&data).unwrap();
            f.write_all_at(&random(KIB64 as usize, seed), index * KIB64)
                .unwrap();
            stamp(&data, clock);
        };
        write(&data, random(8 << 20, 1), &mut clock);
        write(&fx.app().join(big), random(16 << 20, 2), &mut clock);
        let settings = (compression, Some(KIB64), segment);
        let full = backup_in_segments(&fx, 1, settings, None, false);
        change_block(3, 3, &mut clock);
        change_block(100, 4, &mut clock);
        write(&fx.app().join(big), random(16 << 20, 5), &mut clock);
        let second = backup_in_segments(&fx, 2, settings, Some(Arc::clone(&full)), false);
        let blocks = entry(&second, "Data/App.4DD").blocks.as_ref().unwrap();
        assert_eq!(blocks.changed, vec![3, 100]);
        assert_eq!(entry(&second, big).store, Store::Stored);
        change_block(50, 6, &mut clock);
        write(&fx.app().join(big), random(16 << 20, 7), &mut clock);
        backup_in_segments(&fx, 3, settings, Some(Arc::clone(&second)), false);
        let want = tree(fx.app());

        // The big file of sets 1 and 2, which set 3 replaced: in the
        // middle of its content (a frame wholly its own), and for a stream
        // that is not compressed, its tar header too.
        for (number, m) in [(1, &full), (2, &second)] {
            let at = content_at(m, big);
            damage(&fx, number, m, at + (8 << 20));
            if compression == Compression::None {
                damage(&fx, number, m, at - 400);
            }
        }
        let to = restored(&fx, 3).unwrap();
        assert_eq!(
            differs(&tree(&to), &want),
            None,
            "{compression:?} {segment}"
        );
        std::fs::remove_dir_all(&to).unwrap();
        let (runtime, store) = folder_store(&fx);
        let newest = remote(&runtime, &store, "App[0003]").unwrap();
        let from_store = fx.root.path().join("from-store");
        let options = RestoreOptions {
            to: Some(from_store.clone()),
            force: false,
        };
        sauve_archive::restore_remote(&newest, &options, &mut NoProgress).unwrap();
        assert_eq!(differs(&tree(&from_store), &want), None, "{compression:?}");
        let err = verify(&fx.destination.join("App[0003]"), &mut NoProgress).unwrap_err();
        assert!(err.to_string().contains("App[0002]"), "{err}");

        // Block 70 of the data file, which set 1 gives.
        damage(
            &fx,
            1,
            &full,
            content_at(&full, "Data/App.4DD") + 70 * KIB64 + 100,
        );
        let err = restored(&fx, 3).unwrap_err();
        assert_eq!(err.status(), sauve_status::Status::ArchiveCorrupt, "{err}");
        assert!(
            err.to_string().contains("App[0001]"),
            "{compression:?}: {err}"
        );
        let left = fx.root.path().join("restored-3");
        assert!(!left.join("Data/App.4DD").exists(), "nothing is placed");
    }
}

/// Set `number` written again with `layout` in its manifest (and an index
/// to that manifest, in a frame of its own where the set is compressed): a
/// set that lies about where its content is, and is otherwise sound.
fn relayout(fx: &Fixture, number: u32, manifest: &Manifest, layout: sauve_archive::Layout) {
    let path = set_path(fx, number);
    let bytes = std::fs::read(&path).unwrap();
    let compressed = manifest.layout.as_ref().unwrap().compressed;
    let at = frame_pairs(manifest).last().unwrap().1 as usize;
    let lying = Manifest {
        layout: Some(layout),
        ..manifest.clone()
    };
    let json = serde_json::to_vec_pretty(&lying).unwrap();
    let mut out = bytes[..at].to_vec();
    let mut h = tar::Header::new_ustar();
    h.set_path(sauve_archive::MANIFEST_NAME).unwrap();
    h.set_size(json.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(&json);
    // The tar stream's end, counted from the manifest's header (at a
    // 512-byte boundary of the stream).
    out.resize(at + (out.len() - at).next_multiple_of(512) + 1024, 0);
    if compressed {
        let tail = zstd::bulk::compress(&out[at..], 1).unwrap();
        out.truncate(at);
        out.extend_from_slice(&tail);
    }
    out.extend_from_slice(&0x184D_2A5Eu32.to_le_bytes());
    out.extend_from_slice(&56u32.to_le_bytes());
    out.extend_from_slice(b"SAUVEIDX");
    out.extend_from_slice(&(at as u64).to_le_bytes());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(blake3::hash(&json).as_bytes());
    std::fs::write(&path, out).unwrap();
}

/// How a layout lies: an entry's content offset moved, dropped or put at
/// the end of what offsets can say, every offset of the frames moved, one
/// of them moved, pairs added, the stream said compressed or not.
#[derive(Clone, Debug)]
enum Lie {
    Content(usize, i64),
    NoContent(usize),
    Far(usize, u64),
    Manifest(i64),
    Frame(usize, i64),
    Pair(u64, u64),
    Compressed,
}

fn lie() -> impl Strategy<Value = Lie> {
    prop_oneof![
        3 => (any::<usize>(), -5000i64..5000).prop_map(|(i, d)| Lie::Content(i, d)),
        1 => any::<usize>().prop_map(Lie::NoContent),
        1 => (any::<usize>(), 0u64..(2 << 20)).prop_map(|(i, d)| Lie::Far(i, d)),
        1 => (-5000i64..5000).prop_map(Lie::Manifest),
        2 => (any::<usize>(), -5000i64..5000).prop_map(|(i, d)| Lie::Frame(i, d)),
        1 => (0u64..200_000, 0u64..200_000).prop_map(|(t, s)| Lie::Pair(t, s)),
        1 => Just(Lie::Compressed),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// An older set whose layout lies (and is otherwise sound) never makes
    /// a restore place a wrong byte: the restore gives the tree at the
    /// newest set's time, or refuses the chain (1411) and places nothing.
    #[test]
    fn a_layout_that_lies_never_places_a_wrong_byte(
        lies in proptest::collection::vec(lie(), 0..4),
        fast in any::<bool>(),
    ) {
        let fx = Fixture::new();
        let mut clock = 0;
        start(&fx, &mut clock);
        // Past a frame or two of its own, so that a restore reads the set
        // the newer one builds on in ranges.
        let (big, len) = (fx.app().join("Project/Sources/big.bin"), 9 << 20);
        std::fs::write(&big, bytes(len, 9)).unwrap();
        stamp(&big, &mut clock);
        let compression = if fast { Compression::Fast } else { Compression::None };
        let full = backup(&fx, 1, compression, None, false);
        apply(fx.app(), &Op::Block(2, 7), &mut clock);
        apply(fx.app(), &Op::Small(1, 500, 8), &mut clock);
        std::fs::write(&big, bytes(len, 10)).unwrap();
        stamp(&big, &mut clock);
        backup(&fx, 2, compression, Some(Arc::clone(&full)), false);
        let want = tree(fx.app());
        let mut layout = full.layout.clone().unwrap();
        for lie in &lies {
            let words = &mut layout.content.0;
            match *lie {
                Lie::Content(i, d) => {
                    let n = words.len();
                    words[i % n] = words[i % n].wrapping_add_signed(d);
                }
                Lie::NoContent(i) => {
                    let n = words.len();
                    words[i % n] = sauve_archive::Layout::NONE;
                }
                Lie::Far(i, d) => {
                    let n = words.len();
                    words[i % n] = u64::MAX - 1 - d;
                }
                Lie::Manifest(d) => {
                    for w in &mut layout.frames.0 {
                        *w = w.wrapping_add_signed(d);
                    }
                }
                Lie::Frame(i, d) => {
                    let n = layout.frames.0.len();
                    let w = &mut layout.frames.0[i % n];
                    *w = w.wrapping_add_signed(d);
                }
                Lie::Pair(t, s) => layout.frames.0.extend([t, s]),
                Lie::Compressed => layout.compressed = !layout.compressed,
            }
        }
        let lied = Some(&layout) != full.layout.as_ref();
        relayout(&fx, 1, &full, layout);
        // Verify holds every set to its layout.
        let verified = verify(&set_path(&fx, 2), &mut NoProgress);
        prop_assert_eq!(verified.is_err(), lied, "{:?}", verified.err().map(|e| e.to_string()));
        match restored(&fx, 2) {
            Ok(to) => prop_assert_eq!(differs(&tree(&to), &want), None),
            Err(e) => {
                prop_assert_eq!(e.status(), sauve_status::Status::ArchiveCorrupt, "{}", e);
                let left = fx.root.path().join("restored-2");
                prop_assert!(!left.join("Data/App.4DD").exists(), "nothing is placed");
            }
        }
    }
}

/// The data file of the chain written before compact block hashes
/// (tests/fixtures/hex-hashes/SOURCES.md), after `changes` of its sets.
fn hex_fixture_data(changes: usize) -> Vec<u8> {
    let mut data: Vec<u8> = (0..5 * 4096 + 100)
        .map(|i: usize| ((i * 7 + (i / 4096) * 13) % 256) as u8)
        .collect();
    for (at, text) in [
        (8202, &b"CHANGED BLOCK TWO"[..]),
        (16_389, &b"CHANGED BLOCK FOUR"[..]),
    ]
    .into_iter()
    .take(changes)
    {
        data[at..at + text.len()].copy_from_slice(text);
    }
    data
}

#[test]
fn a_chain_of_hex_block_hashes_still_reads_and_a_new_set_builds_on_it() {
    use sauve_archive::{EntryKind, EntryType, SetKind, SetSpec, SourceEntry, list};
    let dir = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hex-hashes");
    for n in 1..=3 {
        let name = format!("Notes[000{n}].4BK");
        std::fs::copy(from.join(&name), dir.path().join(&name)).unwrap();
    }
    let set = |n: u32| dir.path().join(format!("Notes[000{n}].4BK"));
    for n in 1..=3u32 {
        let (_, m) = list(&set(n)).unwrap();
        assert_eq!(m.version, 1, "the fixture is of the format before");
        let report = verify(&set(n), &mut NoProgress).unwrap();
        assert_eq!(report.chain.len(), n as usize - 1);
        let to = dir.path().join(format!("restored-{n}"));
        common::restore_to(&set(n), &to).unwrap();
        assert_eq!(
            std::fs::read(to.join("Data/Notes.4DD")).unwrap(),
            hex_fixture_data(n as usize - 1),
            "Notes[000{n}]"
        );
    }
    // A set written today on the newest of them: its block size is the
    // parent's (4 KiB, not the 16 KiB it would choose), and the old hex
    // hashes compare with the new ones, so only the block changed since is
    // stored.
    let (_, parent) = list(&set(3)).unwrap();
    let parent_data = entry(&parent, "Data/Notes.4DD").clone();
    let mut data = hex_fixture_data(2);
    data[4096..4100].copy_from_slice(b"ONE!");
    let source = dir.path().join("Notes.4DD");
    std::fs::write(&source, &data).unwrap();
    let spec = SetSpec {
        destination: dir.path().to_path_buf(),
        base: "Notes".to_owned(),
        number: 4.into(),
        kind: SetKind::Backup,
        compression: Compression::Fast,
        segment_size: 0,
        threads: 2,
    };
    let mut w = ArchiveWriter::create(
        spec,
        sauve_archive::ManifestHeader::new(
            SetKind::Backup,
            4,
            "Notes",
            jiff::Timestamp::UNIX_EPOCH,
        ),
    )
    .unwrap();
    w.set_incremental(Incremental {
        block_size: None,
        verify_unchanged: false,
        parent: Some(Arc::new(parent)),
    })
    .unwrap();
    w.append(
        &SourceEntry {
            kind: EntryKind::Data,
            source: source.clone(),
            path: "Data/Notes.4DD".to_owned(),
            entry_type: EntryType::File,
            size: data.len() as u64,
            mode: 0o600,
            mtime: 1,
            target: None,
        },
        &mut NoProgress,
    )
    .unwrap();
    let pending = w.finish(jiff::Timestamp::UNIX_EPOCH).unwrap();
    let made = entry(pending.manifest(), "Data/Notes.4DD").clone();
    assert_eq!(pending.manifest().version, sauve_archive::VERSION);
    pending.commit().unwrap();
    assert_eq!(made.store, Store::Blocks);
    let (blocks, old) = (made.blocks.unwrap(), parent_data.blocks.unwrap());
    assert_eq!(blocks.block_size, 4096);
    assert_eq!(blocks.changed, [1]);
    for i in [0, 2, 3, 4, 5] {
        assert_eq!(blocks.hashes.get(i), old.hashes.get(i), "block {i}");
    }
    let report = verify(&set(4), &mut NoProgress).unwrap();
    assert_eq!(report.chain.len(), 3);
    let to = dir.path().join("restored-4");
    common::restore_to(&set(4), &to).unwrap();
    assert_eq!(std::fs::read(to.join("Data/Notes.4DD")).unwrap(), data);
}

/// A store over the fixture's destination folder, with a runtime for its
/// reads (the folder store is sauve's own `Store`, as a bucket is).
fn folder_store(fx: &Fixture) -> (tokio::runtime::Runtime, Arc<dyn sauve_store::Store>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store: Arc<dyn sauve_store::Store> =
        Arc::new(sauve_store::FolderStore::new(fx.destination.clone()));
    (runtime, store)
}

fn remote(
    runtime: &tokio::runtime::Runtime,
    store: &Arc<dyn sauve_store::Store>,
    name: &str,
) -> Result<sauve_archive::RemoteSet, ArchiveError> {
    runtime.block_on(sauve_archive::RemoteSet::locate(
        Arc::clone(store),
        runtime.handle().clone(),
        name,
        None,
    ))
}

#[test]
fn a_chain_in_a_store_restores_verifies_and_lists_from_the_store() {
    let fx = Fixture::new();
    let mut clock = 0;
    start(&fx, &mut clock);
    let full = backup(&fx, 1, Compression::Fast, None, false);
    apply(fx.app(), &Op::Block(1, 3), &mut clock);
    apply(fx.app(), &Op::Small(2, 300, 4), &mut clock);
    let second = backup(&fx, 2, Compression::Fast, Some(full), false);
    apply(fx.app(), &Op::Block(3, 9), &mut clock);
    backup(&fx, 3, Compression::Fast, Some(second), false);
    let want = tree(fx.app());
    let (runtime, store) = folder_store(&fx);
    let newest = remote(&runtime, &store, "App[0003]").unwrap();

    let to = fx.root.path().join("from-store");
    let report = sauve_archive::restore_remote(
        &newest,
        &RestoreOptions {
            to: Some(to.clone()),
            force: false,
        },
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(report.manifest.header.chain, Some(2));
    assert_eq!(differs(&tree(&to), &want), None);

    let verified = sauve_archive::verify_remote(&newest, &mut NoProgress).unwrap();
    assert_eq!(verified.chain.len(), 2, "verified with its chain");
    // Alone: what a backup reads back after writing it.
    let alone = sauve_archive::verify_remote_set(&newest, &mut NoProgress).unwrap();
    assert!(alone.chain.is_empty());

    let (_, _, origins) = sauve_archive::list_origins_remote(&newest).unwrap();
    let data = &origins["Data/App.4DD"];
    assert_eq!(
        data[0].0,
        sauve_archive::BackupNumber::new(3),
        "its changed block from App[0003]: {data:?}"
    );
    assert_eq!(
        data.last().unwrap().0,
        sauve_archive::BackupNumber::new(1),
        "the rest from the full set: {data:?}"
    );

    // The full set gone from the store: the link is named, nothing is restored.
    std::fs::remove_file(set_path(&fx, 1)).unwrap();
    let to = fx.root.path().join("broken");
    let err = sauve_archive::restore_remote(
        &newest,
        &RestoreOptions {
            to: Some(to.clone()),
            force: false,
        },
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(
        matches!(err, ArchiveError::Missing { .. }) && err.to_string().contains("App[0001]"),
        "{err}"
    );
    assert!(!to.join("Data/App.4DD").exists());
    let err = sauve_archive::verify_remote(&newest, &mut NoProgress).unwrap_err();
    assert!(err.to_string().contains("App[0001]"), "{err}");
}

#[test]
fn the_parent_is_read_from_the_head_of_a_set_s_first_bytes() {
    let fx = Fixture::new();
    let mut clock = 0;
    start(&fx, &mut clock);
    let full = backup(&fx, 1, Compression::Fast, None, false);
    // 4 MiB that do not compress: the head is cut inside the first frame.
    let noise: Vec<u8> = {
        let mut rng = fastrand::Rng::with_seed(5);
        std::iter::repeat_with(|| rng.u8(..))
            .take(4 << 20)
            .collect()
    };
    std::fs::write(fx.app().join("Data/App.4DD"), &noise).unwrap();
    stamp(&fx.app().join("Data/App.4DD"), &mut clock);
    backup(&fx, 2, Compression::Fast, Some(full), false);
    assert!(std::fs::metadata(set_path(&fx, 2)).unwrap().len() > 1 << 20);
    backup(&fx, 3, Compression::None, None, false);
    let head = |n: u32| {
        let bytes = std::fs::read(set_path(&fx, n)).unwrap();
        bytes[..bytes.len().min(256 << 10)].to_vec()
    };
    let kind = sauve_archive::SetKind::Backup;
    assert_eq!(
        sauve_archive::parent_in_head(kind, "App[0001]", &head(1)).unwrap(),
        None
    );
    assert_eq!(
        sauve_archive::parent_in_head(kind, "App[0002]", &head(2)).unwrap(),
        Some(1.into())
    );
    assert_eq!(
        sauve_archive::parent_in_head(kind, "App[0003]", &head(3)).unwrap(),
        None
    );
    let err = sauve_archive::parent_in_head(kind, "junk", &[7u8; 600]).unwrap_err();
    assert!(err.to_string().contains("junk"), "{err}");
}
