//! `APP/Settings/sauve.toml` (behaviour §17.1): sauve's own settings, for what
//! 4D's XML has no key for (alerts, metrics; later the page, off-site
//! destinations, incremental sets). Read with the same precedence as
//! `backup.4DSettings`; no file means every feature off.
//!
//! Secrets are never values in the file: a key ending in `_env` names an
//! environment variable, one ending in `_file` a file of mode 0600. Both
//! are read at load time and kept as [`Secret`]s, which print as `***`.
//!
//! Errors are located like the XML's (`file:line:col: key: what, accepted`),
//! unknown keys included; every validation problem is listed.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Problem, SettingsError};

/// The file name, in `APP/Data/Settings/` or `APP/Settings/`.
pub const SAUVE_TOML: &str = "sauve.toml";

/// `APP/Data/Settings/sauve.toml` if it exists, else `APP/Settings/sauve.toml`
/// if it exists (the precedence of behaviour §2).
pub fn locate_sauve_toml(app: &Path) -> Option<PathBuf> {
    [
        app.join("Data").join("Settings").join(SAUVE_TOML),
        app.join("Settings").join(SAUVE_TOML),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// A secret read from the environment or a 0600 file: its value is never
/// shown (`Debug` and `Display` print `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    /// Where it came from, for `settings show`.
    pub from: SecretFrom,
}

/// Where a secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretFrom {
    /// An environment variable (`*_env`).
    Env(String),
    /// A file of mode 0600 (`*_file`).
    File(PathBuf),
}

impl Secret {
    /// The secret itself, for the code that uses it. Never log it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// A secret given directly, for tests and for hosts that hold it themselves.
    pub fn new(value: impl Into<String>, from: SecretFrom) -> Secret {
        Secret {
            value: value.into(),
            from,
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(*** from {:?})", self.from)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// When alerts are raised besides the give-up (behaviour §17.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AlertOn {
    /// A scheduled backup gives up (1401): always raised.
    #[default]
    GiveUp,
    /// Any failed backup, any trigger (not 0 or -43).
    Failure,
    /// Every backup (a heartbeat).
    Always,
}

impl AlertOn {
    /// The token in the file.
    pub fn token(self) -> &'static str {
        match self {
            AlertOn::GiveUp => "give-up",
            AlertOn::Failure => "failure",
            AlertOn::Always => "always",
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587 by default).
    StartTls,
    /// TLS from the first byte (port 465 by default).
    Tls,
    /// No encryption (port 25 by default); only for a relay on a trusted network.
    None,
}

impl SmtpTls {
    /// The token in the file.
    pub fn token(self) -> &'static str {
        match self {
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "none",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }
}

/// `[[alerts.webhook]]`: a JSON POST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSettings {
    /// `http://` or `https://`.
    pub url: String,
    /// HMAC-SHA256 key for the `X-Sauve-Signature` header.
    pub secret: Option<Secret>,
}

/// `[[alerts.email]]`: a message over SMTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailSettings {
    /// The SMTP server.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// STARTTLS, TLS or none.
    pub tls: SmtpTls,
    /// The login, if the server wants one.
    pub user: Option<String>,
    /// Its password.
    pub password: Option<Secret>,
    /// The sender address.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// A PEM file of CA certificates to trust besides the usual roots (a
    /// private relay's own CA).
    pub ca_file: Option<PathBuf>,
}

/// `[[alerts.command]]`: a shell command with `SAUVE_*` variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSettings {
    /// Run with `sh -c`.
    pub run: String,
}

/// `[alerts]` (behaviour §17.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertSettings {
    /// When alerts are raised besides the give-up.
    pub on: AlertOn,
    /// Raise an alert when no backup succeeded for this long.
    pub stale_after: Option<Duration>,
    /// Raise an alert when the newest proven recovery point (behaviour
    /// §22) is older than this.
    pub proven_stale_after: Option<Duration>,
    /// Webhooks.
    pub webhooks: Vec<WebhookSettings>,
    /// Emails.
    pub emails: Vec<EmailSettings>,
    /// Commands.
    pub commands: Vec<CommandSettings>,
}

impl AlertSettings {
    /// Whether any notifier is configured.
    pub fn has_notifiers(&self) -> bool {
        !(self.webhooks.is_empty() && self.emails.is_empty() && self.commands.is_empty())
    }
}

/// `[metrics]` (behaviour §17.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    /// A token of its own for `GET /metrics` (else the server's token).
    pub token: Option<Secret>,
}

/// `[security]`: where the page and `sauve settings set` may point sauve
/// (SECURITY.md, "The page"): the folders and `s3://` prefixes that a
/// destination, an attachment or a restore target set from there must lie
/// in. `None`: the app's parent folder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecuritySettings {
    /// `allowed_paths`: absolute folders and `s3://bucket/prefix/` URLs.
    pub allowed_paths: Option<Vec<String>>,
}

/// `[ui]` (behaviour §18): the page's login.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UiSettings {
    /// The argon2 hash (PHC string, `$argon2id$…`) of a password that logs
    /// in to the page besides the server's token; `sauve ui --hash-password`
    /// makes one.
    pub password_hash: Option<String>,
}

/// `[incremental]` (behaviour §21): sets that store only what changed since the
/// set before. The default is off: every set full, blocks chosen per file,
/// unchanged files not read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IncrementalSettings {
    /// Every Nth set is full, the others incremental; 0 (the default) is
    /// off: every set full.
    pub full_every: u32,
    /// Files of at least this many KiB are compared and stored as blocks
    /// of this size. Unset (the default), each file's block size is chosen
    /// from its size: 16 KiB up to 64 GiB, larger past it (behaviour §21).
    pub block_kib: Option<u32>,
    /// Also compare the blake3 of files whose size, time and inode did not
    /// change (reads every file; off by default).
    pub verify_unchanged: bool,
}

impl IncrementalSettings {
    /// Whether incremental sets are made (`full_every` 1 makes every set
    /// full, as 0 does).
    pub fn is_on(&self) -> bool {
        self.full_every > 1
    }
}

/// `[rehearsal]` (behaviour §22): restore rehearsals, by hand or on a
/// schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RehearsalSettings {
    /// `folder`: where each rehearsal makes its sandbox; `None`, a folder
    /// `<app>.rehearsal` beside the app folder. Never inside the app.
    pub folder: Option<PathBuf>,
    /// `check`: the host's check, a program and its arguments, with
    /// `{data}`, `{app}`, `{sandbox}` and `{log}` replaced by the restored
    /// paths; empty, no check beyond sauve's own.
    pub check: Vec<String>,
    /// `check_timeout`: how long the check may run (default 30 minutes).
    pub check_timeout: Duration,
    /// `expect`: what the check must print (trimmed) to hold, besides
    /// exiting 0 (`ok` for SQLite's `PRAGMA integrity_check`).
    pub expect: Option<String>,
    /// `every`: how often `sauve run` rehearses (`daily`, `weekly`, a
    /// duration of at least an hour, or a cron expression); `None`, never
    /// on its own.
    pub every: Option<Every>,
    /// `from`: the store URL rehearsals read from (the destination, or an
    /// `[[offsite]]` one); `None`, the app's destination.
    pub from: Option<String>,
    /// `identity_file`: the age identity that reads an encrypted source
    /// (mode 0600).
    pub identity_file: Option<PathBuf>,
    /// `max_mib_s`: the read rate a low-priority rehearsal keeps under
    /// (every one but `--full-speed`), MiB per second; `None`, unbounded.
    pub max_mib_s: Option<u32>,
}

impl Default for RehearsalSettings {
    fn default() -> RehearsalSettings {
        RehearsalSettings {
            folder: None,
            check: Vec::new(),
            check_timeout: Duration::from_secs(30 * 60),
            expect: None,
            every: None,
            from: None,
            identity_file: None,
            max_mib_s: None,
        }
    }
}

/// How often rehearsals run on their own (`[rehearsal] every`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Every {
    /// A period from the last rehearsal's start (`daily`, `weekly`, `36h`).
    Period(Duration),
    /// The times a cron expression names, in the app's time zone
    /// (`0 3 * * sun`: Sundays at 03:00).
    Cron(Box<CronEvery>),
}

