//! [`Config`]: the settings in force and what they say.

use std::sync::Arc;

use tokio::sync::watch;

use crate::actors::ask;
use crate::actors::resolver::messages::{ReadOwnSettings, ReadSettings};
use crate::error::EngineError;
use crate::overview::{ContentSummary, DestinationUsage};
use crate::settings::AppSettings;
use crate::views::Parts;

/// The settings of the app (`backup.4DSettings`, behaviour §2 and §3) and
/// of sauve (`sauve.toml`, behaviour §17.1) as the engine reads them, and
/// what they say: the destination and the content of a backup. From
/// [`crate::BackupHandle::config`].
#[derive(Clone, Copy, Debug)]
pub struct Config<'a> {
    parts: Parts<'a>,
}

impl<'a> Config<'a> {
    pub(crate) fn new(parts: Parts<'a>) -> Config<'a> {
        Config { parts }
    }

    /// The app's effective settings, read and validated now (1419).
    pub async fn settings(self) -> Result<Arc<AppSettings>, EngineError> {
        ask(&self.parts.actors.resolver, "resolver", ReadSettings).await?
    }

    /// `sauve.toml` (behaviour §17.1): the last valid one, in force, and why the
    /// file is not valid now, if it is not.
    pub async fn own_settings(
        self,
    ) -> Result<(Arc<sauve_settings::SauveToml>, Option<EngineError>), EngineError> {
        let o = ask(&self.parts.actors.resolver, "resolver", ReadOwnSettings).await?;
        Ok((o.settings, o.problem.map(EngineError::OwnSettings)))
    }

    /// Says that the settings files were just saved (the page's Settings
    /// form does): the scheduler loop re-reads them now rather than within
    /// its minute.
    pub fn settings_saved(self) {
        self.parts.saved.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes each time [`Config::settings_saved`] is called.
    pub fn watch_settings_saved(self) -> watch::Receiver<u64> {
        self.parts.saved.subscribe()
    }

    /// The destination folder of the settings in force, with its free and
    /// used space (behaviour §15, §18).
    pub async fn destination(self) -> Result<DestinationUsage, EngineError> {
        let app = self.parts.layout.app.as_path().to_path_buf();
        self.parts
            .actors
            .io
            .blocking(move || crate::overview::destination_usage(&app))
            .await?
    }

    /// What a backup with the settings in force would hold now, part by
    /// part, each found or not (the MSC's "Contents of the backup file").
    pub async fn content(self) -> Result<ContentSummary, EngineError> {
        let settings = self.settings().await?;
        let layout = self.parts.layout.clone();
        self.parts
            .actors
            .io
            .blocking(move || crate::overview::describe(&layout, &settings.settings))
            .await
    }
}
