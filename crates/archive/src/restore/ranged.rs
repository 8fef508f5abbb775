//! Reading from an older set of a chain only the parts a restore takes of
//! it (behaviour §21.2). A set written since ranged restores lists in its
//! manifest's [`Layout`] where each entry's content and each zstd frame
//! start in its bytes; where the frames holding what the restore takes are
//! at most [`SHARE`] of the set, and the set can be read from any offset
//! (files, unencrypted objects of a store), the restore reads those frames
//! alone, a run of neighbouring frames per range, several ranges at once.
//! Otherwise the set is read through, as a set without a layout is.
//!
//! Nothing in a layout is trusted: it is checked against the set's length
//! and against itself before use, a frame must hold the bytes the layout
//! says, and every piece read is held to the hash the manifest lists (a
//! block's, or a whole file's) before the restore goes on.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::PoisonError;

use super::chain::{Filled, Staged, open_staged};
use super::{create_staged, relative};
use crate::error::ArchiveError;
use crate::frames::{MAX_COMPRESSED, MAX_CONTENT, decompress_frame};
use crate::incremental::{Supply, head_len};
use crate::manifest::{Layout, Manifest, ManifestEntry, Store, block_range, compact};
use crate::source::SegmentSource;
use crate::writer::Progress;

/// A set is read in ranges when the frames it must read are at most this
/// share of its bytes (3 in 4); past it, one read through the whole set,
/// decompressed on every core, costs no more.
const SHARE: (u64, u64) = (3, 4);
/// The bytes of one range at most: a run of neighbouring frames (a frame
/// larger than this, up to zstd's bound on 16 MiB, is read alone), or of a
/// stream that is not compressed.
const RUN: u64 = 8 << 20;
/// The bytes of the ranges opened ahead of the one being read, at most (a
/// store reads them at once); one is always opened.
const AHEAD: u64 = 32 << 20;
/// The pieces a set is read in at most (each costs a few dozen bytes while
/// it is read): a set needing more blocks than this is read through.
const MAX_PIECES: usize = 1 << 20;

/// What the restore takes of a set, and the ranges of its bytes that hold it.
#[derive(Debug)]
pub(super) struct Reads<'a> {
    targets: Vec<Target<'a>>,
    /// In stream order, none overlapping another.
    pieces: Vec<Piece>,
    runs: Vec<Run>,
    /// (tar, set) offsets of every frame's start, then of the manifest's
    /// region; one pair for a stream that is not compressed.
    frames: Vec<(u64, u64)>,
}

/// A staged file that pieces are written to.
#[derive(Debug)]
struct Target<'a> {
    path: &'a str,
    /// What the restore takes of the set for it: the size of its entry.
    entry_len: u64,
    /// Given whole by this set: created here (else a newer set created it).
    whole: Option<&'a str>,
}

/// Bytes of the tar stream the restore takes: `len` from `start`, written
/// at `at` in `target`'s staged file, held to `check`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Piece {
    start: u64,
    len: u64,
    target: usize,
    at: u64,
    check: Check,
}

