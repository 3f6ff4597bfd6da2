//! THE DEADLINE MODEL: when an execution may be delivered, by when it must be
//! taken and finished, and what happens when a deadline passes. Pure, no I/O:
//! the sweeper and every read call these with the current time.
//!
//! Every deadline is an absolute time kept in the execution record itself, so
//! it survives restarts and needs no timer anywhere but the table:
//!
//! | field          | set from                                   | applies while      | fires as              |
//! |----------------|--------------------------------------------|--------------------|-----------------------|
//! | `notBefore`    | the start request                          | QUEUED (held)      | release: dispatch     |
//! | `deliverBy`    | `deliveryTimeoutSeconds` after the attempt becomes due | QUEUED, SENT | `DELIVERY_TIMEOUT` |
//! | `completeBy`   | `executionTimeoutSeconds` after creation (or `notBefore`) | every non-terminal status | `EXECUTION_TIMEOUT` |
//! | `stepDeadline` | the device's `stepTimeoutInMinutes`, from its last IN_PROGRESS update | IN_PROGRESS | `STEP_TIMEOUT` |
//!
//! When a deadline fires the execution becomes TIMED_OUT with the deadline's
//! code as its `statusReason` — unless its `onTimeout` is `RETRY`, attempts
//! remain and the deadline is a per-attempt one (delivery or step): then it is
//! re-queued as a new attempt (`executionNumber` + 1). `completeBy` bounds the
//! whole execution and is never retried.

#![deny(clippy::wildcard_enum_match_arm)]

use crate::execution::{CommandExecution, StatusReason};
use crate::schema::Parameters;
use crate::status::{Actor, ExecutionStatus};
use crate::time::Timestamp;
use crate::transition::{StatusUpdate, TransitionPlan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which deadline fired. Its code is the `reasonCode` of the timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Deadline {
    /// `completeBy`: the execution as a whole (first: wins a tie, never retried).
    ExecutionTimeout,
    /// `deliverBy`: the device did not take the attempt in time.
    DeliveryTimeout,
    /// `stepDeadline`: the device went silent while IN_PROGRESS.
    StepTimeout,
}

impl Deadline {
    pub const fn code(self) -> &'static str {
        match self {
            Self::ExecutionTimeout => "EXECUTION_TIMEOUT",
            Self::DeliveryTimeout => "DELIVERY_TIMEOUT",
            Self::StepTimeout => "STEP_TIMEOUT",
        }
    }

    const fn describe(self) -> &'static str {
        match self {
            Self::ExecutionTimeout => "the execution did not finish by completeBy",
            Self::DeliveryTimeout => "the device did not take the execution by deliverBy",
            Self::StepTimeout => {
                "the device sent no update within its stepTimeoutInMinutes while IN_PROGRESS"
            }
        }
    }

    /// Whether a new attempt may follow this deadline.
    const fn retryable(self) -> bool {
        match self {
            Self::ExecutionTimeout => false,
            Self::DeliveryTimeout | Self::StepTimeout => true,
        }
    }
}

/// What happens when a per-attempt deadline fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OnTimeout {
    /// The execution becomes TIMED_OUT.
    #[default]
    TimeOut,
    /// Re-queued as a new attempt while `executionNumber < maxAttempts`.
    Retry,
}

impl OnTimeout {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "TIME_OUT" => Some(Self::TimeOut),
            "RETRY" => Some(Self::Retry),
            _ => None,
        }
    }
}

/// A device's result that arrived after the cloud had timed the execution
/// out: kept beside the TIMED_OUT status instead of being dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LateResult {
    /// The status the device reported.
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<StatusReason>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub status_details: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub result: Parameters,
    pub received_at: Timestamp,
}

impl LateResult {
    /// The late result an update carries, if it reports an outcome.
    pub fn from_update(update: &StatusUpdate, now: Timestamp) -> Option<Self> {
        let status = update.status.filter(|s| s.is_terminal())?;
        Some(Self {
            status,
            status_reason: update.status_reason.clone(),
            status_details: update.status_details.clone().unwrap_or_default(),
            result: update.result.clone().unwrap_or_default(),
            received_at: now,
        })
    }
}

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

    /// The record as a reader should see it at `now`: an overdue execution is
    /// shown as the sweeper will leave it (timed out, or re-queued), before the
    /// sweeper has got to it. The version is left as stored.
    pub fn observed(&self, now: Timestamp) -> Self {
        match expire(self, now).map(|plan| plan.apply(self)) {
            Some(Ok(mut expired)) => {
                expired.version = self.version;
                expired
            }
            Some(Err(_)) | None => self.clone(),
        }
    }
}

/// A retry: the next attempt number, with fresh per-attempt fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewAttempt {
    /// The new attempt's `deliverBy`.
    pub deliver_by: Option<Timestamp>,
}

/// The system's change for an execution whose deadline has passed at `now`
/// (`None` if none has): TIMED_OUT, or a new attempt. Conditional on the
/// version it was computed from, so it never overwrites a newer change.
pub fn expire(execution: &CommandExecution, now: Timestamp) -> Option<TransitionPlan> {
    let deadline = execution.overdue(now)?;
    let attempt = execution.execution_number;
    let retry = execution.on_timeout == OnTimeout::Retry
        && deadline.retryable()
        && attempt < execution.max_attempts;
    let (to, description) = if retry {
        (
            ExecutionStatus::Queued,
            format!(
                "{}; attempt {attempt} of {} re-queued as attempt {}",
                deadline.describe(),
                execution.max_attempts,
                attempt + 1
            ),
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
    let mut plan = TransitionPlan::new(update, to, Actor::System, now).ok()?;
    plan.enforce_deadlines = false;
    if retry {
        plan.new_attempt = Some(NewAttempt {
            deliver_by: execution
                .delivery_timeout_seconds
                .map(|s| now.plus_secs(i64::from(s))),
        });
    }
    Some(plan)
}
