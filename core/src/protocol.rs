//! THE DEVICE PROTOCOL: the AWS IoT Jobs device MQTT API, topic for topic and
//! field for field, under a configurable topic root. Parsing request topics
//! and building reply payloads; pure, no I/O (publishing is the functions'
//! job).
//!
//! With root `courier/things/{thingName}/jobs` (the default; use
//! `$aws/things/{thingName}/jobs` on a broker of your own so unmodified AWS
//! IoT Device SDK jobs clients work):
//!
//! | request topic             | API                           | replies on                 |
//! |---------------------------|-------------------------------|----------------------------|
//! | `{root}/get`              | GetPendingJobExecutions       | `{root}/get/accepted|rejected` |
//! | `{root}/start-next`       | StartNextPendingJobExecution  | `{root}/start-next/accepted|rejected` |
//! | `{root}/{jobId}/get`      | DescribeJobExecution (`$next` allowed) | `{root}/{jobId}/get/accepted|rejected` |
//! | `{root}/{jobId}/update`   | UpdateJobExecution            | `{root}/{jobId}/update/accepted|rejected` |
//! | (published by Courier)    | JobExecutionsChanged          | `{root}/notify`            |
//! | (published by Courier)    | NextJobExecutionChanged       | `{root}/notify-next`       |
//!
//! `jobId` is Courier's executionId. Timestamps are epoch seconds (integers),
//! as AWS sends them. Courier's SENT status is shown to devices as QUEUED:
//! the Jobs protocol has no SENT.

use crate::codec::parameters_json;
use crate::device_protocol::DeviceProtocol;
use crate::error::{ValidationCode, ValidationError};
use crate::execution::CommandExecution;
use crate::ids::{ExecutionId, ThingName};
use crate::json::{Json, Object};
use crate::status::ExecutionStatus;
use crate::text::quote;
use crate::time::Timestamp;
use serde::Serialize;

pub const THING_PLACEHOLDER: &str = "{thingName}";
pub const DEFAULT_ROOT: &str = "courier/things/{thingName}/jobs";
/// The `jobId` that names a device's next pending execution.
pub const NEXT: &str = "$next";

/// The topic root, with `{thingName}` standing for one whole level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRoot {
    levels: Vec<String>,
    thing_level: usize,
}

/// Which Jobs API a request topic names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    GetPending,
    StartNext,
    Describe(JobRef),
    Update(ExecutionId),
}

/// A `jobId` in a topic: an execution, or `$next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobRef {
    Next,
    Execution(ExecutionId),
}

/// A parsed request topic: who asks, and for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequest {
    pub thing: ThingName,
    pub kind: RequestKind,
}

/// The rejection codes of the Jobs protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RejectedCode {
    InvalidTopic,
    InvalidJson,
    InvalidRequest,
    InvalidStateTransition,
    ResourceNotFound,
    VersionMismatch,
    InternalError,
    RequestThrottled,
    TerminalStateReached,
}

impl RejectedCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidTopic => "InvalidTopic",
            Self::InvalidJson => "InvalidJson",
            Self::InvalidRequest => "InvalidRequest",
            Self::InvalidStateTransition => "InvalidStateTransition",
            Self::ResourceNotFound => "ResourceNotFound",
            Self::VersionMismatch => "VersionMismatch",
            Self::InternalError => "InternalError",
            Self::RequestThrottled => "RequestThrottled",
            Self::TerminalStateReached => "TerminalStateReached",
        }
    }
}

