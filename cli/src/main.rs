//! `courier`: the operators' command line for Courier's HTTP API.
//!
//! `args` says what can be asked, `run` turns a command into API calls,
//! `api` does the HTTP (the only I/O besides the terminal), `output` draws
//! tables or JSON, `watch` follows a job or a run with a progress bar.

mod api;
mod args;
mod output;
mod run;
mod watch;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match run::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("courier: {err}");
            ExitCode::from(run::EXIT_REFUSED)
        }
    }
}
