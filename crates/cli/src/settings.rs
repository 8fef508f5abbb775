//! `sauve settings …`.

use std::path::{Path, PathBuf};

use sauve_settings::{
    Effective, SettingsDoc, SettingsError, SettingsSource, Value, create_file, load_effective,
    load_file, resolve_path, save_file, structure_settings_path,
};

use crate::args::SettingsCommand;
use crate::{Failure, Io};

pub(crate) fn run(cmd: SettingsCommand, io: &mut Io<'_>) -> Result<(), Failure> {
    match cmd {
        SettingsCommand::Show { app, json } => show(&app_dir(&app.app)?, json, io),
        SettingsCommand::Init { app } => init(&app_dir(&app.app)?, io),
        SettingsCommand::Validate { file } => validate(&file, io),
        SettingsCommand::Set { key, value, app } => set(&app_dir(&app.app)?, &key, &value, io),
    }
}

/// The app folder as an absolute path; it must exist.
pub(crate) fn app_dir(app: &Path) -> Result<PathBuf, Failure> {
    let abs = std::path::absolute(app)
        .map_err(|e| Failure::usage(format!("app folder \"{}\": {e}", app.display())))?;
    if !abs.is_dir() {
        return Err(Failure::usage(format!(
            "app folder \"{}\" does not exist or is not a folder (accepted: --app DIR, the folder holding Project/, Data/ and Settings/)",
            abs.display()
        )));
    }
    Ok(abs)
}

/// Maps a settings error to the CLI's exit codes: invalid content is a usage
/// error (2), anything else (IO) a failure (1).
fn failure(e: SettingsError) -> Failure {
    match e {
        SettingsError::Io { .. } | SettingsError::AlreadyExists(_) => {
            Failure::failed(e.to_string())
        }
        _ => Failure::usage(e.to_string()),
    }
}

fn load(app: &Path, io: &mut Io<'_>) -> Result<Effective, Failure> {
    let effective = load_effective(app).map_err(|e| match e {
        SettingsError::Invalid { .. } => {
            Failure::usage(format!("invalid settings (backup status 1419):\n{e}"))
        }
        e => failure(e),
    })?;
    for w in &effective.warnings {
        io.err(&format!("warning: {w}\n"));
    }
    Ok(effective)
}

fn show(app: &Path, json: bool, io: &mut Io<'_>) -> Result<(), Failure> {
    let effective = load(app, io)?;
    let settings = effective.doc.settings();
    if json {
        let text = serde_json::to_string_pretty(&sauve_settings::to_json(settings))
            .map_err(|e| Failure::failed(format!("cannot render JSON: {e}")))?;
        io.out(&format!("{text}\n"));
        return Ok(());
    }
    let mut text = format!("Settings:    {}\n", effective.source);
    let destination = &settings.general.destination_folder;
    match resolve_path(app, destination) {
        Ok(r) => text.push_str(&format!("Destination: {}\n", r.path.display())),
        Err(e) => text.push_str(&format!("Destination: invalid: {e}\n")),
    }
    text.push('\n');
    let entries: Vec<(&str, Value)> = settings.entries().collect();
    let width = entries.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in entries {
        match value {
            Value::Paths(items) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    let key = if i == 0 { key } else { "" };
                    text.push_str(&format!("{key:width$}  {item}\n"));
                }
            }
            value => text.push_str(&format!("{key:width$}  {value}\n")),
        }
    }
    io.out(&text);
    Ok(())
}

fn init(app: &Path, io: &mut Io<'_>) -> Result<(), Failure> {
    let path = structure_settings_path(app);
    create_file(&path, &SettingsDoc::default()).map_err(failure)?;
    io.out(&format!("Created {}\n", path.display()));
    if let SettingsSource::DataSettings(data) = sauve_settings::locate(app) {
        io.err(&format!(
            "warning: {} exists and takes precedence over the new file\n",
            data.display()
        ));
    }
    Ok(())
}

fn validate(file: &Path, io: &mut Io<'_>) -> Result<(), Failure> {
    let loaded = load_file(file).map_err(failure)?;
    for w in &loaded.warnings {
        io.err(&format!("warning: {w}\n"));
    }
    io.out(&format!("{}: valid\n", file.display()));
    Ok(())
}

fn set(app: &Path, key: &str, value: &str, io: &mut Io<'_>) -> Result<(), Failure> {
    let effective = load(app, io)?;
    let path = match effective.source.path() {
        Some(p) => p.to_path_buf(),
        None => structure_settings_path(app),
    };
    let mut doc = effective.doc;
    doc.set(key, value).map_err(failure)?;
    save_file(&path, &doc).map_err(failure)?;
    let key = key.trim().trim_matches('/');
    let shown = doc
        .settings()
        .get(key.strip_prefix("Backup/Settings/").unwrap_or(key))
        .map_or_else(|| value.trim().to_owned(), |v| v.to_string());
    io.out(&format!("{key} = {shown} ({})\n", path.display()));
    Ok(())
}
