//! The app folder (behaviour §2): where the data file, the log and the
//! settings are, which settings file wins, and how written paths resolve.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::doc::{Loaded, SettingsDoc};
use crate::error::{Problem, SettingsError};

/// Where the effective settings come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingsSource {
    /// `APP/Data/Settings/backup.4DSettings`, which wins when present.
    DataSettings(PathBuf),
    /// `APP/Settings/backup.4DSettings`.
    StructureSettings(PathBuf),
    /// No file: sauve's built-in defaults.
    Defaults,
}

impl SettingsSource {
    /// The file, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            SettingsSource::DataSettings(p) | SettingsSource::StructureSettings(p) => Some(p),
            SettingsSource::Defaults => None,
        }
    }
}

impl fmt::Display for SettingsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsSource::DataSettings(p) => write!(f, "{} (data settings)", p.display()),
            SettingsSource::StructureSettings(p) => {
                write!(f, "{} (structure settings)", p.display())
            }
            SettingsSource::Defaults => f.write_str(
                "built-in defaults (no Data/Settings/backup.4DSettings or Settings/backup.4DSettings)",
            ),
        }
    }
}

/// The settings file name.
pub const FILE_NAME: &str = "backup.4DSettings";

/// `APP/Settings/backup.4DSettings`, where `settings init` writes.
pub fn structure_settings_path(app: &Path) -> PathBuf {
    app.join("Settings").join(FILE_NAME)
}

/// Applies the precedence of behaviour §2: data settings, then
/// structure settings, then built-in defaults.
pub fn locate(app: &Path) -> SettingsSource {
    let data = app.join("Data").join("Settings").join(FILE_NAME);
    if data.is_file() {
        return SettingsSource::DataSettings(data);
    }
    let structure = structure_settings_path(app);
    if structure.is_file() {
        return SettingsSource::StructureSettings(structure);
    }
    SettingsSource::Defaults
}

/// The effective settings of an app folder.
#[derive(Debug)]
pub struct Effective {
    /// The document (built-in defaults when no file exists).
    pub doc: SettingsDoc,
    /// Where it came from.
    pub source: SettingsSource,
    /// Warnings raised while reading.
    pub warnings: Vec<Problem>,
}

/// Loads the effective settings of `app`.
pub fn load_effective(app: &Path) -> Result<Effective, SettingsError> {
    let source = locate(app);
    let bytes = match source.path() {
        Some(path) => Some(read_settings_file(path)?),
        None => None,
    };
    effective_from(source, bytes.as_deref())
}

/// The bytes of a settings file (`backup.4DSettings` or `sauve.toml`), for
/// callers that read the file themselves: a file over
/// [`MAX_FILE_BYTES`](crate::MAX_FILE_BYTES) is refused
/// ([`SettingsError::TooLarge`]) without being read whole.
pub fn read_settings_file(path: &Path) -> Result<Vec<u8>, SettingsError> {
    crate::limits::read_bounded(path, crate::limits::MAX_FILE_BYTES)
}

/// The effective settings from `source` and the bytes read from its file
/// (`None` for the built-in defaults), for callers that read the file
/// themselves (to notice that it did not change, for instance).
pub fn effective_from(
    source: SettingsSource,
    bytes: Option<&[u8]>,
) -> Result<Effective, SettingsError> {
    let (Some(path), Some(bytes)) = (source.path(), bytes) else {
        return Ok(Effective {
            doc: SettingsDoc::default(),
            source,
            warnings: Vec::new(),
        });
    };
    let Loaded { doc, warnings } = SettingsDoc::parse(bytes, &path.display().to_string())?;
    Ok(Effective {
        doc,
        source,
        warnings,
    })
}

/// Reads and validates one settings file.
pub fn load_file(path: &Path) -> Result<Loaded, SettingsError> {
    let bytes = read_settings_file(path)?;
    SettingsDoc::parse(&bytes, &path.display().to_string())
}

/// Writes a settings file atomically: a temporary file in the same folder,
/// fsynced, renamed over the target, then the folder fsynced. A crash leaves
/// either the old file or the new one, never a mix.
pub fn save_file(path: &Path, doc: &SettingsDoc) -> Result<(), SettingsError> {
    Ok(sauve_durable::replace(path, doc.to_xml().as_bytes())?)
}

