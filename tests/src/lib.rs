//! Helpers for sauve's cross-crate behaviour specifications: fixtures,
//! sample app folders and an in-process `sauve` runner.

use std::path::{Path, PathBuf};

pub mod browser;
pub mod garage;
pub mod paused;
pub mod receivers;

/// A two-worker tokio runtime, for tests that drive a store from sync code.
#[allow(clippy::expect_used)] // A test helper: failing here fails the test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// A file of `tests/fixtures/4d-samples/`: real files written by 4D.
pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/4d-samples").join(name)
}

/// What one `sauve` invocation gave.
#[derive(Debug)]
pub struct Output {
    /// The exit code.
    pub code: u8,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `sauve ARGS` in-process.
pub fn sauve(args: &[&str]) -> Output {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let argv = std::iter::once("sauve").chain(args.iter().copied());
    let code = sauve_cli::run(argv, &mut out, &mut err);
    Output {
        code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    }
}

/// An app folder `TMP/App` in a temporary directory of its own (so that
/// `../Backups/` stays inside it): `APP/Project/App.4DProject`,
/// `APP/Data/App.4DD`, and, if given, a settings file copied to
/// `APP/Settings/backup.4DSettings`.
pub struct SampleApp {
    dir: tempfile::TempDir,
    app: PathBuf,
}

impl SampleApp {
    /// Creates the app, with `settings` (a fixture name) as its structure settings.
    pub fn new(settings: Option<&str>) -> std::io::Result<SampleApp> {
        let dir = tempfile::Builder::new().prefix("sauve-test-").tempdir()?;
        let app_dir = dir.path().join("App");
        let app = app_dir.as_path();
        std::fs::create_dir_all(app.join("Project"))?;
        std::fs::create_dir_all(app.join("Data"))?;
        std::fs::write(app.join("Project/App.4DProject"), "{}\n")?;
        std::fs::write(app.join("Data/App.4DD"), b"data")?;
        if let Some(name) = settings {
            std::fs::create_dir_all(app.join("Settings"))?;
            std::fs::copy(fixture(name), app.join("Settings/backup.4DSettings"))?;
        }
        Ok(SampleApp { dir, app: app_dir })
    }

    /// An app without settings file, then `sauve settings set KEY VALUE` for
    /// each pair (which creates `APP/Settings/backup.4DSettings`).
    pub fn with_settings(pairs: &[(&str, &str)]) -> std::io::Result<SampleApp> {
        let app = SampleApp::new(None)?;
        for (k, v) in pairs {
            let out = sauve(&["settings", "set", k, v, "--app", &app.arg()]);
            if out.code != 0 {
                return Err(std::io::Error::other(out.stderr));
            }
        }
        Ok(app)
    }

    /// The temporary folder holding the app (and its `../Backups/`).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The app folder.
    pub fn path(&self) -> &Path {
        &self.app
    }

    /// The app folder as a string, for command lines.
    pub fn arg(&self) -> String {
        self.app.display().to_string()
    }

    /// The app's key in a backupHistory.json: its structure file's path.
    pub fn history_key(&self) -> String {
        self.app.join("Project/App.4DProject").display().to_string()
    }

    /// The backupHistory.json of `destination`, as it is now.
    #[allow(clippy::unwrap_used)] // A test helper: failing here fails the test that called it.
    pub fn history_in(&self, destination: &Path) -> sauve_history::History {
        sauve_history::History::load(destination, jiff::Timestamp::now())
            .unwrap()
            .history
    }

    /// The history entries of this app in its default destination,
    /// `../Backups/`.
    #[allow(clippy::unwrap_used)] // A test helper: failing here fails the test that called it.
    pub fn history_entries(&self) -> Vec<sauve_history::HistoryEntry> {
        self.history_in(&self.root().join("Backups"))
            .entries(&self.history_key())
            .unwrap()
    }
}

/// A host log at `APP/Data/App.journal` and an engine that cuts it at each
/// backup, with `options` otherwise.
#[allow(clippy::panic)] // A test helper: failing here fails the test that called it.
pub fn engine_with_log(
    app: &SampleApp,
    identity: [u8; 16],
    options: sauve_engine::EngineOptions,
) -> (
    std::sync::Arc<sauve_logfile::LogWriter>,
    sauve_engine::BackupHandle,
) {
    let log = std::sync::Arc::new(
        sauve_logfile::LogWriter::open_or_create(
            &app.path().join("Data/App.journal"),
            identity,
            sauve_logfile::Durability::EveryAppend,
        )
        .unwrap_or_else(|e| panic!("cannot create the log: {e}")),
    );
    let layout = sauve_settings::AppLayout::discover(app.path())
        .unwrap_or_else(|e| panic!("no app layout: {e}"));
    let options = sauve_engine::EngineOptions {
        log: Some(log.clone()),
        ..options
    };
    let handle = sauve_engine::Engine::start(layout, options)
        .unwrap_or_else(|e| panic!("the engine did not start: {e}"));
    (log, handle)
}

/// The log a set's `Data/App.journal` holds, after restoring the set
/// `archive` (a `.4BL`) into `to`.
#[allow(clippy::panic)] // A test helper: failing here fails the test that called it.
pub fn archived_log(archive: &Path, to: &Path) -> sauve_logfile::LogContents {
    sauve_archive::restore(
        archive,
        &sauve_archive::RestoreOptions {
            to: Some(to.to_path_buf()),
            force: false,
        },
        &mut sauve_archive::NoProgress,
    )
    .unwrap_or_else(|e| panic!("{} does not restore: {e}", archive.display()));
    sauve_logfile::read_log(&to.join("Data/App.journal"))
        .unwrap_or_else(|e| panic!("the restored log does not read: {e}"))
}

/// insta settings that replace `path` by `[APP]` in snapshots.
pub fn redact_app(path: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(&regex_escape(&path.display().to_string()), "[APP]");
    s
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A key-value store as a model host: its data file holds the last applied
/// log sequence, then `key=value` lines; log records are `key=value`.
pub mod kv {
    use std::collections::BTreeMap;
    use std::path::Path;

    /// The store.
    pub type Map = BTreeMap<String, String>;

    /// Writes the data file.
    pub fn save(path: &Path, last: u64, map: &Map) -> std::io::Result<()> {
        let mut text = format!("last={last}\n");
        for (k, v) in map {
            text.push_str(&format!("{k}={v}\n"));
        }
        std::fs::write(path, text)
    }

    /// Reads the data file: the last applied sequence and the pairs.
    pub fn load(path: &Path) -> Option<(u64, Map)> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut lines = text.lines();
        let last = lines.next()?.strip_prefix("last=")?.parse().ok()?;
        let map = lines
            .map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect::<Option<Map>>()?;
        Some((last, map))
    }

    /// Applies one log record.
    pub fn apply(map: &mut Map, payload: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(payload).map_err(|e| e.to_string())?;
        let (k, v) = text.split_once('=').ok_or("not key=value")?;
        map.insert(k.to_owned(), v.to_owned());
        Ok(())
    }
}

/// The stdout of a command that must have succeeded; else the test fails
/// with its exit code, stdout and stderr.
pub fn ok(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `len` bytes that do not compress, the same every time.
pub fn random(len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(7);
    (0..len).map(|_| rng.u8(..)).collect()
}

/// Bytes of the files under `dir`, recursively; 0 when it is missing.
pub fn size_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_under(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}
