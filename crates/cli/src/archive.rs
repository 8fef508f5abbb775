//! `sauve verify`, `sauve restore`, `sauve list`.

use std::path::{Path, PathBuf};

use sauve_archive::{ArchiveError, EntryKind, EntryType, NoProgress, RemoteSet, RestoreOptions};

use crate::report::{Failure, Io};

fn failure(e: ArchiveError) -> Failure {
    let status = e.status();
    let code = match e {
        ArchiveError::NotAnArchiveName { .. } | ArchiveError::DestinationNotEmpty(_) => {
            crate::report::EXIT_USAGE
        }
        _ => crate::report::EXIT_FAILURE,
    };
    Failure {
        code,
        message: format!("{} ({}): {e}", status.text().to_lowercase(), status.code()),
    }
}

fn bytes(n: u64) -> String {
    sauve_engine::human_bytes(n)
}

/// A set in a bucket: `s3://bucket/prefix/base[NNNN]`, its store reached
/// through the app's `[destination]` or the AWS environment variables.
struct Remote {
    runtime: tokio::runtime::Runtime,
    set: RemoteSet,
}

fn remote(
    archive: &Path,
    app: Option<&Path>,
    identity: Option<&Path>,
) -> Result<Option<Remote>, Failure> {
    let Some(text) = archive
        .to_str()
        .filter(|t| sauve_store::Location::is_url(t))
    else {
        return Ok(None);
    };
    let (url, name) = match text[5..].split_once('/') {
        Some(_) => text.rsplit_once('/').unwrap_or((text, "")),
        None => (text, ""),
    };
    if name.is_empty() {
        return Err(Failure::usage(format!(
            "{text} names no set (accepted: s3://bucket/prefix/base[NNNN], as `sauve history` lists them)"
        )));
    }
    let app = match app {
        Some(a) => Some(crate::settings::app_dir(a)?),
        None => None,
    };
    let store =
        sauve_engine::open_store(app.as_deref(), &format!("{url}/")).map_err(engine_failure)?;
    let identities = match identity {
        Some(path) => Some(sauve_archive::read_identities(path).map_err(failure)?),
        None => None,
    };
    let runtime = crate::exec::runtime()?;
    let set = runtime
        .block_on(RemoteSet::locate(
            store,
            runtime.handle().clone(),
            name,
            identities,
        ))
        .map_err(failure)?;
    Ok(Some(Remote { runtime, set }))
}

pub(crate) fn verify(
    archive: &Path,
    app: Option<&Path>,
    identity: Option<&Path>,
    io: &mut Io<'_>,
) -> Result<(), Failure> {
    let report = match remote(archive, app, identity)? {
        Some(r) => {
            let report = sauve_archive::verify_remote(&r.set, &mut NoProgress).map_err(failure);
            drop(r.runtime);
            report?
        }
        None => sauve_archive::verify(archive, &mut NoProgress).map_err(failure)?,
    };
    let files = report
        .manifest
        .entries
        .iter()
        .filter(|e| e.entry_type == EntryType::File)
        .count();
    io.out(&format!(
        "{}: sound ({} entries, {} files, {} checked, {} file{})\n",
        report.set.display_name(),
        report.manifest.entries.len(),
        files,
        bytes(report.bytes),
        report.set.files.len(),
        if report.set.files.len() == 1 { "" } else { "s" },
    ));
    Ok(())
}

pub(crate) fn restore(
    archive: &Path,
    to: Option<PathBuf>,
    force: bool,
    app: Option<&Path>,
    identity: Option<&Path>,
    io: &mut Io<'_>,
) -> Result<(), Failure> {
    // Where the files go: `--to`, else beside the set (or, for a set in a
    // store, a folder of the current one).
    let target = match &to {
        Some(t) => t.clone(),
        None => sauve_archive::SetFiles::locate(archive)
            .map(|s| s.default_restore_dir())
            .unwrap_or_else(|_| PathBuf::from(".")),
    };
    // Never into an app that a `sauve run`, a backup or a restore holds
    // (1402), whatever --force says; its locks are held until the restore
    // ends. The app restoring (--app) takes its own sauve.lock.
    let own = app.map(crate::settings::app_dir).transpose()?;
    let _held =
        sauve_engine::hold_restore_target(&target, own.as_deref()).map_err(engine_failure)?;
    let options = RestoreOptions { to, force };
    if let Some(r) = remote(archive, app, identity)? {
        let report =
            sauve_archive::restore_remote(&r.set, &options, &mut NoProgress).map_err(failure)?;
        io.out(&format!(
            "Restored {} from {} into {} ({} files, {})\n",
            report.set.display_name(),
            report.set.dir.display(),
            report.destination.display(),
            report.files,
            bytes(report.bytes),
        ));
        return Ok(());
    }
    let restored = match app {
        // Through the app's engine: refused while it backs up (1402) or
        // integrates (1417), journaled "Restore" in its Backup Journal.
        Some(app) => {
            let app = crate::settings::app_dir(app)?;
            let layout = sauve_settings::AppLayout::discover(&app)
                .map_err(|e| Failure::failed(e.to_string()))?;
            let rt = crate::exec::runtime()?;
            rt.block_on(async {
                let handle = sauve_engine::Engine::start(layout, Default::default())
                    .map_err(engine_failure)?;
                let r = handle
                    .restore(archive, options, sauve_engine::Trigger::Manual)
                    .await;
                handle.shutdown().await;
                r.map_err(engine_failure)
            })?
        }
        None => sauve_engine::restore_detached(archive, &options).map_err(engine_failure)?,
    };
    for w in &restored.warnings {
        io.err(&format!("warning: {w}\n"));
    }
    let report = restored.report;
    io.out(&format!(
        "Restored {} into {} ({} files, {})\n",
        report.set.display_name(),
        report.destination.display(),
        report.files,
        bytes(report.bytes),
    ));
    // The logs a host could integrate next (behaviour §13.1): this CLI has no
    // apply function, so it only names them.
    let current = std::path::Path::new(&report.manifest.header.data_path).with_extension("journal");
    let logs = sauve_engine::integrable_logs(&report, Some(&current));
    if !logs.is_empty() {
        let after = report.manifest.header.last_log_sequence.unwrap_or(0);
        io.out(&format!(
            "Logs to integrate after sequence {after}, in order:\n"
        ));
        for l in logs {
            io.out(&format!("  {}\n", l.display()));
        }
    }
    Ok(())
}

