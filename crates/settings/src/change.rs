//! Changing settings files as a person does, by key and text: what
//! `sauve settings set` and the page's Settings form do. Every value goes
//! through the same rules as `sauve settings validate`; a change with any
//! rejected value writes nothing; an accepted one is written atomically,
//! keeping what the file held that was not changed (unknown elements,
//! comments, the original texts of other values).

use std::path::{Path, PathBuf};

use crate::doc::SettingsDoc;
use crate::error::{Problem, SettingsError};
use crate::layout::{load_effective, save_file, structure_settings_path};
use crate::own::{SAUVE_TOML, locate_sauve_toml, parse_sauve_toml};

/// One value refused, named by its key as the form and the CLI name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The key: a path under `Backup/Settings` (`Scheduler/Hourly/Every`),
    /// or a `sauve.toml` key (`alerts.stale_after`).
    pub key: String,
    /// What is wrong, with the value as given and what is accepted.
    pub message: String,
}

impl std::fmt::Display for Rejected {
    /// `key: message`, or the message alone when it names the key itself
    /// (`unknown key "X" …`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.contains(&format!("\"{}\"", self.key)) {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// What a change to `backup.4DSettings` is: keys with their new texts, and
/// optionally the whole list of attachments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// `(key under Backup/Settings, text)`, applied in order.
    pub values: Vec<(String, String)>,
    /// The new `General/IncludesFiles`, one path per item.
    pub attachments: Option<Vec<String>>,
    /// The change comes from someone who may only point sauve where the
    /// operator allowed (the page): a new destination or attachment is
    /// always checked against `[security] allowed_paths`, or its default
    /// (the app's parent folder and the destination in force). Otherwise
    /// (the operator's own `sauve settings set`), only when `allowed_paths`
    /// is set.
    pub confined: bool,
}

/// A change checked and ready to write.
#[derive(Debug)]
pub struct Changed {
    /// The file it goes to.
    pub path: PathBuf,
    /// The document as it is after the change.
    pub doc: SettingsDoc,
    /// What validation noticed without refusing (a Weekly schedule with no
    /// day, for instance).
    pub warnings: Vec<Problem>,
    /// Whether anything differs from the file: nothing is written otherwise.
    pub written: bool,
}

impl Changed {
    /// Writes the file atomically, if anything changed.
    pub fn commit(&self) -> Result<(), SettingsError> {
        if self.written {
            save_file(&self.path, &self.doc)?;
        }
        Ok(())
    }
}

/// Why a change was not written.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// One or more values were refused; the file is unchanged.
    #[error("{} was not changed:\n{}", file.display(), list(rejected))]
    Rejected {
        /// The file that would have been written.
        file: PathBuf,
        /// Every refused value.
        rejected: Vec<Rejected>,
    },
    /// The file could not be read (or is invalid as it is) or written.
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

