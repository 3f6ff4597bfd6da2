//! JSON in, JSON out: every function the WASM module exports, with the
//! exact result shapes it returns and the shared test vectors
//! (`tests/vectors/`) expect. The WASM layer only converts JavaScript values
//! to and from [`Json`] and calls these, so browser and server apply one
//! set of rules. A function whose arguments can be of the wrong kind
//! returns `Err` with the object the module throws (a `CourierError`:
//! `{code: "ValidationException", message, errors}`). Pure, no I/O.

use crate::codec::{parameters_json, ToJson};
use crate::error::{ValidationCode, ValidationError, ValidationErrors};
use crate::execution::{CommandExecution, StartExecution};
use crate::job::{targets_from_text, CreateJob, JobStatus};
use crate::json::Json;
use crate::schema::{CommandDefinition, Validator};
use crate::status::{Actor, ExecutionStatus};
use crate::text::quote;
use crate::time::Timestamp;
use crate::transition::{CancelOptions, TransitionError, TransitionPlan};
use crate::update::{CancelExecution, StatusUpdate};
use crate::value::{TypedValue, ValueType};

/// A definition compiled into a validator, or the `CourierError` listing
/// every problem with it.
pub fn compile(definition: &Json) -> Result<Validator, Json> {
    CommandDefinition::from_json(definition)
        .and_then(|d| d.validator())
        .map_err(|errors| thrown("the command definition is invalid", &errors))
}

/// The definition as compiled (defaults filled in).
pub fn definition(validator: &Validator) -> Json {
    validator.definition().to_json()
}

/// `{valid: true, errors: [], parameters}` with defaults filled in, or
/// `{valid: false, errors}` listing every problem.
pub fn validate_parameters(validator: &Validator, parameters: &Json) -> Json {
    let mut errors = ValidationErrors::new();
    match validator.validate_field(Some(parameters), &mut errors) {
        Some(typed) => valid(parameters_json(&typed)),
        None => invalid(&errors),
    }
}

/// Checks a whole start-execution body (`target`, `parameters`, deadlines,
/// `clientToken`) at `now` (epoch seconds) exactly as
/// `POST /commands/{id}/executions` will.
pub fn validate_start(validator: &Validator, body: &Json, now_secs: f64) -> Json {
    let now = match at(now_secs) {
        Ok(now) => now,
        Err(errors) => return invalid(&errors),
    };
    match StartExecution::parse(body, validator, now) {
        Ok(start) => valid(parameters_json(&start.parameters)),
        Err(errors) => invalid(&errors),
    }
}

/// Checks a whole `POST /jobs` body (its `commandId` already resolved to
/// `validator`) at `now` exactly as the API will.
pub fn validate_job(validator: &Validator, body: &Json, now_secs: f64) -> Json {
    let now = match at(now_secs) {
        Ok(now) => now,
        Err(errors) => return invalid(&errors),
    };
    match CreateJob::parse(body, validator, now) {
        Ok(job) => valid(parameters_json(&job.parameters)),
        Err(errors) => invalid(&errors),
    }
}

/// A job's `targets` from what a person types (`dev-1, dev-2` or
/// `group:fleet`): `{ok: true, targets}` or `{ok: false, error}`.
pub fn job_targets(text: &str) -> Json {
    match targets_from_text(text) {
        Ok(targets) => Json::object([("ok", Json::Bool(true)), ("targets", targets)]),
        Err(error) => refused(&error),
    }
}

