//! The streaming writer: entries → pax tar → independent zstd frames
//! compressed on every core (per CompressionRate, [`crate::frames`]) →
//! segments, each a `.part` file until the whole set is committed.
//!
//! Every source file is read once: its blake3 is computed from the same
//! buffer that goes into the stream. Memory is one copy buffer plus the
//! frames in flight and zstd's contexts, whatever the file sizes.

use sauve_durable::fault::{Step, point};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sauve_number::BackupNumber;
use sauve_settings::Compression;

use crate::content::SourceEntry;
use crate::error::{ArchiveError, is_disk_full};
use crate::frames::{FrameWriter, StopAsked};
use crate::incremental::{BLOCKS_PREFIX, BlockHasher, BlocksHead, Incremental};
use crate::kind::SetKind;
use crate::manifest::{
    BlockHashes, Blocks, EntryType, FORMAT, Layout, MANIFEST_NAME, Manifest, ManifestEntry,
    ManifestHeader, Store, VERSION, Words, compact,
};
use crate::naming::{ArchiveName, SetFiles};
use crate::pieces::{Pieces, SumBook, Summed};
use std::sync::Arc;

/// The pax global record naming an incremental set's parent.
pub(crate) const PARENT_RECORD: &str = "SAUVE.parent";

/// The copy buffer, and the granularity of progress and stop checks.
const CHUNK: usize = 1 << 20;
/// The tar block.
const BLOCK: usize = 512;

/// Where a set goes and how it is encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetSpec {
    /// The destination folder (must exist).
    pub destination: PathBuf,
    /// The base name (the data file's stem).
    pub base: String,
    /// The number in the file name.
    pub number: BackupNumber,
    /// `.4BK` or `.4BL`.
    pub kind: SetKind,
    /// None, Fast or Compact (behaviour §6.1).
    pub compression: Compression,
    /// Segment size in bytes (`FileSegmentation/DefaultSize` MiB × 2^20); 0 for one file.
    pub segment_size: u64,
    /// zstd worker threads; 0 uses every core (Compact: at most 3).
    pub threads: u32,
}

impl SetSpec {
    fn name(&self, segment: Option<u32>, part: bool) -> ArchiveName {
        ArchiveName {
            base: self.base.clone(),
            number: self.number,
            segment,
            kind: self.kind,
            part,
        }
    }

    /// The first file of the set, once committed.
    pub fn first_file(&self) -> PathBuf {
        let segment = (self.segment_size > 0).then_some(1);
        self.destination.join(self.name(segment, false).to_string())
    }
}

/// Told about progress; asked whether to stop. Checked at least every MiB.
pub trait Progress {
    /// `bytes` more of file content were stored.
    fn advance(&mut self, bytes: u64) {
        let _ = bytes;
    }
    /// Stop as soon as possible (behaviour §8.1).
    fn is_stopped(&self) -> bool {
        false
    }
}

/// A [`Progress`] that never stops.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// An archive file being written.
pub trait PartFile: Write + Send {
    /// Makes everything written durable (fsync).
    fn sync(&mut self) -> io::Result<()>;
}

impl PartFile for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_all()
    }
}

impl<P: PartFile + ?Sized> PartFile for Box<P> {
    fn sync(&mut self) -> io::Result<()> {
        (**self).sync()
    }
}

/// Creates archive files. The default creates real files and never replaces
/// one; tests inject writers with a byte quota to simulate a full disk.
pub type OpenPart = Box<dyn FnMut(&Path) -> io::Result<Box<dyn PartFile>> + Send>;

/// The default [`OpenPart`]: a new file (never one already there, never
/// through a link), private (0600) until its set is committed with the
/// mode of what it holds, created through its folder's store
/// ([`sauve_store::FolderStore::create_staged`]).
pub fn open_real_file() -> OpenPart {
    Box::new(|path: &Path| {
        let (folder, name) = in_folder(path);
        let f = folder.create_staged(&name)?;
        Ok(Box::new(f) as Box<dyn PartFile>)
    })
}

/// Where a set's files go until their commit: a folder (the default,
/// [`FolderTarget`]), or a store, whose uploads stay invisible until
/// completed. The writer asks it for each segment in order; the pending set
/// hands it every file at commit, or gives each back when it is dropped.
pub trait SetTarget: Send {
    /// Whether a file already holds the final name `fin` (never replaced).
    fn taken(&mut self, fin: &Path) -> io::Result<bool>;
    /// Creates the file written under `part`, named `fin` once committed.
    fn create(&mut self, part: &Path, fin: &Path) -> io::Result<Box<dyn PartFile>>;
    /// Removes what [`SetTarget::create`] made for `part`; errors are ignored.
    fn discard(&mut self, part: &Path);
    /// Gives every file its final name, in order, the last one (the one
    /// with the manifest) last; if a final name is taken, none is given.
    /// `mode`: the permissions the files get, where files have any (the
    /// set's [`Manifest::set_mode`]).
    fn commit(&mut self, files: &[(PathBuf, PathBuf)], mode: u32) -> Result<(), ArchiveError>;
    /// Whether the files can be read under their part names before the
    /// commit (verify reads them there). A store's uploads cannot.
    fn readable_before_commit(&self) -> bool {
        true
    }
    /// What the file written under `part` holds as stored, piece by piece
    /// (behaviour §23), once it was synced whole; `None` from a target
    /// that does not sum what it stores.
    fn pieces(&mut self, _part: &Path) -> Option<Pieces> {
        None
    }
}

/// The files of a set in a folder: `.part` files, readable before the
/// commit, then given their final names through the folder's store
/// ([`sauve_store::FolderStore::commit_staged`]: by hard link, beneath the
/// folder's handle, never replacing a file).
pub struct FolderTarget {
    open: OpenPart,
    book: SumBook,
}

impl FolderTarget {
    /// Files created with `open` ([`open_real_file`] for real ones).
    pub fn new(open: OpenPart) -> FolderTarget {
        FolderTarget {
            open,
            book: SumBook::default(),
        }
    }
}

/// The store of the folder that holds `path`, and its name there.
fn in_folder(path: &Path) -> (sauve_store::FolderStore, PathBuf) {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(PathBuf::from).unwrap_or_default();
    (sauve_store::FolderStore::new(dir.to_path_buf()), name)
}

