//! A manual restore as the handle runs it (behaviour §13.1): refused into
//! the app folder the engine serves (1407), admitted like a backup (1402,
//! 1417), copied by the copier, then journaled and recorded. Its parts
//! (where a set is read from, its journal and history entries) are
//! `restore.rs`'s; this is their order.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use sauve_archive::RestoreOptions;

use crate::actors::ask;
use crate::actors::copier::messages::RestoreArchive;
use crate::api::Trigger;
use crate::error::{Busy, EngineError};
use crate::handle::BackupHandle;
use crate::restore::{RecordPlace, Restored};

/// Restores `archive` for [`BackupHandle::restore_watched`], adding the
/// bytes restored to `done` as they are written.
pub(crate) async fn run(
    handle: &BackupHandle,
    archive: &Path,
    options: RestoreOptions,
    trigger: Trigger,
    done: Arc<AtomicU64>,
) -> Result<Restored, EngineError> {
    let app = handle.app();
    let actors = handle.actors();
    let clock = handle.clock();
    let (archive, store, options) = crate::restore::source_of(app, archive, options, &actors.io)?;
    if let Some(to) = crate::restore::destination_of(&archive, &options)
        && crate::restore::is_inside_app(&to, app)
    {
        return Err(EngineError::RestoreIntoLiveApp {
            destination: to,
            app: app.to_path_buf(),
        });
    }
    let _ticket = handle.admit(Busy::Restore).await?;
    let started = clock.now();
    let result = ask(
        &actors.copier,
        "copier",
        RestoreArchive {
            archive: archive.clone(),
            store: store.clone(),
            options: options.clone(),
            done,
        },
    )
    .await
    .and_then(|r| r);
    let ended = clock.now();
    let mut warnings = Vec::new();
    let entry =
        crate::restore::journal_entry(&clock.zone(), &archive, &options, &result, started, ended);
    if let Err(e) = handle.records().append_journal(entry).await {
        warnings.push(format!("the Backup Journal was not written: {e}"));
    }
    let mut report = result?;
    // The settings tell whether a bucket is the app's own destination.
    let settings = match &store {
        Some(_) => handle.config().settings().await.ok(),
        None => None,
    };
    let place = RecordPlace {
        actors,
        layout: handle.layout(),
        settings: settings.as_deref(),
    };
    let times = (started, ended);
    place
        .record(
            &archive,
            &mut report,
            store.as_ref(),
            times,
            trigger,
            &mut warnings,
        )
        .await;
    Ok(Restored { report, warnings })
}
