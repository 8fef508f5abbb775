//! How a command reports: where it writes ([`Io`]), how it fails
//! ([`Failure`], with its exit code), and what a backup or a status prints
//! whether it ran here or on a live server (`remote.rs`).

use std::io::Write;
use std::path::PathBuf;

use sauve_status::Status;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for a failed operation.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a bad command line or invalid settings.
pub const EXIT_USAGE: u8 = 2;

/// A command's failure: its message and exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    pub(crate) fn failed(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_FAILURE,
            message: message.into(),
        }
    }
}

/// Where a command writes.
pub(crate) struct Io<'a> {
    pub(crate) out: &'a mut dyn Write,
    pub(crate) err: &'a mut dyn Write,
}

impl Io<'_> {
    /// Writes to standard output; a closed pipe is not worth a failure.
    pub(crate) fn out(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
    }

    /// Writes to standard error.
    pub(crate) fn err(&mut self, text: &str) {
        let _ = self.err.write_all(text.as_bytes());
    }
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

/// How a command that ran a backup ends: `Ok` for status 0, else a failure
/// with the status's exit code.
pub(crate) fn backup_ended(status: Status) -> Result<(), Failure> {
    match exit_code(status) {
        EXIT_OK => Ok(()),
        code => Err(Failure {
            code,
            message: format!("backup ended with status {status}"),
        }),
    }
}

/// The last line of `sauve backup --json`: exactly the fields behaviour §4
/// names, always printed, refusals included.
pub(crate) fn finished_line(
    status: Status,
    number: sauve_archive::BackupNumber,
    archives: &[PathBuf],
) -> String {
    let line = serde_json::json!({
        "event": "finished",
        "status": status.code(),
        "status_text": status.text(),
        "number": number,
        "archives": archives,
    });
    format!("{line}\n")
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
        let n = sauve_archive::BackupNumber::new(b["number"].as_u64().unwrap_or(0) as u32);
        text.push_str(&format!(
            "Last backup:  {} ({}), {} {}\n",
            n.text(),
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
    // Proof of recoverability (behaviour §22).
    if !value["rehearsal"].is_null() {
        let zone = jiff::tz::TimeZone::system();
        for line in sauve_engine::proof_lines(&value["rehearsal"], jiff::Timestamp::now(), &zone) {
            text.push_str(&format!("{line}\n"));
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
