//! `cargo xtask bench peers --store`: the week of `bench peers`, into one
//! bucket of a real local Garage node instead of folders. Each tool writes
//! under its own prefix: sauve's full sets and its incremental sets
//! (`DestinationFolder = s3://…`), restic (its S3 backend) and rustic (its
//! opendal S3 backend) when `cargo install rustic-rs` finishes within 10
//! minutes. Every tool reaches the store with the ecosystem's variables
//! alone (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, and
//! for sauve `AWS_ENDPOINT_URL`): no credential on a command line or in a
//! file.
//!
//! Reported per tool: each day's backup time, the bytes its prefix holds
//! after the week (the objects' sizes, as the store lists them) and the time
//! to restore the last day from the bucket; then the ratios the incremental
//! sets are held to.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sauve_tests::garage::Garage;

use crate::measure::{Sample, measure_env, q, sh};
use crate::peers::{
    ENV, Options, Setup, change, configure_sauve, days_table, heading, install_missing, later_mean,
    set_up,
};

/// What `cargo install` of rustic may take before the bench goes without it.
const RUSTIC_INSTALL_LIMIT: &str = "600";

/// A tool in the comparison, and the prefix of the bucket it writes under.
struct Peer {
    name: &'static str,
    prefix: &'static str,
    backups: Vec<Sample>,
    restore: Option<Sample>,
}

/// The rows of the table, in order (the indices the scripts use).
const SAUVE_FULL: usize = 0;
const RESTIC: usize = 1;
const SAUVE_INC: usize = 2;
const RUSTIC: usize = 3;

pub(crate) fn run(o: &Options) -> Result<()> {
    install_missing()?;
    let rustic = install_rustic();
    let baseline = match &o.baseline {
        Some(rev) => {
            eprintln!("building sauve as it was at {rev}…");
            Some(crate::bench::baseline_sauve(rev)?)
        }
        None => None,
    };
    let Setup {
        sauve,
        work,
        src,
        app,
        input,
    } = set_up(o, "target/bench-peers-store")?;

    eprintln!("starting Garage…");
    let garage = Garage::start(1);
    let endpoint = garage.endpoint();
    let bucket = garage.bucket.clone();
    let mut peers: Vec<Peer> = [
        ("sauve (full sets)", "sauve-full"),
        ("restic (S3)", "restic"),
        ("sauve (incremental sets)", "sauve-inc"),
        ("rustic (S3, opendal)", "rustic"),
    ]
    .into_iter()
    .take(if rustic.is_ok() { 4 } else { 3 })
    .map(|(name, prefix)| Peer {
        name,
        prefix,
        backups: Vec::new(),
        restore: None,
    })
    .collect();
    let s3 = |prefix: &str| format!("s3://{bucket}/{prefix}/");
    let configurations = configure_sauve(
        o,
        &sauve,
        &app,
        &work,
        [&s3(peers[SAUVE_FULL].prefix), &s3(peers[SAUVE_INC].prefix)],
    )?;
    let config_home = work.join("config");
    if rustic.is_ok() {
        write_rustic_profile(&config_home, &endpoint, &bucket)?;
    }
    let env: Vec<(&str, &str)> = ENV
        .iter()
        .copied()
        .chain([
            ("AWS_ACCESS_KEY_ID", garage.key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", garage.secret.as_str()),
            ("AWS_REGION", "garage"),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("RUSTIC_PASSWORD", "sauve-bench-peers"),
            (
                "XDG_CONFIG_HOME",
                config_home
                    .to_str()
                    .context("the work folder is not UTF-8")?,
            ),
        ])
        .collect();
    let tools = Tools {
        sauve,
        baseline,
        rustic: rustic.as_ref().ok().cloned(),
        restic_repo: format!("s3:{endpoint}/{bucket}/restic"),
        cache: work.join("cache"),
        bucket: bucket.clone(),
        env,
    };
    init_repositories(&tools)?;
    let tree = format!("{} {}", q(&app), q(&src.join("Attachments")));
    for day in 0..=o.days {
        if day > 0 {
            change(&src, day, o.export_mb)?;
        }
        sh(&format!(
            "find {} -type f -exec cat {{}} + > /dev/null",
            q(&src)
        ))?;
        let scripts = backup_scripts(&tools, &app, &tree);
        let before = [
            configurations.as_full.as_str(),
            "true",
            configurations.as_incremental.as_str(),
            "true",
        ];
        for ((p, script), before) in peers.iter_mut().zip(scripts).zip(before) {
            eprintln!("day {day}: {}…", p.name);
            p.backups.push(measure_env(&script, before, 1, &tools.env)?);
        }
    }
    sh(&configurations.as_full)?;
    let baseline = restore_last_day(&tools, &work, &mut peers, o.days + 1)?;

    let usage = Usage::of(&garage)?;
    report(o, input, (&peers, baseline), &usage, rustic.err())
}

/// What the scripts need to reach each tool and the bucket.
struct Tools<'a> {
    sauve: PathBuf,
    /// `sauve` as it was at `--baseline`.
    baseline: Option<PathBuf>,
    rustic: Option<PathBuf>,
    restic_repo: String,
    /// restic's and rustic's caches, outside the bucket.
    cache: PathBuf,
    bucket: String,
    /// The store's endpoint and key, and the repositories' passphrase: in
    /// the environment of every command, never on its line.
    env: Vec<(&'a str, &'a str)>,
}

