//! Where a run's sets go. [`Destination`] is the one type a run's copier
//! holds for the whole run, a folder or a store alike: it knows where the
//! app's records of it are, how its sets are named, how a set is written
//! there, whether it is verified before its commit or read back after it,
//! retention there and the publication of its history. Nothing outside it
//! asks which kind it is.
//!
//! A bucket prefix as the destination of the runs (behaviour §19): the copier
//! streams each segment, compressed, straight into a multipart upload (no
//! local copy of the archive), completes the uploads in order at the commit
//! (the manifest-bearing segment last), verifies the set by reading it back,
//! and applies retention there. The history stays with the history keeper,
//! in the app's records of the store (`APP/Logs/Destinations/…`), and is
//! published to the store after every write: the app's own history object,
//! then `backupHistory.json` rebuilt from every app's.
//!
//! Store calls run on one small runtime of their own ([`io`]): the copier
//! is a blocking actor and waits for them there; uploads keep going between
//! its writes.

use sauve_number::BackupNumber;
use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sauve_archive::{ArchiveError, ArchiveName, PartFile, SetKind, SetTarget, Summed};
use sauve_settings::StoreConnection;
use sauve_store::{Location, Store, StoreError, Upload};

use crate::error::EngineError;
use crate::io::StoreIo;
use crate::retention::Retained;

/// Where a run's sets go, held by the copier for the whole run (see the
/// module documentation).
pub(crate) struct Destination {
    /// The app's records of it: the history, the set lock, scratch files
    /// (the folder itself, or `APP/Logs/Destinations/…` for a store).
    records: PathBuf,
    /// The store, when the sets go to one.
    store: Option<Arc<StoreDestination>>,
}

/// What a run learns of its destination when it opens it.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The app's records of it.
    pub(crate) records: PathBuf,
    /// How its sets are named: the folder, or `s3://bucket/prefix/`.
    pub(crate) named: PathBuf,
    /// Bytes free where the sets go (unbounded in a store).
    pub(crate) free: u64,
    /// Backup numbers its sets hold that the history may not list.
    pub(crate) taken: Vec<BackupNumber>,
    /// A set is verified under its `.part` names before its commit.
    pub(crate) verified_before_commit: bool,
    /// A committed set is read back and checked after its commit.
    pub(crate) read_back: bool,
    /// Sets are stored encrypted: only an identity reads them.
    pub(crate) encrypted: bool,
}

impl Destination {
    /// The destination `place` names, with `own` (the app's sauve.toml as
    /// the resolver read it for the run, or why it is not valid now): its
    /// records folder created (private, 0700) and checked
    /// writable (1407, -61); a store reached and its prefix checked to be
    /// this app's for `base` (1407, 1409). Returns what the run needs to
    /// know of it.
    pub(crate) fn open(
        place: &sauve_settings::Destination,
        own: Result<Arc<sauve_settings::SauveToml>, EngineError>,
        io: &StoreIo,
        (key, base): (&str, &str),
    ) -> Result<(Destination, Opened), EngineError> {
        let records = place.records().to_path_buf();
        let free = prepare_folder(&records)?;
        let store = match place {
            sauve_settings::Destination::Folder(_) => None,
            sauve_settings::Destination::Store { url, .. } => {
                Some(Arc::new(StoreDestination::with_settings(url, &*own?, io)?))
            }
        };
        let destination = Destination { records, store };
        let taken = match &destination.store {
            Some(store) => {
                store.check(key, base)?;
                store.numbers(base)?
            }
            None => Vec::new(),
        };
        let opened = Opened {
            records: destination.records.clone(),
            named: destination.named(),
            // Nothing is written on this disk but the records.
            free: if destination.store.is_some() {
                u64::MAX
            } else {
                free
            },
            taken,
            verified_before_commit: destination.store.is_none(),
            read_back: destination.store.as_ref().is_some_and(|s| !s.encrypted()),
            encrypted: destination.store.as_ref().is_some_and(|s| s.encrypted()),
        };
        Ok((destination, opened))
    }

    /// The app's records of it.
    pub(crate) fn records(&self) -> &Path {
        &self.records
    }

