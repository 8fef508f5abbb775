//! `cargo xtask crash`: a crash at every durable step (and, with `--faults`,
//! an I/O error at every step), in the manner of SQLite's crash tests.
//!
//! The `sauve` binary and the test host (`tests/examples/crash_host.rs`)
//! are built with the `fault-points` feature and copied to `target/crash/`. For each
//! scenario a template app is prepared once; a first run with
//! `SAUVE_FAULT_LOG` counts its durable steps; then for every step N a
//! fresh copy of the template is run with `SAUVE_FAULT_AT=N`, which aborts
//! the process there (or fails that one step with ENOSPC, EIO or EROFS),
//! and the invariants are checked:
//!
//! 1. every set committed before the run is still there, byte for byte,
//!    and verifies (a set retention dooms may be gone, but never in part);
//! 2. backupHistory.json, sauve-state.json and the Backup Journal parse,
//!    every journal entry whole;
//! 3. the next run (the same command, without the fault) succeeds, and a
//!    backup after it ends with status 0;
//! 4. no `.part`, temporary or restore staging file survives that run;
//! 5. no backup number is used twice, and every set verifies;
//! 6. with a log, restoring the newest set and integrating gives every
//!    record the host had written before the crash.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::workspace::repo_root;

/// Options of `crash`.
#[derive(clap::Args, Debug)]
pub(crate) struct Options {
    /// Every scenario (the default is the first backup only, as CI runs it)
    #[arg(long)]
    all: bool,
    /// One scenario by name (first, retention-after, retention-before, log, stopped, restore, open, incremental, incremental-bucket, rehearse)
    #[arg(long, value_name = "NAME", conflicts_with = "all")]
    scenario: Option<String>,
    /// Inject ENOSPC, EIO and EROFS at each step instead of crashing
    #[arg(long)]
    faults: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    First,
    RetentionAfter,
    RetentionBefore,
    Log,
    Stopped,
    Restore,
    Open,
    Incremental,
    IncrementalBucket,
    Rehearse,
}

const SCENARIOS: [(Kind, &str, &str); 10] = [
    (Kind::First, "first", "a first backup"),
    (
        Kind::RetentionAfter,
        "retention-after",
        "a backup deleting the oldest set after it (SetNumber 2)",
    ),
    (
        Kind::RetentionBefore,
        "retention-before",
        "a backup deleting the oldest set before it (EraseOldBackupBefore)",
    ),
    (
        Kind::Log,
        "log",
        "a backup cutting the log and writing a .4BL",
    ),
    (Kind::Stopped, "stopped", "a backup stopped half-way (1406)"),
    (Kind::Restore, "restore", "sauve restore of the newest set"),
    (
        Kind::Open,
        "open",
        "an automatic restore at open, with log integration",
    ),
    (
        Kind::Incremental,
        "incremental",
        "an incremental backup on a chain that retention keeps whole",
    ),
    (
        Kind::IncrementalBucket,
        "incremental-bucket",
        "the same into a bucket of a local Garage node (each request that writes is a step)",
    ),
    (
        Kind::Rehearse,
        "rehearse",
        "a restore rehearsal of set 1 and its log backup (behaviour §22)",
    ),
];

/// The faults and the status behaviour §8.2 gives each in the archive.
const FAULTS: [(&str, i32); 3] = [("enospc", -34), ("eio", 1409), ("erofs", -61)];

/// The statuses a backup may end with when `fault` hits `steps[i]`
/// (`step path`): behaviour §8.2's for the fault in the archive; 1408 (the log
/// backup error of behaviour §5 steps 7 and 10) in the log, its pending segments
/// and the .4BL; 0 in a record (journal, history, state: a warning, never
/// the status). A removal may also end with 0: retention and the cleanup
/// after a commit report what they could not delete in the journal, the
/// backup done. A fault in a clone folder (behaviour §21.3) ends with 0: the
/// data-kind files are then copied under the lock, as on a file system
/// that cannot clone. A folder fsync belongs to the step before it.
fn expected_statuses(fault: &str, steps: &[String], i: usize) -> Vec<i32> {
    let archive = FAULTS
        .iter()
        .find(|(f, _)| *f == fault)
        .map_or(1409, |(_, s)| *s);
    let mut at = i;
    while at > 0 && steps[at].starts_with("sync-folder ") {
        at -= 1;
    }
    let (step, path) = steps[at].split_once(' ').unwrap_or(("", ""));
    // A store's records (`.sauve/` beneath its prefix) are records too.
    let record = [
        "backupHistory.json",
        "Backup Journal",
        "sauve-state.json",
        "/.sauve/",
    ]
    .iter()
    .any(|r| path.contains(r))
        || path.ends_with("/Logs");
    let log = path.contains(".journal") || path.contains(".4BL");
    let mut out = if record || in_clone_folder(path) {
        vec![0]
    } else if path.starts_with("s3://") && step == "sync" && !path.ends_with(".part") {
        // The store's answer to a completion it applied, lost: the object
        // is there, of the upload's size, and the set is committed.
        vec![0]
    } else if path.starts_with("s3://") && !path.ends_with(".part") {
        // A failed request to the store: behaviour §19's 1409, whatever
        // the system error would have been on a disk. (The archive writer's
        // own steps on a set it streams name its `.part`: those fail as a
        // disk's would.)
        vec![1409]
    } else if log {
        vec![1408, archive]
    } else {
        vec![archive]
    };
    // So is the commit of a .4BL after its .4BK: a note, the records
    // staying in the pending segments.
    let log_commit = step == "link" && path.contains(".4BL");
    if (step == "unlink" || log_commit) && !out.contains(&0) {
        out.push(0);
    }
    out
}

