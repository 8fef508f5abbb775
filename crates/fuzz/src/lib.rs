//! The bodies of sauve's fuzz targets (behaviour §8.3: bad input gets an error,
//! never a panic). Each function hands arbitrary bytes to one reader and
//! checks what the reader promises beyond not panicking. The cargo-fuzz
//! project in `fuzz/` calls them from coverage-guided targets on nightly;
//! `tests/corpus.rs` runs every committed input of `fuzz/corpus/` through
//! them on stable, as ordinary tests.
//!
//! A target fails by panicking: that is how libFuzzer learns of a bug.

#![allow(clippy::panic)] // A broken invariant is reported by panicking, for the fuzzer.

use std::io::Cursor;
use std::path::Path;

mod http;
mod restore;

pub use http::{HTTP_TOKEN, http};
pub use restore::restore;

/// A target's body: bytes in, a panic when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target, by the name its folder of `fuzz/corpus/` has.
pub const TARGETS: [(&str, Target); 8] = [
    ("settings", settings),
    ("sauve_toml", sauve_toml),
    ("journal", journal),
    ("history", history),
    ("log", log),
    ("archive", archive),
    ("http", http),
    ("restore", restore),
];

/// backup.4DSettings: what the reader accepts writes back to a file it
/// reads again as the same settings; nothing gets past the reader's
/// limits (a file over them is refused, never walked).
pub fn settings(data: &[u8]) {
    use sauve_settings::{Limit, SettingsError};
    let loaded = match sauve_settings::SettingsDoc::parse(data, "backup.4DSettings") {
        Ok(loaded) => loaded,
        Err(SettingsError::TooLarge { limit, .. }) => {
            let over = match limit {
                Limit::Bytes(max) => u64::try_from(data.len()).is_ok_and(|n| n > max),
                // Depth and count are found while the file is read.
                _ => true,
            };
            assert!(over, "a file refused for {limit} though it is not over it");
            return;
        }
        Err(_) => return,
    };
    let xml = loaded.doc.to_xml();
    match sauve_settings::SettingsDoc::parse(xml.as_bytes(), "rewritten") {
        Ok(again) => assert_eq!(
            again.doc.settings(),
            loaded.doc.settings(),
            "the rewritten file reads differently:\n{xml}"
        ),
        // The writer adds the elements 4D always writes and indents what it
        // keeps: a file at the size or count limit may go over it once
        // rewritten (a change is then refused: `sauve settings set`
        // validates the file it would write). Nesting never grows.
        Err(SettingsError::TooLarge {
            limit: Limit::Bytes(_) | Limit::Elements(_),
            ..
        }) => {}
        Err(e) => panic!("the file written from accepted settings is refused: {e}\n{xml}"),
    }
}

/// No variable is set: every `*_env` secret is missing.
struct NoEnvironment;

impl sauve_settings::Environment for NoEnvironment {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

/// sauve.toml: an error names a place inside the text it was given.
pub fn sauve_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let app = Path::new("/nonexistent/sauve-fuzz/App");
    if let Err(e) = sauve_settings::parse_sauve_toml(text, "sauve.toml", app, &NoEnvironment) {
        let message = e.to_string();
        assert!(!message.is_empty(), "an error without a message");
    }
}

/// The Backup Journal: entries come out in order and their raw titles are
/// lines of the text.
pub fn journal(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for e in sauve_journal::parse_journal(&text) {
        assert!(
            text.contains(e.raw_title.trim()),
            "a title not in the text: {:?}",
            e.raw_title
        );
    }
    for line in text.lines().take(64) {
        let _ = sauve_journal::parse_date(line);
    }
}

/// backupHistory.json: the one-pass reader of one app's entries agrees
/// with the whole-file reader wherever the file parses.
pub fn history(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(whole) = sauve_history::History::parse(text) else {
        return;
    };
    for key in whole.keys().take(16) {
        let full = whole.entries(key);
        if let Some(full) = &full {
            let quick = sauve_history::read_entries(text, key);
            assert_eq!(
                quick.as_ref(),
                Some(full),
                "the two readers disagree on {key:?}"
            );
        }
    }
}

/// A `.journal` log: records come out with consecutive sequence numbers
/// from the header's first, within the file, and a reader never returns a
/// record past a torn or corrupt one.
pub fn log(data: &[u8]) {
    let Some(header) = sauve_logfile::Header::decode(data) else {
        return;
    };
    let len = data.len() as u64;
    let body = data.get(sauve_logfile::HEADER_LEN..).unwrap_or_default();
    let mut records = sauve_logfile::Records::new(Cursor::new(body), &header, len);
    let mut expected = header.first_sequence;
    for record in records.by_ref() {
        let Ok(record) = record else {
            return;
        };
        assert_eq!(record.seq, expected, "a sequence out of order");
        expected = expected.wrapping_add(1);
    }
    assert!(records.end() <= len, "the reader ended past the file");
    assert!(
        records.tail().is_some(),
        "the reader stopped without saying why"
    );
}

/// An archive set (`.4BK`): verify and restore agree, and a refused
/// restore leaves nothing in its destination.
pub fn archive(data: &[u8]) {
    let Ok(dir) = tempfile::Builder::new().prefix("sauve-fuzz-").tempdir() else {
        return;
    };
    let set = dir.path().join("App[0001].4BK");
    if std::fs::write(&set, data).is_err() {
        return;
    }
    let verified = sauve_archive::verify(&set, &mut sauve_archive::NoProgress);
    let to = dir.path().join("out");
    let restored = sauve_archive::restore(
        &set,
        &sauve_archive::RestoreOptions {
            to: Some(to.clone()),
            force: false,
        },
        &mut sauve_archive::NoProgress,
    );
    assert_eq!(
        verified.is_ok(),
        restored.is_ok(),
        "verify said {:?} and restore {:?}",
        verified.as_ref().err().map(ToString::to_string),
        restored.as_ref().err().map(ToString::to_string)
    );
    if restored.is_err() {
        let left: Vec<_> = std::fs::read_dir(&to)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "a refused restore left {left:?}");
    }
}
