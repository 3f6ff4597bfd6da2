//! Status changes: parsing a requested update, planning it, and applying it.
//! Pure, no I/O.
//!
//! A change is first turned into a [`TransitionPlan`] that needs no current
//! record: the statuses it may start from (from the table in `status`), the
//! version it expects, the fields it sets. The DynamoDB store turns a plan into
//! one conditional UpdateItem (no read first); [`TransitionPlan::apply`] does
//! the same to a record in memory and explains any refusal. Both read the same
//! plan, so the store's condition and the in-memory rules cannot drift.

use crate::deadline::{Deadline, LateResult, NewAttempt};
use crate::error::{ValidationCode, ValidationErrors};
use crate::execution::{CommandExecution, StatusReason};
use crate::ids::{ClientToken, ThingName};
use crate::schema::{parse_typed_map, Parameters};
use crate::status::{Actor, ExecutionStatus};
use crate::time::Timestamp;
use crate::value::json_kind;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub const MAX_STATUS_DETAILS: usize = 64;

/// A requested status change (a device's UpdateJobExecution, an operator's
/// cancel, the system's timeout).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatusUpdate {
    pub status: Option<ExecutionStatus>,
    pub status_reason: Option<StatusReason>,
    /// `None` keeps the current details; `Some` replaces them.
    pub status_details: Option<BTreeMap<String, String>>,
    /// `None` keeps the current result; `Some` replaces it.
    pub result: Option<Parameters>,
    pub expected_version: Option<u64>,
    pub client_token: Option<ClientToken>,
    /// The device's step timer for this IN_PROGRESS update.
    pub step_timeout_in_minutes: Option<u32>,
    /// The attempt the device believes it is updating.
    pub execution_number: Option<u32>,
}

/// AWS IoT Jobs' range for `stepTimeoutInMinutes`.
pub const STEP_TIMEOUT_MINUTES_RANGE: (u32, u32) = (1, 10_080);

impl StatusUpdate {
    pub fn to(status: ExecutionStatus) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }

    /// Parses an update as a device sends it (field names of AWS IoT Jobs'
    /// UpdateJobExecution where they overlap). Fields that only shape the
    /// reply (`includeJobDocument`, ...) are ignored here, as an IoT rule's
    /// `SELECT *` passes everything through.
    pub fn parse(body: &Value) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let Value::Object(map) = body else {
            errors.add(
                "",
                ValidationCode::InvalidJson,
                format!("an update must be a JSON object, got {}", json_kind(body)),
            );
            return Err(errors);
        };
        let status = match map.get("status") {
            Some(Value::String(s)) => match ExecutionStatus::parse(s) {
                Some(status) => Some(status),
                None => {
                    errors.add(
                        "status",
                        ValidationCode::InvalidValue,
                        format!("{s:?} is not a status; use one of IN_PROGRESS, SUCCEEDED, FAILED, REJECTED"),
                    );
                    None
                }
            },
            Some(other) => {
                errors.add(
                    "status",
                    ValidationCode::WrongType,
                    format!("expected a string, got {}", json_kind(other)),
                );
                None
            }
            None => {
                errors.add(
                    "status",
                    ValidationCode::MissingRequired,
                    "status is required",
                );
                None
            }
        };
        let status_reason = match map.get("statusReason") {
            None | Some(Value::Null) => None,
            Some(json) => match StatusReason::parse_at(json, "statusReason") {
                Ok(r) => Some(r),
                Err(e) => {
                    errors.0.extend(e.0);
                    None
                }
            },
        };
        let status_details = match map.get("statusDetails") {
            None | Some(Value::Null) => None,
            Some(json) => parse_status_details(json, &mut errors),
        };
        let result = match map.get("result") {
            None | Some(Value::Null) => None,
            Some(json) => match parse_typed_map(json, "result") {
                Ok(r) => Some(r),
                Err(e) => {
                    errors.0.extend(e.0);
                    None
                }
            },
        };
        let expected_version = match map.get("expectedVersion") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) => Some(n),
                None => {
                    errors.add(
                        "expectedVersion",
                        ValidationCode::WrongType,
                        format!("expected a whole number, got {v}"),
                    );
                    None
                }
            },
        };
        let client_token = crate::ids::optional_client_token(map, &mut errors);
        let step_timeout_in_minutes = crate::execution::optional_u32(
            map,
            "stepTimeoutInMinutes",
            STEP_TIMEOUT_MINUTES_RANGE,
            &mut errors,
        );
        let execution_number =
            crate::execution::optional_u32(map, "executionNumber", (1, u32::MAX), &mut errors);
        errors.into_result(Self {
            status,
            status_reason,
            status_details,
            result,
            expected_version,
            client_token,
            step_timeout_in_minutes,
            execution_number,
        })
    }
}

