//! A DEVICE'S QUEUE: its pending executions, in the order it gets them and
//! with why each waits (`courier_core::queue`), and clearing it. I/O
//! through the store; a clear is one cancel per execution
//! (`executions::cancel_execution`), so the device hears of each from the
//! dispatcher as it does of any cancel.

use super::Courier;
use crate::error::ServiceError;
use crate::store::Store;
use courier_core::json::Json;
use courier_core::presence::Presence;
use courier_core::queue::{queue, Waiting};
use courier_core::{
    CancelExecution, CommandId, ExecutionId, ExecutionStatus, JobId, ThingName, Timestamp,
    TransitionError, ValidationCode, ValidationErrors,
};
use serde::Serialize;

/// `GET /things/{thing}/queue`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueView {
    pub thing: ThingName,
    /// Whether the device is connected, and since when (its latest AWS IoT
    /// lifecycle event); `null` if none was received.
    pub presence: Option<Presence>,
    pub items: Vec<QueueItem>,
}

/// One pending execution, where it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueItem {
    /// 1 is what the device has started or gets next.
    pub position: u32,
    pub execution_id: ExecutionId,
    pub command_id: CommandId,
    pub status: ExecutionStatus,
    /// IN_PROGRESS, DELIVERED_NOT_STARTED, NOT_YET_DELIVERED, DEFERRED,
    /// RETRY_BACKOFF or HELD_UNTIL_NOT_BEFORE (`courier_core::queue`).
    pub waiting: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver_by: Option<Timestamp>,
    pub complete_by: Timestamp,
}

/// `POST /things/{thing}/queue/clear`: what it canceled, and the started
/// work it left because the request did not say `force`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cleared {
    pub thing: ThingName,
    pub canceled: Vec<ExecutionId>,
    pub left_in_progress: Vec<ExecutionId>,
}

impl<S: Store> Courier<S> {
    /// The thing, if this tenant owns it (see `require_own_thing`).
    async fn own_thing(&self, raw: &str) -> Result<ThingName, ServiceError> {
        let thing = ThingName::parse_at(raw, "thingName").map_err(ValidationErrors::from)?;
        self.require_own_thing(&thing).await?;
        Ok(thing)
    }

    /// `GET /things/{thing}/queue`.
    pub async fn thing_queue(
        &self,
        raw_thing: &str,
        now: Timestamp,
    ) -> Result<QueueView, ServiceError> {
        let thing = self.own_thing(raw_thing).await?;
        let pending = self.store().pending_executions(&thing, now).await?;
        let presence = self.store().presence(&thing).await?;
        let items = queue(&pending, now)
            .into_iter()
            .zip(1u32..)
            .map(|((e, waiting), position)| QueueItem {
                position,
                execution_id: e.execution_id.clone(),
                command_id: e.command_id.clone(),
                status: e.status,
                waiting: waiting.as_str(),
                protocol: (!e.protocol.is_jobs()).then_some(e.protocol.as_str()),
                job_id: e.job_id.clone(),
                created_at: e.created_at,
                not_before: e.not_before,
                deliver_by: e.deliver_by,
                complete_by: e.complete_by,
            })
            .collect();
        Ok(QueueView {
            thing,
            presence,
            items,
        })
    }

    /// `POST /things/{thing}/queue/clear` `{force?, statusReason?,
    /// clientToken?}`: cancels everything pending on the thing, each as
    /// `POST /executions/{id}/cancel` would (started work only with
    /// `force`). Safe to retry: what is already canceled stays so.
    pub async fn clear_queue(
        &self,
        raw_thing: &str,
        body: &Json,
        caller: &str,
        now: Timestamp,
        request_id: &str,
    ) -> Result<Cleared, ServiceError> {
        let CancelExecution { update, force } = CancelExecution::parse(body)?;
        if update.expected_version.is_some() {
            return Err(ServiceError::validation(
                "expectedVersion",
                ValidationCode::UnknownField,
                "a queue has no version; cancel one execution to give expectedVersion",
            ));
        }
        let thing = self.own_thing(raw_thing).await?;
        let pending = self.store().pending_executions(&thing, now).await?;
        let mut cleared = Cleared {
            thing,
            canceled: Vec::new(),
            left_in_progress: Vec::new(),
        };
        for (execution, waiting) in queue(&pending, now) {
            let id = &execution.execution_id;
            if waiting == Waiting::InProgress && !force {
                cleared.left_in_progress.push(id.clone());
                continue;
            }
            match self
                .cancel_execution(id.as_str(), body, caller, now, request_id)
                .await
            {
                Ok(e) if e.status == ExecutionStatus::Canceled => cleared.canceled.push(id.clone()),
                // Ended on its own meanwhile: nothing left to clear.
                Ok(_)
                | Err(ServiceError::Transition {
                    error: TransitionError::TerminalStateReached { .. },
                    ..
                }) => {}
                // Started meanwhile, and no force.
                Err(ServiceError::Transition {
                    error: TransitionError::ForceRequired,
                    ..
                }) => cleared.left_in_progress.push(id.clone()),
                Err(other) => return Err(other),
            }
        }
        tracing::info!(thing = %cleared.thing, canceled = cleared.canceled.len(), left = cleared.left_in_progress.len(), "queue cleared");
        Ok(cleared)
    }
}
