//! Errors of the settings crate.
//!
//! Policy: every error names the file, and where it can, the 1-based line and
//! column (Unicode scalars, BOM excluded), the key path, the value as written
//! and what is accepted (behaviour §3.3). Validation collects every problem
//! of a file before failing; malformed XML stops at the first. None of these
//! errors is helped by a retry except [`SettingsError::Io`].

use std::fmt;
use std::path::PathBuf;

/// A limit a settings file went over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// The file's size, in bytes.
    Bytes(u64),
    /// Levels of nested elements.
    Depth(usize),
    /// Elements, comments and processing instructions.
    Elements(usize),
}

impl fmt::Display for Limit {
    /// What is accepted, as the error's `(accepted: …)` says it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Bytes(n) if *n >= 1 << 20 && n % (1 << 20) == 0 => {
                write!(f, "at most {} MiB", n >> 20)
            }
            Limit::Bytes(n) if *n >= 1 << 10 && n % (1 << 10) == 0 => {
                write!(f, "at most {} KiB", n >> 10)
            }
            Limit::Bytes(n) => write!(f, "at most {n} bytes"),
            Limit::Depth(n) => write!(f, "at most {n} levels of nested elements"),
            Limit::Elements(n) => {
                write!(
                    f,
                    "at most {n} elements, comments and processing instructions"
                )
            }
        }
    }
}

/// A position in a settings file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in Unicode scalars.
    pub column: usize,
}

/// One located problem: an invalid value, a misplaced element, or a warning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file as the user named it.
    pub file: String,
    /// Where the offending text starts.
    pub at: Location,
    /// The element path from `Backup`, e.g. `Backup/Settings/Scheduler/Hourly/Every`.
    pub key: String,
    /// What is wrong, with the value as written and what is accepted.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.at.line, self.at.column, self.key
        )?;
        if !self.key.is_empty() {
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

/// Why settings could not be read, changed or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The file could not be read or written.
    #[error("{action} \"{path}\": {source}")]
    Io {
        /// What was being done: "cannot read", "cannot write", …
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// Writing a settings file failed; the previous file, if any, is intact.
    #[error(transparent)]
    Write(#[from] sauve_durable::PathError),
    /// The file is not UTF-8.
    #[error("{file}:{}:{}: not UTF-8: invalid byte 0x{byte:02X} (accepted: UTF-8 text, with or without BOM)", at.line, at.column)]
    NotUtf8 {
        /// The file.
        file: String,
        /// Where the first invalid byte is.
        at: Location,
        /// The byte.
        byte: u8,
    },
    /// The XML is not well-formed, or is not a backup settings document.
    #[error("{file}:{}:{}: {reason}", at.line, at.column)]
    Malformed {
        /// The file.
        file: String,
        /// The parser's position.
        at: Location,
        /// What the parser found.
        reason: String,
    },
    /// The file is over a limit that keeps a hostile file from exhausting
    /// the reader (size, nesting depth, element count: see [`Limit`]).
    #[error("{file}:{}:{}: {found} (accepted: {limit}, a bound that keeps any file from exhausting the memory or the stack of sauve)", at.line, at.column)]
    TooLarge {
        /// The file.
        file: String,
        /// Where the limit was crossed (the file's start for its size).
        at: Location,
        /// What was found: `the file holds 2097152 bytes`, `element <a> is
        /// nested more than 64 levels deep`.
        found: String,
        /// The limit.
        limit: Limit,
    },
    /// One or more values are invalid; every problem is listed.
    #[error("{}", list(problems))]
    Invalid {
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
    /// `settings set` named a key that does not exist.
    #[error(
        "unknown key \"{key}\" (accepted: a path under Backup/Settings such as Advanced/SetNumber/Value; `sauve settings show` lists them)"
    )]
    UnknownKey {
        /// The key as given.
        key: String,
    },
    /// `settings set` gave a value the key does not accept.
    #[error("{key}: invalid value \"{value}\" (accepted: {accepted})")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value as given.
        value: String,
        /// What the key accepts.
        accepted: String,
    },
    /// `settings init` found a file already there.
    #[error(
        "\"{0}\" already exists; it was left unchanged (use `sauve settings set` to change a key)"
    )]
    AlreadyExists(PathBuf),
    /// The app folder does not hold exactly one data file.
    #[error("{0}")]
    Layout(String),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl SettingsError {
    /// Whether trying again may help (only IO errors may be transient).
    pub fn is_transient(&self) -> bool {
        matches!(self, SettingsError::Io { .. } | SettingsError::Write(_))
    }
}
