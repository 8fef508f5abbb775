//! Where sets live (behaviour §19): a folder, or a prefix of an
//! S3-compatible bucket, behind one async interface, [`Store`].
//!
//! The archive, the off-site copier and the readers (list, verify, restore)
//! talk to a `dyn Store` and never to a file system or an HTTP client.
//!
//! Invariants, for every implementation:
//! - an object appears under its key only when complete ([`Upload::complete`]
//!   or [`Store::put_new`]); an upload dropped or aborted leaves no object;
//! - a set's object is never overwritten: every creating call checks the
//!   key first and fails with [`StoreError::Exists`] naming it, whether or
//!   not the store honours conditional requests (Garage 2.5 ignores them);
//! - only [`Store::put_replace`] replaces, and it is used only by the one
//!   writer of a record object (a history object, `backupHistory.json`);
//! - every error names the store, the bucket or the key, and the store's own
//!   message; [`StoreError::status`] maps it to a status in one place.

mod error;
mod folder;
mod location;
mod s3;

pub use error::StoreError;
pub use folder::{FolderStore, StagedError};
pub use location::{Addressing, DEFAULT_PART_SIZE, DEFAULT_PARTS_IN_FLIGHT, Location, S3Options};
pub use s3::S3Store;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

/// The smallest part a multipart upload takes (S3's rule, but the last part).
pub const MIN_PART: usize = 5 << 20;

/// One object of a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key, relative to the store's root (`Name[0001].4BK`).
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The most objects a listing may name: far past what sauve writes under
/// one prefix (999 sets of many segments), and a bound on the memory a
/// hostile bucket can make a listing take.
pub const MAX_LISTED: usize = 1_000_000;

/// A place that holds sets: a folder or a bucket prefix.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// The store as a person would type it: a folder path or `s3://bucket/prefix/`.
    fn describe(&self) -> String;

    /// Every object whose key starts with `prefix`, sorted by key. Keys of
    /// unfinished uploads are never listed.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError>;

    /// The object at `key`, or `None`.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError>;

    /// The whole object.
    async fn get(&self, key: &str) -> Result<Bytes, StoreError>;

    /// The whole object, refused ([`StoreError::Hostile`], 1411) when it
    /// holds more than `limit` bytes, whatever the store says its size is:
    /// for the records sauve reads back (histories), never trusted to be
    /// small.
    async fn get_bounded(&self, key: &str, limit: u64) -> Result<Bytes, StoreError>;

    /// A byte range of the object.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError>;

    /// Creates `key` with `data`; an existing object is never replaced.
    async fn put_new(&self, key: &str, data: Bytes) -> Result<(), StoreError>;

    /// Replaces `key` with `data` atomically. For record objects only, by
    /// their one writer.
    async fn put_replace(&self, key: &str, data: Bytes) -> Result<(), StoreError>;

    /// Removes `key`; a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Starts an upload that becomes `key` only when completed.
    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>, StoreError>;
}

/// An object being written, invisible until [`Upload::complete`].
#[async_trait]
pub trait Upload: Send {
    /// The key it becomes.
    fn key(&self) -> &str;

    /// Appends the next part (at least [`MIN_PART`] bytes but for the last).
    /// Several parts may be in flight; this waits when too many are.
    async fn put_part(&mut self, data: Bytes) -> Result<(), StoreError>;

    /// Waits until every part put so far has arrived, so that none holds
    /// memory any more; the upload stays open and invisible. On an error
    /// the upload is aborted.
    async fn settle(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Waits for every part, checks that the key is still free (1407 naming
    /// it otherwise, the upload aborted) and makes the object visible.
    async fn complete(self: Box<Self>) -> Result<u64, StoreError>;

    /// Drops the upload; nothing stays visible.
    async fn abort(self: Box<Self>) -> Result<(), StoreError>;
}

/// Opens the store a [`Location`] names.
pub fn open(location: &Location, options: &S3Options) -> Result<Arc<dyn Store>, StoreError> {
    match location {
        Location::Folder(dir) => Ok(Arc::new(FolderStore::new(dir.clone()))),
        Location::Bucket { bucket, prefix } => Ok(Arc::new(S3Store::open(
            bucket.clone(),
            prefix.clone(),
            options,
        )?)),
    }
}

/// Uploads `data` in parts of `part_size` through one upload and completes it.
/// On any failure the upload is aborted: nothing stays visible.
pub async fn upload_bytes(
    store: &dyn Store,
    key: &str,
    data: Bytes,
    part_size: usize,
) -> Result<u64, StoreError> {
    let mut upload = store.start_upload(key).await?;
    let part = part_size.max(MIN_PART);
    let mut at = 0;
    while at < data.len() || at == 0 {
        let end = (at + part).min(data.len());
        if let Err(e) = upload.put_part(data.slice(at..end)).await {
            let _ = upload.abort().await;
            return Err(e);
        }
        at = end;
        if at == data.len() {
            break;
        }
    }
    upload.complete().await
}
