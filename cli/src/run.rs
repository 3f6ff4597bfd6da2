//! One command line → its API calls → what is printed and the exit code.

use crate::api::{query, segment, Api, ApiError};
use crate::args::{
    Body, CancelOptions, Cli, Command, Commands, Executions, Jobs, Output, Paging, Pipelines, Runs,
};
use crate::output::{self, Kind};
use crate::watch::{self, Outcome};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The API refused the request or did not answer.
pub const EXIT_REFUSED: u8 = 1;
/// `watch`: it ended, but not every device succeeded.
pub const EXIT_SOME_FAILED: u8 = 3;
/// `watch`: it was aborted, canceled or stopped.
pub const EXIT_STOPPED: u8 = 4;

/// Why a command line could not be carried out.
#[derive(Debug)]
pub enum Failure {
    Api(ApiError),
    /// A JSON argument that is not JSON, or a file that cannot be read.
    Input(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api(e) => e.fmt(f),
            Self::Input(why) => f.write_str(why),
        }
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

pub fn run(cli: &Cli) -> Result<u8, Failure> {
    let api = Api::new(&cli.api_url, cli.token.clone());
    let show = Show(cli.output);
    match &cli.command {
        Command::Commands(c) => match c {
            Commands::Create(body) => show.one(&api.post("/commands", &read_body(body)?)?),
            Commands::Get { command_id } => {
                show.one(&api.get(&format!("/commands/{}", segment(command_id)))?)
            }
            Commands::List(paging) => {
                show.list(Kind::Command, list(&api, "/commands", &[], paging)?)
            }
        },
        Command::Executions(e) => match e {
            Executions::Start {
                command_id,
                target,
                parameters,
                extra,
            } => {
                let mut body = match extra {
                    Some(extra) => object(extra, "--extra")?,
                    None => Map::new(),
                };
                body.insert("target".into(), json!(target));
                if let Some(parameters) = parameters {
                    body.insert(
                        "parameters".into(),
                        Value::Object(object(parameters, "--parameters")?),
                    );
                }
                let path = format!("/commands/{}/executions", segment(command_id));
                show.one(&api.post(&path, &Value::Object(body))?)
            }
            Executions::Get { execution_id } => {
                show.one(&api.get(&format!("/executions/{}", segment(execution_id)))?)
            }
            Executions::List {
                target,
                command_id,
                status,
                paging,
            } => {
                let filters = [
                    ("target", target.clone()),
                    ("commandId", command_id.clone()),
                    ("status", status.clone()),
                ];
                show.list(
                    Kind::Execution,
                    list(&api, "/executions", &filters, paging)?,
                )
            }
            Executions::Cancel {
                execution_id,
                cancel,
            } => {
                // An execution's cancel takes AWS's statusReason object.
                let mut body = Map::new();
                body.insert("force".into(), json!(cancel.force));
                if cancel.reason_code.is_some() || cancel.comment.is_some() {
                    let mut reason = Map::new();
                    reason.insert(
                        "reasonCode".into(),
                        json!(cancel
                            .reason_code
                            .as_deref()
                            .unwrap_or("CANCELED_BY_OPERATOR")),
                    );
                    if let Some(comment) = &cancel.comment {
                        reason.insert("reasonDescription".into(), json!(comment));
                    }
                    body.insert("statusReason".into(), Value::Object(reason));
                }
                let path = format!("/executions/{}/cancel", segment(execution_id));
                show.one(&api.post(&path, &Value::Object(body))?)
            }
        },
        Command::Jobs(j) => match j {
            Jobs::Create(body) => show.one(&api.post("/jobs", &read_body(body)?)?),
            Jobs::Get { job_id } => show.one(&api.get(&job_path(job_id))?),
            Jobs::List(paging) => show.list(Kind::Job, list(&api, "/jobs", &[], paging)?),
            Jobs::Executions {
                job_id,
                status,
                paging,
            } => {
                let path = format!("{}/executions", job_path(job_id));
                let filters = [("status", status.clone())];
                show.list(Kind::Execution, list(&api, &path, &filters, paging)?)
            }
            Jobs::Cancel { job_id, cancel } => {
                let path = format!("{}/cancel", job_path(job_id));
                show.one(&api.post(&path, &cancel_body(cancel))?)
            }
            Jobs::Watch { job_id, watch } => {
                let interval = interval(watch.interval)?;
                let (job, outcome) =
                    watch::follow(&api, &job_path(job_id), interval, watch::job_progress)?;
                show.ended(&job, watch::job_progress(&job).message, outcome)
            }
        },
        Command::Pipelines(p) => match p {
            Pipelines::Create(body) => show.one(&api.post("/pipelines", &read_body(body)?)?),
            Pipelines::Get { pipeline_id } => {
                show.one(&api.get(&format!("/pipelines/{}", segment(pipeline_id)))?)
            }
            Pipelines::List(paging) => {
                show.list(Kind::Pipeline, list(&api, "/pipelines", &[], paging)?)
            }
        },
        Command::Runs(r) => match r {
            Runs::Start { pipeline_id, body } => {
                let path = format!("/pipelines/{}/runs", segment(pipeline_id));
                show.one(&api.post(&path, &read_body(body)?)?)
            }
            Runs::Get {
                pipeline_id,
                run_id,
            } => show.one(&api.get(&run_path(pipeline_id, run_id))?),
            Runs::List {
                pipeline_id,
                paging,
            } => {
                let path = format!("/pipelines/{}/runs", segment(pipeline_id));
                show.list(Kind::Run, list(&api, &path, &[], paging)?)
            }
            Runs::Targets {
                pipeline_id,
                run_id,
                status,
                paging,
            } => {
                let path = format!("{}/targets", run_path(pipeline_id, run_id));
                let filters = [("status", status.clone())];
                show.list(Kind::Target, list(&api, &path, &filters, paging)?)
            }
            Runs::Cancel {
                pipeline_id,
                run_id,
                cancel,
            } => {
                let path = format!("{}/cancel", run_path(pipeline_id, run_id));
                show.one(&api.post(&path, &cancel_body(cancel))?)
            }
            Runs::Resume {
                pipeline_id,
                run_id,
            } => {
                let path = format!("{}/resume", run_path(pipeline_id, run_id));
                show.one(&api.post(&path, &json!({}))?)
            }
            Runs::Watch {
                pipeline_id,
                run_id,
                watch,
            } => {
                let interval = interval(watch.interval)?;
                let path = run_path(pipeline_id, run_id);
                let (run, outcome) = watch::follow(&api, &path, interval, watch::run_progress)?;
                show.ended(&run, watch::run_progress(&run).message, outcome)
            }
        },
    }
}

fn job_path(job_id: &str) -> String {
    format!("/jobs/{}", segment(job_id))
}

fn run_path(pipeline_id: &str, run_id: &str) -> String {
    format!(
        "/pipelines/{}/runs/{}",
        segment(pipeline_id),
        segment(run_id)
    )
}

/// A job's or a run's cancel: `{force, reasonCode?, comment?}`.
fn cancel_body(cancel: &CancelOptions) -> Value {
    let mut body = Map::new();
    body.insert("force".into(), json!(cancel.force));
    if let Some(code) = &cancel.reason_code {
        body.insert("reasonCode".into(), json!(code));
    }
    if let Some(comment) = &cancel.comment {
        body.insert("comment".into(), json!(comment));
    }
    Value::Object(body)
}

fn interval(seconds: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Failure::Input(format!(
                "--interval must be a positive number of seconds, got {seconds}"
            ))
        })
}

