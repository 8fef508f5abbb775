//! Settings files written to hurt (issue 27): deep nesting, huge files and
//! element floods are refused with an error that names the limit, on any
//! stack; destinations and off-site copies inside the app are refused with
//! a message naming the folder and the app.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sauve_settings::{
    Change, ChangeError, Destination, Limit, MAX_DEPTH, MAX_ELEMENTS, MAX_FILE_BYTES, PathError,
    SettingsDoc, SettingsError, TimeOfDay, change_settings, load_effective, load_file,
    load_sauve_toml, parse_sauve_toml, resolve_destination, resolve_destination_to_read,
};

/// A quarter of the 2 MiB a thread gets by default (the engine's actors
/// run on such threads): what no reader may need, whatever it is given.
const SMALL_STACK: usize = 512 << 10;

/// Runs `f` on a thread with [`SMALL_STACK`]; a stack overflow aborts the
/// test process, which fails the test.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn defaults() -> String {
    let path = format!(
        "{}/../../tests/fixtures/4d-samples/defaults-modern.backup.4DSettings",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

/// The 4D fixture with `inner` inside `<Advanced>`, four levels below the
/// root (`Preferences4D/Backup/Settings/Advanced`).
fn with_in_advanced(inner: &str) -> String {
    let text = defaults();
    assert_eq!(text.matches("<Advanced>").count(), 1);
    text.replacen("<Advanced>", &format!("<Advanced>{inner}"), 1)
}

/// `levels` nested `<a>` elements, closed.
fn nested(levels: usize) -> String {
    let mut s = String::with_capacity(levels * 7);
    s.push_str(&"<a>".repeat(levels));
    s.push_str(&"</a>".repeat(levels));
    s
}

fn limit_of(e: &SettingsError) -> Option<Limit> {
    match e {
        SettingsError::TooLarge { limit, .. } => Some(*limit),
        _ => None,
    }
}

/// An app folder in a temporary directory, with `settings` as its
/// structure settings.
fn app_with(settings: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("App");
    std::fs::create_dir_all(app.join("Settings")).unwrap();
    std::fs::create_dir_all(app.join("Data")).unwrap();
    std::fs::write(app.join("Settings/backup.4DSettings"), settings).unwrap();
    (dir, app)
}

#[test]
fn a_settings_file_nested_20000_levels_deep_is_refused_naming_the_depth_limit_on_a_small_stack() {
    let text = with_in_advanced(&nested(20_000));
    let e = on_small_stack(move || SettingsDoc::parse(text.as_bytes(), "backup.4DSettings"))
        .unwrap_err();
    assert_eq!(limit_of(&e), Some(Limit::Depth(MAX_DEPTH)), "{e}");
    let message = e.to_string();
    // Located at the first element too deep: the root, Backup, Settings,
    // Advanced and 60 levels of <a> make 64. The README shows this message.
    assert_eq!(
        message,
        "backup.4DSettings:5:197: element <a> is nested more than 64 levels deep (accepted: at most 64 levels of nested elements, a bound that keeps any file from exhausting the memory or the stack of sauve)"
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    assert!(
        readme.contains(&message),
        "README.md does not show {message}"
    );
}

#[test]
fn a_file_nested_100000_levels_deep_is_refused_by_validate_and_by_the_backup_loader_alike() {
    let (_dir, app) = app_with(with_in_advanced(&nested(100_000)).as_bytes());
    let file = app.join("Settings/backup.4DSettings");
    // `sauve settings validate FILE`.
    let validate = on_small_stack(move || load_file(&file).map(|_| ())).unwrap_err();
    assert_eq!(limit_of(&validate), Some(Limit::Depth(MAX_DEPTH)));
    // `sauve backup` and `sauve run`: the effective settings of the app,
    // an ordinary error (`sauve run` keeps its last valid settings).
    let backup = on_small_stack(move || load_effective(&app).map(|_| ())).unwrap_err();
    assert_eq!(limit_of(&backup), Some(Limit::Depth(MAX_DEPTH)));
    assert_eq!(validate.to_string(), backup.to_string());
}

#[test]
fn a_file_exactly_at_the_depth_limit_is_read_and_one_level_more_is_not() {
    // The root, Backup, Settings and Advanced are 4 levels.
    let at_limit = with_in_advanced(&nested(MAX_DEPTH - 4));
    let loaded = SettingsDoc::parse(at_limit.as_bytes(), "f").unwrap();
    assert!(loaded.doc.to_xml().contains(&nested(MAX_DEPTH - 4)));
    let over = with_in_advanced(&nested(MAX_DEPTH - 3));
    let e = SettingsDoc::parse(over.as_bytes(), "f").unwrap_err();
    assert_eq!(limit_of(&e), Some(Limit::Depth(MAX_DEPTH)));
    // An empty element counts as a level too.
    let empty = with_in_advanced(&format!(
        "{}<b/>{}",
        "<a>".repeat(MAX_DEPTH - 4),
        "</a>".repeat(MAX_DEPTH - 4)
    ));
    let e = SettingsDoc::parse(empty.as_bytes(), "f").unwrap_err();
    assert!(e.to_string().contains("element <b> is nested"), "{e}");
}

#[test]
fn two_hundred_thousand_levels_are_refused_for_their_size_before_they_are_parsed() {
    let text = with_in_advanced(&nested(200_000));
    assert!(text.len() as u64 > MAX_FILE_BYTES);
    let e = on_small_stack(move || SettingsDoc::parse(text.as_bytes(), "f")).unwrap_err();
    assert_eq!(limit_of(&e), Some(Limit::Bytes(MAX_FILE_BYTES)));
    let message = e.to_string();
    assert!(
        message.starts_with("f:1:1: the file holds ")
            && message.contains("(accepted: at most 1 MiB, a bound"),
        "{message}"
    );
}

#[test]
fn more_than_10000_elements_are_refused_naming_the_element_limit() {
    let text = with_in_advanced(&"<X/>".repeat(MAX_ELEMENTS));
    let e = SettingsDoc::parse(text.as_bytes(), "f").unwrap_err();
    assert_eq!(limit_of(&e), Some(Limit::Elements(MAX_ELEMENTS)), "{e}");
    assert!(
        e.to_string()
            .contains("more than 10000 elements (accepted: at most 10000 elements, comments and processing instructions"),
        "{e}"
    );
    // Comments count too: each is kept, and written back.
    let comments = with_in_advanced(&"<!---->".repeat(MAX_ELEMENTS));
    let e = SettingsDoc::parse(comments.as_bytes(), "f").unwrap_err();
    assert_eq!(limit_of(&e), Some(Limit::Elements(MAX_ELEMENTS)));
    // Thousands of unknown elements below the limit are read and kept.
    let many = with_in_advanced(&"<X/>".repeat(MAX_ELEMENTS - 200));
    let loaded = SettingsDoc::parse(many.as_bytes(), "f").unwrap();
    assert_eq!(
        loaded.doc.to_xml().matches("<X/>").count(),
        MAX_ELEMENTS - 200
    );
}

#[test]
fn six_million_unknown_elements_are_refused_for_their_size_before_any_is_read() {
    let text = with_in_advanced(&"<X/>".repeat(6_000_000));
    let e = SettingsDoc::parse(text.as_bytes(), "f").unwrap_err();
    assert_eq!(limit_of(&e), Some(Limit::Bytes(MAX_FILE_BYTES)));
}

#[test]
fn a_settings_file_over_1_mib_on_disk_is_refused_without_being_read() {
    let (_dir, app) = app_with(b"");
    let file = app.join("Settings/backup.4DSettings");
    // Sparse: 64 MiB on paper, nothing on the disk.
    std::fs::File::create(&file)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    for e in [
        load_file(&file).map(|_| ()).unwrap_err(),
        load_effective(&app).map(|_| ()).unwrap_err(),
    ] {
        assert_eq!(limit_of(&e), Some(Limit::Bytes(MAX_FILE_BYTES)));
        let message = e.to_string();
        assert!(
            message.contains(
                "backup.4DSettings:1:1: the file holds 67108864 bytes (accepted: at most 1 MiB"
            ),
            "{message}"
        );
    }
    // 4D's files weigh about 3 KB: the limit is far from them.
    assert!((defaults().len() as u64) < MAX_FILE_BYTES / 100);
}

#[test]
fn legacy_values_under_long_nested_names_are_warned_with_a_shortened_key() {
    let name = "N".repeat(4000);
    let open: String = (0..50).map(|_| format!("<{name}>")).collect();
    let close: String = (0..50).map(|_| format!("</{name}>")).collect();
    let bad = "<JournalFileEnabled>maybe</JournalFileEnabled>".repeat(100);
    let text = with_in_advanced(&format!("{open}{bad}{close}"));
    let loaded = SettingsDoc::parse(text.as_bytes(), "f").unwrap();
    let warnings: Vec<_> = loaded
        .warnings
        .iter()
        .filter(|w| w.message.starts_with("legacy value \"maybe\""))
        .collect();
    assert_eq!(warnings.len(), 100);
    for w in warnings {
        assert!(w.key.chars().count() <= 241, "{}", w.key.len());
        assert!(
            w.key.starts_with("Backup/Settings/Advanced/NNN"),
            "{}",
            w.key
        );
        assert!(w.key.ends_with("N/JournalFileEnabled"), "{}", w.key);
        assert!(w.key.contains('…'), "{}", w.key);
    }
}

#[test]
fn a_time_of_day_with_any_hour_is_refused_without_overflowing() {
    assert_eq!(TimeOfDay::new(u32::MAX, 59, 59), None);
    assert_eq!(TimeOfDay::new(23, u32::MAX, 0), None);
    assert_eq!(TimeOfDay::new(0, 0, u32::MAX), None);
    assert!(TimeOfDay::new(23, 59, 59).is_some());
    // The longest hour a settings file may write still reads as a delay.
    let text = defaults().replace(">00:01:00<", ">999999:59:59.999999999<");
    let loaded = SettingsDoc::parse(text.as_bytes(), "f").unwrap();
    let delay = loaded
        .doc
        .settings()
        .advanced
        .backup_failure
        .try_to_backup_after;
    assert_eq!(delay.as_duration().as_secs(), 999_999 * 3600 + 59 * 60 + 59);
}

// sauve.toml

fn toml_error(text: String) -> SettingsError {
    on_small_stack(move || {
        parse_sauve_toml(
            &text,
            "sauve.toml",
            Path::new("/nonexistent/App"),
            &|_: &str| None,
        )
        .map(|_| ())
    })
    .unwrap_err()
}

#[test]
fn a_sauve_toml_nested_100000_levels_deep_is_an_ordinary_error_on_a_small_stack() {
    let deep = 100_000;
    for text in [
        format!("x = {}{}\n", "[".repeat(deep), "]".repeat(deep)),
        format!("x = {}1{}\n", "{a = ".repeat(deep), "}".repeat(deep)),
        format!("{} = 1\n", vec!["a"; deep].join(".")),
        format!("[{}]\n", vec!["a"; deep].join(".")),
        format!("[[{}]]\n", vec!["a"; deep].join(".")),
    ] {
        let start = text[..12].to_owned();
        let e = toml_error(text);
        assert!(
            matches!(
                e,
                SettingsError::Malformed { .. } | SettingsError::TooLarge { .. }
            ),
            "{start}: {e}"
        );
    }
    // Nesting deeper than any real file and within toml's bound reads.
    let ok = format!("x = {}{}\n", "[".repeat(40), "]".repeat(40));
    let e = toml_error(ok);
    assert!(e.to_string().contains("unknown key \"x\""), "{e}");
}

#[test]
fn a_sauve_toml_over_1_mib_is_refused_naming_the_limit_without_being_read() {
    let mut text = "#".repeat(MAX_FILE_BYTES as usize);
    text.push('\n');
    let e = toml_error(text);
    assert_eq!(limit_of(&e), Some(Limit::Bytes(MAX_FILE_BYTES)));
    assert!(e.to_string().contains("(accepted: at most 1 MiB"), "{e}");

    let (_dir, app) = app_with(b"");
    let file = app.join("Settings/sauve.toml");
    std::fs::File::create(&file)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let e = load_sauve_toml(&app).unwrap_err();
    assert_eq!(limit_of(&e), Some(Limit::Bytes(MAX_FILE_BYTES)));
    assert!(
        e.to_string()
            .contains("sauve.toml:1:1: the file holds 67108864 bytes"),
        "{e}"
    );
}

#[test]
fn a_secret_file_over_64_kib_is_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("token");
    std::fs::write(&secret, "x".repeat(65 << 10)).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!("[metrics]\ntoken_file = \"{}\"\n", secret.display());
    let e = parse_sauve_toml(&text, "sauve.toml", dir.path(), &|_: &str| None).unwrap_err();
    assert!(
        e.to_string()
            .contains("holds 66560 bytes (accepted: at most 64 KiB)"),
        "{e}"
    );
}

// Destinations and off-site copies inside the app.

/// An app folder with `Data/`, and beside it `Elsewhere/` and a link
/// `Sneaky -> App/Data`.
fn app_folder() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("App");
    std::fs::create_dir_all(app.join("Data")).unwrap();
    std::fs::create_dir_all(dir.path().join("Elsewhere")).unwrap();
    std::os::unix::fs::symlink(app.join("Data"), dir.path().join("Sneaky")).unwrap();
    (dir, app)
}

