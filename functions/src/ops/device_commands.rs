//! THE COMMANDS DEVICE API (AWS IoT commands): what Courier answers when a
//! device publishes UpdateCommandExecution on
//! `{root}/executions/{executionId}/response/json` (or `.../response/cbor`,
//! answered in CBOR), top to bottom — the
//! topic parsed (`courier_core::commands`), the payload read, the update
//! applied (`device_updates`) with the device and this protocol in the
//! write's condition (nothing is read first), and the reply on `.../response/accepted/json`
//! or `.../response/rejected/json`. Returns the messages to publish; the
//! caller (`entry::device_events`) publishes them. I/O only through the
//! store.
//!
//! The command's request itself is published by `delivery` (dispatch), and
//! the status events by the dispatcher, from the table's stream.

use super::device_updates::{Delivery, DeviceReports};
use super::Courier;
use crate::error::ServiceError;
use crate::platform::metrics;
use crate::platform::publisher::{Message, Payload};
use crate::store::Store;
use courier_core::command_payload;
use courier_core::commands::{self, Response, ResponseFormat, TopicError};
use courier_core::json::Json;
use courier_core::protocol::RejectedCode;
use courier_core::{ExecutionStatus, Timestamp, TransitionError};

impl<S: Store> Courier<S> {
    /// Answers `topic` if it is a commands response topic: `None` when it is
    /// not one (the Jobs API may answer it). `Err` only when storage is
    /// unavailable or throttled: nothing is answered then, so that the
    /// platform delivers the message again.
    pub async fn command_message(
        &self,
        topic: &str,
        payload: &[u8],
        delivery: Delivery<'_>,
        now: Timestamp,
    ) -> Option<Result<Vec<Message>, ServiceError>> {
        let response = match commands::parse_response_topic(&self.commands.root, topic) {
            Ok(response) => response,
            Err(TopicError::Ignored) => return None,
            Err(TopicError::Rejected {
                response,
                code,
                message,
            }) => {
                return Some(Ok(vec![
                    self.command_reply_rejected(&response, code, &message)
                ]))
            }
        };
        // A device's executions live in the tenant that owns the thing.
        let owners_view = match self.owners_view(&response.thing).await {
            Ok(view) => view,
            Err(err) => return Some(Err(err)),
        };
        let courier = owners_view.as_ref().unwrap_or(self);
        let answer = Box::pin(courier.command_response(&response, payload, delivery, now)).await;
        if let Err(err) = &answer {
            tracing::warn!(code = err.code().as_str(), error = %err, %topic, "storage unavailable; the message will be delivered again");
        }
        Some(answer)
    }

    /// One UpdateCommandExecution from the device `response` names.
    async fn command_response(
        &self,
        response: &Response,
        payload: &[u8],
        delivery: Delivery<'_>,
        now: Timestamp,
    ) -> Result<Vec<Message>, ServiceError> {
        let body = match response.format {
            ResponseFormat::Json => serde_json::from_slice::<Json>(payload)
                .map_err(|e| format!("the payload is not JSON: {e}")),
            ResponseFormat::Cbor => command_payload::json_from_cbor(payload),
        };
        let body = match body {
            Ok(body) => body,
            Err(message) => {
                let code = match response.format {
                    ResponseFormat::Json => RejectedCode::InvalidJson,
                    ResponseFormat::Cbor => RejectedCode::InvalidRequest,
                };
                return Ok(vec![self.command_reply_rejected(response, code, &message)]);
            }
        };
        let update = match commands::parse_update(&body) {
            Ok(update) => update,
            Err(errors) => {
                return Ok(vec![self.command_reply_rejected(
                    response,
                    RejectedCode::InvalidRequest,
                    &errors.to_string(),
                )])
            }
        };
        // Only the device's own executions of a commands-protocol command:
        // the write's condition checks both, so nothing is read first.
        let id = &response.execution_id;
        let outcome = self
            .apply_device_update(
                response.thing.clone(),
                id.clone(),
                update,
                DeviceReports::CommandsStatuses,
                delivery,
                now,
            )
            .await;
        match outcome {
            Ok(_) => Ok(vec![self.command_reply_accepted(response)]),
            Err(err) if err.is_retryable() => Err(err),
            // Timed out by the cloud before this report: AWS would let the
            // report replace TIMED_OUT; Courier keeps it as the execution's
            // late result (shown by the API and the status event), so the
            // device is answered as AWS answers it.
            Err(ServiceError::Transition {
                error:
                    TransitionError::TerminalStateReached {
                        status: ExecutionStatus::TimedOut,
                    },
                current: Some(current),
            }) if current
                .late_result
                .as_ref()
                .is_some_and(|late| late.received_at == now) =>
            {
                Ok(vec![self.command_reply_accepted(response)])
            }
            Err(
                ServiceError::NotFound { .. }
                | ServiceError::Transition {
                    error: TransitionError::TargetMismatch,
                    ..
                },
            ) => {
                let message = format!("no command execution {id} for {}", response.thing);
                Ok(vec![self.command_reply_rejected(
                    response,
                    RejectedCode::ResourceNotFound,
                    &message,
                )])
            }
            Err(err) => {
                let code = rejection(&err);
                Ok(vec![self.command_reply_rejected(
                    response,
                    code,
                    &err.to_string(),
                )])
            }
        }
    }

