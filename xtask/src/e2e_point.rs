//! The point-in-time recovery of `cargo xtask e2e` (behaviour §20), as a person
//! runs it: notes written with backups in between, a mistaken "delete all",
//! `notes-server restore --until` one second before it. Every note written
//! before the point comes back, none written after it; later starts, a
//! later write and an automatic restore of damaged data keep it so.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::notes_server::{Server, agent, start, stop};

/// Writes a note; its id.
pub(crate) fn note(server: &Server, body: &str) -> Result<u64> {
    let mut r = agent().post(format!("{}/notes", server.url)).send(body)?;
    if r.status().as_u16() != 201 {
        bail!("the note {body:?} was refused ({})", r.status());
    }
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string()?)?;
    v["id"].as_u64().context("a note without id")
}

/// Every note, as `GET /notes` lists them.
pub(crate) fn notes(server: &Server) -> Result<Vec<String>> {
    let mut r = agent().get(format!("{}/notes", server.url)).call()?;
    let v: Vec<serde_json::Value> = serde_json::from_str(&r.body_mut().read_to_string()?)?;
    Ok(v.iter()
        .map(|n| n["body"].as_str().unwrap_or_default().to_owned())
        .collect())
}

/// Asks for a backup and waits until the last backup is number `n`, done.
pub(crate) fn backup(server: &Server, n: u64) -> Result<()> {
    let auth = format!("Bearer {}", server.token);
    agent()
        .post(format!("{}/v1/backup", server.url))
        .header("Authorization", &auth)
        .send_empty()?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let mut r = agent()
            .get(format!("{}/v1/status", server.url))
            .header("Authorization", &auth)
            .call()?;
        let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string()?)?;
        let last = &v["last_backup"];
        if last["number"].as_u64() == Some(n) {
            if last["status"].as_i64() != Some(0) {
                bail!("backup {n} failed: {last}");
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("backup {n} did not end within 2 minutes")
}

/// `notes-server restore --app APP ARGS` must fail saying `needle`.
fn refused(bin: &Path, app: &Path, args: &[&str], needle: &str) -> Result<()> {
    let out = Command::new(bin)
        .args(["restore", "--app"])
        .arg(app)
        .args(args)
        .output()?;
    let said = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || !said.contains(needle) {
        bail!(
            "notes-server restore {} was not refused with {needle:?} ({}): {said}",
            args.join(" "),
            out.status
        );
    }
    Ok(())
}

fn expect(what: &str, got: &[String], wanted: &[String]) -> Result<()> {
    if got != wanted {
        bail!(
            "{what}: {} notes, {} expected\n  got:      {got:?}\n  expected: {wanted:?}",
            got.len(),
            wanted.len()
        );
    }
    Ok(())
}

/// What the recovery did.
pub(crate) struct Recovered {
    /// Notes there at the end, every one written before the point or
    /// after the recovery.
    pub(crate) notes: usize,
    /// How long `notes-server restore --until` took.
    pub(crate) restore: Duration,
}

/// Runs the recovery in `root` with the notes-server binary `bin`.
pub(crate) fn run(bin: &Path, root: &Path) -> Result<Recovered> {
    let app = root.join("App");
    std::fs::create_dir_all(app.join("Data"))?;
    let log = root.join("notes-server.log");
    let server = start(bin, &app, &log)?;
    let mut kept = Vec::new();
    for round in 1..=3 {
        for i in 1..=5 {
            let body = format!("round {round} note {i}");
            note(&server, &body)?;
            kept.push(body);
        }
        if round < 3 {
            backup(&server, round)?;
        }
    }
    // The mistake comes a while after the last good write: a point one
    // second before it, typed to the second, falls after that write.
    std::thread::sleep(Duration::from_millis(2200));
    let mut r = agent().delete(format!("{}/notes", server.url)).call()?;
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string()?)?;
    let deleted = v["seq"].as_u64().context("the delete has no sequence")?;
    let mut after = Vec::new();
    for i in 1..=3 {
        let body = format!("after the mistake {i}");
        note(&server, &body)?;
        after.push(body);
    }
    expect("after the delete", &notes(&server)?, &after)?;
    // Not while the server runs: its data would change under the restore.
    refused(bin, &app, &["--until-seq", "1"], "stop it first")?;
    stop(server)?;
    // A time it cannot read: refused, naming the accepted forms.
    refused(
        bin,
        &app,
        &["--until", "yesterday"],
        "accepted: 2026-12-01 14:04:30",
    )?;

    // When the delete happened, from the log itself.
    let contents = sauve_logfile::read_log(&app.join("Data/Notes.journal"))?;
    let at = contents
        .records
        .iter()
        .find(|r| r.seq == deleted)
        .and_then(|r| r.timestamp())
        .context("the delete is not in the log with a time")?;
    let zone = jiff::tz::TimeZone::system();
    let point = zone
        .to_datetime(at.checked_sub(jiff::SignedDuration::from_secs(1))?)
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string();
    let timer = Instant::now();
    let out = Command::new(bin)
        .args(["restore", "--app"])
        .arg(&app)
        .args(["--until", &point])
        .output()?;
    let restore = timer.elapsed();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!(
            "notes-server restore --until {point:?} failed ({}):\n{said}",
            out.status
        );
    }
    eprintln!("notes-server restore --until {point:?}:\n{said}");
    if !said.contains("set aside") {
        bail!("the restore did not say which records it set aside:\n{said}");
    }

    // Every note before the point, none after it.
    let server = start(bin, &app, &log)?;
    expect("after restore --until", &notes(&server)?, &kept)?;
    // A write after the recovery; a restart integrates nothing set aside.
    note(&server, "written after the recovery")?;
    kept.push("written after the recovery".to_owned());
    stop(server)?;
    let server = start(bin, &app, &log)?;
    expect("after a restart", &notes(&server)?, &kept)?;
    stop(server)?;
    // Damaged data: the automatic restore (the set before the mistake, its
    // log to the end) steps over the records set aside too.
    let data = app.join("Data/Notes.4DD");
    let mut bytes = std::fs::read(&data)?;
    for b in bytes.iter_mut().take(100) {
        *b = 0xEE;
    }
    std::fs::write(&data, bytes)?;
    let server = start(bin, &app, &log)?;
    expect("after an automatic restore", &notes(&server)?, &kept)?;
    stop(server)?;
    Ok(Recovered {
        notes: kept.len(),
        restore,
    })
}
