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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sauve_archive::{EntryKind, Identities};
use sauve_locking::CancellationToken;
use sauve_logfile::Until;
use sauve_number::BackupNumber;
use sauve_settings::SauveToml;

pub use check::{RehearsalError, RehearsalHost, Sandbox};

use crate::api::Trigger;
use crate::error::EngineError;
use crate::recorder::Recorder;
use crate::state::RehearsalRecord;
use check::CommandCheck;
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

/// What a rehearsal is asked (`sauve rehearse`, [`crate::BackupHandle::rehearse`]).
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
}

/// What the steps found so far: the record is built from it whatever
/// step failed.
#[derive(Default)]
struct Found {
    number: BackupNumber,
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
    let (plan, chosen) = prepare(rec, &own, &job.options)?;
    let started = rec.clock().now();
    std::fs::create_dir_all(&plan.folder).map_err(EngineError::io("create", &plan.folder))?;
    // What a rehearsal that died left behind (behaviour §22).
    sauve_durable::remove_dead_folders(&plan.folder, SANDBOX);
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let root = plan.folder.join(format!(
        "{SANDBOX}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut found = Found::default();
    let result = chosen.and_then(|chosen| {
        let steps = Steps {
            plan: &plan,
            own: &own,
            root: &root,
        };
        steps.rehearse(rec, &mut job, chosen, &mut found)
    });
    let removed = std::fs::remove_dir_all(&root);
    let mut warnings = Vec::new();
    if let Err(e) = removed
        && e.kind() != std::io::ErrorKind::NotFound
    {
        warnings.push(format!(
            "the sandbox {} was not removed: {e}",
            root.display()
        ));
    }
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

/// The set to restore and what the source holds, or why none can be
/// (recorded as the rehearsal's failure).
type Chosen = Result<(BackupNumber, Listing), EngineError>;

/// Settles the source, the set and the sandbox folder.
fn prepare(
    rec: &Recorder<'_>,
    own: &SauveToml,
    options: &RehearsalOptions,
) -> Result<(Plan, Chosen), EngineError> {
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
    };
    Ok((plan, chosen))
}

/// The source `from` names, else `[rehearsal] from`, else the destination.
fn open_source(
    rec: &Recorder<'_>,
    own: &SauveToml,
    from: Option<&str>,
    identities: Option<Identities>,
) -> Result<SetSource, EngineError> {
    let app = &rec.layout().app;
    let url = match from.or(own.rehearsal.from.as_deref()) {
        Some(text) if sauve_settings::is_store_url(text) => text.to_owned(),
        Some(folder) => {
            let path = std::path::absolute(folder).map_err(EngineError::io("resolve", folder))?;
            return Ok(SetSource::Folder(path));
        }
        None => match crate::plan::destination_to_read(app, &*rec.settings()?)? {
            sauve_settings::Destination::Folder(dir) => return Ok(SetSource::Folder(dir)),
            sauve_settings::Destination::Store { url, .. } => url,
        },
    };
    let store = crate::stores::open_store(Some(app), &url)?;
    Ok(SetSource::Store {
        url,
        store,
        identities,
        io: rec.io().clone(),
    })
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

/// What the steps of one rehearsal share.
struct Steps<'a> {
    plan: &'a Plan,
    own: &'a SauveToml,
    /// The sandbox.
    root: &'a Path,
}

impl Steps<'_> {
    /// The steps, in order; `found` keeps what each measured.
    fn rehearse(
        &self,
        rec: &mut Recorder<'_>,
        job: &mut Job,
        (number, listing): (BackupNumber, Listing),
        found: &mut Found,
    ) -> Result<(), EngineError> {
        let (plan, own, root) = (self.plan, self.own, self.root);
        found.number = number;
        if !plan.source.readable(&listing) {
            return Err(EngineError::NeedsIdentity {
                source_name: plan.source.describe(),
            });
        }
        let set = format!("{}[{}]", plan.base, number.text());
        let step = |step: &'static str| {
            let (set, source_name) = (set.clone(), plan.source.describe());
            move |inner: EngineError| match inner {
                EngineError::Stopped => EngineError::Stopped,
                inner => EngineError::Rehearsal {
                    set,
                    source_name,
                    step,
                    inner: Box::new(inner),
                },
            }
        };
        std::fs::create_dir(root).map_err(EngineError::io("create", root))?;
        let mut paced = Paced::new(job.stop.clone(), plan.rate);
        // The set, every file checked against its manifest.
        let app = root.join("app");
        let t = rec.clock().now();
        let report = plan
            .source
            .restore(&format!("{set}.4BK"), &app, &mut paced)
            .map_err(step("restoring the set"))?;
        found.restore_ms = ms(t, rec.clock().now());
        found.bytes = report.bytes;
        found.files = report.files as u64;
        found.point = Some(report.manifest.header.started_at);
        let path_of = |kind: EntryKind| {
            report
                .manifest
                .entries
                .iter()
                .find(|e| e.kind == kind)
                .map(|e| (app.join(&e.path), e.size))
        };
        let data = path_of(EntryKind::Data);
        found.data_bytes = data.as_ref().map_or(0, |d| d.1);
        let sandbox = Sandbox {
            root: root.to_path_buf(),
            app: app.clone(),
            data: data.map(|d| d.0),
            log: path_of(EntryKind::Log).map(|l| l.0),
            stop: job.stop.clone(),
        };
        stopped(&job.stop)?;
        if let Some(host) = job.host.as_mut() {
            host.open(&sandbox)
                .map_err(|e| host_failed("opening the restored data", e))
                .map_err(step("opening the restored data"))?;
        }
        // The log backups from the same source, never the live log.
        let t = rec.clock().now();
        let integrated = integrate(
            rec, plan, job, &report, &sandbox, &listing, &mut paced, found,
        );
        found.integrate_ms = ms(t, rec.clock().now());
        integrated.map_err(step("integrating the log backups"))?;
        stopped(&job.stop)?;
        // The host's check.
        let t = rec.clock().now();
        let verdict = match job.host.as_mut() {
            Some(host) => host
                .check(&sandbox)
                .map_err(|e| host_failed("the host's check", e)),
            None if own.rehearsal.check.is_empty() => Ok("no check configured".to_owned()),
            None => CommandCheck {
                argv: own.rehearsal.check.clone(),
                timeout: own.rehearsal.check_timeout,
                expect: own.rehearsal.expect.clone(),
                stop: job.stop.clone(),
            }
            .run(&sandbox),
        };
        found.check_ms = ms(t, rec.clock().now());
        found.verdict = Some(verdict.map_err(step("checking the restored data"))?);
        Ok(())
    }
}

