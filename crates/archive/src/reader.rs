//! Reading a set back: segments chained in order, zstd detected by its magic
//! (frames decompressed on every core, [`crate::frames`]),
//! tar entries handed to a visitor, the manifest checked to be last, the end
//! of the archive checked to be present.

use sauve_number::BackupNumber;
use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::rc::Rc;

use crate::error::ArchiveError;
use crate::frames::{self, FrameReader};
use crate::index::DeclaredSet;
use crate::kind::SetKind;
use crate::manifest::{EntryType, MANIFEST_NAME, Manifest};
use crate::naming::SetFiles;
use crate::source::SegmentSource;
use crate::source::{MANIFEST_LIMIT, TAIL_LIMIT, ZSTD_MAGIC, parse_manifest, tar_checksum_ok};

/// An entry as read from the stream.
#[derive(Clone, Debug)]
pub(crate) struct ReadEntry {
    pub(crate) path: String,
    pub(crate) entry_type: EntryType,
    pub(crate) size: u64,
    pub(crate) target: Option<String>,
    /// The permission bits of the tar header.
    pub(crate) mode: u32,
    /// The tar header's modification time, whole seconds.
    pub(crate) mtime_secs: u64,
    /// A blocks entry (behaviour §21): `path` is the file's, without
    /// [`crate::BLOCKS_PREFIX`]; `size` the entry's.
    pub(crate) blocks: bool,
}

/// What the stream showed of an entry, to compare with the manifest.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) path: String,
    pub(crate) entry_type: EntryType,
    pub(crate) size: u64,
    pub(crate) blake3: Option<String>,
    pub(crate) target: Option<String>,
    pub(crate) mode: u32,
    pub(crate) mtime_secs: u64,
    /// A blocks entry: the block size and the hash of each block held.
    pub(crate) blocks: Option<(u64, Vec<(u32, u64)>)>,
}

impl Seen {
    /// What the stream showed of `entry`, with its content's hash for a file.
    pub(crate) fn of(entry: &ReadEntry, blake3: Option<String>) -> Seen {
        Seen {
            path: entry.path.clone(),
            entry_type: entry.entry_type,
            size: entry.size,
            blake3,
            target: entry.target.clone(),
            mode: entry.mode,
            mtime_secs: entry.mtime_secs,
            blocks: None,
        }
    }

    /// What the stream showed of a blocks entry: the file's size, the
    /// blocks' hashes.
    pub(crate) fn of_blocks(
        entry: &ReadEntry,
        head: &crate::incremental::BlocksHead,
        hashes: Vec<(u32, u64)>,
    ) -> Seen {
        Seen {
            size: head.size,
            blocks: Some((head.block_size, hashes)),
            ..Seen::of(entry, None)
        }
    }
}

/// The parent an incremental set's global header names.
fn read_parent_record(kind: SetKind, content: &mut dyn Read) -> Result<BackupNumber, ArchiveError> {
    let mut text = String::new();
    content
        .take(64 << 10)
        .read_to_string(&mut text)
        .map_err(|e| {
            ArchiveError::corrupt(kind, format!("the global header cannot be read: {e}"))
        })?;
    text.lines()
        .find_map(|l| {
            let (_, record) = l.split_once(' ')?;
            let value = record
                .strip_prefix(crate::writer::PARENT_RECORD)?
                .strip_prefix('=')?;
            value.parse::<u32>().ok().map(BackupNumber::new)
        })
        .ok_or_else(|| {
            ArchiveError::corrupt(
                kind,
                format!(
                    "the global header names no parent (accepted: {}=N, as sauve writes it)",
                    crate::writer::PARENT_RECORD
                ),
            )
        })
}

/// The set an incremental set builds on, read from the head of its stream
/// alone (behaviour §21); `None` for a full set.
pub fn parent_of(set: &SetFiles) -> Result<Option<BackupNumber>, ArchiveError> {
    let kind = set.name.kind;
    let files = Files(&set.files);
    let first = files.names().first().cloned().unwrap_or_default();
    let cannot = |e: io::Error| ArchiveError::corrupt(kind, format!("cannot read {first}: {e}"));
    parent_in(kind, &first, files.open(0).map_err(cannot)?)
}

/// [`parent_of`] from the first bytes of a set's first file or object
/// (`first` names it), as a store's ranged read gives them: 256 KiB hold
/// the head of any set sauve writes.
pub fn parent_in_head(
    kind: SetKind,
    first: &str,
    head: &[u8],
) -> Result<Option<BackupNumber>, ArchiveError> {
    parent_in(kind, first, head)
}

