//! What a set may hold (behaviour §13.1; SECURITY.md, "Archives"): the one place
//! that decides whether a manifest and the names of its stream are safe to
//! restore. The reader calls it for every set it reads, so `verify`,
//! `restore`, `list`, the automatic restore at open and a store's sets all
//! give the same verdict; the writer leaves out what it would refuse.
//!
//! Refused: a name that is empty, absolute, goes up with `..`, has a drive
//! prefix, a backslash or a NUL; a path listed twice (after `.` and empty
//! segments are dropped); an entry beneath a path the manifest lists as a
//! file or a symlink; a stream entry beneath a symlink entry; block maps
//! whose geometry does not match the file; a set that builds on itself or
//! on a later set.

use std::collections::HashMap;

use crate::error::ArchiveError;
use crate::manifest::{Blocks, EntryType, Manifest, Store};

/// The components of a stored path, or why it is refused.
pub(crate) fn safe_components(path: &str) -> Result<Vec<&str>, String> {
    if path.is_empty() {
        return Err("empty name".to_owned());
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "the name is {} bytes long (accepted: at most {MAX_PATH_BYTES}, as Linux's PATH_MAX)",
            path.len()
        ));
    }
    if path.contains('\0') {
        return Err("the name contains NUL".to_owned());
    }
    if path.contains('\\') {
        return Err("the name contains a backslash".to_owned());
    }
    if path.starts_with('/') {
        return Err("absolute path".to_owned());
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if let Some(first) = parts.first() {
        let b = first.as_bytes();
        if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
            return Err("drive prefix".to_owned());
        }
    }
    if parts.contains(&"..") {
        return Err("the path goes up with ..".to_owned());
    }
    if parts.is_empty() {
        return Err("empty name".to_owned());
    }
    if parts.len() > MAX_DEPTH {
        return Err(format!(
            "the name is {} folders deep (accepted: at most {MAX_DEPTH})",
            parts.len()
        ));
    }
    Ok(parts)
}

/// The longest name a set may hold, in bytes (Linux's `PATH_MAX`).
pub(crate) const MAX_PATH_BYTES: usize = 4096;
/// The deepest name a set may hold, in folders.
pub(crate) const MAX_DEPTH: usize = 256;

/// The keys of each leading part of a name (`a`, `a/b`, `a/b/c`), made in
/// one pass over it: checking every part of a deep name costs its length,
/// not its length times its depth. A key is a keyed hash of the parts
/// before it and its own; two names that differ could share a key only by
/// a collision of 64-bit keyed hashes, which makes a set refused (as
/// "twice" or "beneath"), never accepted.
fn prefix_keys(state: &std::hash::RandomState, parts: &[&str]) -> Vec<u64> {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut keys = Vec::with_capacity(parts.len());
    let mut previous = 0u64;
    for part in parts {
        let mut h = state.build_hasher();
        previous.hash(&mut h);
        part.hash(&mut h);
        previous = h.finish();
        keys.push(previous);
    }
    keys
}

/// What is above a name, if it cannot be: the first leading part listed
/// as a symlink or a file.
fn beneath(types: &HashMap<u64, (EntryType, usize)>, keys: &[u64]) -> Option<(EntryType, usize)> {
    let (_, above) = keys.split_last()?;
    above.iter().find_map(|k| match types.get(k) {
        Some(&(t @ (EntryType::Symlink | EntryType::File), depth)) => Some((t, depth)),
        _ => None,
    })
}

/// Why a name that sauve would archive cannot be restored, if it cannot:
/// the writer leaves such a file out, with a warning naming it.
pub fn unrestorable_name(path: &str) -> Option<String> {
    safe_components(path).err()
}