/// Integrates each log backup numbered from the set's on, in order.
#[allow(clippy::too_many_arguments)]
fn integrate(
    rec: &Recorder<'_>,
    plan: &Plan,
    job: &mut Job,
    report: &sauve_archive::RestoreReport,
    sandbox: &Sandbox,
    listing: &Listing,
    paced: &mut Paced,
    found: &mut Found,
) -> Result<(), EngineError> {
    let identity = sandbox
        .log
        .as_deref()
        .and_then(log_identity)
        .unwrap_or([0; 16]);
    let mut last = report.manifest.header.last_log_sequence.unwrap_or(0);
    let set_aside = rec.set_asides().unwrap_or_default();
    let number = report.manifest.header.backup_number;
    for (n, name) in listing.logs.range(number..) {
        stopped(&job.stop)?;
        let staging = sandbox.root.join(format!("log-{}", n.text()));
        let restored = plan.source.restore(name, &staging, paced)?;
        found.bytes = found.bytes.saturating_add(restored.bytes);
        let Some(log) = restored
            .manifest
            .entries
            .iter()
            .find(|e| e.kind == EntryKind::Log)
            .map(|e| staging.join(&e.path))
        else {
            continue;
        };
        let mut apply = |r: &sauve_logfile::Record| match job.host.as_mut() {
            Some(host) => host.apply(r).map_err(|e| e.to_string()),
            None => Ok(()),
        };
        let done =
            sauve_logfile::integrate(&log, identity, last, plan.until, &set_aside, &mut apply)
                .map_err(|e| EngineError::Rehearsal {
                    set: name.clone(),
                    source_name: plan.source.describe(),
                    step: "reading its records",
                    inner: Box::new(e.into()),
                })?;
        let _ = std::fs::remove_dir_all(&staging);
        last = done.last_applied;
        found.records = found.records.saturating_add(done.applied);
        found.last_sequence = Some(last);
        if let Some(t) = done
            .last_time
            .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
        {
            found.point = Some(found.point.map_or(t, |p| p.max(t)));
        }
        found.logs.push(name.clone());
        if done.stopped {
            break;
        }
    }
    Ok(())
}

/// The data identity in a log file's header.
fn log_identity(path: &Path) -> Option<[u8; 16]> {
    use std::io::Read;
    let mut head = [0u8; sauve_logfile::HEADER_LEN];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    sauve_logfile::Header::decode(&head).map(|h| h.identity)
}

fn host_failed(what: &str, e: RehearsalError) -> EngineError {
    EngineError::RehearsalCheck {
        check: what.to_owned(),
        why: e.to_string(),
    }
}

fn stopped(stop: &CancellationToken) -> Result<(), EngineError> {
    match stop.is_cancelled() {
        true => Err(EngineError::Stopped),
        false => Ok(()),
    }
}

fn ms(from: jiff::Timestamp, to: jiff::Timestamp) -> u64 {
    u64::try_from(to.duration_since(from).as_millis().max(0)).unwrap_or(u64::MAX)
}

/// A restore's progress under a Stop and a read rate: past its rate, it
/// waits (in short steps, so that a Stop is heard).
struct Paced {
    stop: CancellationToken,
    rate: Option<u64>,
    done: u64,
    began: Instant,
}

impl Paced {
    fn new(stop: CancellationToken, rate: Option<u64>) -> Paced {
        Paced {
            stop,
            rate,
            done: 0,
            began: Instant::now(),
        }
    }
}

impl sauve_archive::Progress for Paced {
    fn advance(&mut self, bytes: u64) {
        self.done = self.done.saturating_add(bytes);
        let Some(rate) = self.rate.filter(|r| *r > 0) else {
            return;
        };
        let due = Duration::from_secs_f64(self.done as f64 / rate as f64);
        while !self.stop.is_cancelled() {
            let Some(ahead) = due.checked_sub(self.began.elapsed()) else {
                break;
            };
            std::thread::sleep(ahead.min(Duration::from_millis(100)));
        }
    }

    fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_priority_rehearsal_runs_idle_class_at_nice_19_on_one_core_and_its_threads_too() {
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
        // This thread, and so the process, is as it was.
        assert_ne!(rustix::process::getpriority_process(None).ok(), Some(19));
    }
}
