//! Archive file names (behaviour §6.2): `base[NNNN].4BK`, segments
//! `base[NNNN-SSSS].4BK`, log backups `.4BL`, in-progress files `.part`.

use sauve_number::BackupNumber;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::ArchiveError;
use crate::kind::SetKind;

/// One archive file name, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveName {
    /// The base name: the data file's stem.
    pub base: String,
    /// The backup number (for a `.4BL`, the previous backup's number).
    pub number: BackupNumber,
    /// The segment number, from 1, when the set is segmented.
    pub segment: Option<u32>,
    /// Backup or log.
    pub kind: SetKind,
    /// An in-progress `.part` file.
    pub part: bool,
}

/// The temporary file a log backup of `base[number]` gathers its records
/// in before archiving them: `.base[NNNN].4BL-log.tmp` in the destination.
/// A run killed meanwhile leaves it; [`crate::remove_stale_parts`] removes
/// it with the `.part` files.
pub fn log_gathering_name(base: &str, number: BackupNumber) -> String {
    format!(".{base}[{}].4BL-log.tmp", number.text())
}

/// Whether `name` is a [`log_gathering_name`] of `base`.
pub(crate) fn is_log_gathering_of(name: &str, base: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_prefix(base))
        .and_then(|n| n.strip_prefix('['))
        .and_then(|n| n.strip_suffix("].4BL-log.tmp"))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

impl fmt::Display for ArchiveName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}", self.base, self.number.text())?;
        if let Some(s) = self.segment {
            write!(f, "-{s:04}")?;
        }
        write!(f, "].{}", self.kind.extension())?;
        if self.part {
            f.write_str(".part")?;
        }
        Ok(())
    }
}

impl ArchiveName {
    /// Parses `base[NNNN].4BK`, `base[NNNN-SSSS].4BL`, with an optional `.part`.
    pub fn parse(file_name: &str) -> Option<ArchiveName> {
        let (rest, part) = match file_name.strip_suffix(".part") {
            Some(r) => (r, true),
            None => (file_name, false),
        };
        let (rest, kind) = if let Some(r) = rest.strip_suffix(".4BK") {
            (r, SetKind::Backup)
        } else if let Some(r) = rest.strip_suffix(".4BL") {
            (r, SetKind::Log)
        } else {
            return None;
        };
        let inner = rest.strip_suffix(']')?;
        let open = inner.rfind('[')?;
        let base = &inner[..open];
        let numbers = &inner[open + 1..];
        let (number, segment) = match numbers.split_once('-') {
            Some((n, s)) => (n, Some(s)),
            None => (numbers, None),
        };
        let digits = |t: &str, min: usize| -> Option<u32> {
            (t.len() >= min && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse().ok())
                .flatten()
        };
        if base.is_empty() {
            return None;
        }
        let segment = match segment {
            Some(s) => Some(digits(s, 4).filter(|s| *s >= 1)?),
            None => None,
        };
        Some(ArchiveName {
            base: base.to_owned(),
            number: BackupNumber::new(digits(number, 4)?),
            segment,
            kind,
            part: false,
        })
        .map(|mut n| {
            n.part = part;
            n
        })
    }
}

/// The first segment missing from `segments` (sorted numbers, from 1) of
/// the set `set_name`, named; `None` when they run 1, 2, 3… without a gap.
pub(crate) fn first_missing_segment(
    set_name: &ArchiveName,
    segments: &[u32],
) -> Option<ArchiveName> {
    let gap = segments
        .iter()
        .enumerate()
        .find(|(i, s)| **s != *i as u32 + 1)
        .map(|(i, _)| i as u32 + 1)?;
    Some(ArchiveName {
        segment: Some(gap),
        ..set_name.clone()
    })
}

/// A complete set on disk: its files in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetFiles {
    /// The folder holding the set.
    pub dir: PathBuf,
    /// Base, number and kind (segment and part unset).
    pub name: ArchiveName,
    /// The files, in order: one, or segments 1, 2, 3…
    pub files: Vec<PathBuf>,
}

