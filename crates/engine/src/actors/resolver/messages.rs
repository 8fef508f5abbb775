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
    pub(crate) settings: Arc<sauve_settings::SauveToml>,
    pub(crate) problem: Option<EngineError>,
}
