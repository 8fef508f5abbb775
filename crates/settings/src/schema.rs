//! The key table of behaviour §3.1: every known element, in 4D's order, with
//! its type, its accepted values and its field in [`Settings`].
//!
//! The reader, the writer, `settings set` and the JSON view all walk this one
//! table, so a key added here is read, validated, written and shown everywhere.

use crate::model::Settings;
use crate::value::{
    self, Compression, Delay, Frequency, Level, MonthDay, TimeOfDay, Token, format_bool,
};

/// A settings value, whatever its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `True` or `False`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A time of day.
    Time(TimeOfDay),
    /// A duration.
    Delay(Delay),
    /// An enumeration token, in 4D's case.
    Token(String),
    /// A path as written.
    Path(String),
    /// `Monthly/Day`.
    Day(MonthDay),
    /// `General/IncludesFiles`.
    Paths(Vec<String>),
}

impl std::fmt::Display for Value {
    /// The value as a person reads it: `True`, `5`, `02:30:00`, `Fast`, paths
    /// joined by `, ` (`(none)` for an empty list).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bool(b) => f.write_str(format_bool(*b)),
            Value::Int(n) => write!(f, "{n}"),
            Value::Time(t) => write!(f, "{t}"),
            Value::Delay(d) => write!(f, "{d}"),
            Value::Token(t) | Value::Path(t) => f.write_str(t),
            Value::Day(d) => write!(f, "{d}"),
            Value::Paths(p) if p.is_empty() => f.write_str("(none)"),
            Value::Paths(p) => f.write_str(&p.join(", ")),
        }
    }
}

/// What a key accepts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    Time,
    Delay,
    Token(&'static [&'static str]),
    /// Any non-empty token; unknown ones give a warning (strictness, O-7).
    FreeToken,
    Path,
    Day,
    Paths,
}

/// Integers 4D stores are 32-bit.
const INT_MAX: i64 = i32::MAX as i64;

impl Kind {
    /// What the key accepts, for error messages.
    pub(crate) fn accepted(self) -> String {
        match self {
            Kind::Bool => "True or False".to_owned(),
            Kind::Int { min, max } if max >= INT_MAX => format!("integer {min} or more"),
            Kind::Int { min, max } => format!("integer {min} to {max}"),
            Kind::Time => "time of day HH:MM:SS or 0000-00-00THH:MM:SS, hour 00 to 23".to_owned(),
            Kind::Delay => "duration HH:MM:SS[.fff] or 0000-00-00THH:MM:SS[.fff]".to_owned(),
            Kind::Token(tokens) => one_of(tokens),
            Kind::FreeToken => "a non-empty token such as strict".to_owned(),
            Kind::Path => "a path".to_owned(),
            Kind::Day => "integer 1 to 28, or Last".to_owned(),
            Kind::Paths => "a list of paths".to_owned(),
        }
    }

    /// Parses a value as written in the file (or on the command line).
    pub(crate) fn parse(self, text: &str) -> Option<Value> {
        match self {
            Kind::Bool => value::parse_bool(text).map(Value::Bool),
            Kind::Int { min, max } => value::parse_int(text)
                .filter(|n| (min..=max).contains(n))
                .map(Value::Int),
            Kind::Time => value::parse_time_of_day(text).map(Value::Time),
            Kind::Delay => value::parse_delay(text).map(Value::Delay),
            Kind::Token(tokens) => {
                let t = text.trim();
                tokens
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(t))
                    .map(|k| Value::Token((*k).to_owned()))
            }
            Kind::FreeToken => {
                let t = text.trim();
                (!t.is_empty()).then(|| Value::Token(t.to_owned()))
            }
            Kind::Path => Some(Value::Path(text.trim().to_owned())),
            Kind::Day => value::parse_month_day(text).map(Value::Day),
            Kind::Paths => None,
        }
    }
}

fn one_of(tokens: &[&str]) -> String {
    match tokens {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

impl Value {
    /// The canonical text 4D writes for a changed value.
    pub(crate) fn to_4d(&self, path: &str) -> String {
        match self {
            Value::Bool(b) => format_bool(*b).to_owned(),
            Value::Int(n) => n.to_string(),
            Value::Time(t) => t.to_4d(),
            // behaviour §3.2: a changed TryToBackupAfter is written HH:MM:SS[.fff];
            // any other duration in 4D's dated form.
            Value::Delay(d) if path.ends_with("TryToBackupAfter") => d.to_string(),
            Value::Delay(d) => format!("0000-00-00T{d}"),
            Value::Token(t) | Value::Path(t) => t.clone(),
            Value::Day(d) => d.to_string(),
            Value::Paths(p) => p.join("\n"),
        }
    }

    /// The JSON form of `settings show --json`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Bool(b) => J::Bool(*b),
            Value::Int(n) => J::from(*n),
            Value::Time(t) => J::String(t.to_string()),
            Value::Delay(d) => J::String(d.to_string()),
            Value::Token(t) | Value::Path(t) => J::String(t.clone()),
            Value::Day(MonthDay::Day(d)) => J::from(*d),
            Value::Day(MonthDay::Last) => J::String("Last".to_owned()),
            Value::Paths(p) => J::Array(p.iter().cloned().map(J::String).collect()),
        }
    }
}