/// An engine error as the CLI reports it: the status and the message; a
/// bad archive name or a non-empty destination is a usage error.
fn engine_failure(e: sauve_engine::EngineError) -> Failure {
    match e {
        sauve_engine::EngineError::Archive(a) => failure(a),
        e => {
            let status = e.status();
            Failure {
                code: crate::report::EXIT_FAILURE,
                message: format!("{} ({}): {e}", status.text().to_lowercase(), status.code()),
            }
        }
    }
}

fn kind_name(k: EntryKind) -> &'static str {
    match k {
        EntryKind::Data => "data",
        EntryKind::DataSettings => "data-settings",
        EntryKind::Log => "log",
        EntryKind::Structure => "structure",
        EntryKind::StructureSettings => "structure-settings",
        EntryKind::Attachment => "attachment",
    }
}

pub(crate) fn list(
    archive: &Path,
    json: bool,
    app: Option<&Path>,
    identity: Option<&Path>,
    io: &mut Io<'_>,
) -> Result<(), Failure> {
    // The manifest, read once, and for an incremental set where each file
    // comes from along its chain (in the same folder or store).
    let (set, manifest, origins) = match remote(archive, app, identity)? {
        Some(r) => sauve_archive::list_origins_remote(&r.set).map_err(failure)?,
        None => sauve_archive::list_origins(archive).map_err(failure)?,
    };
    let origins = manifest.header.parent.is_some().then_some(origins);
    let name = |n: sauve_archive::BackupNumber| format!("{}[{}]", set.name.base, n.text());
    let from_text = |path: &str| -> String {
        let Some(o) = origins.as_ref().and_then(|o| o.get(path)) else {
            return String::new();
        };
        o.iter()
            .map(|(n, blocks)| match blocks {
                None => name(*n),
                Some(1) => format!("{} (1 block)", name(*n)),
                Some(b) => format!("{} ({b} blocks)", name(*n)),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if json {
        let entries: Vec<serde_json::Value> = manifest
            .entries
            .iter()
            .map(|e| {
                let mut v = serde_json::json!({
                    "path": e.path,
                    "kind": kind_name(e.kind),
                    "type": e.entry_type,
                    "size": e.size,
                });
                if let Some(o) = origins.as_ref().and_then(|o| o.get(&e.path)) {
                    v["from"] = o
                        .iter()
                        .map(|(n, blocks)| serde_json::json!({"set": n, "blocks": blocks}))
                        .collect();
                }
                v
            })
            .collect();
        let mut value = serde_json::json!({
            "archive": set.display_name(),
            "backupNumber": manifest.header.backup_number,
            "entries": entries,
        });
        if let Some(parent) = manifest.header.parent {
            value["parent"] = parent.get().into();
        }
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| Failure::failed(format!("cannot render JSON: {e}")))?;
        io.out(&format!("{text}\n"));
        return Ok(());
    }
    let width = manifest
        .entries
        .iter()
        .map(|e| e.path.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut text = format!("{:width$}  {:18}  {:>12}", "PATH", "KIND", "SIZE");
    if let Some(parent) = manifest.header.parent {
        text = format!(
            "{} builds on {}: FROM names the sets each file's content is read from.\n{text}  FROM",
            name(manifest.header.backup_number),
            name(parent)
        );
    }
    text.push('\n');
    for e in &manifest.entries {
        let path = match e.entry_type {
            EntryType::Dir => format!("{}/", e.path),
            EntryType::Symlink => format!("{} -> {}", e.path, e.target.as_deref().unwrap_or("")),
            EntryType::File => e.path.clone(),
        };
        let line = format!("{path:width$}  {:18}  {:>12}", kind_name(e.kind), e.size);
        let from = from_text(&e.path);
        if from.is_empty() {
            text.push_str(&format!("{line}\n"));
        } else {
            text.push_str(&format!("{line}  {from}\n"));
        }
    }
    io.out(&text);
    Ok(())
}
