//! Damaged and crafted archives: verify and restore say precisely what is
//! wrong, and restore writes nothing outside its destination.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::Fixture;
use sauve_archive::{ArchiveError, NoProgress, RestoreOptions, restore, verify};
use sauve_settings::Compression;
use sauve_status::Status;

/// An app whose data file spans several 1 MiB segments.
fn segmented(compression: Compression) -> (Fixture, Vec<PathBuf>) {
    let fx = Fixture::new();
    let mut data = vec![0u8; 3_500_000];
    fastrand::Rng::with_seed(0x2545_F491_4F6C_DD1D).fill(&mut data);
    std::fs::write(fx.app().join("Data/App.4DD"), data).unwrap();
    let files = fx.backup(1, compression, 1 << 20);
    assert_eq!(files.len(), 4);
    (fx, files)
}

fn flip(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x55;
    std::fs::write(path, bytes).unwrap();
}

/// Verify and restore both fail with `status` and a message containing `want`,
/// and the restore leaves its destination empty.
fn both_fail(fx: &Fixture, archive: &Path, status: Status, want: &str) {
    let e = verify(archive, &mut NoProgress).unwrap_err();
    assert_eq!(e.status(), status, "verify: {e}");
    assert!(e.to_string().contains(want), "verify: {e}\nwanted: {want}");
    let to = fx.root.path().join("restored");
    let e = restore(
        archive,
        &RestoreOptions {
            to: Some(to.clone()),
            force: false,
        },
        &mut NoProgress,
    )
    .unwrap_err();
    assert_eq!(e.status(), status, "restore: {e}");
    assert!(e.to_string().contains(want), "restore: {e}\nwanted: {want}");
    let left: Vec<_> = std::fs::read_dir(&to)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "restore left {left:?}");
}

#[test]
fn a_flipped_byte_in_any_plain_segment_names_the_damaged_entry() {
    for i in 0..3 {
        let (fx, files) = segmented(Compression::None);
        flip(&files[i], 600_000);
        both_fail(
            &fx,
            &files[0],
            Status::ArchiveCorrupt,
            "entry Data/App.4DD: content does not match its checksum",
        );
    }
}

#[test]
fn a_flipped_byte_in_any_compressed_segment_names_the_segment_or_the_entry() {
    for i in 0..4 {
        let (_fx, files) = segmented(Compression::Fast);
        let len = std::fs::metadata(&files[i]).unwrap().len();
        flip(&files[i], len / 2);
        let segment = files[i].file_name().unwrap().to_string_lossy().into_owned();
        let e = verify(&files[0], &mut NoProgress).unwrap_err();
        assert_eq!(e.status(), Status::ArchiveCorrupt, "{e}");
        let text = e.to_string();
        assert!(
            text.contains(&segment) || text.contains("entry Data/App.4DD"),
            "segment {i}: {text}"
        );
    }
}

#[test]
fn a_truncated_last_segment_is_reported_not_taken_for_a_complete_set() {
    for compression in [Compression::None, Compression::Fast] {
        let (fx, files) = segmented(compression);
        let last = &files[3];
        let len = std::fs::metadata(last).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(last)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        let e = verify(&files[0], &mut NoProgress).unwrap_err();
        assert_eq!(e.status(), Status::ArchiveCorrupt, "{e}");
        both_fail(&fx, &files[1], Status::ArchiveCorrupt, "App[0001-0004].4BK");
    }
}

#[test]
fn a_truncated_middle_segment_is_reported() {
    let (fx, files) = segmented(Compression::None);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&files[1])
        .unwrap()
        .set_len(300_000)
        .unwrap();
    let e = verify(&files[0], &mut NoProgress).unwrap_err();
    assert_eq!(e.status(), Status::ArchiveCorrupt, "{e}");
    let _ = fx;
}

#[test]
fn a_missing_segment_is_named_with_status_1410() {
    let (fx, files) = segmented(Compression::Fast);
    std::fs::remove_file(&files[1]).unwrap();
    both_fail(&fx, &files[0], Status::ArchiveMissing, "segment");
    let e = verify(&files[2], &mut NoProgress).unwrap_err();
    assert!(
        e.to_string().contains("App[0001-0002].4BK not found"),
        "{e}"
    );
}

