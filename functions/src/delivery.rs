//! Delivery and deadlines: what the `dispatcher` (table stream) and the
//! `sweeper` (schedule) do. I/O through the store and the publisher only.
//!
//! - Dispatch: a QUEUED execution that is due is claimed QUEUED -> SENT with a
//!   write conditioned on the version it was seen at, then announced to its
//!   device (`notify` and `notify-next`). A replayed stream record finds the
//!   version moved and sends nothing. If the publish fails, the claim is
//!   undone (SENT -> QUEUED) with `notBefore` a little ahead, and the
//!   sweeper releases it then: failed publishes are retried without blocking
//!   the stream.
//! - Cancels and timeouts are written by the API and the sweeper; the
//!   dispatcher sees them on the stream and tells the device (`notify`,
//!   `notify-next`), so neither writer needs to publish.
//! - Sweep: executions whose wake time has come (the sparse due index) are
//!   timed out or re-queued (`courier_core::deadline::expire`), released for
//!   dispatch, or re-filed if they woke early.

use crate::device_protocol::Outgoing;
use crate::error::ServiceError;
use crate::publisher::{publish_all, Publisher};
use crate::service::Courier;
use crate::store::{Store, StoreError, TransitionOutcome};
use courier_core::protocol::TopicRoot;
use courier_core::{CommandExecution, ExecutionStatus, Timestamp, TransitionPlan};

/// How long a failed publish waits before the sweeper retries it.
pub const PUBLISH_RETRY_SECONDS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchOutcome {
    /// Claimed and announced to the device.
    Sent,
    /// The publish failed; put back on hold until the retry time.
    RetryScheduled,
    /// Nothing to do (not QUEUED, held, already claimed, or changed since).
    Skipped(&'static str),
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Jobs whose wake time came.
    pub jobs: usize,
    pub due: usize,
    pub timed_out: usize,
    pub requeued: usize,
    pub dispatched: usize,
    pub rescheduled: usize,
    pub skipped: usize,
}

impl<S: Store> Courier<S> {
    /// Delivers `seen` (an execution as last read, e.g. from a stream image).
    pub async fn dispatch<P: Publisher>(
        &self,
        root: &TopicRoot,
        publisher: &P,
        seen: &CommandExecution,
        now: Timestamp,
    ) -> Result<DispatchOutcome, ServiceError> {
        if seen.status != ExecutionStatus::Queued {
            return Ok(DispatchOutcome::Skipped("not queued"));
        }
        if seen.is_held(now) {
            return Ok(DispatchOutcome::Skipped("held until notBefore"));
        }
        let id = &seen.execution_id;
        let token = format!("dispatch:{id}:{}", seen.version);
        let plan = TransitionPlan::dispatch(seen.version, now);
        let claimed = match self.store().apply_transition(id, &plan, &token).await {
            Ok(TransitionOutcome::Applied { execution, .. }) => execution,
            Ok(TransitionOutcome::Duplicate(_)) => {
                return Ok(DispatchOutcome::Skipped("already dispatched"))
            }
            Err(StoreError::Rejected { error, .. }) => {
                tracing::info!(execution_id = %id, reason = error.code(), "dispatch skipped: the execution changed");
                return Ok(DispatchOutcome::Skipped("changed since"));
            }
            Err(StoreError::NotFound) => return Ok(DispatchOutcome::Skipped("gone")),
            Err(other) => return Err(ServiceError::for_execution(other, id)),
        };
        let messages = self.notifications(root, &claimed.target, true, now).await?;
        match publish_all(publisher, &messages).await {
            Ok(()) => {
                tracing::info!(execution_id = %id, target = %claimed.target, "execution sent");
                Ok(DispatchOutcome::Sent)
            }
            Err(err) => {
                tracing::warn!(execution_id = %id, error = %err, "publish failed; delivery will be retried");
                let retry_at = now.plus_secs(PUBLISH_RETRY_SECONDS);
                let undo = TransitionPlan::undispatch(claimed.version, retry_at, now);
                let token = format!("undispatch:{id}:{}", claimed.version);
                match self.store().apply_transition(id, &undo, &token).await {
                    Ok(_) | Err(StoreError::Rejected { .. } | StoreError::NotFound) => {
                        Ok(DispatchOutcome::RetryScheduled)
                    }
                    Err(other) => Err(ServiceError::for_execution(other, id)),
                }
            }
        }
    }

    /// Tells a device that one of its executions ended without it (canceled,
    /// timed out) or went back to the queue: its new pending list and next
    /// execution.
    pub async fn announce_change<P: Publisher>(
        &self,
        root: &TopicRoot,
        publisher: &P,
        execution: &CommandExecution,
        now: Timestamp,
    ) -> Result<Vec<Outgoing>, ServiceError> {
        let messages = self
            .notifications(root, &execution.target, true, now)
            .await?;
        publish_all(publisher, &messages)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        Ok(messages)
    }

    /// One pass over what is due at `now`, at most `limit` per due-index
    /// shard.
    pub async fn sweep<P: Publisher>(
        &self,
        root: &TopicRoot,
        publisher: &P,
        now: Timestamp,
        limit: u32,
    ) -> Result<SweepReport, ServiceError> {
        let due = self.store().due_executions(now, limit).await?;
        let mut report = SweepReport {
            due: due.len(),
            ..SweepReport::default()
        };
        for (tenant, execution) in due {
            let courier = self.for_tenant(&tenant);
            if execution.overdue(now).is_some() {
                let after = courier.expire_overdue(&execution, None, now).await?;
                match after.status {
                    ExecutionStatus::TimedOut => report.timed_out += 1,
                    ExecutionStatus::Queued if after.version > execution.version => {
                        report.requeued += 1;
                    }
                    ExecutionStatus::Queued
                    | ExecutionStatus::Sent
                    | ExecutionStatus::InProgress
                    | ExecutionStatus::Succeeded
                    | ExecutionStatus::Failed
                    | ExecutionStatus::Rejected
                    | ExecutionStatus::Canceled => report.skipped += 1,
                }
            } else if execution.status == ExecutionStatus::Queued && !execution.is_held(now) {
                match courier.dispatch(root, publisher, &execution, now).await? {
                    DispatchOutcome::Sent | DispatchOutcome::RetryScheduled => {
                        report.dispatched += 1;
                    }
                    DispatchOutcome::Skipped(_) => report.skipped += 1,
                }
            } else {
                // Woke early: a change moved its deadline later.
                courier.store().reschedule(&execution).await?;
                report.rescheduled += 1;
            }
        }
        Ok(report)
    }
}
