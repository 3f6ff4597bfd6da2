//! JOBS: one command sent to a whole fleet — the job request (targets,
//! scheduling, rollout, abort and retry rules, in AWS IoT Jobs' field names),
//! the job's status, and the statistics that drive rollout and abort. Pure,
//! no I/O: the functions fan out and keep the counts.
//!
//! Statistics count devices and attempts separately: `devices` holds, per
//! execution status, how many targets are in it now (each device once), and
//! `attempts` how many attempts were started in all (a retry is one more
//! attempt of the same device). AWS IoT Jobs reports failures per attempt, so
//! a device retried three times counts three failures there; here it counts
//! once in `devices` and three times in `attempts`.

use crate::error::{ValidationCode, ValidationError, ValidationErrors};
use crate::ids::{JobId, ThingName};
use crate::json::number_text;
use crate::json::{Json, Object};
use crate::retry::RetryPolicy;
use crate::schema::{Parameters, Validator};
use crate::status::ExecutionStatus;
use crate::text::{json_kind, shown};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// At most this many explicit targets in one job.
pub const MAX_EXPLICIT_TARGETS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Waiting for `startTime`.
    Scheduled,
    InProgress,
    /// Every execution ended.
    Completed,
    /// An operator canceled it.
    Canceled,
    /// Its abort rule fired.
    Aborted,
}

/// What an operator's cancel of a job in a status does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobCancel {
    /// The job becomes CANCELED and what has not ended is canceled.
    Cancel,
    /// Already canceled: the job is returned as it is (a retry).
    AlreadyCanceled,
    /// Completed or aborted: refused (409).
    Ended,
}

impl JobStatus {
    pub const ALL: [Self; 5] = [
        Self::Scheduled,
        Self::InProgress,
        Self::Completed,
        Self::Canceled,
        Self::Aborted,
    ];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// What canceling a job in this status does.
    pub const fn cancel(self) -> JobCancel {
        match self {
            Self::Scheduled | Self::InProgress => JobCancel::Cancel,
            Self::Canceled => JobCancel::AlreadyCanceled,
            Self::Completed | Self::Aborted => JobCancel::Ended,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "SCHEDULED",
            Self::InProgress => "IN_PROGRESS",
            Self::Completed => "COMPLETED",
            Self::Canceled => "CANCELED",
            Self::Aborted => "ABORTED",
        }
    }

    pub const fn is_terminal(self) -> bool {
        match self {
            Self::Scheduled | Self::InProgress => false,
            Self::Completed | Self::Canceled | Self::Aborted => true,
        }
    }
}

/// Which devices a job goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Targets {
    /// An explicit list (duplicates removed, order kept).
    Things(Vec<ThingName>),
    /// An AWS IoT thing group, resolved when the job starts.
    ThingGroup { name: String, recursive: bool },
    /// The things an AWS IoT fleet-index query (`SearchIndex` on
    /// `AWS_Things`) finds when the job starts, e.g.
    /// `attributes.model:X100 AND connectivity.connected:true`.
    Query { query_string: String },
}

/// The longest fleet-index query accepted.
pub const MAX_QUERY_CHARS: usize = 1024;

/// The failures an abort or retry rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureType {
    Failed,
    Rejected,
    TimedOut,
    All,
}

impl FailureType {
    pub const ALL: [Self; 4] = [Self::Failed, Self::Rejected, Self::TimedOut, Self::All];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "FAILED",
            Self::Rejected => "REJECTED",
            Self::TimedOut => "TIMED_OUT",
            Self::All => "ALL",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    /// Whether an execution ending in `status` counts as this failure.
    pub const fn counts(self, status: ExecutionStatus) -> bool {
        match status {
            ExecutionStatus::Failed => matches!(self, Self::Failed | Self::All),
            ExecutionStatus::Rejected => matches!(self, Self::Rejected | Self::All),
            ExecutionStatus::TimedOut => matches!(self, Self::TimedOut | Self::All),
            ExecutionStatus::Queued
            | ExecutionStatus::Sent
            | ExecutionStatus::InProgress
            | ExecutionStatus::Succeeded
            | ExecutionStatus::Canceled => false,
        }
    }
}