impl Every {
    /// Whether a rehearsal is due at `now` after one that started at
    /// `since`: the period has passed since, or a time the expression
    /// names lies after it (in `zone`'s wall-clock time).
    pub fn passed(
        &self,
        since: jiff::Timestamp,
        now: jiff::Timestamp,
        zone: &jiff::tz::TimeZone,
    ) -> bool {
        match self {
            Every::Period(d) => {
                jiff::SignedDuration::try_from(*d).is_ok_and(|d| now.duration_since(since) >= d)
            }
            Every::Cron(c) => c.passed(since, now, zone),
        }
    }

    /// As written back: `604800s`, or the expression.
    pub fn text(&self) -> String {
        match self {
            Every::Period(d) => format!("{}s", d.as_secs()),
            Every::Cron(c) => c.text.clone(),
        }
    }
}

/// A cron expression of `[rehearsal] every`, checked to name a time at
/// most once an hour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronEvery {
    text: String,
    cron: croner::Cron,
}

/// `t` in `zone` as a wall-clock time chrono reads.
fn wall_clock(t: jiff::Timestamp, zone: &jiff::tz::TimeZone) -> Option<chrono::NaiveDateTime> {
    let c = zone.to_datetime(t);
    chrono::NaiveDate::from_ymd_opt(i32::from(c.year()), c.month() as u32, c.day() as u32)?
        .and_hms_opt(c.hour() as u32, c.minute() as u32, c.second() as u32)
}

impl CronEvery {
    /// The expression `text`, or why it is not one sauve takes.
    fn parse(text: &str) -> Result<CronEvery, String> {
        let cron: croner::Cron = text.parse().map_err(|e| format!("{e}"))?;
        // Consecutive times an hour apart at least, over a year of them.
        let mut at = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .ok_or("no start")?;
        let mut last: Option<chrono::NaiveDateTime> = None;
        for _ in 0..400 {
            let Ok(next) = cron.find_next_occurrence(&at, false) else {
                break;
            };
            if let Some(l) = last
                && next - l < chrono::TimeDelta::hours(1)
            {
                return Err("it names times less than an hour apart".to_owned());
            }
            last = Some(next);
            at = next;
        }
        if last.is_none() {
            return Err("it names no time".to_owned());
        }
        Ok(CronEvery {
            text: text.to_owned(),
            cron,
        })
    }

    fn passed(
        &self,
        since: jiff::Timestamp,
        now: jiff::Timestamp,
        zone: &jiff::tz::TimeZone,
    ) -> bool {
        let (Some(since), Some(now)) = (wall_clock(since, zone), wall_clock(now, zone)) else {
            return false;
        };
        self.cron
            .find_previous_occurrence(&now, true)
            .is_ok_and(|at| at > since)
    }
}

/// `[verify]` (behaviour §23): the sample of the kept sets' stored bytes
/// each backup reads, and `sauve verify --sample` reads by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifySettings {
    /// `sample_percent`: the share of the kept sets' pieces read at each
    /// backup, 0 to 100 (0: none); default 2.
    pub sample_percent: u32,
    /// `sample_max_mib`: the most a sample reads, MiB; default 64.
    pub sample_max_mib: u32,
}

impl Default for VerifySettings {
    fn default() -> VerifySettings {
        VerifySettings {
            sample_percent: 2,
            sample_max_mib: 64,
        }
    }
}

/// The whole of `sauve.toml`: one typed model, extended by each feature
/// that needs a setting 4D's XML has no key for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SauveToml {
    /// The file read, `None` when there is none (every feature off).
    pub source: Option<PathBuf>,
    /// `[alerts]`.
    pub alerts: AlertSettings,
    /// `[metrics]`.
    pub metrics: MetricsSettings,
    /// `[ui]`.
    pub ui: UiSettings,
    /// `[destination]`: how to reach the store an `s3://` destination or
    /// off-site copy names (behaviour §19).
    pub destination: StoreConnection,
    /// `encrypt_to` of `[destination]`: age recipients for the sets of a
    /// bucket `DestinationFolder` (each `[[offsite]]` entry has its own).
    pub destination_encrypt_to: Vec<String>,
    /// `[[offsite]]`: where committed sets are copied (behaviour §19).
    pub offsite: Vec<OffsiteSettings>,
    /// `[incremental]` (behaviour §21).
    pub incremental: IncrementalSettings,
    /// `[security]`.
    pub security: SecuritySettings,
    /// `[rehearsal]` (behaviour §22).
    pub rehearsal: RehearsalSettings,
    /// `[verify]` (behaviour §23).
    pub verify: VerifySettings,
}

/// How to reach an S3-compatible store: `[destination]`, or the same keys in
/// an `[[offsite]]` entry (which override it). What is unset here comes from
/// the standard AWS environment variables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreConnection {
    /// `endpoint`: `https://s3.example.com`, `http://127.0.0.1:3900`.
    pub endpoint: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `path_style`: `endpoint/bucket/key` requests when true, `bucket.host/key`
    /// when false; unset, path-style for a custom endpoint and virtual-host
    /// style for AWS's own.
    pub path_style: Option<bool>,
    /// `access_key_id` (not a secret), or from `access_key_id_env`.
    pub access_key_id: Option<String>,
    /// `secret_access_key_env` or `secret_access_key_file`.
    pub secret_access_key: Option<Secret>,
    /// `part_size_mib`: the size of each uploaded part (5 to 512).
    pub part_size_mib: Option<u32>,
    /// `parts_in_flight`: parts uploaded at once (1 to 16).
    pub parts_in_flight: Option<u32>,
}

impl StoreConnection {
    /// This connection, with what it leaves unset taken from `base`.
    pub fn over(&self, base: &StoreConnection) -> StoreConnection {
        StoreConnection {
            endpoint: self.endpoint.clone().or_else(|| base.endpoint.clone()),
            region: self.region.clone().or_else(|| base.region.clone()),
            path_style: self.path_style.or(base.path_style),
            access_key_id: self
                .access_key_id
                .clone()
                .or_else(|| base.access_key_id.clone()),
            secret_access_key: self
                .secret_access_key
                .clone()
                .or_else(|| base.secret_access_key.clone()),
            part_size_mib: self.part_size_mib.or(base.part_size_mib),
            parts_in_flight: self.parts_in_flight.or(base.parts_in_flight),
        }
    }
}

/// One `[[offsite]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsiteSettings {
    /// `url`: `s3://bucket/prefix/` or a folder (relative to the app folder).
    pub url: String,
    /// `keep`: the sets kept there (retention per destination); every set when unset.
    pub keep: Option<u32>,
    /// `retry_after`: the first wait after a failed copy, doubled at each
    /// failure up to an hour (default 1m).
    pub retry_after: Duration,
    /// `encrypt_to`: age recipients (`age1…`); when given, every segment
    /// is stored as the age encryption of its bytes, named `….age`.
    pub encrypt_to: Vec<String>,
    /// How to reach it, over `[destination]`.
    pub connection: StoreConnection,
}

