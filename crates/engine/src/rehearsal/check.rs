//! The host's check of a rehearsal (behaviour §22): `[rehearsal] check`, a
//! program run in the sandbox with the restored paths as its arguments'
//! variables, a clean environment, a timeout and a bounded capture of what
//! it prints; or, for an embedding host, a [`RehearsalHost`] of its own.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use sauve_locking::CancellationToken;

use crate::error::EngineError;

/// What a host's check or apply function reports when it fails.
pub type RehearsalError = Box<dyn std::error::Error + Send + Sync>;

/// The restored paths of a rehearsal, and its Stop.
#[derive(Clone, Debug)]
pub struct Sandbox {
    /// The rehearsal's own folder, removed at its end.
    pub root: PathBuf,
    /// Where the set was restored: `Data/`, `Project/`, `Attachments/`…
    pub app: PathBuf,
    /// The restored data file, when the set holds one.
    pub data: Option<PathBuf>,
    /// The restored log file (its header), when the set holds one.
    pub log: Option<PathBuf>,
    /// Stop, or a backup that came due: a long check should end early.
    pub(crate) stop: CancellationToken,
}

impl Sandbox {
    /// Whether the rehearsal was stopped (Stop, or a backup that came due).
    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }
}

/// What an embedding host does in a rehearsal (`Rehearsals::rehearse_with`):
/// opens the restored data, applies the log backups' records to it, then
/// checks it. Each runs on the rehearsal's own thread.
pub trait RehearsalHost: Send {
    /// Opens the restored data before its logs are integrated.
    fn open(&mut self, sandbox: &Sandbox) -> Result<(), RehearsalError> {
        let _ = sandbox;
        Ok(())
    }

    /// Applies one record of the log backups to the restored data. By
    /// default nothing is applied: the records are only read and checked
    /// (CRC, sequence, identity).
    fn apply(&mut self, record: &sauve_logfile::Record) -> Result<(), RehearsalError> {
        let _ = record;
        Ok(())
    }

    /// Checks the restored (and integrated) data; its verdict in a few
    /// words (`ok`, `1523 notes`) when it holds.
    fn check(&mut self, sandbox: &Sandbox) -> Result<String, RehearsalError>;
}

/// The most a check's output keeps, per stream.
const CAPTURE: usize = 64 * 1024;
/// The most of it a message or a journal line shows.
const SHOWN: usize = 400;
/// How long the output is waited for once the check has ended.
const DRAIN: Duration = Duration::from_secs(2);

/// `[rehearsal] check` as a host.
pub(crate) struct CommandCheck {
    pub(crate) argv: Vec<String>,
    pub(crate) timeout: Duration,
    pub(crate) expect: Option<String>,
    pub(crate) stop: CancellationToken,
}

