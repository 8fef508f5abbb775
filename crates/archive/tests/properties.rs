//! Property tests: random trees round-trip at every level and segment size,
//! and no mutation of an archive makes the reader panic or restore anything
//! but the original.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Fixture, names, same_contents, snapshot};
use proptest::prelude::*;
use sauve_archive::{NoProgress, RestoreOptions, restore, verify};
use sauve_settings::Compression;

#[derive(Clone, Debug)]
enum Kind {
    Dir,
    File { len: usize, seed: u8, mode: u32 },
    Link(String),
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}",
        "[a-zA-Z0-9 éü漢字_.-]{1,60}",
        "[a-z]{101,140}",
    ]
    .prop_filter("not . or ..", |n| n != "." && n != "..")
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Dir),
        5 => (prop_oneof![Just(0usize), 1usize..3000, 60_000usize..140_000], any::<u8>(), proptest::sample::select(vec![0o644u32, 0o600, 0o755, 0o444]))
            .prop_map(|(len, seed, mode)| Kind::File { len, seed, mode }),
        1 => prop_oneof![Just("../outside".to_owned()), "[a-z]{1,10}", "[a-z]{101,120}"].prop_map(Kind::Link),
    ]
}

/// Builds the tree under `root`; each node goes in a folder chosen among
/// those made so far (the latest most often, for depth).
fn build(root: &Path, nodes: &[(prop::sample::Index, bool, String, Kind)]) {
    std::fs::create_dir_all(root).unwrap();
    let mut dirs: Vec<PathBuf> = vec![root.to_path_buf()];
    for (parent, deepest, name, kind) in nodes {
        let parent = if *deepest {
            dirs.last().unwrap().clone()
        } else {
            dirs[parent.index(dirs.len())].clone()
        };
        let path = parent.join(name);
        if std::fs::symlink_metadata(&path).is_ok() || path.as_os_str().len() > 3000 {
            continue;
        }
        match kind {
            Kind::Dir => {
                std::fs::create_dir(&path).unwrap();
                dirs.push(path);
            }
            Kind::File { len, seed, mode } => {
                let data: Vec<u8> = (0..*len)
                    .map(|i| {
                        (i as u32).wrapping_mul(31).wrapping_add(u32::from(*seed)) as u8
                            ^ (i >> 7) as u8
                    })
                    .collect();
                std::fs::write(&path, data).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
            }
            Kind::Link(target) => std::os::unix::fs::symlink(target, &path).unwrap(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_round_trip_at_every_level_and_segment_size(
        nodes in proptest::collection::vec((any::<prop::sample::Index>(), any::<bool>(), name(), kind()), 0..30),
        compression in proptest::sample::select(vec![Compression::None, Compression::Fast, Compression::Compact]),
        segment in proptest::sample::select(vec![0u64, 4096, 100_000]),
    ) {
        let mut fx = Fixture::new();
        let docs = fx.root.path().join("docs");
        build(&docs, &nodes);
        fx.settings.general.includes_files = vec![docs.display().to_string()];
        let files = fx.backup(1, compression, segment);
        verify(&files[0], &mut NoProgress).unwrap();
        let report = restore(&files[files.len() - 1], &RestoreOptions::default(), &mut NoProgress).unwrap();
        let restored = report.destination.join("Attachments").join(docs.strip_prefix("/").unwrap());
        prop_assert_eq!(snapshot(&restored), snapshot(&docs));
        prop_assert_eq!(snapshot(&report.destination.join("Data")), snapshot(&fx.app().join("Data")));
    }

    #[test]
    fn random_mutations_of_an_archive_are_refused_or_restore_the_same_contents(
        edits in proptest::collection::vec((any::<bool>(), any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..6),
        compression in proptest::sample::select(vec![Compression::None, Compression::Fast]),
    ) {
        let fx = Fixture::new();
        let files = fx.backup(1, compression, 0);
        let mut bytes = std::fs::read(&files[0]).unwrap();
        for (near_end, at, byte, op) in edits {
            // Half the edits land in the last 4 KiB, in the manifest, the
            // padding and the end marker, where some are harmless: without
            // them, almost no mutated archive would pass and be restored.
            let window = if near_end { bytes.len().min(4096) } else { bytes.len() };
            let i = bytes.len() - window + at.index(window.max(1));
            match op {
                0 if !bytes.is_empty() => bytes[i] ^= byte | 1,
                1 => bytes.truncate(i),
                _ => bytes.insert(i.min(bytes.len()), byte),
            }
        }
        std::fs::write(&files[0], &bytes).unwrap();
        // Verify and restore may fail, never panic, and they agree. Some
        // mutations are harmless (tar padding, the manifest's free text), and
        // no edit at all is among the cases: an archive that passes must
        // restore the app's folders, bytes and links (modes and times aside,
        // see `same_contents`), and one that fails must leave nothing behind.
        let verified = verify(&files[0], &mut NoProgress);
        let to = fx.root.path().join("out");
        let restored = restore(&files[0], &RestoreOptions { to: Some(to.clone()), force: false }, &mut NoProgress);
        prop_assert_eq!(
            verified.is_ok(),
            restored.is_ok(),
            "verify: {:?}\nrestore: {:?}",
            verified.as_ref().err(),
            restored.as_ref().err()
        );
        if restored.is_ok() {
            prop_assert_eq!(names(&to), names(fx.app()));
            for name in names(fx.app()) {
                prop_assert_eq!(same_contents(&to.join(&name), &fx.app().join(&name)), Ok(()), "in {}", name);
            }
        } else {
            let left: Vec<_> = std::fs::read_dir(&to).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
            prop_assert!(left.is_empty(), "{left:?}");
        }
    }
}