    /// How its sets are named: the folder, or `s3://bucket/prefix/`.
    pub(crate) fn named(&self) -> PathBuf {
        match &self.store {
            Some(store) => PathBuf::from(&store.url),
            None => self.records.clone(),
        }
    }

    /// The manifest of the set `name` (`base[NNNN]`) there, read alone
    /// through its index: the parent an incremental set compares with. Of
    /// a store whose sets are encrypted, the copy kept in the records
    /// ([`Destination::keep_manifest`]): a backup never needs the identity.
    pub(crate) fn manifest_of(&self, name: &str) -> Result<sauve_archive::Manifest, ArchiveError> {
        match &self.store {
            Some(store) if store.encrypted() => self.kept_manifest(store, name),
            Some(store) => store.manifest_of(name),
            None => sauve_archive::list(&self.records.join(name)).map(|(_, m)| m),
        }
    }

    /// Whether the manifest of each set committed is kept in the records:
    /// in a store whose sets are encrypted.
    pub(crate) fn keeps_manifests(&self) -> bool {
        self.store.as_ref().is_some_and(|s| s.encrypted())
    }

    /// Where the manifest of the newest set of `base` is kept.
    fn kept_manifest_path(&self, base: &str) -> PathBuf {
        self.records.join(format!(".{base}.sauve-manifest.json"))
    }

    /// Keeps `manifest`, the set just committed, in the records, in place
    /// of the one before (behaviour §21.1), written whole or not at all.
    pub(crate) fn keep_manifest(
        &self,
        manifest: &sauve_archive::Manifest,
    ) -> Result<(), sauve_durable::PathError> {
        let path = self.kept_manifest_path(&manifest.header.base_name);
        sauve_durable::replace_with(&path, |w| {
            let mut out = io::BufWriter::new(w);
            serde_json::to_writer(&mut out, manifest).map_err(io::Error::from)?;
            out.flush()
        })
    }

    /// The kept manifest of the set `name`, when it is that set's and the
    /// set is in the store; else why not, for the journal.
    fn kept_manifest(
        &self,
        store: &StoreDestination,
        name: &str,
    ) -> Result<sauve_archive::Manifest, ArchiveError> {
        let wanted = ArchiveName::parse(&format!("{name}.4BK")).ok_or_else(|| {
            ArchiveError::NotAnArchiveName {
                path: PathBuf::from(name),
            }
        })?;
        let path = self.kept_manifest_path(&wanted.base);
        // Read by `basis` as "NAME cannot be read (no kept manifest …)".
        let not_kept = |source: io::Error| ArchiveError::Io {
            action: "no kept manifest of it in",
            path: path.clone(),
            source,
        };
        let manifest = match sauve_archive::read_manifest_file(&path) {
            Ok(m) => m,
            Err(ArchiveError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(not_kept(io::Error::new(
                    io::ErrorKind::NotFound,
                    "the sets of a destination that encrypts build on the copy kept there",
                )));
            }
            Err(e) => return Err(not_kept(io::Error::other(e.to_string()))),
        };
        if manifest.header.kind != SetKind::Backup
            || manifest.header.backup_number != wanted.number
            || manifest.header.base_name != wanted.base
        {
            return Err(not_kept(io::Error::other(format!(
                "it holds the manifest of {}[{}]",
                manifest.header.base_name,
                manifest.header.backup_number.text()
            ))));
        }
        match store.numbers(&wanted.base) {
            Ok(numbers) if numbers.contains(&wanted.number) => Ok(manifest),
            Ok(_) => Err(ArchiveError::Missing {
                kind: SetKind::Backup,
                what: format!("{}{name} not found", store.url),
            }),
            Err(e) => Err(not_kept(io::Error::other(e.to_string()))),
        }
    }

    /// Where a set's files go: the store's uploads, or files made with
    /// `open` (real ones by default).
    pub(crate) fn target(&self, open: Option<sauve_archive::OpenPart>) -> Box<dyn SetTarget> {
        match &self.store {
            Some(store) => store.target(),
            None => Box::new(sauve_archive::FolderTarget::new(
                open.unwrap_or_else(sauve_archive::open_real_file),
            )),
        }
    }