#[test]
fn a_missing_archive_is_1410() {
    let fx = Fixture::new();
    let e = verify(&fx.destination.join("App[0009].4BK"), &mut NoProgress).unwrap_err();
    assert_eq!(e.status(), Status::ArchiveMissing);
    let e = verify(&fx.destination.join("notes.txt"), &mut NoProgress).unwrap_err();
    assert!(matches!(e, ArchiveError::NotAnArchiveName { .. }), "{e}");
}

#[test]
fn a_missing_manifest_is_reported() {
    let fx = Fixture::new();
    let files = fx.backup(1, Compression::None, 0);
    let bytes = std::fs::read(&files[0]).unwrap();
    let at = bytes
        .windows(19)
        .position(|w| w == b"sauve-manifest.json")
        .unwrap();
    let header_start = at - at % 512;
    let mut cut = bytes[..header_start].to_vec();
    cut.extend_from_slice(&[0; 1024]);
    std::fs::write(&files[0], cut).unwrap();
    both_fail(
        &fx,
        &files[0],
        Status::ArchiveCorrupt,
        "the manifest is missing",
    );
}

#[test]
fn a_file_that_is_not_a_sauve_archive_is_refused() {
    let fx = Fixture::new();
    let fake = fx.destination.join("App[0001].4BK");
    std::fs::write(
        &fake,
        b"4D proprietary backup format, not tar at all".repeat(40),
    )
    .unwrap();
    both_fail(&fx, &fake, Status::ArchiveCorrupt, "is not a sauve archive");
}