impl SetTarget for FolderTarget {
    fn taken(&mut self, fin: &Path) -> io::Result<bool> {
        let (folder, name) = in_folder(fin);
        folder.is_taken(&name)
    }

    fn create(&mut self, part: &Path, fin: &Path) -> io::Result<Box<dyn PartFile>> {
        point(Step::Create, part)?;
        let file = (self.open)(part)?;
        let name = in_folder(fin).1.to_string_lossy().into_owned();
        Ok(Box::new(Summed::new(file, part, name, &self.book)))
    }

    fn pieces(&mut self, part: &Path) -> Option<Pieces> {
        crate::pieces::recorded(&self.book, part)
    }

    fn discard(&mut self, part: &Path) {
        let (folder, name) = in_folder(part);
        let _ = folder.remove_file(&name);
    }

    fn commit(&mut self, files: &[(PathBuf, PathBuf)], mode: u32) -> Result<(), ArchiveError> {
        let Some((first, _)) = files.first() else {
            return Ok(());
        };
        let (folder, _) = in_folder(first);
        let names: Vec<(PathBuf, PathBuf)> = files
            .iter()
            .map(|(part, fin)| (in_folder(part).1, in_folder(fin).1))
            .collect();
        folder.commit_staged(&names, mode).map_err(|e| match e {
            sauve_store::StagedError::Taken(name) => {
                ArchiveError::AlreadyExists(folder.dir().join(name))
            }
            sauve_store::StagedError::Failed {
                action,
                name,
                source,
            } => {
                // The folder itself when no name is given.
                let path = if name.as_os_str().is_empty() {
                    folder.dir().to_path_buf()
                } else {
                    folder.dir().join(name)
                };
                ArchiveError::io(action, &path)(source)
            }
        })
    }
}

/// Removes `.part` files of `base` left in `destination` by a crashed run,
/// and the log backups' temporary files ([`crate::log_gathering_name`]);
/// returns what it removed.
pub fn remove_stale_parts(destination: &Path, base: &str) -> Result<Vec<PathBuf>, ArchiveError> {
    let folder = sauve_store::FolderStore::new(destination.to_path_buf());
    let names = folder
        .names()
        .map_err(ArchiveError::io("cannot list", destination))?;
    let mut removed = Vec::new();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let stale = ArchiveName::parse(&name).is_some_and(|a| a.part && a.base == base)
            || crate::naming::is_log_gathering_of(&name, base);
        if stale {
            let path = destination.join(&name);
            folder
                .remove_file(Path::new(&name))
                .map_err(ArchiveError::io("cannot remove", &path))?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}

/// Cuts the stream into segment files.
struct SegmentWriter {
    spec: SetSpec,
    /// `None` once handed to the pending set.
    target: Option<Box<dyn SetTarget>>,
    limit: Option<u64>,
    current: Option<Box<dyn PartFile>>,
    in_current: u64,
    /// Bytes written in all, every segment together.
    written: u64,
    /// (part path, final path) of every file created, in order.
    files: Vec<(PathBuf, PathBuf)>,
    /// Set when the writer is dropped unfinished: later writes (a buffer
    /// flushed on drop) must not create files again.
    abandoned: bool,
}

impl SegmentWriter {
    /// The part file being written.
    fn current_path(&self) -> &Path {
        self.files.last().map_or(&self.spec.destination, |(p, _)| p)
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(mut f) = self.current.take() {
            f.flush()?;
            point(Step::Sync, self.current_path())?;
            f.sync()?;
        }
        let segment = self.limit.map(|_| self.files.len() as u32 + 1);
        let part = self
            .spec
            .destination
            .join(self.spec.name(segment, true).to_string());
        let fin = self
            .spec
            .destination
            .join(self.spec.name(segment, false).to_string());
        let Some(target) = self.target.as_mut() else {
            return Err(io::Error::other("archive abandoned"));
        };
        if target.taken(&fin)? {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already exists", fin.display()),
            ));
        }
        let file = target.create(&part, &fin)?;
        self.files.push((part, fin));
        self.current = Some(file);
        self.in_current = 0;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.current.is_none() {
            self.rotate()?;
        }
        if let Some(mut f) = self.current.take() {
            f.flush()?;
            point(Step::Sync, self.current_path())?;
            f.sync()?;
        }
        Ok(())
    }

    fn remove_files(&mut self) {
        self.abandoned = true;
        self.current = None;
        if let Some(target) = self.target.as_mut() {
            for (part, _) in self.files.drain(..) {
                target.discard(&part);
            }
        }
    }
}

/// Dropped with files still its own (a failure anywhere, the final flush
/// inside [`Stream::finish`] included), it removes them: only a finished
/// writer hands its files to a [`PendingSet`], leaving none here.
impl Drop for SegmentWriter {
    fn drop(&mut self) {
        self.remove_files();
    }
}

impl Write for SegmentWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.abandoned {
            return Err(io::Error::other("archive abandoned"));
        }
        let full = self.limit.is_some_and(|l| self.in_current >= l);
        if self.current.is_none() || full {
            self.rotate()?;
        }
        let room = self
            .limit
            .map_or(buf.len() as u64, |l| l - self.in_current)
            .min(buf.len() as u64) as usize;
        point(Step::Write, self.current_path())?;
        let Some(f) = self.current.as_mut() else {
            return Err(io::Error::other("no segment open"));
        };
        let n = f.write(&buf[..room])?;
        self.in_current += n as u64;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.current.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

enum Out {
    Plain(BufWriter<SegmentWriter>),
    Zstd(Box<FrameWriter<BufWriter<SegmentWriter>>>),
    /// After finish, or after a failure.
    Done,
}

/// The set's tar stream, written out plain or as zstd frames, and how far
/// it is (where each entry's content starts: the manifest's [`Layout`]).
struct Stream {
    out: Out,
    /// The tar stream's bytes written so far.
    tar: u64,
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.out {
            Out::Plain(w) => w.write(buf)?,
            Out::Zstd(w) => w.write(buf)?,
            Out::Done => return Err(io::Error::other("archive already finished")),
        };
        self.tar += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Out::Plain(w) => w.flush(),
            Out::Zstd(w) => w.flush(),
            Out::Done => Err(io::Error::other("archive already finished")),
        }
    }
}

impl Stream {
    fn out(&mut self) -> io::Result<&mut dyn Write> {
        match self.out {
            Out::Done => Err(io::Error::other("archive already finished")),
            _ => Ok(self),
        }
    }

