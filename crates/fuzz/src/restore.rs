//! `restore`: sets built from the fuzzer's bytes (names from a small
//! alphabet of `a`, `b`, `l`, `..`, `.`, empty and `/` segments; files,
//! folders and symlinks pointing in and out; manifests that list an entry
//! as it is, not at all, twice, with another type or another size; sets
//! without the index at the end, with a true one, or with one that points
//! anywhere or holds another hash; with no layout, a true one, or one
//! that moves an entry's content or the manifest), restored into a folder inside a
//! sandbox that holds decoys. Whatever the
//! set, nothing outside the target changes, and verify's verdict is
//! restore's (SECURITY.md, "Archives").

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use sauve_archive::{
    EntryKind, EntryType, Layout, MANIFEST_NAME, Manifest, ManifestEntry, ManifestHeader,
    NoProgress, RestoreOptions, SetKind, Store, Words,
};

const SEGMENTS: [&str; 8] = ["a", "b", "l", "..", ".", "", "c", "a"];
const MTIME: u64 = 1_700_000_000;

/// One entry of the stream, and how the manifest lists it.
struct Planned {
    name: String,
    kind: EntryType,
    data: Vec<u8>,
    target: String,
    /// 0..5: as it is, twice, another type, another size, left out.
    lie: u8,
}

fn plan(data: &[u8], sandbox: &Path) -> Vec<Planned> {
    let targets = [
        "a".to_owned(),
        "../../decoy".to_owned(),
        "../../decoys".to_owned(),
        sandbox.join("decoy").display().to_string(),
        sandbox.join("decoys").display().to_string(),
        ".".to_owned(),
    ];
    data.chunks_exact(4)
        .take(8)
        .map(|c| {
            let depth = usize::from(c[0] & 0b11) + 1;
            let mut parts: Vec<&str> = (0..depth)
                .map(|i| SEGMENTS[usize::from((c[0] >> (2 + i)) & 0b111) % SEGMENTS.len()])
                .collect();
            if c[1] & 0x80 != 0 {
                parts.insert(0, "");
            }
            let kind = match c[1] % 3 {
                0 => EntryType::File,
                1 => EntryType::Dir,
                _ => EntryType::Symlink,
            };
            Planned {
                name: parts.join("/"),
                kind,
                data: vec![c[2]; usize::from(c[2] % 4)],
                target: if kind == EntryType::Symlink {
                    targets[usize::from(c[3]) % targets.len()].clone()
                } else {
                    String::new()
                },
                lie: (c[3] >> 4) % 5,
            }
        })
        .collect()
}

fn listed(p: &Planned) -> ManifestEntry {
    let file = p.kind == EntryType::File;
    ManifestEntry {
        kind: EntryKind::Attachment,
        source: String::new(),
        path: p.name.clone(),
        entry_type: p.kind,
        size: if file { p.data.len() as u64 } else { 0 },
        mode: 0o644,
        mtime: i64::try_from(MTIME * 1_000_000_000).unwrap_or(0),
        blake3: file.then(|| blake3::hash(&p.data).to_hex().to_string()),
        target: (p.kind == EntryType::Symlink).then(|| p.target.clone()),
        store: Store::Stored,
        inode: None,
        blocks: None,
    }
}

fn header(name: &str, kind: u8, size: u64, link: &str) -> Option<tar::Header> {
    let mut h = tar::Header::new_ustar();
    let raw = h.as_old_mut();
    raw.name
        .get_mut(..name.len())?
        .copy_from_slice(name.as_bytes());
    raw.linkname
        .get_mut(..link.len())?
        .copy_from_slice(link.as_bytes());
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(MTIME);
    h.set_cksum();
    Some(h)
}

fn pad(out: &mut Vec<u8>) {
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// Appends the index sauve writes (a skippable frame naming where the
/// manifest's header is, its length and blake3), true or not as the
/// fuzzer's `how` says: 0 none, 1 true, 2 pointing to block `at`, 3 with
/// another hash.
fn index(out: &mut Vec<u8>, (manifest_at, json): (usize, &[u8]), how: u8, at: u8) {
    let at = match how % 4 {
        0 => return,
        2 => usize::from(at) * 512 % out.len().max(1),
        _ => manifest_at,
    };
    let mut hash = *blake3::hash(json).as_bytes();
    if how % 4 == 3 {
        hash[0] ^= 1;
    }
    out.extend_from_slice(&0x184D_2A5Eu32.to_le_bytes());
    out.extend_from_slice(&56u32.to_le_bytes());
    out.extend_from_slice(b"SAUVEIDX");
    out.extend_from_slice(&(at as u64).to_le_bytes());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&hash);
}

