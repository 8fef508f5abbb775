//! `cargo xtask test`: the whole test suite on a machine that has only the
//! Rust toolchain. The tests drive real parts (a browser, an SMTP server,
//! an S3 server, the age CLI, GNU tar and zstd, an XFS image, git, kill):
//! this task finds which of them are missing, says what it will install and
//! for which tests before it installs anything, installs them (Debian
//! packages with apt-get as root or through `sudo -n`, the SMTP server with
//! pip, cargo-nextest and Garage with `cargo install`, each pinned), then
//! runs `cargo nextest run --workspace`. Where something cannot be
//! installed (not a Debian-like system, no root, no network) it names what
//! is missing, the tests that cannot run and why, and fails: nothing is
//! skipped in silence. Debian's package names are used only where
//! `/etc/os-release` says the system is Debian or like it; elsewhere what is
//! missing must be installed by hand. `SAUVE_GARAGE`, which points the
//! tests at another Garage binary, is checked first: it must be an
//! executable Garage of the pinned version.
//!
//! `.ci/run` calls it too, so CI and a new contributor run the same thing
//! (`tests/tests/hygiene.rs` checks that README, `.ci/run` and
//! [`crate::ci_steps`] agree).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::workspace::repo_root;

/// Options of `cargo xtask test`.
#[derive(clap::Args, Debug)]
pub(crate) struct Options {
    /// Only say what is missing and how it would be installed; install
    /// nothing and run nothing (exit 1 when something is missing)
    #[arg(long, conflicts_with = "setup_only")]
    check: bool,
    /// Install what is missing, then stop without running the tests
    #[arg(long)]
    setup_only: bool,
    /// More arguments for `cargo nextest run --workspace --locked`
    /// (a filter, `--no-fail-fast`, …), after `--`
    #[arg(last = true, value_name = "NEXTEST ARGS")]
    nextest: Vec<String>,
}

/// How a missing part is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Install {
    /// Debian packages, with apt-get.
    Apt(&'static [&'static str]),
    /// A Python package pinned, with pip.
    Pip(&'static str),
    /// A crate's binaries, with `cargo install` and these arguments.
    Cargo(&'static [&'static str]),
    /// Nothing to install: the suite must run as root.
    Root,
}

impl Install {
    /// How it is installed on this system: Debian's package names only on
    /// a Debian-like one.
    fn describe(self, debian: bool) -> String {
        match self {
            Install::Apt(p) if debian => format!("apt-get install {}", p.join(" ")),
            Install::Apt(_) => "by hand (not a Debian-like system)".to_owned(),
            Install::Pip(p) => format!("python3 -m pip install {p}"),
            Install::Cargo(a) => format!("cargo install {}", a.join(" ")),
            Install::Root => "running `cargo xtask test` as root".to_owned(),
        }
    }
}

/// A part the tests need.
struct Part {
    /// What it is, as a person calls it.
    name: &'static str,
    /// The commands it gives the tests, found on PATH.
    commands: &'static [&'static str],
    /// Whether it is here, where finding its commands is not enough; if
    /// not, what is missing (`python3 cannot import aiosmtpd`).
    check: Option<fn() -> Result<(), String>>,
    install: Install,
    /// The tests that need it, and what for.
    needed_by: &'static str,
}

impl Part {
    /// Whether it is here; if not, what is missing (`not found: zstd`).
    fn check(&self) -> Result<(), String> {
        match self.check {
            Some(check) => check(),
            None => commands(self.commands),
        }
    }
}

/// The cargo-nextest installed where there is none, pinned like every
/// other tool the suite installs.
const NEXTEST_VERSION: &str = "0.9.143";
const NEXTEST: &[&str] = &["--locked", "cargo-nextest", "--version", NEXTEST_VERSION];

/// The Garage the tests start (one version, the tests' own).
const GARAGE_VERSION: &str = sauve_tests::garage::VERSION;
const GARAGE: &[&str] = &[
    "garage",
    "--version",
    GARAGE_VERSION,
    "--locked",
    "--no-default-features",
    "--features",
    "bundled-libs,lmdb,sqlite",
];

