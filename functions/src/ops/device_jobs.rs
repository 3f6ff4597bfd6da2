//! THE DEVICE API (AWS IoT Jobs): what Courier answers on each request
//! topic, top to bottom — the raw message, its topic parsed
//! (`courier_core::protocol`), the thing's tenant, the request (get,
//! start-next, describe, update) applied through the store, the reply and
//! the notifications after. Returns a [`DeviceAnswer`]: the replies, which
//! the caller (`entry::device_events`) publishes at once, and the thing whose
//! notifications it then computes ([`Courier::device_notifications`]) and
//! publishes, so that a device's reply never waits on that bookkeeping.
//! I/O only through the store.
//!
//! Notifications: a change that alters a device's pending list (an execution
//! started or ended) publishes `notify` with the new list, and `notify-next`
//! when the next execution is not the one the device was last told (see
//! `delivery`). Those cost one Query of the pending index and one read of
//! what the device was told after the write; progress reports
//! (IN_PROGRESS -> IN_PROGRESS) and redeliveries publish nothing.

use super::device_updates::{Delivery, DeviceUpdateOutcome};
use super::Courier;
use crate::error::ServiceError;
use crate::platform::metrics;
use crate::platform::publisher::Message;
use crate::store::Store;
use courier_core::json::Json;
use courier_core::protocol::{self, DeviceRequest, JobRef, RejectedCode, RequestKind, TopicRoot};
use courier_core::{CommandExecution, ExecutionId, ThingName, Timestamp, TransitionError};

/// What a device request is answered with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceAnswer {
    /// The replies (accepted or rejected), to publish first.
    pub replies: Vec<Message>,
    /// The thing whose pending list changed: its `notify` and `notify-next`
    /// follow the replies.
    pub notify: Option<ThingName>,
}

impl From<Vec<Message>> for DeviceAnswer {
    fn from(replies: Vec<Message>) -> Self {
        Self {
            replies,
            notify: None,
        }
    }
}

impl<S: Store> Courier<S> {
    /// The notifications a device gets after its pending list changed
    /// (see [`DeviceAnswer::notify`]), from its owner's view.
    pub async fn device_notifications(
        &self,
        root: &TopicRoot,
        thing: &ThingName,
        now: Timestamp,
    ) -> Result<Vec<Message>, ServiceError> {
        let owners_view = self.owners_view(thing).await?;
        let courier = owners_view.as_ref().unwrap_or(self);
        courier.notifications(root, thing, now).await
    }

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
    ) -> Result<DeviceAnswer, ServiceError> {
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
                )]
                .into()),
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
    ) -> Result<DeviceAnswer, ServiceError> {
        let token = payload
            .get("clientToken")
            .and_then(Json::as_str)
            .filter(|t| t.len() <= 64);
        let request = match root.parse_request(topic) {
            Ok(request) => request,
            Err(error) => {
                // Under the root but not a request: say so on .../rejected.
                metrics::rejected_request(RejectedCode::InvalidTopic.as_str());
                return Ok(match root.thing_of(topic) {
                    Some(_) => vec![Message::new(
                        format!("{topic}/rejected"),
                        protocol::rejected(
                            RejectedCode::InvalidTopic,
                            &error.message,
                            token,
                            None,
                            now,
                        ),
                    )],
                    None => {
                        tracing::warn!(%topic, "message outside the jobs topic root ignored");
                        Vec::new()
                    }
                }
                .into());
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
            )]
            .into());
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
                )]
                .into())
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
    ) -> Result<DeviceAnswer, ServiceError> {
        let owners_view = self.owners_view(&request.thing).await?;
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
    ) -> Result<DeviceAnswer, ServiceError> {
        let accepted = |body: Json| Message::new(root.reply_topic(request, true), body);
        let thing = &request.thing;
        match &request.kind {
            RequestKind::GetPending => {
                let pending = self.pending(thing, now).await?;
                Ok(vec![accepted(protocol::pending_reply(&pending, token, now))].into())
            }
            RequestKind::StartNext => {
                let claim_token = token.unwrap_or(delivery.request_id);
                let next = self.start_next(thing, payload, claim_token, now).await?;
                let reply = accepted(protocol::reply(
                    match &next {
                        Some(n) => Json::object([(
                            "execution",
                            protocol::data_at(&self.for_device(&n.execution, now), true, now),
                        )]),
                        None => Json::object([]),
                    },
                    token,
                    now,
                ));
                Ok(DeviceAnswer {
                    replies: vec![reply],
                    notify: next.is_some_and(|n| n.claimed).then(|| thing.clone()),
                })
            }
            RequestKind::Describe(job) => {
                let execution = match job {
                    JobRef::Next => {
                        let pending = self.pending(thing, now).await?;
                        match protocol::next_pending(&pending) {
                            Some(next) => next.clone(),
                            // AWS answers `accepted` without an `execution`
                            // when nothing is pending, as start-next does;
                            // the AWS IoT OTA agent reads "no active job"
                            // from that reply. (It does not subscribe to it:
                            // AWS IoT Core hands Jobs replies over anyway. A
                            // broker does not, so after a reboot such a
                            // device learns its next execution from the
                            // `notify-next` its lifecycle event brings; see
                            // `presence`. Also answering on `notify-next`
                            // here was tried and dropped: a device that asks
                            // `$next/get` whenever `notify-next` arrives
                            // would loop.)
                            None => {
                                return Ok(vec![accepted(protocol::reply(
                                    Json::object([]),
                                    token,
                                    now,
                                ))]
                                .into())
                            }
                        }
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
                // URLs are signed only for a document that is sent.
                let shown = if include_document {
                    self.for_device(&execution, now)
                } else {
                    std::borrow::Cow::Borrowed(&execution)
                };
                Ok(vec![accepted(protocol::reply(
                    Json::object([(
                        "execution",
                        protocol::data_at(&shown, include_document, now),
                    )]),
                    token,
                    now,
                ))]
                .into())
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
                    let shown = self.for_device(&execution, now);
                    body.set("jobDocument", protocol::job_document(&shown));
                }
                // The pending list changes when the status does (started or
                // ended), not on a progress report.
                Ok(DeviceAnswer {
                    replies: vec![accepted(protocol::reply(body, token, now))],
                    notify: status_changed.then(|| thing.clone()),
                })
            }
        }
    }

    /// The execution, if it targets `thing` and is delivered over this
    /// protocol (a commands-protocol execution is the commands API's);
    /// otherwise not found.
    async fn own_execution(
        &self,
        thing: &ThingName,
        id: &ExecutionId,
        now: Timestamp,
    ) -> Result<CommandExecution, ServiceError> {
        let execution = self.get_execution(id.as_str(), now).await?;
        if execution.target == *thing && execution.protocol.is_jobs() {
            Ok(execution)
        } else {
            Err(ServiceError::NotFound {
                what: "execution",
                id: id.to_string(),
            })
        }
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
        | ServiceError::AccessDenied(_)
        | ServiceError::LimitExceeded(_) => (RejectedCode::InvalidRequest, None),
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
    metrics::rejected_request(code.as_str());
    Message::new(
        root.reply_topic(request, false),
        protocol::rejected(code, message, token, current, now),
    )
}