    /// Ends the stream and gives back its segments, still open.
    fn finish(&mut self) -> io::Result<SegmentWriter> {
        let inner = match std::mem::replace(&mut self.out, Out::Done) {
            Out::Plain(w) => w,
            Out::Zstd(w) => w.finish()?,
            Out::Done => return Err(io::Error::other("archive already finished")),
        };
        inner.into_inner().map_err(|e| e.into_error())
    }

    /// Writes out everything written so far (a zstd stream ends its frame:
    /// what follows starts a new one) and returns where the set's content
    /// lies in its bytes so far: each frame's start, then the set's length
    /// (the [`Layout`]'s `frames`, the last pair where the next byte goes).
    fn cut(&mut self) -> io::Result<Vec<(u64, u64)>> {
        self.out()?.flush()?;
        let length = self
            .segments_mut()
            .map(|s| s.written)
            .ok_or_else(|| io::Error::other("archive already finished"))?;
        let table = match &self.out {
            Out::Zstd(w) => w.table(),
            _ => vec![(self.tar, length)],
        };
        match table.last() {
            Some(&(tar, set)) if tar == self.tar && set == length => Ok(table),
            _ => Err(io::Error::other(format!(
                "the frames written end at {:?}, the stream at ({}, {length})",
                table.last(),
                self.tar
            ))),
        }
    }

    /// The segment writer, to clean up after a failure.
    fn segments_mut(&mut self) -> Option<&mut SegmentWriter> {
        match &mut self.out {
            Out::Plain(w) => Some(w.get_mut()),
            Out::Zstd(w) => Some(w.get_mut().get_mut()),
            Out::Done => None,
        }
    }
}

/// Writes one set. Dropped before [`ArchiveWriter::finish`], it removes
/// every file it created.
pub struct ArchiveWriter {
    spec: SetSpec,
    first_file: PathBuf,
    header: ManifestHeader,
    stream: Stream,
    entries: Vec<ManifestEntry>,
    /// Per entry, where its content starts in the tar stream
    /// ([`Layout::NONE`]: none in this set).
    content: Vec<u64>,
    /// Where the content of the entry whose header was written last starts.
    content_at: Option<u64>,
    buf: Vec<u8>,
    incremental: Option<Base>,
}

/// What an incremental writer compares with: the settings, and the
/// parent's files by path, each taken out when its file is written, so that
/// a large block map is held once, never copied, and let go once used.
struct Base {
    block_size: Option<u64>,
    verify_unchanged: bool,
    files: std::collections::HashMap<String, ManifestEntry>,
}

impl Base {
    /// The block size of a file of `size` bytes whose entry in the parent
    /// is `parent` (behaviour §21): `block_kib` when set; else the parent's
    /// for the file, so that a chain keeps comparing the file's blocks
    /// (sets of the format before chose 1024 KiB); else one chosen from
    /// its size.
    fn block_size(&self, size: u64, parent: Option<&ManifestEntry>) -> u64 {
        self.block_size.unwrap_or_else(|| {
            parent
                .and_then(|p| p.blocks.as_ref())
                .map(|b| b.block_size)
                .filter(|&b| {
                    size >= b && Blocks::count(size, b) <= 2 * crate::incremental::AUTO_MAX_BLOCKS
                })
                .unwrap_or_else(|| crate::incremental::block_size_for(size))
        })
    }
}

/// What one file is compared with: the writer's settings and the parent's
/// entry of the same path.
struct Basis {
    block_size: u64,
    verify_unchanged: bool,
    parent: Option<ManifestEntry>,
}

/// A file's content as the first of two reads saw it.
struct FirstRead {
    blake3: String,
    blocks: BlockHashes,
}

/// The manifest entry of a file of an incremental writer, stored whole
/// until the writer finds it the same as its parent's or changed in a few
/// blocks.
fn incremental_file_entry(entry: &SourceEntry, inode: Option<u64>) -> ManifestEntry {
    ManifestEntry {
        kind: entry.kind,
        source: entry.source.to_string_lossy().into_owned(),
        path: entry.path.clone(),
        entry_type: EntryType::File,
        size: entry.size,
        mode: entry.mode,
        mtime: entry.mtime,
        blake3: None,
        target: None,
        store: Store::Stored,
        inode,
        blocks: None,
    }
}

/// Makes `out` a `same` entry: the parent's blake3, and its blocks with none
/// changed.
fn mark_same(out: &mut ManifestEntry, p: ManifestEntry) {
    out.store = Store::Same;
    out.blake3 = p.blake3;
    out.blocks = p.blocks.map(|b| Blocks {
        changed: Vec::new(),
        ..b
    });
}

/// Whether the parent's entry `p` can be carried as `same`: a `same` entry
/// carries the parent's blocks, so only where they are of this writer's
/// block size (and a file smaller than a block has none).
fn same_blocks_fit(entry: &SourceEntry, block_size: u64, p: &ManifestEntry) -> bool {
    (entry.size >= block_size)
        == p.blocks
            .as_ref()
            .is_some_and(|b| b.block_size == block_size)
}