/// Writes a new settings file, refusing to replace an existing one.
pub fn create_file(path: &Path, doc: &SettingsDoc) -> Result<(), SettingsError> {
    sauve_durable::create_new(path, doc.to_xml().as_bytes()).map_err(|e| {
        if e.source.kind() == std::io::ErrorKind::AlreadyExists {
            SettingsError::AlreadyExists(path.to_owned())
        } else {
            SettingsError::Write(e)
        }
    })
}

/// A path from the settings, resolved against the app folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedPath {
    /// The absolute path, lexically normalized.
    pub path: PathBuf,
    /// Written with a trailing separator: a folder.
    pub folder: bool,
}

/// Why a written path cannot be used on this system.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// Nothing written.
    #[error(
        "empty path (accepted: a path relative to the app folder, such as ../Backups/, or an absolute path)"
    )]
    Empty,
    /// `C:\…` or `\\server\…` (O-10).
    #[error(
        "\"{0}\" is a Windows absolute path, not valid on this system (accepted: a relative path or an absolute path starting with /)"
    )]
    Windows(String),
    /// `Volume:Folder:` (O-10).
    #[error(
        "\"{0}\" is an HFS path, not valid on this system (accepted: a relative path or an absolute path starting with /)"
    )]
    Hfs(String),
    /// The folder is the app folder or inside it (`./`, `Data/`): sets
    /// there would mix with the live app's files, which a restore into the
    /// app or an automatic restore replaces.
    #[error(
        "the folder \"{}\" is inside the app folder \"{}\" (accepted: a folder outside the app, such as the default ../Backups/)",
        folder.display(),
        app.display()
    )]
    InsideApp {
        /// The folder, resolved.
        folder: PathBuf,
        /// The app folder.
        app: PathBuf,
    },
}

/// Resolves a path as written in the settings: relative to `app`, `/` and `\`
/// both separators, `./` optional, a trailing separator meaning a folder.
pub fn resolve_path(app: &Path, written: &str) -> Result<ResolvedPath, PathError> {
    let w = written.trim();
    if w.is_empty() {
        return Err(PathError::Empty);
    }
    let b = w.as_bytes();
    if (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':') || w.starts_with("\\\\") {
        return Err(PathError::Windows(w.to_owned()));
    }
    let unified = w.replace('\\', "/");
    let first = unified.split('/').next().unwrap_or_default();
    if first.contains(':') {
        return Err(PathError::Hfs(w.to_owned()));
    }
    let folder = unified.ends_with('/');
    let mut path = if unified.starts_with('/') {
        PathBuf::from("/")
    } else {
        app.to_path_buf()
    };
    for part in unified.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                // Lexical: the app folder is known, and `..` above `/` stays `/`.
                if path
                    .components()
                    .next_back()
                    .is_some_and(|c| matches!(c, Component::Normal(_)))
                {
                    path.pop();
                }
            }
            name => path.push(name),
        }
    }
    Ok(ResolvedPath { path, folder })
}

/// Where `General/DestinationFolder` puts the sets (behaviour §19).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A folder, resolved against the app.
    Folder(PathBuf),
    /// A bucket prefix (`s3://bucket/prefix/`), as written.
    Store {
        /// The URL, ending with `/`.
        url: String,
        /// The app's own records of that store on this machine
        /// (`APP/Logs/Destinations/<bucket_prefix>-<digest>/`): the history the
        /// history keeper keeps before publishing it to the store, the set
        /// lock, scratch files.
        records: PathBuf,
    },
}

impl Destination {
    /// The local folder holding the history of the sets (for a folder, the
    /// folder itself).
    pub fn records(&self) -> &Path {
        match self {
            Destination::Folder(p) => p,
            Destination::Store { records, .. } => records,
        }
    }

    /// The destination as a person wrote it: a path or the URL.
    pub fn describe(&self) -> String {
        match self {
            Destination::Folder(p) => p.display().to_string(),
            Destination::Store { url, .. } => url.clone(),
        }
    }
}