/// Every part, in the order they are checked.
fn parts() -> Vec<Part> {
    vec![
        Part {
            name: "cargo-nextest",
            commands: &[],
            check: Some(|| {
                runs("cargo", &["nextest", "--version"])
                    .then_some(())
                    .ok_or_else(|| "`cargo nextest --version` does not run".to_owned())
            }),
            install: Install::Cargo(NEXTEST),
            needed_by: "every test: the suite runs under nextest (a process per test)",
        },
        Part {
            name: "a shell and the base commands",
            // The tests' (hooks and alert commands run through sh, named
            // pipes, free space, a process that is gone), .ci/run's and
            // this task's own.
            commands: &[
                "sh", "bash", "env", "cat", "true", "id", "df", "mkfifo", "mktemp", "timeout",
                "awk", "tail", "head", "grep", "rm", "dirname",
            ],
            check: None,
            install: Install::Apt(&["dash", "bash", "coreutils", "mawk", "grep"]),
            needed_by: "the hooks and alert commands the tests run through sh, the completion scripts bash parses (crates/cli/tests/kit.rs), the named pipes and free space of the file and admission tests; .ci/run bounds its steps with timeout and prints the free space with df, tail and awk",
        },
        Part {
            name: "kill",
            commands: &["kill"],
            check: None,
            install: Install::Apt(&["procps"]),
            needed_by: "the tests that stop sauve, its server or a test host with a signal (crates/cli/tests/binary.rs, daemon.rs, tests/tests/stop.rs, store_destination.rs, the browser tests) and `cargo xtask e2e`, which .ci/run runs",
        },
        Part {
            name: "git",
            commands: &["git"],
            check: None,
            install: Install::Apt(&["git"]),
            needed_by: "tests/tests/hygiene.rs checks the files git tracks (`git ls-files`)",
        },
        Part {
            name: "tar and zstd",
            commands: &["tar", "zstd"],
            check: None,
            install: Install::Apt(&["tar", "zstd"]),
            needed_by: "crates/archive/tests/interop.rs: sets are extracted with `zstd -d | tar -x`, without sauve",
        },
        Part {
            name: "openssl",
            commands: &["openssl"],
            check: None,
            install: Install::Apt(&["openssl"]),
            needed_by: "the email alert tests (tests/tests/alerts.rs, crates/settings/tests/own.rs): a CA and a server certificate for STARTTLS",
        },
        Part {
            name: "age and age-keygen",
            commands: &["age", "age-keygen"],
            check: None,
            install: Install::Apt(&["age"]),
            needed_by: "tests/tests/offsite.rs: encrypted off-site copies are decrypted with the age CLI",
        },
        Part {
            name: "mkfs.xfs, mount and umount",
            commands: &["mkfs.xfs", "mount", "umount"],
            check: None,
            install: Install::Apt(&["xfsprogs", "mount"]),
            needed_by: "tests/tests/filesystems.rs: a loop-mounted XFS image, whose files the engine clones, and small tmpfs file systems",
        },
        Part {
            name: "chromium and chromedriver, in /usr/bin",
            commands: &[],
            check: Some(|| files(&["/usr/bin/chromium", "/usr/bin/chromedriver"])),
            install: Install::Apt(&["chromium", "chromium-driver"]),
            needed_by: "the browser tests (tests/tests/browser.rs, store_destination.rs) drive the page in a real headless Chromium",
        },
        Part {
            name: "the aiosmtpd SMTP server",
            commands: &["python3"],
            check: Some(|| {
                runs("python3", &["-c", "import aiosmtpd"])
                    .then_some(())
                    .ok_or_else(|| "python3 cannot import aiosmtpd".to_owned())
            }),
            install: Install::Pip("aiosmtpd==1.4.6"),
            needed_by: "the email alert tests (tests/tests/alerts.rs, crates/settings/tests/own.rs) deliver to a real SMTP server",
        },
        Part {
            name: "zsh, fish and groff",
            commands: &["zsh", "fish", "groff"],
            check: None,
            install: Install::Apt(&["zsh", "fish", "groff-base"]),
            needed_by: "crates/cli/tests/kit.rs: the completion scripts are parsed by zsh and fish, the man pages rendered by groff",
        },
        Part {
            name: "root",
            commands: &[],
            check: Some(|| {
                is_root()
                    .then_some(())
                    .ok_or_else(|| "not running as root".to_owned())
            }),
            install: Install::Root,
            needed_by: "tests/tests/filesystems.rs mounts small tmpfs file systems and a loop-mounted XFS image (a full disk, a read-only remount, cloned files); without root they would only say they skip",
        },
        Part {
            name: "Garage 2.5.0",
            commands: &[],
            check: Some(check_garage),
            install: Install::Cargo(GARAGE),
            needed_by: "the store, off-site and bucket tests (tests/tests/store.rs, offsite.rs, store_destination.rs, auto_restore.rs, processes.rs, log_show.rs) start a real S3 server; about 8 minutes to build, once",
        },
    ]
}

/// Whether `program args…` runs and succeeds.
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `program` is on PATH, or in the sbin folders a user's PATH may
/// lack (mkfs.xfs is in /usr/sbin).
fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .any(|d| d.join(program).is_file())
}

/// Whether every one of `programs` is [`on_path`]; if not, those missing.
fn commands(programs: &[&str]) -> Result<(), String> {
    missing_of(programs, on_path)
}