fn parse_status_details(
    json: &Value,
    errors: &mut ValidationErrors,
) -> Option<BTreeMap<String, String>> {
    let Value::Object(map) = json else {
        errors.add(
            "statusDetails",
            ValidationCode::WrongType,
            format!("expected an object of strings, got {}", json_kind(json)),
        );
        return None;
    };
    if map.len() > MAX_STATUS_DETAILS {
        errors.add(
            "statusDetails",
            ValidationCode::TooLong,
            format!("at most {MAX_STATUS_DETAILS} entries, got {}", map.len()),
        );
    }
    let mut details = BTreeMap::new();
    for (key, value) in map {
        let path = format!("statusDetails.{key}");
        let key_ok = !key.is_empty()
            && key.len() <= 128
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'));
        if !key_ok {
            errors.add(
                &path,
                ValidationCode::InvalidValue,
                "keys are 1 to 128 of letters, digits, ':', '_' and '-'",
            );
        }
        match value {
            Value::String(s)
                if !s.is_empty()
                    && s.chars().count() <= 1024
                    && !s.chars().any(char::is_control) =>
            {
                details.insert(key.clone(), s.clone());
            }
            Value::String(_) => errors.add(
                &path,
                ValidationCode::InvalidValue,
                "values are 1 to 1024 characters, no control characters",
            ),
            other => errors.add(
                &path,
                ValidationCode::WrongType,
                format!("expected a string, got {}", json_kind(other)),
            ),
        }
    }
    Some(details)
}

/// Why a status change was refused. `code()` is the AWS-style error code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "camelCase")]
pub enum TransitionError {
    #[error("the execution is already {status}, a terminal status; it can no longer change")]
    #[serde(rename = "TerminalStateReached")]
    TerminalStateReached { status: ExecutionStatus },
    #[error("expected version {expected}, but the execution is at version {actual}")]
    #[serde(rename = "VersionMismatch")]
    VersionMismatch { expected: u64, actual: u64 },
    #[error("{}", describe_invalid(*.from, *.to, *.actor))]
    #[serde(rename = "InvalidStateTransition")]
    InvalidStateTransition {
        /// `None` when no status at all allows this move to this actor.
        from: Option<ExecutionStatus>,
        to: ExecutionStatus,
        actor: Actor,
        /// What this actor could move to from `from` instead.
        allowed: Vec<ExecutionStatus>,
    },
    /// The update names a device the execution does not target. Shown to
    /// callers as "not found": a device learns nothing of others' executions.
    #[error("no such execution for this target")]
    #[serde(rename = "ResourceNotFound")]
    TargetMismatch,
    /// The device names an attempt (`executionNumber`) that is not the
    /// current one.
    #[error("execution number {expected} is not the current attempt ({actual})")]
    #[serde(rename = "ResourceNotFound")]
    AttemptMismatch { expected: u32, actual: u32 },
    /// Held until `notBefore`: not deliverable, and invisible to the device.
    #[error("the execution is scheduled; it cannot be delivered or updated before notBefore")]
    #[serde(rename = "ResourceNotFound")]
    Held { not_before: Timestamp },
    /// A deadline passed; the execution is timed out (or re-queued) by the
    /// system, not changed by this request.
    #[error("the execution's {} deadline has passed", .deadline.code())]
    #[serde(rename = "TerminalStateReached")]
    DeadlinePassed { deadline: Deadline },
    /// The device has started the work; cancelling it needs `force`.
    #[error("the device has started this execution (IN_PROGRESS); cancel with \"force\": true to stop it")]
    #[serde(rename = "InvalidStateTransition")]
    ForceRequired,
}

