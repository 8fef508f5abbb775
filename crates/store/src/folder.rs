//! A folder as a store: keys are relative paths; an upload is a hidden
//! temporary file that a hard link makes visible (a hard link, unlike a
//! rename, never replaces an existing file).
//!
//! Every name is resolved beneath a handle on the folder
//! (`sauve_durable::beneath`): a key never reaches outside it, and no
//! symlink someone put in the folder is followed, for reading or writing.
//! Objects are created 0600 and the folders sauve creates 0700: a store
//! holds copies of private files.

use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use sauve_durable::beneath::{Beneath, Kind};
use sauve_durable::fault::{Step, point};

use crate::{ObjectInfo, Store, StoreError, Upload};

/// Sets in a folder of a mounted file system.
#[derive(Clone, Debug)]
pub struct FolderStore {
    dir: PathBuf,
}

/// The mode of every object written.
const OBJECT_MODE: u32 = 0o600;

impl FolderStore {
    /// The store rooted at `dir` (created at the first write).
    pub fn new(dir: PathBuf) -> FolderStore {
        FolderStore { dir }
    }

    /// `key` as a name beneath the root, or why it is not one.
    fn rel(key: &str) -> Result<PathBuf, StoreError> {
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
        Ok(PathBuf::from(key))
    }

    fn failed(&self, action: &'static str, key: &str, e: &io::Error) -> StoreError {
        StoreError::Failed {
            store: self.describe(),
            action,
            key: key.to_owned(),
            message: e.to_string(),
        }
    }

    fn not_found(&self, key: &str) -> StoreError {
        StoreError::NotFound {
            store: self.describe(),
            key: key.to_owned(),
        }
    }

    /// Runs `f` on the folder's handle, off the async threads; `None` when
    /// the folder does not exist (and `create` is false).
    async fn with_root<T: Send + 'static>(
        &self,
        create: bool,
        f: impl FnOnce(Option<&Beneath>) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let dir = self.dir.clone();
        blocking(move || {
            if create {
                std::os::unix::fs::DirBuilderExt::mode(
                    std::fs::DirBuilder::new().recursive(true),
                    0o700,
                )
                .create(&dir)?;
            }
            match Beneath::open(&dir) {
                Ok(root) => f(Some(&root)),
                Err(e) if e.kind() == io::ErrorKind::NotFound && !create => f(None),
                Err(e) => Err(e),
            }
        })
        .await
    }
}

/// Why a staged set could not be given its final names (see
/// [`FolderStore::commit_staged`]). Names are relative to the folder.
#[derive(Debug)]
pub enum StagedError {
    /// A final name is taken: no name was given, nothing was replaced.
    Taken(PathBuf),
    /// A step failed on a name.
    Failed {
        /// What was being done: "cannot rename to", "cannot remove"…
        action: &'static str,
        /// The name.
        name: PathBuf,
        /// The system's error.
        source: io::Error,
    },
}

