//! THE DEADLINE MODEL: when an execution may be delivered, by when it must be
//! taken and finished, and what happens when a deadline passes. This module
//! holds the vocabulary (which deadline, what a timeout does, a late
//! result); the record's own deadline arithmetic is in `execution`
//! (`CommandExecution::expiry`, `wake_at`, `is_held`) and the system's
//! change when one passes is `TransitionPlan::expire` in `transition`.
//! Pure, no I/O: the sweeper and every read pass the current time in.
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

use crate::map::StatusDetails;
use crate::reason::StatusReason;
use crate::schema::Parameters;
use crate::status::ExecutionStatus;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

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

    pub(crate) const fn describe(self) -> &'static str {
        match self {
            Self::ExecutionTimeout => "the execution did not finish by completeBy",
            Self::DeliveryTimeout => "the device did not take the execution by deliverBy",
            Self::StepTimeout => {
                "the device sent no update within its stepTimeoutInMinutes while IN_PROGRESS"
            }
        }
    }

    /// Whether a new attempt may follow this deadline.
    pub(crate) const fn retryable(self) -> bool {
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
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TimeOut => "TIME_OUT",
            Self::Retry => "RETRY",
        }
    }

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
    #[serde(default, skip_serializing_if = "crate::map::SortedMap::is_empty")]
    pub status_details: StatusDetails,
    #[serde(default, skip_serializing_if = "crate::map::SortedMap::is_empty")]
    pub result: Parameters,
    pub received_at: Timestamp,
}

/// A retry: the next attempt number, with fresh per-attempt fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewAttempt {
    /// The new attempt's `deliverBy`.
    pub deliver_by: Option<Timestamp>,
}
