//! The `.4BK`/`.4BL` container (behaviour §6 and §13): what a backup holds,
//! how it is written, verified, listed and restored.
//!
//! A set is a POSIX (pax) tar stream, plain or zstd-compressed, cut into
//! segments when asked, whose last entry is `sauve-manifest.json` with every
//! entry's size and blake3, followed by a 64-byte index that says where the
//! manifest is (a zstd skippable frame, `index.rs`): a reader knows what a
//! set holds before it reads or writes any of it. `cat <segments> | zstd -d
//! | tar -x` restores it without sauve.
//!
//! This crate is not the engine: it knows nothing of actors, locks, hooks,
//! the journal or the history. It takes settings and an app layout, and
//! reports progress through [`Progress`], which the engine and the CLI draw.
//!
//! Invariants:
//! - a set appears under its final names only when complete and fsynced;
//!   a failed or stopped write leaves no file behind, and nothing is ever
//!   overwritten;
//! - every source byte is read once, and memory is bounded whatever the file sizes;
//! - a restore writes nothing outside its destination, nothing at all when
//!   the set's manifest declares more than the destination has free, none
//!   of an entry larger than the manifest declares, and moves nothing into
//!   place until every entry matched the manifest;
//! - no archive, however damaged or crafted, makes the reader panic.

mod content;
mod error;
mod frames;
mod incremental;
mod index;
mod kind;
mod manifest;
mod naming;
mod pieces;
mod reader;
mod remote;
mod restore;
mod safety;
mod source;
mod verify;
mod writer;

pub use content::{
    Attachment, CLONE_FOLDER_PREFIX, Content, Skipped, SourceEntry, resolve_content,
};
pub use error::ArchiveError;
/// Test hooks (the `test-hooks` feature, never in a release): a hold on
/// the frames being compressed, to prove Stop does not wait for them.
#[cfg(any(test, feature = "test-hooks"))]
pub use frames::hold::{FrameHold, HoldCounts};
pub use incremental::{AUTO_BLOCK, AUTO_MAX_BLOCKS, BLOCKS_PREFIX, Incremental, block_size_for};
pub use kind::SetKind;
pub use manifest::{
    BlockHashes, Blocks, EntryKind, EntryType, FORMAT, Layout, MANIFEST_NAME, Manifest,
    ManifestEntry, ManifestHeader, Store, VERSION, VERSIONS, Words,
};
pub use naming::{ArchiveName, SetFiles, log_gathering_name};
pub use pieces::{PIECE, PIECE_SIZES, PieceHasher, Pieces, SumBook, Summed, recorded};
pub use reader::{parent_in_head, parent_of};
pub use remote::{AGE_SUFFIX, Identities, RangeReader, RemoteSet, read_identities, strip_age};
pub use restore::{RestoreOptions, RestoreReport, restore, restore_remote};
pub use safety::unrestorable_name;
pub use sauve_number::BackupNumber;
pub use source::{SegmentSource, read_manifest_file};
pub use verify::{
    Origin, VerifyReport, list, list_origins, list_origins_remote, list_remote, verify,
    verify_remote, verify_remote_set, verify_set,
};
pub use writer::{
    ArchiveWriter, FolderTarget, NoProgress, OpenPart, PartFile, PendingSet, Progress, SetSpec,
    SetTarget, open_real_file, remove_stale_parts,
};
