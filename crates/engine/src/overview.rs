//! What a person looks at before and after a backup (behaviour §15, §18): the
//! destination with its space, and what a backup would hold now (the MSC's
//! "Contents of the backup file"). Read-only views; the page and
//! `sauve status` show them, nothing here changes a file.

use std::path::{Path, PathBuf};

use sauve_settings::{AppLayout, Destination, Settings, resolve_path};

/// The destination folder and its space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationUsage {
    /// The folder, resolved against the app folder (a bucket's URL).
    pub path: PathBuf,
    /// The app's records of it (the history of its sets and of their
    /// off-site copies): the folder itself, or
    /// `APP/Logs/Destinations/…` for a bucket.
    pub records: PathBuf,
    /// What is at that path now.
    pub state: DestinationState,
    /// Bytes available to this user on its file system.
    pub free_bytes: Option<u64>,
    /// The file system's size.
    pub total_bytes: Option<u64>,
    /// Bytes of this app's sets (`.4BK`, `.4BL`) in the folder.
    pub used_by_app: u64,
}

/// A size as people read it: `512 B`, `1.5 KiB`, `700 MiB`, `3.0 GiB`
/// (one decimal below 10), for the CLI and the page alike.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    if v < 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

/// What the destination path holds now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestinationState {
    /// A folder.
    Folder,
    /// Nothing yet: the first backup creates it.
    Missing,
    /// Something that is not a folder: backups fail with 1407.
    NotAFolder,
    /// A bucket prefix (`s3://…`, behaviour §19): `path` is the URL; its space
    /// and the sets' size are the store's, not read by this view.
    Store,
}

/// The destination of `app`'s settings and its space. Reads the folder:
/// call it off async threads.
pub fn destination_usage(app: &Path) -> Result<DestinationUsage, crate::EngineError> {
    let effective = sauve_settings::load_effective(app)?;
    let written = &effective.doc.settings().general.destination_folder;
    let destination =
        sauve_settings::resolve_destination_to_read(app, written).map_err(|source| {
            crate::EngineError::DestinationPath {
                written: written.clone(),
                source,
            }
        })?;
    let path = match destination {
        Destination::Folder(path) => path,
        // Nothing is asked of the store here: this view reads local files.
        Destination::Store { url, records } => {
            return Ok(DestinationUsage {
                path: PathBuf::from(url),
                records,
                state: DestinationState::Store,
                free_bytes: None,
                total_bytes: None,
                used_by_app: 0,
            });
        }
    };
    let base = AppLayout::discover(app).map(|l| l.base_name()).ok();
    let used_by_app = std::fs::read_dir(&path)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    sauve_archive::ArchiveName::parse(&e.file_name().to_string_lossy())
                        .is_some_and(|a| Some(&a.base) == base.as_ref())
                })
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    // The space of the folder, or of its nearest existing parent before
    // the first backup creates it.
    let existing = path.ancestors().find(|p| p.is_dir());

    let (free_bytes, total_bytes) = existing.map_or((None, None), space);
    // Without a trailing `/`, which would make a file read as missing.
    let bare: PathBuf = path.components().collect();
    let state = match std::fs::metadata(&bare) {
        Ok(m) if m.is_dir() => DestinationState::Folder,
        Ok(_) => DestinationState::NotAFolder,
        Err(_) => DestinationState::Missing,
    };
    Ok(DestinationUsage {
        state,
        records: path.clone(),
        path,
        free_bytes,
        total_bytes,
        used_by_app,
    })
}

fn space(path: &Path) -> (Option<u64>, Option<u64>) {
    let Ok(f) = std::fs::File::open(path) else {
        return (None, None);
    };
    match rustix::fs::fstatvfs(&f) {
        Ok(s) => (
            Some(s.f_bavail.saturating_mul(s.f_frsize)),
            Some(s.f_blocks.saturating_mul(s.f_frsize)),
        ),
        Err(_) => (None, None),
    }
}

/// What a part of a backup is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentPart {
    /// The project files (`Project/`, `Settings/`).
    Structure,
    /// The data file.
    DataFile,
    /// The log file (`.journal`).
    Log,
    /// An attachment of `General/IncludesFiles`.
    Attachment,
}

/// One part of what a backup would hold now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentItem {
    /// Which part.
    pub part: ContentPart,
    /// Where it is (for an attachment, as resolved; `written` is the text).
    pub path: PathBuf,
    /// As the settings write it (attachments), else the path's text.
    pub written: String,
    /// Whether it is there.
    pub found: bool,
    /// Its size, for a file.
    pub size: Option<u64>,
    /// Why a missing part matters, or how it is treated.
    pub note: Option<String>,
}

