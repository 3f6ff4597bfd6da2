//! Status changes: planning a requested change and applying it. Pure, no
//! I/O; `update` parses requests, `status` holds the table.
//!
//! A change is first turned into a [`TransitionPlan`] that needs no current
//! record: the statuses it may start from (from the table in `status`), the
//! version it expects, the fields it sets. The DynamoDB store turns a plan into
//! one conditional UpdateItem (no read first); [`TransitionPlan::apply`] does
//! the same to a record in memory and explains any refusal. Both read the same
//! plan, so the store's condition and the in-memory rules cannot drift.

use crate::deadline::{Deadline, LateResult, NewAttempt};
use crate::device_protocol::DeviceProtocol;
use crate::error::ErrorCode;
use crate::execution::CommandExecution;
use crate::ids::{ExecutionId, ThingName};
use crate::json::Json;
use crate::map::StatusDetails;
use crate::reason::StatusReason;
use crate::schema::Parameters;
use crate::status::{Actor, ExecutionStatus};
use crate::time::Timestamp;
use crate::update::StatusUpdate;

/// Why a status change was refused. `code()` is the AWS-style error code,
/// `details()` what the API's error body and the WASM module add to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionError {
    TerminalStateReached {
        status: ExecutionStatus,
    },
    VersionMismatch {
        expected: u64,
        actual: u64,
    },
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
    TargetMismatch,
    /// The device names an attempt (`executionNumber`) that is not the
    /// current one.
    AttemptMismatch {
        expected: u32,
        actual: u32,
    },
    /// Held until `notBefore`: not deliverable, and invisible to the device.
    Held {
        not_before: Timestamp,
    },
    /// A deadline passed; the execution is timed out (or re-queued) by the
    /// system, not changed by this request.
    DeadlinePassed {
        deadline: Deadline,
    },
    /// The device has started the work; cancelling it needs `force`.
    ForceRequired,
}

impl std::fmt::Display for TransitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for TransitionError {}

fn describe_invalid(from: Option<ExecutionStatus>, to: ExecutionStatus, actor: Actor) -> String {
    match from {
        Some(from) => crate::text::msg![
            "the ",
            actor,
            " may not move an execution from ",
            from,
            " to ",
            to
        ],
        None => crate::text::msg!["the ", actor, " may never move an execution to ", to],
    }
}

impl TransitionError {
    /// The sentence the API's error body and the WASM module show.
    pub fn message(&self) -> String {
        match self {
            Self::TerminalStateReached { status } => crate::text::msg![
                "the execution is already ",
                status,
                ", a terminal status; it can no longer change"
            ],
            Self::VersionMismatch { expected, actual } => crate::text::msg![
                "expected version ",
                expected,
                ", but the execution is at version ",
                actual
            ],
            Self::InvalidStateTransition {
                from, to, actor, ..
            } => describe_invalid(*from, *to, *actor),
            Self::TargetMismatch => "no such execution for this target".to_owned(),
            Self::AttemptMismatch { expected, actual } => crate::text::msg![
                "execution number ",
                expected,
                " is not the current attempt (",
                actual,
                ")"
            ],
            Self::Held { .. } => {
                "the execution is scheduled; it cannot be delivered or updated before notBefore"
                    .to_owned()
            }
            Self::DeadlinePassed { deadline } => {
                crate::text::msg!["the execution's ", deadline.code(), " deadline has passed"]
            }
            Self::ForceRequired => "the device has started this execution (IN_PROGRESS); cancel with \"force\": true to stop it".to_owned(),
        }
    }