#[test]
fn a_destination_inside_the_app_folder_is_refused_naming_the_folder_and_the_app() {
    let (dir, app) = app_folder();
    let abs = app.display().to_string();
    for written in [
        "./",
        ".",
        "Data/",
        "./Data\\",
        "./Backup/",
        "Data/../Backup/",
        abs.as_str(),
        "../App/Data/",
        "../Sneaky/",
        "../Sneaky/bk/",
    ] {
        let e = resolve_destination(&app, written).unwrap_err();
        assert!(matches!(e, PathError::InsideApp { .. }), "{written}: {e}");
        let message = e.to_string();
        assert!(
            message.contains(&format!("is inside the app folder \"{abs}\""))
                && message.ends_with(
                    "(accepted: a folder outside the app, such as the default ../Backups/)"
                ),
            "{written}: {message}"
        );
    }
    let e = resolve_destination(&app, "Data/").unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("the folder \"{abs}/Data\" is inside")),
        "{e}"
    );
    for written in [
        "../Backups/",
        "../Elsewhere/",
        "../App-backups/",
        "/var/backups/sauve/",
        "s3://bucket/apps/notes/",
    ] {
        let d = resolve_destination(&app, written);
        assert!(d.is_ok(), "{written}: {d:?}");
    }
    assert_eq!(
        resolve_destination(&app, "../Elsewhere/").unwrap(),
        Destination::Folder(dir.path().join("Elsewhere"))
    );
    // What only reads the sets already there still finds them.
    assert_eq!(
        resolve_destination_to_read(&app, "./Backup/").unwrap(),
        Destination::Folder(app.join("Backup"))
    );
}

