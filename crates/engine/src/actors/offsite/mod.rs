//! The off-site copier (behaviour §19): it owns the copies of committed sets to
//! every `[[offsite]]` destination, their retries with backoff and their
//! retention there. It never takes a lock of the app: it reads the
//! committed sets of the run's destination, a folder or a bucket, through
//! its store, in the background, after the run has recorded itself. The
//! state of each copy is written by the history keeper, in the history entry.

pub(crate) mod messages;

use sauve_number::BackupNumber;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, ResponseActFuture, WrapFuture};
use bytes::Bytes;
use sauve_archive::{ArchiveName, SetKind};
use sauve_history::{History, OffsiteCopy, OffsiteState};
use sauve_settings::{OffsiteSettings, StoreConnection};
use sauve_store::{ObjectInfo, Store, StoreError};
use tokio::sync::oneshot;

use crate::Clock;
use crate::actors::history::HistoryKeeper;
use crate::actors::history::messages::RecordOffsite;
use crate::actors::resolver::Resolver;
use crate::actors::resolver::messages::{OwnSettings, ReadOwnSettings};
use crate::stores::{publish_history, shared_base_guard};
use messages::{DrainCopies, Kick};

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

pub(crate) struct Offsite {
    pub(crate) app: PathBuf,
    pub(crate) history: actix::Addr<HistoryKeeper>,
    /// Who reads sauve.toml, for each pass.
    resolver: actix::Addr<Resolver>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Where a pass runs: it reads files and talks to stores, never on
    /// the actors' thread.
    io: crate::io::StoreIo,
    /// What the last run asked for; retries copy it again.
    work: Option<Kick>,
    busy: bool,
    again: bool,
    /// Failed attempts in a row, per destination.
    attempts: HashMap<String, u32>,
    drained: Vec<oneshot::Sender<()>>,
    /// The one pending retry, replaced (never added to) by each pass.
    retry: Option<actix::SpawnHandle>,
}

impl Offsite {
    pub(crate) fn new(
        app: PathBuf,
        (history, resolver): (actix::Addr<HistoryKeeper>, actix::Addr<Resolver>),
        clock: Arc<dyn Clock>,
        io: crate::io::StoreIo,
    ) -> Offsite {
        Offsite {
            app,
            history,
            resolver,
            clock,
            io,
            work: None,
            busy: false,
            again: false,
            attempts: HashMap::new(),
            drained: Vec::new(),
            retry: None,
        }
    }

    fn start_copies(&mut self, ctx: &mut Context<Self>) {
        let Some(work) = self.work.clone() else {
            return;
        };
        if self.busy {
            self.again = true;
            return;
        }
        self.busy = true;
        if let Some(h) = self.retry.take() {
            ctx.cancel_future(h);
        }
        let job = Job {
            app: self.app.clone(),
            history: self.history.clone(),
            resolver: self.resolver.clone(),
            clock: self.clock.clone(),
            work,
            attempts: self.attempts.clone(),
        };
        // The pass runs on the engine's store runtime; the actor waits for
        // its outcome.
        let pass = self.io.handle().spawn(job.run());
        let outcomes = async move { pass.await.unwrap_or_default() };
        ctx.spawn(outcomes.into_actor(self).map(|outcomes, act, ctx| {
            act.busy = false;
            let mut retry: Option<Duration> = None;
            for (label, outcome) in outcomes {
                match outcome {
                    Ok(()) => {
                        act.attempts.remove(&label);
                    }
                    Err(first_wait) => {
                        let n = act.attempts.entry(label).or_insert(0);
                        *n += 1;
                        let wait = first_wait
                            .saturating_mul(1 << (*n - 1).min(16))
                            .min(MAX_BACKOFF);
                        retry = Some(retry.map_or(wait, |r| r.min(wait)));
                    }
                }
            }
            if let Some(wait) = retry {
                act.retry = Some(ctx.run_later(wait, |act, ctx| {
                    act.retry = None;
                    act.start_copies(ctx);
                }));
            }
            if act.again {
                act.again = false;
                act.start_copies(ctx);
            } else {
                for tx in act.drained.drain(..) {
                    let _ = tx.send(());
                }
            }
        }));
    }
}

impl Actor for Offsite {
    type Context = Context<Self>;
}

impl Handler<Kick> for Offsite {
    type Result = ();
    fn handle(&mut self, msg: Kick, ctx: &mut Context<Self>) {
        self.work = Some(msg);
        self.start_copies(ctx);
    }
}

impl Handler<DrainCopies> for Offsite {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, _: DrainCopies, _: &mut Context<Self>) -> Self::Result {
        if !self.busy {
            return Box::pin(actix::fut::ready(()));
        }
        let (tx, rx) = oneshot::channel();
        self.drained.push(tx);
        Box::pin(
            async move {
                let _ = rx.await;
            }
            .into_actor(self),
        )
    }
}