/// The parent record at the head of the stream `raw` starts.
fn parent_in(
    kind: SetKind,
    first: &str,
    raw: impl Read,
) -> Result<Option<BackupNumber>, ArchiveError> {
    let cannot = |e: io::Error| ArchiveError::corrupt(kind, format!("cannot read {first}: {e}"));
    let mut raw = BufReader::new(raw);
    let head = raw.fill_buf().map_err(cannot)?;
    let mut stream: Box<dyn Read> = if head.starts_with(&ZSTD_MAGIC) {
        let mut d = zstd::stream::read::Decoder::with_buffer(raw).map_err(cannot)?;
        d.window_log_max(27).map_err(cannot)?;
        Box::new(d)
    } else {
        Box::new(raw)
    };
    let mut block = [0u8; 512];
    stream.read_exact(&mut block).map_err(cannot)?;
    if !tar_checksum_ok(&block) {
        return Err(ArchiveError::corrupt(
            kind,
            format!("{first} is not a sauve archive (its first tar header is damaged)"),
        ));
    }
    if block[156] != b'g' {
        return Ok(None);
    }
    let header = tar::Header::from_byte_slice(&block);
    let size = header.size().map_err(cannot)?;
    read_parent_record(kind, &mut stream.take(size)).map(Some)
}

/// Reads a blocks entry's content, handing each block to `each` (index,
/// offset in the file, bytes), and returns what was seen of it.
pub(crate) fn read_blocks_entry(
    kind: SetKind,
    entry: &ReadEntry,
    content: &mut dyn Read,
    each: impl FnMut(u32, u64, &[u8]) -> Result<(), ArchiveError>,
) -> Result<Seen, VisitError> {
    use crate::incremental::BlocksReadError;
    match crate::incremental::read_blocks(content, entry.size, each) {
        Ok((head, hashes)) => Ok(Seen::of_blocks(entry, &head, hashes)),
        Err(BlocksReadError::Stream(e)) => Err(VisitError::Stream(e)),
        Err(BlocksReadError::Bad(why)) => Err(ArchiveError::corrupt(
            kind,
            format!("the blocks entry of {} is not valid: {why}", entry.path),
        )
        .into()),
        Err(BlocksReadError::Other(e)) => Err(e.into()),
    }
}

/// Why a visitor stopped.
#[derive(Debug)]
pub(crate) enum VisitError {
    /// Reading the entry's content from the archive failed: a damaged stream.
    Stream(io::Error),
    /// Anything else.
    Other(ArchiveError),
}

impl From<ArchiveError> for VisitError {
    fn from(e: ArchiveError) -> VisitError {
        VisitError::Other(e)
    }
}

/// What a reader does with a set's entries.
pub(crate) trait Visitor {
    /// One entry, with its content to read or leave (it is skipped).
    fn entry(&mut self, entry: &ReadEntry, content: &mut dyn Read) -> Result<(), VisitError>;
    /// The manifest, once every entry was seen and before the end of the
    /// stream is checked, so that a damaged entry is named before a damaged
    /// compressed frame is reported.
    fn manifest(&mut self, manifest: &Manifest) -> Result<(), ArchiveError> {
        let _ = manifest;
        Ok(())
    }
    /// Whether the visitor was asked to stop (a first pass for the
    /// manifest asks it too).
    fn is_stopped(&self) -> bool {
        false
    }
    /// Whether the visitor must know the manifest before the first entry
    /// (it writes what it reads): a set without an index is then read
    /// twice, the first time for its manifest alone.
    fn needs_manifest_first(&self) -> bool {
        false
    }
    /// The manifest the set declares, before its first entry, when it is
    /// known (always, for a visitor that needs it first). Every entry the
    /// visitor is then given has the type and size the manifest declares.
    fn declared(&mut self, manifest: &Manifest) -> Result<(), ArchiveError> {
        let _ = manifest;
        Ok(())
    }
}

/// The segments of a set on disk.
pub(crate) struct Files<'a>(pub(crate) &'a [PathBuf]);

impl SegmentSource for Files<'_> {
    fn names(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect()
    }

    fn open(&self, index: usize) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.file(index)?))
    }

    fn lengths(&self) -> Option<Vec<u64>> {
        self.0
            .iter()
            .map(|p| {
                std::fs::metadata(p)
                    .ok()
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
            })
            .collect()
    }

    fn open_at(&self, index: usize, offset: u64) -> io::Result<Box<dyn Read + '_>> {
        use std::io::{Seek, SeekFrom};
        let mut file = self.file(index)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(file))
    }
}

impl Files<'_> {
    /// Segment `index`, opened; the error names it.
    fn file(&self, index: usize) -> io::Result<File> {
        let path = self
            .0
            .get(index)
            .ok_or_else(|| io::Error::other("no such segment"))?;
        File::open(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open segment {}: {e}", path.display()),
            )
        })
    }
}

/// The segments of a set as one stream, remembering which one is being read.
struct Chain<'a> {
    source: &'a dyn SegmentSource,
    count: usize,
    next: usize,
    current: Option<Box<dyn Read + 'a>>,
    at: Rc<Cell<usize>>,
    /// The last bytes read (at most [`crate::index::LEN`]): the index, once
    /// the set is read through.
    last: Rc<std::cell::RefCell<Vec<u8>>>,
}