/// A request body: inline JSON, `@file`, or `-` (stdin).
fn read_body(body: &Body) -> Result<Value, Failure> {
    let text = match body.body.as_str() {
        "-" => std::io::read_to_string(std::io::stdin())
            .map_err(|e| Failure::Input(format!("reading the body from stdin: {e}")))?,
        arg => match arg.strip_prefix('@') {
            Some(file) => std::fs::read_to_string(file)
                .map_err(|e| Failure::Input(format!("reading {file}: {e}")))?,
            None => arg.to_owned(),
        },
    };
    serde_json::from_str(&text).map_err(|e| Failure::Input(format!("the body is not JSON: {e}")))
}

/// A JSON object given as an argument.
fn object(text: &str, flag: &str) -> Result<Map<String, Value>, Failure> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Failure::Input(format!("{flag} must be a JSON object"))),
        Err(e) => Err(Failure::Input(format!("{flag} is not JSON: {e}"))),
    }
}

/// A list's items: one page, or with `--all` every page.
fn list(
    api: &Api,
    path: &str,
    filters: &[(&str, Option<String>)],
    paging: &Paging,
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let mut items = Vec::new();
    let mut next = paging.next_token.clone();
    loop {
        let mut pairs = filters.to_vec();
        pairs.push(("limit", paging.limit.map(|l| l.to_string())));
        pairs.push(("nextToken", next.clone()));
        let page = api.get(&format!("{path}{}", query(&pairs)))?;
        if let Some(more) = page["items"].as_array() {
            items.extend(more.iter().cloned());
        }
        next = page["nextToken"].as_str().map(str::to_owned);
        if !paging.all || next.is_none() {
            return Ok((items, next));
        }
    }
}

/// Prints in the chosen format.
struct Show(Output);

impl Show {
    fn one(&self, value: &Value) -> Result<u8, Failure> {
        match self.0 {
            Output::Json => println!("{}", output::json(value)),
            Output::Table => println!("{}", output::record(value)),
        }
        Ok(0)
    }

    fn list(&self, kind: Kind, (items, next): (Vec<Value>, Option<String>)) -> Result<u8, Failure> {
        match self.0 {
            Output::Json => {
                let mut page = json!({ "items": items });
                if let Some(next) = next {
                    page["nextToken"] = json!(next);
                }
                println!("{}", output::json(&page));
            }
            Output::Table => {
                println!("{}", output::table(kind, &items));
                if let Some(next) = next {
                    eprintln!("more: --next-token {next} (or --all)");
                }
            }
        }
        Ok(0)
    }

    /// A watch's end: the last state, and the exit code for its outcome.
    fn ended(&self, value: &Value, summary: String, outcome: Outcome) -> Result<u8, Failure> {
        match self.0 {
            Output::Json => println!("{}", output::json(value)),
            Output::Table => println!("{summary}"),
        }
        Ok(match outcome {
            Outcome::Succeeded => 0,
            Outcome::SomeFailed => EXIT_SOME_FAILED,
            Outcome::Stopped => EXIT_STOPPED,
        })
    }
}
