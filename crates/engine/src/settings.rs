//! The settings of an app as the engine uses them: validated, with where
//! they came from and the digest the manifests record.

use std::path::Path;

use sauve_settings::{Settings, SettingsSource};

/// The effective, valid settings of an app at one moment (behaviour §2).
#[derive(Clone, Debug, PartialEq)]
pub struct AppSettings {
    /// The values.
    pub settings: Settings,
    /// The file they were read from, or the built-in defaults.
    pub source: SettingsSource,
    /// blake3 of the settings as sauve writes them: the manifests'
    /// `settingsDigest`, and how the scheduler notices a change.
    pub digest: String,
    /// Warnings raised while reading, located.
    pub warnings: Vec<String>,
}

impl From<sauve_settings::Effective> for AppSettings {
    fn from(effective: sauve_settings::Effective) -> AppSettings {
        AppSettings {
            digest: blake3::hash(effective.doc.to_xml().as_bytes())
                .to_hex()
                .to_string(),
            settings: effective.doc.settings().clone(),
            source: effective.source,
            warnings: effective.warnings.iter().map(ToString::to_string).collect(),
        }
    }
}

impl AppSettings {
    /// Reads and validates the effective settings of `app` (1419 on failure).
    pub fn load(app: &Path) -> Result<AppSettings, sauve_settings::SettingsError> {
        Ok(AppSettings::from(sauve_settings::load_effective(app)?))
    }

    /// Whether the Backup Journal is written verbosely.
    pub fn verbose(&self) -> bool {
        self.settings.advanced.backup_journal_verbose_mode
    }

    #[cfg(test)]
    pub(crate) fn for_tests(settings: Settings) -> AppSettings {
        AppSettings {
            settings,
            source: SettingsSource::Defaults,
            digest: "digest".to_owned(),
            warnings: Vec::new(),
        }
    }
}

/// The history key of an app (behaviour §12): its structure file, else the folder.
pub(crate) fn structure_key(layout: &sauve_settings::AppLayout) -> String {
    layout
        .project_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| layout.app.display().to_string())
}