/// One pass over every destination.
struct Job {
    app: PathBuf,
    history: actix::Addr<HistoryKeeper>,
    resolver: actix::Addr<Resolver>,
    clock: Arc<dyn Clock>,
    work: Kick,
    attempts: HashMap<String, u32>,
}

impl Job {
    /// Per destination: `Ok`, or the first wait before a retry.
    async fn run(self) -> Vec<(String, Result<(), Duration>)> {
        // sauve.toml as the resolver reads it now: a pass skips while the
        // file is not valid.
        let own = match self.resolver.send(ReadOwnSettings).await {
            Ok(OwnSettings {
                settings,
                problem: None,
            }) => settings,
            Ok(OwnSettings {
                problem: Some(e), ..
            }) => {
                tracing::warn!("off-site copies skipped: {e}");
                return Vec::new();
            }
            Err(_) => {
                tracing::warn!("off-site copies skipped: the resolver is gone");
                return Vec::new();
            }
        };
        // The run's destination as a store, a folder's as a bucket's.
        let source = crate::destination::sets_location(&self.work.source).and_then(|location| {
            let options = crate::destination::sets_options(&own);
            Ok((sauve_store::open(&location, &options)?, (location, options)))
        });
        let (source, place) = match source {
            Ok(opened) => opened,
            Err(e) => {
                tracing::warn!("off-site copies skipped: {e}");
                return own
                    .offsite
                    .iter()
                    .map(|t| (t.url.clone(), Err(t.retry_after)))
                    .collect();
            }
        };
        let mut out = Vec::new();
        for target in &own.offsite {
            let result = self
                .copy_to((source.as_ref(), &place), target, &own.destination)
                .await;
            if let Err(e) = &result {
                tracing::warn!(destination = %target.url, "off-site copy failed: {e}");
            }
            out.push((target.url.clone(), result.map_err(|_| target.retry_after)));
        }
        out
    }

