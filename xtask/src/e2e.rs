//! `cargo xtask e2e`: the notes-server host under load while it is backed up
//! (by its schedule and by remote requests), then killed with SIGKILL during
//! a backup, its data damaged, restarted: every acknowledged write must be
//! back. Loopback only, bounded in time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::notes_server::{Server, agent, start, stop};
use crate::workspace::{cargo, repo_root};

/// Options of `e2e`.
#[derive(clap::Args, Debug)]
pub(crate) struct Options {
    /// Seconds of load (writers, readers, scheduled and remote backups) before the kill cycles
    #[arg(long, value_name = "N", default_value_t = 60)]
    seconds: u64,
    /// Kill -9 and recover cycles, each killing the server during a backup
    #[arg(long, value_name = "N", default_value_t = 20)]
    cycles: u32,
    /// Writer threads
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = crate::workspace::at_least_one)]
    writers: usize,
    /// Reader threads during the load
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = crate::workspace::at_least_one)]
    readers: usize,
    /// Grow the data file by this many MiB of notes before the load, so
    /// that the data lock lasts seconds and waiting writes get cancelled
    #[arg(long, value_name = "N", default_value_t = 0)]
    data_mib: u64,
    /// Build notes-server with the dev profile (its dependencies optimised,
    /// as the tests build them) instead of release: a check of what is lost
    /// or kept, whose times are not the release figures (what CI runs)
    #[arg(long)]
    dev: bool,
}

#[derive(Default)]
struct Stats {
    acked: Mutex<BTreeMap<u64, String>>,
    files: Mutex<BTreeMap<String, String>>,
    cancelled: AtomicU64,
    errors: AtomicU64,
    max_wait_ms: AtomicU64,
    /// Every acknowledged write's wait for the data lock, ms.
    waits: Mutex<Vec<f64>>,
    /// The bodies of the writes their client cancelled (-9976).
    cancelled_bodies: Mutex<BTreeSet<String>>,
    /// The ids of the padding notes of `--data-mib`.
    padding: Mutex<BTreeSet<u64>>,
    reads_during: Mutex<Vec<f64>>,
    reads_outside: Mutex<Vec<f64>>,
}

fn p(samples: &Mutex<Vec<f64>>, q: f64) -> f64 {
    let mut v = samples.lock().map(|v| v.clone()).unwrap_or_default();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

/// Writers and readers against `server` for `duration`; remote backups every few seconds.
fn load(
    server: &Server,
    stats: &Arc<Stats>,
    o: &Options,
    duration: Duration,
    tag: &str,
) -> Result<()> {
    let deadline = Instant::now() + duration;
    let backing_up = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_backups(server, &backing_up, &stop);
    let mut threads = Vec::new();
    let big = o.data_mib > 0;
    for w in 0..o.writers {
        let writer = Writer {
            url: server.url.clone(),
            stats: stats.clone(),
            tag: tag.to_owned(),
            w,
            big,
            deadline,
        };
        threads.push(std::thread::spawn(move || writer.run()));
    }
    for r in 0..o.readers {
        let (url, stats, flag) = (server.url.clone(), stats.clone(), backing_up.clone());
        threads.push(std::thread::spawn(move || {
            read_notes(&url, &stats, &flag, r, deadline);
        }));
    }
    request_backups(server, deadline);
    for t in threads {
        let _ = t.join();
    }
    stop.store(true, Ordering::Relaxed);
    drop(watcher);
    Ok(())
}

/// Follows the events to know when a backup runs: `backing_up` is set
/// from its start to its end, until `stop` is set (or the stream ends).
fn watch_backups(
    server: &Server,
    backing_up: &Arc<AtomicBool>,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let (url, token, flag, stop) = (
        server.url.clone(),
        server.token.clone(),
        backing_up.clone(),
        stop.clone(),
    );
    std::thread::spawn(move || {
        let Ok(resp) = agent()
            .get(format!("{url}/v1/events"))
            .header("Authorization", format!("Bearer {token}"))
            .call()
        else {
            return;
        };
        let mut reader = std::io::BufReader::new(resp.into_body().into_reader());
        let mut line = String::new();
        while !stop.load(Ordering::Relaxed) {
            line.clear();
            if std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) == 0 {
                break;
            }
            if line.contains("\"event\":\"started\"") {
                flag.store(true, Ordering::Relaxed);
            } else if line.contains("\"event\":\"finished\"") {
                flag.store(false, Ordering::Relaxed);
            }
        }
    })
}