/// Applies a status change by `actor` at `now` (epoch seconds) to an
/// execution: `{ok: true, execution}` with the record as the server would
/// store it, or `{ok: false, code, message, ...}` with the server's error.
/// An operator's change is a cancel, read as `POST
/// /executions/{id}/cancel` reads its body (`force`, `expectedVersion`,
/// `statusReason`, `clientToken`; a `status`, if given, must be CANCELED).
pub fn check_status_update(execution: &Json, update: &Json, actor: &str, now_secs: f64) -> Json {
    let mut errors = ValidationErrors::new();
    let current = match CommandExecution::from_json(execution) {
        Ok(e) => Some(e),
        Err(why) => {
            errors.add(
                "execution",
                ValidationCode::InvalidValue,
                crate::text::msg!["not an execution record: ", why],
            );
            None
        }
    };
    let actor = errors.collect(parse_actor(actor, "actor"));
    let now = errors.collect(at(now_secs).map_err(|e| e.0[0].clone()));
    let plan = match (actor, now) {
        (Some(actor), Some(now)) => match plan_for(actor, update, now, &mut errors) {
            Ok(plan) => plan,
            // The table allows this actor that status from nowhere.
            Err(error) if errors.is_empty() => return transition_failure(&error),
            Err(_) => None,
        },
        _ => None,
    };
    let (Some(current), Some(plan)) = (current, plan) else {
        return failure(
            "ValidationException",
            "the update is not valid",
            Json::object([("errors", errors_json(&errors))]),
        );
    };
    match plan.apply(&current) {
        Ok(next) => Json::object([("ok", Json::Bool(true)), ("execution", next.to_json())]),
        Err(error) => transition_failure(&error),
    }
}

/// The plan the API would make for `actor`'s update (`None` when the
/// update is not valid: the problems are in `errors`).
fn plan_for(
    actor: Actor,
    update: &Json,
    now: Timestamp,
    errors: &mut ValidationErrors,
) -> Result<Option<TransitionPlan>, TransitionError> {
    if actor == Actor::Operator {
        let mut body = update.clone();
        if let Json::Object(map) = &mut body {
            if map.get("status").and_then(Json::as_str) == Some(ExecutionStatus::Canceled.as_str())
            {
                map.remove("status");
            }
        }
        return Ok(match CancelExecution::parse(&body) {
            Ok(cancel) => Some(TransitionPlan::cancel(
                cancel.update,
                "operator",
                cancel.force,
                now,
            )),
            Err(e) => {
                errors.0.extend(e.0);
                None
            }
        });
    }
    let update = match StatusUpdate::parse(update) {
        Ok(u) => u,
        Err(e) => {
            errors.0.extend(e.0);
            return Ok(None);
        }
    };
    let Some(to) = update.status else {
        return Ok(None);
    };
    TransitionPlan::new(update, to, actor, now).map(Some)
}

/// Whether an operator may cancel an execution in `status`, and whether
/// it needs `force`: `{allowed, forceRequired}`.
pub fn cancel_options(status: &str) -> Result<Json, Json> {
    let status = parse_status(status, "status").map_err(|e| arguments(&e.into()))?;
    let options = CancelOptions::of(status);
    Ok(Json::object([
        ("allowed", Json::Bool(options.allowed)),
        ("forceRequired", Json::Bool(options.force_required)),
    ]))
}

/// Whether `actor` may move an execution from `from` to `to`, with `force`
/// for an operator's cancel (as the API decides it).
pub fn can_transition(from: &str, to: &str, actor: &str, force: bool) -> Result<Json, Json> {
    let mut errors = ValidationErrors::new();
    let from = errors.collect(parse_status(from, "from"));
    let to = errors.collect(parse_status(to, "to"));
    let actor = errors.collect(parse_actor(actor, "actor"));
    let (Some(from), Some(to), Some(actor)) = (from, to, actor) else {
        return Err(arguments(&errors));
    };
    Ok(Json::Bool(
        allowed_targets(from, actor, force).contains(&to),
    ))
}

/// The statuses `actor` may move an execution to from `status` (an
/// operator's IN_PROGRESS cancel only with `force`).
pub fn allowed_transitions(status: &str, actor: &str, force: bool) -> Result<Json, Json> {
    let mut errors = ValidationErrors::new();
    let status = errors.collect(parse_status(status, "status"));
    let actor = errors.collect(parse_actor(actor, "actor"));
    let (Some(status), Some(actor)) = (status, actor) else {
        return Err(arguments(&errors));
    };
    Ok(Json::Array(
        allowed_targets(status, actor, force)
            .into_iter()
            .map(|s| Json::from(s.as_str()))
            .collect(),
    ))
}