fn describe_invalid(from: Option<ExecutionStatus>, to: ExecutionStatus, actor: Actor) -> String {
    match from {
        Some(from) => format!("the {actor} may not move an execution from {from} to {to}"),
        None => format!("the {actor} may never move an execution to {to}"),
    }
}

impl TransitionError {
    pub const fn code(&self) -> &'static str {
        match self {
            Self::TerminalStateReached { .. } => "TerminalStateReached",
            Self::VersionMismatch { .. } => "VersionMismatch",
            Self::InvalidStateTransition { .. } => "InvalidStateTransition",
            Self::TargetMismatch | Self::AttemptMismatch { .. } | Self::Held { .. } => {
                "ResourceNotFound"
            }
            Self::DeadlinePassed { .. } => "TerminalStateReached",
            Self::ForceRequired => "InvalidStateTransition",
        }
    }
}

/// A status change ready to be applied to any record, or to be turned into a
/// conditional write.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionPlan {
    pub to: ExecutionStatus,
    pub actor: Actor,
    /// The statuses the table allows this move from (never empty).
    pub allowed_from: Vec<ExecutionStatus>,
    pub expected_version: Option<u64>,
    /// Set for device updates: the execution must target this thing.
    pub expected_target: Option<ThingName>,
    pub status_reason: Option<StatusReason>,
    pub status_details: Option<BTreeMap<String, String>>,
    pub result: Option<Parameters>,
    pub now: Timestamp,
    /// Refuse when a deadline has passed (every change but the system's
    /// expiry itself).
    pub enforce_deadlines: bool,
    /// Set by a device's IN_PROGRESS update with `stepTimeoutInMinutes`.
    pub step_timeout_in_minutes: Option<u32>,
    /// The attempt the device named; must be the current one.
    pub expected_execution_number: Option<u32>,
    /// A retry: the next attempt starts with fresh per-attempt fields.
    pub new_attempt: Option<NewAttempt>,
    /// Put (back) on hold until then: a failed publish waits to be retried.
    pub hold_until: Option<Timestamp>,
    /// Recorded on a cancel.
    pub canceled_by: Option<String>,
    /// A cancel that may stop work the device has started.
    pub force: bool,
    /// Kept with a timeout that a device's late report triggered.
    pub late_result: Option<LateResult>,
    /// A busy device's answer: the same attempt waits and is offered again
    /// (`busyCount` goes up).
    pub busy: bool,
    /// When IoT Core received the device message this plan answers (the
    /// rule's `timestamp()`). The store refuses a message older than the
    /// last one it applied to the execution as stale: Lambda redelivering an
    /// event after newer ones were applied changes nothing.
    pub message_at: Option<Timestamp>,
}