/// One known key.
pub(crate) struct Leaf {
    /// Path under `Backup/Settings`, e.g. `Advanced/SetNumber/Value`.
    pub(crate) path: &'static str,
    pub(crate) kind: Kind,
    pub(crate) get: fn(&Settings) -> Value,
    /// Stores a value of this key's kind; `false` for a value of another kind.
    pub(crate) set: fn(&mut Settings, Value) -> bool,
}

impl Leaf {
    /// The element name, the last part of the path.
    pub(crate) fn name(&self) -> &'static str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }
}

/// A Rust field type that stores one kind of [`Value`].
pub(crate) trait Field: Sized {
    fn to_value(&self) -> Value;
    fn from_value(v: Value) -> Option<Self>;
}

impl Field for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
    fn from_value(v: Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }
}

impl Field for u32 {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
    fn from_value(v: Value) -> Option<u32> {
        match v {
            Value::Int(n) => u32::try_from(n).ok(),
            _ => None,
        }
    }
}

impl Field for TimeOfDay {
    fn to_value(&self) -> Value {
        Value::Time(*self)
    }
    fn from_value(v: Value) -> Option<TimeOfDay> {
        match v {
            Value::Time(t) => Some(t),
            _ => None,
        }
    }
}

impl Field for Delay {
    fn to_value(&self) -> Value {
        Value::Delay(*self)
    }
    fn from_value(v: Value) -> Option<Delay> {
        match v {
            Value::Delay(d) => Some(d),
            _ => None,
        }
    }
}

impl Field for MonthDay {
    fn to_value(&self) -> Value {
        Value::Day(*self)
    }
    fn from_value(v: Value) -> Option<MonthDay> {
        match v {
            Value::Day(d) => Some(d),
            _ => None,
        }
    }
}

/// Paths and free tokens are both plain strings.
impl Field for String {
    fn to_value(&self) -> Value {
        Value::Path(self.clone())
    }
    fn from_value(v: Value) -> Option<String> {
        match v {
            Value::Path(s) | Value::Token(s) => Some(s),
            _ => None,
        }
    }
}

impl Field for Vec<String> {
    fn to_value(&self) -> Value {
        Value::Paths(self.clone())
    }
    fn from_value(v: Value) -> Option<Vec<String>> {
        match v {
            Value::Paths(p) => Some(p),
            _ => None,
        }
    }
}

macro_rules! token_field {
    ($($t:ty),+) => {$(
        impl Field for $t {
            fn to_value(&self) -> Value {
                Value::Token(self.token().to_owned())
            }
            fn from_value(v: Value) -> Option<$t> {
                match v {
                    Value::Token(t) => <$t>::from_token(&t),
                    _ => None,
                }
            }
        }
    )+};
}
token_field!(Compression, Level, Frequency);

const COMPRESSION: &[&str] = &["None", "Fast", "Compact"];
const LEVEL: &[&str] = &["None", "Low", "Medium", "High"];
const FREQUENCY: &[&str] = &["Never", "Hourly", "Daily", "Weekly", "Monthly"];
const POSITIVE: Kind = Kind::Int {
    min: 1,
    max: INT_MAX,
};

macro_rules! leaf {
    ($path:expr, $kind:expr, $($field:tt)+) => {
        Leaf {
            path: $path,
            kind: $kind,
            get: |s: &Settings| Field::to_value(&s.$($field)+),
            set: |s: &mut Settings, v: Value| match Field::from_value(v) {
                Some(x) => {
                    s.$($field)+ = x;
                    true
                }
                None => false,
            },
        }
    };
}

macro_rules! weekday {
    ($day:literal, $i:literal) => {
        [
            leaf!(
                concat!("Scheduler/Weekly/", $day, "/Save"),
                Kind::Bool,
                scheduler.weekly.days[$i].save
            ),
            leaf!(
                concat!("Scheduler/Weekly/", $day, "/Hour"),
                Kind::Time,
                scheduler.weekly.days[$i].hour
            ),
        ]
    };
}

/// Every key under `Backup/Settings`, in the order 4D writes them.
pub(crate) fn leaves() -> &'static [Leaf] {
    static LEAVES: std::sync::OnceLock<Vec<Leaf>> = std::sync::OnceLock::new();
    LEAVES.get_or_init(build)
}