/// Where `*_env` secrets are looked up: the process environment, or a
/// table in tests.
pub trait Environment {
    /// The variable's value, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Environment for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

// The file as serde reads it: every key known (anything else is refused,
// located), values kept with their spans for the checks that follow.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    alerts: Option<Spanned<RawAlerts>>,
    #[serde(default)]
    metrics: Option<Spanned<RawMetrics>>,
    #[serde(default)]
    ui: Option<Spanned<RawUi>>,
    #[serde(default)]
    destination: Option<Spanned<RawConnection>>,
    #[serde(default)]
    offsite: Vec<Spanned<RawOffsite>>,
    #[serde(default)]
    incremental: Option<Spanned<RawIncremental>>,
    #[serde(default)]
    security: Option<Spanned<RawSecurity>>,
    #[serde(default)]
    rehearsal: Option<Spanned<RawRehearsal>>,
    #[serde(default)]
    verify: Option<Spanned<RawVerify>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    sample_percent: Option<Spanned<i64>>,
    sample_max_mib: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRehearsal {
    folder: Option<Spanned<String>>,
    check: Option<Spanned<Vec<String>>>,
    check_timeout: Option<Spanned<String>>,
    expect: Option<String>,
    every: Option<Spanned<String>>,
    from: Option<Spanned<String>>,
    identity_file: Option<Spanned<String>>,
    max_mib_s: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecurity {
    allowed_paths: Option<Spanned<Vec<String>>>,
}

/// Only `[security]` of a `sauve.toml`, whatever else it holds: what a
/// settings change needs, without the secrets the rest may name.
#[derive(Deserialize)]
struct OnlySecurity {
    #[serde(default)]
    security: Option<Spanned<RawSecurity>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIncremental {
    full_every: Option<Spanned<i64>>,
    block_kib: Option<Spanned<i64>>,
    verify_unchanged: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    endpoint: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    path_style: Option<bool>,
    access_key_id: Option<Spanned<String>>,
    access_key_id_env: Option<Spanned<String>>,
    secret_access_key_env: Option<Spanned<String>>,
    secret_access_key_file: Option<Spanned<String>>,
    secret_access_key: Option<Spanned<toml::Value>>,
    part_size_mib: Option<Spanned<i64>>,
    parts_in_flight: Option<Spanned<i64>>,
    /// `[destination]` only: the bucket destination's recipients.
    #[serde(default)]
    encrypt_to: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOffsite {
    url: Spanned<String>,
    keep: Option<Spanned<i64>>,
    retry_after: Option<Spanned<String>>,
    encrypt_to: Option<Spanned<Vec<String>>>,
    // The keys of [destination], overriding it (serde's flatten would lose
    // the spans and the refusal of unknown keys).
    endpoint: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    path_style: Option<bool>,
    access_key_id: Option<Spanned<String>>,
    access_key_id_env: Option<Spanned<String>>,
    secret_access_key_env: Option<Spanned<String>>,
    secret_access_key_file: Option<Spanned<String>>,
    secret_access_key: Option<Spanned<toml::Value>>,
    part_size_mib: Option<Spanned<i64>>,
    parts_in_flight: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUi {
    password_hash: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    on: Option<Spanned<String>>,
    stale_after: Option<Spanned<String>>,
    proven_stale_after: Option<Spanned<String>>,
    #[serde(default)]
    webhook: Vec<Spanned<RawWebhook>>,
    #[serde(default)]
    email: Vec<Spanned<RawEmail>>,
    #[serde(default)]
    command: Vec<Spanned<RawCommand>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Spanned<String>,
    secret_env: Option<Spanned<String>>,
    secret_file: Option<Spanned<String>>,
    /// Refused with a message of its own: secrets are never values.
    secret: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    host: Spanned<String>,
    port: Option<Spanned<i64>>,
    tls: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    password: Option<Spanned<toml::Value>>,
    from: Spanned<String>,
    to: Spanned<Vec<String>>,
    ca_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    run: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    token_env: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    token: Option<Spanned<toml::Value>>,
}

/// Collects located problems while the raw file becomes the model.
struct Check<'a> {
    file: &'a str,
    src: &'a str,
    app: &'a Path,
    env: &'a dyn Environment,
    /// Every problem, located once the whole file is checked (in one pass
    /// for all: `offsets` holds where each starts).
    problems: Vec<Problem>,
    offsets: Vec<usize>,
}

impl Check<'_> {
    /// `[verify]` (behaviour §23).
    fn verify(&mut self, raw: RawVerify) -> VerifySettings {
        let defaults = VerifySettings::default();
        VerifySettings {
            sample_percent: self
                .ranged(&raw.sample_percent, "verify.sample_percent", 0, 100)
                .unwrap_or(defaults.sample_percent),
            sample_max_mib: self
                .ranged(&raw.sample_max_mib, "verify.sample_max_mib", 1, 1 << 20)
                .unwrap_or(defaults.sample_max_mib),
        }
    }

    fn incremental(&mut self, raw: RawIncremental) -> IncrementalSettings {
        let defaults = IncrementalSettings::default();
        let full_every = self
            .ranged(&raw.full_every, "incremental.full_every", 0, 1000)
            .unwrap_or(defaults.full_every);
        let block_kib = self
            .ranged(&raw.block_kib, "incremental.block_kib", 4, 1 << 20)
            .or(defaults.block_kib);
        IncrementalSettings {
            full_every,
            block_kib,
            verify_unchanged: raw.verify_unchanged.unwrap_or(defaults.verify_unchanged),
        }
    }

    /// A duration of at least a minute; `None` when absent or invalid (a
    /// problem then names `key` and `examples`).
    fn duration(
        &mut self,
        v: &Option<Spanned<String>>,
        key: &str,
        examples: &str,
    ) -> Option<Duration> {
        let v = v.as_ref()?;
        let text = v.get_ref().trim();
        let d = parse_duration(text);
        if d.is_none() {
            self.problem(
                v.span(),
                key,
                format!("invalid value \"{text}\" (accepted: a duration of at least a minute, such as {examples})"),
            );
        }
        d
    }

    /// `[rehearsal]` (behaviour §22).
    fn rehearsal(&mut self, raw: RawRehearsal) -> RehearsalSettings {
        let defaults = RehearsalSettings::default();
        let folder = raw.folder.as_ref().and_then(|f| {
            match crate::layout::resolve_path(self.app, f.get_ref()) {
                Ok(r) => Some(r.path),
                Err(e) => {
                    self.problem(f.span(), "rehearsal.folder", e.to_string());
                    None
                }
            }
        });
        let check = match raw.check {
            Some(c) if c.get_ref().is_empty() || c.get_ref()[0].trim().is_empty() => {
                self.problem(
                    c.span(),
                    "rehearsal.check",
                    "names no program (accepted: a list whose first item is the program, such as [\"sqlite3\", \"{data}\", \"PRAGMA integrity_check\"])".to_owned(),
                );
                Vec::new()
            }
            Some(c)
                if c.get_ref().len() > 256
                    || c.get_ref()
                        .iter()
                        .any(|a| a.len() > 4096 || a.contains('\0')) =>
            {
                self.problem(
                    c.span(),
                    "rehearsal.check",
                    "is too long or holds a NUL (accepted: at most 256 items of at most 4096 bytes each)".to_owned(),
                );
                Vec::new()
            }
            Some(c) => c.into_inner(),
            None => Vec::new(),
        };
        let check_timeout = self
            .duration(&raw.check_timeout, "rehearsal.check_timeout", "30m or 2h")
            .unwrap_or(defaults.check_timeout);
        let every = raw.every.as_ref().and_then(|v| {
            let text = v.get_ref().trim();
            let every = match text.to_ascii_lowercase().as_str() {
                "daily" => Ok(Every::Period(Duration::from_secs(86_400))),
                "weekly" => Ok(Every::Period(Duration::from_secs(7 * 86_400))),
                _ if text.contains(char::is_whitespace) => CronEvery::parse(text)
                    .map(|c| Every::Cron(Box::new(c)))
                    .map_err(|e| format!("not a cron expression sauve takes: {e}")),
                _ => parse_duration(text)
                    .filter(|d| *d >= Duration::from_secs(3600))
                    .map(Every::Period)
                    .ok_or_else(|| "not a duration of at least an hour".to_owned()),
            };
            every
                .map_err(|why| {
                    self.problem(
                        v.span(),
                        "rehearsal.every",
                        format!("invalid value \"{text}\": {why} (accepted: daily, weekly, a duration of at least an hour such as 36h or 3d, or a cron expression of minute, hour, day, month and weekday naming times at least an hour apart, such as \"0 3 * * sun\")"),
                    );
                })
                .ok()
        });
        let from = raw.from.as_ref().and_then(|v| {
            let text = v.get_ref().trim();
            if crate::is_store_url(text) {
                Some(text.to_owned())
            } else {
                self.problem(
                    v.span(),
                    "rehearsal.from",
                    format!("invalid value \"{}\" (accepted: an s3://bucket/prefix/ URL, the destination's or an [[offsite]] one; absent, the destination)", crate::shown_url(text)),
                );
                None
            }
        });
        let identity_file = raw.identity_file.as_ref().and_then(|f| {
            let path = match crate::layout::resolve_path(self.app, f.get_ref()) {
                Ok(r) => r.path,
                Err(e) => {
                    self.problem(f.span(), "rehearsal.identity_file", e.to_string());
                    return None;
                }
            };
            match read_secret_file(&path) {
                Ok(_) => Some(path),
                Err(message) => {
                    self.problem(f.span(), "rehearsal.identity_file", message);
                    None
                }
            }
        });
        let max_mib_s = self.ranged(&raw.max_mib_s, "rehearsal.max_mib_s", 1, 1 << 20);
        RehearsalSettings {
            folder,
            check,
            check_timeout,
            expect: raw.expect.map(|e| e.trim().to_owned()),
            every,
            from,
            identity_file,
            max_mib_s,
        }
    }

    fn security(&mut self, raw: RawSecurity) -> SecuritySettings {
        let Some(list) = raw.allowed_paths else {
            return SecuritySettings::default();
        };
        let items: Vec<String> = list.get_ref().iter().map(|p| p.trim().to_owned()).collect();
        if let Some(bad) = items
            .iter()
            .find(|p| !(p.starts_with('/') || crate::layout::is_store_url(p)))
        {
            self.problem(
                list.span(),
                "security.allowed_paths",
                format!(
                    "invalid value \"{bad}\" (accepted: absolute folders and s3:// prefixes, such as [\"/srv/backups\", \"s3://backups/apps/\"])"
                ),
            );
        }
        SecuritySettings {
            allowed_paths: Some(items),
        }
    }

    /// An integer setting within `lo..=hi`; `None` when absent, or when out
    /// of range (a problem then names `key` and what is accepted).
    fn ranged(&mut self, v: &Option<Spanned<i64>>, key: &str, lo: i64, hi: i64) -> Option<u32> {
        let v = v.as_ref()?;
        let n = *v.get_ref();
        match u32::try_from(n) {
            Ok(ok) if (lo..=hi).contains(&n) => Some(ok),
            _ => {
                self.problem(
                    v.span(),
                    key,
                    format!("invalid value {n} (accepted: {lo} to {hi})"),
                );
                None
            }
        }
    }

    fn problem(&mut self, span: Range<usize>, key: &str, message: String) {
        self.offsets.push(span.start);
        self.problems.push(Problem {
            file: self.file.to_owned(),
            at: crate::error::Location { line: 1, column: 1 },
            key: key.to_owned(),
            message,
        });
    }

    /// The problems with their lines and columns.
    fn located(self) -> Vec<Problem> {
        let at = crate::xml::locate_all(self.src, &self.offsets);
        let mut problems = self.problems;
        for (p, at) in problems.iter_mut().zip(at) {
            p.at = at;
        }
        problems
    }

    fn token<T: Copy>(
        &mut self,
        value: &Option<Spanned<String>>,
        key: &str,
        tokens: &[(&str, T)],
        default: T,
    ) -> T {
        let Some(v) = value else { return default };
        let text = v.get_ref().trim();
        match tokens.iter().find(|(t, _)| t.eq_ignore_ascii_case(text)) {
            Some((_, t)) => *t,
            None => {
                let accepted: Vec<&str> = tokens.iter().map(|(t, _)| *t).collect();
                self.problem(
                    v.span(),
                    key,
                    format!(
                        "invalid value \"{text}\" (accepted: {})",
                        accepted.join(", ")
                    ),
                );
                default
            }
        }
    }

    /// The value of the environment variable `e` names (the `*_env` key
    /// `env_key`), or a located problem: a bad name, or a variable unset.
    fn env_value(&mut self, e: &Spanned<String>, env_key: &str) -> Option<String> {
        let var = e.get_ref().trim().to_owned();
        if var.is_empty() || !var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            self.problem(
                e.span(),
                env_key,
                format!("invalid value \"{var}\" (accepted: an environment variable name: letters, digits and _)"),
            );
            return None;
        }
        match self.env.var(&var) {
            Some(v) if !v.is_empty() => Some(v),
            _ => {
                self.problem(
                    e.span(),
                    env_key,
                    format!("the environment variable {var} is not set or empty (accepted: the name of a variable set for sauve, e.g. in its service unit)"),
                );
                None
            }
        }
    }

    /// A secret from `<name>_env` or `<name>_file`; a literal `<name>` is refused.
    fn secret(
        &mut self,
        key: &str,
        env: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        literal: &Option<Spanned<toml::Value>>,
    ) -> Option<Secret> {
        let name = key.rsplit('.').next().unwrap_or(key).to_owned();
        if let Some(l) = literal {
            self.problem(
                l.span(),
                key,
                format!(
                    "a secret is never a value in the file (accepted: {name}_env = \"VARIABLE\" naming an environment variable, or {name}_file = \"PATH\" naming a file of mode 0600)"
                ),
            );
        }
        match (env, file) {
            (Some(e), Some(f)) => {
                let at = e.span().start.min(f.span().start);
                self.problem(
                    at..at,
                    key,
                    format!("both {name}_env and {name}_file are given (accepted: one of them)"),
                );
                None
            }
            (Some(e), None) => {
                let var = e.get_ref().trim().to_owned();
                self.env_value(e, &format!("{key}_env"))
                    .map(|v| Secret::new(v, SecretFrom::Env(var)))
            }
            (None, Some(f)) => {
                let file_key = format!("{key}_file");
                let path = crate::layout::resolve_path(self.app, f.get_ref())
                    .map(|r| r.path)
                    .map_err(|e| e.to_string());
                let path = match path {
                    Ok(p) => p,
                    Err(e) => {
                        self.problem(f.span(), &file_key, e);
                        return None;
                    }
                };
                match read_secret_file(&path) {
                    Ok(v) => Some(Secret::new(v, SecretFrom::File(path))),
                    Err(message) => {
                        self.problem(f.span(), &file_key, message);
                        None
                    }
                }
            }
            (None, None) => None,
        }
    }

    /// `[destination]`, or the connection keys of an `[[offsite]]` entry.
    fn connection(&mut self, key: &str, raw: RawConnection) -> StoreConnection {
        let endpoint = raw
            .endpoint
            .as_ref()
            .map(|e| self.url(e, &format!("{key}.endpoint")));
        let text = |v: &Option<Spanned<String>>| v.as_ref().map(|v| v.get_ref().trim().to_owned());
        let access_key_id = match (&raw.access_key_id, &raw.access_key_id_env) {
            (Some(_), Some(e)) => {
                self.problem(
                    e.span(),
                    &format!("{key}.access_key_id_env"),
                    "both access_key_id and access_key_id_env are given (accepted: one of them)"
                        .into(),
                );
                None
            }
            (Some(v), None) => Some(v.get_ref().trim().to_owned()),
            (None, Some(e)) => self.env_value(e, &format!("{key}.access_key_id_env")),
            (None, None) => None,
        };
        let secret_access_key = self.secret(
            &format!("{key}.secret_access_key"),
            &raw.secret_access_key_env,
            &raw.secret_access_key_file,
            &raw.secret_access_key,
        );
        let part_size_mib =
            self.ranged(&raw.part_size_mib, &format!("{key}.part_size_mib"), 5, 512);
        let parts_in_flight = self.ranged(
            &raw.parts_in_flight,
            &format!("{key}.parts_in_flight"),
            1,
            16,
        );
        StoreConnection {
            endpoint,
            region: text(&raw.region),
            path_style: raw.path_style,
            access_key_id,
            secret_access_key,
            part_size_mib,
            parts_in_flight,
        }
    }

    /// One `[[offsite]]` entry.
    fn offsite(&mut self, i: usize, raw: Spanned<RawOffsite>) -> OffsiteSettings {
        let key = format!("offsite[{i}]");
        let raw = raw.into_inner();
        let url = raw.url.get_ref().trim().to_owned();
        // Any `scheme://` is a store's URL (never a folder), and s3 the one
        // sauve reaches.
        let scheme = sauve_durable::url_scheme(&url);
        let is_s3 = scheme.is_some_and(|s| s.eq_ignore_ascii_case("s3"));
        if url.is_empty() || (is_s3 && url.len() <= 5) || (scheme.is_some() && !is_s3) {
            self.problem(
                raw.url.span(),
                &format!("{key}.url"),
                format!("invalid value \"{url}\" (accepted: s3://bucket/prefix/, or a folder)"),
            );
        } else if !is_s3 {
            // The folder as the off-site copier opens it: relative to the app.
            let folder = self.app.join(&url);
            if crate::layout::is_inside_app(self.app, &folder) {
                self.problem(
                    raw.url.span(),
                    &format!("{key}.url"),
                    format!(
                        "invalid value \"{url}\": the folder \"{}\" is inside the app folder \"{}\", and each set would be copied into the live app (accepted: a folder outside the app, such as ../Offsite/, or s3://bucket/prefix/)",
                        crate::layout::lexical(&folder).display(),
                        self.app.display()
                    ),
                );
            }
        }
        let keep = raw.keep.as_ref().and_then(|k| {
            let n = *k.get_ref();
            if (1..=9999).contains(&n) {
                u32::try_from(n).ok()
            } else {
                self.problem(
                    k.span(),
                    &format!("{key}.keep"),
                    format!("invalid value {n} (accepted: 1 to 9999 sets)"),
                );
                None
            }
        });
        let retry_after = match &raw.retry_after {
            Some(r) => match parse_duration(r.get_ref()) {
                Some(d) => d,
                _ => {
                    self.problem(
                        r.span(),
                        &format!("{key}.retry_after"),
                        format!("invalid value \"{}\" (accepted: a duration of a minute or more, as 5m, 1h or 2d)", r.get_ref()),
                    );
                    Duration::from_secs(60)
                }
            },
            None => Duration::from_secs(60),
        };
        let connection = self.connection(
            &key,
            RawConnection {
                endpoint: raw.endpoint,
                region: raw.region,
                path_style: raw.path_style,
                access_key_id: raw.access_key_id,
                access_key_id_env: raw.access_key_id_env,
                secret_access_key_env: raw.secret_access_key_env,
                secret_access_key_file: raw.secret_access_key_file,
                secret_access_key: raw.secret_access_key,
                part_size_mib: raw.part_size_mib,
                parts_in_flight: raw.parts_in_flight,
                encrypt_to: None,
            },
        );
        let encrypt_to = self.recipients(&key, &raw.encrypt_to);
        OffsiteSettings {
            url,
            keep,
            retry_after,
            encrypt_to,
            connection,
        }
    }

    /// `encrypt_to` of the table `key`: age recipients, as age-keygen prints them.
    fn recipients(&mut self, key: &str, raw: &Option<Spanned<Vec<String>>>) -> Vec<String> {
        let Some(list) = raw else {
            return Vec::new();
        };
        let keys: Vec<String> = list.get_ref().iter().map(|k| k.trim().to_owned()).collect();
        let bad = keys.iter().find(|k| {
            !(k.starts_with("age1")
                && k.len() > 20
                && k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        });
        if keys.is_empty() || bad.is_some() {
            self.problem(
                list.span(),
                &format!("{key}.encrypt_to"),
                format!(
                    "invalid value {:?} (accepted: a list of age recipients, as age-keygen prints them: [\"age1…\"])",
                    bad.cloned().unwrap_or_default()
                ),
            );
        }
        keys
    }

    fn url(&mut self, v: &Spanned<String>, key: &str) -> String {
        let text = v.get_ref().trim();
        if let Err(why) = check_http_url(text) {
            self.problem(
                v.span(),
                key,
                format!("invalid value \"{text}\": {why} (accepted: an http:// or https:// URL with a host)"),
            );
        }
        text.to_owned()
    }

    fn address(&mut self, text: &str, span: Range<usize>, key: &str) {
        if !is_email_address(text) {
            self.problem(
                span,
                key,
                format!(
                    "invalid value \"{text}\" (accepted: an email address such as ops@example.com)"
                ),
            );
        }
    }

    fn password_hash(&mut self, h: &Spanned<String>) -> Option<String> {
        let text = h.get_ref().trim();
        let ok = argon2::password_hash::PasswordHash::new(text)
            .is_ok_and(|p| p.algorithm.as_str().starts_with("argon2") && p.hash.is_some());
        if ok {
            Some(text.to_owned())
        } else {
            self.problem(
                h.span(),
                "ui.password_hash",
                "is not an argon2 hash (accepted: a PHC string such as $argon2id$v=19$m=19456,t=2,p=1$…, as `sauve ui --hash-password` prints it)".to_owned(),
            );
            None
        }
    }

    fn alerts(&mut self, raw: Spanned<RawAlerts>) -> AlertSettings {
        let raw = raw.into_inner();
        let on = self.token(
            &raw.on,
            "alerts.on",
            &[
                ("give-up", AlertOn::GiveUp),
                ("failure", AlertOn::Failure),
                ("always", AlertOn::Always),
            ],
            AlertOn::GiveUp,
        );
        let stale_after =
            self.duration(&raw.stale_after, "alerts.stale_after", "26h, 90m or 2d 12h");
        let proven_stale_after = self.duration(
            &raw.proven_stale_after,
            "alerts.proven_stale_after",
            "8d, 36h or 2d 12h",
        );
        let mut webhooks = Vec::new();
        for (i, w) in raw.webhook.into_iter().enumerate() {
            webhooks.push(self.webhook(&format!("alerts.webhook[{i}]"), w.into_inner()));
        }
        let mut emails = Vec::new();
        for (i, e) in raw.email.into_iter().enumerate() {
            emails.push(self.email(&format!("alerts.email[{i}]"), e.into_inner()));
        }
        let mut commands = Vec::new();
        for (i, c) in raw.command.into_iter().enumerate() {
            commands.push(self.command(&format!("alerts.command[{i}]"), c.into_inner()));
        }
        AlertSettings {
            on,
            stale_after,
            proven_stale_after,
            webhooks,
            emails,
            commands,
        }
    }

    /// `[[alerts.webhook]]`, the one `key` names.
    fn webhook(&mut self, key: &str, w: RawWebhook) -> WebhookSettings {
        let url = self.url(&w.url, &format!("{key}.url"));
        let secret = self.secret(
            &format!("{key}.secret"),
            &w.secret_env,
            &w.secret_file,
            &w.secret,
        );
        WebhookSettings { url, secret }
    }

    /// `[[alerts.email]]`, the one `key` names.
    fn email(&mut self, key: &str, e: RawEmail) -> EmailSettings {
        let tls = self.token(
            &e.tls,
            &format!("{key}.tls"),
            &[
                ("starttls", SmtpTls::StartTls),
                ("tls", SmtpTls::Tls),
                ("none", SmtpTls::None),
            ],
            SmtpTls::StartTls,
        );
        let port = self.smtp_port(&e.port, key, tls);
        let host = e.host.get_ref().trim().to_owned();
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
            self.problem(
                e.host.span(),
                &format!("{key}.host"),
                format!("invalid value \"{host}\" (accepted: a host name or an IP address, such as smtp.example.com)"),
            );
        }
        let from = e.from.get_ref().trim().to_owned();
        self.address(&from, e.from.span(), &format!("{key}.from"));
        let to: Vec<String> = e.to.get_ref().iter().map(|t| t.trim().to_owned()).collect();
        if to.is_empty() {
            self.problem(
                e.to.span(),
                &format!("{key}.to"),
                "no recipient (accepted: a list of email addresses, such as [\"ops@example.com\"])"
                    .to_owned(),
            );
        }
        for t in &to {
            self.address(t, e.to.span(), &format!("{key}.to"));
        }
        let password = self.secret(
            &format!("{key}.password"),
            &e.password_env,
            &e.password_file,
            &e.password,
        );
        let user = e.user.map(|u| u.into_inner().trim().to_owned());
        if password.is_some() && user.is_none() {
            self.problem(
                e.host.span(),
                &format!("{key}.user"),
                "a password is given without a user (accepted: user = \"login\" beside the password)".to_owned(),
            );
        }
        let ca_file = self.ca_file(&e.ca_file, key);
        EmailSettings {
            host,
            port,
            tls,
            user,
            password,
            from,
            to,
            ca_file,
        }
    }

    /// An email notifier's `port`, by default the one of its `tls`.
    fn smtp_port(&mut self, port: &Option<Spanned<i64>>, key: &str, tls: SmtpTls) -> u16 {
        match port {
            None => tls.default_port(),
            Some(p) => match u16::try_from(*p.get_ref()) {
                Ok(port) if port > 0 => port,
                _ => {
                    self.problem(
                        p.span(),
                        &format!("{key}.port"),
                        format!("invalid value \"{}\" (accepted: a port from 1 to 65535; default 587 with starttls, 465 with tls, 25 with none)", p.get_ref()),
                    );
                    tls.default_port()
                }
            },
        }
    }

    /// An email notifier's `ca_file`: a file, resolved against the app.
    fn ca_file(&mut self, ca_file: &Option<Spanned<String>>, key: &str) -> Option<PathBuf> {
        ca_file.as_ref().and_then(
            |c| match crate::layout::resolve_path(self.app, c.get_ref()) {
                Ok(r) if r.path.is_file() => Some(r.path),
                Ok(r) => {
                    self.problem(
                        c.span(),
                        &format!("{key}.ca_file"),
                        format!(
                            "\"{}\" is not a file (accepted: a PEM file of CA certificates)",
                            r.path.display()
                        ),
                    );
                    None
                }
                Err(why) => {
                    self.problem(c.span(), &format!("{key}.ca_file"), why.to_string());
                    None
                }
            },
        )
    }

    /// `[[alerts.command]]`, the one `key` names.
    fn command(&mut self, key: &str, c: RawCommand) -> CommandSettings {
        let run = c.run.get_ref().trim().to_owned();
        if run.is_empty() {
            self.problem(
                c.run.span(),
                &format!("{key}.run"),
                "empty command (accepted: a shell command, run with sh -c)".to_owned(),
            );
        }
        CommandSettings { run }
    }
}

/// Reads a secret file: it must be a regular file readable by its owner
/// only (mode 0600 or stricter); one trailing newline is dropped.
fn read_secret_file(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| {
        format!(
            "cannot read \"{}\": {e} (accepted: a file of mode 0600)",
            path.display()
        )
    })?;
    if !meta.is_file() {
        return Err(format!(
            "\"{}\" is not a file (accepted: a file of mode 0600)",
            path.display()
        ));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "the secret file \"{}\" has mode {mode:04o}: others can read it (accepted: mode 0600; chmod 600 \"{}\")",
            path.display(),
            path.display()
        ));
    }
    if meta.len() > crate::limits::MAX_SECRET_BYTES {
        return Err(format!(
            "the secret file \"{}\" holds {} bytes (accepted: {})",
            path.display(),
            meta.len(),
            crate::error::Limit::Bytes(crate::limits::MAX_SECRET_BYTES)
        ));
    }
    let text = crate::limits::read_bounded(path, crate::limits::MAX_SECRET_BYTES)
        .map_err(|e| e.to_string())
        .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned()))
        .map_err(|e| {
            format!(
                "cannot read \"{}\": {e} (accepted: a UTF-8 file of mode 0600)",
                path.display()
            )
        })?;
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        return Err(format!("the secret file \"{}\" is empty", path.display()));
    }
    Ok(value.to_owned())
}

