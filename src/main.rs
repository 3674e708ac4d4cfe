//! The zonekeeper command line: parses arguments, calls the library, renders results.
//! Nothing below `cli` prints to the terminal.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // A usage error exits 1 like every other error (as terraform's does): with
            // --detailed-exitcode, 2 means "changes pending" and nothing else.
            return if e.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS };
        }
    };
    cli::init_logs(&cli);
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