/// Whether `path` is a clone folder or inside one.
fn in_clone_folder(path: &str) -> bool {
    Path::new(path).components().any(|c| {
        c.as_os_str()
            .to_string_lossy()
            .starts_with(sauve_archive::CLONE_FOLDER_PREFIX)
    })
}

struct Tools {
    sauve: PathBuf,
    host: PathBuf,
    /// The bucket of the bucket scenario, once it is chosen.
    bucket: Option<Bucket>,
}

/// A local Garage node and the prefix the bucket scenario backs up into.
struct Bucket {
    garage: sauve_tests::garage::Garage,
    runtime: tokio::runtime::Runtime,
    store: Arc<dyn sauve_store::Store>,
}

/// The bucket scenario's destination.
const BUCKET_PREFIX: &str = "crash/";

impl Bucket {
    fn start() -> Result<Bucket> {
        let garage = sauve_tests::garage::Garage::start(1);
        let store: Arc<dyn sauve_store::Store> =
            Arc::new(sauve_tests::garage::bucket(&garage, BUCKET_PREFIX));
        Ok(Bucket {
            garage,
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?,
            store,
        })
    }

    fn url(&self) -> String {
        format!("s3://{}/{BUCKET_PREFIX}", self.garage.bucket)
    }

    /// Every object under the prefix: key and bytes.
    fn objects(&self) -> Result<Vec<(String, bytes::Bytes)>> {
        self.runtime.block_on(async {
            let mut out = Vec::new();
            for o in self.store.list("").await? {
                let bytes = self.store.get(&o.key).await?;
                out.push((o.key, bytes));
            }
            anyhow::Ok(out)
        })
    }

    /// Every key under the prefix (listed, nothing downloaded).
    fn keys(&self) -> Result<Vec<String>> {
        let listed = self.runtime.block_on(self.store.list(""))?;
        Ok(listed.into_iter().map(|o| o.key).collect())
    }

    /// Puts the prefix back as `objects` had it: every other object removed.
    fn reset(&self, objects: &[(String, bytes::Bytes)]) -> Result<()> {
        self.runtime.block_on(async {
            for o in self.store.list("").await? {
                self.store.delete(&o.key).await?;
            }
            for (key, bytes) in objects {
                self.store.put_replace(key, bytes.clone()).await?;
            }
            anyhow::Ok(())
        })
    }
}

fn build() -> Result<Tools> {
    // Built in the workspace's target folder, sharing its dependencies
    // with every other debug build (only our crates differ with the
    // feature), then copied aside: the next ordinary build links
    // target/debug/sauve without the fault points again.
    crate::workspace::cargo(&[
        "build",
        "--quiet",
        "-p",
        "sauve-cli",
        "-p",
        "sauve-tests",
        "--bin",
        "sauve",
        "--example",
        "crash_host",
        "--features",
        "sauve-cli/fault-points,sauve-tests/fault-points",
    ])?;
    let target = repo_root().join("target");
    let aside = target.join("crash");
    std::fs::create_dir_all(&aside)?;
    let tools = Tools {
        sauve: aside.join("sauve"),
        host: aside.join("crash_host"),
        bucket: None,
    };
    for (from, to) in [
        (target.join("debug/sauve"), &tools.sauve),
        (target.join("debug/examples/crash_host"), &tools.host),
    ] {
        std::fs::copy(&from, to).with_context(|| format!("cannot copy {}", from.display()))?;
    }
    Ok(tools)
}

/// A scenario's app, made once in `DIR/pristine` and copied to `DIR/w` for
/// every run: always at the same path, since the history and the sets
/// name the app and the destination by their absolute paths.
struct Template {
    dir: tempfile::TempDir,
    /// The bucket's objects as the bucket scenario starts.
    objects: Option<Vec<(String, bytes::Bytes)>>,
}

impl Template {
    fn app(root: &Path) -> PathBuf {
        root.join("App")
    }