impl std::fmt::Debug for ArchiveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveWriter")
            .field("spec", &self.spec)
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl ArchiveWriter {
    /// Starts a set with real files.
    pub fn create(spec: SetSpec, header: ManifestHeader) -> Result<ArchiveWriter, ArchiveError> {
        ArchiveWriter::create_with(spec, header, open_real_file())
    }

    /// Starts a set, creating its files with `open`.
    pub fn create_with(
        spec: SetSpec,
        header: ManifestHeader,
        open: OpenPart,
    ) -> Result<ArchiveWriter, ArchiveError> {
        ArchiveWriter::create_into(spec, header, Box::new(FolderTarget::new(open)))
    }

    /// Starts a set whose files `target` keeps until the commit.
    pub fn create_into(
        spec: SetSpec,
        header: ManifestHeader,
        mut target: Box<dyn SetTarget>,
    ) -> Result<ArchiveWriter, ArchiveError> {
        let first = spec.first_file();
        if target.taken(&first).map_err(|e| write_error(&first, e))? {
            return Err(ArchiveError::AlreadyExists(first));
        }
        let segments = SegmentWriter {
            limit: (spec.segment_size > 0).then_some(spec.segment_size),
            spec: spec.clone(),
            target: Some(target),
            current: None,
            in_current: 0,
            written: 0,
            files: Vec::new(),
            abandoned: false,
        };
        let sink = BufWriter::with_capacity(CHUNK, segments);
        let out = match spec.compression {
            Compression::None => Out::Plain(sink),
            level => match FrameWriter::new(sink, level, spec.threads, &spec.destination) {
                Ok(w) => Out::Zstd(Box::new(w)),
                Err(e) => {
                    return Err(ArchiveError::io("cannot set up compression for", &first)(e));
                }
            },
        };
        Ok(ArchiveWriter {
            first_file: first,
            spec,
            header,
            stream: Stream { out, tar: 0 },
            entries: Vec::new(),
            content: Vec::new(),
            content_at: None,
            buf: vec![0; CHUNK],
            incremental: None,
        })
    }

    /// Builds this set as behaviour §21 says: with block hashes for files of a
    /// block or more and, given a parent, as an incremental set on it, whose
    /// stream opens with a pax global header naming the parent (read by
    /// [`crate::parent_of`] without reading the set). Called before the
    /// first entry.
    pub fn set_incremental(&mut self, settings: Incremental) -> Result<(), ArchiveError> {
        if !self.entries.is_empty() {
            return Err(ArchiveError::Io {
                action: "cannot make incremental, entries already written to",
                path: self.first_file.clone(),
                source: io::Error::other("set_incremental comes before the first entry"),
            });
        }
        let Incremental {
            block_size,
            verify_unchanged,
            parent,
        } = settings;
        self.header.parent = parent.as_ref().map(|m| m.header.backup_number);
        self.header.chain = Some(
            parent
                .as_ref()
                .map_or(0, |m| m.header.chain.unwrap_or(0) + 1),
        );
        // The parent's entries are moved, not copied, when no one else holds it.
        let files = parent
            .map(|m| Arc::try_unwrap(m).unwrap_or_else(|shared| (*shared).clone()))
            .map(|m| m.entries)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.entry_type == EntryType::File)
            .map(|e| (e.path.clone(), e))
            .collect();
        if let Some(parent) = self.header.parent {
            let records = pax_records(&[(PARENT_RECORD, parent.to_string())]);
            let mut g = tar::Header::new_ustar();
            g.set_entry_type(tar::EntryType::XGlobalHeader);
            let written = (|| {
                g.set_path("GlobalHead")?;
                g.set_mode(0o644);
                g.set_size(records.len() as u64);
                g.set_cksum();
                let out = self.stream.out()?;
                out.write_all(g.as_bytes())?;
                out.write_all(&records)?;
                pad(out, records.len() as u64)
            })();
            written.map_err(|e| self.write_err(e))?;
        }
        self.incremental = Some(Base {
            block_size,
            verify_unchanged,
            files,
        });
        Ok(())
    }

    /// The set being written.
    pub fn spec(&self) -> &SetSpec {
        &self.spec
    }

    /// Sets the manifest's `lastLogSequence` (known only once the log was
    /// cut, under the data lock, after the writer was created).
    pub fn set_last_log_sequence(&mut self, seq: Option<u64>) {
        self.header.last_log_sequence = seq;
    }

    /// Adds an entry to the manifest, with where its content starts in
    /// the stream: after the header written last, for a file whose content
    /// this set holds.
    fn push_entry(&mut self, entry: ManifestEntry) {
        let at = self.content_at.take();
        let held = entry.entry_type == EntryType::File && entry.store != Store::Same;
        self.content
            .push(at.filter(|_| held).unwrap_or(Layout::NONE));
        self.entries.push(entry);
    }

    fn write_err(&self, e: io::Error) -> ArchiveError {
        write_error(&self.first_file, e)
    }

    /// Makes every wait for compression ask `stopped` (at least every
    /// 10 ms) and end the write with [`ArchiveError::Stopped`] once it
    /// says so: Stop never waits for a frame being compressed, whose
    /// worker abandons it. Between waits, [`Progress::is_stopped`] is
    /// asked as before.
    pub fn stop_when(&mut self, stopped: impl Fn() -> bool + Send + Sync + 'static) {
        if let Out::Zstd(w) = &mut self.stream.out {
            w.stop_when(std::sync::Arc::new(stopped));
        }
    }

    /// Stores one entry, reading a file's content once and hashing it on the way.
    pub fn append(
        &mut self,
        entry: &SourceEntry,
        progress: &mut dyn Progress,
    ) -> Result<(), ArchiveError> {
        self.append_from(entry, &entry.source, progress)
    }

    /// [`ArchiveWriter::append`], reading a file's content from `read`
    /// (a clone of the source, taken under the data lock) while the
    /// manifest names the source.
    pub fn append_from(
        &mut self,
        entry: &SourceEntry,
        read: &Path,
        progress: &mut dyn Progress,
    ) -> Result<(), ArchiveError> {
        if progress.is_stopped() {
            return Err(ArchiveError::Stopped);
        }
        let target = entry
            .target
            .as_ref()
            .map(|t| t.to_string_lossy().into_owned());
        let mut file = match entry.entry_type {
            EntryType::File => {
                Some(File::open(read).map_err(ArchiveError::io("cannot read", read))?)
            }
            _ => None,
        };
        let name = match entry.entry_type {
            EntryType::Dir => format!("{}/", entry.path),
            _ => entry.path.clone(),
        };
        if let (Some(f), Some(base)) = (file.as_mut(), self.incremental.as_mut()) {
            let parent = base.files.remove(&entry.path);
            let basis = Basis {
                block_size: base.block_size(entry.size, parent.as_ref()),
                verify_unchanged: base.verify_unchanged,
                parent,
            };
            let entry =
                self.append_incremental(entry, f, (basis, read == entry.source), progress)?;
            self.push_entry(entry);
            return Ok(());
        }
        let header = ustar_header(&name, entry, target.as_deref());
        self.write_header(header).map_err(|e| self.write_err(e))?;
        let blake3 = match file.as_mut() {
            Some(f) => Some(self.copy(f, entry, None, progress)?.0),
            None => None,
        };
        self.push_entry(ManifestEntry {
            kind: entry.kind,
            source: entry.source.to_string_lossy().into_owned(),
            path: entry.path.clone(),
            entry_type: entry.entry_type,
            size: if entry.entry_type == EntryType::File {
                entry.size
            } else {
                0
            },
            mode: entry.mode,
            mtime: entry.mtime,
            blake3,
            target,
            store: Store::Stored,
            inode: None,
            blocks: None,
        });
        Ok(())
    }

    /// Stores a file of an incremental writer (behaviour §21): `same` when its
    /// size, time and inode (read from the open file, and its blake3 with
    /// `verify_unchanged`) are the parent's; the blocks that differ when
    /// the parent has its blocks and at most half of them changed; else
    /// whole, with its blocks hashed. A file read from a clone (`from_source`
    /// false) is compared by content only: the clone's time and inode are
    /// its own.
    fn append_incremental(
        &mut self,
        entry: &SourceEntry,
        file: &mut File,
        (basis, from_source): (Basis, bool),
        progress: &mut dyn Progress,
    ) -> Result<ManifestEntry, ArchiveError> {
        use std::os::unix::fs::MetadataExt;
        let meta = file
            .metadata()
            .map_err(ArchiveError::io("cannot read", &entry.source))?;
        let inode = from_source.then(|| meta.ino());
        let Basis {
            block_size,
            verify_unchanged,
            mut parent,
        } = basis;
        let unchanged = from_source
            && parent.as_ref().is_some_and(|p| {
                p.size == entry.size
                    && meta.len() == entry.size
                    && p.mtime == entry.mtime
                    && sauve_durable::mtime_ns(&meta) == entry.mtime
                    && p.inode == inode
            });
        let mut out = incremental_file_entry(entry, inode);
        if unchanged
            && !verify_unchanged
            && let Some(p) = parent.take_if(|p| same_blocks_fit(entry, block_size, p))
        {
            if progress.is_stopped() {
                return Err(ArchiveError::Stopped);
            }
            progress.advance(entry.size);
            mark_same(&mut out, p);
            return Ok(out);
        }
        let parent_blocks = parent
            .as_ref()
            .and_then(|p| p.blocks.as_ref())
            .filter(|b| b.block_size == block_size && entry.size >= block_size);
        let compare = parent.is_some() && (unchanged || parent_blocks.is_some());
        let mut first = if compare {
            Some(self.first_read(file, entry, block_size, progress)?)
        } else {
            None
        };
        let same_content = matches!((&first, &parent), (Some(first), Some(p))
            if p.size == entry.size
                && p.blake3.as_deref() == Some(first.blake3.as_str())
                && same_blocks_fit(entry, block_size, p));
        if same_content && let Some(p) = parent {
            mark_same(&mut out, p);
            return Ok(out);
        }
        if let (Some(first), Some(pb)) = (first.as_mut(), parent_blocks)
            && self.append_changed_blocks(
                file,
                entry,
                block_size,
                (first, pb),
                &mut out,
                progress,
            )?
        {
            return Ok(out);
        }
        self.append_whole(file, entry, block_size, first.as_ref(), out, progress)
    }

    /// Stores only the blocks of `file` whose hashes differ from the
    /// parent's `pb`, when at most half of them do: `out` becomes a
    /// `blocks` entry and this says `true`. Otherwise it writes nothing and
    /// says `false` (the file is then stored whole).
    fn append_changed_blocks(
        &mut self,
        file: &mut File,
        entry: &SourceEntry,
        block_size: u64,
        (first, pb): (&mut FirstRead, &Blocks),
        out: &mut ManifestEntry,
        progress: &mut dyn Progress,
    ) -> Result<bool, ArchiveError> {
        let changed: Vec<u32> = first
            .blocks
            .iter()
            .enumerate()
            .filter(|&(i, h)| pb.hashes.get(i) != Some(h))
            .map(|(i, _)| i as u32)
            .collect();
        if changed.len() * 2 > first.blocks.len() {
            return Ok(false);
        }
        let blocks_name = format!("{BLOCKS_PREFIX}{}", entry.path);
        let head = BlocksHead {
            block_size,
            size: entry.size,
            indices: changed.clone(),
        };
        let as_entry = SourceEntry {
            size: head.entry_len(),
            ..entry.clone()
        };
        self.write_header(ustar_header(&blocks_name, &as_entry, None))
            .map_err(|e| self.write_err(e))?;
        self.write_blocks(file, entry, &head, &first.blocks, progress)?;
        out.store = Store::Blocks;
        out.blake3 = Some(first.blake3.clone());
        // Moved, not copied: the first read's hashes are this entry's.
        out.blocks = Some(Blocks {
            block_size,
            hashes: std::mem::take(&mut first.blocks),
            changed,
        });
        Ok(true)
    }

    /// Stores `file` whole, its blocks hashed when it has at least one.
    /// After a `first` read it reads the file again from the start, without
    /// counting progress twice, and refuses it if it changed between the
    /// two reads.
    fn append_whole(
        &mut self,
        file: &mut File,
        entry: &SourceEntry,
        block_size: u64,
        first: Option<&FirstRead>,
        mut out: ManifestEntry,
        progress: &mut dyn Progress,
    ) -> Result<ManifestEntry, ArchiveError> {
        if first.is_some() {
            use std::io::Seek;
            file.seek(io::SeekFrom::Start(0))
                .map_err(ArchiveError::io("cannot read", &entry.source))?;
        }
        self.write_header(ustar_header(&entry.path, entry, None))
            .map_err(|e| self.write_err(e))?;
        let blocked = (entry.size >= block_size).then_some(block_size);
        let counted: &mut dyn Progress = if first.is_some() {
            &mut Uncounted(progress)
        } else {
            progress
        };
        let (blake3, blocks) = self.copy(file, entry, blocked, counted)?;
        if let Some(first) = first
            && first.blake3 != blake3
        {
            return Err(ArchiveError::SourceRewritten(entry.source.clone()));
        }
        out.blake3 = Some(blake3);
        out.blocks = blocks.map(|hashes| Blocks {
            block_size,
            hashes,
            changed: Vec::new(),
        });
        Ok(out)
    }

    /// Reads a file once for its blake3 and block hashes, counting progress.
    fn first_read(
        &mut self,
        file: &mut File,
        entry: &SourceEntry,
        block_size: u64,
        progress: &mut dyn Progress,
    ) -> Result<FirstRead, ArchiveError> {
        let mut whole = blake3::Hasher::new();
        let mut blocks = BlockHasher::new(block_size, entry.size);
        let mut read = 0u64;
        loop {
            if progress.is_stopped() {
                return Err(ArchiveError::Stopped);
            }
            let n = read_some(file, &mut self.buf)
                .map_err(ArchiveError::io("cannot read", &entry.source))?;
            if n == 0 {
                break;
            }
            whole.update(&self.buf[..n]);
            blocks.update(&self.buf[..n]);
            read += n as u64;
            progress.advance(n as u64);
        }
        if read != entry.size {
            return Err(ArchiveError::SourceChanged {
                path: entry.source.clone(),
                expected: entry.size,
                found: read,
            });
        }
        Ok(FirstRead {
            blake3: whole.finalize().to_hex().to_string(),
            blocks: if entry.size >= block_size {
                blocks.finish()
            } else {
                BlockHashes::default()
            },
        })
    }

    /// Writes a blocks entry's content: its head, then each block named,
    /// read again and checked against the hash the first read gave.
    fn write_blocks(
        &mut self,
        file: &File,
        entry: &SourceEntry,
        head: &BlocksHead,
        hashes: &BlockHashes,
        progress: &mut dyn Progress,
    ) -> Result<(), ArchiveError> {
        use std::os::unix::fs::FileExt;
        let out = self
            .stream
            .out()
            .map_err(|e| write_error(&self.first_file, e))?;
        out.write_all(&head.encode())
            .map_err(|e| write_error(&self.first_file, e))?;
        for &i in &head.indices {
            if progress.is_stopped() {
                return Err(ArchiveError::Stopped);
            }
            let range = head.range(i);
            let mut hasher = blake3::Hasher::new();
            let mut at = range.start;
            while at < range.end {
                let n = ((range.end - at) as usize).min(CHUNK);
                file.read_exact_at(&mut self.buf[..n], at).map_err(|e| {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        ArchiveError::SourceRewritten(entry.source.clone())
                    } else {
                        ArchiveError::io("cannot read", &entry.source)(e)
                    }
                })?;
                hasher.update(&self.buf[..n]);
                let out = self
                    .stream
                    .out()
                    .map_err(|e| write_error(&self.first_file, e))?;
                out.write_all(&self.buf[..n])
                    .map_err(|e| write_error(&self.first_file, e))?;
                at += n as u64;
            }
            if hashes.get(i as usize) != Some(compact(hasher.finalize())) {
                return Err(ArchiveError::SourceRewritten(entry.source.clone()));
            }
        }
        let out = self
            .stream
            .out()
            .map_err(|e| write_error(&self.first_file, e))?;
        pad(out, head.entry_len()).map_err(|e| self.write_err(e))
    }

    /// Writes a header, preceded by a pax extended header when the path,
    /// the link target or the size do not fit ustar.
    fn write_header(
        &mut self,
        (header, pax): (tar::Header, Vec<(&'static str, String)>),
    ) -> io::Result<()> {
        let out = self.stream.out()?;
        if !pax.is_empty() {
            let records = pax_records(&pax);
            let mut x = tar::Header::new_ustar();
            x.set_entry_type(tar::EntryType::XHeader);
            x.set_path("PaxHeader")?;
            x.set_mode(0o644);
            x.set_size(records.len() as u64);
            x.set_cksum();
            out.write_all(x.as_bytes())?;
            out.write_all(&records)?;
            pad(out, records.len() as u64)?;
        }
        out.write_all(header.as_bytes())?;
        self.content_at = Some(self.stream.tar);
        Ok(())
    }

    /// Copies a file's content into the stream; returns its blake3 and,
    /// given a block size, its block hashes.
    fn copy(
        &mut self,
        file: &mut File,
        entry: &SourceEntry,
        block_size: Option<u64>,
        progress: &mut dyn Progress,
    ) -> Result<(String, Option<BlockHashes>), ArchiveError> {
        let mut hasher = blake3::Hasher::new();
        let mut blocks = block_size.map(|b| BlockHasher::new(b, entry.size));
        let mut left = entry.size;
        let read_err = ArchiveError::io("cannot read", &entry.source);
        while left > 0 {
            if progress.is_stopped() {
                return Err(ArchiveError::Stopped);
            }
            let want = left.min(CHUNK as u64) as usize;
            let n = match read_some(file, &mut self.buf[..want]) {
                Ok(n) => n,
                Err(e) => return Err(read_err(e)),
            };
            if n == 0 {
                return Err(ArchiveError::SourceChanged {
                    path: entry.source.clone(),
                    expected: entry.size,
                    found: entry.size - left,
                });
            }
            hasher.update(&self.buf[..n]);
            if let Some(b) = blocks.as_mut() {
                b.update(&self.buf[..n]);
            }
            let out = self
                .stream
                .out()
                .map_err(|e| write_error(&self.first_file, e))?;
            if let Err(e) = out.write_all(&self.buf[..n]) {
                return Err(self.write_err(e));
            }
            left -= n as u64;
            progress.advance(n as u64);
        }
        // A file that grew is as inconsistent as one that shrank.
        match read_some(file, &mut self.buf[..1]) {
            Ok(0) => {}
            Ok(_) => {
                return Err(ArchiveError::SourceChanged {
                    path: entry.source.clone(),
                    expected: entry.size,
                    found: entry.size + 1,
                });
            }
            Err(e) => return Err(read_err(e)),
        }
        let out = self
            .stream
            .out()
            .map_err(|e| write_error(&self.first_file, e))?;
        pad(out, entry.size).map_err(|e| self.write_err(e))?;
        Ok((
            hasher.finalize().to_hex().to_string(),
            blocks.map(BlockHasher::finish),
        ))
    }

    /// Writes the manifest and the end of the archive, fsyncs every file,
    /// and returns the set, still under its `.part` names.
    pub fn finish(mut self, ended_at: jiff::Timestamp) -> Result<PendingSet, ArchiveError> {
        // The parent's manifest is no longer needed: its block maps are not
        // held beside this set's while the manifest is written.
        self.incremental = None;
        // The manifest starts a frame of its own, which the index at the
        // end points to (crate::index), and lists where every frame before
        // it starts.
        let compressed = matches!(self.stream.out, Out::Zstd(_));
        let frames = self.stream.cut().map_err(|e| self.write_err(e))?;
        let at = frames.last().map_or(0, |&(_, set)| set);
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            version: VERSION,
            header: self.header.clone(),
            ended_at,
            entries: std::mem::take(&mut self.entries),
            indexed: true,
            layout: Some(Layout {
                content: Words(std::mem::take(&mut self.content)),
                compressed,
                frames: Words(frames.into_iter().flat_map(|(t, s)| [t, s]).collect()),
            }),
        };
        // The manifest is encoded twice rather than held: once to count its
        // bytes for its tar header, once into the stream (a 64 GiB file's
        // block map is 43 MiB of JSON).
        let encode_err = |e: serde_json::Error| ArchiveError::Io {
            action: "cannot encode the manifest of",
            path: self.first_file.clone(),
            source: io::Error::other(e),
        };
        let mut counted = Counted::new(io::sink());
        serde_json::to_writer_pretty(&mut counted, &manifest).map_err(encode_err)?;
        let json_len = counted.bytes;
        let entry = SourceEntry {
            kind: crate::manifest::EntryKind::Data,
            source: PathBuf::new(),
            path: MANIFEST_NAME.to_owned(),
            entry_type: EntryType::File,
            size: json_len,
            mode: 0o644,
            mtime: manifest.ended_at.as_nanosecond() as i64,
            target: None,
        };
        let header = ustar_header(MANIFEST_NAME, &entry, None);
        let result = (|| {
            self.write_header(header)?;
            let out = self.stream.out()?;
            let mut written = Counted::new(io::BufWriter::with_capacity(CHUNK, out));
            // An error of the stream itself comes back as it was (a full
            // disk, Stop, the store's), not as an encoding error.
            serde_json::to_writer_pretty(&mut written, &manifest).map_err(io::Error::from)?;
            written.inner.flush()?;
            if written.bytes != json_len {
                return Err(io::Error::other(format!(
                    "the manifest encoded to {json_len} bytes, then to {}",
                    written.bytes
                )));
            }
            let hash = written.hash.finalize();
            drop(written);
            let out = self.stream.out()?;
            pad(out, json_len)?;
            out.write_all(&[0; 2 * BLOCK])?;
            let mut segments = self.stream.finish()?;
            let index = crate::index::Index {
                at,
                json_len,
                hash: *hash.as_bytes(),
            };
            segments.write_all(&index.encode())?;
            segments.finish()?;
            Ok((segments, index))
        })();
        match result {
            Ok((mut segments, index)) => Ok(PendingSet {
                files: std::mem::take(&mut segments.files),
                target: segments.target.take(),
                manifest,
                index,
                committed: false,
            }),
            Err(e) => Err(self.write_err(e)),
        }
    }
}

