//! `sauve backup`, `sauve status`, `sauve history`, `sauve demo`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sauve_engine::{
    BackupEvent, BackupHandle, BackupReport, Engine, EngineOptions, EngineState, Hooks,
    ShutdownInfo, Trigger,
};
use sauve_settings::{AppLayout, resolve_path};
use sauve_status::Status;

use crate::settings::app_dir;
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE, Failure, Io};

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))
}

fn layout(app: &Path) -> Result<AppLayout, Failure> {
    AppLayout::discover(app).map_err(|e| Failure::failed(e.to_string()))
}

/// The exit code for a backup status (SPEC section 4).
pub(crate) fn exit_code(status: Status) -> u8 {
    match status {
        Status::Ok => EXIT_OK,
        Status::AttachmentNotFound => 3,
        Status::InvalidSettings => EXIT_USAGE,
        _ => EXIT_FAILURE,
    }
}

/// Runs `cmd` with `sh -c`; its exit code, or 128 + signal when killed.
async fn shell(cmd: &str, env: Vec<(&'static str, String)>) -> i32 {
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .envs(env)
        .stdin(std::process::Stdio::null());
    match c.status().await {
        Ok(s) => s.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + s.signal().unwrap_or(0)
        }),
        // A hook that cannot run refuses the backup rather than being skipped.
        Err(_) => 127,
    }
}

fn hooks(on_startup: Option<String>, on_shutdown: Option<String>) -> Hooks {
    let mut hooks = Hooks::default();
    if let Some(cmd) = on_startup {
        let cmd = Arc::new(cmd);
        hooks.on_startup = Some(Arc::new(move |trigger: Trigger| {
            let cmd = cmd.clone();
            Box::pin(async move {
                shell(&cmd, vec![("SAUVE_TRIGGER", trigger.as_str().to_owned())]).await
            })
        }));
    }
    if let Some(cmd) = on_shutdown {
        let cmd = Arc::new(cmd);
        hooks.on_shutdown = Some(Arc::new(move |info: ShutdownInfo| {
            let cmd = cmd.clone();
            Box::pin(async move {
                let env = vec![
                    ("SAUVE_STATUS", info.status.code().to_string()),
                    ("SAUVE_TRIGGER", info.trigger.as_str().to_owned()),
                    (
                        "SAUVE_ARCHIVE",
                        info.archive
                            .map(|a| a.display().to_string())
                            .unwrap_or_default(),
                    ),
                ];
                shell(&cmd, env).await
            })
        }));
    }
    hooks
}