/// `rustic` on PATH or in `~/.cargo/bin`, else `cargo install rustic-rs
/// --locked` within [`RUSTIC_INSTALL_LIMIT`] seconds; why not, when it fails.
fn install_rustic() -> Result<PathBuf, String> {
    let installed = || {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(home.map(|h| h.join(".cargo/bin")))
            .map(|d| d.join("rustic"))
            .find(|p| p.is_file())
    };
    if let Some(p) = installed() {
        return Ok(p);
    }
    eprintln!("installing rustic (cargo install rustic-rs, at most {RUSTIC_INSTALL_LIMIT} s)…");
    let status = Command::new("timeout")
        .args([
            RUSTIC_INSTALL_LIMIT,
            "cargo",
            "install",
            "--locked",
            "rustic-rs",
        ])
        .status()
        .map_err(|e| format!("cannot run cargo install: {e}"))?;
    match status.code() {
        Some(0) => installed().ok_or_else(|| "cargo install left no rustic binary".to_owned()),
        Some(124) => Err(format!(
            "cargo install rustic-rs did not finish within {RUSTIC_INSTALL_LIMIT} s on this machine"
        )),
        _ => Err(format!("cargo install rustic-rs failed ({status})")),
    }
}

/// rustic's default profile (`$XDG_CONFIG_HOME/rustic/rustic.toml`): the
/// repository in the bucket, through opendal's S3 service. The key and the
/// passphrase come from the environment.
fn write_rustic_profile(config_home: &Path, endpoint: &str, bucket: &str) -> Result<()> {
    let dir = config_home.join("rustic");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("rustic.toml"),
        format!(
            "[repository]\nrepository = \"opendal:s3\"\n\n[repository.options]\nbucket = \"{bucket}\"\nroot = \"/rustic\"\nendpoint = \"{endpoint}\"\nregion = \"garage\"\n"
        ),
    )?;
    Ok(())
}

/// `restic init` and `rustic init` in the bucket.
fn init_repositories(t: &Tools<'_>) -> Result<()> {
    let mut script = format!(
        "restic init -q -r {} > /dev/null",
        shell_word(&t.restic_repo)
    );
    if let Some(rustic) = &t.rustic {
        script.push_str(&format!(" && {} init > /dev/null 2>&1", q(rustic)));
    }
    let init = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .envs(t.env.iter().copied())
        .status()?;
    if !init.success() {
        bail!("cannot make the restic and rustic repositories in the bucket");
    }
    Ok(())
}

/// A word for `sh -c`, quoted.
fn shell_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Each tool's backup of `tree` (sauve's of `app`), in the order of the rows.
fn backup_scripts(t: &Tools<'_>, app: &Path, tree: &str) -> Vec<String> {
    let (sauve, app) = (q(&t.sauve), q(app));
    let cache = q(&t.cache);
    let mut scripts = vec![
        format!("{sauve} backup --app {app} > /dev/null"),
        format!(
            "restic -q -r {} --cache-dir {cache} backup {tree} > /dev/null",
            shell_word(&t.restic_repo)
        ),
        format!("{sauve} backup --app {app} > /dev/null"),
    ];
    if let Some(rustic) = &t.rustic {
        scripts.push(format!(
            "{} --cache-dir {cache} backup {tree} > /dev/null 2>&1",
            q(rustic)
        ));
    }
    scripts
}

