//! Talking to a live `sauve run`: `sauve backup --remote`, forwarding from
//! `sauve backup --app` when the app's server answers, `sauve status --remote`.

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use sauve_engine::{BackupEvent, SchedulerView};
use sauve_server::ServerFile;
use sauve_status::Status;

use crate::args::TokenArgs;
use crate::report::{Failure, Io, backup_ended, finished_line, print_status};

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

/// `POST /v1/rehearse` on the live server `server` with `body`: the
/// rehearsal's JSON once it has ended.
pub(crate) fn rehearse(
    server: &ServerFile,
    body: &serde_json::Value,
) -> Result<serde_json::Value, Failure> {
    post_and_wait(server, "/v1/rehearse", body)
}

/// `POST /v1/sample` on the live server `server` with `body`: the
/// sample's report once read (behaviour §23).
pub(crate) fn sample(
    server: &ServerFile,
    body: &serde_json::Value,
) -> Result<serde_json::Value, Failure> {
    post_and_wait(server, "/v1/sample", body)
}

/// `POST path` on the live server with `body`, the answer once the work
/// ended: 400 is a usage error, another failure names the status.
fn post_and_wait(
    server: &ServerFile,
    path: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, Failure> {
    let url = &server.url;
    let mut resp = agent()
        .post(format!("{}{path}", url.trim_end_matches('/')))
        .header("Authorization", format!("Bearer {}", server.token))
        .send_json(body)
        .map_err(|e| Failure::failed(format!("cannot reach {url}: {e}")))?;
    let code = resp.status();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if code.as_u16() == 400 {
        return Err(Failure::usage(format!(
            "{url}: {}",
            v["error"].as_str().unwrap_or(&text)
        )));
    }
    if !code.is_success() {
        let status = Status::from_code(v["status"].as_i64().unwrap_or(1409) as i32);
        return Err(Failure {
            code: if code.as_u16() == 422 && status == Status::ArchiveMissing {
                crate::report::EXIT_USAGE
            } else {
                crate::report::EXIT_FAILURE
            },
            message: format!(
                "{} ({}): {}",
                status.text().to_lowercase(),
                status.code(),
                v["error"].as_str().unwrap_or(&text)
            ),
        });
    }
    Ok(v)
}

/// The environment variable a client command reads the token from.
pub(crate) const TOKEN_ENV: &str = "SAUVE_TOKEN";

/// The token, first given first: `--token`, `--token-file`, the
/// `SAUVE_TOKEN` environment variable (when not empty), then the server
/// file of the app the URL points to. A token file that cannot be read, or
/// holds nothing, is an error naming it.
fn token_for(
    url: &str,
    token: TokenArgs,
    env: Option<String>,
    app: Option<&Path>,
) -> Result<String, Failure> {
    if let Some(t) = token.token {
        return Ok(t);
    }
    if let Some(path) = token.token_file {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Failure::usage(format!(
                "cannot read the token file \"{}\": {e}",
                path.display()
            ))
        })?;
        let t = text.trim();
        if t.is_empty() {
            return Err(Failure::usage(format!(
                "the token file \"{}\" is empty (accepted: a file holding the server's token, from APP/Logs/sauve-server.json)",
                path.display()
            )));
        }
        return Ok(t.to_owned());
    }
    if let Some(t) = env.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) {
        return Ok(t);
    }
    app.and_then(ServerFile::read)
        .filter(|f| f.url.trim_end_matches('/') == url.trim_end_matches('/'))
        .map(|f| f.token)
        .ok_or_else(|| {
            Failure::usage(format!(
                "no token for {url} (accepted: --token T, --token-file FILE, {TOKEN_ENV} in the environment, or --app DIR whose Logs/sauve-server.json names that server)"
            ))
        })
}

fn env_token() -> Option<String> {
    std::env::var(TOKEN_ENV).ok()
}

/// `sauve status --remote URL`.
pub(crate) fn status(
    url: &str,
    token: TokenArgs,
    app: Option<&Path>,
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), Failure> {
    let token = token_for(url, token, env_token(), app)?;
    let v = get_json(url, &token, "/v1/status")?;
    print_status(&v, json, io)
}

/// Starts a backup on the server and follows its events to the end.
pub(crate) fn backup(
    url: &str,
    token: TokenArgs,
    app: Option<&Path>,
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), Failure> {
    let token = token_for(url, token, env_token(), app)?;
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
            io.out(&finished_line(status, 0.into(), &[]));
        } else {
            io.out(&format!("Backup on {url}: {status}\n"));
            if let Some(e) = answer["error"].as_str() {
                io.err(&format!("error: {e}\n"));
            }
        }
        return backup_ended(status);
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
            sauve_archive::BackupNumber::new(answer["number"].as_u64().unwrap_or(0) as u32).text()
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
                io.out(&finished_line(Status::BackupError, 0.into(), &[]));
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
                io.out(&finished_line(status, *number, archives));
            } else {
                io.out(&format!("Backup {} on {url}: {status}\n", number.text()));
            }
            return backup_ended(status);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::PathBuf;

    use super::*;

    fn args(token: Option<&str>, file: Option<PathBuf>) -> TokenArgs {
        TokenArgs {
            token: token.map(str::to_owned),
            token_file: file,
        }
    }

    #[test]
    fn the_token_comes_from_the_flag_then_the_file_then_sauve_token_then_the_server_file() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("App");
        let url = "http://127.0.0.1:7070";
        sauve_server::write_server_file(&app, url, "from-server-file").unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let env = || Some("from-env".to_owned());
        let got = |a, e| token_for(url, a, e, Some(&app)).map_err(|f| f.message);
        assert_eq!(
            got(args(Some("flag"), Some(file.clone())), env()).unwrap(),
            "flag"
        );
        assert_eq!(
            got(args(None, Some(file.clone())), env()).unwrap(),
            "from-file"
        );
        assert_eq!(got(args(None, None), env()).unwrap(), "from-env");
        assert_eq!(
            got(args(None, None), Some(" ".into())).unwrap(),
            "from-server-file"
        );
        assert_eq!(got(args(None, None), None).unwrap(), "from-server-file");
        // The server file counts only for the server it names.
        let other = token_for("http://127.0.0.1:1", args(None, None), None, Some(&app));
        assert!(
            other
                .unwrap_err()
                .message
                .contains("--token-file FILE, SAUVE_TOKEN")
        );
    }

    #[test]
    fn a_token_file_that_cannot_be_read_or_is_empty_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-token");
        let e = token_for(
            "http://x",
            args(None, Some(missing.clone())),
            Some("env".into()),
            None,
        )
        .unwrap_err();
        assert_eq!(e.code, crate::report::EXIT_USAGE);
        assert!(
            e.message.starts_with(&format!(
                "cannot read the token file \"{}\"",
                missing.display()
            )),
            "{}",
            e.message
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = token_for("http://x", args(None, Some(empty.clone())), None, None).unwrap_err();
        assert!(
            e.message
                .contains(&format!("\"{}\" is empty", empty.display())),
            "{}",
            e.message
        );
    }
}