/// `jobExecutionsRolloutConfig`: how fast executions are started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutConfig {
    pub maximum_per_minute: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exponential_rate: Option<ExponentialRate>,
}

/// Start slowly, multiply the rate each time enough devices were notified
/// (or succeeded), up to `maximumPerMinute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExponentialRate {
    pub base_rate_per_minute: u32,
    pub increment_factor: f64,
    pub rate_increase_criteria: RateIncreaseCriteria,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RateIncreaseCriteria {
    NumberOfNotifiedThings(u32),
    NumberOfSucceededThings(u32),
}

/// `abortConfig.criteriaList[]`: abort (and cancel the rest) when this kind
/// of failure reaches `thresholdPercentage` of ended executions, once at
/// least `minNumberOfExecutedThings` have ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbortCriterion {
    pub failure_type: FailureType,
    pub threshold_percentage: f64,
    pub min_number_of_executed_things: u32,
}

/// `jobExecutionsRetryConfig.criteriaList[]`: retry this kind of failure up
/// to `numberOfRetries` times (as new attempts of the same execution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryCriterion {
    pub failure_type: FailureType,
    pub number_of_retries: u32,
}

/// `schedulingConfig`: when executions may start, and when the rest are
/// canceled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scheduling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
}

/// `POST /jobs`, parsed and checked against the command's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateJob {
    pub job_id: Option<JobId>,
    pub parameters: Parameters,
    pub targets: Targets,
    pub rollout: Option<RolloutConfig>,
    pub abort: Vec<AbortCriterion>,
    pub retry: Vec<RetryCriterion>,
    /// Courier's spelling (exclusive with `retry`).
    pub retry_policy: Option<RetryPolicy>,
    pub scheduling: Scheduling,
}

const FIELDS: [&str; 10] = [
    "jobId",
    "commandId",
    "parameters",
    "targets",
    "jobExecutionsRolloutConfig",
    "abortConfig",
    "jobExecutionsRetryConfig",
    "retryPolicy",
    "schedulingConfig",
    "clientToken",
];

impl CreateJob {
    /// Parses a request body (its `commandId` already resolved to
    /// `validator`), reporting every problem at once.
    pub fn parse(
        body: &Json,
        validator: &Validator,
        now: Timestamp,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let Json::Object(map) = body else {
            errors.add(
                "",
                ValidationCode::InvalidJson,
                crate::text::msg!["the body must be a JSON object, got ", json_kind(body)],
            );
            return Err(errors);
        };
        for key in map.keys() {
            if !FIELDS.contains(&key.as_str()) {
                errors.add(
                    key.as_str(),
                    ValidationCode::UnknownField,
                    crate::text::msg!["unknown field; expected one of: ", FIELDS.join(", ")],
                );
            }
        }
        let job_id = match map.get("jobId") {
            None | Some(Json::Null) => None,
            Some(Json::String(raw)) => errors.collect(JobId::parse_at(raw, "jobId")),
            Some(other) => {
                errors.add(
                    "jobId",
                    ValidationCode::WrongType,
                    crate::text::msg!["expected a string, got ", json_kind(other)],
                );
                None
            }
        };
        let parameters = validator.validate_field(map.get("parameters"), &mut errors);
        let targets = parse_targets(map.get("targets"), &mut errors);
        let rollout = map
            .get("jobExecutionsRolloutConfig")
            .filter(|v| !v.is_null())
            .and_then(|v| parse_rollout(v, &mut errors));
        let abort = criteria(
            map.get("abortConfig"),
            "abortConfig",
            &mut errors,
            parse_abort,
        );
        let retry = criteria(
            map.get("jobExecutionsRetryConfig"),
            "jobExecutionsRetryConfig",
            &mut errors,
            parse_retry,
        );
        let retry_policy = match map.get("retryPolicy") {
            None | Some(Json::Null) => None,
            Some(_) if !retry.is_empty() => {
                errors.add(
                    "retryPolicy",
                    ValidationCode::InvalidValue,
                    "give retryPolicy or jobExecutionsRetryConfig (its AWS spelling), not both",
                );
                None
            }
            Some(v) => RetryPolicy::parse(v, "retryPolicy", &mut errors),
        };
        let scheduling = parse_scheduling(map.get("schedulingConfig"), now, &mut errors);
        match (parameters, targets) {
            (Some(parameters), Some(targets)) if errors.is_empty() => Ok(Self {
                job_id,
                parameters,
                targets,
                rollout,
                abort,
                retry,
                retry_policy,
                scheduling,
            }),
            _ => Err(errors),
        }
    }
}