impl Piece {
    fn end(&self) -> u64 {
        self.start + self.len
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Check {
    /// The whole file, of its target's blake3.
    File,
    /// Block `index`, of this compact hash.
    Block { index: u32, hash: u64 },
}

/// A range of the set's bytes read at once: frames `frames`, or for a
/// stream that is not compressed, the stream itself from tar offset `tar`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Run {
    set: Range<u64>,
    tar: u64,
    frames: Option<Range<usize>>,
}

impl<'a> Reads<'a> {
    /// What the restore takes of the set of `manifest` (of `set_len`
    /// bytes), as `supplies` says, read in ranges; `None` when the set is
    /// better (or only) read through: no layout, one that does not fit
    /// the set or the manifest, more than [`SHARE`] of it needed, or
    /// more than [`MAX_PIECES`] pieces.
    pub(super) fn plan(
        manifest: &'a Manifest,
        supplies: &'a BTreeMap<String, (u64, Supply)>,
        set_len: u64,
    ) -> Option<Reads<'a>> {
        let layout = manifest.layout.as_ref()?;
        let frames = checked_frames(layout, set_len)?;
        if layout.content.0.len() != manifest.entries.len() {
            return None;
        }
        let count = supplies
            .values()
            .try_fold(0usize, |n, (_, s)| n.checked_add(s.blocks().unwrap_or(1)))?;
        if count > MAX_PIECES {
            return None;
        }
        let by_path: HashMap<&str, (&ManifestEntry, u64)> = manifest
            .entries
            .iter()
            .zip(&layout.content.0)
            .map(|(e, &at)| (e.path.as_str(), (e, at)))
            .collect();
        let mut targets = Vec::new();
        let mut pieces = Vec::new();
        for (path, (size, supply)) in supplies {
            let &(entry, at) = by_path.get(path.as_str())?;
            if at == Layout::NONE {
                return None;
            }
            let (target, each) = target_of(entry, (*size, supply), at)?;
            pieces.extend(each.into_iter().map(|p| Piece {
                target: targets.len(),
                ..p
            }));
            targets.push(target);
        }
        pieces.sort_by_key(|p| p.start);
        // Pieces apart, each within the stream before the manifest, and
        // each file's together (a file is opened, and ends, once).
        let data_end = frames.last()?.0;
        let apart = pieces.windows(2).all(|w| w[0].end() <= w[1].start);
        if !apart || pieces.last().is_some_and(|p| p.end() > data_end) {
            return None;
        }
        let mut ended = vec![false; targets.len()];
        for w in pieces.windows(2).filter(|w| w[0].target != w[1].target) {
            ended[w[0].target] = true;
            if ended[w[1].target] {
                return None;
            }
        }
        let runs = runs_of(&pieces, layout.compressed.then_some(&frames[..]));
        let read: u64 = runs.iter().map(|r| r.set.end - r.set.start).sum();
        let whole = frames.last()?.1;
        if read.saturating_mul(SHARE.1) > whole.saturating_mul(SHARE.0) {
            return None;
        }
        Some(Reads {
            targets,
            pieces,
            runs,
            frames,
        })
    }
}

/// A layout's frames as pairs, when they fit a set of `set_len` bytes:
/// the first frame at the start, each starting after the one before in
/// both the stream and the set, none holding more than sauve writes, the
/// manifest's region within the set. A stream that is not compressed has
/// a single pair, the same offset in both.
fn checked_frames(layout: &Layout, set_len: u64) -> Option<Vec<(u64, u64)>> {
    if !layout.frames.0.len().is_multiple_of(2) {
        return None;
    }
    let pairs = layout.pairs();
    let &(tar, set) = pairs.last()?;
    if set > set_len {
        return None;
    }
    if !layout.compressed {
        return (pairs.len() == 1 && tar == set).then_some(pairs);
    }
    let fits = pairs[0] == (0, 0)
        && pairs.windows(2).all(|w| {
            let tar = w[1].0.checked_sub(w[0].0).filter(|&n| n > 0);
            let set = w[1].1.checked_sub(w[0].1).filter(|&n| n > 0);
            tar.is_some_and(|n| n <= MAX_CONTENT) && set.is_some_and(|n| n <= MAX_COMPRESSED)
        });
    fits.then_some(pairs)
}

