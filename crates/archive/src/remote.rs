//! Sets in a store (behaviour §19): found by listing their keys, read as one
//! stream through parallel ranged reads, with no local copy.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use sauve_store::{ObjectInfo, Store, StoreError};

use crate::error::ArchiveError;
use crate::naming::{ArchiveName, SetFiles};
use crate::source::SegmentSource;

/// The size of each ranged read.
const RANGE: u64 = 8 << 20;
/// Ranged reads in flight per segment: 32 MiB read ahead.
const AHEAD: usize = 4;

/// The suffix of a segment encrypted with age (behaviour §19).
pub const AGE_SUFFIX: &str = ".age";

/// Identities that open encrypted sets.
pub type Identities = Arc<Vec<Box<dyn age::Identity + Send + Sync>>>;

/// Reads an age identity file (`age-keygen`'s output: `AGE-SECRET-KEY-1…`
/// lines, comments allowed).
pub fn read_identities(path: &std::path::Path) -> Result<Identities, ArchiveError> {
    let bad = |reason: String| ArchiveError::Identity { reason };
    let file = age::IdentityFile::from_file(path.display().to_string()).map_err(|e| {
        bad(format!(
            "cannot read the identity file {}: {e}",
            path.display()
        ))
    })?;
    let ids = file
        .into_identities()
        .map_err(|e| bad(format!("{} holds no usable identity: {e}", path.display())))?;
    if ids.is_empty() {
        return Err(bad(format!("{} holds no identity", path.display())));
    }
    Ok(Arc::new(ids))
}

/// A key without its `.age`, and whether it had one.
pub fn strip_age(key: &str) -> (&str, bool) {
    match key.strip_suffix(AGE_SUFFIX) {
        Some(k) => (k, true),
        None => (key, false),
    }
}

/// A complete set in a store: its objects in stream order.
#[derive(Clone)]
pub struct RemoteSet {
    store: Arc<dyn Store>,
    runtime: tokio::runtime::Handle,
    identities: Option<Identities>,
    /// Base, number and kind.
    pub name: ArchiveName,
    /// The objects, in order: one, or segments 1, 2, 3…
    pub objects: Vec<ObjectInfo>,
}

impl std::fmt::Debug for RemoteSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSet")
            .field("store", &self.store.describe())
            .field("name", &self.name)
            .field("objects", &self.objects)
            .field("identities", &self.identities.as_ref().map(|i| i.len()))
            .finish()
    }
}

