//! DEVICE UPDATES: the changes a device makes to its own executions,
//! whichever device protocol it speaks (AWS IoT Jobs in `device_jobs`): a
//! status report (UpdateJobExecution, UpdateCommandExecution) and the claim
//! of its next execution (StartNextPendingJobExecution). Each is one
//! conditional write through the store; deadlines found passed are enforced
//! on the way (`delivery`), and a redelivered message is recognised and
//! applied once.

use super::Courier;
use crate::error::ServiceError;
use crate::store::{Store, StoreError, TransitionOutcome};
use courier_core::json::Json;
use courier_core::protocol;
use courier_core::update::parse_start_next;
use courier_core::{
    Actor, CommandExecution, DeviceProtocol, ExecutionId, ExecutionStatus, StatusUpdate, ThingName,
    Timestamp, TransitionError, TransitionPlan, ValidationCode, ValidationErrors,
};

/// What StartNextPendingJobExecution returned: the execution, and whether
/// this request moved it to IN_PROGRESS (so the device's pending list changed).
#[derive(Debug, Clone, PartialEq)]
pub struct NextExecution {
    pub execution: CommandExecution,
    pub claimed: bool,
}

/// One delivery of a device message, as the device path recognises it when
/// it comes again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// The Lambda request id: stable across Lambda's retries of one event.
    /// An update's `clientToken` takes its place where there is one.
    pub request_id: &'a str,
    /// When IoT Core received the message (the rule's `timestamp()`), where
    /// the rule passes it: an update older than one already applied is stale.
    pub received_at: Option<Timestamp>,
}

impl<'a> Delivery<'a> {
    /// A delivery known only by its request id.
    pub fn new(request_id: &'a str) -> Self {
        Self {
            request_id,
            received_at: None,
        }
    }
}

/// Which statuses a device's protocol lets it report: AWS IoT Jobs'
/// IN_PROGRESS, SUCCEEDED, FAILED and REJECTED, or AWS IoT commands', which
/// add TIMED_OUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceReports {
    JobsStatuses,
    CommandsStatuses,
}

/// What a device update did.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceUpdateOutcome {
    /// Written; `previous` is the status before it.
    Applied {
        execution: CommandExecution,
        previous: ExecutionStatus,
    },
    Duplicate(CommandExecution),
}

impl<S: Store> Courier<S> {
    /// A device's status report (an IoT rule event). `thing` comes from the
    /// MQTT topic, so a device can only ever touch its own executions.
    /// A redelivery is recognised by the update's clientToken, else the
    /// invocation's request id, and by its receive time ([`Delivery`]).
    pub async fn device_update(
        &self,
        thing: &str,
        execution_id: &str,
        update: &Json,
        delivery: Delivery<'_>,
        now: Timestamp,
    ) -> Result<DeviceUpdateOutcome, ServiceError> {
        let mut errors = ValidationErrors::new();
        let thing = errors.collect(ThingName::parse_at(thing, "thingName"));
        let id = errors.collect(ExecutionId::parse_at(execution_id, "executionId"));
        let update = match StatusUpdate::parse(update) {
            Ok(u) => Some(u),
            Err(e) => {
                errors.0.extend(e.0);
                None
            }
        };
        let (Some(thing), Some(id), Some(update)) = (thing, id, update) else {
            return Err(errors.into());
        };
        self.apply_device_update(
            thing,
            id,
            update,
            DeviceReports::JobsStatuses,
            delivery,
            now,
        )
        .await
    }