/// Whether every one of `paths` is a file; if not, those missing.
fn files(paths: &[&str]) -> Result<(), String> {
    missing_of(paths, |p| Path::new(p).is_file())
}

fn missing_of(names: &[&str], here: impl Fn(&str) -> bool) -> Result<(), String> {
    let missing: Vec<&str> = names.iter().copied().filter(|n| !here(n)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("not found: {}", missing.join(", ")))
    }
}

/// Whether the Garage the tests would start is here and of
/// [`GARAGE_VERSION`]: `$SAUVE_GARAGE` (checked by [`check_sauve_garage`]
/// before anything else), or `garage` on PATH or in ~/.cargo/bin, which is
/// where `cargo install` puts it.
fn check_garage() -> Result<(), String> {
    if let Some(p) = std::env::var_os("SAUVE_GARAGE") {
        let path = PathBuf::from(p);
        return judge_garage(&path, &inspect_garage(&path), GARAGE_VERSION);
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    let Some(path) = dirs
        .into_iter()
        .map(|d| d.join("garage"))
        .find(|p| p.is_file())
    else {
        return Err("not found: garage (on PATH or in ~/.cargo/bin)".to_owned());
    };
    judge_garage(&path, &inspect_garage(&path), GARAGE_VERSION)
}

/// `SAUVE_GARAGE`, when set, names the Garage binary every test starts
/// instead of the one on PATH: it must be there, executable, and of
/// [`GARAGE_VERSION`], or nothing would run as the tests expect.
fn check_sauve_garage() -> Result<()> {
    let Some(p) = std::env::var_os("SAUVE_GARAGE") else {
        return Ok(());
    };
    let path = PathBuf::from(p);
    if let Err(why) = judge_garage(&path, &inspect_garage(&path), GARAGE_VERSION) {
        bail!("{}", sauve_garage_refused(&path, &why, GARAGE_VERSION));
    }
    Ok(())
}

/// The message for a `SAUVE_GARAGE` that cannot be used.
fn sauve_garage_refused(path: &Path, why: &str, pinned: &str) -> String {
    format!(
        "SAUVE_GARAGE={}: {why} (accepted: the absolute path of an executable Garage {pinned}, whose `garage --version` says {pinned}, such as `cargo install {}` makes; or SAUVE_GARAGE unset, for the garage on PATH or in ~/.cargo/bin, which `cargo xtask test` installs where missing)",
        path.display(),
        GARAGE.join(" ")
    )
}

/// What a Garage binary turned out to be.
#[derive(Debug, PartialEq, Eq)]
enum GarageFile {
    /// A relative path, which each test would resolve in its own crate's
    /// folder.
    Relative,
    /// Nothing at that path.
    Missing,
    /// Something that is not a file (a folder).
    NotAFile,
    /// A file without execute permission (its mode).
    NotExecutable(u32),
    /// It could not be run (why).
    DidNotRun(String),
    /// What `garage --version` printed, and `garage --help` after it when
    /// that showed no version.
    Printed(String),
}

/// Looks at `path` and runs it for its version.
fn inspect_garage(path: &Path) -> GarageFile {
    use std::os::unix::fs::PermissionsExt;
    if path.is_relative() {
        return GarageFile::Relative;
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return GarageFile::Missing,
        Err(e) => return GarageFile::DidNotRun(e.to_string()),
    };
    if !meta.is_file() {
        return GarageFile::NotAFile;
    }
    let mode = meta.permissions().mode();
    if mode & 0o111 == 0 {
        return GarageFile::NotExecutable(mode & 0o7777);
    }
    let mut printed = String::new();
    for arg in ["--version", "--help"] {
        match Command::new(path).arg(arg).output() {
            Ok(out) => {
                printed.push_str(&String::from_utf8_lossy(&out.stdout));
                printed.push_str(&String::from_utf8_lossy(&out.stderr));
            }
            Err(e) => return GarageFile::DidNotRun(e.to_string()),
        }
        if garage_version(&printed).is_some() {
            break;
        }
    }
    GarageFile::Printed(printed)
}

/// Whether a Garage binary at `path` is one of `pinned`; if not, what is
/// wrong with it.
fn judge_garage(path: &Path, file: &GarageFile, pinned: &str) -> Result<(), String> {
    let shown = path.display();
    match file {
        GarageFile::Relative => Err(format!(
            "{shown} is a relative path, which each test would look for in its own crate's folder"
        )),
        GarageFile::Missing => Err(format!("{shown} does not exist")),
        GarageFile::NotAFile => Err(format!("{shown} is not a file")),
        GarageFile::NotExecutable(mode) => {
            Err(format!("{shown} is not executable (mode {mode:04o})"))
        }
        GarageFile::DidNotRun(why) => Err(format!("{shown} cannot be run: {why}")),
        GarageFile::Printed(text) => match garage_version(text) {
            Some(v) if v == pinned => Ok(()),
            Some(v) => Err(format!("{shown} is Garage {v}, not {pinned}")),
            None => {
                let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                Err(format!(
                    "{shown} does not say it is Garage: `--version` and `--help` printed {first:?}"
                ))
            }
        },
    }
}

/// The version in what `garage --version` (or the first line of `garage
/// --help`) prints: `garage v2.1.0 [features: …]` for a release,
/// `garage cargo:2.5.0 [features: …]` for a `cargo install`.
fn garage_version(printed: &str) -> Option<&str> {
    printed.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next() != Some("garage") {
            return None;
        }
        let word = words.next()?;
        let v = word
            .strip_prefix("cargo:")
            .or_else(|| word.strip_prefix('v'))
            .unwrap_or(word);
        v.starts_with(|c: char| c.is_ascii_digit()).then_some(v)
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// How Debian packages can be installed here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Privilege {
    /// As root.
    Root,
    /// Through `sudo -n` (no password asked).
    Sudo,
    /// Not at all.
    None,
}

fn privilege() -> Privilege {
    if is_root() {
        Privilege::Root
    } else if on_path("sudo") && runs("sudo", &["-n", "true"]) {
        Privilege::Sudo
    } else {
        Privilege::None
    }
}

/// What `/etc/os-release` says of the system (os-release(5)): its `ID` and
/// `ID_LIKE`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct OsRelease {
    id: Option<String>,
    id_like: Vec<String>,
}