/// The staged file `entry` (whose content starts at `at` in the stream)
/// gives as `supply` says (of a file of `size` bytes in the newest set),
/// and the pieces of it to read; `None` when the entry is not what the
/// supply needs (the set is then read through, which names what is wrong).
fn target_of<'a>(
    entry: &'a ManifestEntry,
    (size, supply): (u64, &Supply),
    at: u64,
) -> Option<(Target<'a>, Vec<Piece>)> {
    let piece = |start: u64, range: Range<u64>, check| {
        let start = at.checked_add(start)?;
        let len = range.end - range.start;
        start.checked_add(len)?;
        Some(Piece {
            start,
            len,
            target: 0,
            at: range.start,
            check,
        })
    };
    let block = |index: u32| {
        let hash = entry.blocks.as_ref()?.hashes.get(index as usize)?;
        Some(Check::Block { index, hash })
    };
    match (supply, entry.store) {
        (Supply::Whole, Store::Stored) => {
            let whole = Some(entry.blake3.as_deref()?);
            let pieces = (entry.size > 0)
                .then(|| piece(0, 0..entry.size, Check::File))
                .into_iter()
                .collect::<Option<Vec<_>>>()?;
            let target = Target {
                path: &entry.path,
                entry_len: entry.size,
                whole,
            };
            Some((target, pieces))
        }
        (Supply::Blocks { take, .. }, Store::Blocks) => {
            let b = entry.blocks.as_ref()?;
            let mut pos = head_len(&b.changed);
            let mut pieces = Vec::with_capacity(take.len());
            for &i in &b.changed {
                let range = b.range(i, entry.size);
                if take.contains(&i) {
                    pieces.push(piece(pos, range.clone(), block(i)?)?);
                }
                pos += range.end - range.start;
            }
            let target = Target {
                path: &entry.path,
                entry_len: pos,
                whole: None,
            };
            Some((target, pieces))
        }
        (Supply::Rest { take, block_size }, Store::Stored) => {
            let pieces = take
                .iter()
                .map(|&i| {
                    let range = block_range(*block_size, i, entry.size.min(size));
                    piece(range.start, range, block(i)?)
                })
                .collect::<Option<Vec<_>>>()?;
            let target = Target {
                path: &entry.path,
                entry_len: entry.size,
                whole: None,
            };
            Some((target, pieces))
        }
        _ => None,
    }
}

/// The ranges that hold `pieces` (in stream order, apart): runs of
/// neighbouring frames needed, each at most [`RUN`] bytes of the set unless
/// one frame is more; for a stream that is not compressed (`frames` None),
/// runs of the pieces themselves, at most [`RUN`] bytes each, neighbours
/// joined when the gap is small.
fn runs_of(pieces: &[Piece], frames: Option<&[(u64, u64)]>) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let Some(frames) = frames else {
        for p in pieces {
            let mut from = p.start;
            while from < p.end() {
                let to = match runs.last_mut() {
                    // Room in the run before, within a small gap.
                    Some(r) if from - r.set.end <= RUN / 8 && r.set.start + RUN > from => {
                        r.set.end = p.end().min(r.set.start + RUN);
                        r.set.end
                    }
                    _ => {
                        let to = p.end().min(from + RUN);
                        runs.push(Run {
                            set: from..to,
                            tar: from,
                            frames: None,
                        });
                        to
                    }
                };
                from = to;
            }
        }
        return runs;
    };
    // The frame holding each byte: the last starting at or before it.
    let frame_of = |tar: u64| frames.partition_point(|&(t, _)| t <= tar).saturating_sub(1);
    for p in pieces.iter().filter(|p| p.len > 0) {
        for f in frame_of(p.start)..=frame_of(p.end() - 1) {
            let set = frames[f].1..frames[f + 1].1;
            match runs.last_mut() {
                Some(Run {
                    frames: Some(fs), ..
                }) if fs.end > f => {}
                Some(r)
                    if r.frames.as_ref().is_some_and(|fs| fs.end == f)
                        && set.end - r.set.start <= RUN =>
                {
                    r.set.end = set.end;
                    if let Some(fs) = r.frames.as_mut() {
                        fs.end = f + 1;
                    }
                }
                _ => runs.push(Run {
                    tar: frames[f].0,
                    set,
                    frames: Some(f..f + 1),
                }),
            }
        }
    }
    runs
}

