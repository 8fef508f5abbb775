//! Retention (SPEC 6.3): set N is `base[N].4BK` and `base[N-1].4BL`, every
//! segment; only exact base-name matches count; the lowest numbers go first.

use std::path::{Path, PathBuf};

use sauve_archive::{ArchiveName, SetKind};

use crate::actors::workers::messages::Retained;

/// Deletes the oldest sets of `base` in `destination` until `keep` remain.
pub(crate) fn apply(destination: &Path, base: &str, keep: usize) -> Result<Retained, String> {
    let entries = std::fs::read_dir(destination)
        .map_err(|e| format!("cannot list {}: {e}", destination.display()))?;
    let mut files: Vec<(ArchiveName, PathBuf)> = Vec::new();
    for e in entries.flatten() {
        if let Some(a) = ArchiveName::parse(&e.file_name().to_string_lossy())
            && !a.part
            && a.base == base
        {
            files.push((a, e.path()));
        }
    }
    let mut numbers: Vec<u32> = files
        .iter()
        .filter(|(a, _)| a.kind == SetKind::Backup)
        .map(|(a, _)| a.number)
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    let excess = numbers.len().saturating_sub(keep);
    let doomed: Vec<u32> = numbers[..excess].to_vec();
    let mut deleted = Vec::new();
    for (a, path) in &files {
        let in_set = match a.kind {
            SetKind::Backup => doomed.contains(&a.number),
            SetKind::Log => doomed.iter().any(|n| n.checked_sub(1) == Some(a.number)),
        };
        if in_set {
            std::fs::remove_file(path)
                .map_err(|e| format!("cannot delete {}: {e}", path.display()))?;
            deleted.push(path.clone());
        }
    }
    deleted.sort();
    Ok(Retained {
        numbers: doomed,
        files: deleted,
    })
}
