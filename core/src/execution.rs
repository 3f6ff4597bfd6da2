//! The command execution record (field names of AWS IoT GetCommandExecution
//! where the concept is the same, plus `version` and `clientToken`) and the
//! parsing of a start-execution request. Pure, no I/O.

use crate::deadline::{Deadline, LateResult, OnTimeout};
use crate::device_protocol::DeviceProtocol;
use crate::error::{ValidationCode, ValidationErrors};
use crate::ids::{
    ClientToken, CommandId, DedupeKey, ExecutionId, JobId, ParameterName, RunId, ThingName,
};
use crate::json::{Json, Object};
use crate::map::StatusDetails;
use crate::reason::StatusReason;
use crate::retry::RetryPolicy;
use crate::schema::{
    check_range_u32, Parameters, Validator, EXECUTION_TIMEOUT_RANGE, RETENTION_RANGE,
};
use crate::status::ExecutionStatus;
use crate::text::{json_kind, quote, shown};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// What became of one command on one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandExecution {
    pub execution_id: ExecutionId,
    pub command_id: CommandId,
    pub target: ThingName,
    /// The job this execution belongs to (none for one started directly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    /// The pipeline run this execution is an operation of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    /// Which operation of the run it is, and what its device's stage has
    /// come to so far (the run's bookkeeping rides on the execution instead
    /// of a write of its own per operation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_operation: Option<RunOperation>,
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<StatusReason>,
    /// Free-form progress strings from the device (AWS IoT Jobs' statusDetails).
    #[serde(default, skip_serializing_if = "crate::map::SortedMap::is_empty")]
    pub status_details: StatusDetails,
    #[serde(default)]
    pub parameters: Parameters,
    /// Sensitive parameters left out of `parameters` in this copy (listings
    /// show only their names; the stored record and the device have them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted_parameters: Vec<ParameterName>,
    /// The device's typed result.
    #[serde(default, skip_serializing_if = "crate::map::SortedMap::is_empty")]
    pub result: Parameters,
    pub execution_timeout_seconds: u32,
    /// Deadlines (see `deadline`): held QUEUED until `notBefore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Timestamp>,
    /// Each attempt must be taken (IN_PROGRESS) within this long of becoming due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_timeout_seconds: Option<u32>,
    /// The current attempt's delivery deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_by: Option<Timestamp>,
    /// The whole execution's deadline: `executionTimeoutSeconds` after
    /// creation (or after `notBefore`).
    pub complete_by: Timestamp,
    /// The device's step timer (`stepTimeoutInMinutes` from its last
    /// IN_PROGRESS update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_deadline: Option<Timestamp>,
    /// How failed, rejected and timed-out attempts are retried (see `retry`).
    #[serde(default)]
    pub retry_policy: RetryPolicy,
    /// How often the device answered "not now" to this execution.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub defer_count: u32,
    /// When it last did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deferred_at: Option<Timestamp>,
    /// A result that arrived after the execution timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_result: Option<LateResult>,
    /// The request's `dedupeKey`: no other pending execution on the device
    /// carries it (see `dedupe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedupe_key: Option<DedupeKey>,
    /// The pending execution this one replaced (canceled SUPERSEDED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<ExecutionId>,
    /// The execution that replaced this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<ExecutionId>,
    /// Who started it: the caller's identity (the JWT's subject), or the
    /// job that did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Who canceled it (the operator's identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_by: Option<String>,
    /// Who made the latest change: an operator's identity, `thing/NAME` for
    /// the device, or `courier` for the system (delivery, deadlines, retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_by: Option<String>,
    /// Per status, who last moved the execution into it (the same
    /// identities): `{"SENT": "courier", "IN_PROGRESS": "thing/dev-1",
    /// "CANCELED": "bob"}`. At most one entry per status; the creation is
    /// `createdBy`.
    #[serde(default, skip_serializing_if = "crate::map::SortedMap::is_empty")]
    pub changed_by: StatusDetails,
    /// When it was last delivered to the device (published, or taken by a
    /// device that asked for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
    /// The device's first answer (any status report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Timestamp>,
    /// Kept after the execution ends, then expired by TTL.
    pub retention_seconds: u32,
    pub created_at: Timestamp,
    pub last_updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    /// When the record expires; reads treat it as gone from then on.
    pub time_to_live: Timestamp,
    /// Incremented on every change; the optimistic-concurrency token.
    pub version: u64,
    /// Which attempt this is (AWS IoT Jobs' executionNumber); starts at 1.
    #[serde(default = "first_attempt")]
    pub execution_number: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<ClientToken>,
    /// The device protocol it is delivered over (its command's).
    #[serde(default, skip_serializing_if = "DeviceProtocol::is_jobs")]
    pub protocol: DeviceProtocol,
    /// A Jobs-protocol command's `payloadTemplate`, copied at creation: the
    /// job document the device receives is filled from it each time it is
    /// sent (`protocol::job_document`), from the parameters as the device
    /// sees them (artifact URLs presigned by then). Immutable, like the
    /// definition it came from. Not part of the record the API shows (the
    /// command shows it): the store keeps it beside the record.
    #[serde(skip)]
    pub document_template: Option<String>,
}

