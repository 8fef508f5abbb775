//! `sauve journal`.

use std::path::Path;

use crate::settings::app_dir;
use crate::{Failure, Io};

pub(crate) fn show(
    app: &Path,
    tail: Option<usize>,
    json: bool,
    io: &mut Io<'_>,
) -> Result<(), Failure> {
    let app = app_dir(app)?;
    let logs = sauve_journal::journal_dir(&app);
    let mut entries = sauve_journal::read_all(&logs).map_err(|e| Failure::failed(e.to_string()))?;
    if let Some(n) = tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    if json {
        let text = serde_json::to_string_pretty(&entries)
            .map_err(|e| Failure::failed(format!("cannot render JSON: {e}")))?;
        io.out(&format!("{text}\n"));
        return Ok(());
    }
    if entries.is_empty() {
        io.err(&format!(
            "no Backup Journal entries in {}\n",
            logs.display()
        ));
        return Ok(());
    }
    let text: String = entries.iter().map(|e| e.render(true)).collect();
    io.out(&text);
    Ok(())
}

/// `sauve log show FILE`.
pub(crate) fn show_log(file: &Path, json: bool, io: &mut Io<'_>) -> Result<(), Failure> {
    let log = sauve_logfile::read_log(file).map_err(|e| match e {
        sauve_logfile::LogError::NotALog { .. } => Failure::usage(e.to_string()),
        e => Failure::failed(e.to_string()),
    })?;
    let created = jiff::Timestamp::from_nanosecond(i128::from(log.header.created))
        .map(|t| t.to_string())
        .unwrap_or_default();
    let identity: String = log
        .header
        .identity
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let tail = match log.tail {
        sauve_logfile::Tail::Clean => serde_json::json!("clean"),
        sauve_logfile::Tail::Torn { offset } => serde_json::json!({ "torn": offset }),
        sauve_logfile::Tail::Corrupt { offset } => serde_json::json!({ "corrupt": offset }),
    };
    let mut offset = sauve_logfile::HEADER_LEN as u64;
    let mut records = Vec::new();
    for r in &log.records {
        records.push(serde_json::json!({"seq": r.seq, "offset": offset, "size": r.payload.len()}));
        offset += (sauve_logfile::RECORD_HEADER_LEN + r.payload.len()) as u64;
    }
    if json {
        let v = serde_json::json!({
            "header": {"identity": identity, "first_sequence": log.header.first_sequence, "created": created},
            "records": records,
            "tail": tail,
        });
        let text = serde_json::to_string_pretty(&v).map_err(|e| Failure::failed(e.to_string()))?;
        io.out(&format!("{text}\n"));
        return Ok(());
    }
    let mut text = format!(
        "{}: created {created}, identity {identity}, first sequence {}\n",
        file.display(),
        log.header.first_sequence
    );
    text.push_str(&format!(
        "{:>12}  {:>12}  {:>10}\n",
        "SEQUENCE", "OFFSET", "SIZE"
    ));
    for r in &records {
        text.push_str(&format!(
            "{:>12}  {:>12}  {:>10}\n",
            r["seq"], r["offset"], r["size"]
        ));
    }
    text.push_str(&format!(
        "{} records; end: {}\n",
        records.len(),
        match log.tail {
            sauve_logfile::Tail::Clean => "clean".to_owned(),
            sauve_logfile::Tail::Torn { offset } =>
                format!("torn record at byte {offset} (a crash mid-append; ignored)"),
            sauve_logfile::Tail::Corrupt { offset } =>
                format!("DAMAGED at byte {offset}: records after it cannot be trusted"),
        }
    ));
    io.out(&text);
    Ok(())
}