/// One writer thread of [`load`]: writer `w` of the run tagged `tag`.
struct Writer {
    url: String,
    stats: Arc<Stats>,
    tag: String,
    w: usize,
    /// Whether the data file was padded (`--data-mib`): its lock lasts seconds.
    big: bool,
    deadline: Instant,
}

impl Writer {
    /// Writes notes until the deadline, counting what was acknowledged,
    /// cancelled or failed.
    fn run(self) {
        let client = agent();
        let mut i = 0u64;
        while Instant::now() < self.deadline {
            i += 1;
            let body = format!("{}-w{}-{i}", self.tag, self.w);
            // The first writer also uploads a file now and then.
            if self.w == 0 && i.is_multiple_of(5) {
                self.upload(&client, i);
            }
            self.write(&client, body, self.wait(i));
        }
    }

    /// The query bounding write `i`'s wait for the data lock, if any.
    fn wait(&self, i: u64) -> &'static str {
        // One write in ten gives up after 50 ms of waiting; with a
        // large data file (a data lock of seconds), every other
        // write gives up after a second, as an impatient client.
        if self.big && i % 2 == 1 {
            "?wait_ms=1000"
        } else if i.is_multiple_of(10) {
            "?wait_ms=50"
        } else {
            ""
        }
    }

    /// Uploads file `i`; kept in the stats once acknowledged.
    fn upload(&self, client: &ureq::Agent, i: u64) {
        let (url, tag, stats) = (&self.url, &self.tag, &self.stats);
        let name = format!("{tag}-{i}.txt");
        let content = format!("uploaded {tag} {i}\n").repeat(20);
        if let Ok(r) = client
            .post(format!("{url}/files/{name}"))
            .send(content.as_bytes())
            && r.status().as_u16() == 201
        {
            stats.files.lock().map(|mut f| f.insert(name, content)).ok();
        }
    }

    /// Writes the note `body` (`wait` its query); acknowledged, cancelled
    /// by its wait, or an error.
    fn write(&self, client: &ureq::Agent, body: String, wait: &str) {
        let (url, stats) = (&self.url, &self.stats);
        match client
            .post(format!("{url}/notes{wait}"))
            .send(body.as_bytes())
        {
            Ok(mut r) if r.status().as_u16() == 201 => {
                let v: serde_json::Value =
                    serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default())
                        .unwrap_or_default();
                if let Some(id) = v["id"].as_u64() {
                    stats.acked.lock().map(|mut a| a.insert(id, body)).ok();
                }
                let waited = v["waited_ms"].as_u64().unwrap_or(0);
                stats.max_wait_ms.fetch_max(waited, Ordering::Relaxed);
                stats.waits.lock().map(|mut w| w.push(waited as f64)).ok();
            }
            Ok(r) if r.status().as_u16() == 409 => {
                stats.cancelled.fetch_add(1, Ordering::Relaxed);
                stats
                    .cancelled_bodies
                    .lock()
                    .map(|mut c| c.insert(body))
                    .ok();
            }
            _ => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Reader `r` of [`load`]: reads acknowledged notes until `deadline`,
/// each read's time filed as during a backup or outside one.
fn read_notes(url: &str, stats: &Stats, backing_up: &AtomicBool, r: usize, deadline: Instant) {
    let client = agent();
    let mut n = r as u64;
    while Instant::now() < deadline {
        n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let max = stats
            .acked
            .lock()
            .map(|a| a.keys().next_back().copied().unwrap_or(1))
            .unwrap_or(1);
        let id = 1 + (n >> 33) % max.max(1);
        let during = backing_up.load(Ordering::Relaxed);
        let t = Instant::now();
        let ok = client.get(format!("{url}/notes/{id}")).call().is_ok();
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if ok {
            let samples = if during || backing_up.load(Ordering::Relaxed) {
                &stats.reads_during
            } else {
                &stats.reads_outside
            };
            samples.lock().map(|mut s| s.push(ms)).ok();
        } else {
            stats.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Remote backups every three seconds until `deadline`, on top of the schedule.
fn request_backups(server: &Server, deadline: Instant) {
    while Instant::now() + Duration::from_secs(3) < deadline {
        std::thread::sleep(Duration::from_secs(3));
        let _ = agent()
            .post(format!("{}/v1/backup", server.url))
            .header("Authorization", format!("Bearer {}", server.token))
            .send_empty();
    }
}

/// `mib` notes of 1 MiB each, through the API as any write (logged, then
/// applied, then acknowledged): a data file of that size.
fn pad(server: &Server, stats: &Stats, mib: u64) -> Result<()> {
    let client = agent();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..mib {
        // Letters: text that zstd shrinks to about 60%, as real data does.
        let body: String = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        let mut r = client
            .post(format!("{}/notes", server.url))
            .send(body.as_bytes())?;
        if r.status().as_u16() != 201 {
            bail!("a padding note was refused ({})", r.status());
        }
        let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string()?)?;
        let id = v["id"].as_u64().context("a padding note without id")?;
        stats.padding.lock().map(|mut p| p.insert(id)).ok();
    }
    Ok(())
}

/// Asks for a backup and waits until the history holds a successful one.
fn first_backup(server: &Server) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        let _ = agent()
            .post(format!("{}/v1/backup", server.url))
            .header("Authorization", format!("Bearer {}", server.token))
            .send_empty();
        std::thread::sleep(Duration::from_secs(2));
        let mut r = agent()
            .get(format!("{}/v1/history", server.url))
            .header("Authorization", format!("Bearer {}", server.token))
            .call()?;
        let text = r.body_mut().read_to_string()?;
        if text.contains("\"status\": 0") || text.contains("\"status\":0") {
            return Ok(());
        }
    }
    bail!("no backup of the padded data succeeded within 10 minutes")
}

/// After the load: every note up to the highest acknowledged id is an
/// acknowledged write or padding (ids are given under the lock, so a
/// cancelled write takes none), and no cancelled write's body is there.
/// Returns how many notes broke that.
fn cancelled_applied(server: &Server, stats: &Stats) -> Result<usize> {
    let acked = stats.acked.lock().map(|a| a.clone()).unwrap_or_default();
    let padding = stats.padding.lock().map(|p| p.clone()).unwrap_or_default();
    let cancelled = stats
        .cancelled_bodies
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    let top = acked.keys().next_back().copied().unwrap_or(0) + 50;
    let client = agent();
    let mut bad = 0;
    for id in 1..=top {
        if padding.contains(&id) || acked.contains_key(&id) {
            continue;
        }
        let mut r = client.get(format!("{}/notes/{id}", server.url)).call()?;
        if r.status().as_u16() == 404 {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string()?).unwrap_or_default();
        let body = v["body"].as_str().unwrap_or_default();
        eprintln!(
            "note {id} was never acknowledged{}",
            if cancelled.contains(body) {
                ", and its write was cancelled"
            } else {
                ""
            }
        );
        bad += 1;
    }
    Ok(bad)
}

/// Every acknowledged note must read back with its body.
fn check(server: &Server, stats: &Stats) -> Result<(usize, usize)> {
    let acked = stats.acked.lock().map(|a| a.clone()).unwrap_or_default();
    let mut lost = 0;
    // One agent: its connection is kept alive across the checks.
    let client = agent();
    for (id, body) in &acked {
        let mut r = client.get(format!("{}/notes/{id}", server.url)).call()?;
        let v: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string()?).unwrap_or_default();
        if v["body"].as_str() != Some(body) {
            lost += 1;
        }
    }
    let files = stats.files.lock().map(|f| f.clone()).unwrap_or_default();
    for (name, content) in &files {
        let mut r = client.get(format!("{}/files/{name}", server.url)).call()?;
        if r.body_mut().read_to_string().ok().as_deref() != Some(content.as_str()) {
            lost += 1;
        }
    }
    Ok((acked.len() + files.len(), lost))
}