    /// The refusal's particulars (the current status, the versions, what
    /// is allowed instead), for an error body's `details`.
    pub fn details(&self) -> Json {
        let statuses = |list: &[ExecutionStatus]| {
            Json::Array(list.iter().map(|s| Json::from(s.as_str())).collect())
        };
        match self {
            Self::TerminalStateReached { status } => {
                Json::object([("status", Json::from(status.as_str()))])
            }
            Self::VersionMismatch { expected, actual } => Json::object([
                ("expected", Json::from(*expected)),
                ("actual", Json::from(*actual)),
            ]),
            Self::AttemptMismatch { expected, actual } => Json::object([
                ("expected", Json::from(*expected)),
                ("actual", Json::from(*actual)),
            ]),
            Self::InvalidStateTransition {
                from,
                to,
                actor,
                allowed,
            } => Json::object([
                ("from", Json::from(from.map(ExecutionStatus::as_str))),
                ("to", Json::from(to.as_str())),
                ("actor", Json::from(actor.as_str())),
                ("allowed", statuses(allowed)),
            ]),
            Self::Held { not_before } => Json::object([("notBefore", Json::from(*not_before))]),
            Self::DeadlinePassed { deadline } => {
                Json::object([("deadline", Json::from(deadline.code()))])
            }
            Self::TargetMismatch | Self::ForceRequired => Json::Object(Default::default()),
        }
    }

    /// The request's error code (the API's `code`, the module's `code`).
    /// Refusals that must not reveal the execution read as not found.
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::TerminalStateReached { .. } | Self::DeadlinePassed { .. } => {
                ErrorCode::TerminalStateReached
            }
            Self::VersionMismatch { .. } => ErrorCode::VersionMismatch,
            Self::InvalidStateTransition { .. } | Self::ForceRequired => {
                ErrorCode::InvalidStateTransition
            }
            Self::TargetMismatch | Self::AttemptMismatch { .. } | Self::Held { .. } => {
                ErrorCode::ResourceNotFoundException
            }
        }
    }
}

/// Whether an operator may cancel an execution in a status, and whether the
/// cancel must say `"force": true` (the device has started the work). Read
/// from the cancel plans themselves, so the dashboard's buttons and the
/// API cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelOptions {
    pub allowed: bool,
    pub force_required: bool,
}

impl CancelOptions {
    pub fn of(status: ExecutionStatus) -> Self {
        let plan = |force| {
            TransitionPlan::cancel(
                StatusUpdate::default(),
                "",
                force,
                Timestamp::from_millis(0),
            )
        };
        let allowed = plan(true).allowed_from.contains(&status);
        Self {
            allowed,
            force_required: allowed && !plan(false).allowed_from.contains(&status),
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
    /// Set for device updates: the execution must be delivered over the
    /// device protocol the update came by (a device's AWS IoT commands
    /// execution is not found through the Jobs API, nor the other way).
    pub expected_protocol: Option<DeviceProtocol>,
    pub status_reason: Option<StatusReason>,
    pub status_details: Option<StatusDetails>,
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
    /// A supersede: the execution that replaces this one.
    pub superseded_by: Option<ExecutionId>,
    /// A device's "not now": the same attempt waits and is offered again
    /// (`deferCount` goes up, `lastDeferredAt` is set).
    pub defer: bool,
    /// When IoT Core received the device message this plan answers (the
    /// rule's `timestamp()`). The store refuses a message older than the
    /// last one it applied to the execution as stale: Lambda redelivering an
    /// event after newer ones were applied changes nothing.
    pub message_at: Option<Timestamp>,
}

/// `lastUpdatedBy` for Courier's own changes (delivery, deadlines, retries).
pub const SYSTEM_IDENTITY: &str = "courier";

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

    pub(crate) fn new_unchecked(
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
            expected_protocol: None,
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
            defer: false,
            superseded_by: None,
            message_at: None,
        }
    }