impl Read for Chain<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(f) = self.current.as_mut() {
                let n = f.read(buf)?;
                if n > 0 {
                    let mut last = self.last.borrow_mut();
                    last.extend_from_slice(&buf[n.saturating_sub(crate::index::LEN)..n]);
                    let extra = last.len().saturating_sub(crate::index::LEN);
                    last.drain(..extra);
                }
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.current = None;
            }
            if self.next >= self.count {
                return Ok(0);
            }
            let segment = self.source.open(self.next)?;
            self.at.set(self.next);
            self.next += 1;
            self.current = Some(segment);
        }
    }
}

/// Checks that every segment of a located set is a file, and names the
/// first one (as messages name the set).
pub(crate) fn present(set: &SetFiles) -> Result<String, ArchiveError> {
    if let Some(f) = set.files.iter().find(|f| !f.is_file()) {
        return Err(ArchiveError::Missing {
            kind: set.name.kind,
            what: format!("{} not found", f.display()),
        });
    }
    Ok(set
        .files
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_default())
}

/// Reads a whole set from any source of segments: every entry goes to the
/// visitor with its content, which it may read or leave (it is skipped).
/// Returns the manifest, after checking that it is last and that the
/// archive's end is intact; `first` names the set's first segment in
/// messages.
///
/// The manifest is found first where the set has an index and the source
/// can be read from any offset ([`crate::index`]), or by a first pass
/// when the visitor needs it first; the visitor is then told it before
/// any entry, every entry is checked against it as its header is read
/// (an entry larger than declared is refused before any of it is read),
/// and the stream's own manifest must be the same.
pub(crate) fn scan_source(
    source: &dyn SegmentSource,
    kind: SetKind,
    first: &str,
    visitor: &mut dyn Visitor,
) -> Result<Manifest, ArchiveError> {
    let known = match crate::index::locate(source, kind)? {
        Some(declared) => Some((declared.manifest, declared.hash)),
        None if visitor.needs_manifest_first() => {
            let mut first_pass = FirstPass(&|| visitor.is_stopped());
            match scan_stream(source, kind, first, &mut first_pass, None)? {
                (Some(manifest), hash) => Some((manifest, hash)),
                (None, _) => None,
            }
        }
        None => None,
    };
    let Some((manifest, hash)) = known else {
        return match scan_stream(source, kind, first, visitor, None)? {
            (Some(manifest), _) => Ok(manifest),
            (None, _) => Err(ArchiveError::corrupt(kind, "the manifest is missing")),
        };
    };
    visitor.declared(&manifest)?;
    let declared = Declared::of(&manifest, hash);
    // The stream's manifest, once its hash is the declared one's, is not
    // parsed again: the declared one is returned.
    match scan_stream(source, kind, first, visitor, Some(&declared))? {
        (Some(stream), _) => Ok(stream),
        (None, _) => Ok(manifest),
    }
}

/// Reads a whole set whose manifest, and that manifest's hash, the caller
/// already holds (its writer, before the commit), checking the stream
/// against them as [`scan_source`] checks a set against its index's: the
/// manifest is neither read back whole nor parsed a second time.
pub(crate) fn scan_declared(
    source: &dyn SegmentSource,
    kind: SetKind,
    first: &str,
    visitor: &mut dyn Visitor,
    (manifest, hash): (&Manifest, [u8; 32]),
) -> Result<(), ArchiveError> {
    visitor.declared(manifest)?;
    let declared = Declared::of(manifest, hash);
    scan_stream(source, kind, first, visitor, Some(&declared)).map(drop)
}

/// The manifest of a set, through its index when it has one, else by
/// reading its stream through (checked as [`scan_source`] checks it).
pub(crate) fn manifest_of(
    source: &dyn SegmentSource,
    kind: SetKind,
    first: &str,
) -> Result<Manifest, ArchiveError> {
    declared_of(source, kind, first, &|| false).map(|d| d.manifest)
}

/// [`DeclaredSet`] of a set: through its index when it has one, else by
/// reading its stream through (checked as [`scan_source`] checks it).
pub(crate) fn declared_of(
    source: &dyn SegmentSource,
    kind: SetKind,
    first: &str,
    stopped: &dyn Fn() -> bool,
) -> Result<DeclaredSet, ArchiveError> {
    if let Some(declared) = crate::index::locate(source, kind)? {
        return Ok(declared);
    }
    match scan_stream(source, kind, first, &mut FirstPass(stopped), None)? {
        (Some(manifest), hash) => Ok(DeclaredSet { manifest, hash }),
        (None, _) => Err(ArchiveError::corrupt(kind, "the manifest is missing")),
    }
}

/// A pass for the manifest alone: it stops when asked to.
struct FirstPass<'a>(&'a dyn Fn() -> bool);

