//! The index at the end of a set (crate::index): a reader finds the
//! manifest without reading the set, a damaged index is a damaged set,
//! and sets written before the index (committed fixtures) still verify,
//! list and restore.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{Fixture, restore_to};
use sauve_archive::{
    ArchiveError, EntryType, MANIFEST_NAME, NoProgress, RestoreOptions, list, restore, verify,
};
use sauve_settings::Compression;

const TAG: &[u8] = b"SAUVEIDX";

/// The set's bytes, its segments end to end.
fn bytes_of(files: &[PathBuf]) -> Vec<u8> {
    files
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect()
}

/// Writes `bytes` back over the segments, each keeping its length.
fn write_back(files: &[PathBuf], bytes: &[u8]) {
    let mut at = 0;
    for f in files {
        let len = std::fs::metadata(f).unwrap().len() as usize;
        std::fs::write(f, &bytes[at..at + len]).unwrap();
        at += len;
    }
    assert_eq!(at, bytes.len());
}

/// The index's `at` field: where the manifest's region starts.
fn index_at(bytes: &[u8]) -> u64 {
    let index = &bytes[bytes.len() - 64..];
    u64::from_le_bytes(index[16..24].try_into().unwrap())
}

fn is_damaged(e: &ArchiveError) -> bool {
    matches!(e.status().code(), 1411 | 1413)
}

/// Checks that `files` (a set just written) ends with an index to its
/// manifest, which starts a region of its own, and that list, verify and
/// restore read it.
fn check_indexed(fx: &Fixture, files: &[PathBuf], compression: Compression, what: &str) {
    let bytes = bytes_of(files);
    let index = &bytes[bytes.len() - 64..];
    // A zstd skippable frame (0x184D2A5E, 56 bytes): `zstd -d` skips it.
    assert_eq!(
        &index[..8],
        &[0x5E, 0x2A, 0x4D, 0x18, 56, 0, 0, 0],
        "{what}"
    );
    assert_eq!(&index[8..16], TAG, "{what}");
    let at = index_at(&bytes) as usize;
    let region = &bytes[at..bytes.len() - 64];
    let head = if compression == Compression::None {
        region[..512].to_vec()
    } else {
        // The manifest starts a zstd frame of its own.
        let mut d = zstd::stream::read::Decoder::new(region).unwrap();
        let mut head = vec![0u8; 512];
        std::io::Read::read_exact(&mut d, &mut head).unwrap();
        head
    };
    assert_eq!(
        &head[..MANIFEST_NAME.len()],
        MANIFEST_NAME.as_bytes(),
        "{what}"
    );
    let (_, m) = list(&files[0]).unwrap();
    assert!(m.indexed, "{what}");
    verify(&files[0], &mut NoProgress).unwrap();
    let to = fx.root.path().join(format!("restored {what}"));
    restore_to(&files[0], &to).unwrap();
    assert_eq!(
        std::fs::read(to.join("Data/App.4DD")).unwrap(),
        std::fs::read(fx.app().join("Data/App.4DD")).unwrap(),
        "{what}"
    );
}

#[test]
fn every_new_set_ends_with_an_index_to_its_manifest_whatever_its_segments() {
    for compression in [Compression::None, Compression::Fast, Compression::Compact] {
        let fx = Fixture::new();
        let whole = fx.backup(1, compression, 0);
        check_indexed(&fx, &whole, compression, &format!("{compression:?}"));
        // The same content cut so that a segment boundary falls inside the
        // index, just before it, and inside the manifest's region.
        let bytes = bytes_of(&whole);
        let (len, at) = (bytes.len() as u64, index_at(&bytes));
        assert!(
            at + 100 < len - 64,
            "a manifest region of more than 100 bytes"
        );
        for (size, cut) in [
            (len - 40, "inside the index"),
            (len - 64, "right before the index"),
            (at + 100, "inside the manifest's region"),
        ] {
            for f in std::fs::read_dir(&fx.destination).unwrap() {
                std::fs::remove_file(f.unwrap().path()).unwrap();
            }
            let files = fx.backup(1, compression, size);
            let lengths: Vec<u64> = files
                .iter()
                .map(|f| std::fs::metadata(f).unwrap().len())
                .collect();
            // The first boundary is where the cut was asked for.
            assert!(lengths.len() >= 2, "{compression:?} {cut}: {lengths:?}");
            assert_eq!(lengths[0], size, "{compression:?} {cut}");
            assert_eq!(lengths.iter().sum::<u64>(), len, "{compression:?} {cut}");
            check_indexed(&fx, &files, compression, &format!("{compression:?}, {cut}"));
        }
    }
}

