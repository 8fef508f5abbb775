//! Content resolution: what a backup holds, from the settings and the app
//! layout (behaviour §5 and §6.1). The engine's attachment resolver actor
//! runs this; the writer streams its result.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sauve_settings::{AppLayout, Settings, resolve_path};

use crate::error::ArchiveError;
use crate::manifest::{EntryKind, EntryType};

/// The name prefix of the folders (`<prefix><pid>-…`, beside the data
/// file) where the engine clones the data-kind files under the data lock
/// (behaviour §21.3): never stored, removed once their process is gone.
pub const CLONE_FOLDER_PREFIX: &str = ".sauve-clone-";

/// Whether `name` is a clone folder's: the prefix, then `<pid>-<number>`.
fn is_clone_folder(name: &str) -> bool {
    name.strip_prefix(CLONE_FOLDER_PREFIX)
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(pid, n)| {
            [pid, n]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// One file, folder or symlink to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceEntry {
    /// Where it comes from.
    pub kind: EntryKind,
    /// The absolute path on disk.
    pub source: PathBuf,
    /// The path inside the archive (`/`-separated, relative).
    pub path: String,
    /// File, folder or symlink.
    pub entry_type: EntryType,
    /// Size in bytes at resolution time (files only).
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime: i64,
    /// Link target (symlinks only).
    pub target: Option<PathBuf>,
}

/// An attachment of the settings and whether it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// As written in the settings.
    pub written: String,
    /// Resolved against the app folder, when it could be.
    pub path: Option<PathBuf>,
    /// Found on disk.
    pub found: bool,
    /// Why it was not found, when it was not.
    pub reason: Option<String>,
}

/// Something that exists but is not stored, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The path on disk.
    pub path: PathBuf,
    /// Why: a FIFO, a socket, a device, a name that is not UTF-8, the destination.
    pub reason: String,
}

/// What a backup holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Content {
    /// Entries in stream order: data kinds, attachments inside the data folder
    /// (copied under the data lock, O-11), structure, other attachments.
    pub entries: Vec<SourceEntry>,
    /// Every attachment of the settings, in settings order.
    pub attachments: Vec<Attachment>,
    /// What was passed over, for the journal.
    pub skipped: Vec<Skipped>,
}

impl Content {
    /// Bytes of file content.
    pub fn total_bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// Whether any attachment was not found (the backup is then partial, -43).
    pub fn is_partial(&self) -> bool {
        self.attachments.iter().any(|a| !a.found)
    }

    /// How many leading entries belong to the data phase (data kinds and
    /// attachments inside the data folder).
    pub fn data_phase_len(&self, layout: &AppLayout) -> usize {
        let data_dir = layout.app.join("Data");
        self.entries
            .iter()
            .take_while(|e| {
                e.kind.is_data()
                    || (e.kind == EntryKind::Attachment && e.source.starts_with(&data_dir))
            })
            .count()
    }
}

/// Resolves what a backup of `layout` with `settings` holds. `destination`
/// is never walked into. A missing attachment is reported, not an error; a
/// missing data file is (1409).
pub fn resolve_content(
    layout: &AppLayout,
    settings: &Settings,
    destination: &Path,
) -> Result<Content, ArchiveError> {
    let mut w = Walker {
        destination: destination.to_path_buf(),
        skipped: Vec::new(),
    };
    let app = &layout.app;
    let mut data = Vec::new();
    let mut structure = Vec::new();
    let mut data_attachments = Vec::new();
    let mut attachments_out = Vec::new();
    if settings.general.include_data_file {
        w.data_kinds(layout, &mut data)?;
    }
    if settings.general.include_structure_file {
        w.structure(app, &mut structure)?;
    }
    let data_dir = app.join("Data");
    let mut attachments = Vec::new();
    for written in &settings.general.includes_files {
        let out = AttachmentsOut {
            data_dir: &data_dir,
            in_data: &mut data_attachments,
            other: &mut attachments_out,
        };
        attachments.push(w.attachment(app, written, out)?);
    }
    Ok(Content {
        entries: in_stream_order([data, data_attachments, structure, attachments_out]),
        attachments,
        skipped: w.skipped,
    })
}