/// Whether a written destination is an object-store URL.
///
/// Any `scheme://…` names a store, never a folder to create: a scheme
/// sauve does not reach is refused, naming it, when the store is opened
/// (`sauve_store::Location::parse` says which it reaches), rather than
/// taken for a folder named `gs:`.
pub fn is_store_url(written: &str) -> bool {
    sauve_durable::url_scheme(written.trim()).is_some()
}

/// Whether `folder` is `app` or inside it, as written (lexically, `..`
/// and `.` applied) or on the disk (the symlinks of the longest part of
/// each that exists resolved): `APP/Data/` is inside the app even when
/// `Data` is a link to another disk, and a link to `APP/Data` is inside
/// it too.
pub fn is_inside_app(app: &Path, folder: &Path) -> bool {
    if lexical(folder).starts_with(lexical(app)) {
        return true;
    }
    match (physical(folder), physical(app)) {
        (Some(f), Some(a)) => f.starts_with(a),
        _ => false,
    }
}

/// Refuses a folder that [`is_inside_app`].
pub(crate) fn check_outside_app(app: &Path, folder: &Path) -> Result<(), PathError> {
    if is_inside_app(app, folder) {
        return Err(PathError::InsideApp {
            folder: lexical(folder),
            app: app.to_path_buf(),
        });
    }
    Ok(())
}

/// `path` with `.` and `..` applied to the names before them.
pub fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    // `..` above the root stays at the root; above the
                    // start of a relative path, it is kept.
                    if !out.has_root() {
                        out.push("..");
                    }
                } else {
                    out.pop();
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// `path` as the disk resolves it: its longest leading part that exists,
/// canonical, then the rest applied lexically. `None` when no part of it
/// exists (a relative path whose start is gone).
pub fn physical(path: &Path) -> Option<PathBuf> {
    let parts: Vec<Component<'_>> = path.components().collect();
    for n in (1..=parts.len()).rev() {
        let head: PathBuf = parts[..n].iter().collect();
        if let Ok(mut out) = std::fs::canonicalize(&head) {
            for c in &parts[n..] {
                match c {
                    Component::CurDir => {}
                    Component::ParentDir => {
                        out.pop();
                    }
                    c => out.push(c),
                }
            }
            return Some(out);
        }
    }
    None
}

/// Resolves `General/DestinationFolder`: a store's URL (`s3://…`, checked
/// further when the store is opened), or a path as [`resolve_path`] reads it,
/// which must lie outside the app folder ([`PathError::InsideApp`]).
pub fn resolve_destination(app: &Path, written: &str) -> Result<Destination, PathError> {
    let destination = resolve_destination_to_read(app, written)?;
    if let Destination::Folder(path) = &destination {
        check_outside_app(app, path)?;
    }
    Ok(destination)
}

/// [`resolve_destination`] without the refusal of a folder inside the app:
/// for what only reads the sets already there (status, history, a list,
/// a restore), so that an app whose settings name such a folder can still
/// see and restore the sets written there before. Never to write sets.
pub fn resolve_destination_to_read(app: &Path, written: &str) -> Result<Destination, PathError> {
    let w = written.trim();
    if is_store_url(w) {
        let mut url = w.to_owned();
        if !url.ends_with('/') {
            url.push('/');
        }
        let place = url
            .split_once("://")
            .map_or(url.as_str(), |(_, place)| place)
            .trim_end_matches('/');
        // Readable, and told apart by a digest where the readable part is
        // the same (`a_b/` and `a/b/`).
        let digest = blake3::hash(place.as_bytes()).to_hex();
        let readable: String = place
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let folder = format!("{readable}-{}", &digest[..8]);
        let records = app.join("Logs").join("Destinations").join(folder);
        return Ok(Destination::Store { url, records });
    }
    resolve_path(app, w).map(|r| Destination::Folder(r.path))
}

/// The files of an app (behaviour §2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppLayout {
    /// The app folder.
    pub app: PathBuf,
    /// `APP/Project/<Name>.4DProject`, when there is one.
    pub project_file: Option<PathBuf>,
    /// `APP/Data/<stem>.4DD`.
    pub data_file: PathBuf,
    /// `APP/Data/<stem>.journal`, whether or not it exists yet.
    pub log_file: PathBuf,
}

