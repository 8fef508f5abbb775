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

/// What a backup with the settings in force would hold now, part by part
/// (the MSC's "Contents of the backup file").
#[derive(Message)]
#[rtype(result = "Result<crate::overview::ContentSummary, EngineError>")]
pub(crate) struct DescribeContent {
    pub(crate) settings: Arc<AppSettings>,
}