/// The entries of each group sorted by path, the groups one after the
/// other, each path once.
fn in_stream_order(groups: [Vec<SourceEntry>; 4]) -> Vec<SourceEntry> {
    let mut entries = Vec::new();
    for mut group in groups {
        group.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        group.dedup_by(|a, b| a.path == b.path);
        for e in group {
            // An attachment listed twice, or inside another one, is stored once.
            if !entries.iter().any(|x: &SourceEntry| x.path == e.path) {
                entries.push(e);
            }
        }
    }
    entries
}

/// Where an attachment's entries go: those inside the data folder are
/// copied under the data lock (O-11), the others after the structure.
struct AttachmentsOut<'a> {
    data_dir: &'a Path,
    in_data: &'a mut Vec<SourceEntry>,
    other: &'a mut Vec<SourceEntry>,
}

/// `Attachments/<absolute path minus its leading '/'>`.
fn attachment_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    format!("Attachments/{}", text.trim_start_matches('/'))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

struct Walker {
    destination: PathBuf,
    skipped: Vec<Skipped>,
}

impl Walker {
    /// The data kinds: the data file (which must be there), `Data/Settings`
    /// and the log file when they are.
    fn data_kinds(
        &mut self,
        layout: &AppLayout,
        data: &mut Vec<SourceEntry>,
    ) -> Result<(), ArchiveError> {
        let meta = std::fs::symlink_metadata(&layout.data_file)
            .map_err(|_| ArchiveError::DataFileMissing(layout.data_file.clone()))?;
        if !meta.is_file() {
            return Err(ArchiveError::DataFileMissing(layout.data_file.clone()));
        }
        self.add(
            &layout.data_file,
            &meta,
            format!("Data/{}", file_name(&layout.data_file)),
            EntryKind::Data,
            data,
        )?;
        self.walk_if_exists(
            &layout.app.join("Data/Settings"),
            "Data/Settings",
            EntryKind::DataSettings,
            data,
        )?;
        if let Ok(meta) = std::fs::symlink_metadata(&layout.log_file) {
            self.add(
                &layout.log_file,
                &meta,
                format!("Data/{}", file_name(&layout.log_file)),
                EntryKind::Log,
                data,
            )?;
        }
        Ok(())
    }

    /// The structure: `Project` and `Settings`, when they are.
    fn structure(
        &mut self,
        app: &Path,
        structure: &mut Vec<SourceEntry>,
    ) -> Result<(), ArchiveError> {
        self.walk_if_exists(
            &app.join("Project"),
            "Project",
            EntryKind::Structure,
            structure,
        )?;
        self.walk_if_exists(
            &app.join("Settings"),
            "Settings",
            EntryKind::StructureSettings,
            structure,
        )
    }