#[test]
fn list_reads_the_manifest_through_the_index_without_the_stream() {
    for compression in [Compression::None, Compression::Fast] {
        let fx = Fixture::new();
        let files = fx.backup(1, compression, 0);
        let mut bytes = bytes_of(&files);
        // Damage the data file's content, far before the manifest.
        let at = index_at(&bytes) as usize;
        for b in &mut bytes[at / 2..at / 2 + 64] {
            *b ^= 0x5A;
        }
        write_back(&files, &bytes);
        let (_, m) = list(&files[0]).unwrap();
        assert!(m.entries.iter().any(|e| e.path == "Data/App.4DD"));
        // The stream itself is damaged: verify and restore say so.
        let v = verify(&files[0], &mut NoProgress).unwrap_err();
        assert!(is_damaged(&v), "{v}");
        let to = fx.root.path().join("restored");
        let r = restore_to(&files[0], &to).unwrap_err();
        assert!(is_damaged(&r), "{r}");
        assert!(!to.join("Data").exists());
    }
}

#[test]
fn an_index_that_lies_is_a_damaged_set_for_list_verify_and_restore() {
    let fx = Fixture::new();
    let files = fx.backup(1, Compression::Fast, 0);
    let sound = bytes_of(&files);
    let len = sound.len();
    let lies = [
        ("past the end", "points to byte"),
        ("at the start", "points to"),
        ("another hash", "hash is not its own"),
        ("a huge manifest", "accepted: at most"),
    ];
    for (what, says) in lies {
        let mut bytes = sound.clone();
        match what {
            "past the end" => {
                bytes[len - 48..len - 40].copy_from_slice(&(len as u64).to_le_bytes());
            }
            "at the start" => bytes[len - 48..len - 40].copy_from_slice(&0u64.to_le_bytes()),
            "another hash" => bytes[len - 1] ^= 1,
            _ => bytes[len - 40..len - 32].copy_from_slice(&u64::MAX.to_le_bytes()),
        }
        write_back(&files, &bytes);
        let l = list(&files[0]).unwrap_err();
        assert!(
            is_damaged(&l) && l.to_string().contains(says),
            "{what}: {l}"
        );
        assert!(l.to_string().contains("the set's index"), "{what}: {l}");
        let v = verify(&files[0], &mut NoProgress).unwrap_err();
        assert_eq!(v.to_string(), l.to_string(), "{what}");
        let r = restore_to(
            &files[0],
            &fx.root.path().join(format!("r-{}", what.replace(' ', "-"))),
        )
        .unwrap_err();
        assert_eq!(r.to_string(), l.to_string(), "{what}");
    }
}

/// A tar file entry, padded.
fn tar_file(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// A manifest listing one file `name` of `size` bytes and hash `hash`, of
/// a set that ends with an index.
fn manifest_json(name: &str, size: u64, hash: &str) -> Vec<u8> {
    manifest_json_of(name, size, hash, true)
}

/// [`manifest_json`], saying whether the set ends with an index.
fn manifest_json_of(name: &str, size: u64, hash: &str, indexed: bool) -> Vec<u8> {
    let m = sauve_archive::Manifest {
        format: sauve_archive::FORMAT.to_owned(),
        version: sauve_archive::VERSION,
        header: common::header(1),
        ended_at: jiff::Timestamp::UNIX_EPOCH,
        entries: vec![sauve_archive::ManifestEntry {
            kind: sauve_archive::EntryKind::Attachment,
            source: String::new(),
            path: name.to_owned(),
            entry_type: EntryType::File,
            size,
            mode: 0o644,
            mtime: 1_700_000_000_000_000_000,
            blake3: Some(hash.to_owned()),
            target: None,
            store: sauve_archive::Store::Stored,
            inode: None,
            blocks: None,
        }],
        indexed,
        layout: None,
    };
    serde_json::to_vec(&m).unwrap()
}

/// The 64 bytes of an index pointing at `at`, for `json`.
fn index_bytes(at: u64, json: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0x184D_2A5Eu32.to_le_bytes());
    out.extend_from_slice(&56u32.to_le_bytes());
    out.extend_from_slice(TAG);
    out.extend_from_slice(&at.to_le_bytes());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(blake3::hash(json).as_bytes());
    out
}

