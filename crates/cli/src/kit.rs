//! The operator's kit: `sauve completions SHELL` and `sauve man`.
//!
//! Both are generated from the grammar in `args` at run time, so they cannot
//! drift from the commands the binary accepts: a packager runs the installed
//! binary once per file it ships.

use std::io::ErrorKind;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::aot::Shell;

use crate::args::Cli;
use crate::report::{Failure, Io};

/// The name the completion scripts complete: the installed binary's.
const BIN: &str = "sauve";

/// `sauve completions SHELL`: the completion script, on standard output.
pub(crate) fn completions(shell: Shell, io: &mut Io<'_>) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::aot::generate(shell, &mut Cli::command(), BIN, &mut script);
    emit(io, &script, "the completion script")
}

/// `sauve man [SUBCOMMAND...] [--out DIR]`: one page on standard output, or
/// the page of the command named and of everything under it written into DIR.
pub(crate) fn man(path: &[String], out: Option<&Path>, io: &mut Io<'_>) -> Result<(), Failure> {
    // The `help` subcommand clap adds is left out, as clap_mangen's own
    // `generate_to` does: a page listing sauve-help(1) that nobody installs
    // would be a dangling reference. Building the whole tree once gives each
    // subcommand its full name (`sauve-settings-set`), which is its page's
    // title and file name.
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let command = find(&root, path)?;
    let Some(dir) = out else {
        let page = render(command)?;
        return emit(io, &page, "the man page");
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::failed(format!("cannot create folder \"{}\": {e}", dir.display())))?;
    let mut pages = Vec::new();
    collect(command, &mut pages);
    for command in pages {
        let file = dir.join(page(command).get_filename());
        // A plain write, not the temporary-name-and-rename of the files sauve
        // must keep: a man page is output regenerated at will from the
        // binary, and an interrupted run is simply run again.
        std::fs::write(&file, render(command)?).map_err(|e| {
            Failure::failed(format!("cannot write man page \"{}\": {e}", file.display()))
        })?;
        io.out(&format!("{}\n", file.display()));
    }
    Ok(())
}

/// The command `path` names under `root` (`["settings", "set"]`).
fn find<'a>(root: &'a clap::Command, path: &[String]) -> Result<&'a clap::Command, Failure> {
    let mut command = root;
    let named = |upto: usize| {
        std::iter::once(BIN)
            .chain(path[..upto].iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (depth, word) in path.iter().enumerate() {
        let parent = command;
        command = parent.find_subcommand(word).ok_or_else(|| {
            let accepted: Vec<&str> = parent.get_subcommands().map(|c| c.get_name()).collect();
            Failure::usage(if accepted.is_empty() {
                format!(
                    "no man page for \"{}\": {} has no subcommands",
                    named(depth + 1),
                    named(depth)
                )
            } else {
                format!(
                    "no man page for \"{}\" (accepted: {})",
                    named(depth + 1),
                    accepted.join(", ")
                )
            })
        })?;
    }
    Ok(command)
}

/// `command` and every visible command under it, parents first.
fn collect<'a>(command: &'a clap::Command, pages: &mut Vec<&'a clap::Command>) {
    pages.push(command);
    for sub in command.get_subcommands().filter(|c| !c.is_hide_set()) {
        collect(sub, pages);
    }
}

/// The page of `command`, every one naming the same release: a subcommand
/// has no version of its own, and clap_mangen would otherwise put its bare
/// name (`set`) in the page's footer.
fn page(command: &clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(command.clone())
        // No date, so that the same binary always prints the same pages
        // (reproducible packages). It is spelled as roff's empty argument
        // because clap_mangen writes an empty string as nothing at all,
        // which shifts the source into the date's place on the `.TH` line.
        .date("\"\"")
        .source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")))
        .manual("sauve manual")
}

fn render(command: &clap::Command) -> Result<Vec<u8>, Failure> {
    let mut roff = Vec::new();
    page(command)
        .render(&mut roff)
        .map_err(|e| Failure::failed(format!("cannot render the man page: {e}")))?;
    Ok(roff)
}

/// Writes a generated file to standard output.
///
/// Unlike the reports of the other commands, this output is meant to be
/// redirected into a file (`sauve man > sauve.1`), so a failed write (a full
/// disk) fails the command instead of leaving a truncated file behind an
/// exit code of 0. A closed pipe (`sauve man | head`) is the reader's choice,
/// not a failure.
fn emit(io: &mut Io<'_>, bytes: &[u8], what: &str) -> Result<(), Failure> {
    match io.out.write_all(bytes).and_then(|()| io.out.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(Failure::failed(format!(
            "cannot write {what} to standard output: {e}"
        ))),
        _ => Ok(()),
    }
}
