//! What the attachment resolver is asked.

use std::path::PathBuf;
use std::sync::Arc;

use actix::Message;

use crate::error::EngineError;
use crate::plan::{DataFacts, Resolved};
use crate::settings::AppSettings;

/// The effective settings of the app, read and validated now (1419).
#[derive(Message)]
#[rtype(result = "Result<Arc<AppSettings>, EngineError>")]
pub(crate) struct ReadSettings;

/// What a backup with `settings` holds, with `destination` never walked into.
#[derive(Message)]
#[rtype(result = "Result<Resolved, EngineError>")]
pub(crate) struct ResolveContent {
    pub(crate) settings: Arc<AppSettings>,
    pub(crate) destination: PathBuf,
}

/// The data file and the log as they are now (BackupIfDataChange).
#[derive(Message)]
#[rtype(result = "DataFacts")]
pub(crate) struct ObserveData;

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