    /// One attachment as `written` in the settings: its entries added to
    /// `out`, and whether it was found (and if not, why). An attachment
    /// that holds the app folder is an error.
    fn attachment(
        &mut self,
        app: &Path,
        written: &str,
        out: AttachmentsOut<'_>,
    ) -> Result<Attachment, ArchiveError> {
        let path = match resolve_path(app, written) {
            Ok(r) => r.path,
            Err(e) => {
                return Ok(Attachment {
                    written: written.to_owned(),
                    path: None,
                    found: false,
                    reason: Some(e.to_string()),
                });
            }
        };
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                return Ok(Attachment {
                    written: written.to_owned(),
                    path: Some(path),
                    found: false,
                    reason: Some(e.to_string()),
                });
            }
        };
        if app.starts_with(&path) {
            return Err(ArchiveError::AttachmentContainsApp {
                attachment: path,
                app: app.to_path_buf(),
            });
        }
        let out = if path.starts_with(out.data_dir) {
            out.in_data
        } else {
            out.other
        };
        let archive_path = attachment_path(&path);
        if meta.is_dir() {
            self.walk(&path, &archive_path, EntryKind::Attachment, out)?;
        } else {
            self.add(&path, &meta, archive_path, EntryKind::Attachment, out)?;
        }
        Ok(Attachment {
            written: written.to_owned(),
            path: Some(path),
            found: true,
            reason: None,
        })
    }

    fn skip(&mut self, path: &Path, reason: &str) {
        self.skipped.push(Skipped {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        });
    }

    fn walk_if_exists(
        &mut self,
        root: &Path,
        prefix: &str,
        kind: EntryKind,
        out: &mut Vec<SourceEntry>,
    ) -> Result<(), ArchiveError> {
        if std::fs::symlink_metadata(root).is_ok() {
            self.walk(root, prefix, kind, out)?;
        }
        Ok(())
    }

    /// Adds `root` and, for a folder, everything below it.
    fn walk(
        &mut self,
        root: &Path,
        prefix: &str,
        kind: EntryKind,
        out: &mut Vec<SourceEntry>,
    ) -> Result<(), ArchiveError> {
        let meta =
            std::fs::symlink_metadata(root).map_err(ArchiveError::io("cannot read", root))?;
        let mut stack = vec![(root.to_path_buf(), prefix.to_owned(), meta)];
        while let Some((path, archive_path, meta)) = stack.pop() {
            if path == self.destination {
                self.skip(&path, "the backup destination");
                continue;
            }
            let is_dir = meta.is_dir();
            self.add(&path, &meta, archive_path.clone(), kind, out)?;
            if !is_dir {
                continue;
            }
            let entries =
                std::fs::read_dir(&path).map_err(ArchiveError::io("cannot read folder", &path))?;
            for entry in entries {
                let entry = entry.map_err(ArchiveError::io("cannot read folder", &path))?;
                let child = entry.path();
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    self.skip(&child, "its name is not valid UTF-8");
                    continue;
                };
                if is_clone_folder(&name) && entry.file_type().is_ok_and(|t| t.is_dir()) {
                    self.skip(
                        &child,
                        "a working folder of sauve's (clones taken under the data lock)",
                    );
                    continue;
                }
                let meta = std::fs::symlink_metadata(&child)
                    .map_err(ArchiveError::io("cannot read", &child))?;
                stack.push((child, format!("{archive_path}/{name}"), meta));
            }
        }
        Ok(())
    }

    fn add(
        &mut self,
        path: &Path,
        meta: &std::fs::Metadata,
        archive_path: String,
        kind: EntryKind,
        out: &mut Vec<SourceEntry>,
    ) -> Result<(), ArchiveError> {
        let ft = meta.file_type();
        let (entry_type, size, target) = if ft.is_file() {
            (EntryType::File, meta.len(), None)
        } else if ft.is_dir() {
            (EntryType::Dir, 0, None)
        } else if ft.is_symlink() {
            let target =
                std::fs::read_link(path).map_err(ArchiveError::io("cannot read link", path))?;
            if target.to_str().is_none() {
                self.skip(path, "its link target is not valid UTF-8");
                return Ok(());
            }
            (EntryType::Symlink, 0, Some(target))
        } else {
            self.skip(
                path,
                "not a file, folder or symlink (FIFO, socket or device)",
            );
            return Ok(());
        };
        if path.to_str().is_none() {
            self.skip(path, "its name is not valid UTF-8");
            return Ok(());
        }
        // Never a set that restore would refuse (crate::safety): such a
        // file is left out, named, as a missing attachment is. The data
        // file's own name is the app's and always restores.
        if kind != EntryKind::Data
            && let Some(why) = crate::safety::unrestorable_name(&archive_path)
        {
            self.skip(path, &format!("its name cannot be restored ({why})"));
            return Ok(());
        }
        out.push(SourceEntry {
            kind,
            source: path.to_path_buf(),
            path: archive_path,
            entry_type,
            size,
            mode: meta.mode() & 0o7777,
            mtime: sauve_durable::mtime_ns(meta),
            target,
        });
        Ok(())
    }
}
