//! `sauve verify` and backup step 11 (behaviour §13.2): re-read a set and
//! check it against its manifest. Writes nothing.

use sauve_number::BackupNumber;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::error::ArchiveError;
use crate::incremental::{Needs, missing_link};
use crate::kind::SetKind;
use crate::manifest::{EntryType, Manifest};
use crate::naming::SetFiles;
use crate::reader::{
    Files, ReadEntry, Seen, VisitError, Visitor, check_against_manifest, hash_content, manifest_of,
    present, read_blocks_entry, scan, scan_source,
};
use crate::remote::RemoteSet;
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
    /// The older sets of its chain that were verified with it, newest
    /// first (an incremental set, behaviour §21).
    pub chain: Vec<SetFiles>,
}

/// Verifies the set that `path` names (any segment, or `base[NNNN]`) and,
/// for an incremental set, every set of its chain back to the full set:
/// each whole, and together holding every file the newest lists.
pub fn verify(path: &Path, progress: &mut dyn Progress) -> Result<VerifyReport, ArchiveError> {
    let set = SetFiles::locate(path)?;
    let mut report = verify_set(&set, progress)?;
    let mut needs = Needs::of(&report.manifest);
    while !needs.is_empty() {
        let link = locate_parent(&set, &needs)?;
        let older = verify_set(&link, progress)?;
        needs.resolve(&older.manifest)?;
        report.bytes += older.bytes;
        report.chain.push(link);
    }
    Ok(report)
}

/// The set that the needs' newest resolved set builds on, in `set`'s folder.
pub(crate) fn locate_parent(set: &SetFiles, needs: &Needs) -> Result<SetFiles, ArchiveError> {
    let newer = needs.name(needs.newer());
    let Some(number) = needs.parent else {
        return Err(ArchiveError::corrupt(
            SetKind::Backup,
            format!("{newer} lists files held by another set, but builds on none"),
        ));
    };
    // Named after the set's own file, never after what its manifest says:
    // a manifest's base name could point anywhere.
    let name = format!("{}[{}]", set.name.base, number.text());
    match SetFiles::locate(&set.dir.join(&name)) {
        Err(ArchiveError::Missing { .. }) => Err(missing_link(&newer, &name, &set.dir)),
        other => other,
    }
}

/// Verifies a located set: all segments present and in order, complete
/// zstd and tar streams, the manifest last, every entry's size and blake3,
/// nothing outside the manifest.
pub fn verify_set(
    set: &SetFiles,
    progress: &mut dyn Progress,
) -> Result<VerifyReport, ArchiveError> {
    let mut checker = Checker::new(set, progress);
    let manifest = scan(set, &mut checker)?;
    Ok(VerifyReport {
        set: set.clone(),
        manifest,
        bytes: checker.bytes,
        chain: Vec::new(),
    })
}

/// Verifies a set in a store, reading its objects as one stream (behaviour §19).
pub fn verify_remote(
    remote: &RemoteSet,
    progress: &mut dyn Progress,
) -> Result<VerifyReport, ArchiveError> {
    let set = remote.set_files();
    let mut checker = Checker::new(&set, progress);
    let manifest = scan_source(remote, set.name.kind, &remote.first_label(), &mut checker)?;
    Ok(VerifyReport {
        set: set.clone(),
        manifest,
        bytes: checker.bytes,
        chain: Vec::new(),
    })
}

/// Hashes every file and checks the whole against the manifest.
struct Checker<'p> {
    kind: SetKind,
    progress: &'p mut dyn Progress,
    seen: Vec<Seen>,
    bytes: u64,
}

impl<'p> Checker<'p> {
    fn new(set: &SetFiles, progress: &'p mut dyn Progress) -> Checker<'p> {
        Checker {
            kind: set.name.kind,
            progress,
            seen: Vec::new(),
            bytes: 0,
        }
    }
}

impl Visitor for Checker<'_> {
    fn entry(&mut self, entry: &ReadEntry, content: &mut dyn Read) -> Result<(), VisitError> {
        if self.progress.is_stopped() {
            return Err(ArchiveError::Stopped.into());
        }
        if entry.blocks {
            let seen = read_blocks_entry(self.kind, entry, content, |_, _, bytes| {
                self.bytes += bytes.len() as u64;
                self.progress.advance(bytes.len() as u64);
                Ok(())
            })?;
            self.seen.push(seen);
            return Ok(());
        }
        let blake3 = match entry.entry_type {
            EntryType::File => {
                let (hash, n) = hash_content(content, None)?;
                self.bytes += n;
                self.progress.advance(n);
                Some(hash)
            }
            _ => None,
        };
        self.seen.push(Seen::of(entry, blake3));
        Ok(())
    }

    fn manifest(&mut self, manifest: &Manifest) -> Result<(), ArchiveError> {
        check_against_manifest(self.kind, manifest, &self.seen)
    }
}

/// The manifest of the set that `path` names, for `sauve list`: read
/// through the set's index, or, for a set written before it, from the
/// end of its stream (read through, hashing nothing).
pub fn list(path: &Path) -> Result<(SetFiles, Manifest), ArchiveError> {
    let set = SetFiles::locate(path)?;
    let manifest = read_manifest(&set)?;
    Ok((set, manifest))
}

/// The manifest of a located set, as [`list`] reads it.
fn read_manifest(set: &SetFiles) -> Result<Manifest, ArchiveError> {
    let first = present(set)?;
    manifest_of(&Files(&set.files), set.name.kind, &first)
}

/// [`list`] for a set in a store.
pub fn list_remote(remote: &RemoteSet) -> Result<(SetFiles, Manifest), ArchiveError> {
    let set = remote.set_files();
    let manifest = manifest_of(remote, set.name.kind, &remote.first_label())?;
    Ok((set, manifest))
}

/// Where a file of a set comes from (behaviour §21): the sets holding its
/// content, newest first, each with the number of its blocks taken from
/// it (`None`: the file whole).
pub type Origin = Vec<(BackupNumber, Option<usize>)>;

/// [`list`], and for each file the sets its content comes from: for an
/// incremental set, from the manifests of its chain back to the full set.
pub fn list_origins(
    path: &Path,
) -> Result<(SetFiles, Manifest, BTreeMap<String, Origin>), ArchiveError> {
    use crate::manifest::Store;
    let (set, manifest) = list(path)?;
    let number = manifest.header.backup_number;
    let mut origins: BTreeMap<String, Origin> = BTreeMap::new();
    for e in manifest
        .entries
        .iter()
        .filter(|e| e.entry_type == EntryType::File)
    {
        let held = match (e.store, &e.blocks) {
            (Store::Same, _) => continue,
            (Store::Blocks, Some(b)) => Some(b.changed.len()),
            _ => None,
        };
        origins.insert(e.path.clone(), vec![(number, held)]);
    }
    let mut needs = Needs::of(&manifest);
    while !needs.is_empty() {
        let link = locate_parent(&set, &needs)?;
        let older = read_manifest(&link)?;
        for (path, held) in needs.resolve(&older)? {
            origins
                .entry(path)
                .or_default()
                .push((older.header.backup_number, held));
        }
    }
    Ok((set, manifest, origins))
}
