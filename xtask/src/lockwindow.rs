//! `cargo xtask bench lock-window`: how long the data lock is held for a
//! large data file, where its file system clones (a loop-mounted XFS
//! image, behaviour §21.3) and where it does not (target/'s own file system, where
//! the data-kind files are copied into the set under the lock).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::measure::{machine, make_sample_app, q, sh};
use crate::workspace::{cargo, repo_root};

/// Options of `bench lock-window`.
#[derive(clap::Args, Debug)]
pub(crate) struct Options {
    /// MiB of data file
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    data_mib: u64,
    /// Backups on each file system, of which the median window is reported
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = crate::workspace::at_least_one)]
    runs: usize,
}

/// The XFS image's mount, unmounted when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

pub(crate) fn lock_window(o: &Options) -> Result<()> {
    if Command::new("mkfs.xfs").arg("-V").output().is_err() {
        eprintln!("installing xfsprogs…");
        sh("(apt-get install -y -q xfsprogs || (apt-get update -q && apt-get install -y -q xfsprogs)) > /dev/null")
            .context("mkfs.xfs is needed (apt-get install xfsprogs)")?;
    }
    cargo(&["build", "--release", "--quiet", "-p", "sauve-cli"])?;
    let root = repo_root();
    let bench = Bench {
        sauve: root.join("target/release/sauve"),
        work: root.join("target/bench-lock"),
    };
    let xfs = bench.work.join("xfs");
    // A mount left by an interrupted run.
    let _ = Command::new("umount").arg(&xfs).status();
    let _ = std::fs::remove_dir_all(&bench.work);
    std::fs::create_dir_all(&xfs)?;

    eprintln!("making a {} MiB data file…", o.data_mib);
    make_sample_app(&bench.src(), o.data_mib, 0)?;

    let _mounted = mount_xfs(o, &bench.work.join("xfs.img"), &xfs)?;
    let mut rows = Vec::new();
    for (label, parent) in [("xfs", xfs.clone()), ("target", bench.work.join("plain"))] {
        rows.push(window_on(o, &bench, label, &parent)?);
    }
    write_table(o, &rows);
    Ok(())
}

/// The release `sauve`, and the folder the bench works in.
struct Bench {
    sauve: PathBuf,
    work: PathBuf,
}

impl Bench {
    /// The sample app's folder, copied to each file system.
    fn src(&self) -> PathBuf {
        self.work.join("src")
    }
}

/// An XFS image at `image`, large enough for two copies of the data file,
/// loop-mounted on `xfs` until the guard is dropped.
fn mount_xfs(o: &Options, image: &Path, xfs: &Path) -> Result<Mounted> {
    std::fs::File::create(image)?.set_len((o.data_mib * 2 + 512) << 20)?;
    run(Command::new("mkfs.xfs").arg("-q").arg(image), "mkfs.xfs")?;
    run(
        Command::new("mount")
            .args(["-o", "loop"])
            .arg(image)
            .arg(xfs),
        "mount -o loop (root and a loop device are needed)",
    )?;
    Ok(Mounted(xfs.to_path_buf()))
}

/// A row of the table: the data's file system, the median data lock
/// window, and how the journal says the data was taken.
type Row = (String, Duration, String);

/// The sample app copied into `parent` and backed up `--runs` times (the
/// sets written to `WORK/backups-LABEL`); its row.
fn window_on(o: &Options, bench: &Bench, label: &str, parent: &Path) -> Result<Row> {
    std::fs::create_dir_all(parent)?;
    let app = parent.join("SampleApp");
    sh(&format!(
        "cp -a {} {}",
        q(&bench.src().join("SampleApp")),
        q(parent)
    ))?;
    // The sets go to target/ in both cases: only the data's file
    // system differs.
    let dest = bench.work.join(format!("backups-{label}"));
    for (key, value) in [
        ("Advanced/CompressionRate", "Fast"),
        ("General/DestinationFolder", &format!("{}/", dest.display())),
    ] {
        run(
            Command::new(&bench.sauve)
                .args(["settings", "set", key, value, "--app"])
                .arg(&app),
            "sauve settings set",
        )?;
    }
    sh(&format!(
        "sync && cat {} > /dev/null",
        q(&app.join("Data/SampleApp.4DD"))
    ))?;
    let mut windows = Vec::new();
    let mut how = String::new();
    for i in 0..o.runs {
        eprintln!("{label}: backup {}…", i + 1);
        run(
            Command::new(&bench.sauve)
                .args(["backup", "--app"])
                .arg(&app),
            "sauve backup",
        )?;
        let last = sauve_journal::read_all(&sauve_journal::journal_dir(&app))?
            .pop()
            .context("no journal entry after a backup")?;
        if last.status != Some(0) {
            bail!("the backup on {label} ended with status {:?}", last.status);
        }
        windows.push(last.data_lock.unwrap_or_default());
        how = last.data_lock_how.unwrap_or_default();
        // The sets are not kept: the runs need no more room.
        sh(&format!("rm -f {}/*.4BK {}/*.4BL", q(&dest), q(&dest)))?;
    }
    windows.sort();
    let median = windows[windows.len() / 2];
    Ok((file_system_of(&app), median, how))
}

/// The type of the file system `p` is on, as `df -T` names it.
fn file_system_of(p: &Path) -> String {
    Command::new("sh")
        .arg("-c")
        .arg(format!("df -T {} | tail -n 1 | awk '{{print $2}}'", q(p)))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The table for BENCHMARKS.md, then the target against the XFS row.
fn write_table(o: &Options, rows: &[Row]) {
    println!(
        "## cargo xtask bench lock-window --data-mib {} --runs {}",
        o.data_mib, o.runs
    );
    println!();
    println!("{}", machine());
    println!(
        "data file: {} MiB (tests/fixtures/make-sample-app), Fast; the sets are written to target/ in both cases; median of {} backups",
        o.data_mib, o.runs
    );
    println!();
    println!("| data folder on | data lock window | how (the journal's Data lock line) |");
    println!("|---|---:|---|");
    for (fs, window, how) in rows {
        println!("| {fs} | {} ms | {how} |", window.as_millis());
    }
    println!();
    let cloned = rows.first().map(|r| r.1).unwrap_or_default();
    println!("| target | measured | verdict |");
    println!("|---|---:|---|");
    println!(
        "| data lock window ≤ 50 ms for {} MiB on XFS | {} ms | {} |",
        o.data_mib,
        cloned.as_millis(),
        if cloned <= Duration::from_millis(50) {
            "met"
        } else {
            "MISSED"
        }
    );
}