/// The keys, group by group as 4D writes them.
fn build() -> Vec<Leaf> {
    let mut v = backup_failure();
    v.extend(advanced());
    v.extend(general());
    v.extend(scheduler());
    v
}

/// `Advanced/BackupFailure`: what a failed scheduled backup leads to.
fn backup_failure() -> Vec<Leaf> {
    vec![
        leaf!(
            "Advanced/BackupFailure/TryBackupAtTheNextScheduledDate",
            Kind::Bool,
            advanced
                .backup_failure
                .try_backup_at_the_next_scheduled_date
        ),
        leaf!(
            "Advanced/BackupFailure/TryToBackupAfter",
            Kind::Delay,
            advanced.backup_failure.try_to_backup_after
        ),
        leaf!(
            "Advanced/BackupFailure/AbortIfBackupFail",
            Kind::Bool,
            advanced.backup_failure.abort_if_backup_fail
        ),
        leaf!(
            "Advanced/BackupFailure/RetryCountBeforeAbort",
            POSITIVE,
            advanced.backup_failure.retry_count_before_abort
        ),
    ]
}

/// The rest of `Advanced`: restore and integration, set numbers,
/// compression, segments, the journal.
fn advanced() -> Vec<Leaf> {
    vec![
        leaf!(
            "Advanced/AutomaticRestore",
            Kind::Bool,
            advanced.automatic_restore
        ),
        leaf!(
            "Advanced/AutomaticLogIntegration",
            Kind::Bool,
            advanced.automatic_log_integration
        ),
        leaf!(
            "Advanced/AutomaticRestart",
            Kind::Bool,
            advanced.automatic_restart
        ),
        leaf!(
            "Advanced/BackupIfDataChange",
            Kind::Bool,
            advanced.backup_if_data_change
        ),
        leaf!(
            "Advanced/SetNumber/Enable",
            Kind::Bool,
            advanced.set_number.enable
        ),
        leaf!(
            "Advanced/SetNumber/Value",
            POSITIVE,
            advanced.set_number.value
        ),
        leaf!(
            "Advanced/CompressionRate",
            Kind::Token(COMPRESSION),
            advanced.compression_rate
        ),
        leaf!(
            "Advanced/Redundancy",
            Kind::Token(LEVEL),
            advanced.redundancy
        ),
        leaf!(
            "Advanced/Interlacing",
            Kind::Token(LEVEL),
            advanced.interlacing
        ),
        leaf!(
            "Advanced/AutomaticLogIntegrationStrictness",
            Kind::FreeToken,
            advanced.automatic_log_integration_strictness
        ),
        leaf!(
            "Advanced/FileSegmentation/DefaultSize",
            Kind::Int { min: 0, max: 2048 },
            advanced.file_segmentation.default_size
        ),
        leaf!(
            "Advanced/EraseOldBackupBefore",
            Kind::Bool,
            advanced.erase_old_backup_before
        ),
        leaf!(
            "Advanced/CheckArchiveFileDuringBackup",
            Kind::Bool,
            advanced.check_archive_file_during_backup
        ),
        leaf!(
            "Advanced/BackupJournalVerboseMode",
            Kind::Bool,
            advanced.backup_journal_verbose_mode
        ),
    ]
}

/// `General`: what a backup holds and where it goes.
fn general() -> Vec<Leaf> {
    vec![
        leaf!(
            "General/IncludeStructureFile",
            Kind::Bool,
            general.include_structure_file
        ),
        leaf!(
            "General/IncludeDataFile",
            Kind::Bool,
            general.include_data_file
        ),
        leaf!(
            "General/IncludeAltStructFile",
            Kind::Bool,
            general.include_alt_struct_file
        ),
        leaf!(
            "General/DestinationFolder",
            Kind::Path,
            general.destination_folder
        ),
        leaf!("General/IncludesFiles", Kind::Paths, general.includes_files),
    ]
}

/// `Scheduler`: the frequency, then each period's keys.
fn scheduler() -> Vec<Leaf> {
    let mut v = vec![
        leaf!(
            "Scheduler/Frequency",
            Kind::Token(FREQUENCY),
            scheduler.frequency
        ),
        leaf!(
            "Scheduler/Hourly/Every",
            Kind::Int { min: 1, max: 24 },
            scheduler.hourly.every
        ),
        leaf!(
            "Scheduler/Hourly/StartingAt",
            Kind::Time,
            scheduler.hourly.starting_at
        ),
        leaf!("Scheduler/Daily/Every", POSITIVE, scheduler.daily.every),
        leaf!("Scheduler/Daily/Hour", Kind::Time, scheduler.daily.hour),
        leaf!("Scheduler/Weekly/Every", POSITIVE, scheduler.weekly.every),
    ];
    for pair in [
        weekday!("Monday", 0),
        weekday!("Tuesday", 1),
        weekday!("Wednesday", 2),
        weekday!("Thursday", 3),
        weekday!("Friday", 4),
        weekday!("Saturday", 5),
        weekday!("Sunday", 6),
    ] {
        v.extend(pair);
    }
    v.extend([
        leaf!("Scheduler/Monthly/Every", POSITIVE, scheduler.monthly.every),
        leaf!("Scheduler/Monthly/Hour", Kind::Time, scheduler.monthly.hour),
        leaf!("Scheduler/Monthly/Day", Kind::Day, scheduler.monthly.day),
    ]);
    v
}

