//! `backup.4DSettings`, the settings file that drives every sauve backup.
//!
//! This crate reads the files 4D itself writes, tolerantly (BOM or not; CR,
//! LF or CRLF; booleans and tokens in any case; both time forms; odd
//! `ItemsCount`s; unknown and legacy elements), validates every value with
//! errors that name the file, line, column, key, value and what is accepted,
//! and writes 4D's modern shape back without losing anything it read. It also
//! knows the app folder's layout: which settings file wins, where the data
//! file is, and how written paths resolve (behaviour §2 and §3).
//!
//! It also reads `sauve.toml` (behaviour §17.1), sauve's own settings beside
//! `backup.4DSettings`: one typed model ([`SauveToml`]), errors located the
//! same way, secrets only through environment variables or 0600 files.
//!
//! It is not the engine: it never starts a backup, never talks to actors, and
//! does IO only to read, locate and atomically write settings files.
//!
//! Invariants:
//! - rewriting an unchanged file written in 4D's modern shape gives the same bytes;
//! - write, read, write gives the same bytes;
//! - no input, however broken, makes the reader panic;
//! - no input exhausts the reader's stack or memory: every reader is bounded
//!   in size, and the XML in depth and element count ([`Limit`]), whatever
//!   the stack of the thread that reads it.

mod allowed;
mod change;
mod doc;
mod error;
mod json;
mod layout;
mod limits;
mod model;
mod own;
mod schema;
mod value;
mod xml;

pub use allowed::Allowed;
pub use change::{
    AlertsChange, Change, ChangeError, Changed, NEW_APP_SAUVE_TOML, Rejected, TomlChanged,
    alerts_as_written, change_alerts, change_settings, prepare_alerts_change,
    prepare_new_app_incremental, prepare_settings_change, settings_file_for_change,
};
pub use doc::{Loaded, NAMESPACE, SettingsDoc};
pub use error::{Limit, Location, Problem, SettingsError};
pub use json::to_json;
pub use layout::{
    AppLayout, Destination, Effective, FILE_NAME, PathError, ResolvedPath, SettingsSource,
    create_file, effective_from, is_inside_app, is_store_url, lexical, load_effective, load_file,
    locate, physical, read_settings_file, resolve_destination, resolve_destination_to_read,
    resolve_path, save_file, structure_settings_path,
};
pub use limits::{MAX_DEPTH, MAX_ELEMENTS, MAX_FILE_BYTES, MAX_SECRET_BYTES};
pub use model::{
    Advanced, BackupFailure, Daily, FileSegmentation, General, Hourly, Legacy, Monthly, Scheduler,
    SetNumber, Settings, WeekDay, Weekly,
};
pub use own::{
    AlertOn, AlertSettings, CommandSettings, CronEvery, EmailSettings, Environment, Every,
    IncrementalSettings, MetricsSettings, OffsiteSettings, ProcessEnvironment, RehearsalSettings,
    SAUVE_TOML, SauveToml, Secret, SecretFrom, SecuritySettings, SmtpTls, StoreConnection,
    UiSettings, VerifySettings, WebhookSettings, load_sauve_toml, load_sauve_toml_file,
    load_sauve_toml_with, load_security, locate_sauve_toml, parse_sauve_toml,
};
pub use sauve_durable::shown_url;
pub use schema::{Input, KeyInfo, Value, key_info, key_paths};
pub use value::{Compression, Delay, Frequency, Level, MonthDay, TimeOfDay, Token};

impl Settings {
    /// The value of a key, by its path under `Backup/Settings`
    /// (`Advanced/SetNumber/Value`).
    pub fn get(&self, key: &str) -> Option<Value> {
        schema::leaf(key).map(|l| (l.get)(self))
    }

    /// Every key with its value, in 4D's order.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, Value)> + '_ {
        schema::leaves()
            .iter()
            .map(move |l| (l.path, (l.get)(self)))
    }
}