/// A plain tar with raw names (the tar crate refuses to write `..`).
fn crafted(entries: &[(&str, u8, &[u8], &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data, link) in entries {
        let mut h = tar::Header::new_ustar();
        {
            let raw = h.as_old_mut();
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(tar::EntryType::new(*kind));
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

#[test]
fn crafted_archives_cannot_write_outside_the_destination() {
    let cases: &[(&str, Vec<u8>)] = &[
        (
            "the path goes up with ..",
            crafted(&[("../evil", b'0', b"x", "")]),
        ),
        (
            "the path goes up with ..",
            crafted(&[("Data/../../evil", b'0', b"x", "")]),
        ),
        (
            "absolute path",
            crafted(&[("/tmp/sauve-evil", b'0', b"x", "")]),
        ),
        (
            "it goes through the symlink Data/link",
            crafted(&[
                ("Data/link", b'2', b"", "/"),
                ("Data/link/evil", b'0', b"x", ""),
            ]),
        ),
        (
            "not accepted",
            crafted(&[("Data/hard", b'1', b"", "/etc/passwd")]),
        ),
        ("not accepted", crafted(&[("Data/dev", b'3', b"", "")])),
        ("backslash", crafted(&[("Data\\..\\evil", b'0', b"x", "")])),
    ];
    for (want, bytes) in cases {
        let root = tempfile::tempdir().unwrap();
        let archive = root.path().join("App[0001].4BK");
        std::fs::write(&archive, bytes).unwrap();
        let to = root.path().join("inner/dest");
        let e = restore(
            &archive,
            &RestoreOptions {
                to: Some(to.clone()),
                force: false,
            },
            &mut NoProgress,
        )
        .unwrap_err();
        assert_eq!(e.status(), Status::ArchiveCorrupt, "{e}");
        assert!(e.to_string().contains(want), "{e}\nwanted: {want}");
        // Nothing anywhere but the (empty) destination and the archive.
        let mut names: Vec<String> = walk(root.path());
        names.sort();
        assert_eq!(names, ["App[0001].4BK", "inner", "inner/dest"], "{want}");
        assert!(!Path::new("/tmp/sauve-evil").exists());
    }
}

#[test]
fn a_preexisting_symlink_in_the_destination_is_not_followed() {
    let fx = Fixture::new();
    let files = fx.backup(1, Compression::Fast, 0);
    let outside = fx.root.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let to = fx.root.path().join("dest");
    std::fs::create_dir_all(&to).unwrap();
    std::os::unix::fs::symlink(&outside, to.join("Data")).unwrap();
    let e = restore(
        &files[0],
        &RestoreOptions {
            to: Some(to.clone()),
            force: true,
        },
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("is a symlink in the destination"),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn a_non_empty_destination_needs_force_which_keeps_other_files() {
    let fx = Fixture::new();
    let files = fx.backup(1, Compression::Fast, 0);
    let to = fx.root.path().join("dest");
    std::fs::create_dir_all(to.join("Data")).unwrap();
    std::fs::write(to.join("keep.txt"), b"mine").unwrap();
    std::fs::write(to.join("Data/App.4DD"), b"old").unwrap();
    let e = restore(
        &files[0],
        &RestoreOptions {
            to: Some(to.clone()),
            force: false,
        },
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(matches!(e, ArchiveError::DestinationNotEmpty(_)), "{e}");
    assert_eq!(std::fs::read(to.join("Data/App.4DD")).unwrap(), b"old");
    restore(
        &files[0],
        &RestoreOptions {
            to: Some(to.clone()),
            force: true,
        },
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(std::fs::read(to.join("keep.txt")).unwrap(), b"mine");
    assert_eq!(
        std::fs::read(to.join("Data/App.4DD")).unwrap(),
        std::fs::read(fx.app().join("Data/App.4DD")).unwrap()
    );
}

#[test]
fn modes_and_times_are_restored_without_setuid() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let fx = Fixture::new();
    let data = fx.app().join("Data/App.4DD");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o4751)).unwrap();
    let t =
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::new(1_600_000_000, 123_456_789);
    std::fs::File::open(&data).unwrap().set_modified(t).unwrap();
    let files = fx.backup(1, Compression::Fast, 0);
    let report = restore(&files[0], &RestoreOptions::default(), &mut NoProgress).unwrap();
    let meta = std::fs::metadata(report.destination.join("Data/App.4DD")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o751);
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec()),
        (1_600_000_000, 123_456_789)
    );
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

/// Replaces, in a plain archive, the first `from` in the manifest by `to`
/// (same length, so every offset stays).
fn edit_manifest(archive: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(archive).unwrap();
    let manifest = bytes
        .windows(b"\"format\"".len())
        .rposition(|w| w == b"\"format\"")
        .expect("the manifest");
    let at = bytes[manifest..]
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("{from} not in the manifest"))
        + manifest;
    bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
    // The index at the end keeps the manifest's hash: made true again, as
    // a crafted set would have it, so that the manifest itself is judged.
    let end = bytes.len() - 64;
    assert_eq!(&bytes[end + 8..end + 16], b"SAUVEIDX");
    let start = u64::from_le_bytes(bytes[end + 16..end + 24].try_into().unwrap()) as usize + 512;
    let len = u64::from_le_bytes(bytes[end + 24..end + 32].try_into().unwrap()) as usize;
    let hash = *blake3::hash(&bytes[start..start + len]).as_bytes();
    bytes[end + 32..].copy_from_slice(&hash);
    std::fs::write(archive, bytes).unwrap();
}

#[test]
fn a_manifest_whose_mode_or_time_disagrees_with_the_tar_header_is_refused() {
    // Found by the mutation property test: a byte changed in the manifest's
    // mode was restored as the file's mode, and verify saw nothing.
    for (from, to) in [
        ("\"mode\": 420", "\"mode\": 438"),
        ("\"mtime\": 1", "\"mtime\": 2"),
    ] {
        let fx = Fixture::new();
        std::fs::write(fx.app().join("Data/App.4DD"), b"data").unwrap();
        let file = fx.app().join("Data/App.4DD");
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000))
            .unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let files = fx.backup(1, Compression::None, 0);
        edit_manifest(&files[0], from, to);
        both_fail(&fx, &files[0], Status::ArchiveCorrupt, "in the manifest");
    }
}