impl Visitor for FirstPass<'_> {
    fn entry(&mut self, _: &ReadEntry, _: &mut dyn Read) -> Result<(), VisitError> {
        if (self.0)() {
            return Err(ArchiveError::Stopped.into());
        }
        Ok(())
    }
}

/// What a set declares, known before its first entry is read.
struct Declared<'m> {
    manifest: &'m Manifest,
    /// The manifest's blake3.
    hash: [u8; 32],
    /// (path, a blocks entry) → the type and the tar entry's size declared.
    entries: HashMap<(&'m str, bool), (EntryType, u64)>,
}

impl<'m> Declared<'m> {
    fn of(manifest: &'m Manifest, hash: [u8; 32]) -> Declared<'m> {
        use crate::manifest::Store;
        let entries = manifest
            .entries
            .iter()
            .filter_map(|e| {
                let path = e.path.as_str();
                match (e.entry_type, e.store, &e.blocks) {
                    (EntryType::File, Store::Stored, _) => {
                        Some(((path, false), (EntryType::File, e.size)))
                    }
                    (EntryType::File, Store::Blocks, Some(b)) => {
                        let len = crate::incremental::entry_len(b.block_size, e.size, &b.changed);
                        Some(((path, true), (EntryType::File, len)))
                    }
                    (t @ (EntryType::Dir | EntryType::Symlink), Store::Stored, _) => {
                        Some(((path, false), (t, 0)))
                    }
                    _ => None,
                }
            })
            .collect();
        Declared {
            manifest,
            hash,
            entries,
        }
    }

    /// Refuses an entry the manifest does not declare, or declares with
    /// another type or size, before any of its content is read.
    fn check(&self, kind: SetKind, entry: &ReadEntry) -> Result<(), ArchiveError> {
        let bad = |what: String| Err(ArchiveError::corrupt(kind, what));
        let Some(&(entry_type, size)) = self.entries.get(&(entry.path.as_str(), entry.blocks))
        else {
            return bad(format!(
                "entry {}{} is not in the manifest",
                entry.path,
                if entry.blocks { " (its blocks)" } else { "" }
            ));
        };
        if entry_type != entry.entry_type {
            return bad(format!(
                "entry {}: type {:?} in the archive, {:?} in the manifest",
                entry.path, entry.entry_type, entry_type
            ));
        }
        if size != entry.size {
            return bad(if entry.blocks {
                format!(
                    "entry {}: its blocks take {} bytes in the archive, {size} by the manifest's block map",
                    entry.path, entry.size
                )
            } else {
                format!(
                    "entry {}: {} bytes in the archive, {size} in the manifest",
                    entry.path, entry.size
                )
            });
        }
        Ok(())
    }
}

/// Reads the stream of a set through, checking each entry against the
/// manifest `declared` (when known) before the visitor gets it. Returns
/// the stream's manifest (`None` when it is the declared one, which is
/// then not parsed again) and its blake3.
fn scan_stream(
    source: &dyn SegmentSource,
    kind: SetKind,
    first: &str,
    visitor: &mut dyn Visitor,
    declared: Option<&Declared<'_>>,
) -> Result<(Option<Manifest>, [u8; 32]), ArchiveError> {
    let Opened {
        stream,
        position,
        raw_last,
    } = open_stream(source, kind, first)?;
    let segment = || position.segment();
    let mut archive = tar::Archive::new(stream);
    let EntriesRead {
        manifest,
        head_parent,
        last,
        offsets,
    } = read_entries(&mut archive, kind, visitor, declared, &position)?;
    let Some((own, hash)) = manifest else {
        return Err(ArchiveError::corrupt(
            kind,
            format!(
                "the manifest is missing: the archive ends after {last} in {} (a truncated or missing last segment?)",
                segment()
            ),
        ));
    };
    let Some(manifest) = own.as_ref().or(declared.map(|d| d.manifest)) else {
        return Err(ArchiveError::corrupt(kind, "the manifest is missing"));
    };
    if head_parent != manifest.header.parent {
        return Err(ArchiveError::corrupt(
            kind,
            format!(
                "the stream opens as built on {:?}, the manifest says {:?}",
                head_parent, manifest.header.parent
            ),
        ));
    }
    check_layout(kind, manifest, &offsets, &position)?;
    visitor.manifest(manifest)?;
    let mut rest = archive.into_inner().take(TAIL_LIMIT + 1);
    let mut tail = Vec::new();
    rest.read_to_end(&mut tail)
        .map_err(|e| position.damaged(kind, "the manifest", e))?;
    let last = raw_last.borrow().clone();
    check_end(kind, (&tail, &last), (hash, manifest.indexed), &segment)?;
    Ok((own, hash))
}

/// A set's layout (where it says each file's content and each frame
/// start, [`crate::Layout`]) must be where the stream read has them: a set
/// whose layout lies would restore from the wrong bytes where a restore
/// reads it in ranges.
fn check_layout(
    kind: SetKind,
    manifest: &Manifest,
    offsets: &Offsets,
    position: &Position,
) -> Result<(), ArchiveError> {
    let Some(layout) = &manifest.layout else {
        return Ok(());
    };
    let lies = |what: String| ArchiveError::corrupt(kind, format!("its layout {what}"));
    if layout.content.0.len() != manifest.entries.len() {
        return Err(lies(format!(
            "lists {} entries where its manifest lists {}",
            layout.content.0.len(),
            manifest.entries.len()
        )));
    }
    // The stream holds the files whose content is in the set in the
    // manifest's order (the stream is held to the manifest besides).
    let mut in_stream = offsets.content.iter().copied();
    for (e, &at) in manifest.entries.iter().zip(&layout.content.0) {
        let has_content = e.entry_type == EntryType::File && e.store != crate::Store::Same;
        let held = if has_content { in_stream.next() } else { None };
        let listed = Some(at).filter(|&at| at != crate::Layout::NONE);
        if listed != held {
            let at = |b: Option<u64>| b.map_or("nowhere".to_owned(), |b| format!("at byte {b}"));
            return Err(lies(format!(
                "puts the content of entry {} {} of the stream, where the stream has it {}",
                e.path,
                at(listed),
                at(held)
            )));
        }
    }
    let pairs = layout.pairs();
    let read = position.starts.borrow();
    let sound = layout.frames.0.len().is_multiple_of(2)
        && layout.compressed == position.compressed
        && match pairs.split_last() {
            Some((&(tar, set), [])) if !position.compressed => {
                tar == offsets.manifest && set == tar
            }
            Some((&last, frames)) if position.framed => {
                last.0 == offsets.manifest
                    && read.get(..frames.len()) == Some(frames)
                    && read.get(frames.len()) == Some(&last)
            }
            _ => false,
        };
    if !sound {
        return Err(lies(format!(
            "puts its frames and manifest elsewhere than the stream has them (the manifest's header at byte {} of the stream)",
            offsets.manifest
        )));
    }
    Ok(())
}

/// A set's stream, opened: the tar stream (decompressed where it is
/// compressed), where it is being read, and the last raw bytes read (at
/// most [`crate::index::LEN`], the index once the set is read through).
struct Opened<'a> {
    stream: Box<dyn Read + 'a>,
    position: Position,
    raw_last: Rc<std::cell::RefCell<Vec<u8>>>,
}