pub(crate) fn object<'a>(
    value: &'a Json,
    path: &str,
    errors: &mut ValidationErrors,
) -> Option<&'a Object> {
    match value {
        Json::Object(map) => Some(map),
        other => {
            errors.add(
                path,
                ValidationCode::WrongType,
                crate::text::msg!["expected an object, got ", json_kind(other)],
            );
            None
        }
    }
}

pub(crate) fn whole(
    map: &Object,
    key: &str,
    path: &str,
    range: (u64, u64),
    errors: &mut ValidationErrors,
) -> Option<u32> {
    let at = crate::text::msg![path, ".", key];
    match map.get(key) {
        None | Some(Json::Null) => {
            errors.add(
                &at,
                ValidationCode::MissingRequired,
                crate::text::msg![key, " is required"],
            );
            None
        }
        Some(v) => match v.as_u64() {
            Some(n) if (range.0..=range.1).contains(&n) => u32::try_from(n).ok(),
            _ => {
                errors.add(
                    &at,
                    ValidationCode::OutOfRange,
                    crate::text::msg![
                        "expected a whole number within ",
                        range.0,
                        "..=",
                        range.1,
                        ", got ",
                        shown(v)
                    ],
                );
                None
            }
        },
    }
}

pub(crate) fn number(
    map: &Object,
    key: &str,
    path: &str,
    range: (f64, f64),
    errors: &mut ValidationErrors,
) -> Option<f64> {
    let at = crate::text::msg![path, ".", key];
    match map.get(key).and_then(Json::as_f64) {
        Some(n) if n >= range.0 && n <= range.1 => Some(n),
        Some(n) => {
            errors.add(
                &at,
                ValidationCode::OutOfRange,
                crate::text::msg![
                    number_text(n),
                    " is outside ",
                    number_text(range.0),
                    "..=",
                    number_text(range.1)
                ],
            );
            None
        }
        None => {
            errors.add(
                &at,
                ValidationCode::MissingRequired,
                crate::text::msg![
                    key,
                    " is required (a number within ",
                    number_text(range.0),
                    "..=",
                    number_text(range.1),
                    ")"
                ],
            );
            None
        }
    }
}

fn failure_type(
    map: &Object,
    path: &str,
    allowed: &[FailureType],
    errors: &mut ValidationErrors,
) -> Option<FailureType> {
    let at = crate::text::msg![path, ".failureType"];
    let parsed = map
        .get("failureType")
        .and_then(Json::as_str)
        .and_then(FailureType::parse);
    match parsed {
        Some(t) if allowed.contains(&t) => Some(t),
        _ => {
            let names: Vec<&str> = allowed.iter().map(|t| t.as_str()).collect();
            errors.add(
                &at,
                ValidationCode::InvalidValue,
                crate::text::msg!["failureType is one of ", names.join(", ")],
            );
            None
        }
    }
}