    fn command_reply_accepted(&self, response: &Response) -> Message {
        reply(
            commands::reply_topic(&self.commands.root, response, true),
            commands::accepted(&response.execution_id),
            response.format,
        )
    }

    fn command_reply_rejected(
        &self,
        response: &Response,
        code: RejectedCode,
        message: &str,
    ) -> Message {
        metrics::rejected_request(code.as_str());
        reply(
            commands::reply_topic(&self.commands.root, response, false),
            commands::rejected(code, message, &response.execution_id),
            response.format,
        )
    }
}

/// A reply in the response's own format: JSON, or the same fields as CBOR
/// for a device that wrote CBOR.
fn reply(topic: String, body: Json, format: ResponseFormat) -> Message {
    match format {
        ResponseFormat::Json => Message::new(topic, body),
        ResponseFormat::Cbor => Message {
            topic,
            payload: Payload::bytes(
                command_payload::cbor(&body),
                command_payload::CBOR_CONTENT_TYPE,
            ),
            message_expiry_seconds: None,
        },
    }
}

/// The commands rejection code for a refused update. An update of an
/// execution that has ended is `TerminalStateReached`, as AWS IoT commands
/// answers it ("Command Execution status cannot be updated to REJECTED
/// since execution has already completed").
fn rejection(err: &ServiceError) -> RejectedCode {
    match err {
        ServiceError::Validation(_) => RejectedCode::InvalidRequest,
        ServiceError::Transition { error, .. } => match error {
            TransitionError::TerminalStateReached { .. }
            | TransitionError::DeadlinePassed { .. } => RejectedCode::TerminalStateReached,
            TransitionError::VersionMismatch { .. } => RejectedCode::VersionMismatch,
            TransitionError::InvalidStateTransition { .. } | TransitionError::ForceRequired => {
                RejectedCode::InvalidStateTransition
            }
            TransitionError::TargetMismatch
            | TransitionError::AttemptMismatch { .. }
            | TransitionError::Held { .. } => RejectedCode::ResourceNotFound,
        },
        ServiceError::NotFound { .. } | ServiceError::NoRoute { .. } => {
            RejectedCode::ResourceNotFound
        }
        ServiceError::Throttled(_) => RejectedCode::RequestThrottled,
        ServiceError::Conflict(_)
        | ServiceError::JobEnded { .. }
        | ServiceError::Unavailable(_)
        | ServiceError::Internal(_)
        | ServiceError::Unauthenticated(_)
        | ServiceError::MissingScope(_)
        | ServiceError::AccessDenied(_)
        | ServiceError::LimitExceeded(_)
        | ServiceError::MethodNotAllowed { .. } => RejectedCode::InternalError,
    }
}