/// Reads the planned ranges of `source` (whose segments are `lengths`
/// long), writing each piece at its place in the staged files and holding
/// it to its hash. `mark` is told, of each file it gives blocks of, the
/// blocks below which it has written all it gives (`u64::MAX` once done).
pub(super) fn fill(
    reads: &Reads<'_>,
    (source, lengths): (&dyn SegmentSource, &[u64]),
    staged: &Staged<'_>,
    mark: &dyn Fn(&str, u64),
    progress: &mut dyn Progress,
) -> Result<Filled, ArchiveError> {
    let mut writer = Writer {
        reads,
        staged,
        mark,
        progress,
        next: 0,
        open: None,
        hasher: blake3::Hasher::new(),
        filled: Filled::default(),
    };
    let mut read_into = vec![false; reads.targets.len()];
    for p in &reads.pieces {
        read_into[p.target] = true;
    }
    for (i, t) in reads.targets.iter().enumerate() {
        if !read_into[i] {
            writer.open(i)?;
            writer.close_empty(t)?;
        }
    }
    let names = source.names();
    let read_err = |run: &Run, e: std::io::Error| {
        let (segment, at) = segment_of(lengths, run.set.start);
        ArchiveError::Io {
            action: "cannot read",
            path: PathBuf::from(format!(
                "{} (from byte {at})",
                names.get(segment).map_or("the set", String::as_str)
            )),
            source: e,
        }
    };
    let mut opened: VecDeque<(&Run, Vec<Box<dyn Read + '_>>)> = VecDeque::new();
    // The bytes of the runs opened and not yet read.
    let mut ahead = 0u64;
    let mut runs = reads.runs.iter();
    let mut decompressor = zstd::bulk::Decompressor::new()
        .map_err(|e| ArchiveError::corrupt(staged.kind, format!("zstd: {e}")))?;
    loop {
        while opened.is_empty() || ahead < AHEAD {
            let Some(run) = runs.next() else { break };
            let parts = open_run(source, lengths, &run.set).map_err(|e| read_err(run, e))?;
            ahead += run.set.end - run.set.start;
            opened.push_back((run, parts));
        }
        let Some((run, parts)) = opened.pop_front() else {
            break;
        };
        let len = run.set.end - run.set.start;
        ahead -= len;
        if writer.progress.is_stopped() {
            return Err(ArchiveError::Stopped);
        }
        let bytes = read_parts(parts, len).map_err(|e| read_err(run, e))?;
        let Some(frames) = &run.frames else {
            writer.take(run.tar, &bytes)?;
            continue;
        };
        for f in frames.clone() {
            let plain =
                unframe(reads, f, (&bytes, run.set.start), &mut decompressor).map_err(|e| {
                    let (segment, at) = segment_of(lengths, reads.frames[f].1);
                    let name = names.get(segment).map_or("the set", String::as_str);
                    ArchiveError::corrupt(
                        staged.kind,
                        format!("the zstd frame at byte {at} of {name} is damaged: {e}"),
                    )
                })?;
            if writer.progress.is_stopped() {
                return Err(ArchiveError::Stopped);
            }
            writer.take(reads.frames[f].0, &plain)?;
        }
    }
    if writer.next < reads.pieces.len() {
        return Err(ArchiveError::corrupt(
            staged.kind,
            "its layout does not cover what the restore takes of it",
        ));
    }
    Ok(writer.filled)
}

/// Frame `f` of the set, decompressed from `bytes` (the set's from
/// `start` on): it must hold the bytes the layout says.
fn unframe(
    reads: &Reads<'_>,
    f: usize,
    (bytes, start): (&[u8], u64),
    decompressor: &mut zstd::bulk::Decompressor<'static>,
) -> std::io::Result<Vec<u8>> {
    let ((tar, set), (tar_end, set_end)) = (reads.frames[f], reads.frames[f + 1]);
    let compressed = &bytes[(set - start) as usize..][..(set_end - set) as usize];
    let plain = decompress_frame(decompressor, compressed)?;
    if plain.len() as u64 != tar_end - tar {
        return Err(std::io::Error::other(format!(
            "it holds {} bytes where the set's layout says {}",
            plain.len(),
            tar_end - tar
        )));
    }
    Ok(plain)
}

/// Readers of the bytes `set` of a set, segment by segment.
fn open_run<'s>(
    source: &'s dyn SegmentSource,
    lengths: &[u64],
    set: &Range<u64>,
) -> std::io::Result<Vec<Box<dyn Read + 's>>> {
    let mut parts = Vec::new();
    let mut start = 0u64;
    for (index, &len) in lengths.iter().enumerate() {
        let end = start.saturating_add(len);
        let from = set.start.max(start);
        let to = set.end.min(end);
        if from < to {
            parts.push(source.open_range(index, from - start..to - start)?);
        }
        start = end;
    }
    Ok(parts)
}

