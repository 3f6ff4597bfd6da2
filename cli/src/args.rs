//! What `courier` can be asked (clap). No I/O.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Courier from the terminal: commands, executions, jobs and pipelines.
///
/// Exit codes: 0 done; 1 the API refused the request (its error code and
/// message on stderr) or could not be reached; 2 bad arguments; `watch`
/// only: 3 it ended but not every device succeeded, 4 it was aborted,
/// canceled or stopped.
#[derive(Debug, Parser)]
#[command(name = "courier", version, about, long_about = None)]
pub struct Cli {
    /// The API's base URL (`make run`: http://127.0.0.1:9000/lambda-url/api).
    #[arg(
        long,
        env = "COURIER_API_URL",
        global = true,
        default_value = "http://127.0.0.1:9000/lambda-url/api"
    )]
    pub api_url: String,
    /// A bearer token (a JWT from your identity provider); none locally.
    #[arg(long, env = "COURIER_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Tables for people, or the API's JSON for scripts.
    #[arg(long, short, value_enum, env = "COURIER_OUTPUT", global = true, default_value_t = Output::Table)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Command definitions: what devices can be told to do.
    #[command(subcommand)]
    Commands(Commands),
    /// One command on one device.
    #[command(subcommand)]
    Executions(Executions),
    /// One command on many devices.
    #[command(subcommand)]
    Jobs(Jobs),
    /// Stages of commands, run over a fleet in waves.
    #[command(subcommand)]
    Pipelines(Pipelines),
    /// A pipeline's runs.
    #[command(subcommand)]
    Runs(Runs),
}

/// A JSON request body: inline, `@file`, or `-` for stdin.
#[derive(Debug, Args)]
pub struct Body {
    /// The request as JSON: `'{"commandId": …}'`, `@request.json`, or `-` (stdin).
    pub body: String,
}

/// Paging of a list.
#[derive(Debug, Args)]
pub struct Paging {
    /// At most this many per page.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Go on from a previous page's `nextToken`.
    #[arg(long, conflicts_with = "all")]
    pub next_token: Option<String>,
    /// Follow `nextToken` to the end and show every item.
    #[arg(long)]
    pub all: bool,
}

/// A cancel's options.
#[derive(Debug, Args)]
pub struct CancelOptions {
    /// Also stop work devices have started.
    #[arg(long)]
    pub force: bool,
    /// Why, for the record (`comment`).
    #[arg(long)]
    pub comment: Option<String>,
    /// A reason code devices and reports see (`statusReason.reasonCode`).
    #[arg(long)]
    pub reason_code: Option<String>,
}

/// How a watch polls.
#[derive(Debug, Args)]
pub struct Polling {
    /// Seconds between polls.
    #[arg(long, default_value_t = 2.0)]
    pub interval: f64,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Create a command definition (POST /commands).
    Create(Body),
    /// Show one (GET /commands/{id}).
    Get { command_id: String },
    /// List them (GET /commands).
    List(Paging),
}

#[derive(Debug, Subcommand)]
pub enum Executions {
    /// Start a command on a device (POST /commands/{id}/executions).
    Start {
        command_id: String,
        /// The device's thing name.
        #[arg(long)]
        target: String,
        /// Typed parameters, e.g. '{"rate": {"I": 30}}'.
        #[arg(long)]
        parameters: Option<String>,
        /// More request fields as a JSON object (clientToken, notBefore, …).
        #[arg(long)]
        extra: Option<String>,
    },
    /// Show one (GET /executions/{id}).
    Get { execution_id: String },
    /// List a device's or a command's executions (GET /executions).
    List {
        /// A device's executions.
        #[arg(long, required_unless_present = "command_id")]
        target: Option<String>,
        /// A command's executions.
        #[arg(long)]
        command_id: Option<String>,
        /// Only those in this status (e.g. FAILED).
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Cancel one (POST /executions/{id}/cancel).
    Cancel {
        execution_id: String,
        #[command(flatten)]
        cancel: CancelOptions,
    },
}

#[derive(Debug, Subcommand)]
pub enum Jobs {
    /// Create a job (POST /jobs).
    Create(Body),
    /// Show one with its statistics (GET /jobs/{id}).
    Get { job_id: String },
    /// List jobs, newest first (GET /jobs).
    List(Paging),
    /// A job's executions (GET /jobs/{id}/executions).
    Executions {
        job_id: String,
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Cancel one (POST /jobs/{id}/cancel).
    Cancel {
        job_id: String,
        #[command(flatten)]
        cancel: CancelOptions,
    },
    /// Follow a job's statistics with a progress bar until it ends.
    Watch {
        job_id: String,
        #[command(flatten)]
        watch: Polling,
    },
}

#[derive(Debug, Subcommand)]
pub enum Pipelines {
    /// Create a pipeline (POST /pipelines).
    Create(Body),
    /// Show one (GET /pipelines/{id}).
    Get { pipeline_id: String },
    /// List them (GET /pipelines).
    List(Paging),
}

#[derive(Debug, Subcommand)]
pub enum Runs {
    /// Run a pipeline over devices (POST /pipelines/{id}/runs).
    Start {
        pipeline_id: String,
        #[command(flatten)]
        body: Body,
    },
    /// Show a run with its counts per stage (GET /pipelines/{id}/runs/{runId}).
    Get { pipeline_id: String, run_id: String },
    /// A pipeline's runs, newest first.
    List {
        pipeline_id: String,
        #[command(flatten)]
        paging: Paging,
    },
    /// A run's devices (GET /pipelines/{id}/runs/{runId}/targets).
    Targets {
        pipeline_id: String,
        run_id: String,
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Cancel a run (POST …/cancel).
    Cancel {
        pipeline_id: String,
        run_id: String,
        #[command(flatten)]
        cancel: CancelOptions,
    },
    /// Pass the gate a HELD run waits at (POST …/resume).
    Resume { pipeline_id: String, run_id: String },
    /// Follow a run with a progress bar until it ends.
    Watch {
        pipeline_id: String,
        run_id: String,
        #[command(flatten)]
        watch: Polling,
    },
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// clap's own consistency checks over every subcommand (they would
    /// otherwise panic only when that subcommand is first used).
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
