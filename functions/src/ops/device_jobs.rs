//! THE DEVICE API (AWS IoT Jobs): what Courier answers on each request
//! topic, top to bottom — the raw message, its topic parsed
//! (`courier_core::protocol`), the thing's tenant, the request (get,
//! start-next, describe, update) applied through the store, the reply and
//! the notifications after. Returns the messages to publish, replies first;
//! the caller (`entry::device_events`) publishes them. I/O only through the
//! store.
//!
//! Notifications: a change that alters a device's pending list (an execution
//! started or ended) publishes `notify` with the new list, and `notify-next`
//! when the next execution is not the one the device was last told (see
//! `delivery`). Those cost one Query of the pending index and one read of
//! what the device was told after the write; progress reports
//! (IN_PROGRESS -> IN_PROGRESS) and redeliveries publish nothing.

use super::Courier;
use crate::error::ServiceError;
use crate::platform::publisher::Message;
use crate::store::{Store, StoreError, TransitionOutcome};
use courier_core::json::Json;
use courier_core::protocol::{self, DeviceRequest, JobRef, RejectedCode, RequestKind, TopicRoot};
use courier_core::update::parse_start_next;
use courier_core::{
    Actor, CommandExecution, ExecutionId, ExecutionStatus, StatusUpdate, ThingName, Timestamp,
    TransitionError, TransitionPlan, ValidationCode, ValidationErrors,
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
    /// Answers one raw MQTT message: JSON that does not parse (or is not
    /// UTF-8) is answered `InvalidJson`; an empty payload is an empty request.
    /// `Err` only when storage is unavailable or throttled: nothing is
    /// answered then, so that the platform delivers the message again.
    pub async fn device_message(
        &self,
        root: &TopicRoot,
        topic: &str,
        payload: &[u8],
        delivery: Delivery<'_>,
        now: Timestamp,
    ) -> Result<Vec<Message>, ServiceError> {
        if payload.iter().all(u8::is_ascii_whitespace) {
            return self
                .device_request(root, topic, &Json::Null, delivery, now)
                .await;
        }
        match serde_json::from_slice::<Json>(payload) {
            Ok(json) => self.device_request(root, topic, &json, delivery, now).await,
            Err(e) => match root.parse_request(topic) {
                Ok(request) => Ok(vec![reject(
                    root,
                    &request,
                    RejectedCode::InvalidJson,
                    &format!("the payload is not JSON: {e}"),
                    None,
                    None,
                    now,
                )]),
                // Not a request: the same answer as for a JSON payload.
                Err(_) => {
                    self.device_request(root, topic, &Json::Null, delivery, now)
                        .await
                }
            },
        }
    }

    /// Answers one request published by a device on `topic`. `delivery`
    /// identifies it (the Lambda request id, the receive time) for updates
    /// and claims that carry no clientToken. `Err` when storage is
    /// unavailable or throttled (see [`Courier::device_message`]).
    pub async fn device_request(
        &self,
        root: &TopicRoot,
        topic: &str,
        payload: &Json,
        delivery: Delivery<'_>,
        now: Timestamp,
    ) -> Result<Vec<Message>, ServiceError> {
        let token = payload
            .get("clientToken")
            .and_then(Json::as_str)
            .filter(|t| t.len() <= 64);
        let request = match root.parse_request(topic) {
            Ok(request) => request,
            Err(error) => {
                // Under the root but not a request: say so on .../rejected.
                return Ok(match root.thing_of(topic) {
                    Some(_) => vec![Message {
                        topic: format!("{topic}/rejected"),
                        payload: protocol::rejected(
                            RejectedCode::InvalidTopic,
                            &error.message,
                            token,
                            None,
                            now,
                        ),
                    }],
                    None => {
                        tracing::warn!(%topic, "message outside the jobs topic root ignored");
                        Vec::new()
                    }
                });
            }
        };
        if !payload.is_object() && !payload.is_null() {
            return Ok(vec![reject(
                root,
                &request,
                RejectedCode::InvalidJson,
                "the payload must be a JSON object",
                token,
                None,
                now,
            )]);
        }
        match self
            .answer(root, &request, payload, token, delivery, now)
            .await
        {
            Ok(messages) => Ok(messages),
            // Transient: no answer; the platform delivers the message again
            // and the same delivery is applied once.
            Err(err @ (ServiceError::Unavailable(_) | ServiceError::Throttled(_))) => {
                tracing::warn!(code = err.code().as_str(), error = %err, %topic, "storage unavailable; the message will be delivered again");
                Err(err)
            }
            Err(err) => {
                let (code, current) = rejection(&err);
                if code == RejectedCode::InternalError {
                    tracing::error!(code = err.code().as_str(), error = ?err, %topic, "device request failed");
                }
                let message = match &err {
                    _ if code == RejectedCode::InternalError => "internal error; retry".to_owned(),
                    // Every problem at once, as the API's details list them.
                    ServiceError::Validation(errors) => errors
                        .iter()
                        .map(|e| format!("{}: {}", e.path, e.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                    other => other.to_string(),
                };
                Ok(vec![reject(
                    root,
                    &request,
                    code,
                    &message,
                    token,
                    current.as_ref(),
                    now,
                )])
            }
        }
    }

    /// Answers within the tenant that owns the thing: a device's executions
    /// live there. A thing no tenant owns has no executions at all (creating
    /// one claims the thing first), so it is answered from this view, which
    /// holds none for it either.
    async fn answer(
        &self,
        root: &TopicRoot,
        request: &DeviceRequest,
        payload: &Json,
        token: Option<&str>,
        delivery: Delivery<'_>,
        now: Timestamp,
    ) -> Result<Vec<Message>, ServiceError> {
        let owners_view = match self.store().thing_owner(&request.thing).await? {
            Some(owner) if owner != *self.tenant() => Some(self.for_tenant(&owner)),
            Some(_) | None => None,
        };
        let courier = owners_view.as_ref().unwrap_or(self);
        Box::pin(courier.answer_for_owner(root, request, payload, token, delivery, now)).await
    }

    async fn answer_for_owner(
        &self,
        root: &TopicRoot,
        request: &DeviceRequest,
        payload: &Json,
        token: Option<&str>,
        delivery: Delivery<'_>,
        now: Timestamp,
    ) -> Result<Vec<Message>, ServiceError> {
        let accepted = |body: Json| Message {
            topic: root.reply_topic(request, true),
            payload: body,
        };
        let thing = &request.thing;
        match &request.kind {
            RequestKind::GetPending => {
                let pending = self.pending(thing, now).await?;
                Ok(vec![accepted(protocol::pending_reply(
                    &pending, token, now,
                ))])
            }
            RequestKind::StartNext => {
                let claim_token = token.unwrap_or(delivery.request_id);
                let next = self.start_next(thing, payload, claim_token, now).await?;
                let mut out = vec![accepted(protocol::reply(
                    match &next {
                        Some(n) => Json::object([(
                            "execution",
                            protocol::data_at(&n.execution, true, now),
                        )]),
                        None => Json::object([]),
                    },
                    token,
                    now,
                ))];
                if next.is_some_and(|n| n.claimed) {
                    out.extend(self.notifications(root, thing, now).await?);
                }
                Ok(out)
            }
            RequestKind::Describe(job) => {
                let execution = match job {
                    JobRef::Next => {
                        let pending = self.pending(thing, now).await?;
                        protocol::next_pending(&pending).cloned().ok_or_else(|| {
                            ServiceError::NotFound {
                                what: "pending execution",
                                id: "$next".into(),
                            }
                        })?
                    }
                    JobRef::Execution(id) => {
                        let execution = self.own_execution(thing, id, now).await?;
                        // Held work is hidden from the device everywhere.
                        if execution.is_held(now) {
                            return Err(ServiceError::NotFound {
                                what: "execution",
                                id: id.to_string(),
                            });
                        }
                        // AWS: "TerminalStateReached: a command to describe a
                        // job is performed on a job that is in a terminal state."
                        if execution.status.is_terminal() {
                            return Err(ServiceError::Transition {
                                error: TransitionError::TerminalStateReached {
                                    status: execution.status,
                                },
                                current: None,
                            });
                        }
                        execution
                    }
                };
                if let Some(number) = payload.get("executionNumber").and_then(Json::as_u64) {
                    if number != u64::from(execution.execution_number) {
                        return Err(ServiceError::NotFound {
                            what: "execution number",
                            id: number.to_string(),
                        });
                    }
                }
                let include_document = payload
                    .get("includeJobDocument")
                    .and_then(Json::as_bool)
                    .unwrap_or(true);
                Ok(vec![accepted(protocol::reply(
                    Json::object([(
                        "execution",
                        protocol::data_at(&execution, include_document, now),
                    )]),
                    token,
                    now,
                ))])
            }
            RequestKind::Update(id) => {
                // A duplicate is the device's own redelivery; the store returns
                // the record as it is, and nothing is notified again.
                let (execution, status_changed) = match self
                    .device_update(thing.as_str(), id.as_str(), payload, delivery, now)
                    .await?
                {
                    DeviceUpdateOutcome::Applied {
                        execution,
                        previous,
                    } => {
                        let changed = execution.status != previous;
                        (execution, changed)
                    }
                    DeviceUpdateOutcome::Duplicate(execution) => (execution, false),
                };
                let mut body = Json::object([]);
                if payload
                    .get("includeJobExecutionState")
                    .and_then(Json::as_bool)
                    .unwrap_or(false)
                {
                    body.set("executionState", protocol::state(&execution));
                }
                if payload
                    .get("includeJobDocument")
                    .and_then(Json::as_bool)
                    .unwrap_or(false)
                {
                    body.set("jobDocument", protocol::job_document(&execution));
                }
                let mut out = vec![accepted(protocol::reply(body, token, now))];
                // The pending list changes when the status does (started or
                // ended), not on a progress report.
                if status_changed {
                    out.extend(self.notifications(root, thing, now).await?);
                }
                Ok(out)
            }
        }
    }

    /// The execution, if it targets `thing`; otherwise not found.
    async fn own_execution(
        &self,
        thing: &ThingName,
        id: &ExecutionId,
        now: Timestamp,
    ) -> Result<CommandExecution, ServiceError> {
        let execution = self.get_execution(id.as_str(), now).await?;
        if execution.target == *thing {
            Ok(execution)
        } else {
            Err(ServiceError::NotFound {
                what: "execution",
                id: id.to_string(),
            })
        }
    }

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
        let retry = if matches!(to, ExecutionStatus::Failed | ExecutionStatus::Rejected) {
            // A job's execution may be retried instead (see
            // `courier_core::job_run::retry_instead`): that needs the record.
            self.store()
                .get_execution(&id, now)
                .await?
                .and_then(|current| courier_core::job_run::retry_instead(&current, &update, now))
        } else {
            None
        };
        let plan = TransitionPlan::new(update, to, Actor::Device, now)
            .map_err(|error| ServiceError::Transition {
                error,
                current: None,
            })?
            .for_target(thing.clone())
            .received_at(delivery.received_at);
        // The retry only replaces a report that would itself be accepted.
        let plan = match retry {
            Some(mut retry) => {
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

/// The Jobs rejection code for a service error, and the current record where
/// AWS includes its state.
fn rejection(err: &ServiceError) -> (RejectedCode, Option<CommandExecution>) {
    match err {
        ServiceError::Validation(_) => (RejectedCode::InvalidRequest, None),
        ServiceError::NotFound { .. } | ServiceError::NoRoute { .. } => {
            (RejectedCode::ResourceNotFound, None)
        }
        ServiceError::Transition { error, current } => {
            let current = current.as_deref().cloned();
            match error {
                TransitionError::VersionMismatch { .. } => (RejectedCode::VersionMismatch, current),
                TransitionError::InvalidStateTransition { .. } => {
                    (RejectedCode::InvalidStateTransition, current)
                }
                TransitionError::ForceRequired => (RejectedCode::InvalidStateTransition, current),
                // An update of an execution that has ended is an invalid
                // transition to AWS ("an attempt to change a request in
                // state SUCCEEDED to state IN_PROGRESS"), with its state;
                // TerminalStateReached is what a describe of one answers
                // (`current` is None there).
                TransitionError::TerminalStateReached { .. }
                | TransitionError::DeadlinePassed { .. } => match current {
                    Some(current) => (RejectedCode::InvalidStateTransition, Some(current)),
                    None => (RejectedCode::TerminalStateReached, None),
                },
                TransitionError::TargetMismatch
                | TransitionError::AttemptMismatch { .. }
                | TransitionError::Held { .. } => (RejectedCode::ResourceNotFound, None),
            }
        }
        ServiceError::Throttled(_) => (RejectedCode::RequestThrottled, None),
        ServiceError::JobEnded { .. } => (RejectedCode::InvalidStateTransition, None),
        // The device path has no callers' tokens; these cannot arise on it.
        ServiceError::Conflict(_)
        | ServiceError::MethodNotAllowed { .. }
        | ServiceError::Unauthenticated(_)
        | ServiceError::MissingScope(_)
        | ServiceError::AccessDenied(_) => (RejectedCode::InvalidRequest, None),
        ServiceError::Unavailable(_) | ServiceError::Internal(_) => {
            (RejectedCode::InternalError, None)
        }
    }
}

fn reject(
    root: &TopicRoot,
    request: &DeviceRequest,
    code: RejectedCode,
    message: &str,
    token: Option<&str>,
    current: Option<&CommandExecution>,
    now: Timestamp,
) -> Message {
    Message {
        topic: root.reply_topic(request, false),
        payload: protocol::rejected(code, message, token, current, now),
    }
}
