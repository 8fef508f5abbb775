//! What each file of a set holds, piece by piece, as it was stored
//! (behaviour §23): the bytes that reached the disk or the bucket, after
//! compression and encryption, cut into pieces of [`PIECE`] bytes, each
//! with the first 8 bytes of its blake3. The history keeps them with the
//! set, so that a sample of a set's bytes can be checked later without
//! reading the rest of it, without decompressing, and without the
//! identity of an encrypted set.
//!
//! Invariant: the sums are those of the bytes handed to the file or the
//! upload, in order, the last piece possibly shorter; a record read back
//! (the history is a file others can write) is used only once
//! [`Pieces::check_shape`] accepted it.

use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::manifest::BlockHashes;
use crate::writer::PartFile;

/// The size of a piece sauve records: 4 MiB, a few ranged reads' worth.
pub const PIECE: u64 = 4 << 20;
/// The piece sizes a record may declare: a record outside them is refused,
/// so that a crafted one can neither ask for huge reads nor hold millions
/// of sums.
pub const PIECE_SIZES: std::ops::RangeInclusive<u64> = (64 << 10)..=(64 << 20);

/// One stored file of a set and the sums of its pieces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pieces {
    /// The file's name in its folder or store (`App[0012].4BK`,
    /// `App[0012-0002].4BK`, `App[0012].4BK.age`).
    pub name: String,
    /// Its size in bytes as stored.
    pub size: u64,
    /// The size of each piece (the last one may be shorter).
    pub piece_size: u64,
    /// The first 8 bytes of each piece's blake3, in order.
    pub sums: BlockHashes,
}

impl Pieces {
    /// The number of pieces.
    pub fn count(&self) -> u64 {
        self.size.div_ceil(self.piece_size.max(1))
    }

    /// The bytes of piece `index`.
    pub fn range(&self, index: u64) -> Range<u64> {
        let start = index.saturating_mul(self.piece_size).min(self.size);
        start..start.saturating_add(self.piece_size).min(self.size)
    }

    /// Whether `bytes`, read at piece `index`, are what was stored there.
    pub fn holds(&self, index: u64, bytes: &[u8]) -> bool {
        let range = self.range(index);
        bytes.len() as u64 == range.end - range.start
            && usize::try_from(index)
                .ok()
                .and_then(|i| self.sums.get(i))
                .is_some_and(|sum| sum == BlockHashes::of(bytes))
    }

    /// Whether the record can be used: a plain file name, a piece size in
    /// [`PIECE_SIZES`], and one sum per piece. The error says what is
    /// wrong and what is accepted.
    pub fn check_shape(&self) -> Result<(), String> {
        let plain = !self.name.is_empty()
            && self.name != "."
            && self.name != ".."
            && !self.name.contains(['/', '\\', '\0']);
        if !plain {
            return Err(format!(
                "the stored file {:?} is not a plain file name (accepted: a name such as App[0012].4BK, without a folder)",
                self.name
            ));
        }
        if !PIECE_SIZES.contains(&self.piece_size) {
            return Err(format!(
                "{}: a piece size of {} bytes (accepted: {} to {})",
                self.name,
                self.piece_size,
                PIECE_SIZES.start(),
                PIECE_SIZES.end()
            ));
        }
        if self.sums.len() as u64 != self.count() {
            return Err(format!(
                "{}: {} sums for {} pieces of {} bytes",
                self.name,
                self.sums.len(),
                self.count(),
                self.size
            ));
        }
        Ok(())
    }
}

/// Sums bytes piece by piece as they go by.
#[derive(Debug)]
pub struct PieceHasher {
    hasher: blake3::Hasher,
    in_piece: u64,
    size: u64,
    sums: Vec<u64>,
}

impl Default for PieceHasher {
    fn default() -> PieceHasher {
        PieceHasher {
            hasher: blake3::Hasher::new(),
            in_piece: 0,
            size: 0,
            sums: Vec::new(),
        }
    }
}

impl PieceHasher {
    /// Adds the next bytes.
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = (PIECE - self.in_piece).min(bytes.len() as u64) as usize;
            let (now, later) = bytes.split_at(room);
            self.hasher.update(now);
            self.in_piece += now.len() as u64;
            self.size += now.len() as u64;
            bytes = later;
            if self.in_piece == PIECE {
                self.end_piece();
            }
        }
    }

    fn end_piece(&mut self) {
        self.sums
            .push(crate::manifest::compact(self.hasher.finalize()));
        self.hasher.reset();
        self.in_piece = 0;
    }

    /// The record of the bytes given, as the file `name`.
    pub fn finish(mut self, name: String) -> Pieces {
        if self.in_piece > 0 {
            self.end_piece();
        }
        Pieces {
            name,
            size: self.size,
            piece_size: PIECE,
            sums: BlockHashes::from(self.sums),
        }
    }
}