impl TopicRoot {
    /// Parses a root such as `courier/things/{thingName}/jobs`: levels
    /// separated by `/`, exactly one of them `{thingName}`, no wildcards.
    pub fn parse(template: &str) -> Result<Self, ValidationError> {
        let bad = |why: &str| {
            ValidationError::new(
                "topicRoot",
                ValidationCode::InvalidValue,
                crate::text::msg![quote(template), ": ", why],
            )
        };
        let levels: Vec<String> = template.split('/').map(str::to_owned).collect();
        if levels.iter().any(|l| l.is_empty()) {
            return Err(bad("empty topic level"));
        }
        if levels.iter().any(|l| l.contains('+') || l.contains('#')) {
            return Err(bad("wildcards are not allowed in the root"));
        }
        let placeholders: Vec<usize> = levels
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains(THING_PLACEHOLDER))
            .map(|(i, _)| i)
            .collect();
        match placeholders.as_slice() {
            [i] if levels[*i] == THING_PLACEHOLDER => Ok(Self {
                levels,
                thing_level: *i,
            }),
            [_] => Err(bad("{thingName} must be a whole topic level")),
            _ => Err(bad("exactly one {thingName} level is needed")),
        }
    }

    /// The root for one thing, e.g. `courier/things/dev-1/jobs`.
    pub fn for_thing(&self, thing: &ThingName) -> String {
        let mut levels = self.levels.clone();
        levels[self.thing_level] = thing.to_string();
        levels.join("/")
    }

    /// The subscription filter for every thing's requests (`+` for the thing).
    pub fn filter(&self, suffix: &str) -> String {
        let mut levels = self.levels.clone();
        levels[self.thing_level] = "+".into();
        crate::text::msg![levels.join("/"), "/", suffix]
    }

    /// Parses a request topic. Anything that is under the root but is not a
    /// request is `InvalidTopic`.
    pub fn parse_request(&self, topic: &str) -> Result<DeviceRequest, ValidationError> {
        let invalid =
            |why: String| ValidationError::new("topic", ValidationCode::InvalidValue, why);
        let parts: Vec<&str> = topic.split('/').collect();
        if parts.len() <= self.levels.len() {
            return Err(invalid(crate::text::msg![
                quote(topic),
                " is not a jobs request topic"
            ]));
        }
        for (i, level) in self.levels.iter().enumerate() {
            if i != self.thing_level && parts[i] != level {
                return Err(invalid(crate::text::msg![
                    quote(topic),
                    " is not under the topic root"
                ]));
            }
        }
        let thing = ThingName::parse_at(parts[self.thing_level], "thingName")?;
        let kind = match &parts[self.levels.len()..] {
            ["get"] => RequestKind::GetPending,
            ["start-next"] => RequestKind::StartNext,
            [job, "get"] if *job == NEXT => RequestKind::Describe(JobRef::Next),
            [job, "get"] => {
                RequestKind::Describe(JobRef::Execution(ExecutionId::parse_at(job, "jobId")?))
            }
            [job, "update"] => RequestKind::Update(ExecutionId::parse_at(job, "jobId")?),
            _ => {
                return Err(invalid(crate::text::msg![
                    quote(topic),
                    " is not a jobs request topic"
                ]))
            }
        };
        Ok(DeviceRequest { thing, kind })
    }

    /// The thing of a topic under this root, if the topic is under it at all
    /// (used to reject an unknown request with InvalidTopic).
    pub fn thing_of(&self, topic: &str) -> Option<ThingName> {
        let parts: Vec<&str> = topic.split('/').collect();
        let under = parts.len() > self.levels.len()
            && self
                .levels
                .iter()
                .enumerate()
                .all(|(i, level)| i == self.thing_level || parts[i] == level);
        if under {
            ThingName::parse(parts[self.thing_level]).ok()
        } else {
            None
        }
    }

    /// Where the reply to `request` goes.
    pub fn reply_topic(&self, request: &DeviceRequest, accepted: bool) -> String {
        let outcome = if accepted { "accepted" } else { "rejected" };
        let root = self.for_thing(&request.thing);
        match &request.kind {
            RequestKind::GetPending => crate::text::msg![root, "/get/", outcome],
            RequestKind::StartNext => crate::text::msg![root, "/start-next/", outcome],
            RequestKind::Describe(JobRef::Next) => {
                crate::text::msg![root, "/", NEXT, "/get/", outcome]
            }
            RequestKind::Describe(JobRef::Execution(id)) => {
                crate::text::msg![root, "/", id, "/get/", outcome]
            }
            RequestKind::Update(id) => crate::text::msg![root, "/", id, "/update/", outcome],
        }
    }

    pub fn notify_topic(&self, thing: &ThingName) -> String {
        crate::text::msg![self.for_thing(thing), "/notify"]
    }

    pub fn notify_next_topic(&self, thing: &ThingName) -> String {
        crate::text::msg![self.for_thing(thing), "/notify-next"]
    }
}