    /// The total size of committed `files`.
    pub(crate) fn size_of(&self, files: &[PathBuf]) -> u64 {
        match &self.store {
            Some(store) => store.size_of(files),
            None => files
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum(),
        }
    }

    /// Removes the `.part` files of `base` a crashed run left (in a store,
    /// an upload never completed leaves no object).
    pub(crate) fn remove_stale_parts(&self, base: &str) -> Result<Vec<PathBuf>, EngineError> {
        match &self.store {
            Some(_) => Ok(Vec::new()),
            None => Ok(sauve_archive::remove_stale_parts(&self.records, base)?),
        }
    }

    /// Retention keeping the newest `keep` sets of `base` (behaviour §6.3).
    pub(crate) fn retain(
        &self,
        base: &str,
        keep: usize,
        own: Option<(BackupNumber, Option<BackupNumber>)>,
    ) -> Retained {
        match &self.store {
            Some(store) => store.retain(base, keep, own),
            None => crate::retention::apply(&self.records, base, keep),
        }
    }

    /// Reads committed `files` back and checks them against their
    /// manifest, where the destination is read back after a commit (see
    /// [`StoreDestination::verify`]); elsewhere the set was verified before
    /// its commit and there is nothing to read.
    pub(crate) fn read_back(
        &self,
        files: &[PathBuf],
        remove_unsound: bool,
        progress: &mut dyn sauve_archive::Progress,
    ) -> ReadBack {
        match &self.store {
            Some(store) if !store.encrypted() => store.verify(files, remove_unsound, progress),
            _ => ReadBack::default(),
        }
    }

    /// Publishes the history the history keeper keeps in the records,
    /// where the destination shows one of its own (a store, behaviour §19).
    pub(crate) fn publish_history(&self, key: &str) -> Result<(), EngineError> {
        match &self.store {
            Some(store) => store.publish_history(&self.records, key),
            None => Ok(()),
        }
    }
}

/// The store that holds the sets at `location` (see [`sets_location`]):
/// the folder itself, or the bucket prefix reached with `[destination]` of `own` over the AWS
/// environment variables, with the bytes per part of an upload. The run's
/// copier and the off-site copier reach a destination's sets through it
/// alike, so that a bucket destination's sets go off-site as a folder's do.
pub(crate) fn open_sets(
    location: &Location,
    own: &sauve_settings::SauveToml,
) -> Result<(Arc<dyn Store>, usize), StoreError> {
    let options = sets_options(own);
    let part_size = options.part_size.max(sauve_store::MIN_PART);
    Ok((sauve_store::open(location, &options)?, part_size))
}

/// How the destination's store is reached: `[destination]` of `own` over
/// the AWS environment variables.
pub(crate) fn sets_options(own: &sauve_settings::SauveToml) -> sauve_store::S3Options {
    crate::stores::s3_options(&StoreConnection::default(), &own.destination)
}

/// Where the sets `place` names are, as a store sees it.
pub(crate) fn sets_location(place: &sauve_settings::Destination) -> Result<Location, StoreError> {
    match place {
        sauve_settings::Destination::Folder(dir) => Ok(Location::Folder(dir.clone())),
        sauve_settings::Destination::Store { url, .. } => Location::parse(url),
    }
}

/// Creates the folder sauve writes in (private, 0700: sets hold the app's
/// data) and checks it can be written (1407, -61); the bytes free there.
fn prepare_folder(dir: &Path) -> Result<u64, EngineError> {
    let created =
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir);
    if let Err(source) = created {
        return Err(EngineError::DestinationUncreatable {
            path: dir.to_path_buf(),
            source,
        });
    }
    if !dir.is_dir() {
        return Err(EngineError::DestinationNotAFolder {
            path: dir.to_path_buf(),
        });
    }
    let probe = dir.join(format!(".sauve-write-test-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(source)
            if matches!(
                source.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            return Err(EngineError::DestinationReadOnly {
                path: dir.to_path_buf(),
                source,
            });
        }
        Err(source) => {
            return Err(EngineError::DestinationUnwritable {
                path: dir.to_path_buf(),
                source,
            });
        }
    }
    Ok(crate::free_space(dir).unwrap_or(u64::MAX))
}

