//! `APP/Logs/sauve-state.json` (behaviour §9.2, §9.3 and §15): the last
//! backup, what the scheduler remembers, the compression ratio and the data
//! file's identity. Only the state keeper writes it; anyone may read it.

use sauve_number::BackupNumber;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use sauve_scheduler::SchedulerState;
use sauve_status::Status;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::api::Trigger;

/// The state file's name in `APP/Logs`.
pub const STATE_FILE: &str = "sauve-state.json";

/// The last backup, any trigger, failures included, postponed excluded
/// (behaviour §15).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "LastBackupJson", try_from = "LastBackupJson")]
pub struct LastBackup {
    /// The backup number, 0 without an archive.
    pub number: BackupNumber,
    /// How it ended.
    pub status: Status,
    /// What started it.
    pub trigger: Trigger,
    /// When it started.
    pub started: Timestamp,
    /// When it ended.
    pub ended: Timestamp,
    /// The first archive file, if one was committed.
    pub archive: Option<PathBuf>,
    /// The log backup, if any.
    pub log_archive: Option<PathBuf>,
    /// How long the data lock was held.
    pub data_lock: Option<Duration>,
    /// How long the structure lock was held.
    pub structure_lock: Option<Duration>,
}

impl LastBackup {
    /// How long the run took.
    pub fn duration(&self) -> Duration {
        self.ended
            .duration_since(self.started)
            .try_into()
            .unwrap_or(Duration::ZERO)
    }
}

/// The file's (and `status --json`'s) shape: numbers and texts a person or
/// a script reads, the status with its text.
#[derive(Serialize, Deserialize)]
struct LastBackupJson {
    number: BackupNumber,
    status: i32,
    #[serde(default)]
    status_text: String,
    started: Timestamp,
    ended: Timestamp,
    #[serde(default)]
    duration_ms: u64,
    #[serde(default)]
    archive: Option<PathBuf>,
    #[serde(default)]
    log_archive: Option<PathBuf>,
    trigger: String,
    #[serde(default)]
    lock_window_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    structure_lock_ms: Option<u64>,
}

impl From<LastBackup> for LastBackupJson {
    fn from(l: LastBackup) -> LastBackupJson {
        let ms = |d: Duration| d.as_millis() as u64;
        LastBackupJson {
            number: l.number,
            status: l.status.code(),
            status_text: l.status.text().to_owned(),
            duration_ms: ms(l.duration()),
            started: l.started,
            ended: l.ended,
            archive: l.archive,
            log_archive: l.log_archive,
            trigger: l.trigger.as_str().to_owned(),
            lock_window_ms: l.data_lock.map(ms),
            structure_lock_ms: l.structure_lock.map(ms),
        }
    }
}

impl TryFrom<LastBackupJson> for LastBackup {
    type Error = crate::api::UnknownTrigger;
    fn try_from(j: LastBackupJson) -> Result<LastBackup, Self::Error> {
        Ok(LastBackup {
            number: j.number,
            status: Status::from_code(j.status),
            trigger: j.trigger.parse()?,
            started: j.started,
            ended: j.ended,
            archive: j.archive,
            log_archive: j.log_archive,
            data_lock: j.lock_window_ms.map(Duration::from_millis),
            structure_lock: j.structure_lock_ms.map(Duration::from_millis),
        })
    }
}

