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
    let sauve = root.join("target/release/sauve");
    let work = root.join("target/bench-lock");
    let xfs = work.join("xfs");
    // A mount left by an interrupted run.
    let _ = Command::new("umount").arg(&xfs).status();
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&xfs)?;

    let src = work.join("src");
    eprintln!("making a {} MiB data file…", o.data_mib);
    make_sample_app(&src, o.data_mib, 0)?;

    let image = work.join("xfs.img");
    std::fs::File::create(&image)?.set_len((o.data_mib * 2 + 512) << 20)?;
    run(Command::new("mkfs.xfs").arg("-q").arg(&image), "mkfs.xfs")?;
    run(
        Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&xfs),
        "mount -o loop (root and a loop device are needed)",
    )?;
    let _mounted = Mounted(xfs.clone());

    let fs_of = |p: &Path| -> String {
        Command::new("sh")
            .arg("-c")
            .arg(format!("df -T {} | tail -n 1 | awk '{{print $2}}'", q(p)))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let mut rows = Vec::new();
    for (label, parent) in [("xfs", xfs.clone()), ("target", work.join("plain"))] {
        std::fs::create_dir_all(&parent)?;
        let app = parent.join("SampleApp");
        sh(&format!(
            "cp -a {} {}",
            q(&src.join("SampleApp")),
            q(&parent)
        ))?;
        // The sets go to target/ in both cases: only the data's file
        // system differs.
        let dest = work.join(format!("backups-{label}"));
        for (key, value) in [
            ("Advanced/CompressionRate", "Fast"),
            ("General/DestinationFolder", &format!("{}/", dest.display())),
        ] {
            run(
                Command::new(&sauve)
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
                Command::new(&sauve).args(["backup", "--app"]).arg(&app),
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
        rows.push((fs_of(&app), median, how));
    }

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
    for (fs, window, how) in &rows {
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
    Ok(())
}