pub(crate) fn unsafe_entry(path: &str, reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Unsafe {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Checks a manifest as a whole: every name safe, each path once, nothing
/// beneath a file or a symlink, block maps that fit their files, and a
/// parent older than the set.
pub(crate) fn check_manifest(manifest: &Manifest) -> Result<(), ArchiveError> {
    let number = manifest.header.backup_number;
    let base = &manifest.header.base_name;
    if base.is_empty() || base.contains(['/', '\\', '\0']) || base == "." || base == ".." {
        return Err(ArchiveError::corrupt(
            manifest.header.kind,
            format!(
                "the manifest's base name {base:?} is not a file name (accepted: the data file's stem)"
            ),
        ));
    }
    if let Some(parent) = manifest.header.parent
        && parent >= number
    {
        return Err(ArchiveError::corrupt(
            manifest.header.kind,
            format!(
                "set {number} builds on set {parent} (accepted: an incremental set builds on an older set)"
            ),
        ));
    }
    // Each path by the keys of its components: `a/./b` and `a//b` are `a/b`.
    let state = std::hash::RandomState::new();
    let mut types: HashMap<u64, (EntryType, usize)> =
        HashMap::with_capacity(manifest.entries.len());
    let mut keyed = Vec::with_capacity(manifest.entries.len());
    let mut total: u64 = 0;
    for e in &manifest.entries {
        let parts = safe_components(&e.path).map_err(|why| unsafe_entry(&e.path, why))?;
        let keys = prefix_keys(&state, &parts);
        let full = keys.last().copied().unwrap_or_default();
        if types.insert(full, (e.entry_type, parts.len())).is_some() {
            return Err(unsafe_entry(&e.path, "the manifest lists this path twice"));
        }
        keyed.push((e, parts, keys));
        total = total.checked_add(e.size).ok_or_else(|| {
            unsafe_entry(
                &e.path,
                "the sizes the manifest lists add up past 2^64 bytes",
            )
        })?;
        match e.entry_type {
            EntryType::File => check_blocks(&e.path, e.size, e.store, e.blocks.as_ref())?,
            EntryType::Dir | EntryType::Symlink if e.size != 0 || e.store != Store::Stored => {
                return Err(unsafe_entry(
                    &e.path,
                    "a folder or a symlink with content (accepted: size 0, stored)",
                ));
            }
            EntryType::Dir | EntryType::Symlink => {}
        }
        if e.entry_type == EntryType::Symlink && e.target.as_deref().is_none_or(str::is_empty) {
            return Err(unsafe_entry(&e.path, "a symlink without a target"));
        }
    }
    for (e, parts, keys) in &keyed {
        if let Some(above) = beneath(&types, keys) {
            return Err(beneath_refusal(&e.path, parts, above));
        }
    }
    Ok(())
}

/// The refusal of `path` (in `parts`), beneath the symlink or file that
/// its first `depth` parts name.
fn beneath_refusal(path: &str, parts: &[&str], (t, depth): (EntryType, usize)) -> ArchiveError {
    let above = parts[..depth].join("/");
    unsafe_entry(
        path,
        match t {
            EntryType::Symlink => format!("it goes through the symlink {above}"),
            _ => format!("it is beneath {above}, which is a file"),
        },
    )
}

/// A file's block map fits the file: blocks of at least one byte, one hash
/// per block, the blocks held ascending and within the file.
fn check_blocks(
    path: &str,
    size: u64,
    store: Store,
    blocks: Option<&Blocks>,
) -> Result<(), ArchiveError> {
    let Some(b) = blocks else {
        return match store {
            Store::Blocks => Err(unsafe_entry(path, "stored as blocks without a block map")),
            Store::Stored | Store::Same => Ok(()),
        };
    };
    let bad = |why: &str| Err(unsafe_entry(path, format!("its block map {why}")));
    if !crate::incremental::BLOCK_SIZES.contains(&b.block_size) {
        return bad(&format!(
            "has blocks of {} bytes (accepted: 4 KiB to 1 GiB)",
            b.block_size
        ));
    }
    let count = Blocks::count(size, b.block_size);
    if b.hashes.len() as u64 != count {
        return bad(&format!(
            "lists {} hashes for {count} blocks",
            b.hashes.len()
        ));
    }
    if b.changed.windows(2).any(|w| w[0] >= w[1]) {
        return bad("lists its blocks out of order or twice");
    }
    if b.changed.last().is_some_and(|&i| u64::from(i) >= count) {
        return bad(&format!("holds a block past the file's {count} blocks"));
    }
    if store != Store::Blocks && !b.changed.is_empty() {
        return bad("holds blocks of a file that is not stored as blocks");
    }
    Ok(())
}

/// The names of a stream as they come: each safe, each once, none beneath
/// a symlink or a file entry seen before it (one beneath an entry that
/// comes after it is caught by [`check_manifest`], since both must be
/// listed).
#[derive(Default)]
pub(crate) struct StreamNames {
    state: std::hash::RandomState,
    seen: HashMap<u64, (EntryType, usize)>,
}

impl StreamNames {
    /// Checks the name of the next entry of the stream.
    pub(crate) fn check(&mut self, path: &str, entry_type: EntryType) -> Result<(), ArchiveError> {
        let parts = safe_components(path).map_err(|why| unsafe_entry(path, why))?;
        let keys = prefix_keys(&self.state, &parts);
        if let Some(above) = beneath(&self.seen, &keys) {
            return Err(beneath_refusal(path, &parts, above));
        }
        let full = keys.last().copied().unwrap_or_default();
        if self.seen.insert(full, (entry_type, parts.len())).is_some() {
            return Err(unsafe_entry(path, "the stream holds this path twice"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::SetKind;
    use crate::manifest::{EntryKind, ManifestEntry, ManifestHeader};

    fn entry(path: &str, entry_type: EntryType) -> ManifestEntry {
        ManifestEntry {
            kind: EntryKind::Attachment,
            source: String::new(),
            path: path.to_owned(),
            entry_type,
            size: 0,
            mode: 0o644,
            mtime: 0,
            blake3: None,
            target: (entry_type == EntryType::Symlink).then(|| "/etc/passwd".to_owned()),
            store: Store::Stored,
            inode: None,
            blocks: None,
        }
    }

    fn manifest(entries: Vec<ManifestEntry>) -> Manifest {
        Manifest {
            format: crate::manifest::FORMAT.to_owned(),
            version: crate::manifest::VERSION,
            header: ManifestHeader::new(SetKind::Backup, 3, "App", jiff::Timestamp::UNIX_EPOCH),
            ended_at: jiff::Timestamp::UNIX_EPOCH,
            entries,
            indexed: false,
            layout: None,
        }
    }

    fn refusal(m: &Manifest) -> String {
        match check_manifest(m) {
            Err(e) => e.to_string(),
            Ok(()) => panic!("accepted: {m:#?}"),
        }
    }

    #[test]
    fn unsafe_names_are_refused() {
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            "C:/x",
            "a\\b",
            "a\0b",
            "",
            "./",
        ] {
            assert!(safe_components(bad).is_err(), "{bad:?}");
            assert!(unrestorable_name(bad).is_some(), "{bad:?}");
        }
        assert_eq!(safe_components("Data/./x.4DD").unwrap(), ["Data", "x.4DD"]);
        assert_eq!(unrestorable_name("Data/x.4DD"), None);
    }

    #[test]
    fn a_path_listed_twice_is_refused_whatever_its_types() {
        use EntryType::*;
        for (a, b) in [
            (("x", Dir), ("x", Symlink)),
            (("x", File), ("x", File)),
            (("a/b", File), ("a/./b", File)),
            (("a//b", Dir), ("a/b", Symlink)),
        ] {
            let m = manifest(vec![entry(a.0, a.1), entry(b.0, b.1)]);
            assert!(
                refusal(&m).contains("twice"),
                "{a:?} {b:?}: {}",
                refusal(&m)
            );
        }
    }

    #[test]
    fn nothing_may_sit_beneath_a_symlink_or_a_file() {
        use EntryType::*;
        let m = manifest(vec![entry("a/x", File), entry("a", Symlink)]);
        assert!(
            refusal(&m).contains("through the symlink a"),
            "{}",
            refusal(&m)
        );
        let m = manifest(vec![entry("a", File), entry("a/b/c", Dir)]);
        assert!(
            refusal(&m).contains("beneath a, which is a file"),
            "{}",
            refusal(&m)
        );
        let ok = manifest(vec![
            entry("a", Dir),
            entry("a/l", Symlink),
            entry("a/f", File),
        ]);
        check_manifest(&ok).unwrap();
    }

    #[test]
    fn names_too_long_or_too_deep_are_refused_and_cost_their_length() {
        // Found in review: a name of millions of components took the
        // square of its depth to check.
        let deep = "a/".repeat(MAX_DEPTH) + "a";
        assert!(safe_components(&deep).unwrap_err().contains("folders deep"));
        let long = "a".repeat(MAX_PATH_BYTES + 1);
        assert!(safe_components(&long).unwrap_err().contains("PATH_MAX"));
        let huge = "a/".repeat(5_000_000);
        let started = std::time::Instant::now();
        assert!(safe_components(&huge).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // At the limits, many entries check in one pass each.
        let at_limit = "b/".repeat(MAX_DEPTH - 3) + "c";
        let entries = (0..2000)
            .map(|i| entry(&format!("{i}/{at_limit}"), EntryType::Dir))
            .collect();
        check_manifest(&manifest(entries)).unwrap();
    }

    #[test]
    fn a_base_name_that_is_not_a_file_name_is_refused() {
        for base in ["../../root/backups/Secret", "/abs", "", ".."] {
            let mut m = manifest(vec![]);
            m.header.base_name = base.to_owned();
            assert!(refusal(&m).contains("base name"), "{base:?}");
        }
    }

    #[test]
    fn a_set_building_on_itself_or_a_later_set_is_refused() {
        for parent in [3, 4, u32::MAX] {
            let mut m = manifest(vec![]);
            m.header.parent = Some(parent.into());
            assert!(refusal(&m).contains("builds on set"), "{parent}");
        }
        let mut m = manifest(vec![]);
        m.header.parent = Some(2.into());
        check_manifest(&m).unwrap();
    }

    #[test]
    fn block_maps_must_fit_their_file() {
        let file = |size: u64, store: Store, blocks: Blocks| ManifestEntry {
            size,
            store,
            blocks: Some(blocks),
            ..entry("f", EntryType::File)
        };
        let hashes = |n: usize| crate::BlockHashes::from(vec![0; n]);
        let cases = [
            (
                file(
                    10_000,
                    Store::Blocks,
                    Blocks {
                        block_size: 0,
                        hashes: hashes(1),
                        changed: vec![0],
                    },
                ),
                "blocks of 0 bytes",
            ),
            (
                file(
                    10_000,
                    Store::Blocks,
                    Blocks {
                        block_size: 4096,
                        hashes: hashes(2),
                        changed: vec![0],
                    },
                ),
                "2 hashes for 3 blocks",
            ),
            (
                file(
                    10_000,
                    Store::Blocks,
                    Blocks {
                        block_size: 4096,
                        hashes: hashes(3),
                        changed: vec![3],
                    },
                ),
                "past the file's 3 blocks",
            ),
            (
                file(
                    10_000,
                    Store::Blocks,
                    Blocks {
                        block_size: 4096,
                        hashes: hashes(3),
                        changed: vec![1, 1],
                    },
                ),
                "out of order",
            ),
            (
                file(
                    u64::MAX,
                    Store::Blocks,
                    Blocks {
                        block_size: 4096,
                        hashes: hashes(1),
                        changed: vec![0],
                    },
                ),
                "hashes for",
            ),
        ];
        for (e, why) in cases {
            let m = manifest(vec![e]);
            assert!(refusal(&m).contains(why), "{why}: {}", refusal(&m));
        }
        let ok = file(
            10_000,
            Store::Blocks,
            Blocks {
                block_size: 4096,
                hashes: hashes(3),
                changed: vec![0, 2],
            },
        );
        check_manifest(&manifest(vec![ok])).unwrap();
    }

    #[test]
    fn stream_entries_beneath_a_symlink_or_a_file_or_twice_are_refused() {
        let mut names = StreamNames::default();
        names.check("a/l", EntryType::Symlink).unwrap();
        names.check("a/lx", EntryType::File).unwrap();
        let refused = |r: Result<(), ArchiveError>| r.unwrap_err().to_string();
        assert!(refused(names.check("a/./l/x", EntryType::File)).contains("symlink a/l"));
        assert!(refused(names.check("a/lx/y", EntryType::Dir)).contains("which is a file"));
        assert!(refused(names.check("a//lx", EntryType::Dir)).contains("twice"));
        assert!(refused(names.check("../x", EntryType::File)).contains(".."));
    }
}