/// `http://host[:port][/path]` or `https://…`.
fn check_http_url(text: &str) -> Result<(), &'static str> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or("not an http or https URL")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.contains(char::is_whitespace) || text.contains(char::is_whitespace) {
        return Err("it contains a space");
    }
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (h, rest) = v6.split_once(']').ok_or("an IPv6 host without its ]")?;
        (h, rest.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("no host");
    }
    if let Some(p) = port
        && !p.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err("the port is not a number from 1 to 65535");
    }
    Ok(())
}

/// `local@domain`, without spaces or angle brackets.
fn is_email_address(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.contains(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == ',')
}

/// `26h`, `90m`, `2d 12h`, `1h30m` (jiff's friendly format), at least a minute.
fn parse_duration(text: &str) -> Option<Duration> {
    let d: jiff::SignedDuration = text.parse().ok().or_else(|| {
        let span: jiff::Span = text.parse().ok()?;
        span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .ok()
    })?;
    let d = Duration::try_from(d).ok()?;
    (d >= Duration::from_secs(60)).then_some(d)
}

/// Turns serde's words for a bad key into the house style.
fn rephrase(message: &str) -> String {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((key, expected)) = rest.split_once("`, expected ")
    {
        // serde writes "`a` or `b`" for two keys, "one of `a`, `b`, `c`" beyond.
        let accepted = expected
            .trim_start_matches("one of ")
            .replace("` or `", ", ")
            .replace('`', "");
        return format!("unknown key \"{key}\" (accepted: {accepted})");
    }
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some(key) = rest.strip_suffix('`')
    {
        return format!("missing key \"{key}\"");
    }
    message.to_owned()
}

