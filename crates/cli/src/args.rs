//! The command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// sauve backs up an application (structure, data file, log file and
/// attached files) into numbered archive sets, the way 4D's backup module
/// does, while the application keeps running.
#[derive(Debug, Parser)]
#[command(name = "sauve", version, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Back up an app now: data, structure and attachments, as its settings say.
    ///
    /// Draws a progress bar on a terminal; Ctrl-C stops the backup (1406).
    /// Exit code: 0 for status 0, 3 for a partial backup (-43), 2 for a bad
    /// command line or invalid settings, 1 for any other status.
    Backup {
        #[command(flatten)]
        app: AppArg,
        /// Print one JSON object per event line.
        #[arg(long)]
        json: bool,
        /// Shell command run before the backup; a non-zero exit refuses it and becomes its status.
        #[arg(long, value_name = "CMD")]
        on_startup: Option<String>,
        /// Shell command run after the backup, with SAUVE_STATUS, SAUVE_TRIGGER and SAUVE_ARCHIVE set.
        #[arg(long, value_name = "CMD")]
        on_shutdown: Option<String>,
        /// Run the backup on this server (`sauve run`) and follow it, e.g. http://127.0.0.1:7070.
        #[arg(long, value_name = "URL")]
        remote: Option<String>,
        #[command(flatten)]
        token: TokenArgs,
    },
    /// Run the server: scheduled backups, the control API, remote backups.
    ///
    /// Writes the address and a bearer token to APP/Logs/sauve-server.json
    /// (mode 0600). One server per app: a second `sauve run` on the same app
    /// exits 2, naming the first one's pid and address (it holds
    /// APP/Logs/sauve-run.lock). SIGTERM or SIGINT stops a running backup
    /// (1406) and exits 0.
    Run {
        #[command(flatten)]
        app: AppArg,
        /// Address of the control API and the page: a loopback address,
        /// unless --public-url https://... or --insecure-listen is given
        /// (otherwise exit 2).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Accept a --listen address outside loopback over plain HTTP,
        /// without a TLS proxy in front: tokens and passwords then cross the
        /// network in clear.
        #[arg(long)]
        insecure_listen: bool,
        /// How backups lock the app: server (readers go on) or single-user (everything waits).
        #[arg(long, value_enum, default_value = "server")]
        mode: RunMode,
        /// The backup page's address as people reach it through a proxy in
        /// front, e.g. https://backup.example.com/: alerts link to it, forms
        /// must come from it, the page answers to its host name (besides the
        /// listen address's), and under https:// the session cookie is Secure.
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
    },
    /// Show the last backup information, the destination and its free space.
    Status {
        #[command(flatten)]
        app: AppArg,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Ask this server (`sauve run`) instead of reading the app folder.
        #[arg(long, value_name = "URL")]
        remote: Option<String>,
        #[command(flatten)]
        token: TokenArgs,
    },
    /// List the backups recorded in backupHistory.json.
    History {
        #[command(flatten)]
        app: AppArg,
        /// Print the history as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a sample app, back it up, show its status and journal, restore and verify it.
    Demo {
        /// Where to create the demo (default: ./sauve-demo); must be empty or absent.
        dir: Option<PathBuf>,
    },
    /// Show, create, check and change backup.4DSettings.
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Read the operation log (.journal) of an app.
    #[command(subcommand)]
    Log(LogCommand),
    /// Check an archive set against its manifest; writes nothing.
    ///
    /// Exits 0 when the set is sound, 1 when it is not, naming the first bad
    /// entry or segment.
    Verify {
        /// Any segment of the set, or base[NNNN] (the .4BK); or
        /// s3://bucket/prefix/base[NNNN] for a set in a bucket. Not with
        /// --sample, which reads the sets the app's destination keeps.
        #[arg(required_unless_present = "sample", conflicts_with = "sample")]
        archive: Option<PathBuf>,
        /// The app whose sauve.toml `[destination]` reaches the bucket
        /// (else the AWS_* environment variables); with --sample, the app
        /// whose kept sets are sampled (default: the current folder).
        #[arg(long, value_name = "DIR")]
        app: Option<PathBuf>,
        /// For a set encrypted with age (`encrypt_to`): an age identity
        /// file (AGE-SECRET-KEY-1... lines) of one of its recipients.
        #[arg(long, value_name = "FILE", conflicts_with = "sample")]
        identity: Option<PathBuf>,
        /// Read PERCENT (1 to 100) of the pieces of every set the app's
        /// destination keeps and compare each with the sum recorded when
        /// it was stored (default: [verify] sample_percent); no identity
        /// needed, ranged reads in a bucket. Damage raises an alert.
        #[arg(long, value_name = "PERCENT", num_args = 0..=1)]
        sample: Option<Option<u32>>,
        /// With --sample: the most it reads, MiB (default: [verify] sample_max_mib).
        #[arg(long, value_name = "MIB", requires = "sample")]
        max_mib: Option<u32>,
        /// With --sample: print one JSON object.
        #[arg(long, requires = "sample")]
        json: bool,
    },
    /// Restore an archive set into a folder, checking every file first.
    ///
    /// Files are extracted into a staging folder inside the destination and
    /// moved into place only once every checksum matched.
    Restore {
        /// Any segment of the set, or base[NNNN] (the .4BK); or
        /// s3://bucket/prefix/base[NNNN] for a set in a bucket.
        archive: PathBuf,
        /// The destination (default: a folder next to the archive, named after it).
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Restore into a non-empty destination, replacing same-path files.
        #[arg(long)]
        force: bool,
        /// The app the archive belongs to: the restore is then refused while
        /// that app backs up, and journaled in its Backup Journal. For a set
        /// in a bucket, the app whose sauve.toml `[destination]` reaches it.
        #[arg(long, value_name = "DIR")]
        app: Option<PathBuf>,
        /// For a set encrypted with age (`encrypt_to`): an age identity
        /// file (AGE-SECRET-KEY-1... lines) of one of its recipients.
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
    },
    /// Rehearse a restore: restore a set into a sandbox, integrate its log
    /// backups, run the check, remove the sandbox.
    ///
    /// The set is read from the app's destination (or --from, --offsite,
    /// [rehearsal] from), restored into a sandbox outside the app
    /// ([rehearsal] folder, by default APP.rehearsal beside the app), every
    /// file checked against its manifest; the log backups (.4BL) after it,
    /// from the same source and never the live log, are read and checked
    /// (CRC, sequences, data identity); then [rehearsal] check runs on the
    /// result. Recorded in the Backup Journal, the history and sauve status
    /// (the proven recovery point); a failure raises an alert. Ctrl-C stops
    /// it (1406) when it runs here; with a live server for the app it runs
    /// there, and `POST /v1/stop` stops it. Exit code: 0 when proven, 2 for a bad command line, 1
    /// otherwise.
    Rehearse(RehearseArgs),
    /// Show the Backup Journal (APP/Logs/Backup Journal[NNN].txt, or
    /// APP/Data/Logs/ where the app keeps it there), oldest first.
    Journal {
        #[command(flatten)]
        app: AppArg,
        /// Only the last N entries.
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
        /// Print a JSON array of entries.
        #[arg(long)]
        json: bool,
    },
    /// List the entries of an archive set: path, kind, size.
    List {
        /// Any segment of the set, or base[NNNN] (the .4BK); or
        /// s3://bucket/prefix/base[NNNN] for a set in a bucket.
        archive: PathBuf,
        /// The app whose sauve.toml `[destination]` reaches the bucket
        /// (else the AWS_* environment variables).
        #[arg(long, value_name = "DIR")]
        app: Option<PathBuf>,
        /// For a set encrypted with age (`encrypt_to`): an age identity
        /// file (AGE-SECRET-KEY-1... lines) of one of its recipients.
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge alerts, or send a test alert through every notifier.
    #[command(subcommand)]
    Alert(AlertCommand),
    /// Print a one-time link that logs in to the backup page of a running
    /// `sauve run`, and open it where a browser exists.
    ///
    /// The link holds a code valid once, for 60 seconds; never the token.
    /// With --hash-password, read a password on stdin and print the argon2
    /// hash to put in sauve.toml as `[ui] password_hash`.
    Ui {
        #[command(flatten)]
        app: AppArg,
        /// Only print the link; do not start a browser.
        #[arg(long)]
        no_open: bool,
        /// Read a password (one line) on stdin and print its argon2 hash.
        #[arg(long, conflicts_with = "no_open")]
        hash_password: bool,
    },
    /// Print the completion script for a shell.
    ///
    /// For example `sauve completions bash > /etc/bash_completion.d/sauve`;
    /// the README says where zsh and fish look for theirs.
    Completions {
        /// The shell: bash, zsh or fish (elvish and powershell work too).
        #[arg(value_enum)]
        shell: clap_complete::aot::Shell,
    },
    /// Print the man page of sauve, or of one of its subcommands, in roff.
    ///
    /// `sauve man > /usr/local/share/man/man1/sauve.1` installs the main
    /// page; `sauve man settings set` prints the page sauve-settings-set(1).
    /// With --out, every page from there down is written into a folder
    /// (sauve.1, sauve-backup.1, sauve-settings-set.1, ...) and each path
    /// written is printed, one a line.
    Man {
        /// The subcommand whose page to print, e.g. `backup` or `settings set`.
        #[arg(value_name = "SUBCOMMAND")]
        subcommand: Vec<String>,
        /// Write the pages into this folder (created if absent) instead of printing one.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AlertCommand {
    /// Acknowledge an alert (or every one): it leaves `sauve status` and the page.
    Ack {
        /// The alert's number, as `sauve status` shows it.
        #[arg(
            value_name = "ID",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        id: Option<u64>,
        /// Every open alert.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        app: AppArg,
    },
    /// Send a test alert through every notifier of sauve.toml and show each result.
    ///
    /// Exits 0 when every notifier delivered it, 1 when one failed, 2 when
    /// sauve.toml is invalid or configures no notifier.
    Test {
        #[command(flatten)]
        app: AppArg,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum LogCommand {
    /// List a log's operations, newest last: sequence, local time, kind,
    /// label and size; and how the log ends.
    ///
    /// Reads a log file, the app's current log (--app) or the log a log
    /// backup holds (--archive). Times are shown and read in the local time
    /// zone (TZ is honoured); an explicit offset is accepted too:
    /// `--since "2026-12-01 14:00"`, `--until 2026-12-01T14:04:30+01:00`.
    /// Records of a version-1 log carry no time: a time filter leaves them
    /// out. On a terminal, a long list goes through $PAGER (less -FRX).
    #[command(group(clap::ArgGroup::new("log").required(true).args(["file", "app", "archive"])))]
    Show {
        /// The log file (APP/Data/<stem>.journal, or a pending segment).
        file: Option<PathBuf>,
        /// The current log of this app folder.
        #[arg(long, value_name = "DIR")]
        app: Option<PathBuf>,
        /// The log a log backup holds (base[NNNN].4BL).
        #[arg(long, value_name = "SET.4BL")]
        archive: Option<PathBuf>,
        /// Only operations at or after this time.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only operations at or before this time.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Only operations of this kind (the host's number).
        #[arg(long, value_name = "KIND")]
        kind: Option<u16>,
        /// Operations per kind (with their labels) and per hour, as 4D's
        /// activity analysis counts them.
        #[arg(long)]
        summary: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Print straight to standard output, even on a terminal.
        #[arg(long)]
        no_pager: bool,
    },
}

/// `sauve run --mode`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum RunMode {
    /// Readers go on during a backup; writers wait.
    Server,
    /// Everything the backup locks waits.
    SingleUser,
}

/// How a client command gets the server's bearer token, first given first:
/// --token, --token-file, the SAUVE_TOKEN environment variable, then the
/// server file of --app.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The server's bearer token. Other users see it in `ps`: prefer
    /// --token-file or the SAUVE_TOKEN environment variable. Without any of
    /// the three, the token of APP/Logs/sauve-server.json.
    #[arg(long, value_name = "T", requires = "remote")]
    pub(crate) token: Option<String>,
    /// Read the server's bearer token from this file (surrounding white
    /// space ignored); an unreadable file is an error.
    #[arg(long, value_name = "FILE", requires = "remote")]
    pub(crate) token_file: Option<PathBuf>,
}

/// The app folder option shared by commands.
#[derive(Debug, Args)]
pub(crate) struct AppArg {
    /// The application folder (holding Project/, Data/, Settings/).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub(crate) app: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SettingsCommand {
    /// Print the effective settings and the file they come from, and
    /// sauve.toml when there is one (secrets as ***).
    ///
    /// The file is APP/Data/Settings/backup.4DSettings if present, else
    /// APP/Settings/backup.4DSettings, else sauve's built-in defaults;
    /// sauve.toml is read with the same precedence.
    Show {
        #[command(flatten)]
        app: AppArg,
        /// Print one JSON object keyed by the XML element names.
        #[arg(long)]
        json: bool,
    },
    /// Write the default settings to APP/Settings/backup.4DSettings, and
    /// give the app incremental sets.
    ///
    /// An existing backup.4DSettings is never overwritten. The app's
    /// sauve.toml (APP/Settings/sauve.toml, created when there is none)
    /// gets `[incremental] full_every = 7` unless it has an [incremental]
    /// table already.
    Init {
        #[command(flatten)]
        app: AppArg,
    },
    /// Check a settings file (backup.4DSettings or sauve.toml); list every
    /// problem with its line and column.
    ///
    /// Exits 0 when the file is valid, 2 when it is not. For sauve.toml, the
    /// environment variables its `*_env` keys name must be set, and its
    /// `*_file` secrets must be files of mode 0600.
    Validate {
        /// The backup.4DSettings or sauve.toml file to check.
        file: PathBuf,
    },
    /// Set one key and rewrite the effective settings file atomically.
    ///
    /// KEY is the element path under Backup/Settings, e.g.
    /// Advanced/SetNumber/Value or Scheduler/Daily/Hour. Attachments are set
    /// one at a time as General/IncludesFiles/Item<N>; an empty VALUE removes
    /// item N. With no settings file yet, APP/Settings/backup.4DSettings is
    /// created from the defaults.
    Set {
        /// The key, e.g. Advanced/SetNumber/Value.
        key: String,
        /// The new value, e.g. 5, True, 02:30:00, Compact, ../Backups/.
        value: String,
        #[command(flatten)]
        app: AppArg,
    },
}

/// What `sauve rehearse` is asked.
#[derive(Debug, Args)]
pub(crate) struct RehearseArgs {
    #[command(flatten)]
    pub(crate) app: AppArg,
    /// The set of this number (default: the newest).
    #[arg(long, value_name = "N")]
    pub(crate) set: Option<u32>,
    /// A set picked at random among those the source keeps.
    #[arg(long)]
    pub(crate) random: bool,
    /// Where the sets are: s3://bucket/prefix/ or a folder (default: [rehearsal] from, else the destination).
    #[arg(long, value_name = "URL|DIR")]
    pub(crate) from: Option<String>,
    /// An [[offsite]] entry of sauve.toml: its place (1, 2...) or its URL.
    #[arg(long, value_name = "NAME")]
    pub(crate) offsite: Option<String>,
    /// Integrate the logs up to this time (YYYY-MM-DD HH:MM[:SS], local), from the newest set before it.
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,
    /// For encrypted sets: an age identity file (default: [rehearsal] identity_file).
    #[arg(long, value_name = "FILE")]
    pub(crate) identity: Option<PathBuf>,
    /// Every core at normal priority, as a restore runs (by default: one core, the idle class).
    #[arg(long)]
    pub(crate) full_speed: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}
