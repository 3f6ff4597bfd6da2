//! DELIVERY AND DEADLINES: what a device is offered and told, and when.
//! What the `dispatcher` (table stream) and the `sweeper` (schedule) do, and
//! what every other path uses to tell a device or to enforce a deadline it
//! finds passed. I/O through the store and the publisher only.
//!
//! - What a device sees: its pending executions, not held for `notBefore`
//!   and not past a deadline, oldest first; its next one among them.
//! - Notifications (`notify`, `notify-next`) are built in `notifications`,
//!   after a write, from what the table says.
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
//!   timed out or re-queued (`TransitionPlan::expire`), released for
//!   dispatch, or re-filed if they woke early.

use super::notifications::{notification_messages, with_known};
use super::Courier;
use crate::error::ServiceError;
use crate::platform::publisher::{publish_all, Message, Payload, Publisher};
use crate::store::{Store, StoreError, TransitionOutcome};
use courier_core::command_payload::{self, OutputFormat};
use courier_core::commands;
use courier_core::json::Json;
use courier_core::payload_template;
use courier_core::protocol::{self, TopicRoot};
use courier_core::{
    CommandDefinition, CommandExecution, DeviceProtocol, ExecutionStatus, LateResult, ThingName,
    Timestamp, TransitionPlan,
};

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
    /// Pipeline runs whose wake time came.
    pub runs: usize,
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
        Ok(self.deliver(root, publisher, seen, now).await?.0)
    }

    /// The dispatcher's delivery of a new execution, from its INSERT record.
    /// The api has almost always delivered a direct execution already
    /// (direct delivery), so its current state is read first: a consistent
    /// read costs a fifth of the conditional claim that would fail (a failed
    /// write is billed too). A job's executions are claimed straight away:
    /// nobody delivered them before the stream.
    pub async fn dispatch_created<P: Publisher>(
        &self,
        root: &TopicRoot,
        publisher: &P,
        seen: &CommandExecution,
        now: Timestamp,
    ) -> Result<DispatchOutcome, ServiceError> {
        if seen.job_id.is_none() && seen.status == ExecutionStatus::Queued {
            let current = self.store().get_execution(&seen.execution_id, now).await?;
            match current {
                None => return Ok(DispatchOutcome::Skipped("gone")),
                Some(current)
                    if current.version != seen.version
                        || current.status != ExecutionStatus::Queued =>
                {
                    return Ok(DispatchOutcome::Skipped("already dispatched"))
                }
                Some(_) => {}
            }
        }
        self.dispatch(root, publisher, seen, now).await
    }

    /// DIRECT DELIVERY: the API delivers an execution it has just created
    /// rather than wait for the table's stream. The claim (QUEUED -> SENT)
    /// is the dispatcher's own conditional write, so whichever of the two
    /// comes first delivers, once per attempt, and the other finds it
    /// claimed and publishes nothing; what is published is read from the
    /// claim's result, so it is never older than the write. It never fails
    /// the request: if the claim or the publish fails, the dispatcher (on the
    /// stream's record) or the sweeper (after a failed publish, within
    /// `PUBLISH_RETRY_SECONDS` plus a sweep) delivers. Returns the record as
    /// it stands after.
    pub async fn deliver_now<P: Publisher>(
        &self,
        root: &TopicRoot,
        publisher: &P,
        created: CommandExecution,
        now: Timestamp,
    ) -> CommandExecution {
        if created.status != ExecutionStatus::Queued || created.is_held(now) {
            return created;
        }
        match self.deliver(root, publisher, &created, now).await {
            Ok((_, Some(after))) => after,
            Ok((_, None)) => created,
            Err(err) => {
                tracing::warn!(execution_id = %created.execution_id, error = %err, "direct delivery failed; the stream delivers it");
                created
            }
        }
    }

    /// [`Self::dispatch`], with the record after it when it wrote one.
    async fn deliver<P: Publisher>(
        &self,
        root: &TopicRoot,
        publisher: &P,
        seen: &CommandExecution,
        now: Timestamp,
    ) -> Result<(DispatchOutcome, Option<CommandExecution>), ServiceError> {
        if seen.status != ExecutionStatus::Queued {
            return Ok((DispatchOutcome::Skipped("not queued"), None));
        }
        if seen.is_held(now) {
            return Ok((DispatchOutcome::Skipped("held until notBefore"), None));
        }
        let id = &seen.execution_id;
        let token = format!("dispatch:{id}:{}", seen.version);
        let plan = TransitionPlan::dispatch(seen.version, now);
        // Jobs protocol: the device's pending list and what it was last told
        // are read while the claim is written (their round trips overlap
        // instead of following each other); the claim's own result then
        // stands in for this execution in the list, so what is published is
        // the table after the write even where the index has not caught up.
        let claim = self.store().apply_transition(id, &plan, &token);
        let (claim, reads) = if seen.protocol.is_jobs() {
            let (claim, reads) = tokio::join!(claim, self.notification_reads(&seen.target, now));
            (claim, Some(reads))
        } else {
            (claim.await, None)
        };
        let claimed = match claim {
            Ok(TransitionOutcome::Applied { execution, .. }) => execution,
            Ok(TransitionOutcome::Duplicate(_)) => {
                return Ok((DispatchOutcome::Skipped("already dispatched"), None))
            }
            Err(StoreError::Rejected { error, .. }) => {
                tracing::info!(execution_id = %id, reason = error.code().as_str(), "dispatch skipped: the execution changed");
                return Ok((DispatchOutcome::Skipped("changed since"), None));
            }
            Err(StoreError::NotFound) => return Ok((DispatchOutcome::Skipped("gone"), None)),
            Err(other) => return Err(ServiceError::for_execution(other, id)),
        };
        // The next execution the device is told, to record once it is out.
        let mut told_next = None;
        let messages = match (claimed.protocol, reads) {
            (DeviceProtocol::Jobs, Some(reads)) => {
                let (pending, told) = reads?;
                let pending = with_known(pending, &claimed, now);
                let (messages, news) = notification_messages(
                    root,
                    &claimed.target,
                    now,
                    &pending,
                    &told,
                    self.artifacts.as_deref(),
                    self.optional,
                );
                told_next = news.map(|next| (next, told));
                messages
            }
            (DeviceProtocol::Jobs, None) => self.notifications(root, &claimed.target, now).await?,
            // AWS IoT commands: the request itself, to the device's topic
            // (QoS 1, so a persistent session keeps it while it is away).
            (DeviceProtocol::Commands, _) => vec![self.command_request(&claimed, now).await?],
        };
        match publish_all(publisher, &messages).await {
            Ok(()) => {
                tracing::info!(execution_id = %id, target = %claimed.target, "execution sent");
                // Recorded after the publish, so the device hears one round
                // trip sooner. Two deliveries racing may then both tell it (a
                // duplicate notify-next, which devices take as the hint it
                // is). If another publisher recorded other news in between,
                // which reached the device last is unknown: nothing is kept,
                // and the next publisher tells it again. The same news stays.
                if let Some((next, told)) = told_next {
                    let thing = &claimed.target;
                    let kept = match self.store.record_told_next(thing, &told, Some(&next)).await {
                        Ok(true) => Ok(()),
                        Ok(false) => self.forget_told_next(thing, Some(&next)).await,
                        Err(err) => Err(err.into()),
                    };
                    if let Err(err) = kept {
                        tracing::warn!(execution_id = %id, error = %err, "what the device was told is not recorded");
                    }
                }
                Ok((DispatchOutcome::Sent, Some(claimed)))
            }
            Err(err) => {
                tracing::warn!(execution_id = %id, error = %err, "publish failed; delivery will be retried");
                if claimed.protocol.is_jobs() {
                    self.forget_told_next(&claimed.target, None).await?;
                }
                let retry_at = now.plus_secs(PUBLISH_RETRY_SECONDS);
                let undo = TransitionPlan::undispatch(claimed.version, retry_at, now);
                let token = format!("undispatch:{id}:{}", claimed.version);
                match self.store().apply_transition(id, &undo, &token).await {
                    Ok(TransitionOutcome::Applied { execution, .. }) => {
                        Ok((DispatchOutcome::RetryScheduled, Some(execution)))
                    }
                    Ok(TransitionOutcome::Duplicate(_))
                    | Err(StoreError::Rejected { .. } | StoreError::NotFound) => {
                        Ok((DispatchOutcome::RetryScheduled, None))
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
    ) -> Result<Vec<Message>, ServiceError> {
        // A commands device is not told (AWS IoT commands has no such
        // notification); its status events say what happened.
        if !execution.protocol.is_jobs() {
            return Ok(Vec::new());
        }
        let messages = self.notifications(root, &execution.target, now).await?;
        if let Err(err) = publish_all(publisher, &messages).await {
            self.forget_told_next(&execution.target, None).await?;
            return Err(ServiceError::Unavailable(err.to_string()));
        }
        Ok(messages)
    }

    /// An AWS IoT commands request: the command's payload on the device's
    /// request topic for its format, expiring from the broker's session
    /// with the execution's first deadline (MQTT 5 message expiry). The
    /// payload is the command's static `payload` as it is, or its
    /// `payloadTemplate` filled from the execution (JSON, or CBOR when its
    /// preprocessor says so), or else the job document (`{commandId,
    /// parameters}`).
    pub(crate) async fn command_request(
        &self,
        execution: &CommandExecution,
        now: Timestamp,
    ) -> Result<Message, ServiceError> {
        let validator = self.validator(execution.command_id.as_str()).await?;
        let definition = validator.definition();
        let (payload, format) = match &definition.payload {
            Some(fixed) => (
                Payload::bytes(fixed.bytes(), fixed.format().content_type()),
                fixed.format(),
            ),
            None => {
                let document = self.command_document(execution, definition, now)?;
                let format = definition.output_format.request_format();
                let payload = match definition.output_format {
                    OutputFormat::Json => Payload::Json(document),
                    OutputFormat::Cbor => {
                        Payload::bytes(command_payload::cbor(&document), format.content_type())
                    }
                };
                (payload, format)
            }
        };
        Ok(Message {
            topic: commands::request_topic(
                &self.commands.root,
                &execution.target,
                &execution.execution_id,
                format,
            ),
            payload,
            message_expiry_seconds: commands::request_expiry_seconds(execution, now),
        })
    }

    fn command_document(
        &self,
        execution: &CommandExecution,
        definition: &CommandDefinition,
        now: Timestamp,
    ) -> Result<Json, ServiceError> {
        let execution = &*self.for_device(execution, now);
        let Some(template) = &definition.payload_template else {
            return Ok(protocol::job_document(execution));
        };
        // The template was checked, with values of every type, when the
        // command was defined: a failure here is a bug, not bad input.
        payload_template::document(
            template,
            execution.protocol,
            &execution.parameters,
            execution.execution_timeout_seconds,
        )
        .map_err(|why| {
            ServiceError::Internal(format!(
                "payload template of {}: {why}",
                execution.command_id
            ))
        })
    }

    /// AWS IoT commands' status event for a change of a commands-protocol
    /// execution, on `{events}/{commandId}/{status}`, when the status as
    /// the commands protocol names it moved (QUEUED -> SENT is CREATED both
    /// times) or a late result was kept, and the deployment publishes them.
    /// True when one was published.
    pub async fn command_status_event<P: Publisher>(
        &self,
        publisher: &P,
        execution: &CommandExecution,
        previous: Option<ExecutionStatus>,
        now: Timestamp,
    ) -> Result<bool, ServiceError> {
        let moved = previous.is_none_or(|p| {
            commands::command_status(p) != commands::command_status(execution.status)
        });
        if execution.protocol.is_jobs() || !moved || !self.optional.command_status_events {
            return Ok(false);
        }
        let event = Message::new(
            commands::event_topic(&self.commands.events_root, execution),
            commands::status_event(execution, &self.commands.arns, now),
        );
        publish_all(publisher, std::slice::from_ref(&event))
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        Ok(true)
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
                if after.version > execution.version {
                    // A silent head ended (or went back to the queue): what
                    // is behind it is announced now, not after another pass.
                    // The dispatcher's pass over the same change then finds
                    // the device told and publishes no second notify-next.
                    if let Err(err) = courier.announce_change(root, publisher, &after, now).await {
                        tracing::warn!(execution_id = %after.execution_id, error = %err, "announcing the next execution failed; the dispatcher tells the device");
                    }
                }
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

    /// Applies the deadline that has passed on `current` (TIMED_OUT, or a
    /// new attempt), keeping `late` beside it, and returns the record after.
    /// If another writer got there first, returns the record as it is now.
    pub async fn expire_overdue(
        &self,
        current: &CommandExecution,
        late: Option<LateResult>,
        now: Timestamp,
    ) -> Result<CommandExecution, ServiceError> {
        let Some(mut plan) = TransitionPlan::expire(current, now) else {
            return Ok(current.clone());
        };
        plan.late_result = late.filter(|_| plan.to == ExecutionStatus::TimedOut);
        let token = format!("expire:{}:{}", current.execution_id, current.version);
        match self
            .store
            .apply_transition(&current.execution_id, &plan, &token)
            .await
        {
            Ok(
                TransitionOutcome::Applied { execution, .. }
                | TransitionOutcome::Duplicate(execution),
            ) => {
                tracing::info!(execution_id = %execution.execution_id, status = %execution.status, reason = execution.status_reason.as_ref().map(|r| r.reason_code.as_str()), "deadline enforced");
                Ok(execution)
            }
            Err(StoreError::Rejected { current, .. }) => Ok(*current),
            Err(other) => Err(ServiceError::for_execution(other, &current.execution_id)),
        }
    }

    /// What a device may see of its pending list (GetPendingJobExecutions,
    /// and what start-next picks from): not held for `notBefore`, and not
    /// past a deadline (the sweeper will time those out); oldest first.
    pub async fn pending(
        &self,
        thing: &ThingName,
        now: Timestamp,
    ) -> Result<Vec<CommandExecution>, ServiceError> {
        let mut pending = self.store.pending_executions(thing, now).await?;
        pending.retain(|e| on_jobs_list(e, now));
        Ok(pending)
    }
}

/// Whether `execution`, read from its device's pending index, is on the
/// list [`Courier::pending`] shows: commands-protocol executions are not
/// the Jobs API's to show, and held or overdue ones are hidden.
pub(super) fn on_jobs_list(execution: &CommandExecution, now: Timestamp) -> bool {
    execution.protocol.is_jobs() && !execution.is_held(now) && execution.overdue(now).is_none()
}