/// A job's `targets` from what a person types: `group:NAME` for a thing
/// group, `query:TEXT` for a fleet-index query, else thing names separated
/// by commas or white space. The names themselves are checked with the rest
/// of the request.
pub fn targets_from_text(text: &str) -> Result<Json, ValidationError> {
    let missing = || {
        ValidationError::new(
            "targets",
            ValidationCode::MissingRequired,
            "targets is required: thing names, group:NAME or query:TEXT",
        )
    };
    let text = text.trim();
    if let Some(query) = text.strip_prefix("query:") {
        let query = query.trim();
        if query.is_empty() {
            return Err(missing());
        }
        return Ok(Json::object([("query", Json::from(query))]));
    }
    if let Some(group) = text.strip_prefix("group:") {
        let group = group.trim();
        if group.is_empty() {
            return Err(missing());
        }
        return Ok(Json::object([("thingGroup", Json::from(group))]));
    }
    let things: Vec<Json> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(Json::from)
        .collect();
    if things.is_empty() {
        return Err(missing());
    }
    Ok(Json::object([("things", Json::Array(things))]))
}

pub(crate) fn parse_targets(
    value: Option<&Json>,
    errors: &mut ValidationErrors,
) -> Option<Targets> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        errors.add(
            "targets",
            ValidationCode::MissingRequired,
            r#"targets is required: {"things": [...]}, {"thingGroup": "name"} or {"query": "fleet index query"}"#,
        );
        return None;
    };
    let map = object(value, "targets", errors)?;
    if let Some(query) = map.get("query") {
        if map.contains_key("things") || map.contains_key("thingGroup") {
            errors.add(
                "targets",
                ValidationCode::InvalidValue,
                r#"give exactly one of "things", "thingGroup" or "query""#,
            );
            return None;
        }
        return match query {
            Json::String(q)
                if !q.trim().is_empty()
                    && q.chars().count() <= MAX_QUERY_CHARS
                    && !q.chars().any(char::is_control) =>
            {
                Some(Targets::Query {
                    query_string: q.trim().to_owned(),
                })
            }
            _ => {
                errors.add(
                    "targets.query",
                    ValidationCode::InvalidValue,
                    crate::text::msg![
                        "a fleet-index query is text of 1 to ",
                        MAX_QUERY_CHARS,
                        " characters without control characters, e.g. \"attributes.model:X100\""
                    ],
                );
                None
            }
        };
    }
    match (map.get("things"), map.get("thingGroup")) {
        (Some(Json::Array(things)), None) => {
            if things.is_empty() || things.len() > MAX_EXPLICIT_TARGETS {
                errors.add(
                    "targets.things",
                    ValidationCode::OutOfRange,
                    crate::text::msg!["1 to ", MAX_EXPLICIT_TARGETS, " thing names"],
                );
                return None;
            }
            let mut seen = BTreeSet::new();
            let mut out = Vec::with_capacity(things.len());
            for (i, thing) in things.iter().enumerate() {
                let path = crate::text::msg!["targets.things[", i, "]"];
                match thing {
                    Json::String(raw) => {
                        if let Some(name) = errors.collect(ThingName::parse_at(raw, &path)) {
                            if seen.insert(name.clone()) {
                                out.push(name);
                            }
                        }
                    }
                    other => errors.add(
                        &path,
                        ValidationCode::WrongType,
                        crate::text::msg!["expected a thing name, got ", json_kind(other)],
                    ),
                }
            }
            Some(Targets::Things(out))
        }
        (None, Some(Json::String(group))) => {
            let valid = !group.is_empty()
                && group.len() <= 128
                && group
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'));
            if !valid {
                errors.add(
                    "targets.thingGroup",
                    ValidationCode::InvalidId,
                    "a thing group name is 1 to 128 of letters, digits, ':', '_' and '-'",
                );
                return None;
            }
            let recursive = match map.get("recursive") {
                None | Some(Json::Null) => false,
                Some(Json::Bool(b)) => *b,
                Some(other) => {
                    errors.add(
                        "targets.recursive",
                        ValidationCode::WrongType,
                        crate::text::msg!["expected true or false, got ", json_kind(other)],
                    );
                    false
                }
            };
            Some(Targets::ThingGroup {
                name: group.clone(),
                recursive,
            })
        }
        _ => {
            errors.add(
                "targets",
                ValidationCode::InvalidValue,
                r#"give exactly one of "things" (a list of thing names), "thingGroup" (a name) or "query" (a fleet-index query)"#,
            );
            None
        }
    }
}