impl OsRelease {
    /// The system's, from `/etc/os-release` or `/usr/lib/os-release`; empty
    /// when neither can be read.
    fn here() -> OsRelease {
        ["/etc/os-release", "/usr/lib/os-release"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|text| OsRelease::parse(&text))
            .unwrap_or_default()
    }

    /// Reads `KEY=value` lines, the value bare or quoted; comments and
    /// other keys are passed over.
    fn parse(text: &str) -> OsRelease {
        let mut os = OsRelease::default();
        for line in text.lines() {
            let Some((key, value)) = line.trim().split_once('=') else {
                continue;
            };
            let value = unquote(value.trim());
            match key.trim() {
                "ID" => os.id = Some(value),
                "ID_LIKE" => os.id_like = value.split_whitespace().map(str::to_owned).collect(),
                _ => {}
            }
        }
        os
    }

    /// Debian, or a system that says it is like Debian (Ubuntu, Mint, …):
    /// where Debian's package names mean something.
    fn is_debian_like(&self) -> bool {
        self.id.as_deref() == Some("debian") || self.id_like.iter().any(|l| l == "debian")
    }

    /// What it says, for messages.
    fn describe(&self) -> String {
        match (&self.id, self.id_like.is_empty()) {
            (None, _) => "no ID in /etc/os-release".to_owned(),
            (Some(id), true) => format!("/etc/os-release says ID={id}"),
            (Some(id), false) => format!(
                "/etc/os-release says ID={id}, ID_LIKE=\"{}\"",
                self.id_like.join(" ")
            ),
        }
    }
}

/// An os-release value without its quotes and backslash escapes.
fn unquote(value: &str) -> String {
    let inner = ['"', '\'']
        .iter()
        .find_map(|&q| value.strip_prefix(q).and_then(|v| v.strip_suffix(q)))
        .unwrap_or(value);
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// What the machine offers to install with.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Machine {
    os: OsRelease,
    privilege: Privilege,
    /// apt-get is on PATH.
    apt: bool,
    /// python3 is on PATH, and has pip.
    python: bool,
    pip: bool,
}

impl Machine {
    fn here() -> Machine {
        let python = on_path("python3");
        Machine {
            os: OsRelease::here(),
            privilege: privilege(),
            apt: on_path("apt-get"),
            python,
            pip: python && runs("python3", &["-m", "pip", "--version"]),
        }
    }

    fn debian(&self) -> bool {
        self.os.is_debian_like()
    }

    /// Whether Debian packages can be installed here.
    fn packages(&self) -> bool {
        self.debian() && self.apt && self.privilege != Privilege::None
    }
}

/// What to do about the missing parts: the installs, in order, or why some
/// cannot be made (and the tests that cannot run).
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    Install(Vec<Install>),
    Cannot(Vec<String>),
}

/// The plan for `missing` parts (name, install, needed by): Debian packages
/// only on a Debian-like system, with apt-get, as root or through sudo; pip
/// needs python3 with pip, or Debian's.
fn plan(missing: &[(&str, Install, &str)], machine: &Machine) -> Plan {
    let mut cannot = Vec::new();
    let mut installs = Vec::new();
    for &(name, install, needed_by) in missing {
        match why_not(install, machine) {
            Some(why) => cannot.push(format!(
                "{name} ({}): {why}. Cannot run: {needed_by}",
                install.describe(machine.debian())
            )),
            None => installs.push(install),
        }
    }
    if cannot.is_empty() {
        Plan::Install(installs)
    } else {
        Plan::Cannot(cannot)
    }
}