/// What `sauve-state.json` holds; fields other versions add are kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    /// The last backup.
    #[serde(default, deserialize_with = "lenient")]
    pub last_backup: Option<LastBackup>,
    /// Archive size over content size of the last compressed backup, for the
    /// free-space estimate (behaviour §6.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ratio: Option<f64>,
    /// The data file as the last successful backup with data saw it, for
    /// BackupIfDataChange (behaviour §9.3).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub last_data: Option<DataStamp>,
    /// The scheduler's memory across restarts (behaviour §9.2).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub scheduler: Option<SchedulerState>,
    /// When a backup last succeeded (0 or -43), for `alerts.stale_after`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub last_success: Option<Timestamp>,
    /// Since when staleness is watched when no backup ever succeeded.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub watching_since: Option<Timestamp>,
    /// Since when proof staleness is watched when no rehearsal ever proved
    /// a set (behaviour §22).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub proof_watching_since: Option<Timestamp>,
    /// The alerts (behaviour §17.2): the open ones, and the latest acknowledged
    /// kept for the record.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient_list"
    )]
    pub alerts: Vec<AlertRecord>,
    /// The id the next alert gets.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub next_alert: u64,
    /// What point-in-time restores set aside in the logs (behaviour §20), oldest
    /// first: every integration steps over them once past their restore.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient_list"
    )]
    pub set_aside: Vec<SetAsideRecord>,
    /// The last restore rehearsal, whatever its end (behaviour §22).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub last_rehearsal: Option<RehearsalRecord>,
    /// The rehearsal that proved the newest recovery point (behaviour §22).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub proven: Option<RehearsalRecord>,
    /// The samples of the stored bytes (behaviour §23): the last one, how
    /// far each kept set was read, and the damage found.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub sample: Option<SampleState>,
    /// Fields this version does not know, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What the samples of the stored bytes left (behaviour §23).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SampleState {
    /// The last sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<SampleRecord>,
    /// Per kept set (`App[0012]`), the order its pieces are read in and
    /// how many were read: no piece is read twice before all were.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cursors: BTreeMap<String, SampleCursor>,
    /// The damage found and not read sound since, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub damaged: Vec<Damage>,
}

impl SampleState {
    /// The numbers of the sets found damaged in `source` (as a sample
    /// names it): an automatic restore never picks them there.
    pub fn damaged_in(&self, source: &str) -> Vec<BackupNumber> {
        match &self.last {
            Some(l) if l.source == source => self.damaged_numbers(),
            _ => Vec::new(),
        }
    }

    /// The numbers of the sets found damaged.
    pub fn damaged_numbers(&self) -> Vec<BackupNumber> {
        let mut numbers: Vec<BackupNumber> = self.damaged.iter().map(|d| d.number).collect();
        numbers.sort();
        numbers.dedup();
        numbers
    }
}

/// How far a set's pieces were read, in the order `seed` gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleCursor {
    /// The seed of the set's reading order.
    pub seed: u64,
    /// How many pieces of that order were read.
    pub next: u64,
}

/// One sample as the state keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SampleRecord {
    /// When it began.
    pub at: Timestamp,
    /// Where it read (a folder, or a URL without credentials).
    pub source: String,
    /// The kept sets with a record of their pieces.
    pub sets: u64,
    /// The pieces read.
    pub pieces: u64,
    /// The bytes read.
    pub bytes: u64,
    /// Damage found in this sample.
    pub damaged: u64,
    /// Why the sample ended before its share (a Stop, a backup that came
    /// due); `None` when it read all it meant to or reached its cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_early: Option<String>,
}

/// Damage a sample found in a stored set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Damage {
    /// The set, `App[0012]`.
    pub set: String,
    /// Its number.
    pub number: BackupNumber,
    /// The stored file (`App[0012].4BK`).
    pub file: String,
    /// The piece that does not hold what was stored; `None` when the
    /// file itself is missing or of another size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub piece: Option<u64>,
    /// What was wrong.
    pub why: String,
    /// When it was found.
    pub found: Timestamp,
}

impl Damage {
    /// Whether `other` is the same place.
    pub fn same_place(&self, other: &Damage) -> bool {
        (self.number, &self.file, self.piece) == (other.number, &other.file, other.piece)
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.piece {
            Some(p) => write!(
                f,
                "{} is damaged: {}, piece {p}: {}",
                self.set, self.file, self.why
            ),
            None => write!(f, "{} is damaged: {}: {}", self.set, self.file, self.why),
        }
    }
}

