//! Where a rehearsal reads its sets and log backups (behaviour §22): a
//! folder, or a store reached with the app's `sauve.toml`. Both list the
//! base's sets by number and restore one set, through the archive's own
//! checked restore, into a folder of the sandbox.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sauve_archive::{ArchiveName, Identities, RestoreOptions, RestoreReport, SetKind};
use sauve_number::BackupNumber;

use crate::error::EngineError;
use crate::io::StoreIo;

/// The place sets are read from.
pub(crate) enum SetSource {
    /// A folder: the destination, or one named on the command line.
    Folder(PathBuf),
    /// A store: the destination's bucket or an `[[offsite]]` one.
    Store {
        /// Its URL as written (shown without credentials).
        url: String,
        store: Arc<dyn sauve_store::Store>,
        identities: Option<Identities>,
        io: StoreIo,
    },
}

/// What a source holds of one base.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Backup sets by number.
    pub(crate) backups: Vec<BackupNumber>,
    /// Log backups by number, with the name that reaches each.
    pub(crate) logs: BTreeMap<BackupNumber, String>,
    /// Whether the sets are stored encrypted (`….age`).
    pub(crate) encrypted: bool,
}

impl SetSource {
    /// The source as shown: the folder, or the URL without credentials.
    pub(crate) fn describe(&self) -> String {
        match self {
            SetSource::Folder(dir) => dir.display().to_string(),
            SetSource::Store { url, .. } => sauve_settings::shown_url(url),
        }
    }

    /// Whether the sets can be read here: not encrypted, or an identity given.
    pub(crate) fn readable(&self, listing: &Listing) -> bool {
        match self {
            // Sealed sets in a folder read only through a store.
            SetSource::Folder(_) => !listing.encrypted,
            SetSource::Store { identities, .. } => !listing.encrypted || identities.is_some(),
        }
    }

    /// The sets and log backups of `base`.
    pub(crate) fn list(&self, base: &str) -> Result<Listing, EngineError> {
        let names: Vec<String> = match self {
            SetSource::Folder(dir) => std::fs::read_dir(dir)
                .map_err(EngineError::io("list", dir))?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            SetSource::Store { store, io, .. } => {
                let (store, prefix) = (Arc::clone(store), format!("{base}["));
                io.run(async move { store.list(&prefix).await })?
                    .into_iter()
                    .map(|o| o.key)
                    .collect()
            }
        };
        let mut listing = Listing::default();
        for name in names {
            let (plain, sealed) = sauve_archive::strip_age(&name);
            let Some(a) = ArchiveName::parse(plain) else {
                continue;
            };
            // Any segment names its set: one whose first segment is lost
            // is still listed, and fails as a missing segment.
            if a.part || a.base != base {
                continue;
            }
            listing.encrypted |= sealed;
            match a.kind {
                SetKind::Backup => listing.backups.push(a.number),
                SetKind::Log => {
                    listing
                        .logs
                        .insert(a.number, format!("{base}[{}].4BL", a.number.text()));
                }
            }
        }
        listing.backups.sort_unstable();
        listing.backups.dedup();
        Ok(listing)
    }

    /// The manifest of backup set `number` of `base`, read alone.
    pub(crate) fn manifest(
        &self,
        base: &str,
        number: BackupNumber,
    ) -> Result<sauve_archive::Manifest, EngineError> {
        let name = format!("{base}[{}]", number.text());
        match self {
            SetSource::Folder(dir) => Ok(sauve_archive::list(&dir.join(name))?.1),
            SetSource::Store { .. } => {
                let set = self.locate(&format!("{name}.4BK"))?;
                Ok(sauve_archive::list_remote(&set)?.1)
            }
        }
    }

    /// Restores the set `name` (`App[0012].4BK`, `App[0012].4BL`) into
    /// `to`, every file checked against its manifest there.
    pub(crate) fn restore(
        &self,
        name: &str,
        to: &Path,
        progress: &mut dyn sauve_archive::Progress,
    ) -> Result<RestoreReport, EngineError> {
        let options = RestoreOptions {
            to: Some(to.to_path_buf()),
            force: false,
        };
        match self {
            SetSource::Folder(dir) => {
                let path = match name.strip_suffix(".4BK") {
                    // A backup set by its name: its segments are found.
                    Some(stem) => dir.join(stem),
                    None => dir.join(name),
                };
                Ok(sauve_archive::restore(&path, &options, progress)?)
            }
            SetSource::Store { .. } => {
                let set = self.locate(name)?;
                Ok(sauve_archive::restore_remote(&set, &options, progress)?)
            }
        }
    }

    fn locate(&self, name: &str) -> Result<sauve_archive::RemoteSet, EngineError> {
        let SetSource::Store {
            store,
            identities,
            io,
            ..
        } = self
        else {
            return Err(EngineError::Internal(format!(
                "{name} was looked for in a store, but the source is a folder"
            )));
        };
        let (store, runtime, name, ids) = (
            Arc::clone(store),
            io.handle(),
            name.to_owned(),
            identities.clone(),
        );
        Ok(io.run(
            async move { sauve_archive::RemoteSet::locate(store, runtime, &name, ids).await },
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_lists_its_base_s_sets_and_log_backups_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "App[0001].4BK",
            "App[0002-0002].4BK",
            "App[0002-0003].4BK",
            "App[0002-0001].4BL",
            "App[0003].4BK.part",
            "Other[0004].4BK",
            "backupHistory.json",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let listing = SetSource::Folder(dir.path().to_path_buf())
            .list("App")
            .unwrap();
        let n = BackupNumber::new;
        assert_eq!(listing.backups, vec![n(1), n(2)]);
        assert_eq!(
            listing.logs.into_iter().collect::<Vec<_>>(),
            vec![(n(2), "App[0002].4BL".to_owned())]
        );
        assert!(!listing.encrypted);
    }
}