impl CommandCheck {
    /// The arguments with `{data}`, `{app}`, `{sandbox}` and `{log}`
    /// replaced; a variable the set has no path for is refused.
    fn arguments(&self, sandbox: &Sandbox) -> Result<Vec<String>, EngineError> {
        let text = |p: &Option<PathBuf>, name: &str| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .ok_or_else(|| EngineError::RehearsalCheck {
                    check: self.argv.join(" "),
                    why: format!("{{{name}}} has no path: the set holds no such file"),
                })
        };
        self.argv
            .iter()
            .map(|a| {
                let mut out = a
                    .replace("{sandbox}", &sandbox.root.display().to_string())
                    .replace("{app}", &sandbox.app.display().to_string());
                if out.contains("{data}") {
                    out = out.replace("{data}", &text(&sandbox.data, "data")?);
                }
                if out.contains("{log}") {
                    out = out.replace("{log}", &text(&sandbox.log, "log")?);
                }
                Ok(out)
            })
            .collect()
    }

    /// Runs the check; its verdict (the first line it printed) when it
    /// exits 0 (and prints `expect`, when given), else why not (1420).
    pub(crate) fn run(&self, sandbox: &Sandbox) -> Result<String, EngineError> {
        let args = self.arguments(sandbox)?;
        let shown = self.argv.join(" ");
        let failed = |why: String| EngineError::RehearsalCheck {
            check: shown.clone(),
            why,
        };
        let (program, rest) = args
            .split_first()
            .ok_or_else(|| failed("names no program".to_owned()))?;
        let mut child = Command::new(program)
            .args(rest)
            .current_dir(&sandbox.root)
            .env_clear()
            .envs(
                sauve_alerts::PASSED_TO_COMMANDS
                    .iter()
                    .filter_map(|k| Some((k, std::env::var_os(k)?))),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own: a timeout or a stop ends its children too.
            .process_group(0)
            .spawn()
            .map_err(|e| failed(format!("cannot run {program}: {e}")))?;
        let out = capture(child.stdout.take());
        let err = capture(child.stderr.take());
        let began = Instant::now();
        let ended = loop {
            match exited(child.id()) {
                Ok(true) => break Ok(()),
                Ok(false) => {}
                Err(e) => break Err(format!("cannot wait for it: {e}")),
            }
            if self.stop.is_cancelled() {
                break Err(String::new());
            }
            if began.elapsed() >= self.timeout {
                break Err(format!(
                    "it ran longer than rehearsal.check_timeout ({} s) and was killed",
                    self.timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Whatever the check left running in its group ends with it (a
        // child holding its output would otherwise hold the rehearsal),
        // killed while the leader is not yet reaped, so that its group id
        // cannot be another's.
        kill_group(child.id());
        let status = child.wait();
        let (out, err) = joined((out, err));
        let status = match (ended, status) {
            (Ok(()), Ok(status)) => status,
            (Ok(()), Err(e)) => return Err(failed(format!("cannot wait for it: {e}"))),
            (Err(why), _) if why.is_empty() => return Err(EngineError::Stopped),
            (Err(why), _) => return Err(failed(why)),
        };
        if !status.success() {
            let how = match status.code() {
                Some(code) => format!("exited with {code}"),
                None => "was killed by a signal".to_owned(),
            };
            let said = shown_text(if err.trim().is_empty() { &out } else { &err });
            return Err(failed(if said.is_empty() {
                how
            } else {
                format!("{how}: {said}")
            }));
        }
        if let Some(expect) = &self.expect
            && out.trim() != expect.trim()
        {
            return Err(failed(format!(
                "printed {:?}, not {expect:?} (rehearsal.expect)",
                shown_text(&out)
            )));
        }
        Ok(shown_text(out.lines().next().unwrap_or("")))
    }
}

/// What a stream's reader keeps, and the sign that the stream ended.
type Captured = (Arc<Mutex<Vec<u8>>>, mpsc::Receiver<()>);

/// Reads a child's stream on a thread of its own, keeping its first
/// [`CAPTURE`] bytes as they come and draining the rest.
fn capture<R: Read + Send + 'static>(stream: Option<R>) -> Option<Captured> {
    let mut stream = stream?;
    let kept = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::sync_channel(1);
    let filling = Arc::clone(&kept);
    std::thread::Builder::new()
        .name("sauve-check-output".to_owned())
        .spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut kept) = filling.lock() {
                    let room = CAPTURE.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
            let _ = tx.send(());
        })
        .ok()?;
    Some((kept, rx))
}

/// What the streams' readers kept, once each stream ended or [`DRAIN`]
/// passed for both (a process outside the check's group may hold one open:
/// it is then left to itself, with what was read so far taken).
fn joined((out, err): (Option<Captured>, Option<Captured>)) -> (String, String) {
    let deadline = Instant::now() + DRAIN;
    let take = |captured: Option<Captured>| {
        let Some((kept, ended)) = captured else {
            return String::new();
        };
        let _ = ended.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let bytes = kept.lock().map(|k| k.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (take(out), take(err))
}

/// Whether the child `pid` has exited, without reaping it.
fn exited(pid: u32) -> std::io::Result<bool> {
    use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| std::io::Error::other(format!("no such pid {pid}")))?;
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    Ok(waitid(WaitId::Pid(pid), options)?.is_some())
}

/// A check's output for a message: one line, at most [`SHOWN`] characters.
fn shown_text(text: &str) -> String {
    let one: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(SHOWN)
        .collect();
    one
}

/// Ends the check's process group.
fn kill_group(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(root: &std::path::Path) -> Sandbox {
        Sandbox {
            root: root.to_path_buf(),
            app: root.join("app"),
            data: Some(root.join("app/Data/App.4DD")),
            log: None,
            stop: CancellationToken::new(),
        }
    }

    fn check(argv: &[&str], timeout: Duration, expect: Option<&str>) -> CommandCheck {
        CommandCheck {
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
            timeout,
            expect: expect.map(str::to_owned),
            stop: CancellationToken::new(),
        }
    }

    #[test]
    fn a_check_gets_the_restored_paths_and_a_clean_environment() {
        let dir = tempfile::tempdir().unwrap();
        let c = check(
            &[
                "sh",
                "-c",
                "echo \"$1 ${AWS_SECRET_ACCESS_KEY:-clean}\"",
                "sh",
                "{data}",
            ],
            Duration::from_secs(30),
            None,
        );
        let verdict = c.run(&sandbox(dir.path())).unwrap();
        assert_eq!(
            verdict,
            format!("{}/app/Data/App.4DD clean", dir.path().display())
        );
    }

    #[test]
    fn a_failing_check_is_1420_with_what_it_said() {
        let dir = tempfile::tempdir().unwrap();
        let c = check(
            &["sh", "-c", "echo 'row 3 missing from index' >&2; exit 3"],
            Duration::from_secs(30),
            None,
        );
        let e = c.run(&sandbox(dir.path())).unwrap_err();
        assert_eq!(e.status().code(), 1420);
        assert!(
            e.to_string()
                .contains("exited with 3: row 3 missing from index"),
            "{e}"
        );
        let c = check(
            &["echo", "*** in database main ***"],
            Duration::from_secs(30),
            Some("ok"),
        );
        let e = c.run(&sandbox(dir.path())).unwrap_err();
        assert!(e.to_string().contains("not \"ok\""), "{e}");
        let c = check(&["echo", "ok"], Duration::from_secs(30), Some("ok"));
        assert_eq!(c.run(&sandbox(dir.path())).unwrap(), "ok");
    }

    #[test]
    fn a_check_past_its_timeout_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("child.pid");
        let script = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
        let c = check(&["sh", "-c", &script], Duration::from_millis(500), None);
        let e = c.run(&sandbox(dir.path())).unwrap_err();
        assert!(e.to_string().contains("check_timeout"), "{e}");
        // The check's child was in the group killed: it ends too (waited
        // for as a condition, never a fixed time).
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        let dead = || {
            std::fs::read_to_string(&stat).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with(['Z', 'X']))
            })
        };
        let began = Instant::now();
        while !dead() && began.elapsed() < Duration::from_secs(20) {
            std::thread::yield_now();
        }
        assert!(dead(), "a child of the check outlived it");
    }

    #[test]
    fn a_check_whose_escaped_child_holds_its_output_does_not_hold_the_rehearsal() {
        let dir = tempfile::tempdir().unwrap();
        // `setsid` puts the child out of the check's group: it outlives the
        // kill and keeps stdout open for a minute.
        let c = check(
            &["sh", "-c", "setsid sleep 60 & echo ok"],
            Duration::from_secs(30),
            None,
        );
        let began = Instant::now();
        let verdict = c.run(&sandbox(dir.path())).unwrap();
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "{:?}",
            began.elapsed()
        );
        assert_eq!(verdict, "ok");
    }

    #[test]
    fn a_variable_the_set_has_no_path_for_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let c = check(&["cat", "{log}"], Duration::from_secs(30), None);
        let e = c.run(&sandbox(dir.path())).unwrap_err();
        assert!(e.to_string().contains("{log} has no path"), "{e}");
    }

    #[test]
    fn a_missing_program_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let c = check(&["/nonexistent/sqlite3"], Duration::from_secs(30), None);
        let e = c.run(&sandbox(dir.path())).unwrap_err();
        assert!(
            e.to_string().contains("cannot run /nonexistent/sqlite3"),
            "{e}"
        );
    }
}