/// Where a stream is being read, for messages. Frames are read ahead of
/// their decoding: a framed stream names the segments the frame being
/// decoded was read from, others the segment being read.
struct Position {
    names: Vec<String>,
    framed: bool,
    /// The segment being read.
    at: Rc<Cell<usize>>,
    /// The first and last segment of the frame being decoded.
    spans: Rc<Cell<(usize, usize)>>,
    /// Where each frame read so far starts (in the stream, in the set's
    /// bytes): what a set's layout is held to.
    starts: crate::frames::FrameStarts,
    /// Whether the set is zstd-compressed (framed, or one frame).
    compressed: bool,
}

impl Position {
    /// The stream damaged after `last` (an entry, or "the start"), where it is.
    fn damaged(&self, kind: SetKind, last: &str, e: io::Error) -> ArchiveError {
        ArchiveError::corrupt(
            kind,
            format!("damaged archive after {last}, in {}: {e}", self.segment()),
        )
    }

    /// The segment being read, or the segments of the frame being decoded.
    fn segment(&self) -> String {
        let (from, to) = if self.framed {
            self.spans.get()
        } else {
            (self.at.get(), self.at.get())
        };
        let named: Vec<&str> = self
            .names
            .get(from..=to.max(from))
            .unwrap_or_default()
            .iter()
            .map(String::as_str)
            .collect();
        match named.as_slice() {
            [one] => format!("segment {one}"),
            many => format!("segments {}", many.join(", ")),
        }
    }
}