    fn pristine(&self) -> PathBuf {
        self.dir.path().join("pristine")
    }

    /// A fresh copy of the pristine app and destination at `DIR/w` (and
    /// the bucket put back as it was, for the bucket scenario).
    fn fresh(&self, t: &Tools) -> Result<PathBuf> {
        if let (Some(b), Some(objects)) = (&t.bucket, &self.objects) {
            b.reset(objects)?;
        }
        let work = self.dir.path().join("w");
        if work.exists() {
            std::fs::remove_dir_all(&work)
                .with_context(|| format!("cannot remove {}", work.display()))?;
        }
        ok(
            &run(Command::new("cp")
                .args(["-a", "--"])
                .arg(self.pristine())
                .arg(&work))?,
            "cp",
        )?;
        Ok(work)
    }
}

fn run(cmd: &mut Command) -> Result<Output> {
    cmd.output().with_context(|| format!("cannot run {cmd:?}"))
}

fn ok(out: &Output, what: &str) -> Result<String> {
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn sauve(t: &Tools, args: &[&str]) -> Command {
    let mut c = Command::new(&t.sauve);
    c.args(args).env("TZ", "UTC").env_remove("SAUVE_FAULT_AT");
    if let Some(b) = &t.bucket {
        c.env("SAUVE_TEST_S3_KEY", &b.garage.key_id)
            .env("SAUVE_TEST_S3_SECRET", &b.garage.secret);
    }
    c
}

fn set(t: &Tools, app: &Path, key: &str, value: &str) -> Result<()> {
    let a = app.display().to_string();
    ok(
        &run(&mut sauve(t, &["settings", "set", key, value, "--app", &a]))?,
        "settings set",
    )?;
    Ok(())
}

fn backup(t: &Tools, app: &Path) -> Result<()> {
    let a = app.display().to_string();
    ok(
        &run(&mut sauve(t, &["backup", "--app", &a]))?,
        "sauve backup",
    )?;
    Ok(())
}

fn host(t: &Tools, args: &[&str]) -> Command {
    let mut c = Command::new(&t.host);
    c.args(args).env("TZ", "UTC");
    c
}

/// Writes `count` records from `from` through the host: acknowledged.
fn write_records(t: &Tools, app: &Path, from: u64, count: u64) -> Result<()> {
    let a = app.display().to_string();
    ok(
        &run(&mut host(
            t,
            &["write", &a, &from.to_string(), &count.to_string()],
        ))?,
        "crash_host write",
    )?;
    Ok(())
}

/// Records written before the scenario's run, in the template.
const RECORDS: u64 = 40;

fn prepare(t: &Tools, kind: Kind) -> Result<Template> {
    let dir = tempfile::Builder::new().prefix("sauve-crash-").tempdir()?;
    let work = dir.path().join("w");
    let app = Template::app(&work);
    std::fs::create_dir_all(app.join("Project"))?;
    std::fs::create_dir_all(app.join("Data"))?;
    std::fs::write(app.join("Project/App.4DProject"), "{}\n")?;
    std::fs::write(app.join("Project/Sources.txt"), "x".repeat(5000))?;
    std::fs::write(app.join("Data/App.4DD"), "last=0\n")?;
    std::fs::write(app.join("notes.txt"), "an attachment\n")?;
    set(t, &app, "General/IncludeStructureFile", "True")?;
    set(t, &app, "General/IncludesFiles/Item1", "notes.txt")?;
    // No compression: bytes go to the part files as they are read.
    set(t, &app, "Advanced/CompressionRate", "None")?;
    match kind {
        Kind::First => {}
        Kind::RetentionAfter | Kind::RetentionBefore => {
            set(t, &app, "Advanced/SetNumber/Enable", "True")?;
            set(t, &app, "Advanced/SetNumber/Value", "2")?;
            if kind == Kind::RetentionBefore {
                set(t, &app, "Advanced/EraseOldBackupBefore", "True")?;
            }
            for _ in 0..3 {
                backup(t, &app)?;
            }
        }
        Kind::Log | Kind::Open | Kind::Rehearse => {
            write_records(t, &app, 0, RECORDS / 2)?;
            backup(t, &app)?;
            write_records(t, &app, RECORDS / 2, RECORDS / 2)?;
            if kind == Kind::Rehearse {
                // Set 2 cuts the log: set 1's log backup holds the rest.
                backup(t, &app)?;
            }
            if kind == Kind::Open {
                // The data file is damaged: the host asks for a restore.
                std::fs::write(app.join("Data/App.4DD"), "damaged")?;
            }
        }
        Kind::Restore => backup(t, &app)?,
        Kind::Incremental | Kind::IncrementalBucket => {
            // A full set and one incremental set on it; the run adds the
            // third link, and SetNumber 2 keeps all three.
            std::fs::create_dir_all(app.join("Settings"))?;
            let mut toml = String::new();
            if let Some(b) = t
                .bucket
                .as_ref()
                .filter(|_| kind == Kind::IncrementalBucket)
            {
                set(t, &app, "General/DestinationFolder", &b.url())?;
                toml = format!("[destination]\n{}\n", b.garage.toml_lines());
            }
            toml.push_str("[incremental]\nfull_every = 3\nblock_kib = 4\n");
            std::fs::write(app.join("Settings/sauve.toml"), toml)?;
            set(t, &app, "Advanced/SetNumber/Enable", "True")?;
            set(t, &app, "Advanced/SetNumber/Value", "2")?;
            let mut data: Vec<u8> = (0u32..(64 << 10))
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 9) as u8)
                .collect();
            for round in 0..2u8 {
                data[usize::from(round) * 9000] ^= 0xff;
                std::fs::write(app.join("Data/App.4DD"), &data)?;
                backup(t, &app)?;
            }
            data[40_000] ^= 0xff;
            std::fs::write(app.join("Data/App.4DD"), &data)?;
        }
        Kind::Stopped => {
            backup(t, &app)?;
            // Enough data for several writes and two 1 MiB segments, so
            // that the Stop lands in the middle of the copy.
            set(t, &app, "Advanced/FileSegmentation/DefaultSize", "1")?;
            let data: Vec<u8> = (0u32..(3 << 20))
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
                .collect();
            std::fs::write(app.join("Data/App.4DD"), data)?;
        }
    }
    let objects = match &t.bucket {
        Some(b) if kind == Kind::IncrementalBucket => Some(b.objects()?),
        _ => None,
    };
    let template = Template { dir, objects };
    std::fs::rename(&work, template.pristine())?;
    Ok(template)
}