#[test]
fn settings_set_refuses_a_destination_inside_the_app_and_writes_nothing() {
    let (_dir, app) = app_folder();
    let set = |value: &str| {
        change_settings(
            &app,
            &Change {
                values: vec![("General/DestinationFolder".to_owned(), value.to_owned())],
                attachments: None,
                confined: false,
            },
        )
    };
    let Err(ChangeError::Rejected { rejected, .. }) = set("./") else {
        panic!("accepted");
    };
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].key, "General/DestinationFolder");
    assert!(
        rejected[0]
            .to_string()
            .contains("General/DestinationFolder: invalid value \"./\": the folder")
            && rejected[0].message.contains("../Backups/"),
        "{}",
        rejected[0]
    );
    assert!(!app.join("Settings/backup.4DSettings").exists());
    set("../Elsewhere/").unwrap();
    assert!(app.join("Settings/backup.4DSettings").exists());
}

#[test]
fn a_4d_file_whose_destination_is_inside_the_app_still_reads_and_other_keys_still_change() {
    // 4D's new-project file writes ./Backup/: the file is valid, the
    // destination is refused where it is used (a backup: 1407).
    let (_dir, app) = app_with(defaults().as_bytes());
    let effective = load_effective(&app).unwrap();
    let written = &effective.doc.settings().general.destination_folder;
    assert_eq!(written, "./Backup/");
    assert!(matches!(
        resolve_destination(&app, written),
        Err(PathError::InsideApp { .. })
    ));
    change_settings(
        &app,
        &Change {
            values: vec![("Advanced/SetNumber/Value".to_owned(), "5".to_owned())],
            attachments: None,
            confined: false,
        },
    )
    .unwrap();
}

