//! The resolver: owns the app's settings as last read. It reads and
//! validates `backup.4DSettings` (the same bytes giving the same parsed
//! settings without parsing twice) and `sauve.toml` (the last valid one
//! stays in force while the file is invalid). What a run's content is, the
//! data file's facts and the page's description of a backup's content are
//! plain functions of the layout (`crate::facts`, `crate::overview`). Each time it reads the settings
//! it tells the journal keeper the verbose mode they give.

pub(crate) mod messages;

use std::sync::Arc;

use actix::{Actor, Addr, Handler, SyncContext};
use sauve_settings::AppLayout;

use crate::actors::journal::JournalKeeper;
use crate::actors::journal::messages::SetVerbose;
use crate::error::EngineError;
use crate::settings::AppSettings;
use messages::*;

/// See the module documentation.
pub(crate) struct Resolver {
    layout: AppLayout,
    /// The settings last read, with the file's bytes they came from.
    last: Option<(Option<Vec<u8>>, Arc<AppSettings>)>,
    /// The last valid `sauve.toml` (behaviour §17.1): an invalid file keeps it in
    /// force until it is valid again.
    own: Arc<sauve_settings::SauveToml>,
    /// Told the verbose mode of the settings at each read.
    journal: Addr<JournalKeeper>,
}

impl Resolver {
    pub(crate) fn new(layout: AppLayout, journal: Addr<JournalKeeper>) -> Resolver {
        Resolver {
            layout,
            last: None,
            own: Arc::default(),
            journal,
        }
    }

    /// The settings as they are now, parsed again only when their bytes
    /// changed.
    fn read_settings(&mut self) -> Result<Arc<AppSettings>, EngineError> {
        let source = sauve_settings::locate(&self.layout.app);
        let bytes = match source.path() {
            // Bounded: a file over the settings' size limit is refused
            // without being read whole.
            Some(p) => Some(sauve_settings::read_settings_file(p).map_err(EngineError::Settings)?),
            None => None,
        };
        if let Some((seen, settings)) = &self.last
            && *seen == bytes
            && settings.source == source
        {
            return Ok(settings.clone());
        }
        let effective = sauve_settings::effective_from(source, bytes.as_deref())?;
        let settings = Arc::new(AppSettings::from(effective));
        self.last = Some((bytes, settings.clone()));
        Ok(settings)
    }
}

impl Actor for Resolver {
    type Context = SyncContext<Self>;
}

impl Handler<ReadSettings> for Resolver {
    type Result = Result<Arc<AppSettings>, EngineError>;
    fn handle(&mut self, _: ReadSettings, _: &mut SyncContext<Self>) -> Self::Result {
        let settings = self.read_settings();
        // Verbose when they cannot be read. Sent before the reply: whoever
        // writes an entry after this read finds the mode it gave.
        let verbose = settings.as_ref().map_or(true, |s| s.verbose());
        self.journal.do_send(SetVerbose(verbose));
        settings
    }
}

impl Handler<ReadOwnSettings> for Resolver {
    type Result = OwnSettings;
    fn handle(&mut self, _: ReadOwnSettings, _: &mut SyncContext<Self>) -> OwnSettings {
        match sauve_settings::load_sauve_toml(&self.layout.app) {
            Ok(s) => {
                if *self.own != s {
                    self.own = Arc::new(s);
                }
                OwnSettings {
                    settings: self.own.clone(),
                    problem: None,
                }
            }
            Err(e) => OwnSettings {
                settings: self.own.clone(),
                problem: Some(Arc::new(e)),
            },
        }
    }
}