impl Drop for ArchiveWriter {
    fn drop(&mut self) {
        if let Some(segments) = self.stream.segments_mut() {
            segments.remove_files();
        }
    }
}

/// A writer that counts and hashes what goes through it.
struct Counted<W> {
    inner: W,
    bytes: u64,
    hash: blake3::Hasher,
}

impl<W: Write> Counted<W> {
    fn new(inner: W) -> Counted<W> {
        Counted {
            inner,
            bytes: 0,
            hash: blake3::Hasher::new(),
        }
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Progress that only relays Stop: for a second read of bytes already counted.
struct Uncounted<'a>(&'a mut dyn Progress);

impl Progress for Uncounted<'_> {
    fn is_stopped(&self) -> bool {
        self.0.is_stopped()
    }
}

/// A complete, fsynced set under `.part` names. Dropped without
/// [`PendingSet::commit`], its files are removed.
pub struct PendingSet {
    files: Vec<(PathBuf, PathBuf)>,
    target: Option<Box<dyn SetTarget>>,
    manifest: Manifest,
    /// The index written at the end of the set.
    index: crate::index::Index,
    committed: bool,
}

impl std::fmt::Debug for PendingSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSet")
            .field("files", &self.files)
            .field("committed", &self.committed)
            .finish_non_exhaustive()
    }
}

