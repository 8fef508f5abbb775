//! Restore rehearsals (behaviour §22): a set restored into a sandbox
//! outside the app, its log backups integrated from the same source, the
//! host's check run on the result, each phase timed, the sandbox removed,
//! and one status recorded like 4D's other operations (journal, history,
//! the newest proven point in the state; an alert when it fails).
//!
//! Admitted like a restore (1402 rules); a backup that comes due stops it
//! (the coordinator cancels its token). It runs on a thread of its own at
//! a lower priority, so its decompression threads inherit it.

mod check;
mod record;
pub(crate) mod scheduled;
mod source;
mod steps;

use std::path::{Path, PathBuf};

use sauve_archive::Identities;
use sauve_locking::CancellationToken;
use sauve_logfile::Until;
use sauve_number::BackupNumber;
use sauve_settings::SauveToml;

pub use check::{RehearsalError, RehearsalHost, Sandbox};

use crate::api::Trigger;
use crate::error::EngineError;
use crate::recorder::Recorder;
use crate::state::RehearsalRecord;
use source::{Listing, SetSource};

/// Which set a rehearsal restores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pick {
    /// The newest set of the source (before `until`, when given).
    #[default]
    Newest,
    /// The set of this number.
    Number(BackupNumber),
    /// One of the sets the source keeps, at random.
    Random,
}

/// What a rehearsal is asked (`sauve rehearse`, [`crate::Rehearsals::rehearse`]).
#[derive(Clone, Debug)]
pub struct RehearsalOptions {
    /// The set.
    pub pick: Pick,
    /// Where the sets are read: an `s3://` URL (the destination's bucket
    /// or an `[[offsite]]` one) or a folder; `None`, `[rehearsal] from`,
    /// else the app's destination.
    pub from: Option<String>,
    /// Where the integration stops.
    pub until: Until,
    /// The age identity of an encrypted source; `None`, `[rehearsal]
    /// identity_file`.
    pub identity: Option<PathBuf>,
    /// What started it.
    pub trigger: Trigger,
    /// The read rate to keep under, MiB per second; `None`, `[rehearsal]
    /// max_mib_s` at low priority, else unbounded.
    pub max_mib_s: Option<u32>,
    /// At low priority (the default): one core and nice 19, so that the
    /// app it runs beside keeps its own; false, as fast as a restore.
    pub low_priority: bool,
}

impl Default for RehearsalOptions {
    fn default() -> RehearsalOptions {
        RehearsalOptions {
            pick: Pick::Newest,
            from: None,
            until: Until::End,
            identity: None,
            trigger: Trigger::Manual,
            max_mib_s: None,
            low_priority: true,
        }
    }
}

/// Puts this thread (and the threads it starts from now on, which inherit
/// all three) in the idle scheduling class, at nice 19, on one core (the
/// last this process may use): whatever of the app's own wakes up runs
/// first. Best effort: a system that refuses one runs the rehearsal with
/// the others.
pub(crate) fn lower_priority() {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };
    let _ = set_thread_priority_and_policy(
        thread_native_id(),
        thread_priority::ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    );
    // Linux's nice is per thread.
    let _ = rustix::process::setpriority_process(None, 19);
    if let Ok(allowed) = rustix::thread::sched_getaffinity(None)
        && let Some(last) = (0..rustix::thread::CpuSet::MAX_CPU)
            .rev()
            .find(|c| allowed.is_set(*c))
    {
        let mut one = rustix::thread::CpuSet::new();
        one.set(last);
        let _ = rustix::thread::sched_setaffinity(None, &one);
    }
}

/// A rehearsal's end: what the state keeps of it, and the details.
#[derive(Clone, Debug)]
pub struct Rehearsal {
    /// The record (status, error, times, point).
    pub record: RehearsalRecord,
    /// The check's verdict, when it held.
    pub verdict: Option<String>,
    /// The log backups integrated, in order.
    pub logs: Vec<String>,
    /// Log records integrated.
    pub records: u64,
    /// Files restored.
    pub files: u64,
    /// What could not be recorded (journal, history, state, alert).
    pub warnings: Vec<String>,
}

impl Rehearsal {
    /// The rehearsal as `sauve rehearse --json` and `POST /v1/rehearse`
    /// give it: the record's fields, then `statusText`, `verdict`,
    /// `logBackups`, `records`, `files` and `warnings`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.record).unwrap_or_default();
        v["statusText"] = self.record.status.text().into();
        v["verdict"] = self.verdict.clone().into();
        v["logBackups"] = self.logs.clone().into();
        v["records"] = self.records.into();
        v["files"] = self.files.into();
        v["warnings"] = self.warnings.clone().into();
        v
    }
}

/// A rehearsal to run: its options, the host's check (else the
/// settings'), and its Stop.
pub(crate) struct Job {
    pub(crate) options: RehearsalOptions,
    pub(crate) host: Option<Box<dyn RehearsalHost>>,
    pub(crate) stop: CancellationToken,
    /// Set when a backup that came due cancelled `stop`.
    pub(crate) preempted: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Told once the rehearsal is prepared (its source and set known):
    /// from then on its end is recorded.
    pub(crate) prepared: Option<tokio::sync::oneshot::Sender<()>>,
}

