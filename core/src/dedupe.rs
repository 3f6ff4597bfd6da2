//! DEDUPE AND SUPERSEDE: what a start request carrying a `dedupeKey` does
//! when an execution with the same key is still pending on the device. Pure,
//! no I/O; the service reads the pending one (through the key's guard item)
//! and writes the outcome race-free (see `functions/src/store`).
//!
//! | the pending one            | same parameters | different parameters, no supersede | supersede                        |
//! |----------------------------|-----------------|------------------------------------|----------------------------------|
//! | not started (QUEUED, SENT) | returned (200)  | 409 ConflictException              | CANCELED `SUPERSEDED`, new one created (201) |
//! | started (IN_PROGRESS)      | returned (200)  | 409 ConflictException              | 409, unless `force`              |
//!
//! Only standalone requests carry keys, so a job's executions (and later a
//! pipeline's) are never superseded by one.

use crate::execution::CommandExecution;
use crate::ids::ExecutionId;
use crate::reason::StatusReason;
use crate::status::ExecutionStatus;
use crate::time::Timestamp;
use crate::transition::TransitionPlan;
use crate::update::StatusUpdate;

/// The reason code of an execution another request replaced.
pub const SUPERSEDED: &str = "SUPERSEDED";

/// What a keyed start request does, given the execution pending under its
/// key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dedupe {
    /// The same request again: the pending execution is the answer.
    ReturnPending,
    /// Refused (409): why.
    Conflict(String),
    /// Cancel the pending one (SUPERSEDED) and create the new one.
    Supersede,
}

/// Decides a keyed start request, whose execution would be `candidate`,
/// against `pending` (the execution its key holds, not terminal).
pub fn decide(
    pending: &CommandExecution,
    candidate: &CommandExecution,
    supersede: bool,
    force: bool,
) -> Dedupe {
    let command_id = &candidate.command_id;
    if pending.command_id == *command_id && pending.parameters == candidate.parameters {
        return Dedupe::ReturnPending;
    }
    let id = pending.execution_id.as_str();
    if !supersede {
        return Dedupe::Conflict(crate::text::msg![
            "execution ",
            id,
            " is pending on this device with dedupeKey ",
            candidate.dedupe_key.as_ref().map_or("", |k| k.as_str()),
            " and other ",
            if pending.command_id == *command_id {
                "parameters"
            } else {
                "command"
            },
            "; send \"supersede\": true to replace it"
        ]);
    }
    match pending.status {
        ExecutionStatus::Queued | ExecutionStatus::Sent => Dedupe::Supersede,
        ExecutionStatus::InProgress if force => Dedupe::Supersede,
        ExecutionStatus::InProgress => Dedupe::Conflict(crate::text::msg![
            "execution ",
            id,
            " with this dedupeKey has started on the device; send \"force\": true to stop it and replace it"
        ]),
        ExecutionStatus::Succeeded
        | ExecutionStatus::Failed
        | ExecutionStatus::Rejected
        | ExecutionStatus::TimedOut
        | ExecutionStatus::Canceled => Dedupe::Supersede,
    }
}

impl TransitionPlan {
    /// `pending` replaced by `successor`, at `caller`'s request: CANCELED,
    /// reason SUPERSEDED, `supersededBy` naming the successor. Conditional
    /// on the version read.
    pub fn supersede(
        pending: &CommandExecution,
        successor: &ExecutionId,
        caller: &str,
        force: bool,
        now: Timestamp,
    ) -> Self {
        let update = StatusUpdate {
            status: Some(ExecutionStatus::Canceled),
            status_reason: Some(StatusReason {
                reason_code: SUPERSEDED.to_owned(),
                reason_description: Some(crate::text::msg![
                    "replaced by execution ",
                    successor.as_str()
                ]),
            }),
            expected_version: Some(pending.version),
            ..StatusUpdate::default()
        };
        let mut plan = Self::cancel(update, caller, force, now);
        plan.superseded_by = Some(successor.clone());
        plan
    }
}
