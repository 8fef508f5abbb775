//! Histories written to hurt (issue 27): a destination or a bucket that
//! others can write may hold any `backupHistory.json`. Deep nesting, a huge
//! file and numbers out of range make it "not a history" (moved aside at
//! the next backup), never a crash, a hang on the whole file or a number
//! that wrapped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sauve_history::{FILE_NAME, History, HistoryError, MAX_BYTES, read_entries, read_json_text};

/// A quarter of the 2 MiB a thread gets by default (the engine's actors
/// run on such threads).
const SMALL_STACK: usize = 512 << 10;

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn now() -> jiff::Timestamp {
    "2025-03-14T01:00:00Z".parse().unwrap()
}

/// A history of one entry under key `k`, with `field` set to `value`
/// (written as is).
fn with_field(field: &str, value: &str) -> String {
    let mut entry = serde_json::json!({
        "backupPath": "/bk/data[0001].4BK",
        "structurePath": "/app/Project/App.4DProject",
        "dataPath": "/app/Data/App.4DD",
        "logPath": "",
        "startingDate": "2025-03-14T01:00:01.204Z",
        "endingDate": "2025-03-14T01:03:27.950Z",
        "scheduledDate": "2025-03-14T01:00:00.000Z",
        "status": 0,
        "backupNumber": 1,
        "duration": 206,
        "attachments": [],
    });
    entry[field] = serde_json::json!("PLACEHOLDER");
    let text = serde_json::json!({ "k": [entry] }).to_string();
    text.replace("\"PLACEHOLDER\"", value)
}

#[test]
fn a_history_nested_100000_levels_deep_is_not_a_history_even_on_a_small_stack() {
    let deep = 100_000;
    for text in [
        format!("{}{}", "[".repeat(deep), "]".repeat(deep)),
        format!("{{\"k\":{}{}}}", "[".repeat(deep), "]".repeat(deep)),
        with_field(
            "attachments",
            &format!("{}{}", "[".repeat(deep), "]".repeat(deep)),
        ),
        with_field(
            "extra",
            &format!("{}{}", "[".repeat(deep), "]".repeat(deep)),
        ),
    ] {
        let (whole, quick) = on_small_stack(move || {
            (
                History::parse(&text).is_some(),
                read_entries(&text, "k").is_some(),
            )
        });
        assert!(!whole && !quick);
    }
    // Another app's key nested that deep: the whole file is not a history;
    // the one-pass reader skips it without recursion and finds no entry.
    let other = format!("{{\"a\":{}1{}}}", "{\"a\":".repeat(deep), "}".repeat(deep));
    let (whole, quick) =
        on_small_stack(move || (History::parse(&other).is_some(), read_entries(&other, "k")));
    assert!(!whole);
    assert_eq!(quick, Some(Vec::new()));
    // serde_json's bound (128 levels) is in force: 127 levels of an
    // unknown field are kept.
    let ok = with_field("extra", &format!("{}{}", "[".repeat(120), "]".repeat(120)));
    assert!(History::parse(&ok).is_some());
}

#[test]
fn a_deeply_nested_history_in_the_destination_is_moved_aside_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let deep = 100_000;
    std::fs::write(
        dir.path().join(FILE_NAME),
        format!("{}{}", "[".repeat(deep), "]".repeat(deep)),
    )
    .unwrap();
    let path = dir.path().to_path_buf();
    let loaded = on_small_stack(move || History::load(&path, now())).unwrap();
    assert!(loaded.moved_aside.is_some());
    assert!(
        loaded.notes[0].contains("was not a valid history"),
        "{:?}",
        loaded.notes
    );
}

#[test]
fn a_history_over_64_mib_is_moved_aside_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(FILE_NAME);
    // Sparse: 64 MiB and a byte on paper, nothing on the disk.
    std::fs::File::create(&file)
        .unwrap()
        .set_len(MAX_BYTES + 1)
        .unwrap();
    let Err(HistoryError::TooLarge { size, limit, .. }) = read_json_text(dir.path()) else {
        panic!("read");
    };
    assert_eq!((size, limit), (MAX_BYTES + 1, MAX_BYTES));
    let e = read_json_text(dir.path()).unwrap_err().to_string();
    assert!(
        e.ends_with("holds 67108865 bytes, more than a history may (accepted: at most 64 MiB; the next backup moves it aside and starts a new one)"),
        "{e}"
    );
    let loaded = History::load(dir.path(), now()).unwrap();
    assert_eq!(loaded.history, History::default());
    let aside = loaded.moved_aside.unwrap();
    assert!(aside.exists() && !file.exists());
    assert!(
        loaded.notes[0].contains(
            "holds 67108865 bytes, more than a history may (64 MiB), and was not read; moved to"
        ),
        "{:?}",
        loaded.notes
    );
}

#[test]
fn a_history_text_over_64_mib_is_not_a_history() {
    // What a bucket returns is parsed from memory: the same bound holds.
    let mut text = " ".repeat(usize::try_from(MAX_BYTES).unwrap() - 1);
    text.push_str("{}");
    assert!(History::parse(&text).is_none());
    assert!(read_entries(&text, "k").is_none());
    assert!(History::parse(text.trim_start()).is_some());
}

#[test]
fn numbers_out_of_range_make_the_history_invalid_and_never_wrap() {
    assert!(History::parse(&with_field("backupNumber", "1")).is_some());
    for (field, value) in [
        ("backupNumber", "4294967296"),
        ("backupNumber", "-1"),
        ("backupNumber", "1.5"),
        ("backupNumber", "1e3"),
        ("status", "2147483648"),
        ("duration", "-1"),
        ("duration", "18446744073709551616"),
        ("parent", "4294967296"),
        ("lockWindows", "{\"data\": -5}"),
        (
            "files",
            "[{\"path\": \"x\", \"size\": -1, \"blake3\": \"\"}]",
        ),
        (
            "offsite",
            "{\"d\": {\"state\": \"copied\", \"at\": \"\", \"attempts\": 4294967296}}",
        ),
    ] {
        let text = with_field(field, value);
        assert!(History::parse(&text).is_none(), "{field} = {value}");
        assert!(read_entries(&text, "k").is_none(), "{field} = {value}");
    }
}