/// The records of the files a target wrote, by part path, each added when
/// its file was synced whole.
pub type SumBook = Arc<Mutex<Vec<(PathBuf, Pieces)>>>;

/// The record of `part` in `book`, if its file was synced whole.
pub fn recorded(book: &SumBook, part: &Path) -> Option<Pieces> {
    book.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(p, _)| p == part)
        .map(|(_, pieces)| pieces.clone())
}

/// A file being written whose bytes are summed on their way in: the
/// innermost writer of a target, below compression and encryption, so that
/// the sums are those of what is stored.
pub struct Summed<F> {
    inner: F,
    hasher: Option<PieceHasher>,
    part: PathBuf,
    name: String,
    book: SumBook,
}

impl<F> Summed<F> {
    /// `inner`, written under `part`, stored as `name`, recorded in `book`
    /// once synced.
    pub fn new(inner: F, part: &Path, name: String, book: &SumBook) -> Summed<F> {
        Summed {
            inner,
            hasher: Some(PieceHasher::default()),
            part: part.to_path_buf(),
            name,
            book: Arc::clone(book),
        }
    }
}

impl<F: Write> Write for Summed<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(h) = self.hasher.as_mut() else {
            return Err(io::Error::other("the file was already synced whole"));
        };
        let n = self.inner.write(buf)?;
        h.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<F: PartFile> PartFile for Summed<F> {
    fn sync(&mut self) -> io::Result<()> {
        self.inner.sync()?;
        if let Some(h) = self.hasher.take() {
            let pieces = h.finish(std::mem::take(&mut self.name));
            self.book
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((self.part.clone(), pieces));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the writes' sizes, the sums are those of the pieces of
        /// the whole, and each piece checks against its own sum alone.
        #[test]
        fn sums_are_those_of_the_pieces_whatever_the_writes(
            size in 0usize..(3 * PIECE as usize + 5),
            cuts in proptest::collection::vec(1usize..(PIECE as usize), 0..6),
        ) {
            let bytes: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let mut h = PieceHasher::default();
            let mut rest = &bytes[..];
            for cut in cuts.iter().chain(std::iter::repeat(&(PIECE as usize))) {
                if rest.is_empty() { break; }
                let (now, later) = rest.split_at((*cut).min(rest.len()));
                h.update(now);
                rest = later;
            }
            let p = h.finish("App[0001].4BK".into());
            prop_assert_eq!(p.size, size as u64);
            prop_assert!(p.check_shape().is_ok());
            for i in 0..p.count() {
                let r = p.range(i);
                let piece = &bytes[r.start as usize..r.end as usize];
                prop_assert!(p.holds(i, piece));
                let mut damaged = piece.to_vec();
                damaged[0] ^= 1;
                prop_assert!(!p.holds(i, &damaged));
                prop_assert!(!p.holds(i, &piece[..piece.len() - 1]));
            }
            prop_assert!(!p.holds(p.count(), &[]) || p.count() == 0);
        }
    }

    #[test]
    fn a_record_of_the_wrong_shape_is_refused_naming_what_is_wrong() {
        let good = {
            let mut h = PieceHasher::default();
            h.update(&[7; 10]);
            h.finish("App[0001].4BK".into())
        };
        assert!(good.check_shape().is_ok());
        let named = |name: &str| Pieces {
            name: name.into(),
            ..good.clone()
        };
        for bad in ["", "..", "../App[0001].4BK", "a/b", "a\\b"] {
            let e = named(bad).check_shape().unwrap_err();
            assert!(e.contains("not a plain file name"), "{e}");
        }
        let tiny = Pieces {
            piece_size: 1,
            ..good.clone()
        };
        assert!(tiny.check_shape().unwrap_err().contains("accepted: 65536"));
        let short = Pieces {
            size: PIECE + 1,
            ..good.clone()
        };
        assert!(
            short
                .check_shape()
                .unwrap_err()
                .contains("1 sums for 2 pieces")
        );
    }

    #[test]
    fn a_summed_file_is_recorded_once_synced_whole() {
        struct Sink(Vec<u8>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl PartFile for Sink {
            fn sync(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let book = SumBook::default();
        let part = Path::new("/d/App[0001].4BK.part");
        let mut f = Summed::new(Sink(Vec::new()), part, "App[0001].4BK".into(), &book);
        f.write_all(b"hello").unwrap();
        assert_eq!(recorded(&book, part), None, "not before its sync");
        f.sync().unwrap();
        let p = recorded(&book, part).unwrap();
        assert_eq!((p.name.as_str(), p.size), ("App[0001].4BK", 5));
        assert!(p.holds(0, b"hello"));
        assert!(f.write(b"more").is_err(), "nothing after the record");
    }
}