    async fn record(
        &self,
        number: BackupNumber,
        label: &str,
        state: OffsiteState,
        reason: Option<String>,
    ) {
        let attempts = self.attempts.get(label).copied().unwrap_or(0) + 1;
        let msg = RecordOffsite {
            destination: self.work.destination.clone(),
            key: self.work.key.clone(),
            number,
            label: label.to_owned(),
            copy: OffsiteCopy {
                state,
                at: sauve_history::format_date(self.clock.now()),
                attempts,
                reason,
            },
            now: self.clock.now(),
        };
        match self.history.send(msg).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("the state of an off-site copy was not recorded: {e}"),
            Err(_) => tracing::warn!("the history keeper is gone"),
        }
    }

    async fn copy_to(
        &self,
        (source, place): (&dyn Store, &(sauve_store::Location, sauve_store::S3Options)),
        target: &OffsiteSettings,
        base: &StoreConnection,
    ) -> Result<(), String> {
        let label = target.url.as_str();
        let mut recipients = Vec::new();
        for k in &target.encrypt_to {
            let r: age::x25519::Recipient = k
                .parse()
                .map_err(|e| format!("{label}: encrypt_to {k:?} is not an age recipient: {e}"))?;
            recipients.push(r);
        }
        let there =
            crate::stores::offsite_place(&self.app, target, base).map_err(|e| e.to_string())?;
        let store = sauve_store::open(&there.0, &there.1).map_err(|e| e.to_string())?;
        let part_size = there.1.part_size;
        let here = place.clone();
        let same = tokio::task::spawn_blocking(move || {
            crate::stores::same_place((&here.0, &here.1), (&there.0, &there.1))
        })
        .await
        .unwrap_or(false);
        if same {
            return Err(format!(
                "{label}: the off-site destination is the destination itself ({}); name another place",
                source.describe()
            ));
        }
        let destination = &self.work.destination;
        let (work, owned_label) = (self.work.clone(), label.to_owned());
        let recorded = tokio::task::spawn_blocking(move || Recorded::read(&work, &owned_label))
            .await
            .map_err(|e| e.to_string())??;
        let listed = source
            .list(&format!("{}[", self.work.base))
            .await
            .map_err(|e| e.to_string())?;
        // A set gone from the destination (retention) has nothing to copy.
        let todo: Vec<_> = sets_of(&listed, &self.work.base)
            .into_iter()
            .filter(|(number, _)| recorded.to_copy(*number))
            .collect();
        // Whatever stops every copy (the store unreachable, a prefix shared
        // with another app of the same base) is each pending set's reason.
        if let Err(e) = shared_base_guard(store.as_ref(), &self.work.key, &self.work.base).await {
            let reason = e.to_string();
            for (number, _) in &todo {
                self.record(*number, label, OffsiteState::Failed, Some(reason.clone()))
                    .await;
            }
            return Err(reason);
        }
        let mut permanent = None;
        for (number, files) in todo {
            if let Some(reason) = recorded.mismatch(number, &files) {
                self.record(number, label, OffsiteState::Failed, Some(reason.clone()))
                    .await;
                permanent = Some(reason);
                continue;
            }
            match copy_set((source, store.as_ref()), &files, part_size, &recipients).await {
                Ok(()) => {
                    self.record(number, label, OffsiteState::Copied, None).await;
                }
                Err(err) => {
                    let reason = err.to_string();
                    self.record(number, label, OffsiteState::Failed, Some(reason.clone()))
                        .await;
                    if err.is_transient() {
                        // The store is down or failing: the rest waits for the retry.
                        return Err(reason);
                    }
                    // This set cannot go (a taken key, say): the others still do.
                    permanent = Some(reason);
                }
            }
        }
        // Published first: retention reads an encrypted copy's parent there.
        publish_history(store.as_ref(), destination, &self.work.key, Some(label))
            .await
            .map_err(|e| e.to_string())?;
        if let Some(keep) = target.keep {
            crate::stores::prune(
                store.as_ref(),
                (&self.work.base, keep as usize),
                None,
                |_, _| {},
            )
            .await
            .map_err(|e| e.to_string())?;
        }
        match permanent {
            // Retried at the next run (the cause may be fixed by then), not by the timer.
            Some(reason) => {
                tracing::warn!(destination = %label, "a set could not be copied: {reason}");
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// What the history in the records says of the sets and their copies to
/// the off-site destination `label`.
#[derive(Default)]
struct Recorded {
    /// The backup sets it records, with the names of their `.4BK` files
    /// when it lists them.
    sets: BTreeMap<BackupNumber, BTreeSet<String>>,
    /// Those recorded as copied to `label`.
    copied: Vec<BackupNumber>,
    /// Whether a set it does not record goes too: from a folder destination
    /// on this machine (a set committed, then a crash before its record),
    /// never from a bucket, which others may write.
    unrecorded: bool,
}

impl Recorded {
    /// Blocking: it reads the history in the records.
    fn read(work: &Kick, label: &str) -> Result<Recorded, String> {
        let history = sauve_history::read_json_text(&work.destination)
            .map_err(|e| e.to_string())?
            .and_then(|t| History::parse(&t))
            .unwrap_or_default();
        let entries = history.entries(&work.key).unwrap_or_default();
        let mut recorded = Recorded {
            unrecorded: matches!(work.source, sauve_settings::Destination::Folder(_)),
            ..Recorded::default()
        };
        for e in entries.iter().filter(|e| e.is_numbered_backup()) {
            let names = e
                .segments
                .iter()
                .flatten()
                .filter_map(|path| backup_name(path.rsplit('/').next()?, e.backup_number))
                .collect();
            recorded.sets.insert(e.backup_number, names);
            let copy = e.offsite.as_ref().and_then(|o| o.get(label));
            if copy.is_some_and(|c| c.state == OffsiteState::Copied) {
                recorded.copied.push(e.backup_number);
            }
        }
        Ok(recorded)
    }

    /// Whether set `number` found in the destination goes off-site: one not
    /// copied yet that the history records, or (from a folder) one it does
    /// not record.
    fn to_copy(&self, number: BackupNumber) -> bool {
        !self.copied.contains(&number) && (self.sets.contains_key(&number) || self.unrecorded)
    }

    /// Why `objects`, found in the destination for set `number`, are not the
    /// set the history records (a segment missing, one more), if they are not.
    fn mismatch(&self, number: BackupNumber, objects: &[ObjectInfo]) -> Option<String> {
        let expected = self.sets.get(&number).filter(|names| !names.is_empty())?;
        let found: BTreeSet<String> = objects
            .iter()
            .filter_map(|o| backup_name(&o.key, number))
            .collect();
        (found != *expected).then(|| {
            let list = |names: &BTreeSet<String>| names.iter().cloned().collect::<Vec<_>>().join(", ");
            format!(
                "the destination holds {} for set {number}, its record lists {}: not copied until they agree",
                list(&found),
                list(expected)
            )
        })
    }
}

/// The name of a file or object of backup set `number` (`.age` left out),
/// or `None` when `name` is not one.
fn backup_name(name: &str, number: BackupNumber) -> Option<String> {
    let bare = sauve_archive::strip_age(name).0;
    let parsed = ArchiveName::parse(bare)?;
    (parsed.kind == SetKind::Backup && parsed.number == number && !parsed.part)
        .then(|| bare.to_owned())
}

/// The objects of one set (a backup or a log backup), by segment number.
type Segments = Vec<(Option<u32>, ObjectInfo)>;

/// The sets of `base` in `source` (the run's destination), with their
/// objects in upload order: set N's log backup (`base[N-1].4BL`, behaviour
/// §6.3) first, then its segments, the manifest-bearing one last. A set
/// with a gap in its segments is not whole and is left out (a set whose log
/// backup has a gap goes without it).
fn sets_of(listed: &[ObjectInfo], base: &str) -> Vec<(BackupNumber, Vec<ObjectInfo>)> {
    let mut sets: BTreeMap<(BackupNumber, bool), Segments> = BTreeMap::new();
    for o in listed {
        let Some(name) = ArchiveName::parse(sauve_archive::strip_age(&o.key).0) else {
            continue;
        };
        // Only the names sauve writes: `Notes[00005].4BK` is not set 5.
        if name.part || name.base != base || name.to_string() != sauve_archive::strip_age(&o.key).0
        {
            continue;
        }
        let backup = name.kind == SetKind::Backup;
        sets.entry((name.number, backup))
            .or_default()
            .push((name.segment, o.clone()));
    }
    let whole = |objects: Option<&Segments>| -> Option<Vec<ObjectInfo>> {
        let mut objects = objects?.clone();
        objects.sort_by_key(|(segment, _)| *segment);
        // A set is stored all plain or all encrypted.
        let sealed = |o: &ObjectInfo| sauve_archive::strip_age(&o.key).1;
        if objects
            .iter()
            .any(|(_, o)| sealed(o) != sealed(&objects[0].1))
        {
            return None;
        }
        let single = matches!(objects.as_slice(), [(None, _)]);
        let counted = objects
            .iter()
            .enumerate()
            .all(|(i, (segment, _))| *segment == u32::try_from(i + 1).ok());
        (single || counted).then(|| objects.into_iter().map(|(_, o)| o).collect())
    };
    let mut out = Vec::new();
    for (number, _) in sets.keys().filter(|(_, backup)| *backup) {
        let Some(segments) = whole(sets.get(&(*number, true))) else {
            continue;
        };
        let mut objects = number
            .log_set()
            .and_then(|log| whole(sets.get(&(log, false))))
            .unwrap_or_default();
        objects.extend(segments);
        out.push((*number, objects));
    }
    out
}

/// Copies each object of a set from `source` into `target`, each through
/// one multipart upload: as it is stored when it is already encrypted (a
/// `….age` object of an encrypted destination) or when the off-site
/// destination encrypts nothing, else encrypted to `recipients` under
/// `NAME.age`. An object already there counts as a copy completed before
/// (a crash, a retry; objects are visible only when whole) only when it is
/// this very object (same size and blake3; for one encrypted here, the exact
/// size of its age encryption); anything else is refused: nothing is
/// overwritten.
async fn copy_set(
    (source, target): (&dyn Store, &dyn Store),
    objects: &[ObjectInfo],
    part_size: usize,
    recipients: &[age::x25519::Recipient],
) -> Result<(), StoreError> {
    for object in objects {
        let (name, sealed) = sauve_archive::strip_age(&object.key);
        if sealed || recipients.is_empty() {
            if let Some(there) = target.head(&object.key).await? {
                if there.size == object.size && same_content((source, target), object).await? {
                    continue;
                }
                return Err(StoreError::Exists {
                    store: target.describe(),
                    key: object.key.clone(),
                });
            }
            copy_object((source, target), object, part_size).await?;
        } else {
            let key = format!("{name}{}", sauve_archive::AGE_SUFFIX);
            if let Some(there) = target.head(&key).await? {
                // Without the identity the content cannot be compared; the
                // size of an age file of this object for these recipients can.
                if sealed_copy(target, &there, object.size, recipients.len()).await? {
                    continue;
                }
                return Err(StoreError::Exists {
                    store: target.describe(),
                    key,
                });
            }
            upload_encrypted((source, target), object, &key, part_size, recipients).await?;
        }
    }
    Ok(())
}

/// The most bytes an age header of sauve's takes: a stanza per recipient
/// (about 100 bytes each) and one grease stanza of random size (under 250).
const AGE_HEADER_MAX: u64 = 64 << 10;

/// Whether `there` is an age encryption of `size` bytes to `recipients`
/// X25519 recipients: its header (read from the store) holds that many
/// X25519 stanzas, and its size is that header's, the 16-byte nonce, the
/// bytes and a 16-byte tag per 64 KiB chunk (one for an empty object). The
/// header's length varies (age adds a grease stanza of random size), so it
/// is read, not assumed.
async fn sealed_copy(
    store: &dyn Store,
    there: &ObjectInfo,
    size: u64,
    recipients: usize,
) -> Result<bool, StoreError> {
    if there.size == 0 {
        return Ok(false);
    }
    let head = store
        .get_range(&there.key, 0..there.size.min(AGE_HEADER_MAX))
        .await?;
    let Some(header) = age_header_len(&head) else {
        return Ok(false);
    };
    let stanzas = head[..header]
        .windows(10)
        .filter(|w| *w == b"\n-> X25519")
        .count();
    let chunks = size.div_ceil(64 << 10).max(1);
    // Sizes from a listing: never trusted not to overflow.
    let expected = (header as u64)
        .checked_add(16)
        .and_then(|n| n.checked_add(size))
        .and_then(|n| n.checked_add(chunks.checked_mul(16)?));
    Ok(stanzas == recipients && expected == Some(there.size))
}

/// The length of the age header that `head` starts with, through the end
/// of its MAC line (`--- …`), or `None` when it starts with none.
fn age_header_len(head: &[u8]) -> Option<usize> {
    const VERSION: &[u8] = b"age-encryption.org/v1\n";
    if !head.starts_with(VERSION) {
        return None;
    }
    let mac = head.windows(5).position(|w| w == b"\n--- ")? + 1;
    let end = head[mac..].iter().position(|&b| b == b'\n')?;
    Some(mac + end + 1)
}

/// The bytes of `object` in `source` from `at`, at most `step` of them; a
/// range that comes back short (the object changed under the copy) is an
/// error naming it.
async fn read_range(
    source: &dyn Store,
    object: &ObjectInfo,
    at: u64,
    step: usize,
) -> Result<Bytes, StoreError> {
    let end = (at + step.max(1) as u64).min(object.size);
    let data = source.get_range(&object.key, at..end).await?;
    if data.len() as u64 != end - at {
        // Not the object listed: a retry would not help this set.
        return Err(StoreError::Hostile {
            store: source.describe(),
            key: object.key.clone(),
            what: format!(
                "{} bytes came back for the range {at}..{end} of an object listed with {}: it changed during the copy",
                data.len(),
                object.size
            ),
        });
    }
    Ok(data)
}

/// True when the object of `target` under `object`'s key holds exactly the
/// bytes of `object` in `source` (compared by blake3, reading both).
async fn same_content(
    (source, target): (&dyn Store, &dyn Store),
    object: &ObjectInfo,
) -> Result<bool, StoreError> {
    let mut hashes = [blake3::Hasher::new(), blake3::Hasher::new()];
    for (store, hash) in [source, target].into_iter().zip(hashes.iter_mut()) {
        let mut at = 0;
        while at < object.size {
            let data = read_range(store, object, at, 8 << 20).await?;
            at += data.len() as u64;
            hash.update(&data);
        }
    }
    Ok(hashes[0].finalize() == hashes[1].finalize())
}

/// Copies `object` from `source` into an upload of `target` under the same
/// key, a part at a time; aborted on failure.
async fn copy_object(
    (source, target): (&dyn Store, &dyn Store),
    object: &ObjectInfo,
    part_size: usize,
) -> Result<u64, StoreError> {
    let mut upload = target.start_upload(&object.key).await?;
    let part = part_size.max(sauve_store::MIN_PART);
    // An empty object is one empty part, with nothing to read (a store
    // refuses an empty range).
    let mut sent = if object.size == 0 {
        upload.put_part(Bytes::new()).await
    } else {
        Ok(())
    };
    let mut at = 0;
    while sent.is_ok() && at < object.size {
        sent = match read_range(source, object, at, part).await {
            Ok(data) => {
                at += data.len() as u64;
                upload.put_part(data).await
            }
            Err(e) => Err(e),
        };
    }
    match sent {
        Ok(()) => upload.complete().await,
        Err(e) => {
            let _ = upload.abort().await;
            Err(e)
        }
    }
}

/// The encrypted bytes an age stream wrote, taken a part at a time.
#[derive(Clone, Default)]
struct Sealed(Arc<std::sync::Mutex<Vec<u8>>>);

impl Sealed {
    /// The first `part` bytes written, when there are that many: every part
    /// but the last is of the same size, as some stores require.
    fn take(&self, part: usize) -> Option<Bytes> {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if buf.len() < part {
            return None;
        }
        let rest = buf.split_off(part);
        Some(Bytes::from(std::mem::replace(&mut *buf, rest)))
    }

    /// Every byte written and not taken yet.
    fn rest(&self) -> Bytes {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Bytes::from(std::mem::take(&mut *buf))
    }
}

impl std::io::Write for Sealed {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streams `object` of `source`, encrypted with age (on a blocking thread,
/// a range at a time), into an upload of `target` under `key`; aborted on
/// failure. `age -d -i KEY OBJECT` gives the object back.
async fn upload_encrypted(
    (source, target): (&dyn Store, &dyn Store),
    object: &ObjectInfo,
    key: &str,
    part_size: usize,
    recipients: &[age::x25519::Recipient],
) -> Result<u64, StoreError> {
    let mut upload = target.start_upload(key).await?;
    let sent = send_encrypted(
        source,
        object,
        (upload.as_mut(), key),
        part_size,
        recipients,
    )
    .await;
    match sent {
        Ok(()) => upload.complete().await,
        Err(e) => {
            let _ = upload.abort().await;
            Err(e)
        }
    }
}

/// The parts of [`upload_encrypted`]: the object read a part at a time,
/// encrypted on a blocking thread, and each full part of ciphertext put.
async fn send_encrypted(
    source: &dyn Store,
    object: &ObjectInfo,
    (upload, key): (&mut dyn sauve_store::Upload, &str),
    part_size: usize,
    recipients: &[age::x25519::Recipient],
) -> Result<(), StoreError> {
    let failed = |message: String| StoreError::Failed {
        store: source.describe(),
        action: "cannot encrypt",
        key: object.key.clone(),
        message: format!("for {key}: {message}"),
    };
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| failed(e.to_string()))?;
    let part = part_size.max(sauve_store::MIN_PART);
    let sealed = Sealed::default();
    let mut writer = encryptor
        .wrap_output(sealed.clone())
        .map_err(|e| failed(e.to_string()))?;
    let mut at = 0;
    let mut sent_any = false;
    while at < object.size {
        let data = read_range(source, object, at, part).await?;
        at += data.len() as u64;
        let wrote;
        (writer, wrote) = tokio::task::spawn_blocking(move || {
            let wrote = std::io::Write::write_all(&mut writer, &data);
            (writer, wrote)
        })
        .await
        .map_err(|e| failed(e.to_string()))?;
        wrote.map_err(|e| failed(e.to_string()))?;
        while let Some(full) = sealed.take(part) {
            upload.put_part(full).await?;
            sent_any = true;
        }
    }
    writer.finish().map_err(|e| failed(e.to_string()))?;
    while let Some(full) = sealed.take(part) {
        upload.put_part(full).await?;
        sent_any = true;
    }
    let last = sealed.rest();
    // An empty last part only when it is the only one.
    if !last.is_empty() || !sent_any {
        upload.put_part(last).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sauve_store::FolderStore;

    fn object(key: &str, size: u64) -> ObjectInfo {
        ObjectInfo {
            key: key.to_owned(),
            size,
        }
    }

    fn keys(sets: &[(BackupNumber, Vec<ObjectInfo>)]) -> Vec<(u32, Vec<&str>)> {
        sets.iter()
            .map(|(n, o)| (n.get(), o.iter().map(|o| o.key.as_str()).collect()))
            .collect()
    }

    #[test]
    fn a_set_goes_whole_with_its_log_backup_first_and_its_last_segment_last() {
        let listed = [
            object("Notes[0001].4BK", 10),
            object("Notes[0001].4BL", 3),
            object("Notes[0002-0002].4BK", 10),
            object("Notes[0002-0001].4BK", 10),
            object("Notes[0002-0003].4BK.part", 10),
            // A gap: segment 1 of set 3 is missing.
            object("Notes[0003-0002].4BK", 10),
            // Not a name sauve writes, and a set half encrypted.
            object("Notes[00007].4BK", 10),
            object("Notes[0008-0001].4BK", 10),
            object("Notes[0008-0002].4BK.age", 10),
            object("Notes[0004].4BK.age", 10),
            object("Notes[0003].4BL.age", 4),
            object("Other[0005].4BK", 10),
        ];
        let sets = sets_of(&listed, "Notes");
        assert_eq!(
            keys(&sets),
            [
                (1, vec!["Notes[0001].4BK"]),
                (
                    2,
                    vec![
                        "Notes[0001].4BL",
                        "Notes[0002-0001].4BK",
                        "Notes[0002-0002].4BK"
                    ]
                ),
                (4, vec!["Notes[0003].4BL.age", "Notes[0004].4BK.age"]),
            ]
        );
    }

    #[test]
    fn recorded_sets_go_and_unrecorded_ones_only_from_a_folder() {
        let n = BackupNumber::from;
        let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        let mut recorded = Recorded {
            sets: [(n(3), names(&[])), (n(4), names(&[])), (n(6), names(&[]))].into(),
            copied: vec![n(3)],
            unrecorded: false,
        };
        let go = |r: &Recorded| (1..=8).filter(|i| r.to_copy(n(*i))).collect::<Vec<u32>>();
        // From a bucket: what the history records, never a set put there.
        assert_eq!(go(&recorded), [4, 6]);
        // From a folder: every set not copied yet.
        recorded.unrecorded = true;
        assert_eq!(go(&recorded), [1, 2, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn a_set_that_is_not_what_its_record_lists_is_named_and_not_copied() {
        let n = BackupNumber::from;
        let recorded = Recorded {
            sets: [(
                n(2),
                ["Notes[0002-0001].4BK", "Notes[0002-0002].4BK"]
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
            )]
            .into(),
            ..Recorded::default()
        };
        let whole = [
            object("Notes[0001].4BL", 3),
            object("Notes[0002-0001].4BK", 9),
            object("Notes[0002-0002].4BK", 9),
        ];
        assert_eq!(recorded.mismatch(n(2), &whole), None);
        // Encrypted in the store: the same set.
        let sealed = [
            object("Notes[0002-0001].4BK.age", 9),
            object("Notes[0002-0002].4BK.age", 9),
        ];
        assert_eq!(recorded.mismatch(n(2), &sealed), None);
        // Its last segment not there yet, or one more put beside it.
        let short = recorded.mismatch(n(2), &whole[..2]).unwrap();
        assert!(
            short.contains("its record lists Notes[0002-0001].4BK, Notes[0002-0002].4BK"),
            "{short}"
        );
        let mut more = whole.to_vec();
        more.push(object("Notes[0002-0003].4BK", 9));
        assert!(
            recorded
                .mismatch(n(2), &more)
                .unwrap()
                .contains("Notes[0002-0003].4BK")
        );
    }

    /// A folder store that keeps S3's rules: an empty range is refused, and
    /// an upload whose parts break them (a part but the last under
    /// [`sauve_store::MIN_PART`], or not all of one size) fails to
    /// complete. It can also cut an object short, as a store whose object
    /// changed during a read does.
    #[derive(Debug)]
    struct Strict {
        inner: FolderStore,
        short: Option<String>,
    }

    #[async_trait::async_trait]
    impl Store for Strict {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
            self.inner.list(prefix).await
        }
        async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
            self.inner.head(key).await
        }
        async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
            self.inner.get(key).await
        }
        async fn get_bounded(&self, key: &str, limit: u64) -> Result<Bytes, StoreError> {
            self.inner.get_bounded(key, limit).await
        }
        async fn get_range(
            &self,
            key: &str,
            range: std::ops::Range<u64>,
        ) -> Result<Bytes, StoreError> {
            assert!(
                range.start < range.end,
                "an empty range of {key}: {range:?}"
            );
            let data = self.inner.get_range(key, range).await?;
            Ok(match &self.short {
                Some(k) if k == key => data.slice(..data.len() / 2),
                _ => data,
            })
        }
        async fn put_new(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
            self.inner.put_new(key, data).await
        }
        async fn put_replace(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
            self.inner.put_replace(key, data).await
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.inner.delete(key).await
        }
        async fn start_upload(
            &self,
            key: &str,
        ) -> Result<Box<dyn sauve_store::Upload>, StoreError> {
            Ok(Box::new(StrictUpload {
                inner: self.inner.start_upload(key).await?,
                parts: Vec::new(),
            }))
        }
    }

    struct StrictUpload {
        inner: Box<dyn sauve_store::Upload>,
        parts: Vec<usize>,
    }

    #[async_trait::async_trait]
    impl sauve_store::Upload for StrictUpload {
        fn key(&self) -> &str {
            self.inner.key()
        }
        async fn put_part(&mut self, data: Bytes) -> Result<(), StoreError> {
            self.parts.push(data.len());
            self.inner.put_part(data).await
        }
        async fn complete(self: Box<Self>) -> Result<u64, StoreError> {
            let Some((_, all_but_last)) = self.parts.split_last() else {
                panic!("{}: no part", self.inner.key());
            };
            assert!(
                all_but_last.iter().all(|n| *n >= sauve_store::MIN_PART)
                    && all_but_last.windows(2).all(|w| w[0] == w[1]),
                "{}: parts {:?}",
                self.inner.key(),
                self.parts
            );
            self.inner.complete().await
        }
        async fn abort(self: Box<Self>) -> Result<(), StoreError> {
            self.inner.abort().await
        }
    }

    /// A folder store at `dir` holding `objects`.
    async fn folder(dir: &std::path::Path, objects: &[(&str, Vec<u8>)]) -> FolderStore {
        let store = FolderStore::new(dir.to_path_buf());
        for (key, data) in objects {
            store.put_new(key, Bytes::from(data.clone())).await.unwrap();
        }
        store
    }

    #[tokio::test]
    async fn objects_are_copied_as_stored_or_sealed_and_a_different_object_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        // Five parts and a bit: equal parts, encrypted or not.
        let big: Vec<u8> = (0..(26u32 << 20)).map(|i| (i % 251) as u8).collect();
        let source = folder(
            &dir.path().join("source"),
            &[
                ("Notes[0001-0001].4BK", big.clone()),
                ("Notes[0001-0002].4BK", b"tail".to_vec()),
                ("Notes[0002].4BK.age", b"sealed elsewhere".to_vec()),
                ("Notes[0003].4BK", Vec::new()),
            ],
        )
        .await;
        let source = Strict {
            inner: source,
            short: None,
        };
        let listed = source.list("Notes[").await.unwrap();
        let plain = Strict {
            inner: folder(&dir.path().join("plain"), &[]).await,
            short: None,
        };
        let part = sauve_store::MIN_PART;
        for (_, objects) in sets_of(&listed, "Notes") {
            copy_set((&source, &plain), &objects, part, &[])
                .await
                .unwrap();
            // Again: what is there is this very object.
            copy_set((&source, &plain), &objects, part, &[])
                .await
                .unwrap();
        }
        for o in &listed {
            assert_eq!(
                plain.get(&o.key).await.unwrap(),
                source.get(&o.key).await.unwrap(),
                "{}",
                o.key
            );
        }

        let identity = age::x25519::Identity::generate();
        let recipients = [identity.to_public()];
        let sealed = Strict {
            inner: folder(&dir.path().join("sealed"), &[]).await,
            short: None,
        };
        for (_, objects) in sets_of(&listed, "Notes") {
            copy_set((&source, &sealed), &objects, part, &recipients)
                .await
                .unwrap();
            // Again: each object there is this one's encryption (whatever
            // the random size of its header), so nothing is sent twice.
            copy_set((&source, &sealed), &objects, part, &recipients)
                .await
                .unwrap();
        }
        let mut stored: Vec<String> = sealed
            .list("Notes[")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        stored.sort();
        assert_eq!(
            stored,
            [
                "Notes[0001-0001].4BK.age",
                "Notes[0001-0002].4BK.age",
                "Notes[0002].4BK.age",
                "Notes[0003].4BK.age"
            ]
        );
        // Encrypted here: the identity gives the bytes back, and the size is age's.
        let ciphertext = sealed.get("Notes[0001-0001].4BK.age").await.unwrap();
        let header = age_header_len(&ciphertext).unwrap();
        assert_eq!(
            ciphertext.len() as u64,
            header as u64 + 16 + big.len() as u64 + 16 * 416
        );
        let decryptor = age::Decryptor::new(&ciphertext[..]).unwrap();
        let mut reader = decryptor
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .unwrap();
        let mut plaintext = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut plaintext).unwrap();
        assert_eq!(plaintext, big);
        // Sealed at the destination: copied as it is, not sealed twice.
        assert_eq!(
            sealed.get("Notes[0002].4BK.age").await.unwrap(),
            Bytes::from_static(b"sealed elsewhere")
        );

        // Not an age file of this object: refused, kept.
        let forged = folder(
            &dir.path().join("forged"),
            &[(
                "Notes[0003].4BK.age",
                b"age-encryption.org/v1\n--- x\n".to_vec(),
            )],
        )
        .await;
        let (_, third) = &sets_of(&listed, "Notes")[2];
        let err = copy_set((&source, &forged), third, part, &recipients)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Exists { .. }), "{err}");

        // An object of another content under the name: refused, kept.
        let other = folder(
            &dir.path().join("other"),
            &[("Notes[0001-0002].4BK", b"TAIL".to_vec())],
        )
        .await;
        let (_, first) = &sets_of(&listed, "Notes")[0];
        let err = copy_set((&source, &other), first, part, &[])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Exists { .. }), "{err}");
        assert_eq!(
            other.get("Notes[0001-0002].4BK").await.unwrap(),
            Bytes::from_static(b"TAIL")
        );

        // An object cut short while it is read: that set fails, as one a
        // retry would not mend, and nothing of it is left.
        let changing = Strict {
            inner: source.inner.clone(),
            short: Some("Notes[0001-0001].4BK".to_owned()),
        };
        let fresh = folder(&dir.path().join("fresh"), &[]).await;
        let err = copy_set((&changing, &fresh), first, part, &[])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Hostile { .. }), "{err}");
        assert!(!err.is_transient());
        assert!(err.to_string().contains("changed during the copy"), "{err}");
        assert!(fresh.list("").await.unwrap().is_empty());
    }
}
