//! A folder as a store: keys are relative paths; an upload is a hidden
//! temporary file that a hard link makes visible (a hard link, unlike a
//! rename, never replaces an existing file).

use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{ObjectInfo, Store, StoreError, Upload};

/// Sets in a folder of a mounted file system.
#[derive(Clone, Debug)]
pub struct FolderStore {
    dir: PathBuf,
}

impl FolderStore {
    /// The store rooted at `dir` (created at the first write).
    pub fn new(dir: PathBuf) -> FolderStore {
        FolderStore { dir }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let bad = key.is_empty()
            || key.starts_with('/')
            || key
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..");
        if bad {
            return Err(StoreError::Invalid {
                what: format!("key {key:?}"),
                reason: "not a relative path".into(),
                accepted: "names separated by /, without . or ..",
            });
        }
        Ok(self.dir.join(key))
    }

    fn failed(&self, action: &'static str, key: &str, e: &io::Error) -> StoreError {
        StoreError::Failed {
            store: self.describe(),
            action,
            key: key.to_owned(),
            message: e.to_string(),
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nonce: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    path.with_file_name(format!(".{name}.{}.{nonce:x}.upload", std::process::id()))
}

/// Links `temp` to `path` (never replacing it), removes `temp`, fsyncs the folder.
fn publish(temp: &Path, path: &Path) -> io::Result<()> {
    let linked = std::fs::hard_link(temp, path);
    let _ = std::fs::remove_file(temp);
    linked?;
    sauve_durable::sync_folder(path.parent().unwrap_or(Path::new("."))).map_err(|e| e.source)
}

#[async_trait]
impl Store for FolderStore {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let root = self.dir.clone();
        let prefix_owned = prefix.to_owned();
        let found = blocking(move || {
            let mut out = Vec::new();
            // The folder part of the prefix, then names starting with the rest.
            let (sub, start) = prefix_owned.rsplit_once('/').unwrap_or(("", &prefix_owned));
            let dir = if sub.is_empty() {
                root.clone()
            } else {
                root.join(sub)
            };
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.starts_with(start) || name.ends_with(".upload") {
                    continue;
                }
                let meta = entry.metadata()?;
                if meta.is_file() {
                    let key = if sub.is_empty() {
                        name
                    } else {
                        format!("{sub}/{name}")
                    };
                    out.push(ObjectInfo {
                        key,
                        size: meta.len(),
                    });
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await;
        found.map_err(|e| self.failed("cannot list", prefix, &e))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(ObjectInfo {
                key: key.to_owned(),
                size: m.len(),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.failed("cannot read", key, &e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(Bytes::from(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound {
                store: self.describe(),
                key: key.to_owned(),
            }),
            Err(e) => Err(self.failed("cannot read", key, &e)),
        }
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        use std::os::unix::fs::FileExt;
        let path = self.path(key)?;
        let len = usize::try_from(range.end.saturating_sub(range.start)).unwrap_or(usize::MAX);
        let read = blocking(move || {
            let f = std::fs::File::open(&path)?;
            let mut buf = vec![0; len];
            f.read_exact_at(&mut buf, range.start)?;
            Ok(Bytes::from(buf))
        })
        .await;
        read.map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound {
                store: self.describe(),
                key: key.to_owned(),
            },
            _ => self.failed("cannot read", key, &e),
        })
    }

    async fn put_new(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let written = blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            sauve_durable::create_new(&path, &data).map_err(|e| e.source)
        })
        .await;
        match written {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(StoreError::Exists {
                store: self.describe(),
                key: key.to_owned(),
            }),
            Err(e) => Err(self.failed("cannot write", key, &e)),
        }
    }

    async fn put_replace(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let written = blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            sauve_durable::replace(&path, &data).map_err(|e| e.source)
        })
        .await;
        written.map_err(|e| self.failed("cannot write", key, &e))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.failed("cannot remove", key, &e)),
        }
    }

    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>, StoreError> {
        let path = self.path(key)?;
        if self.head(key).await?.is_some() {
            return Err(StoreError::Exists {
                store: self.describe(),
                key: key.to_owned(),
            });
        }
        let temp = temp_name(&path);
        let t = temp.clone();
        let file = blocking(move || {
            if let Some(dir) = t.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::File::create_new(&t)
        })
        .await
        .map_err(|e| self.failed("cannot create", key, &e))?;
        Ok(Box::new(FolderUpload {
            store: self.describe(),
            key: key.to_owned(),
            path,
            temp,
            file: Some(file),
            size: 0,
        }))
    }
}

/// An upload into a folder: a hidden temporary file until completed.
#[derive(Debug)]
struct FolderUpload {
    store: String,
    key: String,
    path: PathBuf,
    temp: PathBuf,
    file: Option<std::fs::File>,
    size: u64,
}

impl FolderUpload {
    fn failed(&self, action: &'static str, e: &io::Error) -> StoreError {
        StoreError::Failed {
            store: self.store.clone(),
            action,
            key: self.key.clone(),
            message: e.to_string(),
        }
    }
}

#[async_trait]
impl Upload for FolderUpload {
    fn key(&self) -> &str {
        &self.key
    }

    async fn put_part(&mut self, data: Bytes) -> Result<(), StoreError> {
        let Some(mut file) = self.file.take() else {
            return Err(self.failed("cannot write", &io::Error::other("upload finished")));
        };
        let len = data.len() as u64;
        match blocking(move || file.write_all(&data).map(|()| file)).await {
            Ok(f) => {
                self.file = Some(f);
                self.size += len;
                Ok(())
            }
            Err(e) => Err(self.failed("cannot write", &e)),
        }
    }

    async fn complete(mut self: Box<Self>) -> Result<u64, StoreError> {
        let Some(file) = self.file.take() else {
            return Err(self.failed("cannot complete", &io::Error::other("upload finished")));
        };
        let (temp, path) = (self.temp.clone(), self.path.clone());
        let done = blocking(move || {
            file.sync_all()?;
            drop(file);
            publish(&temp, &path)
        })
        .await;
        match done {
            Ok(()) => Ok(self.size),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(StoreError::Exists {
                store: self.store.clone(),
                key: self.key.clone(),
            }),
            Err(e) => Err(self.failed("cannot complete", &e)),
        }
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        self.file = None;
        match std::fs::remove_file(&self.temp) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.failed("cannot abort", &e)),
        }
    }
}

impl Drop for FolderUpload {
    fn drop(&mut self) {
        // Completed or aborted uploads have no temporary left; this is for
        // an upload dropped half-way (an error, a Stop).
        let _ = std::fs::remove_file(&self.temp);
    }
}