/// The leaf at `path` (under `Backup/Settings`), compared exactly.
pub(crate) fn leaf(path: &str) -> Option<&'static Leaf> {
    leaves().iter().find(|l| l.path == path)
}

/// The known element names directly under the group `group` (`""` is
/// `Backup/Settings` itself), in 4D's order.
pub(crate) fn children(group: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for l in leaves() {
        let rest = if group.is_empty() {
            Some(l.path)
        } else {
            l.path.strip_prefix(group).and_then(|r| r.strip_prefix('/'))
        };
        if let Some(rest) = rest {
            let name = rest.split('/').next().unwrap_or(rest);
            if out.last() != Some(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// Whether `path` (under `Backup/Settings`) is a known group element.
pub(crate) fn is_group(path: &str) -> bool {
    path.is_empty()
        || leaves().iter().any(|l| {
            l.path
                .strip_prefix(path)
                .is_some_and(|r| r.starts_with('/'))
        })
}

/// All key paths, for "unknown key" messages.
pub fn key_paths() -> impl Iterator<Item = &'static str> {
    leaves().iter().map(|l| l.path)
}

/// How a form asks for a key's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// A checkbox.
    Bool,
    /// A number in a range.
    Int {
        /// The smallest accepted.
        min: i64,
        /// The largest accepted.
        max: i64,
    },
    /// A time of day.
    Time,
    /// A duration.
    Delay,
    /// One of these tokens.
    Choice(&'static [&'static str]),
    /// Free text (a path, a strictness token).
    Text,
    /// A list of paths.
    Paths,
}

/// What a key is, for a form: how to ask for it and what it accepts, in the
/// words `sauve settings validate` uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The path under `Backup/Settings`.
    pub path: &'static str,
    /// How to ask.
    pub input: Input,
    /// What is accepted.
    pub accepted: String,
}

/// What `path` is, if it is a key.
pub fn key_info(path: &str) -> Option<KeyInfo> {
    let l = leaf(path)?;
    let input = match l.kind {
        Kind::Bool => Input::Bool,
        Kind::Int { min, max } => Input::Int { min, max },
        Kind::Time => Input::Time,
        Kind::Delay => Input::Delay,
        Kind::Token(tokens) => Input::Choice(tokens),
        Kind::FreeToken | Kind::Path | Kind::Day => Input::Text,
        Kind::Paths => Input::Paths,
    };
    Some(KeyInfo {
        path: l.path,
        input,
        accepted: l.kind.accepted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_reads_back_what_it_stores() {
        let mut s = Settings::default();
        for l in leaves() {
            let v = (l.get)(&s);
            assert!((l.set)(&mut s, v.clone()), "{}", l.path);
            assert_eq!((l.get)(&s), v, "{}", l.path);
        }
    }

    #[test]
    fn groups_list_children_in_4d_order() {
        assert_eq!(children(""), ["Advanced", "General", "Scheduler"]);
        assert_eq!(children("Advanced/SetNumber"), ["Enable", "Value"]);
        assert_eq!(
            children("Scheduler/Weekly"),
            [
                "Every",
                "Monday",
                "Tuesday",
                "Wednesday",
                "Thursday",
                "Friday",
                "Saturday",
                "Sunday"
            ]
        );
        assert!(is_group("Scheduler/Weekly/Friday"));
        assert!(!is_group("Scheduler/Weekly/Every"));
    }

    #[test]
    fn token_lists_match_their_enums() {
        fn names<T: Token>() -> Vec<&'static str> {
            T::ALL.iter().map(|v| v.token()).collect()
        }
        assert_eq!(COMPRESSION, names::<Compression>());
        assert_eq!(LEVEL, names::<Level>());
        assert_eq!(FREQUENCY, names::<Frequency>());
    }

    #[test]
    fn accepted_values_read_naturally() {
        assert_eq!(Kind::Int { min: 1, max: 24 }.accepted(), "integer 1 to 24");
        assert_eq!(POSITIVE.accepted(), "integer 1 or more");
        assert_eq!(Kind::Token(COMPRESSION).accepted(), "None, Fast or Compact");
    }
}