/// Why `install` cannot be made on `machine`, if it cannot.
fn why_not(install: Install, machine: &Machine) -> Option<String> {
    let debian = machine.debian();
    Some(match install {
        Install::Apt(_) if !debian => format!(
            "this is not a Debian-like system ({}), where `cargo xtask test` installs no packages: install it by hand",
            machine.os.describe()
        ),
        Install::Apt(_) if !machine.apt => "apt-get is not on this machine".to_owned(),
        Install::Apt(_) if machine.privilege == Privilege::None => {
            "Debian packages need root, or sudo without a password; run `cargo xtask test` as root, or install them yourself".to_owned()
        }
        Install::Pip(_) if machine.python && machine.pip => return None,
        Install::Pip(_) if !debian => format!(
            "python3 with pip is not here, and this is not a Debian-like system ({}): install python3 and pip by hand",
            machine.os.describe()
        ),
        Install::Pip(_) if !machine.packages() && !machine.python => {
            "python3 is not on this machine, and Debian's cannot be installed here".to_owned()
        }
        Install::Pip(_) if !machine.packages() => {
            "python3 has no pip, and Debian's python3-pip cannot be installed here".to_owned()
        }
        Install::Root => "this is not root, and root is not something to install".to_owned(),
        _ => return None,
    })
}

