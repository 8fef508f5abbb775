//! The off-site copier (behaviour §19): it owns the copies of committed sets to
//! every `[[offsite]]` destination, their retries with backoff and their
//! retention there. It never takes a lock of the app: it reads committed
//! files only, in the background, after the run has recorded itself. The
//! state of each copy is written by the history keeper, in the history entry.

pub(crate) mod messages;

use sauve_number::BackupNumber;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, ResponseActFuture, WrapFuture};
use bytes::Bytes;
use sauve_archive::{ArchiveName, SetFiles, SetKind};
use sauve_history::{History, OffsiteCopy, OffsiteState};
use sauve_settings::{OffsiteSettings, StoreConnection};
use sauve_store::{Store, StoreError};
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

use crate::Clock;
use crate::actors::history::HistoryKeeper;
use crate::actors::history::messages::RecordOffsite;
use crate::actors::resolver::Resolver;
use crate::actors::resolver::messages::{OwnSettings, ReadOwnSettings};
use crate::stores::{open_offsite, publish_history, shared_base_guard, upload_file};
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
        let mut out = Vec::new();
        for target in &own.offsite {
            let result = self.copy_to(target, &own.destination).await;
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
        let (store, part_size) =
            open_offsite(&self.app, target, base).map_err(|e| e.to_string())?;
        let destination = &self.work.destination;
        let (work, owned_label) = (self.work.clone(), label.to_owned());
        let todo = tokio::task::spawn_blocking(move || to_copy(&work, &owned_label))
            .await
            .map_err(|e| e.to_string())??;
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
            match copy_set(store.as_ref(), &files, part_size, &recipients).await {
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
        if let Some(keep) = target.keep {
            crate::stores::prune(store.as_ref(), &self.work.base, keep as usize, |_, _| {})
                .await
                .map_err(|e| e.to_string())?;
        }
        publish_history(store.as_ref(), destination, &self.work.key, Some(label))
            .await
            .map_err(|e| e.to_string())?;
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

/// The sets of the run's destination still to copy to the off-site
/// destination `label`, with their files: every committed set there,
/// recorded or not (a crash between a commit and its record must not keep
/// a set from going off-site), less those recorded as copied. Blocking.
fn to_copy(work: &Kick, label: &str) -> Result<Vec<(BackupNumber, Vec<PathBuf>)>, String> {
    let destination = &work.destination;
    let history = sauve_history::read_json_text(destination)
        .map_err(|e| e.to_string())?
        .and_then(|t| History::parse(&t))
        .unwrap_or_default();
    let entries = history.entries(&work.key).unwrap_or_default();
    let mut numbers =
        sauve_history::archive_numbers(destination, &work.base).map_err(|e| e.to_string())?;
    numbers.extend(
        entries
            .iter()
            .filter(|e| e.is_numbered_backup())
            .map(|e| e.backup_number),
    );
    numbers.sort_unstable();
    numbers.dedup();
    let mut todo = Vec::new();
    for number in numbers {
        let copied = entries
            .iter()
            .filter(|e| e.is_numbered_backup() && e.backup_number == number)
            .filter_map(|e| e.offsite.as_ref()?.get(label))
            .any(|c| c.state == OffsiteState::Copied);
        // A set gone from the destination (retention) has nothing to copy.
        if !copied && let Some(files) = set_files(destination, &work.base, number) {
            todo.push((number, files));
        }
    }
    Ok(todo)
}

/// The files of set `number` in `destination`, in upload order: the log
/// backup first, then the backup's segments, the manifest-bearing one last.
/// `None` when the backup set is not there.
fn set_files(destination: &Path, base: &str, number: BackupNumber) -> Option<Vec<PathBuf>> {
    let name = |number, kind| ArchiveName {
        base: base.to_owned(),
        number,
        segment: None,
        kind,
        part: false,
    };
    let backup =
        SetFiles::locate(&destination.join(name(number, SetKind::Backup).to_string())).ok()?;
    // Set N is base[N].4BK with base[N-1].4BL (behaviour §6.3).
    let mut files = match number.log_set() {
        Some(log) => SetFiles::locate(&destination.join(name(log, SetKind::Log).to_string()))
            .map(|s| s.files)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    files.extend(backup.files);
    Some(files)
}

/// Uploads each file as one multipart upload (encrypted to `recipients`
/// when there are any, under `NAME.age`). An object already there with the
/// same size (any size, encrypted) is a copy completed before (a crash, a
/// retry; objects are visible only when whole); a plain one of another size
/// is refused: nothing is overwritten.
async fn copy_set(
    store: &dyn Store,
    files: &[PathBuf],
    part_size: usize,
    recipients: &[age::x25519::Recipient],
) -> Result<(), StoreError> {
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if recipients.is_empty() {
            if let Some(there) = store.head(&name).await? {
                // Ours only if byte for byte this file (a copy completed
                // before its state was recorded); anything else is refused.
                if there.size == size && same_content(store, &name, size, path).await? {
                    continue;
                }
                return Err(StoreError::Exists {
                    store: store.describe(),
                    key: name,
                });
            }
            upload_file(store, path, &name, part_size).await?;
        } else {
            let key = format!("{name}{}", sauve_archive::AGE_SUFFIX);
            if let Some(there) = store.head(&key).await? {
                // Without the identity the content cannot be compared; the
                // size of an age file of this file for these recipients can.
                if there.size == age_size(size, recipients.len()) {
                    continue;
                }
                return Err(StoreError::Exists {
                    store: store.describe(),
                    key,
                });
            }
            upload_encrypted(store, path, &key, part_size, recipients).await?;
        }
    }
    Ok(())
}

/// The size of the age encryption of `size` bytes to `recipients` X25519
/// recipients: the header (version line, one two-line stanza each, MAC
/// line), the 16-byte nonce, and a 16-byte tag per 64 KiB chunk (one for
/// an empty file).
fn age_size(size: u64, recipients: usize) -> u64 {
    let header = 22 + 98 * recipients as u64 + 48;
    let chunks = size.div_ceil(64 << 10).max(1);
    header + 16 + size + 16 * chunks
}

/// True when the object at `key`, of `size` bytes, holds exactly the bytes
/// of `path` (compared by blake3, reading both).
async fn same_content(
    store: &dyn Store,
    key: &str,
    size: u64,
    path: &Path,
) -> Result<bool, StoreError> {
    let failed = |e: std::io::Error| StoreError::Failed {
        store: store.describe(),
        action: "cannot read the local copy for",
        key: key.to_owned(),
        message: format!("{}: {e}", path.display()),
    };
    let mut local = blake3::Hasher::new();
    let mut file = tokio::fs::File::open(path).await.map_err(failed)?;
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buf).await.map_err(failed)?;
        if n == 0 {
            break;
        }
        local.update(&buf[..n]);
    }
    let mut remote = blake3::Hasher::new();
    let mut at = 0;
    while at < size {
        let end = (at + (8 << 20)).min(size);
        remote.update(&store.get_range(key, at..end).await?);
        at = end;
    }
    Ok(local.finalize() == remote.finalize())
}