/// Whether this machine lets the bench drop the page cache (root, a
/// writable `/proc/sys/vm/drop_caches`).
fn can_drop_caches() -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/vm/drop_caches")
        .is_ok()
}

/// The runs of each restore, of which the median is reported: one restore
/// from a cold store varies by a tenth from run to run on this machine.
const RESTORE_RUNS: usize = 3;

/// Restores the last day from the bucket, by each tool, each into an empty
/// folder, synced. `last` is the number of sauve's last set. The page cache
/// is dropped before each where the machine allows it: every tool then
/// reads its objects from the store's disk, as a restore after a disaster
/// does, rather than some from memory (the last full set was written
/// minutes before, the chain's first set days of writes ago). Returns the
/// baseline's restore of the incremental sets, when there is one.
fn restore_last_day(
    t: &Tools<'_>,
    work: &Path,
    peers: &mut [Peer],
    last: usize,
) -> Result<Option<Sample>> {
    let to = work.join("restored");
    let mut clean = format!("rm -rf {t} && mkdir -p {t} && sync", t = q(&to));
    if can_drop_caches() {
        clean.push_str(" && echo 3 > /proc/sys/vm/drop_caches");
    }
    let (sauve, target, cache) = (q(&t.sauve), q(&to), q(&t.cache));
    let set =
        |prefix: &str| shell_word(&format!("s3://{}/{prefix}/SampleApp[{last:04}]", t.bucket));
    let mut scripts = vec![
        format!(
            "{sauve} restore {} --to {target}/r > /dev/null && sync -f {target}",
            set(peers[SAUVE_FULL].prefix)
        ),
        format!(
            "restic -q -r {} --cache-dir {cache} restore latest --target {target} > /dev/null && sync -f {target}",
            shell_word(&t.restic_repo)
        ),
        format!(
            "{sauve} restore {} --to {target}/r > /dev/null && sync -f {target}",
            set(peers[SAUVE_INC].prefix)
        ),
    ];
    if let Some(rustic) = &t.rustic {
        scripts.push(format!(
            "{} --cache-dir {cache} restore latest {target} > /dev/null 2>&1 && sync -f {target}",
            q(rustic)
        ));
    }
    for (p, script) in peers.iter_mut().zip(scripts) {
        eprintln!("restore from the bucket: {}…", p.name);
        p.restore = Some(measure_env(&script, &clean, RESTORE_RUNS, &t.env)?);
    }
    let baseline = match &t.baseline {
        Some(old) => {
            eprintln!("restore from the bucket: the incremental sets, by the baseline's sauve…");
            let script = format!(
                "{} restore {} --to {target}/r > /dev/null && sync -f {target}",
                q(old),
                set(peers[SAUVE_INC].prefix)
            );
            Some(measure_env(&script, &clean, RESTORE_RUNS, &t.env)?)
        }
        None => None,
    };
    let _ = std::fs::remove_dir_all(&to);
    Ok(baseline)
}

/// The bucket's objects, as the store lists them: key and size.
struct Usage {
    objects: Vec<(String, u64)>,
}

impl Usage {
    fn of(garage: &Garage) -> Result<Usage> {
        use futures_util::TryStreamExt;
        use object_store::ObjectStore;
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&garage.bucket)
            .with_region("garage")
            .with_endpoint(garage.endpoint())
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_access_key_id(&garage.key_id)
            .with_secret_access_key(&garage.secret)
            .build()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let objects = rt.block_on(async {
            store
                .list(None)
                .map_ok(|m| (m.location.to_string(), m.size))
                .try_collect::<Vec<_>>()
                .await
        })?;
        Ok(Usage { objects })
    }

    /// The bytes of the objects under `prefix/` whose key (after it)
    /// passes `keep`.
    fn bytes(&self, prefix: &str, keep: impl Fn(&str) -> bool) -> u64 {
        let prefix = format!("{prefix}/");
        self.objects
            .iter()
            .filter_map(|(k, size)| k.strip_prefix(&prefix).map(|rest| (rest, size)))
            .filter(|(rest, _)| keep(rest))
            .map(|(_, size)| size)
            .sum()
    }
}

