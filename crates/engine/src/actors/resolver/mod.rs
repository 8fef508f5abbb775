//! The attachment resolver: owns the app's layout and what the app's
//! settings say a backup holds. It reads and validates the settings (the
//! same bytes giving the same parsed settings without parsing twice),
//! resolves a run's content (data kinds, structure, attachments in stream
//! order), reports the attachments that are missing (the run is then
//! partial, -43) and what the log file is. Each time it reads the settings
//! it tells the journal keeper the verbose mode they give.

pub(crate) mod messages;

use std::sync::Arc;

use actix::{Actor, Addr, Handler, SyncContext};
use sauve_settings::AppLayout;

use crate::actors::journal::JournalKeeper;
use crate::actors::journal::messages::SetVerbose;
use crate::error::EngineError;
use crate::plan::{DataFacts, LogState, Resolved};
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

    /// What the log file is (O-6, behaviour §14).
    fn log_state(&self) -> LogState {
        let path = &self.layout.log_file;
        if !path.is_file() {
            return LogState::Absent;
        }
        if !crate::logcut::is_sauve_log(path) {
            return LogState::Foreign;
        }
        LogState::Sauve {
            // Unreadable counts as holding records: back it up rather than skip.
            records: sauve_logfile::read_log(path).map_or(true, |l| !l.records.is_empty()),
        }
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

impl Handler<ResolveContent> for Resolver {
    type Result = Result<Resolved, EngineError>;
    fn handle(&mut self, msg: ResolveContent, _: &mut SyncContext<Self>) -> Self::Result {
        let content =
            sauve_archive::resolve_content(&self.layout, &msg.settings.settings, &msg.destination)?;
        Ok(Resolved {
            content,
            log: self.log_state(),
        })
    }
}

impl Handler<DescribeContent> for Resolver {
    type Result = Result<crate::overview::ContentSummary, EngineError>;
    fn handle(&mut self, msg: DescribeContent, _: &mut SyncContext<Self>) -> Self::Result {
        Ok(crate::overview::describe(
            &self.layout,
            &msg.settings.settings,
        ))
    }
}

impl Handler<ObserveData> for Resolver {
    type Result = DataFacts;
    fn handle(&mut self, _: ObserveData, _: &mut SyncContext<Self>) -> DataFacts {
        let data = std::fs::metadata(&self.layout.data_file)
            .ok()
            .map(|m| (m.len(), sauve_durable::mtime_ns(&m)));
        DataFacts {
            data,
            log: self.log_state(),
        }
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
                problem: Some(EngineError::Settings(e)),
            },
        }
    }
}