/// What reading a committed set back found.
#[derive(Debug, Default)]
pub(crate) struct ReadBack {
    /// Why the set does not check, when it does not.
    pub(crate) failure: Option<EngineError>,
    /// Whether it was removed for not matching its manifest.
    pub(crate) removed: bool,
    /// The objects of an unsound set that could not be removed, and why.
    pub(crate) left: Vec<String>,
}

/// The store of a run.
pub(crate) struct StoreDestination {
    /// `s3://bucket/prefix/`, as the settings say.
    pub(crate) url: String,
    pub(crate) store: Arc<dyn Store>,
    /// Bytes per part of an upload.
    pub(crate) part_size: usize,
    /// `encrypt_to` of `[destination]`: each segment is stored as the age
    /// encryption of its bytes, named `….age` (behaviour §19).
    recipients: Vec<age::x25519::Recipient>,
    io: StoreIo,
}

impl std::fmt::Debug for StoreDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreDestination")
            .field("url", &self.url)
            .field("part_size", &self.part_size)
            .field("recipients", &self.recipients.len())
            .finish_non_exhaustive()
    }
}

/// The key of a set file: its name.
fn key_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl StoreDestination {
    /// Opens the store `url` names, with `[destination]` of `toml` (the
    /// sauve.toml in force) over the AWS environment variables.
    pub(crate) fn with_settings(
        url: &str,
        toml: &sauve_settings::SauveToml,
        io: &StoreIo,
    ) -> Result<StoreDestination, EngineError> {
        let (store, part_size) = open_sets(&Location::parse(url)?, toml)?;
        let mut recipients = Vec::new();
        for k in &toml.destination_encrypt_to {
            let r: age::x25519::Recipient = k.parse().map_err(|e| StoreError::Invalid {
                what: format!("destination.encrypt_to {k:?}"),
                reason: format!("not an age recipient: {e}"),
                accepted: "age recipients as age-keygen prints them (age1…)",
            })?;
            recipients.push(r);
        }
        Ok(StoreDestination {
            url: url.to_owned(),
            store,
            part_size,
            recipients,
            io: io.clone(),
        })
    }

    /// Whether the sets are stored encrypted (`….age`).
    pub(crate) fn encrypted(&self) -> bool {
        !self.recipients.is_empty()
    }

    /// The key of a set file: its name, with `.age` when encrypted.
    fn object_key(&self, path: &Path) -> String {
        let key = key_of(path);
        if self.encrypted() {
            format!("{key}{}", sauve_archive::AGE_SUFFIX)
        } else {
            key
        }
    }

    /// Runs `f` to completion on the store runtime. Only from blocking
    /// threads (the copier's), never from a task.
    fn wait<F>(&self, f: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.io.run(f)
    }

    /// Reaches the store (1407 for credentials or a missing bucket, 1409
    /// when it cannot be reached), and refuses a prefix where another app
    /// keeps sets of the same base name.
    pub(crate) fn check(&self, key: &str, base: &str) -> Result<(), EngineError> {
        let (store, key, base) = (Arc::clone(&self.store), key.to_owned(), base.to_owned());
        self.wait(
            async move { crate::stores::shared_base_guard(store.as_ref(), &key, &base).await },
        )?;
        Ok(())
    }

    /// The numbers of `base`'s backup sets in the store.
    pub(crate) fn numbers(&self, base: &str) -> Result<Vec<BackupNumber>, EngineError> {
        let (store, prefix) = (Arc::clone(&self.store), format!("{base}["));
        let mut numbers: Vec<BackupNumber> = self
            .wait(async move { store.list(&prefix).await })?
            .iter()
            .filter_map(|o| ArchiveName::parse(sauve_archive::strip_age(&o.key).0))
            .filter(|a| !a.part && a.base == base && a.kind == SetKind::Backup)
            .map(|a| a.number)
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        Ok(numbers)
    }

    /// Where the copier writes the set's segments.
    pub(crate) fn target(self: &Arc<Self>) -> Box<dyn SetTarget> {
        Box::new(StoreTarget {
            dest: Arc::clone(self),
            ready: Ready::default(),
            book: sauve_archive::SumBook::default(),
        })
    }

    /// The total size of committed `files`.
    pub(crate) fn size_of(&self, files: &[PathBuf]) -> u64 {
        files
            .iter()
            .filter_map(|f| {
                let (store, key) = (Arc::clone(&self.store), self.object_key(f));
                self.wait(async move { store.head(&key).await })
                    .ok()
                    .flatten()
            })
            .map(|o| o.size)
            .sum()
    }

    /// Reads the committed set back and checks it against its manifest
    /// (behaviour §13.2). With `remove_unsound`, a set that does not match it is
    /// removed, last segment first, so that nothing unsound stays under a
    /// set's name; a set that could not be read (the store out of reach)
    /// stays, unverified, for `sauve verify` or the next read to check.
    pub(crate) fn verify(
        &self,
        files: &[PathBuf],
        remove_unsound: bool,
        progress: &mut dyn sauve_archive::Progress,
    ) -> ReadBack {
        let Some(first) = files.first() else {
            return ReadBack::default();
        };
        // The set alone: its chain was read back when it was written.
        let e = match self
            .locate(&key_of(first))
            .and_then(|set| sauve_archive::verify_remote_set(&set, progress))
        {
            Ok(_) => return ReadBack::default(),
            Err(e) => e,
        };
        let mut checked = ReadBack::default();
        if remove_unsound && e.is_mismatch() {
            for f in files.iter().rev() {
                let key = self.object_key(f);
                let (store, object) = (Arc::clone(&self.store), key.clone());
                if let Err(d) = self.wait(async move { store.delete(&object).await }) {
                    checked.left.push(format!("{}{key}: {d}", self.url));
                }
            }
            checked.removed = checked.left.is_empty();
        }
        checked.failure = Some(e.into());
        checked
    }

    /// Reads the set `name` names back from the store and checks every
    /// segment, stream, size and hash against its manifest, with the older
    /// sets of its chain (behaviour §21.2). Writes nothing.
    pub(crate) fn read_back(
        &self,
        name: &str,
        progress: &mut dyn sauve_archive::Progress,
    ) -> Result<sauve_archive::VerifyReport, ArchiveError> {
        let set = self.locate(name)?;
        sauve_archive::verify_remote(&set, progress)
    }

    /// The manifest of the set `name` names, read alone through its index.
    fn manifest_of(&self, name: &str) -> Result<sauve_archive::Manifest, ArchiveError> {
        let set = self.locate(name)?;
        sauve_archive::list_remote(&set).map(|(_, m)| m)
    }

    /// Restores the set `name` names from the store (behaviour §13.1, §19): every
    /// hash checked in a staging folder before anything is moved into place.
    pub(crate) fn restore(
        &self,
        name: &str,
        options: &sauve_archive::RestoreOptions,
        progress: &mut dyn sauve_archive::Progress,
    ) -> Result<sauve_archive::RestoreReport, EngineError> {
        let set = self.locate(name)?;
        Ok(sauve_archive::restore_remote(&set, options, progress)?)
    }

    /// The set `name` names, located in the store: its segments listed.
    fn locate(&self, name: &str) -> Result<sauve_archive::RemoteSet, ArchiveError> {
        let (store, runtime, name) = (Arc::clone(&self.store), self.io.handle(), name.to_owned());
        self.wait(
            async move { sauve_archive::RemoteSet::locate(store, runtime, &name, None).await },
        )
    }

    /// Retention in the store (behaviour §6.3): the oldest sets of `base` go until
    /// `keep` remain, each whole (its segments, last first, then its `.4BL`).
    pub(crate) fn retain(
        &self,
        base: &str,
        keep: usize,
        own: Option<(BackupNumber, Option<BackupNumber>)>,
    ) -> Retained {
        let mut retained = Retained::default();
        let (store, base) = (Arc::clone(&self.store), base.to_owned());
        let (deleted, removed) = self.wait(async move {
            let mut deleted = Vec::new();
            let removed =
                crate::stores::prune(store.as_ref(), (&base, keep), own, |key, number| {
                    deleted.push((key.to_owned(), number));
                })
                .await;
            (deleted, removed)
        });
        for (key, number) in deleted {
            retained
                .files
                .push(PathBuf::from(format!("{}{key}", self.url)));
            if !retained.numbers.contains(&number) {
                retained.numbers.push(number);
            }
        }
        match removed {
            Ok(kept_for) => retained.kept_for = kept_for,
            Err(e) => retained.failure = Some(e.into()),
        }
        retained
    }

    /// Publishes the history the history keeper keeps in `records` (behaviour §19).
    pub(crate) fn publish_history(&self, records: &Path, key: &str) -> Result<(), EngineError> {
        let (store, records, key) = (
            Arc::clone(&self.store),
            records.to_path_buf(),
            key.to_owned(),
        );
        self.wait(async move {
            crate::stores::publish_history(store.as_ref(), &records, &key, None).await
        })?;
        Ok(())
    }
}

