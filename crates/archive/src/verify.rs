//! `sauve verify` and backup step 11 (behaviour §13.2): re-read a set and
//! check it against its manifest. Writes nothing.

use sauve_number::BackupNumber;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::error::ArchiveError;
use crate::incremental::{Needs, missing_link};
use crate::index::DeclaredSet;
use crate::kind::SetKind;
use crate::manifest::{EntryType, Manifest};
use crate::naming::SetFiles;
use crate::reader::{
    Files, ReadEntry, Seen, VisitError, Visitor, check_against_manifest, declared_of, hash_content,
    manifest_of, present, read_blocks_entry, scan_declared, scan_source,
};
use crate::remote::RemoteSet;
use crate::source::SegmentSource;
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
    verify_chain(&Link::Folder(SetFiles::locate(path)?), progress)
}

/// Verifies `newest` and every set of its chain, found beside it.
fn verify_chain(newest: &Link, progress: &mut dyn Progress) -> Result<VerifyReport, ArchiveError> {
    let mut report = newest.verify(progress)?;
    let mut needs = Needs::of(&report.manifest);
    let mut link = newest.clone();
    while !needs.is_empty() {
        link = link.parent(&needs)?;
        let older = link.verify(progress).map_err(|e| link.named_in(e))?;
        needs.resolve(&older.manifest)?;
        report.bytes += older.bytes;
        report.chain.push(older.set);
    }
    Ok(report)
}

/// One set of a chain (behaviour §21.2), and where the older ones are:
/// beside it in its folder, or in its store.
#[derive(Clone, Debug)]
pub(crate) enum Link {
    Folder(SetFiles),
    Store(RemoteSet),
}

impl Link {
    /// The set's files or objects.
    pub(crate) fn files(&self) -> SetFiles {
        match self {
            Link::Folder(set) => set.clone(),
            Link::Store(remote) => remote.set_files(),
        }
    }

    /// `e`, found in this older set of a chain, naming it when it is damage:
    /// the set asked for is not the one that is damaged.
    pub(crate) fn named_in(&self, e: ArchiveError) -> ArchiveError {
        match e {
            ArchiveError::Corrupt { kind, what } => {
                let name = &self.files().name;
                ArchiveError::Corrupt {
                    kind,
                    what: format!(
                        "in {}[{}], an older set of the chain: {what}",
                        name.base,
                        name.number.text()
                    ),
                }
            }
            other => other,
        }
    }

    /// Runs `read` on the set's bytes: its segments in a folder (each
    /// present), or its objects in a store.
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&dyn SegmentSource, SetKind, &str) -> Result<T, ArchiveError>,
    ) -> Result<T, ArchiveError> {
        match self {
            Link::Folder(set) => {
                let first = present(set)?;
                read(&Files(&set.files), set.name.kind, &first)
            }
            Link::Store(remote) => read(remote, remote.name.kind, &remote.first_label()),
        }
    }

    /// Reads the whole set through `visitor` (see [`scan_source`]).
    pub(crate) fn scan(&self, visitor: &mut dyn Visitor) -> Result<Manifest, ArchiveError> {
        self.read(|source, kind, first| scan_source(source, kind, first, visitor))
    }

    /// The set's manifest alone, through its index where it has one.
    fn manifest(&self) -> Result<Manifest, ArchiveError> {
        self.read(manifest_of)
    }

    /// What the set declares: its manifest and that manifest's hash,
    /// through its index where it has one, else by reading it through
    /// (stopping when `stopped` says so).
    pub(crate) fn declared(&self, stopped: &dyn Fn() -> bool) -> Result<DeclaredSet, ArchiveError> {
        self.read(|source, kind, first| declared_of(source, kind, first, stopped))
    }

    /// Reads the whole set through `visitor`, checking it against what it
    /// `declared` (its stream must give that manifest, of that hash).
    pub(crate) fn scan_declared(
        &self,
        visitor: &mut dyn Visitor,
        declared: (&Manifest, [u8; 32]),
    ) -> Result<(), ArchiveError> {
        self.read(|source, kind, first| scan_declared(source, kind, first, visitor, declared))
    }

    /// Verifies this set alone.
    fn verify(&self, progress: &mut dyn Progress) -> Result<VerifyReport, ArchiveError> {
        let set = self.files();
        let mut checker = Checker::new(&set, progress);
        let manifest = self.scan(&mut checker)?;
        Ok(VerifyReport {
            set,
            manifest,
            bytes: checker.bytes,
            chain: Vec::new(),
        })
    }

    /// The set that the needs' newest resolved set builds on, beside this
    /// one, named after this set's own name, never after what a manifest
    /// says (a manifest's base name could point anywhere).
    pub(crate) fn parent(&self, needs: &Needs) -> Result<Link, ArchiveError> {
        let (newer, name) = parent_name(&self.files().name.base, needs)?;
        self.sibling(&name).map_err(|e| match e {
            ArchiveError::Missing { .. } => {
                missing_link(&newer, &name, Path::new(&self.files().dir))
            }
            other => other,
        })
    }

    /// The set numbered `number` beside this one, of the same base.
    pub(crate) fn numbered(&self, number: BackupNumber) -> Result<Link, ArchiveError> {
        let name = self.files().name;
        self.sibling(&format!("{}[{}]", name.base, number.text()))
    }

    /// The set named `name` (`base[NNNN]`) beside this one.
    fn sibling(&self, name: &str) -> Result<Link, ArchiveError> {
        match self {
            Link::Folder(set) => SetFiles::locate(&set.dir.join(name)).map(Link::Folder),
            Link::Store(remote) => remote.sibling(name).map(Link::Store),
        }
    }

    /// What the set declares, when its index gives it (`None` for a set
    /// written before sets had one: see [`Link::declared`]).
    pub(crate) fn indexed(&self) -> Result<Option<DeclaredSet>, ArchiveError> {
        self.read(|source, kind, _| crate::index::locate(source, kind))
    }
}