/// Sets written in place, a file per segment created under a staged name
/// (the archive's `….part`), readable before the commit (the set is
/// verified there), then given its final name by a hard link. Every name
/// is a single name in the folder, resolved beneath its handle: a link put
/// in the folder is never followed, and no name reaches outside it.
/// Blocking calls, for the writer's own thread.
impl FolderStore {
    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether `name` is taken in the folder (a file, a folder, a link),
    /// false when the folder does not exist yet.
    pub fn is_taken(&self, name: &Path) -> io::Result<bool> {
        match Beneath::open(&self.dir) {
            Ok(root) => Ok(root.kind(name)?.is_some()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates the staged file `name` (never one already there, never
    /// through a link), private (0600) until its set is committed with the
    /// mode of what it holds.
    pub fn create_staged(&self, name: &Path) -> io::Result<std::fs::File> {
        Beneath::open(&self.dir)?.create_new(name, OBJECT_MODE)
    }

    /// The names in the folder (none when it does not exist yet).
    pub fn names(&self) -> io::Result<Vec<std::ffi::OsString>> {
        match Beneath::open(&self.dir) {
            Ok(root) => root.names(Path::new("")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Removes the file `name` (a staged part, a set's file that retention
    /// deletes), never what a link there points to; after a crash point
    /// (`Unlink`).
    pub fn remove_file(&self, name: &Path) -> io::Result<()> {
        point(Step::Unlink, &self.dir.join(name))?;
        Beneath::open(&self.dir)?.remove_file(name)
    }

    /// Gives every staged file its final name, in order (the last one, the
    /// set's manifest-bearing segment, last): first `mode` on each, then a
    /// hard link to each final name (a link never replaces a file; when one
    /// fails, the names given are taken back), then the staged names
    /// removed and the folder synced. A final name already taken gives
    /// [`StagedError::Taken`] and no name. `files`: (staged, final) names.
    pub fn commit_staged(
        &self,
        files: &[(PathBuf, PathBuf)],
        mode: u32,
    ) -> Result<(), StagedError> {
        let failed = |action: &'static str, name: &Path| {
            let name = name.to_path_buf();
            move |source| StagedError::Failed {
                action,
                name,
                source,
            }
        };
        let Some((_, first)) = files.first() else {
            return Ok(());
        };
        let root = Beneath::open(&self.dir).map_err(failed("cannot open", Path::new("")))?;
        for (_, fin) in files {
            if root
                .kind(fin)
                .map_err(failed("cannot look at", fin))?
                .is_some()
            {
                return Err(StagedError::Taken(fin.clone()));
            }
        }
        // The mode is set on the staged file's own handle: never through a
        // link someone put in its place.
        for (part, _) in files {
            root.set_mode(part, mode)
                .map_err(failed("cannot set the mode of", part))?;
        }
        let mut linked: Vec<&PathBuf> = Vec::new();
        for (part, fin) in files {
            let link =
                point(Step::Link, &self.dir.join(fin)).and_then(|()| root.hard_link(part, fin));
            if let Err(e) = link {
                for l in linked {
                    let _ = root.remove_file(l);
                }
                return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                    StagedError::Taken(fin.clone())
                } else {
                    failed("cannot rename to", fin)(e)
                });
            }
            linked.push(fin);
        }
        for (part, _) in files {
            point(Step::Unlink, &self.dir.join(part))
                .and_then(|()| root.remove_file(part))
                .map_err(failed("cannot remove", part))?;
        }
        point(Step::SyncFolder, &self.dir)
            .and_then(|()| root.sync_dir(parent(first)))
            .map_err(failed("cannot sync folder", Path::new("")))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

fn temp_name(rel: &Path) -> PathBuf {
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nonce: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    rel.with_file_name(format!(".{name}.{}.{nonce:x}.upload", std::process::id()))
}

/// The folder part of `rel` (`""` for the root).
fn parent(rel: &Path) -> &Path {
    rel.parent().unwrap_or(Path::new(""))
}

/// Links `temp` to `rel` (never replacing it), removes `temp`, fsyncs the folder.
fn publish(root: &Beneath, temp: &Path, rel: &Path) -> io::Result<()> {
    let linked = root.hard_link(temp, rel);
    let _ = root.remove_file(temp);
    linked?;
    root.sync_dir(parent(rel))
}

/// Writes `data` whole and durably under a new temporary name beside
/// `rel` (its folders made), and returns that name; on an error, nothing
/// is left.
fn write_temp(root: &Beneath, rel: &Path, data: &[u8]) -> io::Result<PathBuf> {
    root.create_dir_all(parent(rel))?;
    let temp = temp_name(rel);
    let mut f = root.create_new(&temp, OBJECT_MODE)?;
    let done = f.write_all(data).and_then(|()| f.sync_all());
    drop(f);
    match done {
        Ok(()) => Ok(temp),
        Err(e) => {
            let _ = root.remove_file(&temp);
            Err(e)
        }
    }
}

/// Reads the file `rel` whole, up to `limit` bytes and one more.
fn read_at_most(root: &Beneath, rel: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = root.open_read(rel)?;
    let mut body = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut body)?;
    Ok(body)
}

#[async_trait]
impl Store for FolderStore {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let prefix_owned = prefix.to_owned();
        let found = self
            .with_root(false, move |root| {
                let mut out = Vec::new();
                let Some(root) = root else { return Ok(out) };
                // The folder part of the prefix, then names starting with the rest.
                let (sub, start) = prefix_owned.rsplit_once('/').unwrap_or(("", &prefix_owned));
                if !sub.is_empty() && FolderStore::rel(sub).is_err() {
                    return Ok(out);
                }
                let names = match root.names(Path::new(sub)) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
                    Err(e) => return Err(e),
                };
                for name in names {
                    let name = name.to_string_lossy().into_owned();
                    if !name.starts_with(start) || name.ends_with(".upload") {
                        continue;
                    }
                    // Only what matches counts: a folder may hold other files.
                    if out.len() == crate::MAX_LISTED {
                        return Err(io::Error::other(format!(
                            "the folder holds more than {} names under this prefix, past what sauve writes there",
                            crate::MAX_LISTED
                        )));
                    }
                    let key = if sub.is_empty() {
                        name
                    } else {
                        format!("{sub}/{name}")
                    };
                    // Only files: a symlink put in the folder is not an object.
                    if let Some((Kind::File, size)) = root.stat(Path::new(&key))? {
                        out.push(ObjectInfo { key, size });
                    }
                }
                out.sort_by(|a, b| a.key.cmp(&b.key));
                Ok(out)
            })
            .await;
        found.map_err(|e| self.failed("cannot list", prefix, &e))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        let rel = Self::rel(key)?;
        let found = self
            .with_root(false, move |root| match root {
                Some(root) => root.stat(&rel),
                None => Ok(None),
            })
            .await
            .map_err(|e| self.failed("cannot read", key, &e))?;
        Ok(match found {
            Some((Kind::File, size)) => Some(ObjectInfo {
                key: key.to_owned(),
                size,
            }),
            _ => None,
        })
    }

    async fn get_bounded(&self, key: &str, limit: u64) -> Result<Bytes, StoreError> {
        let rel = Self::rel(key)?;
        let read = self
            .with_root(false, move |root| match root {
                Some(root) => read_at_most(root, &rel, limit),
                None => Err(io::Error::from(io::ErrorKind::NotFound)),
            })
            .await;
        let body = read.map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => self.not_found(key),
            _ => self.failed("cannot read", key, &e),
        })?;
        if body.len() as u64 > limit {
            return Err(StoreError::Hostile {
                store: self.describe(),
                key: key.to_owned(),
                what: format!("more than the {limit} bytes sauve reads of it"),
            });
        }
        Ok(Bytes::from(body))
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let rel = Self::rel(key)?;
        let read = self
            .with_root(false, move |root| match root {
                Some(root) => read_at_most(root, &rel, u64::MAX - 1),
                None => Err(io::Error::from(io::ErrorKind::NotFound)),
            })
            .await;
        read.map(Bytes::from).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => self.not_found(key),
            _ => self.failed("cannot read", key, &e),
        })
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        use std::os::unix::fs::FileExt;
        let rel = Self::rel(key)?;
        let len = usize::try_from(range.end.saturating_sub(range.start)).unwrap_or(usize::MAX);
        let read = self
            .with_root(false, move |root| {
                let Some(root) = root else {
                    return Err(io::Error::from(io::ErrorKind::NotFound));
                };
                let f = root.open_read(&rel)?;
                let mut buf = vec![0; len];
                f.read_exact_at(&mut buf, range.start)?;
                Ok(Bytes::from(buf))
            })
            .await;
        read.map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => self.not_found(key),
            _ => self.failed("cannot read", key, &e),
        })
    }

    async fn put_new(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let rel = Self::rel(key)?;
        let written = self
            .with_root(true, move |root| {
                let Some(root) = root else {
                    return Err(io::Error::from(io::ErrorKind::NotFound));
                };
                // Written whole under a temporary name, then linked: the
                // key is never there half-written, and never replaced.
                let temp = write_temp(root, &rel, &data)?;
                publish(root, &temp, &rel)
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
        let rel = Self::rel(key)?;
        let written = self
            .with_root(true, move |root| {
                let Some(root) = root else {
                    return Err(io::Error::from(io::ErrorKind::NotFound));
                };
                let temp = write_temp(root, &rel, &data)?;
                // A rename replaces the name itself, never what a link
                // there points to.
                let done = root.rename(&temp, root, &rel);
                if done.is_err() {
                    let _ = root.remove_file(&temp);
                }
                done?;
                root.sync_dir(parent(&rel))
            })
            .await;
        written.map_err(|e| self.failed("cannot write", key, &e))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let rel = Self::rel(key)?;
        let removed = self
            .with_root(false, move |root| match root {
                Some(root) => root.remove_file(&rel),
                None => Ok(()),
            })
            .await;
        match removed {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.failed("cannot remove", key, &e)),
        }
    }

    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>, StoreError> {
        let rel = Self::rel(key)?;
        if self.head(key).await?.is_some() {
            return Err(StoreError::Exists {
                store: self.describe(),
                key: key.to_owned(),
            });
        }
        let temp = temp_name(&rel);
        let t = temp.clone();
        let opened = self
            .with_root(true, move |root| {
                let Some(root) = root else {
                    return Err(io::Error::from(io::ErrorKind::NotFound));
                };
                root.create_dir_all(parent(&t))?;
                let file = root.create_new(&t, OBJECT_MODE)?;
                // The upload completes in the folder it started in: the
                // handle itself, never the path opened again.
                Ok((root.try_clone()?, file))
            })
            .await
            .map_err(|e| self.failed("cannot create", key, &e))?;
        let (root, file) = opened;
        Ok(Box::new(FolderUpload {
            store: self.describe(),
            key: key.to_owned(),
            root: std::sync::Arc::new(root),
            rel,
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
    /// The store's folder, as opened when the upload started.
    root: std::sync::Arc<Beneath>,
    rel: PathBuf,
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
        let (root, temp, rel) = (self.root.clone(), self.temp.clone(), self.rel.clone());
        let done = blocking(move || {
            file.sync_all()?;
            drop(file);
            publish(&root, &temp, &rel)
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
        match self.root.remove_file(&self.temp) {
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
        let _ = self.root.remove_file(&self.temp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_set_gets_its_names_in_order_and_never_replaces_a_file() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let folder = FolderStore::new(t.path().to_path_buf());
        let names = |list: &[(&str, &str)]| -> Vec<(PathBuf, PathBuf)> {
            list.iter()
                .map(|(p, f)| (PathBuf::from(p), PathBuf::from(f)))
                .collect()
        };
        // Staged private, as the writer makes them: the mode comes from the commit.
        let stage = |part: &str| {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(t.path().join(part))
                .unwrap();
            f.write_all(part.as_bytes()).unwrap();
        };
        stage("a.part");
        stage("b.part");
        let set = names(&[("a.part", "a"), ("b.part", "b")]);
        folder.commit_staged(&set, 0o640).unwrap();
        for (name, body) in [("a", "a.part"), ("b", "b.part")] {
            let path = t.path().join(name);
            assert_eq!(std::fs::read_to_string(&path).unwrap(), body);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o640);
        }
        assert!(!folder.is_taken(Path::new("a.part")).unwrap());

        // A final name taken, even by a link to nowhere: no name is given,
        // nothing is replaced, the staged files stay for the caller.
        stage("c.part");
        stage("d.part");
        std::os::unix::fs::symlink("/nowhere", t.path().join("d")).unwrap();
        let err = folder
            .commit_staged(&names(&[("c.part", "c"), ("d.part", "d")]), 0o600)
            .unwrap_err();
        assert!(
            matches!(&err, StagedError::Taken(n) if n == Path::new("d")),
            "{err:?}"
        );
        assert!(!folder.is_taken(Path::new("c")).unwrap());
        assert!(folder.is_taken(Path::new("c.part")).unwrap());
        assert_eq!(
            std::fs::read_link(t.path().join("d")).unwrap(),
            Path::new("/nowhere")
        );
        folder.remove_file(Path::new("c.part")).unwrap();
        assert!(!folder.is_taken(Path::new("c.part")).unwrap());

        // A staged file gone before the commit: named, and no name given.
        stage("e.part");
        stage("f.part");
        std::fs::remove_file(t.path().join("f.part")).unwrap();
        let err = folder
            .commit_staged(&names(&[("e.part", "e"), ("f.part", "f")]), 0o600)
            .unwrap_err();
        assert!(
            matches!(&err, StagedError::Failed { action: "cannot set the mode of", name, .. } if name == Path::new("f.part")),
            "{err:?}"
        );
        assert!(!folder.is_taken(Path::new("e")).unwrap());
        assert!(folder.is_taken(Path::new("e.part")).unwrap());
        // A folder not made yet holds nothing.
        let later = FolderStore::new(t.path().join("later"));
        assert!(!later.is_taken(Path::new("a")).unwrap());
        assert!(later.names().unwrap().is_empty());
    }

    #[tokio::test]
    async fn no_key_and_no_link_in_the_folder_reaches_outside_it() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"secret").unwrap();
        let dir = t.path().join("store");
        std::fs::create_dir_all(dir.join(".sauve")).unwrap();
        // Someone who can write the folder links into the rest of the machine.
        std::os::unix::fs::symlink(&outside, dir.join(".sauve/history")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), dir.join("App[0001].4BK")).unwrap();
        let store = FolderStore::new(dir.clone());
        // A link is no object: not listed, not there, not read.
        assert!(store.head("App[0001].4BK").await.unwrap().is_none());
        assert!(store.list("App[").await.unwrap().is_empty());
        for key in [
            ".sauve/history/x.json",
            "App[0001].4BK",
            "../outside/secret",
        ] {
            assert!(store.get(key).await.is_err(), "{key} was read");
            assert!(
                store.get_bounded(key, 1 << 20).await.is_err(),
                "{key} was read"
            );
        }
        // Nothing is written through the linked folder, nor by a key going up.
        for key in [".sauve/history/y.json", "../outside/z"] {
            assert!(
                store.put_new(key, Bytes::from_static(b"x")).await.is_err(),
                "{key}"
            );
            assert!(
                store
                    .put_replace(key, Bytes::from_static(b"x"))
                    .await
                    .is_err(),
                "{key}"
            );
            assert!(store.start_upload(key).await.is_err(), "{key}");
        }
        // A record replaced over a link replaces the link itself.
        store
            .put_replace("App[0001].4BK", Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert!(!dir.join("App[0001].4BK").is_symlink());
        // Outside, nothing changed and nothing appeared.
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"secret");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn objects_are_private_and_so_is_the_folder_the_store_creates() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("new/store");
        let store = FolderStore::new(dir.clone());
        store
            .put_new("a/App[0001].4BK", Bytes::from_static(b"x"))
            .await
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("a/App[0001].4BK")), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(
            store.get("a/App[0001].4BK").await.unwrap(),
            Bytes::from_static(b"x")
        );
    }
}