/// Draws progress on a terminal, or prints events as JSON lines.
struct Display {
    json: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl Display {
    fn new(json: bool) -> Display {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} {msg:12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Display { json, bar }
    }

    fn show(&self, event: &BackupEvent, io: &mut Io<'_>) {
        if self.json {
            let line = match event {
                // The last line has exactly the fields SPEC section 4 names.
                BackupEvent::Finished {
                    status,
                    status_text,
                    number,
                    archives,
                    ..
                } => serde_json::json!({
                    "event": "finished",
                    "status": status,
                    "status_text": status_text,
                    "number": number,
                    "archives": archives,
                })
                .to_string(),
                other => serde_json::to_string(other).unwrap_or_default(),
            };
            io.out(&format!("{line}\n"));
            return;
        }
        let Some(bar) = &self.bar else { return };
        match event {
            BackupEvent::Started { total_bytes, .. } => bar.set_length(*total_bytes),
            BackupEvent::Phase { phase, .. } => {
                bar.set_message(
                    serde_json::to_value(phase)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                );
            }
            BackupEvent::File {
                bytes_done,
                bytes_total,
                ..
            } => {
                bar.set_length(*bytes_total);
                bar.set_position(*bytes_done);
            }
            BackupEvent::Warning { message, .. } => bar.println(format!("warning: {message}")),
            BackupEvent::Finished { .. } => bar.finish_and_clear(),
        }
    }
}

/// Runs one backup through `handle`, showing its events; Ctrl-C stops it.
async fn run_backup(
    handle: &BackupHandle,
    trigger: Trigger,
    display: &Display,
    io: &mut Io<'_>,
) -> Result<BackupReport, Failure> {
    let mut events = handle.subscribe();
    let backup = handle.backup(trigger);
    tokio::pin!(backup);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut stopping = false;
    let report = loop {
        tokio::select! {
            report = &mut backup => break report,
            event = events.recv() => if let Ok(e) = event { display.show(&e, io) },
            _ = &mut ctrl_c, if !stopping => {
                stopping = true;
                let _ = handle.stop().await;
            }
        }
    };
    while let Ok(e) = events.try_recv() {
        display.show(&e, io);
    }
    report.map_err(|e| Failure::failed(e.to_string()))
}

fn summary(layout: &AppLayout, report: &BackupReport) -> String {
    let mut text = format!(
        "Backup {} of {}: {}\n",
        sauve_archive::number_text(report.number),
        layout.base_name(),
        report.status
    );
    for a in &report.archives {
        text.push_str(&format!("  archive: {}\n", a.display()));
    }
    for n in &report.notes {
        text.push_str(&format!("  note: {n}\n"));
    }
    text
}

pub(crate) fn backup(
    app: &Path,
    json: bool,
    on_startup: Option<String>,
    on_shutdown: Option<String>,
    io: &mut Io<'_>,
) -> Result<(), Failure> {
    let app = app_dir(app)?;
    let layout = layout(&app)?;
    let options = EngineOptions {
        hooks: hooks(on_startup, on_shutdown),
        ..EngineOptions::default()
    };
    let rt = runtime()?;
    let display = Display::new(json);
    let report = rt.block_on(async {
        let handle =
            Engine::start(layout.clone(), options).map_err(|e| Failure::failed(e.to_string()))?;
        let report = run_backup(&handle, Trigger::Manual, &display, io).await;
        handle.shutdown().await;
        report
    })?;
    if !json {
        io.out(&summary(&layout, &report));
        for e in &report.errors {
            io.err(&format!("error: {e}\n"));
        }
    }
    match exit_code(report.status) {
        EXIT_OK => Ok(()),
        code => Err(Failure {
            code,
            message: format!("backup ended with status {}", report.status),
        }),
    }
}

/// The destination of an app's settings, resolved.
fn destination(app: &Path) -> Result<PathBuf, Failure> {
    let effective =
        sauve_settings::load_effective(app).map_err(|e| Failure::usage(e.to_string()))?;
    resolve_path(app, &effective.doc.settings().general.destination_folder)
        .map(|r| r.path)
        .map_err(|e| Failure::usage(e.to_string()))
}

pub(crate) fn status(app: &Path, json: bool, io: &mut Io<'_>) -> Result<(), Failure> {
    let app = app_dir(app)?;
    let state = EngineState::load(&app);
    let dest = destination(&app)?;
    let base = AppLayout::discover(&app).map(|l| l.base_name()).ok();
    let used: u64 = std::fs::read_dir(&dest)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    sauve_archive::ArchiveName::parse(&e.file_name().to_string_lossy())
                        .is_some_and(|a| Some(&a.base) == base.as_ref())
                })
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let free = sauve_engine::free_space(&dest);
    if json {
        let value = serde_json::json!({
            "last_backup": state.last_backup,
            "next_scheduled": null,
            "scheduler_disabled": false,
            "destination": {"path": dest, "free_bytes": free, "used_bytes": used},
        });
        let text =
            serde_json::to_string_pretty(&value).map_err(|e| Failure::failed(e.to_string()))?;
        io.out(&format!("{text}\n"));
        return Ok(());
    }
    let mut text = String::new();
    match &state.last_backup {
        Some(b) => {
            text.push_str(&format!(
                "Last backup:  {} ({}), {} {}\n",
                sauve_archive::number_text(b.number),
                b.trigger,
                b.status,
                b.status_text
            ));
            text.push_str(&format!(
                "  started     {}\n  ended       {} ({} ms)\n",
                b.started, b.ended, b.duration_ms
            ));
            if let Some(a) = &b.archive {
                text.push_str(&format!("  archive     {a}\n"));
            }
            if let Some(w) = b.lock_window_ms {
                text.push_str(&format!("  data lock   {w} ms\n"));
            }
        }
        None => text.push_str("Last backup:  none\n"),
    }
    text.push_str("Next scheduled: none\n");
    text.push_str(&format!("Destination:  {}\n", dest.display()));
    text.push_str(&format!(
        "  used by this app's sets {} bytes; free {}\n",
        used,
        free.map_or("unknown".to_owned(), |f| format!("{f} bytes"))
    ));
    io.out(&text);
    Ok(())
}