/// What [`prepare`] settles before anything is recorded.
struct Plan {
    source: SetSource,
    base: String,
    /// Where the sandbox is made.
    folder: PathBuf,
    until: Until,
    trigger: Trigger,
    rate: Option<u64>,
    /// Set when a backup that came due stopped it.
    preempted: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// What the steps found so far: the record is built from it whatever
/// step failed.
#[derive(Default)]
struct Found {
    /// The set, once chosen.
    number: Option<BackupNumber>,
    point: Option<jiff::Timestamp>,
    last_sequence: Option<u64>,
    restore_ms: u64,
    integrate_ms: u64,
    check_ms: u64,
    bytes: u64,
    data_bytes: u64,
    files: u64,
    records: u64,
    logs: Vec<String>,
    verdict: Option<String>,
}

/// `<app>.rehearsal` beside the app folder.
pub(crate) fn default_folder(app: &Path) -> PathBuf {
    let name = app
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".to_owned());
    app.with_file_name(format!("{name}.rehearsal"))
}

/// The prefix of each sandbox in the rehearsal folder, before its pid.
const SANDBOX: &str = ".sauve-rehearsal-";

/// Runs the rehearsal `job` on this thread (blocking): refused before
/// anything is recorded when its options cannot be met (a set number the
/// source does not hold, an identity file that does not read, a folder
/// inside the app); otherwise recorded, whatever its end.
pub(crate) fn run(rec: &mut Recorder<'_>, mut job: Job) -> Result<Rehearsal, EngineError> {
    let own = rec.own_settings_valid()?;
    let (plan, chosen) = prepare(rec, &own, &job)?;
    // Stopped before it began: nothing to record.
    steps::stopped(&job.stop)?;
    if let Some(prepared) = job.prepared.take() {
        let _ = prepared.send(());
    }
    let started = rec.clock().now();
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&plan.folder)
        .map_err(EngineError::io("create", &plan.folder))?;
    // What a rehearsal that died left behind (behaviour §22).
    sauve_durable::remove_dead_folders(&plan.folder, SANDBOX);
    let mut found = Found::default();
    let mut warnings = Vec::new();
    let result = match sauve_durable::create_working_folder(&plan.folder, SANDBOX) {
        Ok(root) => {
            let result = {
                // Removed whatever happens, a panic included.
                let _removed = Removed(&root);
                chosen.and_then(|chosen| {
                    let steps = steps::Steps {
                        plan: &plan,
                        own: &own,
                        root: &root,
                    };
                    steps.rehearse(rec, &mut job, chosen, &mut found)
                })
            };
            if root.exists() {
                warnings.push(format!("the sandbox {} was not removed", root.display()));
            }
            result
        }
        Err(source) => Err(EngineError::Io {
            action: "create a sandbox in",
            path: plan.folder.clone(),
            source,
        }),
    };
    let ended = rec.clock().now();
    let record = record::finish(rec, &plan, &found, (started, ended), result);
    warnings.append(&mut rec.warnings);
    Ok(Rehearsal {
        record,
        verdict: found.verdict,
        logs: found.logs,
        records: found.records,
        files: found.files,
        warnings,
    })
}

/// Removes the sandbox when dropped.
struct Removed<'a>(&'a Path);

impl Drop for Removed<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0);
    }
}

/// The set to restore and what the source holds, or why none can be
/// (recorded as the rehearsal's failure).
type Chosen = Result<(BackupNumber, Listing), EngineError>;

/// Settles the source, the set and the sandbox folder.
fn prepare(rec: &Recorder<'_>, own: &SauveToml, job: &Job) -> Result<(Plan, Chosen), EngineError> {
    let options = &job.options;
    let app = rec.layout().app.clone();
    let folder = match &own.rehearsal.folder {
        Some(f) => f.clone(),
        None => default_folder(&app),
    };
    if sauve_settings::is_inside_app(&app, &folder) {
        return Err(EngineError::RehearsalInsideApp { folder, app });
    }
    let identity = options
        .identity
        .as_ref()
        .or(own.rehearsal.identity_file.as_ref());
    let identities: Option<Identities> = match identity {
        Some(path) => Some(sauve_archive::read_identities(path)?),
        None => None,
    };
    let source = open_source(rec, own, options.from.as_deref(), identities)?;
    let base = rec.layout().base_name();
    let chosen = source
        .list(&base)
        .and_then(|listing| choose(&source, &base, listing, options, rec))
        .map_err(|e| match e {
            // An explicit number the source does not hold: the caller's
            // mistake, not the source's failure.
            EngineError::NoSuchSet { .. } => Err(e),
            e => Ok(e),
        });
    let chosen = match chosen {
        Ok(c) => Ok(c),
        Err(Err(refused)) => return Err(refused),
        Err(Ok(failed)) => Err(failed),
    };
    let plan = Plan {
        source,
        base,
        folder,
        until: options.until,
        trigger: options.trigger,
        // A low-priority rehearsal keeps to `[rehearsal] max_mib_s` too.
        rate: options
            .max_mib_s
            .or(own.rehearsal.max_mib_s.filter(|_| options.low_priority))
            .map(|m| u64::from(m) << 20),
        preempted: job.preempted.clone(),
    };
    Ok((plan, chosen))
}

