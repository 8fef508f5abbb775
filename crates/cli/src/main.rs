//! The `sauve` binary: parses the command line and runs it.

use std::process::ExitCode;

fn main() -> ExitCode {
    // The standard streams are passed unlocked: each write takes the lock
    // for itself. Holding `stderr().lock()` for the whole run would block
    // any other thread that logs (tracing writes to stderr) until the run
    // ends, and a runtime waiting for such a thread at shutdown would never
    // end (`sauve run` hanging on SIGTERM).
    let code = sauve_cli::run(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    ExitCode::from(code)
}
