//! What the resolver is asked.

use std::sync::Arc;

use actix::Message;

use crate::error::EngineError;
use crate::settings::AppSettings;

/// The effective settings of the app, read and validated now (1419).
#[derive(Message)]
#[rtype(result = "Result<Arc<AppSettings>, EngineError>")]
pub(crate) struct ReadSettings;

/// `sauve.toml`: the last valid one (the defaults when none ever was), and
/// why the file is not valid now, if it is not.
#[derive(Message)]
#[rtype(result = "OwnSettings")]
pub(crate) struct ReadOwnSettings;

/// The reply to [`ReadOwnSettings`].
#[derive(actix::MessageResponse)]
pub(crate) struct OwnSettings {
    /// The last valid sauve.toml (the defaults before any).
    pub(crate) settings: Arc<sauve_settings::SauveToml>,
    /// Why the file is not valid now, if it is not.
    pub(crate) problem: Option<Arc<sauve_settings::SettingsError>>,
}

impl OwnSettings {
    /// The file in force when it is valid now, else why it is not.
    pub(crate) fn valid(&self) -> Result<Arc<sauve_settings::SauveToml>, EngineError> {
        match &self.problem {
            None => Ok(Arc::clone(&self.settings)),
            Some(e) => Err(EngineError::OwnSettings(Arc::clone(e))),
        }
    }
}
