//! The `sauve` command line, as a library so that tests drive it in-process.
//!
//! [`run`] takes the arguments and two writers and returns the exit code:
//! 0 success, 1 failure, 2 bad command line or invalid settings. Every
//! user-facing message of the CLI is written here or in its command modules;
//! the library crates never print.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::Parser;

mod alert;
mod archive;
mod args;
mod backup;
mod demo;
mod exec;
mod journal;
mod kit;
mod logshow;
mod rehearse;
mod remote;
mod report;
mod sample;
mod settings;
mod ui;

use args::{Command, LogCommand, TokenArgs};
use report::{Failure, Io};

pub use args::Cli;
pub use report::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

/// Runs the command line `args` (program name first) and returns the exit code.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut io = Io { out, err };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                io.err(&text);
            } else {
                io.out(&text);
            }
            return u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE);
        }
    };
    match dispatch(cli.command, &mut io) {
        Ok(()) => EXIT_OK,
        Err(f) => {
            io.err(&format!("error: {}\n", f.message));
            f.code
        }
    }
}

/// Which module runs which command: the one place that decides it.
fn dispatch(command: Command, io: &mut Io<'_>) -> Result<(), Failure> {
    match command {
        Command::Settings(cmd) => settings::run(cmd, io),
        Command::Log(cmd) => log(cmd, io),
        Command::Backup {
            app,
            json,
            on_startup,
            on_shutdown,
            remote,
            token,
        } => match remote {
            Some(url) => remote_backup(&url, token, &app.app, json, on_startup, on_shutdown, io),
            None => backup::backup(&app.app, json, on_startup, on_shutdown, io),
        },
        Command::Status {
            app,
            json,
            remote: Some(url),
            token,
        } => remote::status(&url, token, Some(&app.app), json, io),
        Command::Status { app, json, .. } => backup::status(&app.app, json, io),
        Command::Run {
            app,
            listen,
            insecure_listen,
            mode,
            public_url,
        } => {
            let listen = backup::Listen {
                addr: listen,
                insecure: insecure_listen,
            };
            backup::run_server(&app.app, listen, mode, public_url, io)
        }
        Command::History { app, json } => backup::history(&app.app, json, io),
        Command::Demo { dir } => demo::run(dir, io),
        Command::Verify {
            archive: Some(archive),
            app,
            identity,
            sample: None,
            ..
        } => archive::verify(&archive, app.as_deref(), identity.as_deref(), io),
        Command::Verify {
            app,
            sample,
            max_mib,
            json,
            ..
        } => sample::run(app.as_deref(), (sample.flatten(), max_mib), json, io),
        Command::Restore {
            archive,
            to,
            force,
            app,
            identity,
        } => archive::restore(&archive, to, force, app.as_deref(), identity.as_deref(), io),
        Command::List {
            archive,
            json,
            app,
            identity,
        } => archive::list(&archive, json, app.as_deref(), identity.as_deref(), io),
        Command::Rehearse(asked) => rehearse::run(asked, io),
        Command::Journal { app, tail, json } => journal::show(&app.app, tail, json, io),
        Command::Alert(cmd) => alert::run(cmd, io),
        Command::Ui {
            hash_password: true,
            ..
        } => ui::hash_password(io),
        Command::Ui { app, no_open, .. } => ui::link(&app.app, !no_open, io),
        Command::Completions { shell } => kit::completions(shell, io),
        Command::Man { subcommand, out } => kit::man(&subcommand, out.as_deref(), io),
    }
}

/// `sauve backup --remote URL`: the hooks belong to the server's host.
fn remote_backup(
    url: &str,
    token: TokenArgs,
    app: &std::path::Path,
    json: bool,
    on_startup: Option<String>,
    on_shutdown: Option<String>,
    io: &mut Io<'_>,
) -> Result<(), Failure> {
    if on_startup.is_some() || on_shutdown.is_some() {
        return Err(Failure::usage(
            "--on-startup and --on-shutdown run on the server with --remote (accepted: give them to sauve run's host)",
        ));
    }
    remote::backup(url, token, Some(app), json, io)
}

/// `sauve log show`: which log (a file, an app's, a set's) and its filter.
fn log(command: LogCommand, io: &mut Io<'_>) -> Result<(), Failure> {
    let LogCommand::Show {
        file,
        app,
        archive,
        since,
        until,
        kind,
        summary,
        json,
        no_pager,
    } = command;
    let source = match (file, app, archive) {
        (Some(f), _, _) => logshow::Source::File(f),
        (_, Some(a), _) => logshow::Source::App(a),
        (_, _, Some(s)) => logshow::Source::Archive(s),
        (None, None, None) => logshow::Source::App(PathBuf::from(".")),
    };
    let filter = logshow::Filter {
        since,
        until,
        kind,
        summary,
        json,
        pager: !no_pager,
    };
    logshow::show(source, filter, io)
}
