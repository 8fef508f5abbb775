//! `sauve verify --sample`: a sample of the stored bytes of the sets the
//! app's destination keeps (behaviour §23), through the app's engine so
//! that it is recorded and alerted like a backup's; on the live server
//! when one serves the app (the state has one writer).

use std::path::Path;

use sauve_engine::{Engine, SampleOptions, Trigger};

use crate::report::{Failure, Io};

pub(crate) fn run(
    app: Option<&Path>,
    (percent, max_mib): (Option<u32>, Option<u32>),
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), Failure> {
    if let Some(p) = percent.filter(|p| !(1..=100).contains(p)) {
        return Err(Failure::usage(format!(
            "--sample {p} (accepted: 1 to 100 percent)"
        )));
    }
    if let Some(m) = max_mib.filter(|m| !(1..=1 << 20).contains(m)) {
        return Err(Failure::usage(format!(
            "--max-mib {m} (accepted: 1 to 1048576)"
        )));
    }
    let app = crate::settings::app_dir(app.unwrap_or(Path::new(".")))?;
    let layout = crate::backup::layout(&app)?;
    let report = match crate::remote::live_server(&app) {
        Some(server) => {
            if !json {
                io.err(&format!("sampling on the live server at {}\n", server.url));
            }
            let mut body = serde_json::json!({});
            if let Some(p) = percent {
                body["percent"] = p.into();
            }
            if let Some(m) = max_mib {
                body["max_mib"] = m.into();
            }
            crate::remote::sample(&server, &body)?
        }
        None => {
            let options = match (percent, max_mib) {
                (None, None) => None,
                (percent, max_mib) => {
                    let own = sauve_settings::load_sauve_toml(&app)
                        .map_err(|e| Failure::failed(e.to_string()))?;
                    Some(SampleOptions {
                        percent: percent.unwrap_or(own.verify.sample_percent.max(1)),
                        max_mib: max_mib.unwrap_or(own.verify.sample_max_mib),
                    })
                }
            };
            let rt = crate::exec::runtime()?;
            let report = rt.block_on(async {
                let handle = Engine::start(layout, Default::default())
                    .map_err(|e| Failure::failed(e.to_string()))?;
                let report = handle.rehearsals().sample(options, Trigger::Manual).await;
                handle.shutdown().await;
                report.map_err(|e| {
                    let s = e.status();
                    Failure::failed(format!("{} ({}): {e}", s.text().to_lowercase(), s.code()))
                })
            })?;
            serde_json::to_value(&report).map_err(|e| Failure::failed(e.to_string()))?
        }
    };
    show(&report, json, io);
    let count = |k: &str| report[k].as_array().map_or(0, Vec::len);
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    match (count("marked"), count("unreadable")) {
        (0, 0) => Ok(()),
        (0, n) => Err(Failure::failed(format!(
            "{n} piece{} could not be read: the sample is not complete",
            plural(n)
        ))),
        (n, _) => Err(Failure::failed(format!(
            "archive verification failed (1411): {n} damaged piece{} or file{} known",
            plural(n),
            plural(n)
        ))),
    }
}

/// The report as lines, or as one JSON object.
fn show(report: &serde_json::Value, json: bool, io: &mut Io<'_>) {
    if json {
        io.out(&format!("{report}\n"));
        return;
    }
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
    let sets = report["sets"].as_array().cloned().unwrap_or_default();
    let mut out = format!(
        "Sample of {}: {} pieces ({}) read from {} kept set{}\n",
        report["source"].as_str().unwrap_or(""),
        n(report, "pieces"),
        sauve_engine::human_bytes(n(report, "bytes")),
        sets.len(),
        if sets.len() == 1 { "" } else { "s" }
    );
    for s in &sets {
        out.push_str(&format!(
            "  {}: {} read now, {} of {} pieces read since its reading began\n",
            s["set"].as_str().unwrap_or(""),
            n(s, "pieces"),
            n(s, "covered"),
            n(s, "total")
        ));
    }
    for u in report["unrecorded"].as_array().into_iter().flatten() {
        out.push_str(&format!("  not sampled: {}\n", u.as_str().unwrap_or("")));
    }
    for d in report["sound_again"].as_array().into_iter().flatten() {
        out.push_str(&format!("  sound again: {}\n", place(d)));
    }
    for d in report["damaged"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  DAMAGED: {}: {}\n",
            place(d),
            d["why"].as_str().unwrap_or("")
        ));
    }
    for d in report["marked"].as_array().into_iter().flatten() {
        let same = |n: &serde_json::Value| place(n) == place(d);
        let again = report["damaged"]
            .as_array()
            .is_some_and(|now| now.iter().any(same));
        if !again {
            out.push_str(&format!(
                "  still marked damaged (not read again now): {}\n",
                place(d)
            ));
        }
    }
    for u in report["unreadable"].as_array().into_iter().flatten() {
        out.push_str(&format!("  unreadable: {}\n", u.as_str().unwrap_or("")));
    }
    if let Some(why) = report["ended_early"].as_str() {
        out.push_str(&format!("  ended early: {why}\n"));
    }
    for w in report["warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("  warning: {}\n", w.as_str().unwrap_or("")));
    }
    io.out(&out);
}

/// Where damage `d` is: `App[0012] App[0012].4BK, piece 3`.
fn place(d: &serde_json::Value) -> String {
    let piece = d["piece"]
        .as_u64()
        .map(|p| format!(", piece {p}"))
        .unwrap_or_default();
    format!(
        "{} {}{piece}",
        d["set"].as_str().unwrap_or(""),
        d["file"].as_str().unwrap_or("")
    )
}