impl RemoteSet {
    /// Finds the set `name` names (`base[NNNN]`, `base[NNNN].4BK`, any of
    /// its segments) in `store`. A gap in the segments names the missing one.
    /// Reads run on `runtime`; the caller must not be one of its tasks.
    pub async fn locate(
        store: Arc<dyn Store>,
        runtime: tokio::runtime::Handle,
        name: &str,
        identities: Option<Identities>,
    ) -> Result<RemoteSet, ArchiveError> {
        let name = strip_age(name).0;
        let parsed = ArchiveName::parse(name)
            .or_else(|| ArchiveName::parse(&format!("{name}.4BK")))
            .filter(|n| !n.part)
            .ok_or_else(|| ArchiveError::NotAnArchiveName {
                path: PathBuf::from(name),
            })?;
        let set_name = ArchiveName {
            segment: None,
            part: false,
            ..parsed
        };
        let listed = store.list(&format!("{}[", set_name.base)).await?;
        let mut single = None;
        let mut segments: Vec<(u32, ObjectInfo)> = Vec::new();
        for o in listed {
            let Some(a) = ArchiveName::parse(strip_age(&o.key).0) else {
                continue;
            };
            if a.part
                || a.base != set_name.base
                || a.number != set_name.number
                || a.kind != set_name.kind
            {
                continue;
            }
            match a.segment {
                None => single = Some(o),
                Some(s) => segments.push((s, o)),
            }
        }
        let objects = if let Some(o) = single {
            vec![o]
        } else {
            segments.sort_by_key(|(s, _)| *s);
            if segments.is_empty() {
                return Err(ArchiveError::Missing {
                    kind: set_name.kind,
                    what: format!("{}{} not found", store.describe(), set_name),
                });
            }
            let numbers: Vec<u32> = segments.iter().map(|(s, _)| *s).collect();
            if let Some(missing) = crate::naming::first_missing_segment(&set_name, &numbers) {
                return Err(ArchiveError::Missing {
                    kind: set_name.kind,
                    what: format!("segment {}{missing} is missing", store.describe()),
                });
            }
            segments.into_iter().map(|(_, o)| o).collect()
        };
        let encrypted = objects.iter().filter(|o| strip_age(&o.key).1).count();
        if encrypted > 0 && encrypted < objects.len() {
            return Err(ArchiveError::corrupt(
                set_name.kind,
                format!(
                    "{}{set_name} mixes encrypted and plain segments",
                    store.describe()
                ),
            ));
        }
        if encrypted > 0 && identities.is_none() {
            return Err(ArchiveError::Encrypted {
                set: format!("{}{set_name}", store.describe()),
                reason: "no identity was given".into(),
            });
        }
        // A wrong identity is named now, not as a damaged stream later.
        if let (Some(ids), Some(first)) = (&identities, objects.first())
            && encrypted > 0
        {
            let head = store
                .get_range(&first.key, 0..first.size.min(64 << 10))
                .await?;
            let opened = age::Decryptor::new_buffered(&head[..])
                .map_err(|e| e.to_string())
                .and_then(|d| {
                    d.decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
                        .map(drop)
                        .map_err(|e| e.to_string())
                });
            if let Err(reason) = opened {
                return Err(ArchiveError::Encrypted {
                    set: format!("{}{set_name}", store.describe()),
                    reason: format!("the identities given do not open it ({reason})"),
                });
            }
        }
        Ok(RemoteSet {
            store,
            runtime,
            identities,
            name: set_name,
            objects,
        })
    }

    /// The set `name` names in the same store, read with the same
    /// identities: the older sets of a chain (behaviour §21.2). Waits on the
    /// store's runtime from this (blocking) thread, as the reads do.
    pub(crate) fn sibling(&self, name: &str) -> Result<RemoteSet, ArchiveError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (store, runtime) = (Arc::clone(&self.store), self.runtime.clone());
        let (identities, name) = (self.identities.clone(), name.to_owned());
        self.runtime.spawn(async move {
            let _ = tx.send(RemoteSet::locate(store, runtime, &name, identities).await);
        });
        rx.blocking_recv().unwrap_or_else(|_| {
            Err(ArchiveError::Io {
                action: "cannot look for",
                path: PathBuf::from(self.store.describe()),
                source: io::Error::other("the store's runtime stopped"),
            })
        })
    }

    /// The set as [`SetFiles`]: `dir` is the store as typed, `files` the keys.
    pub fn set_files(&self) -> SetFiles {
        SetFiles {
            dir: PathBuf::from(self.store.describe()),
            name: self.name.clone(),
            files: self.objects.iter().map(|o| PathBuf::from(&o.key)).collect(),
        }
    }

    /// The first object, as a person reads it: `s3://bucket/prefix/key`.
    pub(crate) fn first_label(&self) -> String {
        self.objects
            .first()
            .map(|o| format!("{}{}", self.store.describe(), o.key))
            .unwrap_or_default()
    }
}

impl SegmentSource for RemoteSet {
    fn names(&self) -> Vec<String> {
        self.objects.iter().map(|o| o.key.clone()).collect()
    }