fn allowed_targets(from: ExecutionStatus, actor: Actor, force: bool) -> Vec<ExecutionStatus> {
    from.allowed_targets(actor)
        .iter()
        .copied()
        .filter(|to| {
            *to != ExecutionStatus::Canceled
                || actor != Actor::Operator
                || force
                || !CancelOptions::of(from).force_required
        })
        .collect()
}

/// What canceling a job in `status` does: `{allowed, alreadyCanceled}`
/// (an ended job's cancel is refused; a canceled one's returns it).
pub fn job_cancel_options(status: &str) -> Result<Json, Json> {
    let status = JobStatus::parse(status).ok_or_else(|| {
        let all: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
        ValidationError::new(
            "status",
            ValidationCode::InvalidValue,
            crate::text::msg![
                quote(status),
                " is not a job status; use one of ",
                all.join(", ")
            ],
        )
    });
    let cancel = status.map_err(|e| arguments(&e.into()))?.cancel();
    Ok(Json::object([
        (
            "allowed",
            Json::Bool(cancel == crate::job::JobCancel::Cancel),
        ),
        (
            "alreadyCanceled",
            Json::Bool(cancel == crate::job::JobCancel::AlreadyCanceled),
        ),
    ]))
}

/// Checks a `POST /pipelines` body exactly as the API will, against the
/// command definitions the caller has (`commands`: a list of definitions,
/// as `GET /commands` lists them): `{valid, errors}`.
pub fn validate_pipeline(body: &Json, commands: &Json) -> Json {
    let validators: Vec<Validator> = match commands {
        Json::Array(list) => list.iter().filter_map(|d| compile(d).ok()).collect(),
        _ => Vec::new(),
    };
    let command =
        |id: &crate::ids::CommandId| validators.iter().find(|v| v.definition().command_id == *id);
    match crate::pipeline::CreatePipeline::parse(body, &command) {
        Ok(_) => checked(),
        Err(errors) => invalid(&errors),
    }
}

/// Checks a `POST /pipelines/{id}/runs` body for `pipeline` (as `GET
/// /pipelines/{id}` gives it: its id and its stages' names are what a run
/// refers to) at `now` (epoch seconds), exactly as the API will:
/// `{valid, errors}`.
pub fn validate_run(body: &Json, pipeline: &Json, now_secs: f64) -> Result<Json, Json> {
    let now = at(now_secs).map_err(|e| arguments(&e))?;
    let mut errors = ValidationErrors::new();
    let id = pipeline
        .get("pipelineId")
        .and_then(Json::as_str)
        .and_then(|raw| {
            errors.collect(crate::ids::PipelineId::parse_at(raw, "pipeline.pipelineId"))
        });
    let mut stages = Vec::new();
    if let Some(Json::Array(list)) = pipeline.get("stages") {
        for (i, stage) in list.iter().enumerate() {
            let at = crate::text::msg!["pipeline.stages[", i, "].name"];
            let name = stage.get("name").and_then(Json::as_str).unwrap_or_default();
            if let Some(name) = errors.collect(crate::ids::StageName::parse_at(name, &at)) {
                stages.push(crate::pipeline::Stage {
                    name,
                    timeout_seconds: 0,
                    operations: Vec::new(),
                });
            }
        }
    }
    let Some(pipeline_id) = id.filter(|_| errors.is_empty() && !stages.is_empty()) else {
        if errors.is_empty() {
            errors.add(
                "pipeline",
                ValidationCode::WrongType,
                "expected a pipeline: {pipelineId, stages: [{name, …}]}",
            );
        }
        return Err(arguments(&errors));
    };
    let pipeline = crate::pipeline::Pipeline {
        pipeline_id,
        description: None,
        stages,
        created_at: now,
    };
    Ok(
        match crate::pipeline_run::StartRun::parse(body, &pipeline, now) {
            Ok(_) => checked(),
            Err(errors) => invalid(&errors),
        },
    )
}

