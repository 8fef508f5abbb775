//! `sauve backup`, `sauve status`, `sauve history`, `sauve run`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sauve_engine::{
    BackupEvent, BackupHandle, BackupReport, Engine, EngineOptions, Hooks, ShutdownInfo, Trigger,
};
use sauve_settings::AppLayout;
use sauve_status::Status;

use crate::exec::runtime;
use crate::report::{Failure, Io, backup_ended, finished_line, print_status};
use crate::settings::app_dir;

/// The layout of the app folder `app`.
pub(crate) fn layout(app: &Path) -> Result<AppLayout, Failure> {
    AppLayout::discover(app).map_err(|e| Failure::failed(e.to_string()))
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

/// Runs one manual backup of `layout` on an engine and a runtime of its
/// own, showing its events (as JSON lines with `json`).
pub(crate) fn run_once(
    layout: &AppLayout,
    options: EngineOptions,
    json: bool,
    io: &mut Io<'_>,
) -> Result<BackupReport, Failure> {
    let rt = runtime()?;
    let display = Display::new(json);
    rt.block_on(async {
        let handle =
            Engine::start(layout.clone(), options).map_err(|e| Failure::failed(e.to_string()))?;
        let report = run_backup(&handle, Trigger::Manual, &display, io).await;
        handle.shutdown().await;
        report
    })
}

/// What a backup that ran here prints for people.
pub(crate) fn summary(layout: &AppLayout, report: &BackupReport) -> String {
    let mut text = format!(
        "Backup {} of {}: {}\n",
        report.number.text(),
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
    let report = match run_once(&layout, options, json, io) {
        Ok(r) => r,
        Err(f) => {
            if json {
                io.out(&finished_line(Status::BackupError, 0.into(), &[]));
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
    backup_ended(report.status)
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
                sauve_history::Operation::Rehearsal => "rehearsal",
            };
            let status = e
                .status
                .map_or("?".to_owned(), |s| Status::from_code(s).to_string());
            out.push_str(&format!(
                "  {:>5}  {op:9}  {}  {:>8} ms  {status}  {}\n",
                e.backup_number.text(),
                e.starting_date,
                e.duration,
                e.backup_path
            ));
        }
    }
    io.out(&out);
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