/// Parses `text`, the contents of `file` (the name errors show), resolving
/// secrets from `env` and files relative to `app`.
pub fn parse_sauve_toml(
    text: &str,
    file: &str,
    app: &Path,
    env: &dyn Environment,
) -> Result<SauveToml, SettingsError> {
    crate::limits::check_size(text.len(), file, crate::limits::MAX_FILE_BYTES)?;
    let src = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    // toml bounds nesting itself (80 levels of arrays, inline tables and
    // dotted keys, unless its `unbounded` feature is on, which no crate of
    // the workspace turns on): a deeper file is an ordinary error.
    let raw: Raw = toml::from_str(src).map_err(|e| {
        let at = crate::xml::locate(src, e.span().map_or(0, |s| s.start));
        SettingsError::Malformed {
            file: file.to_owned(),
            at,
            reason: rephrase(e.message()),
        }
    })?;
    let mut check = Check {
        file,
        src,
        app,
        env,
        problems: Vec::new(),
        offsets: Vec::new(),
    };
    let alerts = raw.alerts.map(|a| check.alerts(a)).unwrap_or_default();
    let metrics = match raw.metrics {
        Some(m) => {
            let m = m.into_inner();
            MetricsSettings {
                token: check.secret("metrics.token", &m.token_env, &m.token_file, &m.token),
            }
        }
        None => MetricsSettings::default(),
    };
    let ui = match raw.ui {
        Some(u) => UiSettings {
            password_hash: u
                .into_inner()
                .password_hash
                .and_then(|h| check.password_hash(&h)),
        },
        None => UiSettings::default(),
    };
    let (destination, destination_encrypt_to) = match raw.destination {
        Some(d) => {
            let d = d.into_inner();
            let recipients = check.recipients("destination", &d.encrypt_to);
            (check.connection("destination", d), recipients)
        }
        None => Default::default(),
    };
    let offsite = raw
        .offsite
        .into_iter()
        .enumerate()
        .map(|(i, o)| check.offsite(i, o))
        .collect::<Vec<_>>();
    let incremental = raw
        .incremental
        .map(|i| check.incremental(i.into_inner()))
        .unwrap_or_default();
    let security = raw
        .security
        .map(|s| check.security(s.into_inner()))
        .unwrap_or_default();
    let rehearsal = raw
        .rehearsal
        .map(|r| check.rehearsal(r.into_inner()))
        .unwrap_or_default();
    let verify = raw
        .verify
        .map(|v| check.verify(v.into_inner()))
        .unwrap_or_default();
    if !check.problems.is_empty() {
        return Err(SettingsError::Invalid {
            problems: check.located(),
        });
    }
    Ok(SauveToml {
        source: None,
        alerts,
        metrics,
        ui,
        destination_encrypt_to,
        destination,
        offsite,
        incremental,
        security,
        rehearsal,
        verify,
    })
}

