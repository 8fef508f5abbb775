//! `cargo xtask bench offsite`: a backup copied off-site to a real local
//! Garage node, against the same app backed up to a folder only, and against
//! a plain baseline with no sauve logic: `tar | zstd -1 -T0` uploaded as one
//! multipart upload through the same crate (`object_store`), with the same
//! part size and parts in flight; then the bucket as the destination itself
//! (`General/DestinationFolder = s3://…`, segments compressed straight into
//! their uploads), and restores from the bucket and from the folder. One
//! run, one machine.

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use object_store::ObjectStoreExt;
use sauve_tests::garage::Garage;

use crate::measure::{Sample, machine, measure, measure_env, q, settings_set, sh, size_of};
use crate::workspace::repo_root;

/// Options of `bench offsite`.
#[derive(clap::Args, Debug)]
pub(crate) struct Options {
    /// MB of data file in the sample app
    #[arg(long, value_name = "N", default_value_t = 1024)]
    data_mb: u64,
    /// Runs per contender, of which the median is reported
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = crate::workspace::at_least_one)]
    runs: usize,
}

/// The sample app, made once per size, and the release `sauve` that backs
/// it up.
struct Setup {
    work: PathBuf,
    src: PathBuf,
    app: PathBuf,
    sauve: PathBuf,
}

/// What the contenders share: the sample app and `sauve`, the Garage node
/// and the environment that names it, and the shell lines of a backup.
struct Bench<'a> {
    runs: usize,
    setup: Setup,
    garage: &'a Garage,
    /// The node's endpoint and key, in the environment of every command
    /// that reaches it.
    env: [(&'a str, &'a str); 3],
    /// The app's `sauve.toml`, where a run names its off-site copy.
    toml: PathBuf,
    /// The destination folder of the backups.
    backups: PathBuf,
    /// `sauve backup` of the sample app.
    backup: String,
    /// Removes the backups and the `sauve.toml` before a run.
    clean: String,
}

pub(crate) fn run(o: &Options) -> Result<()> {
    crate::measure::require_tools()?;
    let setup = prepare(o)?;
    let garage = Garage::start(1);
    let endpoint = garage.endpoint();
    let toml = setup.app.join("Settings/sauve.toml");
    let backups = setup.src.join("Backups");
    let bench = Bench {
        runs: o.runs,
        env: [
            ("SAUVE_TEST_S3_KEY", garage.key_id.as_str()),
            ("SAUVE_TEST_S3_SECRET", garage.secret.as_str()),
            ("BENCH_S3_ENDPOINT", endpoint.as_str()),
        ],
        garage: &garage,
        clean: format!(
            "rm -rf {b} && rm -f {t} && sync",
            b = q(&backups),
            t = q(&toml)
        ),
        backup: format!(
            "{} backup --app {} > /dev/null",
            q(&setup.sauve),
            q(&setup.app)
        ),
        toml,
        backups,
        setup,
    };
    let input = size_of(&bench.setup.app)?;
    sh(&format!(
        "find {} -type f -exec cat {{}} + > /dev/null",
        q(&bench.setup.app)
    ))?;
    let mut rows: Vec<(String, Sample)> = Vec::new();

    eprintln!("sauve backup to a folder…");
    rows.push((
        "sauve backup, folder only".into(),
        measure(&bench.backup, &bench.clean, o.runs)?,
    ));
    let (offsite, last_run) = backup_with_offsite_copy(&bench)?;
    eprintln!("sauve backup with its off-site copy…");
    rows.push(("sauve backup + off-site copy to Garage".into(), offsite));
    rows.push((
        "tar | zstd -1 -T0 | multipart upload (object_store)".into(),
        plain_upload(&bench)?,
    ));
    let (from_bucket, from_folder) = restores(&bench, last_run)?;
    rows.push(("sauve restore from the bucket".into(), from_bucket));
    rows.push(("sauve restore from the folder".into(), from_folder));
    let (verified, unverified) = backup_straight_to_bucket(&bench)?;
    rows.push((
        "sauve backup straight to the bucket (read back to verify, the default)".into(),
        verified,
    ));
    rows.push((
        "sauve backup straight to the bucket, CheckArchiveFileDuringBackup off".into(),
        unverified,
    ));

    write_table(o, input, &rows);
    Ok(())
}