#[test]
fn an_index_pointing_to_a_decoy_manifest_is_refused() {
    // A file of the set holds a manifest of its own (a tar header and
    // JSON), and the index points to it rather than to the stream's last
    // entry: the decoy is sound, but it is not the set's manifest.
    let dir = tempfile::tempdir().unwrap();
    let decoy_len = 512 + 2048;
    let mut decoy = Vec::new();
    // The decoy declares the decoy file itself, with the hash of zeros.
    let zeros = blake3::hash(&vec![0u8; decoy_len]).to_hex().to_string();
    let fake = manifest_json("decoy", decoy_len as u64, &zeros);
    tar_file(&mut decoy, MANIFEST_NAME, &fake);
    decoy.resize(decoy_len, 0);
    let mut set = Vec::new();
    tar_file(&mut set, "decoy", &decoy);
    let real = manifest_json(
        "decoy",
        decoy_len as u64,
        blake3::hash(&decoy).to_hex().as_ref(),
    );
    let manifest_at = set.len();
    tar_file(&mut set, MANIFEST_NAME, &real);
    set.extend_from_slice(&[0; 1024]);
    // Sound as written, with a true index: it restores.
    let path = dir.path().join("App[0001].4BK");
    let mut honest = set.clone();
    honest.extend_from_slice(&index_bytes(manifest_at as u64, &real));
    std::fs::write(&path, &honest).unwrap();
    verify(&path, &mut NoProgress).unwrap();
    restore_to(&path, &dir.path().join("honest")).unwrap();
    // The index points to the decoy's content.
    let _ = &zeros;
    set.extend_from_slice(&index_bytes(512, &fake));
    std::fs::write(&path, &set).unwrap();
    // Only the end of the archive may follow the manifest an index points
    // to: list, verify and restore all refuse the decoy.
    let says = "points to a manifest that is not the set's last entry";
    let l = list(&path).unwrap_err();
    assert!(is_damaged(&l) && l.to_string().contains(says), "{l}");
    let v = verify(&path, &mut NoProgress).unwrap_err();
    assert!(is_damaged(&v) && v.to_string().contains(says), "{v}");
    let r = restore_to(&path, &dir.path().join("decoyed")).unwrap_err();
    assert!(is_damaged(&r) && r.to_string().contains(says), "{r}");
    assert!(!dir.path().join("decoyed/decoy").exists());
}

/// The data file of the fixtures' app, as `sauve` wrote it before the
/// index (tests/fixtures/before-index/SOURCES.md).
fn fixture_data(changed: bool) -> Vec<u8> {
    let mut data: Vec<u8> = (0..5 * 4096 + 100)
        .map(|i: usize| ((i * 7 + (i / 4096) * 13) % 256) as u8)
        .collect();
    if changed {
        let text = b"CHANGED BLOCK TWO";
        data[2 * 4096 + 10..2 * 4096 + 10 + text.len()].copy_from_slice(text);
    }
    data
}

fn fixtures() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/before-index");
    for f in std::fs::read_dir(&from).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "4BK") {
            std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
        }
    }
    let path = dir.path().to_path_buf();
    (dir, path)
}