impl AppLayout {
    /// Finds the files of `app`: the only `*.4DD` in `APP/Data` (zero or
    /// several is an error), the only `*.4DProject` in `APP/Project` if any.
    pub fn discover(app: &Path) -> Result<AppLayout, SettingsError> {
        let data_dir = app.join("Data");
        let data = only_file(&data_dir, "4DD")?;
        let data_file = match data.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(SettingsError::Layout(format!(
                    "no data file in \"{}\" (accepted: exactly one *.4DD file there)",
                    data_dir.display()
                )));
            }
            many => {
                return Err(SettingsError::Layout(format!(
                    "several data files in \"{}\": {} (accepted: exactly one *.4DD file there)",
                    data_dir.display(),
                    names(many)
                )));
            }
        };
        let project_dir = app.join("Project");
        let projects = if project_dir.is_dir() {
            only_file(&project_dir, "4DProject")?
        } else {
            Vec::new()
        };
        let project_file = match projects.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            many => {
                return Err(SettingsError::Layout(format!(
                    "several project files in \"{}\": {} (accepted: at most one *.4DProject file there)",
                    project_dir.display(),
                    names(many)
                )));
            }
        };
        let stem = data_file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(AppLayout {
            app: app.to_path_buf(),
            project_file,
            log_file: data_dir.join(format!("{stem}.journal")),
            data_file,
        })
    }

    /// The archive base name: the data file's stem.
    pub fn base_name(&self) -> String {
        self.data_file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

fn names(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The files of `dir` with extension `ext` (any case), sorted.
fn only_file(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, SettingsError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SettingsError::Io {
        action: "cannot list",
        path: dir.to_owned(),
        source,
    })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| SettingsError::Io {
            action: "cannot list",
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        let matches = path
            .extension()
            .is_some_and(|e| e.to_string_lossy().eq_ignore_ascii_case(ext));
        if matches && path.is_file() {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bucket_prefix_has_its_own_records_folder_even_when_they_read_the_same() {
        let app = Path::new("/srv/app");
        let records = |w: &str| {
            resolve_destination(app, w)
                .map(|d| d.records().to_path_buf())
                .unwrap()
        };
        let a = records("s3://bk/a_b/");
        let b = records("s3://bk/a/b/");
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/srv/app/Logs/Destinations")));
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("bk_a_b-"), "{name}");
        // The same prefix, with or without its trailing slash, is one place.
        assert_eq!(records("s3://bk/a_b"), a);
        assert_eq!(
            resolve_destination(app, "s3://bk/a_b").map(|d| d.describe()),
            Ok("s3://bk/a_b/".to_owned())
        );
    }

    #[test]
    fn written_paths_resolve_against_the_app_folder() {
        let app = Path::new("/srv/app");
        let ok = |w: &str, path: &str, folder: bool| {
            assert_eq!(
                resolve_path(app, w),
                Ok(ResolvedPath {
                    path: PathBuf::from(path),
                    folder
                }),
                "{w}"
            );
        };
        ok("./Backup/", "/srv/app/Backup", true);
        ok("./Data\\", "/srv/app/Data", true);
        ok("Data/data.4DIndx", "/srv/app/Data/data.4DIndx", false);
        ok("../Backups/", "/srv/Backups", true);
        ok("/mnt/bk", "/mnt/bk", false);
        ok(".\\Data\\x.bin", "/srv/app/Data/x.bin", false);
        ok("/../x", "/x", false);
    }

    #[test]
    fn foreign_absolute_paths_are_refused() {
        let app = Path::new("/srv/app");
        assert!(matches!(
            resolve_path(app, "C:\\Backups\\"),
            Err(PathError::Windows(_))
        ));
        assert!(matches!(
            resolve_path(app, "\\\\nas\\bk"),
            Err(PathError::Windows(_))
        ));
        assert!(matches!(
            resolve_path(app, "Macintosh HD:Users:bk:"),
            Err(PathError::Hfs(_))
        ));
        assert_eq!(resolve_path(app, "  "), Err(PathError::Empty));
    }
}