/// One restore rehearsal as the state keeps it (behaviour §22).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RehearsalRecord {
    /// The set rehearsed, `App[0012]`.
    pub set: String,
    /// Its number.
    pub number: BackupNumber,
    /// Where it was read from: the folder, or the store's URL as shown.
    pub source: String,
    /// How it ended.
    #[serde(with = "status_code")]
    pub status: sauve_status::Status,
    /// What failed, naming the set, the file, the link or the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether a rehearsal can prove anything here: false when the source
    /// is encrypted and no identity is at hand.
    pub provable: bool,
    /// Stopped by a backup that came due (not by a person): it runs again
    /// after the backup.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preempted: bool,
    /// The read rate it kept to, MiB per second, when bounded: its restore
    /// time is then not the recovery time a full-speed restore gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_mib_s: Option<u64>,
    /// When it started and ended.
    pub started: Timestamp,
    /// When it ended.
    pub ended: Timestamp,
    /// The newest state it proved restorable: the set's time, or the time
    /// of the last log record integrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<Timestamp>,
    /// The last log sequence integrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sequence: Option<u64>,
    /// Milliseconds restoring the set.
    pub restore_ms: u64,
    /// Milliseconds integrating its logs.
    pub integrate_ms: u64,
    /// Milliseconds of the host's check.
    pub check_ms: u64,
    /// Bytes restored (files of the set, then the log backups).
    pub bytes: u64,
    /// The size of the data file in the set, to scale the recovery time to
    /// the data file's size now.
    pub data_bytes: u64,
}

impl RehearsalRecord {
    /// The recovery time of behaviour §22: restore and integration, scaled
    /// by the data file's size now over its size in the rehearsed set.
    pub fn recovery_ms(&self, data_now: Option<u64>) -> u64 {
        let took = self.restore_ms.saturating_add(self.integrate_ms);
        match data_now {
            Some(now) if self.data_bytes > 0 && now > self.data_bytes => {
                let scaled = u128::from(took) * u128::from(now) / u128::from(self.data_bytes);
                u64::try_from(scaled).unwrap_or(u64::MAX)
            }
            _ => took,
        }
    }
}

/// A status as its code in JSON.
mod status_code {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        s: &sauve_status::Status,
        to: S,
    ) -> Result<S::Ok, S::Error> {
        to.serialize_i32(s.code())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<sauve_status::Status, D::Error> {
        Ok(sauve_status::Status::from_code(i32::deserialize(d)?))
    }
}

/// A field that does not read is absent rather than the whole file lost:
/// the state is informational and the next run rewrites it.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A list whose damaged items are dropped, not the whole list.
fn lenient_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|i| serde_json::from_value(i).ok())
            .collect(),
        _ => Vec::new(),
    })
}

/// One alert in the app's list, until acknowledged and a while after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// The alert as sent.
    pub alert: sauve_alerts::Alert,
    /// When someone acknowledged it (or, for a stale alert, when the next
    /// success cleared it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Timestamp>,
    /// How each notifier's delivery went (the journal's `Alert` lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<String>,
    /// The run's journal entry, written once its deliveries are known;
    /// kept here meanwhile so that a crash does not lose it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_journal: Option<PendingJournal>,
}

/// A journal entry waiting for its `Alert` lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingJournal {
    /// The entry as rendered, without its `Alert` lines: whole (a file
    /// written by an older sauve may hold it as its mode rendered it).
    pub text: String,
    /// Written whole whatever the journal's verbose mode (an alert's own
    /// entry); otherwise as the mode says when it is written.
    pub verbose: bool,
}

impl AlertRecord {
    /// Not acknowledged yet: shown by `sauve status` and the page.
    pub fn is_open(&self) -> bool {
        self.acknowledged.is_none()
    }
}

/// Acknowledged alerts kept for the record, beside the open ones.
pub(crate) const KEPT_ACKNOWLEDGED: usize = 50;

/// One point-in-time restore's records set aside, as the state file keeps
/// it: `{"point": {"time": "…"} | {"sequence": N}, "through": N,
/// "after": N | null, "at": "…"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAsideRecord {
    /// The point restored to.
    pub point: Point,
    /// The log's last sequence when the restore ran.
    pub through: u64,
    /// The last record the restore applied; `null` while it runs.
    #[serde(default)]
    pub after: Option<u64>,
    /// When the restore ran.
    pub at: Timestamp,
}

/// A stop point other than the end, as the state file keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Point {
    /// Up to this sequence.
    Sequence(u64),
    /// Up to this instant.
    Time(Timestamp),
}

impl SetAsideRecord {
    /// What integrations step over.
    pub fn set_aside(&self) -> sauve_logfile::SetAside {
        sauve_logfile::SetAside {
            point: match self.point {
                Point::Sequence(n) => sauve_logfile::Until::Sequence(n),
                Point::Time(t) => sauve_logfile::Until::Time(t),
            },
            through: self.through,
            after: self.after,
            at: self.at,
        }
    }
}

