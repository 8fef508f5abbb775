//! The log at a data backup (behaviour §14.2): cut it under the data lock into a
//! pending segment, and build the `.4BL` from every pending segment.

use sauve_durable::fault::{Step, point};
use sauve_number::BackupNumber;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sauve_archive::{
    ArchiveWriter, EntryKind, EntryType, ManifestHeader, PendingSet, SetSpec, SetTarget,
    SourceEntry,
};
use sauve_logfile::{Durability, Header, LogError, LogWriter, encode_record, read_log};

use crate::error::EngineError;

/// Whether `path` holds a sauve log (4D's own journal format does not).
pub(crate) fn is_sauve_log(path: &Path) -> bool {
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| &head == sauve_logfile::MAGIC)
}

/// `<log stem>[MMMM-KKKK].journal`, and its parse.
fn pending_name(stem: &str, number: BackupNumber, k: u32) -> String {
    format!("{stem}[{}-{k:04}].journal", number.text())
}

fn parse_pending(name: &str, stem: &str) -> Option<(BackupNumber, u32)> {
    let inner = name
        .strip_prefix(stem)?
        .strip_prefix('[')?
        .strip_suffix("].journal")?;
    let (m, k) = inner.split_once('-')?;
    Some((BackupNumber::new(m.parse().ok()?), k.parse().ok()?))
}