pub(crate) fn run(o: &Options) -> Result<()> {
    let bin = build(o)?;
    let root = repo_root().join(format!("target/e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let app = make_app(o, &root)?;
    let log = root.join("notes-server.log");
    let stats = Arc::new(Stats::default());

    let point_root = root.join("point-in-time");
    let recovered = crate::e2e_point::run(&bin, &point_root)
        .with_context(|| format!("point-in-time recovery (logs in {})", point_root.display()))?;
    let rehearsal_root = root.join("rehearsal");
    let rehearsed = crate::e2e_rehearsal::run(&bin, &rehearsal_root)
        .with_context(|| format!("restore rehearsals (logs in {})", rehearsal_root.display()))?;

    eprintln!(
        "load: {} s, {} writers, {} readers",
        o.seconds, o.writers, o.readers
    );
    let server = start(&bin, &app, &log)?;
    if o.data_mib > 0 {
        pad_and_back_up(&server, &stats, o.data_mib)?;
    }
    load(&server, &stats, o, Duration::from_secs(o.seconds), "load")?;
    let applied_cancelled = cancelled_applied(&server, &stats)?;
    let host = Host {
        bin: &bin,
        app: &app,
        log: &log,
    };
    let (server, cycles) = kill_cycles(&host, server, &stats, o)?;
    stop(server)?;

    let backups = root.join("Backups");
    let archives = verify_archives(&backups)?;
    let history = HistoryFigures::read(&backups);
    let data_mib = std::fs::metadata(app.join("Data/Notes.4DD")).map_or(0, |m| m.len() >> 20);
    let findings = Findings {
        stats: &stats,
        recovered,
        rehearsed,
        cycles,
        applied_cancelled,
        archives,
        history,
        data_mib,
    };
    write_table(o, &findings);
    let _ = std::fs::remove_dir_all(&root);
    if findings.cycles.worst_lost > 0
        || !findings.archives.bad.is_empty()
        || findings.applied_cancelled > 0
    {
        bail!("acknowledged writes were lost, cancelled writes applied, or archives are damaged");
    }
    Ok(())
}

/// Builds notes-server (release, or the dev profile with `--dev`); its binary.
fn build(o: &Options) -> Result<PathBuf> {
    Ok(if o.dev {
        cargo(&["build", "--quiet", "-p", "notes-server"])?;
        repo_root().join("target/debug/notes-server")
    } else {
        cargo(&["build", "--release", "--quiet", "-p", "notes-server"])?;
        repo_root().join("target/release/notes-server")
    })
}

/// The app folder `ROOT/App`, with settings that attach its uploads and
/// schedule a backup during the load; its path.
fn make_app(o: &Options, root: &Path) -> Result<PathBuf> {
    let app = root.join("App");
    std::fs::create_dir_all(app.join("Data"))?;
    std::fs::create_dir_all(app.join("Settings"))?;
    // Hourly on a grid that puts a slot 20 s from now: the schedule fires during the load.
    let soon = jiff::tz::TimeZone::system()
        .to_datetime(jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_secs(20))?);
    let mut s = sauve_settings::Settings::default();
    // With a large data file, two sets: every backup copies all of it.
    s.advanced.set_number.value = if o.data_mib > 0 { 2 } else { 1000 };
    s.general.includes_files = vec!["./Data/Uploads/".to_owned()];
    s.scheduler.frequency = sauve_settings::Frequency::Hourly;
    s.scheduler.hourly.every = 1;
    s.scheduler.hourly.starting_at = sauve_settings::TimeOfDay::new(
        0,
        u32::try_from(soon.minute()).unwrap_or(0),
        u32::try_from(soon.second()).unwrap_or(0),
    )
    .context("time of day")?;
    sauve_settings::create_file(
        &app.join("Settings/backup.4DSettings"),
        &sauve_settings::SettingsDoc::new(s),
    )?;
    Ok(app)
}

/// `--data-mib`: the data file padded, then a first set of it, as any app
/// in service has, before the load and the kills.
fn pad_and_back_up(server: &Server, stats: &Stats, mib: u64) -> Result<()> {
    let t = Instant::now();
    pad(server, stats, mib)?;
    eprintln!(
        "padded the data file with {} MiB in {:.0} s",
        mib,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    first_backup(server)?;
    eprintln!(
        "first backup of the padded data in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The notes-server binary, its app folder, and the log its output goes to.
struct Host<'a> {
    bin: &'a Path,
    app: &'a Path,
    log: &'a Path,
}

/// What the kill cycles found.
struct Cycles {
    /// Acknowledged writes checked after the last recovery.
    checked: usize,
    /// The most acknowledged writes any cycle lost.
    worst_lost: usize,
}

/// `--cycles` times: a burst of writes, SIGKILL while a backup runs, the
/// data file damaged, a restart, every acknowledged write checked. Returns
/// the server of the last restart.
fn kill_cycles(
    host: &Host,
    mut server: Server,
    stats: &Arc<Stats>,
    o: &Options,
) -> Result<(Server, Cycles)> {
    let mut worst_lost = 0;
    let mut checked = 0;
    for cycle in 1..=o.cycles {
        kill_during_backup(&mut server, stats, o, cycle)?;
        damage_data(host.app)?;
        server = start(host.bin, host.app, host.log)?;
        let (n, lost) = check(&server, stats)?;
        checked = n;
        worst_lost = worst_lost.max(lost);
        eprintln!(
            "cycle {cycle}: killed during a backup, data damaged, restarted: {n} acknowledged writes checked, {lost} lost"
        );
    }
    Ok((
        server,
        Cycles {
            checked,
            worst_lost,
        },
    ))
}

/// A burst of writes, then SIGKILL while a backup runs.
fn kill_during_backup(
    server: &mut Server,
    stats: &Arc<Stats>,
    o: &Options,
    cycle: u32,
) -> Result<()> {
    load(
        server,
        stats,
        &Options {
            writers: o.writers,
            readers: 0,
            ..*o
        },
        Duration::from_millis(800),
        &format!("c{cycle}"),
    )?;
    let _ = agent()
        .post(format!("{}/v1/backup", server.url))
        .header("Authorization", format!("Bearer {}", server.token))
        .send_empty();
    std::thread::sleep(Duration::from_millis(5));
    server.child.kill()?;
    let _ = server.child.wait();
    Ok(())
}

/// Damages the data file: its first page overwritten.
fn damage_data(app: &Path) -> Result<()> {
    let data = app.join("Data/Notes.4DD");
    let mut bytes = std::fs::read(&data)?;
    for b in bytes.iter_mut().take(100) {
        *b = 0xEE;
    }
    std::fs::write(&data, bytes)?;
    Ok(())
}

/// The sets and log backups in the destination, and those that do not verify.
struct Archives {
    count: usize,
    /// `NAME: ERROR` of each that does not verify.
    bad: Vec<String>,
}

/// Every archive must verify.
fn verify_archives(backups: &Path) -> Result<Archives> {
    let mut count = 0;
    let mut bad = Vec::new();
    let listed = std::fs::read_dir(backups)
        .with_context(|| format!("no backup folder {}: no backup ran", backups.display()))?;
    for e in listed.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".4BK") || name.ends_with(".4BL") {
            count += 1;
            if let Err(err) = sauve_archive::verify(&e.path(), &mut sauve_archive::NoProgress) {
                bad.push(format!("{name}: {err}"));
            }
        }
    }
    Ok(Archives { count, bad })
}

/// What the backup history says of the run.
struct HistoryFigures {
    /// Backups the schedule started.
    scheduled: usize,
    /// Backups a remote request started.
    remote: usize,
    /// The longest data lock window, ms.
    max_lock: u64,
}

impl HistoryFigures {
    /// Reads `backupHistory.json` in `backups` (none: zeros).
    fn read(backups: &Path) -> HistoryFigures {
        let history =
            std::fs::read_to_string(backups.join("backupHistory.json")).unwrap_or_default();
        let scheduled = history.matches("\"trigger\": \"scheduled\"").count();
        let remote = history.matches("\"trigger\": \"remote\"").count();
        let max_lock = history
            .split("\"data\": ")
            .skip(1)
            .filter_map(|s| {
                s.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0);
        HistoryFigures {
            scheduled,
            remote,
            max_lock,
        }
    }
}

/// Everything the table reports.
struct Findings<'a> {
    stats: &'a Stats,
    recovered: crate::e2e_point::Recovered,
    rehearsed: crate::e2e_rehearsal::Rehearsed,
    cycles: Cycles,
    /// Notes found applied though never acknowledged.
    applied_cancelled: usize,
    archives: Archives,
    history: HistoryFigures,
    /// The data file's size at the end, MiB.
    data_mib: u64,
}

/// The table: its title, then what became of the writes, then the reads,
/// the backups and the archives.
fn write_table(o: &Options, f: &Findings) {
    println!(
        "## cargo xtask e2e --seconds {} --cycles {}{}{}",
        o.seconds,
        o.cycles,
        if o.data_mib > 0 {
            format!(" --data-mib {}", o.data_mib)
        } else {
            String::new()
        },
        if o.dev {
            " --dev (a dev build: not the release figures)"
        } else {
            ""
        }
    );
    println!();
    println!("| measure | value | target |");
    println!("|---|---:|---|");
    write_writes_rows(o, f);
    write_reads_and_backups_rows(f);
}

/// The rows of what became of the writes: kept, lost, cancelled, waited.
fn write_writes_rows(o: &Options, f: &Findings) {
    let (stats, checked) = (f.stats, f.cycles.checked);
    println!(
        "| acknowledged writes (notes and uploaded files) checked after the last recovery | {checked} | |"
    );
    println!(
        "| acknowledged writes lost (worst cycle) | {} | 0 |",
        f.cycles.worst_lost
    );
    println!("| kill -9 and recover cycles | {} | 20 |", o.cycles);
    println!(
        "| notes back after `notes-server restore --until` one second before a mistaken delete (then a restart, a write, an automatic restore) | {} | all, none written after |",
        f.recovered.notes
    );
    println!(
        "| `notes-server restore --until` (the newer of 2 small sets, then 5 log records), s | {:.2} | |",
        f.recovered.restore.as_secs_f64()
    );
    println!(
        "| writes cancelled by their client (-9976) | {} | |",
        stats.cancelled.load(Ordering::Relaxed)
    );
    println!(
        "| writes found applied though never acknowledged (cancelled included) | {} | 0 |",
        f.applied_cancelled
    );
    let r = &f.rehearsed;
    println!(
        "| notes a restore rehearsal proved (set 1 and its log backup) / notes acknowledged | {} / {} | equal |",
        r.notes.0, r.notes.1
    );
    println!(
        "| rehearsal's restore and integration (400 notes of 64 KiB, then 100), ms | {} | |",
        r.restore_ms
    );
    println!(
        "| read p99 while rehearsals run (low priority, max_mib_s 8) / idle, ms ({} reads during) | {:.2} / {:.2} ({:.2}x) | ≤ 1.5x |",
        r.during_reads,
        r.during_p99,
        r.idle_p99,
        r.during_p99 / r.idle_p99
    );
    println!(
        "| a rehearsal of a set damaged since fails, alerts and names it | {} | yes |",
        r.failure
    );
    println!("| data file, MiB | {} | |", f.data_mib);
    // The writes that waited at all (most never meet a backup's lock).
    let waited = Mutex::new(
        stats
            .waits
            .lock()
            .map(|w| {
                w.iter()
                    .copied()
                    .filter(|&ms| ms > 0.0)
                    .collect::<Vec<f64>>()
            })
            .unwrap_or_default(),
    );
    let waited_count = waited.lock().map_or(0, |w| w.len());
    println!(
        "| acknowledged writes that waited for the data lock: count, p50 / p99, ms | {waited_count}: {:.0} / {:.0} | |",
        p(&waited, 0.5),
        p(&waited, 0.99)
    );
    println!(
        "| other errors (requests to a killed server included) | {} | |",
        stats.errors.load(Ordering::Relaxed)
    );
}

/// The rows of the backups, the reads during and outside them, the
/// writers' waits and the archives; then each bad archive.
fn write_reads_and_backups_rows(f: &Findings) {
    let stats = f.stats;
    let HistoryFigures {
        scheduled,
        remote,
        max_lock,
    } = f.history;
    let during99 = p(&stats.reads_during, 0.99);
    let outside99 = p(&stats.reads_outside, 0.99);
    let max_wait = stats.max_wait_ms.load(Ordering::Relaxed);
    println!("| backups: scheduled / remote (in the history) | {scheduled} / {remote} | |");
    println!("| read p99 during backups, ms | {during99:.2} | ≤ 2x outside |");
    println!("| read p99 outside backups, ms | {outside99:.2} | |");
    println!(
        "| read p50 during / outside, ms | {:.2} / {:.2} | |",
        p(&stats.reads_during, 0.5),
        p(&stats.reads_outside, 0.5)
    );
    println!("| longest writer wait, ms | {max_wait} | ≤ longest data lock + 100 |");
    println!("| longest data lock window, ms | {max_lock} | |");
    println!(
        "| archives verified | {} ({} bad) | all sound |",
        f.archives.count,
        f.archives.bad.len()
    );
    for b in &f.archives.bad {
        println!("bad archive: {b}");
    }
}