/// A run's execution: its place in the pipeline and its device's stage so
/// far, carried from one operation's execution to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunOperation {
    pub stage: u32,
    pub operation: u32,
    /// The stage's deadline for this device (its start plus the stage's
    /// `timeoutSeconds`); the execution's `completeBy` is at most this.
    pub stage_deadline: Timestamp,
    /// An earlier operation of the stage failed under `CONTINUE`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed_in_stage: bool,
}

const fn first_attempt() -> u32 {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if signature
const fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl CommandExecution {
    /// Gone for every reader from its `timeToLive` on (DynamoDB removes the
    /// item later).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.time_to_live <= now
    }
}

// The record's own deadline arithmetic (see `deadline` for the model).
impl CommandExecution {
    /// The earliest deadline that applies in the current status, and when.
    pub fn expiry(&self) -> Option<(Timestamp, Deadline)> {
        let candidates: &[(Option<Timestamp>, Deadline)] = match self.status {
            ExecutionStatus::Queued | ExecutionStatus::Sent => &[
                (Some(self.complete_by), Deadline::ExecutionTimeout),
                (self.deliver_by, Deadline::DeliveryTimeout),
            ],
            ExecutionStatus::InProgress => &[
                (Some(self.complete_by), Deadline::ExecutionTimeout),
                (self.step_deadline, Deadline::StepTimeout),
            ],
            ExecutionStatus::Succeeded
            | ExecutionStatus::Failed
            | ExecutionStatus::Rejected
            | ExecutionStatus::TimedOut
            | ExecutionStatus::Canceled => &[],
        };
        candidates
            .iter()
            .filter_map(|(at, which)| at.map(|at| (at, *which)))
            .min()
    }

    /// Whether it waits for `notBefore` at `now` (not delivered, not shown to
    /// the device).
    pub fn is_held(&self, now: Timestamp) -> bool {
        self.status == ExecutionStatus::Queued && self.not_before.is_some_and(|nb| nb > now)
    }

    /// The deadline that has passed at `now`, if one has.
    pub fn overdue(&self, now: Timestamp) -> Option<Deadline> {
        self.expiry()
            .filter(|(at, _)| *at <= now)
            .map(|(_, which)| which)
    }

    /// When the sweeper must next look at it: its expiry, or its release
    /// while held. `None` once terminal.
    pub fn wake_at(&self) -> Option<Timestamp> {
        let expiry = self.expiry().map(|(at, _)| at);
        // A QUEUED execution with a notBefore is released by the sweeper at
        // that time (also after a failed publish put it back on hold).
        let release = self
            .not_before
            .filter(|_| self.status == ExecutionStatus::Queued);
        match (expiry, release) {
            (Some(e), Some(r)) => Some(e.min(r)),
            (e, r) => e.or(r),
        }
    }
}

/// `POST /commands/{commandId}/executions`, parsed and checked against the
/// command's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct StartExecution {
    pub target: ThingName,
    pub parameters: Parameters,
    pub execution_timeout_seconds: u32,
    pub time_to_live: Option<Timestamp>,
    pub client_token: Option<ClientToken>,
    pub not_before: Option<Timestamp>,
    pub delivery_timeout_seconds: Option<u32>,
    /// `None`: the command's policy.
    pub retry_policy: Option<RetryPolicy>,
    /// At most one pending execution per device with this key (see `dedupe`).
    pub dedupe_key: Option<DedupeKey>,
    /// Replace the pending execution with the same key (default: the
    /// command's `supersede`).
    pub supersede: bool,
    /// Supersede even work the device has started.
    pub force: bool,
}