/// `[security]` of `app`'s `sauve.toml` alone (the defaults when there is
/// none), checked as [`parse_sauve_toml`] checks it; the rest of the file
/// is not read, so that a secret it names need not be at hand.
pub fn load_security(app: &Path) -> Result<SecuritySettings, SettingsError> {
    let Some(path) = locate_sauve_toml(app) else {
        return Ok(SecuritySettings::default());
    };
    let file = path.display().to_string();
    let bytes = crate::layout::read_settings_file(&path)?;
    let text = String::from_utf8_lossy(&bytes);
    let src = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let raw: OnlySecurity = toml::from_str(src).map_err(|e| SettingsError::Malformed {
        file: file.clone(),
        at: crate::xml::locate(src, e.span().map_or(0, |s| s.start)),
        reason: rephrase(e.message()),
    })?;
    let mut check = Check {
        file: &file,
        src,
        app,
        env: &ProcessEnvironment,
        problems: Vec::new(),
        offsets: Vec::new(),
    };
    let security = raw
        .security
        .map(|s| check.security(s.into_inner()))
        .unwrap_or_default();
    if !check.problems.is_empty() {
        return Err(SettingsError::Invalid {
            problems: check.located(),
        });
    }
    Ok(security)
}

/// Loads the effective `sauve.toml` of `app` (the default, every feature
/// off, when there is none), secrets from the process environment.
pub fn load_sauve_toml(app: &Path) -> Result<SauveToml, SettingsError> {
    load_sauve_toml_with(app, &ProcessEnvironment)
}