/// The set's bytes: a plain tar of the planned entries, then the manifest,
/// then an index as `(how, at)` say ([`index`]).
fn set_bytes(planned: &[Planned], (how, at): (u8, u8)) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut entries = Vec::new();
    let mut offsets = std::collections::HashMap::new();
    for p in planned {
        let (kind, size) = match p.kind {
            EntryType::File => (b'0', p.data.len() as u64),
            EntryType::Dir => (b'5', 0),
            EntryType::Symlink => (b'2', 0),
        };
        out.extend_from_slice(header(&p.name, kind, size, &p.target)?.as_bytes());
        if p.kind == EntryType::File {
            offsets.insert(p.name.clone(), out.len() as u64);
        }
        out.extend_from_slice(&p.data);
        pad(&mut out);
        let e = listed(p);
        let other = |k| {
            if k == EntryType::File {
                EntryType::Dir
            } else {
                EntryType::File
            }
        };
        match p.lie {
            0 => entries.push(e),
            1 => {
                entries.push(e.clone());
                entries.push(ManifestEntry {
                    entry_type: other(e.entry_type),
                    ..e
                });
            }
            2 => entries.push(ManifestEntry {
                entry_type: other(e.entry_type),
                ..e
            }),
            3 => entries.push(ManifestEntry {
                size: e.size + 1,
                ..e
            }),
            _ => {}
        }
    }
    let header_at = out.len() as u64;
    // A layout (`how` & 8), true, or moved by a tar block (16: an entry's
    // content; 32: the manifest's header).
    let layout = (how & 8 != 0).then(|| {
        let moved = |on: bool| if on { 512 } else { 0 };
        let content = entries
            .iter()
            .enumerate()
            .map(
                |(i, e): (usize, &ManifestEntry)| match offsets.get(&e.path) {
                    Some(&at) if e.entry_type == EntryType::File => {
                        at + moved(i == 0 && how & 16 != 0)
                    }
                    _ => Layout::NONE,
                },
            )
            .collect();
        let at = header_at + moved(how & 32 != 0);
        Layout {
            content: Words(content),
            compressed: false,
            frames: Words(vec![at, at]),
        }
    });
    let manifest = Manifest {
        format: sauve_archive::FORMAT.to_owned(),
        version: sauve_archive::VERSION,
        header: ManifestHeader::new(SetKind::Backup, 1, "App", jiff::Timestamp::UNIX_EPOCH),
        ended_at: jiff::Timestamp::UNIX_EPOCH,
        entries,
        // Whatever the index at the end says (`how`), the manifest may
        // claim one or not.
        indexed: how & 4 != 0,
        layout,
    };
    let json = serde_json::to_vec(&manifest).ok()?;
    let manifest_at = out.len();
    out.extend_from_slice(header(MANIFEST_NAME, b'0', json.len() as u64, "")?.as_bytes());
    out.extend_from_slice(&json);
    pad(&mut out);
    out.extend_from_slice(&[0; 1024]);
    index(&mut out, (manifest_at, &json), how, at);
    Some(out)
}

/// Everything under `root` but `skip`: path → (type, content, mode, mtime);
/// the time of `skip`'s folder is left out (creating `skip` sets it).
fn survey(root: &Path, skip: &Path) -> BTreeMap<String, (char, Vec<u8>, u32, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for p in entries.flatten().map(|e| e.path()) {
            if p == skip {
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let key = p.strip_prefix(root).unwrap_or(&p).display().to_string();
            let (t, content) = if m.file_type().is_symlink() {
                let target = std::fs::read_link(&p).unwrap_or_default();
                ('l', target.into_os_string().into_encoded_bytes())
            } else if m.is_dir() {
                stack.push(p.clone());
                ('d', Vec::new())
            } else {
                ('f', std::fs::read(&p).unwrap_or_default())
            };
            let mtime = if Some(p.as_path()) == skip.parent() {
                0
            } else {
                m.mtime()
            };
            out.insert(key, (t, content, m.mode() & 0o7777, mtime));
        }
    }
    out
}

/// The target's body.
pub fn restore(data: &[u8]) {
    let Ok(dir) = tempfile::Builder::new().prefix("sauve-fuzz-").tempdir() else {
        return;
    };
    let sandbox = dir.path();
    let decoys = (|| -> std::io::Result<()> {
        std::fs::write(sandbox.join("decoy"), b"decoy")?;
        std::fs::set_permissions(
            sandbox.join("decoy"),
            std::fs::Permissions::from_mode(0o600),
        )?;
        std::fs::create_dir(sandbox.join("decoys"))?;
        std::fs::write(sandbox.join("decoys/inner"), b"inner")?;
        std::os::unix::fs::symlink(sandbox.join("decoy"), sandbox.join("decoy-link"))?;
        std::fs::create_dir(sandbox.join("work"))
    })();
    // The 8 planned entries take the first 32 bytes; the next two say
    // what index the set ends with.
    let indexed = (
        data.get(32).copied().unwrap_or(0),
        data.get(33).copied().unwrap_or(0),
    );
    let Some(bytes) = set_bytes(&plan(data, sandbox), indexed) else {
        return;
    };
    let set = sandbox.join("work/App[0001].4BK");
    if decoys.is_err() || std::fs::write(&set, bytes).is_err() {
        return;
    }
    let target = sandbox.join("work/target");
    let before = survey(sandbox, &target);
    let verified = sauve_archive::verify(&set, &mut NoProgress);
    let restored = sauve_archive::restore(
        &set,
        &RestoreOptions {
            to: Some(target.clone()),
            force: false,
        },
        &mut NoProgress,
    );
    assert_eq!(
        before,
        survey(sandbox, &target),
        "something outside the restore target changed"
    );
    assert_eq!(
        verified.as_ref().map(drop).map_err(|e| e.status()),
        restored.as_ref().map(drop).map_err(|e| e.status()),
        "verify said {:?} and restore {:?}",
        verified.as_ref().err().map(ToString::to_string),
        restored.as_ref().err().map(ToString::to_string)
    );
    // Folders restored without write permission: made removable again.
    let mut stack = vec![target];
    while let Some(d) = stack.pop() {
        if std::fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir()) {
            let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700));
            stack.extend(
                std::fs::read_dir(&d)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
    }
}
