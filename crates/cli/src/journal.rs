//! `sauve journal`.

use std::path::Path;

use crate::report::{Failure, Io};
use crate::settings::app_dir;

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
