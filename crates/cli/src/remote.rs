//! Talking to a live `sauve run`: `sauve backup --remote`, forwarding from
//! `sauve backup --app` when the app's server answers, `sauve status --remote`.

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use sauve_engine::{BackupEvent, SchedulerView};
use sauve_server::ServerFile;
use sauve_status::Status;

use crate::backup::exit_code;
use crate::{EXIT_OK, Failure, Io};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(5)))
        .build()
        .into()
}

/// The server of `app` if its file names a live process that answers.
pub(crate) fn live_server(app: &Path) -> Option<ServerFile> {
    let file = ServerFile::read(app)?;
    if !file.pid_alive() {
        return None;
    }
    let status = agent()
        .get(format!("{}/v1/status", file.url))
        .header("Authorization", format!("Bearer {}", file.token))
        .call()
        .ok()?;
    status.status().is_success().then_some(file)
}

/// The scheduler's view from a live server, for a local `sauve status`.
pub(crate) fn live_scheduler(app: &Path) -> SchedulerView {
    let Some(file) = live_server(app) else {
        return SchedulerView::default();
    };
    let Ok(v) = get_json(&file.url, &file.token, "/v1/status") else {
        return SchedulerView::default();
    };
    SchedulerView {
        next: v["next_scheduled"].as_str().and_then(|s| s.parse().ok()),
        disabled: v["scheduler_disabled"].as_bool().unwrap_or(false),
        checked: None,
    }
}

fn get_json(url: &str, token: &str, path: &str) -> Result<serde_json::Value, Failure> {
    let mut resp = agent()
        .get(format!("{}{path}", url.trim_end_matches('/')))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .map_err(|e| Failure::failed(format!("cannot reach {url}: {e}")))?;
    let code = resp.status();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| Failure::failed(format!("cannot read the answer of {url}: {e}")))?;
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
        Failure::failed(format!(
            "{url} answered {code} with something that is not JSON: {e}"
        ))
    })?;
    if !code.is_success() {
        return Err(Failure::failed(format!(
            "{url} answered {code}: {}",
            v["error"].as_str().unwrap_or(&body)
        )));
    }
    Ok(v)
}

/// The token: given, else from the server file of the app the URL points to.
fn token_for(url: &str, token: Option<String>, app: Option<&Path>) -> Result<String, Failure> {
    if let Some(t) = token {
        return Ok(t);
    }
    app.and_then(ServerFile::read)
        .filter(|f| f.url.trim_end_matches('/') == url.trim_end_matches('/'))
        .map(|f| f.token)
        .ok_or_else(|| {
            Failure::usage(format!(
                "no token for {url} (accepted: --token T, or --app DIR whose Logs/sauve-server.json names that server)"
            ))
        })
}

/// `sauve status --remote URL`.
pub(crate) fn status(
    url: &str,
    token: Option<String>,
    app: Option<&Path>,
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), Failure> {
    let token = token_for(url, token, app)?;
    let v = get_json(url, &token, "/v1/status")?;
    crate::backup::print_status(&v, json, io)
}

/// Starts a backup on the server and follows its events to the end.
pub(crate) fn backup(
    url: &str,
    token: Option<String>,
    app: Option<&Path>,
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), Failure> {
    let token = token_for(url, token, app)?;
    let base = url.trim_end_matches('/');
    let auth = format!("Bearer {token}");
    // Follow the events first, so that none of this run is missed.
    let events = agent()
        .get(format!("{base}/v1/events"))
        .header("Authorization", &auth)
        .call()
        .map_err(|e| Failure::failed(format!("cannot reach {url}: {e}")))?;
    if !events.status().is_success() {
        return Err(Failure::failed(format!(
            "{url} refused the event stream ({})",
            events.status()
        )));
    }
    let mut started = agent()
        .post(format!("{base}/v1/backup"))
        .header("Authorization", &auth)
        .send_empty()
        .map_err(|e| Failure::failed(format!("cannot reach {url}: {e}")))?;
    let code = started.status();
    let body = started.body_mut().read_to_string().unwrap_or_default();
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    // A refusal (409) or a run that ended before it had a number (422)
    // carries its status: the backup is over, with that status.
    if !code.is_success()
        && let Some(status) = answer["status"].as_i64()
    {
        let status = Status::from_code(status as i32);
        if json {
            io.out(&crate::backup::finished_line(status, 0, &[]));
        } else {
            io.out(&format!("Backup on {url}: {status}\n"));
            if let Some(e) = answer["error"].as_str() {
                io.err(&format!("error: {e}\n"));
            }
        }
        return finish(status);
    }
    if !code.is_success() {
        return Err(Failure::failed(format!(
            "{url} answered {code}: {}",
            answer["error"].as_str().unwrap_or(&body)
        )));
    }
    let run = answer["run"].as_u64();
    if !json {
        io.out(&format!(
            "Backup {} started on {url}\n",
            sauve_archive::number_text(answer["number"].as_u64().unwrap_or(0) as u32)
        ));
    }
    let mut reader = std::io::BufReader::new(events.into_body().into_reader());
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| Failure::failed(format!("the event stream of {url} broke: {e}")))?;
        if n == 0 {
            if json {
                io.out(&crate::backup::finished_line(Status::BackupError, 0, &[]));
            }
            return Err(Failure::failed(format!(
                "{url} closed the event stream before the backup ended"
            )));
        }
        let Some(data) = line.trim_end().strip_prefix("data:") else {
            continue;
        };
        let Ok(event) = serde_json::from_str::<BackupEvent>(data.trim()) else {
            continue;
        };
        if run.is_some_and(|r| event_run(&event) != r) {
            continue;
        }
        if let BackupEvent::Finished {
            status,
            number,
            archives,
            ..
        } = &event
        {
            let status = Status::from_code(*status);
            if json {
                io.out(&crate::backup::finished_line(status, *number, archives));
            } else {
                io.out(&format!(
                    "Backup {} on {url}: {status}\n",
                    sauve_archive::number_text(*number)
                ));
            }
            return finish(status);
        }
        if json {
            io.out(&format!("{}\n", data.trim()));
        }
    }
}

/// The run an event belongs to.
fn event_run(event: &BackupEvent) -> u64 {
    match event {
        BackupEvent::Started { run, .. }
        | BackupEvent::Phase { run, .. }
        | BackupEvent::File { run, .. }
        | BackupEvent::Warning { run, .. }
        | BackupEvent::Finished { run, .. } => *run,
    }
}

fn finish(status: Status) -> Result<(), Failure> {
    match exit_code(status) {
        EXIT_OK => Ok(()),
        code => Err(Failure {
            code,
            message: format!("backup ended with status {status}"),
        }),
    }
}