/// The MSC's "Contents of the backup file": what the settings include and
/// whether each part is found, without walking folders (cheap enough for
/// every page view).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentSummary {
    /// Structure, data file, log, then the attachments in settings order.
    pub items: Vec<ContentItem>,
}

impl ContentSummary {
    /// Whether a backup now would be partial (-43): an attachment is missing.
    pub fn is_partial(&self) -> bool {
        self.items
            .iter()
            .any(|i| i.part == ContentPart::Attachment && !i.found)
    }
}

/// What a backup of `layout` with `settings` would hold now.
pub(crate) fn describe(layout: &AppLayout, settings: &Settings) -> ContentSummary {
    let mut items = Vec::new();
    let meta = |p: &Path| std::fs::symlink_metadata(p).ok();
    if settings.general.include_structure_file {
        let project = layout.app.join("Project");
        items.push(ContentItem {
            part: ContentPart::Structure,
            found: project.is_dir(),
            written: project.display().to_string(),
            path: project,
            size: None,
            note: None,
        });
    }
    if settings.general.include_data_file {
        let m = meta(&layout.data_file);
        items.push(ContentItem {
            part: ContentPart::DataFile,
            found: m.as_ref().is_some_and(std::fs::Metadata::is_file),
            written: layout.data_file.display().to_string(),
            path: layout.data_file.clone(),
            size: m.map(|m| m.len()),
            note: None,
        });
        let log = meta(&layout.log_file);
        let declared = settings.legacy.journal_file_enabled == Some(true);
        items.push(ContentItem {
            part: ContentPart::Log,
            found: log.is_some(),
            written: layout.log_file.display().to_string(),
            path: layout.log_file.clone(),
            size: log.map(|m| m.len()),
            note: match (layout.log_file.exists(), declared) {
                (false, true) => {
                    Some("JournalFileEnabled is True: a backup now fails with 1403".to_owned())
                }
                (false, false) => Some("the app keeps no log file".to_owned()),
                _ => None,
            },
        });
    }
    for written in &settings.general.includes_files {
        let item = match resolve_path(&layout.app, written) {
            Ok(r) => {
                let m = meta(&r.path);
                ContentItem {
                    part: ContentPart::Attachment,
                    found: m.is_some(),
                    size: m.filter(std::fs::Metadata::is_file).map(|m| m.len()),
                    path: r.path,
                    written: written.clone(),
                    note: None,
                }
            }
            Err(e) => ContentItem {
                part: ContentPart::Attachment,
                found: false,
                path: PathBuf::from(written),
                written: written.clone(),
                size: None,
                note: Some(e.to_string()),
            },
        };
        items.push(item);
    }
    ContentSummary { items }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(734_003_200), "700 MiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn the_contents_name_each_part_and_whether_it_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("App");
        std::fs::create_dir_all(app.join("Project")).unwrap();
        std::fs::create_dir_all(app.join("Data")).unwrap();
        std::fs::write(app.join("Data/data.4DD"), b"12345").unwrap();
        std::fs::write(app.join("notes.txt"), b"x").unwrap();
        let layout = AppLayout::discover(&app).unwrap();
        let mut settings = Settings::default();
        settings.general.include_structure_file = true;
        settings.general.include_data_file = true;
        settings.general.includes_files = vec!["notes.txt".into(), "gone.txt".into()];
        let c = describe(&layout, &settings);
        let parts: Vec<_> = c.items.iter().map(|i| (i.part, i.found)).collect();
        assert_eq!(
            parts,
            [
                (ContentPart::Structure, true),
                (ContentPart::DataFile, true),
                (ContentPart::Log, false),
                (ContentPart::Attachment, true),
                (ContentPart::Attachment, false),
            ]
        );
        assert_eq!(c.items[1].size, Some(5));
        assert_eq!(
            c.items[2].note.as_deref(),
            Some("the app keeps no log file")
        );
        assert!(c.is_partial());
        settings.general.includes_files.pop();
        settings.legacy.journal_file_enabled = Some(true);
        let c = describe(&layout, &settings);
        assert!(!c.is_partial());
        assert!(c.items[2].note.as_deref().unwrap().contains("1403"));
    }

    #[test]
    fn the_destination_space_is_read_before_the_folder_exists() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("App");
        std::fs::create_dir_all(app.join("Data")).unwrap();
        std::fs::write(app.join("Data/data.4DD"), b"1").unwrap();
        let d = destination_usage(&app).unwrap();
        assert_eq!(d.state, DestinationState::Missing);
        std::fs::write(dir.path().join("Backups"), "a file").unwrap();
        assert_eq!(
            destination_usage(&app).unwrap().state,
            DestinationState::NotAFolder
        );
        assert!(d.free_bytes.is_some() && d.total_bytes >= d.free_bytes);
        assert_eq!(d.used_by_app, 0);
    }
}
