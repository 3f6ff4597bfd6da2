//! THE ROUTES: the `api` Lambda's HTTP entry point (API Gateway HTTP API v2
//! and function URLs). A request reads top to bottom: [`handle`] →
//! authentication and the route's scope (`auth`) → the route's operation,
//! scoped to the caller's tenant (`crate::ops`) → the reply, or the one
//! error mapping (`reply`). I/O only through the operations.
//!
//! | method | path                                  | scope  | what                                   |
//! |--------|---------------------------------------|--------|----------------------------------------|
//! | POST   | /commands                             | write  | create a command definition            |
//! | GET    | /commands                             | read   | list commands (limit, nextToken)       |
//! | GET    | /commands/{commandId}                 | read   | get a command                          |
//! | POST   | /commands/{commandId}/executions      | write  | start an execution on a device         |
//! | GET    | /executions/{executionId}             | read   | get an execution (includeResult)       |
//! | GET    | /executions?target=|commandId=        | read   | list executions (status, limit, nextToken) |
//! | POST   | /executions/{executionId}/cancel      | cancel | cancel an execution                    |
//! | POST   | /jobs                                 | write  | create a job (one command, many devices) |
//! | GET    | /jobs                                 | read   | list jobs, newest first (limit, nextToken) |
//! | GET    | /jobs/{jobId}                         | read   | get a job with its statistics          |
//! | GET    | /jobs/{jobId}/executions              | read   | a job's executions (status, limit, nextToken) |
//! | POST   | /jobs/{jobId}/cancel                  | cancel | cancel a job (force)                   |
//! | POST   | /pipelines                            | write  | create a pipeline (stages of operations) |
//! | GET    | /pipelines                            | read   | list pipelines (limit, nextToken)      |
//! | GET    | /pipelines/{pipelineId}               | read   | get a pipeline                         |
//! | POST   | /pipelines/{pipelineId}/runs          | write  | run it over devices, in waves          |
//! | GET    | /pipelines/{pipelineId}/runs          | read   | its runs, newest first (limit, nextToken) |
//! | GET    | /pipelines/{pipelineId}/runs/{runId}  | read   | a run with its counts per wave and stage |
//! | GET    | /pipelines/{pipelineId}/runs/{runId}/targets | read | its devices (status, limit, nextToken) |
//! | POST   | /pipelines/{pipelineId}/runs/{runId}/cancel  | cancel | cancel a run (force)           |
//! | POST   | /pipelines/{pipelineId}/runs/{runId}/resume  | write  | pass the gate a HELD run waits at |
//! | GET    | /health                               | none   | liveness and version                   |
//! | GET    | /openapi.json                         | none   | this API's OpenAPI 3.1 document        |

use super::auth::{AuthSettings, Scope};
use super::openapi;
use super::reply::{json_body, Cors, Reply};
use crate::error::ServiceError;
use crate::ops::executions::ListExecutions;
use crate::ops::Courier;
use crate::platform::publisher::Publisher;
use crate::platform::thing_groups::ThingGroups;
use crate::store::pipeline_store::PipelineStore;
use courier_core::protocol::TopicRoot;
use courier_core::text::quote;
use courier_core::{Timestamp, ValidationCode};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

/// How the API answers: CORS, who callers are, and whether it delivers
/// the executions it creates itself.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub cors: Cors,
    pub auth: AuthSettings,
    /// Direct delivery (`Courier::deliver_now`) under this Jobs topic root;
    /// `None` leaves delivery to the stream (`DIRECT_DELIVERY=off`).
    pub direct_delivery: Option<TopicRoot>,
}

/// Handles one HTTP request. Never fails: every error becomes a JSON response.
pub async fn handle<S: PipelineStore, G: ThingGroups, P: Publisher>(
    courier: &Courier<S>,
    groups: &G,
    publisher: &P,
    settings: &ApiSettings,
    request: Request,
    now: Timestamp,
) -> Result<Response<Body>, lambda_http::Error> {
    let request_id = request
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .unwrap_or_default();
    let method = request.method().clone();
    let path = match request.raw_http_path() {
        "" => request.uri().path().to_owned(),
        raw => raw.to_owned(),
    };
    // Boxed to keep the future's type shallow (compiler layout limit).
    let response = match Box::pin(route(
        courier,
        (groups, publisher),
        settings,
        &request,
        &method,
        &path,
        now,
        &request_id,
    ))
    .await
    {
        Ok(response) => response,
        Err(err) => Reply::error(&err, &method, &path),
    };
    Ok(response.finish(&settings.cors, &request_id))
}