pub(crate) fn main(o: &Options) -> Result<()> {
    // A wrong SAUVE_GARAGE fails every store test after minutes of
    // building: said first, whatever else is missing.
    check_sauve_garage()?;
    // Root is needed to run the file-system tests, not to install (sudo).
    let all: Vec<Part> = parts()
        .into_iter()
        .filter(|p| !(o.setup_only && p.install == Install::Root))
        .collect();
    let missing: Vec<(&Part, String)> = all
        .iter()
        .filter_map(|p| p.check().err().map(|why| (p, why)))
        .collect();
    if missing.is_empty() {
        println!("cargo xtask test: everything the tests need is here");
    } else {
        let machine = Machine::here();
        println!("cargo xtask test: the tests need these, missing here:");
        for (p, why) in &missing {
            println!("  - {}: {}", p.name, p.needed_by);
            println!("    here: {why}");
            println!(
                "    installed with: {}",
                p.install.describe(machine.debian())
            );
        }
        let listed: Vec<(&str, Install, &str)> = missing
            .iter()
            .map(|(p, _)| (p.name, p.install, p.needed_by))
            .collect();
        let installs = match plan(&listed, &machine) {
            Plan::Install(i) => i,
            Plan::Cannot(reasons) => {
                println!();
                for r in &reasons {
                    println!("cannot install {r}");
                }
                bail!(
                    "{} of the parts the tests need cannot be installed here: those tests would fail, so none are run",
                    reasons.len()
                );
            }
        };
        if o.check {
            bail!("{} parts missing (--check installs nothing)", missing.len());
        }
        install(&installs, &machine)?;
        let still: Vec<String> = all
            .iter()
            .filter_map(|p| p.check().err().map(|why| format!("{} ({why})", p.name)))
            .collect();
        if !still.is_empty() {
            bail!("still missing after installing: {}", still.join(", "));
        }
    }
    if o.check || o.setup_only {
        return Ok(());
    }
    let mut args = vec!["nextest", "run", "--workspace", "--locked"];
    args.extend(o.nextest.iter().map(String::as_str));
    println!("cargo {}", args.join(" "));
    // Everything is installed: a test that would skip for want of a tool
    // or a mount fails instead.
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(&args)
        .current_dir(repo_root())
        .env("INSTA_UPDATE", "no")
        .env("SAUVE_TESTS_REQUIRE_ALL", "1")
        .status()?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Installs, saying each command before it runs it.
fn install(installs: &[Install], machine: &Machine) -> Result<()> {
    let mut packages: Vec<&str> = installs
        .iter()
        .filter_map(|i| match i {
            Install::Apt(p) => Some(*p),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    // Python and pip themselves, where the machine has none (a minimal
    // Debian: `plan` allows nothing else).
    let pip = installs.iter().any(|i| matches!(i, Install::Pip(_)));
    if pip && !machine.python {
        println!("no python3 here: Debian's python3 and python3-pip are installed for aiosmtpd");
        packages.extend(["python3", "python3-pip"]);
    } else if pip && !machine.pip {
        println!("python3 has no pip: Debian's python3-pip is installed for it");
        packages.push("python3-pip");
    }
    if !packages.is_empty() {
        // sudo clears the environment: the variable goes through `env`.
        let root = |args: &[&str]| -> Result<()> {
            let mut c = Command::new("env");
            if machine.privilege == Privilege::Sudo {
                c = Command::new("sudo");
                c.args(["-n", "env"]);
            }
            say_and_run(c.arg("DEBIAN_FRONTEND=noninteractive").args(args))
        };
        root(&["apt-get", "update", "-qq"])?;
        root(&[&["apt-get", "install", "-y", "-qq"][..], &packages].concat())?;
    }
    for i in installs {
        match i {
            Install::Apt(_) | Install::Root => {}
            Install::Pip(p) => {
                let mut c = Command::new("python3");
                c.args(["-m", "pip", "install", "--quiet"]);
                if externally_managed() {
                    // Debian's python3 refuses to install beside its own
                    // packages unless told (PEP 668); the SMTP server is a
                    // test tool, pinned.
                    println!(
                        "this python3 is managed by the system (PEP 668): {p} is installed beside its packages"
                    );
                    c.arg("--break-system-packages");
                }
                say_and_run(c.arg(p))?;
            }
            Install::Cargo(args) => {
                let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
                c.arg("install").args(*args);
                say_and_run(&mut c)?;
            }
        }
    }
    Ok(())
}

/// Whether python3's packages belong to the system (PEP 668's marker file).
fn externally_managed() -> bool {
    runs(
        "python3",
        &[
            "-c",
            "import os, sys, sysconfig; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')) else 1)",
        ],
    )
}

fn say_and_run(c: &mut Command) -> Result<()> {
    let shown: Vec<String> = std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    println!("+ {}", shown.join(" "));
    let status = c.status()?;
    if !status.success() {
        bail!("{} failed ({status})", shown.join(" "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const APT: Install = Install::Apt(&["chromium"]);
    const PIP: Install = Install::Pip("aiosmtpd==1.4.6");
    const CARGO: Install = Install::Cargo(GARAGE);

    /// A machine of `os-release` text, reached as `privilege`, with or
    /// without apt-get, python3 and its pip.
    fn machine(os: &str, privilege: Privilege, (apt, python, pip): (bool, bool, bool)) -> Machine {
        Machine {
            os: OsRelease::parse(os),
            privilege,
            apt,
            python,
            pip,
        }
    }

    const DEBIAN: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
    const FEDORA: &str = "NAME=\"Fedora Linux\"\nID=fedora\n";

    fn debian(privilege: Privilege, tools: (bool, bool, bool)) -> Machine {
        machine(DEBIAN, privilege, tools)
    }

    #[test]
    fn as_root_everything_missing_is_installed_in_order() {
        let missing = [
            ("chromium", APT, "browser tests"),
            ("aiosmtpd", PIP, "email tests"),
            ("garage", CARGO, "store tests"),
        ];
        assert_eq!(
            plan(&missing, &debian(Privilege::Root, (true, true, true))),
            Plan::Install(vec![APT, PIP, CARGO])
        );
        assert_eq!(
            plan(&missing, &debian(Privilege::Sudo, (true, true, true))),
            Plan::Install(vec![APT, PIP, CARGO])
        );
    }

    #[test]
    fn without_root_the_tests_that_need_a_package_are_named_and_nothing_runs() {
        let missing = [
            ("chromium", APT, "the browser tests"),
            ("garage", CARGO, "store tests"),
        ];
        let Plan::Cannot(why) = plan(&missing, &debian(Privilege::None, (true, true, true))) else {
            panic!("a package cannot be installed without root");
        };
        assert_eq!(why.len(), 1);
        assert!(
            why[0].starts_with("chromium (apt-get install chromium)"),
            "{}",
            why[0]
        );
        assert!(why[0].contains("need root"), "{}", why[0]);
        assert!(
            why[0].ends_with("Cannot run: the browser tests"),
            "{}",
            why[0]
        );
    }

    #[test]
    fn without_apt_or_python_the_reason_is_named() {
        let missing = [("chromium", APT, "b"), ("aiosmtpd", PIP, "e")];
        let Plan::Cannot(why) = plan(&missing, &debian(Privilege::Root, (false, false, false)))
        else {
            panic!("nothing can be installed");
        };
        assert!(why[0].contains("apt-get is not on this machine"), "{why:?}");
        assert!(why[1].contains("python3 is not on this machine"), "{why:?}");
        // With apt as root, a missing python3 is installed with aiosmtpd.
        assert_eq!(
            plan(
                &missing[1..],
                &debian(Privilege::Root, (true, false, false))
            ),
            Plan::Install(vec![PIP])
        );
        // Nothing missing: nothing to install.
        assert_eq!(
            plan(&[], &debian(Privilege::None, (false, false, false))),
            Plan::Install(vec![])
        );
    }

    #[test]
    fn python_without_pip_is_installable_only_where_debian_packages_are() {
        let missing = [("aiosmtpd", PIP, "email tests")];
        // Its own pip: nothing else is needed, wherever it runs.
        for os in [DEBIAN, FEDORA] {
            assert_eq!(
                plan(&missing, &machine(os, Privilege::None, (false, true, true))),
                Plan::Install(vec![PIP]),
                "{os}"
            );
        }
        // Without pip, Debian's python3-pip needs root.
        assert_eq!(
            plan(&missing, &debian(Privilege::Sudo, (true, true, false))),
            Plan::Install(vec![PIP])
        );
        let Plan::Cannot(why) = plan(&missing, &debian(Privilege::None, (true, true, false)))
        else {
            panic!("python3-pip cannot be installed without root");
        };
        assert!(why[0].contains("python3 has no pip"), "{why:?}");
        let Plan::Cannot(why) = plan(
            &missing,
            &machine(FEDORA, Privilege::Root, (false, true, false)),
        ) else {
            panic!("no Debian packages on Fedora");
        };
        assert!(
            why[0].contains("install python3 and pip by hand"),
            "{why:?}"
        );
    }

    #[test]
    fn without_root_the_file_system_tests_are_named_and_nothing_runs() {
        let missing = [("root", Install::Root, "tests/tests/filesystems.rs")];
        let Plan::Cannot(why) = plan(&missing, &debian(Privilege::Sudo, (true, true, true))) else {
            panic!("root cannot be installed");
        };
        assert!(
            why[0].starts_with("root (running `cargo xtask test` as root)"),
            "{why:?}"
        );
        assert!(
            why[0].ends_with("Cannot run: tests/tests/filesystems.rs"),
            "{why:?}"
        );
    }

    #[test]
    fn debian_and_the_systems_like_it_are_told_from_os_release() {
        for (text, debian_like) in [
            (DEBIAN, true),
            ("ID=ubuntu\nID_LIKE=debian\n", true),
            ("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n", true),
            ("ID='debian'\n", true),
            ("# a comment\n\nID=raspbian\nID_LIKE=debian\n", true),
            (FEDORA, false),
            ("ID=rocky\nID_LIKE=\"rhel centos fedora\"\n", false),
            ("ID=arch\n", false),
            ("ID=alpine\n", false),
            ("ID=debian-derivative\nID_LIKE=\"notdebian\"\n", false),
            ("", false),
        ] {
            assert_eq!(
                OsRelease::parse(text).is_debian_like(),
                debian_like,
                "{text}"
            );
        }
        assert_eq!(
            OsRelease::parse("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n").describe(),
            "/etc/os-release says ID=linuxmint, ID_LIKE=\"ubuntu debian\""
        );
        assert_eq!(OsRelease::parse("").describe(), "no ID in /etc/os-release");
    }

    #[test]
    fn off_debian_the_missing_tools_are_named_for_installing_by_hand_and_nothing_runs() {
        let groff = Install::Apt(&["groff-base"]);
        let missing = [
            ("zsh, fish and groff", groff, "crates/cli/tests/kit.rs"),
            ("Garage 2.5.0", CARGO, "the store tests"),
        ];
        for tools in [(true, true, true), (false, true, true)] {
            let fedora = machine(FEDORA, Privilege::Root, tools);
            let Plan::Cannot(why) = plan(&missing, &fedora) else {
                panic!("no Debian packages on Fedora");
            };
            // Garage is built by cargo, anywhere; the packages are not.
            assert_eq!(why.len(), 1, "{why:?}");
            assert!(
                why[0].starts_with("zsh, fish and groff (by hand (not a Debian-like system))"),
                "{why:?}"
            );
            assert!(why[0].contains("/etc/os-release says ID=fedora"), "{why:?}");
            assert!(why[0].contains("install it by hand"), "{why:?}");
            assert!(
                why[0].ends_with("Cannot run: crates/cli/tests/kit.rs"),
                "{why:?}"
            );
            // Debian's package names mean nothing there.
            assert!(!why[0].contains("groff-base"), "{why:?}");
            assert!(!why[0].contains("apt-get"), "{why:?}");
        }
        assert_eq!(groff.describe(true), "apt-get install groff-base");
    }

    #[test]
    fn garage_says_its_version_as_a_release_or_a_cargo_build() {
        for (printed, version) in [
            (
                "garage cargo:2.5.0 [features: bundled-libs, lmdb, sqlite]\n",
                Some("2.5.0"),
            ),
            (
                "garage v1.0.1 [features: k2v, lmdb, sqlite]\n",
                Some("1.0.1"),
            ),
            ("garage 2.5.0\n", Some("2.5.0")),
            (
                "\ngarage v2.5.0 [features: lmdb]\nUSAGE:\n    garage [OPTIONS]",
                Some("2.5.0"),
            ),
            ("Usage: garage [OPTIONS] <COMMAND>\n", None),
            ("error: unexpected argument '--version'\n", None),
            ("minio version RELEASE.2024\n", None),
            ("", None),
        ] {
            assert_eq!(garage_version(printed), version, "{printed:?}");
        }
    }

    #[test]
    fn a_garage_that_is_not_an_executable_of_the_pinned_version_is_refused_saying_why() {
        let path = Path::new("/opt/garage");
        for (file, expected) in [
            (GarageFile::Missing, Err("/opt/garage does not exist")),
            (
                GarageFile::Relative,
                Err(
                    "/opt/garage is a relative path, which each test would look for in its own crate's folder",
                ),
            ),
            (GarageFile::NotAFile, Err("/opt/garage is not a file")),
            (
                GarageFile::NotExecutable(0o644),
                Err("/opt/garage is not executable (mode 0644)"),
            ),
            (
                GarageFile::DidNotRun("Exec format error (os error 8)".to_owned()),
                Err("/opt/garage cannot be run: Exec format error (os error 8)"),
            ),
            (
                GarageFile::Printed("garage v1.0.1 [features: lmdb]\n".to_owned()),
                Err("/opt/garage is Garage 1.0.1, not 2.5.0"),
            ),
            (
                GarageFile::Printed("Usage: minio [FLAGS]\n".to_owned()),
                Err(
                    "/opt/garage does not say it is Garage: `--version` and `--help` printed \"Usage: minio [FLAGS]\"",
                ),
            ),
            (
                GarageFile::Printed("garage cargo:2.5.0 [features: lmdb]\n".to_owned()),
                Ok(()),
            ),
        ] {
            assert_eq!(
                judge_garage(path, &file, "2.5.0"),
                expected.map_err(str::to_owned),
                "{file:?}"
            );
        }
        let refused = sauve_garage_refused(path, "/opt/garage does not exist", "2.5.0");
        assert!(
            refused.starts_with("SAUVE_GARAGE=/opt/garage: /opt/garage does not exist (accepted: the absolute path of an executable Garage 2.5.0"),
            "{refused}"
        );
        assert!(refused.contains("or SAUVE_GARAGE unset"), "{refused}");
    }

    #[test]
    fn nextest_and_garage_are_installed_at_pinned_versions() {
        assert_eq!(
            Install::Cargo(NEXTEST).describe(true),
            format!("cargo install --locked cargo-nextest --version {NEXTEST_VERSION}")
        );
        for p in parts() {
            if let Install::Cargo(args) = p.install {
                let at = args.iter().position(|a| *a == "--version");
                let version = at.and_then(|i| args.get(i + 1));
                assert!(
                    version.is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit())),
                    "{}: {args:?}",
                    p.name
                );
                assert!(args.contains(&"--locked"), "{}: {args:?}", p.name);
            }
        }
        let garage = parts().into_iter().find(|p| p.install == CARGO);
        assert!(garage.is_some_and(|p| p.name.ends_with(GARAGE_VERSION)));
    }

    #[test]
    fn every_part_says_which_tests_need_it() {
        for p in parts() {
            assert!(p.needed_by.len() > 20, "{}", p.name);
        }
    }

    /// The names in `Command::new("name")` in `text`.
    fn started_by_name(text: &str) -> Vec<&str> {
        text.split("Command::new(\"")
            .skip(1)
            .filter_map(|rest| rest.split_once("\")").map(|(name, _)| name))
            .collect()
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_command_the_tests_start_by_name_is_checked_and_installed() {
        assert_eq!(
            started_by_name(
                r#"a Command::new("kill").arg(x); Command::new(tool); std::process::Command::new("mkfs.xfs")"#
            ),
            ["kill", "mkfs.xfs"]
        );
        let root = repo_root();
        let mut files = Vec::new();
        let crates = std::fs::read_dir(root.join("crates")).unwrap();
        for dir in crates
            .flatten()
            .map(|e| e.path())
            .chain([root.join("tests")])
        {
            rust_files(&dir.join("src"), &mut files);
            rust_files(&dir.join("tests"), &mut files);
        }
        assert!(
            files.len() > 50,
            "{} files under crates/ and tests/",
            files.len()
        );
        let listed: Vec<&str> = parts().iter().flat_map(|p| p.commands).copied().collect();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for name in started_by_name(&text) {
                assert!(
                    listed.contains(&name),
                    "{} runs `{name}`, which no part of `cargo xtask test` checks",
                    file.display()
                );
            }
        }
    }
}