impl EngineState {
    /// What point-in-time restores set aside, for an integration.
    pub fn set_asides(&self) -> Vec<sauve_logfile::SetAside> {
        self.set_aside
            .iter()
            .map(SetAsideRecord::set_aside)
            .collect()
    }
}

/// A data file's identity for the data-change check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataStamp {
    /// The backup that saw it.
    pub number: BackupNumber,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime: i64,
}

/// `APP/Logs/sauve-state.json`.
pub fn state_path(app: &Path) -> PathBuf {
    app.join("Logs").join(STATE_FILE)
}

/// `APP/Logs/sauve-state.json.damaged`: a state file the state keeper
/// found damaged, kept as it was before it wrote a new one. While it is
/// there, what point-in-time restores set aside is unknown.
pub fn damaged_state_path(app: &Path) -> PathBuf {
    app.join("Logs").join(format!("{STATE_FILE}.damaged"))
}

/// The state in `bytes` when it can say what restores set aside: a JSON
/// object whose `set_aside` list reads and which reads as a whole (a field
/// that does not would make the lenient load drop everything, the list
/// with it). Otherwise why not.
pub(crate) fn read_strictly(bytes: &[u8]) -> Result<EngineState, String> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("it is not JSON ({e})"))?;
    if !value.is_object() {
        return Err("it is not a JSON object".to_owned());
    }
    // Checked on its own: the field's lenient reading drops bad items.
    if let Some(list) = value.get("set_aside") {
        Vec::<SetAsideRecord>::deserialize(list)
            .map_err(|e| format!("its \"set_aside\" list does not read ({e})"))?;
    }
    serde_json::from_value(value).map_err(|e| format!("it does not read as sauve's state ({e})"))
}

/// What point-in-time restores of `app` set aside, read strictly
/// (behaviour §20): a state file that cannot say, or a damaged one kept beside it,
/// refuses, since integrating without them could re-apply what a restore
/// undid. No state file: nothing was set aside.
pub fn read_set_asides(app: &Path) -> Result<Vec<sauve_logfile::SetAside>, crate::EngineError> {
    let damaged = damaged_state_path(app);
    if damaged.exists() {
        return Err(crate::EngineError::StateDamaged {
            path: damaged,
            reason: "sauve kept it there when it found the state file damaged".to_owned(),
        });
    }
    let path = state_path(app);
    let bytes = match sauve_durable::read_bounded(&path, STATE_LIMIT) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(crate::EngineError::StateDamaged {
                path,
                reason: e.to_string(),
            });
        }
        Err(e) => return Err(crate::EngineError::io("read", &path)(e)),
    };
    // The bytes read once: the list is theirs, whatever is written next.
    read_strictly(&bytes)
        .map(|state| state.set_asides())
        .map_err(|reason| crate::EngineError::StateDamaged { path, reason })
}

/// The most `sauve-state.json` may weigh: far past what its alerts, off-site
/// states and set-aside records take; a larger one is damaged, never read whole.
pub(crate) const STATE_LIMIT: u64 = 16 << 20;

impl EngineState {
    /// Reads the state of an app; missing, unreadable or over 16 MiB
    /// (`STATE_LIMIT`) gives the empty state.
    pub fn load(app: &Path) -> EngineState {
        sauve_durable::read_bounded(&state_path(app), STATE_LIMIT)
            .map(|b| EngineState::parse(&b))
            .unwrap_or_default()
    }

    /// The state in `bytes`; unreadable gives the empty state.
    pub(crate) fn parse(bytes: &[u8]) -> EngineState {
        serde_json::from_slice(bytes).unwrap_or_default()
    }
}

/// What the scheduler says, for the status. The scheduler loop publishes
/// it each time it looks (at least every minute).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedulerView {
    /// The next scheduled backup.
    pub next: Option<Timestamp>,
    /// Off after 1401.
    pub disabled: bool,
    /// When the scheduler last read the settings and planned.
    pub checked: Option<Timestamp>,
}