/// Opens the segments of `source` as one stream and tells from its first
/// bytes what it is: frames (decoded on every core), a zstd stream of one
/// frame (a set written before frames), or a plain tar stream. Anything
/// else is not a sauve archive; `first` names the set in that message.
fn open_stream<'a>(
    source: &'a dyn SegmentSource,
    kind: SetKind,
    first: &str,
) -> Result<Opened<'a>, ArchiveError> {
    let at = Rc::new(Cell::new(0));
    let raw_last = Rc::new(std::cell::RefCell::new(Vec::new()));
    let names = source.names();
    let chain = Chain {
        source,
        count: names.len(),
        next: 0,
        current: None,
        at: at.clone(),
        last: raw_last.clone(),
    };
    let mut buffered = BufReader::with_capacity(1 << 20, chain);
    let head = buffered.fill_buf().map_err(|e| {
        let first = names.first().map_or("", String::as_str);
        ArchiveError::corrupt(kind, format!("cannot read segment {first}: {e}"))
    })?;
    let framed = head.starts_with(&ZSTD_MAGIC) && frames::is_framed(head);
    let zstd = head.starts_with(&ZSTD_MAGIC);
    let plain = head.len() >= 512 && tar_checksum_ok(&head[..512]);
    let position = Position {
        names,
        framed,
        at,
        spans: Rc::new(Cell::new((0, 0))),
        starts: Rc::default(),
        compressed: zstd,
    };
    let cannot = |e: io::Error| {
        ArchiveError::corrupt(
            kind,
            format!("cannot start decompressing {}: {e}", position.segment()),
        )
    };
    let stream: Box<dyn Read + 'a> = if framed {
        let (at, spans) = (position.at.clone(), position.spans.clone());
        let mut frames = FrameReader::new(buffered, 0, at, spans).map_err(cannot)?;
        frames.record_starts(position.starts.clone());
        Box::new(frames)
    } else if zstd {
        // A set written before frames: one frame of unknown size, on one core.
        let mut d = zstd::stream::read::Decoder::with_buffer(buffered).map_err(cannot)?;
        // Behaviour §6.1 caps the window at 2^27 so that `zstd -d` needs no flags.
        d.window_log_max(27)
            .map_err(|e| ArchiveError::corrupt(kind, e.to_string()))?;
        Box::new(d)
    } else if plain {
        Box::new(buffered)
    } else {
        return Err(ArchiveError::corrupt(
            kind,
            format!(
                "{first} is not a sauve archive (accepted: a tar stream, plain or zstd-compressed, as sauve writes it)"
            ),
        ));
    };
    Ok(Opened {
        stream,
        position,
        raw_last,
    })
}

/// What reading a stream's entries found: its manifest (`None` inside when
/// it is the declared one), the parent its global header names, and the
/// last entry read, for messages.
struct EntriesRead {
    manifest: Option<(Option<Manifest>, [u8; 32])>,
    head_parent: Option<BackupNumber>,
    last: String,
    /// Where each file's content starts in the stream (a blocks entry's,
    /// under its file's path), and where the manifest's header does.
    offsets: Offsets,
}

/// Where the stream holds each file's content, in stream order (8 bytes a
/// file), and the manifest's header.
#[derive(Default)]
struct Offsets {
    content: Vec<u64>,
    manifest: u64,
}

/// Reads a stream's entries up to the end of its tar stream: a global
/// header only first, each name safe, once and beneath no symlink or file
/// seen before it, each entry checked against `declared` (when known)
/// before the visitor gets it, nothing after the manifest. `position` says
/// where, in messages.
fn read_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    kind: SetKind,
    visitor: &mut dyn Visitor,
    declared: Option<&Declared<'_>>,
    position: &Position,
) -> Result<EntriesRead, ArchiveError> {
    let mut last = String::from("the start");
    let mut manifest: Option<(Option<Manifest>, [u8; 32])> = None;
    let mut head_parent: Option<BackupNumber> = None;
    let mut names = crate::safety::StreamNames::default();
    let mut offsets = Offsets::default();
    let damaged = |last: &str, e: io::Error| position.damaged(kind, last, e);
    let entries = archive.entries().map_err(|e| damaged(&last, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(&last, e))?;
        if manifest.is_some() {
            return Err(ArchiveError::corrupt(
                kind,
                format!("an entry follows the manifest, in {}", position.segment()),
            ));
        }
        let path_bytes = entry.path_bytes().into_owned();
        let Ok(path) = String::from_utf8(path_bytes) else {
            return Err(ArchiveError::corrupt(
                kind,
                format!("an entry after {last} has a name that is not UTF-8"),
            ));
        };
        if entry.header().entry_type() == tar::EntryType::XGlobalHeader {
            if last != "the start" || head_parent.is_some() {
                return Err(ArchiveError::corrupt(
                    kind,
                    format!("a global header follows {last} (accepted: one, first)"),
                ));
            }
            head_parent = Some(read_parent_record(kind, &mut entry)?);
            continue;
        }
        let (path, entry_type, target, blocks) = what_entry(kind, &entry, path)?;
        let size = entry.size();
        if path == MANIFEST_NAME && entry_type == EntryType::File {
            offsets.manifest = entry.raw_file_position().saturating_sub(512);
            manifest = Some(stream_manifest(
                kind,
                (&mut entry, size),
                declared,
                &damaged,
            )?);
            continue;
        }
        names.check(&path, entry_type)?;
        if entry_type == EntryType::File {
            offsets.content.push(entry.raw_file_position());
        }
        let header = entry.header();
        let read = ReadEntry {
            path,
            entry_type,
            size,
            target,
            mode: header.mode().map_err(|e| damaged("a header's mode", e))? & 0o7777,
            mtime_secs: header.mtime().map_err(|e| damaged("a header's time", e))?,
            blocks,
        };
        if let Some(d) = declared {
            d.check(kind, &read)?;
        }
        visitor.entry(&read, &mut entry).map_err(|e| match e {
            VisitError::Stream(e) => damaged(&format!("the header of entry {}", read.path), e),
            VisitError::Other(e) => e,
        })?;
        last = format!("entry {}", read.path);
    }
    Ok(EntriesRead {
        manifest,
        head_parent,
        last,
        offsets,
    })
}