#[test]
fn an_offsite_copy_inside_the_app_folder_is_refused_naming_the_folder_and_the_app() {
    let (_dir, app) = app_folder();
    let abs = app.display().to_string();
    let parse = |url: &str| {
        let text = format!("[[offsite]]\nurl = '{url}'\n");
        parse_sauve_toml(&text, "sauve.toml", &app, &|_: &str| None)
    };
    for url in [
        ".",
        "./",
        "Data/",
        "Data/../Logs",
        abs.as_str(),
        "../App/Data",
        "../Sneaky",
        // The copier joins the name to the app as it is: a backslash is
        // part of a name there, not a separator.
        "..\\Offsite",
    ] {
        let e = parse(url).unwrap_err().to_string();
        assert!(
            e.starts_with("sauve.toml:2:7: offsite[0].url: invalid value")
                && e.contains(&format!("is inside the app folder \"{abs}\""))
                && e.contains("each set would be copied into the live app")
                && e.contains("(accepted: a folder outside the app, such as ../Offsite/, or s3://bucket/prefix/)"),
            "{url}: {e}"
        );
    }
    for url in ["../Offsite", "../Elsewhere/", "/var/offsite", "s3://b/p/"] {
        let s = parse(url);
        assert!(s.is_ok(), "{url}: {s:?}");
    }
}