fn parse_rollout(value: &Json, errors: &mut ValidationErrors) -> Option<RolloutConfig> {
    let path = "jobExecutionsRolloutConfig";
    let map = object(value, path, errors)?;
    let maximum = whole(map, "maximumPerMinute", path, (1, 1000), errors);
    let exponential = match map.get("exponentialRate") {
        None | Some(Json::Null) => Some(None),
        Some(v) => {
            let path = "jobExecutionsRolloutConfig.exponentialRate";
            object(v, path, errors).and_then(|e| {
                let base = whole(e, "baseRatePerMinute", path, (1, 1000), errors);
                let factor = number(e, "incrementFactor", path, (1.1, 5.0), errors);
                let criteria_path = crate::text::msg![path, ".rateIncreaseCriteria"];
                let criteria = e.get("rateIncreaseCriteria").and_then(|c| object(c, &criteria_path, errors)).and_then(|c| {
                    match (c.get("numberOfNotifiedThings"), c.get("numberOfSucceededThings")) {
                        (Some(_), None) => whole(c, "numberOfNotifiedThings", &criteria_path, (1, 1_000_000), errors).map(RateIncreaseCriteria::NumberOfNotifiedThings),
                        (None, Some(_)) => whole(c, "numberOfSucceededThings", &criteria_path, (1, 1_000_000), errors).map(RateIncreaseCriteria::NumberOfSucceededThings),
                        _ => {
                            errors.add(&criteria_path, ValidationCode::InvalidValue, "give exactly one of numberOfNotifiedThings or numberOfSucceededThings");
                            None
                        }
                    }
                });
                if e.get("rateIncreaseCriteria").is_none() {
                    errors.add(&criteria_path, ValidationCode::MissingRequired, "rateIncreaseCriteria is required");
                }
                match (base, factor, criteria) {
                    (Some(base_rate_per_minute), Some(increment_factor), Some(rate_increase_criteria)) => Some(Some(ExponentialRate {
                        base_rate_per_minute,
                        increment_factor,
                        rate_increase_criteria,
                    })),
                    _ => None,
                }
            })
        }
    };
    let (Some(maximum_per_minute), Some(exponential_rate)) = (maximum, exponential) else {
        return None;
    };
    if exponential_rate
        .as_ref()
        .is_some_and(|e| e.base_rate_per_minute > maximum_per_minute)
    {
        errors.add(
            "jobExecutionsRolloutConfig.exponentialRate.baseRatePerMinute",
            ValidationCode::OutOfRange,
            "must not exceed maximumPerMinute",
        );
    }
    Some(RolloutConfig {
        maximum_per_minute,
        exponential_rate,
    })
}

/// A `{criteriaList: [...]}` config, each entry parsed by `parse`.
fn criteria<T>(
    value: Option<&Json>,
    path: &str,
    errors: &mut ValidationErrors,
    parse: fn(&Object, &str, &mut ValidationErrors) -> Option<T>,
) -> Vec<T> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Vec::new();
    };
    let Some(map) = object(value, path, errors) else {
        return Vec::new();
    };
    let Some(Json::Array(list)) = map.get("criteriaList") else {
        errors.add(
            crate::text::msg![path, ".criteriaList"],
            ValidationCode::MissingRequired,
            "criteriaList (a list of criteria) is required",
        );
        return Vec::new();
    };
    if list.is_empty() || list.len() > 10 {
        errors.add(
            crate::text::msg![path, ".criteriaList"],
            ValidationCode::OutOfRange,
            "1 to 10 criteria",
        );
    }
    list.iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            let at = crate::text::msg![path, ".criteriaList[", i, "]"];
            object(entry, &at, errors).and_then(|m| parse(m, &at, errors))
        })
        .collect()
}

