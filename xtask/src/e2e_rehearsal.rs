//! The restore rehearsals of `cargo xtask e2e` (behaviour §22): notes-server
//! serving reads while a rehearsal runs beside it (p99 against idle), a
//! rehearsal that proves every note the log holds, then one of a set
//! damaged since, which must fail, alert and name the set.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::e2e_point::{backup, note};
use crate::notes_server::{Server, agent, start, stop};

/// What the rehearsals showed.
pub(crate) struct Rehearsed {
    /// Read p99 with nothing else running, ms.
    pub(crate) idle_p99: f64,
    /// Read p99 while rehearsals ran, ms.
    pub(crate) during_p99: f64,
    /// Reads measured while rehearsals ran.
    pub(crate) during_reads: usize,
    /// The first rehearsal's restore and integration, ms.
    pub(crate) restore_ms: u64,
    /// The notes the rehearsal proved, and the notes acknowledged.
    pub(crate) notes: (u64, usize),
    /// The failed rehearsal's error, which names the damaged set.
    pub(crate) failure: String,
}

/// `[rehearsal] max_mib_s` of the app.
const MAX_MIB_S: u32 = 8;

/// Notes of 64 KiB, enough for a rehearsal that lasts a while.
const NOTES: usize = 400;
const NOTE_BYTES: usize = 64 << 10;

/// Runs the rehearsal step in `root` with notes-server `bin`.
pub(crate) fn run(bin: &Path, root: &Path) -> Result<Rehearsed> {
    let app = root.join("App");
    std::fs::create_dir_all(app.join("Settings"))?;
    // Rehearsals beside a serving app: low priority, and a bounded rate.
    std::fs::write(
        app.join("Settings/sauve.toml"),
        format!("[rehearsal]\nmax_mib_s = {MAX_MIB_S}\n"),
    )?;
    let server = start(bin, &app, &root.join("notes-server.log"))?;
    let result = steps(&server, root);
    stop(server)?;
    result
}

fn steps(server: &Server, root: &Path) -> Result<Rehearsed> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut body = || -> String {
        (0..NOTE_BYTES)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect()
    };
    // Every write acknowledged is in the log: what a rehearsal must prove.
    let mut acknowledged = 0;
    for _ in 0..NOTES {
        note(server, &body())?;
        acknowledged += 1;
    }
    backup(server, 1)?;
    // Written after set 1: in its log backup, which the rehearsal applies.
    for _ in 0..NOTES / 4 {
        note(server, &body())?;
        acknowledged += 1;
    }
    backup(server, 2)?;
    let served = acknowledged;
    let idle = reads_while(server, || {
        std::thread::sleep(Duration::from_secs(5));
        Ok(())
    })?;
    let mut first = None;
    let during = reads_while(server, || {
        // Rehearsals back to back for at least five seconds.
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(5) {
            let done = rehearse(server, r#"{"set": 1}"#)?;
            first.get_or_insert(done);
        }
        Ok(())
    })?;
    let done = first.context("no rehearsal ran")?;
    if done["status"] != 0 {
        bail!("the rehearsal of set 1 failed: {done}");
    }
    let verdict = done["verdict"].as_str().unwrap_or_default();
    let proved: u64 = verdict
        .strip_prefix("ok: ")
        .and_then(|v| v.split(' ').next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("the verdict {verdict:?} names no count of notes"))?;
    if proved as usize != served {
        bail!("the rehearsal proved {proved} notes, {served} were acknowledged");
    }
    let restore_ms =
        done["restoreMs"].as_u64().unwrap_or(0) + done["integrateMs"].as_u64().unwrap_or(0);
    // A stored set damaged after it was written: the next rehearsal fails,
    // names it and alerts.
    let set = root.join("Backups/Notes[0001].4BK");
    let mut bytes = std::fs::read(&set)?;
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&set, bytes)?;
    let failed = rehearse(server, r#"{"set": 1}"#)?;
    let failure = failed["error"].as_str().unwrap_or_default().to_owned();
    if failed["status"] == 0 || !failure.contains("Notes[0001]") {
        bail!("the rehearsal of a damaged set did not fail naming it: {failed}");
    }
    let status = status(server)?;
    let alerted = status["alerts"]
        .as_array()
        .is_some_and(|a| a.iter().any(|a| a["kind"] == "rehearsal-failed"));
    if !alerted {
        bail!("a failed rehearsal raised no alert: {status}");
    }
    Ok(Rehearsed {
        idle_p99: p99(&idle),
        during_p99: p99(&during),
        during_reads: during.len(),
        restore_ms,
        notes: (proved, served),
        failure,
    })
}

/// `POST /v1/rehearse` with `body`: the rehearsal's JSON.
fn rehearse(server: &Server, body: &str) -> Result<serde_json::Value> {
    let mut r = agent()
        .post(format!("{}/v1/rehearse", server.url))
        .header("Authorization", format!("Bearer {}", server.token))
        .header("Content-Type", "application/json")
        .send(body)?;
    let text = r.body_mut().read_to_string()?;
    if r.status().as_u16() != 200 {
        bail!("POST /v1/rehearse answered {}: {text}", r.status());
    }
    Ok(serde_json::from_str(&text)?)
}

fn status(server: &Server) -> Result<serde_json::Value> {
    let mut r = agent()
        .get(format!("{}/v1/status", server.url))
        .header("Authorization", format!("Bearer {}", server.token))
        .call()?;
    Ok(serde_json::from_str(&r.body_mut().read_to_string()?)?)
}

/// Two readers of random notes while `work` runs; each read's time, ms.
fn reads_while(server: &Server, work: impl FnOnce() -> Result<()>) -> Result<Vec<f64>> {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let (url, samples, stop) = (server.url.clone(), samples.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = agent();
                let mut n = r + 1;
                while !stop.load(Ordering::Relaxed) {
                    n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let id = 1 + (n >> 33) % NOTES as u64;
                    let t = Instant::now();
                    if client.get(format!("{url}/notes/{id}")).call().is_ok() {
                        let ms = t.elapsed().as_secs_f64() * 1000.0;
                        samples.lock().map(|mut s| s.push(ms)).ok();
                    }
                }
            })
        })
        .collect();
    let worked = work();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let _ = r.join();
    }
    worked?;
    let v = samples.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(v)
}

fn p99(samples: &[f64]) -> f64 {
    let mut v = samples.to_vec();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * 0.99).round() as usize]
}
