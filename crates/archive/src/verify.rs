//! `sauve verify` and backup step 11 (SPEC section 13.2): re-read a set and
//! check it against its manifest. Writes nothing.

use std::path::Path;

use crate::error::ArchiveError;
use crate::manifest::{EntryType, Manifest};
use crate::naming::SetFiles;
use crate::reader::{Seen, check_against_manifest, hash_content, scan};
use crate::writer::Progress;

/// A sound set.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// The set's files.
    pub set: SetFiles,
    /// Its manifest.
    pub manifest: Manifest,
    /// Bytes of file content checked.
    pub bytes: u64,
}

/// Verifies the set that `path` names (any segment, or `base[NNNN]`).
pub fn verify(path: &Path, progress: &mut dyn Progress) -> Result<VerifyReport, ArchiveError> {
    let set = SetFiles::locate(path)?;
    verify_set(&set, progress)
}

/// Verifies a located set: all segments present and in order, complete
/// zstd and tar streams, the manifest last, every entry's size and blake3,
/// nothing outside the manifest.
pub fn verify_set(set: &SetFiles, progress: &mut dyn Progress) -> Result<VerifyReport, ArchiveError> {
    let mut seen = Vec::new();
    let mut bytes = 0;
    let manifest = scan(set, |entry, content| {
        if progress.is_stopped() {
            return Err(ArchiveError::Stopped.into());
        }
        let blake3 = match entry.entry_type {
            EntryType::File => {
                let (hash, n) = hash_content(content, None)?;
                bytes += n;
                progress.advance(n);
                Some(hash)
            }
            _ => None,
        };
        seen.push(Seen {
            path: entry.path.clone(),
            entry_type: entry.entry_type,
            size: entry.size,
            blake3,
            target: entry.target.clone(),
        });
        Ok(())
    })?;
    check_against_manifest(set.name.kind, &manifest, &seen)?;
    Ok(VerifyReport {
        set: set.clone(),
        manifest,
        bytes,
    })
}

/// The manifest of the set that `path` names, for `sauve list`. Reads the
/// whole stream (the manifest is last) but hashes nothing.
pub fn list(path: &Path) -> Result<(SetFiles, Manifest), ArchiveError> {
    let set = SetFiles::locate(path)?;
    let manifest = scan(&set, |_, _| Ok(()))?;
    Ok((set, manifest))
}