    fn open(&self, index: usize) -> io::Result<Box<dyn Read + '_>> {
        let o = self
            .objects
            .get(index)
            .ok_or_else(|| io::Error::other("no such segment"))?;
        let reader = RangeReader::open(
            &self.runtime,
            Arc::clone(&self.store),
            o.key.clone(),
            o.size,
        );
        if !strip_age(&o.key).1 {
            return Ok(Box::new(reader));
        }
        let Some(ids) = &self.identities else {
            return Err(io::Error::other(format!(
                "{} is encrypted and no identity was given",
                o.key
            )));
        };
        let decryptor = age::Decryptor::new_buffered(io::BufReader::with_capacity(1 << 20, reader))
            .map_err(|e| io::Error::other(format!("{} is not an age file: {e}", o.key)))?;
        let plain = decryptor
            .decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{}{} cannot be decrypted with the identities given: {e}",
                        self.store.describe(),
                        o.key
                    ),
                )
            })?;
        Ok(Box::new(plain))
    }

    /// Known for a set none of whose objects is encrypted: an encrypted
    /// one is read from its start (its index is found by a first pass).
    fn lengths(&self) -> Option<Vec<u64>> {
        if self.objects.iter().any(|o| strip_age(&o.key).1) {
            return None;
        }
        Some(self.objects.iter().map(|o| o.size).collect())
    }

    fn open_at(&self, index: usize, offset: u64) -> io::Result<Box<dyn Read + '_>> {
        let o = self
            .objects
            .get(index)
            .ok_or_else(|| io::Error::other("no such segment"))?;
        if strip_age(&o.key).1 {
            let mut r = self.open(index)?;
            io::copy(&mut (&mut r).take(offset), &mut io::sink())?;
            return Ok(r);
        }
        Ok(Box::new(RangeReader::open_from(
            &self.runtime,
            Arc::clone(&self.store),
            (o.key.clone(), o.size),
            offset,
        )))
    }

    fn open_range(
        &self,
        index: usize,
        range: std::ops::Range<u64>,
    ) -> io::Result<Box<dyn Read + '_>> {
        let o = self
            .objects
            .get(index)
            .ok_or_else(|| io::Error::other("no such segment"))?;
        if strip_age(&o.key).1 {
            let len = range.end.saturating_sub(range.start);
            return Ok(Box::new(self.open_at(index, range.start)?.take(len)));
        }
        // Read as an object that ends at the range's end.
        Ok(Box::new(RangeReader::open_from(
            &self.runtime,
            Arc::clone(&self.store),
            (o.key.clone(), range.end.min(o.size)),
            range.start,
        )))
    }
}

/// One object read in order through ranged reads, four (`AHEAD`) of them in
/// flight on a runtime; memory stays at `AHEAD` ranges whatever the size.
pub struct RangeReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, StoreError>>,
    current: Bytes,
    key: String,
    size: u64,
    read: u64,
}

impl RangeReader {
    /// Starts reading `key` (of `size` bytes) on `runtime`.
    pub fn open(
        runtime: &tokio::runtime::Handle,
        store: Arc<dyn Store>,
        key: String,
        size: u64,
    ) -> RangeReader {
        RangeReader::open_from(runtime, store, (key, size), 0)
    }

    /// Starts reading `key` (of `size` bytes) from byte `from` on `runtime`.
    fn open_from(
        runtime: &tokio::runtime::Handle,
        store: Arc<dyn Store>,
        (key, size): (String, u64),
        from: u64,
    ) -> RangeReader {
        let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
        let k = key.clone();
        let from = from.min(size);
        runtime.spawn(async move {
            let ranges = (0..(size - from).div_ceil(RANGE)).map(|i| {
                let start = from + i * RANGE;
                start..(start + RANGE).min(size)
            });
            let mut reads = futures_util::stream::iter(ranges)
                .map(|r| {
                    let (store, key) = (Arc::clone(&store), k.clone());
                    async move { store.get_range(&key, r).await }
                })
                .buffered(AHEAD);
            while let Some(item) = reads.next().await {
                let failed = item.is_err();
                // The reader went away, or this was the error it will see.
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        RangeReader {
            rx,
            current: Bytes::new(),
            key,
            size,
            read: from,
        }
    }
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(io::Error::other(e.to_string())),
                None if self.read == self.size => return Ok(0),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} ended after {} of {} bytes",
                            self.key, self.read, self.size
                        ),
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        self.read += n as u64;
        Ok(n)
    }
}