fn parse_abort(map: &Object, path: &str, errors: &mut ValidationErrors) -> Option<AbortCriterion> {
    if map
        .get("action")
        .and_then(Json::as_str)
        .is_some_and(|a| a != "CANCEL")
    {
        errors.add(
            crate::text::msg![path, ".action"],
            ValidationCode::InvalidValue,
            "the only abort action is CANCEL",
        );
    }
    let failure_type = failure_type(
        map,
        path,
        &[
            FailureType::Failed,
            FailureType::Rejected,
            FailureType::TimedOut,
            FailureType::All,
        ],
        errors,
    );
    let threshold = number(map, "thresholdPercentage", path, (0.0, 100.0), errors);
    let min = whole(
        map,
        "minNumberOfExecutedThings",
        path,
        (1, 1_000_000),
        errors,
    );
    Some(AbortCriterion {
        failure_type: failure_type?,
        threshold_percentage: threshold?,
        min_number_of_executed_things: min?,
    })
}

fn parse_retry(map: &Object, path: &str, errors: &mut ValidationErrors) -> Option<RetryCriterion> {
    let failure_type = failure_type(
        map,
        path,
        &[FailureType::Failed, FailureType::TimedOut, FailureType::All],
        errors,
    );
    let retries = whole(map, "numberOfRetries", path, (0, 10), errors);
    Some(RetryCriterion {
        failure_type: failure_type?,
        number_of_retries: retries?,
    })
}

fn parse_scheduling(
    value: Option<&Json>,
    now: Timestamp,
    errors: &mut ValidationErrors,
) -> Scheduling {
    let mut scheduling = Scheduling {
        start_time: None,
        end_time: None,
    };
    let Some(map) = value
        .filter(|v| !v.is_null())
        .and_then(|v| object(v, "schedulingConfig", errors))
    else {
        return scheduling;
    };
    (scheduling.start_time, scheduling.end_time) = scheduling_times(map, now, errors);
    scheduling
}

/// `schedulingConfig`'s `startTime` and `endTime` (epoch seconds), the end
/// after the start and in the future (jobs and pipeline runs alike).
pub(crate) fn scheduling_times(
    map: &Object,
    now: Timestamp,
    errors: &mut ValidationErrors,
) -> (Option<Timestamp>, Option<Timestamp>) {
    let time = |key: &str, errors: &mut ValidationErrors| match map.get(key) {
        None | Some(Json::Null) => None,
        Some(v) => match v.as_f64().and_then(Timestamp::from_secs_f64) {
            Some(t) => Some(t),
            None => {
                errors.add(
                    crate::text::msg!["schedulingConfig.", key],
                    ValidationCode::WrongType,
                    crate::text::msg!["expected epoch seconds, got ", shown(v)],
                );
                None
            }
        },
    };
    let start = time("startTime", errors);
    let end = time("endTime", errors);
    if end.is_some_and(|end| end <= start.unwrap_or(now).max(now)) {
        errors.add(
            "schedulingConfig.endTime",
            ValidationCode::OutOfRange,
            "endTime must be after startTime and in the future",
        );
    }
    (start, end)
}

/// Reports every key of `map` (at `path`) that is not one of `known`.
pub(crate) fn unknown_fields(
    map: &Object,
    path: &str,
    known: &[&str],
    errors: &mut ValidationErrors,
) {
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            let at = if path.is_empty() {
                key.clone()
            } else {
                crate::text::msg![path, ".", key]
            };
            errors.add(
                at,
                ValidationCode::UnknownField,
                crate::text::msg!["unknown field; expected one of: ", known.join(", ")],
            );
        }
    }
}