/// The name of the newer set the needs were resolved against, and of the
/// set it builds on (of base `base`).
fn parent_name(base: &str, needs: &Needs) -> Result<(String, String), ArchiveError> {
    let newer = needs.name(needs.newer());
    let Some(number) = needs.parent else {
        return Err(ArchiveError::corrupt(
            SetKind::Backup,
            format!("{newer} lists files held by another set, but builds on none"),
        ));
    };
    Ok((newer, format!("{base}[{}]", number.text())))
}

/// Verifies a located set: all segments present and in order, complete
/// zstd and tar streams, the manifest last, every entry's size and blake3,
/// nothing outside the manifest.
pub fn verify_set(
    set: &SetFiles,
    progress: &mut dyn Progress,
) -> Result<VerifyReport, ArchiveError> {
    Link::Folder(set.clone()).verify(progress)
}

/// Verifies one set of a store alone, reading its objects as one stream
/// (behaviour §19): an incremental set's chain is not read (a backup reads
/// back the set it just wrote this way).
pub fn verify_remote_set(
    remote: &RemoteSet,
    progress: &mut dyn Progress,
) -> Result<VerifyReport, ArchiveError> {
    Link::Store(remote.clone()).verify(progress)
}

/// Verifies a set just written, before its commit, against the manifest and
/// the index its writer wrote (behaviour §5): the stream read through, every
/// entry as the manifest declares it, the manifest's bytes hashing as the
/// writer's did and the set ending with the writer's index, byte for byte.
/// Neither is read back and parsed a second time (a 64 GiB file's block map
/// is 32 MiB in memory, 43 MiB of JSON). Returns the bytes of content checked.
pub(crate) fn verify_written(
    set: &SetFiles,
    (manifest, index): (&Manifest, &crate::index::Index),
    progress: &mut dyn Progress,
) -> Result<u64, ArchiveError> {
    let first = present(set)?;
    let files = Files(&set.files);
    let kind = set.name.kind;
    // What a reader will refuse is refused now, before the commit.
    crate::safety::check_manifest(manifest)?;
    let mut checker = Checker::new(set, progress);
    scan_declared(&files, kind, &first, &mut checker, (manifest, index.hash))?;
    // The index a reader finds: pointing to the manifest, the set's last
    // entry, as written.
    if crate::index::check(&files, kind)?.as_ref() != Some(index) {
        return Err(ArchiveError::corrupt(
            kind,
            format!("{first} does not end with the index its writer wrote"),
        ));
    }
    Ok(checker.bytes)
}

/// Verifies a set in a store, reading its objects as one stream (behaviour §19),
/// and, for an incremental set, every set of its chain in the same store.
pub fn verify_remote(
    remote: &RemoteSet,
    progress: &mut dyn Progress,
) -> Result<VerifyReport, ArchiveError> {
    verify_chain(&Link::Store(remote.clone()), progress)
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
    Link::Folder(set.clone()).manifest()
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
    origins_of(Link::Folder(SetFiles::locate(path)?))
}

/// [`list_origins`] for a set in a store, its chain read in the same store.
pub fn list_origins_remote(
    remote: &RemoteSet,
) -> Result<(SetFiles, Manifest, BTreeMap<String, Origin>), ArchiveError> {
    origins_of(Link::Store(remote.clone()))
}

fn origins_of(
    newest: Link,
) -> Result<(SetFiles, Manifest, BTreeMap<String, Origin>), ArchiveError> {
    use crate::manifest::Store;
    let (set, manifest) = (newest.files(), newest.manifest()?);
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
    let mut link = newest;
    while !needs.is_empty() {
        link = link.parent(&needs)?;
        let older = link.manifest()?;
        for (path, _, supply) in needs.resolve(&older)? {
            origins
                .entry(path)
                .or_default()
                .push((older.header.backup_number, supply.blocks()));
        }
    }
    Ok((set, manifest, origins))
}
