//! What the benchmarks share: a command timed under GNU time (elapsed
//! seconds and peak memory, the median of its runs), shell steps, sizes on
//! disk, the sample app, and the line that says which machine ran them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::workspace::repo_root;

/// One measured command: elapsed seconds and peak resident memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    pub(crate) seconds: f64,
    pub(crate) peak_kib: u64,
}

/// Runs `bench` with the release `sauve` (built now) in a fresh folder
/// `target/bench-NAME-PID`, removed afterwards whatever happened; checks
/// the tools first.
pub(crate) fn in_work_dir(
    name: &str,
    bench: impl FnOnce(&Path, &Path) -> Result<()>,
) -> Result<()> {
    require_tools()?;
    let sauve = crate::workspace::release_sauve()?;
    let work = repo_root().join(format!("target/bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = bench(&sauve, &work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// Runs `sh -c script` under GNU time; returns the median of `runs` runs.
/// `before` runs (unmeasured) before each run, to clear the previous output.
pub(crate) fn measure(script: &str, before: &str, runs: usize) -> Result<Sample> {
    measure_env(script, before, runs, &[])
}

/// [`measure`] with variables in the command's environment (secrets never
/// go on a command line, where `ps` and error messages would show them).
pub(crate) fn measure_env(
    script: &str,
    before: &str,
    runs: usize,
    env: &[(&str, &str)],
) -> Result<Sample> {
    let mut samples = Vec::new();
    for _ in 0..runs {
        sh(before)?;
        let out = tempfile_path("time")?;
        let status = Command::new("/usr/bin/time")
            .args(["-f", "%e %M", "-o"])
            .arg(&out)
            .args(["sh", "-c", script])
            .envs(env.iter().copied())
            .status()
            .context("cannot run /usr/bin/time (apt-get install time)")?;
        if !status.success() {
            bail!("benchmark command failed: {script}");
        }
        let text = std::fs::read_to_string(&out)?;
        let last = text.lines().last().unwrap_or_default();
        let mut parts = last.split_whitespace();
        let seconds: f64 = parts.next().unwrap_or("0").parse()?;
        let peak_kib: u64 = parts.next().unwrap_or("0").parse()?;
        samples.push(Sample { seconds, peak_kib });
    }
    samples.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    Ok(samples[samples.len() / 2])
}

fn tempfile_path(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join("sauve-xtask");
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join(format!("{name}-{}", std::process::id())))
}

pub(crate) fn sh(script: &str) -> Result<()> {
    if script.is_empty() {
        return Ok(());
    }
    let status = Command::new("sh").args(["-c", script]).status()?;
    if !status.success() {
        bail!("command failed: {script}");
    }
    Ok(())
}

pub(crate) fn size_of(path: &Path) -> Result<u64> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for e in std::fs::read_dir(path)? {
        total += size_of(&e?.path())?;
    }
    Ok(total)
}

pub(crate) fn q(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// Fails naming the first of the sample app's tools that is missing.
pub(crate) fn require_tools() -> Result<()> {
    for tool in ["tar", "zstd", "python3", "/usr/bin/time"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|out| out.status.success());
        if !found {
            bail!("{tool} is needed (apt-get install tar zstd python3 time)");
        }
    }
    Ok(())
}

/// `sauve settings set KEY VALUE --app APP`; its error says what sauve said.
pub(crate) fn settings_set(sauve: &Path, app: &Path, key: &str, value: &str) -> Result<()> {
    let out = Command::new(sauve)
        .args(["settings", "set", key, value, "--app"])
        .arg(app)
        .output()?;
    if !out.status.success() {
        bail!(
            "sauve settings set {key} {value}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `tests/fixtures/make-sample-app OUT --data-mb N --attach-mb N`: the
/// same bytes for the same sizes.
pub(crate) fn make_sample_app(out: &Path, data_mb: u64, attach_mb: u64) -> Result<()> {
    let status = Command::new("python3")
        .arg(repo_root().join("tests/fixtures/make-sample-app"))
        .arg(out)
        .args([
            "--data-mb",
            &data_mb.to_string(),
            "--attach-mb",
            &attach_mb.to_string(),
        ])
        .status()
        .context("cannot run python3")?;
    if !status.success() {
        bail!("make-sample-app failed");
    }
    Ok(())
}

/// The machine a table was measured on: CPU, cores, memory, and the file
/// system target/ is on.
pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    let fs = Command::new("sh")
        .args([
            "-c",
            "df -T target 2>/dev/null | tail -n 1 | awk '{print $2}'",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "machine: {cpu}, {cores} cores, {:.0} GiB memory, target/ on {fs}",
        mem as f64 / (1u64 << 20) as f64
    )
}