/// The `len` bytes the parts give, end to end.
fn read_parts(parts: Vec<Box<dyn Read + '_>>, len: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(len.min(MAX_COMPRESSED.max(RUN)) as usize);
    for mut part in parts {
        part.read_to_end(&mut bytes)?;
        if bytes.len() as u64 > len {
            break;
        }
    }
    if bytes.len() as u64 != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{} bytes where {len} were asked for", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// The segment that holds byte `offset` of a set whose segments are
/// `lengths` long, and the offset in it.
fn segment_of(lengths: &[u64], mut offset: u64) -> (usize, u64) {
    for (i, &len) in lengths.iter().enumerate() {
        if offset < len {
            return (i, offset);
        }
        offset -= len;
    }
    (lengths.len().saturating_sub(1), offset)
}

/// Writes the pieces as the stream's bytes come, in order.
struct Writer<'r, 'a> {
    reads: &'r Reads<'a>,
    staged: &'r Staged<'r>,
    mark: &'r dyn Fn(&str, u64),
    progress: &'r mut dyn Progress,
    /// The first piece not yet written whole.
    next: usize,
    /// The staged file of the piece being written, and its target.
    open: Option<(usize, File)>,
    /// The piece being written, hashed so far.
    hasher: blake3::Hasher,
    filled: Filled,
}

impl Writer<'_, '_> {
    /// Takes `bytes`, the stream's from `tar` on: what of them the pieces
    /// hold is written.
    fn take(&mut self, tar: u64, bytes: &[u8]) -> Result<(), ArchiveError> {
        let end = tar + bytes.len() as u64;
        while let Some(piece) = self.reads.pieces.get(self.next) {
            if piece.start >= end {
                break;
            }
            let from = piece.start.max(tar);
            let to = piece.end().min(end);
            if from < to {
                if self.open.as_ref().is_none_or(|(t, _)| *t != piece.target) {
                    self.open(piece.target)?;
                }
                let chunk = &bytes[(from - tar) as usize..(to - tar) as usize];
                let at = piece.at + (from - piece.start);
                if let Some((_, file)) = &self.open
                    && let Err(e) = file.write_all_at(chunk, at)
                {
                    let path = self.reads.targets[piece.target].path;
                    let shown = self.staged.staging.shown(&relative(path)?);
                    return Err(ArchiveError::io("cannot write", &shown)(e));
                }
                self.hasher.update(chunk);
                self.filled.bytes += chunk.len() as u64;
                self.progress.advance(chunk.len() as u64);
            }
            if piece.end() > end {
                break;
            }
            self.finish_piece()?;
        }
        Ok(())
    }

    /// Opens target `i`'s staged file (creating a file this set gives
    /// whole), taking its entry from the restore's budget.
    fn open(&mut self, i: usize) -> Result<(), ArchiveError> {
        let target = &self.reads.targets[i];
        let kind = self.staged.kind;
        let rel = relative(target.path)?;
        self.staged
            .budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take_sized(target.path, target.entry_len)?;
        let staging = self.staged.staging;
        let file = match target.whole {
            Some(_) => create_staged(kind, target.path, staging, &rel)?,
            None => open_staged(staging, &rel)?,
        };
        self.open = Some((i, file));
        Ok(())
    }

    /// Holds the piece just written whole to its hash, and tells the
    /// marks how far its file is.
    fn finish_piece(&mut self) -> Result<(), ArchiveError> {
        let piece = &self.reads.pieces[self.next];
        let target = &self.reads.targets[piece.target];
        let hasher = std::mem::replace(&mut self.hasher, blake3::Hasher::new());
        let sound = match &piece.check {
            Check::File => target.whole == Some(hasher.finalize().to_hex().as_str()),
            Check::Block { hash, .. } => compact(hasher.finalize()) == *hash,
        };
        if !sound {
            let what = match &piece.check {
                Check::File => "its content does not have the checksum its manifest lists".into(),
                Check::Block { index, .. } => {
                    format!("its block {index} is not the one its manifest lists")
                }
            };
            return Err(ArchiveError::corrupt(
                self.staged.kind,
                format!("entry {}: {what}", target.path),
            ));
        }
        self.next += 1;
        // Every block this set gives of the file below the next one it
        // gives is written (all of them after the file's last piece).
        let following = self
            .reads
            .pieces
            .get(self.next)
            .filter(|p| p.target == piece.target);
        match following.map(|p| &p.check) {
            Some(Check::Block { index, .. }) => (self.mark)(target.path, u64::from(*index)),
            Some(Check::File) => {}
            None => {
                (self.mark)(target.path, u64::MAX);
                self.open = None;
            }
        }
        Ok(())
    }

    /// An empty file this set gives whole: its checksum must be the empty
    /// content's.
    fn close_empty(&mut self, target: &Target<'_>) -> Result<(), ArchiveError> {
        self.open = None;
        let empty = blake3::hash(b"");
        if target.whole.is_some_and(|h| h != empty.to_hex().as_str()) {
            return Err(ArchiveError::corrupt(
                self.staged.kind,
                format!(
                    "entry {}: its content does not have the checksum its manifest lists",
                    target.path
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use proptest::prelude::*;

    fn piece(start: u64, len: u64) -> Piece {
        Piece {
            start,
            len,
            target: 0,
            at: 0,
            check: Check::File,
        }
    }

    /// Frames of the given tar and compressed lengths, then the manifest's start.
    fn frames(lens: &[(u64, u64)]) -> Vec<(u64, u64)> {
        let mut at = (0, 0);
        let mut out = vec![at];
        for &(tar, set) in lens {
            at = (at.0 + tar, at.1 + set);
            out.push(at);
        }
        out
    }

    fn layout(words: &[u64], compressed: bool) -> Layout {
        Layout {
            content: Default::default(),
            compressed,
            frames: crate::manifest::Words(words.to_vec()),
        }
    }

    #[test]
    fn a_layout_that_does_not_fit_its_set_is_not_used() {
        let good = [0, 0, 100, 40, 200, 90];
        assert!(checked_frames(&layout(&good, true), 90).is_some());
        for (words, compressed, len, why) in [
            (
                &good[..],
                true,
                89,
                "the manifest's region past the set's end",
            ),
            (&[0, 0, 100][..], true, 90, "half a pair"),
            (&[][..], true, 90, "no pair"),
            (
                &[1, 0, 100, 40, 200, 90][..],
                true,
                90,
                "a first frame not at the start",
            ),
            (
                &[0, 0, 100, 40, 100, 90][..],
                true,
                90,
                "a frame of no bytes",
            ),
            (&[0, 0, 100, 40, 90, 90][..], true, 90, "a frame going back"),
            (
                &[0, 0, MAX_CONTENT + 1, 40][..],
                true,
                90,
                "a frame larger than sauve writes",
            ),
            (
                &[0, 0, 100, MAX_COMPRESSED + 1][..],
                true,
                u64::MAX,
                "compressed past zstd's bound",
            ),
            (
                &[50, 40][..],
                false,
                90,
                "a plain stream whose two offsets differ",
            ),
            (&good[..], false, 90, "a plain stream with frames"),
        ] {
            assert_eq!(
                checked_frames(&layout(words, compressed), len),
                None,
                "{why}"
            );
        }
        assert_eq!(
            checked_frames(&layout(&[70, 70], false), 90),
            Some(vec![(70, 70)])
        );
        // An empty compressed set: its manifest's frame alone.
        assert_eq!(
            checked_frames(&layout(&[0, 0], true), 90),
            Some(vec![(0, 0)])
        );
    }

    /// A file of `size` bytes, with blocks of `block` bytes when given.
    fn file(path: &str, size: u64, block: Option<u64>) -> ManifestEntry {
        use crate::manifest::{BlockHashes, Blocks, EntryKind, EntryType};
        ManifestEntry {
            kind: EntryKind::Attachment,
            source: String::new(),
            path: path.to_owned(),
            entry_type: EntryType::File,
            size,
            mode: 0o644,
            mtime: 0,
            blake3: Some(blake3::hash(b"").to_hex().to_string()),
            target: None,
            store: Store::Stored,
            inode: None,
            blocks: block.map(|block_size| Blocks {
                block_size,
                hashes: BlockHashes::from(vec![7; Blocks::count(size, block_size) as usize]),
                changed: Vec::new(),
            }),
        }
    }

    /// A compressed set of `files` (each with where its content starts),
    /// its stream `mib` MiB in frames of 1 MiB, each 512 KiB compressed.
    fn set_of(files: Vec<(ManifestEntry, u64)>, mib: u64) -> (Manifest, u64) {
        let (entries, content): (Vec<_>, Vec<_>) = files.into_iter().unzip();
        let frames = (0..=mib).flat_map(|i| [i << 20, i << 19]).collect();
        let manifest = Manifest {
            format: crate::manifest::FORMAT.to_owned(),
            version: crate::manifest::VERSION,
            header: crate::manifest::ManifestHeader::new(
                crate::SetKind::Backup,
                1,
                "App",
                jiff::Timestamp::UNIX_EPOCH,
            ),
            ended_at: jiff::Timestamp::UNIX_EPOCH,
            entries,
            indexed: true,
            layout: Some(Layout {
                content: crate::manifest::Words(content),
                compressed: true,
                frames: crate::manifest::Words(frames),
            }),
        };
        (manifest, (mib << 19) + 4096)
    }

    fn supplies(of: &[(&str, u64, Supply)]) -> BTreeMap<String, (u64, Supply)> {
        of.iter()
            .map(|(path, size, s)| ((*path).to_owned(), (*size, s.clone())))
            .collect()
    }

    fn rest(blocks: std::ops::Range<u32>) -> Supply {
        Supply::Rest {
            take: blocks.collect(),
            block_size: 4096,
        }
    }

    #[test]
    fn a_set_is_read_in_ranges_only_when_that_reads_less() {
        let (m, len) = set_of(
            vec![
                (file("small", 200 << 10, None), 512),
                (file("big", 8 << 20, None), (1 << 20) + 512),
            ],
            10,
        );
        // The small file alone: its frame, and no other.
        let wanted = supplies(&[("small", 200 << 10, Supply::Whole)]);
        let reads = Reads::plan(&m, &wanted, len).expect("read in ranges");
        assert_eq!(
            reads.runs,
            vec![Run {
                set: 0..(1 << 19),
                tar: 0,
                frames: Some(0..1)
            }]
        );
        // Both: nearly every frame, read through.
        let wanted = supplies(&[
            ("small", 200 << 10, Supply::Whole),
            ("big", 8 << 20, Supply::Whole),
        ]);
        assert!(Reads::plan(&m, &wanted, len).is_none());
        // A set shorter than its layout says is read through.
        let wanted = supplies(&[("small", 200 << 10, Supply::Whole)]);
        assert!(Reads::plan(&m, &wanted, len / 2).is_none());
    }

    #[test]
    fn pieces_of_two_files_that_interleave_are_not_read_in_ranges() {
        let plan = |b_at: u64| {
            let (m, len) = set_of(
                vec![
                    (file("a", 3 * 4096, Some(4096)), 512),
                    (file("b", 100, None), b_at),
                ],
                8,
            );
            // Blocks 0 and 2 of a; b between them when it starts at 4608.
            let wanted = supplies(&[
                (
                    "a",
                    3 * 4096,
                    Supply::Rest {
                        take: [0, 2].into(),
                        block_size: 4096,
                    },
                ),
                ("b", 100, Supply::Whole),
            ]);
            Reads::plan(&m, &wanted, len).is_some()
        };
        assert!(!plan(512 + 4096), "b inside a's pieces");
        assert!(plan(20_000), "b after a");
    }

    #[test]
    fn a_set_needing_more_pieces_than_allowed_is_read_through() {
        let blocks = MAX_PIECES as u32 + 1;
        let size = u64::from(blocks) * 4096;
        let (m, len) = set_of(vec![(file("huge", size, Some(4096)), 512)], 16 << 10);
        let few = supplies(&[("huge", size, rest(0..1000))]);
        assert!(Reads::plan(&m, &few, len).is_some());
        let all = supplies(&[("huge", size, rest(0..blocks))]);
        assert!(Reads::plan(&m, &all, len).is_none());
    }

    #[test]
    fn neighbouring_frames_are_read_in_one_range_and_far_ones_apart() {
        let table = frames(&[(100, 50); 6]);
        // Frame 0, frames 2 and 3 (one piece across them), frame 5.
        let pieces = [piece(10, 20), piece(230, 100), piece(510, 5)];
        let runs = runs_of(&pieces, Some(&table));
        assert_eq!(
            runs,
            vec![
                Run {
                    set: 0..50,
                    tar: 0,
                    frames: Some(0..1)
                },
                Run {
                    set: 100..200,
                    tar: 200,
                    frames: Some(2..4)
                },
                Run {
                    set: 250..300,
                    tar: 500,
                    frames: Some(5..6)
                },
            ]
        );
        // Two pieces in one frame read it once.
        let runs = runs_of(&[piece(10, 5), piece(20, 5), piece(120, 1)], Some(&table));
        assert_eq!(
            runs,
            vec![Run {
                set: 0..100,
                tar: 0,
                frames: Some(0..2)
            }]
        );
    }

    proptest! {
        /// Whatever the frames and the pieces, the runs read every frame
        /// holding a piece's byte, each once, in order, and no other; a run
        /// is at most RUN bytes unless it is one frame.
        #[test]
        fn runs_read_each_needed_frame_once_and_no_other(
            lens in proptest::collection::vec((1u64..(8 << 20), 1u64..(6 << 20)), 1..40),
            cuts in proptest::collection::vec((any::<u64>(), any::<u64>()), 0..30),
        ) {
            let table = frames(&lens);
            let end = table.last().unwrap().0;
            let mut bounds: Vec<u64> = cuts.iter().flat_map(|&(a, b)| [a % end, b % end]).collect();
            bounds.sort_unstable();
            let pieces: Vec<Piece> = bounds
                .chunks_exact(2)
                .map(|c| piece(c[0], c[1] - c[0]))
                .collect();
            let runs = runs_of(&pieces, Some(&table));
            let mut read = Vec::new();
            for r in &runs {
                let fs = r.frames.clone().unwrap();
                prop_assert_eq!(r.set.clone(), table[fs.start].1..table[fs.end].1);
                prop_assert_eq!(r.tar, table[fs.start].0);
                prop_assert!(fs.len() == 1 || r.set.end - r.set.start <= RUN);
                read.extend(fs);
            }
            prop_assert!(read.windows(2).all(|w| w[0] < w[1]), "in order, each once: {:?}", read);
            let needed: std::collections::BTreeSet<usize> = (0..lens.len())
                .filter(|&f| {
                    let (from, to) = (table[f].0, table[f + 1].0);
                    pieces.iter().any(|p| p.len > 0 && p.start < to && p.end() > from)
                })
                .collect();
            prop_assert_eq!(read.into_iter().collect::<std::collections::BTreeSet<_>>(), needed);
        }

        /// A stream that is not compressed is read in ranges of at most
        /// RUN bytes that cover every piece, in order, apart.
        #[test]
        fn plain_runs_cover_every_piece(
            cuts in proptest::collection::vec((0u64..(64 << 20), 0u64..(64 << 20)), 0..30),
        ) {
            let mut bounds: Vec<u64> = cuts.iter().flat_map(|&(a, b)| [a, b]).collect();
            bounds.sort_unstable();
            let pieces: Vec<Piece> = bounds
                .chunks_exact(2)
                .map(|c| piece(c[0], c[1] - c[0]))
                .collect();
            let runs = runs_of(&pieces, None);
            prop_assert!(runs.windows(2).all(|w| w[0].set.end <= w[1].set.start));
            prop_assert!(runs.iter().all(|r| r.set.end - r.set.start <= RUN));
            // Every byte of every piece in a run (runs are apart).
            for p in &pieces {
                let covered: u64 = runs
                    .iter()
                    .map(|r| r.set.end.min(p.end()).saturating_sub(r.set.start.max(p.start)))
                    .sum();
                prop_assert_eq!(covered, p.len, "{:?} in {:?}", p, runs);
            }
            for r in &runs {
                prop_assert_eq!(r.tar, r.set.start);
            }
        }
    }
}