/// The JSON of `sauve status --json` and `GET /v1/status` (behaviour §15
/// and §17.2): `{"alerts": [open alerts], "sauve_toml_problem", "last_backup",
/// "next_scheduled", "scheduler_disabled", "destination": {"path",
/// "free_bytes", "used_bytes"}}`. Reads files: call it off async threads.
pub fn status_json(app: &Path, scheduler: SchedulerView) -> Result<Value, crate::EngineError> {
    let state = EngineState::load(app);
    let dest = crate::overview::destination_usage(app)?;
    let alerts: Vec<&AlertRecord> = state.alerts.iter().filter(|a| a.is_open()).collect();
    // Read once here: `sauve status` reads the files without an engine.
    let own = sauve_settings::load_sauve_toml(app);
    let own_problem = own.as_ref().err().map(|e| e.to_string());
    Ok(serde_json::json!({
        "alerts": alerts.iter().map(|a| serde_json::json!({
            "id": a.alert.id,
            "kind": a.alert.kind,
            "headline": a.alert.headline(),
            "raised": a.alert.raised,
            "status": a.alert.status,
            "status_text": a.alert.status_text,
            "deliveries": a.deliveries,
        })).collect::<Vec<_>>(),
        "sauve_toml_problem": own_problem,
        "last_backup": state.last_backup,
        "next_scheduled": scheduler.next.map(|t| t.to_string()),
        "scheduler_disabled": scheduler.disabled,
        "destination": {"path": dest.path, "free_bytes": dest.free_bytes, "used_bytes": dest.used_by_app},
        "offsite": own.map(|own| offsite_status(app, &own, &dest.records)).unwrap_or_default(),
        "rehearsal": crate::proof::proof_json(&state, data_size(app)),
    }))
}

/// The size of `app`'s data file now, to scale the recovery time.
pub fn data_size(app: &Path) -> Option<u64> {
    let layout = sauve_settings::AppLayout::discover(app).ok()?;
    std::fs::metadata(&layout.data_file).ok().map(|m| m.len())
}

/// Where the copies to one `[[offsite]]` destination stand (behaviour §19).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OffsiteStatus {
    /// The destination, as written in sauve.toml.
    pub url: String,
    /// Sets kept there, when limited.
    pub keep: Option<u32>,
    /// This app's recorded sets copied there.
    pub copied: usize,
    /// Not copied yet.
    pub pending: usize,
    /// Whose last attempt failed.
    pub failed: usize,
    /// The newest failure.
    pub last_failure: Option<OffsiteFailure>,
}

/// One failed copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OffsiteFailure {
    /// The set's number.
    pub number: BackupNumber,
    /// When it failed (4D's date form).
    pub at: String,
    /// Attempts so far.
    pub attempts: u32,
    /// The store's message.
    pub reason: Option<String>,
}