/// The command a scenario runs, in `root` (a copy of the template).
fn scenario_command(t: &Tools, kind: Kind, root: &Path) -> Command {
    let app = Template::app(root);
    let a = app.display().to_string();
    match kind {
        Kind::Restore => {
            let set = newest_set(&root.join("Backups")).unwrap_or_default();
            let to = root.join("restored").display().to_string();
            sauve(
                t,
                &[
                    "restore",
                    &set.display().to_string(),
                    "--to",
                    &to,
                    "--force",
                    "--app",
                    &a,
                ],
            )
        }
        Kind::Open => host(t, &["open", &a]),
        Kind::Rehearse => sauve(t, &["rehearse", "--set", "1", "--app", &a]),
        _ => sauve(t, &["backup", "--json", "--app", &a]),
    }
}

fn newest_set(dest: &Path) -> Option<PathBuf> {
    folder_sets(dest)
        .into_iter()
        .filter(|(n, k)| k == "4BK" && *n > 0)
        .max()
        .map(|(n, _)| dest.join(format!("App[{n:04}].4BK")))
}

/// `(number, "4BK"|"4BL")` of every committed set among `names`.
fn sets_among(names: impl Iterator<Item = String>) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = names
        .filter_map(|name| {
            let a = sauve_archive::ArchiveName::parse(&name)?;
            (!a.part).then(|| {
                (
                    a.number.get(),
                    match a.kind {
                        sauve_archive::SetKind::Backup => "4BK".to_owned(),
                        sauve_archive::SetKind::Log => "4BL".to_owned(),
                    },
                )
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `(number, "4BK"|"4BL")` of every committed set in the folder `dest`.
fn folder_sets(dest: &Path) -> Vec<(u32, String)> {
    sets_among(
        std::fs::read_dir(dest)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned()),
    )
}

/// Where a scenario's sets are: its `Backups` folder, or the bucket.
enum Dest<'a> {
    Folder(PathBuf),
    Bucket(&'a Bucket),
}

impl Dest<'_> {
    fn of<'a>(t: &'a Tools, kind: Kind, root: &Path) -> Dest<'a> {
        match &t.bucket {
            Some(b) if kind == Kind::IncrementalBucket => Dest::Bucket(b),
            _ => Dest::Folder(root.join("Backups")),
        }
    }

    /// `(number, "4BK"|"4BL")` of every committed set.
    fn sets(&self) -> Result<Vec<(u32, String)>> {
        Ok(match self {
            Dest::Folder(dest) => folder_sets(dest),
            Dest::Bucket(b) => sets_among(b.keys()?.into_iter()),
        })
    }

    /// Every committed file (object) of a set, with its blake3.
    fn snapshot(&self) -> Result<BTreeMap<String, String>> {
        let hash = |name: String, bytes: &[u8]| {
            let a = sauve_archive::ArchiveName::parse(&name)?;
            (!a.part).then(|| (name, blake3::hash(bytes).to_hex().to_string()))
        };
        Ok(match self {
            Dest::Folder(dest) => std::fs::read_dir(dest)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let bytes = std::fs::read(e.path()).ok()?;
                    hash(e.file_name().to_string_lossy().into_owned(), &bytes)
                })
                .collect(),
            Dest::Bucket(b) => b
                .objects()?
                .into_iter()
                .filter_map(|(k, bytes)| hash(k, &bytes))
                .collect(),
        })
    }

    /// Verifies set `number` (with its chain); returns its parent's number.
    fn verify_set(&self, number: u32, kind: &str) -> Result<Option<u32>> {
        let report = match self {
            Dest::Folder(dest) => {
                let path = dest.join(format!("App[{number:04}].{kind}"));
                let path = if path.exists() {
                    path
                } else {
                    dest.join(format!("App[{number:04}]"))
                };
                sauve_archive::verify(&path, &mut sauve_archive::NoProgress)
            }
            Dest::Bucket(b) => {
                let name = format!("App[{number:04}].{kind}");
                b.runtime
                    .block_on(sauve_archive::RemoteSet::locate(
                        Arc::clone(&b.store),
                        b.runtime.handle().clone(),
                        &name,
                        None,
                    ))
                    .and_then(|set| {
                        sauve_archive::verify_remote(&set, &mut sauve_archive::NoProgress)
                    })
            }
        };
        let report = report.with_context(|| format!("set {number:04}.{kind} does not verify"))?;
        Ok(report.manifest.header.parent.map(|p| p.get()))
    }

    /// The text of the destination's backupHistory.json, if it has one.
    fn history_text(&self) -> Result<Option<String>> {
        match self {
            Dest::Folder(dest) => Ok(sauve_history::read_json_text(dest)?),
            Dest::Bucket(b) => {
                if !b.keys()?.iter().any(|k| k == "backupHistory.json") {
                    return Ok(None);
                }
                let bytes = b.runtime.block_on(b.store.get("backupHistory.json"))?;
                Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
            }
        }
    }

    /// Objects no run may leave visible in a bucket: anything but committed
    /// sets, the history and the records sauve keeps there (`.sauve/`).
    /// (An upload a crash left unfinished is invisible, and not listed.)
    fn leftovers(&self) -> Result<Vec<String>> {
        Ok(match self {
            Dest::Folder(_) => Vec::new(),
            Dest::Bucket(b) => b
                .keys()?
                .into_iter()
                .filter(|k| {
                    let set = sauve_archive::ArchiveName::parse(k).is_some_and(|a| !a.part);
                    !(set || k == "backupHistory.json" || k.starts_with(".sauve/"))
                })
                .collect(),
        })
    }
}

