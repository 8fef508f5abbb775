//! The notes-server host as the end-to-end runs drive it: started on an app
//! folder (its URL and token read from the server file it writes), stopped
//! with SIGTERM, spoken to over HTTP.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Result, bail};

/// An HTTP client that hands error statuses back as responses (the runs
/// check them), with a minute for each call.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// A running notes-server: its process, and the URL and token its server
/// file gave.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) token: String,
}

/// Stops `server` with SIGTERM and waits for it.
pub(crate) fn stop(mut server: Server) -> Result<()> {
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()?;
    server.child.wait()?;
    Ok(())
}

/// Starts notes-server on `app`, its output appended to `log`, and waits
/// for the server file that names this process.
pub(crate) fn start(bin: &Path, app: &Path, log: &Path) -> Result<Server> {
    let _ = std::fs::remove_file(app.join("Logs/sauve-server.json"));
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let child = Command::new(bin)
        .args(["--app"])
        .arg(app)
        .stdout(out.try_clone()?)
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()?;
    let file = app.join("Logs/sauve-server.json");
    // Up to 5 minutes: an automatic restore of a large data file, and
    // the integration of its log, come first.
    for _ in 0..6000 {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            && v["pid"].as_u64() == Some(u64::from(child.id()))
        {
            return Ok(Server {
                url: v["url"].as_str().unwrap_or_default().to_owned(),
                token: v["token"].as_str().unwrap_or_default().to_owned(),
                child,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("notes-server did not start; see {}", log.display())
}
