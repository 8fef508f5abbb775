//! `cargo xtask bench blocks`: incremental sets at any size (behaviour
//! §21.1), with the block size sauve chooses for each file (a new app's
//! `sauve.toml`: `[incremental] full_every = 7`, no `block_kib`).
//!
//! 1. A sparse data file of `--big-gib` GiB (64 by default): a full Fast
//!    backup, then 1% of its 4 KiB pages overwritten with random bytes at
//!    random places, then the incremental backup. Reported: each backup's
//!    time and peak memory, the manifest's length against the data, the
//!    bytes of the blocks the daily set stores against the data.
//! 2. A data file of `--tar-gib` GiB (16 by default) of the sample app's
//!    database pages (its 1 GiB data file end to end, which no compressor's
//!    window spans): a new app's first, full, Fast backup against
//!    `tar -cf - | zstd -1 -T0` of the same folder, in the same run; and the bytes
//!    read to learn that set's manifest (`sauve list`, the same read an
//!    incremental backup makes of its parent) against the set's size.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::measure::{Sample, machine, make_sample_app, measure, q, require_tools, sh, size_of};
use crate::workspace::{cargo, repo_root};

/// Options of `bench blocks`.
#[derive(clap::Args, Debug)]
pub(crate) struct Options {
    /// GiB of the sparse data file backed up full, then incremental
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    big_gib: u64,
    /// GiB of the data file whose full backup is timed against tar and zstd (0: none)
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u64).range(0..=1024))]
    tar_gib: u64,
}

/// The targets of behaviour §21.1's block maps.
const MANIFEST_SHARE: f64 = 0.001;
const DAILY_SHARE: f64 = 0.05;
const PEAK_MIB: f64 = 128.0;
const PARENT_READ_SHARE: f64 = 0.01;
const TAR_RATIO: f64 = 1.1;

pub(crate) fn run(o: &Options) -> Result<()> {
    require_tools()?;
    cargo(&["build", "--release", "--quiet", "-p", "sauve-cli"])?;
    let root = repo_root();
    let work = root.join("target/bench-blocks");
    let sauve = root.join("target/release/sauve");
    let big = big_file(o, &sauve, &work)?;
    let tar = if o.tar_gib > 0 {
        Some(against_tar(o, &sauve, &work)?)
    } else {
        None
    };
    report(o, &big, tar.as_ref());
    Ok(())
}

/// What the big sparse file's two backups showed.
struct Big {
    data: u64,
    full: Sample,
    incremental: Sample,
    full_set: u64,
    daily_set: u64,
    full_manifest: u64,
    daily_manifest: u64,
    /// The bytes of the blocks the daily set holds.
    daily_blocks: u64,
}

fn big_file(o: &Options, sauve: &Path, work: &Path) -> Result<Big> {
    let dir = work.join("big");
    let app = empty_app(&dir, "Big")?;
    let data_path = app.join("Data/Big.4DD");
    let data = o.big_gib << 30;
    std::fs::File::create(&data_path)?.set_len(data)?;
    new_app(sauve, &app)?;
    let backups = dir.join("Backups");
    let backup = format!("{} backup --app {} > /dev/null", q(sauve), q(&app));
    eprintln!("full backup of a sparse {} GiB data file…", o.big_gib);
    let full = measure(&backup, "", 1)?;
    let first = backups.join("Big[0001].4BK");
    eprintln!("1% of its 4 KiB pages changed at random…");
    change_pages(&data_path, data)?;
    eprintln!("incremental backup…");
    let incremental = measure(&backup, "", 1)?;
    let second = backups.join("Big[0002].4BK");
    if !second.exists() {
        bail!("the second backup wrote no {}", second.display());
    }
    let (_, daily) = sauve_archive::list(&second).context("cannot list the daily set")?;
    if daily.header.parent.is_none() {
        bail!("the second set is not incremental");
    }
    let daily_blocks = daily
        .entries
        .iter()
        .filter_map(|e| e.blocks.as_ref().map(|b| (e, b)))
        .map(|(e, b)| {
            b.changed
                .iter()
                .map(|&i| {
                    let r = b.range(i, e.size);
                    r.end - r.start
                })
                .sum::<u64>()
        })
        .sum();
    let big = Big {
        data,
        full,
        incremental,
        full_set: size_of(&first)?,
        daily_set: size_of(&second)?,
        full_manifest: manifest_len(&first)?,
        daily_manifest: manifest_len(&second)?,
        daily_blocks,
    };
    let _ = std::fs::remove_dir_all(&dir);
    Ok(big)
}

