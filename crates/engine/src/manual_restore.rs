//! A manual restore as the handle runs it (behaviour §13.1): refused into
//! the app folder the engine serves (1407), admitted like a backup (1402,
//! 1417; the handle admits it between [`source`] and [`run`]), restored on
//! the engine's blocking pool, then journaled and recorded. Its parts
//! (where a set is read from, its journal and history entries) are
//! `restore.rs`'s; this is their order.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sauve_archive::RestoreOptions;
use sauve_settings::AppLayout;

use crate::actors::journal::messages::AppendJournal;
use crate::actors::resolver::messages::ReadSettings;
use crate::actors::{Actors, ask};
use crate::api::{Clock, Trigger};
use crate::destination::StoreDestination;
use crate::error::EngineError;
use crate::restore::{RecordPlace, Restored};

/// What a manual restore needs of the engine.
pub(crate) struct Parts<'a> {
    pub(crate) layout: &'a AppLayout,
    pub(crate) actors: &'a Actors,
    pub(crate) clock: &'a dyn Clock,
}

/// A restore checked and ready to be admitted.
pub(crate) struct Source {
    archive: PathBuf,
    store: Option<Arc<StoreDestination>>,
    options: RestoreOptions,
}

/// Where `archive` is read from (a file, or a set in a bucket) and where
/// it goes; refused into the app folder the engine serves (1407).
pub(crate) async fn source(
    parts: &Parts<'_>,
    archive: &Path,
    options: RestoreOptions,
) -> Result<Source, EngineError> {
    let app = parts.layout.app.clone();
    let (asked, io) = (archive.to_path_buf(), parts.actors.io.clone());
    // sauve.toml as the resolver reads it: a bucket is reached with it.
    let own = crate::actors::ask(
        &parts.actors.resolver,
        "resolver",
        crate::actors::resolver::messages::ReadOwnSettings,
    )
    .await?
    .valid();
    // It may reach a bucket: on the blocking pool.
    let (archive, store, options) = parts
        .actors
        .io
        .blocking(move || crate::restore::source_of((&app, own), &asked, options, &io))
        .await??;
    if let Some(to) = crate::restore::destination_of(&archive, &options)
        && crate::restore::is_inside_app(&to, &parts.layout.app)
    {
        return Err(EngineError::RestoreIntoLiveApp {
            destination: to,
            app: parts.layout.app.clone(),
        });
    }
    Ok(Source {
        archive,
        store,
        options,
    })
}

/// Restores `source`, adding the bytes restored to `done` as they are
/// written; journals and records it. `admitted` is the admission: held by
/// the restore itself until it ends, and then until it is recorded, so a
/// caller that stops waiting does not let a backup start beside it.
pub(crate) async fn run(
    parts: &Parts<'_>,
    (source, admitted): (Source, impl Send + 'static),
    trigger: Trigger,
    done: Arc<AtomicU64>,
) -> Result<Restored, EngineError> {
    let Source {
        archive,
        store,
        options,
    } = source;
    let started = parts.clock.now();
    let (from, by, to) = (archive.clone(), store.clone(), options.clone());
    let ran = parts
        .actors
        .io
        .blocking(move || (restore(&from, by.as_deref(), &to, done), admitted))
        .await;
    let (result, _admitted) = match ran {
        Ok((result, admitted)) => (result, Some(admitted)),
        Err(e) => (Err(e), None),
    };
    let ended = parts.clock.now();
    let mut warnings = Vec::new();
    let entry = crate::restore::journal_entry(
        &parts.clock.zone(),
        &archive,
        &options,
        &result,
        started,
        ended,
    );
    // Read now, the settings tell the journal its mode; for a bucket, they
    // also tell whether it is the app's own destination.
    let settings = ask(&parts.actors.resolver, "resolver", ReadSettings)
        .await
        .ok()
        .and_then(Result::ok);
    let written = ask(&parts.actors.journal, "journal", AppendJournal::new(entry)).await;
    if let Err(e) = written.and_then(|r| r) {
        warnings.push(format!("the Backup Journal was not written: {e}"));
    }
    let mut report = result?;
    let place = RecordPlace {
        actors: parts.actors,
        layout: parts.layout,
        settings: settings.as_deref().filter(|_| store.is_some()),
    };
    place
        .record(
            &archive,
            &mut report,
            store.as_ref(),
            (started, ended),
            trigger,
            &mut warnings,
        )
        .await;
    Ok(Restored { report, warnings })
}

/// A restore's progress: bytes written so far.
struct Counted(Arc<AtomicU64>);

impl sauve_archive::Progress for Counted {
    fn advance(&mut self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// The restore itself (blocking): from the store when the set is in one.
fn restore(
    archive: &Path,
    store: Option<&StoreDestination>,
    options: &RestoreOptions,
    done: Arc<AtomicU64>,
) -> Result<sauve_archive::RestoreReport, EngineError> {
    let mut progress = Counted(done);
    if let Some(store) = store {
        let name = archive.file_name().unwrap_or_default().to_string_lossy();
        return store.restore(&name, options, &mut progress);
    }
    Ok(sauve_archive::restore(archive, options, &mut progress)?)
}