impl SetFiles {
    /// The set's display name without segment: `base[NNNN].4BK`.
    pub fn display_name(&self) -> String {
        ArchiveName {
            segment: None,
            part: false,
            ..self.name.clone()
        }
        .to_string()
    }

    /// The default restore folder: next to the archive, named `base[NNNN]`.
    pub fn default_restore_dir(&self) -> PathBuf {
        self.dir
            .join(format!("{}[{}]", self.name.base, self.name.number.text()))
    }

    /// Finds a set from any of its segment paths, its unsegmented path, or
    /// `base[NNNN]` (meaning the `.4BK`). A gap in the segments is an error
    /// naming the missing one (1410).
    pub fn locate(path: &Path) -> Result<SetFiles, ArchiveError> {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = ArchiveName::parse(&file_name)
            .or_else(|| ArchiveName::parse(&format!("{file_name}.4BK")))
            .filter(|n| !n.part)
            .ok_or_else(|| ArchiveError::NotAnArchiveName {
                path: path.to_owned(),
            })?;
        let single = dir.join(
            ArchiveName {
                segment: None,
                ..name.clone()
            }
            .to_string(),
        );
        let set_name = ArchiveName {
            segment: None,
            part: false,
            ..name.clone()
        };
        if name.segment.is_none() && single.is_file() {
            return Ok(SetFiles {
                dir,
                name: set_name,
                files: vec![single],
            });
        }
        // Segmented: collect every segment of this base, number and kind.
        let entries = std::fs::read_dir(&dir).map_err(|source| ArchiveError::Missing {
            kind: name.kind,
            what: format!("{}: {source}", dir.display()),
        })?;
        let mut segments: Vec<u32> = Vec::new();
        for entry in entries.flatten() {
            let n = entry.file_name().to_string_lossy().into_owned();
            if let Some(a) = ArchiveName::parse(&n)
                && !a.part
                && a.base == name.base
                && a.number == name.number
                && a.kind == name.kind
                && let Some(s) = a.segment
            {
                segments.push(s);
            }
        }
        segments.sort_unstable();
        if segments.is_empty() {
            return Err(ArchiveError::Missing {
                kind: name.kind,
                what: format!("{} not found", dir.join(set_name.to_string()).display()),
            });
        }
        if let Some(missing) = first_missing_segment(&set_name, &segments) {
            return Err(ArchiveError::Missing {
                kind: name.kind,
                what: format!(
                    "segment {} not found",
                    dir.join(missing.to_string()).display()
                ),
            });
        }
        let mut files = Vec::with_capacity(segments.len());
        for s in &segments {
            files.push(
                dir.join(
                    ArchiveName {
                        segment: Some(*s),
                        ..set_name.clone()
                    }
                    .to_string(),
                ),
            );
        }
        Ok(SetFiles {
            dir,
            name: set_name,
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for text in [
            "data[0042].4BK",
            "data[0041].4BL",
            "my [odd] name[0001-0003].4BK",
            "data[12345].4BK",
            "data[0007].4BK.part",
        ] {
            let n = ArchiveName::parse(text).unwrap();
            assert_eq!(n.to_string(), text);
        }
        let n = ArchiveName::parse("my [odd] name[0001-0003].4BK").unwrap();
        assert_eq!(
            (n.base.as_str(), n.number, n.segment),
            ("my [odd] name", 1.into(), Some(3))
        );
    }

    #[test]
    fn non_archive_names_are_refused() {
        for text in [
            "data.4BK",
            "data[42].4BK",
            "[0001].4BK",
            "data[0001-0000].4BK",
            "data[0001].zip",
            "data[00a1].4BK",
        ] {
            assert_eq!(ArchiveName::parse(text), None, "{text}");
        }
    }
}