/// What a tar entry is: its path (a folder's without its trailing `/`, a
/// blocks entry's without [`crate::incremental::BLOCKS_PREFIX`]), type,
/// link target, and whether it holds blocks. Other types are refused.
fn what_entry<R: Read>(
    kind: SetKind,
    entry: &tar::Entry<'_, R>,
    path: String,
) -> Result<(String, EntryType, Option<String>, bool), ArchiveError> {
    let entry_type = match entry.header().entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => EntryType::File,
        tar::EntryType::Directory => EntryType::Dir,
        tar::EntryType::Symlink => EntryType::Symlink,
        other => {
            return Err(ArchiveError::Unsafe {
                path,
                reason: format!(
                    "entry type {other:?} is not accepted (accepted: files, folders and symlinks)"
                ),
            });
        }
    };
    let target = match entry.link_name_bytes() {
        Some(t) if entry_type == EntryType::Symlink => {
            Some(String::from_utf8(t.into_owned()).map_err(|_| {
                ArchiveError::corrupt(kind, format!("the link target of {path} is not UTF-8"))
            })?)
        }
        _ => None,
    };
    let path = match entry_type {
        EntryType::Dir => path.trim_end_matches('/').to_owned(),
        _ => path,
    };
    Ok(match path.strip_prefix(crate::incremental::BLOCKS_PREFIX) {
        Some(file) if entry_type == EntryType::File => (file.to_owned(), entry_type, target, true),
        _ => (path, entry_type, target, false),
    })
}

/// Reads the stream's manifest entry: its hash, which must be the declared
/// manifest's when one is known, and the manifest parsed (`None` when it is
/// the declared one, not parsed again).
fn stream_manifest(
    kind: SetKind,
    (entry, size): (&mut dyn Read, u64),
    declared: Option<&Declared<'_>>,
    damaged: &dyn Fn(&str, io::Error) -> ArchiveError,
) -> Result<(Option<Manifest>, [u8; 32]), ArchiveError> {
    if size > MANIFEST_LIMIT {
        return Err(ArchiveError::corrupt(
            kind,
            format!("the manifest is {size} bytes, too large"),
        ));
    }
    if let Some(d) = declared {
        // Hashed as it streams: the declared manifest is not parsed again,
        // nor its bytes held a second time.
        let mut hasher = blake3::Hasher::new();
        io::copy(entry, &mut hasher).map_err(|e| damaged("the manifest's header", e))?;
        let hash = *hasher.finalize().as_bytes();
        if d.hash != hash {
            return Err(ArchiveError::corrupt(
                kind,
                "the manifest at the end of the stream is not the one its index points to (or that a first reading found)",
            ));
        }
        return Ok((None, hash));
    }
    let json = crate::source::read_manifest_bytes(entry, size)
        .map_err(|e| damaged("the manifest's header", e))?;
    let hash = *blake3::hash(&json).as_bytes();
    Ok((Some(parse_manifest(kind, &json)?), hash))
}

/// The end of a set read through: after the manifest, the end-of-archive
/// marker (the tar reader consumed one zero block; at least one more, and
/// only zeros, must follow in `tail`), then, as its last raw bytes
/// (`last`), the index a set written since carries (`indexed`), holding
/// the manifest's `hash`. `segment` names where the stream ended.
fn check_end(
    kind: SetKind,
    (tail, last): (&[u8], &[u8]),
    (hash, indexed): ([u8; 32], bool),
    segment: &dyn Fn() -> String,
) -> Result<(), ArchiveError> {
    let end_damaged = || {
        ArchiveError::corrupt(
            kind,
            format!(
                "the end of the archive is damaged or missing, in {}",
                segment()
            ),
        )
    };
    if tail.len() as u64 > TAIL_LIMIT {
        return Err(end_damaged());
    }
    let tail = crate::index::strip(tail);
    if tail.len() < 512 || tail.iter().any(|&b| b != 0) {
        return Err(end_damaged());
    }
    // In a compressed stream the index is a frame the decompression skipped.
    match crate::index::Index::decode(last) {
        Some(index) if index.hash == hash => {}
        Some(_) => {
            return Err(ArchiveError::corrupt(
                kind,
                format!(
                    "the set's index, at the end of {}, holds another manifest's hash",
                    segment()
                ),
            ));
        }
        None if indexed => {
            return Err(ArchiveError::corrupt(
                kind,
                format!(
                    "the set's index is missing: the set ends in {} without it (a truncated or missing last segment?)",
                    segment()
                ),
            ));
        }
        None => {}
    }
    Ok(())
}