/// The source `from` names, else `[rehearsal] from`, else the destination:
/// an `[[offsite]]` entry (by its URL as written, a folder relative to the
/// app) through its own store and keys; another `s3://` URL through
/// `[destination]`; another folder through a folder store, so that its
/// encrypted sets read with the identity too. The destination's own folder
/// is read directly.
fn open_source(
    rec: &Recorder<'_>,
    own: &SauveToml,
    from: Option<&str>,
    identities: Option<Identities>,
) -> Result<SetSource, EngineError> {
    let app = &rec.layout().app;
    let store = |url: String, store: std::sync::Arc<dyn sauve_store::Store>| SetSource::Store {
        url,
        store,
        identities: identities.clone(),
        io: rec.io().clone(),
    };
    let Some(text) = from.or(own.rehearsal.from.as_deref()) else {
        return match crate::plan::destination_to_read(app, &*rec.settings()?)? {
            sauve_settings::Destination::Folder(dir) => Ok(SetSource::Folder(dir)),
            sauve_settings::Destination::Store { url, .. } => {
                let opened = crate::stores::open_store(Some(app), &url)?;
                Ok(store(url, opened))
            }
        };
    };
    let trimmed = text.trim_end_matches('/');
    if let Some(entry) = own
        .offsite
        .iter()
        .find(|o| o.url.trim_end_matches('/') == trimmed)
    {
        let (opened, _) = crate::stores::open_offsite(app, entry, &own.destination)?;
        return Ok(store(entry.url.clone(), opened));
    }
    if sauve_settings::is_store_url(text) {
        let opened = crate::stores::open_store(Some(app), text)?;
        return Ok(store(text.to_owned(), opened));
    }
    let dir = std::path::absolute(text).map_err(EngineError::io("resolve", text))?;
    let location = sauve_store::Location::Folder(dir.clone());
    let opened = sauve_store::open(&location, &sauve_store::S3Options::default())?;
    Ok(store(dir.display().to_string(), opened))
}

/// The set to rehearse among those `listing` holds.
fn choose(
    source: &SetSource,
    base: &str,
    listing: Listing,
    options: &RehearsalOptions,
    rec: &Recorder<'_>,
) -> Result<(BackupNumber, Listing), EngineError> {
    let nothing = || EngineError::NothingToRehearse {
        source_name: source.describe(),
        base: base.to_owned(),
    };
    let number = match options.pick {
        Pick::Number(n) if listing.backups.contains(&n) => n,
        Pick::Number(number) => {
            let held: Vec<String> = listing.backups.iter().map(|n| n.text()).collect();
            return Err(EngineError::NoSuchSet {
                number,
                source_name: source.describe(),
                base: base.to_owned(),
                held: match held.is_empty() {
                    true => "none: it holds no set".to_owned(),
                    false => held.join(", "),
                },
            });
        }
        Pick::Random => {
            let i = fastrand::usize(..listing.backups.len().max(1));
            *listing.backups.get(i).ok_or_else(nothing)?
        }
        Pick::Newest if options.until == Until::End => {
            *listing.backups.last().ok_or_else(nothing)?
        }
        // The newest that ends before the point; its manifest alone is read.
        Pick::Newest => {
            let zone = rec.clock().zone();
            let fits = |n: BackupNumber| {
                source.manifest(base, n).is_ok_and(|m| {
                    let set = Path::new(&source.describe()).join(format!("{base}[{}]", n.text()));
                    crate::integrate::check_manifest(&m, &set, options.until, &[], &zone).is_ok()
                })
            };
            let newest = listing.backups.iter().rev().copied().find(|n| fits(*n));
            newest.ok_or_else(|| EngineError::NoBackupBefore {
                key: base.to_owned(),
                destination: PathBuf::from(source.describe()),
                point: options.until.describe(&zone),
            })?
        }
    };
    Ok((number, listing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_priority_rehearsal_runs_idle_class_at_nice_19_on_one_core_and_its_threads_too() {
        let before = rustix::process::getpriority_process(None).ok();
        let seen = std::thread::spawn(|| {
            lower_priority();
            let child = std::thread::spawn(|| {
                (
                    thread_priority::unix::thread_schedule_policy().ok(),
                    rustix::process::getpriority_process(None).ok(),
                    rustix::thread::sched_getaffinity(None)
                        .ok()
                        .map(|s| s.count()),
                )
            });
            child.join().unwrap()
        })
        .join()
        .unwrap();
        use thread_priority::unix::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
        assert_eq!(
            seen,
            (
                Some(ThreadSchedulePolicy::Normal(
                    NormalThreadSchedulePolicy::Idle
                )),
                Some(19),
                Some(1)
            )
        );
        // This thread is as it was (whatever the runner's own nice).
        assert_eq!(rustix::process::getpriority_process(None).ok(), before);
    }
}