impl PendingSet {
    /// The `.part` files, in order.
    pub fn part_files(&self) -> Vec<PathBuf> {
        self.files.iter().map(|(p, _)| p.clone()).collect()
    }

    /// The names the files get at commit, in order.
    pub fn final_files(&self) -> Vec<PathBuf> {
        self.files.iter().map(|(_, f)| f.clone()).collect()
    }

    /// The manifest written at the end of the set.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Verifies the set under its `.part` names (behaviour §5), against the
    /// manifest and index written: every segment read through, every entry
    /// as the manifest declares it, the manifest's bytes and the index at
    /// the end as written. Returns the bytes of content checked.
    pub fn verify(&self, progress: &mut dyn Progress) -> Result<u64, ArchiveError> {
        let header = &self.manifest.header;
        let files = self.part_files();
        let set = SetFiles {
            dir: files
                .first()
                .and_then(|f| f.parent())
                .map_or_else(PathBuf::new, Path::to_path_buf),
            name: ArchiveName {
                base: header.base_name.clone(),
                number: header.backup_number,
                segment: None,
                kind: header.kind,
                part: false,
            },
            files,
        };
        crate::verify::verify_written(&set, (&self.manifest, &self.index), progress)
    }

    /// What each file holds as stored, piece by piece (behaviour §23), in
    /// order: every file when the target sums what it stores, else none.
    pub fn pieces(&mut self) -> Vec<Pieces> {
        let Some(target) = self.target.as_mut() else {
            return Vec::new();
        };
        let all: Option<Vec<Pieces>> = self.files.iter().map(|(p, _)| target.pieces(p)).collect();
        all.unwrap_or_default()
    }

