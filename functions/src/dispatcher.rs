//! The `dispatcher` Lambda: the table's DynamoDB stream (new images). Does
//! I/O through the service and the publisher.
//!
//! For each record: a QUEUED execution that is due is dispatched
//! (`Courier::dispatch`: conditional claim, then publish); one that ended
//! without its device (CANCELED, TIMED_OUT), or was taken from the device for
//! a new attempt, is announced to the device. Anything else is ignored. A record that
//! cannot be decoded (a poison record) is logged and skipped, so it never
//! blocks the shard; a transient failure reports that record in
//! `batchItemFailures` (the event source mapping has ReportBatchItemFailures
//! on) and Lambda retries from there — which is safe, since every step is
//! conditional or idempotent.

use crate::delivery::DispatchOutcome;
use crate::publisher::Publisher;
use crate::service::Courier;
use crate::store::dynamodb::{stream_change, StreamChange};
use crate::store::Store;
use courier_core::protocol::TopicRoot;
use courier_core::{ExecutionStatus, Timestamp};
use lambda_runtime::LambdaEvent;
use serde_json::{json, Value};

pub async fn handle<S: Store, P: Publisher>(
    courier: &Courier<S>,
    root: &TopicRoot,
    publisher: &P,
    event: LambdaEvent<Value>,
    now: Timestamp,
) -> Result<Value, lambda_runtime::Diagnostic> {
    let records = event
        .payload
        .get("Records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut failures = Vec::new();
    let mut done = Vec::new();
    for record in &records {
        let sequence = record["dynamodb"]["SequenceNumber"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let change = match stream_change(record) {
            Ok(Some(change)) => change,
            Ok(None) => continue,
            Err(err) => {
                tracing::error!(error = %err, %sequence, "undecodable stream record skipped");
                continue;
            }
        };
        // Boxed to keep the future's type shallow (compiler layout limit).
        match Box::pin(handle_change(courier, root, publisher, &change, now)).await {
            Ok(what) => {
                done.push(json!({ "executionId": change.execution.execution_id, "did": what }))
            }
            Err(err) => {
                tracing::error!(code = err.code(), error = %err, %sequence, "stream record failed; Lambda retries from it");
                failures.push(json!({ "itemIdentifier": sequence }));
                // Later records wait for this one (order per execution).
                break;
            }
        }
    }
    Ok(json!({ "batchItemFailures": failures, "handled": done }))
}

async fn handle_change<S: Store, P: Publisher>(
    courier: &Courier<S>,
    root: &TopicRoot,
    publisher: &P,
    change: &StreamChange,
    now: Timestamp,
) -> Result<&'static str, crate::ServiceError> {
    let execution = &change.execution;
    let ended_without_device = matches!(
        execution.status,
        ExecutionStatus::Canceled | ExecutionStatus::TimedOut
    ) && change.previous.is_some_and(|p| !p.is_terminal());
    if execution.status == ExecutionStatus::Queued {
        // A new attempt of work the device had started: tell it first that
        // its IN_PROGRESS attempt is over. (A re-queue from SENT needs no
        // word: the dispatch below announces the new attempt; and a failed
        // publish put back on hold must not publish again here.)
        if change.previous == Some(ExecutionStatus::InProgress) {
            courier
                .announce_change(root, publisher, execution, now)
                .await?;
        }
        return Ok(
            match courier.dispatch(root, publisher, execution, now).await? {
                DispatchOutcome::Sent => "sent",
                DispatchOutcome::RetryScheduled => "publish failed, retry scheduled",
                DispatchOutcome::Skipped(why) => why,
            },
        );
    }
    if ended_without_device {
        courier
            .announce_change(root, publisher, execution, now)
            .await?;
        return Ok("device notified");
    }
    Ok("nothing to do")
}