fn report(
    o: &Options,
    input: u64,
    (peers, baseline): (&[Peer], Option<Sample>),
    usage: &Usage,
    rustic: Option<String>,
) -> Result<()> {
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    heading(o);
    println!(
        "input: {:.0} MiB (sample app from tests/fixtures/make-sample-app); day 0 backs it up, each later day first overwrites 1% of the data file's 4 KiB pages at random positions and changes 1% of the small files{}; every tool writes into one bucket of a single Garage {} node on loopback (its default zstd level 1 on stored blocks), under its own prefix; sizes are the objects' sizes as the store lists them; restores are from the bucket into a folder on target/, synced, the median of {RESTORE_RUNS} runs, {}",
        mib(input),
        crate::peers::exported(o),
        sauve_tests::garage::VERSION,
        if can_drop_caches() {
            "each after the page cache was dropped (every tool reads the store's disk)"
        } else {
            "the page cache as the week left it (this machine does not let the bench drop it)"
        }
    );
    if let Some(why) = &rustic {
        println!("rustic: not in this run ({why})");
    }
    println!();
    let sizes: Vec<u64> = peers
        .iter()
        .map(|p| usage.bytes(p.prefix, |_| true))
        .collect();
    days_table(
        o.days,
        peers
            .iter()
            .zip(&sizes)
            .map(|(p, &size)| (p.name, &p.backups[..], p.restore, size)),
    );
    let first_set = usage
        .bytes(peers[SAUVE_INC].prefix, |k| {
            k.starts_with("SampleApp[0001") && k.ends_with(".4BK")
        })
        .max(1);
    if first_set == 1 {
        bail!("the bucket holds no first set of sauve's incremental sets");
    }
    let (inc, full, restic) = (&peers[SAUVE_INC], &peers[SAUVE_FULL], &peers[RESTIC]);
    let restore = |p: &Peer| p.restore.map_or(0.0, |s| s.seconds);
    let first_incremental = inc.backups.get(1).map_or(0.0, |s| s.seconds);
    let after_first: Vec<Sample> = inc.backups.iter().skip(1).copied().collect();
    let row = |what: &str, ratio: f64| println!("| {what} | {ratio:.2}x |");
    println!("| ratio | measured |");
    println!("|---|---:|");
    row(
        "incremental week in the bucket / one full set (size; target ≤ 1.3x)",
        sizes[SAUVE_INC] as f64 / first_set as f64,
    );
    row(
        "incremental week / restic's repository in the same bucket (size; target ≤ 0.5x)",
        sizes[SAUVE_INC] as f64 / sizes[RESTIC].max(1) as f64,
    );
    row(
        "incremental backup / sauve's full backup to the bucket the same day (time; target ≤ 0.33x)",
        later_mean(&inc.backups) / later_mean(&full.backups),
    );
    row(
        "incremental backup / restic's (time; target ≤ 1x)",
        later_mean(&inc.backups) / later_mean(&restic.backups),
    );
    row(
        "first incremental backup / the later ones (time; target ≤ 1x)",
        first_incremental / later_mean(&after_first).max(1e-9),
    );
    row(
        "restore of the last incremental / of the last full set, from the bucket (time; target ≤ 1.25x)",
        restore(inc) / restore(full).max(1e-9),
    );
    if let (Some(old), Some(rev)) = (baseline, &o.baseline) {
        row(
            &format!(
                "restore of the last incremental, this build / {rev}'s ({:.2} s) (time)",
                old.seconds
            ),
            restore(inc) / old.seconds.max(1e-9),
        );
    }
    if let Some(rustic) = peers.get(RUSTIC) {
        row(
            "incremental week / rustic's repository (size)",
            sizes[SAUVE_INC] as f64 / sizes[RUSTIC].max(1) as f64,
        );
        row(
            "incremental backup / rustic's (time)",
            later_mean(&inc.backups) / later_mean(&rustic.backups),
        );
    }
    Ok(())
}