    /// The system's change for an execution whose deadline has passed at `now`
    /// (`None` if none has): TIMED_OUT, or a new attempt. Conditional on the
    /// version it was computed from, so it never overwrites a newer change.
    pub fn expire(execution: &CommandExecution, now: Timestamp) -> Option<Self> {
        let deadline = execution.overdue(now)?;
        let attempt = execution.execution_number;
        let policy = &execution.retry_policy;
        let retry = deadline.retryable()
            && policy.retries(ExecutionStatus::TimedOut, Some(deadline.code()), attempt);
        let wait = if retry {
            policy
                .backoff
                .delay_seconds(&execution.execution_id, attempt)
        } else {
            0
        };
        let (to, description) = if retry {
            (
                ExecutionStatus::Queued,
                crate::text::msg![
                    deadline.describe(),
                    "; attempt ",
                    attempt,
                    " of ",
                    policy.max_attempts,
                    " re-queued as attempt ",
                    attempt + 1,
                    " in ",
                    wait,
                    " s"
                ],
            )
        } else {
            (ExecutionStatus::TimedOut, deadline.describe().to_owned())
        };
        let update = StatusUpdate {
            status: Some(to),
            status_reason: Some(StatusReason {
                reason_code: deadline.code().to_owned(),
                reason_description: Some(description),
            }),
            expected_version: Some(execution.version),
            ..StatusUpdate::default()
        };
        let mut plan = Self::new(update, to, Actor::System, now).ok()?;
        plan.enforce_deadlines = false;
        if retry {
            plan.retry_after(execution, wait);
        }
        Some(plan)
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

    /// Only an execution delivered over `protocol` (see
    /// [`TransitionPlan::expected_protocol`]).
    pub fn for_protocol(mut self, protocol: DeviceProtocol) -> Self {
        self.expected_protocol = Some(protocol);
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

    /// Makes this plan a new attempt of `execution`, held for `wait`
    /// seconds (none: offered at once), its `deliverBy` counted from then.
    pub(crate) fn retry_after(&mut self, execution: &CommandExecution, wait: u32) {
        let until = self.now.plus_secs(i64::from(wait));
        self.hold_until = (wait > 0).then_some(until);
        self.new_attempt = Some(NewAttempt {
            deliver_by: execution
                .delivery_timeout_seconds
                .map(|s| until.plus_secs(i64::from(s))),
        });
    }

    /// Who makes this change, as `lastUpdatedBy` records it: the operator,
    /// `thing/NAME` for a device, `courier` for the system.
    pub fn changed_by(&self) -> String {
        match self.actor {
            Actor::Operator => self
                .canceled_by
                .clone()
                .unwrap_or_else(|| "operator".to_owned()),
            Actor::Device => self.expected_target.as_ref().map_or_else(
                || "device".to_owned(),
                |t| crate::text::msg!["thing/", t.as_str()],
            ),
            Actor::System => SYSTEM_IDENTITY.to_owned(),
        }
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
            || self
                .expected_protocol
                .is_some_and(|p| p != current.protocol)
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
        if let Some(successor) = &self.superseded_by {
            next.superseded_by = Some(successor.clone());
        }
        if self.defer {
            next.defer_count = current.defer_count + 1;
            next.last_deferred_at = Some(self.now);
        }
        if self.to == ExecutionStatus::Sent && self.actor == Actor::System {
            next.sent_at = Some(self.now);
        }
        if self.actor == Actor::Device {
            next.sent_at = next.sent_at.or(Some(self.now));
            next.acknowledged_at = next.acknowledged_at.or(Some(self.now));
        }
        let by = self.changed_by();
        next.changed_by
            .insert(self.to.as_str().to_owned(), by.clone());
        next.last_updated_by = Some(by);
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

impl CommandExecution {
    /// The record as a reader should see it at `now`: an overdue execution is
    /// shown as the sweeper will leave it (timed out, or re-queued), before the
    /// sweeper has got to it. The version is left as stored.
    pub fn observed(&self, now: Timestamp) -> Self {
        match TransitionPlan::expire(self, now).map(|plan| plan.apply(self)) {
            Some(Ok(mut expired)) => {
                expired.version = self.version;
                expired
            }
            Some(Err(_)) | None => self.clone(),
        }
    }
}
