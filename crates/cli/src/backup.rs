//! `sauve backup`, `sauve status`, `sauve history`, `sauve demo`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sauve_engine::{
    BackupEvent, BackupHandle, BackupReport, Engine, EngineOptions, Hooks, ShutdownInfo, Trigger,
};
use sauve_settings::AppLayout;
use sauve_status::Status;

use crate::settings::app_dir;
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE, Failure, Io};

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))
}

fn layout(app: &Path) -> Result<AppLayout, Failure> {
    AppLayout::discover(app).map_err(|e| Failure::failed(e.to_string()))
}

/// The exit code for a backup status (behaviour §4).
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
            // The finished line is printed from the report, last, exactly once.
            if !matches!(event, BackupEvent::Finished { .. }) {
                io.out(&format!(
                    "{}\n",
                    serde_json::to_string(event).unwrap_or_default()
                ));
            }
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

/// The last line of `sauve backup --json`: exactly the fields behaviour §4
/// names, always printed, refusals included.
pub(crate) fn finished_line(status: Status, number: u32, archives: &[PathBuf]) -> String {
    let line = serde_json::json!({
        "event": "finished",
        "status": status.code(),
        "status_text": status.text(),
        "number": number,
        "archives": archives,
    });
    format!("{line}\n")
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
    // The backup always runs on the server when one serves this app (behaviour §4).
    if on_startup.is_none()
        && on_shutdown.is_none()
        && let Some(server) = crate::remote::live_server(&app)
    {
        if !json {
            io.err(&format!(
                "forwarding to the live server at {}\n",
                server.url
            ));
        }
        let token = crate::args::TokenArgs {
            token: Some(server.token),
            token_file: None,
        };
        return crate::remote::backup(&server.url, token, Some(&app), json, io);
    }
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
    });
    let report = match report {
        Ok(r) => r,
        Err(f) => {
            if json {
                io.out(&finished_line(Status::BackupError, 0, &[]));
            }
            return Err(f);
        }
    };
    if json {
        io.out(&finished_line(
            report.status,
            report.number,
            &report.archives,
        ));
    } else {
        io.out(&summary(&layout, &report));
        for e in &report.errors {
            io.err(&format!("error: {e}\n"));
        }
        for w in &report.warnings {
            io.err(&format!("warning: {w}\n"));
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

/// The folder holding the history of an app's sets: the destination
/// folder, or for a store the app's records of it (behaviour §19).
fn destination(app: &Path) -> Result<PathBuf, Failure> {
    let effective =
        sauve_settings::load_effective(app).map_err(|e| Failure::usage(e.to_string()))?;
    sauve_settings::resolve_destination_to_read(
        app,
        &effective.doc.settings().general.destination_folder,
    )
    .map(|d| d.records().to_path_buf())
    .map_err(|e| Failure::usage(e.to_string()))
}

pub(crate) fn status(app: &Path, json: bool, io: &mut Io<'_>) -> Result<(), Failure> {
    let app = app_dir(app)?;
    let view = crate::remote::live_scheduler(&app);
    let value = sauve_engine::status_json(&app, view).map_err(|e| Failure::usage(e.to_string()))?;
    print_status(&value, json, io)
}

/// Prints a status JSON value, as JSON or for people.
pub(crate) fn print_status(
    value: &serde_json::Value,
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), Failure> {
    if json {
        let text =
            serde_json::to_string_pretty(value).map_err(|e| Failure::failed(e.to_string()))?;
        io.out(&format!("{text}\n"));
        return Ok(());
    }
    let mut text = String::new();
    // Alerts first: what a person must see (behaviour §17.2).
    for a in value["alerts"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "ALERT {}: {} (raised {}; `sauve alert ack {}` when seen)\n",
            a["id"],
            a["headline"].as_str().unwrap_or(""),
            a["raised"].as_str().unwrap_or(""),
            a["id"]
        ));
    }
    if let Some(p) = value["sauve_toml_problem"].as_str() {
        text.push_str(&format!(
            "sauve.toml is invalid; the last valid alert settings stay in force:\n{p}\n"
        ));
    }
    let b = &value["last_backup"];
    if b.is_null() {
        text.push_str("Last backup:  none\n");
    } else {
        let n = b["number"].as_u64().unwrap_or(0) as u32;
        text.push_str(&format!(
            "Last backup:  {} ({}), {} {}\n",
            sauve_archive::number_text(n),
            b["trigger"].as_str().unwrap_or(""),
            b["status"],
            b["status_text"].as_str().unwrap_or("")
        ));
        text.push_str(&format!(
            "  started     {}\n  ended       {} ({} ms)\n",
            b["started"].as_str().unwrap_or(""),
            b["ended"].as_str().unwrap_or(""),
            b["duration_ms"]
        ));
        if let Some(a) = b["archive"].as_str() {
            text.push_str(&format!("  archive     {a}\n"));
        }
        if let Some(w) = b["lock_window_ms"].as_u64() {
            text.push_str(&format!("  data lock   {w} ms\n"));
        }
    }
    let next = value["next_scheduled"].as_str().unwrap_or("none");
    let off = if value["scheduler_disabled"].as_bool() == Some(true) {
        " (scheduler off after 1401)"
    } else {
        ""
    };
    text.push_str(&format!("Next scheduled: {next}{off}\n"));
    let d = &value["destination"];
    text.push_str(&format!(
        "Destination:  {}\n",
        d["path"].as_str().unwrap_or("")
    ));
    text.push_str(&format!(
        "  used by this app's sets {} bytes; free {}\n",
        d["used_bytes"],
        d["free_bytes"]
            .as_u64()
            .map_or("unknown".to_owned(), |f| format!("{f} bytes"))
    ));
    for o in value["offsite"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "Off-site:     {}: {} copied, {} pending, {} failed\n",
            o["url"].as_str().unwrap_or(""),
            o["copied"],
            o["pending"],
            o["failed"]
        ));
        if let Some(reason) = o["last_failure"]["reason"].as_str() {
            text.push_str(&format!(
                "  last failure (set {}, {} attempts): {reason}\n",
                o["last_failure"]["number"], o["last_failure"]["attempts"]
            ));
        }
    }
    io.out(&text);
    Ok(())
}