/// Reads an entry's content through blake3, copying it to `sink` if given;
/// a read error is a damaged stream, a write error names `sink_path`.
pub(crate) fn hash_content(
    content: &mut dyn Read,
    sink: Option<(&mut dyn io::Write, &std::path::Path)>,
) -> Result<(String, u64), VisitError> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut sink = sink;
    loop {
        let n = match content.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(VisitError::Stream(e)),
        };
        hasher.update(&buf[..n]);
        if let Some((s, path)) = sink.as_mut() {
            s.write_all(&buf[..n])
                .map_err(ArchiveError::io("cannot write", *path))?;
        }
        total += n as u64;
    }
    Ok((hasher.finalize().to_hex().to_string(), total))
}

/// Compares what the stream held with the manifest: same entries, sizes,
/// types, checksums and targets, nothing more, nothing less. Reports the
/// first difference in stream order.
pub(crate) fn check_against_manifest(
    kind: SetKind,
    manifest: &Manifest,
    seen: &[Seen],
) -> Result<(), ArchiveError> {
    check_seen(kind, manifest, seen, true)
}

/// [`check_against_manifest`]; with `complete` false, only that what was
/// seen matches (a restore takes some entries of the older sets of a
/// chain and skips the others).
pub(crate) fn check_seen(
    kind: SetKind,
    manifest: &Manifest,
    seen: &[Seen],
    complete: bool,
) -> Result<(), ArchiveError> {
    use crate::manifest::Store;
    let listed: HashMap<&str, &crate::manifest::ManifestEntry> = manifest
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e))
        .collect();
    let bad = |what: String| Err(ArchiveError::corrupt(kind, what));
    let mut found = std::collections::HashSet::new();
    for s in seen {
        let Some(m) = listed.get(s.path.as_str()) else {
            return bad(format!("entry {} is not in the manifest", s.path));
        };
        if !found.insert(s.path.as_str()) {
            return bad(format!("entry {} appears twice", s.path));
        }
        if m.entry_type != s.entry_type {
            return bad(format!(
                "entry {}: type {:?} in the archive, {:?} in the manifest",
                s.path, s.entry_type, m.entry_type
            ));
        }
        if m.size != s.size {
            return bad(format!(
                "entry {}: {} bytes in the archive, {} in the manifest",
                s.path, s.size, m.size
            ));
        }
        match (&s.blocks, m.store, &m.blocks) {
            // A file of an older set of a chain that a restore took
            // blocks of is not hashed as that set holds it: the file put
            // together is checked whole against the newest manifest.
            (None, Store::Stored, _)
                if !complete && s.entry_type == EntryType::File && s.blake3.is_none() => {}
            (None, Store::Stored, _) => {
                if m.blake3 != s.blake3 {
                    return bad(format!(
                        "entry {}: content does not match its checksum",
                        s.path
                    ));
                }
            }
            (Some((block_size, hashes)), Store::Blocks, Some(b)) => {
                let held: Vec<u32> = hashes.iter().map(|(i, _)| *i).collect();
                if *block_size != b.block_size || held != b.changed {
                    return bad(format!(
                        "entry {}: the blocks in the archive are not the ones the manifest lists",
                        s.path
                    ));
                }
                if let Some((i, _)) = hashes
                    .iter()
                    .find(|&&(i, h)| b.hashes.get(i as usize) != Some(h))
                {
                    return bad(format!(
                        "entry {}: block {i} does not match its checksum",
                        s.path
                    ));
                }
            }
            (_, store, _) => {
                return bad(format!(
                    "entry {}: the manifest says it is {store:?}, the archive holds {}",
                    s.path,
                    if s.blocks.is_some() {
                        "blocks of it"
                    } else {
                        "it whole"
                    }
                ));
            }
        }
        if m.target != s.target {
            return bad(format!(
                "entry {}: link target differs from the manifest",
                s.path
            ));
        }
        // The mode and time a restore applies come from the manifest: they
        // must be the ones the tar header (checksummed) carries.
        let manifest_secs = u64::try_from(m.mtime.div_euclid(1_000_000_000)).unwrap_or(0);
        if m.mode & 0o7777 != s.mode || manifest_secs != s.mtime_secs {
            return bad(format!(
                "entry {}: mode {:o} and time {} in the archive, {:o} and {} in the manifest",
                s.path,
                s.mode,
                s.mtime_secs,
                m.mode & 0o7777,
                manifest_secs
            ));
        }
    }
    if !complete {
        return Ok(());
    }
    if let Some(m) = manifest
        .entries
        .iter()
        .find(|m| m.store != Store::Same && !found.contains(m.path.as_str()))
    {
        return bad(format!(
            "entry {} listed in the manifest is missing",
            m.path
        ));
    }
    if manifest.header.parent.is_none()
        && let Some(m) = manifest.entries.iter().find(|m| m.store != Store::Stored)
    {
        return bad(format!(
            "entry {} is {:?} in a set that builds on no other",
            m.path, m.store
        ));
    }
    Ok(())
}