/// Leftovers no run may leave once the next one has run.
fn leftovers(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let part = sauve_archive::ArchiveName::parse(&name).is_some_and(|a| a.part);
            let staging = [
                ".sauve-restore-",
                ".sauve-auto-restore-",
                ".sauve-log-",
                ".sauve-open-restore",
                ".sauve-rehearsal-",
            ]
            .iter()
            .any(|p| name.starts_with(p));
            if part || name.ends_with(".tmp") || staging {
                found.push(
                    path.strip_prefix(root)
                        .unwrap_or(&path)
                        .display()
                        .to_string(),
                );
            } else if e.file_type().is_ok_and(|f| f.is_dir()) {
                stack.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The records parse: the history, the state file, every journal entry.
fn records_parse(app: &Path, dest: &Dest<'_>) -> Result<()> {
    if let Some(text) = dest.history_text()? {
        sauve_history::History::parse(&text).context("backupHistory.json does not parse")?;
    }
    // A bucket destination's records, kept in the app.
    let mut stack = vec![app.join("Logs/Destinations")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "json") {
                let text = std::fs::read_to_string(&path)?;
                serde_json::from_str::<serde_json::Value>(&text)
                    .with_context(|| format!("{} does not parse", path.display()))?;
            }
        }
    }
    let state = app.join("Logs/sauve-state.json");
    if let Ok(text) = std::fs::read_to_string(&state) {
        serde_json::from_str::<serde_json::Value>(&text)
            .context("sauve-state.json does not parse")?;
    }
    for e in sauve_journal::read_all(&sauve_journal::journal_dir(app))? {
        if e.title.is_none() {
            bail!("a journal entry is not whole: {:?}", e.raw_title);
        }
    }
    Ok(())
}

/// The finished status `sauve backup --json` printed last.
fn finished_status(out: &Output) -> Option<i32> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "finished")
        .and_then(|v| v["status"].as_i64())
        .map(|s| s as i32)
}

