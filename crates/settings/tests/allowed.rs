//! `[security] allowed_paths` (SECURITY.md, "The page"): a destination or
//! an attachment set through the page's Settings form (a confined change)
//! lies where the operator allowed, by default in the app's parent folder;
//! `sauve settings set` obeys `allowed_paths` once the operator sets it;
//! what is already in force stays.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use sauve_settings::{Change, ChangeError, change_settings};

fn app() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("App");
    std::fs::create_dir_all(app.join("Settings")).unwrap();
    (dir, app)
}

/// A change from the page.
fn set(app: &Path, key: &str, value: &str) -> Result<(), String> {
    set_as(app, key, value, true)
}

fn set_as(app: &Path, key: &str, value: &str, confined: bool) -> Result<(), String> {
    change_settings(
        app,
        &Change {
            values: vec![(key.to_owned(), value.to_owned())],
            attachments: None,
            confined,
        },
    )
    .map(drop)
    .map_err(|e| match e {
        ChangeError::Rejected { rejected, .. } => rejected
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        other => panic!("{other}"),
    })
}

#[test]
fn a_destination_or_an_attachment_outside_what_the_operator_allowed_is_refused() {
    // Found by hand: through the Settings page a logged-in user added any
    // file of the server to the set and wrote sets to any folder.
    let (dir, app) = app();
    let parent = dir.path().display().to_string();
    for (key, value) in [
        ("General/DestinationFolder", "/etc/sauve-sets/"),
        ("General/IncludesFiles/Item1", "/etc/shadow"),
        ("General/IncludesFiles/Item1", "../../etc/"),
        ("General/DestinationFolder", "s3://someone-elses/bucket/"),
    ] {
        let err = set(&app, key, value).unwrap_err();
        assert!(
            err.contains("is outside the folders the operator allowed")
                && err.contains(&format!("accepted: inside {parent}")),
            "{key} = {value}: {err}"
        );
    }
    assert!(
        !app.join("Settings/backup.4DSettings").exists(),
        "nothing written"
    );
    // Inside the app's parent folder: accepted.
    set(&app, "General/DestinationFolder", "../Backups/").unwrap();
    set(&app, "General/IncludesFiles/Item1", "../Attachments/").unwrap();
    // The operator allows more in sauve.toml: it is accepted, and what the
    // operator set before (the destination in force) stays accepted.
    let sets = dir.path().join("sets");
    std::fs::write(
        app.join("Settings/sauve.toml"),
        format!(
            "[security]\nallowed_paths = [\"{}\", \"s3://backups/apps/\"]\n",
            sets.display()
        ),
    )
    .unwrap();
    set(&app, "General/DestinationFolder", "s3://backups/apps/app1/").unwrap();
    set(
        &app,
        "General/DestinationFolder",
        &format!("{}/app1/", sets.display()),
    )
    .unwrap();
    let err = set(&app, "General/DestinationFolder", "../Backups/").unwrap_err();
    assert!(
        err.contains("outside the folders the operator allowed"),
        "{err}"
    );
    // Other keys still change while an attachment outside stays in force.
    set(&app, "Advanced/SetNumber/Value", "4").unwrap();
}

#[test]
fn allowed_paths_must_be_absolute_folders_or_s3_prefixes() {
    let (_dir, app) = app();
    std::fs::write(
        app.join("Settings/sauve.toml"),
        "[security]\nallowed_paths = [\"relative/path\"]\n",
    )
    .unwrap();
    let err = sauve_settings::load_security(&app).unwrap_err().to_string();
    assert!(
        err.contains("security.allowed_paths")
            && err.contains("accepted: absolute folders and s3:// prefixes"),
        "{err}"
    );
    assert!(sauve_settings::load_sauve_toml(&app).is_err());
}