/// The pending segments of `stem` in `dir`, oldest first.
pub(crate) fn pending_segments(dir: &Path, stem: &str) -> Vec<PathBuf> {
    let mut found: Vec<((BackupNumber, u32), PathBuf)> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    parse_pending(&name, stem).map(|key| (key, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// What cutting the log gave.
pub(crate) struct Cut {
    /// The last sequence of the cut log (the data's `lastLogSequence`).
    pub(crate) last_sequence: Option<u64>,
    /// The new log's size and mtime, for its entry in the archive.
    pub(crate) size: u64,
    pub(crate) mtime: i64,
}

/// Cuts the log: the host's writer if given, else the file itself.
pub(crate) fn cut(
    log: &Path,
    previous_number: BackupNumber,
    writer: Option<&Arc<LogWriter>>,
) -> Result<Cut, LogError> {
    let dir = log.parent().unwrap_or(Path::new("."));
    let stem = log
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let taken = pending_segments(dir, &stem)
        .iter()
        .filter_map(|p| parse_pending(&p.file_name()?.to_string_lossy(), &stem))
        .filter(|(m, _)| *m == previous_number)
        .map(|(_, k)| k)
        .max()
        .unwrap_or(0);
    let pending = dir.join(pending_name(&stem, previous_number, taken + 1));
    let last = match writer {
        Some(w) => w.rotate(&pending),
        None => LogWriter::open(log, Durability::EveryAppend).and_then(|w| w.rotate(&pending)),
    }?;
    let meta = std::fs::metadata(log).map_err(|source| LogError::Io {
        action: "read",
        path: log.to_path_buf(),
        source,
    })?;
    Ok(Cut {
        last_sequence: last,
        size: meta.len(),
        mtime: sauve_durable::mtime_ns(&meta),
    })
}

/// A `.4BL` ready to commit, and the segments it holds.
pub(crate) struct LogBackup {
    pub(crate) pending: PendingSet,
    pub(crate) segments: Vec<PathBuf>,
    pub(crate) notes: Vec<String>,
}

/// Builds `base[number].4BL` from every pending segment: one
/// `Data/<log name>` holding their records in order under one header.
/// Stop (`stop`) ends it at once, as it ends the `.4BK` (behaviour §8.1):
/// between two reads of the log, and without waiting for a frame being
/// compressed; nothing of it is left.
pub(crate) fn build(
    log: &Path,
    (spec, header): (SetSpec, ManifestHeader),
    target: Box<dyn SetTarget>,
    (scratch, ended): (&Path, jiff::Timestamp),
    stop: sauve_locking::CancellationToken,
) -> Result<Option<LogBackup>, EngineError> {
    let stopped = move || stop.is_cancelled() || sauve_durable::fault::stop_requested();
    let dir = log.parent().unwrap_or(Path::new("."));
    let stem = log
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let segments = pending_segments(dir, &stem);
    if segments.is_empty() {
        return Ok(None);
    }
    let mut notes = Vec::new();
    let tmp = scratch.join(sauve_archive::log_gathering_name(&spec.base, spec.number));
    let mut out = Vec::new();
    let mut first: Option<(Header, u64)> = None;
    let mut last = None;
    for s in &segments {
        if stopped() {
            return Err(EngineError::Stopped);
        }
        let contents = read_log(s)?;
        if let sauve_logfile::Tail::Corrupt { offset } = contents.tail {
            notes.push(format!(
                "{} is damaged at byte {offset}; the records before it are in the log backup",
                s.display()
            ));
        }
        if first.is_none() {
            first = Some((contents.header, contents.header.first_sequence));
        }
        for r in &contents.records {
            out.extend_from_slice(&encode_record(r));
            last = Some(r.seq);
        }
    }
    let Some((h, first_sequence)) = first else {
        return Ok(None);
    };
    let header = ManifestHeader {
        first_sequence: Some(first_sequence),
        last_sequence: last,
        ..header
    };
    // The gathered log is in the current version whatever its segments'
    // (a version-1 segment's records keep no time).
    let header_bytes = Header::new(h.identity, first_sequence, h.created).encode();
    let mut bytes = header_bytes.to_vec();
    bytes.extend_from_slice(&out);
    point(Step::Write, &tmp)
        .and_then(|()| std::fs::write(&tmp, &bytes))
        .map_err(EngineError::io("write", &tmp))?;
    let mut progress = Stoppable(Box::new(stopped.clone()));
    let result = (|| {
        let mut writer = ArchiveWriter::create_into(spec, header.clone(), target)?;
        writer.stop_when(stopped);
        let entry = SourceEntry {
            kind: EntryKind::Log,
            source: tmp.clone(),
            path: format!(
                "Data/{}",
                log.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
            entry_type: EntryType::File,
            size: bytes.len() as u64,
            mode: 0o644,
            mtime: header.started_at.as_nanosecond() as i64,
            target: None,
        };
        writer.append(&entry, &mut progress)?;
        writer.finish(ended)
    })();
    if point(Step::Unlink, &tmp).is_ok() {
        let _ = std::fs::remove_file(&tmp);
    }
    let pending = result.map_err(|source| match source {
        sauve_archive::ArchiveError::Stopped => EngineError::Stopped,
        source => EngineError::LogBackup { source },
    })?;
    Ok(Some(LogBackup {
        pending,
        segments,
        notes,
    }))
}

/// The progress of a log backup: nothing to show, only Stop to ask.
struct Stoppable(Box<dyn Fn() -> bool + Send>);

impl sauve_archive::Progress for Stoppable {
    fn is_stopped(&self) -> bool {
        (self.0)()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sauve_archive::{FolderTarget, SetKind, open_real_file};
    use sauve_settings::Compression;

    /// A log of `records` records, cut once: one pending segment beside it.
    fn cut_log(dir: &Path, records: usize) -> PathBuf {
        let log = dir.join("App.journal");
        let w = LogWriter::create(&log, [7; 16], 1, Durability::EveryAppend).unwrap();
        for i in 0..records {
            w.append(format!("record {i}").as_bytes()).unwrap();
        }
        drop(w);
        cut(&log, 1.into(), None).unwrap();
        log
    }

    fn log_set(
        dir: &Path,
        log: &Path,
        stop: sauve_locking::CancellationToken,
    ) -> Result<Option<LogBackup>, EngineError> {
        let spec = SetSpec {
            destination: dir.join("bk"),
            base: "App".to_owned(),
            number: 1.into(),
            kind: SetKind::Log,
            compression: Compression::Compact,
            segment_size: 0,
            threads: 1,
        };
        let header = ManifestHeader::new(SetKind::Log, 1, "App", jiff::Timestamp::UNIX_EPOCH);
        build(
            log,
            (spec, header),
            Box::new(FolderTarget::new(open_real_file())),
            (dir, jiff::Timestamp::UNIX_EPOCH),
            stop,
        )
    }

    #[test]
    fn a_log_backup_asked_to_stop_ends_stopped_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bk")).unwrap();
        let log = cut_log(dir.path(), 100);
        let stop = sauve_locking::CancellationToken::new();
        stop.cancel();
        let e = log_set(dir.path(), &log, stop).err().unwrap();
        assert!(matches!(e, EngineError::Stopped), "{e}");
        assert_eq!(e.status(), sauve_status::Status::Stopped);
        assert_eq!(std::fs::read_dir(dir.path().join("bk")).unwrap().count(), 0);
        // The pending segment stays for the next log backup.
        assert_eq!(pending_segments(dir.path(), "App").len(), 1);
        // Not asked to stop, the same log backup is built.
        let built = log_set(dir.path(), &log, sauve_locking::CancellationToken::new())
            .unwrap()
            .unwrap();
        assert_eq!(built.pending.manifest().header.last_sequence, Some(100));
    }
}
