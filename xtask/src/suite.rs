//! `cargo xtask test`: the whole test suite on a machine that has only the
//! Rust toolchain. The tests drive real parts (a browser, an SMTP server,
//! an S3 server, the age CLI, GNU tar and zstd, an XFS image): this task
//! finds which of them are missing, says what it will install and for which
//! tests before it installs anything, installs them (Debian packages with
//! apt-get as root or through `sudo -n`, the SMTP server with pip, Garage
//! with `cargo install`, pinned), then runs `cargo nextest run --workspace`.
//! Where something cannot be installed (no root, no network) it names the
//! tests that cannot run and why, and fails: nothing is skipped in silence.
//!
//! `.ci/run` calls it too, so CI and a new contributor run the same thing
//! (`tests/tests/hygiene.rs` checks that README, `.ci/run` and
//! [`crate::ci_steps`] agree).

use std::path::PathBuf;
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
    fn describe(self) -> String {
        match self {
            Install::Apt(p) => format!("apt-get install {}", p.join(" ")),
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
    present: fn() -> bool,
    install: Install,
    /// The tests that need it, and what for.
    needed_by: &'static str,
}

const GARAGE: &[&str] = &[
    "garage",
    "--version",
    "2.5.0",
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
            present: || runs("cargo", &["nextest", "--version"]),
            install: Install::Cargo(&["cargo-nextest", "--locked"]),
            needed_by: "every test: the suite runs under nextest (a process per test)",
        },
        Part {
            name: "tar and zstd",
            present: || on_path("tar") && on_path("zstd"),
            install: Install::Apt(&["tar", "zstd"]),
            needed_by: "crates/archive/tests/interop.rs: sets are extracted with `zstd -d | tar -x`, without sauve",
        },
        Part {
            name: "openssl",
            present: || on_path("openssl"),
            install: Install::Apt(&["openssl"]),
            needed_by: "the email alert tests (tests/tests/alerts.rs, crates/settings/tests/own.rs): a CA and a server certificate for STARTTLS",
        },
        Part {
            name: "age",
            present: || on_path("age") && on_path("age-keygen"),
            install: Install::Apt(&["age"]),
            needed_by: "tests/tests/offsite.rs: encrypted off-site copies are decrypted with the age CLI",
        },
        Part {
            name: "mkfs.xfs",
            present: || on_path("mkfs.xfs"),
            install: Install::Apt(&["xfsprogs"]),
            needed_by: "tests/tests/filesystems.rs: a loop-mounted XFS image, whose files the engine clones",
        },
        Part {
            name: "chromium and chromedriver",
            present: || {
                PathBuf::from("/usr/bin/chromium").is_file()
                    && PathBuf::from("/usr/bin/chromedriver").is_file()
            },
            install: Install::Apt(&["chromium", "chromium-driver"]),
            needed_by: "the browser tests (tests/tests/browser.rs, store_destination.rs) drive the page in a real headless Chromium",
        },
        Part {
            name: "the aiosmtpd SMTP server",
            present: || runs("python3", &["-c", "import aiosmtpd"]),
            install: Install::Pip("aiosmtpd==1.4.6"),
            needed_by: "the email alert tests (tests/tests/alerts.rs, crates/settings/tests/own.rs) deliver to a real SMTP server",
        },
        Part {
            name: "zsh, fish and groff",
            present: || on_path("zsh") && on_path("fish") && on_path("groff"),
            install: Install::Apt(&["zsh", "fish", "groff-base"]),
            needed_by: "crates/cli/tests/kit.rs: the completion scripts are parsed by zsh and fish, the man pages rendered by groff",
        },
        Part {
            name: "root",
            present: is_root,
            install: Install::Root,
            needed_by: "tests/tests/filesystems.rs mounts small tmpfs file systems and a loop-mounted XFS image (a full disk, a read-only remount, cloned files); without root they would only say they skip",
        },
        Part {
            name: "Garage 2.5.0",
            present: || garage().is_some(),
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

/// Where the tests find Garage: `$SAUVE_GARAGE`, PATH, or ~/.cargo/bin.
fn garage() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SAUVE_GARAGE") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("garage"))
        .find(|p| p.is_file())
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

/// What to do about the missing parts: the installs, in order, or why some
/// cannot be made (and the tests that cannot run).
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    Install(Vec<Install>),
    Cannot(Vec<String>),
}

/// The plan for `missing` parts (name, install, needed by): Debian packages
/// need root or sudo, and `apt-get` and `python3` must exist for theirs.
fn plan(
    missing: &[(&str, Install, &str)],
    privilege: Privilege,
    (apt, python): (bool, bool),
) -> Plan {
    let mut cannot = Vec::new();
    let mut installs = Vec::new();
    for &(name, install, needed_by) in missing {
        let why = match install {
            Install::Apt(_) if !apt => Some("apt-get is not on this machine".to_owned()),
            Install::Apt(_) if privilege == Privilege::None => Some(
                "Debian packages need root, or sudo without a password; run `cargo xtask test` as root, or install them yourself"
                    .to_owned(),
            ),
            Install::Pip(_) if !python && (!apt || privilege == Privilege::None) => Some(
                "python3 is not on this machine, and Debian's cannot be installed here".to_owned(),
            ),
            Install::Root => Some("this is not root, and root is not something to install".to_owned()),
            _ => None,
        };
        match why {
            Some(why) => cannot.push(format!(
                "{name} ({}): {why}. Cannot run: {needed_by}",
                install.describe()
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

pub(crate) fn main(o: &Options) -> Result<()> {
    // Root is needed to run the file-system tests, not to install (sudo).
    let all: Vec<Part> = parts()
        .into_iter()
        .filter(|p| !(o.setup_only && p.install == Install::Root))
        .collect();
    let missing: Vec<&Part> = all.iter().filter(|p| !(p.present)()).collect();
    if missing.is_empty() {
        println!("cargo xtask test: everything the tests need is here");
    } else {
        println!("cargo xtask test: the tests need these, missing here:");
        for p in &missing {
            println!("  - {}: {}", p.name, p.needed_by);
            println!("    installed with: {}", p.install.describe());
        }
        let privilege = privilege();
        let listed: Vec<(&str, Install, &str)> = missing
            .iter()
            .map(|p| (p.name, p.install, p.needed_by))
            .collect();
        let installs = match plan(&listed, privilege, (on_path("apt-get"), on_path("python3"))) {
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
        install(&installs, privilege)?;
        let still: Vec<&str> = all
            .iter()
            .filter(|p| !(p.present)())
            .map(|p| p.name)
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
fn install(installs: &[Install], privilege: Privilege) -> Result<()> {
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
    // Debian).
    let pip = installs.iter().any(|i| matches!(i, Install::Pip(_)));
    if pip && !on_path("python3") {
        println!("no python3 here: Debian's python3 and python3-pip are installed for aiosmtpd");
        packages.extend(["python3", "python3-pip"]);
    } else if pip && !runs("python3", &["-m", "pip", "--version"]) {
        println!("python3 has no pip: Debian's python3-pip is installed for it");
        packages.push("python3-pip");
    }
    if !packages.is_empty() {
        // sudo clears the environment: the variable goes through `env`.
        let root = |args: &[&str]| -> Result<()> {
            let mut c = Command::new("env");
            if privilege == Privilege::Sudo {
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

    #[test]
    fn as_root_everything_missing_is_installed_in_order() {
        let missing = [
            ("chromium", APT, "browser tests"),
            ("aiosmtpd", PIP, "email tests"),
            ("garage", CARGO, "store tests"),
        ];
        assert_eq!(
            plan(&missing, Privilege::Root, (true, true)),
            Plan::Install(vec![APT, PIP, CARGO])
        );
        assert_eq!(
            plan(&missing, Privilege::Sudo, (true, true)),
            Plan::Install(vec![APT, PIP, CARGO])
        );
    }

    #[test]
    fn without_root_the_tests_that_need_a_package_are_named_and_nothing_runs() {
        let missing = [
            ("chromium", APT, "the browser tests"),
            ("garage", CARGO, "store tests"),
        ];
        let Plan::Cannot(why) = plan(&missing, Privilege::None, (true, true)) else {
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
        let Plan::Cannot(why) = plan(&missing, Privilege::Root, (false, false)) else {
            panic!("nothing can be installed");
        };
        assert!(why[0].contains("apt-get is not on this machine"), "{why:?}");
        assert!(why[1].contains("python3 is not on this machine"), "{why:?}");
        // With apt as root, a missing python3 is installed with aiosmtpd.
        assert_eq!(
            plan(&missing[1..], Privilege::Root, (true, false)),
            Plan::Install(vec![PIP])
        );
        // Nothing missing: nothing to install.
        assert_eq!(
            plan(&[], Privilege::None, (false, false)),
            Plan::Install(vec![])
        );
    }

    #[test]
    fn without_root_the_file_system_tests_are_named_and_nothing_runs() {
        let missing = [("root", Install::Root, "tests/tests/filesystems.rs")];
        let Plan::Cannot(why) = plan(&missing, Privilege::Sudo, (true, true)) else {
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
    fn every_part_says_which_tests_need_it() {
        for p in parts() {
            assert!(p.needed_by.len() > 20, "{}", p.name);
        }
    }
}