pub(crate) fn history(app: &Path, json: bool, io: &mut Io<'_>) -> Result<(), Failure> {
    let app = app_dir(app)?;
    let dest = destination(&app)?;
    let path = dest.join(sauve_history::FILE_NAME);
    let Some(text) =
        sauve_history::read_json_text(&dest).map_err(|e| Failure::failed(e.to_string()))?
    else {
        if json {
            io.out("{}\n");
        } else {
            io.err(&format!("no history in {}\n", dest.display()));
        }
        return Ok(());
    };
    let h = sauve_history::History::parse(&text)
        .ok_or_else(|| Failure::failed(format!("{} is not a valid history", path.display())))?;
    if json {
        // Without the BOM some 4D files start with: stdout JSON never has one.
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
                sauve_history::Operation::Integration => "logs",
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
    crate::archive::restore(archive, Some(restored.clone()), false, Some(&app), None, io)?;
    io.out(&format!("\n$ sauve verify '{}'\n", archive.display()));
    crate::archive::verify(archive, None, None, io)?;
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

/// `sauve run`: the server, until SIGTERM or SIGINT.
/// Where `sauve run` listens: `--listen`, and whether `--insecure-listen`
/// allows it outside loopback without TLS.
pub(crate) struct Listen {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) insecure: bool,
}

pub(crate) fn run_server(
    app: &Path,
    listen: Listen,
    mode: crate::args::RunMode,
    public_url: Option<String>,
    io: &mut Io<'_>,
) -> Result<(), Failure> {
    let app = app_dir(app)?;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
    let mode = match mode {
        crate::args::RunMode::Server => sauve_locking::Mode::Server,
        crate::args::RunMode::SingleUser => sauve_locking::Mode::SingleUser,
    };
    let rt = runtime()?;
    let result = rt.block_on(async {
        // The handlers are installed before anything else, so that a
        // SIGTERM arriving while the server starts stops it cleanly too.
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| Failure::failed(format!("cannot handle SIGTERM: {e}")))?;
        let mut int = signal(SignalKind::interrupt())
            .map_err(|e| Failure::failed(format!("cannot handle SIGINT: {e}")))?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        let options = sauve_server::ServeOptions {
            listen: listen.addr,
            insecure_listen: listen.insecure,
            mode,
            public_url,
        };
        sauve_server::run(app.clone(), options, shutdown)
            .await
            .map_err(|e| match e {
                sauve_server::DaemonError::PublicUrl(_)
                | sauve_server::DaemonError::ListenRefused { .. }
                | sauve_server::DaemonError::AlreadyRunning { .. } => Failure::usage(e.to_string()),
                e => Failure::failed(e.to_string()),
            })
    });
    result?;
    io.err("sauve server stopped\n");
    Ok(())
}