/// Makes the sample app when it is missing, builds `sauve`, and sets the
/// app's compression (Fast) and schedule (none).
fn prepare(o: &Options) -> Result<Setup> {
    let root = repo_root();
    let work = root.join("target/bench-offsite");
    let src = work.join(format!("src-{}", o.data_mb));
    let app = src.join("SampleApp");
    if !app.join("Data/SampleApp.4DD").exists() {
        eprintln!("making the sample app ({} MB data)…", o.data_mb);
        let _ = std::fs::remove_dir_all(&src);
        let status = Command::new("python3")
            .arg(root.join("tests/fixtures/make-sample-app"))
            .arg(&src)
            .args(["--data-mb", &o.data_mb.to_string(), "--attach-mb", "0"])
            .status()?;
        if !status.success() {
            bail!("make-sample-app failed");
        }
    }
    let sauve = crate::workspace::release_sauve()?;
    for (k, v) in [
        ("Advanced/CompressionRate", "Fast"),
        ("Scheduler/Frequency", "Never"),
    ] {
        settings_set(&sauve, &app, k, v)?;
    }
    Ok(Setup {
        work,
        src,
        app,
        sauve,
    })
}

/// The median of `runs` samples, each taken by `sample`.
fn median_of(runs: usize, mut sample: impl FnMut() -> Result<Sample>) -> Result<Sample> {
    let mut samples = Vec::new();
    for _ in 0..runs {
        samples.push(sample()?);
    }
    samples.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    Ok(samples[samples.len() / 2])
}

/// A backup with its off-site copy to the bucket; returns the median and
/// the number of the last run, whose prefix (`runN/`) the restore reads.
fn backup_with_offsite_copy(b: &Bench) -> Result<(Sample, usize)> {
    // Each run copies into a fresh prefix: nothing is ever overwritten.
    let mut n = 0;
    let sample = median_of(b.runs, || {
        n += 1;
        sh(&b.clean)?;
        std::fs::write(
            &b.toml,
            format!(
                "[destination]\n{}\n[[offsite]]\nurl = \"s3://{}/run{n}/\"\n",
                b.garage.toml_lines(),
                b.garage.bucket
            ),
        )?;
        measure_env(&b.backup, "", 1, &b.env)
    })?;
    Ok((sample, n))
}

/// The baseline: `tar | zstd -1 -T0` uploaded as one multipart upload by
/// this binary's `bench-upload`, a fresh key per run.
fn plain_upload(b: &Bench) -> Result<Sample> {
    eprintln!("plain tar | zstd -1 -T0 | one multipart upload…");
    let xtask = std::env::current_exe()?;
    let mut m = 0;
    median_of(b.runs, || {
        m += 1;
        let script = format!(
            "tar -C {s} -cf - SampleApp | zstd -1 -T0 | {x} bench-upload {bucket} plain{m}.tar.zst",
            s = q(&b.setup.src),
            x = q(&xtask),
            bucket = b.garage.bucket
        );
        measure_env(&script, "", 1, &b.env)
    })
}

/// Restores of the set of the last off-site run (`last_run`), from the
/// bucket and from the folder, in that order.
fn restores(b: &Bench, last_run: usize) -> Result<(Sample, Sample)> {
    let n = last_run;
    let (sauve, app) = (&b.setup.sauve, &b.setup.app);
    let restored = b.setup.work.join("restored");
    let clean_r = format!("rm -rf {r} && sync", r = q(&restored));
    let from_bucket = format!(
        "{} restore 's3://{}/run{n}/SampleApp[0001]' --app {} --to {} > /dev/null",
        q(sauve),
        b.garage.bucket,
        q(app),
        q(&restored)
    );
    eprintln!("restores…");
    let bucket = measure_env(&from_bucket, &clean_r, b.runs, &b.env)?;
    let from_folder = format!(
        "{} restore {} --to {} > /dev/null",
        q(sauve),
        q(&b.backups.join("SampleApp[0001]")),
        q(&restored)
    );
    let folder = measure(&from_folder, &clean_r, b.runs)?;
    let _ = std::fs::remove_dir_all(&restored);
    Ok((bucket, folder))
}