#[test]
fn sets_written_before_the_index_still_verify_list_and_restore() {
    let (_dir, bk) = fixtures();
    for name in ["Notes[0001].4BK", "Notes[0002].4BK", "Plain[0001].4BK"] {
        let bytes = std::fs::read(bk.join(name)).unwrap();
        assert!(
            !bytes[bytes.len() - 64..].windows(8).any(|w| w == TAG),
            "{name} is of the format before the index"
        );
    }
    // Notes[0002] is incremental on Notes[0001] (block_kib = 4): one block
    // of the data file changed.
    let report = verify(&bk.join("Notes[0002].4BK"), &mut NoProgress).unwrap();
    assert_eq!(report.chain.len(), 1, "verified with its full set");
    verify(&bk.join("Plain[0001].4BK"), &mut NoProgress).unwrap();
    let (_, m) = list(&bk.join("Notes[0002].4BK")).unwrap();
    assert_eq!(m.header.parent, Some(1.into()));
    let data = m
        .entries
        .iter()
        .find(|e| e.path == "Data/Notes.4DD")
        .unwrap();
    assert_eq!(data.store, sauve_archive::Store::Blocks);
    for (name, base, changed) in [
        ("Notes[0001].4BK", "Notes", false),
        ("Notes[0002].4BK", "Notes", true),
        ("Plain[0001].4BK", "Plain", false),
    ] {
        let to = bk.join(format!("restored-{name}"));
        let report = restore_to(&bk.join(name), &to).unwrap();
        assert_eq!(
            std::fs::read(to.join(format!("Data/{base}.4DD"))).unwrap(),
            fixture_data(changed),
            "{name}"
        );
        assert_eq!(
            std::fs::read_to_string(to.join(format!("Project/{base}.4DProject"))).unwrap(),
            "{\"version\": \"1\", \"fixture\": \"written by sauve before the index\"}\n"
        );
        assert_eq!(
            std::fs::read_link(to.join("Project/current")).unwrap(),
            Path::new(&format!("{base}.4DProject"))
        );
        assert!(
            report
                .manifest
                .entries
                .iter()
                .any(|e| e.entry_type == EntryType::Symlink)
        );
    }
}

#[test]
fn nothing_but_the_index_may_follow_the_end_of_the_archive() {
    // Found in review: a tail of zeros ending in an index was taken for
    // the end, whatever followed it.
    let fx = Fixture::new();
    let files = fx.backup(1, Compression::None, 0);
    let sound = bytes_of(&files);
    let index = sound[sound.len() - 64..].to_vec();
    let mut bytes = sound[..sound.len() - 64].to_vec();
    bytes.extend(std::iter::repeat_n(0u8, 65_473 - 1024));
    bytes.extend_from_slice(&index);
    bytes.extend(std::iter::repeat_n(0xABu8, 1 << 20));
    bytes.extend_from_slice(&index);
    std::fs::write(&files[0], &bytes).unwrap();
    let v = verify(&files[0], &mut NoProgress).unwrap_err();
    assert!(is_damaged(&v), "{v}");
    let r = restore_to(&files[0], &fx.root.path().join("r")).unwrap_err();
    assert!(is_damaged(&r), "{r}");
}

#[test]
fn a_set_that_lost_the_segment_holding_its_index_is_damaged() {
    // Found in review: the last segment held only (part of) the index;
    // without it the set read as one written before the index.
    for compression in [Compression::None, Compression::Fast] {
        let fx = Fixture::new();
        let first = fx.backup(1, compression, 0);
        let whole = bytes_of(&first);
        for f in &first {
            std::fs::remove_file(f).unwrap();
        }
        // The same set again, whose last segment holds the index alone.
        let files = fx.backup(1, compression, whole.len() as u64 - 64);
        assert_eq!(files.len(), 2);
        assert_eq!(std::fs::metadata(&files[1]).unwrap().len(), 64);
        std::fs::remove_file(&files[1]).unwrap();
        let says = "the set's index is missing";
        for e in [
            list(&files[0]).unwrap_err(),
            verify(&files[0], &mut NoProgress).unwrap_err(),
        ] {
            assert!(is_damaged(&e) && e.to_string().contains(says), "{e}");
        }
    }
}

/// A [`sauve_archive::Progress`] that counts the bytes a restore wrote.
#[derive(Default)]
struct Written(u64);