/// Sends full parts of the encrypted stream to the uploading task.
struct PartSender {
    buf: Vec<u8>,
    part: usize,
    tx: tokio::sync::mpsc::Sender<Bytes>,
}

impl std::io::Write for PartSender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= self.part {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part));
            self.tx
                .blocking_send(Bytes::from(full))
                .map_err(|_| std::io::Error::other("the upload ended"))?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streams one file, encrypted with age on a blocking thread, into an
/// upload; aborted on failure. `age -d -i KEY OBJECT` gives the file back.
async fn upload_encrypted(
    store: &dyn Store,
    path: &Path,
    key: &str,
    part_size: usize,
    recipients: &[age::x25519::Recipient],
) -> Result<u64, StoreError> {
    let failed = |message: String| StoreError::Failed {
        store: store.describe(),
        action: "cannot encrypt the local copy for",
        key: key.to_owned(),
        message: format!("{}: {message}", path.display()),
    };
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| failed(e.to_string()))?;
    let part = part_size.max(sauve_store::MIN_PART);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let source = path.to_path_buf();
    let encrypting = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut file = std::fs::File::open(&source)?;
        let sender = PartSender {
            buf: Vec::with_capacity(part),
            part,
            tx,
        };
        let mut out = encryptor.wrap_output(sender)?;
        std::io::copy(&mut file, &mut out)?;
        let mut sender = out.finish()?;
        let last = std::mem::take(&mut sender.buf);
        sender
            .tx
            .blocking_send(Bytes::from(last))
            .map_err(|_| std::io::Error::other("the upload ended"))
    });
    let mut upload = store.start_upload(key).await?;
    let mut sent = false;
    while let Some(chunk) = rx.recv().await {
        // An empty last part only when it is the only one.
        if chunk.is_empty() && sent {
            continue;
        }
        sent = true;
        if let Err(e) = upload.put_part(chunk).await {
            drop(rx);
            let _ = upload.abort().await;
            let _ = encrypting.await;
            return Err(e);
        }
    }
    let done = match encrypting.await {
        Ok(r) => r.map_err(|e| failed(e.to_string())),
        Err(e) => Err(failed(e.to_string())),
    };
    match done {
        Ok(()) => upload.complete().await,
        Err(e) => {
            let _ = upload.abort().await;
            Err(e)
        }
    }
}