/// The bucket as the destination itself: each segment compressed straight
/// into its upload, no local archive (a fresh prefix per run); read back
/// to verify (the default), then without reading back. The app's settings
/// are put back as they were, and its `sauve.toml` removed.
fn backup_straight_to_bucket(b: &Bench) -> Result<(Sample, Sample)> {
    eprintln!("sauve backup straight to the bucket…");
    let set = |key: &str, value: &str| settings_set(&b.setup.sauve, &b.setup.app, key, value);
    std::fs::write(&b.toml, format!("[destination]\n{}", b.garage.toml_lines()))?;
    let mut d = 0;
    let mut direct = || {
        median_of(b.runs, || {
            d += 1;
            set(
                "General/DestinationFolder",
                &format!("s3://{}/direct{d}/", b.garage.bucket),
            )?;
            measure_env(&b.backup, "", 1, &b.env)
        })
    };
    let verified = direct()?;
    // The same without reading the set back (CheckArchiveFileDuringBackup
    // off): what the streaming itself costs against the baseline.
    set("Advanced/CheckArchiveFileDuringBackup", "false")?;
    let unverified = direct();
    set("Advanced/CheckArchiveFileDuringBackup", "true")?;
    set("General/DestinationFolder", "../Backups/")?;
    std::fs::remove_file(&b.toml)?;
    Ok((verified, unverified?))
}

/// The table for BENCHMARKS.md, then the ratios between its rows (in the
/// order `run` measures them).
fn write_table(o: &Options, input: u64, rows: &[(String, Sample)]) {
    let mib = input as f64 / f64::from(1 << 20);
    println!(
        "`cargo xtask bench offsite --data-mb {} --runs {}` on {}",
        o.data_mb,
        o.runs,
        machine()
    );
    println!(
        "Input {mib:.0} MiB (the sample app's data, Fast); Garage {} single node on loopback, 16 MiB parts, 4 in flight.\n",
        sauve_tests::garage::VERSION
    );
    println!("| contender | seconds (median) | MiB/s | peak RSS |");
    println!("|---|---|---|---|");
    for (name, s) in rows {
        println!(
            "| {name} | {:.2} | {:.0} | {} MiB |",
            s.seconds,
            mib / s.seconds.max(1e-9),
            s.peak_kib / 1024
        );
    }
    let t = |i: usize| rows[i].1.seconds;
    println!(
        "\ncopy alone (backup + copy − backup): {:.2} s; backup + copy / plain upload: {:.2}x; straight to the bucket / plain upload: {:.2}x verified, {:.2}x unverified (target ≤ 1.10x); restore from the bucket / from the folder (speed): {:.2}x (target ≥ 0.8x)",
        t(1) - t(0),
        t(1) / t(2),
        t(5) / t(2),
        t(6) / t(2),
        t(4) / t(3)
    );
}

/// The baseline's uploader: stdin as one multipart upload of `key` in
/// `bucket`, 16 MiB parts, 4 in flight; the endpoint and key from the
/// environment the bench sets.
pub(crate) fn upload_stdin(bucket: &str, key: &str) -> Result<()> {
    let var = |n: &str| std::env::var(n).with_context(|| format!("{n} is not set"));
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region("garage")
        .with_endpoint(var("BENCH_S3_ENDPOINT")?)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_access_key_id(var("SAUVE_TEST_S3_KEY")?)
        .with_secret_access_key(var("SAUVE_TEST_S3_SECRET")?)
        .build()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let upload = store
            .put_multipart(&object_store::path::Path::parse(key)?)
            .await?;
        let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, 16 << 20);
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0; 1 << 20];
        loop {
            let n = stdin.read(&mut buf)?;
            if n == 0 {
                break;
            }
            w.wait_for_capacity(4).await?;
            w.write(&buf[..n]);
        }
        w.finish().await?;
        anyhow::Ok(())
    })?;
    Ok(())
}