    /// Applies a parsed status report of `thing`'s to its execution `id`
    /// (see [`Courier::device_update`]).
    pub async fn apply_device_update(
        &self,
        thing: ThingName,
        id: ExecutionId,
        update: StatusUpdate,
        reports: DeviceReports,
        delivery: Delivery<'_>,
        now: Timestamp,
    ) -> Result<DeviceUpdateOutcome, ServiceError> {
        let Some(to) = update.status else {
            return Err(ServiceError::validation(
                "status",
                ValidationCode::MissingRequired,
                "status is required",
            ));
        };
        let token = update
            .client_token
            .as_ref()
            .map_or_else(|| delivery.request_id.to_owned(), ToString::to_string);
        let late = update.late_result(now);
        let retry = if to.is_terminal() && to != ExecutionStatus::Succeeded {
            // A deferral or a retried failure requeues instead (see
            // `TransitionPlan::requeue`): that needs the record.
            self.store()
                .get_execution(&id, now)
                .await?
                .and_then(|current| TransitionPlan::requeue(&current, &update, now))
        } else {
            None
        };
        // A commands device may report TIMED_OUT itself (terminal, with its
        // reason); the status table gives that move to the system, which is
        // what the device reports on behalf of.
        let actor = match (reports, to) {
            (DeviceReports::CommandsStatuses, ExecutionStatus::TimedOut) => Actor::System,
            _ => Actor::Device,
        };
        let plan = TransitionPlan::new(update, to, actor, now)
            .map_err(|error| ServiceError::Transition {
                error,
                current: None,
            })?
            .for_target(thing.clone())
            .for_protocol(match reports {
                DeviceReports::JobsStatuses => DeviceProtocol::Jobs,
                DeviceReports::CommandsStatuses => DeviceProtocol::Commands,
            })
            .received_at(delivery.received_at);
        // The retry only replaces a report that would itself be accepted.
        let plan = match retry {
            Some(mut retry) => {
                // Read by id alone: the write must still name the reporting
                // device and protocol, or a device could requeue another's.
                retry.expected_target.clone_from(&plan.expected_target);
                retry.expected_protocol = plan.expected_protocol;
                retry.expected_version = plan.expected_version.or(retry.expected_version);
                retry.expected_execution_number = plan.expected_execution_number;
                retry.enforce_deadlines = true;
                retry.message_at = plan.message_at;
                retry
            }
            None => plan,
        };
        match self.store.apply_transition(&id, &plan, &token).await {
            Ok(TransitionOutcome::Applied {
                execution: e,
                previous,
            }) => {
                tracing::info!(execution_id = %e.execution_id, status = %e.status, version = e.version, "device update applied");
                Ok(DeviceUpdateOutcome::Applied {
                    execution: e,
                    previous,
                })
            }
            Ok(TransitionOutcome::Duplicate(e)) => {
                tracing::info!(execution_id = %e.execution_id, "redelivered device update ignored");
                Ok(DeviceUpdateOutcome::Duplicate(e))
            }
            // Too late: the deadline is enforced now (the sweeper has not got
            // to it yet), keeping the device's result beside the timeout.
            Err(StoreError::Rejected {
                error: TransitionError::DeadlinePassed { deadline },
                current,
            }) => {
                let expired = self.expire_overdue(&current, late, now).await?;
                tracing::info!(execution_id = %id, deadline = deadline.code(), "device update after a deadline");
                Err(ServiceError::Transition {
                    error: if expired.status.is_terminal() {
                        TransitionError::TerminalStateReached {
                            status: expired.status,
                        }
                    } else {
                        TransitionError::DeadlinePassed { deadline }
                    },
                    current: Some(Box::new(expired)),
                })
            }
            // Already timed out: the result is kept as a late result.
            Err(StoreError::Rejected {
                error:
                    error @ TransitionError::TerminalStateReached {
                        status: ExecutionStatus::TimedOut,
                    },
                current,
            }) => {
                let current = match late {
                    Some(late) => self
                        .store()
                        .record_late_result(&id, &thing, &late, now)
                        .await?
                        .unwrap_or(*current),
                    None => *current,
                };
                Err(ServiceError::Transition {
                    error,
                    current: Some(Box::new(current)),
                })
            }
            Err(other) => Err(ServiceError::for_execution(other, &id)),
        }
    }

    /// StartNextPendingJobExecution: claims the device's next pending
    /// execution and moves it to IN_PROGRESS, atomically. An execution already
    /// IN_PROGRESS is returned as it is (with `statusDetails` applied if
    /// sent). `None` when nothing is pending. The claim is a conditional write
    /// on the version just read; if another request or a cancel changed the
    /// list in between, it looks again.
    pub async fn start_next(
        &self,
        thing: &ThingName,
        body: &Json,
        dedupe_token: &str,
        now: Timestamp,
    ) -> Result<Option<NextExecution>, ServiceError> {
        const ATTEMPTS: usize = 5;
        let update = parse_start_next(body)?;
        for _ in 0..ATTEMPTS {
            let pending = self.pending(thing, now).await?;
            let Some(next) = protocol::next_pending(&pending) else {
                return Ok(None);
            };
            if next.status == ExecutionStatus::InProgress
                && update.status_details.is_none()
                && update.step_timeout_in_minutes.is_none()
            {
                return Ok(Some(NextExecution {
                    execution: next.clone(),
                    claimed: false,
                }));
            }
            let claim = StatusUpdate {
                expected_version: Some(next.version),
                ..update.clone()
            };
            let plan = TransitionPlan::new(claim, ExecutionStatus::InProgress, Actor::Device, now)
                .map_err(|error| ServiceError::Transition {
                    error,
                    current: None,
                })?
                .for_target(thing.clone());
            match self
                .store
                .apply_transition(&next.execution_id, &plan, dedupe_token)
                .await
            {
                Ok(TransitionOutcome::Applied {
                    execution: e,
                    previous,
                }) => {
                    tracing::info!(execution_id = %e.execution_id, target = %e.target, "next execution started");
                    let claimed = previous != e.status;
                    return Ok(Some(NextExecution {
                        execution: e,
                        claimed,
                    }));
                }
                // A redelivered claim: its notifications went out the first time.
                Ok(TransitionOutcome::Duplicate(e)) => {
                    return Ok(Some(NextExecution {
                        execution: e,
                        claimed: false,
                    }))
                }
                // Raced with another claim, an update or a cancel: look again.
                Err(StoreError::Rejected { .. } | StoreError::NotFound) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Throttled(format!(
            "the pending list of {thing} kept changing for {ATTEMPTS} attempts"
        )))
    }
}