    /// Whether verify can read the set before its commit (see
    /// [`SetTarget::readable_before_commit`]).
    pub fn readable_before_commit(&self) -> bool {
        self.target
            .as_ref()
            .is_none_or(|t| t.readable_before_commit())
    }

    /// Gives every file its final name (in a folder, then fsyncs it). An
    /// existing file is never replaced: if any final name is taken, no file
    /// gets its name.
    pub fn commit(mut self) -> Result<Vec<PathBuf>, ArchiveError> {
        self.commit_in_place()
    }

    /// [`PendingSet::commit`], giving back the set's manifest too (moved,
    /// not copied).
    pub fn commit_keeping_manifest(mut self) -> Result<(Vec<PathBuf>, Manifest), ArchiveError> {
        let files = self.commit_in_place()?;
        let entries = std::mem::take(&mut self.manifest.entries);
        Ok((
            files,
            Manifest {
                entries,
                ..self.manifest.clone()
            },
        ))
    }

    fn commit_in_place(&mut self) -> Result<Vec<PathBuf>, ArchiveError> {
        let Some(target) = self.target.as_mut() else {
            return Err(ArchiveError::Io {
                action: "cannot commit",
                path: self.final_files().first().cloned().unwrap_or_default(),
                source: io::Error::other("the set has no target"),
            });
        };
        target.commit(&self.files, self.manifest.set_mode())?;
        self.committed = true;
        Ok(self.final_files())
    }
}