/// [`load_sauve_toml`] with the environment given.
pub fn load_sauve_toml_with(app: &Path, env: &dyn Environment) -> Result<SauveToml, SettingsError> {
    let Some(path) = locate_sauve_toml(app) else {
        return Ok(SauveToml::default());
    };
    load_sauve_toml_file(&path, app, env)
}

/// Reads and validates one `sauve.toml`, for `sauve settings validate`.
pub fn load_sauve_toml_file(
    path: &Path,
    app: &Path,
    env: &dyn Environment,
) -> Result<SauveToml, SettingsError> {
    let bytes = crate::layout::read_settings_file(path)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        SettingsError::NotUtf8 {
            file: path.display().to_string(),
            at: crate::xml::locate(&String::from_utf8_lossy(&bytes[..valid]), valid),
            byte: bytes.get(valid).copied().unwrap_or(0),
        }
    })?;
    let mut s = parse_sauve_toml(&text, &path.display().to_string(), app, env)?;
    s.source = Some(path.to_path_buf());
    Ok(s)
}

impl SauveToml {
    /// The settings as `sauve settings show --json` prints them: secrets as `***`.
    pub fn to_json(&self) -> serde_json::Value {
        let secret = |s: &Option<Secret>| {
            s.as_ref().map(|s| match &s.from {
                SecretFrom::Env(v) => serde_json::json!({"env": v, "value": "***"}),
                SecretFrom::File(p) => serde_json::json!({"file": p, "value": "***"}),
            })
        };
        let a = &self.alerts;
        let connection = |c: &StoreConnection| {
            serde_json::json!({
                "endpoint": c.endpoint.as_deref().map(crate::shown_url), "region": c.region, "path_style": c.path_style,
                "access_key_id": c.access_key_id, "secret_access_key": secret(&c.secret_access_key),
                "part_size_mib": c.part_size_mib, "parts_in_flight": c.parts_in_flight,
            })
        };
        let mut destination = connection(&self.destination);
        destination["encrypt_to"] = serde_json::json!(self.destination_encrypt_to);
        serde_json::json!({
            "source": self.source,
            "alerts": {
                "on": a.on.token(),
                "stale_after": a.stale_after.map(|d| format!("{}s", d.as_secs())),
                "proven_stale_after": a.proven_stale_after.map(|d| format!("{}s", d.as_secs())),
                "webhook": a.webhooks.iter().map(|w| serde_json::json!({"url": crate::shown_url(&w.url), "secret": secret(&w.secret)})).collect::<Vec<_>>(),
                "email": a.emails.iter().map(|e| serde_json::json!({
                    "host": e.host, "port": e.port, "tls": e.tls.token(), "user": e.user,
                    "password": secret(&e.password), "from": e.from, "to": e.to, "ca_file": e.ca_file,
                })).collect::<Vec<_>>(),
                "command": a.commands.iter().map(|c| serde_json::json!({"run": c.run})).collect::<Vec<_>>(),
            },
            "metrics": {"token": secret(&self.metrics.token)},
            "ui": {"password_hash": self.ui.password_hash.as_ref().map(|_| "***")},
            "destination": destination,
            "security": {"allowed_paths": self.security.allowed_paths},
            "incremental": {
                "full_every": self.incremental.full_every,
                "block_kib": self.incremental.block_kib,
                "verify_unchanged": self.incremental.verify_unchanged,
            },
            "rehearsal": {
                "folder": self.rehearsal.folder, "check": self.rehearsal.check,
                "check_timeout": format!("{}s", self.rehearsal.check_timeout.as_secs()), "expect": self.rehearsal.expect,
                "every": self.rehearsal.every.as_ref().map(Every::text),
                "from": self.rehearsal.from.as_deref().map(crate::shown_url),
                "identity_file": self.rehearsal.identity_file, "max_mib_s": self.rehearsal.max_mib_s,
            },
            "verify": {
                "sample_percent": self.verify.sample_percent,
                "sample_max_mib": self.verify.sample_max_mib,
            },
            "offsite": self.offsite.iter().map(|o| serde_json::json!({
                "url": crate::shown_url(&o.url), "keep": o.keep, "retry_after": format!("{}s", o.retry_after.as_secs()),
                "encrypt_to": o.encrypt_to,
                "connection": connection(&o.connection),
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SauveToml, String> {
        let env = |n: &str| match n {
            "S3_KEY" => Some("GKexample".to_owned()),
            "S3_SECRET" => Some("very-secret".to_owned()),
            _ => None,
        };
        parse_sauve_toml(text, "sauve.toml", Path::new("/app"), &env).map_err(|e| e.to_string())
    }

    #[test]
    fn verify_settings_default_to_a_2_percent_sample_and_bad_values_are_named() {
        let none = parse("").unwrap();
        assert_eq!(none.verify, VerifySettings::default());
        assert_eq!(
            (none.verify.sample_percent, none.verify.sample_max_mib),
            (2, 64)
        );
        let set = parse("[verify]\nsample_percent = 0\nsample_max_mib = 512\n").unwrap();
        assert_eq!(
            (set.verify.sample_percent, set.verify.sample_max_mib),
            (0, 512)
        );
        let bad = parse("[verify]\nsample_percent = 101\nsample_max_mib = 0\n").unwrap_err();
        assert!(bad.contains("verify.sample_percent"), "{bad}");
        assert!(
            bad.contains("invalid value 101 (accepted: 0 to 100)"),
            "{bad}"
        );
        assert!(bad.contains("verify.sample_max_mib"), "{bad}");
        assert!(
            bad.contains("invalid value 0 (accepted: 1 to 1048576)"),
            "{bad}"
        );
        let unknown = parse("[verify]\nsample = 3\n").unwrap_err();
        assert!(
            unknown.contains("sample_percent, sample_max_mib"),
            "{unknown}"
        );
    }

    #[test]
    fn rehearsal_settings_are_read_and_each_bad_value_is_named_with_what_is_accepted() {
        let s = parse(
            "[rehearsal]\nevery = \"weekly\"\ncheck = [\"sqlite3\", \"{data}\", \"PRAGMA integrity_check\"]\nexpect = \" ok \"\ncheck_timeout = \"2h\"\nmax_mib_s = 8\nfrom = \"s3://b/p/\"\nfolder = \"../rehearse\"\n\n[alerts]\nproven_stale_after = \"8d\"\n",
        )
        .unwrap();
        let r = &s.rehearsal;
        assert_eq!(
            r.every,
            Some(Every::Period(Duration::from_secs(7 * 86_400)))
        );
        assert_eq!(r.check, ["sqlite3", "{data}", "PRAGMA integrity_check"]);
        assert_eq!(r.expect.as_deref(), Some("ok"));
        assert_eq!(r.check_timeout, Duration::from_secs(7200));
        assert_eq!(
            (r.max_mib_s, r.from.as_deref()),
            (Some(8), Some("s3://b/p/"))
        );
        assert_eq!(r.folder.as_deref(), Some(Path::new("/rehearse")));
        assert_eq!(
            s.alerts.proven_stale_after,
            Some(Duration::from_secs(8 * 86_400))
        );
        let none = parse("").unwrap().rehearsal;
        assert_eq!(none, RehearsalSettings::default());
        assert_eq!(none.check_timeout, Duration::from_secs(1800));
        for (text, said) in [
            (
                "every = \"10m\"",
                "rehearsal.every: invalid value \"10m\": not a duration of at least an hour (accepted: daily, weekly, a duration of at least an hour",
            ),
            (
                "check = []",
                "rehearsal.check: names no program (accepted: a list whose first item is the program",
            ),
            (
                "check = [\"a\\u0000b\"]",
                "rehearsal.check: is too long or holds a NUL",
            ),
            (
                "from = \"/srv/x\"",
                "rehearsal.from: invalid value \"/srv/x\" (accepted: an s3://bucket/prefix/ URL",
            ),
            (
                "max_mib_s = 0",
                "rehearsal.max_mib_s: invalid value 0 (accepted: 1 to 1048576)",
            ),
            (
                "check_timeout = \"soon\"",
                "rehearsal.check_timeout: invalid value \"soon\"",
            ),
            (
                "identity_file = \"/nonexistent/key\"",
                "rehearsal.identity_file: cannot read \"/nonexistent/key\"",
            ),
            (
                "whenever = 1",
                "unknown key \"whenever\" (accepted: folder, check, check_timeout, expect, every, from, identity_file, max_mib_s)",
            ),
        ] {
            let e = parse(&format!("[rehearsal]\n{text}\n")).unwrap_err();
            assert!(e.contains(said), "{text}: {e}");
        }
    }

    #[test]
    fn settings_show_never_prints_credentials_written_in_a_url() {
        // Found in review: `settings show --json` printed a store
        // connection's endpoint, and an off-site url, as written.
        let s = parse(
            "[destination]\nendpoint = \"http://GK:SECRET1@127.0.0.1:3900\"\n\n[[offsite]]\nurl = \"s3://u:SECRET2@backups/notes/?t=SECRET3\"\nendpoint = \"https://k:SECRET4@s3.example.com/x?sig=SECRET5\"\n",
        )
        .unwrap();
        let json = s.to_json();
        let text = json.to_string();
        for secret in ["SECRET", "GK:", "u:", "k:"] {
            assert!(!text.contains(secret), "{secret}: {text}");
        }
        assert_eq!(json["destination"]["endpoint"], "http://127.0.0.1:3900");
        assert_eq!(json["offsite"][0]["url"], "s3://backups/notes/");
        assert_eq!(
            json["offsite"][0]["connection"]["endpoint"],
            "https://s3.example.com/x"
        );
        // The settings themselves keep what connects.
        assert_eq!(
            s.destination.endpoint.as_deref(),
            Some("http://GK:SECRET1@127.0.0.1:3900")
        );
    }

    #[test]
    fn destination_and_offsite_tables_are_read_and_checked() {
        let s = parse(
            "[destination]\nendpoint = \"http://127.0.0.1:3900\"\nregion = \"garage\"\npath_style = true\naccess_key_id_env = \"S3_KEY\"\nsecret_access_key_env = \"S3_SECRET\"\n\n[[offsite]]\nurl = \"s3://backups/notes/\"\nkeep = 7\nretry_after = \"5m\"\n\n[[offsite]]\nurl = \"../Offsite\"\nregion = \"other\"\n",
        )
        .unwrap();
        assert_eq!(
            s.destination.endpoint.as_deref(),
            Some("http://127.0.0.1:3900")
        );
        assert_eq!(s.destination.access_key_id.as_deref(), Some("GKexample"));
        assert_eq!(
            s.destination.secret_access_key.as_ref().unwrap().expose(),
            "very-secret"
        );
        assert_eq!(s.offsite.len(), 2);
        assert_eq!(s.offsite[0].keep, Some(7));
        assert_eq!(s.offsite[0].retry_after, Duration::from_secs(300));
        assert_eq!(s.offsite[1].retry_after, Duration::from_secs(60));
        let over = s.offsite[1].connection.over(&s.destination);
        assert_eq!(over.region.as_deref(), Some("other"));
        assert_eq!(over.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert!(!s.to_json().to_string().contains("very-secret"));
        assert!(s.destination_encrypt_to.is_empty());
        let key = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        let e = parse(&format!("[destination]\nencrypt_to = [\"{key}\"]\n")).unwrap();
        assert_eq!(e.destination_encrypt_to, [key]);
        assert_eq!(e.to_json()["destination"]["encrypt_to"][0], key);

        for (text, expected) in [
            (
                "[destination]\nencrypt_to = [\"ssh-ed25519 AAAA\"]\n",
                "destination.encrypt_to: invalid value \"ssh-ed25519 AAAA\" (accepted: a list of age recipients",
            ),
            (
                "[destination]\nsecret_access_key = \"abc\"\n",
                "sauve.toml:2:21: destination.secret_access_key: a secret is never a value in the file",
            ),
            (
                "[[offsite]]\nurl = \"s3://\"\n",
                "offsite[0].url: invalid value \"s3://\" (accepted: s3://bucket/prefix/, or a folder)",
            ),
            (
                "[[offsite]]\nurl = \"gs://backups/app/\"\n",
                "offsite[0].url: invalid value \"gs://backups/app/\" (accepted: s3://bucket/prefix/, or a folder)",
            ),
            (
                "[[offsite]]\nurl = \"x\"\nkeep = 0\n",
                "offsite[0].keep: invalid value 0 (accepted: 1 to 9999 sets)",
            ),
            (
                "[[offsite]]\nurl = \"x\"\nretry_after = \"2s\"\n",
                "offsite[0].retry_after: invalid value \"2s\"",
            ),
            (
                "[[offsite]]\nurl = \"x\"\nparts_in_flight = 99\n",
                "offsite[0].parts_in_flight: invalid value 99 (accepted: 1 to 16)",
            ),
            (
                "[[offsite]]\nurl = \"x\"\nendpoint = \"s3.example.com\"\n",
                "offsite[0].endpoint: invalid value \"s3.example.com\"",
            ),
            (
                "[destination]\naccess_key_id_env = \"NOT_SET\"\n",
                "the environment variable NOT_SET is not set",
            ),
            (
                "[[offsite]]\nurl = \"x\"\nbucket = \"y\"\n",
                "sauve.toml:3:1: unknown key \"bucket\" (accepted: url, keep",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn urls_durations_and_addresses_are_checked() {
        for ok in [
            "https://hooks.example.com/x?y=1",
            "http://127.0.0.1:8080/alert",
            "http://[::1]:9/x",
        ] {
            assert_eq!(check_http_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "ftp://x",
            "https://",
            "http://host:99999/",
            "http://host:0/",
            "hooks.example.com",
            "http://a b/",
        ] {
            assert!(check_http_url(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration("26h"), Some(Duration::from_secs(26 * 3600)));
        assert_eq!(parse_duration("90m"), Some(Duration::from_secs(5400)));
        assert_eq!(
            parse_duration("2d 12h"),
            Some(Duration::from_secs(60 * 3600))
        );
        assert_eq!(parse_duration("30s"), None, "under a minute");
        assert_eq!(parse_duration("soon"), None);
        assert!(is_email_address("ops@example.com"));
        for bad in [
            "ops",
            "@example.com",
            "ops@",
            "a b@c.d",
            "<ops@x.y>",
            "ops@.x",
        ] {
            assert!(!is_email_address(bad), "{bad}");
        }
    }

    #[test]
    fn serde_words_become_the_house_style() {
        assert_eq!(
            rephrase("unknown field `webhok`, expected one of `on`, `stale_after`, `webhook`"),
            "unknown key \"webhok\" (accepted: on, stale_after, webhook)"
        );
        assert_eq!(rephrase("missing field `url`"), "missing key \"url\"");
    }

    #[test]
    fn a_secret_never_shows() {
        let s = Secret::new("hunter2", SecretFrom::Env("X".into()));
        assert_eq!(s.to_string(), "***");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn incremental_settings_default_off_and_bad_values_are_named() {
        let none = parse("").unwrap();
        assert_eq!(none.incremental, IncrementalSettings::default());
        assert!(!none.incremental.is_on());
        let on = parse("[incremental]\nfull_every = 7\nblock_kib = 256\nverify_unchanged = true\n")
            .unwrap();
        assert_eq!(
            on.incremental,
            IncrementalSettings {
                full_every: 7,
                block_kib: Some(256),
                verify_unchanged: true
            }
        );
        assert!(on.incremental.is_on());
        let auto = parse("[incremental]\nfull_every = 7\n").unwrap();
        assert_eq!(auto.incremental.block_kib, None, "chosen per file");
        let bad = parse("[incremental]\nfull_every = -1\nblock_kib = 2\n").unwrap_err();
        assert!(bad.contains("incremental.full_every"), "{bad}");
        assert!(
            bad.contains("invalid value -1 (accepted: 0 to 1000)"),
            "{bad}"
        );
        assert!(bad.contains("incremental.block_kib"), "{bad}");
        let unknown = parse("[incremental]\nfull_evry = 3\n").unwrap_err();
        assert!(
            unknown.contains("accepted: full_every, block_kib, verify_unchanged"),
            "{unknown}"
        );
    }
}