/// A store error through `io::Write`; the archive writer takes it out again.
fn carried(e: StoreError) -> io::Error {
    io::Error::other(e)
}

/// Segments written whole, by part path, waiting for the commit: a
/// segment being written (a [`StorePart`]) moves its upload here when synced.
type Ready = Arc<Mutex<Vec<(PathBuf, Box<dyn Upload>)>>>;

/// The uploads of one set: each segment's becomes its object at the commit.
struct StoreTarget {
    dest: Arc<StoreDestination>,
    ready: Ready,
    /// What each segment's object holds, summed below the encryption.
    book: sauve_archive::SumBook,
}

impl StoreTarget {
    fn take_ready(&mut self) -> Vec<(PathBuf, Box<dyn Upload>)> {
        std::mem::take(&mut *self.ready.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl SetTarget for StoreTarget {
    fn taken(&mut self, fin: &Path) -> io::Result<bool> {
        // Plain or encrypted, the name is the set's.
        for key in [
            key_of(fin),
            format!("{}{}", key_of(fin), sauve_archive::AGE_SUFFIX),
        ] {
            let store = Arc::clone(&self.dest.store);
            if self
                .dest
                .wait(async move { store.head(&key).await })
                .map_err(carried)?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn create(&mut self, part: &Path, fin: &Path) -> io::Result<Box<dyn PartFile>> {
        let (store, key) = (Arc::clone(&self.dest.store), self.dest.object_key(fin));
        let upload = self
            .dest
            .wait(async move { store.start_upload(&key).await })
            .map_err(carried)?;
        let part_path = part;
        let part = StorePart {
            part: part.to_path_buf(),
            upload: Some(upload),
            buf: Vec::with_capacity(self.dest.part_size),
            part_size: self.dest.part_size,
            sent: false,
            ready: Arc::clone(&self.ready),
            io: self.dest.io.clone(),
        };
        // Summed below the encryption: the sums are the stored bytes'.
        let part = Summed::new(part, part_path, self.dest.object_key(fin), &self.book);
        if !self.dest.encrypted() {
            return Ok(Box::new(part));
        }
        // `age -d -i KEY OBJECT` gives the segment back.
        let encryptor = age::Encryptor::with_recipients(
            self.dest
                .recipients
                .iter()
                .map(|r| r as &dyn age::Recipient),
        )
        .map_err(io::Error::other)?;
        Ok(Box::new(AgePart {
            stream: Some(encryptor.wrap_output(part)?),
        }))
    }

    fn discard(&mut self, part: &Path) {
        let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = ready.iter().position(|(p, _)| p == part) {
            let (_, upload) = ready.remove(i);
            drop(ready);
            let _ = self.dest.wait(upload.abort());
        }
    }

    fn commit(&mut self, files: &[(PathBuf, PathBuf)], _mode: u32) -> Result<(), ArchiveError> {
        let mut ready = self.take_ready();
        let mut done: Vec<String> = Vec::new();
        let mut failure = None;
        for (part, fin) in files {
            let Some(i) = ready.iter().position(|(p, _)| p == part) else {
                failure = Some(ArchiveError::Io {
                    action: "cannot complete",
                    path: fin.clone(),
                    source: io::Error::other("the segment was never uploaded whole"),
                });
                break;
            };
            let (_, upload) = ready.remove(i);
            // Completing checks that the key is free (1407 naming it).
            match self.dest.wait(upload.complete()) {
                Ok(_) => done.push(self.dest.object_key(fin)),
                Err(e) => {
                    failure = Some(ArchiveError::Store(e));
                    break;
                }
            }
        }
        let Some(failure) = failure else {
            return Ok(());
        };
        // The set's last segment is not there: what was completed goes, and
        // the rest is aborted, so no part of the set stays.
        for key in done.iter().rev() {
            let (store, object) = (Arc::clone(&self.dest.store), key.clone());
            if let Err(e) = self.dest.wait(async move { store.delete(&object).await }) {
                tracing::warn!("cannot remove {}{key}: {e}", self.dest.url);
            }
        }
        for (_, upload) in ready {
            let _ = self.dest.wait(upload.abort());
        }
        Err(failure)
    }

    fn readable_before_commit(&self) -> bool {
        false
    }

    fn pieces(&mut self, part: &Path) -> Option<sauve_archive::Pieces> {
        sauve_archive::recorded(&self.book, part)
    }
}

impl Drop for StoreTarget {
    fn drop(&mut self) {
        for (_, upload) in self.take_ready() {
            abort_soon(&self.dest.io, upload);
        }
    }
}

/// Aborts `upload` without waiting (from a drop, wherever it runs).
fn abort_soon(io: &StoreIo, upload: Box<dyn Upload>) {
    io.handle().spawn(async move {
        let _ = upload.abort().await;
    });
}

/// One segment, streamed into its upload a part at a time.
struct StorePart {
    part: PathBuf,
    /// `None` once synced (handed over) or failed (aborted).
    upload: Option<Box<dyn Upload>>,
    buf: Vec<u8>,
    part_size: usize,
    sent: bool,
    ready: Ready,
    io: StoreIo,
}

impl StorePart {
    fn send(&mut self, data: Vec<u8>) -> io::Result<()> {
        let Some(mut upload) = self.upload.take() else {
            return Err(io::Error::other("the upload of this segment has ended"));
        };
        // The upload goes to the runtime with its part and comes back.
        let (upload, sent) = self.io.run(async move {
            let sent = upload.put_part(Bytes::from(data)).await;
            (upload, sent)
        });
        if let Err(e) = sent {
            let _ = self.io.run(upload.abort());
            return Err(carried(e));
        }
        self.upload = Some(upload);
        self.sent = true;
        Ok(())
    }
}

impl Write for StorePart {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.upload.is_none() {
            return Err(io::Error::other("the upload of this segment has ended"));
        }
        // Each byte is copied once, into the part it goes out with.
        let mut rest = data;
        while !rest.is_empty() {
            let room = self.part_size - self.buf.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.buf.extend_from_slice(now);
            rest = later;
            if self.buf.len() == self.part_size {
                let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part_size));
                self.send(full)?;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PartFile for StorePart {
    /// Sends the last part, waits until every part has arrived (a set's
    /// memory is then its one segment's parts in flight, whatever its
    /// number of segments) and hands the upload over for the commit; the
    /// object stays invisible until then.
    fn sync(&mut self) -> io::Result<()> {
        if self.upload.is_none() {
            return Err(io::Error::other("the upload of this segment has ended"));
        }
        if !self.buf.is_empty() || !self.sent {
            let last = std::mem::take(&mut self.buf);
            self.send(last)?;
        }
        let Some(mut upload) = self.upload.take() else {
            return Err(io::Error::other("the upload of this segment has ended"));
        };
        // `settle` aborts the upload itself when a part failed.
        let (upload, settled) = self.io.run(async move {
            let settled = upload.settle().await;
            (upload, settled)
        });
        settled.map_err(carried)?;
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((self.part.clone(), upload));
        Ok(())
    }
}

impl Drop for StorePart {
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            abort_soon(&self.io, upload);
        }
    }
}

/// A segment encrypted with age on its way into its upload.
struct AgePart {
    /// `None` once synced.
    stream: Option<age::stream::StreamWriter<Summed<StorePart>>>,
}

impl Write for AgePart {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self.stream.as_mut() {
            Some(s) => s.write(data),
            None => Err(io::Error::other("the upload of this segment has ended")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PartFile for AgePart {
    /// Ends the age stream, then the upload's last part.
    fn sync(&mut self) -> io::Result<()> {
        let Some(stream) = self.stream.take() else {
            return Err(io::Error::other("the upload of this segment has ended"));
        };
        stream.finish()?.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sauve_archive::{ArchiveWriter, ManifestHeader, NoProgress, SetSpec};
    use sauve_settings::{AppLayout, Compression, Settings};

    /// A destination whose store is the folder `dir`.
    fn destination(dir: &Path) -> Arc<StoreDestination> {
        Arc::new(StoreDestination {
            url: format!("{}/", dir.display()),
            store: Arc::new(sauve_store::FolderStore::new(dir.to_path_buf())),
            part_size: sauve_store::MIN_PART,
            recipients: Vec::new(),
            io: StoreIo::start().unwrap(),
        })
    }

    /// Writes set 1 of an app holding a 13 MiB data file into `dest`, in
    /// segments of 6 MiB: three segments, each of two or more parts.
    fn write_set(root: &Path, dest: &Arc<StoreDestination>, dir: &Path) -> Vec<PathBuf> {
        let app = root.join("app");
        std::fs::create_dir_all(app.join("Data")).unwrap();
        let data: Vec<u8> = (0..13u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(app.join("Data/App.4DD"), data).unwrap();
        let layout = AppLayout::discover(&app).unwrap();
        let settings = Settings::default();
        let content = sauve_archive::resolve_content(&layout, &settings, dir).unwrap();
        let spec = SetSpec {
            destination: dir.to_path_buf(),
            base: layout.base_name(),
            number: 1.into(),
            kind: SetKind::Backup,
            compression: Compression::None,
            segment_size: 6 << 20,
            threads: 1,
        };
        let header = ManifestHeader::new(SetKind::Backup, 1, "App", jiff::Timestamp::UNIX_EPOCH);
        let mut w = ArchiveWriter::create_into(spec, header, dest.target()).unwrap();
        for e in &content.entries {
            w.append(e, &mut NoProgress).unwrap();
        }
        w.finish(jiff::Timestamp::UNIX_EPOCH)
            .unwrap()
            .commit()
            .unwrap()
    }

    #[test]
    fn a_set_streamed_into_a_store_reads_back_and_a_damaged_one_goes_only_when_asked() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("bk");
        let dest = destination(&dir);
        let files = write_set(root.path(), &dest, &dir);
        assert_eq!(files.len(), 3, "{files:?}");
        let checked = dest.verify(&files, true, &mut NoProgress);
        assert!(checked.failure.is_none(), "{:?}", checked.failure);
        // No upload is left behind, and every segment is whole.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");

        // One byte of the middle segment changed.
        let middle = &files[1];
        let mut bytes = std::fs::read(middle).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x40;
        std::fs::write(middle, bytes).unwrap();

        // A log backup's check never removes it: its records are nowhere else.
        let kept = dest.verify(&files, false, &mut NoProgress);
        assert!(kept.failure.is_some());
        assert!(!kept.removed);
        assert!(files.iter().all(|f| f.is_file()));

        let removed = dest.verify(&files, true, &mut NoProgress);
        let failure = removed.failure.map(|e| e.to_string()).unwrap_or_default();
        assert!(failure.contains("Data/App.4DD"), "{failure}");
        assert!(removed.removed, "{:?}", removed.left);
        assert!(files.iter().all(|f| !f.exists()));
    }

    #[test]
    fn a_set_that_cannot_be_read_back_is_never_removed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("bk");
        let dest = destination(&dir);
        let files = write_set(root.path(), &dest, &dir);
        // The store cannot be read (a file where its folder was): the set
        // may be sound, so it stays.
        let aside = root.path().join("aside");
        std::fs::rename(&dir, &aside).unwrap();
        std::fs::write(&dir, b"not a folder").unwrap();
        let checked = dest.verify(&files, true, &mut NoProgress);
        assert!(checked.failure.is_some());
        assert!(!checked.removed);
        assert!(checked.left.is_empty(), "{:?}", checked.left);
        std::fs::remove_file(&dir).unwrap();
        std::fs::rename(&aside, &dir).unwrap();
        assert!(files.iter().all(|f| f.is_file()));
        assert!(dest.verify(&files, true, &mut NoProgress).failure.is_none());
    }
}
