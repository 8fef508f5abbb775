//! `sauve rehearse`: a restore rehearsal (behaviour §22) through the app's
//! engine, so that it is admitted, recorded and alerted like the server's;
//! Ctrl-C stops it (1406).

use std::path::Path;

use sauve_archive::BackupNumber;
use sauve_engine::{BackupHandle, Engine, Pick, Rehearsal, RehearsalOptions, Trigger};
use sauve_status::Status;

use crate::args::RehearseArgs;
use crate::report::{Failure, Io};

pub(crate) fn run(asked: RehearseArgs, io: &mut Io<'_>) -> Result<(), Failure> {
    let app = crate::settings::app_dir(&asked.app.app)?;
    let layout = crate::backup::layout(&app)?;
    let pick = match (asked.set, asked.random) {
        (Some(_), true) => {
            return Err(Failure::usage(
                "--set and --random both choose the set (accepted: one of them)",
            ));
        }
        (Some(0), _) => return Err(Failure::usage("--set 0 names no set (accepted: 1 to 9999)")),
        (Some(n), _) => Pick::Number(BackupNumber::new(n)),
        (None, true) => Pick::Random,
        (None, false) => Pick::Newest,
    };
    let from = match (asked.from, asked.offsite) {
        (Some(_), Some(_)) => {
            return Err(Failure::usage(
                "--from and --offsite both name the source (accepted: one of them)",
            ));
        }
        (Some(f), None) => Some(f),
        (None, Some(o)) => Some(offsite_url(&app, &o)?),
        (None, None) => None,
    };
    let zone = jiff::tz::TimeZone::system();
    let until = match &asked.until {
        None => sauve_engine::Until::End,
        Some(t) => sauve_engine::Until::Time(
            sauve_logfile::parse_time(t, &zone)
                .map_err(|e| Failure::usage(format!("--until: {e}")))?,
        ),
    };
    // A rehearsal always runs on the server when one serves this app, so
    // that a backup that comes due stops it (behaviour §4, §22).
    if let Some(server) = crate::remote::live_server(&app) {
        if asked.identity.is_some() {
            return Err(Failure::usage(
                "--identity names a file of this machine, and a server runs this app: the rehearsal runs there (accepted: rehearsal.identity_file in its sauve.toml)",
            ));
        }
        if !asked.json {
            io.err(&format!(
                "rehearsing on the live server at {}\n",
                server.url
            ));
        }
        let mut body = serde_json::json!({
            "random": matches!(pick, Pick::Random),
            "full_speed": asked.full_speed,
        });
        if let Pick::Number(n) = pick {
            body["set"] = n.get().into();
        }
        if let Some(f) = &from {
            body["from"] = f.clone().into();
        }
        if let sauve_engine::Until::Time(t) = until {
            body["until"] = t.to_string().into();
        }
        let done = crate::remote::rehearse(&server, &body)?;
        return ended(&done, asked.json, &zone, io);
    }
    let options = RehearsalOptions {
        pick,
        from,
        until,
        identity: asked.identity,
        trigger: Trigger::Manual,
        max_mib_s: None,
        low_priority: !asked.full_speed,
    };
    let rt = crate::exec::runtime()?;
    let done = rt.block_on(async {
        let handle = Engine::start(layout, Default::default())
            .map_err(|e| Failure::failed(e.to_string()))?;
        let done = rehearse(&handle, options, asked.json, io).await;
        handle.shutdown().await;
        done
    })?;
    ended(&done.to_json(), asked.json, &zone, io)
}

/// Shows the rehearsal `done` (as `Rehearsal::to_json` gives it); a
/// failure when it proved nothing.
fn ended(
    done: &serde_json::Value,
    json: bool,
    zone: &jiff::tz::TimeZone,
    io: &mut Io<'_>,
) -> Result<(), Failure> {
    show(done, json, zone, io);
    let status = Status::from_code(done["status"].as_i64().unwrap_or(1409) as i32);
    match status {
        Status::Ok => Ok(()),
        s => Err(Failure::failed(format!(
            "{} ({})",
            s.text().to_lowercase(),
            s.code()
        ))),
    }
}

