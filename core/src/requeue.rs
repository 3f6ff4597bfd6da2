//! A DEVICE REPORT THAT REQUEUES instead of ending the execution: a
//! deferral ("not now", the same attempt waits) or a retried failure (a new
//! attempt, after the policy's backoff). The rules are in `retry`; this
//! module turns them into a [`TransitionPlan`]. Pure, no I/O.

use crate::execution::CommandExecution;
use crate::reason::StatusReason;
use crate::retry::{is_deferral, DEFERRED};
use crate::status::{Actor, ExecutionStatus};
use crate::time::Timestamp;
use crate::transition::TransitionPlan;
use crate::update::StatusUpdate;

impl TransitionPlan {
    /// What a device's FAILED, REJECTED or TIMED_OUT report does instead of
    /// ending `current`, if anything: `None` means the report stands. The
    /// plan is conditional on `current`'s version.
    pub fn requeue(
        current: &CommandExecution,
        update: &StatusUpdate,
        now: Timestamp,
    ) -> Option<Self> {
        if current.status.is_terminal() {
            return None;
        }
        let to = update.status?;
        let code = update
            .status_reason
            .as_ref()
            .map(|r| r.reason_code.as_str());
        let details_code = update
            .status_details
            .as_ref()
            .and_then(|d| d.get("reasonCode"))
            .map(String::as_str);
        let policy = &current.retry_policy;
        let attempt = current.execution_number;
        let defer = is_deferral(to, code, details_code);
        if !defer && !policy.retries(to, code.or(details_code), attempt) {
            return None;
        }
        let (reason_code, wait, description) = if defer {
            let n = current.defer_count + 1;
            let wait = policy.defer_seconds(&current.execution_id, n);
            (
                DEFERRED,
                wait,
                crate::text::msg![
                    "the device cannot run it now (deferral ",
                    n,
                    "); offered again in ",
                    wait,
                    " s"
                ],
            )
        } else {
            let wait = policy.backoff.delay_seconds(&current.execution_id, attempt);
            let requeued_as = match to {
                ExecutionStatus::Rejected => "RETRY_AFTER_REJECTION",
                ExecutionStatus::TimedOut => "RETRY_AFTER_TIMEOUT",
                _ => "RETRY_AFTER_FAILURE",
            };
            (
                requeued_as,
                wait,
                crate::text::msg![
                    "attempt ",
                    attempt,
                    " ended ",
                    to.as_str(),
                    " (",
                    code.or(details_code).unwrap_or("no reason given"),
                    "); retried as attempt ",
                    attempt + 1,
                    " of ",
                    policy.max_attempts,
                    " in ",
                    wait,
                    " s"
                ],
            )
        };
        let requeue = StatusUpdate {
            status: Some(ExecutionStatus::Queued),
            status_reason: Some(StatusReason {
                reason_code: reason_code.to_owned(),
                reason_description: Some(description),
            }),
            // A deferral keeps what the device said; a new attempt starts clean.
            status_details: update.status_details.clone().filter(|_| defer),
            expected_version: Some(current.version),
            ..StatusUpdate::default()
        };
        let mut plan = Self::new_unchecked(requeue, ExecutionStatus::Queued, Actor::Device, now);
        plan.allowed_from = vec![
            ExecutionStatus::Queued,
            ExecutionStatus::Sent,
            ExecutionStatus::InProgress,
        ];
        plan.expected_target = Some(current.target.clone());
        if defer {
            plan.defer = true;
            plan.hold_until = Some(now.plus_secs(i64::from(wait)));
        } else {
            plan.retry_after(current, wait);
        }
        Some(plan)
    }
}