/// `DIR/NAME`, made anew: its project file and an empty `Data/`.
fn empty_app(dir: &Path, name: &str) -> Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    let app = dir.join(name);
    std::fs::create_dir_all(app.join("Project"))?;
    std::fs::create_dir_all(app.join("Data"))?;
    std::fs::write(app.join(format!("Project/{name}.4DProject")), "{}\n")?;
    Ok(app)
}

/// `sauve settings init` (a new app: incremental sets, blocks chosen per
/// file), the destination `../Backups/`, Fast.
fn new_app(sauve: &Path, app: &Path) -> Result<()> {
    let app = q(app);
    let sauve = q(sauve);
    sh(&format!(
        "{sauve} settings init --app {app} > /dev/null \
         && {sauve} settings set General/DestinationFolder ../Backups/ --app {app} > /dev/null \
         && {sauve} settings set Advanced/CompressionRate Fast --app {app} > /dev/null"
    ))
}

/// Overwrites 1% of the file's 4 KiB pages, at random, with random bytes.
fn change_pages(path: &Path, size: u64) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::options().write(true).open(path)?;
    let pages = size / 4096;
    let mut rng = fastrand::Rng::with_seed(7);
    let mut page = [0u8; 4096];
    for _ in 0..pages / 100 {
        rng.fill(&mut page);
        file.write_all_at(&page, rng.u64(0..pages) * 4096)?;
    }
    file.sync_all()?;
    Ok(())
}

/// The manifest's length, from the index at the end of the set.
fn manifest_len(set: &Path) -> Result<u64> {
    let mut f = std::fs::File::open(set)?;
    f.seek(SeekFrom::End(-64))?;
    let mut tail = [0u8; 64];
    f.read_exact(&mut tail)?;
    if &tail[8..16] != b"SAUVEIDX" {
        bail!("{} ends without an index", set.display());
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&tail[24..32]);
    Ok(u64::from_le_bytes(len))
}

/// The bytes a command read through read(2) and its kin (`rchar`), counted
/// by the kernel for the shell once it has waited for the command.
fn read_by(script: &str) -> Result<u64> {
    let out = Command::new("sh")
        .args(["-c", &format!("{script} && cat /proc/$$/io")])
        .output()
        .context("cannot run sh")?;
    if !out.status.success() {
        bail!("failed: {script}");
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|n| n.trim().parse().ok())
        .context("no rchar in /proc/PID/io")
}

/// A full Fast backup against `tar -cf - | zstd -1 -T0` of the same folder.
struct AgainstTar {
    data: u64,
    /// With the set verified before its commit (the default), and without.
    sauve: Sample,
    unverified: Sample,
    tar: Sample,
    /// The set's size, and the bytes `sauve list` read of it.
    set: u64,
    parent_read: u64,
}