pub(crate) fn history(app: &Path, json: bool, io: &mut Io<'_>) -> Result<(), Failure> {
    let app = app_dir(app)?;
    let dest = destination(&app)?;
    let path = dest.join(sauve_history::FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if json {
                io.out("{}\n");
            } else {
                io.err(&format!("no history in {}\n", dest.display()));
            }
            return Ok(());
        }
        Err(e) => {
            return Err(Failure::failed(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let h = sauve_history::History::parse(&text)
        .ok_or_else(|| Failure::failed(format!("{} is not a valid history", path.display())))?;
    if json {
        io.out(&format!("{text}\n"));
        return Ok(());
    }
    let mut out = String::new();
    for key in h.keys() {
        out.push_str(&format!("{key}\n"));
        for e in h.entries(key).unwrap_or_default() {
            let op = match e.operation() {
                sauve_history::Operation::Backup => "backup",
                sauve_history::Operation::Restore => "restore",
            };
            let status = e
                .status
                .map_or("?".to_owned(), |s| Status::from_code(s).to_string());
            out.push_str(&format!(
                "  {:>5}  {op:7}  {}  {:>8} ms  {status}  {}\n",
                sauve_archive::number_text(e.backup_number),
                e.starting_date,
                e.duration,
                e.backup_path
            ));
        }
    }
    io.out(&out);
    Ok(())
}

pub(crate) fn demo(dir: Option<PathBuf>, io: &mut Io<'_>) -> Result<(), Failure> {
    let root = std::path::absolute(dir.unwrap_or_else(|| PathBuf::from("sauve-demo")))
        .map_err(|e| Failure::usage(e.to_string()))?;
    if std::fs::read_dir(&root).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Failure::usage(format!(
            "\"{}\" is not empty (accepted: a new or empty folder)",
            root.display()
        )));
    }
    let app = root.join("DemoApp");
    crate::demo::make_app(&root, &app)
        .map_err(|e| Failure::failed(format!("cannot create the demo app: {e}")))?;
    io.out(&format!("Created a sample app in {}\n\n", app.display()));
    let layout = layout(&app)?;
    let rt = runtime()?;
    let display = Display::new(false);
    let report = rt.block_on(async {
        let handle = Engine::start(layout.clone(), EngineOptions::default())
            .map_err(|e| Failure::failed(e.to_string()))?;
        let report = run_backup(&handle, Trigger::Manual, &display, io).await;
        handle.shutdown().await;
        report
    })?;
    io.out(&summary(&layout, &report));
    io.out("\n$ sauve status\n");
    status(&app, false, io)?;
    io.out("\n$ sauve journal --tail 1\n");
    crate::journal::show(&app, Some(1), false, io)?;
    let Some(archive) = report.archives.first() else {
        return Err(Failure::failed(format!(
            "the demo backup ended with {}",
            report.status
        )));
    };
    let restored = root.join("Restored");
    io.out(&format!(
        "$ sauve restore '{}' --to '{}'\n",
        archive.display(),
        restored.display()
    ));
    crate::archive::restore(archive, Some(restored.clone()), false, io)?;
    io.out(&format!("\n$ sauve verify '{}'\n", archive.display()));
    crate::archive::verify(archive, io)?;
    let same = std::fs::read(app.join("Data/DemoApp.4DD")).ok()
        == std::fs::read(restored.join("Data/DemoApp.4DD")).ok();
    io.out(&format!(
        "\nThe restored data file {} the original.\n",
        if same { "matches" } else { "DIFFERS FROM" }
    ));
    if !same {
        return Err(Failure::failed("the restored data file differs"));
    }
    Ok(())
}