/// What an operator may do with a run in `status`: `{cancel,
/// alreadyCanceled, forceOnly, resume}` (a CANCELING run can only be
/// canceled again with force; only a HELD run can be resumed).
pub fn run_options(status: &str) -> Result<Json, Json> {
    use crate::pipeline_run::RunStatus;
    let status = RunStatus::parse(status).ok_or_else(|| {
        let all: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
        arguments(
            &ValidationError::new(
                "status",
                ValidationCode::InvalidValue,
                crate::text::msg![
                    quote(status),
                    " is not a run status; use one of ",
                    all.join(", ")
                ],
            )
            .into(),
        )
    })?;
    let (cancel, already, force_only) = match status {
        RunStatus::Scheduled | RunStatus::InProgress | RunStatus::Held => (true, false, false),
        RunStatus::Canceling => (true, false, true),
        RunStatus::Canceled => (false, true, false),
        RunStatus::Completed | RunStatus::Aborted | RunStatus::Stopped => (false, false, false),
    };
    Ok(Json::object([
        ("cancel", Json::Bool(cancel)),
        ("alreadyCanceled", Json::Bool(already)),
        ("forceOnly", Json::Bool(force_only)),
        ("resume", Json::Bool(status == RunStatus::Held)),
    ]))
}

/// Whether `status` is terminal (nothing leaves it).
pub fn is_terminal(status: &str) -> Result<Json, Json> {
    parse_status(status, "status")
        .map(|s| Json::Bool(s.is_terminal()))
        .map_err(|e| arguments(&e.into()))
}

/// Every execution status, in the table's order.
pub fn execution_statuses() -> Json {
    Json::Array(
        ExecutionStatus::ALL
            .iter()
            .map(|s| Json::from(s.as_str()))
            .collect(),
    )
}

/// Parses one typed value (`{"I": 42}`), optionally requiring a type:
/// `{ok: true, type, value, display}` or `{ok: false, error}`.
pub fn parse_typed_value(json: &Json, expected: Option<&str>) -> Json {
    let parsed = match expected {
        None => TypedValue::from_json_at(json, "value"),
        Some(tag) => value_type(tag).and_then(|t| {
            TypedValue::from_json_at(json, "value").and_then(|v| {
                if v.value_type() == t {
                    Ok(v)
                } else {
                    Err(ValidationError::new(
                        "value",
                        ValidationCode::WrongType,
                        crate::text::msg!["expected ", t.describe(), ", got type ", v.value_type()],
                    ))
                }
            })
        }),
    };
    typed_result(parsed)
}

/// A typed value of type `tag` from what a person types into a form
/// (`TypedValue::from_text`): the same result shape as
/// [`parse_typed_value`].
pub fn typed_value_from_text(tag: &str, text: &str) -> Json {
    typed_result(value_type(tag).and_then(|t| TypedValue::from_text(t, text, "value")))
}

/// A typed value as a person reads it ("42", "true", base64 for BIN), or
/// the `CourierError` saying why `json` is not a typed value.
pub fn format_typed_value(json: &Json) -> Result<Json, Json> {
    TypedValue::from_json_at(json, "value")
        .map(|value| Json::from(display(&value)))
        .map_err(|e| thrown("not a typed value", &e.into()))
}

fn typed_result(parsed: Result<TypedValue, ValidationError>) -> Json {
    match parsed {
        Ok(value) => Json::object([
            ("ok", Json::Bool(true)),
            ("type", Json::from(value.value_type().as_str())),
            ("value", value.to_json()),
            ("display", Json::from(display(&value))),
        ]),
        Err(error) => refused(&error),
    }
}

fn value_type(tag: &str) -> Result<ValueType, ValidationError> {
    ValueType::from_tag(tag).ok_or_else(|| {
        ValidationError::new(
            "type",
            ValidationCode::InvalidValue,
            crate::text::msg![
                "unknown type ",
                quote(tag),
                "; use S, B, I, L, D, BIN or UL"
            ],
        )
    })
}