/// The Jobs status a device sees for a Courier status.
pub const fn job_status(status: ExecutionStatus) -> &'static str {
    match status {
        ExecutionStatus::Queued | ExecutionStatus::Sent => "QUEUED",
        ExecutionStatus::InProgress => "IN_PROGRESS",
        ExecutionStatus::Succeeded => "SUCCEEDED",
        ExecutionStatus::Failed => "FAILED",
        ExecutionStatus::Rejected => "REJECTED",
        ExecutionStatus::TimedOut => "TIMED_OUT",
        ExecutionStatus::Canceled => "CANCELED",
    }
}

/// The job document a device receives: its command's template filled from
/// the execution, if the command has one, else the command and its typed
/// parameters.
pub fn job_document(execution: &CommandExecution) -> Json {
    let standard = || {
        Json::object([
            ("commandId", Json::from(execution.command_id.as_str())),
            ("parameters", parameters_json(&execution.parameters)),
        ])
    };
    let Some(template) = &execution.document_template else {
        return standard();
    };
    // The template was checked against the command's parameters when the
    // command was defined, and every execution has a value for each it
    // names; should it still fail, the device gets the standard document
    // rather than nothing.
    crate::payload_template::document(
        template,
        DeviceProtocol::Jobs,
        &execution.parameters,
        execution.execution_timeout_seconds,
    )
    .unwrap_or_else(|_| standard())
}

/// JobExecutionSummary.
pub fn summary(execution: &CommandExecution) -> Json {
    let mut out = Json::object([
        ("jobId", Json::from(execution.execution_id.as_str())),
        ("executionNumber", Json::from(execution.execution_number)),
        ("versionNumber", Json::from(execution.version)),
        ("queuedAt", Json::from(execution.created_at.epoch_secs())),
        (
            "lastUpdatedAt",
            Json::from(execution.last_updated_at.epoch_secs()),
        ),
    ]);
    if let Some(started) = execution.started_at {
        out.set("startedAt", started.epoch_secs());
    }
    out
}

fn details(execution: &CommandExecution) -> Json {
    Json::Object(
        execution
            .status_details
            .iter()
            .map(|(k, v)| (k.clone(), Json::from(v.as_str())))
            .collect(),
    )
}

/// JobExecutionState.
pub fn state(execution: &CommandExecution) -> Json {
    Json::object([
        ("status", Json::from(job_status(execution.status))),
        ("statusDetails", details(execution)),
        ("versionNumber", Json::from(execution.version)),
    ])
}

/// JobExecutionData, with the job document unless `include_document` is false.
pub fn data(execution: &CommandExecution, include_document: bool) -> Json {
    let mut out = summary(execution);
    out.set("thingName", execution.target.as_str());
    out.set("status", job_status(execution.status));
    out.set("statusDetails", details(execution));
    if include_document {
        out.set("jobDocument", job_document(execution));
    }
    out
}

/// JobExecutionData as DescribeJobExecution and StartNextPendingJobExecution
/// answer it at `now`: [`data`], with `approximateSecondsBeforeTimedOut`
/// while a deadline applies (the AWS model's JobExecution field).
pub fn data_at(execution: &CommandExecution, include_document: bool, now: Timestamp) -> Json {
    let mut out = data(execution, include_document);
    if let Some(seconds) = seconds_before_timed_out(execution, now) {
        out.set("approximateSecondsBeforeTimedOut", Json::from(seconds));
    }
    out
}

/// Whole seconds (rounded up, never below 0) until the deadline that applies
/// to `execution` in its status fires; `None` once it is terminal.
pub fn seconds_before_timed_out(execution: &CommandExecution, now: Timestamp) -> Option<i64> {
    let (at, _) = execution.expiry()?;
    let millis = at.millis().saturating_sub(now.millis()).max(0);
    Some(millis.div_euclid(1000) + i64::from(millis.rem_euclid(1000) != 0))
}

/// A device's next execution among its pending ones (any order): the oldest
/// IN_PROGRESS one, else the oldest QUEUED or SENT one.
pub fn next_pending(pending: &[CommandExecution]) -> Option<&CommandExecution> {
    let oldest = |wanted: fn(ExecutionStatus) -> bool| {
        pending
            .iter()
            .filter(|e| wanted(e.status))
            .min_by_key(|e| (e.created_at, e.execution_id.clone()))
    };
    oldest(|s| s == ExecutionStatus::InProgress)
        .or_else(|| oldest(|s| matches!(s, ExecutionStatus::Queued | ExecutionStatus::Sent)))
}