impl sauve_archive::Progress for Written {
    fn advance(&mut self, bytes: u64) {
        self.0 += bytes;
    }
}

#[test]
fn a_compressed_bomb_is_refused_at_its_header_with_or_without_an_index() {
    // A zstd set whose one entry is 64 MiB of zeros (a few KB compressed)
    // while its manifest says 1 byte: nothing of it is written, whether the
    // manifest is found through the index or by a first pass.
    let dir = tempfile::tempdir().unwrap();
    let mut plain = Vec::new();
    let mut h = tar::Header::new_ustar();
    h.set_path("f").unwrap();
    h.set_size(64 << 20);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    plain.extend_from_slice(h.as_bytes());
    plain.resize(plain.len() + (64 << 20), 0);
    let data_end = plain.len();
    for index in [false, true] {
        let json = manifest_json_of("f", 1, &"0".repeat(64), index);
        let mut plain = plain.clone();
        tar_file(&mut plain, MANIFEST_NAME, &json);
        plain.extend_from_slice(&[0; 1024]);
        // Two frames: the data, then the manifest's (as sauve cuts them).
        let mut bytes = zstd::encode_all(&plain[..data_end], 1).unwrap();
        let at = bytes.len() as u64;
        bytes.extend(zstd::encode_all(&plain[data_end..], 1).unwrap());
        if index {
            bytes.extend_from_slice(&index_bytes(at, &json));
        }
        let path = dir.path().join(format!("App{}[0001].4BK", u8::from(index)));
        std::fs::write(&path, &bytes).unwrap();
        let mut written = Written::default();
        let e = restore(
            &path,
            &RestoreOptions {
                to: Some(dir.path().join(format!("r{index}"))),
                force: false,
            },
            &mut written,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("entry f: 67108864 bytes in the archive, 1 in the manifest"),
            "{e}"
        );
        assert_eq!(written.0, 0, "bytes written of the bomb");
    }
}

#[test]
fn a_set_is_verified_before_its_commit_against_what_its_writer_wrote() {
    use std::os::unix::fs::FileExt;
    for compression in [Compression::None, Compression::Fast] {
        let fx = Fixture::new();
        let pending = || {
            let mut w =
                sauve_archive::ArchiveWriter::create(fx.spec(1, compression, 0), common::header(1))
                    .unwrap();
            for e in &fx.content().entries {
                w.append(e, &mut NoProgress).unwrap();
            }
            w.finish(jiff::Timestamp::UNIX_EPOCH).unwrap()
        };
        let sound = pending();
        let checked = sound.verify(&mut NoProgress).unwrap();
        assert!(checked >= 300_000, "{compression:?}: {checked}");
        drop(sound);

        // A byte of the data file's content changed under its .part name.
        let damaged = pending();
        let part = damaged.part_files()[0].clone();
        let f = std::fs::File::options()
            .read(true)
            .write(true)
            .open(&part)
            .unwrap();
        let middle = std::fs::metadata(&part).unwrap().len() / 2;
        let mut byte = [0u8; 1];
        f.read_exact_at(&mut byte, middle).unwrap();
        f.write_all_at(&[byte[0] ^ 0xFF], middle).unwrap();
        let err = damaged.verify(&mut NoProgress).unwrap_err();
        assert!(is_damaged(&err), "{compression:?}: {err}");
        drop(damaged);

        // The index's offset changed: the stream still reads, the set does
        // not end as written.
        let moved = pending();
        let part = moved.part_files()[0].clone();
        let len = std::fs::metadata(&part).unwrap().len();
        let f = std::fs::File::options()
            .read(true)
            .write(true)
            .open(&part)
            .unwrap();
        let mut at = [0u8; 8];
        f.read_exact_at(&mut at, len - 48).unwrap();
        let shifted = (u64::from_le_bytes(at) + 1).to_le_bytes();
        f.write_all_at(&shifted, len - 48).unwrap();
        let err = moved.verify(&mut NoProgress).unwrap_err();
        assert!(
            is_damaged(&err) && err.to_string().contains("the set's index points to"),
            "{compression:?}: {err}"
        );
    }
}