fn list(rejected: &[Rejected]) -> String {
    rejected
        .iter()
        .map(|r| format!("  {r}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The file a change to `app`'s backup settings goes to: the file in force,
/// or `APP/Settings/backup.4DSettings` when the app has none.
pub fn settings_file_for_change(app: &Path) -> Result<(SettingsDoc, PathBuf), SettingsError> {
    let effective = load_effective(app)?;
    let path = effective
        .source
        .path()
        .map_or_else(|| structure_settings_path(app), Path::to_path_buf);
    Ok((effective.doc, path))
}

/// Applies `change` to the backup settings in force for `app` and writes
/// them atomically, after validating every value and the whole file with
/// the rules of `sauve settings validate`. A value equal to the one in
/// force is not rewritten (its original text stays).
pub fn change_settings(app: &Path, change: &Change) -> Result<Changed, ChangeError> {
    let changed = prepare_settings_change(app, change)?;
    changed.commit()?;
    Ok(changed)
}

/// [`change_settings`] without the writing: [`Changed::commit`] writes.
pub fn prepare_settings_change(app: &Path, change: &Change) -> Result<Changed, ChangeError> {
    let (mut doc, path) = settings_file_for_change(app)?;
    let before = doc.to_xml();
    let destination_before = doc.settings().general.destination_folder.clone();
    let attachments_before = doc.settings().general.includes_files.clone();
    let mut rejected = Vec::new();
    for (key, text) in &change.values {
        let key = key.trim().trim_matches('/');
        let short = key.strip_prefix("Backup/Settings/").unwrap_or(key);
        let current = doc.settings().get(short).map(|v| v.to_string());
        if current.as_deref() == Some(text.trim()) {
            continue;
        }
        if let Err(e) = doc.set(short, text) {
            rejected.push(Rejected {
                key: short.to_owned(),
                message: match e {
                    SettingsError::InvalidValue {
                        value, accepted, ..
                    } => format!("invalid value \"{value}\" (accepted: {accepted})"),
                    other => other.to_string(),
                },
            });
        }
    }
    if let Some(items) = &change.attachments {
        let items: Vec<String> = items
            .iter()
            .map(|i| i.trim().to_owned())
            .filter(|i| !i.is_empty())
            .collect();
        if doc.settings().general.includes_files != items {
            doc.settings_mut().general.includes_files = items;
        }
    }
    // A destination newly set inside the app is refused here, where it is
    // typed, rather than at the next backup (1407).
    let destination = &doc.settings().general.destination_folder;
    if *destination != destination_before
        && let Err(e @ crate::layout::PathError::InsideApp { .. }) =
            crate::layout::resolve_destination(app, destination)
    {
        rejected.push(Rejected {
            key: "General/DestinationFolder".to_owned(),
            message: format!("invalid value \"{destination}\": {e}"),
        });
    }
    rejected.extend(outside_allowed(
        app,
        (&doc, change.confined),
        &destination_before,
        &attachments_before,
    )?);
    if !rejected.is_empty() {
        return Err(ChangeError::Rejected {
            file: path,
            rejected,
        });
    }
    let text = doc.to_xml();
    // The whole file, as `sauve settings validate` reads it.
    let loaded = match SettingsDoc::parse(text.as_bytes(), &path.display().to_string()) {
        Ok(l) => l,
        Err(SettingsError::Invalid { problems }) => {
            return Err(ChangeError::Rejected {
                file: path,
                rejected: problems.into_iter().map(rejection).collect(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    // A change to the built-in defaults writes the file even when the
    // value is the default's: the settings are then the file's.
    let written = text != before || !path.exists();
    Ok(Changed {
        path,
        doc,
        warnings: loaded.warnings,
        written,
    })
}

/// The destination and attachments newly set in `doc` that lie outside
/// what the operator allowed ([`crate::Allowed`]): what is already in force
/// stays, whatever it is.
fn outside_allowed(
    app: &Path,
    (doc, confined): (&SettingsDoc, bool),
    destination_before: &str,
    attachments_before: &[String],
) -> Result<Vec<Rejected>, SettingsError> {
    let general = &doc.settings().general;
    let new_attachments: Vec<&String> = general
        .includes_files
        .iter()
        .filter(|i| !attachments_before.contains(i))
        .collect();
    if general.destination_folder == destination_before && new_attachments.is_empty() {
        return Ok(Vec::new());
    }
    let security = crate::own::load_security(app)?;
    if !confined && security.allowed_paths.is_none() {
        return Ok(Vec::new());
    }
    let current = crate::layout::resolve_destination_to_read(app, destination_before).ok();
    let allowed = crate::Allowed::of(app, &security, current.as_ref());
    let mut rejected = Vec::new();
    let destination = &general.destination_folder;
    if *destination != destination_before
        && let Ok(d) = crate::layout::resolve_destination_to_read(app, destination)
        && !allowed.permits(&d)
    {
        rejected.push(Rejected {
            key: "General/DestinationFolder".to_owned(),
            message: format!(
                "invalid value \"{destination}\": {}",
                allowed.refusal(&format!("\"{}\"", d.describe()))
            ),
        });
    }
    for item in new_attachments {
        if let Ok(r) = crate::layout::resolve_path(app, item)
            && !allowed.permits_path(&r.path)
        {
            rejected.push(Rejected {
                key: "General/IncludesFiles".to_owned(),
                message: format!(
                    "invalid value \"{item}\": {}",
                    allowed.refusal(&format!("\"{}\"", r.path.display()))
                ),
            });
        }
    }
    Ok(rejected)
}

fn rejection(p: Problem) -> Rejected {
    let key = p.key.strip_prefix("Backup/Settings/").unwrap_or(&p.key);
    Rejected {
        key: key.to_owned(),
        message: p.message,
    }
}

/// The `[alerts]` values a form changes in `sauve.toml` (behaviour §17.2): `on`
/// and `stale_after` (`None` removes it). Notifiers, with their secrets'
/// variables and files, are edited in the file itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertsChange {
    /// `give-up`, `failure` or `always`.
    pub on: String,
    /// A duration such as `26h`, or `None` for no staleness alert.
    pub stale_after: Option<String>,
}

/// The raw texts of `alerts.on` and `alerts.stale_after` in `app`'s
/// `sauve.toml`, as written (`None` where absent or without a file).
pub fn alerts_as_written(app: &Path) -> Result<(Option<String>, Option<String>), SettingsError> {
    let Some(path) = locate_sauve_toml(app) else {
        return Ok((None, None));
    };
    let doc = read_toml(&path)?;
    let get = |key: &str| {
        doc.get("alerts")
            .and_then(|a| a.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    Ok((get("on"), get("stale_after")))
}

fn read_toml(path: &Path) -> Result<toml_edit::DocumentMut, SettingsError> {
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
    let src = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    src.parse::<toml_edit::DocumentMut>()
        .map_err(|e| SettingsError::Malformed {
            file: path.display().to_string(),
            at: crate::xml::locate(src, e.span().map_or(0, |s| s.start)),
            reason: e.message().to_owned(),
        })
}

/// A `sauve.toml` change checked and ready to write.
#[derive(Debug)]
pub struct TomlChanged {
    /// The file it goes to.
    pub path: PathBuf,
    text: String,
    /// The file did not exist: it is created, never put over one made since.
    create: bool,
    /// Whether anything differs from the file.
    pub written: bool,
}

impl TomlChanged {
    /// Writes the file atomically (creating its folder), if anything changed.
    pub fn commit(&self) -> Result<(), SettingsError> {
        if !self.written {
            return Ok(());
        }
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| SettingsError::Io {
                action: "cannot create",
                path: parent.to_path_buf(),
                source,
            })?;
        }
        if self.create {
            return sauve_durable::create_new(&self.path, self.text.as_bytes()).map_err(|e| {
                if e.source.kind() == std::io::ErrorKind::AlreadyExists {
                    SettingsError::AlreadyExists(self.path.clone())
                } else {
                    SettingsError::Write(e)
                }
            });
        }
        sauve_durable::replace(&self.path, self.text.as_bytes()).map_err(SettingsError::Write)
    }
}

/// The sauve.toml a new sauve app gets when it has none (behaviour §21.1).
pub const NEW_APP_SAUVE_TOML: &str = "\
# sauve's own settings (docs/settings.md); 4D's stay in backup.4DSettings.

[incremental]
# Every 7th set is full; the 6 between store only what changed since the
# set before (docs/archives.md, \"Incremental sets\"). 0: every set full,
# as 4D makes them.
full_every = 7
";

/// Gives a new sauve app incremental sets (behaviour §21.1): its sauve.toml
/// gets `[incremental]` with `full_every = 7`, created as
/// [`NEW_APP_SAUVE_TOML`] in `APP/Settings/` when the app has none. A
/// sauve.toml that already has an `incremental` key is left as it is
/// (`written` false). `sauve settings init` and the page's first save call
/// it; an app configured only by 4D's backup.4DSettings never gets it and
/// keeps 4D's full sets. [`TomlChanged::commit`] writes.
pub fn prepare_new_app_incremental(app: &Path) -> Result<TomlChanged, SettingsError> {
    let Some(path) = locate_sauve_toml(app) else {
        return Ok(TomlChanged {
            path: app.join("Settings").join(SAUVE_TOML),
            text: NEW_APP_SAUVE_TOML.to_owned(),
            create: true,
            written: true,
        });
    };
    let mut doc = read_toml(&path)?;
    let before = doc.to_string();
    if !doc.contains_key("incremental") {
        let mut table = toml_edit::Table::new();
        table.insert("full_every", toml_edit::value(7));
        doc.insert("incremental", toml_edit::Item::Table(table));
    }
    let text = doc.to_string();
    Ok(TomlChanged {
        path,
        written: text != before,
        text,
        create: false,
    })
}

/// Writes `change` into `app`'s `sauve.toml` (creating
/// `APP/Settings/sauve.toml` when there is none), keeping every other key,
/// comment and table as written; the result must pass the rules of
/// `sauve settings validate` (secrets resolved from `env`) or nothing is
/// written.
pub fn change_alerts(
    app: &Path,
    change: &AlertsChange,
    env: &dyn crate::own::Environment,
) -> Result<TomlChanged, ChangeError> {
    let changed = prepare_alerts_change(app, change, env)?;
    changed.commit()?;
    Ok(changed)
}

/// [`change_alerts`] without the writing: [`TomlChanged::commit`] writes.
pub fn prepare_alerts_change(
    app: &Path,
    change: &AlertsChange,
    env: &dyn crate::own::Environment,
) -> Result<TomlChanged, ChangeError> {
    let path = locate_sauve_toml(app).unwrap_or_else(|| app.join("Settings").join(SAUVE_TOML));
    let create = !path.exists();
    let mut doc = if !create {
        read_toml(&path)?
    } else {
        toml_edit::DocumentMut::new()
    };
    let before = doc.to_string();
    let alerts = doc
        .entry("alerts")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
    let Some(alerts) = alerts.as_table_like_mut() else {
        return Err(ChangeError::Rejected {
            file: path,
            rejected: vec![Rejected {
                key: "alerts".to_owned(),
                message: "is not a table (accepted: an [alerts] table)".to_owned(),
            }],
        });
    };
    let on = change.on.trim();
    if alerts.get("on").and_then(|v| v.as_str()) != Some(on) {
        alerts.insert("on", toml_edit::value(on));
    }
    match change.stale_after.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => {
            if alerts.get("stale_after").and_then(|v| v.as_str()) != Some(s) {
                alerts.insert("stale_after", toml_edit::value(s));
            }
        }
        _ => {
            alerts.remove("stale_after");
        }
    }
    let text = doc.to_string();
    if let Err(e) = parse_sauve_toml(&text, &path.display().to_string(), app, env) {
        return Err(match e {
            SettingsError::Invalid { problems } => ChangeError::Rejected {
                file: path,
                rejected: problems
                    .into_iter()
                    .map(|p| Rejected {
                        key: p.key,
                        message: p.message,
                    })
                    .collect(),
            },
            e => ChangeError::Settings(e),
        });
    }
    Ok(TomlChanged {
        path,
        written: text != before,
        text,
        create,
    })
}
