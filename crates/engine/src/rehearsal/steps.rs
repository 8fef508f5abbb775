//! The steps of one rehearsal, in order (behaviour §22.1 steps 5 to 7):
//! the set restored into the sandbox, the host's data opened, the log
//! backups integrated, the check. `Found` keeps what each measured, for
//! the record, whatever step failed. A Stop (or a backup that came due)
//! is looked at after every step and every call into the host: what the
//! host then says does not turn it into a failure.

use std::path::Path;
use std::time::{Duration, Instant};

use sauve_archive::EntryKind;
use sauve_locking::CancellationToken;
use sauve_number::BackupNumber;
use sauve_settings::SauveToml;

use super::check::CommandCheck;
use super::source::Listing;
use super::{Found, Job, Plan, RehearsalError, Sandbox};
use crate::error::EngineError;
use crate::recorder::Recorder;

/// What the steps of one rehearsal share.
pub(super) struct Steps<'a> {
    pub(super) plan: &'a Plan,
    pub(super) own: &'a SauveToml,
    /// The sandbox, made private.
    pub(super) root: &'a Path,
}

impl Steps<'_> {
    /// The steps, in order; `found` keeps what each measured.
    pub(super) fn rehearse(
        &self,
        rec: &mut Recorder<'_>,
        job: &mut Job,
        (number, listing): (BackupNumber, Listing),
        found: &mut Found,
    ) -> Result<(), EngineError> {
        let plan = self.plan;
        found.number = Some(number);
        if !plan.source.readable(&listing) {
            return Err(EngineError::NeedsIdentity {
                source_name: plan.source.describe(),
            });
        }
        let set = format!("{}[{}]", plan.base, number.text());
        let step = |step: &'static str| {
            let (set, source_name) = (set.clone(), plan.source.describe());
            move |inner: EngineError| match inner {
                // Named already: a log backup's own failure.
                EngineError::Stopped | EngineError::Rehearsal { .. } => inner,
                inner => EngineError::Rehearsal {
                    set,
                    source_name,
                    step,
                    inner: Box::new(inner),
                },
            }
        };
        let mut paced = Paced::new(job.stop.clone(), plan.rate);
        let (report, sandbox) = self.restore(rec, job, &set, &mut paced, found)?;
        let sandbox = match (report, sandbox) {
            (Ok(report), sandbox) => {
                // A point before the set's end cannot be reached from it.
                let zone = rec.clock().zone();
                let set_aside = rec.set_asides().unwrap_or_default();
                crate::integrate::check_until(&report, plan.until, &set_aside, &zone)
                    .map_err(step("restoring the set"))?;
                self.open(job, &sandbox)
                    .map_err(step("opening the restored data"))?;
                // The log backups from the same source, never the live log.
                let t = rec.clock().now();
                let integrated =
                    self.integrate(rec, job, (&report, &sandbox), &listing, &mut paced, found);
                found.integrate_ms = ms(t, rec.clock().now());
                integrated.map_err(step("integrating the log backups"))?;
                sandbox
            }
            (Err(e), _) => return Err(step("restoring the set")(e)),
        };
        stopped(&job.stop)?;
        let t = rec.clock().now();
        let verdict = self.check(job, &sandbox);
        found.check_ms = ms(t, rec.clock().now());
        found.verdict = Some(verdict.map_err(step("checking the restored data"))?);
        Ok(())
    }

    /// The set restored into `sandbox/app`, every file checked against
    /// its manifest; the restored paths.
    #[allow(clippy::type_complexity)]
    fn restore(
        &self,
        rec: &Recorder<'_>,
        job: &Job,
        set: &str,
        paced: &mut Paced,
        found: &mut Found,
    ) -> Result<(Result<sauve_archive::RestoreReport, EngineError>, Sandbox), EngineError> {
        let app = self.root.join("app");
        let mut sandbox = Sandbox {
            root: self.root.to_path_buf(),
            app: app.clone(),
            data: None,
            log: None,
            stop: job.stop.clone(),
        };
        let t = rec.clock().now();
        let restored = self.plan.source.restore(&format!("{set}.4BK"), &app, paced);
        found.restore_ms = ms(t, rec.clock().now());
        stopped(&job.stop)?;
        let report = match restored {
            Ok(r) => r,
            Err(e) => return Ok((Err(e), sandbox)),
        };
        found.bytes = report.bytes;
        found.files = report.files as u64;
        found.point = Some(report.manifest.header.started_at);
        let entry = |kind: EntryKind| {
            report
                .manifest
                .entries
                .iter()
                .find(|e| e.kind == kind)
                .map(|e| (app.join(&e.path), e.size))
        };
        if let Some((path, size)) = entry(EntryKind::Data) {
            (sandbox.data, found.data_bytes) = (Some(path), size);
        }
        sandbox.log = entry(EntryKind::Log).map(|l| l.0);
        Ok((Ok(report), sandbox))
    }

    /// The host opens the restored data.
    fn open(&self, job: &mut Job, sandbox: &Sandbox) -> Result<(), EngineError> {
        let Some(host) = job.host.as_mut() else {
            return Ok(());
        };
        let opened = host_call("opening the restored data", || host.open(sandbox));
        stopped(&job.stop)?;
        opened
    }

    /// The host's check, or `[rehearsal] check`; its verdict.
    fn check(&self, job: &mut Job, sandbox: &Sandbox) -> Result<String, EngineError> {
        let own = &self.own.rehearsal;
        let verdict = match job.host.as_mut() {
            Some(host) => host_call("the host's check", || host.check(sandbox)),
            None if own.check.is_empty() => Ok("no check configured".to_owned()),
            None => CommandCheck {
                argv: own.check.clone(),
                timeout: own.check_timeout,
                expect: own.expect.clone(),
                stop: job.stop.clone(),
            }
            .run(sandbox),
        };
        stopped(&job.stop)?;
        verdict
    }

    /// Integrates each log backup numbered from the set's on, in order.
    fn integrate(
        &self,
        rec: &Recorder<'_>,
        job: &mut Job,
        (report, sandbox): (&sauve_archive::RestoreReport, &Sandbox),
        listing: &Listing,
        paced: &mut Paced,
        found: &mut Found,
    ) -> Result<(), EngineError> {
        let plan = self.plan;
        let identity = sandbox
            .log
            .as_deref()
            .and_then(log_identity)
            .unwrap_or([0; 16]);
        let mut last = report.manifest.header.last_log_sequence.unwrap_or(0);
        let set_aside = rec.set_asides().unwrap_or_default();
        let number = report.manifest.header.backup_number;
        let stop = job.stop.clone();
        for (n, name) in listing.logs.range(number..) {
            stopped(&stop)?;
            let named = |step: &'static str| {
                let (set, source_name) = (name.clone(), plan.source.describe());
                move |inner: EngineError| match inner {
                    EngineError::Stopped => inner,
                    inner => EngineError::Rehearsal {
                        set,
                        source_name,
                        step,
                        inner: Box::new(inner),
                    },
                }
            };
            let staging = sandbox.root.join(format!("log-{}", n.text()));
            let restored = plan.source.restore(name, &staging, paced);
            stopped(&stop)?;
            let restored = restored.map_err(named("restoring it"))?;
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
            // A Stop ends the integration at the next record.
            let mut apply = |r: &sauve_logfile::Record| {
                if stop.is_cancelled() {
                    return Err("stopped".to_owned());
                }
                match job.host.as_mut() {
                    Some(host) => {
                        host_call("applying a record", || host.apply(r)).map_err(|e| e.to_string())
                    }
                    None => Ok(()),
                }
            };
            let done =
                sauve_logfile::integrate(&log, identity, last, plan.until, &set_aside, &mut apply);
            stopped(&stop)?;
            let done = done
                .map_err(EngineError::from)
                .map_err(named("reading its records"))?;
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
}

/// Calls into the host: its error, or a panic in it, is 1420 naming `what`.
fn host_call<T>(
    what: &str,
    call: impl FnOnce() -> Result<T, RehearsalError>,
) -> Result<T, EngineError> {
    let failed = |why: String| EngineError::RehearsalCheck {
        check: what.to_owned(),
        why,
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed("the host's function panicked".to_owned())),
    }
}

/// The data identity in a log file's header.
fn log_identity(path: &Path) -> Option<[u8; 16]> {
    use std::io::Read;
    let mut head = [0u8; sauve_logfile::HEADER_LEN];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    sauve_logfile::Header::decode(&head).map(|h| h.identity)
}

pub(super) fn stopped(stop: &CancellationToken) -> Result<(), EngineError> {
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
pub(super) struct Paced {
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