impl TransitionPlan {
    /// Plans `update` by `actor` at `now`. Fails only when the table allows
    /// `actor` this target status from nowhere (a device asking for CANCELED).
    pub fn new(
        update: StatusUpdate,
        to: ExecutionStatus,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Self, TransitionError> {
        let allowed_from = ExecutionStatus::allowed_sources(to, actor);
        if allowed_from.is_empty() {
            return Err(TransitionError::InvalidStateTransition {
                from: None,
                to,
                actor,
                allowed: Vec::new(),
            });
        }
        Ok(Self {
            allowed_from,
            ..Self::new_unchecked(update, to, actor, now)
        })
    }

    /// An operator's cancel. Without `force`, work the device has started
    /// (IN_PROGRESS) is not cancelled.
    pub fn cancel(update: StatusUpdate, by: &str, force: bool, now: Timestamp) -> Self {
        let allowed_from =
            ExecutionStatus::allowed_sources(ExecutionStatus::Canceled, Actor::Operator)
                .into_iter()
                .filter(|from| force || *from != ExecutionStatus::InProgress)
                .collect();
        Self {
            to: ExecutionStatus::Canceled,
            actor: Actor::Operator,
            allowed_from,
            canceled_by: Some(by.to_owned()),
            force,
            ..Self::new_unchecked(update, ExecutionStatus::Canceled, Actor::Operator, now)
        }
    }

    fn new_unchecked(
        update: StatusUpdate,
        to: ExecutionStatus,
        actor: Actor,
        now: Timestamp,
    ) -> Self {
        Self {
            to,
            actor,
            allowed_from: Vec::new(),
            expected_version: update.expected_version,
            expected_target: None,
            status_reason: update.status_reason,
            status_details: update.status_details,
            result: update.result,
            now,
            enforce_deadlines: true,
            step_timeout_in_minutes: update.step_timeout_in_minutes,
            expected_execution_number: update.execution_number,
            new_attempt: None,
            hold_until: None,
            canceled_by: None,
            force: false,
            late_result: None,
            busy: false,
            message_at: None,
        }
    }

    /// The system's delivery of a QUEUED execution (QUEUED -> SENT).
    pub fn dispatch(expected_version: u64, now: Timestamp) -> Self {
        let update = StatusUpdate {
            expected_version: Some(expected_version),
            ..StatusUpdate::default()
        };
        Self {
            allowed_from: vec![ExecutionStatus::Queued],
            ..Self::new_unchecked(update, ExecutionStatus::Sent, Actor::System, now)
        }
    }

    /// Undoes a dispatch whose publish failed (SENT -> QUEUED), holding the
    /// execution until `retry_at` so the sweeper retries it.
    pub fn undispatch(expected_version: u64, retry_at: Timestamp, now: Timestamp) -> Self {
        let update = StatusUpdate {
            expected_version: Some(expected_version),
            status_reason: Some(StatusReason {
                reason_code: "PUBLISH_FAILED".into(),
                reason_description: Some(
                    "the notification could not be published; delivery will be retried".into(),
                ),
            }),
            ..StatusUpdate::default()
        };
        Self {
            allowed_from: vec![ExecutionStatus::Sent],
            hold_until: Some(retry_at),
            ..Self::new_unchecked(update, ExecutionStatus::Queued, Actor::System, now)
        }
    }

    pub fn for_target(mut self, target: ThingName) -> Self {
        self.expected_target = Some(target);
        self
    }

    /// The device message this plan answers was received at `at` (see
    /// [`TransitionPlan::message_at`]).
    pub fn received_at(mut self, at: Option<Timestamp>) -> Self {
        self.message_at = at;
        self
    }

    /// Whether the device may not see or change it yet: held, and the change
    /// is a delivery or a device's.
    pub fn respects_hold(&self) -> bool {
        self.actor == Actor::Device || self.to == ExecutionStatus::Sent
    }

    /// Whether this change sets `startedAt` (when absent).
    pub fn starts(&self) -> bool {
        self.to == ExecutionStatus::InProgress
    }

    /// The step timer after this change: set or reset by an IN_PROGRESS
    /// update that names one, kept by one that does not (as AWS does), gone
    /// in any other status.
    pub fn step_deadline(&self, current: &CommandExecution) -> Option<Timestamp> {
        if self.to != ExecutionStatus::InProgress {
            return None;
        }
        match self.step_timeout_in_minutes {
            Some(minutes) => Some(self.now.plus_secs(i64::from(minutes) * 60)),
            None => current.step_deadline,
        }
    }

    /// Whether this change ends the execution (sets `completedAt`, moves TTL).
    pub fn completes(&self) -> bool {
        self.to.is_terminal()
    }

    /// Why this plan cannot apply to `current`, if it cannot. Checked in the
    /// order a caller can act on: wrong device, already over, stale version,
    /// then the table.
    pub fn check(&self, current: &CommandExecution) -> Result<(), TransitionError> {
        if self
            .expected_target
            .as_ref()
            .is_some_and(|t| *t != current.target)
        {
            return Err(TransitionError::TargetMismatch);
        }
        if let Some(expected) = self.expected_execution_number {
            if expected != current.execution_number {
                return Err(TransitionError::AttemptMismatch {
                    expected,
                    actual: current.execution_number,
                });
            }
        }
        if self.respects_hold() && current.is_held(self.now) {
            if let Some(not_before) = current.not_before {
                return Err(TransitionError::Held { not_before });
            }
        }
        if current.status.is_terminal() {
            return Err(TransitionError::TerminalStateReached {
                status: current.status,
            });
        }
        if self.enforce_deadlines {
            if let Some(deadline) = current.overdue(self.now) {
                return Err(TransitionError::DeadlinePassed { deadline });
            }
        }
        if let Some(expected) = self.expected_version {
            if expected != current.version {
                return Err(TransitionError::VersionMismatch {
                    expected,
                    actual: current.version,
                });
            }
        }
        if !self.allowed_from.contains(&current.status) {
            if self.to == ExecutionStatus::Canceled
                && current.status == ExecutionStatus::InProgress
                && !self.force
            {
                return Err(TransitionError::ForceRequired);
            }
            return Err(TransitionError::InvalidStateTransition {
                from: Some(current.status),
                to: self.to,
                actor: self.actor,
                allowed: current.status.allowed_targets(self.actor).to_vec(),
            });
        }
        Ok(())
    }

    /// The record after this change.
    pub fn apply(&self, current: &CommandExecution) -> Result<CommandExecution, TransitionError> {
        self.check(current)?;
        let mut next = current.clone();
        next.status = self.to;
        // The reason always describes the latest change; one left over from an
        // earlier status would mislead.
        next.status_reason.clone_from(&self.status_reason);
        if let Some(details) = &self.status_details {
            next.status_details.clone_from(details);
        }
        if let Some(result) = &self.result {
            next.result.clone_from(result);
        }
        next.last_updated_at = self.now;
        if self.starts() && next.started_at.is_none() {
            next.started_at = Some(self.now);
        }
        if self.completes() {
            next.completed_at = Some(self.now);
            next.time_to_live = self.now.plus_secs(i64::from(current.retention_seconds));
        }
        next.step_deadline = self.step_deadline(current);
        if let Some(attempt) = self.new_attempt {
            next.execution_number = current.execution_number + 1;
            next.deliver_by = attempt.deliver_by;
            next.started_at = None;
            next.status_details.clear();
            next.result.clear();
        }
        if let Some(at) = self.hold_until {
            next.not_before = Some(at);
        }
        if let Some(by) = &self.canceled_by {
            next.canceled_by = Some(by.clone());
        }
        if let Some(late) = &self.late_result {
            next.late_result = Some(late.clone());
        }
        if self.busy {
            next.busy_count = current.busy_count + 1;
        }
        next.version = current.version + 1;
        Ok(next)
    }
}

/// Applies `update` by `actor` to `current` at `now`: the whole rule set in
/// one call.
pub fn transition(
    current: &CommandExecution,
    update: StatusUpdate,
    actor: Actor,
    now: Timestamp,
) -> Result<CommandExecution, TransitionError> {
    let to = update.status.unwrap_or(current.status);
    TransitionPlan::new(update, to, actor, now)?.apply(current)
}