/// Runs it; Ctrl-C stops it.
async fn rehearse(
    handle: &BackupHandle,
    options: RehearsalOptions,
    json: bool,
    io: &mut Io<'_>,
) -> Result<Rehearsal, Failure> {
    if !json {
        io.err("rehearsing a restore (Ctrl-C stops it)...\n");
    }
    let rehearsal = handle.rehearsals().rehearse(options);
    tokio::pin!(rehearsal);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut stopping = false;
    let done = loop {
        tokio::select! {
            done = &mut rehearsal => break done,
            _ = &mut ctrl_c, if !stopping => {
                stopping = true;
                let _ = handle.stop().await;
            }
        }
    };
    done.map_err(|e| {
        let s = e.status();
        let code = match e {
            sauve_engine::EngineError::NoSuchSet { .. } => crate::report::EXIT_USAGE,
            _ => crate::report::EXIT_FAILURE,
        };
        Failure {
            code,
            message: format!("{} ({}): {e}", s.text().to_lowercase(), s.code()),
        }
    })
}

/// The URL of the `[[offsite]]` entry `which` names: its 1-based place in
/// sauve.toml, or its URL.
fn offsite_url(app: &Path, which: &str) -> Result<String, Failure> {
    let own = sauve_settings::load_sauve_toml(app).map_err(|e| Failure::usage(e.to_string()))?;
    let urls: Vec<&str> = own.offsite.iter().map(|o| o.url.as_str()).collect();
    let found = match which.parse::<usize>() {
        Ok(i) => i.checked_sub(1).and_then(|i| urls.get(i).copied()),
        Err(_) => urls
            .iter()
            .copied()
            .find(|u| u.trim_end_matches('/') == which.trim_end_matches('/')),
    };
    found.map(str::to_owned).ok_or_else(|| {
        let listed: Vec<String> = urls
            .iter()
            .enumerate()
            .map(|(i, u)| format!("{} = {}", i + 1, sauve_settings::shown_url(u)))
            .collect();
        Failure::usage(format!(
            "--offsite {which} names no [[offsite]] entry of sauve.toml (accepted: {})",
            if listed.is_empty() {
                "none: sauve.toml has no [[offsite]] entry".to_owned()
            } else {
                listed.join(", ")
            }
        ))
    })
}

fn show(done: &serde_json::Value, json: bool, zone: &jiff::tz::TimeZone, io: &mut Io<'_>) {
    if json {
        io.out(&format!("{done}\n"));
        return;
    }
    let text = |k: &str| done[k].as_str().unwrap_or("").to_owned();
    let n = |k: &str| done[k].as_u64().unwrap_or(0);
    let secs = |ms: u64| format!("{:.1} s", ms as f64 / 1000.0);
    let mut out = format!(
        "Rehearsal of {} from {}: {} {}\n",
        text("set"),
        text("source"),
        done["status"],
        text("statusText")
    );
    if let Some(e) = done["error"].as_str() {
        out.push_str(&format!("  error: {e}\n"));
    }
    // What ran: nothing to say of a rehearsal that ended before its restore.
    if n("files") > 0 || done["error"].is_null() {
        out.push_str(&format!(
            "  restored {} files ({}) in {}\n",
            n("files"),
            sauve_engine::human_bytes(n("bytes")),
            secs(n("restoreMs"))
        ));
        let logs = done["logBackups"].as_array().map_or(0, Vec::len);
        match logs {
            0 => out.push_str("  no log backup after the set\n"),
            k => out.push_str(&format!(
                "  integrated {} records from {k} log backup{} in {}{}\n",
                n("records"),
                if k == 1 { "" } else { "s" },
                secs(n("integrateMs")),
                done["lastSequence"]
                    .as_u64()
                    .map(|s| format!(", to sequence {s}"))
                    .unwrap_or_default()
            )),
        }
    }
    if let Some(v) = done["verdict"].as_str() {
        out.push_str(&format!("  check: {v} ({})\n", secs(n("checkMs"))));
    }
    if let Some(p) = done["point"]
        .as_str()
        .and_then(|p| p.parse::<jiff::Timestamp>().ok())
    {
        out.push_str(&format!(
            "  proven recovery point: {}\n",
            sauve_logfile::format_time(p, zone)
        ));
    }
    io.out(&out);
    for w in done["warnings"].as_array().into_iter().flatten() {
        io.err(&format!("warning: {}\n", w.as_str().unwrap_or("")));
    }
}