/// What a route needs: reading, writing, or cancelling.
fn required_scope(method: &Method, segments: &[&str]) -> Scope {
    match (method.as_str(), segments.last()) {
        ("GET", _) => Scope::Read,
        ("POST", Some(&"cancel" | &"clear")) | ("DELETE", _) => Scope::Cancel,
        _ => Scope::Write,
    }
}

#[allow(clippy::too_many_arguments)] // one request's parts, passed through once
async fn route<S: PipelineStore, G: ThingGroups, P: Publisher>(
    courier: &Courier<S>,
    (groups, publisher): (&G, &P),
    settings: &ApiSettings,
    request: &Request,
    method: &Method,
    path: &str,
    now: Timestamp,
    request_id: &str,
) -> Result<Reply, ServiceError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let query = request.query_string_parameters();
    let param = |name: &str| query.first(name).map(str::to_owned);
    if method == Method::OPTIONS {
        return Ok(Reply::empty(StatusCode::NO_CONTENT));
    }
    if (method.as_str(), segments.as_slice()) == ("GET", ["health"].as_slice()) {
        return Ok(Reply::json(
            200,
            &json!({ "status": "ok", "version": courier_core::VERSION }),
        ));
    }
    if (method.as_str(), segments.as_slice()) == ("GET", ["openapi.json"].as_slice()) {
        return Ok(openapi::reply());
    }
    let principal = settings.auth.authenticate(request)?;
    principal.require(required_scope(method, &segments))?;
    // From here on every key is the caller's tenant's.
    let courier = &courier.for_tenant(&principal.tenant);
    let caller = principal.subject.as_str();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["commands"]) => {
            let (command, created) = courier.create_command(&json_body(request)?, now).await?;
            let reply = Reply::json(if created { 201 } else { 200 }, &command);
            Ok(reply.location(format!("/commands/{}", command.command_id)))
        }
        ("GET", ["commands"]) => Ok(Reply::json(
            200,
            &courier
                .list_commands(param("limit").as_deref(), param("nextToken").as_deref())
                .await?,
        )),
        ("GET", ["commands", id]) => Ok(Reply::json(200, &courier.get_command(id).await?)),
        ("POST", ["commands", id, "executions"]) => {
            let (execution, created) = courier
                .start_execution_as(
                    id,
                    &json_body(request)?,
                    caller,
                    principal.require(Scope::Cancel).err(),
                    now,
                )
                .await?;
            // Delivered now rather than when the stream gets to it.
            let execution = match (&settings.direct_delivery, created) {
                (Some(root), true) => courier.deliver_now(root, publisher, execution, now).await,
                _ => execution,
            };
            let reply = Reply::json(if created { 201 } else { 200 }, &execution);
            Ok(reply.location(format!("/executions/{}", execution.execution_id)))
        }
        ("GET", ["executions"]) => {
            let params = ListExecutions {
                target: param("target"),
                command_id: param("commandId"),
                target_arn: param("targetArn"),
                command_arn: param("commandArn"),
                status: param("status"),
                sort_order: param("sortOrder"),
                started_after: param("startedAfter"),
                started_before: param("startedBefore"),
                completed_after: param("completedAfter"),
                completed_before: param("completedBefore"),
                limit: param("limit"),
                next_token: param("nextToken"),
            };
            Ok(Reply::json(
                200,
                &courier.list_executions(&params, now).await?,
            ))
        }
        ("GET", ["executions", id]) => {
            let mut execution = courier.get_execution(id, now).await?;
            match param("includeResult").as_deref() {
                None | Some("true") => {}
                Some("false") => execution.result.clear(),
                Some(other) => {
                    return Err(ServiceError::validation(
                        "includeResult",
                        ValidationCode::InvalidValue,
                        format!("includeResult is true or false, got {}", quote(other)),
                    ))
                }
            }
            Ok(Reply::json(200, &execution))
        }
        ("DELETE", ["executions", id]) => {
            courier.delete_execution(id, now).await?;
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        }
        ("POST", ["executions", id, "cancel"]) => Ok(Reply::json(
            200,
            &courier
                .cancel_execution(id, &json_body(request)?, caller, now, request_id)
                .await?,
        )),
        ("GET", ["things", thing, "queue"]) => {
            Ok(Reply::json(200, &courier.thing_queue(thing, now).await?))
        }
        ("POST", ["things", thing, "queue", "clear"]) => Ok(Reply::json(
            200,
            &courier
                .clear_queue(thing, &json_body(request)?, caller, now, request_id)
                .await?,
        )),
        ("POST", ["jobs"]) => {
            let (job, created) = courier
                .create_job(groups, &json_body(request)?, now)
                .await?;
            let reply = Reply::json(if created { 201 } else { 200 }, &job);
            Ok(reply.location(format!("/jobs/{}", job.job.job_id)))
        }
        ("GET", ["jobs"]) => Ok(Reply::json(
            200,
            &courier
                .list_jobs(
                    param("limit").as_deref(),
                    param("nextToken").as_deref(),
                    now,
                )
                .await?,
        )),
        ("GET", ["jobs", id]) => Ok(Reply::json(200, &courier.get_job(id, now).await?)),
        ("GET", ["jobs", id, "executions"]) => Ok(Reply::json(
            200,
            &courier
                .list_job_executions(
                    id,
                    param("status").as_deref(),
                    param("limit").as_deref(),
                    param("nextToken").as_deref(),
                    now,
                )
                .await?,
        )),
        ("POST", ["jobs", id, "cancel"]) => Ok(Reply::json(
            200,
            &courier
                .cancel_job(id, &json_body(request)?, caller, now)
                .await?,
        )),
        ("POST", ["pipelines"]) => {
            let (pipeline, created) = courier.create_pipeline(&json_body(request)?, now).await?;
            let reply = Reply::json(if created { 201 } else { 200 }, &pipeline);
            Ok(reply.location(format!("/pipelines/{}", pipeline.pipeline_id)))
        }
        ("GET", ["pipelines"]) => Ok(Reply::json(
            200,
            &courier
                .list_pipelines(param("limit").as_deref(), param("nextToken").as_deref())
                .await?,
        )),
        ("GET", ["pipelines", id]) => Ok(Reply::json(200, &courier.get_pipeline(id).await?)),
        ("POST", ["pipelines", id, "runs"]) => {
            let (run, created) = courier
                .start_run(groups, id, &json_body(request)?, now)
                .await?;
            let reply = Reply::json(if created { 201 } else { 200 }, &run);
            Ok(reply.location(format!("/pipelines/{id}/runs/{}", run.run.run_id)))
        }
        ("GET", ["pipelines", id, "runs"]) => Ok(Reply::json(
            200,
            &courier
                .list_runs(
                    id,
                    param("limit").as_deref(),
                    param("nextToken").as_deref(),
                    now,
                )
                .await?,
        )),
        ("GET", ["pipelines", id, "runs", run]) => {
            Ok(Reply::json(200, &courier.get_run(id, run, now).await?))
        }
        ("GET", ["pipelines", id, "runs", run, "targets"]) => Ok(Reply::json(
            200,
            &courier
                .list_run_targets(
                    id,
                    run,
                    param("status").as_deref(),
                    param("limit").as_deref(),
                    param("nextToken").as_deref(),
                    now,
                )
                .await?,
        )),
        ("POST", ["pipelines", id, "runs", run, "cancel"]) => Ok(Reply::json(
            200,
            &courier
                .cancel_run(id, run, &json_body(request)?, caller, now)
                .await?,
        )),
        ("POST", ["pipelines", id, "runs", run, "resume"]) => Ok(Reply::json(
            200,
            &courier.resume_run(id, run, caller, now).await?,
        )),
        (
            _,
            ["health"]
            | ["openapi.json"]
            | ["commands", ..]
            | ["executions", ..]
            | ["jobs", ..]
            | ["things", ..]
            | ["pipelines", ..],
        ) => Err(not_allowed(method, path, &segments)),
        _ => Err(ServiceError::NoRoute {
            method: method.to_string(),
            path: path.to_owned(),
        }),
    }
}

fn not_allowed(method: &Method, path: &str, segments: &[&str]) -> ServiceError {
    let allow = match segments {
        ["commands"] | ["jobs"] | ["pipelines"] | ["pipelines", _, "runs"] => "GET, POST",
        ["commands", _, "executions"]
        | ["executions", _, "cancel"]
        | ["jobs", _, "cancel"]
        | ["pipelines", _, "runs", _, "cancel" | "resume"]
        | ["things", _, "queue", "clear"] => "POST",
        ["executions", _] => "GET, DELETE",
        _ => "GET",
    };
    ServiceError::MethodNotAllowed {
        method: method.to_string(),
        path: path.to_owned(),
        allow,
    }
}