fn against_tar(o: &Options, sauve: &Path, work: &Path) -> Result<AgainstTar> {
    let src = work.join("src-1024");
    let page_source = src.join("SampleApp/Data/SampleApp.4DD");
    if !page_source.exists() {
        eprintln!("making the sample app's 1 GiB data file…");
        let _ = std::fs::remove_dir_all(&src);
        make_sample_app(&src, 1024, 0)?;
    }
    let dir = work.join("tar");
    let app = empty_app(&dir, "Tar")?;
    eprintln!("a {} GiB data file of its pages…", o.tar_gib);
    let pages = std::fs::read(&page_source)?;
    let mut out = std::fs::File::create(app.join("Data/Tar.4DD"))?;
    let want = o.tar_gib << 30;
    let mut written = 0u64;
    while written < want {
        let n = (want - written).min(pages.len() as u64) as usize;
        out.write_all(&pages[..n])?;
        written += n as u64;
    }
    out.sync_all()?;
    drop(pages);
    // A new app's first set: full, with its blocks hashed for the next.
    new_app(sauve, &app)?;
    let backups = dir.join("Backups");
    let archive: PathBuf = dir.join("tar.tar.zst");
    let warm = format!("cat {} > /dev/null", q(&app.join("Data/Tar.4DD")));
    eprintln!("sauve backup, Fast…");
    let s = measure(
        &format!("{} backup --app {} > /dev/null && sync", q(sauve), q(&app)),
        &format!("rm -rf {} && {warm}", q(&backups)),
        1,
    )?;
    let first = backups.join("Tar[0001].4BK");
    let set = size_of(&first)?;
    let parent_read = read_by(&format!("{} list {} > /dev/null", q(sauve), q(&first)))?;
    // tar verifies nothing: the same backup without the read-back.
    sh(&format!(
        "{} settings set Advanced/CheckArchiveFileDuringBackup False --app {} > /dev/null",
        q(sauve),
        q(&app)
    ))?;
    eprintln!("sauve backup, Fast, not verified before its commit…");
    let unverified = measure(
        &format!("{} backup --app {} > /dev/null && sync", q(sauve), q(&app)),
        &format!("rm -rf {} && {warm}", q(&backups)),
        1,
    )?;
    eprintln!("tar -cf - | zstd -1 -T0…");
    let t = measure(
        &format!(
            "tar -cf - -C {} Tar | zstd -q -1 -T0 -o {} && sync",
            q(&dir),
            q(&archive)
        ),
        &format!("rm -f {} && {warm}", q(&archive)),
        1,
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(AgainstTar {
        data: want,
        sauve: s,
        unverified,
        tar: t,
        set,
        parent_read,
    })
}

fn report(o: &Options, big: &Big, tar: Option<&AgainstTar>) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let share = |part: u64, whole: u64| part as f64 / whole.max(1) as f64;
    let verdict = |ok: bool| if ok { "met" } else { "missed" };
    println!(
        "## cargo xtask bench blocks --big-gib {} --tar-gib {}",
        o.big_gib, o.tar_gib
    );
    println!();
    println!("{}", machine());
    println!();
    println!(
        "A sparse {} GiB data file, `sauve settings init` (incremental, blocks chosen per file), Fast; the daily set after 1% of its 4 KiB pages changed at random.",
        o.big_gib
    );
    println!();
    println!("| backup | seconds | peak MiB | set MiB | manifest bytes |");
    println!("|---|---|---|---|---|");
    for (name, s, set, manifest) in [
        ("full", big.full, big.full_set, big.full_manifest),
        (
            "incremental",
            big.incremental,
            big.daily_set,
            big.daily_manifest,
        ),
    ] {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {manifest} |",
            s.seconds,
            mib(s.peak_kib),
            set as f64 / (1u64 << 20) as f64
        );
    }
    println!();
    println!("| target | measured | |");
    println!("|---|---|---|");
    let manifest = share(big.full_manifest.max(big.daily_manifest), big.data);
    println!(
        "| manifest ≤ {:.1}% of the data | {:.4}% | {} |",
        MANIFEST_SHARE * 100.0,
        manifest * 100.0,
        verdict(manifest <= MANIFEST_SHARE)
    );
    let daily = share(big.daily_blocks, big.data);
    println!(
        "| blocks of the daily set ≤ {:.0}% of the data file (uncompressed) | {:.2}% ({:.1} MiB; the set {:.1} MiB) | {} |",
        DAILY_SHARE * 100.0,
        daily * 100.0,
        big.daily_blocks as f64 / (1u64 << 20) as f64,
        big.daily_set as f64 / (1u64 << 20) as f64,
        verdict(daily <= DAILY_SHARE)
    );
    let peak = mib(big.full.peak_kib.max(big.incremental.peak_kib));
    println!(
        "| peak memory ≤ {PEAK_MIB:.0} MiB, full and incremental | {peak:.1} MiB | {} |",
        verdict(peak <= PEAK_MIB)
    );
    if let Some(t) = tar {
        let read = share(t.parent_read, t.set);
        println!(
            "| the parent's manifest read (`sauve list` of the {} GiB app's set): ≤ {:.0}% of the set | {} bytes of {} ({:.3}%) | {} |",
            t.data >> 30,
            PARENT_READ_SHARE * 100.0,
            t.parent_read,
            t.set,
            read * 100.0,
            verdict(read <= PARENT_READ_SHARE)
        );
        let ratio = t.unverified.seconds / t.tar.seconds;
        println!(
            "| full Fast backup of {} GiB ≤ {TAR_RATIO}x `tar -cf - \\| zstd -1 -T0` (neither reads its archive back) | {:.1} s against {:.1} s: {ratio:.2}x (peak {:.1} MiB) | {} |",
            t.data >> 30,
            t.unverified.seconds,
            t.tar.seconds,
            mib(t.unverified.peak_kib),
            verdict(ratio <= TAR_RATIO)
        );
        println!(
            "| the same backup verified before its commit (the default) | {:.1} s: {:.2}x tar's (peak {:.1} MiB) | |",
            t.sauve.seconds,
            t.sauve.seconds / t.tar.seconds,
            mib(t.sauve.peak_kib)
        );
    }
}
