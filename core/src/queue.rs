//! THE DEVICE QUEUE: a device's pending executions in the order it gets
//! them, and why each one waits. Pure, no I/O; the API lists it
//! (`GET /things/{thing}/queue`) and the dashboard shows it.
//!
//! Order: work the device has started (IN_PROGRESS), oldest first; then what
//! it may take now (QUEUED, SENT), oldest first, the first of which is its
//! next execution (`protocol::next_pending`); then what is held until its
//! `notBefore` (scheduled, deferred by the device, or waiting for a retry's
//! backoff), soonest first.

use crate::execution::CommandExecution;
use crate::status::ExecutionStatus;
use crate::time::Timestamp;

/// Why a pending execution has not ended yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// The device has started it.
    InProgress,
    /// Published to the device (or announced as its next), not yet taken.
    DeliveredNotStarted,
    /// Due, not yet published to the device (the dispatcher is on it, or a
    /// failed publish is retried).
    NotYetDelivered,
    /// Held until its `notBefore` (scheduled, or a failed publish waiting
    /// to be retried).
    HeldUntilNotBefore,
    /// The device said "not now"; offered again at `notBefore`.
    Deferred,
    /// A retried attempt waiting for its backoff to end (`notBefore`).
    RetryBackoff,
}

impl Waiting {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::DeliveredNotStarted => "DELIVERED_NOT_STARTED",
            Self::NotYetDelivered => "NOT_YET_DELIVERED",
            Self::HeldUntilNotBefore => "HELD_UNTIL_NOT_BEFORE",
            Self::Deferred => "DEFERRED",
            Self::RetryBackoff => "RETRY_BACKOFF",
        }
    }

    /// Why a held execution is held: its latest change says.
    fn held(execution: &CommandExecution) -> Self {
        let code = execution
            .status_reason
            .as_ref()
            .map(|r| r.reason_code.as_str());
        if code == Some(crate::retry::DEFERRED) {
            Self::Deferred
        } else if execution.execution_number > 1 && code != Some("PUBLISH_FAILED") {
            Self::RetryBackoff
        } else {
            Self::HeldUntilNotBefore
        }
    }

    /// Why `execution` waits at `now`; `None` once it has ended.
    pub fn of(execution: &CommandExecution, now: Timestamp) -> Option<Self> {
        match execution.status {
            ExecutionStatus::InProgress => Some(Self::InProgress),
            ExecutionStatus::Sent => Some(Self::DeliveredNotStarted),
            ExecutionStatus::Queued if execution.is_held(now) => Some(Self::held(execution)),
            ExecutionStatus::Queued => Some(Self::NotYetDelivered),
            ExecutionStatus::Succeeded
            | ExecutionStatus::Failed
            | ExecutionStatus::Rejected
            | ExecutionStatus::TimedOut
            | ExecutionStatus::Canceled => None,
        }
    }
}

/// The pending executions (any order, terminal ones ignored) in the order
/// the device gets them, each with why it waits.
pub fn queue(pending: &[CommandExecution], now: Timestamp) -> Vec<(&CommandExecution, Waiting)> {
    let mut out: Vec<(&CommandExecution, Waiting)> = pending
        .iter()
        .filter_map(|e| Waiting::of(e, now).map(|w| (e, w)))
        .collect();
    out.sort_by_key(|(e, w)| {
        let group = match w {
            Waiting::InProgress => 0,
            Waiting::DeliveredNotStarted | Waiting::NotYetDelivered => 1,
            Waiting::HeldUntilNotBefore | Waiting::Deferred | Waiting::RetryBackoff => 2,
        };
        let at = if group == 2 {
            e.not_before.unwrap_or(e.created_at)
        } else {
            e.created_at
        };
        (group, at, e.execution_id.clone())
    });
    out
}