/// How far ahead an execution may be scheduled (`notBefore`).
pub const MAX_SCHEDULE_AHEAD_SECONDS: i64 = 30 * 86_400;
/// How far in the past `notBefore` may be (a time in the past means now).
pub const MAX_SCHEDULE_BEHIND_SECONDS: i64 = 86_400;
pub use crate::retry::MAX_ATTEMPTS_RANGE;

/// The longest a record may be kept from its creation.
pub const MAX_TIME_TO_LIVE_SECONDS: i64 =
    RETENTION_RANGE.1 as i64 + EXECUTION_TIMEOUT_RANGE.1 as i64;

impl StartExecution {
    /// Parses a request body, reporting every problem at once.
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
        const FIELDS: [&str; 14] = [
            "target",
            "targetArn",
            "parameters",
            "executionTimeoutSeconds",
            "timeToLive",
            "clientToken",
            "notBefore",
            "deliveryTimeoutSeconds",
            "onTimeout",
            "maxAttempts",
            "retryPolicy",
            "dedupeKey",
            "supersede",
            "force",
        ];
        for key in map.keys() {
            if !FIELDS.contains(&key.as_str()) {
                errors.add(
                    key.as_str(),
                    ValidationCode::UnknownField,
                    crate::text::msg!["unknown field; expected one of: ", FIELDS.join(", ")],
                );
            }
        }
        // AWS IoT's form: `targetArn` (`arn:aws:iot:REGION:ACCOUNT:thing/NAME`).
        let target_arn = match map.get("targetArn") {
            None => None,
            Some(Json::String(arn)) => match arn.split_once(":thing/") {
                Some((head, name)) if head.starts_with("arn:") => Some(Json::from(name)),
                _ => {
                    errors.add(
                        "targetArn",
                        ValidationCode::InvalidValue,
                        crate::text::msg![
                            quote(arn),
                            " is not a thing ARN (arn:aws:iot:REGION:ACCOUNT:thing/NAME)"
                        ],
                    );
                    None
                }
            },
            Some(other) => {
                errors.add(
                    "targetArn",
                    ValidationCode::WrongType,
                    crate::text::msg!["expected a thing ARN string, got ", json_kind(other)],
                );
                None
            }
        };
        if target_arn.is_some() && map.contains_key("target") {
            errors.add(
                "targetArn",
                ValidationCode::InvalidValue,
                "give target or targetArn, not both",
            );
        }
        let target = match target_arn.as_ref().or_else(|| map.get("target")) {
            Some(Json::String(t)) => errors.collect(ThingName::parse_at(t, "target")),
            Some(other) => {
                errors.add(
                    "target",
                    ValidationCode::WrongType,
                    crate::text::msg!["expected a thing name string, got ", json_kind(other)],
                );
                None
            }
            None => {
                errors.add(
                    "target",
                    ValidationCode::MissingRequired,
                    "target (the device's thing name) is required",
                );
                None
            }
        };
        let parameters = validator.validate_field(map.get("parameters"), &mut errors);
        let timeout = optional_u32(
            map,
            "executionTimeoutSeconds",
            EXECUTION_TIMEOUT_RANGE,
            &mut errors,
        )
        .unwrap_or(validator.definition().execution_timeout_seconds);
        let not_before = match map.get("notBefore") {
            None | Some(Json::Null) => None,
            Some(v) => match v.as_f64().and_then(Timestamp::from_secs_f64) {
                // A little in the past means "now" (clocks drift); far in
                // the past is a units mistake or nonsense.
                Some(at)
                    if at <= now.plus_secs(MAX_SCHEDULE_AHEAD_SECONDS)
                        && at >= now.plus_secs(-MAX_SCHEDULE_BEHIND_SECONDS) =>
                {
                    Some(at)
                }
                Some(_) => {
                    errors.add(
                        "notBefore",
                        ValidationCode::OutOfRange,
                        crate::text::msg![
                            "notBefore (epoch seconds) may be at most ",
                            MAX_SCHEDULE_AHEAD_SECONDS / 86_400,
                            " days ahead and at most one day in the past"
                        ],
                    );
                    None
                }
                None => {
                    errors.add(
                        "notBefore",
                        ValidationCode::WrongType,
                        crate::text::msg!["expected epoch seconds, got ", shown(v)],
                    );
                    None
                }
            },
        };
        // Deadlines count from when the execution may first be delivered.
        let due = not_before.map_or(now, |nb| nb.max(now));
        let complete_by = due.plus_secs(i64::from(timeout));
        let delivery_timeout_seconds = optional_u32(
            map,
            "deliveryTimeoutSeconds",
            EXECUTION_TIMEOUT_RANGE,
            &mut errors,
        );
        if delivery_timeout_seconds.is_some_and(|d| d >= timeout) {
            errors.add(
                "deliveryTimeoutSeconds",
                ValidationCode::OutOfRange,
                crate::text::msg![
                    "must be shorter than executionTimeoutSeconds (",
                    timeout,
                    ")"
                ],
            );
        }
        let on_timeout = match map.get("onTimeout") {
            None | Some(Json::Null) => OnTimeout::TimeOut,
            Some(Json::String(raw)) => OnTimeout::parse(raw).unwrap_or_else(|| {
                errors.add(
                    "onTimeout",
                    ValidationCode::InvalidValue,
                    crate::text::msg![quote(raw), ": use TIME_OUT or RETRY"],
                );
                OnTimeout::TimeOut
            }),
            Some(other) => {
                errors.add(
                    "onTimeout",
                    ValidationCode::WrongType,
                    crate::text::msg!["expected TIME_OUT or RETRY, got ", json_kind(other)],
                );
                OnTimeout::TimeOut
            }
        };
        let max_attempts = optional_u32(map, "maxAttempts", MAX_ATTEMPTS_RANGE, &mut errors);
        // `onTimeout`/`maxAttempts` are the older spelling of a policy that
        // retries timeouts only.
        let legacy = match (on_timeout, max_attempts) {
            (OnTimeout::TimeOut, Some(n)) if n > 1 => {
                errors.add(
                    "maxAttempts",
                    ValidationCode::InvalidValue,
                    "maxAttempts above 1 needs onTimeout RETRY",
                );
                None
            }
            (OnTimeout::TimeOut, _) => None,
            (OnTimeout::Retry, n) => Some(RetryPolicy::on_timeout(n.unwrap_or(3))),
        };
        let retry_policy = match map.get("retryPolicy") {
            None | Some(Json::Null) => legacy,
            Some(_) if map.contains_key("onTimeout") || map.contains_key("maxAttempts") => {
                errors.add(
                    "retryPolicy",
                    ValidationCode::InvalidValue,
                    "give retryPolicy or onTimeout/maxAttempts (its older spelling), not both",
                );
                None
            }
            Some(v) => RetryPolicy::parse(v, "retryPolicy", &mut errors),
        };
        let time_to_live = match map.get("timeToLive") {
            None | Some(Json::Null) => None,
            Some(v) => match v.as_f64().and_then(Timestamp::from_secs_f64) {
                Some(ttl) => {
                    let earliest = complete_by;
                    let latest = now.plus_secs(MAX_TIME_TO_LIVE_SECONDS);
                    if ttl < earliest || ttl > latest {
                        errors.add(
                            "timeToLive",
                            ValidationCode::OutOfRange,
                            crate::text::msg!["timeToLive (epoch seconds) must be after the execution's deadline (", earliest.epoch_secs(), ") and at most ", MAX_TIME_TO_LIVE_SECONDS / 86_400, " days ahead"],
                        );
                    }
                    Some(ttl)
                }
                None => {
                    errors.add(
                        "timeToLive",
                        ValidationCode::WrongType,
                        crate::text::msg!["expected epoch seconds, got ", shown(v)],
                    );
                    None
                }
            },
        };
        let client_token = crate::ids::optional_client_token(map, &mut errors);
        let dedupe_key = match map.get("dedupeKey") {
            None | Some(Json::Null) => None,
            Some(Json::String(raw)) => errors.collect(DedupeKey::parse_at(raw, "dedupeKey")),
            Some(other) => {
                errors.add(
                    "dedupeKey",
                    ValidationCode::WrongType,
                    crate::text::msg!["expected a string, got ", json_kind(other)],
                );
                None
            }
        };
        let mut flag = |key: &str, default: bool| match map.get(key) {
            None | Some(Json::Null) => default,
            Some(Json::Bool(b)) => *b,
            Some(other) => {
                errors.add(
                    key,
                    ValidationCode::WrongType,
                    crate::text::msg!["expected true or false, got ", json_kind(other)],
                );
                default
            }
        };
        let supersede = flag("supersede", validator.definition().supersede);
        let force = flag("force", false);
        if dedupe_key.is_none() && (map.contains_key("supersede") || force) {
            errors.add(
                if force { "force" } else { "supersede" },
                ValidationCode::InvalidValue,
                "supersede and force apply to a request with a dedupeKey",
            );
        } else if force && !supersede {
            errors.add(
                "force",
                ValidationCode::InvalidValue,
                "force applies to a request that supersedes (\"supersede\": true)",
            );
        }
        match (target, parameters) {
            (Some(target), Some(parameters)) if errors.is_empty() => Ok(Self {
                target,
                parameters,
                execution_timeout_seconds: timeout,
                time_to_live,
                client_token,
                not_before,
                delivery_timeout_seconds,
                retry_policy,
                dedupe_key,
                supersede,
                force,
            }),
            _ => Err(errors),
        }
    }

    /// When the execution may first be delivered.
    fn due(&self, now: Timestamp) -> Timestamp {
        self.not_before.map_or(now, |nb| nb.max(now))
    }

    /// The new QUEUED record, version 1, started by `created_by`. Its TTL is
    /// the request's, or `completeBy` plus the command's retention.
    pub fn into_execution(
        self,
        execution_id: ExecutionId,
        validator: &Validator,
        created_by: &str,
        now: Timestamp,
    ) -> CommandExecution {
        let definition = validator.definition();
        let due = self.due(now);
        let complete_by = due.plus_secs(i64::from(self.execution_timeout_seconds));
        let time_to_live = self
            .time_to_live
            .unwrap_or_else(|| complete_by.plus_secs(i64::from(definition.retention_seconds)));
        CommandExecution {
            execution_id,
            command_id: definition.command_id.clone(),
            target: self.target,
            job_id: None,
            run_id: None,
            run_operation: None,
            status: ExecutionStatus::Queued,
            status_reason: None,
            status_details: StatusDetails::new(),
            parameters: self.parameters,
            redacted_parameters: Vec::new(),
            result: Parameters::new(),
            execution_timeout_seconds: self.execution_timeout_seconds,
            not_before: self.not_before,
            delivery_timeout_seconds: self.delivery_timeout_seconds,
            deliver_by: self
                .delivery_timeout_seconds
                .map(|s| due.plus_secs(i64::from(s))),
            complete_by,
            step_deadline: None,
            retry_policy: self
                .retry_policy
                .unwrap_or_else(|| definition.retry_policy.clone()),
            defer_count: 0,
            last_deferred_at: None,
            late_result: None,
            dedupe_key: self.dedupe_key,
            supersedes: None,
            superseded_by: None,
            created_by: Some(created_by.to_owned()),
            canceled_by: None,
            // Changes after the creation are recorded by who made them;
            // the creation itself is `createdBy`.
            last_updated_by: None,
            changed_by: StatusDetails::new(),
            sent_at: None,
            acknowledged_at: None,
            retention_seconds: definition.retention_seconds,
            created_at: now,
            last_updated_at: now,
            started_at: None,
            completed_at: None,
            time_to_live,
            version: 1,
            execution_number: 1,
            client_token: self.client_token,
            protocol: definition.protocol,
            document_template: definition.document_template(),
        }
    }
}

/// An optional whole-number field within `range`.
pub(crate) fn optional_u32(
    map: &Object,
    key: &str,
    range: (u32, u32),
    errors: &mut ValidationErrors,
) -> Option<u32> {
    match map.get(key) {
        None | Some(Json::Null) => None,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => {
                check_range_u32(n, range, key, errors);
                Some(n)
            }
            None => {
                errors.add(
                    key,
                    ValidationCode::WrongType,
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