/// GetPendingJobExecutions' accepted payload from a device's pending
/// executions (in any order): in progress, then queued, oldest first.
pub fn pending_reply(
    pending: &[CommandExecution],
    client_token: Option<&str>,
    now: Timestamp,
) -> Json {
    let mut sorted: Vec<&CommandExecution> =
        pending.iter().filter(|e| !e.status.is_terminal()).collect();
    sorted.sort_by_key(|e| (e.created_at, e.execution_id.clone()));
    let in_progress: Vec<Json> = sorted
        .iter()
        .filter(|e| e.status == ExecutionStatus::InProgress)
        .map(|e| summary(e))
        .collect();
    let queued: Vec<Json> = sorted
        .iter()
        .filter(|e| e.status != ExecutionStatus::InProgress)
        .map(|e| summary(e))
        .collect();
    reply(
        Json::object([
            ("inProgressJobs", Json::Array(in_progress)),
            ("queuedJobs", Json::Array(queued)),
        ]),
        client_token,
        now,
    )
}

/// JobExecutionsChanged (`notify`): the pending list by status.
pub fn jobs_changed(pending: &[CommandExecution], now: Timestamp) -> Json {
    let reply = pending_reply(pending, None, now);
    let mut jobs = Object::new();
    for (status, key) in [("IN_PROGRESS", "inProgressJobs"), ("QUEUED", "queuedJobs")] {
        if reply[key].as_array().is_some_and(|a| !a.is_empty()) {
            jobs.insert(status.to_owned(), reply[key].clone());
        }
    }
    Json::object([
        ("jobs", Json::Object(jobs)),
        ("timestamp", Json::from(now.epoch_secs())),
    ])
}

/// NextJobExecutionChanged (`notify-next`); no `execution` when none is left.
pub fn next_changed(next: Option<&CommandExecution>, now: Timestamp) -> Json {
    let mut out = Json::object([("timestamp", Json::from(now.epoch_secs()))]);
    if let Some(execution) = next {
        out.set("execution", data(execution, true));
    }
    out
}

/// Which execution a device's next one is, as text to remember what it was
/// told: `{executionId}#{executionNumber}` (a new attempt is a new next), or
/// empty when nothing is pending.
pub fn next_identity(next: Option<&CommandExecution>) -> String {
    next.map_or_else(String::new, |e| {
        crate::text::msg![e.execution_id.as_str(), "#", e.execution_number]
    })
}

/// Whether NextJobExecutionChanged (`notify-next`) is due: AWS publishes it
/// only when the next execution changes, not when its details do. `told` is
/// what the device was last told (`None`: nothing recorded, so it is told
/// unless nothing is pending).
pub fn next_is_news(told: Option<&str>, next: &str) -> bool {
    match told {
        Some(told) => told != next,
        None => !next.is_empty(),
    }
}

/// A rejected reply. `current` is included for VersionMismatch and
/// InvalidStateTransition, as AWS does.
pub fn rejected(
    code: RejectedCode,
    message: &str,
    client_token: Option<&str>,
    current: Option<&CommandExecution>,
    now: Timestamp,
) -> Json {
    let mut out = Json::object([
        ("code", Json::from(code.as_str())),
        ("message", Json::from(message)),
    ]);
    if let (RejectedCode::VersionMismatch | RejectedCode::InvalidStateTransition, Some(current)) =
        (code, current)
    {
        out.set("executionState", state(current));
    }
    reply(out, client_token, now)
}

/// A reply or notification body stamped as AWS stamps them: `timestamp`
/// (epoch seconds) and, when the request had one, its `clientToken` echoed.
pub fn reply(mut body: Json, client_token: Option<&str>, now: Timestamp) -> Json {
    body.set("timestamp", now.epoch_secs());
    if let Some(token) = client_token {
        body.set("clientToken", token);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::next_is_news;

    #[test]
    fn notify_next_is_news_only_when_the_next_execution_changes() {
        assert!(!next_is_news(None, ""), "never told, nothing pending");
        assert!(next_is_news(None, "e1#1"), "never told, something pending");
        assert!(!next_is_news(Some("e1#1"), "e1#1"), "the same next");
        assert!(next_is_news(Some("e1#1"), "e1#2"), "a new attempt");
        assert!(next_is_news(Some("e1#1"), "e2#1"), "another execution");
        assert!(next_is_news(Some("e1#1"), ""), "the queue emptied");
        assert!(!next_is_news(Some(""), ""), "still empty");
    }
}