/// Per `[[offsite]]` destination, how many of this app's recorded sets are
/// copied, pending or failed, and the last failure's reason (behaviour §19),
/// from the history in `records` (the destination folder, or the app's
/// records of a bucket destination) for the entries of `own` (the app's
/// sauve.toml). Reads files: call it off async threads.
pub fn offsite_status(
    app: &Path,
    own: &sauve_settings::SauveToml,
    records: &Path,
) -> Vec<OffsiteStatus> {
    if own.offsite.is_empty() {
        return Vec::new();
    }
    let key = sauve_settings::AppLayout::discover(app)
        .map(|l| crate::settings::structure_key(&l))
        .unwrap_or_default();
    let entries = sauve_history::read_json_text(records)
        .ok()
        .flatten()
        .and_then(|t| sauve_history::History::parse(&t))
        .and_then(|h| h.entries(&key))
        .unwrap_or_default();
    own.offsite
        .iter()
        .map(|t| {
            let mut s = OffsiteStatus {
                url: t.url.clone(),
                keep: t.keep,
                copied: 0,
                pending: 0,
                failed: 0,
                last_failure: None,
            };
            for e in entries
                .iter()
                .filter(|e| e.is_numbered_backup() && e.segments.is_some())
            {
                match e.offsite.as_ref().and_then(|m| m.get(&t.url)) {
                    Some(c) if c.state == sauve_history::OffsiteState::Copied => s.copied += 1,
                    Some(c) if c.state == sauve_history::OffsiteState::Failed => {
                        s.failed += 1;
                        s.last_failure = Some(OffsiteFailure {
                            number: e.backup_number,
                            at: c.at.clone(),
                            attempts: c.attempts,
                            reason: c.reason.clone(),
                        });
                    }
                    _ => s.pending += 1,
                }
            }
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_aside_list_is_read_only_from_a_state_file_that_reads_whole() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path();
        assert_eq!(read_set_asides(app).unwrap(), Vec::new(), "no state file");
        std::fs::create_dir_all(app.join("Logs")).unwrap();
        let read = |text: &str| {
            std::fs::write(state_path(app), text).unwrap();
            read_set_asides(app).map_err(|e| e.to_string())
        };
        assert_eq!(read("{}").unwrap(), Vec::new());
        let one = r#"{"set_aside": [{"point": {"sequence": 4}, "through": 9, "after": 4, "at": "2026-12-01T13:04:30Z"}]}"#;
        assert_eq!(read(one).unwrap().len(), 1);
        for (text, why) in [
            ("{not json", "not JSON"),
            ("[]", "not a JSON object"),
            (
                r#"{"set_aside": [{"through": "three"}]}"#,
                "list does not read",
            ),
            (r#"{"next_alert": "4"}"#, "does not read as sauve's state"),
        ] {
            let err = read(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
            assert!(read_strictly(text.as_bytes()).is_err(), "{text}");
        }
        std::fs::write(damaged_state_path(app), "{").unwrap();
        assert!(read("{}").unwrap_err().contains(".damaged"));
    }

    #[test]
    fn a_state_file_past_its_bound_is_damaged_and_never_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path();
        std::fs::create_dir_all(app.join("Logs")).unwrap();
        // A sparse 17 MiB file: cheap to make, past the bound.
        let f = std::fs::File::create(state_path(app)).unwrap();
        f.set_len(STATE_LIMIT + (1 << 20)).unwrap();
        let err = read_set_asides(app).unwrap_err().to_string();
        assert!(err.contains("larger than 16777216 bytes"), "{err}");
        assert_eq!(EngineState::load(app), EngineState::default());
        // The records' owner keeps it aside before it writes a new one.
        crate::records::update_state(app, |_| {}).unwrap();
        assert_eq!(
            std::fs::metadata(damaged_state_path(app)).unwrap().len(),
            STATE_LIMIT + (1 << 20)
        );
        assert!(
            read_set_asides(app)
                .unwrap_err()
                .to_string()
                .contains(".damaged")
        );
    }

    fn last() -> LastBackup {
        LastBackup {
            number: 42.into(),
            status: Status::AttachmentNotFound,
            trigger: Trigger::Scheduled,
            started: "2025-03-14T01:00:01.204Z".parse().unwrap(),
            ended: "2025-03-14T01:03:27.950Z".parse().unwrap(),
            archive: Some(PathBuf::from("/bk/data[0042].4BK")),
            log_archive: Some(PathBuf::from("/bk/data[0041].4BL")),
            data_lock: Some(Duration::from_millis(12_408)),
            structure_lock: None,
        }
    }

    #[test]
    fn the_last_backup_is_typed_in_memory_and_readable_on_disk() {
        let json = serde_json::to_value(last()).unwrap();
        assert_eq!(json["status"], -43);
        assert_eq!(json["status_text"], "Attachment not found");
        assert_eq!(json["trigger"], "scheduled");
        assert_eq!(json["duration_ms"], 206_746);
        assert_eq!(json["lock_window_ms"], 12_408);
        assert_eq!(json["started"], "2025-03-14T01:00:01.204Z");
        let back: LastBackup = serde_json::from_value(json).unwrap();
        assert_eq!(back, last());
    }

    #[test]
    fn a_damaged_field_costs_that_field_not_the_file() {
        let text = r#"{"last_backup": {"number": 1, "status": 0, "trigger": "sometime",
            "started": "2025-03-14T01:00:01Z", "ended": "2025-03-14T01:00:02Z"},
            "last_ratio": 0.5, "scheduler": {"last_slot": "2025-03-14T01:00:00Z", "failures": 2},
            "alerts": [1, 2], "future": [1, 2]}"#;
        let s: EngineState = serde_json::from_str(text).unwrap();
        assert_eq!(s.last_backup, None);
        assert_eq!(s.last_ratio, Some(0.5));
        assert_eq!(s.scheduler.unwrap().failures, 2);
        assert!(s.alerts.is_empty(), "damaged alerts are dropped one by one");
        assert_eq!(s.extra["future"], serde_json::json!([1, 2]));
    }
}