/// One run at point `n`, then every invariant; `Ok(None)` when the run
/// ended before reaching `n`.
fn one(
    t: &Tools,
    kind: Kind,
    template: &Template,
    (n, steps): (u64, &[String]),
    fault: Option<&str>,
    stop_at: Option<u64>,
) -> Result<Option<String>> {
    let work = template.fresh(t)?;
    let root = work.as_path();
    let app = Template::app(root);
    let dest = Dest::of(t, kind, root);
    let before = dest.snapshot()?;
    let before_sets = dest.sets()?;
    let out = run_at(t, kind, root, (n, fault), stop_at)?;
    let Some(outcome) = outcome_of(kind, root, (n, steps), fault, &out)? else {
        return Ok(None);
    };
    // 1. Every earlier set: whole and sound, or (retention) wholly gone.
    earlier_sets_kept(kind, n, &dest, (&before, &before_sets))?;
    // 2. The records parse.
    records_parse(&app, &dest).with_context(|| format!("step {n}: after the crash"))?;
    // 3. The next run succeeds, then a backup with status 0.
    next_runs_succeed(t, kind, root, n)?;
    // 4. No leftovers.
    let mut left = leftovers(root);
    left.extend(dest.leftovers()?);
    if !left.is_empty() {
        bail!("step {n}: left behind after the next run: {left:?}");
    }
    // 5. Numbers used once; every set verifies.
    numbers_once_and_sets_sound(&dest, n)?;
    if matches!(kind, Kind::Incremental | Kind::IncrementalBucket) {
        incremental_chain_holds(&dest, n)?;
    }
    // 6. Every acknowledged record comes back.
    if matches!(kind, Kind::Log | Kind::Open) {
        records_come_back(t, root, n)?;
    }
    Ok(Some(outcome))
}

/// Runs the scenario in `root` with the fault point at step `n`: a crash
/// there, or the one `fault`; with `stop_at`, a Stop at that step.
fn run_at(
    t: &Tools,
    kind: Kind,
    root: &Path,
    (n, fault): (u64, Option<&str>),
    stop_at: Option<u64>,
) -> Result<Output> {
    let mut cmd = scenario_command(t, kind, root);
    cmd.env("SAUVE_FAULT_AT", n.to_string());
    match fault {
        Some(f) => cmd.env("SAUVE_FAULT", f),
        None => cmd.env("SAUVE_FAULT", "abort"),
    };
    if let Some(m) = stop_at {
        cmd.env("SAUVE_STOP_AT", m.to_string());
    }
    run(&mut cmd)
}

