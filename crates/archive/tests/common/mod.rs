//! Shared helpers of the archive tests: sample apps, writing a set, comparing trees.

#![allow(
    dead_code,
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sauve_archive::{
    ArchiveWriter, Content, ManifestHeader, NoProgress, SetKind, SetSpec, resolve_content,
};
use sauve_settings::{AppLayout, Compression, Settings};

/// A temporary app with a data file, and a destination folder beside it.
pub struct Fixture {
    pub root: tempfile::TempDir,
    pub layout: AppLayout,
    pub settings: Settings,
    pub destination: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let app = root.path().join("app");
        std::fs::create_dir_all(app.join("Data/Settings")).unwrap();
        std::fs::create_dir_all(app.join("Project/Sources")).unwrap();
        std::fs::create_dir_all(app.join("Settings")).unwrap();
        std::fs::write(app.join("Data/App.4DD"), vec![7u8; 300_000]).unwrap();
        std::fs::write(app.join("Data/App.journal"), b"log").unwrap();
        std::fs::write(app.join("Data/Settings/backup.4DSettings"), b"<x/>").unwrap();
        std::fs::write(app.join("Project/App.4DProject"), b"{}").unwrap();
        std::fs::write(app.join("Project/Sources/m.4dm"), b"// method").unwrap();
        std::fs::write(app.join("Settings/backup.4DSettings"), b"<y/>").unwrap();
        let destination = root.path().join("bk");
        std::fs::create_dir_all(&destination).unwrap();
        let layout = AppLayout::discover(&app).unwrap();
        let mut settings = Settings::default();
        settings.general.include_structure_file = true;
        Fixture {
            root,
            layout,
            settings,
            destination,
        }
    }

    pub fn app(&self) -> &Path {
        &self.layout.app
    }

    pub fn content(&self) -> Content {
        resolve_content(&self.layout, &self.settings, &self.destination).unwrap()
    }

    pub fn spec(&self, number: u32, compression: Compression, segment_size: u64) -> SetSpec {
        SetSpec {
            destination: self.destination.clone(),
            base: self.layout.base_name(),
            number: number.into(),
            kind: SetKind::Backup,
            compression,
            segment_size,
            threads: 2,
        }
    }

    /// Writes and commits a set of everything the settings name.
    pub fn backup(&self, number: u32, compression: Compression, segment_size: u64) -> Vec<PathBuf> {
        let content = self.content();
        let mut w =
            ArchiveWriter::create(self.spec(number, compression, segment_size), header(number))
                .unwrap();
        for e in &content.entries {
            w.append(e, &mut NoProgress).unwrap();
        }
        w.finish(jiff::Timestamp::UNIX_EPOCH)
            .unwrap()
            .commit()
            .unwrap()
    }
}

/// Restores `set` into `to` (no `--force`), without progress.
pub fn restore_to(
    set: &Path,
    to: &Path,
) -> Result<sauve_archive::RestoreReport, sauve_archive::ArchiveError> {
    sauve_archive::restore(
        set,
        &sauve_archive::RestoreOptions {
            to: Some(to.to_path_buf()),
            force: false,
        },
        &mut NoProgress,
    )
}

pub fn header(number: u32) -> ManifestHeader {
    ManifestHeader {
        structure_path: "/app/Project/App.4DProject".to_owned(),
        data_path: "/app/Data/App.4DD".to_owned(),
        trigger: "manual".to_owned(),
        settings_digest: "test".to_owned(),
        ..ManifestHeader::new(SetKind::Backup, number, "App", jiff::Timestamp::UNIX_EPOCH)
    }
}

/// What a tree holds: relative path → (kind, content or link target, mode, mtime seconds).
pub fn snapshot(root: &Path) -> BTreeMap<String, (char, Vec<u8>, u32, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let (kind, data) = if meta.file_type().is_symlink() {
                (
                    'l',
                    std::fs::read_link(&path)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                        .into_bytes(),
                )
            } else if meta.is_dir() {
                stack.push(path.clone());
                ('d', Vec::new())
            } else {
                ('f', std::fs::read(&path).unwrap())
            };
            let mtime = if kind == 'l' { 0 } else { meta.mtime() };
            let mode = if kind == 'l' { 0 } else { meta.mode() & 0o777 };
            out.insert(rel, (kind, data, mode, mtime));
        }
    }
    out
}

/// Whether the tree at `got` holds what the tree at `want` holds: the same
/// paths, each a folder, a file with the same bytes or a symlink with the
/// same target, with the same permission bits and modification time (whole
/// seconds: the manifest's must agree with the checksummed tar header); if
/// not, the first difference by path, short enough to read even when the
/// files are large.
pub fn same_contents(got: &Path, want: &Path) -> Result<(), String> {
    let (got, want) = (snapshot(got), snapshot(want));
    for (path, (kind, data, mode, mtime)) in &want {
        let Some((got_kind, got_data, got_mode, got_mtime)) = got.get(path) else {
            return Err(format!("{path} is missing"));
        };
        if got_kind != kind {
            return Err(format!("{path} is a {got_kind:?}, want a {kind:?}"));
        }
        if got_mode != mode {
            return Err(format!("{path}: mode {got_mode:o}, want {mode:o}"));
        }
        if *kind == 'f' && got_mtime != mtime {
            return Err(format!("{path}: modified at {got_mtime}, want {mtime}"));
        }
        if got_data != data {
            let at = got_data
                .iter()
                .zip(data)
                .position(|(g, w)| g != w)
                .unwrap_or(got_data.len().min(data.len()));
            return Err(format!(
                "{path}: {} bytes, want {}; first difference at byte {at}",
                got_data.len(),
                data.len()
            ));
        }
    }
    match got.keys().find(|path| !want.contains_key(*path)) {
        Some(extra) => Err(format!("{extra} should not be there")),
        None => Ok(()),
    }
}

/// The names in a folder, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