/// A job's statistics: devices per execution status now, and attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatistics {
    /// How many targets are in each status now; each device counts once.
    pub devices: BTreeMap<ExecutionStatus, u64>,
    /// Attempts started in all (first attempts and retries).
    pub attempts: u64,
}

impl JobStatistics {
    /// Counts one execution's move (`from` is `None` for a new one; a new
    /// attempt counts one more attempt).
    pub fn record(
        &mut self,
        from: Option<ExecutionStatus>,
        to: ExecutionStatus,
        new_attempt: bool,
    ) {
        if let Some(from) = from {
            if let Some(n) = self.devices.get_mut(&from) {
                *n = n.saturating_sub(1);
            }
        }
        *self.devices.entry(to).or_default() += 1;
        if from.is_none() || new_attempt {
            self.attempts += 1;
        }
    }

    pub fn count(&self, status: ExecutionStatus) -> u64 {
        self.devices.get(&status).copied().unwrap_or(0)
    }

    /// Targets whose execution has ended.
    pub fn ended(&self) -> u64 {
        ExecutionStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .map(|s| self.count(s))
            .sum()
    }

    pub fn total(&self) -> u64 {
        self.devices.values().sum()
    }

    /// The first abort criterion these statistics meet, if any.
    pub fn abort_criterion<'a>(
        &self,
        criteria: &'a [AbortCriterion],
    ) -> Option<&'a AbortCriterion> {
        let ended = self.ended();
        criteria.iter().find(|c| {
            let failures: u64 = ExecutionStatus::ALL
                .into_iter()
                .filter(|s| c.failure_type.counts(*s))
                .map(|s| self.count(s))
                .sum();
            ended >= u64::from(c.min_number_of_executed_things)
                && ended > 0
                && failures as f64 * 100.0 >= c.threshold_percentage * ended as f64
        })
    }
}

impl RolloutConfig {
    /// Executions that may be started per minute, given how many devices
    /// have been notified and have succeeded so far.
    pub fn rate_per_minute(&self, notified: u64, succeeded: u64) -> u32 {
        let Some(exp) = &self.exponential_rate else {
            return self.maximum_per_minute;
        };
        let steps = match exp.rate_increase_criteria {
            RateIncreaseCriteria::NumberOfNotifiedThings(n) => notified / u64::from(n.max(1)),
            RateIncreaseCriteria::NumberOfSucceededThings(n) => succeeded / u64::from(n.max(1)),
        };
        let steps = i32::try_from(steps.min(64)).unwrap_or(64);
        let rate = f64::from(exp.base_rate_per_minute) * exp.increment_factor.powi(steps);
        if rate >= f64::from(self.maximum_per_minute) {
            self.maximum_per_minute
        } else {
            // Truncation intended: never faster than configured.
            rate as u32
        }
    }
}

/// `jobExecutionsRetryConfig` as a policy: each failure type retried up to
/// its own count (ALL is FAILED and TIMED_OUT, as in AWS IoT Jobs).
pub fn retry_policy_of(criteria: &[RetryCriterion]) -> RetryPolicy {
    let mut pairs = Vec::new();
    for c in criteria {
        let statuses: &[ExecutionStatus] = match c.failure_type {
            FailureType::Failed => &[ExecutionStatus::Failed],
            FailureType::TimedOut => &[ExecutionStatus::TimedOut],
            FailureType::Rejected => &[ExecutionStatus::Rejected],
            FailureType::All => &[ExecutionStatus::Failed, ExecutionStatus::TimedOut],
        };
        pairs.extend(statuses.iter().map(|s| (*s, c.number_of_retries)));
    }
    RetryPolicy::from_criteria(&pairs)
}
