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
mod journal;
mod kit;
mod logshow;
mod remote;
mod settings;
mod ui;

pub use args::Cli;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for a failed operation.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a bad command line or invalid settings.
pub const EXIT_USAGE: u8 = 2;

/// A command's failure: its message and exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    pub(crate) fn failed(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_FAILURE,
            message: message.into(),
        }
    }
}

/// Where a command writes.
pub(crate) struct Io<'a> {
    pub(crate) out: &'a mut dyn Write,
    pub(crate) err: &'a mut dyn Write,
}

impl Io<'_> {
    /// Writes to standard output; a closed pipe is not worth a failure.
    pub(crate) fn out(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
    }

    /// Writes to standard error.
    pub(crate) fn err(&mut self, text: &str) {
        let _ = self.err.write_all(text.as_bytes());
    }
}

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
    let result = match cli.command {
        args::Command::Settings(cmd) => settings::run(cmd, &mut io),
        args::Command::Log(args::LogCommand::Show {
            file,
            app,
            archive,
            since,
            until,
            kind,
            summary,
            json,
            no_pager,
        }) => {
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
            logshow::show(source, filter, &mut io)
        }
        args::Command::Backup {
            app,
            json,
            on_startup,
            on_shutdown,
            remote: Some(url),
            token,
        } => {
            if on_startup.is_some() || on_shutdown.is_some() {
                Err(Failure::usage(
                    "--on-startup and --on-shutdown run on the server with --remote (accepted: give them to sauve run's host)",
                ))
            } else {
                remote::backup(&url, token, Some(&app.app), json, &mut io)
            }
        }
        args::Command::Backup {
            app,
            json,
            on_startup,
            on_shutdown,
            remote: None,
            ..
        } => backup::backup(&app.app, json, on_startup, on_shutdown, &mut io),
        args::Command::Status {
            app,
            json,
            remote: Some(url),
            token,
        } => remote::status(&url, token, Some(&app.app), json, &mut io),
        args::Command::Status { app, json, .. } => backup::status(&app.app, json, &mut io),
        args::Command::Run {
            app,
            listen,
            insecure_listen,
            mode,
            public_url,
        } => backup::run_server(
            &app.app,
            backup::Listen {
                addr: listen,
                insecure: insecure_listen,
            },
            mode,
            public_url,
            &mut io,
        ),
        args::Command::History { app, json } => backup::history(&app.app, json, &mut io),
        args::Command::Demo { dir } => backup::demo(dir, &mut io),
        args::Command::Verify {
            archive,
            app,
            identity,
        } => archive::verify(&archive, app.as_deref(), identity.as_deref(), &mut io),
        args::Command::Restore {
            archive,
            to,
            force,
            app,
            identity,
        } => archive::restore(
            &archive,
            to,
            force,
            app.as_deref(),
            identity.as_deref(),
            &mut io,
        ),
        args::Command::List {
            archive,
            json,
            app,
            identity,
        } => archive::list(&archive, json, app.as_deref(), identity.as_deref(), &mut io),
        args::Command::Journal { app, tail, json } => journal::show(&app.app, tail, json, &mut io),
        args::Command::Alert(cmd) => alert::run(cmd, &mut io),
        args::Command::Ui {
            hash_password: true,
            ..
        } => ui::hash_password(&mut io),
        args::Command::Ui { app, no_open, .. } => ui::link(&app.app, !no_open, &mut io),
        args::Command::Completions { shell } => kit::completions(shell, &mut io),
        args::Command::Man { subcommand, out } => kit::man(&subcommand, out.as_deref(), &mut io),
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(f) => {
            io.err(&format!("error: {}\n", f.message));
            f.code
        }
    }
}
