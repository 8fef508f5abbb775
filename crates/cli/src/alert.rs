//! `sauve alert ack|test`: through the app's engine, so that the records
//! actor (and, in another process, the lock beside the state file) keeps
//! the alert list whole.

use std::path::Path;

use sauve_engine::{Engine, EngineError, EngineOptions};
use sauve_settings::AppLayout;

use crate::args::AlertCommand;
use crate::report::{Failure, Io};
use crate::settings::app_dir;

pub(crate) fn run(cmd: AlertCommand, io: &mut Io<'_>) -> Result<(), Failure> {
    match cmd {
        AlertCommand::Ack { id, all, app } => ack(&app_dir(&app.app)?, id.filter(|_| !all), io),
        AlertCommand::Test { app } => test(&app_dir(&app.app)?, io),
    }
}

/// Invalid settings (1419, however the engine read them) are a usage error.
fn engine_failure(e: EngineError) -> Failure {
    if e.status() == sauve_status::Status::InvalidSettings {
        Failure::usage(e.to_string())
    } else {
        Failure::failed(e.to_string())
    }
}

/// Runs `work` with an engine of `app` on a runtime of its own.
fn with_engine<T>(
    app: &Path,
    work: impl AsyncFnOnce(&sauve_engine::BackupHandle) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let layout = AppLayout::discover(app).map_err(|e| Failure::failed(e.to_string()))?;
    let rt = crate::exec::runtime()?;
    rt.block_on(async {
        let handle = Engine::start(layout, EngineOptions::default()).map_err(engine_failure)?;
        let r = work(&handle).await;
        handle.shutdown().await;
        r
    })
}

fn ack(app: &Path, id: Option<u64>, io: &mut Io<'_>) -> Result<(), Failure> {
    let n = with_engine(app, async |h| {
        h.alerts().acknowledge(id).await.map_err(engine_failure)
    })?;
    match (n, id) {
        (0, Some(id)) => Err(Failure::failed(format!(
            "no open alert {id} (accepted: a number `sauve status` shows after ALERT)"
        ))),
        (0, None) => {
            io.out("no open alert\n");
            Ok(())
        }
        (1, _) => {
            io.out("1 alert acknowledged\n");
            Ok(())
        }
        (n, _) => {
            io.out(&format!("{n} alerts acknowledged\n"));
            Ok(())
        }
    }
}

fn test(app: &Path, io: &mut Io<'_>) -> Result<(), Failure> {
    let deliveries = with_engine(app, async |h| {
        h.alerts().test().await.map_err(engine_failure)
    })?;
    if deliveries.is_empty() {
        return Err(Failure::usage(
            "no notifier is configured (accepted: [[alerts.webhook]], [[alerts.email]] or [[alerts.command]] in APP/Settings/sauve.toml)",
        ));
    }
    let mut failed = 0;
    for d in &deliveries {
        io.out(&format!("{}\n", d.line()));
        if !d.sent() {
            failed += 1;
        }
    }
    if failed > 0 {
        return Err(Failure::failed(format!(
            "{failed} of {} notifier{} failed",
            deliveries.len(),
            if deliveries.len() == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}
