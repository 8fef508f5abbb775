//! `sauve settings …`.

use std::path::{Path, PathBuf};

use sauve_settings::{
    Effective, SettingsDoc, SettingsError, SettingsSource, Value, create_file, load_effective,
    load_file, structure_settings_path,
};

use crate::args::SettingsCommand;
use crate::report::{Failure, Io};

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

/// `sauve.toml`, when the app has one.
fn load_own(app: &Path) -> Result<Option<sauve_settings::SauveToml>, Failure> {
    let own = sauve_settings::load_sauve_toml(app).map_err(|e| match e {
        SettingsError::Invalid { .. } | SettingsError::Malformed { .. } => {
            Failure::usage(format!("invalid sauve.toml:\n{e}"))
        }
        e => failure(e),
    })?;
    Ok(own.source.is_some().then_some(own))
}

fn show(app: &Path, json: bool, io: &mut Io<'_>) -> Result<(), Failure> {
    let effective = load(app, io)?;
    let own = load_own(app)?;
    let settings = effective.doc.settings();
    if json {
        let mut value = sauve_settings::to_json(settings);
        if let (Some(own), Some(map)) = (&own, value.as_object_mut()) {
            map.insert(sauve_settings::SAUVE_TOML.to_owned(), own.to_json());
        }
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| Failure::failed(format!("cannot render JSON: {e}")))?;
        io.out(&format!("{text}\n"));
        return Ok(());
    }
    let mut text = format!("Settings:    {}\n", effective.source);
    let destination = &settings.general.destination_folder;
    match sauve_settings::resolve_destination(app, destination) {
        Ok(d) => text.push_str(&format!("Destination: {}\n", d.describe())),
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
    if let Some(own) = &own {
        text.push_str(&own_text(own));
    }
    io.out(&text);
    Ok(())
}

/// `sauve.toml` for people: each setting, secrets as `***` with where they
/// come from.
fn own_text(own: &sauve_settings::SauveToml) -> String {
    use sauve_settings::{Secret, SecretFrom};
    let secret = |s: &Option<Secret>| match s {
        None => "none".to_owned(),
        Some(s) => match &s.from {
            SecretFrom::Env(v) => format!("*** (from ${v})"),
            SecretFrom::File(p) => format!("*** (from {})", p.display()),
        },
    };
    let a = &own.alerts;
    let mut t = format!(
        "\nsauve.toml:  {}\nalerts.on    {}\nalerts.stale_after  {}\n",
        own.source
            .as_deref()
            .map_or_else(String::new, |p| p.display().to_string()),
        a.on.token(),
        a.stale_after
            .map_or("off".to_owned(), |d| format!("{} s", d.as_secs()))
    );
    for w in &a.webhooks {
        t.push_str(&format!(
            "webhook      {} (signature key {})\n",
            sauve_settings::shown_url(&w.url),
            secret(&w.secret)
        ));
    }
    for e in &a.emails {
        t.push_str(&format!(
            "email        {}:{} ({}) from {} to {}{}\n",
            e.host,
            e.port,
            e.tls.token(),
            e.from,
            e.to.join(", "),
            e.user.as_ref().map_or(String::new(), |u| format!(
                ", user {u}, password {}",
                secret(&e.password)
            ))
        ));
    }
    for c in &a.commands {
        t.push_str(&format!("command      {}\n", c.run));
    }
    if !a.has_notifiers() {
        t.push_str("(no notifier: alerts are kept in sauve status only)\n");
    }
    t.push_str(&format!("metrics.token  {}\n", secret(&own.metrics.token)));
    t
}

fn init(app: &Path, io: &mut Io<'_>) -> Result<(), Failure> {
    let path = structure_settings_path(app);
    // Read first: a sauve.toml that cannot be read stops init before
    // anything is written, so that init can be run again once it is fixed.
    // A new sauve app makes incremental sets (behaviour §21.1).
    let toml = sauve_settings::prepare_new_app_incremental(app).map_err(failure)?;
    create_file(&path, &SettingsDoc::default()).map_err(failure)?;
    io.out(&format!("Created {}\n", path.display()));
    if toml.written {
        toml.commit().map_err(failure)?;
        io.out(&format!(
            "Wrote [incremental] full_every = 7 in {} (a full set every 7th backup, only the changes between)\n",
            toml.path.display()
        ));
    } else {
        io.out(&format!(
            "Kept the [incremental] of {}\n",
            toml.path.display()
        ));
    }
    if let SettingsSource::DataSettings(data) = sauve_settings::locate(app) {
        io.err(&format!(
            "warning: {} exists and takes precedence over the new file\n",
            data.display()
        ));
    }
    Ok(())
}

fn validate(file: &Path, io: &mut Io<'_>) -> Result<(), Failure> {
    if file.extension().is_some_and(|e| e == "toml") {
        // Relative `*_file` paths resolve against the app folder: the one
        // holding Settings/ (or Data/Settings/).
        let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let settings_dir = abs.parent().unwrap_or(Path::new("."));
        let mut app = settings_dir.parent().unwrap_or(settings_dir);
        if app.file_name().is_some_and(|n| n == "Data") {
            app = app.parent().unwrap_or(app);
        }
        sauve_settings::load_sauve_toml_file(&abs, app, &sauve_settings::ProcessEnvironment)
            .map_err(failure)?;
        io.out(&format!("{}: valid\n", file.display()));
        return Ok(());
    }
    let loaded = load_file(file).map_err(failure)?;
    for w in &loaded.warnings {
        io.err(&format!("warning: {w}\n"));
    }
    io.out(&format!("{}: valid\n", file.display()));
    Ok(())
}

fn set(app: &Path, key: &str, value: &str, io: &mut Io<'_>) -> Result<(), Failure> {
    // Warnings of the file as it is, before the change.
    load(app, io)?;
    let change = sauve_settings::Change {
        values: vec![(key.to_owned(), value.to_owned())],
        attachments: None,
        confined: false,
    };
    let changed = sauve_settings::change_settings(app, &change).map_err(|e| match e {
        sauve_settings::ChangeError::Rejected { rejected, .. } => Failure::usage(
            rejected
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        sauve_settings::ChangeError::Settings(e) => failure(e),
    })?;
    for w in &changed.warnings {
        io.err(&format!("warning: {w}\n"));
    }
    let key = key.trim().trim_matches('/');
    let shown = changed
        .doc
        .settings()
        .get(key.strip_prefix("Backup/Settings/").unwrap_or(key))
        .map_or_else(|| value.trim().to_owned(), |v| v.to_string());
    io.out(&format!("{key} = {shown} ({})\n", changed.path.display()));
    Ok(())
}