impl Drop for PendingSet {
    fn drop(&mut self) {
        if !self.committed
            && let Some(target) = self.target.as_mut()
        {
            for (part, _) in &self.files {
                target.discard(part);
            }
        }
    }
}

/// A write error, as -34 material when the disk is full.
fn write_error(first_file: &Path, e: io::Error) -> ArchiveError {
    // A store's own error, carried through `io::Write`, keeps its status.
    let e = match e.downcast::<sauve_store::StoreError>() {
        Ok(store) => return ArchiveError::Store(store),
        Err(e) => e,
    };
    // A wait for compression that Stop ended.
    if e.get_ref().is_some_and(|inner| inner.is::<StopAsked>()) {
        return ArchiveError::Stopped;
    }
    let action = if is_disk_full(&e) {
        "disk full while writing"
    } else {
        "cannot write"
    };
    ArchiveError::Io {
        action,
        path: first_file.to_path_buf(),
        source: e,
    }
}

fn read_some(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn pad(out: &mut dyn Write, len: u64) -> io::Result<()> {
    let rest = (BLOCK - (len % BLOCK as u64) as usize) % BLOCK;
    out.write_all(&[0; BLOCK][..rest])
}

/// The largest size a ustar header holds in octal.
const USTAR_MAX_SIZE: u64 = 0o777_7777_7777;

/// A ustar header for `entry`, and the pax records needed where ustar falls short.
fn ustar_header(
    name: &str,
    entry: &SourceEntry,
    target: Option<&str>,
) -> (tar::Header, Vec<(&'static str, String)>) {
    let mut pax = Vec::new();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(match entry.entry_type {
        EntryType::File => tar::EntryType::Regular,
        EntryType::Dir => tar::EntryType::Directory,
        EntryType::Symlink => tar::EntryType::Symlink,
    });
    h.set_mode(entry.mode & 0o7777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(u64::try_from(entry.mtime.div_euclid(1_000_000_000)).unwrap_or(0));
    let size = if entry.entry_type == EntryType::File {
        entry.size
    } else {
        0
    };
    if size > USTAR_MAX_SIZE {
        pax.push(("size", size.to_string()));
        h.set_size(0);
    } else {
        h.set_size(size);
    }
    if h.set_path(name).is_err() {
        pax.push(("path", name.to_owned()));
        // Readers that know pax use the record; the ustar name is a hint.
        let short: String = name
            .chars()
            .rev()
            .take(90)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let short = short.trim_start_matches('/');
        if h.set_path(short).is_err() {
            let _ = h.set_path("long-name");
        }
    }
    if let Some(t) = target
        && h.set_link_name(t).is_err()
    {
        pax.push(("linkpath", t.to_owned()));
        let _ = h.set_link_name("long-link");
    }
    h.set_cksum();
    (h, pax)
}

/// pax records: `"<len> <key>=<value>\n"`, the length counting itself.
fn pax_records(records: &[(&str, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let body = format!(" {key}={value}\n");
        let mut len = body.len() + 1;
        while len.to_string().len() + body.len() != len {
            len = len.to_string().len() + body.len();
        }
        out.extend_from_slice(len.to_string().as_bytes());
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A set whose frame is held in its worker (the test hold) when Stop
    /// comes, at each compression level: `finish` ends with Stopped while
    /// the frame is still held, and the writer, dropped, leaves no file.
    #[test]
    fn stop_while_a_frame_is_compressed_ends_the_set_at_once_and_leaves_nothing() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for compression in [Compression::Fast, Compression::Compact] {
            let dir = tempfile::tempdir().unwrap();
            let source = dir.path().join("App.4DD");
            std::fs::write(&source, vec![7u8; 3 << 20]).unwrap();
            let destination = dir.path().join("Backups");
            std::fs::create_dir(&destination).unwrap();
            let hold = crate::FrameHold::on(&destination);
            let spec = SetSpec {
                destination: destination.clone(),
                base: "App".to_owned(),
                number: 1.into(),
                kind: SetKind::Backup,
                compression,
                segment_size: 0,
                threads: 2,
            };
            let header =
                ManifestHeader::new(SetKind::Backup, 1, "App", jiff::Timestamp::UNIX_EPOCH);
            let mut w = ArchiveWriter::create(spec, header).unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let asked = Arc::clone(&stop);
            w.stop_when(move || asked.load(Ordering::Relaxed));
            let entry = SourceEntry {
                kind: crate::manifest::EntryKind::Data,
                source: source.clone(),
                path: "Data/App.4DD".to_owned(),
                entry_type: EntryType::File,
                size: 3 << 20,
                mode: 0o600,
                mtime: 0,
                target: None,
            };
            w.append(&entry, &mut NoProgress).unwrap();
            let (tx, writer) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(w.finish(jiff::Timestamp::UNIX_EPOCH).map(drop));
            });
            runtime.block_on(hold.held());
            stop.store(true, Ordering::Relaxed);
            // A guard, not a measure: without the fix `finish` never ends.
            let result = writer
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("finish ended at Stop");
            assert!(
                matches!(result, Err(ArchiveError::Stopped)),
                "{compression:?}: {result:?}"
            );
            assert!(
                hold.counts().holding > 0,
                "{compression:?}: ended while held"
            );
            let left: Vec<_> = std::fs::read_dir(&destination).unwrap().collect();
            assert!(left.is_empty(), "{compression:?}: {left:?}");
            hold.release();
        }
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        let r = pax_records(&[("path", "a".repeat(5)), ("path", "b".repeat(94))]);
        let text = String::from_utf8(r).unwrap();
        for line in text.split_inclusive('\n') {
            let (len, _) = line.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), line.len(), "{line:?}");
        }
    }
}