/// What the run at step `n` ended as: `crashed`, or `FAULT:STATUS` when
/// the fault failed the step as it must; `None` when it ended before the
/// step.
fn outcome_of(
    kind: Kind,
    root: &Path,
    (n, steps): (u64, &[String]),
    fault: Option<&str>,
    out: &Output,
) -> Result<Option<String>> {
    let crashed = {
        use std::os::unix::process::ExitStatusExt;
        out.status.signal() == Some(6)
    };
    Ok(Some(match (fault, crashed) {
        (None, true) => "crashed".to_owned(),
        // Ended before the point, as a different path through the same
        // code can; but never by failing.
        (None, false) if out.status.success() || kind == Kind::Stopped => return Ok(None),
        (None, false) => bail!(
            "step {n}: the run failed instead of crashing ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        (Some(f), true) => bail!("the {f} fault at step {n} crashed the process"),
        (Some(f), false) => fault_outcome(kind, root, (n, steps), f, out)?,
    }))
}

/// `FAULT:STATUS` of a run that `f` failed at step `n`, once its status is
/// one the fault may give there and the journal says what happened.
fn fault_outcome(
    kind: Kind,
    root: &Path,
    (n, steps): (u64, &[String]),
    f: &str,
    out: &Output,
) -> Result<String> {
    let status = if matches!(
        kind,
        Kind::First
            | Kind::RetentionAfter
            | Kind::RetentionBefore
            | Kind::Log
            | Kind::Stopped
            | Kind::Incremental
            | Kind::IncrementalBucket
    ) {
        finished_status(out)
    } else {
        Some(if out.status.success() { 0 } else { 1 })
    };
    let Some(status) = status else {
        bail!(
            "the {f} fault at step {n}: no finished line\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let i = (n - 1) as usize;
    let step = &steps[i];
    let expected = expected_statuses(f, steps, i);
    let allowed = kind == Kind::Stopped && status == 1406
        || matches!(kind, Kind::Restore | Kind::Open | Kind::Rehearse)
        || expected.contains(&status);
    if !allowed {
        bail!(
            "the {f} fault at step {n} ({step}) ended with status {status} (expected one of {expected:?})"
        );
    }
    // A clone that could not be made is a copy under the lock,
    // and the journal's lock line says so (a stopped run may
    // end before it has one).
    if in_clone_folder(step) && status == 0 {
        let journal = sauve_journal::read_all(&sauve_journal::journal_dir(&Template::app(root)))?;
        let how = journal.last().and_then(|e| e.data_lock_how.clone());
        if !how.as_deref().is_some_and(|h| h.starts_with("copied")) {
            bail!(
                "the {f} fault at step {n} ({step}): the journal's lock line says {how:?}, not a copy"
            );
        }
    }
    // The records say what happened: the run's journal entry
    // carries its status (unless the fault hit that very record).
    let in_record = expected == [0];
    if status != 0 && !in_record && !matches!(kind, Kind::Restore | Kind::Open | Kind::Rehearse) {
        let journal = sauve_journal::read_all(&sauve_journal::journal_dir(&Template::app(root)))?;
        let last = journal.last().and_then(|e| e.status);
        if last != Some(status) {
            bail!(
                "the {f} fault at step {n} ({step}): status {status}, but the journal's last entry says {last:?}"
            );
        }
    }
    Ok(format!("{f}:{status}"))
}

/// Invariant 1: every set committed in `dest` before the run (`before`:
/// its files' hashes and its sets) is still there byte for byte and
/// verifies, or (retention) is wholly gone.
fn earlier_sets_kept(
    kind: Kind,
    n: u64,
    dest: &Dest<'_>,
    (before, before_sets): (&BTreeMap<String, String>, &[(u32, String)]),
) -> Result<()> {
    let after = dest.snapshot()?;
    for (name, hash) in before {
        match after.get(name) {
            Some(h) if h == hash => {}
            Some(_) => bail!("step {n}: {name} changed"),
            None if matches!(kind, Kind::RetentionAfter | Kind::RetentionBefore) => {}
            None => bail!("step {n}: {name} is gone"),
        }
    }
    for (number, k) in before_sets {
        let files: Vec<_> = before
            .keys()
            .filter(|f| f.starts_with(&format!("App[{number:04}]")) && f.contains(k.as_str()))
            .collect();
        let present = files
            .iter()
            .filter(|f| after.contains_key(f.as_str()))
            .count();
        if present == 0 {
            continue;
        }
        if present != files.len() {
            bail!("step {n}: set {number:04}.{k} is partly deleted");
        }
        dest.verify_set(*number, k)
            .with_context(|| format!("step {n}: after the crash"))?;
    }
    Ok(())
}

/// Invariant 3: the scenario's command, run again without the fault,
/// succeeds; then a backup ends with status 0.
fn next_runs_succeed(t: &Tools, kind: Kind, root: &Path, n: u64) -> Result<()> {
    let again = run(&mut scenario_command(t, kind, root))?;
    ok(&again, &format!("the run after the crash at step {n}"))?;
    let a = Template::app(root).display().to_string();
    let next = run(&mut sauve(t, &["backup", "--json", "--app", &a]))?;
    if finished_status(&next) != Some(0) {
        bail!(
            "step {n}: the next backup did not end with 0:\n{}",
            String::from_utf8_lossy(&next.stdout)
        );
    }
    Ok(())
}

/// Invariant 5: no backup number is twice in the history, and every set
/// in `dest` verifies.
fn numbers_once_and_sets_sound(dest: &Dest<'_>, n: u64) -> Result<()> {
    let text = dest
        .history_text()?
        .context("no history after the next backup")?;
    let entries = sauve_history::History::parse(&text).context("history")?;
    let mut numbers = BTreeSet::new();
    for key in entries.keys() {
        for e in entries.entries(key).unwrap_or_default() {
            if e.is_numbered_backup() && !numbers.insert(e.backup_number) {
                bail!(
                    "step {n}: number {} is in the history twice",
                    e.backup_number
                );
            }
        }
    }
    for (number, k) in dest.sets()? {
        dest.verify_set(number, &k)
            .with_context(|| format!("step {n}: after the next backup"))?;
    }
    Ok(())
}

/// The incremental scenario is what it says: set 3 (the run's, or else the
/// next backup's) builds on set 2; set 4 is full again (full_every 3).
fn incremental_chain_holds(dest: &Dest<'_>, n: u64) -> Result<()> {
    let sets = dest.sets()?;
    for (number, parent) in [(3, Some(2)), (4, None)] {
        if sets.contains(&(number, "4BK".to_owned())) {
            let found = dest.verify_set(number, "4BK")?;
            if found != parent {
                bail!("step {n}: set {number} builds on {found:?}, not {parent:?}");
            }
        }
    }
    Ok(())
}

/// Invariant 6: restoring the newest set and integrating the log gives
/// every record the host wrote before the crash.
fn records_come_back(t: &Tools, root: &Path, n: u64) -> Result<()> {
    let a = Template::app(root).display().to_string();
    let to = root.join("check").display().to_string();
    let out = ok(&run(&mut host(t, &["check", &a, &to]))?, "crash_host check")?;
    let v: serde_json::Value = serde_json::from_str(out.trim())?;
    if v["keys"].as_u64() != Some(RECORDS) {
        bail!(
            "step {n}: {} of {RECORDS} acknowledged records came back",
            v["keys"]
        );
    }
    Ok(())
}

/// The durable steps the scenario takes (`step path` each), from a
/// counting run.
fn count(t: &Tools, kind: Kind, template: &Template, stop_at: Option<u64>) -> Result<Vec<String>> {
    let work = template.fresh(t)?;
    let log = template.dir.path().join("points.log");
    let _ = std::fs::remove_file(&log);
    let mut cmd = scenario_command(t, kind, &work);
    cmd.env("SAUVE_FAULT_LOG", &log);
    if let Some(m) = stop_at {
        cmd.env("SAUVE_STOP_AT", m.to_string());
    }
    let out = run(&mut cmd)?;
    if kind == Kind::Stopped {
        if finished_status(&out) != Some(1406) {
            bail!(
                "the stopped scenario's counting run did not stop (1406):\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    } else {
        ok(&out, "the counting run")?;
    }
    Ok(std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_owned())
        .collect())
}

pub(crate) fn main(o: &Options) -> Result<()> {
    let mut t = build()?;
    let chosen: Vec<_> = SCENARIOS
        .iter()
        .filter(|(_, name, _)| match (&o.scenario, o.all) {
            (Some(s), _) => s == name,
            (None, true) => true,
            (None, false) => *name == "first",
        })
        .collect();
    if chosen.is_empty() {
        bail!(
            "no scenario {:?} (accepted: {})",
            o.scenario,
            SCENARIOS.map(|s| s.1).join(", ")
        );
    }
    if chosen.iter().any(|(k, _, _)| *k == Kind::IncrementalBucket) {
        t.bucket = Some(Bucket::start()?);
    }
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (kind, name, what) in chosen {
        let started = Instant::now();
        let template = prepare(&t, *kind)?;
        // A stopped backup stops after the second write into its .4BK.
        let stop_at = if *kind == Kind::Stopped {
            let full = count(&t, Kind::First, &template, None)?;
            let writes: Vec<usize> = full
                .iter()
                .enumerate()
                .filter(|(_, s)| s.starts_with("write ") && s.contains(".4BK"))
                .map(|(i, _)| i + 1)
                .collect();
            let Some(at) = writes.get(1).or(writes.first()) else {
                bail!("the stopped scenario's backup writes nothing");
            };
            Some(*at as u64)
        } else {
            None
        };
        let steps = count(&t, *kind, &template, stop_at)?;
        let points = steps.len() as u64;
        // The store's own steps (the archive writer's name the `.part`).
        let request = |s: &&String| s.contains(" s3://") && !s.ends_with(".part");
        let requests = steps.iter().filter(request).count();
        if requests > 0 {
            eprintln!("{name}: {requests} of the {points} steps are requests to the store:");
            for s in steps.iter().filter(request) {
                eprintln!("  {s}");
            }
        }
        if points == 0 {
            bail!(
                "{name}: no durable step was counted: is the build without the fault-points feature?"
            );
        }
        let mut held = 0;
        let mut seen: BTreeMap<String, u32> = BTreeMap::new();
        // A crash at every step; or each of the three faults at every step.
        let faults: Vec<Option<&str>> = if o.faults {
            FAULTS.iter().map(|(f, _)| Some(*f)).collect()
        } else {
            vec![None]
        };
        let mut runs = 0;
        for n in 1..=points {
            for fault in &faults {
                runs += 1;
                match one(&t, *kind, &template, (n, &steps), *fault, stop_at) {
                    Ok(Some(outcome)) => {
                        held += 1;
                        *seen.entry(outcome).or_default() += 1;
                    }
                    Ok(None) => *seen.entry("not reached".to_owned()).or_default() += 1,
                    Err(e) => failures.push(format!("{name}: {e:#}")),
                }
            }
        }
        eprintln!(
            "{name}: {points} points, {runs} runs, {held} held, {:.0} s",
            started.elapsed().as_secs_f64()
        );
        rows.push((name, what, points, runs, held, seen, started.elapsed()));
    }
    println!(
        "## cargo xtask crash{}{}",
        if o.all { " --all" } else { "" },
        if o.faults { " --faults" } else { "" }
    );
    println!();
    println!(
        "| scenario | durable steps | runs {} | invariants held | outcomes | time |",
        if o.faults { "with a fault" } else { "crashed" }
    );
    println!("|---|---:|---:|---:|---|---:|");
    for (name, what, points, runs, held, seen, took) in &rows {
        let outcomes = seen
            .iter()
            .map(|(k, v)| format!("{k} ×{v}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "| {name}: {what} | {points} | {runs} | {held} | {outcomes} | {:.0} s |",
            took.as_secs_f64()
        );
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("FAILED {f}");
        }
        bail!("{} runs broke an invariant", failures.len());
    }
    Ok(())
}