/// A typed value as a person reads it (a D as JavaScript prints numbers,
/// BIN as base64, UL as digits).
pub fn display(value: &TypedValue) -> String {
    match value {
        TypedValue::S(s) => s.clone(),
        TypedValue::B(b) => if *b { "true" } else { "false" }.to_owned(),
        TypedValue::I(i) => crate::text::msg![i],
        TypedValue::L(l) => crate::text::msg![l],
        TypedValue::D(d) => crate::json::number_text(*d),
        TypedValue::Ul(u) => crate::text::msg![u],
        TypedValue::Bin(_) => value.to_json()["BIN"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Parses a status name as the API spells it.
pub fn parse_status(raw: &str, path: &str) -> Result<ExecutionStatus, ValidationError> {
    ExecutionStatus::parse(raw).ok_or_else(|| {
        let all: Vec<&str> = ExecutionStatus::ALL.iter().map(|s| s.as_str()).collect();
        ValidationError::new(
            path,
            ValidationCode::InvalidValue,
            crate::text::msg![quote(raw), " is not a status; use one of ", all.join(", ")],
        )
    })
}

/// Parses an actor name: device, operator or system.
pub fn parse_actor(raw: &str, path: &str) -> Result<Actor, ValidationError> {
    Actor::parse(raw).ok_or_else(|| {
        ValidationError::new(
            path,
            ValidationCode::InvalidValue,
            crate::text::msg![
                quote(raw),
                " is not an actor; use device, operator or system"
            ],
        )
    })
}

fn at(now_secs: f64) -> Result<Timestamp, ValidationErrors> {
    Timestamp::from_secs_f64(now_secs).ok_or_else(|| {
        ValidationError::new(
            "now",
            ValidationCode::OutOfRange,
            "now must be epoch seconds",
        )
        .into()
    })
}

/// `[{path, code, message}, ...]`.
pub fn errors_json(errors: &ValidationErrors) -> Json {
    Json::Array(errors.iter().map(error_json).collect())
}

pub fn error_json(error: &ValidationError) -> Json {
    Json::object([
        ("path", Json::from(error.path.as_str())),
        ("code", Json::from(error.code())),
        ("message", Json::from(error.message.as_str())),
    ])
}

/// The object the module throws: `{code: "ValidationException", message,
/// errors}`.
pub fn thrown(message: &str, errors: &ValidationErrors) -> Json {
    Json::object([
        ("code", Json::from("ValidationException")),
        ("message", Json::from(message)),
        ("errors", errors_json(errors)),
    ])
}

/// Thrown for arguments a function cannot read.
fn arguments(errors: &ValidationErrors) -> Json {
    thrown("invalid arguments", errors)
}

/// Thrown for a JavaScript value that JSON cannot represent: one that
/// refers to itself, or nests deeper than the API's JSON reader allows.
pub fn unreadable(path: &str) -> Json {
    thrown(
        "invalid arguments",
        &ValidationError::new(
            path,
            ValidationCode::InvalidJson,
            crate::text::msg![
                "nests deeper than ",
                MAX_DEPTH,
                " levels (or refers to itself)"
            ],
        )
        .into(),
    )
}

/// How deep a value may nest: the API's JSON reader (serde_json) refuses
/// deeper documents.
pub const MAX_DEPTH: usize = 128;

fn valid(parameters: Json) -> Json {
    Json::object([
        ("valid", Json::Bool(true)),
        ("errors", Json::Array(Vec::new())),
        ("parameters", parameters),
    ])
}

/// A request that passed every check (nothing to return but that).
fn checked() -> Json {
    Json::object([
        ("valid", Json::Bool(true)),
        ("errors", Json::Array(Vec::new())),
    ])
}

fn invalid(errors: &ValidationErrors) -> Json {
    Json::object([
        ("valid", Json::Bool(false)),
        ("errors", errors_json(errors)),
    ])
}

fn refused(error: &ValidationError) -> Json {
    Json::object([("ok", Json::Bool(false)), ("error", error_json(error))])
}

fn transition_failure(error: &TransitionError) -> Json {
    failure(error.code().as_str(), &error.message(), error.details())
}

fn failure(code: &str, message: &str, details: Json) -> Json {
    let mut out = Json::object([
        ("ok", Json::Bool(false)),
        ("code", Json::from(code)),
        ("message", Json::from(message)),
    ]);
    if let (Json::Object(out_map), Json::Object(details)) = (&mut out, details) {
        out_map.extend(details);
    }
    out
}
